"""The six fusion layouts, checked with marker frames whose value is their identity."""

import numpy as np
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


def test_temporal_layouts_move_whole_frames_pixel_for_pixel():
    """Random pixels (not flat markers): each output frame is exactly one input frame, in the paper's order."""
    generator = torch.Generator().manual_seed(3)
    video, audio = torch.rand(2, 3, 3, 5, 4, generator=generator), torch.rand(2, 3, 3, 5, 4, generator=generator)
    expected = {
        "FSLF": [audio[:, 0], audio[:, 1], audio[:, 2], video[:, 0], video[:, 1], video[:, 2]],
        "FFLS": [video[:, 0], video[:, 1], video[:, 2], audio[:, 0], audio[:, 1], audio[:, 2]],
        "OFOS": [video[:, 0], audio[:, 0], video[:, 1], audio[:, 1], video[:, 2], audio[:, 2]],
    }
    for strategy, frames in expected.items():
        assert torch.equal(fuse(video, audio, strategy), torch.stack(frames, dim=1)), strategy


def test_cfas_is_a_bilinear_antialiased_halving_of_the_stacked_frame():
    """CFAS stacks F_i (top) on S_i (bottom) into a 2H x W picture and shrinks it to H x W with antialiased bilinear
    filtering: for a factor-2 shrink each output row is the triangle filter of width 4 over input rows 2r-1 .. 2r+2
    (weights 1/8, 3/8, 3/8, 1/8, renormalised where the filter runs past the edge); the width is kept as is."""
    generator = torch.Generator().manual_seed(0)
    video = torch.rand(2, 3, 3, 6, 5, dtype=torch.float64, generator=generator)
    audio = torch.rand(2, 3, 3, 6, 5, dtype=torch.float64, generator=generator)
    clip = fuse(video, audio, "CFAS")
    assert clip.shape == (2, 3, 3, 6, 5) and clip.dtype == torch.float64

    tall = np.concatenate([video.numpy(), audio.numpy()], axis=-2)  # (2, 3, 3, 12, 5): rows 0-5 face, 6-11 audio
    expected = np.zeros(video.shape)
    for r in range(6):
        rows = [2 * r - 1, 2 * r, 2 * r + 1, 2 * r + 2]
        weights = np.array([1.0, 3.0, 3.0, 1.0])
        inside = [(row, w) for row, w in zip(rows, weights) if 0 <= row < 12]
        total = sum(w for _, w in inside)
        expected[..., r, :] = sum(w * tall[..., row, :] for row, w in inside) / total
    np.testing.assert_allclose(clip.numpy(), expected, rtol=0, atol=1e-12)
    # the same as torch's own antialiased bilinear resize of the stacked picture
    reference = torch.nn.functional.interpolate(
        torch.from_numpy(tall).reshape(6, 3, 12, 5), size=(6, 5), mode="bilinear", align_corners=False, antialias=True
    )
    torch.testing.assert_close(clip, reference.reshape(2, 3, 3, 6, 5), rtol=0, atol=1e-12)


def test_sfas_adds_each_face_frame_to_its_audio_image():
    video = torch.tensor([250.0, 0.5, -3.0]).view(1, 3, 1, 1, 1).expand(1, 3, 3, 2, 2)
    audio = torch.tensor([10.0, 0.25, 3.0]).view(1, 3, 1, 1, 1).expand(1, 3, 3, 2, 2)
    clip = fuse(video, audio, "SFAS")
    assert clip.dtype == torch.float32
    assert frame_ids(clip) == [[260.0, 0.75, 0.0]]


def test_rfas_shuffles_each_clip_on_its_own_and_the_seed_fixes_every_order():
    video, audio = markers(8, 4, VIDEO), markers(8, 4, AUDIO)
    clips = [fuse(video, audio, "RFAS", generator=torch.Generator().manual_seed(seed)) for seed in (5, 5, 6)]
    assert torch.equal(clips[0], clips[1]) and not torch.equal(clips[0], clips[2])
    orders = frame_ids(clips[0])
    for b, order in enumerate(orders):  # clip b holds its own 8 frames (ids 100 + 10b + i, 200 + 10b + i), each once
        own = [VIDEO + 10 * b + i for i in range(4)] + [AUDIO + 10 * b + i for i in range(4)]
        assert sorted(order) == sorted(own)
        # a whole frame moves: every pixel of an output frame comes from the same input frame
        assert torch.equal(clips[0][b], clips[0][b, :, :1, :1, :1].expand_as(clips[0][b]))
    relative = {tuple(v - 10 * b for v in order) for b, order in enumerate(orders)}
    assert len(relative) > 1  # clips are not all shuffled the same way
