"""MultiMAE-DER video processor: media or decoded frames -> ``pixel_values`` (face frames).

The video half of :class:`~processing_multimae_der.MultiMAEDERProcessor`, usable on its own: ``AutoVideoProcessor``
loads it from a saved folder, and transformers' ``pipeline("video-classification")`` serves a ``video``-strategy
checkpoint with it. Frames are sampled as the paper's timing figure says (``sample_frames``), optionally cropped to
the clip's main face (``faces.py``), resized, rescaled and normalised; reading media goes through ``media.py``.
"""

from __future__ import annotations

import functools
from typing import Any, Optional, Sequence, Union

import numpy as np
import torch
import torch.nn.functional as F
from transformers.feature_extraction_utils import BatchFeature
from transformers.video_processing_utils import BaseVideoProcessor

from .faces import NoFaceError, check_face_detector, crop_faces
from .media import (
    FRAME_SAMPLINGS,
    DecodedClip,
    MediaError,
    aligned_frame_indices,
    decode_clip,
    is_media_source,
    original_frame_indices,
)


#: The original MultiMAE-DER normalisation: ImageNet's mean, and 0.225 on every channel.
IMAGE_MEAN = (0.485, 0.456, 0.406)
IMAGE_STD = (0.225, 0.225, 0.225)


def is_array(obj: Any) -> bool:
    """A numpy array or torch tensor."""
    return isinstance(obj, (np.ndarray, torch.Tensor))


def _is_image(obj: Any) -> bool:
    return type(obj).__module__.startswith("PIL.") or (is_array(obj) and obj.ndim in (2, 3))


def per_item(value: Any, batch_size: int, name: str) -> list:
    """A per-call argument as one value per clip of the batch (a list is taken as given, checked for length)."""
    if isinstance(value, (list, tuple)):
        if len(value) != batch_size:
            raise ValueError(f"{name} has {len(value)} entries for a batch of {batch_size}")
        return list(value)
    return [value] * batch_size


def rescale_and_normalize_images(
    images: torch.Tensor,
    rescale_factor: float,
    image_mean: Sequence[float],
    image_std: Sequence[float],
    do_rescale: bool = True,
    do_normalize: bool = True,
) -> torch.Tensor:
    """uint8 (or 0..255 float) images ``(..., 3, height, width)`` -> float32 model inputs; the same arithmetic for
    frames and audio pictures, so that both modalities (and the 8-bit preprocess cache) match to the bit."""
    scale, shift = _scale_and_shift(
        float(rescale_factor), tuple(map(float, image_mean)), tuple(map(float, image_std)), do_rescale, do_normalize
    )
    values = images.to(torch.float32, memory_format=torch.contiguous_format)
    return values.mul_(scale).sub_(shift)


@functools.lru_cache(maxsize=16)
def _scale_and_shift(
    rescale_factor: float, image_mean: tuple, image_std: tuple, do_rescale: bool, do_normalize: bool
) -> tuple[torch.Tensor, torch.Tensor]:
    """Per-channel ``(scale, shift)``, float32 ``(3, 1, 1)``, made once per setting (a timeline normalises thousands
    of pictures). One fused multiply-add per pixel: (x * rescale - mean) / std == x * (rescale / std) - mean / std."""
    scale = torch.full((3, 1, 1), rescale_factor if do_rescale else 1.0, dtype=torch.float64)
    shift = torch.zeros((3, 1, 1), dtype=torch.float64)
    if do_normalize:
        std = torch.tensor(image_std, dtype=torch.float64).view(3, 1, 1)
        scale = scale / std
        shift = torch.tensor(image_mean, dtype=torch.float64).view(3, 1, 1) / std
    return scale.to(torch.float32), shift.to(torch.float32)


class MultiMAEDERVideoProcessor(BaseVideoProcessor):
    r"""
    Turns clips into MultiMAE-DER's ``pixel_values``: ``num_frames`` sampled frames per clip, optionally cropped to
    the main face, resized to ``image_size`` squares, rescaled and normalised (Xiang et al., ICPRS 2024).

    Inputs are media files (path or bytes), torchcodec ``VideoDecoder`` objects, or decoded frames (``(T, H, W, 3)``
    or ``(T, 3, H, W)`` numpy/torch, or a list of ``(H, W, 3)`` frames), or a list of these for a batch. Settings
    are described in :class:`~processing_multimae_der.MultiMAEDERProcessor`; those of transformers' video
    processors that this one does not use (``size``, ``crop_size``, ``do_center_crop``, ``fps``) are kept at values
    that describe what it does.

    Args:
        num_frames (`int`, *optional*, defaults to 8):
            Frames per clip (the composite processor sets it to what the fusion strategy consumes).
        image_size (`int`, *optional*, defaults to 224):
            Side of the square output frames.
        frame_sampling (`str`, *optional*, defaults to `"aligned"`), original_frame_stride (`int`, *optional*):
            How frames are chosen (see ``sample_frames``).
        do_rescale, rescale_factor, do_normalize, image_mean, image_std:
            As transformers' image processors; defaults: 1/255, the original's mean and std.
        seek_mode (`str`, *optional*, defaults to `"exact"`), num_decoder_threads (`int`, *optional*, defaults to 1):
            torchcodec settings for paths and bytes.
        face_crop, face_margin, face_align, face_strict, face_detect_width, face_score_threshold:
            Face cropping (``faces.py``), off by default.

    Example:

    ```python
    >>> from transformers import AutoVideoProcessor
    >>> folder = "path/to/checkpoint"
    >>> video_processor = AutoVideoProcessor.from_pretrained(folder, trust_remote_code=True)  # doctest: +SKIP
    >>> video_processor("clip.mp4")["pixel_values"].shape  # doctest: +SKIP
    torch.Size([1, 8, 3, 224, 224])
    ```
    """

    model_input_names = ["pixel_values"]
    # transformers' video-processor settings, set to what this processor does (antialiased bilinear resizing with
    # torch, no center crop); nothing here needs Pillow or torchvision, which a saved model's code may not import
    do_resize = True
    do_center_crop = False
    do_convert_rgb = True
    do_sample_frames = True
    do_rescale = True
    rescale_factor = 1 / 255
    do_normalize = True
    image_mean = list(IMAGE_MEAN)
    image_std = list(IMAGE_STD)
    num_frames = 8
    # MultiMAE-DER's own settings
    image_size: int = 224
    frame_sampling: str = "aligned"
    original_frame_stride: Optional[int] = None
    seek_mode: str = "exact"
    num_decoder_threads: int = 1
    face_crop: bool = False
    face_margin: float = 0.25
    face_align: bool = False
    face_strict: bool = False
    face_detect_width: int = 320
    face_score_threshold: float = 0.6

    SETTINGS = (
        "num_frames",
        "image_size",
        "frame_sampling",
        "original_frame_stride",
        "do_rescale",
        "rescale_factor",
        "do_normalize",
        "image_mean",
        "image_std",
        "seek_mode",
        "num_decoder_threads",
        "face_crop",
        "face_margin",
        "face_align",
        "face_strict",
        "face_detect_width",
        "face_score_threshold",
    )

    def __init__(self, **kwargs):
        settings = {name: kwargs.pop(name, getattr(type(self), name)) for name in self.SETTINGS}
        side = int(settings["image_size"])
        kwargs["size"] = {"height": side, "width": side}
        kwargs.pop("crop_size", None)
        super().__init__(**kwargs)
        for name, value in settings.items():
            setattr(self, name, value)
        self.num_frames = int(self.num_frames)
        self.image_size = side
        if self.frame_sampling not in FRAME_SAMPLINGS:
            raise ValueError(f"frame_sampling must be one of {FRAME_SAMPLINGS}, got {self.frame_sampling!r}")
        self.image_mean = [float(v) for v in self.image_mean]
        self.image_std = [float(v) for v in self.image_std]
        if len(self.image_mean) != 3 or len(self.image_std) != 3 or min(self.image_std) <= 0:
            raise ValueError("image_mean and image_std must hold 3 values each, with a positive std")
        self.num_decoder_threads = int(self.num_decoder_threads)
        self._validate_face_settings()

    def _validate_face_settings(self) -> None:
        for name in ("face_crop", "face_align", "face_strict"):
            if not isinstance(getattr(self, name), (bool, np.bool_)):
                raise ValueError(f"{name} must be true or false, got {getattr(self, name)!r}")
            setattr(self, name, bool(getattr(self, name)))
        self.face_margin = float(self.face_margin)
        if not 0 <= self.face_margin <= 2:
            raise ValueError(f"face_margin must be between 0 and 2 got {self.face_margin}")
        self.face_detect_width = int(self.face_detect_width)
        if self.face_detect_width < 32:
            raise ValueError(f"face_detect_width must be at least 32 pixels, got {self.face_detect_width}")
        self.face_score_threshold = float(self.face_score_threshold)
        if not 0 < self.face_score_threshold < 1:
            raise ValueError(f"face_score_threshold must be between 0 and 1, got {self.face_score_threshold}")
        if self.face_crop:
            check_face_detector()  # a clear ImportError naming the extra, before any clip is read

    # ----------------------------------------------------------------------------------------------------------
    # Steps

    def sample_frames(self, metadata: Any = None, num_frames: Optional[int] = None, **kwargs) -> np.ndarray:
        """Indices of the frames to keep among ``metadata.total_num_frames`` evenly timed frames.

        ``"aligned"``: frame ``k`` of ``n`` is the one played at ``(k + 1) / (n + 1)`` of the clip, the centre of
        audio window ``k`` (the paper's timing figure); ``"original"``: frames ``0, s, 2s, ...`` (the original code).
        Media inputs are sampled by timestamp in ``media.decode_clip`` with the same rule.
        """
        total = metadata.total_num_frames if hasattr(metadata, "total_num_frames") else int(metadata)
        count = self.num_frames if num_frames is None else int(num_frames)
        if self.frame_sampling == "aligned":
            return np.asarray(aligned_frame_indices(total, count), dtype=np.int64)
        return np.asarray(original_frame_indices(total, count, self.original_frame_stride), dtype=np.int64)

    def read_clip(
        self,
        source: Any,
        num_frames: int,
        audio_sample_rate: Optional[int] = None,
        audio_source: Any = None,
        clip_start: Optional[float] = None,
        clip_end: Optional[float] = None,
        resized: bool = False,
    ) -> DecodedClip:
        """Decode ``num_frames`` sampled frames of a media input (and its audio when ``audio_sample_rate`` is set).

        ``resized=True`` resizes the frames to ``image_size`` as they are decoded when there is no face cropping
        (then nothing full-size is kept; :meth:`frames_to_images` gives the same images either way).
        """
        return decode_clip(
            source,
            num_video_frames=num_frames,
            audio_sample_rate=audio_sample_rate,
            frame_sampling=self.frame_sampling,
            frame_stride=self.original_frame_stride,
            clip_start=clip_start,
            clip_end=clip_end,
            audio_source=audio_source,
            seek_mode=self.seek_mode,
            num_threads=self.num_decoder_threads,
            frame_transform=self._resize if resized and not self.face_crop else None,
        )

    def sample_decoded(self, frames: Any, num_frames: int) -> torch.Tensor:
        """Decoded frames (any layout ``frames_to_tensor`` accepts) -> the ``num_frames`` sampled ``(T, 3, H, W)``."""
        tensor = self.frames_to_tensor(frames)
        return tensor[self.sample_frames(tensor.shape[0], num_frames)]

    @staticmethod
    def frames_to_tensor(frames: Any) -> torch.Tensor:
        """Decoded frames -> ``(T, 3, H, W)`` tensor (uint8 kept as is, other types as float32 in 0..255)."""
        if isinstance(frames, (list, tuple)):
            frames = np.stack([np.asarray(frame) for frame in frames])
        tensor = torch.as_tensor(frames) if isinstance(frames, np.ndarray) else frames
        if not isinstance(tensor, torch.Tensor):
            raise ValueError(f"unsupported frames of type {type(frames).__name__}")
        tensor = tensor.detach().cpu()
        if tensor.ndim == 2:
            tensor = tensor[None, ..., None]
        if tensor.ndim == 3:  # a single frame
            tensor = tensor[None]
        if tensor.ndim != 4:
            raise ValueError(f"frames must be (T, H, W, C) or (T, C, H, W), got shape {tuple(tensor.shape)}")
        if tensor.shape[-1] in (1, 3, 4) and tensor.shape[1] not in (1, 3, 4):
            tensor = tensor.permute(0, 3, 1, 2)
        elif tensor.shape[1] not in (1, 3, 4):
            raise ValueError(f"cannot find the channel axis of frames shaped {tuple(tensor.shape)}")
        if tensor.shape[0] == 0 or tensor.shape[2] == 0 or tensor.shape[3] == 0:
            raise ValueError(f"frames are empty: shape {tuple(tensor.shape)}")
        if tensor.shape[1] == 4:
            tensor = tensor[:, :3]  # drop alpha
        if tensor.shape[1] == 1:
            tensor = tensor.expand(-1, 3, -1, -1)
        if tensor.dtype != torch.uint8:
            if tensor.dtype == torch.bool or tensor.is_complex():
                raise ValueError(f"unsupported frame dtype {tensor.dtype}")
            tensor = tensor.to(torch.float32)
        return tensor

    def _resize(self, frames: torch.Tensor) -> torch.Tensor:
        size = (self.image_size, self.image_size)
        if tuple(frames.shape[-2:]) == size:
            return frames
        # uint8 bilinear with antialiasing has a fast (SIMD) CPU kernel for channels-last memory, which is also how
        # decoders lay frames out: several times faster than float or channels-first.
        if frames.dtype == torch.uint8:
            frames = frames.contiguous(memory_format=torch.channels_last)
        return F.interpolate(frames, size=size, mode="bilinear", align_corners=False, antialias=True)

    def frames_to_images(self, frames: torch.Tensor, name: str) -> tuple[torch.Tensor, Optional[torch.Tensor]]:
        """Sampled frames -> (``image_size`` squares, unnormalised; face boxes ``(T, 4)`` with ``face_crop``, NaN
        where no face was found, else ``None``)."""
        if not self.face_crop:
            return self._resize(frames), None
        try:
            crops = crop_faces(
                frames,
                self.image_size,
                margin=self.face_margin,
                align=self.face_align,
                detect_width=self.face_detect_width,
                score_threshold=self.face_score_threshold,
                strict=self.face_strict,
                name=name,
            )
        except NoFaceError as error:
            problem = f"no face found in any of its {len(frames)} sampled frames (face_strict=True)"
            raise MediaError(name, problem) from error
        return crops.frames, crops.face_boxes

    @staticmethod
    def as_video_batch(videos: Any) -> Optional[list]:
        """Split ``videos`` into a list of per-clip inputs, or ``None``."""
        if videos is None:
            return None
        if is_media_source(videos):
            return [videos]
        if is_array(videos):
            if videos.ndim == 5:
                return list(videos)
            if videos.ndim in (3, 4):
                return [videos]
            raise ValueError(f"videos array must have 3, 4 or 5 dimensions, got shape {tuple(videos.shape)}")
        if isinstance(videos, (list, tuple)):
            if len(videos) == 0:
                raise ValueError("videos is an empty list")
            if _is_image(videos[0]):
                return [list(videos)]  # one clip given as a list of frames
            return list(videos)
        raise ValueError(f"unsupported videos input of type {type(videos).__name__}")

    # ----------------------------------------------------------------------------------------------------------
    # The call

    def preprocess(
        self,
        videos: Any,
        num_frames: Optional[int] = None,
        do_sample_frames: Optional[bool] = None,
        clip_start: Optional[Union[float, Sequence[Optional[float]]]] = None,
        clip_end: Optional[Union[float, Sequence[Optional[float]]]] = None,
        do_rescale: Optional[bool] = None,
        do_normalize: Optional[bool] = None,
        return_tensors: Optional[str] = "pt",
        **kwargs,
    ) -> BatchFeature:
        """Clips -> ``BatchFeature(pixel_values=(batch, num_frames, 3, image_size, image_size))`` (+ ``face_boxes``
        ``(batch, num_frames, 4)`` with ``face_crop``).

        ``num_frames`` overrides the saved count; ``do_sample_frames=False`` keeps every given decoded frame (media
        inputs are always sampled); ``clip_start`` / ``clip_end`` (seconds) read only that range of a media input;
        with ``do_rescale=False`` and ``do_normalize=False`` the 8-bit images come back as they are. Other
        transformers video-processor arguments (``fps``, ``size``...) are not used.
        """
        items = self.as_video_batch(videos)
        if items is None:
            raise ValueError("pass videos= (files, bytes, decoders or frames)")
        count = self.num_frames if num_frames is None else int(num_frames)
        sample = self.do_sample_frames if do_sample_frames is None else do_sample_frames
        starts = per_item(clip_start, len(items), "clip_start")
        ends = per_item(clip_end, len(items), "clip_end")
        images, boxes = [], []
        for index, (video, start, end) in enumerate(zip(items, starts, ends)):
            if is_media_source(video):
                clip = self.read_clip(video, count, clip_start=start, clip_end=end, resized=True)
                frames, name = clip.frames, clip.name
            else:
                if start is not None or end is not None:
                    raise ValueError("clip_start / clip_end need a file, bytes or decoder input, not decoded frames")
                frames = self.sample_decoded(video, count) if sample else self.frames_to_tensor(video)
                name = f"<decoded frames of clip {index} of the batch>"
            clip_images, clip_boxes = self.frames_to_images(frames, name)
            images.append(clip_images)
            boxes.append(clip_boxes)
        stacked = torch.stack(images)
        if not (do_rescale is False and do_normalize is False):
            stacked = rescale_and_normalize_images(
                stacked,
                self.rescale_factor,
                self.image_mean,
                self.image_std,
                self.do_rescale if do_rescale is None else do_rescale,
                self.do_normalize if do_normalize is None else do_normalize,
            )
        data = {"pixel_values": stacked}
        if self.face_crop:
            data["face_boxes"] = torch.stack(boxes)
        return BatchFeature(data=data, tensor_type=return_tensors)


__all__ = ["MultiMAEDERVideoProcessor", "per_item", "rescale_and_normalize_images"]
