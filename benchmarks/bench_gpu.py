"""Accelerator throughput: ViT-B and ViT-L MultiMAE-DER (16 frames x 224 x 224) in bf16 with sdpa attention.

    python benchmarks/bench_gpu.py                          # on the CUDA device, ViT-B and ViT-L
    python benchmarks/bench_gpu.py --peak_tflops 989        # a GPU missing from PEAK_BF16_TFLOPS
    python benchmarks/bench_gpu.py --device cpu --quick     # a tiny model on CPU: checks the script itself
    python benchmarks/bench_gpu.py --device cpu --sizes vit-l --dtype float32 --batch 1   # ViT-L on a CPU

For each size it reports, for a training step (AdamW, bf16 autocast over fp32 master weights, as Trainer's
``bf16=True`` does) and for inference (bf16 weights, ``torch.inference_mode``); ``--dtype float32`` runs both in
float32 instead, for CPUs without fast bf16 matrix multiplies:
- clips/s (median over timed repetitions after a warm-up) and peak accelerator memory;
- model FLOPs per clip, from the architecture (``model_flops_per_clip``, checked against torch's FlopCounterMode
  in the tests), and MFU: achieved model FLOP/s over the device's dense bf16 peak.

Then whether the data pipeline keeps up: the processor's clips/s on ONE CPU core (a 3.7 s 720p clip with
audio, decoded and turned into model inputs on the fly) and the preprocess-once cache's clips/s on one core,
each turned into the CPU cores needed to feed the training and inference rates measured above.
"""

from __future__ import annotations

import argparse
import os
import statistics
import tempfile
import time
from typing import Callable, Optional

import torch
from common import emit

from mmder_hf import MultiMAEDERConfig, MultiMAEDERForVideoClassification


# ViT sizes of the VideoMAE checkpoints the paper starts from (16 frames, tubelet 2, patch 16 -> 1568 tokens).
SIZES = {
    "vit-b": dict(hidden_size=768, num_hidden_layers=12, num_attention_heads=12, intermediate_size=3072),
    "vit-l": dict(hidden_size=1024, num_hidden_layers=24, num_attention_heads=16, intermediate_size=4096),
    # a few layers at small sizes, for checking the script on CPU
    "tiny": dict(hidden_size=96, num_hidden_layers=2, num_attention_heads=2, intermediate_size=384),
}
# Dense (no sparsity) bf16 tensor-core peaks from the vendors' data sheets, TFLOP/s, matched by device name.
PEAK_BF16_TFLOPS = {"H200": 989.4, "H100 NVL": 835.0, "H100 PCIe": 756.0, "H100": 989.4, "A100": 312.0}


def peak_tflops_for(device_name: str) -> Optional[float]:
    """The data-sheet dense bf16 peak for a device name (first matching key), or None when unknown."""
    for key, value in PEAK_BF16_TFLOPS.items():
        if key.lower() in device_name.lower():
            return value
    return None


def model_flops_per_clip(config: MultiMAEDERConfig, training: bool) -> float:
    """Matrix-multiply FLOPs of one clip through the encoder and head (2 per multiply-add).

    Training counts the backward pass as twice the forward (gradients with respect to activations and to
    weights), except for the patch embedding, whose input (the pixels) needs no gradient. Elementwise work
    (norms, GELU, softmax) is left out, as MFU conventionally does.
    """
    h, i, layers = config.hidden_size, config.intermediate_size, config.num_hidden_layers
    tokens = (config.num_frames // config.tubelet_size) * (config.image_size // config.patch_size) ** 2
    patch_embed = 2 * tokens * h * (config.num_channels * config.tubelet_size * config.patch_size**2)
    per_layer = 2 * tokens * (4 * h * h + 2 * h * i) + 2 * 2 * tokens * tokens * h  # projections, MLP, QK^T and AV
    head = 2 * h * config.num_labels
    forward = patch_embed + layers * per_layer + head
    return float(3 * forward - patch_embed if training else forward)


def synchronize(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def median_seconds(fn: Callable[[], object], device: torch.device, repeats: int, warmup: int) -> float:
    """Median wall time of ``fn`` with the device drained before and after each call."""
    for _ in range(warmup):
        fn()
    synchronize(device)
    samples = []
    for _ in range(repeats):
        start = time.perf_counter()
        fn()
        synchronize(device)
        samples.append(time.perf_counter() - start)
    return statistics.median(samples)


def reset_peak(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.empty_cache()
        torch.cuda.reset_peak_memory_stats(device)


def peak_mib(device: torch.device) -> Optional[float]:
    """Peak accelerator memory since the last reset (None on CPU, where no per-phase counter exists)."""
    return torch.cuda.max_memory_allocated(device) / 2**20 if device.type == "cuda" else None


def bench_size(
    name: str,
    device: torch.device,
    batch: int,
    repeats: int,
    warmup: int,
    image_size: int,
    peak: Optional[float],
    dtype: torch.dtype = torch.bfloat16,
) -> dict:
    """Training and inference clips/s, peak memory and MFU of one model size (``dtype``: bf16 autocast or fp32)."""
    torch.manual_seed(0)
    config = MultiMAEDERConfig(
        fusion_strategy="FSLF",
        num_frames=16,
        image_size=image_size,
        num_labels=8,
        attn_implementation="sdpa",
        **SIZES[name],
    )
    half = config.num_frames // 2
    shape = (batch, half, 3, image_size, image_size)
    video = torch.randn(shape, device=device)
    audio = torch.randn(shape, device=device)
    labels = torch.randint(0, config.num_labels, (batch,), device=device)
    result = {
        "config": {
            **SIZES[name],
            "num_frames": 16,
            "image_size": image_size,
            "batch": batch,
            "tokens": (16 // config.tubelet_size) * (image_size // config.patch_size) ** 2,
        }
    }

    # Training: fp32 master weights, bf16 autocast (unless float32), fused AdamW where the device has it.
    model = MultiMAEDERForVideoClassification(config).to(device).train()
    optimizer = torch.optim.AdamW(model.parameters(), lr=1e-4, fused=device.type == "cuda")

    def train_step():
        optimizer.zero_grad(set_to_none=True)
        with torch.autocast(device.type, dtype=torch.bfloat16, enabled=dtype == torch.bfloat16):
            loss = model(pixel_values=video, audio_values=audio, labels=labels).loss
        loss.backward()
        optimizer.step()

    reset_peak(device)
    train_s = median_seconds(train_step, device, repeats, warmup)
    train_peak = peak_mib(device)
    optimizer = None  # free the optimizer state before measuring inference memory
    model.zero_grad(set_to_none=True)  # free the gradients before measuring inference memory

    # Inference: weights and inputs in ``dtype``.
    model = model.eval().to(dtype)
    video, audio = video.to(dtype), audio.to(dtype)

    @torch.inference_mode()
    def infer():
        logits = model(pixel_values=video, audio_values=audio).logits
        result["config"]["inference_dtype"] = str(logits.dtype).removeprefix("torch.")  # what the timed calls ran in
        return logits

    reset_peak(device)
    infer_s = median_seconds(infer, device, repeats, warmup)
    infer_peak = peak_mib(device)
    model = None

    flops = {"train": model_flops_per_clip(config, True), "inference": model_flops_per_clip(config, False)}
    for phase, seconds, peak_memory in (("train", train_s, train_peak), ("inference", infer_s, infer_peak)):
        achieved = flops[phase] * batch / seconds
        result[phase] = {
            "step_s": seconds,
            "clips_per_s": batch / seconds,
            "peak_memory_mib": peak_memory,
            "model_tflops_per_clip": flops[phase] / 1e12,
            "achieved_tflops": achieved / 1e12,
            "mfu": achieved / (peak * 1e12) if peak else None,
        }
    return result


def pipeline_rates(quick: bool, image_size: int) -> dict:
    """Clips/s on one CPU core: on-the-fly preprocessing of a 720p clip, and reads from the Arrow cache."""
    import datasets
    from bench_preprocess import make_clip
    from torch.utils.data import DataLoader

    from mmder_hf import MultiMAEDERDataCollator, MultiMAEDERProcessor, preprocess_to_cache

    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        with tempfile.TemporaryDirectory() as tmp:
            path = make_clip(os.path.join(tmp, "clip_720p.mp4"))
            processor = MultiMAEDERProcessor(num_frames=16, image_size=image_size)
            decode_s = median_seconds(
                lambda: processor(videos=path, return_tensors="pt"),
                torch.device("cpu"),
                repeats=3 if quick else 9,
                warmup=1,
            )
            rows = 16 if quick else 64
            raw = datasets.DatasetDict(
                {"train": datasets.Dataset.from_dict({"video": [path] * rows, "emotion": [0] * rows})}
            )
            cached = preprocess_to_cache(raw, processor, os.path.join(tmp, "cache"))["train"]
            # the collator stacks the cached 8-bit clips and rescales / normalises them, as in training
            loader = DataLoader(cached, batch_size=8, collate_fn=MultiMAEDERDataCollator(processor))

            def read_all():
                for batch in loader:
                    assert batch["pixel_values"].shape[1:] == (8, 3, image_size, image_size)

            cache_s = median_seconds(read_all, torch.device("cpu"), repeats=3, warmup=1)
    finally:
        torch.set_num_threads(threads)
    return {"on_the_fly_720p": 1.0 / decode_s, "preprocessed_cache": rows / cache_s}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--device", default="cuda", help="cuda (default), cuda:1, or cpu to check the script")
    parser.add_argument(
        "--sizes", nargs="*", choices=sorted(SIZES), help="default: vit-b vit-l (tiny with --quick on CPU)"
    )
    parser.add_argument("--batch", type=int, help="clips per step (default: 32 for vit-b, 16 for vit-l, 2 on CPU)")
    parser.add_argument("--repeats", type=int, default=None, help="timed steps per phase (default 20, 3 with --quick)")
    parser.add_argument(
        "--peak_tflops", type=float, help="dense bf16 peak of the device, TFLOP/s (overrides the table)"
    )
    parser.add_argument("--quick", action="store_true", help="few repetitions; on CPU a tiny model at 32 x 32")
    parser.add_argument(
        "--dtype", choices=("bfloat16", "float32"), default="bfloat16", help="bf16 autocast (default) or float32"
    )
    args = parser.parse_args()

    device = torch.device(args.device)
    on_cpu = device.type == "cpu"
    if device.type == "cuda" and not torch.cuda.is_available():
        parser.error("--device cuda: no CUDA device is visible (pass --device cpu to check the script on CPU)")
    sizes = args.sizes or (["tiny"] if on_cpu and args.quick else ["vit-b", "vit-l"])
    image_size = 32 if on_cpu and args.quick else 224
    repeats = args.repeats or (3 if args.quick else 20)
    device_name = torch.cuda.get_device_name(device) if device.type == "cuda" else "cpu"
    peak = args.peak_tflops or (peak_tflops_for(device_name) if device.type == "cuda" else None)
    if device.type == "cuda":
        torch.backends.cuda.matmul.allow_tf32 = True
        torch.backends.cudnn.allow_tf32 = True

    models = {}
    for name in sizes:
        batch = args.batch or (2 if on_cpu else (32 if name != "vit-l" else 16))
        models[name] = bench_size(
            name,
            device,
            batch,
            repeats,
            warmup=1 if args.quick else 5,
            image_size=image_size,
            peak=peak,
            dtype=getattr(torch, args.dtype),
        )

    per_core = pipeline_rates(args.quick, image_size)
    cores = os.cpu_count() or 1
    keeps_up = {}
    for name, result in models.items():
        for phase in ("train", "inference"):
            demand = result[phase]["clips_per_s"]
            keeps_up[f"{name}_{phase}"] = {
                "gpu_clips_per_s": demand,
                **{f"cores_needed_{source}": demand / rate for source, rate in per_core.items()},
                **{f"keeps_up_{source}": rate * cores >= demand for source, rate in per_core.items()},
            }
    emit(
        {
            "benchmark": "gpu",
            "device": device_name,
            "dtype": args.dtype,
            "attention": "sdpa",
            "peak_bf16_tflops": peak,
            "models": models,
            "pipeline_clips_per_s_per_core": per_core,
            "cpu_cores": cores,
            "pipeline_keeps_up": keeps_up,
        }
    )


if __name__ == "__main__":
    main()
