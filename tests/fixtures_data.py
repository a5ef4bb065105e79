"""Session fixtures for the data tests: a small synthetic RAVDESS tree and fake CREMA-D / IEMOCAP trees.

Imported by tests/test_data_*.py (``from fixtures_data import *``): pytest registers fixtures found in a test
module's namespace.
"""

from __future__ import annotations

import os
import wave
import zipfile

import numpy as np
import pytest

from mmder_hf.data.media_writing import write_clip
from mmder_hf.data.synthetic import make_synthetic_corpus


os.environ.setdefault("HF_HUB_OFFLINE", "1")

NUM_ACTORS = 8
CLIPS = 8  # one per emotion
SMALL = dict(duration=1.0, fps=8, width=64, height=36, video_only_per_actor=1)


# Each test module importing a fixture gets its own copy of it, so the trees are memoised here: written once
# per session whichever module asks first.
_MEMO: dict = {}


def _once(key, make):
    if key not in _MEMO:
        _MEMO[key] = make()
    return _MEMO[key]


@pytest.fixture(scope="session")
def synthetic_ravdess_dir(tmp_path_factory):
    """8 actors x 8 speech clips (+8 song clips, +1 video-only file each), in RAVDESS zips."""

    def make():
        out = tmp_path_factory.mktemp("synthetic_ravdess")
        make_synthetic_corpus(str(out), num_actors=NUM_ACTORS, clips_per_actor=CLIPS, include_song=True, **SMALL)
        return str(out)

    return _once("ravdess", make)


@pytest.fixture(scope="session")
def hf_cache_dir(tmp_path_factory):
    return _once("cache", lambda: str(tmp_path_factory.mktemp("hf_cache")))


def _write_wav(path, seconds=0.5, rate=16000, freq=440.0):
    t = np.arange(int(seconds * rate)) / rate
    pcm = (0.3 * np.sin(2 * np.pi * freq * t) * 32767).astype("<i2")
    with wave.open(str(path), "wb") as w:
        w.setnchannels(1)
        w.setsampwidth(2)
        w.setframerate(rate)
        w.writeframes(pcm.tobytes())


def _frames(n=6, h=32, w=48, value=100):
    return np.full((n, h, w, 3), value, dtype=np.uint8)


@pytest.fixture(scope="session")
def fake_crema_d_dir(tmp_path_factory):
    """Two actors per CREMA-D fold range, 2 clips each, plus the known broken clips and odd files."""
    root = tmp_path_factory.mktemp("crema_d")
    (root / "VideoFlash").mkdir()
    (root / "AudioWAV").mkdir()
    actors = [1001, 1002, 1019, 1020, 1037, 1038, 1055, 1056, 1073, 1076]
    clips = [f"{a}_{s}_{e}_XX" for a in actors for s, e in (("DFA", "ANG"), ("IEO", "HAP"))]
    clips += ["1076_MTI_NEU_XX", "1064_IEO_DIS_MD"]  # known broken: must be excluded and reported
    for i, clip in enumerate(clips):
        write_clip(root / "VideoFlash" / f"{clip}.flv", _frames(value=20 * (i % 10)), 12)
        _write_wav(root / "AudioWAV" / f"{clip}.wav")
    write_clip(root / "VideoFlash" / "1002_TIE_SAD_XX.flv", _frames(), 12)  # video without audio
    (root / "VideoFlash" / "notes_about_clips.flv").write_bytes(b"x")  # unknown name
    (root / "VideoDemographics.csv").write_text(
        "ActorID,Age,Sex,Race,Ethnicity\n" + "".join(f"{a},30,{'Male' if a % 2 else 'Female'},x,y\n" for a in actors)
    )
    return str(root)


IEMOCAP_LABELS = ("neu", "exc", "ang", "sad", "fru", "hap")


@pytest.fixture(scope="session")
def fake_iemocap_dir(tmp_path_factory):
    """A 5-session IEMOCAP-like release: one 3 s dialog per session, 6 utterances (one 'fru', dropped)."""
    root = tmp_path_factory.mktemp("iemocap") / "IEMOCAP_full_release"
    for s in range(1, 6):
        dialog = f"Ses0{s}F_impro01"
        base = root / f"Session{s}"
        (base / "dialog" / "avi" / "DivX").mkdir(parents=True)
        (base / "dialog" / "EmoEvaluation").mkdir(parents=True)
        (base / "sentences" / "wav" / dialog).mkdir(parents=True)
        frames = np.stack([np.full((32, 48, 3), 40 * t, dtype=np.uint8) for t in range(6) for _ in range(5)])
        write_clip(base / "dialog" / "avi" / "DivX" / f"{dialog}.avi", frames, 10)  # 3 s, colour steps every 0.5 s
        lines = ["% [START_TIME - END_TIME] TURN_NAME EMOTION [V, A, D]", ""]
        for i, label in enumerate(IEMOCAP_LABELS):
            utt = f"{dialog}_{'F' if i % 2 == 0 else 'M'}{i:03d}"
            lines.append(f"[{0.5 * i:.4f} - {0.5 * i + 0.5:.4f}]\t{utt}\t{label}\t[2.5000, 2.5000, 2.5000]")
            lines.append(f"C-E1:\t{label.capitalize()};\t()")
            lines.append("")
            _write_wav(base / "sentences" / "wav" / dialog / f"{utt}.wav")
        (base / "dialog" / "EmoEvaluation" / f"{dialog}.txt").write_text("\n".join(lines))
    return str(root)


def truncated_clip(path, fraction: float = 0.6, seconds: float = 3.0) -> bytes:
    """Bytes of the first ``fraction`` of a real clip (noise frames + a tone) written to ``path`` (its extension
    picks the container): what an interrupted download or copy leaves."""
    rng = np.random.default_rng(0)
    frames = rng.integers(0, 255, (int(8 * seconds), 32, 48, 3), dtype=np.uint8)
    tone = 0.3 * np.sin(2 * np.pi * 440 * np.arange(int(16000 * seconds)) / 16000).astype(np.float32)
    write_clip(path, frames, 8, tone, 16000)
    with open(path, "rb") as f:
        data = f.read()
    return data[: int(len(data) * fraction)]


def copy_tree_with_bad_data(src: str, dst) -> dict:
    """Copy the synthetic RAVDESS zips, damaging actor 1's archive and replacing actor 8's by garbage.

    Returns ``name -> the exact reason`` the builder must report for it.
    """
    import shutil

    dst = str(dst)
    os.makedirs(dst, exist_ok=True)
    for name in sorted(os.listdir(src)):
        if name.startswith("Video_Speech"):
            shutil.copy(os.path.join(src, name), dst)
    bad = os.path.join(dst, "Video_Speech_Actor_01.zip")
    with zipfile.ZipFile(bad, "a") as zf:
        zf.writestr("Actor_01/README.txt", "hello")  # unknown name
        zf.writestr("Actor_01/01-01-03-02-02-02-01.mp4", b"")  # empty file
        zf.writestr("Actor_01/01-01-04-02-02-02-01.mp4", b"\x00garbage" * 100)  # corrupt media
        zf.writestr("Actor_01/01-01-01-02-01-01-01.mp4", b"x")  # impossible strong neutral: unknown name
        import tempfile

        with tempfile.TemporaryDirectory() as tmp:
            path = write_clip(os.path.join(tmp, "v.mp4"), _frames(), 8, None)
            zf.writestr("Actor_01/01-01-05-02-02-02-01.mp4", open(path, "rb").read())  # AV name, no audio
            # an audio track without a single packet (mp4 drops such a track: Matroska keeps it)
            path = write_clip(os.path.join(tmp, "e.mkv"), _frames(), 8, np.zeros((1, 0), np.float32), 16000)
            zf.writestr("Actor_01/01-01-07-02-02-02-01.mp4", open(path, "rb").read())  # empty audio
            path = write_clip(os.path.join(tmp, "a.mp4"), _frames(), 8, np.zeros((1, 8000), np.float32), 16000)
            zf.writestr("Actor_01/01-01-06-02-02-02-02.mp4", open(path, "rb").read())  # actor 02 in 01's zip
            # cut short: Matroska opens and demuxes up to the cut (it would train as a shorter clip) ...
            zf.writestr("Actor_01/01-01-08-02-02-02-01.mp4", truncated_clip(os.path.join(tmp, "t.mkv")))
            # ... FLV leaves an incomplete last packet
            zf.writestr("Actor_01/01-01-02-02-02-02-01.mp4", truncated_clip(os.path.join(tmp, "t.flv")))
    with open(os.path.join(dst, "Video_Speech_Actor_08.zip"), "wb") as f:
        f.write(b"PK\x03\x04 not really a zip")
    return {
        "Actor_01/README.txt": "unknown file name",
        "Actor_01/01-01-03-02-02-02-01.mp4": "empty file",
        "Actor_01/01-01-04-02-02-02-01.mp4": "corrupt media (InvalidDataError)",
        "Actor_01/01-01-01-02-01-01-01.mp4": "unknown file name",
        "Actor_01/01-01-05-02-02-02-01.mp4": "no audio track",
        "Actor_01/01-01-06-02-02-02-02.mp4": "actor 2 in the name but archive of actor 1",
        "Actor_01/01-01-07-02-02-02-01.mp4": "empty audio",
        "Actor_01/01-01-08-02-02-02-01.mp4": "truncated media (its streams end before the duration its container "
        "declares)",
        "Actor_01/01-01-02-02-02-02-01.mp4": "truncated media (its last packet is incomplete)",
        "Video_Speech_Actor_08.zip": "corrupt archive (File is not a zip file)",
    }
