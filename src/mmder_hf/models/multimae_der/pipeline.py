"""The audio-visual emotion recognition pipeline: a video (or frames + audio) in, ``[{"label", "score"}]`` out.

This file is shipped with every saved model as remote code (``custom_pipelines`` in ``config.json`` points at
``pipeline.MultiMAEDERPipeline``), so that

```python
>>> from transformers import pipeline
>>> pipe = pipeline(model="path/or/hub-id", trust_remote_code=True)  # doctest: +SKIP
>>> pipe("clip.mp4")  # doctest: +SKIP
[{'label': 'happy', 'score': 0.91}, ...]
```

works where ``mmder_hf`` is not installed. It may therefore import only the other shipped files (relatively) and
runtime dependencies (torch, transformers, numpy, torchcodec).

Long videos: with ``window`` (seconds) the pipeline slides a window over the file (``stride`` seconds apart), reads
the video once, in order, handing out each window's inputs as soon as the window is complete (``streaming.py``: only
the frames of the windows still open are held, so memory stays flat), batches the windows (``batch_size``) and
returns a timeline ``[{"start", "end", "label", "score", "scores": {label: p}}]``. Inputs the one-pass reader does
not take (torchcodec decoders, a separate audio input, ``seek_mode="approximate"``, audio-only models, torchcodec
< 0.17) are read window by window through seeking decoders instead, with the same inputs.
"""

from __future__ import annotations

import logging
import math
import os
import urllib.request
from pathlib import Path
from typing import Any, Callable, Iterator, Optional, Union

import numpy as np
import torch
from transformers.pipelines.base import ChunkPipeline

from .configuration_multimae_der import SYNTHETIC_TRAINING_DATA
from .faces import FaceDetectorUnavailable
from .live import LiveWindows
from .media import (
    MediaError,
    is_audio_decoder,
    is_decoder,
    is_video_decoder,
    open_audio_decoder,
    open_video_decoder,
    source_name,
    stream_span,
)
from .processing_multimae_der import MultiMAEDERProcessor
from .streaming import StreamingWindows, streaming_supported


logger = logging.getLogger(__name__)

_URL_PREFIXES = ("http://", "https://")
_METADATA_KEYS = ("start", "end", "is_last")
_LIVE_INPUTS = ("pixel_values", "audio_values", "face_boxes")


def _download(url: str, timeout: float = 60.0) -> bytes:
    try:
        with urllib.request.urlopen(url, timeout=timeout) as response:
            data = response.read()
    except Exception as error:  # noqa: BLE001 - any network problem is reported the same way
        raise MediaError(url, f"could not be downloaded: {error}") from error
    if not data:
        raise MediaError(url, "downloaded an empty file")
    return data


def synthetic_data_warning(model: Any) -> Optional[str]:
    """The one-line warning for a classifier trained on the built-in synthetic corpus (``None`` for any other model).

    Such a model looks like a working emotion recogniser but has only ever seen moving shapes and tones: whoever runs
    it on their own videos must be told, once, before trusting its scores.
    """
    if getattr(model.config, "training_data", None) != SYNTHETIC_TRAINING_DATA:
        return None
    name = getattr(model, "name_or_path", None) or getattr(model.config, "_name_or_path", None) or "this model"
    return (
        f"{name}: trained on the built-in synthetic corpus; it recognises synthetic clips only, not real faces and "
        "voices"
    )


def face_box_list(boxes: torch.Tensor) -> list:
    """``(frames, 4)`` face boxes -> ``[[x0, y0, x1, y1] or None, ...]`` (``None`` where no face was found)."""
    return [None if math.isnan(float(box[0])) else [round(float(v), 2) for v in box] for box in boxes]


def sliding_windows(start: float, end: float, window: float, stride: float) -> list[tuple[float, float]]:
    """Windows ``[s, s + window)`` every ``stride`` seconds covering ``[start, end)``.

    A clip shorter than ``window`` gives one window over the whole clip; when the last regular window stops short of
    ``end``, one more window ``[end - window, end)`` covers the tail.
    """
    if not window > 0 or not stride > 0:
        raise ValueError(f"window and stride must be positive, got window={window}, stride={stride}")
    duration = end - start
    if duration <= window + 1e-6:
        return [(start, end)]
    count = int(math.floor((duration - window) / stride + 1e-6)) + 1
    windows = [(start + i * stride, start + i * stride + window) for i in range(count)]
    if windows[-1][1] < end - 1e-3:
        windows.append((end - window, end))
    return windows


class MultiMAEDERPipeline(ChunkPipeline):
    r"""
    Audio-visual emotion recognition with a MultiMAE-DER classifier.

    Inputs (one, or a list for a batch):

    - a media file: path (`str` / `os.PathLike`), URL (``http(s)://``, downloaded), or its bytes;
    - a torchcodec ``VideoDecoder`` (what a ``datasets`` Video column returns);
    - decoded data as a dict: ``{"video": frames, "audio": waveform, "sampling_rate": sr}`` with frames
      ``(T, H, W, 3)`` uint8 and a waveform ``(samples,)`` or ``(channels, samples)``; add ``"fps"`` to compute a
      timeline over decoded data.

    Call parameters:
        top_k (`int`, *optional*, defaults to 5):
            Number of labels returned, best first (at most the model's number of labels).
        window (`float`, *optional*):
            Window length in seconds: return an emotion timeline instead of one prediction.
        stride (`float`, *optional*):
            Seconds between window starts; defaults to ``window / 2``.
        clip_start (`float`, *optional*), clip_end (`float`, *optional*):
            Use only this time range of a file (seconds).
        batch_size (`int`, *optional*, defaults to 1):
            Clips (or timeline windows) per forward pass.
        window_callback (`Callable[[int, int], None]`, *optional*):
            Called as ``window_callback(done, total)`` after each timeline window is decoded (progress bars).

    Returns:
        For one clip: `list[dict]` of ``{"label": str, "score": float}`` sorted by score. With ``window``: a timeline,
        `list[dict]` of ``{"start": float, "end": float, "label": str, "score": float, "scores": {label: float}}``
        (``label``/``score``: the window's top emotion; ``scores``: every label). When the processor crops faces
        (``face_crop``), each window is cropped around the face tracked within it and its entry also holds
        ``"face_boxes"``: the box ``[x0, y0, x1, y1]`` (source pixels) of each sampled frame, ``None`` where no
        face was found. For a list of inputs, a list of those.

    Raises:
        [`~media.MediaError`] (a `ValueError`): a missing, empty, unreadable or truncated input, or one lacking a
        stream the model needs; the message names the input.

    Warns:
        Once, when the pipeline is built, for a model trained on the built-in synthetic corpus
        (``config.training_data == "synthetic"``): it recognises synthetic clips only (:func:`synthetic_data_warning`).

    Example:

    ```python
    >>> from transformers import pipeline
    >>> pipe = pipeline(model="path/to/multimae-der-ravdess", trust_remote_code=True)  # doctest: +SKIP
    >>> pipe("clip.mp4", top_k=2)  # doctest: +SKIP
    [{'label': 'happy', 'score': 0.83}, {'label': 'surprised', 'score': 0.07}]
    >>> pipe("interview.mp4", window=3.0, stride=1.0, batch_size=8)[0]  # doctest: +SKIP
    {'start': 0.0, 'end': 3.0, 'label': 'neutral', 'score': 0.61, 'scores': {...}}
    ```
    """

    # Components are resolved here, not by `pipeline()`: the processor saved beside the model (processor_config.json,
    # or preprocessor_config.json for checkpoints saved before) is loaded with the class shipped next to this file
    # (works with and without mmder_hf installed).
    _load_processor = False
    _load_image_processor = False
    _load_video_processor = False
    _load_feature_extractor = False
    _load_tokenizer = False

    def __init__(self, model, processor: Optional[MultiMAEDERProcessor] = None, **kwargs):
        feature_extractor = kwargs.pop("feature_extractor", None)
        super().__init__(model=model, processor=None, **kwargs)
        self.processor = processor if processor is not None else feature_extractor
        if self.processor is None:
            self.processor = self._load_processor_for(model)
        # ChunkPipeline batches with a feature extractor's collation (see get_iterator): the processor stands in.
        self.feature_extractor = self.processor
        self.model.eval()
        warning = synthetic_data_warning(self.model)
        if warning:
            logger.warning(warning)

    @staticmethod
    def _load_processor_for(model) -> MultiMAEDERProcessor:
        source = getattr(model, "name_or_path", None) or getattr(model.config, "_name_or_path", None)
        if source:
            try:
                return MultiMAEDERProcessor.from_pretrained(source)
            except FaceDetectorUnavailable:  # its processor crops faces: never fall back to whole frames silently
                raise
            except Exception as error:  # noqa: BLE001 - a model saved without its processor
                logger.warning(
                    "No MultiMAE-DER processor found at %s (%s); using default settings matching the model config.",
                    source,
                    str(error).splitlines()[0] if str(error) else type(error).__name__,
                )
        return MultiMAEDERProcessor.from_model_config(model.config)

    # ------------------------------------------------------------------------------------------------------------
    # Parameters

    def _sanitize_parameters(
        self,
        top_k: Optional[int] = None,
        window: Optional[float] = None,
        stride: Optional[float] = None,
        clip_start: Optional[float] = None,
        clip_end: Optional[float] = None,
        window_callback: Optional[Callable[[int, int], None]] = None,
        **kwargs,
    ):
        if kwargs:
            raise TypeError(f"{type(self).__name__} got unexpected arguments: {', '.join(sorted(kwargs))}")
        preprocess, postprocess = {}, {}
        if window is not None:
            window = float(window)
            stride = float(stride) if stride is not None else window / 2
            if not window > 0 or not stride > 0:
                raise ValueError(f"window and stride must be positive seconds, got window={window}, stride={stride}")
            preprocess.update(window=window, stride=stride)
            postprocess["timeline"] = True
        elif stride is not None:
            raise ValueError("stride is only used together with window")
        if clip_start is not None:
            preprocess["clip_start"] = float(clip_start)
        if clip_end is not None:
            preprocess["clip_end"] = float(clip_end)
        if window_callback is not None:
            preprocess["window_callback"] = window_callback
        if top_k is not None:
            if int(top_k) < 1:
                raise ValueError(f"top_k must be >= 1, got {top_k}")
            postprocess["top_k"] = int(top_k)
        return preprocess, {}, postprocess

    # ------------------------------------------------------------------------------------------------------------
    # Preprocessing

    def _resolve_input(self, item: Any) -> tuple[dict, str]:
        """Normalise one input to processor keyword arguments and a display name."""
        if isinstance(item, Path):
            item = os.fspath(item)
        if isinstance(item, str):
            if item.startswith(_URL_PREFIXES):
                return {"videos": _download(item)}, item
            return {"videos": item}, item
        if isinstance(item, os.PathLike):
            return {"videos": os.fspath(item)}, os.fspath(item)
        if isinstance(item, (bytes, bytearray, memoryview)):
            return {"videos": bytes(item)}, source_name(item)
        if is_decoder(item):
            key = "audio" if is_audio_decoder(item) else "videos"
            return {key: item}, source_name(item)
        if isinstance(item, dict):
            unknown = set(item) - {"video", "videos", "frames", "audio", "sampling_rate", "fps"}
            if unknown:
                raise ValueError(f"unknown keys in input dict: {', '.join(sorted(unknown))}")
            video = next((item[k] for k in ("video", "videos", "frames") if item.get(k) is not None), None)
            if isinstance(video, Path):
                video = os.fspath(video)
            if isinstance(video, str) and video.startswith(_URL_PREFIXES):
                video = _download(video)
            kwargs = {"videos": video, "audio": item.get("audio"), "sampling_rate": item.get("sampling_rate")}
            if item.get("fps") is not None:
                kwargs["fps"] = float(item["fps"])
            name = (
                source_name(video)
                if video is not None and not isinstance(video, (np.ndarray, torch.Tensor))
                else "<decoded clip>"
            )
            return kwargs, name
        if isinstance(item, (np.ndarray, torch.Tensor)):
            return {"videos": item}, "<decoded frames>"
        raise TypeError(
            f"Unsupported input of type {type(item).__name__}: pass a path, URL, bytes, a torchcodec decoder, or "
            "a dict {'video': frames, 'audio': waveform, 'sampling_rate': sr}"
        )

    def _process(self, name: str, **kwargs) -> dict:
        try:
            features = self.processor(return_tensors="pt", **kwargs)
        except MediaError as error:
            if error.source != name and error.source.startswith("<"):
                raise MediaError(name, error.problem) from error
            raise
        return dict(features)

    def preprocess(
        self,
        inputs: Any,
        window: Optional[float] = None,
        stride: Optional[float] = None,
        clip_start: Optional[float] = None,
        clip_end: Optional[float] = None,
        window_callback: Optional[Callable[[int, int], None]] = None,
    ) -> Iterator[dict]:
        kwargs, name = self._resolve_input(inputs)
        fps = kwargs.pop("fps", None)
        if window is None:
            if clip_start is not None or clip_end is not None:
                kwargs.update(clip_start=clip_start, clip_end=clip_end)
            features = self._process(name, **kwargs)
            yield {**features, "start": clip_start, "end": clip_end, "is_last": True}
            return
        video = kwargs.get("videos")
        if isinstance(video, (np.ndarray, torch.Tensor, list, tuple)) or isinstance(
            kwargs.get("audio"), (np.ndarray, torch.Tensor)
        ):
            yield from self._decoded_windows(kwargs, fps, name, window, stride, clip_start, clip_end, window_callback)
        else:
            yield from self._preprocess_windows(kwargs, name, window, stride, clip_start, clip_end, window_callback)

    def _preprocess_windows(self, kwargs, name, window, stride, clip_start, clip_end, window_callback):
        video, audio = kwargs.get("videos"), kwargs.get("audio")
        processor = self.processor
        needs_video, needs_audio = processor.num_video_frames > 0, processor.num_audio_frames > 0

        # Open each stream ONCE (the exact seek mode scans the packet index, it decodes nothing): the span, the checks
        # (a missing stream, a photo, a truncated file) and, for window-by-window reading, the seeking decoders.
        source = video if video is not None else audio
        video_decoder = audio_decoder = None
        if needs_video:
            if video is None:
                raise ValueError(f"fusion_strategy {processor.fusion_strategy} needs video")
            video_decoder = (
                video
                if is_video_decoder(video)
                else open_video_decoder(
                    video, seek_mode=processor.seek_mode, num_threads=processor.num_decoder_threads, name=name
                )
            )
        if needs_audio:
            audio_input = audio if audio is not None else video
            if isinstance(audio_input, (np.ndarray, torch.Tensor)):
                raise ValueError("timelines need the audio as a file, bytes or decoder (or a dict with 'fps')")
            if is_audio_decoder(audio_input):
                audio_decoder = audio_input
            elif is_video_decoder(audio_input):
                audio_decoder = None  # the processor finds the decoder's file itself
            else:
                audio_decoder = open_audio_decoder(audio_input, name=name if audio is None else None)
        begin, end = stream_span(video_decoder, audio_decoder, name if source is not None else "<input>")
        begin = max(begin, clip_start) if clip_start is not None else begin
        end = min(end, clip_end) if clip_end is not None else end
        if not end > begin:
            raise MediaError(name, f"empty time range [{begin:.3f} s, {end:.3f} s)")
        spans = sliding_windows(begin, end, window, stride)
        one_pass = (
            isinstance(video, (str, bytes))
            and audio is None
            and needs_video
            and processor.seek_mode == "exact"
            and streaming_supported()
        )
        if one_pass:  # the file read once, in order: each window's inputs as soon as it is complete
            engine = StreamingWindows(processor, video, spans, name=name, video_decoder=video_decoder)
            for index, (start, stop, features) in enumerate(engine):
                if window_callback is not None:
                    window_callback(index + 1, len(spans))
                yield {**features, "start": start, "end": stop, "is_last": index == len(spans) - 1}
            return
        for index, (start, stop) in enumerate(spans):
            window_kwargs = {"clip_start": start, "clip_end": stop}
            if video_decoder is not None:
                window_kwargs["videos"] = video_decoder
            if audio_decoder is not None:
                window_kwargs["audio"] = audio_decoder
            elif needs_audio and video_decoder is None:
                window_kwargs["audio"] = audio
            features = self._process(name, **window_kwargs)
            if window_callback is not None:
                window_callback(index + 1, len(spans))
            yield {**features, "start": start, "end": stop, "is_last": index == len(spans) - 1}

    def _decoded_windows(self, kwargs, fps, name, window, stride, clip_start, clip_end, window_callback):
        """Timeline over already decoded frames (needs ``fps``) and/or waveform (needs ``sampling_rate``)."""
        video, audio, rate = kwargs.get("videos"), kwargs.get("audio"), kwargs.get("sampling_rate")
        if isinstance(video, (list, tuple)):
            video = np.stack([np.asarray(frame) for frame in video])
        if video is not None and fps is None:
            raise ValueError(
                f"{name}: a timeline over decoded frames needs the frame rate: add 'fps' to the input dict"
            )
        if audio is not None and not isinstance(audio, (np.ndarray, torch.Tensor)):
            raise ValueError(f"{name}: with decoded frames, pass the audio as a decoded waveform too")
        if audio is not None and rate is None:
            raise ValueError(f"{name}: a decoded waveform needs 'sampling_rate'")
        duration = video.shape[0] / fps if video is not None else audio.shape[-1] / rate
        begin = clip_start or 0.0
        end = min(duration, clip_end) if clip_end is not None else duration
        if not end > begin:
            raise ValueError(f"{name}: empty time range [{begin:.3f} s, {end:.3f} s)")
        spans = sliding_windows(begin, end, window, stride)
        for index, (start, stop) in enumerate(spans):
            window_kwargs = {}
            if video is not None:
                first = min(int(round(start * fps)), video.shape[0] - 1)
                window_kwargs["videos"] = video[first : max(first + 1, int(round(stop * fps)))]
            if audio is not None:
                window_kwargs["audio"] = audio[
                    ..., int(round(start * rate)) : max(int(round(start * rate)) + 1, int(round(stop * rate)))
                ]
                window_kwargs["sampling_rate"] = rate
            features = self._process(name, **window_kwargs)
            if window_callback is not None:
                window_callback(index + 1, len(spans))
            yield {**features, "start": start, "end": stop, "is_last": index == len(spans) - 1}

    # ------------------------------------------------------------------------------------------------------------
    # Batching, forward, postprocessing

    def get_iterator(
        self,
        inputs: Any,
        num_workers: int,
        batch_size: int,
        preprocess_params: dict,
        forward_params: dict,
        postprocess_params: dict,
    ) -> Iterator:
        """ChunkPipeline's iterator, with one worker at most (the windows of a file come from one generator).

        Batches use ChunkPipeline's feature-extractor collation: clips and windows have fixed shapes and a batch dim
        of 1, so their tensors are concatenated and the window metadata kept as lists (``tests/test_public_apis.py``).
        """
        if num_workers and num_workers > 1:
            logger.warning("num_workers > 1 is not supported by this pipeline; using 1")
            num_workers = 1
        return super().get_iterator(
            inputs, num_workers, batch_size, preprocess_params, forward_params, postprocess_params
        )

    def _forward(self, model_inputs: dict) -> dict:
        metadata = {key: model_inputs.pop(key) for key in _METADATA_KEYS}
        face_boxes = model_inputs.pop("face_boxes", None)  # what was cropped, not a model input
        dtype = self.model.dtype
        inputs = {k: v.to(dtype) if torch.is_floating_point(v) else v for k, v in model_inputs.items()}
        logits = self.model(**inputs).logits
        output = {"logits": logits.float(), **metadata}
        if face_boxes is not None:
            output["face_boxes"] = face_boxes
        return output

    def postprocess(self, model_outputs: list[dict], top_k: int = 5, timeline: bool = False) -> list[dict]:
        id2label = self.model.config.id2label
        logits = torch.cat([output["logits"] for output in model_outputs], dim=0)
        probs = logits.softmax(dim=-1)
        if not timeline:
            scores, indices = probs[0].topk(min(top_k, probs.shape[-1]))
            return [{"label": id2label[int(i)], "score": float(s)} for s, i in zip(scores, indices)]
        entries = []
        for output, row in zip(model_outputs, probs):
            best = int(row.argmax())
            entry = {
                "start": round(float(output["start"]), 6),
                "end": round(float(output["end"]), 6),
                "label": id2label[best],
                "score": float(row[best]),
                "scores": {id2label[i]: float(p) for i, p in enumerate(row.tolist())},
            }
            if "face_boxes" in output:  # the window's own tracked face, one box per sampled frame
                entry["face_boxes"] = face_box_list(output["face_boxes"][0])
            entries.append(entry)
        return entries

    # ------------------------------------------------------------------------------------------------------------
    # Live streams

    def live(self, window: float = 3.0, stride: float = 1.0) -> LiveWindows:
        """Sliding windows over a live stream, made by this pipeline's processor: push frames and audio as they
        arrive (``add_frames`` / ``add_audio``), take the complete windows (``ready``) and classify them
        (:meth:`classify_windows`). See ``live.py``."""
        return LiveWindows(self.processor, window=window, stride=stride)

    def classify_windows(self, windows: list[tuple[float, float, dict]]) -> list[dict]:
        """Run the model on a batch of windows ``(start, end, inputs)`` (as :meth:`LiveWindows.ready` gives them)
        and return their timeline entries, exactly as a timeline's: ``{"start", "end", "label", "score",
        "scores"[, "face_boxes"]}``, in the order given (one forward pass for the batch)."""
        if not windows:
            return []
        batch = {
            key: torch.cat([inputs[key] for _, _, inputs in windows]) for key in windows[0][2] if key in _LIVE_INPUTS
        }
        batch.update(start=[w[0] for w in windows], end=[w[1] for w in windows], is_last=[False] * len(windows))
        output = self.forward(batch)  # device placement and no-grad, as a pipeline call
        outputs = []
        for index, (start, end, _) in enumerate(windows):
            item = {"logits": output["logits"][index : index + 1], "start": start, "end": end}
            if "face_boxes" in output:
                item["face_boxes"] = output["face_boxes"][index : index + 1]
            outputs.append(item)
        return self.postprocess(outputs, timeline=True)

    # ------------------------------------------------------------------------------------------------------------
    # Saving

    def save_pretrained(self, save_directory: Union[str, os.PathLike], **kwargs: Any) -> None:
        """Save model and processor, so ``pipeline(model=save_directory, trust_remote_code=True)`` rebuilds this
        pipeline anywhere (the model's ``save_pretrained`` writes the code files; ``push_to_hub`` uses this too)."""
        os.makedirs(save_directory, exist_ok=True)
        self.model.save_pretrained(save_directory, **kwargs)
        self.processor.save_pretrained(save_directory)


__all__ = ["MultiMAEDERPipeline", "face_box_list", "sliding_windows", "synthetic_data_warning"]
