"""MultiMAEDERForVideoClassification: forward contract, attention backends, save/load and exact weight transfer."""

import json
import os
import textwrap

import pytest
import torch
from inference_helpers import TINY, run_without_mmder_hf
from safetensors.torch import load_file
from transformers import (
    AutoConfig,
    AutoModel,
    AutoModelForVideoClassification,
    VideoMAEConfig,
    VideoMAEForPreTraining,
    VideoMAEForVideoClassification,
    VideoMAEModel,
)
from transformers.modeling_outputs import ImageClassifierOutput

from mmder_hf import MultiMAEDERConfig, MultiMAEDERForVideoClassification, MultiMAEDERModel


STRATEGIES = ["FSLF", "FFLS", "OFOS", "RFAS", "CFAS", "SFAS", "video", "audio", "prefused"]


def tiny_model(strategy="FSLF", num_labels=5, **kwargs) -> MultiMAEDERForVideoClassification:
    torch.manual_seed(0)
    config = MultiMAEDERConfig(fusion_strategy=strategy, num_labels=num_labels, **{**TINY, **kwargs})
    return MultiMAEDERForVideoClassification(config).eval()


def inputs_for(config: MultiMAEDERConfig, batch=2, seed=0) -> dict:
    g = torch.Generator().manual_seed(seed)
    size = (config.num_channels, config.image_size, config.image_size)
    out = {}
    if config.num_video_frames:
        out["pixel_values"] = torch.randn(batch, config.num_video_frames, *size, generator=g)
    if config.num_audio_frames:
        out["audio_values"] = torch.randn(batch, config.num_audio_frames, *size, generator=g)
    return out


def scramble(model: torch.nn.Module, seed: int = 1) -> None:
    """Give every parameter distinct, non-trivial values (no zeros, no ones, no init pattern)."""
    g = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for param in model.parameters():
            param.copy_(torch.randn(param.shape, generator=g) * 0.5 + 0.1)


@pytest.mark.parametrize("strategy", STRATEGIES)
def test_forward_shapes_loss_and_gradients(strategy):
    model = tiny_model(strategy).train()
    inputs = {k: v.requires_grad_() for k, v in inputs_for(model.config).items()}
    out = model(**inputs, labels=torch.tensor([0, 4]))
    assert isinstance(out, ImageClassifierOutput)
    assert out.logits.shape == (2, 5)
    expected_loss = torch.nn.functional.cross_entropy(out.logits, torch.tensor([0, 4]))
    assert torch.allclose(out.loss, expected_loss)
    out.loss.backward()
    for name, tensor in inputs.items():
        assert tensor.grad is not None and tensor.grad.abs().sum() > 0, name
    assert model.videomae.embeddings.patch_embeddings.projection.weight.grad is not None
    assert model(**inputs).loss is None


def test_single_modality_inputs_are_enforced():
    with pytest.raises(ValueError, match="pixel_values is required"):
        tiny_model("video")(audio_values=torch.randn(1, 4, 3, 32, 32))
    with pytest.raises(ValueError, match="audio_values is required"):
        tiny_model("audio")(pixel_values=torch.randn(1, 4, 3, 32, 32))
    with pytest.raises(ValueError, match="pixel_values must hold 2 frames"):
        tiny_model("FSLF")(pixel_values=torch.randn(1, 4, 3, 32, 32), audio_values=torch.randn(1, 2, 3, 32, 32))


def test_config_validation_and_frame_counts():
    assert MultiMAEDERConfig().fusion_strategy == "FSLF"
    assert MultiMAEDERConfig(fusion_strategy="cfas").num_video_frames == 16
    config = MultiMAEDERConfig(fusion_strategy="rfas", num_frames=16)
    assert (config.num_video_frames, config.num_audio_frames) == (8, 8)
    assert (
        MultiMAEDERConfig(fusion_strategy="audio").num_video_frames,
        MultiMAEDERConfig(fusion_strategy="audio").num_audio_frames,
    ) == (0, 16)
    with pytest.raises(Exception, match="Unknown fusion_strategy"):
        MultiMAEDERConfig(fusion_strategy="concat")
    with pytest.raises(Exception, match="even num_frames"):
        MultiMAEDERConfig(fusion_strategy="OFOS", num_frames=5)


def test_rfas_eval_is_reproducible_and_training_is_random():
    model = tiny_model("RFAS")
    inputs = inputs_for(model.config, batch=4)
    with torch.no_grad():
        assert torch.equal(model(**inputs).logits, model(**inputs).logits)
        model.train()
        clips = {tuple(model.videomae.fuse(**inputs)[:, :, 0, 0, 0].flatten().tolist()) for _ in range(10)}
    assert len(clips) > 1


@pytest.mark.parametrize("strategy", ["FSLF", "RFAS", "CFAS", "audio"])
def test_save_and_load_round_trip(tmp_path, strategy):
    model = tiny_model(strategy)
    scramble(model)
    model.save_pretrained(tmp_path)
    config = json.loads((tmp_path / "config.json").read_text())
    assert config["model_type"] == "multimae_der" and config["fusion_strategy"] == strategy
    for loader in (MultiMAEDERForVideoClassification, AutoModelForVideoClassification):
        loaded = loader.from_pretrained(tmp_path).eval()
        assert type(loaded) is MultiMAEDERForVideoClassification
        for (name, a), (_, b) in zip(model.state_dict().items(), loaded.state_dict().items()):
            assert torch.equal(a, b), name
        inputs = inputs_for(model.config)
        with torch.no_grad():
            assert torch.equal(model(**inputs).logits, loaded(**inputs).logits)
    assert isinstance(AutoConfig.from_pretrained(tmp_path), MultiMAEDERConfig)
    assert type(AutoModel.from_pretrained(tmp_path)) is MultiMAEDERModel


def videomae_checkpoint(path, cls, num_labels=3):
    """A checkpoint written by transformers' own VideoMAE classes, with non-trivial values everywhere."""
    config = VideoMAEConfig(
        **TINY,
        num_labels=num_labels,
        decoder_hidden_size=16,
        decoder_num_hidden_layers=1,
        decoder_num_attention_heads=2,
        decoder_intermediate_size=32,
    )
    reference = cls(config)
    scramble(reference)
    reference.save_pretrained(path)
    return reference


def backbone_tensors(model: torch.nn.Module) -> dict:
    """The encoder's parameters keyed as in a VideoMAE classifier (``videomae.`` prefix)."""
    state = model.state_dict()
    if type(model) is VideoMAEModel:  # a bare encoder checkpoint has no prefix
        state = {f"videomae.{k}": v for k, v in state.items()}
    return {k: v for k, v in state.items() if k.startswith("videomae.")}


@pytest.mark.parametrize("source_cls", [VideoMAEForVideoClassification, VideoMAEForPreTraining, VideoMAEModel])
@pytest.mark.parametrize("strategy", ["OFOS", "CFAS"])
def test_every_backbone_tensor_transfers_from_a_videomae_checkpoint(tmp_path, source_cls, strategy):
    reference = videomae_checkpoint(tmp_path / "videomae", source_cls)
    saved_keys = set(load_file(tmp_path / "videomae" / "model.safetensors"))
    assert any(k.endswith("q_bias") for k in saved_keys)  # the legacy key names transformers renames on load

    model, info = MultiMAEDERForVideoClassification.from_pretrained(
        tmp_path / "videomae",
        fusion_strategy=strategy,
        num_labels=7,
        ignore_mismatched_sizes=True,
        output_loading_info=True,
    )
    assert model.config.model_type == "multimae_der" and model.config.fusion_strategy == strategy
    assert model.config.num_labels == 7 and model.classifier.out_features == 7
    assert not [k for k in info["missing_keys"] if k.startswith("videomae.")]
    expected = backbone_tensors(reference)
    got = backbone_tensors(model)
    assert set(expected) == set(got)
    for name, tensor in expected.items():
        assert torch.equal(got[name], tensor), name
    if source_cls is VideoMAEForVideoClassification:  # the head's LayerNorm carries over too
        assert torch.equal(model.fc_norm.weight, reference.fc_norm.weight)

    # ... and survives our own save, the auto classes, and a second load.
    model.save_pretrained(tmp_path / "ours")
    assert set(load_file(tmp_path / "ours" / "model.safetensors")) >= {
        k for k in saved_keys if k.startswith("videomae.")
    } - {"videomae.layernorm.weight", "videomae.layernorm.bias"}
    for loader in (MultiMAEDERForVideoClassification, AutoModelForVideoClassification):
        again = backbone_tensors(loader.from_pretrained(tmp_path / "ours"))
        for name, tensor in expected.items():
            assert torch.equal(again[name], tensor), name


REMOTE_SCRIPT = textwrap.dedent(
    """
    import sys
    import torch
    from transformers import AutoModelForVideoClassification, AutoModel
    folder, reference, inputs = sys.argv[1:4]
    model = AutoModelForVideoClassification.from_pretrained(folder, trust_remote_code=True).eval()
    assert type(model).__module__.startswith("transformers_modules"), type(model).__module__
    expected = torch.load(reference)
    state = model.state_dict()
    bad = [k for k, v in expected["state"].items() if not torch.equal(state[k], v)]
    assert not bad, bad
    with torch.no_grad():
        logits = model(**torch.load(inputs)).logits
    assert torch.equal(logits, expected["logits"]), (logits, expected["logits"])
    encoder = AutoModel.from_pretrained(folder, trust_remote_code=True)
    assert type(encoder).__name__ == "MultiMAEDERModel"
    print("REMOTE OK")
    """
)


@pytest.mark.parametrize("strategy", ["FSLF", "RFAS"])
def test_trust_remote_code_in_a_fresh_process_without_the_package(tmp_path, strategy):
    videomae_checkpoint(tmp_path / "videomae", VideoMAEForVideoClassification)
    model = MultiMAEDERForVideoClassification.from_pretrained(
        tmp_path / "videomae", fusion_strategy=strategy, num_labels=4, ignore_mismatched_sizes=True
    ).eval()
    model.save_pretrained(tmp_path / "ours")
    written = set(os.listdir(tmp_path / "ours"))
    assert {"configuration_multimae_der.py", "modeling_multimae_der.py", "fusion.py"} <= written
    auto_map = json.loads((tmp_path / "ours" / "config.json").read_text())["auto_map"]
    assert auto_map["AutoModelForVideoClassification"] == "modeling_multimae_der.MultiMAEDERForVideoClassification"
    inputs = inputs_for(model.config)
    with torch.no_grad():
        logits = model(**inputs).logits
    torch.save({"state": model.state_dict(), "logits": logits}, tmp_path / "reference.pt")
    torch.save(inputs, tmp_path / "inputs.pt")
    assert "REMOTE OK" in run_without_mmder_hf(
        REMOTE_SCRIPT, tmp_path / "ours", tmp_path / "reference.pt", tmp_path / "inputs.pt"
    )


@pytest.mark.parametrize(
    "implementation",
    ["eager", pytest.param("flex_attention", marks=pytest.mark.slow)],  # flex compiles its kernel first (minutes)
)
def test_attention_implementations_agree_with_sdpa(implementation):
    model = tiny_model("OFOS")
    inputs = inputs_for(model.config)
    with torch.no_grad():
        reference = model(**inputs).logits
        model.set_attn_implementation(implementation)
        assert model.config._attn_implementation == implementation
        out = model(**inputs, output_attentions=implementation == "eager")
    assert torch.allclose(out.logits, reference, atol=1e-5)
    if implementation == "eager":
        assert len(out.attentions) == 2 and out.attentions[0].shape == (2, 2, 8, 8)


def test_activation_checkpointing_gives_the_same_gradients():
    def grads(checkpointing: bool):
        model = tiny_model("FSLF").train()
        if checkpointing:
            model.activation_checkpointing_enable()
            assert model.is_activation_checkpointing
        out = model(**inputs_for(model.config), labels=torch.tensor([1, 2]))
        out.loss.backward()
        return {n: p.grad.clone() for n, p in model.named_parameters()}

    plain, checkpointed = grads(False), grads(True)
    for name in plain:
        assert torch.allclose(plain[name], checkpointed[name], atol=1e-6), name


def bf16_rounded_fp32_reference(folder) -> MultiMAEDERForVideoClassification:
    """The saved model in float32, every weight rounded to bfloat16: fp32 arithmetic on the bf16 model's weights."""
    reference = MultiMAEDERForVideoClassification.from_pretrained(folder).eval()
    with torch.no_grad():
        for tensor in reference.state_dict().values():
            tensor.copy_(tensor.to(torch.bfloat16).float())
    return reference


def test_bfloat16_and_device_map(tmp_path):
    model = tiny_model("SFAS")
    scramble(model)  # init weights would give logits of ~0.05, below what bf16 rounding can be told apart from
    model.save_pretrained(tmp_path)
    loaded = MultiMAEDERForVideoClassification.from_pretrained(tmp_path, dtype=torch.bfloat16, device_map="cpu")
    assert loaded.dtype == torch.bfloat16 and loaded.device.type == "cpu"
    for name, tensor in model.state_dict().items():
        assert torch.equal(loaded.state_dict()[name], tensor.to(torch.bfloat16)), name
    inputs = {k: v.to(torch.bfloat16) for k, v in inputs_for(model.config, batch=4).items()}
    reference_model = bf16_rounded_fp32_reference(tmp_path)
    with torch.no_grad():
        logits = loaded(**inputs).logits
        reference = reference_model(**{k: v.float() for k, v in inputs.items()}).logits
    assert logits.dtype == torch.bfloat16
    # bf16 arithmetic costs up to ~3% of the logits' spread (max over elements); a bug is of the spread's size.
    spread = reference.std()
    assert spread > 0.5
    assert (logits.float() - reference).abs().max() < 0.05 * spread, ((logits.float() - reference).abs().max(), spread)


PROCESSOR_REMOTE_SCRIPT = textwrap.dedent(
    """
    import sys
    import torch
    from transformers import AutoModelForVideoClassification, AutoProcessor
    folder, clip, expected = sys.argv[1:4]
    processor = AutoProcessor.from_pretrained(folder, trust_remote_code=True)
    model = AutoModelForVideoClassification.from_pretrained(folder, trust_remote_code=True).eval()
    assert type(processor).__module__.startswith("transformers_modules"), type(processor).__module__
    with torch.no_grad():
        logits = model(**processor(videos=clip, return_tensors="pt")).logits
    # Same code and weights in two processes: equal up to float rounding of the attention kernels (~1e-7).
    torch.testing.assert_close(logits, torch.load(expected), rtol=0, atol=1e-5)
    print("REMOTE OK")
    """
)


def test_model_and_processor_from_a_clip_in_a_fresh_process_without_the_package(tmp_path, synthetic_clip_path):
    from mmder_hf import MultiMAEDERProcessor

    model = tiny_model("CFAS", num_labels=4)
    scramble(model)
    processor = MultiMAEDERProcessor.from_model_config(model.config)
    with torch.no_grad():
        logits = model(**processor(videos=str(synthetic_clip_path), return_tensors="pt")).logits
    model.save_pretrained(tmp_path / "ours")
    processor.save_pretrained(tmp_path / "ours")
    torch.save(logits, tmp_path / "logits.pt")
    out = run_without_mmder_hf(PROCESSOR_REMOTE_SCRIPT, tmp_path / "ours", synthetic_clip_path, tmp_path / "logits.pt")
    assert "REMOTE OK" in out


@pytest.mark.parametrize("how", ["argument", "config"])
def test_every_model_class_honours_return_dict_false(how):
    """As transformers' own heads: ``return_dict=False`` (or ``config.return_dict = False``) gives the output's
    non-None fields as a tuple, in order, with the same values."""
    model = tiny_model("OFOS")
    scramble(model)
    inputs = {**inputs_for(model.config), "labels": torch.tensor([1, 3])}
    with torch.no_grad():
        full = model(**inputs, output_hidden_states=True)
        encoder_full = model.videomae(**inputs_for(model.config))
        if how == "config":
            model.config.return_dict = False
            kwargs = {}
        else:
            kwargs = {"return_dict": False}
        as_tuple = model(**inputs, output_hidden_states=True, **kwargs)
        encoder_tuple = model.videomae(**inputs_for(model.config), **kwargs)
    assert isinstance(as_tuple, tuple) and isinstance(encoder_tuple, tuple)
    assert torch.equal(as_tuple[0], full.loss) and torch.equal(as_tuple[1], full.logits)
    assert len(as_tuple[2]) == len(full.hidden_states) == model.config.num_hidden_layers + 1
    assert torch.equal(encoder_tuple[0], encoder_full.last_hidden_state)
