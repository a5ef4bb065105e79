"""What the scripts print: mmder_hf's own INFO lines on the main process and the libraries at WARNING, progress bars
on a terminal only, a few progress lines per run instead of the `Trainer`'s dicts, one line for a checkpoint's load
report, and one synthetic corpus that demo.py and finetune.py share. The scripts' whole output is checked end to end
in test_finetune.py and test_pretraining_run.py."""

from __future__ import annotations

import importlib.util
import logging
import os
import sys
from pathlib import Path

import datasets
import pytest
import transformers
from transformers import TrainerControl, TrainerState, TrainingArguments

from mmder_hf.models.multimae_der import (
    MultiMAEDERConfig,
    MultiMAEDERForPreTraining,
    MultiMAEDERForVideoClassification,
)
from mmder_hf.training.arguments import ModelArguments
from mmder_hf.training.model_loading import describe_loading, load_pretrained
from mmder_hf.training.recipes import DECODER_SIZES, MODEL_SIZES
from mmder_hf.training.run import setup_run
from mmder_hf.training.trainers import ProgressLines, summarize_metrics


ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture
def process_settings():
    """setup_run changes process-wide settings: the log levels, the libraries' verbosity and progress bars, the
    torch thread count. Put them back afterwards."""
    import torch

    levels = {name: logging.getLogger(name).level for name in ("mmder_hf", "__main__")}
    verbosity = (transformers.utils.logging.get_verbosity(), datasets.utils.logging.get_verbosity())
    bars = (transformers.utils.logging.is_progress_bar_enabled(), not datasets.are_progress_bars_disabled())
    threads = torch.get_num_threads()
    # the libraries' levels of a fresh process, whatever an earlier test in this one left ("passive" keeps them)
    transformers.utils.logging.set_verbosity_warning()
    datasets.utils.logging.set_verbosity_warning()
    yield
    for name, level in levels.items():
        logging.getLogger(name).setLevel(level)
    transformers.utils.logging.set_verbosity(verbosity[0])
    datasets.utils.logging.set_verbosity(verbosity[1])
    if bars[0]:
        transformers.utils.logging.enable_progress_bar()
    if bars[1]:
        datasets.enable_progress_bars()
    torch.set_num_threads(threads)


def test_mmder_hf_says_what_it_does_and_the_libraries_only_warn(tmp_path, process_settings):
    args = TrainingArguments(output_dir=str(tmp_path), report_to="none", use_cpu=True)
    setup_run(ModelArguments(), args)  # no --log_level: "passive"
    assert logging.getLogger("mmder_hf").level == logging.INFO
    assert transformers.utils.logging.get_verbosity() == logging.WARNING
    assert datasets.utils.logging.get_verbosity() == logging.WARNING
    # pytest captures the output: not a terminal, so no bars (their redraws would fill a log file)
    assert args.disable_tqdm and datasets.are_progress_bars_disabled()
    assert not transformers.utils.logging.is_progress_bar_enabled()

    setup_run(ModelArguments(), TrainingArguments(output_dir=str(tmp_path), report_to="none", log_level="debug"))
    assert logging.getLogger("mmder_hf").level == logging.DEBUG  # --log_level sets both
    assert transformers.utils.logging.get_verbosity() == logging.DEBUG


def test_a_terminal_shows_the_run_s_bars_but_not_one_per_checkpoint(tmp_path, process_settings, monkeypatch):
    from mmder_hf.training import run

    datasets.enable_progress_bars()
    monkeypatch.setattr(run, "on_terminal", lambda: True)
    args = TrainingArguments(output_dir=str(tmp_path), report_to="none", use_cpu=True)
    setup_run(ModelArguments(), args)
    assert not args.disable_tqdm and not datasets.are_progress_bars_disabled()  # training and preprocessing
    assert not transformers.utils.logging.is_progress_bar_enabled()  # "Writing model shards" at every checkpoint


def test_a_run_without_output_dir_says_where_it_writes(caplog, process_settings, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    with caplog.at_level(logging.INFO, logger="mmder_hf"):
        setup_run(ModelArguments(), TrainingArguments(report_to="none", use_cpu=True))
    assert "No --output_dir: writing to trainer_output/" in caplog.messages
    caplog.clear()
    with caplog.at_level(logging.INFO, logger="mmder_hf"):
        setup_run(ModelArguments(), TrainingArguments(output_dir=str(tmp_path / "x"), report_to="none"))
    assert not [m for m in caplog.messages if "--output_dir" in m]


def _state(max_steps: int, epochs: int) -> TrainerState:
    state = TrainerState(max_steps=max_steps, num_train_epochs=epochs)
    state.is_world_process_zero = True
    return state


def test_a_run_of_15_epochs_says_its_losses_in_six_lines_not_thirty_dicts(caplog, tmp_path):
    args = TrainingArguments(output_dir=str(tmp_path), report_to="none")
    state, control, lines = _state(270, 15), TrainerControl(), ProgressLines(bars=False)
    with caplog.at_level(logging.INFO, logger="mmder_hf"):
        lines.on_log(args, state, control, logs={"eval_loss": 2.0})  # before training (pre-training's first loss)
        lines.on_train_begin(args, state, control)
        for epoch in range(1, 16):
            state.global_step, state.epoch = 18 * epoch, float(epoch)
            control.should_evaluate = True  # the training loss first, then the evaluation of the same step
            lines.on_log(args, state, control, logs={"loss": 2.0 / epoch, "grad_norm": 1.0, "learning_rate": 1e-3})
            lines.on_log(args, state, control, logs={"eval_loss": 1.5 / epoch, "eval_war": 0.5, "eval_uar": 0.25})
            control.should_evaluate = False
        lines.on_log(args, state, control, logs={"train_runtime": 5.0, "train_loss": 0.4})  # the closing summary
        lines.on_train_end(args, state, control)
        lines.on_log(args, state, control, logs={"eval_loss": 0.1})  # the evaluation after training
    said = caplog.messages
    assert said[0] == "epoch 1/15 (step 18/270): loss 2; eval WAR 0.500, UAR 0.250, loss 1.5"
    assert said[-1] == "epoch 15/15 (step 270/270): loss 0.1333; eval WAR 0.500, UAR 0.250, loss 0.1"
    assert [m.split(" (")[0] for m in said] == [f"epoch {e}/15" for e in (1, 4, 7, 10, 13, 15)]


def test_the_pretraining_loss_parts_and_a_split_s_figures_in_one_line(caplog, tmp_path):
    args = TrainingArguments(output_dir=str(tmp_path), report_to="none")
    state, control, lines = _state(10, 1), TrainerControl(), ProgressLines(bars=False)
    lines.on_train_begin(args, state, control)
    state.global_step, state.epoch = 10, 1.0
    with caplog.at_level(logging.INFO, logger="mmder_hf"):  # no evaluation: the training loss is said at once
        lines.on_log(args, state, control, logs={"loss": 0.8, "loss_video": 0.9, "loss_audio": 0.7})
    assert caplog.messages == ["epoch 1/1 (step 10/10): loss 0.8 (video 0.9, audio 0.7)"]
    test = {"test_loss": 0.52, "test_war": 0.8125, "test_uar": 0.8, "test_recall_calm": 1.0, "test_runtime": 0.3}
    assert summarize_metrics("test", test) == "test: WAR 0.812, UAR 0.800, loss 0.52"
    train = {"train_loss": 0.3887, "train_samples": 288, "train_runtime": 10.64, "epoch": 15.0}
    assert summarize_metrics("train", train) == "train: loss 0.3887, 288 clips, 10.6 s"


def test_a_classifier_from_a_pretraining_run_says_so_in_one_line_not_a_table(tmp_path, caplog, capfd):
    config = MultiMAEDERConfig(**MODEL_SIZES["tiny"], **DECODER_SIZES["tiny"], fusion_strategy="FSLF")
    MultiMAEDERForPreTraining(config).save_pretrained(tmp_path / "pretrained")
    source = str(tmp_path / "pretrained")
    verbosity = transformers.utils.logging.get_verbosity()
    transformers.utils.logging.set_verbosity_info()  # the user's choice, to be kept after the quiet load
    try:
        with caplog.at_level(logging.INFO, logger="mmder_hf"):
            model = load_pretrained(MultiMAEDERForVideoClassification, source, "classification head", num_labels=8)
        assert transformers.utils.logging.get_verbosity() == logging.INFO
    finally:
        transformers.utils.logging.set_verbosity(verbosity)
    assert isinstance(model, MultiMAEDERForVideoClassification)
    expected = (
        f"Loaded the encoder of the pre-training checkpoint {source}: its decoder is dropped and the "
        "classification head is new (expected)"
    )
    assert [(r.levelno, r.getMessage()) for r in caplog.records] == [(logging.INFO, expected)]
    printed = "".join(capfd.readouterr())
    assert "UNEXPECTED" not in printed and "MISSING" not in printed and "LOAD REPORT" not in printed


def test_a_load_that_leaves_encoder_weights_random_is_a_warning():
    head = {"missing_keys": {"classifier.weight"}, "unexpected_keys": set(), "mismatched_keys": set()}
    assert describe_loading("x", head, "classification head") == (
        logging.INFO,
        "Loaded the encoder of x: the classification head is new (expected)",
    )
    labels = {"missing_keys": set(), "unexpected_keys": set(), "mismatched_keys": {("classifier.bias", (8,), (4,))}}
    level, line = describe_loading("x", labels, "classification head")
    assert level == logging.INFO and "its classification head has other shapes" in line and line.endswith("(expected)")
    other = {"missing_keys": {"videomae.embeddings.patch_embeddings.projection.weight", "classifier.bias"}}
    level, line = describe_loading("x", {**other, "unexpected_keys": {"model.stem.weight"}}, "classification head")
    assert level == logging.WARNING and "1 encoder weight(s) did not load" in line
    assert describe_loading("x", {}, "decoder") == (logging.INFO, "Loaded every weight of x")


def _demo_module(monkeypatch):
    spec = importlib.util.spec_from_file_location("example_demo_logs", ROOT / "examples" / "demo.py")
    module = importlib.util.module_from_spec(spec)
    monkeypatch.setitem(sys.modules, spec.name, module)  # its dataclass looks its module up there
    spec.loader.exec_module(module)
    return module


@pytest.mark.parametrize("cache_flag", [[], ["--cache_dir", "CACHE"]])
def test_demo_and_finetune_read_one_corpus_and_one_preprocess_cache(
    cache_flag, tmp_path, monkeypatch, process_settings
):
    """demo.py wrote its corpus to another folder than the one finetune.py reads by default, and its datasets cache
    elsewhere too, so that finetune.py after the demo wrote the same corpus again and preprocessed it again."""
    from mmder_hf.data import loading, synthetic

    written = []
    monkeypatch.setattr(synthetic, "make_synthetic_corpus", lambda folder, **kw: written.append(folder) or folder)

    class Stop(Exception):
        pass

    def first_run(model_args, data_args, *args, **kwargs):
        raise Stop(data_args)

    demo = _demo_module(monkeypatch)
    monkeypatch.setattr(demo, "run_finetuning", first_run)
    cache_flag = [str(tmp_path) if flag == "CACHE" else flag for flag in cache_flag]
    with pytest.raises(Stop) as stopped:
        demo.main(["--output_dir", str(tmp_path / "demo"), *cache_flag])
    data_args = stopped.value.args[0]
    # finetune.py without --dataset_source: load_emotion_dataset(source=None) reads default_synthetic_corpus(cache_dir)
    assert data_args.dataset_source == written[0] == loading.default_synthetic_corpus(*cache_flag[1:])
    assert data_args.cache_dir == (cache_flag[1] if cache_flag else None)  # the datasets cache finetune.py uses


def test_one_synthetic_corpus_folder_per_settings_reused_by_the_next_run(tmp_path, caplog):
    from mmder_hf.data.loading import default_synthetic_corpus

    tiny = dict(num_actors=5, clips_per_actor=1, duration=0.5, fps=8, width=32, height=18, video_only_per_actor=0)
    with caplog.at_level(logging.INFO, logger="mmder_hf"):
        folder = default_synthetic_corpus(str(tmp_path), num_workers=0, **tiny)
    assert os.path.basename(folder).startswith(
        "synthetic_ravdess_5x1_"
    )  # other sizes, other drawing: a folder of its own
    assert caplog.messages == [f"Writing the synthetic corpus (5 actors x 1 clips) to {folder}"]
    stamps = {name: os.stat(os.path.join(folder, name)).st_mtime_ns for name in os.listdir(folder)}
    caplog.clear()
    with caplog.at_level(logging.INFO, logger="mmder_hf"):
        assert default_synthetic_corpus(str(tmp_path), num_workers=0, **tiny) == folder
    assert caplog.messages == [f"Reusing the synthetic corpus in {folder}"]
    assert {name: os.stat(os.path.join(folder, name)).st_mtime_ns for name in os.listdir(folder)} == stamps
