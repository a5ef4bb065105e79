"""A synthetic audio-visual emotion corpus in RAVDESS format, where only the fusion of both modalities works.

Each clip's emotion index ``e`` (RAVDESS code - 1, 0..7) is split into a **visual cue** ``v = e % 4`` (the
colour of a large square drawn as a cartoon face: red, green, blue or yellow) and an **audio cue** ``a = e // 4``
(the pitch of a tone: low ~300 Hz or high ~2.4 kHz). The video alone therefore leaves two candidate emotions (a perfect
video-only model reaches at most 50% WAR), the audio alone leaves four (at most 25% WAR), and the two together
determine the label. These bounds are exact for balanced classes, i.e. ``clips_per_actor`` a multiple of 8 up
to 32 (the default 16: every emotion twice); with all 60 RAVDESS combinations neutral has half as many clips
(RAVDESS has no strong neutral), which lifts the video-only bound to 53.3%. Per-actor variation (background
colour and light, square size and position, cue colour jitter, pitch factor, noise level) and per-frame noise keep
it from being a lookup table. The face is what a face-cropped talking head gives masked pre-training: it stays
near the centre, its two dark eyes and its mouth are structure to reconstruct, and the mouth opens and closes with
the syllable envelope of the voice (the same for every emotion, so it carries no label).

The tree is the RAVDESS distribution layout, so :class:`~mmder_hf.data.builders.RavdessBuilder` reads it
unchanged: ``Video_Speech_Actor_NN.zip`` holding ``Actor_NN/01-01-EE-II-SS-RR-AA.mp4`` (H.264 + AAC, 16 kHz
mono by default; AAC encoding is the slowest step: 48 kHz stereo is 6x slower; `--sample_rate 48000` for RAVDESS's
rate) plus a few video-only ``02-01-...`` files that the builder must skip. Frames are small (128x72 at
15 fps, 2 s by default; RAVDESS is 1280x720 at 30 fps, ~3.5 s) so that the whole corpus is written in
seconds and decoded quickly.

Usage::

    python -m mmder_hf.data.synthetic --output_dir synthetic_ravdess --num_actors 24 --clips_per_actor 16
"""

from __future__ import annotations

import json
import logging
import os
import tempfile
import zipfile
from dataclasses import asdict, dataclass
from typing import Any, Optional, Sequence

import numpy as np

from .corpora import RAVDESS_EMOTIONS, ravdess_archive_name, ravdess_file_name


logger = logging.getLogger(__name__)

#: Colours of the visual cue v = emotion_index % 4 (far apart in RGB so that 32 px downscaling keeps them).
CUE_COLOURS = ((220, 40, 40), (40, 200, 60), (40, 70, 230), (235, 215, 30))
#: Base frequencies (Hz) of the audio cue a = emotion_index // 4.
CUE_FREQUENCIES = (300.0, 2400.0)


#: Written beside the archives by :func:`make_synthetic_corpus`: how a folder is known to be synthetic.
METADATA_FILE = "synthetic_corpus.json"
#: Version of :func:`render_clip`, saved in the metadata: a corpus drawn by another version is written again
#: (2: the square became a cartoon face lit from above, with a mouth that follows the voice).
RENDERER_VERSION = 2


def is_synthetic_source(source: Any) -> bool:
    """Whether a corpus ``source`` is the synthetic corpus (``None``: the built-in one, or a folder it wrote)."""
    if source is None:
        return True
    return isinstance(source, (str, os.PathLike)) and os.path.isfile(os.path.join(os.fspath(source), METADATA_FILE))


@dataclass
class SyntheticCorpusConfig:
    """Settings of :func:`make_synthetic_corpus` (saved as ``synthetic_corpus.json`` in the output folder)."""

    num_actors: int = 24
    clips_per_actor: int = 16
    video_only_per_actor: int = 2
    duration: float = 2.0
    fps: int = 15
    width: int = 128
    height: int = 72
    sample_rate: int = 16000
    seed: int = 0
    include_song: bool = False


def emotion_cues(emotion_code: int) -> tuple[int, int]:
    """``(visual_cue, audio_cue)`` of a RAVDESS emotion code (1..8): ``((code-1) % 4, (code-1) // 4)``."""
    index = emotion_code - 1
    return index % 4, index // 4


def clip_codes(clips_per_actor: int, vocal_channel: int = 1) -> list[tuple[int, int, int, int]]:
    """The first ``clips_per_actor`` ``(emotion, intensity, statement, repetition)`` codes of one actor.

    Ordered with the emotion varying fastest and normal intensity first, so any multiple of 8 (of 6 for
    song) gives balanced classes; at most 60 (song: 44) exist, as in RAVDESS (no strong neutral).
    """
    emotions = range(1, 9) if vocal_channel == 1 else range(1, 7)
    codes = [
        (emotion, intensity, statement, repetition)
        for intensity in (1, 2)
        for repetition in (1, 2)
        for statement in (1, 2)
        for emotion in emotions
        if not (emotion == 1 and intensity == 2)
    ]
    if clips_per_actor > len(codes):
        raise ValueError(f"At most {len(codes)} clips per actor exist, got {clips_per_actor}")
    return codes[:clips_per_actor]


def _actor_style(seed: int, actor: int) -> dict:
    rng = np.random.default_rng([seed, actor, 7])
    return {
        "background": rng.uniform(70, 170, size=3) + rng.uniform(-15, 15),
        "square": rng.uniform(0.5, 0.7),
        "offset": rng.uniform(-0.05, 0.05, size=2),
        "colour_jitter": rng.uniform(-20, 20, size=3),
        "pitch": rng.uniform(0.85, 1.15),
        "noise": rng.uniform(6, 14),
        "audio_noise": rng.uniform(0.01, 0.04),
        "syllable_rate": rng.uniform(3.0, 5.0),
        "light": -rng.uniform(30, 60),
    }


def render_clip(
    config: SyntheticCorpusConfig, actor: int, emotion: int, intensity: int, statement: int, repetition: int
) -> tuple[np.ndarray, np.ndarray]:
    """Frames ``(T, H, W, 3)`` uint8 and mono waveform ``(1, N)`` of one synthetic clip (deterministic)."""
    style = _actor_style(config.seed, actor)
    rng = np.random.default_rng([config.seed, actor, emotion, intensity, statement, repetition])
    visual, audio_cue = emotion_cues(emotion)
    n_frames = max(1, int(round(config.duration * config.fps)))
    h, w = config.height, config.width
    # audio first: the mouth of the video follows its syllable envelope, as a talking face does
    n = int(round(config.duration * config.sample_rate))
    t = np.arange(n) / config.sample_rate
    f0 = CUE_FREQUENCIES[audio_cue] * style["pitch"] * rng.uniform(0.97, 1.03)
    tone = np.sin(2 * np.pi * f0 * t) + 0.4 * np.sin(2 * np.pi * 2 * f0 * t + rng.uniform(0, np.pi))
    phase = rng.uniform(0, 2 * np.pi)
    envelope = 0.55 + 0.45 * np.sin(2 * np.pi * style["syllable_rate"] * t + phase)
    fade = np.minimum(1.0, np.minimum(t, t[-1] - t) / 0.05)
    wave = 0.5 * tone * envelope * fade / 1.4
    wave = wave + rng.normal(0, style["audio_noise"], size=n)
    wave = np.clip(wave, -1, 1).astype(np.float32)
    # video: actor background lit from above + a large square of the cue colour drifting slowly, drawn as a
    # cartoon face (two dark eyes, a mouth opening with the envelope) + per-frame noise. The face and the light
    # give masked pre-training spatial structure to predict (flat colour + noise normalises to pure noise);
    # intensity, statement and repetition only change the noise draw: a cue tied to them could leak the label
    side = int(h * style["square"])
    colour = np.clip(np.array(CUE_COLOURS[visual], dtype=np.float64) + style["colour_jitter"], 0, 255)
    dark = colour * 0.2
    frames = np.empty((n_frames, h, w, 3), dtype=np.float32)
    frames[:] = style["background"]
    centre = np.array([h / 2, w / 2]) + style["offset"] * np.array([h, w])
    drift = rng.uniform(-0.04, 0.04, size=2) * np.array([h, w])
    eye, mouth_w = max(1, int(side * 0.16)), max(2, int(side * 0.5))
    for i in range(n_frames):
        cy, cx = (centre + drift * (i / max(1, n_frames - 1) - 0.5)).astype(int)
        y0, x0 = max(0, cy - side // 2), max(0, cx - side // 2)
        frames[i, y0 : y0 + side, x0 : x0 + side] = colour
        ey = y0 + int(side * 0.22)
        for ex in (x0 + int(side * 0.2), x0 + side - int(side * 0.2) - eye):
            frames[i, ey : ey + eye, ex : ex + eye] = dark
        opening = 0.55 + 0.45 * np.sin(2 * np.pi * style["syllable_rate"] * i / config.fps + phase)
        mouth_h = max(1, int(side * (0.05 + 0.2 * opening)))
        my, mx = y0 + int(side * 0.72) - mouth_h // 2, x0 + (side - mouth_w) // 2
        frames[i, my : my + mouth_h, mx : mx + mouth_w] = dark
    frames += (np.linspace(-0.5, 0.5, h, dtype=np.float32) * style["light"])[None, :, None, None]
    frames += rng.standard_normal(size=frames.shape, dtype=np.float32) * style["noise"]
    frames = np.clip(frames, 0, 255).astype(np.uint8)
    return frames, wave[None]


def _encode(config: SyntheticCorpusConfig, actor: int, codes: tuple, with_audio: bool, tmpdir: str) -> bytes:
    from .media_writing import write_clip

    frames, wave = render_clip(config, actor, *codes)
    path = os.path.join(tmpdir, "clip.mp4")
    write_clip(path, frames, config.fps, wave if with_audio else None, sample_rate=config.sample_rate)
    with open(path, "rb") as f:
        return f.read()


def _write_actor(args: tuple[SyntheticCorpusConfig, str, int]) -> list[str]:
    config, output_dir, actor = args
    written = []
    channels = [1, 2] if config.include_song else [1]
    with tempfile.TemporaryDirectory() as tmpdir:
        for channel in channels:
            name = ravdess_archive_name(actor, "speech" if channel == 1 else "song")
            path = os.path.join(output_dir, name)
            codes = clip_codes(min(config.clips_per_actor, 60 if channel == 1 else 44), channel)
            tmp_path = path + ".part"
            with zipfile.ZipFile(tmp_path, "w", compression=zipfile.ZIP_STORED) as zf:
                for i, code in enumerate(codes):
                    for modality in (1, 2) if i < config.video_only_per_actor else (1,):
                        member = f"Actor_{actor:02d}/" + ravdess_file_name(*code, actor, modality, channel)
                        zf.writestr(member, _encode(config, actor, code, modality == 1, tmpdir))
            os.replace(tmp_path, path)
            written.append(path)
    return written


def make_synthetic_corpus(
    output_dir: str,
    num_actors: int = 24,
    clips_per_actor: int = 16,
    seed: int = 0,
    num_workers: int = 0,
    overwrite: bool = False,
    **kwargs,
) -> str:
    """Write a synthetic RAVDESS-format corpus (see the module docstring) and return ``output_dir``.

    Args:
        output_dir: folder receiving ``Video_Speech_Actor_NN.zip`` files and ``synthetic_corpus.json``.
        num_actors: actors 1..num_actors (odd male, even female as in RAVDESS); at least 5 for the folds (7 for
            fold 1).
        clips_per_actor: audio-visual clips per actor (multiples of 8 give balanced classes; at most 60).
        seed: everything is a deterministic function of the seed (same bytes for the same settings).
        num_workers: processes writing actors in parallel (0: in this process).
        overwrite: rewrite a corpus that already exists with the same settings.
        **kwargs: other :class:`SyntheticCorpusConfig` fields (``duration``, ``fps``, ``width``, ``height``,
            ``sample_rate``, ``video_only_per_actor``, ``include_song``).
    """
    config = SyntheticCorpusConfig(num_actors=num_actors, clips_per_actor=clips_per_actor, seed=seed, **kwargs)
    os.makedirs(output_dir, exist_ok=True)
    meta_path = os.path.join(output_dir, METADATA_FILE)
    meta = {
        "config": asdict(config),
        "renderer": RENDERER_VERSION,
        "emotions": {
            name: {
                "visual_cue_rgb": CUE_COLOURS[emotion_cues(i + 1)[0]],
                "audio_cue_hz": CUE_FREQUENCIES[emotion_cues(i + 1)[1]],
            }
            for i, name in enumerate(RAVDESS_EMOTIONS)
        },
    }
    if not overwrite and os.path.exists(meta_path):
        with open(meta_path) as f:
            present = json.load(f)
        if present.get("config") == meta["config"] and present.get("renderer") == RENDERER_VERSION:
            logger.info("Reusing the synthetic corpus in %s", output_dir)
            return output_dir
        if present.get("config") == meta["config"]:
            logger.warning("%s was drawn by an older version of the synthetic corpus: writing it again", output_dir)
    from tqdm.auto import tqdm

    logger.info("Writing the synthetic corpus (%d actors x %d clips) to %s", num_actors, clips_per_actor, output_dir)
    jobs = [(config, output_dir, actor) for actor in range(1, num_actors + 1)]
    if num_workers and num_workers > 1:
        import multiprocessing

        with multiprocessing.get_context(
            "fork" if "fork" in multiprocessing.get_all_start_methods() else "spawn"
        ).Pool(num_workers) as pool:
            actors = pool.imap_unordered(_write_actor, jobs)
            list(tqdm(actors, total=len(jobs), desc="synthetic actors", disable=None))  # a bar on a terminal only
    else:
        for job in tqdm(jobs, desc="synthetic actors", disable=None):
            _write_actor(job)
    with open(meta_path, "w") as f:
        json.dump(meta, f, indent=1)
    return output_dir


def main(argv: Optional[Sequence[str]] = None) -> None:
    """Command line: ``python -m mmder_hf.data.synthetic --output_dir DIR [--num_actors N] ...``."""
    import argparse

    parser = argparse.ArgumentParser(
        description="Write a synthetic RAVDESS-format audio-visual corpus: Video_Speech_Actor_NN.zip files of clips "
        "whose emotion is a coloured square (the face) times a tone (the voice), read by the RAVDESS builder.",
        formatter_class=argparse.ArgumentDefaultsHelpFormatter,
    )
    add = parser.add_argument
    add("--output_dir", required=True, help="folder receiving the zips and synthetic_corpus.json")
    add("--num_actors", type=int, default=24, help="actors 1..N (odd male, even female); at least 7 for fold 1")
    add("--clips_per_actor", type=int, default=16, help="audio-visual clips per actor (multiples of 8 are balanced)")
    add("--video_only_per_actor", type=int, default=2, help="extra video-only 02-... files per actor, as RAVDESS")
    add("--duration", type=float, default=2.0, help="seconds per clip")
    add("--fps", type=int, default=15, help="video frames per second")
    add("--width", type=int, default=128, help="frame width in pixels")
    add("--height", type=int, default=72, help="frame height in pixels")
    add("--sample_rate", type=int, default=16000, help="audio samples per second (mono)")
    add("--seed", type=int, default=0, help="everything is a deterministic function of the seed")
    add("--include_song", action="store_true", help="also write sung clips (vocal channel 02), as RAVDESS")
    add("--num_workers", type=int, default=0, help="processes writing actors in parallel (0: this process)")
    add("--overwrite", action="store_true", help="write again a corpus that exists with the same settings")
    args = vars(parser.parse_args(argv))
    make_synthetic_corpus(args.pop("output_dir"), **args)


if __name__ == "__main__":
    logging.basicConfig(level=logging.INFO)
    main()


__all__ = [
    "METADATA_FILE",
    "RENDERER_VERSION",
    "is_synthetic_source",
    "CUE_COLOURS",
    "CUE_FREQUENCIES",
    "SyntheticCorpusConfig",
    "clip_codes",
    "emotion_cues",
    "make_synthetic_corpus",
    "render_clip",
]
