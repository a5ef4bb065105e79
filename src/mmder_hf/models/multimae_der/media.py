"""Reading audio-visual media: the one place that opens decoders, checks sources and reads time ranges.

The processor, the pipeline and the CLI all go through this module. :func:`decode_clip` uses torchcodec and decodes
only what the processor needs: the sampled video frames (by timestamp, so variable frame rates are handled) and the
audio track of the requested time range, downmixed to mono and resampled. Every problem with an input is raised as
a :class:`MediaError` that names the input, truncated files included (see :func:`decode_clip`). (Writing media, for
the synthetic corpus and the tests, lives in ``mmder_hf.data.media_writing``: it does not ship with checkpoints.)
"""

from __future__ import annotations

import logging
import math
import os
import re
from dataclasses import dataclass
from typing import Any, Callable, Optional, Union

import torch

from .mp4_audio import open_audio
from .truncation import allowed_shortfall, audio_truncation, video_truncation


logger = logging.getLogger(__name__)

#: What a media input may be: a path, the encoded bytes of a file, or a torchcodec decoder (as ``datasets`` returns).
MediaSource = Union[str, os.PathLike, bytes, bytearray, Any]

FRAME_SAMPLINGS = ("aligned", "original")
# Nudge for sampling times so that a time falling exactly on a frame boundary (up to rounding) picks the frame that
# starts there, as the integer formula used for decoded frames does. Far below any frame duration.
_TIME_EPS = 1e-6
#: What an image file given as the clip is told (FFmpeg opens a photo as a one-frame "video" without audio).
STILL_IMAGE = "a still image, not a video (MultiMAE-DER reads a video with its audio track)"
# Codecs of still-image files (FFmpeg's names): a photo opened as media is one frame of one of these.
_IMAGE_CODECS = frozenset(
    "png apng mjpeg jpeg2000 jpegls jpegxl bmp gif webp tiff ppm pgm pbm pam qoi exr dpx sgi targa pcx hdr".split()
)
# "function, /path/of/the/build/File.cpp:123, " as torchcodec prefixes its errors with: no use to the user.
_SOURCE_LOCATION = re.compile(
    r"(?:\b[A-Za-z_][\w:]*,\s*)?(?:[A-Za-z]:)?[^\s,]*[\\/][^\s,\\/]+\.(?:cpp|cc|cxx|cu|c|hpp|h)(?::\d+)?\b,?\s*"
)


class MediaError(ValueError):
    """An input video or audio that cannot be used: the message names the input and the problem.

    Attributes:
        source (`str`): the input's name (path, ``<N bytes>`` or the decoder's path).
        problem (`str`): what is wrong with it.
    """

    def __init__(self, source: str, problem: str):
        self.source = source
        self.problem = problem
        super().__init__(f"{source}: {problem}")

    def __reduce__(self):  # picklable across DataLoader workers
        return (type(self), (self.source, self.problem))


@dataclass
class DecodedClip:
    """What :func:`decode_clip` returns.

    Attributes:
        frames (`torch.Tensor` of shape `(num_video_frames, 3, height, width)`, uint8, or `None`): sampled RGB frames.
        waveform (`torch.Tensor` of shape `(num_samples,)`, float32, or `None`): mono audio of ``[start, end)``.
        sample_rate (`int` or `None`): rate of ``waveform``.
        start (`float`), end (`float`): the time range in seconds that was sampled.
        frame_times (`list[float]`): presentation time of each returned frame (seconds).
        name (`str`): the input's name, for messages.
    """

    frames: Optional[torch.Tensor]
    waveform: Optional[torch.Tensor]
    sample_rate: Optional[int]
    start: float
    end: float
    frame_times: list
    name: str


def is_video_decoder(obj: Any) -> bool:
    """A torchcodec ``VideoDecoder`` (what a ``datasets`` Video column returns)."""
    from torchcodec.decoders import VideoDecoder

    return isinstance(obj, VideoDecoder)


def is_audio_decoder(obj: Any) -> bool:
    """A torchcodec ``AudioDecoder`` (what a ``datasets`` Audio column returns)."""
    from torchcodec.decoders import AudioDecoder

    return isinstance(obj, AudioDecoder)


def is_decoder(obj: Any) -> bool:
    """A torchcodec video or audio decoder."""
    return is_video_decoder(obj) or is_audio_decoder(obj)


def is_media_source(obj: Any) -> bool:
    """What :func:`decode_clip` reads: a path, encoded bytes, or a torchcodec decoder."""
    return isinstance(obj, (str, os.PathLike, bytes, bytearray, memoryview)) or is_decoder(obj)


def encoded_media(obj: Any) -> Optional[dict]:
    """The ``{"path", "bytes"}`` a ``datasets`` Video/Audio decoder was made from (``None`` for other objects).

    ``datasets`` keeps it on the decoders it returns; this is the only place that reads that attribute.
    """
    encoded = getattr(obj, "_hf_encoded", None)
    return encoded if isinstance(encoded, dict) else None


def source_name(source: MediaSource) -> str:
    """A short human-readable name of a media input, used in error messages."""
    if isinstance(source, (str, os.PathLike)):
        return os.fspath(source)
    if isinstance(source, (bytes, bytearray, memoryview)):
        return f"<{len(source)} bytes of media>"
    encoded = encoded_media(source)
    if encoded and encoded.get("path"):
        return str(encoded["path"])
    path = getattr(getattr(source, "metadata", None), "path", None)
    if path:
        return str(path)
    return f"<{type(source).__name__}>"


def _first_line(error: BaseException) -> str:
    """The first line of a decoder's error, without the source-file locations torchcodec puts in front of it."""
    lines = [line for line in str(error).strip().splitlines() if line.strip()]
    text = _SOURCE_LOCATION.sub("", lines[0]).strip(" ,") if lines else ""
    return (text or type(error).__name__)[:300]


def check_source(source: MediaSource, name: Optional[str] = None) -> Any:
    """Validate a path / bytes input before FFmpeg sees it and return what torchcodec accepts.

    Raises:
        [`MediaError`]: a missing, empty or directory path, empty bytes, or an unsupported type.
    """
    name = name or source_name(source)
    if isinstance(source, (str, os.PathLike)):
        path = os.fspath(source)
        if not os.path.exists(path):
            raise MediaError(name, "file not found")
        if os.path.isdir(path):
            raise MediaError(name, "is a directory, not a media file")
        if os.path.getsize(path) == 0:
            raise MediaError(name, "file is empty")
        return path
    if isinstance(source, (bytes, bytearray, memoryview)):
        if len(source) == 0:
            raise MediaError(name, "empty bytes: no media data")
        return bytes(source)
    raise MediaError(name, f"unsupported media input of type {type(source).__name__}")


def _is_still_image(decoder: Any, data: Any) -> bool:
    """Whether an opened ``VideoDecoder`` reads a photo: one frame of an image codec, and no audio stream in the file
    (a music file's cover picture is such a frame too, beside its audio: that file is not an image)."""
    meta = decoder.metadata
    if str(meta.codec or "").lower() not in _IMAGE_CODECS or (meta.num_frames or 0) > 1:
        return False
    from torchcodec.decoders import get_container_metadata

    try:
        info = get_container_metadata(bytes(data) if isinstance(data, (bytearray, memoryview)) else data)
    except Exception:
        return False
    return not any(getattr(stream, "media_type", None) == "audio" for stream in info.streams)


def _explain_open_failure(source: Any, name: str, wanted: str, error: BaseException) -> MediaError:
    """Turn a decoder's failure to open ``source`` into a clear message (missing stream, a photo, or not media)."""
    from torchcodec.decoders import AudioDecoder, VideoDecoder

    other = AudioDecoder if wanted == "video" else VideoDecoder
    try:
        opened = other(source)
    except Exception:
        return MediaError(
            name,
            f"cannot be opened as media (not a media file, unsupported format, or truncated/corrupt): "
            f"{_first_line(error)}",
        )
    if wanted == "audio" and _is_still_image(opened, source):
        return MediaError(name, STILL_IMAGE)
    return MediaError(name, f"has no {wanted} stream")


def open_video_decoder(
    source: MediaSource, seek_mode: str = "exact", num_threads: int = 1, name: Optional[str] = None
) -> Any:
    """Open a torchcodec ``VideoDecoder`` on a path or bytes, raising :class:`MediaError` on any problem.

    Args:
        source (`str`, `os.PathLike` or `bytes`): the media file.
        seek_mode (`str`, *optional*, defaults to `"exact"`): torchcodec's seek mode; ``"exact"`` scans the file's
            packets once (cheap, no decoding) so that timestamps and frame counts are exact even for variable frame
            rates; ``"approximate"`` trusts the header (opens long files faster, but fails on variable frame rates).
        num_threads (`int`, *optional*, defaults to 1): FFmpeg decoding threads (0: automatic).
    """
    from torchcodec.decoders import VideoDecoder

    name = name or source_name(source)
    data = check_source(source, name)
    try:
        decoder = VideoDecoder(data, seek_mode=seek_mode, num_ffmpeg_threads=num_threads)
    except Exception as error:
        raise _explain_open_failure(data, name, "video", error) from error
    if _is_still_image(decoder, data):
        raise MediaError(name, STILL_IMAGE)
    return decoder


def open_audio_decoder(source: MediaSource, name: Optional[str] = None) -> Any:
    """Open a torchcodec ``AudioDecoder`` on a path or bytes, raising :class:`MediaError` on any problem."""
    from torchcodec.decoders import AudioDecoder

    name = name or source_name(source)
    data = check_source(source, name)
    try:
        return open_audio(AudioDecoder, data)  # a video file's audio opened without probing its video
    except Exception as error:
        raise _explain_open_failure(data, name, "audio", error) from error


def uniform_frame_times(start: float, end: float, num_frames: int) -> list[float]:
    """The ``aligned`` sampling times: ``start + (k + 1) / (num_frames + 1) * (end - start)`` for ``k < num_frames``.

    These are the centres of the audio windows when the clip has as many video frames as audio images (see
    ``audio_features.window_bounds``), and the frame times of the paper's timing figure (``k T / 17``) for 16.
    """
    return [start + (k + 1) / (num_frames + 1) * (end - start) for k in range(num_frames)]


def aligned_frame_indices(total_frames: int, num_frames: int) -> list[int]:
    """``aligned`` sampling over ``total_frames`` evenly timed frames: ``floor((k + 1) * total / (num_frames + 1))``.

    Index form of :func:`uniform_frame_times`, used for already decoded frames; a clip with fewer frames than
    requested repeats frames.
    """
    if total_frames < 1:
        raise ValueError("the clip has no video frames")
    return [min(total_frames - 1, (k + 1) * total_frames // (num_frames + 1)) for k in range(num_frames)]


def original_frame_indices(
    total_frames: int, num_frames: int, stride: Optional[int] = None, first: int = 0
) -> list[int]:
    """The original code's sampling: ``first + k * stride``, clamped to the last frame (which then repeats).

    Args:
        total_frames (`int`): frames in the clip (indices ``first .. total_frames - 1`` are usable).
        num_frames (`int`): frames to sample.
        stride (`int`, *optional*): defaults to ``48 // num_frames`` (6 for 8 frames, 3 for 16, as the original).
    """
    if total_frames < 1:
        raise ValueError("the clip has no video frames")
    stride = stride if stride else max(1, 48 // max(1, num_frames))
    return [min(total_frames - 1, first + k * stride) for k in range(num_frames)]


def _video_range(decoder: Any, name: str) -> tuple[float, float, float]:
    """``(begin, end, fps)`` of a video stream from whatever metadata the decoder has."""
    meta = decoder.metadata
    begin = meta.begin_stream_seconds if meta.begin_stream_seconds is not None else 0.0
    end = meta.end_stream_seconds
    fps = meta.average_fps
    if end is None and meta.duration_seconds is not None:
        end = begin + meta.duration_seconds
    if end is None and meta.num_frames and fps:
        end = begin + meta.num_frames / fps
    if end is None or not end > begin:
        raise MediaError(name, "cannot determine the video's duration (broken or truncated file?)")
    if not fps:
        fps = (meta.num_frames or 1) / (end - begin)
    return float(begin), float(end), float(fps)


def _audio_range(decoder: Any) -> tuple[float, Optional[float]]:
    """``(begin, end)`` of an audio stream; ``end`` is ``None`` when the header does not say."""
    meta = decoder.metadata
    begin = float(meta.begin_stream_seconds or 0.0)
    return begin, (begin + float(meta.duration_seconds) if meta.duration_seconds else None)


def stream_span(video_decoder: Any = None, audio_decoder: Any = None, name: str = "<input>") -> tuple[float, float]:
    """``(begin, end)`` seconds of a clip: its video stream's when there is one, else its audio stream's.

    Raises:
        [`MediaError`]: when neither stream tells its duration.
    """
    if video_decoder is not None:
        begin, end, _ = _video_range(video_decoder, name)
        return begin, end
    if audio_decoder is not None:
        begin, end = _audio_range(audio_decoder)
        if end is not None and end > begin:
            return begin, end
    raise MediaError(name, "cannot determine the duration of the clip (broken or truncated file?)")


def _raw_input(obj: Any) -> Any:
    """The path or bytes a media input reads (``None`` for a decoder that does not remember its file)."""
    if isinstance(obj, (str, os.PathLike)):
        return os.fspath(obj)
    if isinstance(obj, (bytes, bytearray, memoryview)):
        return obj
    encoded = encoded_media(obj) or {}
    return encoded.get("bytes") or encoded.get("path")


def _sampled(
    span: tuple[float, float, float],
    total_frames: int,
    num_frames: int,
    start: float,
    end: float,
    frame_sampling: str,
    frame_stride: Optional[int],
) -> tuple[bool, list]:
    """What a clip samples from a video stream of ``span`` ``(begin, end, fps)``: ``(True, times)`` with
    ``"aligned"`` sampling (the frames shown then), ``(False, frame indices)`` with ``"original"``."""
    if frame_sampling not in FRAME_SAMPLINGS:
        raise ValueError(f"frame_sampling must be one of {FRAME_SAMPLINGS}, got {frame_sampling!r}")
    begin, stream_end, fps = span
    if frame_sampling == "aligned":
        return True, sampling_times(begin, stream_end, start, end, num_frames)
    return False, original_sampling_indices(total_frames, fps, begin, start, end, num_frames, frame_stride)


def _decode_frames(
    decoder: Any,
    name: str,
    num_frames: int,
    start: float,
    end: float,
    frame_sampling: str,
    frame_stride: Optional[int],
) -> tuple[torch.Tensor, list[float]]:
    total = len(decoder) if frame_sampling == "original" else 0  # (only index sampling reads the frame count)
    by_time, keys = _sampled(_video_range(decoder, name), total, num_frames, start, end, frame_sampling, frame_stride)
    try:
        batch = decoder.get_frames_played_at(keys) if by_time else decoder.get_frames_at(keys)
    except Exception as error:
        raise MediaError(
            name, f"could not decode the video frames (truncated or corrupt file?): {_first_line(error)}"
        ) from error
    frames = batch.data
    meta = decoder.metadata
    if frames.ndim == 4 and frames.shape[1] not in (1, 3) and frames.shape[-1] in (1, 3):
        frames = frames.permute(0, 3, 1, 2)  # decoder opened with dimension_order="NHWC"
    elif frames.ndim == 4 and meta.height and frames.shape[1:3] == (meta.height, meta.width) and frames.shape[1] != 3:
        frames = frames.permute(0, 3, 1, 2)
    if frames.shape[1] == 1:
        frames = frames.expand(-1, 3, -1, -1)
    # torchcodec's NCHW frames are a view of packed RGB (channels-last) memory: keep it, resizing is fastest there.
    return frames, [float(t) for t in batch.pts_seconds]


def _frame_reader(data: Any, num_threads: int) -> Any:
    """A ``skipping.FrameReader`` of the file when it reads the clip as torchcodec would, else ``None``: a stream
    that stops short of its container's declared duration is left to torchcodec, whose check says whether the file
    is cut (see ``truncation.video_truncation``)."""
    from .skipping import open_frame_reader

    reader = open_frame_reader(data, num_threads)
    if reader is None:
        return None
    declared = reader.declared_duration
    if declared and reader.span[1] < declared - allowed_shortfall(declared):
        reader.close()
        return None
    return reader


def _read_frames(
    reader: Any,
    num_frames: int,
    start: float,
    end: float,
    frame_sampling: str,
    frame_stride: Optional[int],
    transform: Optional[Callable[[torch.Tensor], torch.Tensor]],
) -> Optional[tuple[torch.Tensor, list[float]]]:
    """:func:`_decode_frames` through a ``skipping.FrameReader``: the same frames; ``None`` if it cannot give them."""
    by_time, keys = _sampled(reader.span, reader.num_frames, num_frames, start, end, frame_sampling, frame_stride)
    indices = [reader.index_at(t) for t in keys] if by_time else keys
    try:
        return reader.read(indices, transform)
    except LookupError:
        return None
    finally:
        reader.close()


def _decode_audio(
    decoder: Any,
    name: str,
    start: Optional[float],
    end: Optional[float],
    sample_rate: int,
    pad_to_range: bool,
    ranges: Any = None,
) -> tuple[torch.Tensor, float]:
    """The mono waveform of ``[start, end)`` at ``sample_rate`` and the time (seconds) the decoded samples reach.

    ``ranges`` (an ``audio_ranges.AudioRanges`` of the same file) reads the range instead of ``decoder``, with the
    same samples (``decoder`` is then unused and may be ``None``).
    """
    from .audio_features import prepare_waveform

    try:
        if ranges is not None:
            data, first, rate = ranges.read(max(start, ranges.begin_seconds), end)
        else:
            if start is None and end is None:
                samples = decoder.get_all_samples()
            else:
                begin = decoder.metadata.begin_stream_seconds or 0.0
                samples = decoder.get_samples_played_in_range(max(start or 0.0, begin), end)
            data, rate, first = samples.data, int(samples.sample_rate), float(samples.pts_seconds)
    except Exception as error:
        raise MediaError(
            name, f"could not decode the audio track (truncated or corrupt file?): {_first_line(error)}"
        ) from error
    decoded_end = first + data.shape[-1] / rate
    if data.numel() == 0:
        raise MediaError(name, f"no audio samples in the requested range [{start or 0.0:.3f} s, {end} s)")
    if pad_to_range and start is not None and end is not None:
        # Place the samples on the clip's timeline so audio windows stay aligned with the video frames even when
        # the audio track starts late or ends early (missing parts are silence).
        length = max(1, round((end - start) * rate))
        offset = max(0, round((first - start) * rate))
        if offset > 0 or data.shape[1] != length:  # (the samples are already in place when they fill the range)
            placed = data.new_zeros(data.shape[0], length)
            count = max(0, min(data.shape[1], length - offset))
            placed[:, offset : offset + count] = data[:, :count]
            data = placed
    try:  # checks the samples once, on the downmix: NaN or infinity in any channel stays there
        waveform = prepare_waveform(data, rate, sample_rate)
    except ValueError as error:
        raise MediaError(name, "the audio track decodes to NaN or infinite samples") from error
    return waveform, decoded_end


def _span_video_decoder(source: MediaSource, seek_mode: str, num_threads: int, name: str) -> Any:
    """A ``VideoDecoder`` giving the time span of ``source``'s video stream, or ``None`` when it has no real one.

    Only metadata is read (the packet scan of ``seek_mode="exact"``), no frame is decoded. An audio file's cover
    picture (a single-frame "video" stream without a usable duration) does not count: its audio stream sets the span.
    """
    if is_video_decoder(source):
        return source
    from torchcodec.decoders import VideoDecoder, get_container_metadata

    data = check_source(source, name)
    try:
        streams = get_container_metadata(data).streams
    except Exception:
        return None  # not readable as media: opening the audio decoder reports it
    if not any(getattr(stream, "media_type", None) == "video" for stream in streams):
        return None
    try:
        decoder = VideoDecoder(data, seek_mode=seek_mode, num_ffmpeg_threads=num_threads)
        if (decoder.metadata.num_frames or 0) < 2:
            return None
        _video_range(decoder, name)
    except Exception:
        return None
    return decoder


def video_stream_range(decoder: Any, name: str = "<input>") -> tuple[float, float, float]:
    """``(begin, end, fps)`` of a video decoder's stream: the span :func:`decode_clip` samples frames over."""
    return _video_range(decoder, name)


def sampling_times(begin: float, stream_end: float, start: float, end: float, num_frames: int) -> list[float]:
    """The times :func:`decode_clip` asks the decoder for with ``"aligned"`` sampling of ``[start, end)``: the
    :func:`uniform_frame_times`, nudged by a microsecond and kept inside the stream ``[begin, stream_end)``.

    A decoder that reads the whole file in order (``streaming.py``) picks the frames shown at these same times.
    """
    last_time = stream_end - _TIME_EPS
    return [min(max(t + _TIME_EPS, begin), last_time) for t in uniform_frame_times(start, end, num_frames)]


def original_sampling_indices(
    total_frames: int, fps: float, begin: float, start: float, end: float, num_frames: int, stride: Optional[int]
) -> list[int]:
    """The frame indices :func:`decode_clip` reads with ``"original"`` sampling of ``[start, end)`` (frames
    ``first, first + stride, ...`` from the first frame of the range, clamped to its last frame)."""
    first = 0 if start <= begin else min(total_frames - 1, math.ceil((start - begin) * fps - 1e-3))
    last = min(total_frames - 1, max(first, math.ceil((end - begin) * fps - 1e-3) - 1))
    return original_frame_indices(last + 1, num_frames, stride, first=first)


def video_truncation_problem(decoder: Any, source: MediaSource) -> Optional[str]:
    """Why the file behind an opened (exact-mode) ``VideoDecoder`` is truncated, or ``None``: the check
    :func:`decode_clip` makes before it reads any frame (metadata only)."""
    return video_truncation(decoder, _raw_input(source))


def decoder_error_text(error: BaseException) -> str:
    """A decoder's error as one short line for a :class:`MediaError` (no source-file locations)."""
    return _first_line(error)


def read_clip_audio(
    source: MediaSource,
    start: float,
    end: float,
    sample_rate: int,
    name: Optional[str] = None,
    ranges: Any = None,
) -> torch.Tensor:
    """The mono waveform at ``sample_rate`` of ``[start, end)`` of a video file's audio track, placed on that range
    (silence where the track starts late or ends early): what :func:`decode_clip` reads for a clip of the file, by a
    decoder opened for it.

    A decoder opened for the clip matters: FFmpeg's AAC decoder keeps state across a seek, so the samples of a range
    depend on what the same decoder decoded before (by up to ~2e-5), and a clip's are those of a fresh decoder.
    ``ranges`` (an ``audio_ranges.AudioRanges`` of ``source``) reads many ranges of one file with the same samples
    at a fraction of the cost of opening a decoder for each.
    """
    name = name or source_name(source)
    decoder = None if ranges is not None else open_audio_decoder(source, name=name)
    return _decode_audio(decoder, name, start, end, sample_rate, pad_to_range=True, ranges=ranges)[0]


def decode_clip(
    source: MediaSource,
    num_video_frames: int,
    audio_sample_rate: Optional[int] = 16000,
    frame_sampling: str = "aligned",
    frame_stride: Optional[int] = None,
    clip_start: Optional[float] = None,
    clip_end: Optional[float] = None,
    audio_source: Optional[MediaSource] = None,
    seek_mode: str = "exact",
    num_threads: int = 1,
    skip_unused_frames: bool = True,
    frame_transform: Optional[Callable[[torch.Tensor], torch.Tensor]] = None,
) -> DecodedClip:
    """Decode what MultiMAE-DER needs from one clip: ``num_video_frames`` sampled frames and the mono audio track.

    Only the sampled frames are converted to RGB (FFmpeg still decodes the frames they depend on), and the audio is
    decoded only for the requested range.

    Args:
        source (`str`, `os.PathLike`, `bytes` or torchcodec `VideoDecoder`/`AudioDecoder`): the clip. A
            ``VideoDecoder`` made by ``datasets.Video`` remembers its file, so its audio track is found too.
        num_video_frames (`int`): frames to sample; 0 decodes no video (audio-only inputs are then accepted; the
            audio of a file with a video stream is still read over that stream's span, as with frames).
        audio_sample_rate (`int`, *optional*, defaults to 16000): rate of the returned waveform; `None` decodes no
            audio (video-only inputs are then accepted).
        frame_sampling (`str`, *optional*, defaults to `"aligned"`): ``"aligned"``: frames played at times
            ``start + (k + 1) / (n + 1) * (end - start)`` (the audio window centres when counts match), by timestamp,
            so variable frame rates are handled; ``"original"``: frame indices ``k * stride`` from the first frame of
            the range (the original code), clamped to the last frame.
        frame_stride (`int`, *optional*): stride of ``"original"`` sampling, defaults to ``48 // num_video_frames``.
        clip_start (`float`, *optional*), clip_end (`float`, *optional*): time range in seconds to use instead of
            the whole clip (e.g. one segment of a long video); only that range is decoded.
        audio_source (*optional*): where to read the audio from when it is not ``source`` (e.g. an ``AudioDecoder``).
        seek_mode (`str`, *optional*, defaults to `"exact"`), num_threads (`int`, *optional*, defaults to 1): passed
            to torchcodec when it opens a path or bytes.
        skip_unused_frames (`bool`, *optional*, defaults to `True`): for an H.264 file in an MP4-family container,
            with PyAV installed, decode only the sampled frames and those they depend on (``skipping.py``: FFmpeg
            skips the other non-reference frames, and nothing after the last sampled frame is decoded); the frames
            are torchcodec's, to the bit. ``False`` reads every clip through torchcodec.
        frame_transform (`Callable`, *optional*): applied to the sampled frames, ``(n, 3, H, W)`` uint8, e.g. the
            resize to the model's size; where frames are decoded one by one it is applied to each, ``n = 1``, as it
            is decoded, so that no full-size frame is kept. It must give each frame the same result either way.

    Returns:
        [`DecodedClip`]: frames ``(num_video_frames, 3, H, W)`` uint8 and waveform ``(num_samples,)`` float32.
        Clips shorter than ``num_video_frames`` frames repeat frames.

    Raises:
        [`MediaError`]: missing, empty, non-media or truncated input, missing stream, or empty time range.

    A truncated file (one cut short, e.g. by an interrupted download) raises ``MediaError`` saying so, whatever
    time range is asked for: with ``seek_mode="exact"`` the packet scan that opening does anyway tells where the
    streams end, which is compared with the duration the container declares (nothing more is decoded); an audio
    track read without a scanned video is compared after decoding, with the end its header (or a WAV file's ``data``
    chunk) declares (``truncation.py``). A file that lost less than ``TRUNCATION_TOLERANCE`` seconds (or 1 % of its
    duration) at its end may pass. A decoder error in the middle of a stream (an incomplete or damaged packet) is
    raised too. With ``seek_mode="approximate"`` only such decoder errors reveal a cut.
    """
    name = source_name(source)
    need_video = num_video_frames > 0
    need_audio = audio_sample_rate is not None
    if clip_start is not None and clip_end is not None and not clip_end > clip_start:
        raise MediaError(name, f"clip_end ({clip_end}) must be greater than clip_start ({clip_start})")
    if clip_start is not None and clip_start < 0:
        raise MediaError(name, f"clip_start must be >= 0, got {clip_start}")

    video_decoder = audio_decoder = audio_data = reader = None
    if need_video and skip_unused_frames and seek_mode == "exact" and not is_decoder(source):
        reader = _frame_reader(check_source(source, name), num_threads)
    if need_video and reader is None:
        if is_video_decoder(source):
            video_decoder = source
        elif is_audio_decoder(source):
            raise MediaError(name, "an AudioDecoder has no video stream; pass the video (path, bytes or VideoDecoder)")
        else:
            video_decoder = open_video_decoder(source, seek_mode=seek_mode, num_threads=num_threads, name=name)
        problem = video_truncation(video_decoder, _raw_input(source))
        if problem:
            raise MediaError(name, problem)
    if need_audio:
        audio_input = audio_source if audio_source is not None else source
        audio_name = source_name(audio_input)
        audio_data = _raw_input(audio_input)
        if is_audio_decoder(audio_input):
            audio_decoder = audio_input
        elif is_video_decoder(audio_input):
            encoded = encoded_media(audio_input) or {}
            audio_input = encoded.get("bytes") or encoded.get("path") or getattr(audio_input.metadata, "path", None)
            if audio_input is None:
                raise MediaError(
                    audio_name,
                    "a torchcodec VideoDecoder does not expose its audio track; pass audio= (an AudioDecoder, a "
                    "waveform with sampling_rate, or the file path/bytes) or use a video-only fusion strategy",
                )
            audio_decoder = open_audio_decoder(audio_input, name=audio_name)
        else:
            audio_decoder = open_audio_decoder(audio_input, name=audio_name)

    # The clip's timeline: the video stream's when there is video, else the audio stream's. Audio alone from a file
    # with a video stream is read over that stream's span too, as when frames are read with it (the preprocess cache
    # reads both), so the `audio` baseline is served the samples it was trained on.
    span_decoder = video_decoder
    if span_decoder is None and reader is None and audio_decoder is not None and not is_audio_decoder(source):
        span_decoder = _span_video_decoder(source, seek_mode, num_threads, name)
    if reader is not None:
        begin, stream_end, _ = reader.span
    elif span_decoder is not None:
        begin, stream_end, _ = _video_range(span_decoder, name)
    else:
        begin, stream_end = _audio_range(audio_decoder)
    start = begin if clip_start is None else max(begin, float(clip_start))
    end = stream_end if clip_end is None else (float(clip_end) if stream_end is None else min(stream_end, clip_end))
    if stream_end is not None and start >= stream_end:
        raise MediaError(name, f"clip_start ({clip_start} s) is at or past the end of the clip ({stream_end:.3f} s)")

    frames, times = None, []
    if reader is not None:
        decoded = _read_frames(reader, num_video_frames, start, end, frame_sampling, frame_stride, frame_transform)
        if decoded is None:  # a frame the reader does not reproduce: torchcodec reads the clip (and says what's wrong)
            return decode_clip(
                source, num_video_frames, audio_sample_rate, frame_sampling, frame_stride, clip_start, clip_end,
                audio_source, seek_mode, num_threads, skip_unused_frames=False, frame_transform=frame_transform,
            )  # fmt: skip
        frames, times = decoded
    if video_decoder is not None:
        frames, times = _decode_frames(video_decoder, name, num_video_frames, start, end, frame_sampling, frame_stride)
        if frame_transform is not None:
            frames = frame_transform(frames)
    waveform = None
    has_video = span_decoder is not None or reader is not None
    if audio_decoder is not None:
        ranged = clip_start is not None or clip_end is not None or has_video
        audio_name = source_name(audio_source) if audio_source is not None else name
        waveform, decoded_end = _decode_audio(
            audio_decoder,
            audio_name,
            start if ranged else None,
            end if ranged else None,
            audio_sample_rate,
            pad_to_range=has_video and end is not None,
        )
        if span_decoder is not None and video_decoder is None:  # after the audio: its decoder errors come first
            problem = video_truncation(span_decoder, _raw_input(source))
            if problem:
                raise MediaError(name, problem)
        # The video's file was checked (its scan covers its audio track too); other audio is checked here.
        if not has_video or audio_source is not None:
            problem = audio_truncation(audio_decoder, audio_data, decoded_end, end if ranged else None)
            if problem:
                raise MediaError(audio_name, problem)
        if end is None:
            end = start + waveform.shape[0] / audio_sample_rate
    return DecodedClip(frames, waveform, audio_sample_rate if need_audio else None, start, end, times, name)


__all__ = [
    "FRAME_SAMPLINGS",
    "STILL_IMAGE",
    "DecodedClip",
    "MediaError",
    "MediaSource",
    "aligned_frame_indices",
    "decode_clip",
    "open_audio_decoder",
    "open_video_decoder",
    "original_frame_indices",
    "original_sampling_indices",
    "read_clip_audio",
    "sampling_times",
    "source_name",
    "uniform_frame_times",
    "check_source",
    "decoder_error_text",
    "encoded_media",
    "is_audio_decoder",
    "is_decoder",
    "is_media_source",
    "is_video_decoder",
    "stream_span",
    "video_stream_range",
    "video_truncation_problem",
]
