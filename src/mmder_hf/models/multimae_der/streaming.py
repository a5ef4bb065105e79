"""Timelines in one decoding pass: every window's model inputs from a single, in-order read of the video.

A timeline slides overlapping windows over a video (3 s every second by default). Decoding each window on its own
through a seeking decoder decodes every frame about ``window / stride`` times, plus the way back to a keyframe at
every seek. :class:`StreamingWindows` demuxes and decodes the video stream once, in order (torchcodec's low-level
``Demuxer`` and packet decoder, torchcodec >= 0.17), converts to RGB only the frames some window samples, keeps only
what the windows still open need, and hands out each window's inputs as soon as the window is complete: memory
stays flat however long the video is. A timeline samples a few frames a second of 25-60: for H.264 with PyAV
installed, FFmpeg is told to skip the frames that no window samples and no other frame is predicted from
(``skip_frame="NONREF"``), a third of the decoding of a typical B-frame stream.

Each window's inputs are those the processor gives for that window as a clip
(``processor(videos=path, clip_start=start, clip_end=end)``), to the bit:

- a sampled frame is the one a seeking decoder returns for the same sampling time (``media.sampling_times``): the
  frame shown at that time, by timestamp, as torchcodec's exact index maps times to frames;
- the audio is read per window as the processor reads a clip: by a decoder fresh for the window. FFmpeg's AAC
  decoder keeps state across a seek, so a range decoded in one pass, or by a decoder that decoded other ranges
  before, differs slightly (~1e-5) from the clip's samples. ``audio_ranges.AudioRanges`` gives each window those
  samples through one demuxer of the file (a fresh packet decoder per window), without opening the file again;
- the processor's own parts make the inputs (``video_processor.frames_to_images``,
  ``feature_extractor.waveform_to_images``, ``rescale_and_normalize``). Without face cropping each sampled frame is
  resized and normalised once, however many windows sample it; with it, each window's frames are cropped together
  (the face is tracked within the window).
"""

from __future__ import annotations

import heapq
from dataclasses import dataclass
from typing import Any, Iterator, Optional, Sequence

import torch
from transformers.feature_extraction_utils import BatchFeature

from .audio_ranges import AudioRanges
from .media import (
    MediaError,
    check_source,
    decoder_error_text,
    open_video_decoder,
    original_sampling_indices,
    read_clip_audio,
    sampling_times,
    source_name,
    video_stream_range,
    video_truncation_problem,
)


def streaming_supported() -> bool:
    """Whether the installed torchcodec has the low-level decoding API (``Demuxer``, packet decoders, converters)."""
    try:
        from torchcodec.decoders import ColorConverter, Demuxer  # noqa: F401
    except ImportError:
        return False
    return True


@dataclass
class _Window:
    """A window not yet handed out, and its sampled frames as they are decoded (``None`` until then)."""

    start: float
    end: float
    frames: list
    missing: int

    @property
    def started(self) -> bool:
        return self.missing < len(self.frames)


class StreamingWindows:
    r"""
    One pass over a video file -> the model inputs of each timeline window, in order, each as soon as it is complete.

    Iterating gives ``(start, end, inputs)`` per window, ``inputs`` being what the processor returns for that window
    as a clip: ``pixel_values`` and/or ``audio_values`` with a batch dimension of 1, and ``face_boxes`` with
    ``face_crop``. Each iteration reads the file once.

    Args:
        processor (`MultiMAEDERProcessor`):
            Makes the inputs; its fusion strategy says how many frames of each modality a window has (it must read
            video frames, and ``seek_mode`` must be ``"exact"``).
        source (`str`, `os.PathLike` or `bytes`):
            The video file; its own audio track is the windows' audio.
        windows (`list[tuple[float, float]]`):
            ``(start, end)`` seconds of each window, in order (``pipeline.sliding_windows``).
        name (`str`, *optional*):
            The input's name in error messages (defaults to the path).
        video_decoder (*optional*):
            A torchcodec ``VideoDecoder`` already opened on ``source`` (exact seek mode): only its metadata is read
            (the stream's span and frame rate), as the processor reads it. Opened here if not given.
        skip_unused_frames (`bool`, *optional*, defaults to `True`):
            Let FFmpeg skip the frames that no window samples and no other frame depends on (H.264, with PyAV
            installed; see ``_skipping_decoder``); ``False`` decodes every frame (torchcodec). Same inputs either way.

    Attributes:
        packets_read (`int`), frames_decoded (`int`), frames_converted (`int`):
            Of the last pass: video packets demuxed, frames decoded, frames converted to RGB (the sampled ones).
        route (`str`):
            How the last pass decoded the video: ``"skipping"`` (PyAV) or ``"every frame"`` (torchcodec).
        frames_held (`int`), max_frames_held (`int`):
            Sampled frames kept for windows not handed out yet, now and at most during the pass.
        open_windows (`int`), max_open_windows (`int`):
            Windows with a frame decoded and not handed out yet, now and at most during the pass.
    """

    def __init__(
        self,
        processor: Any,
        source: Any,
        windows: Sequence[tuple[float, float]],
        name: Optional[str] = None,
        video_decoder: Any = None,
        skip_unused_frames: bool = True,
    ):
        self.processor = processor
        self.skip_unused_frames = skip_unused_frames
        self.name = name or source_name(source)
        self.data = check_source(source, self.name)
        self.windows = [(float(start), float(end)) for start, end in windows]
        if not self.windows or any(b[0] < a[0] or b[1] < a[1] for a, b in zip(self.windows, self.windows[1:])):
            raise ValueError("windows must be a non-empty list of (start, end) in order")
        if processor.seek_mode != "exact":
            raise ValueError("streaming windows need seek_mode='exact': frames are picked by their timestamps")
        self.num_video_frames, self.num_audio_frames = processor.num_video_frames, processor.num_audio_frames
        if self.num_video_frames < 1:
            raise ValueError(f"streaming windows read video; fusion_strategy {processor.fusion_strategy} reads none")
        self.video_decoder = video_decoder or open_video_decoder(
            self.data, seek_mode="exact", num_threads=processor.num_decoder_threads, name=self.name
        )
        self.begin, self.stream_end, self.fps = video_stream_range(self.video_decoder, self.name)
        self.packets_read = self.frames_decoded = self.frames_converted = 0
        self.max_frames_held = self.max_open_windows = 0
        self._pending: list[_Window] = []
        self._audio_ranges: Optional[AudioRanges] = None
        self.route: Optional[str] = None

    # ------------------------------------------------------------------------------------------------------------
    # What each window samples, and what is held for it

    def _clip_range(self, start: float, end: float) -> tuple[float, float]:
        """The window as ``decode_clip`` clamps a clip to the video stream."""
        return max(self.begin, start), min(self.stream_end, end)

    def _frame_keys(self, start: float, end: float) -> list:
        """Sampling times (``"aligned"``) or frame indices (``"original"``) of the window's frames."""
        video_processor, count = self.processor.video_processor, self.num_video_frames
        start, end = self._clip_range(start, end)
        if video_processor.frame_sampling == "aligned":
            return sampling_times(self.begin, self.stream_end, start, end, count)
        stride = video_processor.original_frame_stride
        return original_sampling_indices(len(self.video_decoder), self.fps, self.begin, start, end, count, stride)

    def _started(self) -> Iterator[_Window]:
        # A window's sampling times all follow the previous window's first one: the started windows lead the queue.
        for window in self._pending:
            if not window.started:
                return
            yield window

    @property
    def frames_held(self) -> int:
        return len({id(frame) for window in self._started() for frame in window.frames if frame is not None})

    @property
    def open_windows(self) -> int:
        return sum(1 for _ in self._started())

    # ------------------------------------------------------------------------------------------------------------
    # The pass

    def __iter__(self) -> Iterator[tuple[float, float, dict]]:
        from torchcodec.decoders import ColorConverter, Demuxer

        video_processor = self.processor.video_processor
        problem = video_truncation_problem(self.video_decoder, self.data)
        if problem is not None:
            raise MediaError(self.name, problem)
        self.packets_read = self.frames_decoded = self.frames_converted = 0
        self.max_frames_held = self.max_open_windows = 0
        self._audio_ranges = AudioRanges(self.data) if self.num_audio_frames > 0 else None
        by_time = video_processor.frame_sampling == "aligned"
        self._pending, wanted = [], []  # wanted: heap of (sampling time or index, window number, frame number)
        for number, (start, end) in enumerate(self.windows):
            keys = self._frame_keys(start, end)
            self._pending.append(_Window(start, end, [None] * len(keys), len(keys)))
            wanted.extend((key, number, k) for k, key in enumerate(keys))
        heapq.heapify(wanted)
        handed_out = 0

        converter = None
        # The last decoded frame is held until the next one arrives: a time is shown by a frame until the next
        # frame's timestamp (torchcodec's exact index maps a time to the first frame whose successor starts after it).
        held, held_index = None, -1

        def assign(raw: Any, until: Optional[float]) -> None:
            """Give the held frame to the sampled frames it shows: times before ``until`` (all when ``None``, at the
            end of the stream), or indices up to its own."""
            image = None
            while wanted and (until is None or (wanted[0][0] < until if by_time else wanted[0][0] <= held_index)):
                _, number, k = heapq.heappop(wanted)
                if image is None:
                    # (3, H, W), a view of (H, W, 3) memory as torchcodec's
                    image = raw() if callable(raw) else converter.convert(raw).data
                    self.frames_converted += 1
                    if not video_processor.face_crop:  # resized and normalised once, whichever windows sample it
                        image = video_processor.frames_to_images(image[None], self.name)[0]
                        image = self.processor.rescale_and_normalize(image)
                window = self._pending[number - handed_out]
                window.frames[k] = image
                window.missing -= 1
            if image is not None:
                self.max_frames_held = max(self.max_frames_held, self.frames_held)
                self.max_open_windows = max(self.max_open_windows, self.open_windows)

        def complete() -> Iterator[tuple[float, float, dict]]:
            nonlocal handed_out
            while self._pending and self._pending[0].missing == 0:
                window = self._pending.pop(0)
                handed_out += 1
                inputs, span = self._inputs(window), (window.start, window.end)
                del window  # its frames are not held while the caller works (those of later windows stay)
                yield *span, inputs

        skipping = self._skipping_decoder(wanted, by_time) if self.skip_unused_frames else None
        if skipping is not None:
            self.route = "skipping"
            for image, until, index in skipping:
                held_index = index
                assign(image, until)
                yield from complete()
            if wanted:  # a sampled frame the decoder never gave: nothing else can make it
                raise MediaError(self.name, "could not decode the video frames (truncated or corrupt file?)")
            return
        self.route = "every frame"
        demuxer = Demuxer(self.data, streams="video")
        codec = demuxer.streams[0].make_decoder(num_ffmpeg_threads=self.processor.num_decoder_threads)
        converter = ColorConverter(device="cpu")
        packets = iter(demuxer)
        while True:
            packet = next(packets, None)
            try:
                frames = codec.decode(packet) if packet is not None else codec.drain()
            except RuntimeError as error:
                problem = "could not decode the video frames (truncated or corrupt file?): "
                problem += decoder_error_text(error)
                raise MediaError(self.name, problem) from error
            self.packets_read += packet is not None
            for raw in frames:
                self.frames_decoded += 1
                if held is not None:
                    assign(held, raw.pts_seconds)
                    yield from complete()
                held, held_index = raw, held_index + 1
            if packet is None:
                break
        if held is None:
            raise MediaError(self.name, "could not decode the video frames: the video stream has none")
        assign(held, None)  # the last frame is shown until the end of the stream
        yield from complete()

    # ------------------------------------------------------------------------------------------------------------
    # Decoding only the frames something depends on

    def _skipping_decoder(self, wanted: list, by_time: bool) -> Optional[Iterator[tuple[Any, Optional[float], int]]]:
        """The sampled frames, decoded by PyAV with FFmpeg told to skip the frames no other frame refers to
        (``skip_frame="NONREF"``) unless a window samples them; ``None`` where this route is not taken.

        Yields ``(image, until, index)`` per sampled frame in presentation order: a callable giving its RGB pixels,
        the time up to which it is shown (its successor's timestamp; ``None`` for the last frame) and its index.
        In H.264 a non-reference frame is one no other frame is predicted from, so every frame that is decoded comes
        out as when all are, and FFmpeg converts it to RGB as torchcodec does (tested to the bit). Which frame shows
        a sampling time comes from the stream's packet index (torchcodec's scan). About half the frames of a phone's
        or camera's H.264 (B-frames) are non-reference: the pass decodes a third less. Taken for H.264 without a
        rotation, where PyAV is installed (it is optional for a model's code).
        """
        if getattr(self.video_decoder.metadata, "rotation", None):  # shown turned: the every-frame pass turns it
            return None
        try:
            import av
        except ImportError:
            return None
        import bisect
        import io

        from torchcodec.decoders import Demuxer

        try:
            container = av.open(io.BytesIO(self.data) if isinstance(self.data, (bytes, bytearray)) else self.data)
        except (av.error.FFmpegError, OSError, ValueError):
            return None
        if not container.streams.video or container.streams.video[0].codec_context.name != "h264":
            container.close()
            return None
        stream = container.streams.video[0]
        time_base = stream.time_base
        seconds = Demuxer(self.data, streams="video").streams[0].scan().pts_seconds.tolist()
        if not seconds or seconds != sorted(seconds) or time_base is None:
            container.close()
            return None
        ticks = [round(value * time_base.denominator / time_base.numerator) for value in seconds]
        index_of = {tick: index for index, tick in enumerate(ticks)}
        # the frame each sampled time (or index) shows, as the held-frame rule of the every-frame pass picks it
        if by_time:
            needed = {max(0, bisect.bisect_right(seconds, key) - 1) for key, _, _ in wanted}
        else:
            needed = {min(int(key), len(seconds) - 1) for key, _, _ in wanted}
        needed_ticks = {ticks[index] for index in needed}
        codec = stream.codec_context
        codec.thread_count = self.processor.num_decoder_threads
        codec.thread_type = "NONE" if self.processor.num_decoder_threads == 1 else "AUTO"

        def frames() -> Iterator[tuple[Any, Optional[float], int]]:
            skip = None
            try:
                for packet in container.demux(stream):
                    self.packets_read += packet.size > 0
                    wanted_skip = "DEFAULT" if packet.pts in needed_ticks else "NONREF"
                    if wanted_skip != skip:  # set on a change only: most packets keep the previous setting
                        codec.skip_frame = skip = wanted_skip
                    for frame in packet.decode():
                        self.frames_decoded += 1
                        index = index_of.get(frame.pts)
                        if index is None or index not in needed:
                            continue
                        until = seconds[index + 1] if index + 1 < len(seconds) else None

                        def pixels(frame=frame) -> torch.Tensor:
                            return torch.from_numpy(frame.to_ndarray(format="rgb24")).permute(2, 0, 1)

                        yield pixels, until, index
            except av.error.FFmpegError as error:
                problem = f"could not decode the video frames (truncated or corrupt file?): {error}"
                raise MediaError(self.name, problem) from error
            finally:
                container.close()

        return frames()

    # ------------------------------------------------------------------------------------------------------------
    # One window's inputs, by the processor's own parts

    def _inputs(self, window: _Window) -> dict:
        processor = self.processor
        data, boxes = {}, None
        if processor.face_crop:
            # (n, H, W, 3) memory viewed as (n, 3, H, W): the layout of the frames a torchcodec VideoDecoder returns
            frames = torch.stack([frame.permute(1, 2, 0) for frame in window.frames]).permute(0, 3, 1, 2)
            images, boxes = processor.video_processor.frames_to_images(frames, self.name)
            data["pixel_values"] = processor.rescale_and_normalize(images[None])
        else:  # frames already normalised (elementwise: the same values as normalising the stack)
            data["pixel_values"] = torch.cat(window.frames)[None]
        if self.num_audio_frames > 0:
            start, end = self._clip_range(window.start, window.end)
            rate = processor.audio_sample_rate
            waveform = read_clip_audio(self.data, start, end, rate, self.name, ranges=self._audio_ranges)
            values = processor.feature_extractor.waveform_to_values(waveform, self.num_audio_frames)
            data["audio_values"] = values[None]
        if boxes is not None:
            data["face_boxes"] = boxes[None]
        return dict(BatchFeature(data=data, tensor_type="pt"))


__all__ = ["StreamingWindows", "streaming_supported"]
