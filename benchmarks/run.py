"""Run every benchmark, write one results JSON, and print the headline ratios as the LAST line.

    python benchmarks/run.py --quick          # all of them at small sizes; writes benchmarks/results/quick-cpu.json
    python benchmarks/run.py --only preprocess fusion_overhead
    python benchmarks/run.py --only gpu       # on a CUDA machine: ViT-B / ViT-L bf16 throughput, MFU, data pipeline
    python benchmarks/make_table.py benchmarks/results/quick-cpu.json   # the README's table from that file

Each bench_<name>.py runs in its own process (clean memory, own thread settings) and prints its result as one JSON
line, last. A benchmark is recorded as skipped, with the reason, when its script does not exist, when it prints
``{"skipped": "<reason>"}`` (e.g. an optional package is missing), when it stops on a missing module, or (``gpu``)
where no CUDA device is visible; a failing one is recorded with its error. Neither stops the run.

The results file holds the command, the machine (CPU model, cores), the versions, start and end times, every
script's full JSON, and the summary: the headline ratios, their targets and whether each is met.
"""

from __future__ import annotations

import argparse
import datetime
import json
import os
import re
import subprocess
import sys
import time

import torch
from common import machine, versions


HERE = os.path.dirname(os.path.abspath(__file__))
# (script, ratios it provides: name in the summary -> key in the script's JSON)
BENCHMARKS = {
    "preprocess": (
        "bench_preprocess.py",
        {"preprocess_vs_decode": "preprocess_vs_decode", "preprocess_vs_original": "preprocess_vs_original"},
    ),
    "face_crop": (
        "bench_face_crop.py",
        {"face_crop_on_vs_decode": "face_crop_on_vs_decode", "face_crop_off_vs_decode": "face_crop_off_vs_decode"},
    ),
    "timeline": (
        "bench_timeline.py",
        {
            "timeline_vs_decode": "engine_vs_decode",
            "timeline_speedup_over_per_window": "engine_speedup_over_per_window",
        },
    ),
    "startup": (
        "bench_startup.py",
        {"startup_import_s": "import_s", "startup_help_s": "help_s", "startup_usage_error_s": "usage_error_s"},
    ),
    "fusion_overhead": ("bench_fusion_overhead.py", {"fusion_overhead": "fusion_overhead"}),
    "feature_cache": ("bench_feature_cache.py", {"feature_cache_speedup": "feature_cache_speedup"}),
    "dataloader": ("bench_dataloader.py", {}),
    "onnx": ("bench_onnx.py", {"onnxruntime_vs_torch_latency": "ratio_onnxruntime_over_torch"}),
    "pretrain": ("bench_pretrain.py", {}),
    "gpu": ("bench_gpu.py", {}),  # CUDA only: ViT-B/L bf16 throughput, MFU, whether the data pipeline keeps up
}
TARGETS = {
    "preprocess_vs_decode": ("<=", 1.0),
    "preprocess_vs_original": (">=", 10.0),
    "face_crop_on_vs_decode": ("<=", 1.5),
    "timeline_vs_decode": ("<=", 1.3),
    "startup_import_s": ("<=", 1.5),
    "startup_help_s": ("<=", 0.5),
    "startup_usage_error_s": ("<=", 0.5),
    "fusion_overhead": ("<=", 1.05),
    "feature_cache_speedup": (">=", 20.0),
}
_MISSING_MODULE = re.compile(r"^ModuleNotFoundError: No module named '([^']+)'", re.MULTILINE)


def default_output(quick: bool) -> str:
    device = "gpu" if torch.cuda.is_available() else "cpu"
    return os.path.join(HERE, "results", f"{'quick' if quick else 'full'}-{device}.json")


def run_one(name: str, quick: bool, timeout: float = 3600) -> dict:
    """One benchmark in its own process: its JSON result, or ``{"skipped": why}`` / ``{"error": ...}``."""
    script, _ = BENCHMARKS[name]
    path = os.path.join(HERE, script)
    if not os.path.exists(path):
        return {"skipped": f"benchmarks/{script} does not exist yet"}
    if name == "gpu" and not torch.cuda.is_available():
        return {"skipped": "no CUDA device visible (see bench_gpu.py --device cpu --quick to check the script)"}
    command = [sys.executable, path] + (["--quick"] if quick else [])
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "PYTHONPATH": HERE + os.pathsep + os.environ.get("PYTHONPATH", "")}
    start = time.perf_counter()
    try:
        done = subprocess.run(command, capture_output=True, text=True, env=env, timeout=timeout)
    except subprocess.TimeoutExpired:
        return {"error": f"timed out after {timeout:.0f} s", "returncode": None}
    lines = [line for line in done.stdout.splitlines() if line.strip()]
    missing = _MISSING_MODULE.search(done.stderr)
    if done.returncode != 0 and missing:
        return {"skipped": f"needs the {missing.group(1)!r} package, which is not installed"}
    if done.returncode != 0 or not lines:
        return {"error": (done.stderr or done.stdout)[-2000:], "returncode": done.returncode}
    try:
        result = json.loads(lines[-1])
    except json.JSONDecodeError:
        return {"error": f"last line is not JSON: {lines[-1][:200]}", "returncode": done.returncode}
    result["wall_s"] = time.perf_counter() - start
    return result


def summarise(results: dict) -> dict:
    """Headline ratios, targets and whether each is met; which benchmarks failed or were skipped."""
    summary = {}
    for name, result in results.items():
        for label, key in BENCHMARKS[name][1].items():
            if key in result:
                summary[label] = result[key]
    for size, figures in results.get("gpu", {}).get("models", {}).items():
        for phase in ("train", "inference"):
            summary[f"gpu_{size}_{phase}_clips_per_s"] = figures[phase]["clips_per_s"]
            summary[f"gpu_{size}_{phase}_mfu"] = figures[phase]["mfu"]
    summary["targets"] = {label: {"op": op, "bound": bound} for label, (op, bound) in TARGETS.items()}
    summary["targets_met"] = {
        label: (summary[label] <= bound if op == "<=" else summary[label] >= bound)
        for label, (op, bound) in TARGETS.items()
        if label in summary
    }
    summary["failed"] = sorted(name for name, result in results.items() if "error" in result)
    summary["skipped"] = {name: result["skipped"] for name, result in results.items() if "skipped" in result}
    return summary


def now() -> str:
    return datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--quick", action="store_true", help="small sizes, few repetitions")
    parser.add_argument("--only", nargs="*", choices=sorted(BENCHMARKS), help="run only these")
    parser.add_argument("--output", help="results JSON (default: benchmarks/results/<quick|full>-<cpu|gpu>.json)")
    parser.add_argument("--timeout", type=float, default=3600, help="seconds allowed to each benchmark")
    args = parser.parse_args()
    output = args.output or default_output(args.quick)

    started, results = now(), {}
    for name in args.only or BENCHMARKS:
        print(f"[benchmarks] {name} ...", file=sys.stderr, flush=True)
        results[name] = run_one(name, args.quick, args.timeout)
    summary = summarise(results)
    record = {
        "command": " ".join(["python", os.path.relpath(os.path.abspath(sys.argv[0]))] + sys.argv[1:]),
        "started_utc": started,
        "finished_utc": now(),
        "machine": machine(),
        "versions": versions(),
        "summary": summary,
        "results": results,
    }
    os.makedirs(os.path.dirname(os.path.abspath(output)), exist_ok=True)
    with open(output, "w") as handle:
        json.dump(record, handle, indent=2)
        handle.write("\n")
    print(json.dumps(summary))


if __name__ == "__main__":
    main()
