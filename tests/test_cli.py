"""The ``mmder`` command: predict, timeline, error lines and exit codes."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest
from inference_helpers import LABELS, save_tiny_model

from mmder_hf.cli import main


@pytest.fixture(scope="module")
def model_dir(tmp_path_factory):
    return save_tiny_model(tmp_path_factory.mktemp("cli_model"))


@pytest.fixture(scope="module")
def clips(make_clip):
    return [
        make_clip("cli_a", num_frames=20, fps=10.0, sample_rate=16000, channels=1),
        make_clip("cli_b", num_frames=60, fps=10.0, sample_rate=16000, channels=1),
    ]


def test_predict_json_and_text(model_dir, clips, capsys):
    assert main(["predict", *map(str, clips), "--model", str(model_dir), "--top-k", "2", "--json"]) == 0
    out = json.loads(capsys.readouterr().out)
    assert [r["file"] for r in out] == list(map(str, clips))
    assert all(len(r["predictions"]) == 2 and r["predictions"][0]["label"] in LABELS for r in out)
    assert main(["predict", str(clips[0]), "--model", str(model_dir), "--top_k", "1"]) == 0
    line = capsys.readouterr().out.strip()
    assert line.startswith(f"{clips[0]}: ") and line.split(": ")[1].split()[0] == out[0]["predictions"][0]["label"]


def test_bad_files_give_one_line_and_exit_1(model_dir, clips, tmp_path, capsys):
    garbage = tmp_path / "garbage.mp4"
    garbage.write_bytes(b"not a video at all" * 20)
    missing = tmp_path / "missing.mp4"
    code = main(["predict", str(missing), str(garbage), str(clips[0]), "--model", str(model_dir), "--json", "--quiet"])
    captured = capsys.readouterr()
    assert code == 1
    errors = [line for line in captured.err.splitlines() if line.startswith("mmder: error:")]
    assert any(str(missing) in e and "not found" in e for e in errors)
    assert any(str(garbage) in e and "cannot be opened" in e for e in errors)
    assert "Traceback" not in captured.err
    assert [r["file"] for r in json.loads(captured.out)] == [str(clips[0])]  # the good file is still processed
    assert main(["timeline", str(missing), "--model", str(model_dir)]) == 1
    assert main(["predict", str(clips[0]), "--model", str(tmp_path / "no_model")]) == 1
    err = capsys.readouterr().err
    assert "not found" in err and "no_model" in err and "Traceback" not in err


def test_timeline_csv_plot_json(model_dir, clips, tmp_path, capsys):
    args = ["timeline", str(clips[1]), "--model", str(model_dir), "--window", "2", "--stride", "1"]
    assert main([*args, "--csv", str(tmp_path / "t.csv"), "--plot", str(tmp_path / "t.png"), "--json"]) == 0
    out = json.loads(capsys.readouterr().out)
    assert [(w["start"], w["end"]) for w in out["timeline"]] == [(float(s), float(s + 2)) for s in range(5)]
    rows = (tmp_path / "t.csv").read_text().splitlines()
    assert len(rows) == 6 and rows[0].startswith("start,end,label,score,")
    assert (tmp_path / "t.png").read_bytes()[:4] == b"\x89PNG"
    assert main(args) == 0
    text = capsys.readouterr().out.splitlines()
    assert len(text) == 6 and text[-1].startswith("overall: ")


def test_usage(capsys):
    assert main(["--help"]) == 0 and "timeline" in capsys.readouterr().out
    assert main([]) == 2
    assert main(["frobnicate"]) == 2 and "unknown command" in capsys.readouterr().err
    with pytest.raises(SystemExit):
        main(["predict", "--help"])
    assert "--top-k" in capsys.readouterr().out


def test_console_script_prints_one_line_not_a_traceback(tmp_path):
    result = subprocess.run(
        [sys.executable, "-m", "mmder_hf.cli", "predict", str(tmp_path / "nope.mp4"), "--model", "unused"],
        capture_output=True,
        text=True,
        timeout=120,
        env={**os.environ, "HF_HUB_OFFLINE": "1"},
    )
    assert result.returncode == 1
    assert result.stderr.strip() == f"mmder: error: {tmp_path / 'nope.mp4'}: file not found"
