"""A new user's mistakes with the training scripts: each is one line ``<script>.py: error: ...`` with its exit status
(2: a flag, 1: a file, a folder, the network), found before any data is built or model made, never a traceback.

The scripts' own ``__main__`` blocks run in this process (``runpy``), so each check takes well under a second once
the imports are made; building the synthetic corpus or a model fails the test at once (:func:`no_data_nor_model`)
instead of training. One subprocess proves the whole path from the interpreter's start.
"""

from __future__ import annotations

import http.server
import json
import logging
import os
import runpy
import socket
import subprocess
import sys
import threading
from pathlib import Path

import datasets
import pytest

from mmder_hf.training import parse_args
from mmder_hf.training.pretraining_data import held_out_count, split_held_out
from mmder_hf.user_errors import UserError


ROOT = Path(__file__).resolve().parents[1]
EXAMPLES = ROOT / "examples"
STRATEGIES = "FSLF, FFLS, OFOS, RFAS, CFAS, SFAS, video, audio, prefused"


@pytest.fixture
def no_data_nor_model(monkeypatch):
    """Building the synthetic corpus or any model fails the test: every mistake must be found before."""
    import mmder_hf.data.loading as loading
    import mmder_hf.training.finetune as finetune
    import mmder_hf.training.pretraining as pretraining

    def refuse(*args, **kwargs):
        raise AssertionError("the mistake was not found before the data or the model were built")

    monkeypatch.setattr(loading, "default_synthetic_corpus", refuse)
    monkeypatch.setattr(finetune, "build_model", refuse)
    monkeypatch.setattr(pretraining, "build_pretraining_model", refuse)


@pytest.fixture
def run_script(monkeypatch, tmp_path, capsys, no_data_nor_model):
    """``run_script("finetune", [...])`` -> ``(exit status, stderr lines)``: ``python examples/finetune.py ...`` run
    in this process, ``__main__`` block included. The process-wide settings a script makes are put back."""
    import torch

    threads = torch.get_num_threads()
    levels = {name: logging.getLogger(name).level for name in ("mmder_hf", "__main__")}
    monkeypatch.syspath_prepend(str(EXAMPLES))  # cross_validate imports finetune

    def run(name: str, argv: list) -> tuple:
        script = EXAMPLES / f"{name}.py"
        common = ["--output_dir", tmp_path / "out", "--cache_dir", tmp_path / "cache"]
        monkeypatch.setattr(sys, "argv", [str(script), *map(str, common + list(argv))])
        capsys.readouterr()
        with pytest.raises(SystemExit) as done:
            runpy.run_path(str(script), run_name="__main__")
        return done.value.code, capsys.readouterr().err.splitlines()

    yield run
    torch.set_num_threads(threads)
    for name, level in levels.items():
        logging.getLogger(name).setLevel(level)


@pytest.mark.parametrize(
    "script, argv, line",
    [
        (
            "finetune",
            ["--fusion_strategy", "FSFL"],
            f"--fusion_strategy: unknown 'FSFL'; expected one of {STRATEGIES} (did you mean FSLF?)",
        ),
        (
            "finetune",
            ["--dataset_name", "ravdes"],
            "--dataset_name: unknown 'ravdes'; expected one of ravdess, crema_d, iemocap (did you mean ravdess?)",
        ),
        (
            "pretrain",
            ["--dataset_name", "video"],
            "--dataset_name: unknown 'video'; expected one of ravdess, crema_d, iemocap, videos "
            "(did you mean videos?)",
        ),
        (
            "finetune",
            ["--label_set", "7clas"],
            "--label_set: unknown '7clas'; expected one of 8class, 7class (did you mean 7class?)",
        ),
        (
            "cross_validate",
            ["--audio_representation", "mfc"],
            "--audio_representation: unknown 'mfc'; expected one of mfcc, log-mel (did you mean mfcc?)",
        ),
        (
            "finetune",
            ["--recipe=quik"],
            "--recipe: unknown 'quik'; expected one of paper, finetune, quick (did you mean quick?)",
        ),
        (
            "pretrain",
            ["--recipe", "mae_dfr"],
            "--recipe: unknown 'mae_dfr'; expected one of mae_dfer, quick (did you mean mae_dfer?)",
        ),
        (
            "demo",
            ["--model_size", "smal"],
            "--model_size: unknown 'smal'; expected one of tiny, small, base, large (did you mean small?)",
        ),
        ("finetune", ["--fold", "9"], "--fold 9: the synthetic corpus has folds 1-6"),
        ("pretrain", ["--dataset_name", "crema_d", "--fold", "6"], "--fold 6: crema_d has folds 1-5"),
        ("finetune", ["--fold", "abc"], "argument --fold: invalid int value: 'abc'; see --help"),
        ("cross_validate", ["--folds", "1,9"], "--folds 1,9: the synthetic corpus has folds 1-6 (no fold 9)"),
        ("compare_strategies", ["--folds", "1,9"], "--folds 1,9: the synthetic corpus has folds 1-6 (no fold 9)"),
        (
            "cross_validate",
            ["--folds", "abc"],
            "--folds: expected comma-separated fold numbers such as 1,2,3, got 'abc'",
        ),
        (
            "compare_strategies",
            ["--strategies", "FSLF,FSFL"],
            f"--strategies: unknown FSFL; expected some of {STRATEGIES} (did you mean FSLF?)",
        ),
        (
            "finetune",
            ["--config_overrides", "hiden_size=64"],
            "--config_overrides: 'hiden_size' is not a MultiMAEDERConfig field; did you mean hidden_size, "
            "image_size, decoder_hidden_size?",
        ),
        (
            "finetune",
            ["--dataset_name", "videos"],
            "--dataset_name videos: fine-tuning needs a labelled corpus (ravdess, crema_d or iemocap); a folder of "
            "unlabelled videos pre-trains with pretrain.py --dataset_name videos",
        ),
        (
            "cross_validate",
            ["--push_to_hub"],
            "--push_to_hub needs --hub_model_id (the aggregate repo; fold k goes to <id>-fold<k>)",
        ),
    ],
)
def test_a_mistaken_flag_is_one_line_with_status_2(script, argv, line, run_script):
    status, err = run_script(script, argv)
    assert (status, err) == (2, [f"{script}.py: error: {line}"])


def test_choices_are_taken_in_any_case_and_spelled_as_the_choice(tmp_path):
    model_args, data_args, recipe_args, _ = parse_args(
        ["--output_dir", str(tmp_path), "--model_size", "Tiny", "--audio_representation=LOG-MEL", "--recipe", "Quick"]
    )
    assert (model_args.model_size, data_args.audio_representation, recipe_args.recipe) == ("tiny", "log-mel", "quick")
    path = tmp_path / "args.json"
    path.write_text(json.dumps({"output_dir": str(tmp_path), "frame_sampling": "Original", "recipe": "PAPER"}))
    _, data_args, recipe_args, _ = parse_args([str(path)])
    assert (data_args.frame_sampling, recipe_args.recipe) == ("original", "paper")
    path.write_text(json.dumps({"output_dir": str(tmp_path), "frame_sampling": "orignal"}))
    with pytest.raises(UserError, match=r"^--frame_sampling: unknown 'orignal'; .* \(did you mean original\?\)$"):
        parse_args([str(path)])


def test_a_missing_folder_or_checkpoint_is_one_line_with_status_1(run_script, tmp_path, monkeypatch):
    data = tmp_path / "data"
    (data / "ravdess").mkdir(parents=True)
    for script in ("finetune", "pretrain"):
        status, err = run_script(script, ["--dataset_source", data / "ravdes"])
        assert (status, err) == (
            1,
            [f"{script}.py: error: --dataset_source {data}/ravdes: no such folder (did you mean {data}/ravdess?)"],
        )
    status, err = run_script("pretrain", ["--dataset_name", "videos", "--dataset_source", data / "vox"])
    assert (status, err) == (
        1,
        [f"pretrain.py: error: --dataset_source {data}/vox: no such folder ({data}/ holds: ravdess)"],
    )
    # a bare name is a Hub dataset id: streamed, and said so
    status, err = run_script("pretrain", ["--dataset_name", "videos", "--dataset_source", "vox2"])
    assert (status, err) == (
        2,
        [
            "pretrain.py: error: --dataset_source vox2: no local folder of that name, so it is read as a Hub dataset "
            "of videos, which is streamed: pass --streaming true and --max_steps N (or the path of a local folder)"
        ],
    )
    monkeypatch.chdir(tmp_path)
    (tmp_path / "runs" / "demo").mkdir(parents=True)
    status, err = run_script("finetune", ["--model_name_or_path", "runs/nope"])
    assert (status, err) == (
        1,
        ["finetune.py: error: --model_name_or_path runs/nope: no such folder (runs/ holds: demo)"],
    )
    status, err = run_script("cross_validate", ["--dataset_source", "runs/nope"])  # never looked up on the Hub
    assert (status, err) == (
        1,
        ["cross_validate.py: error: --dataset_source runs/nope: no such folder (runs/ holds: demo)"],
    )


def test_a_folder_of_videos_given_as_a_corpus_says_to_pass_dataset_name_videos(run_script, tmp_path):
    clips = tmp_path / "clips"
    (clips / "a").mkdir(parents=True)
    for i in range(6):
        (clips / ("a" if i % 2 else ".") / f"clip{i}.mp4").write_bytes(b"")
    (clips / "notes.txt").write_text("not a video")
    for script in ("pretrain", "finetune"):
        status, err = run_script(script, ["--dataset_source", clips])
        expected = (
            f"{script}.py: error: No RAVDESS Video_Speech_Actor_NN.zip archives or Actor_NN folders found in "
            f"'{clips}'; it holds 6 video file(s): for a folder of videos pass --dataset_name videos (pre-training)"
        )
        assert (status, err) == (1, [expected])


class JsonHub(http.server.BaseHTTPRequestHandler):
    """A Hub answering every POST with ``status`` and the JSON of :meth:`answer`."""

    status = 500

    def answer(self) -> dict:
        return {}

    def do_POST(self):
        body = json.dumps(self.answer()).encode()
        self.send_response(self.status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args):
        pass


class ClosedHub(JsonHub):
    """A Hub that refuses every call as to a user who is not logged in."""

    status = 401

    def answer(self) -> dict:
        return {"error": "Invalid username or password."}


def closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]  # closed again when the socket is: nothing listens there


def test_push_to_hub_is_checked_before_any_data(run_script, monkeypatch):
    import huggingface_hub.constants as constants

    status, err = run_script("finetune", ["--push_to_hub"])  # the tests run with HF_HUB_OFFLINE=1
    assert (status, err) == (
        1,
        [
            "finetune.py: error: --push_to_hub: offline mode is on (HF_HUB_OFFLINE=1): unset HF_HUB_OFFLINE to "
            "push, or drop --push_to_hub"
        ],
    )
    monkeypatch.setattr(constants, "HF_HUB_OFFLINE", False)
    endpoint = f"http://127.0.0.1:{closed_port()}"
    monkeypatch.setattr(constants, "ENDPOINT", endpoint)
    status, err = run_script("pretrain", ["--push_to_hub", "--hub_model_id", "me/model"])
    assert status == 1 and len(err) == 1, err
    assert err[0].startswith(f"pretrain.py: error: --push_to_hub: cannot reach the Hub at {endpoint} (")
    assert err[0].endswith("): check the network or drop --push_to_hub")

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), ClosedHub)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    endpoint = f"http://127.0.0.1:{server.server_address[1]}"
    monkeypatch.setattr(constants, "ENDPOINT", endpoint)
    monkeypatch.setenv("HF_TOKEN", "hf_not_a_valid_token")
    try:
        status, err = run_script("compare_strategies", ["--push_to_hub", "--hub_model_id", "me/grid"])
    finally:
        server.shutdown()
    assert (status, err) == (
        1,
        [
            f"compare_strategies.py: error: --push_to_hub: the Hub at {endpoint} does not let this user create or "
            "write me/grid (not logged in, or a token without write access): run `huggingface-cli login` or set "
            "HF_TOKEN, or drop --push_to_hub"
        ],
    )


def test_an_unreachable_hub_is_one_line_from_a_fresh_interpreter(tmp_path):
    endpoint = f"http://127.0.0.1:{closed_port()}"
    env = {**os.environ, "HF_ENDPOINT": endpoint, "HF_HUB_OFFLINE": "0", "PYTHONPATH": str(ROOT / "src")}
    argv = [sys.executable, str(EXAMPLES / "finetune.py"), "--output_dir", str(tmp_path / "out"), "--push_to_hub"]
    done = subprocess.run(argv, capture_output=True, text=True, env=env, timeout=300)
    assert done.returncode == 1 and "Traceback" not in done.stderr, done.stderr
    assert done.stderr.splitlines()[-1].startswith(
        f"finetune.py: error: --push_to_hub: cannot reach the Hub at {endpoint}"
    )
    assert not (tmp_path / "out").exists()  # nothing written: refused before the run started


# ------------------------------------------------------------------------ a small folder of videos (pre-training)
@pytest.mark.parametrize("clips, train, held", [(2, 1, 1), (3, 2, 1), (6, 5, 1), (20, 18, 2)])
def test_a_small_folder_holds_out_what_it_allows(clips, train, held, caplog):
    full = datasets.Dataset.from_dict({"video": [f"clip{i}.mp4" for i in range(clips)]})
    with caplog.at_level(logging.INFO, logger="mmder_hf"):
        splits = split_held_out(full, validation_clips=64, seed=0)
    assert (len(splits["train"]), len(splits["validation"])) == (train, held)
    assert sorted([*splits["train"]["video"], *splits["validation"]["video"]]) == sorted(full["video"])
    logged = [r.getMessage() for r in caplog.records if r.getMessage().startswith("Holding out")]
    assert len(logged) == 1 and logged[0].startswith(f"Holding out {held} of the {clips} clips for the validation")


def test_the_held_out_count_follows_the_flag_a_tenth_and_one_at_least():
    assert [held_out_count(n, 64) for n in (0, 1, 2, 9, 10, 19, 20, 1000)] == [0, 0, 1, 1, 1, 1, 2, 64]
    assert held_out_count(20, 0) == 0  # --validation_clips 0: nothing held out, as asked
    assert held_out_count(100, 3) == 3


def test_one_clip_is_refused_saying_what_to_pass():
    one = datasets.Dataset.from_dict({"video": ["clip0.mp4"]})
    with pytest.raises(UserError) as refused:
        split_held_out(one, validation_clips=64, seed=0, source="/data/clips")
    assert str(refused.value) == (
        "--dataset_source /data/clips: 1 usable video file(s); pre-training needs at least 2 (one to train on, one "
        "held out for the validation loss): pass a folder with more videos"
    )
    assert refused.value.status == 1
    with pytest.raises(UserError, match=r"one held out for the validation loss\): pass a larger --max_train_samples$"):
        split_held_out(one, validation_clips=64, seed=0, source="/data/clips", limited=True)


def test_a_choice_flag_given_last_without_its_value_is_argparse_s_one_line(run_script):
    status, err = run_script("finetune", ["--model_size"])
    assert (status, err) == (
        2,
        ["finetune.py: error: argument --model_size/--model-size: expected one argument; see --help"],
    )


def test_fold_lists_are_written_as_ranges_only_when_they_are_ranges():
    from mmder_hf.training.checks import span

    assert span([3, 1, 2]) == "1-3" and span(range(1, 7)) == "1-6"
    assert span([1, 2]) == "1, 2" and span([1, 3, 4]) == "1, 3, 4" and span([]) == ""


class HubWithTheRepo(JsonHub):
    """A Hub on which the repo to push to exists already: creating it again is a 409 Conflict."""

    status = 409

    def answer(self) -> dict:
        url = f"http://127.0.0.1:{self.server.server_address[1]}/me/model"
        return {"error": "You already created this model repo", "url": url}


def test_push_to_an_existing_repo_passes_the_hub_check(tmp_path, monkeypatch):
    """Pushing again to one's own repo (a second fold, a resumed run) is not a mistake."""
    import huggingface_hub.constants as constants
    from transformers import TrainingArguments

    from mmder_hf.training.checks import check_hub_access

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), HubWithTheRepo)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    monkeypatch.setattr(constants, "HF_HUB_OFFLINE", False)
    monkeypatch.setattr(constants, "ENDPOINT", f"http://127.0.0.1:{server.server_address[1]}")
    args = TrainingArguments(
        output_dir=str(tmp_path), push_to_hub=True, hub_model_id="me/model", hub_token="hf_x", report_to="none"
    )
    try:
        assert check_hub_access(args) is None
    finally:
        server.shutdown()
