"""MultiMAE-DER audio feature extractor: waveform or audio file -> ``audio_values`` (MFCC or log-mel pictures).

The audio half of :class:`~processing_multimae_der.MultiMAEDERProcessor`, usable on its own (``AutoFeatureExtractor``
loads it from a saved folder): the clip's mono waveform at ``sampling_rate`` is cut into ``num_audio_frames``
overlapping windows, each drawn as a picture (``audio_features.py``), then rescaled and normalised as the frames.
"""

from __future__ import annotations

from dataclasses import fields
from typing import Any, Optional, Sequence, Union

import numpy as np
import torch
import torch.nn.functional as F
from transformers.feature_extraction_sequence_utils import SequenceFeatureExtractor
from transformers.feature_extraction_utils import BatchFeature

from .audio_features import AudioImageSettings, audio_images, prepare_waveform
from .media import decode_clip, is_media_source
from .video_processing_multimae_der import IMAGE_MEAN, IMAGE_STD, is_array, per_item, rescale_and_normalize_images


#: Feature-extractor attribute -> :class:`AudioImageSettings` field, for the settings whose saved names say "audio".
AUDIO_IMAGE_ATTRIBUTES = {
    "audio_representation": "representation",
    "audio_colormap": "colormap",
    "audio_image_origin": "origin",
    "audio_image_interpolation": "interpolation",
}
AUDIO_IMAGE_ATTRIBUTES.update(
    {f.name: f.name for f in fields(AudioImageSettings) if f.name not in AUDIO_IMAGE_ATTRIBUTES.values()}
)


class MultiMAEDERFeatureExtractor(SequenceFeatureExtractor):
    r"""
    Turns audio into MultiMAE-DER's ``audio_values``: ``num_audio_frames`` pictures per clip, each an MFCC (or
    log-mel) matrix of one window of the clip drawn as a ``image_size`` square, rescaled and normalised.

    Inputs are waveforms (``(samples,)`` or ``(channels, samples)`` numpy/torch, with ``sampling_rate``), media files
    (path or bytes; their audio track), torchcodec ``AudioDecoder`` objects, or a list of these for a batch. The
    settings are described in :class:`~processing_multimae_der.MultiMAEDERProcessor` (there ``sampling_rate`` is
    called ``audio_sample_rate``).

    Args:
        sampling_rate (`int`, *optional*, defaults to 16000):
            Every waveform is downmixed to mono and resampled to this rate.
        num_audio_frames (`int`, *optional*, defaults to 8):
            Pictures per clip (the composite processor sets it to what the fusion strategy consumes).
        image_size (`int`, *optional*, defaults to 224):
            Side of the pictures.
        audio_representation, do_peak_normalize, pre_emphasis, frame_length_ms, hop_length_ms, n_fft,
        num_mel_filters, num_mfcc, cepstral_lifter, num_log_mel_bins, audio_colormap, audio_image_origin,
        audio_image_interpolation:
            How a window becomes a picture (:class:`~audio_features.AudioImageSettings`).
        do_rescale, rescale_factor, do_normalize, image_mean, image_std:
            As for the frames (both modalities are normalised the same way).
        seek_mode (`str`, *optional*, defaults to `"exact"`), num_decoder_threads (`int`, *optional*, defaults to 1):
            torchcodec settings for paths and bytes.

    Example:

    ```python
    >>> import numpy as np
    >>> from mmder_hf import MultiMAEDERFeatureExtractor
    >>> extractor = MultiMAEDERFeatureExtractor(num_audio_frames=4, image_size=32)
    >>> wave = np.sin(np.linspace(0, 2000, 16000)).astype(np.float32)
    >>> extractor(wave, sampling_rate=16000)["audio_values"].shape
    torch.Size([1, 4, 3, 32, 32])
    ```
    """

    model_input_names = ["audio_values"]

    num_audio_frames: int = 8
    image_size: int = 224
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
    do_rescale: bool = True
    rescale_factor: float = 1 / 255
    do_normalize: bool = True
    image_mean: tuple = IMAGE_MEAN
    image_std: tuple = IMAGE_STD
    seek_mode: str = "exact"
    num_decoder_threads: int = 1

    SETTINGS = (
        "num_audio_frames",
        "image_size",
        *AUDIO_IMAGE_ATTRIBUTES,
        "do_rescale",
        "rescale_factor",
        "do_normalize",
        "image_mean",
        "image_std",
        "seek_mode",
        "num_decoder_threads",
    )

    def __init__(self, sampling_rate: int = 16000, feature_size: int = 1, padding_value: float = 0.0, **kwargs):
        settings = {name: kwargs.pop(name, getattr(type(self), name)) for name in self.SETTINGS}
        super().__init__(
            feature_size=feature_size, sampling_rate=int(sampling_rate), padding_value=padding_value, **kwargs
        )
        for name, value in settings.items():
            setattr(self, name, value)
        self.num_audio_frames = int(self.num_audio_frames)
        self.image_size = int(self.image_size)
        self.image_mean = [float(v) for v in self.image_mean]
        self.image_std = [float(v) for v in self.image_std]
        if len(self.image_mean) != 3 or len(self.image_std) != 3 or min(self.image_std) <= 0:
            raise ValueError("image_mean and image_std must hold 3 values each, with a positive std")
        self.audio_representation = self.audio_settings.representation  # validates the group, canonical spelling
        self.num_decoder_threads = int(self.num_decoder_threads)

    @property
    def audio_settings(self) -> AudioImageSettings:
        """The settings that turn a waveform into audio pictures, as one validated group."""
        return AudioImageSettings(**{field: getattr(self, name) for name, field in AUDIO_IMAGE_ATTRIBUTES.items()})

    # ----------------------------------------------------------------------------------------------------------
    # Steps

    def read_waveform(
        self, source: Any, clip_start: Optional[float] = None, clip_end: Optional[float] = None
    ) -> torch.Tensor:
        """The mono waveform at ``sampling_rate`` of ``[clip_start, clip_end)`` of a media input's audio track."""
        return decode_clip(
            source,
            num_video_frames=0,
            audio_sample_rate=self.sampling_rate,
            clip_start=clip_start,
            clip_end=clip_end,
            seek_mode=self.seek_mode,
            num_threads=self.num_decoder_threads,
        ).waveform

    def read_segment(self, source: Any, audio_start: float, clip_start, clip_end) -> torch.Tensor:
        """``[clip_start, clip_end)`` of the video's timeline read from an audio file that begins at ``audio_start``
        there (an IEMOCAP utterance wav); silence where the file stops short of the segment."""
        shifted = [None if t is None else max(0.0, t - audio_start) for t in (clip_start, clip_end)]
        waveform = self.read_waveform(source, *shifted)
        if clip_start is not None and clip_end is not None:
            length = max(1, round((clip_end - clip_start) * self.sampling_rate))
            waveform = F.pad(waveform, (0, max(0, length - waveform.shape[0])))
        return waveform

    def prepare_waveform(self, waveform: Any, sampling_rate: int) -> torch.Tensor:
        """A decoded waveform -> mono float32 at ``sampling_rate`` (of this extractor)."""
        return prepare_waveform(waveform, sampling_rate, self.sampling_rate)

    def waveform_to_images(self, waveform: torch.Tensor, num_audio_frames: int) -> torch.Tensor:
        """Mono waveform at ``sampling_rate`` -> ``(num_audio_frames, 3, image_size, image_size)`` uint8 pictures."""
        return audio_images(waveform, self.sampling_rate, num_audio_frames, self.image_size, self.audio_settings)

    def waveform_to_values(self, waveform: torch.Tensor, num_audio_frames: int) -> torch.Tensor:
        """Mono waveform -> the model's float32 audio inputs, ``rescale_and_normalize(waveform_to_images(...))`` to
        the bit, normalising the small pictures before they are enlarged (see ``audio_images``)."""
        return audio_images(
            waveform,
            self.sampling_rate,
            num_audio_frames,
            self.image_size,
            self.audio_settings,
            normalize=self.rescale_and_normalize,
        )

    def rescale_and_normalize(
        self, images: torch.Tensor, do_rescale: Optional[bool] = None, do_normalize: Optional[bool] = None
    ) -> torch.Tensor:
        """8-bit pictures -> float32 inputs with this extractor's settings (the arguments override them)."""
        return rescale_and_normalize_images(
            images,
            self.rescale_factor,
            self.image_mean,
            self.image_std,
            self.do_rescale if do_rescale is None else do_rescale,
            self.do_normalize if do_normalize is None else do_normalize,
        )

    @staticmethod
    def as_audio_batch(audio: Any, batch_size: Optional[int] = None) -> Optional[list]:
        """Split ``audio`` into a list of per-clip inputs (checked against ``batch_size`` videos), or ``None``."""
        if audio is None:
            return None
        if is_media_source(audio):
            items = [audio]
        elif is_array(audio):
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

    # ----------------------------------------------------------------------------------------------------------
    # The call

    def __call__(
        self,
        audio: Any,
        sampling_rate: Optional[Union[int, Sequence[int]]] = None,
        num_audio_frames: Optional[int] = None,
        clip_start: Optional[Union[float, Sequence[Optional[float]]]] = None,
        clip_end: Optional[Union[float, Sequence[Optional[float]]]] = None,
        do_rescale: Optional[bool] = None,
        do_normalize: Optional[bool] = None,
        return_tensors: Optional[str] = "pt",
        **kwargs,
    ) -> BatchFeature:
        """Audio -> ``BatchFeature(audio_values=(batch, num_audio_frames, 3, image_size, image_size))``.

        ``sampling_rate`` is required with waveforms; ``clip_start`` / ``clip_end`` (seconds) read only that range
        of a media input; with ``do_rescale=False`` and ``do_normalize=False`` the 8-bit pictures come back as they
        are.
        """
        items = self.as_audio_batch(audio)
        if items is None:
            raise ValueError("pass audio= (waveforms with sampling_rate=, audio files, bytes or decoders)")
        count = self.num_audio_frames if num_audio_frames is None else int(num_audio_frames)
        rates = per_item(sampling_rate, len(items), "sampling_rate")
        starts = per_item(clip_start, len(items), "clip_start")
        ends = per_item(clip_end, len(items), "clip_end")
        images = []
        for item, rate, start, end in zip(items, rates, starts, ends):
            if is_media_source(item):
                waveform = self.read_waveform(item, start, end)
            else:
                if start is not None or end is not None:
                    raise ValueError("clip_start / clip_end need a file, bytes or decoder input, not a waveform")
                if rate is None:
                    rate_needed = f"it is resampled to {self.sampling_rate} Hz"
                    raise ValueError(f"sampling_rate= is required with a decoded waveform ({rate_needed})")
                waveform = self.prepare_waveform(item, rate)
            images.append(self.waveform_to_images(waveform, count))
        stacked = torch.stack(images)
        if not (do_rescale is False and do_normalize is False):
            stacked = self.rescale_and_normalize(stacked, do_rescale, do_normalize)
        return BatchFeature(data={"audio_values": stacked}, tensor_type=return_tensors)


__all__ = ["AUDIO_IMAGE_ATTRIBUTES", "MultiMAEDERFeatureExtractor"]
