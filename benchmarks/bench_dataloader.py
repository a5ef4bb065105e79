"""Data pipeline throughput: DataLoader scaling with workers, streaming, and the preprocess-once cache.

    python benchmarks/bench_dataloader.py [--quick]

On the synthetic RAVDESS-format corpus (H.264 + AAC clips in Video_Speech_Actor_NN.zip archives), measures
clips/s of one pass over the training split of fold 1:
- map-style dataset + MultiMAEDERDataCollator (processor in the workers) with 0, 1 and 2 workers;
- streaming dataset (zip members read one by one) + the same collator;
- the preprocess-once Arrow cache (model-ready arrays, as used from the second epoch or run on).
"""

from __future__ import annotations

import argparse
import os
import statistics
import tempfile
import time

from torch.utils.data import DataLoader

from common import emit
from mmder_hf import MultiMAEDERDataCollator, MultiMAEDERProcessor, load_emotion_dataset, make_synthetic_corpus
from mmder_hf import preprocess_to_cache


def clips_per_second(loader, passes: int = 3) -> float:
    """Median clips/s over full passes, after one warm-up pass (worker start-up, decoder and file caches)."""
    rates = []
    for index in range(passes + 1):
        start, count = time.perf_counter(), 0
        for batch in loader:
            count += len(batch["labels"])
        if index:
            rates.append(count / (time.perf_counter() - start))
    return statistics.median(rates)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--quick", action="store_true", help="a small corpus")
    args = parser.parse_args()
    actors, clips = (12, 8) if args.quick else (24, 16)
    processor = MultiMAEDERProcessor(image_size=64, num_frames=8)
    collator = MultiMAEDERDataCollator(processor)
    with tempfile.TemporaryDirectory() as tmp:
        corpus = make_synthetic_corpus(os.path.join(tmp, "corpus"), num_actors=actors, clips_per_actor=clips)
        ds = load_emotion_dataset("ravdess", source=corpus, fold=1, cache_dir=os.path.join(tmp, "hf"))
        train = ds["train"]
        results = {}
        for workers in (0, 1, 2):
            loader = DataLoader(train, batch_size=8, collate_fn=collator, num_workers=workers, persistent_workers=workers > 0)
            results[f"map_workers_{workers}"] = clips_per_second(loader)
        streaming = load_emotion_dataset("ravdess", source=corpus, fold=1, streaming=True, cache_dir=os.path.join(tmp, "hf"))
        results["streaming_workers_0"] = clips_per_second(DataLoader(streaming["train"], batch_size=8, collate_fn=collator))
        start = time.perf_counter()
        cached = preprocess_to_cache(ds, processor, os.path.join(tmp, "cache")).with_format("torch")
        build_s = time.perf_counter() - start
        results["preprocessed_cache"] = clips_per_second(
            DataLoader(cached["train"], batch_size=8)
        )
        emit(
            {
                "benchmark": "dataloader",
                "corpus": {"actors": actors, "clips_per_actor": clips, "train_clips": len(train)},
                "processor": {"image_size": 64, "num_frames": 8},
                "clips_per_s": results,
                "worker_scaling_2_vs_0": results["map_workers_2"] / results["map_workers_0"],
                "cache_vs_decode": results["preprocessed_cache"] / results["map_workers_0"],
                "cache_build_s": build_s,
                "clips_per_s_per_core": results["map_workers_0"],
            }
        )


if __name__ == "__main__":
    main()
