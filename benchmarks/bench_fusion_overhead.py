"""Training-step cost of MultiMAE-DER's fusion: MultiMAEDERForVideoClassification vs transformers'
VideoMAEForVideoClassification of the same size on the same number of tokens.

    python benchmarks/bench_fusion_overhead.py [--quick]

Also reports sdpa vs eager attention and the activation-checkpointing memory saving (CPU peak RSS is not
per-step, so memory is measured on CUDA when present and otherwise as the size of saved activations).
"""

from __future__ import annotations

import argparse
import statistics

import torch
from common import emit, interleaved_samples, paired_ratio, time_interleaved
from transformers import VideoMAEConfig, VideoMAEForVideoClassification

from mmder_hf import MultiMAEDERConfig, MultiMAEDERForVideoClassification


def saved_activation_bytes(model, inputs) -> int:
    """Bytes of tensors autograd keeps for backward during one forward pass."""
    total = 0

    def pack(tensor):
        nonlocal total
        total += tensor.numel() * tensor.element_size()
        return tensor

    with torch.autograd.graph.saved_tensors_hooks(pack, lambda t: t):
        model(**inputs).loss.backward()
    return total


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--quick", action="store_true", help="small model, few repetitions")
    args = parser.parse_args()
    torch.manual_seed(0)
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
    if not args.quick:
        size.update(image_size=112, num_frames=16, num_hidden_layers=12)
    batch, repeats = (4, 81) if args.quick else (8, 81)
    torch.set_num_threads(1)  # one core each: less noise from whatever else the machine runs

    ours = MultiMAEDERForVideoClassification(MultiMAEDERConfig(fusion_strategy="FSLF", **size)).train()
    reference = VideoMAEForVideoClassification(VideoMAEConfig(**size)).train()
    reference.load_state_dict(ours.state_dict())
    half = size["num_frames"] // 2
    shape = (batch, half, 3, size["image_size"], size["image_size"])
    video, audio = torch.randn(shape), torch.randn(shape)
    clip = torch.cat((audio, video), dim=1)
    labels = torch.randint(0, 8, (batch,))
    opt_ours = torch.optim.AdamW(ours.parameters(), lr=1e-4)
    opt_ref = torch.optim.AdamW(reference.parameters(), lr=1e-4)

    def step(model, optimizer, **inputs):
        optimizer.zero_grad(set_to_none=True)
        model(**inputs, labels=labels).loss.backward()
        optimizer.step()

    samples = interleaved_samples(
        {
            "multimae_der": lambda: step(ours, opt_ours, pixel_values=video, audio_values=audio),
            "videomae": lambda: step(reference, opt_ref, pixel_values=clip),
        },
        repeats=repeats,
    )
    times = {name: statistics.median(values) for name, values in samples.items()}
    ours.set_attn_implementation("eager")
    eager = time_interleaved(
        {"eager": lambda: step(ours, opt_ours, pixel_values=video, audio_values=audio)}, repeats=max(3, repeats // 2)
    )
    ours.set_attn_implementation("sdpa")
    inputs = dict(pixel_values=video, audio_values=audio, labels=labels)
    plain_bytes = saved_activation_bytes(ours, inputs)
    ours.activation_checkpointing_enable()
    checkpointed_bytes = saved_activation_bytes(ours, inputs)
    tokens = (size["num_frames"] // 2) * (size["image_size"] // 16) ** 2
    emit(
        {
            "benchmark": "fusion_overhead",
            "config": {**size, "batch": batch, "tokens": tokens},
            "train_step_s": times,
            "train_clips_per_s": {k: batch / v for k, v in times.items()},
            "fusion_overhead": paired_ratio(samples, "multimae_der", "videomae"),
            "fusion_overhead_ratio_of_medians": times["multimae_der"] / times["videomae"],
            "sdpa_vs_eager_speedup": eager["eager"] / times["multimae_der"],
            "activation_checkpointing_saved_bytes": {"plain": plain_bytes, "checkpointed": checkpointed_bytes},
            "activation_checkpointing_memory_ratio": checkpointed_bytes / plain_bytes,
        }
    )


if __name__ == "__main__":
    main()
