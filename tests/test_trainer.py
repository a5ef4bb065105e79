"""MultiMAEDERTrainer and its helpers, checked against values computed here: layer-wise lr, drop path, the loss,
the face flips and mixup of training inputs, the optimizer groups and the model-card hook.

Fast: a tiny random model; no training loop runs.
"""

import math

import numpy as np
import pytest
import torch
from transformers import TrainingArguments

from mmder_hf import MultiMAEDERConfig, MultiMAEDERForVideoClassification
from mmder_hf.training import (
    MODEL_SIZES,
    MultiMAEDERTrainer,
    RecipeArguments,
    SoftTargetCrossEntropy,
    add_drop_path,
    layer_decay_parameter_groups,
    layer_id,
)
from mmder_hf.training import trainers as trainer_module


def _model(num_labels=4, **kwargs):
    torch.manual_seed(0)
    config = MultiMAEDERConfig(num_labels=num_labels, **{**MODEL_SIZES["tiny"], **kwargs})
    return MultiMAEDERForVideoClassification(config)


def _trainer(tmp_path, recipe=None, **kwargs):
    args = TrainingArguments(
        output_dir=str(tmp_path / "out"),
        learning_rate=kwargs.pop("learning_rate", 0.1),
        weight_decay=kwargs.pop("weight_decay", 0.05),
        label_smoothing_factor=kwargs.pop("label_smoothing_factor", 0.0),
        report_to="none",
        use_cpu=True,
        save_strategy="no",
        disable_tqdm=True,
    )
    return MultiMAEDERTrainer(model=kwargs.pop("model", None) or _model(), args=args, recipe_args=recipe, **kwargs)


def _clips(batch, seed=0):
    """``(batch, frames, 3, 32, 32)`` clips that differ under a flip of any axis."""
    g = torch.Generator().manual_seed(seed)
    return torch.randn(batch, 2, 3, 32, 32, generator=g)


# ------------------------------------------------------------------------------------------- layer-wise lr decay
def test_layer_id_of_embeddings_encoder_layers_and_head():
    assert layer_id("videomae.embeddings.patch_embeddings.projection.weight", 12) == 0
    assert layer_id("embeddings.position_embeddings", 12) == 0  # at the start of the name too
    assert layer_id("videomae.encoder.layer.0.attention.attention.query.weight", 12) == 1
    assert layer_id("videomae.encoder.layer.10.output.dense.bias", 12) == 11
    assert layer_id("videomae.encoder.layer.11.layernorm_before.weight", 12) == 12
    assert layer_id("fc_norm.weight", 12) == 13 and layer_id("classifier.bias", 2) == 3
    assert layer_id("videomae.my_embeddings_proj.weight", 2) == 3  # "embeddings" only as a whole path component


def test_layer_decay_groups_lr_weight_decay_and_membership():
    model = _model(num_hidden_layers=3)
    for p in model.classifier.parameters():
        p.requires_grad_(False)  # frozen parameters are left out
    decaying = [n for n, _ in model.named_parameters() if n.endswith(".weight") and "norm" not in n]
    groups = layer_decay_parameter_groups(model, 0.2, 0.05, 0.5, decaying)
    assert [(g["lr"], g["weight_decay"]) for g in groups] == (
        [
            (0.2 * 0.5**4, 0.0),  # embeddings (depth 0), no decay
            (0.2 * 0.5**4, 0.05),
            (0.2 * 0.5**3, 0.0),  # layer 0 (depth 1)
            (0.2 * 0.5**3, 0.05),
            (0.2 * 0.5**2, 0.0),
            (0.2 * 0.5**2, 0.05),
            (0.2 * 0.5**1, 0.0),
            (0.2 * 0.5**1, 0.05),
            (0.2, 0.0),  # the head (depth 4): fc_norm only, the classifier is frozen
        ]
    )
    params = dict(model.named_parameters())
    seen = []
    for g in groups:
        assert len(g["params"]) == len(g["names"]) and all(params[n] is p for n, p in zip(g["names"], g["params"]))
        assert all((n in decaying) == (g["weight_decay"] > 0) for n in g["names"])
        depth = round(math.log(g["lr"] / 0.2, 0.5))
        assert all(layer_id(n, 3) == 4 - depth for n in g["names"])
        seen += g["names"]
    assert sorted(seen) == sorted(n for n, p in params.items() if p.requires_grad)
    assert not any(n.startswith("classifier") for n in seen)


# ------------------------------------------------------------------------------------------- drop path
def test_drop_path_drops_whole_samples_and_rescales_the_kept_ones():
    torch.manual_seed(0)
    x = torch.rand(4000, 3, 5) + 1.0
    out = trainer_module._drop_path(x, 0.25)
    assert out.shape == x.shape
    kept = (out != 0).flatten(1)
    assert (kept.all(1) | (~kept).all(1)).all()  # a sample is kept or dropped whole
    kept = kept.all(1)
    assert torch.allclose(out[kept], x[kept] / 0.75)
    assert 0.72 < kept.float().mean() < 0.78


def test_drop_path_rates_grow_linearly_and_hooks_act_only_while_training():
    assert add_drop_path(_model(), 0.0) == [] and add_drop_path(_model(), -1.0) == []
    model = _model(num_hidden_layers=4)
    handles = add_drop_path(model, 0.3)
    assert len(handles) == 6  # layers 1-3 (rates 0.1, 0.2, 0.3): attention and MLP hooks; layer 0 has rate 0
    layers = model.videomae.encoder.layer
    assert not layers[0].attention._forward_hooks and not layers[0].output._forward_hooks

    class Module:
        training = True

    torch.manual_seed(0)
    n = 6000
    for layer, rate in zip(layers[1:], (0.1, 0.2, 0.3)):
        (attention_hook,) = layer.attention._forward_hooks.values()
        (mlp_hook,) = layer.output._forward_hooks.values()
        branch = torch.rand(n, 2, 3) + 1.0
        out = attention_hook(Module(), (), branch)
        dropped = (out == 0).flatten(1).all(1)
        assert abs(float(dropped.float().mean()) - rate) < 0.03, rate
        assert torch.allclose(out[~dropped], branch[~dropped] / (1 - rate))
        residual = torch.rand(n, 2, 3)
        out = mlp_hook(Module(), (branch, residual), residual + branch)
        dropped = torch.isclose(out, residual).flatten(1).all(1)
        assert abs(float(dropped.float().mean()) - rate) < 0.03, rate
        assert torch.allclose(out[~dropped], residual[~dropped] + branch[~dropped] / (1 - rate), atol=1e-6)
        Module.training = False
        assert attention_hook(Module(), (), branch) is branch
        assert mlp_hook(Module(), (branch, residual), residual) is residual
        Module.training = True
    for handle in handles:
        handle.remove()
    assert not layers[1].attention._forward_hooks


# ------------------------------------------------------------------------------------------- loss
def _cross_entropy(logits, target):
    """Mean over the batch of -sum(target * log softmax(logits)), in numpy."""
    logits = np.asarray(logits, dtype=np.float64)
    log_p = logits - logits.max(1, keepdims=True)
    log_p = log_p - np.log(np.exp(log_p).sum(1, keepdims=True))
    return -(np.asarray(target) * log_p).sum(1)


def test_soft_target_cross_entropy_against_numpy():
    g = torch.Generator().manual_seed(0)
    logits = torch.randn(5, 4, generator=g)
    labels = torch.tensor([0, 3, 1, 1, 2])
    onehot = np.eye(4)[labels.numpy()]
    per_sample = _cross_entropy(logits, onehot)
    loss = SoftTargetCrossEntropy()
    assert float(loss({"logits": logits}, labels)) == pytest.approx(per_sample.mean(), rel=1e-5)
    assert float(loss((logits, "other"), labels)) == pytest.approx(per_sample.mean(), rel=1e-5)  # tuple outputs
    assert float(loss({"logits": logits}, labels, num_items_in_batch=20)) == pytest.approx(
        per_sample.sum() / 20, rel=1e-5
    )
    smoothed = SoftTargetCrossEntropy(label_smoothing=0.2)
    assert smoothed.label_smoothing == 0.2
    target = 0.8 * onehot + 0.2 / 4
    assert float(smoothed({"logits": logits}, labels)) == pytest.approx(
        _cross_entropy(logits, target).mean(), rel=1e-5
    )
    soft = torch.tensor([[0.3, 0.7, 0.0, 0.0]] * 5)
    expected = _cross_entropy(logits, 0.8 * soft.numpy() + 0.05).sum() / 3
    assert float(smoothed({"logits": logits}, soft, num_items_in_batch=3)) == pytest.approx(expected, rel=1e-5)
    assert float(loss({"logits": logits}, soft)) == pytest.approx(_cross_entropy(logits, soft).mean(), rel=1e-5)


# ------------------------------------------------------------------------------------------- trainer set-up
def test_the_loss_function_follows_mixup(tmp_path):
    trainer = _trainer(tmp_path)
    assert trainer.compute_loss_func is None and trainer.recipe_args == RecipeArguments()
    trainer = _trainer(tmp_path, RecipeArguments(mixup_alpha=0.4), label_smoothing_factor=0.1)
    assert isinstance(trainer.compute_loss_func, SoftTargetCrossEntropy)
    assert trainer.compute_loss_func.label_smoothing == 0.1 and trainer.model is not None

    def own(outputs, labels, num_items_in_batch=None):
        return outputs["logits"].sum()

    assert _trainer(tmp_path, RecipeArguments(mixup_alpha=0.4), compute_loss_func=own).compute_loss_func is own


def test_layer_decay_optimizer_groups(tmp_path):
    trainer = _trainer(tmp_path, RecipeArguments(layer_decay=0.5), learning_rate=0.08, weight_decay=0.01)
    optimizer = trainer.create_optimizer()
    assert optimizer is trainer.optimizer and isinstance(optimizer, torch.optim.AdamW)
    got = sorted((g["lr"], g["weight_decay"], len(g["params"])) for g in optimizer.param_groups)
    names = dict(trainer.model.named_parameters())
    decaying = set(trainer.get_decay_parameter_names(trainer.model))
    expected = {}
    for name in names:
        key = (0.08 * 0.5 ** (3 - layer_id(name, 2)), 0.01 if name in decaying else 0.0)
        expected[key] = expected.get(key, 0) + 1
    assert got == sorted((lr, wd, n) for (lr, wd), n in expected.items())
    assert len({g["lr"] for g in optimizer.param_groups}) == 4  # embeddings, 2 layers, head
    assert all("names" not in g for g in optimizer.param_groups)
    assert trainer.create_optimizer() is optimizer  # made once


def test_without_layer_decay_the_optimizer_is_trainers(tmp_path):
    trainer = _trainer(tmp_path, learning_rate=0.08)
    optimizer = trainer.create_optimizer()
    assert isinstance(optimizer, torch.optim.AdamW) and {g["lr"] for g in optimizer.param_groups} == {0.08}
    assert len(optimizer.param_groups) == 2  # Trainer's decay / no-decay split


# ------------------------------------------------------------------------------------------- augmentation
def _flipped(before, after):
    """Per clip: True flipped left-right (width axis), False unchanged; anything else fails."""
    out = []
    for a, b in zip(before, after):
        if torch.equal(b, a):
            out.append(False)
        else:
            assert torch.equal(b, a.flip(-1)), "a clip changed other than by a horizontal flip"
            out.append(True)
    return out


def test_flips_are_horizontal_random_and_only_of_the_video(tmp_path):
    trainer = _trainer(tmp_path, RecipeArguments(flip=True))
    torch.manual_seed(0)
    video, audio, labels = _clips(400), _clips(400, seed=1), torch.arange(400) % 4
    inputs = {"pixel_values": video.clone(), "audio_values": audio.clone(), "labels": labels.clone()}
    out = trainer._augment(inputs)
    flipped = _flipped(video, out["pixel_values"])
    assert 0.4 < np.mean(flipped) < 0.6  # each clip flipped with probability 1/2: neither never nor always
    assert torch.equal(out["audio_values"], audio) and torch.equal(out["labels"], labels)
    assert torch.equal(inputs["pixel_values"], video)  # the caller's batch is not modified
    again = _flipped(video, trainer._augment(inputs)["pixel_values"])
    assert again != flipped  # drawn anew for each batch
    assert set(trainer._augment({"audio_values": audio, "labels": labels})) == {"audio_values", "labels"}


def test_no_flips_without_the_flag(tmp_path):
    trainer = _trainer(tmp_path, RecipeArguments(flip=False))
    video = _clips(16)
    out = trainer._augment({"pixel_values": video, "labels": torch.zeros(16, dtype=torch.long)})
    assert torch.equal(out["pixel_values"], video) and out["labels"].dtype == torch.long


def test_mixup_mixes_clips_and_labels_with_one_weight_and_permutation(tmp_path, monkeypatch):
    trainer = _trainer(tmp_path, RecipeArguments(mixup_alpha=0.4), model=_model(num_labels=3))
    perm = torch.tensor([2, 0, 3, 1])
    draws = []

    def beta(a, b):
        draws.append((a, b))
        return 0.3

    monkeypatch.setattr(trainer_module.np.random, "beta", beta)
    monkeypatch.setattr(trainer_module.torch, "randperm", lambda n, device=None: perm[:n])
    video, audio, labels = _clips(4), _clips(4, seed=1), torch.tensor([0, 2, 1, 1])
    out = trainer._augment({"pixel_values": video, "audio_values": audio, "labels": labels})
    assert draws == [(0.4, 0.4)]
    for i, j in enumerate(perm.tolist()):
        assert torch.allclose(out["pixel_values"][i], 0.3 * video[i] + 0.7 * video[j])
        assert torch.allclose(out["audio_values"][i], 0.3 * audio[i] + 0.7 * audio[j])
        target = 0.3 * np.eye(3)[labels[i]] + 0.7 * np.eye(3)[labels[j]]
        assert np.allclose(out["labels"][i].numpy(), target)
    assert out["labels"].shape == (4, 3) and out["labels"].dtype == torch.float32
    out = trainer._augment({"audio_values": audio, "labels": labels})  # audio only: video stays absent
    assert set(out) == {"audio_values", "labels"}


def test_augmentation_only_for_training_batches_with_labels(tmp_path, monkeypatch):
    trainer = _trainer(tmp_path, RecipeArguments(flip=True))
    model = trainer.model
    calls = []
    augment = trainer._augment
    monkeypatch.setattr(trainer, "_augment", lambda inputs: calls.append(1) or augment(inputs))
    inputs = {"pixel_values": _clips(2), "audio_values": _clips(2, 1), "labels": torch.tensor([1, 3])}
    model.train()
    loss = trainer.compute_loss(model, dict(inputs))
    assert calls == [1] and loss.ndim == 0
    model.eval()
    loss = trainer.compute_loss(model, dict(inputs))
    with torch.no_grad():
        logits = model(pixel_values=inputs["pixel_values"], audio_values=inputs["audio_values"]).logits
    expected = _cross_entropy(logits, np.eye(4)[[1, 3]]).mean()
    assert calls == [1] and float(loss.detach()) == pytest.approx(expected, rel=1e-5)  # eval: no augmentation
    loss, outputs = trainer.compute_loss(model, dict(inputs), return_outputs=True)
    assert torch.allclose(outputs.logits, logits, atol=1e-6)
    plain = _trainer(tmp_path)  # nothing to augment
    monkeypatch.setattr(plain, "_augment", lambda inputs: calls.append(2) or inputs)
    plain.model.train()
    plain.compute_loss(plain.model, dict(inputs))
    trainer.model.train()
    with pytest.raises(Exception):  # no labels: nothing to augment, and no loss either
        trainer.compute_loss(model, {k: v for k, v in inputs.items() if k != "labels"})
    assert calls == [1]


# ------------------------------------------------------------------------------------------- model card
def test_the_card_writer_replaces_trainers_card(tmp_path):
    written = []
    trainer = _trainer(tmp_path, card_writer=written.append)
    assert trainer.create_model_card(model_name="x") is None
    assert written == [str(tmp_path / "out")]
    assert not (tmp_path / "out" / "README.md").exists()
    trainer = _trainer(tmp_path)
    trainer.create_model_card(model_name="x")
    assert "x" in (tmp_path / "out" / "README.md").read_text()
