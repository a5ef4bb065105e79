"""A clip's sampled frames decoded alone: H.264 read through PyAV, FFmpeg skipping the frames nothing needs.

torchcodec decodes every frame up to the last one asked for: its decoders have no ``skip_frame``. A clip samples 8
or 16 frames of a hundred, and in a B-frame stream (what cameras and phones record) about half the frames are
non-reference: no other frame is predicted from them. FFmpeg can skip those (``skip_frame="NONREF"``) unless one is
sampled, and nothing after the last sampled frame is needed: a third less decoding, outputs unchanged.

:func:`open_frame_reader` opens an H.264 file in an MP4-family container with PyAV (optional for a model's code)
and reads its packet index. :class:`FrameReader` then answers as torchcodec's exact mode does, to the bit:

- the stream's span and frame rate (:attr:`FrameReader.span`): first timestamp, latest ``pts + duration``, frames per
  second of that span, timestamps as ``pts * num / den`` in doubles (torchcodec's ``FrameIndex``);
- the frame shown at a time (:meth:`FrameReader.index_at`): the first frame that has not finished by then;
- which frames a read decodes: as torchcodec does, it seeks to the keyframe of a wanted frame unless the last decoded
  frame is in the same group of pictures, and decodes forward;
- the pixels: FFmpeg's RGB conversion of the same decoded frame (tested against torchcodec on every kind of clip
  the tests make).

Anything it does not know to reproduce (another codec or container, a rotated or 10-bit clip, a packet without
timestamp or duration, a decoder error) gives ``None``, and the clip is read by torchcodec.
"""

from __future__ import annotations

import bisect
import io
import itertools
from dataclasses import dataclass
from typing import Any, Callable, Optional, Sequence

import torch

from .mp4_audio import is_mp4_family


# 8-bit 4:2:0 only: the layouts whose RGB conversion is tested to equal torchcodec's.
PIXEL_FORMATS = ("yuv420p", "yuvj420p")


@dataclass
class _Packet:
    pts: int
    duration: int
    keyframe: bool


class FrameReader:
    """The packet index of one H.264 stream, and reads of frames by index through an open PyAV container.

    Attributes:
        num_frames (`int`): frames in the stream.
        span (`tuple[float, float, float]`): ``(begin, end, fps)`` as torchcodec's exact-mode metadata gives them.
        declared_duration (`float` or `None`): the container's duration, as its header declares it.
        frames_decoded (`int`), frames_converted (`int`): frames the last :meth:`read` decoded (skipped ones are not
            decoded), and converted to RGB (the wanted ones, once each).
    """

    def __init__(self, container: Any, stream: Any, packets: list[_Packet], num_threads: int, errors: tuple):
        self._errors = errors  # what the decoder raises (PyAV's error types, given by whoever imported it)
        self._container, self._stream = container, stream
        self._time_base = stream.time_base
        order = sorted(packets, key=lambda packet: packet.pts)  # presentation order
        self._ticks = [packet.pts for packet in order]
        ends = itertools.accumulate((packet.pts + packet.duration for packet in order), max)
        self._ends = [self.seconds(end) for end in ends]
        self._keyframes = [index for index, packet in enumerate(order) if packet.keyframe]
        self.num_frames = len(order)
        #: The container's duration (seconds), as its header declares it; ``None`` when it does not.
        self.declared_duration = container.duration / 1e6 if container.duration else None
        begin, end = self.seconds(self._ticks[0]), self._ends[-1]
        self.span = (begin, end, self.num_frames / (end - begin))
        self.frames_decoded = self.frames_converted = 0
        codec = stream.codec_context
        codec.thread_count = num_threads
        codec.thread_type = "NONE" if num_threads == 1 else "AUTO"

    def seconds(self, tick: int) -> float:
        """A timestamp in seconds, as torchcodec computes it (``pts * num / den`` in doubles)."""
        return float(tick) * self._time_base.numerator / self._time_base.denominator

    def index_at(self, seconds: float) -> int:
        """The frame shown at ``seconds``: the first that has not finished by then (the last one past the end)."""
        return min(bisect.bisect_right(self._ends, seconds), self.num_frames - 1)

    def _group(self, index: int) -> int:
        """The keyframe a frame is decoded from: the last at or before it (the first frame if none is)."""
        position = bisect.bisect_right(self._keyframes, index) - 1
        return self._keyframes[position] if position >= 0 else 0

    def read(
        self, indices: Sequence[int], transform: Optional[Callable[[torch.Tensor], torch.Tensor]] = None
    ) -> tuple[torch.Tensor, list[float]]:
        """The frames at ``indices`` (presentation order), ``(n, 3, H, W)`` uint8 as torchcodec lays them out (a view
        of ``(n, H, W, 3)`` memory), and their timestamps in seconds.

        ``transform`` (e.g. the resize to the model's size) is applied to each frame, ``(1, 3, H, W)``, as soon as it
        is converted, so that no full-size frame is kept; the frames returned are then the transformed ones.

        Raises ``LookupError`` when it cannot give them as torchcodec would (a decoder error included).
        """
        try:
            return self._read(indices, transform)
        except self._errors as error:
            raise LookupError(f"not read by this route: {error}") from error

    def _read(
        self, indices: Sequence[int], transform: Optional[Callable[[torch.Tensor], torch.Tensor]]
    ) -> tuple[torch.Tensor, list[float]]:
        wanted = sorted(set(indices))
        pixels: dict[int, Any] = {}
        self.frames_decoded = self.frames_converted = 0
        codec = self._stream.codec_context
        group_of = {index: self._group(index) for index in wanted}
        for group in sorted(set(group_of.values())):
            # as torchcodec: a seek to the keyframe of the wanted frames, which decodes nothing before it
            members = {self._ticks[index] for index in wanted if group_of[index] == group}
            self._container.seek(self._ticks[group], stream=self._stream, backward=True)
            codec.flush_buffers()
            for packet in itertools.chain(self._container.demux(self._stream), [None]):
                if packet is not None and packet.pts is not None:
                    codec.skip_frame = "DEFAULT" if packet.pts in members else "NONREF"
                for frame in codec.decode(packet):  # (None, at the end, drains the decoder)
                    self.frames_decoded += 1
                    if self.frames_decoded == 1 and getattr(frame, "rotation", 0):  # known from the first frame on
                        raise LookupError("a rotated video: torchcodec turns its frames")
                    if frame.pts in members and frame.pts not in pixels:
                        if frame.format.name not in PIXEL_FORMATS:
                            raise LookupError("a frame this reader does not reproduce")
                        image = torch.from_numpy(frame.to_ndarray(format="rgb24"))  # (H, W, 3)
                        self.frames_converted += 1
                        # copied out or transformed at once: the converted picture's memory is reused for the next
                        pixels[frame.pts] = transform(image.permute(2, 0, 1)[None]) if transform else image.clone()
                if members.issubset(pixels):
                    break
            if not members.issubset(pixels):
                raise LookupError("a wanted frame was not decoded")
        chosen = [pixels[self._ticks[index]] for index in indices]
        images = torch.cat(chosen) if transform else torch.stack(chosen).permute(0, 3, 1, 2)
        return images, [self.seconds(self._ticks[index]) for index in indices]

    def close(self) -> None:
        self._container.close()


def open_frame_reader(data: Any, num_threads: int = 1) -> Optional[FrameReader]:
    """A :class:`FrameReader` of ``data`` (a path or bytes), or ``None`` where this route is not taken (no PyAV, not
    an H.264 stream in an MP4-family file, a packet without timestamp or duration, or anything unreadable)."""
    try:
        import av
    except ImportError:
        return None
    if not is_mp4_family(data):
        return None
    try:
        container = av.open(io.BytesIO(data) if isinstance(data, (bytes, bytearray, memoryview)) else data)
    except (av.error.FFmpegError, OSError, ValueError):
        return None
    try:
        streams = container.streams.video
        stream = streams[0] if streams else None
        if stream is None or stream.codec_context.name != "h264" or stream.codec_context.pix_fmt not in PIXEL_FORMATS:
            raise LookupError("not an 8-bit 4:2:0 H.264 stream")
        packets = []
        for packet in container.demux(stream):
            if packet.size == 0:
                continue
            if packet.pts is None or not packet.duration or packet.is_discard:
                raise LookupError("a packet this reader does not reproduce")
            packets.append(_Packet(packet.pts, packet.duration, packet.is_keyframe))
        if len(packets) < 2 or len({packet.pts for packet in packets}) != len(packets):
            raise LookupError("too few frames, or two with one timestamp")
        return FrameReader(container, stream, packets, num_threads, (av.error.FFmpegError, OSError, ValueError))
    except (LookupError, av.error.FFmpegError, OSError, ValueError):
        container.close()
        return None


__all__ = ["FrameReader", "PIXEL_FORMATS", "open_frame_reader"]
