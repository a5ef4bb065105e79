"""Fine-tuning and pre-training from a stream under 2 and 3 real gloo processes, with uneven shards.

examples/finetune.py and examples/pretrain.py run to the end (``trainer.train()``, evaluation, test predictions,
save) from streams whose shards (actor archives) do not divide among the processes and hold different numbers of
clips. Every rank's collator records the clips it receives: per epoch, every training clip is read exactly once,
by one rank, except the padding that completes the last global batch, and every rank takes the same steps.
"""

import json
import os
import subprocess
import sys
import textwrap
import zipfile
from collections import Counter
from pathlib import Path

import pytest


pytestmark = pytest.mark.slow

ROOT = Path(__file__).resolve().parents[1]

# The real example scripts' main(); the collator is wrapped to record the file of every clip it receives.
SCRIPT = textwrap.dedent(
    """
    import importlib.util, json, os, sys
    import mmder_hf.data.collate as collate
    from mmder_hf.training.run import end_process_group

    out, runs = sys.argv[1], json.loads(sys.argv[2])
    rank = int(os.environ["RANK"])
    seen = []
    call = collate.MultiMAEDERDataCollator.__call__

    def recording(self, rows):
        seen.append([row["file"] for row in rows])
        return call(self, rows)

    collate.MultiMAEDERDataCollator.__call__ = recording

    def load(name):
        spec = importlib.util.spec_from_file_location(name, os.path.join(sys.argv[3], "examples", name + ".py"))
        module = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(module)
        return module

    scripts = {"finetune": load("finetune"), "pretrain": load("pretrain")}
    for name, (script, argv) in runs.items():
        seen.clear()
        scripts[script].main(argv)
        with open(os.path.join(out, f"{name}.rank{rank}.json"), "w") as f:
            json.dump(seen, f)
    end_process_group()
    """
)

# actor -> audio-visual clips kept (the synthetic corpus writes 8 per actor)
KEPT = {9: {9: 3}, 11: {8: 5, 9: 2, 11: 6}}


@pytest.fixture(scope="module")
def corpora(tmp_path_factory):
    """9 actors (fold 1 trains on 7, 8, 9: 8 + 8 + 3 clips) and 11 (fold 1 on 7-11: 8 + 5 + 2 + 8 + 6 clips)."""
    from mmder_hf.data import make_synthetic_corpus

    made = {}
    for n, kept in KEPT.items():
        corpus = make_synthetic_corpus(str(tmp_path_factory.mktemp(f"corpus{n}")), num_actors=n, clips_per_actor=8)
        for actor, keep in kept.items():  # an archive with fewer clips, as after skipping bad data
            path = os.path.join(corpus, f"Video_Speech_Actor_{actor:02d}.zip")
            with zipfile.ZipFile(path) as archive:
                members = {m: archive.read(m) for m in archive.namelist()}
            audio_visual = sorted(m for m in members if os.path.basename(m).startswith("01-"))
            dropped = set(audio_visual[keep:])
            with zipfile.ZipFile(path, "w") as archive:
                for member, data in members.items():
                    if member not in dropped:
                        archive.writestr(member, data)
        made[n] = corpus
    return made


def _common(output, corpus, cache, batch):
    return [
        "--output_dir",
        str(output),
        "--dataset_source",
        corpus,
        "--cache_dir",
        str(cache),
        "--model_size",
        "tiny",
        "--use_cpu",
        "true",
        "--report_to",
        "none",
        "--disable_tqdm",
        "true",
        "--dataloader_pin_memory",
        "false",
        "--seed",
        "3",
        "--streaming",
        "true",
        "--per_device_train_batch_size",
        str(batch),
        "--per_device_eval_batch_size",
        "3",
    ]


def _launch(processes, runs, tmp_path, port):
    out = tmp_path / "seen"
    out.mkdir()
    config = tmp_path / "accelerate.yaml"
    base = (ROOT / "examples" / "accelerate_configs" / "cpu_2proc.yaml").read_text()
    config.write_text(base.replace("num_processes: 2", f"num_processes: {processes}"))
    launcher = [sys.executable, "-m", "accelerate.commands.launch", "--config_file", str(config)]
    launcher += ["--main_process_port", str(port), "--no_python", sys.executable, "-c", SCRIPT]
    env = {**os.environ, "GLOO_SOCKET_IFNAME": "lo", "HF_HUB_OFFLINE": "1", "OMP_NUM_THREADS": "1"}
    done = subprocess.run(
        [*launcher, str(out), json.dumps(runs), str(ROOT)],
        capture_output=True,
        text=True,
        env=env,
        timeout=900,
        cwd=tmp_path,
    )
    assert done.returncode == 0, done.stderr[-6000:]
    assert "terminate called" not in done.stderr
    assert f"is split by example among {processes} processes" in done.stdout  # rank 0 says how, and the padding
    return done.stdout, {
        name: [json.loads((out / f"{name}.rank{r}.json").read_text()) for r in range(processes)] for name in runs
    }


def _training_files(corpus, cache):
    from mmder_hf import load_emotion_dataset

    return sorted(load_emotion_dataset("ravdess", source=corpus, fold=1, cache_dir=str(cache))["train"]["file"])


def _check_epochs(batches_per_rank, expected, batch, processes, epochs):
    """Per rank: the same number of training batches; per epoch: every clip once, plus the reported padding."""
    train = set(expected)
    per_rank = [[b for b in batches if set(b) <= train] for batches in batches_per_rank]
    global_batch = batch * processes
    steps = -(-len(expected) // global_batch)  # batches per epoch, the last one completed from the first
    padding = steps * global_batch - len(expected)
    assert [len(b) for b in per_rank] == [steps * epochs] * processes  # equal steps on every rank
    assert all(len(b) == batch for rank in per_rank for b in rank)
    for epoch in range(epochs):
        mine = [[f for b in rank[epoch * steps : (epoch + 1) * steps] for f in b] for rank in per_rank]
        union = [f for files in mine for f in files]
        counts = Counter(union)
        assert sorted(counts) == expected, epoch  # coverage: every training clip in every epoch
        assert len(union) == len(expected) + padding, epoch
        repeated = sorted(f for f, c in counts.items() for _ in range(c - 1))
        assert len(repeated) == padding, epoch
        # the padding repeats clips of the epoch's first global batch; every other clip is on exactly one rank
        first = {f for rank in per_rank for f in rank[epoch * steps]}
        assert set(repeated) <= first, epoch
        for a in range(processes):
            for b in range(a + 1, processes):
                assert set(mine[a]) & set(mine[b]) <= set(repeated), (epoch, a, b)
    return padding


def _check_finished(output, steps, test=True):
    state = json.loads((output / "trainer_state.json").read_text())
    assert state["global_step"] == steps
    assert (output / "model.safetensors").is_file()
    assert "eval_loss" in json.loads((output / "eval_results.json").read_text())
    if test:
        assert "test_war" in json.loads((output / "test_results.json").read_text())


def test_two_processes_train_from_three_uneven_shards(corpora, tmp_path, free_port):
    cache = tmp_path / "cache"
    # 3 shards of 8, 8 and 3 clips (19) in global batches of 4: 5 steps per epoch, 1 clip of padding
    runs = {
        "finetune_3": (
            "finetune",
            [*_common(tmp_path / "f3", corpora[9], cache, 2), "--max_steps", "10", "--eval_strategy", "steps"]
            + ["--eval_steps", "5", "--save_strategy", "no"],
        ),
        "pretrain_3": (
            "pretrain",
            [*_common(tmp_path / "p3", corpora[9], cache, 2), "--max_steps", "10", "--eval_strategy", "no"]
            + ["--reconstruction_clips", "2"],
        ),
    }
    log, seen = _launch(2, runs, tmp_path, free_port)
    assert "The train stream gave 19 examples in this pass, split by example among 2 processes; 1 repeat" in log
    nine = _training_files(corpora[9], cache)
    assert len(nine) == 19
    assert _check_epochs(seen["finetune_3"], nine, 2, 2, 2) == 1
    assert _check_epochs(seen["pretrain_3"], nine, 2, 2, 2) == 1
    _check_finished(tmp_path / "f3", 10)
    _check_finished(tmp_path / "p3", 10, test=False)


def test_three_processes_train_from_three_and_five_uneven_shards(corpora, tmp_path, free_port):
    cache = tmp_path / "cache"
    # 5 shards (29 clips) in global batches of 6: 5 steps per epoch, 1 clip of padding
    # 3 shards (19 clips), one per process, in global batches of 3: 7 steps per epoch, 2 clips of padding
    runs = {
        "finetune_5": (
            "finetune",
            [*_common(tmp_path / "f5", corpora[11], cache, 2), "--max_steps", "10", "--eval_strategy", "steps"]
            + ["--eval_steps", "5", "--save_strategy", "no"],
        ),
        "pretrain_3": (
            "pretrain",
            [*_common(tmp_path / "p3", corpora[9], cache, 1), "--max_steps", "14", "--eval_strategy", "no"]
            + ["--reconstruction_clips", "2"],
        ),
    }
    log, seen = _launch(3, runs, tmp_path, free_port)
    assert "The train stream gave 29 examples in this pass, split by example among 3 processes; 1 repeat" in log
    assert "The train stream gave 19 examples in this pass, split by example among 3 processes; 2 repeat" in log
    nine, eleven = _training_files(corpora[9], cache), _training_files(corpora[11], cache)
    assert len(nine) == 19 and len(eleven) == 29
    assert _check_epochs(seen["finetune_5"], eleven, 2, 3, 2) == 1
    assert _check_epochs(seen["pretrain_3"], nine, 1, 3, 2) == 2
    _check_finished(tmp_path / "f5", 10)
    _check_finished(tmp_path / "p3", 14, test=False)
