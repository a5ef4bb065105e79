"""A video file's audio track alone, as a file object: an audio decoder opened on a video without probing the video.

Opening a container makes FFmpeg probe every stream it holds (``avformat_find_stream_info``), and probing an H.264
stream means decoding its first frames: about 8 ms for a 720p clip, fifteen times the cost of opening its audio. A
clip's audio decoder pays that for nothing, and it is a tenth of preparing a clip.

An ISO base media file (MP4, MOV, M4A, 3GP) lists its tracks as ``trak`` boxes inside its ``moov`` box. Renaming a
video track's box to ``free`` (a box that every reader skips) leaves a file whose only track is the audio, its
samples where they were: the same packets, codec setup, edit list and timestamps, so a decoder gives the same
samples. :func:`audio_only_view` makes that rename on the fly, on reads: the file is not touched and not copied.
Anything it does not recognise (another container, a fragmented MP4, no video track, a malformed box) gets ``None``,
and the file is opened as it is.
"""

from __future__ import annotations

import io
import os
import struct
from typing import Any, Callable, Iterator, Optional, TypeVar


# ``moov`` boxes past this size are left alone (read whole into memory to find the tracks; a 2-hour phone video's
# is about 10 MiB).
MAX_MOOV_BYTES = 64 * 2**20
_HIDDEN = b"free"
_Opened = TypeVar("_Opened")


def _boxes(read: Callable[[int, int], bytes], start: int, end: int) -> Iterator[tuple[int, int, int, bytes]]:
    """``(offset, size, header_size, type)`` of the boxes laid end to end in ``[start, end)``."""
    position = start
    while position + 8 <= end:
        head = read(position, 16)
        if len(head) < 8:
            return
        size, kind = struct.unpack(">I4s", head[:8])
        header = 8
        if size == 1:  # 64-bit size
            if len(head) < 16:
                return
            size, header = struct.unpack(">Q", head[8:16])[0], 16
        elif size == 0:  # to the end of the enclosing box (or file)
            size = end - position
        if size < header or position + size > end:
            raise ValueError("malformed box")
        yield position, size, header, kind
        position += size


def _video_track_types(moov: bytes, header: int) -> Optional[list[int]]:
    """Offsets (within the ``moov`` box, whose header is ``header`` bytes) of the type fields of its video ``trak``
    boxes, if it also has an audio track and is not fragmented; else ``None``."""

    def read(position: int, count: int) -> bytes:
        return moov[position : position + count]

    video, audio = [], 0
    for track, size, track_header, kind in _boxes(read, header, len(moov)):
        if kind == b"mvex":  # fragmented: samples are described in moof boxes, per track
            return None
        if kind != b"trak":
            continue
        for media, media_size, media_header, media_kind in _boxes(read, track + track_header, track + size):
            if media_kind != b"mdia":
                continue
            for box, box_size, box_header, box_kind in _boxes(read, media + media_header, media + media_size):
                if box_kind == b"hdlr":  # version/flags (4), pre_defined (4), handler_type (4)
                    handler = read(box + box_header + 8, 4)
                    if handler == b"vide":
                        video.append(track + 4)
                    elif handler == b"soun":
                        audio += 1
    return video if video and audio else None


class _PatchedFile(io.RawIOBase):
    """A read-only binary file whose bytes at some offsets read as others."""

    def __init__(self, handle: Any, patches: dict[int, bytes]):
        self._handle = handle
        self._patches = patches

    def readable(self) -> bool:
        return True

    def seekable(self) -> bool:
        return True

    def seek(self, offset: int, whence: int = io.SEEK_SET) -> int:
        return self._handle.seek(offset, whence)

    def tell(self) -> int:
        return self._handle.tell()

    def readinto(self, buffer: Any) -> int:
        start = self._handle.tell()
        count = self._handle.readinto(buffer)
        if not count:
            return count or 0
        view = memoryview(buffer).cast("B")
        for offset, replacement in self._patches.items():
            for k, byte in enumerate(replacement):
                if start <= offset + k < start + count:
                    view[offset + k - start] = byte
        return count

    def close(self) -> None:
        if not self.closed:
            self._handle.close()
        super().close()


def is_mp4_family(data: Any) -> bool:
    """Whether ``data`` (a path or bytes) is an ISO base media file (MP4, MOV, M4A, 3GP): an ``ftyp`` box first."""
    if isinstance(data, (bytes, bytearray, memoryview)):
        head = bytes(data[:12])
    else:
        try:
            with open(data, "rb") as handle:
                head = handle.read(12)
        except (OSError, TypeError):
            return False
    return _starts_with_ftyp(head)


def _starts_with_ftyp(head: bytes) -> bool:
    return len(head) >= 8 and head[4:8] == b"ftyp"


def audio_only_view(data: Any) -> Optional[io.RawIOBase]:
    """``data`` (a path or bytes of an MP4-family file with video and audio tracks) as a file object in which only
    the audio tracks are listed, or ``None`` when that is not such a file. The caller closes it (decoders keep it)."""
    if isinstance(data, (bytes, bytearray, memoryview)):
        handle: Any = io.BytesIO(data)
        length = len(data)
    elif isinstance(data, (str, os.PathLike)):
        try:
            handle = open(data, "rb")  # noqa: SIM115 (owned by the view, closed with it)
            length = os.fstat(handle.fileno()).st_size
        except OSError:
            return None
    else:
        return None

    def read(position: int, count: int) -> bytes:
        handle.seek(position)
        return handle.read(count)

    try:
        if not _starts_with_ftyp(read(0, 12)):
            raise ValueError("not an ISO base media file")
        for position, size, header, kind in _boxes(read, 0, length):
            if kind == b"moov":
                if size > MAX_MOOV_BYTES:
                    break
                tracks = _video_track_types(read(position, size), header)
                if tracks is None:
                    break
                handle.seek(0)
                return _PatchedFile(handle, {position + offset: _HIDDEN for offset in tracks})
    except (ValueError, struct.error, OSError):
        pass
    handle.close()
    return None


def open_audio(opener: Callable[[Any], _Opened], data: Any) -> _Opened:
    """``opener(data)`` (e.g. torchcodec's ``AudioDecoder`` or an audio ``Demuxer``) through :func:`audio_only_view`
    where it applies; a view the opener refuses falls back to the file as it is (whose errors are then raised)."""
    view = audio_only_view(data)
    if view is not None:
        try:
            return opener(view)
        except Exception:
            view.close()
    return opener(data)


__all__ = ["MAX_MOOV_BYTES", "audio_only_view", "is_mp4_family", "open_audio"]
