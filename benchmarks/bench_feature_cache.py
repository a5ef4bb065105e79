"""The paper recipe (frozen encoder, linear probe, 100 epochs) run naively vs with the feature-cache fast path.

    python benchmarks/bench_feature_cache.py [--quick]

Naive: every epoch runs the frozen encoder on every clip, then trains the head (what the original did).
Fast path (mmder_hf.training): the encoder runs once per clip (`compute_pooled_features`), then the head
trains on the cached features (`model(features=...)`). Both use the same preprocessed clips, the same AdamW
(lr 1e-2, weight decay 0.05), batch 16 and shuffling order, and start from copies of one model; the script also
reports how far apart the two final heads are, which should be float noise.

Each whole recipe is one timed call: after a warm-up run of each, the two alternate (ABBA), one thread, and the
speed-up is the ratio of their medians. Peak process memory of each is measured in a fresh process per variant.
"""

from __future__ import annotations

import argparse
import copy
import statistics
import time

import torch
from common import PEAK_MEMORY_FLAG, compare, emit, peak_memory_per_variant, ratio, report_peak_memory

from mmder_hf import MultiMAEDERConfig, MultiMAEDERForVideoClassification
from mmder_hf.training import compute_pooled_features


def collate(rows):
    return {key: torch.stack([torch.as_tensor(row[key]) for row in rows]) for key in rows[0]}


def train_head(model, batches_per_epoch, epochs: int) -> None:
    """AdamW on the trainable (head) parameters over precomputed batch lists."""
    optimizer = torch.optim.AdamW([p for p in model.parameters() if p.requires_grad], lr=1e-2, weight_decay=0.05)
    for epoch in range(epochs):
        for batch in batches_per_epoch(epoch):
            optimizer.zero_grad(set_to_none=True)
            model(**batch).loss.backward()
            optimizer.step()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--quick", action="store_true", help="small model and data")
    parser.add_argument(PEAK_MEMORY_FLAG, choices=("naive", "fast_path"), help="(internal) one variant's memory")
    args = parser.parse_args()
    torch.set_num_threads(1)  # one core for both paths: tiny head steps otherwise pay thread hand-offs
    size = dict(
        image_size=64,
        patch_size=16,
        num_frames=8,
        hidden_size=192,
        num_hidden_layers=4,
        num_attention_heads=3,
        intermediate_size=768,
        num_labels=8,
    )
    clips, epochs, batch_size, repeats = (32, 100, 16, 4) if args.quick else (128, 100, 16, 6)
    if not args.quick:
        size.update(image_size=112, num_hidden_layers=12)

    torch.manual_seed(0)
    half = size["num_frames"] // 2
    shape = (half, 3, size["image_size"], size["image_size"])
    data = [
        {"pixel_values": torch.randn(shape), "audio_values": torch.randn(shape), "labels": torch.tensor(i % 8)}
        for i in range(clips)
    ]
    orders = [torch.randperm(clips, generator=torch.Generator().manual_seed(e)).tolist() for e in range(epochs)]
    torch.manual_seed(1)
    template = MultiMAEDERForVideoClassification(MultiMAEDERConfig(fusion_strategy="FSLF", **size)).freeze_backbone()
    trained, fast_parts = {}, {"encode": [], "head": []}

    def naive_batches(epoch):
        order = orders[epoch]
        return (collate([data[i] for i in order[s : s + batch_size]]) for s in range(0, clips, batch_size))

    def naive():
        model = copy.deepcopy(template)
        train_head(model, naive_batches, epochs)
        trained["naive"] = model

    def fast_path():
        model = copy.deepcopy(template)
        start = time.perf_counter()
        cached = compute_pooled_features(model, data, collate, batch_size=batch_size)
        features, labels = torch.as_tensor(cached["features"][:]), torch.as_tensor(cached["labels"][:])
        encoded = time.perf_counter()

        def fast_batches(epoch):
            order = torch.tensor(orders[epoch])
            return (
                {"features": features[order[s : s + batch_size]], "labels": labels[order[s : s + batch_size]]}
                for s in range(0, clips, batch_size)
            )

        train_head(model, fast_batches, epochs)  # the model takes the cached features as `features=`
        fast_parts["encode"].append(encoded - start)
        fast_parts["head"].append(time.perf_counter() - encoded)
        trained["fast_path"] = model

    if args.peak_memory_of:  # a child of peak_memory_per_variant
        report_peak_memory({"naive": naive, "fast_path": fast_path}[args.peak_memory_of], calls=1)
        return
    timing = compare({"naive": naive, "fast_path": fast_path}, repeats)
    difference = max(
        (a - b).abs().max().item()
        for a, b in zip(trained["naive"].classifier.parameters(), trained["fast_path"].classifier.parameters())
    )
    memory = peak_memory_per_variant(__file__, ("naive", "fast_path"), ["--quick"] if args.quick else [])
    emit(
        {
            "benchmark": "feature_cache",
            "config": {**size, "clips": clips, "epochs": epochs, "batch": batch_size},
            "timing": timing,
            "median_s": timing["median_s"],
            "fast_path_parts_median_s": {k: statistics.median(v) for k, v in fast_parts.items()},
            "feature_cache_speedup": ratio(timing, "naive", "fast_path"),
            "max_head_weight_difference": difference,
            "peak_memory_per_variant": memory,
        }
    )


if __name__ == "__main__":
    main()
