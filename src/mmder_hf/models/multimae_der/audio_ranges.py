"""Many time ranges of one file's audio track, each read as a decoder opened for that range alone reads it.

A clip's audio is what a fresh torchcodec ``AudioDecoder`` gives for the clip's range (``media.read_clip_audio``):
FFmpeg's AAC decoder keeps state across a seek, so samples depend on what the same decoder decoded before, and a
fresh decoder is the one reproducible reference. Opening a decoder costs a container open (~10 ms for a
one-minute MP4), several times the decoding of a 3 s range; a timeline reads hundreds of ranges.

:class:`AudioRanges` opens the container once (torchcodec's ``Demuxer``) and, per range, seeks it and decodes with a
fresh packet decoder, doing what ``AudioDecoder.get_samples_played_in_range`` does (torchcodec 0.17): seek
``4 * frame_size`` samples before the range (the codec's pre-roll), or read from the first packet when that is at
the stream's start; keep the decoded frames that overlap the range, stopping at the frame holding its end; cut the
range out of them, rounding half up. Positions are compared in samples, which is exact when the stream's time base
is one sample, as MP4 (QuickTime) writers make it for audio.

Only what this is known to reproduce takes this route: AAC (1024-sample frames) in an MP4-family file, checked on
every frame decoded (timestamps on the sample grid, 1024 samples apart). Anything else, or any frame that breaks
the pattern, is read by a fresh ``AudioDecoder`` for that range instead, so the samples are the clip's either way.
"""

from __future__ import annotations

import functools
import math
from typing import Any, Optional

import torch

from .mp4_audio import is_mp4_family, open_audio


#: Codec pre-roll of torchcodec's ranged audio reads, in codec frames (see the module docstring).
PREROLL_FRAMES = 4
#: Samples per frame of the codecs read here (AAC-LC).
FRAME_SIZE = 1024


class AudioRanges:
    """Reads ``[start, end)`` ranges of ``data``'s audio track as a fresh ``AudioDecoder`` reads each.

    Args:
        data (`str` or `bytes`): the media file (path or its bytes), already checked (``media.check_source``).

    Attributes:
        fast_reads (`int`), fallback_reads (`int`): ranges read through the shared demuxer, and by a fresh decoder.
    """

    def __init__(self, data: Any):
        self.data = data
        self.fast_reads = self.fallback_reads = 0
        self._demuxer: Any = None
        self._usable = False
        #: Where the audio stream begins (seconds), as an ``AudioDecoder``'s metadata says: reads start no earlier.
        self.begin_seconds = 0.0
        try:
            from torchcodec.decoders import Demuxer

            demuxer = open_audio(functools.partial(Demuxer, streams="audio"), data)
        except (ImportError, ValueError, RuntimeError):
            return
        metadata = demuxer.streams[0].metadata
        self._usable = metadata.codec == "aac" and bool(metadata.sample_rate) and is_mp4_family(data)
        self._demuxer = demuxer
        self._rate = int(metadata.sample_rate or 0)
        self.begin_seconds = float(metadata.begin_stream_seconds_from_header or 0.0)
        self._begin = round(self.begin_seconds * self._rate)

    def read(self, start: float, end: float) -> tuple[torch.Tensor, float, int]:
        """``(samples, pts_seconds, sample_rate)`` of ``[start, end)``: ``(channels, n)`` float32, the time of the
        first sample and the rate, as ``AudioDecoder(data).get_samples_played_in_range(start, end)`` gives them."""
        if self._usable:
            result = self._read_shared(start, end)
            if result is not None:
                self.fast_reads += 1
                return (*result, self._rate)
            self._usable = False  # a frame off the expected pattern: this file is not what the fast route reproduces
        self.fallback_reads += 1
        from torchcodec.decoders import AudioDecoder

        samples = open_audio(AudioDecoder, self.data).get_samples_played_in_range(start, end)
        return samples.data, float(samples.pts_seconds), int(samples.sample_rate)

    def _read_shared(self, start: float, end: float) -> Optional[tuple[torch.Tensor, float]]:
        from torchcodec.decoders import Demuxer

        rate = self._rate
        start_pts, stop_pts = round(start * rate), round(end * rate)
        preroll = PREROLL_FRAMES * FRAME_SIZE / rate
        if round((start - preroll) * rate) > self._begin:
            self._demuxer.seek(start - preroll)
        else:  # a fresh decoder reads from the first packet (the AAC priming frame included): so do we
            self._demuxer = open_audio(functools.partial(Demuxer, streams="audio"), self.data)
        decoder = self._demuxer.streams[0].make_decoder()
        chunks: list[torch.Tensor] = []
        first: Optional[float] = None
        previous: Optional[int] = None  # the last frame's position; its successor must follow it at FRAME_SIZE
        last_seen = False  # a frame playing less than FRAME_SIZE: only the stream's last frame may
        packets = iter(self._demuxer)
        done = False
        while not done:
            packet = next(packets, None)
            for raw in decoder.decode(packet) if packet is not None else decoder.drain():
                position, length = raw.pts_seconds * rate, raw.duration_seconds * rate
                pts, duration = round(position), round(length)
                # The file's last frame may play less than it holds (the container trims the encoder's padding):
                # its duration, as torchcodec compares, is the played part.
                if abs(position - pts) > 1e-6 or raw.num_samples != FRAME_SIZE or not 0 < duration <= FRAME_SIZE:
                    return None
                if raw.data.dtype != torch.float32:  # AAC decodes to float planes, which need no conversion
                    return None
                if last_seen or (previous is not None and pts - previous != FRAME_SIZE):
                    return None
                previous, last_seen = pts, duration < FRAME_SIZE
                if start_pts < pts + duration and stop_pts > pts:
                    if first is None:
                        first = float(raw.pts_seconds)
                    chunks.append(raw.data)
                    if pts <= stop_pts <= pts + duration:
                        done = True
                        break
            if packet is None:
                break
        if first is None:
            return None  # nothing in range: the fresh decoder says why

        def offset(seconds: float) -> int:
            return math.floor((seconds - first) * rate + 0.5)

        data = torch.cat(chunks, dim=1)
        begin = offset(start) if first < start else 0
        return data[:, begin : min(data.shape[1], offset(end))], (start if first < start else first)


__all__ = ["AudioRanges"]
