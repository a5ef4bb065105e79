"""Data pipeline throughput: DataLoader scaling with workers, streaming, and the preprocess-once cache.

    python benchmarks/bench_dataloader.py [--quick] [--image_size 224 --num_frames 16]

On the synthetic RAVDESS-format corpus (H.264 + AAC clips in Video_Speech_Actor_NN.zip archives), measures
clips/s of one full pass over the training split of fold 1 (medians of 4 passes of each reader, after a warm-up
pass of each, the readers interleaved ABBA; the main process uses one thread):
- map-style dataset + MultiMAEDERDataCollator (processor in the workers) with 0, 1 and 2 workers;
- streaming dataset (zip members read one by one) + the same collator;
- the preprocess-once Arrow cache (8-bit clips, as used from the second epoch or run on), and the same cache
  stored as normalised float32, both batched by the collator.
"""

from __future__ import annotations

import argparse
import os
import tempfile
import time

import datasets
import torch
from common import compare, emit
from torch.utils.data import DataLoader

from mmder_hf import (
    MultiMAEDERDataCollator,
    MultiMAEDERProcessor,
    load_emotion_dataset,
    make_synthetic_corpus,
    preprocess_to_cache,
)


def one_pass(loader, counts: dict, name: str):
    """A callable reading one full pass over ``loader``; it records the clips it read in ``counts[name]``."""

    def read():
        counts[name] = sum(len(batch["labels"]) for batch in loader)

    return read


def float32_copy(cached, collator, path: str):
    """The cached split as normalised float32 Array4D columns, saved and reloaded like the cache itself."""
    batch = collator([cached[i] for i in range(len(cached))])
    features = datasets.Features(
        {
            key: datasets.Array4D(shape=tuple(value.shape[1:]), dtype="float32")
            for key, value in batch.items()
            if key != "labels"
        }
    )
    features["labels"] = datasets.Value("int64")
    datasets.Dataset.from_dict({k: v.numpy() for k, v in batch.items()}, features=features).save_to_disk(path)
    return datasets.load_from_disk(path).with_format("torch")


def folder_bytes(arrow_file: str) -> int:
    folder = os.path.dirname(arrow_file)
    return sum(os.path.getsize(os.path.join(folder, name)) for name in os.listdir(folder) if name.endswith(".arrow"))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--quick", action="store_true", help="a small corpus")
    parser.add_argument("--image_size", type=int, default=64, help="processor output size (the paper: 224)")
    parser.add_argument("--num_frames", type=int, default=8, help="clip length (the paper: 16)")
    args = parser.parse_args()
    actors, clips = (12, 8) if args.quick else (24, 16)
    # one thread in the main process, as in each DataLoader worker: "0 workers" is then one core's rate, and a
    # second intra-op thread does not spin against the workers (or other processes) for the same cores
    torch.set_num_threads(1)
    processor = MultiMAEDERProcessor(image_size=args.image_size, num_frames=args.num_frames)
    collator = MultiMAEDERDataCollator(processor)
    with tempfile.TemporaryDirectory() as tmp:
        corpus = make_synthetic_corpus(os.path.join(tmp, "corpus"), num_actors=actors, clips_per_actor=clips)
        ds = load_emotion_dataset("ravdess", source=corpus, fold=1, cache_dir=os.path.join(tmp, "hf"))
        train = ds["train"]
        loaders = {}
        for workers in (0, 1, 2):
            loaders[f"map_workers_{workers}"] = DataLoader(
                train, batch_size=8, collate_fn=collator, num_workers=workers, persistent_workers=workers > 0
            )
        streaming = load_emotion_dataset(
            "ravdess", source=corpus, fold=1, streaming=True, cache_dir=os.path.join(tmp, "hf")
        )
        loaders["streaming_workers_0"] = DataLoader(streaming["train"], batch_size=8, collate_fn=collator)
        start = time.perf_counter()
        cached = preprocess_to_cache(ds, processor, os.path.join(tmp, "cache"))
        build_s = time.perf_counter() - start
        # the collator stacks the cached 8-bit clips and rescales / normalises them, as in training
        loaders["preprocessed_cache"] = DataLoader(cached["train"], batch_size=8, collate_fn=collator)
        # the same cache stored as normalised float32 (what it held before 8-bit storage), read the same way
        float32 = float32_copy(cached["train"], collator, os.path.join(tmp, "float32"))
        loaders["preprocessed_cache_float32"] = DataLoader(float32, batch_size=8, collate_fn=collator)
        # full passes, after a warm-up pass of each (worker start-up, decoder and file caches), interleaved (ABBA)
        counts = {}
        timing = compare({name: one_pass(loader, counts, name) for name, loader in loaders.items()}, repeats=4)
        results = {name: counts[name] / seconds for name, seconds in timing["median_s"].items()}
        sizes = {
            name: folder_bytes(path)
            for name, path in (
                ("uint8", cached["train"].cache_files[0]["filename"]),
                ("float32", float32.cache_files[0]["filename"]),
            )
        }
        emit(
            {
                "benchmark": "dataloader",
                "corpus": {"actors": actors, "clips_per_actor": clips, "train_clips": len(train)},
                "processor": {"image_size": args.image_size, "num_frames": args.num_frames},
                "timing": timing,
                "clips_per_pass": counts,
                "clips_per_s": results,
                "worker_scaling_2_vs_0": results["map_workers_2"] / results["map_workers_0"],
                "cache_vs_decode": results["preprocessed_cache"] / results["map_workers_0"],
                "cache_build_s": build_s,
                "cache_uint8_vs_float32_read_speedup": results["preprocessed_cache"]
                / results["preprocessed_cache_float32"],
                "cache_bytes": sizes,
                "clips_per_s_per_core": results["map_workers_0"],
            }
        )


if __name__ == "__main__":
    main()
