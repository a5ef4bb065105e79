"""CPU latency of a MultiMAE-DER classifier: onnxruntime vs torch (eager, no_grad), same inputs, same threads.

Builds a randomly initialised model of the chosen size (the architecture, not the weights, sets the cost), exports it
with ``mmder_hf.onnx_export.export_onnx``, checks that the logits agree, then times both back-to-back, alternating
them (ABBA), and reports medians after warm-up as one JSON line:

    python benchmarks/bench_onnx.py [--quick] --size small --batch-size 1 --threads 2 --repeats 10

Sizes (16-frame fused clips): ``tiny`` (test config, 32 px), ``small`` (ViT-S/16, 160 px: MAE-DFER's input),
``base`` (ViT-B/16, 224 px), ``large`` (ViT-L/16, 224 px: the paper's backbone; slow to export).
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import time

import numpy as np
import torch
from common import compare, machine, versions


SIZES = {
    "tiny": dict(
        image_size=32, hidden_size=32, num_hidden_layers=2, num_attention_heads=2, intermediate_size=64, num_frames=4
    ),
    "small": dict(
        image_size=160,
        hidden_size=384,
        num_hidden_layers=12,
        num_attention_heads=6,
        intermediate_size=1536,
        num_frames=16,
    ),
    "base": dict(
        image_size=224,
        hidden_size=768,
        num_hidden_layers=12,
        num_attention_heads=12,
        intermediate_size=3072,
        num_frames=16,
    ),
    "large": dict(
        image_size=224,
        hidden_size=1024,
        num_hidden_layers=24,
        num_attention_heads=16,
        intermediate_size=4096,
        num_frames=16,
    ),
}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--quick", action="store_true", help="the small size with 6 repetitions (used by run.py)")
    parser.add_argument("--size", choices=sorted(SIZES), default="small")
    parser.add_argument("--strategy", default="FSLF")
    parser.add_argument("--batch-size", type=int, default=1)
    parser.add_argument(
        "--threads", type=int, default=2, help="torch intra-op threads and onnxruntime intra_op_num_threads"
    )
    parser.add_argument("--repeats", type=int, default=10)
    parser.add_argument("--warmup", type=int, default=2)
    args = parser.parse_args()
    if args.quick:
        args.size, args.repeats = "small", 6
    try:
        import onnxruntime  # noqa: F401
    except ImportError:  # run.py records the benchmark as skipped, with this reason
        print(json.dumps({"benchmark": "onnx_vs_torch_cpu_latency", "skipped": "onnxruntime is not installed"}))
        return

    from mmder_hf import MultiMAEDERConfig, MultiMAEDERForVideoClassification
    from mmder_hf.onnx_export import OnnxClassifier, export_onnx

    torch.set_num_threads(args.threads)
    torch.manual_seed(0)
    config = MultiMAEDERConfig(fusion_strategy=args.strategy, patch_size=16, num_labels=7, **SIZES[args.size])
    model = MultiMAEDERForVideoClassification(config).eval()
    size = (3, config.image_size, config.image_size)
    inputs = {}
    if config.num_video_frames:
        inputs["pixel_values"] = torch.randn(args.batch_size, config.num_video_frames, *size)
    if config.num_audio_frames:
        inputs["audio_values"] = torch.randn(args.batch_size, config.num_audio_frames, *size)

    with tempfile.TemporaryDirectory() as tmp:
        path = os.path.join(tmp, "model.onnx")
        start = time.perf_counter()
        export_onnx(model, path)
        export_seconds = time.perf_counter() - start
        runner = OnnxClassifier(path, intra_op_num_threads=args.threads)
        feeds = {k: v.numpy() for k, v in inputs.items()}

        def run_torch():
            with torch.no_grad():
                return model(**inputs).logits

        def run_ort():
            return runner(**feeds)

        max_diff = float(np.abs(run_ort() - run_torch().numpy()).max())
        timing = compare({"torch": run_torch, "onnxruntime": run_ort}, args.repeats, args.warmup)
        medians = timing["median_s"]

    result = {
        "benchmark": "onnx_vs_torch_cpu_latency",
        "size": args.size,
        "strategy": config.fusion_strategy,
        "batch_size": args.batch_size,
        "tokens": (config.num_frames // 2) * (config.image_size // 16) ** 2,
        "threads": args.threads,
        "repeats": args.repeats,
        "warmup": args.warmup,
        "torch_median_s": round(medians["torch"], 5),
        "onnxruntime_median_s": round(medians["onnxruntime"], 5),
        "ratio_onnxruntime_over_torch": round(medians["onnxruntime"] / medians["torch"], 3),
        "max_abs_logit_diff": max_diff,
        "export_s": round(export_seconds, 1),
        "timing": timing,
        "machine": machine(),
        "versions": versions(),
        "command": " ".join(["python", os.path.relpath(sys.argv[0])] + sys.argv[1:]),
    }
    print(json.dumps(result))


if __name__ == "__main__":
    main()
