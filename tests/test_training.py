"""Training helpers: the WAR/UAR metric module, recipes, freezing, layer decay, drop path, mixup, the feature cache."""

import json
import os
import sys

import numpy as np
import pytest
import torch
from transformers import TrainingArguments

from mmder_hf import MultiMAEDERConfig, MultiMAEDERForVideoClassification
from mmder_hf.training import (
    MODEL_SIZES,
    RECIPES,
    MultiMAEDERTrainer,
    RecipeArguments,
    WarUarMetrics,
    add_drop_path,
    can_cache_features,
    compute_pooled_features,
    layer_decay_parameter_groups,
    layer_id,
    load_war_uar,
    save_confusion_matrix,
)


EXAMPLES = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "examples")


def tiny_model(strategy="FSLF", num_labels=4, **kwargs):
    torch.manual_seed(0)
    config = MultiMAEDERConfig(fusion_strategy=strategy, num_labels=num_labels, **{**MODEL_SIZES["tiny"], **kwargs})
    return MultiMAEDERForVideoClassification(config)


@pytest.fixture(scope="module")
def war_uar():
    return load_war_uar()


def test_war_uar_metric_module_offline(war_uar):
    out = war_uar.compute(predictions=[0, 0, 1, 2, 2, 2], references=[0, 1, 1, 2, 2, 0])
    assert out["war"] == pytest.approx(4 / 6)
    assert out["per_class_recall"] == pytest.approx([0.5, 0.5, 1.0])
    assert out["uar"] == pytest.approx(2 / 3)
    assert out["confusion_matrix"] == [[1, 0, 1], [1, 1, 0], [0, 0, 2]]
    # A class without references has no recall (NaN) and is left out of UAR.
    out = war_uar.compute(predictions=[0, 3], references=[0, 1], num_labels=4)
    assert out["uar"] == pytest.approx(0.5) and np.isnan(out["per_class_recall"][2])
    assert np.asarray(out["confusion_matrix"]).shape == (4, 4)


def test_compute_metrics_wrapper_and_confusion_png(tmp_path):
    from transformers import EvalPrediction

    metrics = WarUarMetrics(["neutral", "happy", "sad"])
    logits = np.eye(3)[[0, 1, 1, 2]]
    out = metrics(EvalPrediction(predictions=logits, label_ids=np.array([0, 1, 2, 2])))
    assert out["war"] == pytest.approx(0.75) and out["uar"] == pytest.approx((1 + 1 + 0.5) / 3)
    assert out["recall_sad"] == pytest.approx(0.5)
    assert all(isinstance(v, float) for v in out.values())
    path = save_confusion_matrix(metrics.last["confusion_matrix"], metrics.label_names, str(tmp_path / "cm.png"), "t")
    assert open(path, "rb").read(8) == b"\x89PNG\r\n\x1a\n"
    assert json.loads((tmp_path / "cm.json").read_text())["confusion_matrix"] == [[1, 0, 0], [0, 1, 0], [0, 1, 1]]


def test_recipes_are_defaults_that_flags_override():
    sys.path.insert(0, EXAMPLES)
    import finetune

    model_args, data_args, recipe_args, args = finetune.parse_args(
        ["--output_dir", "x", "--recipe", "paper", "--learning_rate", "0.5"]
    )
    assert recipe_args.recipe == "paper" and recipe_args.freeze_backbone and not recipe_args.augments
    assert args.learning_rate == 0.5  # the flag wins
    assert args.weight_decay == 0.05 and args.num_train_epochs == 100 and args.per_device_train_batch_size == 16
    assert args.lr_scheduler_type == "constant" and args.remove_unused_columns is False
    _, _, recipe_args, args = finetune.parse_args(
        ["--output_dir", "x", "--recipe", "finetune", "--mixup_alpha", "0.8"]
    )
    assert (recipe_args.layer_decay, recipe_args.drop_path_rate, args.label_smoothing_factor) == (0.75, 0.1, 0.1)
    assert args.lr_scheduler_type == "cosine" and args.warmup_steps == 0.05 and recipe_args.mixup_alpha == 0.8
    model_args, data_args, recipe_args, args = finetune.parse_args(["--output_dir", "x"])
    assert recipe_args.recipe == "quick" and model_args.model_name_or_path is None and data_args.dataset_source is None
    assert set(RECIPES) == {"paper", "finetune", "quick"}


def test_recipe_defaults_also_apply_to_a_json_file(tmp_path):
    sys.path.insert(0, EXAMPLES)
    import finetune

    path = tmp_path / "args.json"
    path.write_text(json.dumps({"output_dir": "x", "recipe": "paper", "num_train_epochs": 3}))
    _, _, recipe_args, args = finetune.parse_args([str(path)])
    assert recipe_args.freeze_backbone and args.learning_rate == 1e-2 and args.num_train_epochs == 3
    assert args.lr_scheduler_type == "constant" and args.remove_unused_columns is False


def test_mixup_loss_is_the_mixture_of_the_two_cross_entropies():
    from mmder_hf.training import SoftTargetCrossEntropy

    g = torch.Generator().manual_seed(0)
    logits, a, b, lam = (
        torch.randn(6, 4, generator=g),
        torch.tensor([0, 1, 2, 3, 0, 1]),
        torch.tensor([3, 2, 1, 0, 1, 1]),
        0.3,
    )
    soft = lam * torch.nn.functional.one_hot(a, 4).float() + (1 - lam) * torch.nn.functional.one_hot(b, 4).float()
    loss_fn = SoftTargetCrossEntropy(label_smoothing=0.1)
    ce = torch.nn.functional.cross_entropy
    expected = lam * ce(logits, a, label_smoothing=0.1, reduction="sum") + (1 - lam) * ce(
        logits, b, label_smoothing=0.1, reduction="sum"
    )
    assert loss_fn({"logits": logits}, soft, num_items_in_batch=12) == pytest.approx(float(expected) / 12, rel=1e-6)
    assert loss_fn({"logits": logits}, a) == pytest.approx(float(ce(logits, a, label_smoothing=0.1)), rel=1e-6)


def test_freeze_backbone_keeps_encoder_in_eval_mode():
    model = tiny_model(hidden_dropout_prob=0.5).freeze_backbone()
    model.train()
    assert model.training and model.classifier.training and not model.videomae.training
    assert not any(m.training for m in model.videomae.modules())
    trainable = {n for n, p in model.named_parameters() if p.requires_grad}
    assert trainable == {"fc_norm.weight", "fc_norm.bias", "classifier.weight", "classifier.bias"}


def test_layer_decay_parameter_groups():
    model = tiny_model()
    assert layer_id("videomae.embeddings.patch_embeddings.projection.weight", 2) == 0
    assert layer_id("videomae.encoder.layer.1.attention.attention.query.weight", 2) == 2
    assert layer_id("classifier.weight", 2) == 3
    decay = [n for n, _ in model.named_parameters() if n.endswith("weight") and "norm" not in n]
    groups = layer_decay_parameter_groups(model, 1.0, 0.05, 0.5, decay)
    lrs = {name: g["lr"] for g in groups for name in g["names"]}
    assert lrs["classifier.weight"] == 1.0
    assert lrs["videomae.encoder.layer.1.output.dense.weight"] == 0.5
    assert lrs["videomae.encoder.layer.0.output.dense.weight"] == 0.25
    assert lrs["videomae.embeddings.patch_embeddings.projection.weight"] == 0.125
    wd = {name: g["weight_decay"] for g in groups for name in g["names"]}
    assert wd["classifier.weight"] == 0.05 and wd["classifier.bias"] == 0.0
    assert sum(len(g["params"]) for g in groups) == len(list(model.parameters()))


def test_drop_path_only_while_training():
    model = tiny_model().eval()
    inputs = {"pixel_values": torch.randn(4, 2, 3, 32, 32), "audio_values": torch.randn(4, 2, 3, 32, 32)}
    with torch.no_grad():
        reference = model(**inputs).logits
        handles = add_drop_path(model, 0.5)
        assert len(handles) == 2  # layer 0 has rate 0, layer 1 gets attention + MLP hooks
        assert torch.equal(model(**inputs).logits, reference)
        model.train()
        torch.manual_seed(1)
        assert not torch.allclose(model(**inputs).logits, reference)


def _tensor_dataset(n=24, num_labels=4, seed=0):
    import datasets

    g = torch.Generator().manual_seed(seed)
    data = {
        "pixel_values": torch.randn(n, 2, 3, 32, 32, generator=g).numpy(),
        "audio_values": torch.randn(n, 2, 3, 32, 32, generator=g).numpy(),
        "labels": (torch.arange(n) % num_labels).numpy(),
    }
    clip = datasets.Array4D(shape=(2, 3, 32, 32), dtype="float32")
    features = datasets.Features({"pixel_values": clip, "audio_values": clip, "labels": datasets.Value("int64")})
    return datasets.Dataset.from_dict(data, features=features).with_format("numpy")


def _collate(rows):
    return {
        "pixel_values": torch.stack([torch.as_tensor(r["pixel_values"]) for r in rows]),
        "audio_values": torch.stack([torch.as_tensor(r["audio_values"]) for r in rows]),
        "labels": torch.as_tensor([int(r["labels"]) for r in rows]),
    }


def _train(tmp_path, name, use_cache):
    from transformers import default_data_collator

    model = tiny_model().freeze_backbone()
    recipe = RecipeArguments(recipe="paper", freeze_backbone=True, use_feature_cache=use_cache)
    args = TrainingArguments(
        output_dir=str(tmp_path / name),
        learning_rate=1e-2,
        weight_decay=0.05,
        num_train_epochs=3,
        per_device_train_batch_size=8,
        per_device_eval_batch_size=5,
        lr_scheduler_type="constant",
        report_to="none",
        save_strategy="no",
        eval_strategy="no",
        use_cpu=True,
        remove_unused_columns=False,
        disable_tqdm=True,
        seed=3,
    )
    train, evaluation = _tensor_dataset(24), _tensor_dataset(12, seed=1)
    collator = _collate
    if use_cache:
        assert can_cache_features(model, recipe)
        train = compute_pooled_features(model, train, _collate, batch_size=7)
        evaluation = compute_pooled_features(model, evaluation, _collate, batch_size=7)
        collator = default_data_collator
    trainer = MultiMAEDERTrainer(
        model=model,
        args=args,
        train_dataset=train,
        eval_dataset=evaluation,
        data_collator=collator,
        compute_metrics=WarUarMetrics(["a", "b", "c", "d"]),
        recipe_args=recipe,
    )
    trainer.train()
    metrics = trainer.evaluate()
    return model, metrics


def test_feature_cache_fast_path_matches_the_plain_loop(tmp_path):
    plain_model, plain = _train(tmp_path, "plain", use_cache=False)
    fast_model, fast = _train(tmp_path, "fast", use_cache=True)
    for name in ("fc_norm.weight", "fc_norm.bias", "classifier.weight", "classifier.bias"):
        a, b = plain_model.state_dict()[name], fast_model.state_dict()[name]
        assert torch.allclose(a, b, atol=1e-5), (name, (a - b).abs().max())
    for name, tensor in plain_model.videomae.state_dict().items():
        assert torch.equal(tensor, fast_model.videomae.state_dict()[name])
    assert plain["eval_war"] == fast["eval_war"] and plain["eval_uar"] == fast["eval_uar"]
    assert plain["eval_loss"] == pytest.approx(fast["eval_loss"], abs=1e-5)
    assert "forward" not in fast_model.__dict__  # the model is never patched


def test_feature_cache_is_refused_when_inputs_change():
    model = tiny_model().freeze_backbone()
    assert not can_cache_features(model, RecipeArguments(freeze_backbone=True, flip=True))
    assert not can_cache_features(model, RecipeArguments(freeze_backbone=True, mixup_alpha=0.8))
    assert not can_cache_features(tiny_model(), RecipeArguments())  # encoder trains
    assert not can_cache_features(tiny_model("RFAS").freeze_backbone(), RecipeArguments(freeze_backbone=True))


def test_mixup_flip_and_layer_decay_train(tmp_path):
    model = tiny_model()
    recipe = RecipeArguments(recipe="finetune", layer_decay=0.75, mixup_alpha=0.8, flip=True)
    args = TrainingArguments(
        output_dir=str(tmp_path / "m"),
        max_steps=2,
        per_device_train_batch_size=4,
        label_smoothing_factor=0.1,
        report_to="none",
        save_strategy="no",
        use_cpu=True,
        remove_unused_columns=False,
        disable_tqdm=True,
    )
    trainer = MultiMAEDERTrainer(
        model=model, args=args, train_dataset=_tensor_dataset(8), data_collator=_collate, recipe_args=recipe
    )
    before = model.videomae.embeddings.patch_embeddings.projection.weight.clone()
    collated, received = [], []
    collate = trainer.data_collator

    def recording_collate(rows):
        batch = collate(rows)
        collated.append({k: v.clone() for k, v in batch.items()})
        return batch

    trainer.data_collator = recording_collate
    hook = model.register_forward_pre_hook(lambda m, a, kw: received.append(dict(kw)), with_kwargs=True)
    trainer.train()
    hook.remove()
    lrs = sorted({g["initial_lr"] for g in trainer.optimizer.param_groups})
    assert len(lrs) == 4 and lrs[-1] == pytest.approx(args.learning_rate)  # embeddings, 2 layers, head
    assert not torch.equal(before, model.videomae.embeddings.patch_embeddings.projection.weight)
    assert np.isfinite(trainer.state.log_history[-1]["train_loss"])
    # the model trained on augmented inputs: mixed clips (and flipped faces), with the matching soft labels
    assert len(received) == len(collated) == 2
    for batch, inputs in zip(collated, received):
        assert "labels" not in inputs  # the loss is the soft-target cross-entropy of the mixed labels
        assert not torch.allclose(inputs["audio_values"], batch["audio_values"])  # mixup touches both modalities
        video, mixed = batch["pixel_values"], inputs["pixel_values"]
        assert not torch.allclose(mixed, video)
        # every mixed clip is a convex mix of two collated clips, each possibly flipped left-right
        candidates = torch.cat([video, video.flip(-1)])
        for clip in mixed:
            residual = min(
                float((clip - (lam * a + (1 - lam) * b)).abs().max())
                for a in candidates
                for b in candidates
                for lam in (
                    float(((clip - b).flatten() @ (a - b).flatten()) / ((a - b).flatten().square().sum() + 1e-12)),
                )
            )
            assert residual < 1e-4


def test_raw_checkpoint_tensors_load_into_the_model(tmp_path):
    """The Trainer's resume path loads raw safetensors; transformers 5 saves VideoMAE's q/v biases renamed."""
    from safetensors.torch import load_file

    source = tiny_model()
    with torch.no_grad():
        for param in source.parameters():
            param.add_(torch.randn_like(param))
    source.save_pretrained(tmp_path)
    state = load_file(tmp_path / "model.safetensors")
    assert any(key.endswith("q_bias") for key in state)
    target = tiny_model()
    result = target.load_state_dict(state, strict=False)
    assert not result.missing_keys and not result.unexpected_keys
    for name, tensor in source.state_dict().items():
        assert torch.equal(tensor, target.state_dict()[name]), name


def test_finetune_help_prints_every_recipe():
    import subprocess

    done = subprocess.run(
        [sys.executable, os.path.join(EXAMPLES, "finetune.py"), "--help"], capture_output=True, text=True, timeout=120
    )
    assert done.returncode == 0, done.stderr[-2000:]
    assert "--recipe" in done.stdout and "5% linear warmup" in " ".join(done.stdout.split())


def test_a_typo_in_config_overrides_is_rejected_with_the_closest_field():
    from mmder_hf.training.run import parse_config_overrides

    known = MultiMAEDERConfig().to_dict()
    assert parse_config_overrides("hidden_size=128,hidden_act=gelu", known) == {
        "hidden_size": 128,
        "hidden_act": "gelu",
    }
    with pytest.raises(ValueError, match="'hiddensize' is not a MultiMAEDERConfig field; did you mean hidden_size"):
        parse_config_overrides("hiddensize=128", known)
    with pytest.raises(ValueError, match="not key=value"):
        parse_config_overrides("hidden_size", known)


def test_a_json_file_and_the_same_flags_give_the_same_run(tmp_path):
    sys.path.insert(0, EXAMPLES)
    import finetune

    given = {"output_dir": "x", "recipe": "finetune", "num_train_epochs": 3, "fold": 2, "mixup_alpha": 0.8}
    path = tmp_path / "args.json"
    path.write_text(json.dumps(given))
    flags = [item for key, value in given.items() for item in (f"--{key}", str(value))]
    from_json, from_flags = finetune.parse_args([str(path)]), finetune.parse_args(flags)
    from dataclasses import asdict

    for a, b in zip(from_json[:3], from_flags[:3]):
        assert asdict(a) == asdict(b)
    assert from_json[3].to_dict() == from_flags[3].to_dict()
    assert from_json[3].do_train and from_json[3].learning_rate == RECIPES["finetune"].training["learning_rate"]
