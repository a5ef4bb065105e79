"""Timeline preprocessing: the one-pass window engine vs a bare decode of the video, and vs decoding each window on
its own.

    python benchmarks/bench_timeline.py [--quick] [--minutes 1 10] [--output benchmarks/results/timeline-cpu.json]

Writes 1280x720 30 fps H.264 videos (High profile, a keyframe every 2 s, as a phone records) with 48 kHz stereo AAC,
of each length given (1 and 10 minutes; ``--quick``: 1 minute only, fewer rounds), then times on one thread
(torch, FFmpeg), after a warm-up, interleaved (ABBA), medians:

- ``bare_decode``: every video frame and every audio frame decoded, nothing else (``common.bare_decode``: PyAV, no
  colour conversion, no resampling): the floor of any preprocessing that reads the whole video;
- ``engine``: the model inputs of every timeline window (3 s every 1 s, FSLF: 8 frames + 8 MFCC images at 224 px),
  as ``mmder timeline`` makes them, through ``streaming.StreamingWindows`` (the video decoded once, in order);
- ``per_window`` (1 minute only; it is several times slower): the same inputs made window by window from seeking
  decoders, as the pipeline did before the engine (``processor(videos=decoder, audio=decoder, clip_start=...,
  clip_end=...)``).

Both make the inputs only (no model): the model's time is the same either way. Peak process memory of each variant
is measured in a fresh process per variant and length (``--peak_memory_of``), to show that the engine's memory does
not grow with the video's length.
"""

from __future__ import annotations

import argparse
import os
import tempfile
from fractions import Fraction

import numpy as np
import torch
from common import PEAK_MEMORY_FLAG, bare_decode, compare, emit, peak_memory_per_variant, ratio, report_peak_memory

from mmder_hf import MultiMAEDERProcessor
from mmder_hf.models.multimae_der.media import open_audio_decoder, open_video_decoder, stream_span
from mmder_hf.models.multimae_der.pipeline import sliding_windows
from mmder_hf.models.multimae_der.streaming import StreamingWindows


VIDEO = {
    "size": "1280x720",
    "fps": 30,
    "video": "H.264 High (libx264 veryfast, crf 23), keyframe every 2 s",
    "audio": "48 kHz stereo AAC",
}
WINDOW, STRIDE = 3.0, 1.0
VARIANTS = ("bare_decode", "engine", "per_window")


def make_video(path: str, seconds: float, fps: int = 30, size=(720, 1280), sample_rate: int = 48000) -> str:
    """A textured scene sliding sideways under a little sensor noise, with a two-tone stereo track: written frame by
    frame through PyAV (FFmpeg), so that a 10-minute video never sits in memory."""
    import av

    height, width = size
    rng = np.random.default_rng(0)
    ys, xs = np.mgrid[0:height, 0:width].astype(np.float32)
    scene = np.stack([90 + 60 * xs / width, 110 + 40 * ys / height, 140 - 50 * xs / width], axis=-1)
    blocks = rng.integers(0, 255, (height // 16, width // 16, 3)).repeat(16, 0).repeat(16, 1)
    base = (0.5 * scene + 0.5 * blocks).astype(np.float32)
    frames_bank = [(base + rng.normal(0, 3, (height, width, 1))).clip(0, 255).astype(np.uint8) for _ in range(4)]
    with av.open(path, mode="w") as container:
        video = container.add_stream("libx264", rate=Fraction(fps))
        video.width, video.height, video.pix_fmt = width, height, "yuv420p"
        video.codec_context.gop_size = 2 * fps
        video.options = {"crf": "23", "preset": "veryfast", "profile": "high"}
        audio = container.add_stream("aac", rate=sample_rate, layout="stereo")
        written, chunk = 0, 1024
        for index in range(int(seconds * fps)):
            image = np.roll(frames_bank[index % len(frames_bank)], 4 * index, axis=1)
            for packet in video.encode(av.VideoFrame.from_ndarray(image, format="rgb24")):
                container.mux(packet)
            while written < (index + 1) * sample_rate / fps:  # the audio keeps up with the video (interleaved)
                times = (written + np.arange(chunk)) / sample_rate
                block = np.stack([0.3 * np.sin(2 * np.pi * 220 * times), 0.3 * np.sin(2 * np.pi * 330 * times)])
                frame = av.AudioFrame.from_ndarray(block.astype(np.float32), format="fltp", layout="stereo")
                frame.sample_rate, frame.pts = sample_rate, written
                for packet in audio.encode(frame):
                    container.mux(packet)
                written += chunk
        for stream in (video, audio):
            for packet in stream.encode():
                container.mux(packet)
    return path


def timeline_windows(path: str) -> list:
    begin, end = stream_span(open_video_decoder(path))
    return sliding_windows(begin, end, WINDOW, STRIDE)


def variants(path: str) -> dict:
    """The timed callables, by name; each returns the number of windows it made."""
    processor = MultiMAEDERProcessor()
    windows = timeline_windows(path)

    def engine() -> int:
        return sum(1 for _ in StreamingWindows(processor, path, windows))

    def per_window() -> int:
        video, audio = open_video_decoder(path), open_audio_decoder(path)
        for start, end in windows:
            processor(videos=video, audio=audio, clip_start=start, clip_end=end, return_tensors="pt")
        return len(windows)

    return {"bare_decode": lambda: bare_decode(path), "engine": engine, "per_window": per_window}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--quick", action="store_true", help="1 minute only, fewer rounds")
    parser.add_argument("--minutes", type=float, nargs="+", default=[1.0, 10.0], help="lengths of the videos")
    parser.add_argument(PEAK_MEMORY_FLAG, choices=VARIANTS, help="(internal) report one variant's peak memory")
    parser.add_argument("--clip", help="(internal) an existing video to use instead of writing one")
    parser.add_argument("--output", help="also write the JSON here")
    args = parser.parse_args()
    torch.set_num_threads(1)
    if args.peak_memory_of:  # a child of peak_memory_per_variant: the video was written by the parent
        report_peak_memory(variants(args.clip)[args.peak_memory_of], calls=1)
        return
    minutes = [1.0] if args.quick else args.minutes
    runs = {}
    with tempfile.TemporaryDirectory() as tmp:
        for length in minutes:
            path = make_video(os.path.join(tmp, f"video_{length:g}min.mp4"), 60 * length)
            fns = variants(path)
            long = length > 2
            names = ("bare_decode", "engine") if long else VARIANTS
            repeats = 2 if args.quick else 4
            timing = compare({name: fns[name] for name in names}, repeats, warmup=1)
            windows = fns["engine"]()
            memory = peak_memory_per_variant(__file__, names, ["--clip", path])
            run = {
                "seconds": 60 * length,
                "file_mib": os.path.getsize(path) / 2**20,
                "decoded": bare_decode(path),
                "windows": windows,
                "timing": timing,
                "engine_vs_decode": ratio(timing, "engine", "bare_decode"),
                "peak_memory_per_variant": memory,
            }
            if "per_window" in names:
                run["per_window_vs_decode"] = ratio(timing, "per_window", "bare_decode")
                run["engine_speedup_over_per_window"] = ratio(timing, "per_window", "engine")
            runs[f"{length:g}min"] = run
    first = runs[f"{minutes[0]:g}min"]
    result = {
        "benchmark": "timeline",
        "video": VIDEO,
        "timeline": {"window_s": WINDOW, "stride_s": STRIDE, "strategy": "FSLF", "inputs": "8 frames + 8 MFCC"},
        "runs": runs,
        "engine_vs_decode": first["engine_vs_decode"],
        "engine_speedup_over_per_window": first.get("engine_speedup_over_per_window"),
        "target": {"engine_vs_decode": ["<=", 1.3]},
    }
    emit(result, args.output)


if __name__ == "__main__":
    main()
