"""The ``mmder`` command: predict, timeline, error lines and exit codes."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest
from inference_helpers import LABELS, save_tiny_model

from mmder_hf import cli
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
    assert main([]) == 2 and capsys.readouterr().err.startswith("usage: mmder {predict,timeline,export,inspect}")
    assert main(["frobnicate"]) == 2
    assert capsys.readouterr().err.splitlines() == [
        "usage: mmder {predict,timeline,export,inspect} ...",
        "mmder: error: unknown command 'frobnicate' (choose from predict, timeline, export, inspect)",
    ]
    assert main(["predict", "--help"]) == 0  # argparse's exit status, returned
    assert "--top-k" in capsys.readouterr().out


@pytest.mark.parametrize("command", ["predict", "timeline", "export", "inspect"])
def test_help_lists_each_option_once_with_its_alias(command, capsys):
    assert main([command, "--help"]) == 0
    out = capsys.readouterr().out
    options = out.split("options:", 1)[1]
    invocations = [line.strip().split("  ")[0] for line in options.splitlines() if line.startswith("  -")]
    spellings = [word.rstrip(",") for line in invocations for word in line.split() if word.startswith("-")]
    assert len(spellings) == len(set(spellings)), spellings  # no option spelled twice
    if command == "predict":
        assert "--top-k, --top_k K" in invocations and "--trust-remote-code, --trust_remote_code" in invocations
        assert "--json" in invocations and "--quiet" in invocations  # flags: no [JSON] value
    elif command == "timeline":
        assert "--batch-size, --batch_size N" in invocations and "--window S" in invocations
    elif command == "inspect":
        assert "--out PNG" in invocations and "--face-crop, --face_crop BOOL" in invocations
    else:
        assert (
            "--no-verify, --no_verify" in invocations and "--opset-version, --opset, --opset_version N" in invocations
        )
    assert "(default: None)" not in out and "[JSON]" not in out


def _usage_error(capsys, argv, command):
    """Run main(argv): exit status 2, argparse's usage line then one error line; return that line."""
    assert main(argv) == 2
    captured = capsys.readouterr()
    assert captured.out == "" and "Traceback" not in captured.err
    lines = captured.err.strip().splitlines()
    assert lines[0].startswith(f"usage: mmder {command} ") and len(lines) >= 2
    assert lines[-1].startswith(f"mmder {command}: error: ")
    return lines[-1].removeprefix(f"mmder {command}: error: ")


@pytest.fixture
def no_model_loading(monkeypatch):
    def forbidden(args):
        raise AssertionError("a usage error must be reported before any model is loaded")

    monkeypatch.setattr(cli, "_load_model", forbidden)


@pytest.mark.parametrize(
    "command, options, expected",
    [
        ("predict", ["--topk", "3"], "unrecognized arguments: --topk 3 (did you mean --top-k?)"),
        ("predict", ["--top-k", "three"], "argument --top-k/--top_k: invalid int value: 'three'"),
        ("predict", ["--top_k", "0"], "argument --top-k/--top_k: must be at least 1, got 0"),
        ("predict", ["--top-k", "-2"], "argument --top-k/--top_k: must be at least 1, got -2"),
        ("predict", ["--device", "gpu"], "argument --device: invalid device 'gpu' (e.g. 'cpu', 'cuda', 'cuda:1')"),
        ("timeline", ["--window", "0"], "argument --window: must be a positive number of seconds, got 0"),
        ("timeline", ["--stride", "-1"], "argument --stride: must be a positive number of seconds, got -1"),
        ("timeline", ["--window", "nan"], "argument --window: must be a positive number of seconds, got nan"),
        ("timeline", ["--stride", "inf"], "argument --stride: must be a positive number of seconds, got inf"),
        ("timeline", ["--batch_size", "0"], "argument --batch-size/--batch_size: must be at least 1, got 0"),
        ("timeline", ["--widow", "2"], "unrecognized arguments: --widow 2 (did you mean --window?)"),
    ],
)
def test_argument_mistakes_are_usage_errors(command, options, expected, model_dir, clips, capsys, no_model_loading):
    argv = [command, str(clips[1]), "--model", str(model_dir), *options]
    assert _usage_error(capsys, argv, command) == expected


def test_timeline_takes_one_file_and_required_arguments(model_dir, clips, tmp_path, capsys, no_model_loading):
    two = ["timeline", str(clips[0]), str(clips[1]), "--model", str(model_dir)]
    assert _usage_error(capsys, two, "timeline") == f"argument FILE: one file at a time, got 2: {clips[0]} {clips[1]}"
    assert _usage_error(capsys, ["predict", str(clips[0])], "predict") == (
        "the following arguments are required: --model"
    )
    assert _usage_error(
        capsys, ["export", "--model", str(model_dir), "--opset", "0", str(tmp_path / "m.onnx")], "export"
    ) == ("argument --opset-version/--opset/--opset_version: must be at least 1, got 0")


def test_flags_do_not_take_the_next_file(model_dir, clips, capsys):
    argv = ["predict", "--json", str(clips[0]), "--model", str(model_dir), "--top-k", "1", "--quiet", str(clips[1])]
    assert main(argv) == 0
    assert [(r["file"], len(r["predictions"])) for r in json.loads(capsys.readouterr().out)] == [
        (str(clips[0]), 1),
        (str(clips[1]), 1),
    ]


def _console_script() -> list:
    script = Path(sys.executable).with_name("mmder")
    return [str(script)] if script.is_file() else [sys.executable, "-m", "mmder_hf.cli"]


@pytest.mark.parametrize(
    "argv, expected",
    [
        (
            ["predict", "clip.mp4", "--model", "m", "--topk", "3"],
            "unrecognized arguments: --topk 3 (did you mean --top-k?)",
        ),
        (["timeline", "a.mp4", "b.mp4", "--model", "m"], "argument FILE: one file at a time, got 2: a.mp4 b.mp4"),
        (
            ["predict", "clip.mp4", "--model", "m", "--top_k", "0"],
            "argument --top-k/--top_k: must be at least 1, got 0",
        ),
    ],
)
def test_console_script_usage_errors(argv, expected, tmp_path):
    result = subprocess.run(
        [*_console_script(), *argv],
        capture_output=True,
        text=True,
        timeout=120,
        cwd=tmp_path,
        env={**os.environ, "HF_HUB_OFFLINE": "1"},
    )
    lines = result.stderr.strip().splitlines()
    assert result.returncode == 2, result.stderr
    assert "Traceback" not in result.stderr and result.stdout == ""
    assert lines[0].startswith(f"usage: mmder {argv[0]} ") and lines[-1] == f"mmder {argv[0]}: error: {expected}"


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
