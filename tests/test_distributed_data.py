"""finetune.py's training data under 2 real processes (gloo): per epoch, every training clip exactly once.

One ``accelerate launch`` runs the real data path of examples/finetune.py (parse_args -> load_data -> build_model ->
build_processor -> prepare_datasets -> the Trainer's train dataloader) for several configurations, and records the
file name of every clip each rank's collator receives: map-style splits with a batch size that does and does not
divide the split (reported padding). Streams, split by example, are trained to the end in test_streaming_ddp.py.
"""

import json
import os
import subprocess
import sys
import textwrap
from collections import Counter
from pathlib import Path

import pytest


pytestmark = pytest.mark.slow

ROOT = Path(__file__).resolve().parents[1]

SCRIPT = textwrap.dedent(
    """
    import json, os, sys
    from mmder_hf.training import MultiMAEDERTrainer, parse_args
    from mmder_hf.training.finetune import build_model, load_data, prepare_datasets, report_rank_split
    from mmder_hf.training.run import build_processor, end_process_group, setup_run

    out, runs = sys.argv[1], json.loads(sys.argv[2])
    rank = int(os.environ["RANK"])
    for name, argv in runs.items():
        model_args, data_args, recipe_args, training_args = parse_args(argv)
        setup_run(model_args, training_args)
        raw = load_data(data_args, model_args, training_args)
        model = build_model(model_args, recipe_args, list(raw["train"].features["emotion"].names))
        processor = build_processor(model_args, data_args, model.config)
        data, collator, _ = prepare_datasets(raw, model, processor, data_args, recipe_args, training_args)
        seen = []

        def recording(rows, collator=collator, seen=seen):
            seen.extend(row["file"] for row in rows)
            return collator(rows)

        trainer = MultiMAEDERTrainer(
            model=model, args=training_args, train_dataset=data["train"], data_collator=recording,
            processing_class=processor,
        )
        epochs = []
        for epoch in range(2):
            loader = trainer.get_train_dataloader()
            if hasattr(loader, "set_epoch"):
                loader.set_epoch(epoch)
            seen.clear()
            batches = sum(1 for _ in loader)
            epochs.append({"files": list(seen), "batches": batches})
        message = report_rank_split(data["train"], training_args)
        with open(os.path.join(out, f"{name}.rank{rank}.json"), "w") as f:
            json.dump({"epochs": epochs, "message": message}, f)
    end_process_group()
    """
)


@pytest.fixture(scope="module")
def corpora(tmp_path_factory):
    """9 actors (fold 1 trains on actors 7-9: 24 clips)."""
    from mmder_hf.data import make_synthetic_corpus

    return {9: make_synthetic_corpus(str(tmp_path_factory.mktemp("corpus9")), num_actors=9, clips_per_actor=8)}


def _args(corpus, cache, output, *extra):
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
        "--eval_strategy",
        "no",
        *extra,
    ]


def test_two_processes_see_every_training_clip_exactly_once(corpora, tmp_path, free_port):
    from mmder_hf import load_emotion_dataset

    cache = tmp_path / "cache"
    runs = {
        "map_exact": _args(
            corpora[9], cache, tmp_path / "a", "--preprocess_cache", "false", "--per_device_train_batch_size", "4"
        ),
        "map_padded": _args(
            corpora[9], cache, tmp_path / "b", "--preprocess_cache", "false", "--per_device_train_batch_size", "5"
        ),
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
        SCRIPT,
    ]
    env = {**os.environ, "GLOO_SOCKET_IFNAME": "lo", "HF_HUB_OFFLINE": "1", "OMP_NUM_THREADS": "1"}
    done = subprocess.run(
        [*launcher, str(out), json.dumps(runs)], capture_output=True, text=True, env=env, timeout=900, cwd=tmp_path
    )
    assert done.returncode == 0, done.stderr[-6000:]

    for name, corpus in (("map_exact", 9), ("map_padded", 9)):
        train = load_emotion_dataset("ravdess", source=corpora[corpus], fold=1, cache_dir=str(cache))["train"]
        expected = sorted(train["file"])
        ranks = [json.loads((out / f"{name}.rank{r}.json").read_text()) for r in (0, 1)]
        for epoch in range(2):
            files = [ranks[r]["epochs"][epoch]["files"] for r in (0, 1)]
            union = files[0] + files[1]
            assert sorted(set(union)) == expected, (name, epoch)  # coverage: every training clip
            if name == "map_padded":
                # 24 clips in steps of 2 x 5: the last step is completed with 6 clips from the start, as reported
                counts = Counter(union)
                assert len(union) == 30 and sum(c - 1 for c in counts.values()) == 6, (name, epoch)
                assert ranks[0]["message"].endswith("6 clip(s) repeat in each epoch to complete the last batch of 10")
            else:
                assert len(union) == len(expected) and not set(files[0]) & set(files[1]), (name, epoch)
            assert ranks[0]["epochs"][epoch]["batches"] == ranks[1]["epochs"][epoch]["batches"], (name, epoch)
