"""MultiMAEDERForPreTraining: exact VideoMAE weights, masks per modality, targets, per-modality losses, saving."""

from __future__ import annotations

import json
import textwrap

import pytest
import torch
from inference_helpers import TINY, run_without_mmder_hf
from safetensors.torch import load_file
from transformers import AutoModelForPreTraining, VideoMAEConfig, VideoMAEForPreTraining

from mmder_hf import MultiMAEDERConfig, MultiMAEDERForPreTraining, MultiMAEDERForVideoClassification
from mmder_hf.models.multimae_der import draw_mask, mask_ratios
from mmder_hf.models.multimae_der.modeling_multimae_der import (
    AUDIO,
    MIXED,
    VIDEO,
    patchify,
    tubelet_modalities,
    unpatchify,
)


DECODER = dict(
    decoder_hidden_size=16, decoder_num_hidden_layers=2, decoder_num_attention_heads=2, decoder_intermediate_size=32
)
IMAGENET = dict(pixel_mean=[0.485, 0.456, 0.406], pixel_deviation=[0.229, 0.224, 0.225])


def scramble(model: torch.nn.Module, seed: int = 1) -> torch.nn.Module:
    """Every parameter gets distinct, non-trivial values (no zeros, no ones, no init pattern)."""
    g = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for param in model.parameters():
            param.copy_(torch.randn(param.shape, generator=g) * 0.3 + 0.05)
    return model


def tiny_pretraining(strategy="FSLF", seed=0, **overrides) -> MultiMAEDERForPreTraining:
    torch.manual_seed(seed)
    config = MultiMAEDERConfig(fusion_strategy=strategy, **{**TINY, **DECODER, **overrides})
    return scramble(MultiMAEDERForPreTraining(config), seed + 1).eval()


def inputs_for(config, batch=2, seed=0) -> dict:
    g = torch.Generator().manual_seed(seed)
    size = (config.num_channels, config.image_size, config.image_size)
    out = {}
    if config.num_video_frames:
        out["pixel_values"] = torch.randn(batch, config.num_video_frames, *size, generator=g)
    if config.num_audio_frames:
        out["audio_values"] = torch.randn(batch, config.num_audio_frames, *size, generator=g)
    return out


def module_name(saved_key: str) -> str:
    """A saved VideoMAE key as the module names it (transformers renames q_bias / v_bias while loading)."""
    return saved_key.replace(".attention.attention.q_bias", ".attention.attention.query.bias").replace(
        ".attention.attention.v_bias", ".attention.attention.value.bias"
    )


# ---------------------------------------------------------------------------------------------------------------
# Exact weights


@pytest.mark.parametrize("use_mean_pooling", [True, False], ids=["mean_pooling", "layernorm"])
def test_every_tensor_of_a_videomae_pretraining_checkpoint_loads_exactly(tmp_path, use_mean_pooling):
    """A checkpoint written by transformers' own VideoMAEForPreTraining, every tensor randomised (encoder, decoder,
    q/v biases, mask token): each saved tensor lands in our model unchanged, nothing is missing or left over, and
    the model computes what VideoMAE computes on the same clip and mask."""
    config = VideoMAEConfig(**TINY, **DECODER, use_mean_pooling=use_mean_pooling, norm_pix_loss=True)
    reference = scramble(VideoMAEForPreTraining(config)).eval()
    reference.save_pretrained(tmp_path / "videomae")
    saved = load_file(tmp_path / "videomae" / "model.safetensors")
    assert any(k.startswith("decoder.") and k.endswith("q_bias") for k in saved)  # legacy names, decoder too
    assert "mask_token" in saved and "encoder_to_decoder.weight" in saved

    for strategy in ("prefused", "FSLF"):
        model, info = MultiMAEDERForPreTraining.from_pretrained(
            tmp_path / "videomae", fusion_strategy=strategy, output_loading_info=True, **IMAGENET
        )
        assert not any(info.values()), info
        state = model.state_dict()
        assert set(state) == {module_name(k) for k in saved}
        for key, tensor in saved.items():
            assert torch.equal(state[module_name(key)], tensor), key

    # Same clip, same mask: the same reconstructions and loss as VideoMAE itself (the fused FSLF clip is its input).
    model.eval()
    inputs = inputs_for(model.config, batch=3)
    mask = draw_mask(model.config, 3, torch.Generator().manual_seed(3))
    with torch.no_grad():
        ours = model(**inputs, bool_masked_pos=mask)
        clip = model.videomae.fuse(inputs["pixel_values"], inputs["audio_values"])
        theirs = reference(clip, bool_masked_pos=mask)
    torch.testing.assert_close(ours.logits, theirs.logits, rtol=0, atol=1e-6)
    torch.testing.assert_close(ours.loss, theirs.loss, rtol=1e-6, atol=0)
    assert ours.logits.std() > 0.1


def test_pretraining_run_encoder_loads_into_the_classifier_exactly(tmp_path):
    model = tiny_pretraining("FFLS")
    model.save_pretrained(tmp_path / "pretrained")
    classifier, info = MultiMAEDERForVideoClassification.from_pretrained(
        tmp_path / "pretrained", num_labels=6, output_loading_info=True
    )
    assert set(info["missing_keys"]) == {"fc_norm.weight", "fc_norm.bias", "classifier.weight", "classifier.bias"}
    assert {k.split(".")[0] for k in info["unexpected_keys"]} == {"encoder_to_decoder", "mask_token", "decoder"}
    assert classifier.config.fusion_strategy == "FFLS"
    encoder = {k: v for k, v in model.state_dict().items() if k.startswith("videomae.")}
    got = classifier.state_dict()
    assert set(encoder) == {k for k in got if k.startswith("videomae.")}
    for key, tensor in encoder.items():
        assert torch.equal(got[key], tensor), key


def test_save_load_round_trip_and_auto_class(tmp_path):
    model = tiny_pretraining("OFOS", mask_type="random", pretraining_target="frame_difference")
    model.save_pretrained(tmp_path)
    config = json.loads((tmp_path / "config.json").read_text())
    assert config["auto_map"]["AutoModelForPreTraining"] == "modeling_multimae_der.MultiMAEDERForPreTraining"
    assert (tmp_path / "modeling_multimae_der.py").is_file()
    loaded = AutoModelForPreTraining.from_pretrained(tmp_path).eval()
    assert type(loaded) is MultiMAEDERForPreTraining
    assert (loaded.config.mask_type, loaded.config.pretraining_target) == ("random", "frame_difference")
    for key, tensor in model.state_dict().items():
        assert torch.equal(loaded.state_dict()[key], tensor), key
    inputs = inputs_for(model.config)
    with torch.no_grad():
        assert torch.equal(loaded(**inputs).loss, model(**inputs).loss)


REMOTE_SCRIPT = textwrap.dedent(
    """
    import sys
    import torch
    from transformers import AutoModelForPreTraining
    folder, reference = sys.argv[1:3]
    model = AutoModelForPreTraining.from_pretrained(folder, trust_remote_code=True).eval()
    assert type(model).__module__.startswith("transformers_modules"), type(model).__module__
    expected = torch.load(reference)
    state = model.state_dict()
    bad = [k for k, v in expected["state"].items() if not torch.equal(state[k], v)]
    assert not bad, bad
    with torch.no_grad():
        out = model(**expected["inputs"], bool_masked_pos=expected["mask"])
    assert torch.equal(out.logits, expected["logits"])
    print("REMOTE OK", float(out.loss))
    """
)


def test_trust_remote_code_in_a_fresh_process_without_the_package(tmp_path):
    model = tiny_pretraining("FSLF")
    model.save_pretrained(tmp_path / "ours")
    inputs = inputs_for(model.config)
    mask = draw_mask(model.config, 2, torch.Generator().manual_seed(0))
    with torch.no_grad():
        logits = model(**inputs, bool_masked_pos=mask).logits
    reference = {"state": model.state_dict(), "inputs": inputs, "mask": mask, "logits": logits}
    torch.save(reference, tmp_path / "reference.pt")
    assert "REMOTE OK" in run_without_mmder_hf(REMOTE_SCRIPT, tmp_path / "ours", tmp_path / "reference.pt")


# ---------------------------------------------------------------------------------------------------------------
# Masks


def test_tubelet_modalities_follow_the_layout():
    config = lambda strategy, frames: MultiMAEDERConfig(fusion_strategy=strategy, num_frames=frames)  # noqa: E731
    assert tubelet_modalities(config("FSLF", 16)) == [AUDIO] * 4 + [VIDEO] * 4
    assert tubelet_modalities(config("FFLS", 16)) == [VIDEO] * 4 + [AUDIO] * 4
    assert tubelet_modalities(config("FSLF", 6)) == [AUDIO, MIXED, VIDEO]  # 3 + 3 frames: one tubelet straddles
    for strategy in ("OFOS", "RFAS", "CFAS", "SFAS", "prefused"):
        assert tubelet_modalities(config(strategy, 16)) == [MIXED] * 8, strategy
    assert tubelet_modalities(config("video", 16)) == [VIDEO] * 8
    assert tubelet_modalities(config("audio", 16)) == [AUDIO] * 8
    assert mask_ratios(config("FSLF", 16)) == {"video": 0.9, "audio": 0.8}
    assert mask_ratios(config("CFAS", 16)) == {"mixed": 0.9}


@pytest.mark.parametrize("mask_type", ["tube", "random"])
@pytest.mark.parametrize("strategy", ["FSLF", "FFLS", "OFOS", "audio"])
def test_masks_have_the_requested_ratio_per_modality(strategy, mask_type):
    # 64 px / patch 16: 16 patches per frame; 8 frames, tubelets of 2: 4 tubelets
    config = MultiMAEDERConfig(
        fusion_strategy=strategy,
        image_size=64,
        patch_size=16,
        num_frames=8,
        mask_type=mask_type,
        mask_ratio_video=0.75,
        mask_ratio_audio=0.5,
    )
    kinds = tubelet_modalities(config)
    mask = draw_mask(config, 64, torch.Generator().manual_seed(0)).view(64, len(kinds), 16)
    for kind, ratio in ((VIDEO, 0.75), (AUDIO, 0.5), (MIXED, 0.75)):
        members = [t for t, k in enumerate(kinds) if k == kind]
        if not members:
            continue
        group = mask[:, members]
        assert (group.sum(dim=(1, 2)) == round(ratio * 16 * len(members))).all(), (kind, group.sum(dim=(1, 2)))
        same_patches = (group == group[:, :1]).all(dim=(1, 2))
        if mask_type == "tube":
            assert same_patches.all()  # the same spatial patches in every tubelet of the group
        elif len(members) > 1:
            assert not same_patches.all()
    assert not torch.equal(mask[0], mask[1])  # drawn per clip


def test_forward_draws_masks_fresh_in_training_and_seeded_in_evaluation():
    model = tiny_pretraining("FSLF", mask_ratio_video=0.5, mask_ratio_audio=0.25)
    inputs = inputs_for(model.config, batch=8)
    with torch.no_grad():
        first, second = model(**inputs), model(**inputs)
        assert torch.equal(first.bool_masked_pos, second.bool_masked_pos) and torch.equal(first.loss, second.loss)
        model.train()
        masks = [model(**inputs).bool_masked_pos for _ in range(3)]
    assert not torch.equal(masks[0], masks[1]) or not torch.equal(masks[1], masks[2])
    mask = masks[0].view(8, 2, 4)  # FSLF: 1 audio tubelet then 1 video tubelet, 4 patches each
    assert (mask[:, 0].sum(1) == 1).all() and (mask[:, 1].sum(1) == 2).all()


def test_unequal_masks_are_refused():
    model = tiny_pretraining()
    mask = torch.zeros(2, 8, dtype=torch.bool)
    mask[0, :3], mask[1, :2] = True, True
    with pytest.raises(ValueError, match="same, non-zero number"):
        model(**inputs_for(model.config), bool_masked_pos=mask)


# ---------------------------------------------------------------------------------------------------------------
# Targets and losses


def test_patchify_round_trip():
    config = MultiMAEDERConfig(**TINY)
    clip = torch.randn(2, 4, 3, 32, 32)
    patches = patchify(clip, config.tubelet_size, config.patch_size)
    assert patches.shape == (2, 8, 2 * 16 * 16, 3)
    # token 5 = tubelet 1, patch row 0, column 1; its first pixel: frame 2, row 0, column 16
    assert torch.equal(patches[1, 5, 0], clip[1, 2, :, 0, 16])
    assert torch.equal(unpatchify(patches, config), clip)


def test_targets_normalised_pixels_and_frame_difference():
    model = tiny_pretraining("prefused")
    clip = torch.rand(2, 4, 3, 32, 32)
    mean = torch.tensor(model.config.pixel_mean).view(1, 1, 3, 1, 1)
    std = torch.tensor(model.config.pixel_deviation).view(1, 1, 3, 1, 1)
    pixels = patchify(clip * std + mean, 2, 16)  # (2, 8, 512, 3)
    normalised = (pixels - pixels.mean(2, keepdim=True)) / (pixels.var(2, keepdim=True).sqrt() + 1e-6)
    torch.testing.assert_close(model.targets(clip), normalised.reshape(2, 8, -1))

    model.config.pretraining_target = "frame_difference"  # MAE-DFER: frame 2 of each tubelet minus frame 1
    frames = normalised.reshape(2, 8, 2, 256, 3)
    expected = torch.stack((frames[:, :, 0], frames[:, :, 1] - frames[:, :, 0]), dim=2).reshape(2, 8, -1)
    torch.testing.assert_close(model.targets(clip), expected)

    model.config.norm_pix_loss = False
    model.config.pretraining_target = "pixels"
    torch.testing.assert_close(model.targets(clip), pixels.reshape(2, 8, -1))


@pytest.mark.parametrize("strategy", ["FSLF", "OFOS", "RFAS", "CFAS"])
def test_loss_per_modality(strategy):
    """``loss_video`` / ``loss_audio`` are the squared errors on the face and the audio pixels of the masked
    tubelets, recomputed here from the frame layout; CFAS mixes both in every pixel and reports neither."""
    model = tiny_pretraining(strategy, mask_ratio_video=0.5, mask_ratio_audio=0.5)
    inputs = inputs_for(model.config, batch=3)
    torch.manual_seed(5)
    with torch.no_grad():
        out = model(**inputs)
        clip, _ = model.fuse(inputs["pixel_values"], inputs["audio_values"])
        labels = model.targets(clip)[out.bool_masked_pos].reshape(3, -1, 2, 768)
    errors = (out.logits.reshape(3, -1, 2, 768) - labels).square()
    torch.testing.assert_close(out.loss, errors.mean())
    if strategy == "CFAS":
        assert out.loss_video is None and out.loss_audio is None
        return
    # What each fused frame shows, found independently of the model's codes: is it one of the clip's face frames?
    video = inputs["pixel_values"]
    codes = torch.tensor(
        [[VIDEO if any(torch.equal(clip[b, f], v) for v in video[b]) else AUDIO for f in range(4)] for b in range(3)]
    )
    # the frame each masked token's two halves come from: tubelet index -> frames 2t and 2t + 1
    tubelet = out.bool_masked_pos.nonzero()[:, 1].view(3, -1) // 4
    frame_codes = torch.stack([codes.gather(1, 2 * tubelet), codes.gather(1, 2 * tubelet + 1)], dim=2)
    per_frame = errors.mean(-1)
    torch.testing.assert_close(out.loss_video, per_frame[frame_codes == VIDEO].mean())
    torch.testing.assert_close(out.loss_audio, per_frame[frame_codes == AUDIO].mean())
    assert abs(out.loss_video - out.loss_audio) > 1e-4  # two different numbers, not the total twice


def test_rfas_fusion_matches_the_encoder_and_permutes_the_modalities():
    model = tiny_pretraining("RFAS")
    inputs = inputs_for(model.config, batch=4)
    clip, codes = model.fuse(**inputs)
    torch.testing.assert_close(clip, model.videomae.fuse(**inputs), rtol=0, atol=0)  # eval: the seeded order
    video, audio = inputs["pixel_values"], inputs["audio_values"]
    for b in range(4):
        for f in range(4):
            source = video[b] if codes[b, f] == VIDEO else audio[b]
            assert any(torch.equal(clip[b, f], frame) for frame in source), (b, f)
    assert not all(torch.equal(codes[0], codes[b]) for b in range(1, 4))


def test_training_lowers_the_loss():
    model = tiny_pretraining("FSLF").train()
    inputs = inputs_for(model.config, batch=4)
    mask = draw_mask(model.config, 4, torch.Generator().manual_seed(1))
    loss = model(**inputs, bool_masked_pos=mask).loss
    loss.backward()
    for name, param in model.named_parameters():
        assert param.grad is not None and param.grad.abs().sum() > 0, name
    with torch.no_grad():
        for param in model.parameters():
            param -= 1e-3 * param.grad
    assert model(**inputs, bool_masked_pos=mask).loss < loss - 1e-6


def test_return_dict_false_gives_the_same_values_as_a_tuple():
    model = tiny_pretraining("FFLS")
    inputs = inputs_for(model.config)
    with torch.no_grad():
        as_dict = model(**inputs)
        as_tuple = model(**inputs, return_dict=False)
    fields = [v for v in as_dict.values() if v is not None]
    assert isinstance(as_tuple, tuple) and len(as_tuple) == len(fields)
    for a, b in zip(fields, as_tuple):
        assert torch.equal(a, b)
