"""user_errors: the one place that turns a user's mistake into one line (the closest option, the choices, whether a
value is a local path or a Hub id, the exit status). Expected lines written out in full."""

from __future__ import annotations

import logging
import sys

import pytest

from mmder_hf.user_errors import (
    INPUT_STATUS,
    USAGE_STATUS,
    Location,
    UserError,
    check_choice,
    closest,
    did_you_mean,
    locate,
    looks_like_hub_id,
    script_errors,
)


STRATEGIES = ["FSLF", "FFLS", "OFOS", "RFAS", "CFAS", "SFAS", "video", "audio"]


def test_closest_is_case_insensitive_and_spelled_as_the_option():
    assert closest("--learnig_rate", ["--learning_rate", "--lr_scheduler_type", "--seed"]) == "--learning_rate"
    assert closest("fslf", STRATEGIES) == "FSLF" and closest("VIDEO", STRATEGIES) == "video"
    assert closest("FSFL", STRATEGIES) == "FSLF"
    assert closest("zzzz", STRATEGIES) is None and closest("x", []) is None
    assert closest("--top", ["--top-k"], cutoff=0.9) is None and closest("--top", ["--top-k"]) == "--top-k"
    assert did_you_mean("FSFL", STRATEGIES) == " (did you mean FSLF?)" and did_you_mean("zzzz", STRATEGIES) == ""


def test_check_choice_returns_the_spelling_or_one_line_naming_the_flag():
    assert check_choice("--fusion_strategy", "ofos", STRATEGIES) == "OFOS"
    assert check_choice("--fusion_strategy", "Audio", STRATEGIES) == "audio"
    with pytest.raises(UserError) as info:
        check_choice("--fusion_strategy", "FSFL", STRATEGIES)
    assert str(info.value) == (
        "--fusion_strategy: unknown 'FSFL'; expected one of FSLF, FFLS, OFOS, RFAS, CFAS, SFAS, video, audio "
        "(did you mean FSLF?)"
    )
    assert info.value.status == USAGE_STATUS == 2
    with pytest.raises(UserError, match=r"^--x: unknown 'qqq'; expected one of a, b$"):
        check_choice("--x", "qqq", ["a", "b"])


@pytest.mark.parametrize(
    "value, expected",
    [
        ("bert-base", True),
        ("org/model_v1.2", True),
        ("org/sub/model", False),  # three parts
        ("./runs", False),
        ("/data/model", False),
        ("~/model", False),
        ("org/.hidden", False),
        ("-dash/model", False),
        ("clip.mp4", False),  # a file name
        ("corpus.zip", False),
        ("org/", False),
        ("a b/c", False),
    ],
)
def test_what_can_be_a_hub_id(value, expected):
    assert looks_like_hub_id(value) is expected


@pytest.fixture
def workdir(tmp_path, monkeypatch):
    """A working folder holding runs/demo, runs/pre-mine and a file clip.mp4."""
    (tmp_path / "runs" / "demo").mkdir(parents=True)
    (tmp_path / "runs" / "pre-mine").mkdir()
    (tmp_path / "clip.mp4").write_bytes(b"x")
    monkeypatch.chdir(tmp_path)
    return tmp_path


def test_an_existing_path_is_local(workdir, monkeypatch):
    assert locate("--model", "runs/demo") == Location("local", "runs/demo")
    assert locate("--model", "runs/demo").is_local and locate("--model", "clip.mp4", what="file").kind == "local"
    monkeypatch.setenv("HOME", str(workdir / "runs"))
    assert locate("--model", "~/demo") == Location("local", str(workdir / "runs" / "demo"))  # ~ expanded


@pytest.mark.parametrize(
    "value, line",
    [
        ("runs/dem", "--model runs/dem: no such model folder (did you mean runs/demo?)"),
        ("runs/nope", "--model runs/nope: no such model folder (runs/ holds: demo, pre-mine)"),
        ("./nope", "--model ./nope: no such model folder"),
        ("runs/a/b", "--model runs/a/b: no such model folder"),  # not a Hub id: local, missing
        ("nope.mp4", "--model nope.mp4: no such model folder"),
    ],
)
def test_a_missing_local_path_is_one_line_with_status_1(workdir, value, line):
    with pytest.raises(UserError) as info:
        locate("--model", value, what="model folder")
    assert str(info.value) == line and info.value.status == INPUT_STATUS == 1


def test_an_empty_or_crowded_parent_is_described(workdir):
    (workdir / "empty").mkdir()
    with pytest.raises(UserError, match=r"^--source empty/x: no such folder \(empty/ is empty\)$"):
        locate("--source", "empty/x")
    for name in ("a1", "b2", "c3", "d4", "e5", "f6", "g7"):
        (workdir / "many" / name).mkdir(parents=True)
    with pytest.raises(UserError) as info:
        locate("--source", "many/zzz")
    assert str(info.value) == "--source many/zzz: no such folder (many/ holds: a1, b2, c3, d4, e5 and 2 more)"


def test_anything_else_is_a_hub_id_and_said_so(workdir, caplog):
    with caplog.at_level(logging.INFO, logger="mmder_hf.user_errors"):
        assert locate("--model", "MCG-NJU/videomae-base") == Location("hub", "MCG-NJU/videomae-base")
        assert not locate("--model", "videomae").is_local
    assert [r.getMessage() for r in caplog.records] == [
        "--model MCG-NJU/videomae-base: no local folder of that name, so it is read as a Hub id",
        "--model videomae: no local folder of that name, so it is read as a Hub id",
    ]


def test_script_errors_prints_one_line_and_exits_with_the_status(capsys):
    with pytest.raises(SystemExit) as info:
        with script_errors("finetune.py"):
            raise UserError("--fusion_strategy: unknown 'FSFL'")
    assert info.value.code == 2
    assert capsys.readouterr().err == "finetune.py: error: --fusion_strategy: unknown 'FSFL'\n"
    with pytest.raises(SystemExit) as info:
        with script_errors("mmder"):
            raise UserError("clip.mp4: file not found", status=INPUT_STATUS)
    assert info.value.code == 1 and capsys.readouterr().err == "mmder: error: clip.mp4: file not found\n"
    with script_errors("x"):  # nothing raised: nothing printed
        pass
    with pytest.raises(KeyError):  # not a user mistake: left alone (a bug must show its traceback)
        with script_errors("x"):
            raise KeyError("bug")
    assert capsys.readouterr().err == ""


def test_script_errors_is_named_after_the_script_by_default(workdir, monkeypatch, capsys):
    monkeypatch.setattr(sys, "argv", [str(workdir / "dataset_scripts" / "publish.py"), "--source", "./no/such"])
    with pytest.raises(SystemExit) as info:
        with script_errors():
            locate("--source", "./no/such")
    assert info.value.code == 1
    assert capsys.readouterr().err == "publish.py: error: --source ./no/such: no such folder\n"
