"""Is a media file cut short? What a file's container declares against what its packets (or decoded samples) reach.

A file cut short keeps its header, so the declared duration survives while the streams stop early; a cut that leaves
an incomplete last packet also makes the decoder fail, which ``media`` reports as well. Nothing here decodes video:
the checks read metadata (the packet scan an exact-mode ``VideoDecoder`` has done) and, where a header is silent,
the last moments of an audio track.
"""

from __future__ import annotations

import os
import struct
from typing import Any, Optional


#: How far (seconds) a file's streams may end before the duration its container declares before the file counts as
#: truncated; 1 % of the declared duration when that is larger (some containers only estimate their duration).
TRUNCATION_TOLERANCE = 0.1


def allowed_shortfall(declared: float) -> float:
    """How far short of ``declared`` seconds a file's streams may end and still count as complete."""
    return max(TRUNCATION_TOLERANCE, 0.01 * declared)


def scanned_container_metadata(decoder: Any) -> Any:
    """The container metadata of an open torchcodec decoder, with what its packet scan found (raises if unavailable).

    The one place that reaches into torchcodec's private API (``torchcodec._core`` and ``decoder._decoder``; pinned by
    ``tests/test_dependency_pins.py``). No public call gives this: the public
    ``torchcodec.decoders.get_container_metadata(source)`` reads the header again, so its streams lack the scanned
    ``duration_seconds`` / ``begin_stream_seconds`` that tell where an audio track ends (a Matroska or FLV header
    declares no stream durations at all), and it needs the source, which an open decoder does not give back.
    """
    from torchcodec import _core

    return _core.get_container_metadata(decoder._decoder)


def container_metadata(decoder: Any, data: Any = None) -> Any:
    """The container metadata behind an open torchcodec decoder, or ``None``.

    Read from the decoder itself (no reopening); after the packet scan of ``seek_mode="exact"`` its streams carry
    what the scan found. Where that is unavailable, the header of ``data`` is read again with torchcodec's public
    ``get_container_metadata`` instead (container duration only).
    """
    try:
        return scanned_container_metadata(decoder)
    except Exception:
        pass
    if data is None:
        return None
    try:
        from torchcodec.decoders import get_container_metadata

        return get_container_metadata(bytes(data) if isinstance(data, (bytearray, memoryview)) else data)
    except Exception:
        return None


def truncation_text(end: float, declared: float, what: str = "its streams end") -> str:
    return f"truncated file: {what} at {end:.2f} s but its container declares {declared:.2f} s"


def audio_reaches(data: Any, until: float, tolerance: float) -> bool:
    """Whether the audio track of ``data`` has samples up to ``until`` (decodes only its last moments)."""
    from torchcodec.decoders import AudioDecoder

    try:
        samples = AudioDecoder(data).get_samples_played_in_range(max(0.0, until - 4 * tolerance), until)
    except Exception:
        return False
    return samples.data.shape[-1] > 0 and float(samples.pts_seconds) + samples.duration_seconds >= until - tolerance


def video_truncation(decoder: Any, data: Any = None) -> Optional[str]:
    """Why the file behind a scanned ``VideoDecoder`` is truncated, or ``None``; metadata only, nothing is decoded.

    The file is truncated when none of its streams reaches the duration its container declares (within
    :data:`TRUNCATION_TOLERANCE`): the video's end is known from the packet scan, an audio track's from the same
    scan. Without a scan (``seek_mode="approximate"``) nothing is known, and only decoding errors reveal a cut.
    """
    content_end = decoder.metadata.end_stream_seconds_from_content
    if content_end is None:
        return None
    info = container_metadata(decoder, data)
    declared = getattr(info, "duration_seconds_from_header", None)
    if not declared or declared <= 0:  # nothing declared (some live recordings): nothing to compare with
        return None
    tolerance = allowed_shortfall(declared)
    if content_end >= declared - tolerance:
        return None
    # The video stops early; that is fine when a longer audio track reaches the declared end.
    ends, unknown = [float(content_end)], False
    for stream in info.streams:
        if stream.media_type != "audio":
            continue
        duration = getattr(stream, "duration_seconds", None)
        if duration is None:  # header-only metadata: no scan result for this stream
            unknown = True
            continue
        ends.append(float(getattr(stream, "begin_stream_seconds", None) or 0.0) + float(duration))
    if max(ends) >= declared - tolerance:
        return None
    if unknown and data is not None and audio_reaches(data, declared, tolerance):
        return None
    return truncation_text(max(ends), declared)


def wav_missing_seconds(data: Any) -> Optional[float]:
    """Seconds of audio a RIFF/WAVE header declares beyond the end of the file; ``None`` if not a WAV (or unknown).

    FFmpeg derives a WAV file's duration from the file's size, so a cut WAV looks complete to it; its ``data``
    chunk still says how long it was. Reads the first 64 KiB only.
    """
    try:
        if isinstance(data, (bytes, bytearray, memoryview)):
            head, size = bytes(data[:65536]), len(data)
        elif isinstance(data, str) and os.path.isfile(data):
            with open(data, "rb") as f:
                head = f.read(65536)
            size = os.path.getsize(data)
        else:
            return None
    except OSError:
        return None
    if len(head) < 12 or head[:4] != b"RIFF" or head[8:12] != b"WAVE":
        return None
    pos, byte_rate = 12, 0
    while pos + 8 <= len(head):
        chunk, length = head[pos : pos + 4], struct.unpack_from("<I", head, pos + 4)[0]
        if chunk == b"fmt " and pos + 20 <= len(head):
            byte_rate = struct.unpack_from("<I", head, pos + 16)[0]
        elif chunk == b"data":
            if not byte_rate or length in (0, 0xFFFFFFFF):  # streamed WAVs leave the size open
                return None
            return max(0, length - (size - pos - 8)) / byte_rate
        pos += 8 + length + (length & 1)
    return None


def audio_truncation(decoder: Any, data: Any, decoded_end: float, requested_end: Optional[float]) -> Optional[str]:
    """Why an audio track whose decoding stopped at ``decoded_end`` is truncated, or ``None``.

    Compared with the end the stream's header declares (or, without one, the container's duration) clipped to the
    requested range. When the container also holds a video, its duration may be the video's (legitimately longer
    than the audio): then the video's packets are scanned (no decoding) to tell a cut file from a short track.
    """
    missing = wav_missing_seconds(data)
    if missing is not None and missing > TRUNCATION_TOLERANCE:
        return f"truncated file: its WAV header declares {missing:.2f} s more audio than the file holds"
    meta = decoder.metadata
    with_video = False
    if meta.duration_seconds_from_header:
        declared = float(meta.begin_stream_seconds_from_header or 0.0) + float(meta.duration_seconds_from_header)
    else:
        info = container_metadata(decoder, data)
        declared = getattr(info, "duration_seconds_from_header", None)
        with_video = any(stream.media_type == "video" for stream in getattr(info, "streams", ()))
    if not declared or declared <= 0:
        return None
    tolerance = allowed_shortfall(declared)
    expected = declared if requested_end is None else min(float(requested_end), declared)
    if decoded_end >= expected - tolerance:
        return None
    if with_video:
        from torchcodec.decoders import VideoDecoder

        try:
            video_end = VideoDecoder(data, seek_mode="exact").metadata.end_stream_seconds_from_content
        except Exception:
            video_end = None
        if video_end is None or video_end >= declared - tolerance:
            return None
    return truncation_text(decoded_end, declared, "its audio ends")


__all__ = [
    "TRUNCATION_TOLERANCE",
    "allowed_shortfall",
    "audio_reaches",
    "audio_truncation",
    "container_metadata",
    "scanned_container_metadata",
    "truncation_text",
    "video_truncation",
    "wav_missing_seconds",
]
