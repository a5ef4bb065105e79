"""Shared benchmark helpers: ABBA-interleaved timing after a warm-up, the bare-decode floor, peak process memory
measured in fresh processes, and the machine and versions recorded beside every figure.

These machines are noisy (other processes share the cores), so every figure reported as a ratio is measured side
by side in the same process, alternating the contenders, and summarised by the median of each contender's samples.
"""

from __future__ import annotations

import gc
import json
import os
import platform
import statistics
import subprocess
import sys
import time
from typing import Callable, Dict, List, Optional, Sequence

import torch


def interleaved_samples(
    contenders: Dict[str, Callable[[], object]],
    repeats: int,
    warmup: int = 1,
    clock: Callable[[], float] = time.perf_counter,
) -> Dict[str, List[float]]:
    """Seconds of every timed call of each contender: ``warmup`` untimed rounds, then ``repeats`` timed rounds.

    Rounds alternate the order of the contenders (ABBA: A B, B A, A B, ... ; with three, A B C, C B A, ...), so
    that neither always runs first or right after the other (caches, clock boosts, a neighbour's load).
    """
    names = list(contenders)
    for _ in range(warmup):
        for name in names:
            contenders[name]()
    samples: Dict[str, List[float]] = {name: [] for name in names}
    gc.collect()
    for index in range(repeats):
        for name in names if index % 2 == 0 else reversed(names):
            fn = contenders[name]
            start = clock()
            fn()
            samples[name].append(clock() - start)
    return samples


def compare(
    contenders: Dict[str, Callable[[], object]],
    repeats: int,
    warmup: int = 1,
    clock: Callable[[], float] = time.perf_counter,
) -> dict:
    """Time ``contenders`` interleaved (see :func:`interleaved_samples`) and summarise them for the JSON.

    Returns ``{"protocol", "warmup", "repeats", "median_s": {name: s}, "samples_s": {name: [s, ...]}}``. Ratios
    between contenders are ratios of these medians (:func:`ratio`).
    """
    samples = interleaved_samples(contenders, repeats, warmup, clock)
    return {
        "protocol": "ABBA-interleaved, median",
        "warmup": warmup,
        "repeats": repeats,
        "median_s": {name: statistics.median(values) for name, values in samples.items()},
        "samples_s": samples,
    }


def ratio(timing: dict, numerator: str, denominator: str) -> float:
    """Ratio of the median seconds of two contenders of one :func:`compare` result."""
    return timing["median_s"][numerator] / timing["median_s"][denominator]


def time_interleaved(contenders: Dict[str, Callable[[], object]], repeats: int, warmup: int = 1) -> Dict[str, float]:
    """Median seconds per call of each contender, measured as :func:`compare` does."""
    return compare(contenders, repeats, warmup)["median_s"]


def paired_ratio(samples: Dict[str, List[float]], numerator: str, denominator: str) -> float:
    """Median of the per-round ratios: each round's two timings ran back to back, so a slow spell of the
    machine (another process, a clock change) scales both and cancels, where a ratio of medians keeps it."""
    return statistics.median(a / b for a, b in zip(samples[numerator], samples[denominator]))


def bare_decode(path: str) -> Dict[str, int]:
    """Decode every video frame and every audio frame of the clip, and nothing more: the floor of any preprocessing.

    Uses PyAV (FFmpeg's libavcodec) on one thread (``thread_type="NONE"``, ``thread_count=1``), demuxing the file
    once and decoding both streams as their packets come. Frames are left in the codec's own layout (YUV planes for
    H.264, float planes for AAC): no colour conversion, no resampling, no copy into numpy or torch. torchcodec
    cannot be this floor: its ``VideoDecoder`` always converts the frames it returns to RGB.

    Returns the counts ``{"video_frames", "audio_frames", "audio_samples"}`` (per channel), so callers can check
    that the whole clip was decoded.
    """
    import av

    with av.open(path) as container:
        streams = [stream for stream in container.streams if stream.type in ("video", "audio")]
        for stream in streams:
            stream.codec_context.thread_type = "NONE"
            stream.codec_context.thread_count = 1
        counts = {"video_frames": 0, "audio_frames": 0, "audio_samples": 0}
        for frame in container.decode(*streams):
            if isinstance(frame, av.AudioFrame):
                counts["audio_frames"] += 1
                counts["audio_samples"] += frame.samples
            else:
                counts["video_frames"] += 1
    return counts


# ---------------------------------------------------------------------------------------------------------------
# Peak process memory. A process's peak resident set (VmHWM) never goes down, so the peak of one variant is only
# meaningful in a process that ran nothing else: each variant runs in a fresh Python process of its own.

PEAK_MEMORY_FLAG = "--peak_memory_of"


def peak_rss_mib() -> float:
    """Peak resident set size of this process so far (``VmHWM`` from /proc, else ``ru_maxrss``), in MiB."""
    try:
        with open("/proc/self/status") as handle:
            for line in handle:
                if line.startswith("VmHWM:"):
                    return int(line.split()[1]) / 1024
    except OSError:
        pass
    import resource

    scale = 1 if sys.platform == "darwin" else 1024  # bytes on macOS, KiB on Linux
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / scale / 1024


def report_peak_memory(run_variant: Callable[[], object], calls: int = 2) -> None:
    """In a child started by :func:`peak_memory_per_variant`: run one variant and print its memory as JSON.

    ``setup_peak_rss_mib`` is the process's peak after imports and setup (model, inputs, clip on disk), before the
    variant first ran; ``peak_rss_mib`` the peak after ``calls`` calls of it; ``variant_extra_mib`` the difference
    (zero when the variant never went above what setup had already touched).
    """
    setup = peak_rss_mib()
    for _ in range(calls):
        run_variant()
    peak = peak_rss_mib()
    print(json.dumps({"setup_peak_rss_mib": setup, "peak_rss_mib": peak, "variant_extra_mib": peak - setup}))


def peak_memory_per_variant(script: str, variants: Sequence[str], args: Sequence[str] = ()) -> Dict[str, dict]:
    """Peak process memory of each variant, each measured in a fresh process: ``python script *args
    --peak_memory_of <variant>``, which sets up as usual, then calls :func:`report_peak_memory`."""
    env = {
        **os.environ,
        "PYTHONPATH": os.path.dirname(os.path.abspath(__file__)) + os.pathsep + os.environ.get("PYTHONPATH", ""),
    }
    out = {}
    for variant in variants:
        done = subprocess.run(
            [sys.executable, script, *args, PEAK_MEMORY_FLAG, variant], capture_output=True, text=True, env=env
        )
        lines = [line for line in done.stdout.splitlines() if line.strip()]
        if done.returncode != 0 or not lines:
            out[variant] = {"error": (done.stderr or done.stdout)[-1000:]}
        else:
            out[variant] = json.loads(lines[-1])
    return out


# ---------------------------------------------------------------------------------------------------------------
# Where a figure was measured.

VERSIONED_PACKAGES = (
    "torch",
    "transformers",
    "torchcodec",
    "torchaudio",
    "torchvision",
    "datasets",
    "accelerate",
    "huggingface_hub",
    "numpy",
    "av",
    "matplotlib",
    "onnxruntime",
    "mmder_hf",
)


def cpu_model() -> str:
    """The CPU's model name (``/proc/cpuinfo``), else what ``platform`` knows."""
    try:
        with open("/proc/cpuinfo") as handle:
            for line in handle:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def versions(packages: Sequence[str] = VERSIONED_PACKAGES) -> Dict[str, Optional[str]]:
    """Python's version and each installed package's (``None`` when not installed)."""
    from importlib import metadata

    found: Dict[str, Optional[str]] = {"python": platform.python_version()}
    for name in packages:
        try:
            found[name] = metadata.version(name.replace("_", "-"))
        except metadata.PackageNotFoundError:
            found[name] = None
    return found


def machine() -> dict:
    """Where a figure was measured: recorded beside every number."""
    info = {
        "cpu": cpu_model(),
        "cpu_count": os.cpu_count(),
        "cpus_usable": len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count(),
        "torch_threads": torch.get_num_threads(),
        "platform": platform.platform(),
        "python": platform.python_version(),
        "torch": torch.__version__,
    }
    if torch.cuda.is_available():
        info["gpu"] = torch.cuda.get_device_name(0)
    return info


def peak_memory() -> dict:
    """Peak resident memory of this whole benchmark process (and peak CUDA memory when a GPU was used), in MiB."""
    peak = {"process_peak_rss_mib": peak_rss_mib()}
    if torch.cuda.is_available() and torch.cuda.max_memory_allocated():
        peak["cuda_peak_allocated_mib"] = torch.cuda.max_memory_allocated() / 2**20
    return peak


def emit(result: dict, output: Optional[str] = None) -> None:
    """Print the result as ONE JSON line, last, so that run.py can collect it (and write it to ``output``)."""
    result.setdefault("machine", machine())
    result.setdefault("versions", versions())
    result.setdefault("peak_memory", peak_memory())
    script = os.path.relpath(sys.argv[0]) if sys.argv[0] else ""
    result.setdefault("command", " ".join(["python", script] + sys.argv[1:]))
    print(json.dumps(result))
    if output:
        os.makedirs(os.path.dirname(os.path.abspath(output)), exist_ok=True)
        with open(output, "w") as f:
            json.dump(result, f, indent=1)
            f.write("\n")
