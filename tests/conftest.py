"""Shared pytest fixtures: tiny synthetic media written once per test session.

Clips are H.264 + AAC mp4 files encoded by the tests themselves (``mmder_hf.data.media_writing.write_clip``). Video
frames
encode their own index in their colour (see :func:`index_colors` / :func:`decode_indices`), so tests can check
which frames a sampler picked; audio tracks are tones of known frequency.
"""

from __future__ import annotations

import os
import wave
from pathlib import Path
from typing import Callable, Optional

import numpy as np
import pytest


os.environ.setdefault("HF_HUB_OFFLINE", "1")


# ---------------------------------------------------------------------------------------------------------------
# Helpers (plain functions, exposed to tests through fixtures below)


def index_colors(indices: np.ndarray) -> np.ndarray:
    """RGB colour (uint8, ``(len, 3)``) that encodes each frame index (0..255) robustly through H.264."""
    indices = np.asarray(indices)
    return np.stack([16 * (indices % 16) + 8, 16 * (indices // 16) + 8, np.full_like(indices, 128)], -1).astype(
        np.uint8
    )


def decode_indices(frames: np.ndarray) -> list[int]:
    """Frame indices encoded by :func:`index_colors`, from ``(T, 3, H, W)`` or ``(T, H, W, 3)`` RGB in 0..255."""
    frames = np.asarray(frames, dtype=np.float64)
    if frames.shape[1] == 3 and frames.shape[-1] != 3:
        frames = frames.transpose(0, 2, 3, 1)
    mean = frames.reshape(frames.shape[0], -1, 3).mean(1)
    return [int(round((r - 8) / 16)) + 16 * int(round((g - 8) / 16)) for r, g, _ in mean]


def indexed_frames(num_frames: int, height: int, width: int) -> np.ndarray:
    """``(num_frames, height, width, 3)`` uint8 frames, each a flat colour that encodes its index."""
    colors = index_colors(np.arange(num_frames))
    return np.broadcast_to(colors[:, None, None, :], (num_frames, height, width, 3)).copy()


def tone(duration: float, sample_rate: int, frequency: float = 440.0, channels: int = 1, amplitude: float = 0.5):
    """``(channels, samples)`` float32 sine; channel ``c`` has frequency ``frequency * (c + 1)``."""
    t = np.arange(int(round(duration * sample_rate))) / sample_rate
    return np.stack([amplitude * np.sin(2 * np.pi * frequency * (c + 1) * t) for c in range(channels)]).astype(
        np.float32
    )


def write_wav(path: Path, audio: np.ndarray, sample_rate: int) -> Path:
    """16-bit PCM WAV (an audio-only file) from ``(channels, samples)`` floats in [-1, 1]."""
    audio = np.atleast_2d(audio)
    pcm = (np.clip(audio, -1, 1) * 32767).astype("<i2").T.copy()
    with wave.open(str(path), "wb") as out:
        out.setnchannels(audio.shape[0])
        out.setsampwidth(2)
        out.setframerate(sample_rate)
        out.writeframes(pcm.tobytes())
    return path


def write_vfr_clip(path: Path, frames: np.ndarray, times: np.ndarray) -> Path:
    """An H.264 mp4 whose frame ``i`` is shown from ``times[i]`` seconds (variable frame rate), no audio."""
    from fractions import Fraction

    import av

    with av.open(str(path), mode="w") as container:
        stream = container.add_stream("libx264", rate=30)
        stream.width, stream.height = frames.shape[2], frames.shape[1]
        stream.pix_fmt = "yuv420p"
        stream.time_base = Fraction(1, 1000)
        stream.codec_context.time_base = Fraction(1, 1000)
        stream.options = {"crf": "18", "preset": "veryfast", "bf": "0"}
        for image, start in zip(frames, times):
            frame = av.VideoFrame.from_ndarray(image, format="rgb24")
            frame.pts = int(round(start * 1000))
            frame.time_base = Fraction(1, 1000)
            for packet in stream.encode(frame):
                container.mux(packet)
        for packet in stream.encode():
            container.mux(packet)
    return path


# ---------------------------------------------------------------------------------------------------------------
# Fixtures


@pytest.fixture(scope="session")
def media_dir(tmp_path_factory) -> Path:
    """Session-wide folder for synthetic media."""
    return tmp_path_factory.mktemp("media")


@pytest.fixture(scope="session")
def make_clip(media_dir) -> Callable[..., Path]:
    """Factory writing (once per name) an mp4 with index-coded frames and an optional tone track.

    ``make_clip(name, num_frames=50, height=48, width=64, fps=25, sample_rate=44100, channels=2, audio=True,
    audio_duration=None, silent=False, container="mp4")``; the audio lasts ``num_frames / fps`` seconds unless
    ``audio_duration``; ``container`` is the file extension (``"mkv"``, ``"flv"``...).
    """
    from mmder_hf.data.media_writing import write_clip

    cache: dict[str, Path] = {}

    def make(
        name: str,
        num_frames: int = 50,
        height: int = 48,
        width: int = 64,
        fps: float = 25.0,
        sample_rate: int = 44100,
        channels: int = 2,
        audio: bool = True,
        audio_duration: Optional[float] = None,
        silent: bool = False,
        container: str = "mp4",
    ) -> Path:
        if name in cache:
            return cache[name]
        path = media_dir / f"{name}.{container}"
        waveform = None
        if audio:
            waveform = tone(audio_duration or num_frames / fps, sample_rate, channels=channels)
            if silent:
                waveform = np.zeros_like(waveform)
        write_clip(path, indexed_frames(num_frames, height, width), fps, waveform, sample_rate)
        cache[name] = path
        return path

    return make


@pytest.fixture(scope="session")
def synthetic_clip_path(make_clip) -> Path:
    """2 s, 25 fps (50 frames), 64 x 48, stereo 44.1 kHz AAC (440 Hz left, 880 Hz right)."""
    return make_clip("synthetic_clip")


@pytest.fixture(scope="session")
def video_only_clip_path(make_clip) -> Path:
    """Like ``synthetic_clip_path`` without an audio track."""
    return make_clip("video_only_clip", audio=False)


@pytest.fixture(scope="session")
def audio_only_path(media_dir) -> Path:
    """A 2 s mono 22.05 kHz WAV file (no video stream)."""
    return write_wav(media_dir / "audio_only.wav", tone(2.0, 22050), 22050)


@pytest.fixture(scope="session")
def vfr_clip_path(media_dir) -> tuple[Path, np.ndarray]:
    """Variable frame rate: 20 frames at 10 fps, then 30 at 30 fps (3 s in all); returns (path, frame start times)."""
    times = np.concatenate([np.arange(20) / 10.0, 2.0 + np.arange(30) / 30.0])
    return write_vfr_clip(media_dir / "vfr_clip.mp4", indexed_frames(50, 48, 64), times), times


@pytest.fixture(scope="session")
def frame_index_decoder() -> Callable[[np.ndarray], list[int]]:
    """:func:`decode_indices`: frame indices from index-coded RGB frames in 0..255."""
    return decode_indices


@pytest.fixture
def free_port() -> int:
    """A TCP port free on localhost now, for a multi-process run's rendezvous (tests may run side by side)."""
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture
def example_main(monkeypatch) -> Callable[..., object]:
    """``example_main("finetune", argv)``: an example script's ``main(argv)`` run in this process, for the checks that
    end before any training (refusals), without the ~9 s of imports of a fresh interpreter. The process-wide
    settings the script makes (torch threads, log levels) are put back afterwards."""
    import importlib.util
    import logging

    import torch

    threads = torch.get_num_threads()
    levels = {name: logging.getLogger(name).level for name in ("mmder_hf", "__main__")}
    root = Path(__file__).resolve().parents[1] / "examples"

    def run(name: str, argv: list) -> object:
        spec = importlib.util.spec_from_file_location(f"example_{name}", root / f"{name}.py")
        module = importlib.util.module_from_spec(spec)
        monkeypatch.syspath_prepend(str(root))  # cross_validate imports finetune
        spec.loader.exec_module(module)
        return module.main([str(a) for a in argv])

    yield run
    torch.set_num_threads(threads)
    for name, level in levels.items():
        logging.getLogger(name).setLevel(level)
