"""Preprocessing speed: our processor vs a bare decode of the clip, and vs the original audio step.

    python benchmarks/bench_preprocess.py [--quick]

Writes a 3.7 s 1280x720 30 fps H.264 clip with 48 kHz stereo AAC (RAVDESS's format), then times, on one thread,
after a warm-up, interleaved (ABBA), medians:

- ``bare_decode``: every video frame and every audio frame decoded, nothing else (``common.bare_decode``: PyAV,
  one thread, no colour conversion, no resampling): the floor of any preprocessing that reads the whole clip;
- ``torchcodec_rgb_decode``: torchcodec decoding every frame to RGB and the whole audio track, for reference;
- ``processor``: MultiMAEDERProcessor turning the file into model inputs (FSLF: 8 frames + 8 MFCC images,
  16 kHz audio, 10 ms hop);
- ``processor_original_settings``: the same processor with the original's audio parameters (44.1 kHz, 0.1 ms
  hop), so that the gain over the original splits into settings (``settings_gain``: original settings / ours)
  and implementation (``implementation_gain``: the original / our code with its settings);
- ``original_audio``: a re-creation of the original's audio step alone (see original_audio.py), audio decoded by
  torchcodec at 44.1 kHz.

Peak process memory of each variant is measured in a fresh process per variant (``--peak_memory_of``).
"""

from __future__ import annotations

import argparse
import os
import tempfile

import numpy as np
import torch
from common import (
    PEAK_MEMORY_FLAG,
    bare_decode,
    compare,
    emit,
    peak_memory_per_variant,
    ratio,
    report_peak_memory,
)
from original_audio import original_audio_images
from torchcodec.decoders import AudioDecoder, VideoDecoder

from mmder_hf import MultiMAEDERProcessor
from mmder_hf.data.media_writing import write_clip


CLIP = {"seconds": 3.7, "size": "1280x720", "fps": 30, "audio": "48 kHz stereo AAC"}
# The original's audio parameters, as MultiMAEDERProcessor settings (see original_audio.py).
ORIGINAL_SETTINGS = {"audio_sample_rate": 44100, "hop_length_ms": 0.1}
VARIANTS = ("bare_decode", "torchcodec_rgb_decode", "processor", "processor_original_settings", "original_audio")


def make_clip(path: str, seconds: float = 3.7, fps: int = 30, size=(720, 1280), sample_rate: int = 48000) -> str:
    rng = np.random.default_rng(0)
    frames_count = int(seconds * fps)
    base = rng.integers(0, 255, (size[0] // 8, size[1] // 8, 3), dtype=np.uint8)
    frames = np.stack([np.roll(base, i, axis=1).repeat(8, 0).repeat(8, 1) for i in range(frames_count)])
    t = np.arange(int(seconds * sample_rate)) / sample_rate
    audio = np.stack([0.3 * np.sin(2 * np.pi * 220 * t), 0.3 * np.sin(2 * np.pi * 330 * t)]).astype(np.float32)
    audio += 0.02 * rng.standard_normal(audio.shape).astype(np.float32)
    return write_clip(path, frames, fps, audio, sample_rate)


def variants(path: str) -> dict:
    """The timed callables, by name."""
    processor = MultiMAEDERProcessor()
    original_settings = MultiMAEDERProcessor(**ORIGINAL_SETTINGS)

    def torchcodec_rgb_decode():
        decoder = VideoDecoder(path)
        frames = decoder.get_frames_in_range(0, len(decoder)).data
        return frames.shape, AudioDecoder(path).get_all_samples().data.shape

    def original_audio():
        waveform = AudioDecoder(path, sample_rate=44100).get_all_samples().data.numpy()
        return original_audio_images(waveform)

    return {
        "bare_decode": lambda: bare_decode(path),
        "torchcodec_rgb_decode": torchcodec_rgb_decode,
        "processor": lambda: processor(videos=path, return_tensors="pt"),
        "processor_original_settings": lambda: original_settings(videos=path, return_tensors="pt"),
        "original_audio": original_audio,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--quick", action="store_true", help="fewer repetitions")
    parser.add_argument(PEAK_MEMORY_FLAG, choices=VARIANTS, help="(internal) report one variant's peak memory")
    parser.add_argument("--clip", help="(internal) an existing clip to use instead of writing one")
    args = parser.parse_args()
    decode_repeats, original_repeats = (10, 4) if args.quick else (30, 10)
    torch.set_num_threads(1)  # "on one core", as the original's figure is

    if args.peak_memory_of:  # a child of peak_memory_per_variant: the clip was written by the parent
        report_peak_memory(variants(args.clip)[args.peak_memory_of])
        return
    with tempfile.TemporaryDirectory() as tmp:
        path = make_clip(os.path.join(tmp, "clip_720p.mp4"))
        fns = variants(path)
        counts = bare_decode(path)
        # Two interleaved groups: the cheap ones with many rounds, and the expensive original with fewer; the
        # processor runs in both, so each ratio compares contenders that were measured side by side.
        decode = compare({k: fns[k] for k in ("bare_decode", "torchcodec_rgb_decode", "processor")}, decode_repeats)
        original = compare(
            {k: fns[k] for k in ("original_audio", "processor", "processor_original_settings")}, original_repeats
        )
        out = fns["processor"]()
        memory = peak_memory_per_variant(__file__, VARIANTS, ["--clip", path])
    emit(
        {
            "benchmark": "preprocess",
            "clip": {**CLIP, "decoded": counts},
            "outputs": {k: list(v.shape) for k, v in out.items()},
            "original_settings": ORIGINAL_SETTINGS,
            "timing": {"decode": decode, "original": original},
            "median_s": {**original["median_s"], **decode["median_s"]},
            "preprocess_vs_decode": ratio(decode, "processor", "bare_decode"),
            "torchcodec_rgb_decode_vs_bare_decode": ratio(decode, "torchcodec_rgb_decode", "bare_decode"),
            "preprocess_vs_original": ratio(original, "original_audio", "processor"),
            "implementation_gain": ratio(original, "original_audio", "processor_original_settings"),
            "settings_gain": ratio(original, "processor_original_settings", "processor"),
            "peak_memory_per_variant": memory,
        }
    )


if __name__ == "__main__":
    main()
