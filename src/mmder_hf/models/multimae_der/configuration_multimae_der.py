"""MultiMAE-DER configuration: a VideoMAE encoder config plus the fusion strategy."""

from __future__ import annotations

from huggingface_hub.dataclasses import strict
from transformers import VideoMAEConfig

from .fusion import frames_per_modality, normalize_strategy


#: How `MultiMAEDERForPreTraining` draws masks: the same patches in every tubelet of a modality, or independently.
MASK_TYPES = ("tube", "random")
#: What it reconstructs: pixels (per-patch normalised with ``norm_pix_loss``), or MAE-DFER's frame differences.
PRETRAINING_TARGETS = ("pixels", "frame_difference")
#: ``config.training_data`` of a model trained on the built-in synthetic corpus.
SYNTHETIC_TRAINING_DATA = "synthetic"


@strict(accept_kwargs=True)
class MultiMAEDERConfig(VideoMAEConfig):
    r"""
    Configuration of a MultiMAE-DER model: one VideoMAE encoder reading a clip in which face frames and audio
    images are fused (Xiang et al., "MultiMAE-DER: Multimodal Masked Autoencoder for Dynamic Emotion
    Recognition", ICPRS 2024). Every VideoMAE field keeps its meaning; ``num_frames`` is the length of the
    *fused* clip the encoder sees.

    Args:
        fusion_strategy (`str`, *optional*, defaults to `"FSLF"`):
            How the two modalities share the clip, case-insensitive: ``FSLF`` (audio frames, then video
            frames), ``FFLS`` (video, then audio), ``OFOS`` (alternating), ``RFAS`` (alternating frames in a
            random order per clip), ``CFAS`` (each face frame stacked on its audio image and resized), ``SFAS``
            (pixel-wise sum); the single-modality baselines ``video`` and ``audio``; or ``prefused`` for clips
            fused before (``pixel_values`` is then the fused clip). The number of frames each modality
            contributes is :attr:`num_video_frames` / :attr:`num_audio_frames`: ``num_frames / 2`` each for
            the temporal strategies, ``num_frames`` each for CFAS and SFAS, ``num_frames`` of one modality for
            the baselines.
        rfas_seed (`int`, *optional*, defaults to 0):
            Seed of the frame permutations RFAS draws in evaluation mode, so that evaluation is reproducible;
            training draws fresh permutations every step.
        training_data (`str`, *optional*):
            The corpus the classifier was trained on (``"ravdess"``, ``"crema_d"``, ``"iemocap"``, ...), set by the
            training scripts. ``"synthetic"`` (the built-in synthetic corpus of moving shapes and tones) marks a
            model that recognises synthetic clips only: the pipeline, the CLI and the Space warn when one is used.

        The fields below are read by `MultiMAEDERForPreTraining` only (VideoMAE's ``decoder_*`` and
        ``norm_pix_loss`` keep their meaning there):

        mask_type (`str`, *optional*, defaults to `"tube"`):
            ``"tube"``: the same spatial patches are masked in every tubelet of a modality (VideoMAE, HiCMAE);
            ``"random"``: tubelets are masked independently.
        mask_ratio_video (`float`, *optional*, defaults to 0.9):
            Fraction of the video tubelets masked (VideoMAE, MAE-DFER and HiCMAE use 0.9). It also applies to
            every tubelet that mixes the modalities: all of them for OFOS, RFAS, CFAS and SFAS (one ratio), and
            the tubelet that straddles the boundary of FSLF / FFLS when ``num_frames / 2`` is not a multiple of
            ``tubelet_size``.
        mask_ratio_audio (`float`, *optional*, defaults to 0.8):
            Fraction of the pure audio tubelets masked (FSLF, FFLS and the ``audio`` baseline; HiCMAE masks 0.8 of
            its audio spectrogram).
        mask_seed (`int`, *optional*, defaults to 0):
            Seed of the masks drawn in evaluation mode when none is given, so that held-out losses compare across
            evaluations; training draws fresh masks every step.
        pretraining_target (`str`, *optional*, defaults to `"pixels"`):
            ``"pixels"``: reconstruct the masked tubelets (normalised per patch with ``norm_pix_loss``);
            ``"frame_difference"``: MAE-DFER's joint appearance and motion target, in which every frame of a
            tubelet after its first is replaced by its difference from the first.
        pixel_mean (`list[float]`, *optional*, defaults to `(0.485, 0.456, 0.406)`),
        pixel_deviation (`list[float]`, *optional*, defaults to `(0.225, 0.225, 0.225)`):
            The processor's normalisation (its ``image_mean`` / ``image_std``), undone to compute reconstruction
            targets in pixel space (transformers' VideoMAEForPreTraining assumes ImageNet's statistics; MultiMAE-DER's
            processor uses std 0.225). Not named ``*_std``: transformers' tests treat such fields as init scales.

    Example:

    ```python
    >>> from mmder_hf import MultiMAEDERConfig
    >>> config = MultiMAEDERConfig(fusion_strategy="ofos", num_frames=16)
    >>> config.fusion_strategy, config.num_video_frames, config.num_audio_frames
    ('OFOS', 8, 8)
    ```
    """

    model_type = "multimae_der"

    fusion_strategy: str = "FSLF"
    rfas_seed: int = 0
    training_data: str | None = None
    mask_type: str = "tube"
    mask_ratio_video: float | int = 0.9
    mask_ratio_audio: float | int = 0.8
    mask_seed: int = 0
    pretraining_target: str = "pixels"
    pixel_mean: list[float] | tuple[float, ...] = (0.485, 0.456, 0.406)
    pixel_deviation: list[float] | tuple[float, ...] = (0.225, 0.225, 0.225)

    def __post_init__(self, **kwargs):
        # A VideoMAE checkpoint's config.json says model_type "videomae": this config stays "multimae_der".
        kwargs.pop("model_type", None)
        self.fusion_strategy = normalize_strategy(self.fusion_strategy)
        super().__post_init__(**kwargs)

    def validate_fusion_strategy(self):
        """Reject unknown strategies and clip lengths the strategy cannot split."""
        frames_per_modality(self.fusion_strategy, self.num_frames)

    def validate_pretraining(self):
        """Reject masking and target settings that `MultiMAEDERForPreTraining` cannot use."""
        if self.mask_type not in MASK_TYPES:
            raise ValueError(f"mask_type must be one of {MASK_TYPES}, got {self.mask_type!r}")
        for name in ("mask_ratio_video", "mask_ratio_audio"):
            if not 0 <= getattr(self, name) < 1:
                raise ValueError(f"{name} must be in [0, 1), got {getattr(self, name)}")
        if self.pretraining_target not in PRETRAINING_TARGETS:
            raise ValueError(
                f"pretraining_target must be one of {PRETRAINING_TARGETS}, got {self.pretraining_target!r}"
            )
        if len(self.pixel_mean) != self.num_channels or len(self.pixel_deviation) != self.num_channels:
            raise ValueError(f"pixel_mean and pixel_deviation need {self.num_channels} values each")

    @property
    def trained_on_synthetic_data(self) -> bool:
        """Whether the classifier was trained on the built-in synthetic corpus (it recognises synthetic clips only)."""
        return self.training_data == SYNTHETIC_TRAINING_DATA

    @property
    def num_video_frames(self) -> int:
        """Video frames the strategy consumes (``pixel_values.shape[1]``)."""
        return frames_per_modality(self.fusion_strategy, self.num_frames)[0]

    @property
    def num_audio_frames(self) -> int:
        """Audio images the strategy consumes (``audio_values.shape[1]``)."""
        return frames_per_modality(self.fusion_strategy, self.num_frames)[1]


__all__ = ["MASK_TYPES", "PRETRAINING_TARGETS", "SYNTHETIC_TRAINING_DATA", "MultiMAEDERConfig"]
