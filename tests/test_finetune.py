"""examples/finetune.py end to end on a tiny synthetic corpus: offline push that loads back as remote code and
reproduces the logged metrics, resume after a hard kill, and two real CPU processes (gloo) under accelerate.

Every run happens in a subprocess started from ``RUNNER`` below, which patches ``HfApi`` (``offline_hub``: no network,
each upload is copied aside at upload time) and can SIGKILL the run at a given step.
"""

import json
import os
import subprocess
import sys
import textwrap
import zipfile
from pathlib import Path

import pytest
import torch
from inference_helpers import run_without_mmder_hf
from safetensors.torch import load_file

from mmder_hf.data.corpora import RAVDESS_EMOTIONS, parse_ravdess_filename


pytestmark = pytest.mark.slow

ROOT = Path(__file__).resolve().parents[1]
EXAMPLES = ROOT / "examples"

RUNNER = textwrap.dedent(
    """
    import json, os, signal, sys
    sys.path.insert(0, os.environ["MMDER_EXAMPLES"])
    sys.path.insert(0, os.environ["MMDER_TESTS"])
    import mmder_hf.training.finetune as finetune
    from offline_hub import patch_hf_api
    from transformers import TrainerCallback
    from mmder_hf.training.run import end_process_group

    RANK = os.environ.get("RANK", "0")
    patch_hf_api(os.environ["MMDER_TEST_UPLOADS"], rank=RANK)

    class Spy(TrainerCallback):
        def on_step_end(self, args, state, control, **kwargs):
            if str(state.global_step) == os.environ.get("MMDER_TEST_KILL_AT_STEP"):
                os.kill(os.getpid(), signal.SIGKILL)  # a hard kill, mid-way between two checkpoints

    class SpyTrainer(finetune.MultiMAEDERTrainer):
        def __init__(self, *args, **kwargs):
            super().__init__(*args, **kwargs)
            self.add_callback(Spy())

        def compute_loss(self, model, inputs, *args, **kwargs):
            if model.training and os.environ.get("MMDER_TEST_SEEN"):
                with open(os.path.join(os.environ["MMDER_TEST_SEEN"], f"rank{RANK}.jsonl"), "a") as f:
                    sums = inputs["pixel_values"].double().sum((1, 2, 3, 4)).tolist()
                    record = {"epoch": int(self.state.epoch or 0), "clips": [round(s, 3) for s in sums]}
                    f.write(json.dumps(record) + "\\n")
            return super().compute_loss(model, inputs, *args, **kwargs)

    finetune.MultiMAEDERTrainer = SpyTrainer
    import importlib
    try:
        importlib.import_module(os.environ.get("MMDER_TEST_SCRIPT", "finetune")).main(sys.argv[1:])
    finally:
        end_process_group()  # as the scripts' own entry points do
    """
)

REMOTE = textwrap.dedent(
    """
    import json, sys
    from transformers import AutoModelForVideoClassification, pipeline
    final, intermediate, clips = sys.argv[1], sys.argv[2], json.loads(sys.argv[3])
    early = AutoModelForVideoClassification.from_pretrained(intermediate, trust_remote_code=True)
    assert type(early).__module__.startswith("transformers_modules"), type(early).__module__
    classifier = pipeline(model=final, trust_remote_code=True)
    assert type(classifier.model).__module__.startswith("transformers_modules")
    labels = classifier.model.config.label2id
    predictions = [labels[classifier(path, top_k=1)[0]["label"]] for path, _ in clips]
    references = [labels[label] for _, label in clips]
    pairs = list(zip(predictions, references))
    recalls = [sum(p == c for p, r in pairs if r == c) / references.count(c) for c in sorted(set(references))]
    print(json.dumps({"war": sum(p == r for p, r in pairs) / len(references), "uar": sum(recalls) / len(recalls)}))
    """
)


@pytest.fixture(scope="module")
def corpus(tmp_path_factory):
    """10 actors x 8 clips: fold 1 tests on actors 1-4 (32 clips), validates on 5-6, trains on 7-10 (32 clips)."""
    from mmder_hf.data import make_synthetic_corpus

    return make_synthetic_corpus(
        str(tmp_path_factory.mktemp("corpus")), num_actors=10, clips_per_actor=8, num_workers=0
    )


@pytest.fixture(scope="module")
def cache_dir(tmp_path_factory):
    return str(tmp_path_factory.mktemp("cache"))


def finetune_args(corpus, cache_dir, output_dir, *extra):
    return [
        "--output_dir",
        str(output_dir),
        "--dataset_source",
        corpus,
        "--cache_dir",
        cache_dir,
        "--model_size",
        "tiny",
        "--per_device_train_batch_size",
        "8",
        "--per_device_eval_batch_size",
        "16",
        "--learning_rate",
        "3e-3",
        "--disable_tqdm",
        "true",
        "--dataloader_pin_memory",
        "false",
        "--seed",
        "7",
        *extra,
    ]


def run(args, tmp_path, launcher=(sys.executable, "-c", RUNNER), env=None, timeout=600):
    env = {
        **os.environ,
        "HF_HUB_OFFLINE": "1",
        "OMP_NUM_THREADS": "1",
        "MMDER_EXAMPLES": str(EXAMPLES),
        "MMDER_TESTS": str(ROOT / "tests"),
        "MMDER_TEST_UPLOADS": str(tmp_path / "uploads"),
        **(env or {}),
    }
    return subprocess.run([*launcher, *map(str, args)], capture_output=True, text=True, env=env, timeout=timeout)


def test_push_to_hub_uploads_a_model_that_loads_offline_and_reproduces_the_metrics(corpus, cache_dir, tmp_path):
    out = tmp_path / "run"
    result = run(
        finetune_args(
            corpus,
            cache_dir,
            out,
            "--num_train_epochs",
            "2",
            "--save_strategy",
            "epoch",
            "--eval_strategy",
            "epoch",
            "--push_to_hub",
            "--hub_model_id",
            "me/multimae-der-synthetic",
        ),
        tmp_path,
    )
    assert result.returncode == 0, result.stderr[-4000:]
    uploads = sorted((tmp_path / "uploads").iterdir())
    assert len(uploads) >= 3, [u.name for u in uploads]  # epoch 1, epoch 2, ..., final push_to_hub
    code = {
        "config.json",
        "model.safetensors",
        "configuration_multimae_der.py",
        "modeling_multimae_der.py",
        "fusion.py",
        "processing_multimae_der.py",
        "pipeline.py",
        "processor_config.json",
    }
    for upload in uploads:
        names = set(os.listdir(upload))
        assert code <= names, (upload.name, code - names)
        assert not any(n.startswith("checkpoint-") for n in names)
    final = uploads[-1]
    assert {"README.md", "confusion_matrix.png", "all_results.json", "eval_results.json", "test_results.json"} <= set(
        os.listdir(final)
    )
    card = (final / "README.md").read_text()
    assert "library_name: transformers" in card and "license: apache-2.0" in card and "model-index" in card
    # Widget examples: the clips travel with the push, and the card holds the model's outputs on them.
    from huggingface_hub import ModelCard

    widget = ModelCard.load(final / "README.md").data.widget
    assert len(widget) == 2 and {w["example_title"] for w in widget} == {"neutral (test clip)", "calm (test clip)"}
    for entry in widget:
        prefix = "https://huggingface.co/me/multimae-der-synthetic/resolve/main/"
        assert entry["src"].startswith(prefix) and (final / entry["src"][len(prefix) :]).is_file()
        scores = [o["score"] for o in entry["output"]]
        assert len(scores) == 3 and scores == sorted(scores, reverse=True) and 0 < sum(scores) <= 1.0001
    # The final push holds the trained weights.
    trained = load_file(out / "model.safetensors")
    assert all(torch.equal(t, load_file(final / "model.safetensors")[k]) for k, t in trained.items())

    # Every test clip through the pushed pipeline, in a process where mmder_hf cannot be imported.
    clips_dir = tmp_path / "clips"
    clips_dir.mkdir()
    clips = []
    for actor in (1, 2, 3, 4):
        with zipfile.ZipFile(Path(corpus) / f"Video_Speech_Actor_{actor:02d}.zip") as zf:
            for member in zf.namelist():
                meta = parse_ravdess_filename(member)
                if meta["modality"] == "audio-visual":
                    path = clips_dir / meta["file"]
                    path.write_bytes(zf.read(member))
                    clips.append((str(path), RAVDESS_EMOTIONS[meta["emotion_code"] - 1]))
    assert len(clips) == 32
    stdout = run_without_mmder_hf(REMOTE, final, uploads[0], json.dumps(clips), timeout=600)
    reproduced = json.loads(stdout.strip().splitlines()[-1])
    logged = json.loads((final / "test_results.json").read_text())
    assert reproduced["war"] == pytest.approx(logged["test_war"], abs=1e-9)
    assert reproduced["uar"] == pytest.approx(logged["test_uar"], abs=1e-9)


def test_killed_run_resumes_from_its_last_checkpoint_with_the_same_result(corpus, cache_dir, tmp_path):
    common = ("--num_train_epochs", "3", "--save_strategy", "steps", "--save_steps", "4", "--eval_strategy", "epoch")
    straight = run(finetune_args(corpus, cache_dir, tmp_path / "straight", *common), tmp_path)
    assert straight.returncode == 0, straight.stderr[-4000:]
    said = straight.stdout + straight.stderr
    # finetune.py run directly says what it does (no --log_level given), in a few lines without terminal codes
    assert "Recipe 'quick'" in said and f"Data: ravdess fold 1 from {corpus}: 32 train" in said
    assert f"Saved the model, processor, metrics and card to {tmp_path / 'straight'}" in said
    assert "epoch 3/3 (step 12/12): loss" in said and "test: WAR " in said
    assert "{'loss'" not in said and "*****" not in said  # neither the Trainer's dicts nor its metric tables
    assert "\r" not in said and "\x1b[" not in said and len(said.splitlines()) <= 20, said
    trained = json.loads((tmp_path / "straight" / "train_results.json").read_text())
    first = json.loads((tmp_path / "straight" / "all_results.json").read_text())
    assert trained["train_loss"] > 0
    again = run(finetune_args(corpus, cache_dir, tmp_path / "straight", *common), tmp_path)  # the same command
    assert again.returncode == 0, again.stderr[-4000:]
    assert "not training it again" in again.stdout + again.stderr
    assert "Reusing the preprocessed clips in" in again.stdout  # the same data and processor: the same cache
    assert json.loads((tmp_path / "straight" / "train_results.json").read_text()) == trained
    rerun = json.loads((tmp_path / "straight" / "all_results.json").read_text())
    for key in ("eval_war", "eval_uar", "test_war", "test_uar", "train_loss"):  # the trained model, evaluated again
        assert rerun[key] == first[key], key

    killed = run(
        finetune_args(corpus, cache_dir, tmp_path / "killed", *common), tmp_path, env={"MMDER_TEST_KILL_AT_STEP": "6"}
    )
    assert killed.returncode == -9, (killed.returncode, killed.stderr[-2000:])
    assert sorted(p.name for p in (tmp_path / "killed").glob("checkpoint-*")) == ["checkpoint-4"]
    assert not (tmp_path / "killed" / "all_results.json").exists()

    seen = tmp_path / "seen"
    seen.mkdir()
    resumed = run(
        finetune_args(corpus, cache_dir, tmp_path / "killed", *common), tmp_path, env={"MMDER_TEST_SEEN": seen}
    )
    assert resumed.returncode == 0, resumed.stderr[-4000:]
    assert "Resuming from" in resumed.stdout + resumed.stderr
    # from checkpoint-4: this process trained steps 5 to 12 only (a restart would train all 12 to the same weights)
    assert len((seen / "rank0.jsonl").read_text().splitlines()) == 8

    a = json.loads((tmp_path / "straight" / "all_results.json").read_text())
    b = json.loads((tmp_path / "killed" / "all_results.json").read_text())
    for key in ("eval_war", "eval_uar", "test_war", "test_uar"):
        assert a[key] == b[key], key
    for key in ("eval_loss", "test_loss"):
        assert a[key] == pytest.approx(b[key], abs=1e-5), key
    wa, wb = (
        load_file(tmp_path / "straight" / "model.safetensors"),
        load_file(tmp_path / "killed" / "model.safetensors"),
    )
    for name, tensor in wa.items():
        assert torch.allclose(tensor, wb[name], atol=1e-5), name
    state = json.loads((tmp_path / "killed" / "trainer_state.json").read_text())
    assert state["global_step"] == 12


def test_two_cpu_processes_train_evaluate_and_only_the_main_one_pushes(corpus, cache_dir, tmp_path, free_port):
    runner = tmp_path / "runner.py"
    runner.write_text(RUNNER)
    launcher = (
        sys.executable,
        "-m",
        "accelerate.commands.launch",
        "--config_file",
        str(EXAMPLES / "accelerate_configs" / "cpu_2proc.yaml"),
        "--main_process_port",
        str(free_port),
        str(runner),
    )
    seen = tmp_path / "seen"
    seen.mkdir()
    result = run(
        finetune_args(
            corpus,
            cache_dir,
            tmp_path / "ddp",
            "--use_cpu",
            "true",
            "--num_train_epochs",
            "2",
            "--per_device_train_batch_size",
            "4",
            "--eval_strategy",
            "epoch",
            "--save_strategy",
            "epoch",
            "--push_to_hub",
            "--hub_model_id",
            "me/ddp",
        ),
        tmp_path,
        launcher=launcher,
        env={"GLOO_SOCKET_IFNAME": "lo", "MMDER_TEST_SEEN": str(seen)},
    )
    assert result.returncode == 0, result.stderr[-6000:]
    uploads = sorted(p.name for p in (tmp_path / "uploads").iterdir())
    assert uploads and all("-rank0-" in name for name in uploads), uploads
    # Each rank trained on its own clips: per epoch, the two ranks' clips are disjoint and cover the training split.
    per_rank = {}
    for rank in (0, 1):
        for line in (seen / f"rank{rank}.jsonl").read_text().splitlines():
            row = json.loads(line)
            per_rank.setdefault(rank, {}).setdefault(row["epoch"], []).extend(row["clips"])
    for epoch in per_rank[0]:
        a, b = per_rank[0][epoch], per_rank[1][epoch]
        assert len(a) == len(b) == 16 and not set(a) & set(b), epoch
    state = json.loads((tmp_path / "ddp" / "trainer_state.json").read_text())
    assert state["global_step"] == 8  # 32 clips / (2 processes x 4) per epoch, 2 epochs
    results = json.loads((tmp_path / "ddp" / "all_results.json").read_text())
    assert {"eval_war", "eval_uar", "test_war", "test_uar"} <= set(results)
    assert (tmp_path / "ddp" / "confusion_matrix.png").is_file() and (tmp_path / "ddp" / "README.md").is_file()


def test_cross_validation_skips_finished_folds_and_pushes_folds_and_aggregate(corpus, cache_dir, tmp_path):
    out = tmp_path / "cv"
    env = {"MMDER_TEST_SCRIPT": "cross_validate"}
    common = finetune_args(
        corpus, cache_dir, out, "--num_train_epochs", "1", "--save_strategy", "no", "--eval_strategy", "no"
    )
    first = run([*common, "--folds", "1"], tmp_path, env=env)
    assert first.returncode == 0, first.stderr[-4000:]
    stamp = (out / "fold_1" / "all_results.json").stat().st_mtime_ns

    second = run([*common, "--push_to_hub", "--hub_model_id", "me/multimae-der-cv"], tmp_path, env=env)
    assert second.returncode == 0, second.stderr[-4000:]
    assert (out / "fold_1" / "all_results.json").stat().st_mtime_ns == stamp  # finished fold skipped
    summary = json.loads((out / "cv_results.json").read_text())
    assert sorted(summary["folds"]) == ["1", "2", "3"]  # 10 actors: ceil(10 / 4) folds
    wars = [summary["folds"][k]["test_war"] for k in ("1", "2", "3")]
    assert summary["mean"]["test_war"] == pytest.approx(sum(wars) / 3)
    assert "mean ± std" in (out / "cv_results.md").read_text()
    assert (out / "cv_folds.png").read_bytes()[:4] == b"\x89PNG"

    uploads = sorted(p.name for p in (tmp_path / "uploads").iterdir())
    assert uploads[-1].endswith("-me__multimae-der-cv-root")
    aggregate = tmp_path / "uploads" / uploads[-1]
    assert {"README.md", "cv_results.json", "cv_results.md", "cv_folds.png"} <= set(os.listdir(aggregate))
    assert not any(name.startswith("fold_") for name in os.listdir(aggregate))
    card = (aggregate / "README.md").read_text()
    assert "config: mean-of-3-folds" in card and "me/multimae-der-cv-fold2" in card and "cross-validation" in card
    for fold in (2, 3):  # trained in this run: pushed with their models; fold 1 was trained without --push_to_hub
        pushed = [u for u in uploads if f"-me__multimae-der-cv-fold{fold}-" in u]
        assert pushed and (tmp_path / "uploads" / pushed[-1] / "model.safetensors").is_file(), fold
    assert not any("-fold1-" in u for u in uploads)


def test_cross_validation_never_reuses_a_fold_run_with_other_settings(corpus, cache_dir, tmp_path, example_main):
    out = tmp_path / "cv"
    env = {"MMDER_TEST_SCRIPT": "cross_validate"}
    common = finetune_args(
        corpus, cache_dir, out, "--num_train_epochs", "1", "--save_strategy", "no", "--eval_strategy", "no"
    )
    first = run([*common, "--folds", "1"], tmp_path, env=env)
    assert first.returncode == 0, first.stderr[-4000:]
    saved = json.loads((out / "fold_1" / "run_args.json").read_text())["settings"]
    assert saved["training.learning_rate"] == 3e-3 and saved["data.fold"] == 1 and saved["training.seed"] == 7

    # refused before any training, so checked in this process: flags given later win
    with pytest.raises(SystemExit) as other:  # a message, so the exit status is 1
        example_main("cross_validate", [*common, "--folds", "1", "--learning_rate", "1e-3"])
    said = other.value.code
    assert isinstance(said, str) and "fold 1 in" in said and "learning_rate: 0.003 there, 0.001 now" in said
    assert "--rerun_mismatched" in said
    # finetune.py itself refuses to resume or reuse such a folder
    with pytest.raises(ValueError, match="holds a run with other settings"):
        example_main("finetune", finetune_args(corpus, cache_dir, out / "fold_1", "--learning_rate", "1e-3"))

    again = run([*common, "--folds", "1", "--learning_rate", "1e-3", "--rerun_mismatched"], tmp_path, env=env)
    assert again.returncode == 0, again.stderr[-4000:]
    kept = [p.name for p in out.iterdir() if p.name.startswith("fold_1.replaced-")]
    assert len(kept) == 1 and (out / kept[0] / "all_results.json").is_file()
    rerun = json.loads((out / "fold_1" / "run_args.json").read_text())["settings"]
    assert rerun["training.learning_rate"] == 1e-3


def test_a_fold_smaller_than_the_standard_one_says_so_in_results_and_card(corpus, cache_dir, tmp_path):
    import shutil

    tree = tmp_path / "RAVDESS"  # the 10-actor archives without the synthetic metadata and without actor 3
    tree.mkdir()
    for name in os.listdir(corpus):
        if name.endswith(".zip") and name != "Video_Speech_Actor_03.zip":
            shutil.copy(os.path.join(corpus, name), tree)
    args = finetune_args(str(tree), cache_dir, tmp_path / "run", "--num_train_epochs", "1", "--save_strategy", "no")
    result = run(args, tmp_path)
    assert result.returncode == 0, result.stderr[-4000:]
    assert "lacks actors [3, 11," in result.stdout + result.stderr
    results = json.loads((tmp_path / "run" / "all_results.json").read_text())
    assert results["test_fold_missing_actors"] == "train " + ", ".join(map(str, range(11, 25))) + "; test 3"
    card = (tmp_path / "run" / "README.md").read_text()
    assert "test: 24 clips of 3 actors (1, 2, 4)" in card and "**Smaller than the standard fold 1**" in card
