"""Writing audio-visual media files: the synthetic corpus, publishing and the tests encode clips here.

H.264 + AAC mp4 through PyAV, which bundles its own FFmpeg with both encoders. Reading lives in the shipped
``models/multimae_der/media.py``; writing never ships with a checkpoint.
"""

from __future__ import annotations

import os
import shutil
from fractions import Fraction
from typing import Optional, Union

import av
import numpy as np


def write_clip(
    path: Union[str, os.PathLike],
    frames: np.ndarray,
    fps: float,
    audio: Optional[np.ndarray] = None,
    sample_rate: int = 48000,
    video_codec: str = "libx264",
    audio_codec: str = "aac",
    crf: int = 23,
) -> str:
    """Encode ``frames`` (``(T, H, W, 3)`` uint8 RGB) and an optional waveform into a media file.

    Args:
        path: output file; the container is chosen from its extension (``.mp4``, ``.mkv``, ``.flv``...).
        frames: RGB frames. H.264 with yuv420p needs even sizes, so odd sizes are padded by one pixel.
        fps: frame rate.
        audio: waveform in [-1, 1], shaped ``(channels, samples)`` or ``(samples,)``; ``None`` writes no
            audio track.
        sample_rate: audio sampling rate in Hz.
    """

    frames = np.asarray(frames)
    if frames.ndim != 4 or frames.shape[-1] != 3 or frames.dtype != np.uint8:
        raise ValueError(f"frames must be uint8 of shape (T, H, W, 3), got {frames.dtype} {frames.shape}")
    pad_h, pad_w = frames.shape[1] % 2, frames.shape[2] % 2
    if pad_h or pad_w:
        frames = np.pad(frames, ((0, 0), (0, pad_h), (0, pad_w), (0, 0)), mode="edge")
    path = os.fspath(path)
    with av.open(path, mode="w") as container:
        rate = Fraction(fps).limit_denominator(1001)
        vstream = container.add_stream(video_codec, rate=rate)
        vstream.width, vstream.height = frames.shape[2], frames.shape[1]
        vstream.pix_fmt = "yuv420p"
        if video_codec == "libx264":
            vstream.options = {"crf": str(crf), "preset": "veryfast"}
        astream = None
        if audio is not None:
            audio = np.asarray(audio, dtype=np.float32)
            if audio.ndim == 1:
                audio = audio[None]
            layout = {1: "mono", 2: "stereo"}.get(audio.shape[0])
            if layout is None:
                raise ValueError(f"audio must have 1 or 2 channels, got {audio.shape[0]}")
            astream = container.add_stream(audio_codec, rate=sample_rate, layout=layout)
        for image in frames:
            for packet in vstream.encode(av.VideoFrame.from_ndarray(image, format="rgb24")):
                container.mux(packet)
        for packet in vstream.encode():
            container.mux(packet)
        if astream is not None:
            chunk = 1024
            samples = np.clip(audio, -1.0, 1.0)
            for start in range(0, samples.shape[1], chunk):
                block = np.ascontiguousarray(samples[:, start : start + chunk])
                frame = av.AudioFrame.from_ndarray(block, format="fltp", layout=astream.layout.name)
                frame.sample_rate = sample_rate
                frame.pts = start
                for packet in astream.encode(frame):
                    container.mux(packet)
            for packet in astream.encode():
                container.mux(packet)
    return path


def write_row_clip(row: dict, path: Union[str, os.PathLike], audio_sample_rate: int = 16000) -> str:
    """One dataset row as one self-contained clip: what the model reads from it, in a single mp4.

    A row whose video file holds its audio and no time range is copied as it is. Otherwise (a separate audio file,
    as CREMA-D's wav, or a segment of a longer video, as an IEMOCAP utterance) the frames of the row's time range
    and the audio it reads (mono, at ``audio_sample_rate``) are muxed into one H.264 + AAC clip.

    Args:
        row: ``video`` (and optionally ``audio``) as undecoded ``{"path", "bytes"}`` dicts or paths, plus the optional
            ``start`` / ``end`` / ``audio_start`` seconds the collator reads.
        path: the mp4 to write.
    """
    from ..models.multimae_der.media import decode_clip, open_video_decoder, stream_span
    from .collate import media_source

    video, audio = media_source(row["video"]), media_source(row.get("audio"))
    start, end = row.get("start"), row.get("end")
    separate = audio is not None and audio != video
    if not separate and start is None and end is None:
        if isinstance(video, (bytes, bytearray)):
            with open(path, "wb") as f:
                f.write(video)
        else:
            shutil.copyfile(video, path)
        return os.fspath(path)
    decoder = open_video_decoder(video)
    begin, stop = stream_span(decoder)
    begin, stop = (begin if start is None else float(start)), (stop if end is None else float(end))
    frames = decoder.get_frames_played_in_range(begin, stop).data.permute(0, 2, 3, 1).numpy()
    fps = float(decoder.metadata.average_fps or max(1.0, len(frames) / (stop - begin)))
    offset = float(row.get("audio_start") or 0.0) if separate else 0.0
    waveform = decode_clip(
        audio if separate else video,
        num_video_frames=0,
        audio_sample_rate=audio_sample_rate,
        clip_start=max(0.0, begin - offset),
        clip_end=stop - offset,
    ).waveform
    return write_clip(path, frames, fps, audio=waveform.numpy(), sample_rate=audio_sample_rate)


__all__ = ["write_clip", "write_row_clip"]
