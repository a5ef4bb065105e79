"""Run every benchmark and print one JSON object, as the LAST line, with the headline ratios.

    python benchmarks/run.py --quick          # all of them at small sizes (~15 min on 2 CPU cores)
    python benchmarks/run.py --only preprocess fusion_overhead
    python benchmarks/run.py --only gpu       # on a CUDA machine: ViT-B / ViT-L bf16 throughput, MFU, data pipeline

The ``gpu`` benchmark runs only where a CUDA device is visible; elsewhere it is recorded as skipped.

Each bench_<name>.py runs in its own process (clean memory, own thread settings) and prints its result as its
last line; the full results are also written to benchmarks/results.json (or --output).
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time

import torch


HERE = os.path.dirname(os.path.abspath(__file__))
# (script, ratios it provides: name in the summary -> key in the script's JSON)
BENCHMARKS = {
    "preprocess": (
        "bench_preprocess.py",
        {"preprocess_vs_decode": "preprocess_vs_decode", "preprocess_vs_original": "preprocess_vs_original"},
    ),
    "fusion_overhead": ("bench_fusion_overhead.py", {"fusion_overhead": "fusion_overhead"}),
    "feature_cache": ("bench_feature_cache.py", {"feature_cache_speedup": "feature_cache_speedup"}),
    "dataloader": ("bench_dataloader.py", {}),
    "onnx": ("bench_onnx.py", {"onnxruntime_vs_torch_latency": "ratio_onnxruntime_over_torch"}),
    "gpu": ("bench_gpu.py", {}),  # CUDA only: ViT-B/L bf16 throughput, MFU, whether the data pipeline keeps up
}
TARGETS = {
    "preprocess_vs_decode": ("<=", 1.5),
    "preprocess_vs_original": (">=", 10.0),
    "fusion_overhead": ("<=", 1.05),
    "feature_cache_speedup": (">=", 20.0),
}


def run_one(name: str, quick: bool) -> dict:
    script, _ = BENCHMARKS[name]
    if name == "gpu" and not torch.cuda.is_available():
        return {"skipped": "no CUDA device visible (see bench_gpu.py --device cpu --quick to check the script)"}
    command = [sys.executable, os.path.join(HERE, script)] + (["--quick"] if quick else [])
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "PYTHONPATH": HERE + os.pathsep + os.environ.get("PYTHONPATH", "")}
    start = time.perf_counter()
    done = subprocess.run(command, capture_output=True, text=True, env=env)
    lines = [line for line in done.stdout.splitlines() if line.strip()]
    if done.returncode != 0 or not lines:
        return {"error": (done.stderr or done.stdout)[-2000:], "returncode": done.returncode}
    result = json.loads(lines[-1])
    result["wall_s"] = time.perf_counter() - start
    return result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--quick", action="store_true", help="small sizes, few repetitions")
    parser.add_argument("--only", nargs="*", choices=sorted(BENCHMARKS), help="run only these")
    parser.add_argument("--output", default=os.path.join(HERE, "results.json"))
    args = parser.parse_args()

    results, summary = {}, {}
    for name in args.only or BENCHMARKS:
        print(f"[benchmarks] {name} ...", file=sys.stderr, flush=True)
        results[name] = run_one(name, args.quick)
        for label, key in BENCHMARKS[name][1].items():
            if key in results[name]:
                summary[label] = results[name][key]
    for size, figures in results.get("gpu", {}).get("models", {}).items():
        for phase in ("train", "inference"):
            summary[f"gpu_{size}_{phase}_clips_per_s"] = figures[phase]["clips_per_s"]
            summary[f"gpu_{size}_{phase}_mfu"] = figures[phase]["mfu"]
    summary["targets_met"] = {
        label: (summary[label] <= bound if op == "<=" else summary[label] >= bound)
        for label, (op, bound) in TARGETS.items()
        if label in summary
    }
    summary["failed"] = sorted(name for name, result in results.items() if "error" in result)
    with open(args.output, "w") as handle:
        json.dump({"summary": summary, "results": results}, handle, indent=2)
    print(json.dumps(summary))


if __name__ == "__main__":
    main()
