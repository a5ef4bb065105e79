"""MultiMAE-DER processor: media or decoded data -> ``pixel_values`` (face frames) + ``audio_values`` (audio images).

One processor serves every fusion strategy: it returns the two modalities separately, with as many frames as the
strategy consumes, and the model fuses them (see ``fusion.py``).
"""

from __future__ import annotations

import logging
import os
from typing import Any, Optional, Sequence, Union

import numpy as np
import torch
import torch.nn.functional as F
from transformers.feature_extraction_utils import BatchFeature, FeatureExtractionMixin

from .audio_features import AUDIO_REPRESENTATIONS, COLORMAPS, audio_images, prepare_waveform
from .configuration_multimae_der import MultiMAEDERConfig
from .fusion import frames_per_modality, normalize_strategy
from .video_io import (
    FRAME_SAMPLINGS,
    MediaError,
    aligned_frame_indices,
    decode_clip,
    original_frame_indices,
)


logger = logging.getLogger(__name__)

#: ImageNet mean and the original MultiMAE-DER std (0.225 on every channel).
DEFAULT_IMAGE_MEAN = (0.485, 0.456, 0.406)
DEFAULT_IMAGE_STD = (0.225, 0.225, 0.225)

_REPRESENTATION_ALIASES = {"mfcc": "mfcc", "log-mel": "log-mel", "log_mel": "log-mel", "logmel": "log-mel"}


def _is_media_source(obj: Any) -> bool:
    """A path, encoded bytes, or a torchcodec decoder (what ``datasets`` Video/Audio columns return)."""
    if isinstance(obj, (str, os.PathLike, bytes, bytearray, memoryview)):
        return True
    return type(obj).__name__ in ("VideoDecoder", "AudioDecoder")


def _is_array(obj: Any) -> bool:
    return isinstance(obj, (np.ndarray, torch.Tensor))


def _is_image(obj: Any) -> bool:
    return type(obj).__module__.startswith("PIL.") or (_is_array(obj) and obj.ndim in (2, 3))


class MultiMAEDERProcessor(FeatureExtractionMixin):
    r"""
    Prepares audio-visual clips for MultiMAE-DER (Xiang et al., ICPRS 2024): samples and resizes the face frames,
    cuts the audio track into overlapping windows and draws each window as an MFCC (or log-mel) picture, then
    rescales and normalises both modalities the same way.

    Inputs are media files (path or bytes, audio read from the same file), torchcodec ``VideoDecoder`` /
    ``AudioDecoder`` objects (what ``datasets`` Video/Audio columns return), or decoded frames and waveforms
    (numpy or torch). Outputs hold only what ``fusion_strategy`` consumes: ``num_frames / 2`` video frames and
    ``num_frames / 2`` audio images for FSLF, FFLS, OFOS, RFAS; ``num_frames`` of each for CFAS, SFAS;
    ``num_frames`` video frames only for ``video`` / ``prefused``; ``num_frames`` audio images only for ``audio``.

    Args:
        fusion_strategy (`str`, *optional*, defaults to `"FSLF"`):
            The model's fusion strategy; decides how many frames of each modality are returned.
        num_frames (`int`, *optional*, defaults to 16):
            Length of the fused clip the encoder sees (the model config's ``num_frames``).
        image_size (`int`, *optional*, defaults to 224):
            Side of the square frames and audio images (the model config's ``image_size``). Frames are resized
            without keeping the aspect ratio, as the original did (1280 x 720 is squashed).
        frame_sampling (`str`, *optional*, defaults to `"aligned"`):
            ``"aligned"``: video frame ``k`` of ``n`` is the frame played at ``(k + 1) / (n + 1)`` of the clip, i.e.
            at the centre of audio window ``k`` when both modalities have ``n`` frames (the paper's timing figure);
            sampled by timestamp, so variable frame rates are handled. ``"original"``: frames ``0, s, 2s, ...``
            from the first frame (the original code, whose faces covered only the first ~1.4 s).
        original_frame_stride (`int`, *optional*):
            Stride of ``"original"`` sampling; defaults to ``48 // n`` (6 for 8 frames, 3 for 16), as the original.
        do_rescale (`bool`, *optional*, defaults to `True`), rescale_factor (`float`, *optional*, defaults to 1/255):
            Scale uint8 pixels to [0, 1].
        do_normalize (`bool`, *optional*, defaults to `True`):
            Subtract ``image_mean`` and divide by ``image_std`` (both modalities).
        image_mean (`tuple[float]`, *optional*, defaults to `(0.485, 0.456, 0.406)`),
        image_std (`tuple[float]`, *optional*, defaults to `(0.225, 0.225, 0.225)`):
            The original MultiMAE-DER normalisation.
        audio_sample_rate (`int`, *optional*, defaults to 16000):
            Every waveform is downmixed to mono and resampled to this rate. The original extracted 44.1 kHz, where
            its 25 ms frames (1102 samples) were truncated to the first 512 samples by ``rfft(frame, 512)``; at
            16 kHz a 25 ms frame (400 samples) fits the 512-point FFT, as the MFCC recipe intends.
        audio_representation (`str`, *optional*, defaults to `"mfcc"`):
            ``"mfcc"``: the paper's MFCC pictures; ``"log-mel"``: 128-bin Kaldi log-mel filterbanks (as HiCMAE).
        do_peak_normalize (`bool`, *optional*, defaults to `True`):
            Divide the clip's waveform by its peak (the original's ``normalize_audio``); skipped for silence.
        pre_emphasis (`float`, *optional*, defaults to 0.97), frame_length_ms (`float`, *optional*, defaults to 25.0),
        hop_length_ms (`float`, *optional*, defaults to 10.0), n_fft (`int`, *optional*, defaults to 512),
        num_mel_filters (`int`, *optional*, defaults to 40), num_mfcc (`int`, *optional*, defaults to 13),
        cepstral_lifter (`float`, *optional*, defaults to 22.0):
            MFCC parameters (see ``audio_features.mfcc``); 40 filters from 0 Hz to half the rate, coefficients
            1..13. The original's hop was 0.1 ms; 10 ms is the usual value and gives the same picture up to the
            resampling of the time axis.
        num_log_mel_bins (`int`, *optional*, defaults to 128):
            Mel bins of the ``"log-mel"`` representation (same frame length and hop).
        audio_colormap (`str`, *optional*, defaults to `"viridis"`):
            ``"viridis"`` (matplotlib's default, as the original's plots) or ``"gray"``.
        audio_image_origin (`str`, *optional*, defaults to `"lower"`):
            ``"lower"`` draws coefficient 1 (or the lowest mel bin) at the bottom, as the original's
            ``matshow(..., origin="lower")``; time runs left to right.
        audio_image_interpolation (`str`, *optional*, defaults to `"nearest"`):
            How the small matrix is resized to ``image_size``: ``"nearest"`` (crisp bands, like the original's
            ``interpolation="nearest"``) or ``"bilinear"``. Unlike the original, there are no white figure margins.
        seek_mode (`str`, *optional*, defaults to `"exact"`), num_decoder_threads (`int`, *optional*, defaults to 1):
            torchcodec settings used when opening paths and bytes.

    Example:

    ```python
    >>> from mmder_hf import MultiMAEDERProcessor
    >>> processor = MultiMAEDERProcessor()  # matches MultiMAEDERConfig(): FSLF, 16 frames, 224 x 224
    >>> inputs = processor(videos="clip.mp4", return_tensors="pt")  # doctest: +SKIP
    >>> inputs["pixel_values"].shape, inputs["audio_values"].shape  # doctest: +SKIP
    (torch.Size([1, 8, 3, 224, 224]), torch.Size([1, 8, 3, 224, 224]))
    ```
    """

    model_input_names = ["pixel_values", "audio_values"]

    def __init__(
        self,
        fusion_strategy: str = "FSLF",
        num_frames: int = 16,
        image_size: int = 224,
        frame_sampling: str = "aligned",
        original_frame_stride: Optional[int] = None,
        do_rescale: bool = True,
        rescale_factor: float = 1 / 255,
        do_normalize: bool = True,
        image_mean: Sequence[float] = DEFAULT_IMAGE_MEAN,
        image_std: Sequence[float] = DEFAULT_IMAGE_STD,
        audio_sample_rate: int = 16000,
        audio_representation: str = "mfcc",
        do_peak_normalize: bool = True,
        pre_emphasis: float = 0.97,
        frame_length_ms: float = 25.0,
        hop_length_ms: float = 10.0,
        n_fft: int = 512,
        num_mel_filters: int = 40,
        num_mfcc: int = 13,
        cepstral_lifter: float = 22.0,
        num_log_mel_bins: int = 128,
        audio_colormap: str = "viridis",
        audio_image_origin: str = "lower",
        audio_image_interpolation: str = "nearest",
        seek_mode: str = "exact",
        num_decoder_threads: int = 1,
        **kwargs,
    ):
        kwargs.pop("feature_extractor_type", None)
        super().__init__(**kwargs)
        self.fusion_strategy = normalize_strategy(fusion_strategy)
        self.num_frames = int(num_frames)
        frames_per_modality(self.fusion_strategy, self.num_frames)  # validates the pair
        self.image_size = int(image_size)
        if frame_sampling not in FRAME_SAMPLINGS:
            raise ValueError(f"frame_sampling must be one of {FRAME_SAMPLINGS}, got {frame_sampling!r}")
        self.frame_sampling = frame_sampling
        self.original_frame_stride = original_frame_stride
        self.do_rescale = do_rescale
        self.rescale_factor = rescale_factor
        self.do_normalize = do_normalize
        self.image_mean = [float(v) for v in image_mean]
        self.image_std = [float(v) for v in image_std]
        if len(self.image_mean) != 3 or len(self.image_std) != 3 or min(self.image_std) <= 0:
            raise ValueError("image_mean and image_std must hold 3 values each, with a positive std")
        self.audio_sample_rate = int(audio_sample_rate)
        if str(audio_representation).lower() not in _REPRESENTATION_ALIASES:
            raise ValueError(
                f"audio_representation must be one of {AUDIO_REPRESENTATIONS}, got {audio_representation!r}"
            )
        self.audio_representation = _REPRESENTATION_ALIASES[str(audio_representation).lower()]
        self.do_peak_normalize = do_peak_normalize
        self.pre_emphasis = pre_emphasis
        self.frame_length_ms = frame_length_ms
        self.hop_length_ms = hop_length_ms
        self.n_fft = n_fft
        self.num_mel_filters = num_mel_filters
        self.num_mfcc = num_mfcc
        self.cepstral_lifter = cepstral_lifter
        self.num_log_mel_bins = num_log_mel_bins
        if audio_colormap not in COLORMAPS:
            raise ValueError(f"audio_colormap must be one of {COLORMAPS}, got {audio_colormap!r}")
        self.audio_colormap = audio_colormap
        if audio_image_origin not in ("lower", "upper"):
            raise ValueError(f"audio_image_origin must be 'lower' or 'upper', got {audio_image_origin!r}")
        self.audio_image_origin = audio_image_origin
        if audio_image_interpolation not in ("nearest", "bilinear"):
            raise ValueError(
                f"audio_image_interpolation must be 'nearest' or 'bilinear', got {audio_image_interpolation!r}"
            )
        self.audio_image_interpolation = audio_image_interpolation
        self.seek_mode = seek_mode
        self.num_decoder_threads = int(num_decoder_threads)

    @classmethod
    def from_model_config(cls, config: MultiMAEDERConfig, **kwargs) -> "MultiMAEDERProcessor":
        """A processor matching ``config``'s fusion strategy, clip length and image size (``kwargs`` override)."""
        settings = {
            "fusion_strategy": config.fusion_strategy,
            "num_frames": config.num_frames,
            "image_size": config.image_size,
        }
        settings.update(kwargs)
        return cls(**settings)

    def to_dict(self) -> dict[str, Any]:
        """Serialisable settings; ``processor_class`` lets ``AutoProcessor`` find this class."""
        output = super().to_dict()
        output["processor_class"] = type(self).__name__
        return output

    @property
    def num_video_frames(self) -> int:
        """Video frames per clip in ``pixel_values`` (0 for the ``audio`` strategy)."""
        return frames_per_modality(self.fusion_strategy, self.num_frames)[0]

    @property
    def num_audio_frames(self) -> int:
        """Audio images per clip in ``audio_values`` (0 for ``video`` and ``prefused``)."""
        return frames_per_modality(self.fusion_strategy, self.num_frames)[1]

    # ----------------------------------------------------------------------------------------------------------
    # Input handling

    @staticmethod
    def _as_video_batch(videos: Any) -> Optional[list]:
        """Split ``videos`` into a list of per-clip inputs, or ``None``."""
        if videos is None:
            return None
        if _is_media_source(videos):
            return [videos]
        if _is_array(videos):
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

    @staticmethod
    def _as_audio_batch(audio: Any, batch_size: Optional[int]) -> Optional[list]:
        if audio is None:
            return None
        if _is_media_source(audio):
            items = [audio]
        elif _is_array(audio):
            if audio.ndim in (1, 2):
                items = [audio]
            elif audio.ndim == 3:
                items = list(audio)
            else:
                raise ValueError(f"audio array must be (samples,), (channels, samples) or (batch, channels, samples)")
        elif isinstance(audio, (list, tuple)):
            if len(audio) and isinstance(audio[0], (int, float, np.floating, np.integer)):
                items = [np.asarray(audio, dtype=np.float32)]
            else:
                items = list(audio)
        else:
            raise ValueError(f"unsupported audio input of type {type(audio).__name__}")
        if batch_size is not None and len(items) != batch_size:
            raise ValueError(
                f"got {batch_size} videos but {len(items)} audio inputs; for a batch pass a list with one waveform "
                "(or audio file/decoder) per video"
            )
        return items

    @staticmethod
    def _per_item(value: Any, batch_size: int, name: str) -> list:
        if isinstance(value, (list, tuple)):
            if len(value) != batch_size:
                raise ValueError(f"{name} has {len(value)} entries for a batch of {batch_size}")
            return list(value)
        return [value] * batch_size

    @staticmethod
    def _frames_to_tensor(frames: Any) -> torch.Tensor:
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

    def _audio_images(self, waveform: torch.Tensor) -> torch.Tensor:
        return audio_images(
            waveform,
            self.audio_sample_rate,
            self.num_audio_frames,
            image_size=self.image_size,
            representation=self.audio_representation,
            do_peak_normalize=self.do_peak_normalize,
            pre_emphasis=self.pre_emphasis,
            frame_length_ms=self.frame_length_ms,
            hop_length_ms=self.hop_length_ms,
            n_fft=self.n_fft,
            num_mel_filters=self.num_mel_filters,
            num_mfcc=self.num_mfcc,
            cepstral_lifter=self.cepstral_lifter,
            num_log_mel_bins=self.num_log_mel_bins,
            colormap=self.audio_colormap,
            origin=self.audio_image_origin,
            interpolation=self.audio_image_interpolation,
        )

    def _sample_decoded_frames(self, frames: torch.Tensor) -> torch.Tensor:
        total = frames.shape[0]
        if self.frame_sampling == "aligned":
            indices = aligned_frame_indices(total, self.num_video_frames)
        else:
            indices = original_frame_indices(total, self.num_video_frames, self.original_frame_stride)
        return frames[indices]

    def _process_one(
        self,
        video: Any,
        audio: Any,
        sampling_rate: Optional[int],
        clip_start: Optional[float],
        clip_end: Optional[float],
    ) -> tuple[Optional[torch.Tensor], Optional[torch.Tensor]]:
        n_video, n_audio = self.num_video_frames, self.num_audio_frames
        frames = waveform = None
        ranged = clip_start is not None or clip_end is not None

        if video is not None and _is_media_source(video):
            # Audio comes from the same file unless given explicitly as a waveform.
            audio_from_file = n_audio > 0 and (audio is None or _is_media_source(audio))
            clip = decode_clip(
                video,
                num_video_frames=n_video,
                audio_sample_rate=self.audio_sample_rate if audio_from_file else None,
                frame_sampling=self.frame_sampling,
                frame_stride=self.original_frame_stride,
                clip_start=clip_start,
                clip_end=clip_end,
                audio_source=audio if audio_from_file else None,
                seek_mode=self.seek_mode,
                num_threads=self.num_decoder_threads,
            )
            frames, waveform = clip.frames, clip.waveform
        elif video is not None and n_video > 0:
            if ranged:
                raise ValueError("clip_start / clip_end need a file, bytes or decoder input, not decoded frames")
            frames = self._sample_decoded_frames(self._frames_to_tensor(video))

        if n_video > 0 and frames is None:
            raise ValueError(f"fusion_strategy {self.fusion_strategy} needs video: pass videos=")

        if n_audio > 0 and waveform is None:
            if audio is None:
                if video is None:
                    raise ValueError(f"fusion_strategy {self.fusion_strategy} needs audio: pass audio= or videos=")
                raise ValueError(
                    f"fusion_strategy {self.fusion_strategy} needs audio: with decoded frames, pass the waveform as "
                    "audio= together with sampling_rate= (or pass the media file as videos=)"
                )
            if _is_media_source(audio):
                waveform = decode_clip(
                    audio,
                    num_video_frames=0,
                    audio_sample_rate=self.audio_sample_rate,
                    clip_start=clip_start,
                    clip_end=clip_end,
                    seek_mode=self.seek_mode,
                    num_threads=self.num_decoder_threads,
                ).waveform
            else:
                if ranged and video is None:
                    raise ValueError("clip_start / clip_end need a file, bytes or decoder input, not a waveform")
                if sampling_rate is None:
                    raise ValueError(
                        "sampling_rate= is required with a decoded waveform (it is resampled to "
                        f"{self.audio_sample_rate} Hz)"
                    )
                waveform = prepare_waveform(audio, sampling_rate, self.audio_sample_rate)

        video_out = self._resize(frames) if n_video > 0 else None
        audio_out = self._audio_images(waveform) if n_audio > 0 else None
        return video_out, audio_out

    def rescale_and_normalize(self, images: torch.Tensor) -> torch.Tensor:
        """uint8 (or 0..255 float) images of any leading shape ``(..., 3, height, width)`` -> the model's float32
        inputs, exactly as ``__call__`` makes them. Also applied to the 8-bit clips that
        :func:`~mmder_hf.data.preprocess_to_cache` stores, when they are collated."""
        # One fused multiply-add per pixel: (x * rescale - mean) / std == x * (rescale / std) - mean / std.
        scale = torch.full((3, 1, 1), self.rescale_factor if self.do_rescale else 1.0, dtype=torch.float64)
        shift = torch.zeros((3, 1, 1), dtype=torch.float64)
        if self.do_normalize:
            std = torch.tensor(self.image_std, dtype=torch.float64).view(3, 1, 1)
            scale = scale / std
            shift = torch.tensor(self.image_mean, dtype=torch.float64).view(3, 1, 1) / std
        values = images.to(torch.float32, memory_format=torch.contiguous_format)
        return values.mul_(scale.to(torch.float32)).sub_(shift.to(torch.float32))

    def __call__(
        self,
        videos: Any = None,
        audio: Any = None,
        sampling_rate: Optional[Union[int, Sequence[int]]] = None,
        return_tensors: Optional[str] = "pt",
        clip_start: Optional[Union[float, Sequence[Optional[float]]]] = None,
        clip_end: Optional[Union[float, Sequence[Optional[float]]]] = None,
        **kwargs,
    ) -> BatchFeature:
        """Turn one clip or a batch into model inputs.

        Args:
            videos (*optional*):
                A media file path or its bytes (the audio track is read from the same file), a torchcodec
                ``VideoDecoder`` (from a ``datasets`` Video column; its file's audio is used when ``audio`` is not
                given), decoded frames (``(T, H, W, 3)`` or ``(T, 3, H, W)`` uint8 numpy/torch, or a list of
                ``(H, W, 3)`` frames), or a list of any of these for a batch (a 5-D array is a batch too). Decoded
                frames are assumed evenly timed over the same span as their waveform.
            audio (*optional*):
                A waveform (``(samples,)`` or ``(channels, samples)``, numpy/torch; needs ``sampling_rate``), an
                audio file path/bytes, a torchcodec ``AudioDecoder``, or a list of these for a batch. Overrides the
                audio track of ``videos``.
            sampling_rate (`int` or `list[int]`, *optional*):
                Rate of waveform ``audio`` in Hz; it is downmixed to mono and resampled to ``audio_sample_rate``.
            return_tensors (`str`, *optional*, defaults to `"pt"`):
                ``"pt"`` for torch tensors, ``"np"`` for numpy arrays.
            clip_start (`float`, *optional*), clip_end (`float`, *optional*):
                Process only this time range (seconds) of a file or decoder input, decoding nothing else (e.g. one
                segment of a long video); per-clip lists are accepted for batches.

        Returns:
            [`BatchFeature`] with ``pixel_values`` (`(batch, num_video_frames, 3, image_size, image_size)`) and/or
            ``audio_values`` (`(batch, num_audio_frames, 3, image_size, image_size)`), float32, as the fusion
            strategy needs.

        Raises:
            [`~video_io.MediaError`]: (a `ValueError`) when a media input is missing, not media, truncated, lacks a
                needed stream, or the time range is empty; the message names the input.
        """
        if kwargs:
            logger.warning("MultiMAEDERProcessor ignores unknown arguments: %s", ", ".join(sorted(kwargs)))
        video_items = self._as_video_batch(videos)
        audio_items = self._as_audio_batch(audio, len(video_items) if video_items is not None else None)
        if video_items is None and audio_items is None:
            raise ValueError("pass videos= (files, bytes, decoders or frames) and/or audio=")
        batch_size = len(video_items) if video_items is not None else len(audio_items)
        video_items = video_items or [None] * batch_size
        audio_items = audio_items or [None] * batch_size
        rates = self._per_item(sampling_rate, batch_size, "sampling_rate")
        starts = self._per_item(clip_start, batch_size, "clip_start")
        ends = self._per_item(clip_end, batch_size, "clip_end")

        video_out, audio_out = [], []
        for video, wave, rate, start, end in zip(video_items, audio_items, rates, starts, ends):
            frames, images = self._process_one(video, wave, rate, start, end)
            video_out.append(frames)
            audio_out.append(images)

        data = {}
        if self.num_video_frames > 0:
            data["pixel_values"] = self.rescale_and_normalize(torch.stack(video_out))
        if self.num_audio_frames > 0:
            data["audio_values"] = self.rescale_and_normalize(torch.stack(audio_out))
        return BatchFeature(data=data, tensor_type=return_tensors)


def register_auto_processor(exist_ok: bool = True) -> None:
    """Register :class:`MultiMAEDERProcessor` for :class:`MultiMAEDERConfig` with ``transformers.AutoProcessor``."""
    from transformers import AutoProcessor

    AutoProcessor.register(MultiMAEDERConfig, MultiMAEDERProcessor, exist_ok=exist_ok)


__all__ = ["DEFAULT_IMAGE_MEAN", "DEFAULT_IMAGE_STD", "MediaError", "MultiMAEDERProcessor", "register_auto_processor"]
