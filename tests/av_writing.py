"""Writing test media frame by frame with PyAV: what tests that need a container's exact layout (its box order, its
keyframe spacing, B-frames or not) share."""

from __future__ import annotations

import av
import numpy as np


def mux_audio(container, stream, wave: np.ndarray, sample_rate: int) -> None:
    """Encode a ``(channels, samples)`` float32 waveform into ``stream`` in 1024-sample frames, muxed as they come."""
    layout = "mono" if wave.shape[0] == 1 else "stereo"
    for start in range(0, wave.shape[1], 1024):
        chunk = np.ascontiguousarray(wave[:, start : start + 1024], dtype=np.float32)
        frame = av.AudioFrame.from_ndarray(chunk, format="fltp", layout=layout)
        frame.sample_rate, frame.pts = sample_rate, start
        for packet in stream.encode(frame):
            container.mux(packet)


def flush(container, streams) -> None:
    """Drain each encoder into the container (the last frames an encoder holds back)."""
    for stream in streams:
        for packet in stream.encode():
            container.mux(packet)
