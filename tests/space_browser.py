"""A real browser for the demo Space's live tab: Debian's Chromium driven by Playwright, its camera and microphone
fed from files (a y4m video and a wav), and helpers to write those files and read the tab."""

from __future__ import annotations

import json
import os
import time
import wave
from pathlib import Path

import numpy as np
import pytest


CHROMIUM = Path("/usr/bin/chromium")
#: Set in CI (.ci/run), where scripts/setup.sh --dev installs Chromium: there a missing browser fails the test.
REQUIRE_BROWSER = "MMDER_REQUIRE_BROWSER"
#: The fake camera's picture size and rate.
CAMERA_WIDTH, CAMERA_HEIGHT, CAMERA_FPS = 160, 120, 10


def require_browser() -> None:
    """Skip without Chromium or Playwright, unless MMDER_REQUIRE_BROWSER is set: then fail, saying how to get them."""
    required = os.environ.get(REQUIRE_BROWSER)
    missing = []
    if not CHROMIUM.exists():
        missing.append(f"{CHROMIUM} (Debian package chromium)")
    try:
        import playwright.sync_api  # noqa: F401
    except ImportError:
        missing.append("the playwright Python package")
    if missing:
        message = f"the browser test needs {' and '.join(missing)}: bash scripts/setup.sh --dev installs them"
        if required:
            pytest.fail(f"{REQUIRE_BROWSER} is set but {message}")
        pytest.skip(f"{message} (set {REQUIRE_BROWSER}=1 to make this a failure)")


def write_y4m(path: Path, seconds: float = 3.0) -> Path:
    """A face-like picture (a light oval with dark eyes and a mouth that opens and closes) drifting sideways, in
    the raw YUV4MPEG2 format Chromium's fake camera plays (in a loop)."""
    height, width = CAMERA_HEIGHT, CAMERA_WIDTH
    y, x = np.mgrid[0:height, 0:width]
    chroma = np.full((height // 2) * (width // 2), 128, np.uint8).tobytes()
    with path.open("wb") as handle:
        handle.write(f"YUV4MPEG2 W{width} H{height} F{CAMERA_FPS}:1 Ip A1:1 C420jpeg\n".encode())
        for k in range(int(seconds * CAMERA_FPS)):
            phase = 2 * np.pi * k / (seconds * CAMERA_FPS)
            cx, cy = width / 2 + 30 * np.sin(phase), height / 2
            luma = np.full((height, width), 40, np.uint8)
            luma[((x - cx) / 32) ** 2 + ((y - cy) / 42) ** 2 <= 1] = 200  # face
            for ex in (cx - 12, cx + 12):
                luma[((x - ex) / 5) ** 2 + ((y - cy + 12) / 4) ** 2 <= 1] = 30  # eyes
            mouth = 2 + 6 * abs(np.sin(3 * phase))
            luma[((x - cx) / 12) ** 2 + ((y - cy - 18) / mouth) ** 2 <= 1] = 60  # mouth
            handle.write(b"FRAME\n" + luma.tobytes() + chroma + chroma)
    return path


def write_speech_wav(path: Path, seconds: float = 3.0, rate: int = 16000) -> Path:
    """A speech-like sound: a 140 Hz voice with harmonics, in syllables (4 per second) and a falling pitch, as 16-bit
    mono PCM (Chromium's fake microphone plays it in a loop)."""
    t = np.arange(int(seconds * rate)) / rate
    pitch = 140 * (1 - 0.1 * (t % 1.0))
    phase = 2 * np.pi * np.cumsum(pitch) / rate
    voice = sum(np.sin(h * phase) / h for h in range(1, 6))
    syllables = np.clip(np.sin(2 * np.pi * 4 * t), 0, None) ** 0.5
    samples = (0.25 * voice * syllables / np.abs(voice).max() * 32767).astype("<i2")
    with wave.open(str(path), "wb") as handle:
        handle.setnchannels(1)
        handle.setsampwidth(2)
        handle.setframerate(rate)
        handle.writeframes(samples.tobytes())
    return path


def launch_chromium(playwright, video: Path, audio: Path):
    """Headless Chromium whose camera and microphone play ``video`` and ``audio``, with permission granted."""
    return playwright.chromium.launch(
        executable_path=str(CHROMIUM),
        headless=True,
        args=[
            "--use-fake-ui-for-media-stream",
            "--use-fake-device-for-media-stream",
            f"--use-file-for-fake-video-capture={video}",
            f"--use-file-for-fake-audio-capture={audio}",
        ],
    )


def read_json_component(page, elem_id: str):
    """The value a gr.JSON (made with ``open=True``) shows, read from the page: its tree's text, one token a line,
    joined back into JSON (``None`` while it shows nothing)."""
    text = "".join(page.locator(f"#{elem_id}").inner_text().splitlines())
    if "{" not in text:
        return None
    try:
        return json.loads(text[text.index("{") : text.rindex("}") + 1])
    except json.JSONDecodeError:  # read while the tree was being redrawn
        return None


def wait_for(condition, timeout: float, what: str, interval: float = 0.25):
    """Poll ``condition()`` until it returns something true; fail naming ``what`` after ``timeout`` seconds."""
    deadline = time.monotonic() + timeout
    while True:
        value = condition()
        if value:
            return value
        if time.monotonic() > deadline:
            pytest.fail(f"timed out after {timeout} s waiting for {what}")
        time.sleep(interval)
