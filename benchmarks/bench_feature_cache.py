"""The paper recipe (frozen encoder, linear probe, 100 epochs) run naively vs with the feature-cache fast path.

    python benchmarks/bench_feature_cache.py [--quick]

Naive: every epoch runs the frozen encoder on every clip, then trains the head (what the original did).
Fast path (mmder_hf.training): the encoder runs once per clip (`compute_pooled_features`), then the head
trains on the cached features (`model(features=...)`). Both use the same preprocessed clips, the same AdamW
(lr 1e-2, weight decay 0.05), batch 16 and shuffling order; the script also reports how far apart the two
final heads are, which should be float noise.
"""

from __future__ import annotations

import argparse
import time

import torch
from common import emit

from mmder_hf import MultiMAEDERConfig, MultiMAEDERForVideoClassification
from mmder_hf.training import compute_pooled_features


def collate(rows):
    return {key: torch.stack([torch.as_tensor(row[key]) for row in rows]) for key in rows[0]}


def train_head(model, batches_per_epoch, epochs: int) -> float:
    """AdamW on the trainable (head) parameters over precomputed batch lists; returns seconds."""
    optimizer = torch.optim.AdamW([p for p in model.parameters() if p.requires_grad], lr=1e-2, weight_decay=0.05)
    start = time.perf_counter()
    for epoch in range(epochs):
        for batch in batches_per_epoch(epoch):
            optimizer.zero_grad(set_to_none=True)
            model(**batch).loss.backward()
            optimizer.step()
    return time.perf_counter() - start


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--quick", action="store_true", help="small model and data")
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
    clips, epochs, batch_size = (32, 100, 16) if args.quick else (128, 100, 16)
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

    def fresh_model():
        torch.manual_seed(1)
        return MultiMAEDERForVideoClassification(MultiMAEDERConfig(fusion_strategy="FSLF", **size)).freeze_backbone()

    naive = fresh_model()

    def naive_batches(epoch):
        order = orders[epoch]
        return (collate([data[i] for i in order[s : s + batch_size]]) for s in range(0, clips, batch_size))

    naive_s = train_head(naive, naive_batches, epochs)

    fast = fresh_model()
    start = time.perf_counter()
    cached = compute_pooled_features(fast, data, collate, batch_size=batch_size)
    encode_s = time.perf_counter() - start
    features, labels = torch.as_tensor(cached["features"][:]), torch.as_tensor(cached["labels"][:])

    def fast_batches(epoch):
        order = torch.tensor(orders[epoch])
        return (
            {"features": features[order[s : s + batch_size]], "labels": labels[order[s : s + batch_size]]}
            for s in range(0, clips, batch_size)
        )

    head_s = train_head(fast, fast_batches, epochs)  # the model takes the cached features as `features=`
    fast_s = encode_s + head_s
    difference = max(
        (a - b).abs().max().item() for a, b in zip(naive.classifier.parameters(), fast.classifier.parameters())
    )
    emit(
        {
            "benchmark": "feature_cache",
            "config": {**size, "clips": clips, "epochs": epochs, "batch": batch_size},
            "seconds": {"naive": naive_s, "fast_path": fast_s, "fast_path_encode": encode_s, "fast_path_head": head_s},
            "feature_cache_speedup": naive_s / fast_s,
            "max_head_weight_difference": difference,
        }
    )


if __name__ == "__main__":
    main()
