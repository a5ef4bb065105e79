"""Shared timing helpers: medians of repeated, interleaved measurements after a warm-up.

These machines are noisy, so every figure a benchmark reports as a ratio is measured side by side in the same
process, alternating the contenders, and summarised by the median.
"""

from __future__ import annotations

import gc
import json
import os
import platform
import statistics
import sys
import time
from typing import Callable, Dict, List

import torch


def time_interleaved(contenders: Dict[str, Callable[[], object]], repeats: int, warmup: int = 1) -> Dict[str, float]:
    """Median seconds per call of each contender, alternating them (ABBA) so that drift hits all alike."""
    samples = interleaved_samples(contenders, repeats, warmup)
    return {name: statistics.median(values) for name, values in samples.items()}


def paired_ratio(samples: Dict[str, List[float]], numerator: str, denominator: str) -> float:
    """Median of the per-round ratios: each round's two timings ran back to back, so a slow spell of the
    machine (another process, a clock change) scales both and cancels, where a ratio of medians keeps it."""
    return statistics.median(a / b for a, b in zip(samples[numerator], samples[denominator]))


def interleaved_samples(
    contenders: Dict[str, Callable[[], object]], repeats: int, warmup: int = 1
) -> Dict[str, List[float]]:
    """Seconds of every call of each contender, ``repeats`` rounds in ABBA order after ``warmup`` rounds."""
    for _ in range(warmup):
        for fn in contenders.values():
            fn()
    samples = {name: [] for name in contenders}
    names = list(contenders)
    gc.collect()
    for index in range(repeats):
        # ABBA order: a contender is not always the one that runs right after the other (caches, clocks).
        for name in names if index % 2 == 0 else reversed(names):
            fn = contenders[name]
            start = time.perf_counter()
            fn()
            samples[name].append(time.perf_counter() - start)
    return samples


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


def machine() -> dict:
    """Where a figure was measured: recorded beside every number."""
    info = {
        "python": platform.python_version(),
        "torch": torch.__version__,
        "cpu": platform.processor() or platform.machine(),
        "cpu_count": os.cpu_count(),
        "torch_threads": torch.get_num_threads(),
    }
    if torch.cuda.is_available():
        info["gpu"] = torch.cuda.get_device_name(0)
    return info


def peak_memory() -> dict:
    """Peak resident memory of this benchmark process (and peak CUDA memory when a GPU was used), in MiB."""
    import resource

    peak = {"process_peak_rss_mib": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024}
    if torch.cuda.is_available() and torch.cuda.max_memory_allocated():
        peak["cuda_peak_allocated_mib"] = torch.cuda.max_memory_allocated() / 2**20
    return peak


def emit(result: dict) -> None:
    """Print the result as ONE JSON line, last, so that run.py can collect it."""
    result.setdefault("machine", machine())
    result.setdefault("peak_memory", peak_memory())
    script = os.path.relpath(sys.argv[0]) if sys.argv[0] else ""
    result.setdefault("command", " ".join(["python", script] + sys.argv[1:]))
    print(json.dumps(result))
