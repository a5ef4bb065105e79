"""Checking media before they reach training: :func:`probe_media` demuxes a file once (no decoding) and says why it
is unusable.

It is its own module because the corpus builders and the pre-training clip checks both use it, and it needs PyAV
and the media module's truncation rules, which the bad-data report and the source listing do not.
"""

from __future__ import annotations

import io
import os
from typing import Optional, Union

from .bad_data import TRUNCATED_MEDIA, TRUNCATED_PACKET, TRUNCATED_WAV
from .sources import open_location


def probe_media(data: Union[bytes, str], need_video: bool = True, need_audio: bool = True) -> Optional[str]:
    """Return why ``data`` (bytes or a path) is unusable, or ``None`` when it has the required streams.

    Demuxes every packet once (no decoding, a small fraction of a decode's cost): a container that does not open
    is "corrupt media", a missing stream is "no video stream" / "no audio track", an audio track without a single
    non-empty packet is "empty audio", a file cut short is "truncated media (...)" (its streams stop more than
    :data:`~mmder_hf.models.multimae_der.truncation.TRUNCATION_TOLERANCE` seconds, or 1 %, before the duration its
    container declares, its last packet is incomplete, or its WAV header declares more data than it holds), and a
    file that fails or holds damaged packets in the middle is "corrupt media (...)".
    """
    import av

    from ..models.multimae_der.truncation import TRUNCATION_TOLERANCE, allowed_shortfall, wav_missing_seconds

    missing = wav_missing_seconds(data)
    if missing is not None and missing > TRUNCATION_TOLERANCE:
        return TRUNCATED_WAV
    try:
        with av.open(io.BytesIO(data) if isinstance(data, (bytes, bytearray)) else data) as container:
            if need_video and not container.streams.video:
                return "no video stream"
            if need_audio and not container.streams.audio:
                return "no audio track"
            audio = container.streams.audio[0].index if container.streams.audio else None
            audio_bytes, end, last_corrupt, damaged = 0, None, {}, False
            try:
                for packet in container.demux():
                    if not packet.size:  # the demuxer's flush packets
                        continue
                    index = packet.stream.index
                    if index == audio:
                        audio_bytes += packet.size
                    if last_corrupt.get(index):
                        damaged = True  # a damaged packet that is not the stream's last one
                    last_corrupt[index] = packet.is_corrupt
                    if packet.pts is not None and packet.time_base is not None:
                        packet_end = float((packet.pts + (packet.duration or 0)) * packet.time_base)
                        end = packet_end if end is None else max(end, packet_end)
            except (av.error.FFmpegError, OSError) as err:
                return f"corrupt media ({type(err).__name__} while demuxing)"
            if need_audio and not audio_bytes:
                return "empty audio"
            if any(last_corrupt.values()):
                return TRUNCATED_PACKET
            if damaged:
                return "corrupt media (damaged packets)"
            declared = container.duration / av.time_base if container.duration else None
            if declared and end is not None and end < declared - allowed_shortfall(declared):
                return TRUNCATED_MEDIA
    except (av.error.FFmpegError, OSError, ValueError) as err:
        return f"corrupt media ({type(err).__name__})"
    return None


def probe_location(location: str, need_video: bool = True, need_audio: bool = True) -> Optional[str]:
    """:func:`probe_media` on a local path or a remote URL (``hf://``...), which is read into memory.

    (Told apart by the ``://``: datasets patches a builder module's ``os.path.exists`` to say yes to URLs too, which
    FFmpeg cannot open, so the check does not rely on it.)
    """
    if "://" not in location and os.path.exists(location):
        return probe_media(location, need_video=need_video, need_audio=need_audio)
    try:
        with open_location(location) as f:
            data = f.read()
    except (OSError, ValueError) as err:
        return f"missing file ({type(err).__name__})"
    if not data:
        return "empty file"
    return probe_media(data, need_video=need_video, need_audio=need_audio)


__all__ = ["probe_location", "probe_media"]
