"""MultiMAE-DER configuration: a VideoMAE encoder config plus the fusion strategy."""

from __future__ import annotations

from huggingface_hub.dataclasses import strict
from transformers import VideoMAEConfig

from .fusion import frames_per_modality, normalize_strategy


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

    def __post_init__(self, **kwargs):
        # A VideoMAE checkpoint's config.json says model_type "videomae": this config stays "multimae_der".
        kwargs.pop("model_type", None)
        self.fusion_strategy = normalize_strategy(self.fusion_strategy)
        super().__post_init__(**kwargs)

    def validate_fusion_strategy(self):
        """Reject unknown strategies and clip lengths the strategy cannot split."""
        frames_per_modality(self.fusion_strategy, self.num_frames)

    @property
    def num_video_frames(self) -> int:
        """Video frames the strategy consumes (``pixel_values.shape[1]``)."""
        return frames_per_modality(self.fusion_strategy, self.num_frames)[0]

    @property
    def num_audio_frames(self) -> int:
        """Audio images the strategy consumes (``audio_values.shape[1]``)."""
        return frames_per_modality(self.fusion_strategy, self.num_frames)[1]


__all__ = ["MultiMAEDERConfig"]
