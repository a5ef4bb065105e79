"""Preprocessing speed: our processor vs merely decoding the clip, and vs the original audio step.

    python benchmarks/bench_preprocess.py [--quick]

Writes a 3.7 s 1280x720 30 fps H.264 clip with 48 kHz stereo AAC (RAVDESS's format), then times, side by side:
- ``decode``: torchcodec decoding ALL of the clip's frames and its whole audio track (the floor any
  preprocessing that decodes everything would pay);
- ``processor``: MultiMAEDERProcessor turning the file into model inputs (FSLF: 8 frames + 8 MFCC images);
- ``original_audio``: a re-creation of the original's audio step alone (see original_audio.py).
"""

from __future__ import annotations

import argparse
import os
import tempfile

import numpy as np
import torch
from common import emit, time_interleaved
from original_audio import original_audio_images
from torchcodec.decoders import AudioDecoder, VideoDecoder

from mmder_hf import MultiMAEDERProcessor
from mmder_hf.data.media_writing import write_clip


def make_clip(path: str, seconds: float = 3.7, fps: int = 30, size=(720, 1280), sample_rate: int = 48000) -> str:
    rng = np.random.default_rng(0)
    frames_count = int(seconds * fps)
    base = rng.integers(0, 255, (size[0] // 8, size[1] // 8, 3), dtype=np.uint8)
    frames = np.stack([np.roll(base, i, axis=1).repeat(8, 0).repeat(8, 1) for i in range(frames_count)])
    t = np.arange(int(seconds * sample_rate)) / sample_rate
    audio = np.stack([0.3 * np.sin(2 * np.pi * 220 * t), 0.3 * np.sin(2 * np.pi * 330 * t)]).astype(np.float32)
    audio += 0.02 * rng.standard_normal(audio.shape).astype(np.float32)
    return write_clip(path, frames, fps, audio, sample_rate)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--quick", action="store_true", help="fewer repetitions")
    args = parser.parse_args()
    repeats = 5 if args.quick else 15
    torch.set_num_threads(1)  # "on one core", as the original's figure is

    with tempfile.TemporaryDirectory() as tmp:
        path = make_clip(os.path.join(tmp, "clip_720p.mp4"))
        processor = MultiMAEDERProcessor()

        def decode_all():
            frames = VideoDecoder(path).get_frames_in_range(0, VideoDecoder(path).metadata.num_frames).data
            samples = AudioDecoder(path).get_all_samples().data
            return frames.shape, samples.shape

        def preprocess():
            return processor(videos=path, return_tensors="pt")

        def original():
            waveform = AudioDecoder(path, sample_rate=44100).get_all_samples().data.numpy()
            return original_audio_images(waveform)

        times = time_interleaved({"decode": decode_all, "processor": preprocess}, repeats=repeats)
        times.update(time_interleaved({"original_audio": original}, repeats=max(2, repeats // 3), warmup=0))
        out = preprocess()
        emit(
            {
                "benchmark": "preprocess",
                "clip": {"seconds": 3.7, "size": "1280x720", "fps": 30, "audio": "48 kHz stereo AAC"},
                "outputs": {k: list(v.shape) for k, v in out.items()},
                "seconds": times,
                "clips_per_s": {k: 1.0 / v for k, v in times.items()},
                "preprocess_vs_decode": times["processor"] / times["decode"],
                "preprocess_vs_original": times["original_audio"] / times["processor"],
            }
        )


if __name__ == "__main__":
    main()
