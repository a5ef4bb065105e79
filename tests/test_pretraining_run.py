"""examples/pretrain.py end to end on CPUs: the held-out loss falls well below its value at initialisation, the
run pushes its card and pictures, fine-tuning starts from it, and 2 real processes (gloo) read every clip once."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
from collections import Counter
from pathlib import Path

import numpy as np
import pytest
import test_finetune as finetune_tests
import torch


pytestmark = pytest.mark.slow

ROOT = Path(__file__).resolve().parents[1]

RUNNER = textwrap.dedent(
    """
    import os, sys, importlib
    sys.path.insert(0, os.path.join(os.environ["MMDER_ROOT"], "examples"))
    sys.path.insert(0, os.path.join(os.environ["MMDER_ROOT"], "tests"))
    from offline_hub import patch_hf_api

    from mmder_hf.training.run import end_process_group

    patch_hf_api(os.environ["MMDER_TEST_UPLOADS"])
    try:
        importlib.import_module(sys.argv[1]).main(sys.argv[2:])
    finally:
        end_process_group()  # as the scripts' own entry points do
    """
)


def run(script, args, tmp_path, timeout=600):
    env = {
        **os.environ,
        "HF_HUB_OFFLINE": "1",
        "OMP_NUM_THREADS": "1",
        "MMDER_ROOT": str(ROOT),
        "MMDER_TEST_UPLOADS": str(tmp_path / "uploads"),
    }
    done = subprocess.run(
        [sys.executable, "-c", RUNNER, script, *map(str, args)],
        capture_output=True,
        text=True,
        env=env,
        timeout=timeout,
    )
    assert done.returncode == 0, done.stderr[-6000:]
    return done


@pytest.fixture(scope="module")
def corpus(tmp_path_factory):
    """16 actors x 16 clips: fold 1 pre-trains on actors 7-16 (160 clips), validates on 5-6, never reads 1-4."""
    from mmder_hf.data import make_synthetic_corpus

    return make_synthetic_corpus(str(tmp_path_factory.mktemp("corpus")), num_actors=16, clips_per_actor=16)


def test_cpu_pretraining_lowers_the_held_out_loss_and_finetuning_starts_from_it(corpus, tmp_path):
    out, cache = tmp_path / "pretrained", tmp_path / "cache"
    # no --disable_tqdm: the output is not a terminal, so the scripts draw no bars
    common = ["--dataset_source", corpus, "--cache_dir", cache, "--seed", "5"]
    pretrained = run(
        "pretrain",
        [
            "--output_dir",
            out,
            *common,
            "--save_strategy",
            "epoch",
            "--eval_strategy",
            "steps",
            "--eval_steps",
            "60",
            "--logging_strategy",
            "steps",
            "--logging_steps",
            "10",
            "--push_to_hub",
            "true",
            "--hub_model_id",
            "someone/multimae-der-pretrained",
        ],
        tmp_path,
    )
    init = json.loads((out / "init_results.json").read_text())["init_loss"]
    final = json.loads((out / "eval_results.json").read_text())
    assert 0.9 < init < 1.1  # normalised pixels: predicting each patch's mean scores about 1
    # The quick recipe's 60 epochs (about 75 s of training on 2 cores) halve it (1.02 -> 0.48 when measured), on the
    # face pixels (the synthetic faces' eyes and mouth) as much as on the audio pictures.
    assert final["eval_loss"] < 0.6 * init, (init, final)
    parts = json.loads((out / "init_results.json").read_text())
    for part in ("video", "audio"):
        assert final[f"eval_loss_{part}"] < 0.65 * parts[f"init_loss_{part}"], (part, parts, final)
    for picture in ("loss_curve.png", "reconstructions.png", "reconstructions/step-0.png"):
        assert (out / picture).stat().st_size > 10_000, picture
    card = (out / "README.md").read_text()
    assert "test actors (1, 2, 3, 4) were never read" in card and "160 for training" in card
    assert "0.9 of the video tubelets" in card and "loss_curve.png" in card
    assert f"{final['eval_loss']:.4f}" in card and f"{init:.4f}" in card
    uploads = sorted((tmp_path / "uploads").iterdir())
    pushed = set(os.listdir(uploads[-1]))
    assert {"README.md", "model.safetensors", "modeling_multimae_der.py", "loss_curve.png"} <= pushed
    assert "reconstructions.png" in pushed
    said = pretrained.stdout + pretrained.stderr
    assert "\r" not in said and "\x1b[" not in said  # no bar redraws, no terminal codes in a log file
    assert f"Saved the model, processor, metrics, pictures and card to {out}" in said
    assert "Recipe 'quick'" in said and f"Data: 160 training clips and 32 held-out clips from {corpus}" in said
    assert f"init: loss {init:.4g}" in said and "epoch 60/60 (step 600/600): loss" in said
    assert "{'loss'" not in said and "*****" not in said  # no Trainer dicts nor metric tables
    assert len(said.splitlines()) <= 25, said

    # Fine-tuning from it: finetune.py reads the encoder and the processor of the run.
    tuned = tmp_path / "finetuned"
    finetuned = run(
        "finetune",
        [
            "--output_dir",
            tuned,
            "--model_name_or_path",
            out,
            *common,
            "--num_train_epochs",
            "1",
            "--per_device_train_batch_size",
            "16",
            "--eval_strategy",
            "no",
        ],
        tmp_path,
    )
    assert "test_war" in json.loads((tuned / "test_results.json").read_text())
    assert json.loads((tuned / "run_args.json").read_text())["model"]["model_name_or_path"] == str(out)
    said = finetuned.stdout + finetuned.stderr
    loaded = f"Loaded the encoder of the pre-training checkpoint {out}: its decoder is dropped and the classification"
    assert f"{loaded} head is new (expected)" in said  # one line, not transformers' table of 27 weights
    assert "UNEXPECTED" not in said and "MISSING" not in said and "LOAD REPORT" not in said
    assert "Recipe 'quick'" in said and "Data: ravdess fold 1 from" in said  # mmder_hf INFO, no --log_level
    assert f"Saved the model, processor, metrics and card to {tuned}" in said
    assert "\r" not in said and "\x1b[" not in said and len(said.splitlines()) <= 20, said


DISTRIBUTED = textwrap.dedent(
    """
    import json, os, sys
    from mmder_hf.training import MultiMAEDERPreTrainer, parse_pretraining_args
    from mmder_hf.training.pretraining import build_pretraining_model
    from mmder_hf.training.pretraining_data import load_pretraining_data, prepare_pretraining_data
    from mmder_hf.training.run import build_processor, end_process_group, setup_run

    out, runs = sys.argv[1], json.loads(sys.argv[2])
    rank = int(os.environ["RANK"])
    for name, argv in runs.items():
        model_args, data_args, pretrain_args, training_args = parse_pretraining_args(argv)
        setup_run(model_args, training_args)
        data = load_pretraining_data(data_args, pretrain_args, training_args)
        model = build_pretraining_model(model_args, pretrain_args)
        processor = build_processor(model_args, data_args, model.config)
        prepared = prepare_pretraining_data(data, model, processor, data_args, training_args)
        seen = []

        def recording(rows, collator=prepared.collator, seen=seen):
            seen.extend(row["file"] for row in rows)
            return collator(rows)

        trainer = MultiMAEDERPreTrainer(
            model=model, args=training_args, train_dataset=prepared.train, data_collator=recording,
            processing_class=processor, rank_sharded_total=prepared.rank_sharded_total,
        )
        epochs = []
        for epoch in range(2):
            loader = trainer.get_train_dataloader()
            loader.set_epoch(epoch)
            seen.clear()
            batches = sum(1 for _ in loader)
            epochs.append({"files": list(seen), "batches": batches})
        seen.clear()
        trainer.train()  # one real epoch of DDP training over this rank's shard
        record = {"epochs": epochs, "trained": list(seen), "steps": trainer.state.global_step}
        with open(os.path.join(out, f"{name}.rank{rank}.json"), "w") as f:
            json.dump(record, f)
    end_process_group()
    """
)


def test_two_processes_pretrain_reading_every_clip_exactly_once(tmp_path, free_port):
    from mmder_hf.data import make_synthetic_corpus
    from mmder_hf.data.media_writing import write_clip

    corpus = make_synthetic_corpus(str(tmp_path / "corpus"), num_actors=8, clips_per_actor=4, num_workers=0)
    videos = tmp_path / "videos"
    rng = np.random.default_rng(0)
    for i in range(9):  # an odd number: one rank repeats one clip to keep equal steps
        (videos / f"group{i % 2}").mkdir(parents=True, exist_ok=True)
        frames = rng.integers(0, 255, (8, 32, 32, 3), dtype=np.uint8)
        write_clip(videos / f"group{i % 2}" / f"v{i}.mp4", frames, 8.0, 0.2 * rng.standard_normal((1, 16000)), 16000)
    cache = tmp_path / "cache"
    common = ["--model_size", "tiny", "--use_cpu", "true", "--disable_tqdm", "true", "--seed", "3"]
    common += ["--eval_strategy", "no", "--save_strategy", "no", "--num_train_epochs", "1", "--cache_dir", str(cache)]
    common += ["--per_device_train_batch_size", "2", "--dataloader_pin_memory", "false", "--do_eval", "false"]
    runs = {
        # fold 2 of 8 actors trains on 2 actors (8 clips), cached: each rank builds its own half
        "corpus_cached": ["--output_dir", str(tmp_path / "a"), "--dataset_source", corpus, "--fold", "2", *common],
        "folder_decoded": [
            "--output_dir",
            str(tmp_path / "b"),
            "--dataset_name",
            "videos",
            "--dataset_source",
            str(videos),
            "--validation_clips",
            "0",
            "--preprocess_cache",
            "false",
            *common,
        ],
    }
    out = tmp_path / "seen"
    out.mkdir()
    launcher = [
        sys.executable,
        "-m",
        "accelerate.commands.launch",
        "--config_file",
        str(ROOT / "examples" / "accelerate_configs" / "cpu_2proc.yaml"),
        "--main_process_port",
        str(free_port),
        "--no_python",
        sys.executable,
        "-c",
        DISTRIBUTED,
    ]
    env = {**os.environ, "GLOO_SOCKET_IFNAME": "lo", "HF_HUB_OFFLINE": "1", "OMP_NUM_THREADS": "1"}
    done = subprocess.run(
        [*launcher, str(out), json.dumps(runs)], capture_output=True, text=True, env=env, timeout=900, cwd=tmp_path
    )
    assert done.returncode == 0, done.stderr[-6000:]

    from mmder_hf import load_emotion_dataset

    train = load_emotion_dataset("ravdess", source=corpus, fold=2, cache_dir=str(cache))["train"]
    expected = {
        "corpus_cached": sorted(train["file"]),
        "folder_decoded": sorted(f"group{i % 2}/v{i}.mp4" for i in range(9)),
    }
    for name, files in expected.items():
        ranks = [json.loads((out / f"{name}.rank{r}.json").read_text()) for r in (0, 1)]
        passes = [[ranks[r]["epochs"][e]["files"] for r in (0, 1)] for e in (0, 1)]
        passes.append([ranks[r]["trained"] for r in (0, 1)])
        for first, second in passes:
            assert sorted(set(first) | set(second)) == files, name  # every clip ...
            assert not set(first) & set(second), name  # ... on one rank only: each reads its own shard
            counts = Counter(first + second)
            repeats = sum(c - 1 for c in counts.values())
            assert repeats == (0 if len(files) % 2 == 0 else 1), (name, counts)
        assert passes[0] != passes[1]  # reshuffled between epochs (within each rank's shard)
        assert ranks[0]["steps"] == ranks[1]["steps"] == ranks[0]["epochs"][0]["batches"] > 0
    # each rank preprocessed its own shard only: two caches of half the clips each, not one of all of them
    caches = [p for p in (cache / "preprocessed").iterdir() if (p / "dataset_dict.json").is_file()]
    import datasets

    sizes = sorted(len(datasets.load_from_disk(str(p))["train"]) for p in caches)
    assert len(train) == 8 and sizes == [4, 4], sizes


# ---------------------------------------------------------------------------------------------------------------
# Kill and resume: test_finetune's runner (HfApi patched, SIGKILL at MMDER_TEST_KILL_AT_STEP), its spy put on the
# pre-training `Trainer` that pretrain.py builds.

PRETRAIN_RUNNER = finetune_tests.RUNNER.replace("finetune.MultiMAEDERTrainer", "pretrain.MultiMAEDERPreTrainer")
PRETRAIN_RUNNER = PRETRAIN_RUNNER.replace(
    "import mmder_hf.training.finetune as finetune\n", "import mmder_hf.training.pretraining as pretrain\n"
)
assert PRETRAIN_RUNNER.count("pretrain.MultiMAEDERPreTrainer") == 2
assert "import mmder_hf.training.pretraining as pretrain\n" in PRETRAIN_RUNNER


def run_killable(args, tmp_path, env=None):
    env = {"MMDER_TEST_SCRIPT": "pretrain", **(env or {})}
    return finetune_tests.run(args, tmp_path, launcher=(sys.executable, "-c", PRETRAIN_RUNNER), env=env)


def pretrain_args(corpus, cache, output_dir, *extra):
    return [
        "--output_dir",
        output_dir,
        "--dataset_source",
        corpus,
        "--cache_dir",
        cache,
        "--model_size",
        "tiny",
        "--per_device_train_batch_size",
        "8",
        "--per_device_eval_batch_size",
        "16",
        "--num_train_epochs",
        "3",
        "--save_strategy",
        "steps",
        "--save_steps",
        "4",
        "--save_total_limit",
        "5",
        "--eval_strategy",
        "epoch",
        "--disable_tqdm",
        "true",
        "--dataloader_pin_memory",
        "false",
        "--seed",
        "11",
        *extra,
    ]


@pytest.fixture(scope="module")
def small_corpus(tmp_path_factory):
    """10 actors x 8 clips: fold 1 pre-trains on actors 7-10 (32 clips, 4 steps of 8 per epoch)."""
    from mmder_hf.data import make_synthetic_corpus

    return make_synthetic_corpus(
        str(tmp_path_factory.mktemp("small")), num_actors=10, clips_per_actor=8, num_workers=0
    )


def test_killed_pretraining_resumes_from_its_last_checkpoint_with_the_same_weights(
    small_corpus, tmp_path, example_main
):
    from safetensors.torch import load_file

    cache = tmp_path / "cache"
    straight = run_killable(pretrain_args(small_corpus, cache, tmp_path / "straight"), tmp_path)
    assert straight.returncode == 0, straight.stderr[-4000:]
    saved = json.loads((tmp_path / "straight" / "run_args.json").read_text())["settings"]
    assert saved["recipe.mask_ratio_video"] == 0.9 and saved["training.seed"] == 11

    killed_dir = tmp_path / "killed"
    killed = run_killable(
        pretrain_args(small_corpus, cache, killed_dir), tmp_path, env={"MMDER_TEST_KILL_AT_STEP": "6"}
    )
    assert killed.returncode == -9, (killed.returncode, killed.stderr[-2000:])
    assert sorted(p.name for p in killed_dir.glob("checkpoint-*")) == ["checkpoint-4"]
    assert not (killed_dir / "eval_results.json").exists()

    # Another mask ratio in the killed run's folder: refused, naming the difference; nothing is touched.
    before = sorted(p.name for p in killed_dir.iterdir())
    with pytest.raises(ValueError, match="holds a run with other settings") as other:  # before any work: in-process
        example_main("pretrain", pretrain_args(small_corpus, cache, killed_dir, "--mask_ratio_video", "0.75"))
    assert "mask_ratio_video: 0.9 there, 0.75 now" in str(other.value)
    assert sorted(p.name for p in killed_dir.iterdir()) == before

    resumed = run_killable(pretrain_args(small_corpus, cache, killed_dir), tmp_path)  # the same command again
    assert resumed.returncode == 0, resumed.stderr[-4000:]
    assert f"Resuming from {killed_dir / 'checkpoint-4'}" in resumed.stdout + resumed.stderr
    state = json.loads((killed_dir / "trainer_state.json").read_text())
    assert state["global_step"] == 12

    a, b = load_file(tmp_path / "straight" / "model.safetensors"), load_file(killed_dir / "model.safetensors")
    assert a.keys() == b.keys() and len(a) > 10
    for name, tensor in a.items():
        assert torch.allclose(tensor, b[name], rtol=0, atol=1e-6), (name, (tensor - b[name]).abs().max())
    # The resumed run really trained: its weights are not those of checkpoint-4 (nor of the random start).
    early = load_file(killed_dir / "checkpoint-4" / "model.safetensors")
    assert max((early[k] - b[k]).abs().max() for k in b) > 1e-3
    first, second = (json.loads((d / "eval_results.json").read_text()) for d in (tmp_path / "straight", killed_dir))
    assert first["eval_loss"] == pytest.approx(second["eval_loss"], abs=1e-6)

    # A finished run in the same folder with another mask ratio, or another seed: refused too.
    for flag, value, said in (
        ("--mask_ratio_video", "0.75", "mask_ratio_video: 0.9 there, 0.75 now"),
        ("--seed", "12", "seed: 11 there, 12 now"),
    ):
        with pytest.raises(ValueError, match="holds a run with other settings") as other:
            example_main("pretrain", pretrain_args(small_corpus, cache, tmp_path / "straight", flag, value))
        assert said in str(other.value)

    # The same command on the finished run: it evaluates again and writes the card, but trains no step and
    # overwrites neither the weights nor the training metrics nor the loss at initialisation.
    finished = tmp_path / "straight"
    kept = {name: (finished / name).read_bytes() for name in ("train_results.json", "init_results.json")}
    weights = load_file(finished / "model.safetensors")
    again = run_killable(pretrain_args(small_corpus, cache, finished), tmp_path)
    assert again.returncode == 0, again.stderr[-4000:]
    assert {name: (finished / name).read_bytes() for name in kept} == kept
    assert "holds a finished pre-training run with these settings" in again.stdout + again.stderr
    reloaded = load_file(finished / "model.safetensors")
    assert reloaded.keys() == weights.keys()
    for name, tensor in weights.items():
        assert torch.equal(tensor, reloaded[name]), name
    assert json.loads((finished / "eval_results.json").read_text())["eval_loss"] == pytest.approx(
        first["eval_loss"], abs=1e-6
    )
    card = (finished / "README.md").read_text()
    assert f"{first['eval_loss']:.4f}" in card and "loss_curve.png" in card
