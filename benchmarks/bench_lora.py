"""LoRA (``finetune.py --lora_r``) vs full fine-tuning: trainable parameters, training step time and peak memory.

    python benchmarks/bench_lora.py                      # ViT-S-like encoder, 112 px, on the CPU
    python benchmarks/bench_lora.py --size vit-b --device cuda --image_size 224 --batch 8
    python benchmarks/bench_lora.py --quick              # tiny model: checks the script itself

Both variants start from copies of one model and take the same training step on the same random clips (forward,
cross-entropy, backward, AdamW): "full" trains every weight, "lora" trains rank-r adapters on the encoder's query
and value (``mmder_hf.training.lora.apply_lora``, as ``finetune.py`` does) and the head. Step times: one untimed
warm-up step each, then the two alternate (ABBA), and the ratio is that of their medians. Peak memory is measured per
variant in a fresh process: the growth of the peak RSS over its setup on the CPU, ``torch.cuda.max_memory_allocated``
on a GPU. ``--output`` also writes the JSON to a file.
"""

from __future__ import annotations

import argparse
import copy
import datetime
import json
import sys

import torch
from common import PEAK_MEMORY_FLAG, compare, emit, peak_memory_per_variant, peak_rss_mib, ratio

from mmder_hf import MultiMAEDERConfig, MultiMAEDERForVideoClassification
from mmder_hf.training.lora import LoraArguments, apply_lora, count_parameters


SIZES = {
    "tiny": dict(hidden_size=32, num_hidden_layers=2, num_attention_heads=2, intermediate_size=64),
    "vit-s": dict(hidden_size=384, num_hidden_layers=12, num_attention_heads=6, intermediate_size=1536),
    "vit-b": dict(hidden_size=768, num_hidden_layers=12, num_attention_heads=12, intermediate_size=3072),
}


def build(args: argparse.Namespace, variant: str) -> tuple[torch.nn.Module, torch.optim.Optimizer]:
    """The variant's model (on ``--device``, training mode) and its AdamW over the trainable parameters."""
    torch.manual_seed(0)
    config = MultiMAEDERConfig(
        **SIZES[args.size], image_size=args.image_size, patch_size=16, num_frames=8, num_labels=8
    )
    model = MultiMAEDERForVideoClassification(config)
    if variant == "lora":
        model = apply_lora(model, LoraArguments(lora_r=args.lora_r, lora_dropout=0.1))
    model = model.to(args.device).train()
    optimizer = torch.optim.AdamW([p for p in model.parameters() if p.requires_grad], lr=1e-4, weight_decay=0.05)
    return model, optimizer


def make_step(model: torch.nn.Module, optimizer: torch.optim.Optimizer, batch: dict, device: str):
    """One training step, synchronised on a GPU so that its time is the step's."""

    def step() -> None:
        optimizer.zero_grad(set_to_none=True)
        model(**batch).loss.backward()
        optimizer.step()
        if device.startswith("cuda"):
            torch.cuda.synchronize()

    return step


def inputs(args: argparse.Namespace) -> dict:
    torch.manual_seed(1)
    shape = (args.batch, 4, 3, args.image_size, args.image_size)  # 4 face frames + 4 audio pictures (FSLF)
    batch = {"pixel_values": torch.randn(shape), "audio_values": torch.randn(shape)}
    batch["labels"] = torch.arange(args.batch) % 8
    return {k: v.to(args.device) for k, v in batch.items()}


def child_memory(args: argparse.Namespace) -> None:
    """In a fresh process: one variant's peak memory over two steps, beyond what its setup touched (one JSON line)."""
    model, optimizer = build(args, args.peak_memory_of)
    step = make_step(model, optimizer, inputs(args), args.device)
    cuda = args.device.startswith("cuda")
    if cuda:
        torch.cuda.reset_peak_memory_stats()
        setup = torch.cuda.max_memory_allocated() / 2**20
    else:
        setup = peak_rss_mib()
    for _ in range(2):
        step()
    peak = torch.cuda.max_memory_allocated() / 2**20 if cuda else peak_rss_mib()
    kind = "cuda_max_allocated_mib" if cuda else "peak_rss_mib"
    print(json.dumps({"measure": kind, f"setup_{kind}": setup, kind: peak, "training_extra_mib": peak - setup}))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--size", choices=list(SIZES), default="vit-s")
    parser.add_argument("--image_size", type=int, default=112)
    parser.add_argument("--batch", type=int, default=4)
    parser.add_argument("--lora_r", type=int, default=8)
    parser.add_argument("--repeats", type=int, default=6, help="timed steps of each variant (after one warm-up)")
    parser.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    parser.add_argument("--threads", type=int, default=1, help="CPU threads (both variants)")
    parser.add_argument("--quick", action="store_true", help="tiny model, 32 px: checks the script")
    parser.add_argument("--output", help="also write the JSON here")
    parser.add_argument(PEAK_MEMORY_FLAG, choices=("full", "lora"), help="(internal) one variant's memory")
    args = parser.parse_args()
    if args.quick:
        args.size, args.image_size, args.batch, args.repeats = "tiny", 32, 2, 2
    torch.set_num_threads(args.threads)
    if args.peak_memory_of:
        child_memory(args)
        return
    started = datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds")
    batch = inputs(args)
    parameters, steps = {}, {}
    for variant in ("full", "lora"):
        model, optimizer = build(args, variant)
        trainable, total = count_parameters(model)
        parameters[variant] = {"trainable": trainable, "total": total, "trainable_share": trainable / total}
        steps[variant] = make_step(model, optimizer, copy.copy(batch), args.device)
    timing = compare(steps, args.repeats)
    passed = [a for a in sys.argv[1:] if a != "--output" and not (args.output and a == args.output)]
    memory = peak_memory_per_variant(__file__, ("full", "lora"), passed)
    extra = {v: memory[v].get("training_extra_mib") for v in memory}
    result = {
        "benchmark": "lora",
        "config": {**SIZES[args.size], "size": args.size, "image_size": args.image_size, "patch_size": 16},
        "tokens_per_clip": 8 // 2 * (args.image_size // 16) ** 2,
        "batch": args.batch,
        "lora": {
            "r": args.lora_r,
            "alpha": 2 * args.lora_r,
            "targets": ["query", "value"],
            "head": "fc_norm+classifier",
        },
        "device": args.device,
        "threads": args.threads,
        "parameters": parameters,
        "trainable_full_over_lora": parameters["full"]["trainable"] / parameters["lora"]["trainable"],
        "timing": timing,
        "median_s": timing["median_s"],  # seconds per training step
        "step_time_lora_over_full": ratio(timing, "lora", "full"),
        "peak_memory_per_variant": memory,
        "training_memory_lora_over_full": (
            extra["lora"] / extra["full"] if extra.get("full") and extra.get("lora") is not None else None
        ),
        "started_utc": started,
        "finished_utc": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
    }
    emit(result, args.output)


if __name__ == "__main__":
    main()
