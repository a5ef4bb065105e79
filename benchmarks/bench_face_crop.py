"""Face cropping speed: the processor with face_crop on and off vs a bare decode of the clip.

    python benchmarks/bench_face_crop.py [--quick]

Writes a 3.7 s 1280x720 30 fps H.264 clip with 48 kHz stereo AAC showing a real face (scikit-image's astronaut
photograph, public domain) that moves across a plain scene, then times on one thread (torch and OpenCV), after a
warm-up, interleaved (ABBA), medians:

- ``bare_decode``: every video frame and every audio frame decoded, no colour conversion (``common.bare_decode``);
- ``face_crop_off``: MultiMAEDERProcessor (FSLF: 8 frames + 8 MFCC images at 224 px) on the file, whole frames;
- ``face_crop_on``: the same with ``face_crop=True`` (YuNet on each sampled frame at 320 px wide, tracking,
  smoothing, square crops).

The JSON line (last on stdout) holds ``face_crop_on_vs_decode`` and ``face_crop_off_vs_decode`` (ratios of the
medians), the medians, and how many of the sampled frames showed the face.
"""

from __future__ import annotations

import argparse
import os
import tempfile

import numpy as np
import torch
from common import bare_decode, compare, emit, ratio

from mmder_hf import MultiMAEDERProcessor
from mmder_hf.data.media_writing import write_clip


CLIP = {"seconds": 3.7, "size": "1280x720", "fps": 30, "audio": "48 kHz stereo AAC", "face": "about 200 px, moving"}


def make_face_clip(path: str, seconds: float = 3.7, fps: int = 30, sample_rate: int = 48000) -> str:
    """The astronaut's head and shoulders (scaled to a ~200 px face) crossing a gradient scene, with a two-tone
    stereo track."""
    import cv2
    from skimage import data

    head = cv2.resize(data.astronaut()[10:250, 118:330], None, fx=2.2, fy=2.2, interpolation=cv2.INTER_LINEAR)
    count = int(seconds * fps)
    ys, xs = np.mgrid[0:720, 0:1280].astype(np.float32)
    scene = np.stack([90 + 60 * xs / 1280, 110 + 40 * ys / 720, 140 - 50 * xs / 1280], axis=-1).astype(np.uint8)
    frames = np.repeat(scene[None], count, axis=0)
    h, w = head.shape[:2]
    for t in range(count):
        x, y = 200 + int(500 * t / count), 100 + int(60 * np.sin(t / 15))
        frames[t, y : y + h, x : x + w] = head
    times = np.arange(int(seconds * sample_rate)) / sample_rate
    audio = np.stack([0.3 * np.sin(2 * np.pi * 220 * times), 0.3 * np.sin(2 * np.pi * 330 * times)]).astype(np.float32)
    return write_clip(path, frames, fps, audio, sample_rate)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--quick", action="store_true", help="fewer repetitions")
    args = parser.parse_args()
    import cv2

    torch.set_num_threads(1)
    cv2.setNumThreads(1)
    repeats = 10 if args.quick else 30
    off = MultiMAEDERProcessor()
    on = MultiMAEDERProcessor(face_crop=True)
    with tempfile.TemporaryDirectory() as tmp:
        path = make_face_clip(os.path.join(tmp, "face_720p.mp4"))
        counts = bare_decode(path)
        timing = compare(
            {
                "bare_decode": lambda: bare_decode(path),
                "face_crop_off": lambda: off(videos=path),
                "face_crop_on": lambda: on(videos=path),
            },
            repeats,
        )
        boxes = on(videos=path)["face_boxes"][0]
    emit(
        {
            "benchmark": "face_crop",
            "clip": {**CLIP, "decoded": counts},
            "faces_found": f"{int((~torch.isnan(boxes[:, 0])).sum())} of {len(boxes)} sampled frames",
            "timing": timing,
            "median_s": timing["median_s"],
            "face_crop_on_vs_decode": ratio(timing, "face_crop_on", "bare_decode"),
            "face_crop_off_vs_decode": ratio(timing, "face_crop_off", "bare_decode"),
            "face_crop_on_vs_off": ratio(timing, "face_crop_on", "face_crop_off"),
        }
    )


if __name__ == "__main__":
    main()
