"""Sliding windows over a live stream (a camera and microphone, a network stream): each window's model inputs as soon
as the stream has passed the window's end.

A live source delivers frames and audio chunks as they happen, with presentation times; nothing is known in advance
(not the frame rate, not the end). :class:`LiveWindows` takes them as they come (``add_frames`` / ``add_audio``) and
hands out the windows ``[start + i * stride, start + i * stride + window)`` that are complete (``ready``), in order,
with the inputs the processor gives for that window as a clip:

- frames are sampled as a clip's (``"aligned"``: the frame shown at each of ``media.sampling_times`` over the
  window, the frame shown at a time being the latest frame with a time at or before it). Before the stream's first
  frame the first frame is shown (as a decoder clamps a time to the stream's start); across a gap the last frame
  stays shown. Only the sampled frames are kept (resized once, whichever windows sample them, unless faces are
  cropped: then each window's frames are cropped together, the face tracked within the window);
- the audio is the window's samples at the rate they came in (silence where the stream has none: before the first
  chunk, or a gap between chunks), turned into the processor's audio rate as one piece per window, as the processor
  turns a clip's decoded waveform (so equal inputs give equal pictures, to the bit);
- the processor's own parts make the inputs (``video_processor.frames_to_images``,
  ``feature_extractor.waveform_to_images``, ``rescale_and_normalize``).

Memory stays flat however long the stream runs: frames and audio that no later window needs are released as soon as
the windows that need them are handed out.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any, Optional

import numpy as np
import torch
from transformers.feature_extraction_utils import BatchFeature

from .audio_features import prepare_waveform
from .media import sampling_times


#: Seconds of slack when comparing stream times with window ends (timestamps are rounded to their time base).
_TIME_TOLERANCE = 1e-6
#: Slack at the end of the stream: the last frame is shown for one frame interval, estimated from the last two frames.
_END_TOLERANCE = 1e-3


@dataclass
class _LiveWindow:
    """A window not handed out yet: its sampling times and the frames shown at them (``None`` until known)."""

    start: float
    end: float
    times: list
    frames: list


class LiveWindows:
    """Sliding windows over a live stream. Frames and audio are pushed as they arrive, with stream times in
    seconds; each window's model inputs come out once the stream has passed the window's end.

    Args:
        processor (`MultiMAEDERProcessor`):
            Makes the inputs; its fusion strategy says which modalities a window needs (``audio``: no frames are
            kept; ``video``: no audio) and its ``frame_sampling`` must be ``"aligned"`` (frames picked by time).
        window (`float`, *optional*, defaults to 3.0), stride (`float`, *optional*, defaults to 1.0):
            Window length and the seconds between window starts.
        start (`float`, *optional*, defaults to 0.0):
            Stream time of the first window's start.

    Attributes:
        name (`str`): the stream's name in error messages (``"<live stream>"``).
        frames_held (`int`), max_frames_held (`int`): sampled frames kept for windows not handed out yet (plus the
            last frame, shown until the next one arrives), now and at most so far.
        windows_made (`int`): windows handed out by :meth:`ready` so far.
        audio_seconds_held (`float`): audio kept for the windows not handed out yet.

    Not thread-safe: push and take from one thread, or behind one lock (``mmder live`` does the latter, one reader
    thread per input). Making a window's inputs (``ready``) is where the work is (resizing, face crops, audio
    pictures); a caller that must not fall behind a live source calls it where it can afford that.

    Example (with ``pipe`` a MultiMAE-DER pipeline):

    ```python
    >>> live = pipe.live(window=3.0, stride=1.0)  # doctest: +SKIP
    >>> live.add_frames(frames, times)  # (n, H, W, 3) uint8 and their times, as they arrive  # doctest: +SKIP
    >>> live.add_audio(samples, 48000, start=0.0)  # doctest: +SKIP
    >>> for entry in pipe.classify_windows(live.ready()):  # doctest: +SKIP
    ...     print(entry["start"], entry["end"], entry["label"], entry["score"])
    ```
    """

    def __init__(self, processor: Any, window: float = 3.0, stride: float = 1.0, start: float = 0.0):
        window, stride, start = float(window), float(stride), float(start)
        if not (math.isfinite(window) and window > 0 and math.isfinite(stride) and stride > 0):
            raise ValueError(f"window and stride must be positive seconds, got window={window}, stride={stride}")
        if not math.isfinite(start):
            raise ValueError(f"start must be a finite time in seconds, got {start}")
        self.processor = processor
        self.window, self.stride, self.start = window, stride, start
        self.num_video_frames, self.num_audio_frames = processor.num_video_frames, processor.num_audio_frames
        if self.num_video_frames > 0 and processor.video_processor.frame_sampling != "aligned":
            raise ValueError(
                "live windows pick frames by time: the processor's frame_sampling must be 'aligned', not "
                f"{processor.video_processor.frame_sampling!r}"
            )
        self.name = "<live stream>"
        self.windows_made = 0
        self.max_frames_held = 0
        self._opened = 0  # windows opened so far (window i starts at start + i * stride)
        self._pending: list[_LiveWindow] = []
        self._finished = False
        # video: the last frame (shown until the next one), its time, its image once resized, the frames' reach
        self._held: Optional[torch.Tensor] = None
        self._held_time: Optional[float] = None
        self._held_image: Optional[torch.Tensor] = None
        self._interval = 0.0
        self._video_end: Optional[float] = None
        # audio: chunks at one rate, the stream time of the first kept sample, the time the samples reach
        self._chunks: list[torch.Tensor] = []
        self._rate: Optional[int] = None
        self._audio_begin: Optional[float] = None
        self._audio_samples = 0

    # ------------------------------------------------------------------------------------------------------------
    # What the stream has reached

    def _window_span(self, index: int) -> tuple[float, float]:
        start = self.start + index * self.stride
        return start, start + self.window

    @property
    def _audio_end(self) -> Optional[float]:
        if self._audio_begin is None:
            return None
        return self._audio_begin + self._audio_samples / self._rate

    def _reach(self) -> Optional[float]:
        """How far the stream has passed in every modality the windows need (``None``: not started)."""
        reaches = []
        if self.num_video_frames > 0:
            if self._held_time is None:
                return None
            end = self._held_time + (self._interval if self._finished else 0.0)
            reaches.append(end)
        if self.num_audio_frames > 0:
            if self._audio_end is None:
                return None
            reaches.append(self._audio_end)
        return min(reaches) if reaches else None

    def _open_until(self, time: float) -> None:
        """Open the windows starting before ``time``: the frames shown from then on may be theirs."""
        while self._window_span(self._opened)[0] < time:
            start, end = self._window_span(self._opened)
            times = sampling_times(start, end, start, end, self.num_video_frames) if self.num_video_frames else []
            self._pending.append(_LiveWindow(start, end, times, [None] * len(times)))
            self._opened += 1

    # ------------------------------------------------------------------------------------------------------------
    # Input

    def add_frames(self, frames: Any, times: Any) -> None:
        """frames: (n, H, W, 3) uint8 RGB (torch tensor or numpy array); times: n presentation times (seconds).

        Frames must come in presentation order: a frame older than the previous one is dropped, one with the same
        time replaces it. The arrays are not copied; do not write into them afterwards.
        """
        if self._finished:
            raise RuntimeError("the stream has finished: no more frames can be added")
        if self.num_video_frames == 0:
            return
        tensor = torch.as_tensor(frames) if isinstance(frames, np.ndarray) else frames
        if not isinstance(tensor, torch.Tensor) or tensor.ndim != 4 or tensor.shape[-1] != 3:
            shape = tuple(getattr(frames, "shape", ()))
            raise ValueError(f"frames must be (n, height, width, 3) uint8 RGB, got shape {shape}")
        if tensor.dtype != torch.uint8:
            raise ValueError(f"frames must be uint8 RGB, got {tensor.dtype}")
        times = [float(t) for t in np.asarray(times, dtype=np.float64).reshape(-1)]
        if len(times) != tensor.shape[0]:
            raise ValueError(f"got {tensor.shape[0]} frames but {len(times)} times")
        for frame, time in zip(tensor, times):
            if self._held_time is not None and time < self._held_time:
                continue  # out of order: a later frame is already shown
            if self._held_time is not None and time > self._held_time:
                self._open_until(time)
                self._assign(time)
                self._interval = time - self._held_time
            self._held, self._held_time, self._held_image = frame, time, None
        self.max_frames_held = max(self.max_frames_held, self.frames_held)

    def _assign(self, until: Optional[float]) -> None:
        """Give the held frame to the sampling times before ``until`` (all when ``None``) still without a frame."""
        for window in self._pending:
            for k, time in enumerate(window.times):
                if window.frames[k] is None and (until is None or time < until):
                    window.frames[k] = self._held_picture()

    def _held_picture(self) -> torch.Tensor:
        """The held frame as windows keep it: resized once (no face cropping) or a copy of its pixels (cropping,
        done per window; a copy, so that a batch of frames it came in is not kept alive)."""
        if self._held_image is None:
            video_processor = self.processor.video_processor
            if video_processor.face_crop:
                self._held_image = self._held.clone()
            else:  # (H, W, 3) memory viewed as (1, 3, H, W), as the processor views decoded frames
                images, _ = video_processor.frames_to_images(self._held.permute(2, 0, 1)[None], self.name)
                self._held_image = images[0]
        return self._held_image

    def add_audio(self, samples: Any, sampling_rate: int, start: Optional[float] = None) -> None:
        """samples: 1-D mono float waveform in [-1, 1] (or int16, converted); start: stream time of the first
        sample (None: right after the previous chunk). Resampled to processor.audio_sample_rate.

        The samples are kept at their own rate and each window's are resampled as one piece (chunks at another rate
        than the first are resampled to it on arrival). A chunk that starts after the previous one ended leaves
        silence between them; one that starts before it (overlapping) loses its overlapping samples.
        """
        if self._finished:
            raise RuntimeError("the stream has finished: no more audio can be added")
        if self.num_audio_frames == 0:
            return
        sampling_rate = int(sampling_rate)
        if sampling_rate <= 0:
            raise ValueError(f"sampling_rate must be a positive number of Hz, got {sampling_rate}")
        if getattr(samples, "size", None) == 0 or (isinstance(samples, torch.Tensor) and samples.numel() == 0):
            return
        rate = self._rate or sampling_rate
        data = prepare_waveform(samples, sampling_rate, rate)  # mono float32 (int PCM scaled), at the kept rate
        if self._audio_begin is None:
            self._rate = rate
            self._audio_begin = float(start) if start is not None else self.start
        elif start is not None:
            gap = round((float(start) - self._audio_end) * rate)
            if gap > 0:
                data = torch.cat([data.new_zeros(gap), data])
            elif gap < 0:
                data = data[-gap:]
        if data.numel():
            self._chunks.append(data)
            self._audio_samples += data.numel()
            self._open_until(self._audio_end)

    def finish(self) -> None:
        """End of stream: windows whose end the stream reached become ready.

        The last frame counts as shown for one frame interval (that of the last two frames), so a stream of frames
        at ``0, 0.1, ..., 3.9`` s reaches 4 s.
        """
        self._finished = True
        reach = self._reach()
        if reach is not None:
            self._open_until(reach + _END_TOLERANCE)
        if self._held is not None:
            self._assign(None)

    # ------------------------------------------------------------------------------------------------------------
    # Output

    def _complete(self, window: _LiveWindow) -> bool:
        reach = self._reach()
        tolerance = _END_TOLERANCE if self._finished else _TIME_TOLERANCE
        if reach is None or reach < window.end - tolerance:
            return False
        return all(frame is not None for frame in window.frames)

    def ready(self) -> list[tuple[float, float, dict]]:
        """The windows complete since the last call, in order, as (start, end, inputs), inputs being what the
        processor gives for a clip (pixel_values / audio_values with batch dim 1, face_boxes with face cropping).
        Frames and audio no later window needs are released (memory flat however long the stream)."""
        done = []
        reach = self._reach()
        if reach is not None:
            self._open_until(reach)
        while self._pending and self._complete(self._pending[0]):
            window = self._pending.pop(0)
            done.append((window.start, window.end, self._inputs(window)))
            self.windows_made += 1
            self._release_audio()
        return done

    @property
    def frames_held(self) -> int:
        images = {id(frame) for window in self._pending for frame in window.frames if frame is not None}
        return len(images) + (self._held is not None)

    @property
    def audio_seconds_held(self) -> float:
        """Seconds of audio kept for the windows not handed out yet."""
        return self._audio_samples / self._rate if self._rate else 0.0

    def _release_audio(self) -> None:
        """Drop the audio chunks that end before the earliest window still to come starts."""
        if self._audio_begin is None:
            return
        first = self._pending[0].start if self._pending else self._window_span(self._opened)[0]
        while self._chunks:
            length = self._chunks[0].numel()
            if self._audio_begin + length / self._rate > first:
                break
            self._chunks.pop(0)
            self._audio_samples -= length
            self._audio_begin += length / self._rate

    def _window_waveform(self, start: float, end: float) -> torch.Tensor:
        """The window's samples at their own rate, silence where the stream has none."""
        rate = self._rate
        length = max(1, round((end - start) * rate))
        offset = round((start - self._audio_begin) * rate)  # where the window starts in the kept samples
        kept = torch.cat(self._chunks) if self._chunks else torch.zeros(0)
        placed = kept.new_zeros(length)
        first, last = max(0, offset), min(kept.numel(), offset + length)
        if last > first:
            placed[first - offset : last - offset] = kept[first:last]
        return placed

    def _inputs(self, window: _LiveWindow) -> dict:
        processor = self.processor
        data, boxes = {}, None
        if self.num_video_frames > 0:
            if processor.video_processor.face_crop:
                # (n, H, W, 3) memory viewed as (n, 3, H, W), as the processor views decoded frames
                frames = torch.stack(window.frames).permute(0, 3, 1, 2)
                images, boxes = processor.video_processor.frames_to_images(frames, self.name)
            else:
                images = torch.stack(window.frames)
            data["pixel_values"] = processor.rescale_and_normalize(images[None])
        if self.num_audio_frames > 0:
            waveform = prepare_waveform(
                self._window_waveform(window.start, window.end), self._rate, processor.audio_sample_rate
            )
            pictures = processor.feature_extractor.waveform_to_images(waveform, self.num_audio_frames)
            data["audio_values"] = processor.rescale_and_normalize(pictures[None])
        if boxes is not None:
            data["face_boxes"] = boxes[None]
        return dict(BatchFeature(data=data, tensor_type="pt"))


__all__ = ["LiveWindows"]
