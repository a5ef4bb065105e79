"""Clips with real faces at known, moving positions, for the face-cropping tests and benchmark.

The faces are scikit-image's ``astronaut()`` photograph (public domain, shipped in the scikit-image wheel); the
negatives are its ``chelsea()`` (a cat) and a plain scene. Each face is pasted into 1280 x 720 frames at a position and
scale given per frame, so every frame's true face box is known.
"""

from __future__ import annotations

import os
from fractions import Fraction
from typing import Callable, Optional, Sequence

import numpy as np


#: The astronaut's face in ``skimage.data.astronaut()`` (512 x 512), x0, y0, x1, y1: YuNet's box on the photograph.
ASTRONAUT_FACE = (178.0, 63.0, 268.0, 176.0)
#: The part of the photograph that is pasted (the head and shoulders), x0, y0, x1, y1.
_HEAD = (118, 10, 330, 250)

#: A position of one face in one frame: (x of the patch's left edge, y of its top edge, scale of the photograph).
Placement = tuple[float, float, float]


def _resize(image: np.ndarray, scale: float) -> np.ndarray:
    import cv2

    interpolation = cv2.INTER_AREA if scale < 1 else cv2.INTER_LINEAR
    return cv2.resize(image, None, fx=scale, fy=scale, interpolation=interpolation)


def astronaut_head() -> tuple[np.ndarray, tuple[float, float, float, float]]:
    """The pasted patch (RGB uint8) and the face box inside it."""
    from skimage import data

    x0, y0, x1, y1 = _HEAD
    patch = data.astronaut()[y0:y1, x0:x1]
    fx0, fy0, fx1, fy1 = ASTRONAUT_FACE
    return patch, (fx0 - x0, fy0 - y0, fx1 - x0, fy1 - y0)


def background(height: int = 720, width: int = 1280, seed: int = 0) -> np.ndarray:
    """A plain indoor-looking scene: a smooth colour gradient with a little noise, no face and no cat."""
    rng = np.random.default_rng(seed)
    ys, xs = np.mgrid[0:height, 0:width].astype(np.float32)
    image = np.stack([90 + 60 * xs / width, 110 + 40 * ys / height, 140 - 50 * xs / width], axis=-1)
    image += rng.normal(0, 4, size=image.shape)
    return image.clip(0, 255).astype(np.uint8)


def paste(frame: np.ndarray, patch: np.ndarray, x: float, y: float) -> None:
    """Paste ``patch`` with its top-left corner at ``(x, y)``, clipped to the frame (in place)."""
    h, w = patch.shape[:2]
    x, y = int(round(x)), int(round(y))
    fx0, fy0 = max(0, x), max(0, y)
    fx1, fy1 = min(frame.shape[1], x + w), min(frame.shape[0], y + h)
    if fx1 > fx0 and fy1 > fy0:
        frame[fy0:fy1, fx0:fx1] = patch[fy0 - y : fy1 - y, fx0 - x : fx1 - x]


def face_frames(
    num_frames: int,
    placements: Sequence[Callable[[int], Optional[Placement]]],
    height: int = 720,
    width: int = 1280,
    seed: int = 0,
) -> tuple[np.ndarray, np.ndarray]:
    """Frames with one astronaut face per entry of ``placements`` (a function of the frame index giving its
    placement, or ``None`` to leave that face out of the frame).

    Returns:
        ``(frames (T, H, W, 3) uint8, boxes (T, faces, 4) float64)``: the true face boxes, NaN where a face is absent.
    """
    patch, face = astronaut_head()
    scene = background(height, width, seed)
    frames = np.repeat(scene[None], num_frames, axis=0)
    boxes = np.full((num_frames, len(placements), 4), np.nan)
    cache: dict = {}
    for t in range(num_frames):
        for j, place in enumerate(placements):
            where = place(t)
            if where is None:
                continue
            x, y, scale = where
            if scale not in cache:
                cache[scale] = _resize(patch, scale)
            scaled = cache[scale]
            paste(frames[t], scaled, x, y)
            sx, sy = scaled.shape[1] / patch.shape[1], scaled.shape[0] / patch.shape[0]
            boxes[t, j] = (x + face[0] * sx, y + face[1] * sy, x + face[2] * sx, y + face[3] * sy)
    return frames, boxes


def cat_frames(num_frames: int, height: int = 720, width: int = 1280) -> np.ndarray:
    """Frames showing scikit-image's cat (``chelsea()``) moving over the plain scene: no human face."""
    from skimage import data

    cat = _resize(data.chelsea(), 1.5)
    scene = background(height, width)
    frames = np.repeat(scene[None], num_frames, axis=0)
    for t in range(num_frames):
        paste(frames[t], cat, 200 + 10 * t, 100)
    return frames


def tone(seconds: float, sample_rate: int = 16000) -> np.ndarray:
    """A quiet 220 Hz tone, the audio track of the test clips."""
    times = np.arange(int(seconds * sample_rate)) / sample_rate
    return (0.2 * np.sin(2 * np.pi * 220 * times)).astype(np.float32)


def write_face_clip(
    path: os.PathLike | str,
    frames: np.ndarray,
    fps: float = 10.0,
    rotation: int = 0,
    sample_rate: int = 16000,
) -> str:
    """Write ``frames`` (as they are to be displayed) as H.264 + AAC mp4.

    ``rotation`` (degrees, counter-clockwise, a multiple of 90) stores the frames turned by ``-rotation`` with a
    display matrix that turns them back, as a phone records a portrait clip: players (and torchcodec) show
    ``frames``.
    """
    import av

    stored = np.ascontiguousarray(np.rot90(frames, k=-(rotation // 90), axes=(1, 2))) if rotation else frames
    audio = tone(len(frames) / fps, sample_rate)[None]
    path = os.fspath(path)
    with av.open(path, mode="w") as container:
        video = container.add_stream("libx264", rate=Fraction(fps).limit_denominator(1001))
        video.width, video.height = stored.shape[2], stored.shape[1]
        video.pix_fmt = "yuv420p"
        video.options = {"crf": "20", "preset": "veryfast"}
        if rotation:
            video.set_display_rotation(rotation)
        sound = container.add_stream("aac", rate=sample_rate, layout="mono")
        for image in stored:
            for packet in video.encode(av.VideoFrame.from_ndarray(image, format="rgb24")):
                container.mux(packet)
        for packet in video.encode():
            container.mux(packet)
        for start in range(0, audio.shape[1], 1024):
            block = np.ascontiguousarray(audio[:, start : start + 1024])
            frame = av.AudioFrame.from_ndarray(block, format="fltp", layout="mono")
            frame.sample_rate, frame.pts = sample_rate, start
            for packet in sound.encode(frame):
                container.mux(packet)
        for packet in sound.encode():
            container.mux(packet)
    return path


def iou(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """IoU of boxes ``(..., 4)`` pairwise along the leading axes (NaN boxes give NaN)."""
    w = np.clip(np.minimum(a[..., 2], b[..., 2]) - np.maximum(a[..., 0], b[..., 0]), 0, None)
    h = np.clip(np.minimum(a[..., 3], b[..., 3]) - np.maximum(a[..., 1], b[..., 1]), 0, None)
    inter = w * h
    area = lambda box: (box[..., 2] - box[..., 0]) * (box[..., 3] - box[..., 1])  # noqa: E731
    return inter / (area(a) + area(b) - inter)
