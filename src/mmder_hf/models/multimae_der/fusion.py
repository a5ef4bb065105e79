"""The MultiMAE-DER fusion layouts as pure tensor functions.

MultiMAE-DER fuses the two modalities in the *input layout* of a single VideoMAE clip (paper Fig. 2):
face frames ``F_i`` and audio images ``S_i`` become one ``(batch, num_frames, channels, height, width)``
clip. Everything here is differentiable and runs on whatever device the inputs live on, so the fusion
happens inside the model and one processor output serves every strategy.
"""

from __future__ import annotations

from typing import Optional

import torch
import torch.nn.functional as F


#: Strategies that put video and audio frames one after the other in time (num_frames / 2 of each).
TEMPORAL_STRATEGIES = ("FSLF", "FFLS", "OFOS", "RFAS")
#: Strategies that merge one video and one audio frame into each clip frame (num_frames of each).
SPATIAL_STRATEGIES = ("CFAS", "SFAS")
#: Baselines and pre-fused input: a single input tensor, no fusion.
SINGLE_INPUT_STRATEGIES = ("video", "audio", "prefused")
FUSION_STRATEGIES = TEMPORAL_STRATEGIES + SPATIAL_STRATEGIES + SINGLE_INPUT_STRATEGIES


def normalize_strategy(strategy: str) -> str:
    """Return the canonical spelling of ``strategy`` (paper codes upper case, baselines lower case).

    Raises:
        ValueError: if ``strategy`` is not one of :data:`FUSION_STRATEGIES` (in any case).
    """
    if not isinstance(strategy, str):
        raise ValueError(f"fusion_strategy must be a string, got {type(strategy).__name__}: {strategy!r}")
    for canonical in FUSION_STRATEGIES:
        if strategy.strip().lower() == canonical.lower():
            return canonical
    raise ValueError(
        f"Unknown fusion_strategy {strategy!r}. Expected one of {', '.join(FUSION_STRATEGIES)} "
        "(case-insensitive): the paper's six layouts, the single-modality baselines 'video' and 'audio', "
        "or 'prefused' for clips that were fused before."
    )


def frames_per_modality(strategy: str, num_frames: int) -> tuple[int, int]:
    """Number of ``(video, audio)`` frames that ``strategy`` consumes to build a ``num_frames`` clip.

    Temporal strategies (FSLF, FFLS, OFOS, RFAS) take ``num_frames / 2`` of each; spatial ones (CFAS, SFAS)
    ``num_frames`` of each; ``video`` and ``prefused`` take ``num_frames`` video frames, ``audio``
    ``num_frames`` audio frames.
    """
    strategy = normalize_strategy(strategy)
    if strategy in TEMPORAL_STRATEGIES:
        if num_frames % 2:
            raise ValueError(f"fusion_strategy {strategy} needs an even num_frames, got {num_frames}")
        return num_frames // 2, num_frames // 2
    if strategy in SPATIAL_STRATEGIES:
        return num_frames, num_frames
    if strategy == "audio":
        return 0, num_frames
    return num_frames, 0


def _check(name: str, tensor: Optional[torch.Tensor], frames: int) -> torch.Tensor:
    if tensor is None:
        raise ValueError(f"{name} is required for this fusion strategy")
    if tensor.ndim != 5:
        raise ValueError(f"{name} must have shape (batch, frames, channels, height, width), got {tuple(tensor.shape)}")
    if tensor.shape[1] != frames:
        raise ValueError(f"{name} must hold {frames} frames for this fusion strategy, got {tensor.shape[1]}")
    return tensor


def interleave(video: torch.Tensor, audio: torch.Tensor) -> torch.Tensor:
    """OFOS: ``F0 S0 F1 S1 ...`` along the frame axis."""
    batch, frames = video.shape[:2]
    return torch.stack((video, audio), dim=2).reshape(batch, 2 * frames, *video.shape[2:])


def random_order(clip: torch.Tensor, generator: Optional[torch.Generator] = None) -> torch.Tensor:
    """RFAS: an independent random permutation of the frames of each clip in the batch.

    The permutations are drawn on the CPU from ``generator`` (the global RNG when ``None``), so a seeded
    generator gives the same order on every device.
    """
    batch, frames = clip.shape[:2]
    return reorder(clip, torch.rand(batch, frames, generator=generator).argsort(dim=1))


def reorder(clip: torch.Tensor, order: torch.Tensor) -> torch.Tensor:
    """Frame ``j`` of clip ``b`` becomes input frame ``order[b, j]`` (``order``: ``(batch, frames)`` indices)."""
    batch, frames = clip.shape[:2]
    index = order.to(clip.device).view(batch, frames, *([1] * (clip.ndim - 2))).expand_as(clip)
    return clip.gather(1, index)


def stack_and_resize(video: torch.Tensor, audio: torch.Tensor) -> torch.Tensor:
    """CFAS: each face frame on top of its audio image (``2H x W``), resized back to ``H x W``."""
    batch, frames, channels, height, width = video.shape
    tall = torch.cat((video, audio), dim=-2).reshape(batch * frames, channels, 2 * height, width)
    resized = F.interpolate(tall, size=(height, width), mode="bilinear", align_corners=False, antialias=True)
    return resized.reshape(batch, frames, channels, height, width)


def fuse(
    video: Optional[torch.Tensor],
    audio: Optional[torch.Tensor],
    strategy: str,
    num_frames: Optional[int] = None,
    generator: Optional[torch.Generator] = None,
) -> torch.Tensor:
    """Fuse video frames and audio images into one clip, as MultiMAE-DER lays them out.

    Args:
        video (`torch.Tensor` of shape `(batch, Tv, channels, height, width)`, *optional*):
            Face/video frames ``F_0 .. F_{Tv-1}``.
        audio (`torch.Tensor` of shape `(batch, Ta, channels, height, width)`, *optional*):
            Audio images ``S_0 .. S_{Ta-1}`` (MFCC or log-mel pictures).
        strategy (`str`):
            One of ``FSLF`` (``S0..S7 F0..F7``), ``FFLS`` (``F0..F7 S0..S7``), ``OFOS`` (``F0 S0 F1 S1 ...``),
            ``RFAS`` (a random permutation of the OFOS frames per clip), ``CFAS`` (``F_i`` stacked on top of
            ``S_i``, resized to ``H x W``), ``SFAS`` (``F_i + S_i``), or ``video`` / ``audio`` / ``prefused``
            (the single input is returned unchanged).
        num_frames (`int`, *optional*):
            Length of the fused clip; inferred from the inputs when omitted.
        generator (`torch.Generator`, *optional*):
            CPU generator for RFAS; pass a seeded one for reproducible evaluation.

    Returns:
        `torch.Tensor` of shape `(batch, num_frames, channels, height, width)`.

    Example:

    ```python
    >>> import torch
    >>> from mmder_hf import fuse
    >>> video, audio = torch.zeros(1, 8, 3, 32, 32), torch.ones(1, 8, 3, 32, 32)
    >>> fuse(video, audio, "FSLF")[0, :, 0, 0, 0].tolist()
    [1.0, 1.0, 1.0, 1.0, 1.0, 1.0, 1.0, 1.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0]
    ```
    """
    strategy = normalize_strategy(strategy)
    if num_frames is None:
        given = video if video is not None else audio
        if given is None:
            raise ValueError("fuse() needs at least one of video or audio")
        per_input = given.shape[1]
        num_frames = 2 * per_input if strategy in TEMPORAL_STRATEGIES else per_input
    n_video, n_audio = frames_per_modality(strategy, num_frames)

    if strategy in ("video", "prefused"):
        return _check("pixel_values", video, n_video)
    if strategy == "audio":
        return _check("audio_values", audio, n_audio)

    video = _check("pixel_values", video, n_video)
    audio = _check("audio_values", audio, n_audio)
    if video.shape[0] != audio.shape[0] or video.shape[2:] != audio.shape[2:]:
        raise ValueError(
            "pixel_values and audio_values must share batch size, channels, height and width, got "
            f"{tuple(video.shape)} and {tuple(audio.shape)}"
        )
    audio = audio.to(dtype=video.dtype, device=video.device)

    if strategy == "FSLF":
        return torch.cat((audio, video), dim=1)
    if strategy == "FFLS":
        return torch.cat((video, audio), dim=1)
    if strategy == "OFOS":
        return interleave(video, audio)
    if strategy == "RFAS":
        return random_order(interleave(video, audio), generator)
    if strategy == "CFAS":
        return stack_and_resize(video, audio)
    return video + audio  # SFAS: a float sum, without the original's uint8 wrap-around


__all__ = [
    "FUSION_STRATEGIES",
    "SINGLE_INPUT_STRATEGIES",
    "SPATIAL_STRATEGIES",
    "TEMPORAL_STRATEGIES",
    "frames_per_modality",
    "fuse",
    "interleave",
    "normalize_strategy",
    "random_order",
    "reorder",
    "stack_and_resize",
]
