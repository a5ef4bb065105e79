"""The six fusion layouts, checked with marker frames whose value is their identity."""

import pytest
import torch

from mmder_hf.models.multimae_der.fusion import FUSION_STRATEGIES, frames_per_modality, fuse, normalize_strategy


def markers(batch: int, frames: int, base: float, size: int = 8) -> torch.Tensor:
    """Frame i of sample b is filled with base + 10*b + i."""
    values = base + 10 * torch.arange(batch).view(batch, 1) + torch.arange(frames).view(1, frames)
    return values.view(batch, frames, 1, 1, 1).expand(batch, frames, 3, size, size).clone()


def frame_ids(clip: torch.Tensor) -> list:
    return clip[..., 0, 0, 0].tolist()


VIDEO, AUDIO = 100.0, 200.0


@pytest.mark.parametrize(
    "strategy, expected",
    [
        ("FSLF", [200, 201, 202, 203, 100, 101, 102, 103]),
        ("FFLS", [100, 101, 102, 103, 200, 201, 202, 203]),
        ("OFOS", [100, 200, 101, 201, 102, 202, 103, 203]),
    ],
)
def test_temporal_layouts(strategy, expected):
    clip = fuse(markers(2, 4, VIDEO), markers(2, 4, AUDIO), strategy)
    assert clip.shape == (2, 8, 3, 8, 8)
    assert frame_ids(clip)[0] == expected
    assert frame_ids(clip)[1] == [v + 10 for v in expected]


def test_rfas_is_a_per_sample_permutation_of_ofos():
    video, audio = markers(16, 4, VIDEO), markers(16, 4, AUDIO)
    ofos = frame_ids(fuse(video, audio, "OFOS"))
    clip = fuse(video, audio, "RFAS", generator=torch.Generator().manual_seed(0))
    orders = frame_ids(clip)
    for sample, order in zip(ofos, orders):
        assert sorted(order) == sorted(sample)
    # 16 samples of 8! orders: they are not all equal, and not all the OFOS order.
    assert len({tuple(o[j] - 10 * i for j in range(8)) for i, o in enumerate(orders)}) > 1
    assert orders != ofos


def test_rfas_reproducible_with_seed_and_random_without():
    video, audio = markers(4, 4, VIDEO), markers(4, 4, AUDIO)
    first = fuse(video, audio, "RFAS", generator=torch.Generator().manual_seed(7))
    second = fuse(video, audio, "RFAS", generator=torch.Generator().manual_seed(7))
    assert torch.equal(first, second)
    draws = {tuple(frame_ids(fuse(video, audio, "RFAS"))[0]) for _ in range(20)}
    assert len(draws) > 1


def test_cfas_puts_face_on_top_of_audio_and_keeps_size():
    video, audio = markers(1, 8, VIDEO, size=16), markers(1, 8, AUDIO, size=16)
    clip = fuse(video, audio, "CFAS")
    assert clip.shape == (1, 8, 3, 16, 16)
    for i in range(8):
        top, bottom = clip[0, i, :, :7], clip[0, i, :, 9:]
        assert torch.allclose(top, torch.full_like(top, VIDEO + i))
        assert torch.allclose(bottom, torch.full_like(bottom, AUDIO + i))


def test_sfas_is_a_float_sum_without_wraparound():
    video, audio = markers(2, 4, VIDEO), markers(2, 4, AUDIO)
    clip = fuse(video, audio, "SFAS")
    assert torch.equal(clip, video + audio)
    assert clip.max() > 255  # the original's uint8 sum would have wrapped


@pytest.mark.parametrize("strategy", ["video", "prefused"])
def test_video_only_strategies_pass_pixel_values_through(strategy):
    video = markers(1, 8, VIDEO)
    assert torch.equal(fuse(video, None, strategy), video)


def test_audio_only_strategy_passes_audio_values_through():
    audio = markers(1, 8, AUDIO)
    assert torch.equal(fuse(None, audio, "audio"), audio)


@pytest.mark.parametrize("strategy", ["FSLF", "FFLS", "OFOS", "RFAS", "CFAS", "SFAS"])
def test_gradients_reach_both_modalities(strategy):
    n_video, n_audio = frames_per_modality(strategy, 8)
    video = torch.randn(2, n_video, 3, 8, 8, requires_grad=True)
    audio = torch.randn(2, n_audio, 3, 8, 8, requires_grad=True)
    (fuse(video, audio, strategy, num_frames=8) ** 2).sum().backward()
    assert video.grad is not None and video.grad.abs().sum() > 0
    assert audio.grad is not None and audio.grad.abs().sum() > 0


@pytest.mark.parametrize(
    "strategy, counts",
    [
        ("FSLF", (8, 8)),
        ("RFAS", (8, 8)),
        ("CFAS", (16, 16)),
        ("SFAS", (16, 16)),
        ("video", (16, 0)),
        ("audio", (0, 16)),
        ("prefused", (16, 0)),
    ],
)
def test_frames_per_modality(strategy, counts):
    assert frames_per_modality(strategy, 16) == counts


def test_strategy_names_any_case_and_clear_errors():
    assert normalize_strategy("fslf") == "FSLF"
    assert normalize_strategy("Video") == "video"
    assert set(FUSION_STRATEGIES) >= {"FSLF", "FFLS", "OFOS", "RFAS", "CFAS", "SFAS", "video", "audio", "prefused"}
    with pytest.raises(ValueError, match="Unknown fusion_strategy 'late'"):
        normalize_strategy("late")
    with pytest.raises(ValueError, match="audio_values must hold 4 frames"):
        fuse(torch.zeros(1, 4, 3, 8, 8), torch.zeros(1, 3, 3, 8, 8), "FSLF", num_frames=8)
    with pytest.raises(ValueError, match="audio_values is required"):
        fuse(torch.zeros(1, 4, 3, 8, 8), None, "FSLF", num_frames=8)
    with pytest.raises(ValueError, match="share batch size"):
        fuse(torch.zeros(1, 4, 3, 8, 8), torch.zeros(1, 4, 3, 16, 16), "OFOS")
