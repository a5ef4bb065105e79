"""transformers' common model checks, run against MultiMAEDERModel and MultiMAEDERForVideoClassification (and
transformers' ModelTesterMixin also against MultiMAEDERForPreTraining, with a fixed ``bool_masked_pos``).

Two layers:

1. ``TestTransformersMixin*``: transformers' own ``ModelTesterMixin`` (``tests/test_modeling_common.py`` of the
   released sdist of the *installed* transformers version), with a small :class:`MultiMAEDERModelTester`. The sdist
   ships ``tests/test_*_common.py`` but not the packages they import relatively (``tests/exporters``,
   ``tests/generation``) nor their test dependency ``parameterized``, so the two missing mixins are stubbed (no
   export and no generation tests) and ``parameterized`` is installed next to the unpacked tests. These classes run
   when the unpacked folder exists (tests must not download): ``$MMDER_TRANSFORMERS_TESTS``, by default
   ``.venv/transformers-tests/<transformers version>`` (``.venv/`` is ignored by git). Fetch it once with
   :data:`FETCH_COMMAND` (from the repository root); without it they are skipped, saying so.

2. Always: our own reproduction of each mixin check that applies to these models, named after the mixin test it
   mirrors, parametrized over both classes and several fusion strategies. Unlike some of the mixin's checks (which
   skip classes that are not in transformers' auto mappings, or compare only the first row of a batch), each of
   these has a signal: tolerances are orders of magnitude below the size of what they compare.
"""

from __future__ import annotations

import copy
import importlib
import inspect
import os
import re
import sys
import types
import unittest
import warnings
from collections import OrderedDict
from pathlib import Path

import pytest
import torch
import transformers
from inference_helpers import TINY
from safetensors.torch import load_file
from torch import nn
from transformers import AutoModel, AutoModelForVideoClassification
from transformers.models.videomae.modeling_videomae import VideoMAEPatchEmbeddings

from mmder_hf import MultiMAEDERConfig, MultiMAEDERForPreTraining, MultiMAEDERForVideoClassification, MultiMAEDERModel
from mmder_hf.models.multimae_der import draw_mask


REPO = Path(__file__).resolve().parents[1]
ENV_VAR = "MMDER_TRANSFORMERS_TESTS"
TRANSFORMERS_TESTS = Path(
    os.environ.get(ENV_VAR) or REPO / ".venv" / "transformers-tests" / transformers.__version__
).resolve()
#: Run from the repository root to unpack the installed version's common tests where the mixin classes look.
FETCH_COMMAND = (
    'V=$(.venv/bin/python -c "import transformers; print(transformers.__version__)") && '
    "D=.venv/transformers-tests/$V && mkdir -p $D && "
    ".venv/bin/pip download --no-binary :all: --no-deps transformers==$V -d $D && "
    "tar xzf $D/transformers-$V.tar.gz -C $D --strip-components=1 transformers-$V/tests transformers-$V/PKG-INFO && "
    ".venv/bin/pip install --no-deps --target $D/deps parameterized==0.9.0"
)

CLASSES = [MultiMAEDERModel, MultiMAEDERForVideoClassification]
#: Two temporal layouts (RFAS draws permutations), a spatial one and a single-modality baseline.
STRATEGIES = ["FSLF", "RFAS", "CFAS", "audio"]
BATCH = 3
#: A small decoder for the pre-training model (the config's default is VideoMAE-B's).
PRETRAINING_DECODER = dict(
    decoder_hidden_size=16, decoder_num_hidden_layers=1, decoder_num_attention_heads=2, decoder_intermediate_size=32
)
NUM_LABELS = 5
SEQ_LENGTH = (TINY["num_frames"] // 2) * (TINY["image_size"] // TINY["patch_size"]) ** 2  # tubelet_size 2


@pytest.fixture(autouse=True)
def transformers_warnings_visible():
    """The mixin's checks read transformers' warnings (``Reinit due to size mismatch``...); other tests in the session
    (the CLI quiets the libraries) may have raised the verbosity: restore the default for each test here."""
    previous = transformers.logging.get_verbosity()
    transformers.logging.set_verbosity_warning()
    yield
    transformers.logging.set_verbosity(previous)


def make_config(strategy: str = "FSLF", **overrides) -> MultiMAEDERConfig:
    return MultiMAEDERConfig(fusion_strategy=strategy, **{"num_labels": NUM_LABELS, **TINY, **overrides})


def scramble(model: nn.Module, seed: int = 1, scale: float = 0.2) -> nn.Module:
    """Give every parameter distinct values, unlike any init pattern (no zeros, no ones)."""
    g = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for param in model.parameters():
            param.copy_(torch.randn(param.shape, generator=g) * scale + 0.02)
    return model


def make_model(cls, strategy: str = "FSLF", seed: int = 0, scrambled: bool = True, **overrides):
    torch.manual_seed(seed)
    model = cls(make_config(strategy, **overrides))
    return (scramble(model, seed + 1) if scrambled else model).eval()


def clip_inputs(config: MultiMAEDERConfig, batch: int = BATCH, seed: int = 0) -> dict:
    g = torch.Generator().manual_seed(seed)
    shape = (config.num_channels, config.image_size, config.image_size)
    inputs = {}
    if config.num_video_frames:
        inputs["pixel_values"] = torch.randn(batch, config.num_video_frames, *shape, generator=g)
    if config.num_audio_frames:
        inputs["audio_values"] = torch.randn(batch, config.num_audio_frames, *shape, generator=g)
    return inputs


def encoder_of(model: nn.Module) -> MultiMAEDERModel:
    return model if isinstance(model, MultiMAEDERModel) else model.videomae


def training_loss(model: nn.Module, inputs: dict, labels: torch.Tensor) -> torch.Tensor:
    """The classifier's own loss; for the bare encoder (no loss) a fixed, non-trivial function of every token."""
    if isinstance(model, MultiMAEDERForVideoClassification):
        return model(**inputs, labels=labels).loss
    hidden = model(**inputs).last_hidden_state
    target = torch.linspace(-1, 1, hidden.shape[-1])
    return (hidden - target).square().mean()


def assert_same_values(expected, got, path="output"):
    """Tuples / lists / tensors equal element by element (``None`` fields must match too)."""
    if isinstance(expected, (tuple, list)):
        assert isinstance(got, (tuple, list)) and len(got) == len(expected), (path, type(got))
        for i, (a, b) in enumerate(zip(expected, got)):
            assert_same_values(a, b, f"{path}[{i}]")
    elif expected is None:
        assert got is None, path
    else:
        assert torch.equal(expected, got), path


both_classes = pytest.mark.parametrize("cls", CLASSES, ids=lambda c: c.__name__)
strategies = pytest.mark.parametrize("strategy", STRATEGIES)


# ---------------------------------------------------------------------------------------------------------------
# 2. Our reproduction of the mixin's checks (always run)


@both_classes
@strategies
def test_save_load(tmp_path, cls, strategy):
    model = make_model(cls, strategy)
    inputs = clip_inputs(model.config)
    with torch.no_grad():
        first = model(**inputs)[0]
    model.save_pretrained(tmp_path)
    assert (tmp_path / "config.json").is_file() and (tmp_path / "model.safetensors").is_file()
    assert not (tmp_path / "generation_config.json").exists()  # cannot generate
    loaded, info = cls.from_pretrained(tmp_path, output_loading_info=True)
    assert not any(info.values()), info  # no missing, unexpected or mismatched keys, no error message
    # ... and a second round trip: from_pretrained adds config fields, which must load again.
    loaded.save_pretrained(tmp_path / "again")
    again = cls.from_pretrained(tmp_path / "again")
    for reloaded in (loaded, again):
        reloaded.eval()
        assert type(reloaded) is cls and reloaded.config.fusion_strategy == strategy
        expected, state = model.state_dict(), reloaded.state_dict()
        assert list(state) == list(expected)
        for name, tensor in expected.items():
            assert torch.equal(state[name], tensor), name
        with torch.no_grad():
            assert torch.equal(reloaded(**inputs)[0], first)


@both_classes
def test_from_pretrained_no_checkpoint(cls):
    model = make_model(cls, "OFOS")
    new = cls.from_pretrained(None, config=model.config, state_dict=model.state_dict())
    for (name, a), (_, b) in zip(model.state_dict().items(), new.state_dict().items(), strict=True):
        assert torch.equal(a, b), name


@both_classes
@strategies
@pytest.mark.parametrize("how", ["argument", "config"])
def test_model_outputs_equivalence(cls, strategy, how):
    """``return_dict=False`` / ``config.return_dict = False``: the output's non-None fields as a tuple, same values."""
    model = make_model(cls, strategy)
    model.set_attn_implementation("eager")  # so that attentions can be returned
    inputs = clip_inputs(model.config)
    extra = [{}, {"output_hidden_states": True}, {"output_attentions": True}]
    extra.append({"output_hidden_states": True, "output_attentions": True})
    if cls is MultiMAEDERForVideoClassification:
        extra += [
            {"labels": torch.tensor([0, 3, 4])},
            {"labels": torch.tensor([1, 1, 2]), "output_hidden_states": True},
        ]
    for kwargs in extra:
        with torch.no_grad():
            as_dict = model(**inputs, **kwargs, return_dict=True)
            if how == "config":
                model.config.return_dict = False
                as_tuple = model(**inputs, **kwargs)
                model.config.return_dict = True
            else:
                as_tuple = model(**inputs, **kwargs, return_dict=False)
        assert isinstance(as_tuple, tuple) and not hasattr(as_tuple, "keys"), (kwargs, type(as_tuple))
        fields = [value for value in as_dict.values() if value is not None]
        assert len(as_tuple) == len(fields), kwargs
        assert_same_values(tuple(fields), as_tuple, str(kwargs))
        assert_same_values(as_dict.to_tuple(), as_tuple, str(kwargs))


@both_classes
@strategies
def test_hidden_states_output(cls, strategy):
    model = make_model(cls, strategy)
    inputs = clip_inputs(model.config)
    config = model.config
    with torch.no_grad():
        assert model(**inputs).hidden_states is None
        by_argument = model(**inputs, output_hidden_states=True)
        config.output_hidden_states = True
        by_config = model(**inputs)
        config.output_hidden_states = False
        encoder = encoder_of(model)
        embeddings = encoder.embeddings(encoder.fuse(inputs.get("pixel_values"), inputs.get("audio_values")), None)
        bare = encoder(**inputs)
    for out in (by_argument, by_config):
        hidden = out.hidden_states
        assert len(hidden) == config.num_hidden_layers + 1
        for state in hidden:
            assert state.shape == (BATCH, SEQ_LENGTH, config.hidden_size)
        assert torch.equal(hidden[0], embeddings)  # the first is the embedding output ...
        assert torch.equal(hidden[-1], bare.last_hidden_state)  # ... the last the encoder output (mean pooling)
        for before, after in zip(hidden, hidden[1:]):
            assert (after - before).abs().max() > 1e-2  # one per layer, not one layer's output repeated
    for a, b in zip(by_argument.hidden_states, by_config.hidden_states, strict=True):
        assert torch.equal(a, b)


@both_classes
@strategies
def test_attention_outputs(cls, strategy):
    model = make_model(cls, strategy)
    model.set_attn_implementation("eager")
    inputs = clip_inputs(model.config)
    config = model.config
    with torch.no_grad():
        plain = model(**inputs)
        by_argument = model(**inputs, output_attentions=True)
        config.output_attentions = True
        by_config = model(**inputs)
        both = model(**inputs, output_hidden_states=True)
        config.output_attentions = False
    assert plain.attentions is None
    for out in (by_argument, by_config):
        assert len(out.attentions) == config.num_hidden_layers
        for attention in out.attentions:
            assert attention.shape == (BATCH, config.num_attention_heads, SEQ_LENGTH, SEQ_LENGTH)
            torch.testing.assert_close(attention.sum(-1), torch.ones(attention.shape[:-1]), rtol=0, atol=1e-5)
            assert attention.amax() < 0.999  # real attention weights, not a one-hot placeholder
        assert not torch.equal(out.attentions[0], out.attentions[1])
    for a, b in zip(by_argument.attentions, by_config.attentions, strict=True):
        assert torch.equal(a, b)
    # attentions come last, after the hidden states, in the tuple form
    as_tuple = both.to_tuple()
    assert len(as_tuple) == len(by_argument.to_tuple()) + 1 and as_tuple[-1] is both.attentions


@both_classes
@strategies
def test_determinism(cls, strategy):
    """Eval mode is deterministic even with dropout configured; training mode is not (so the check has a signal)."""
    model = make_model(cls, strategy, hidden_dropout_prob=0.3, attention_probs_dropout_prob=0.3)
    inputs = clip_inputs(model.config)
    with torch.no_grad():
        first, second = model(**inputs)[0], model(**inputs)[0]
        assert torch.equal(first, second)
        assert torch.isfinite(first).all()
        model.train()
        assert (model(**inputs)[0] - model(**inputs)[0]).abs().max() > 1e-3


@both_classes
@strategies
def test_training(cls, strategy):
    model = make_model(cls, strategy).train()
    inputs = clip_inputs(model.config)
    labels = torch.tensor([0, 2, 4])
    torch.manual_seed(0)  # same RFAS permutations in both forward passes
    loss = training_loss(model, inputs, labels)
    assert loss.ndim == 0 and loss > 0
    loss.backward()
    trainable = [(name, p) for name, p in model.named_parameters() if p.requires_grad]
    assert len(trainable) == len(list(model.parameters()))
    for name, param in trainable:
        assert param.grad is not None and torch.isfinite(param.grad).all(), name
        assert param.grad.abs().sum() > 0, name
    with torch.no_grad():  # one small step along the gradient lowers the loss
        for _, param in trainable:
            param -= 1e-3 * param.grad
    torch.manual_seed(0)
    assert training_loss(model, inputs, labels) < loss - 1e-6


@strategies
def test_training_frozen_backbone(strategy):
    model = make_model(MultiMAEDERForVideoClassification, strategy).freeze_backbone().train()
    assert not model.videomae.training
    model(**clip_inputs(model.config), labels=torch.tensor([0, 2, 4])).loss.backward()
    for name, param in model.named_parameters():
        head = name.startswith(("fc_norm.", "classifier."))
        assert param.requires_grad is head, name
        assert (param.grad is not None and param.grad.abs().sum() > 0) if head else param.grad is None, name


@both_classes
@strategies
@pytest.mark.parametrize("use_reentrant", [None, True, False], ids=["default", "reentrant", "non_reentrant"])
def test_training_gradient_checkpointing(cls, strategy, use_reentrant):
    """Same loss and gradients with activation checkpointing, and the layers really are recomputed (with dropout on:
    the recomputation must replay the same dropout masks)."""
    inputs = clip_inputs(make_config(strategy))
    labels = torch.tensor([1, 3, 0])
    dropout = {"hidden_dropout_prob": 0.1, "attention_probs_dropout_prob": 0.1}

    def run(checkpointing: bool):
        model = make_model(cls, strategy, **dropout).train()
        if checkpointing:
            kwargs = None if use_reentrant is None else {"use_reentrant": use_reentrant}
            model.activation_checkpointing_enable(activation_checkpointing_kwargs=kwargs)
            assert model.is_activation_checkpointing
        calls = []
        for layer in encoder_of(model).encoder.layer:
            layer.intermediate.register_forward_hook(lambda *_: calls.append(1))
        torch.manual_seed(0)
        loss = training_loss(model, inputs, labels)
        loss.backward()
        return loss, {n: p.grad for n, p in model.named_parameters()}, len(calls)

    plain_loss, plain_grads, plain_calls = run(False)
    loss, grads, calls = run(True)
    layers = TINY["num_hidden_layers"]
    assert (plain_calls, calls) == (layers, 2 * layers)  # each layer runs again in the backward pass
    torch.testing.assert_close(loss, plain_loss, rtol=1e-6, atol=0)
    for name, grad in plain_grads.items():
        assert grads[name] is not None, name
        torch.testing.assert_close(grads[name], grad, rtol=1e-5, atol=1e-7, msg=name)


@both_classes
def test_gradient_checkpointing_enable_disable(cls):
    model = make_model(cls)
    flags = lambda: [layer.gradient_checkpointing for layer in encoder_of(model).encoder.layer]  # noqa: E731
    assert model.supports_gradient_checkpointing and not model.is_activation_checkpointing and not any(flags())
    model.activation_checkpointing_enable()
    assert model.is_activation_checkpointing and all(flags())
    model.activation_checkpointing_disable()
    assert not model.is_activation_checkpointing and not any(flags())


def _init_statistics_hold(model: nn.Module, std: float, names=None) -> None:
    """What ``_init_weights`` promises: LayerNorm 1 / 0, Linear and Conv3d biases 0, weights N(0, std)."""
    checked = set()
    for module_name, module in model.named_modules():
        prefix = f"{module_name}." if module_name else ""
        if names is not None and not any(n.startswith(prefix) for n in names):
            continue
        if isinstance(module, nn.LayerNorm):
            assert torch.equal(module.weight, torch.ones_like(module.weight)), module_name
            assert torch.equal(module.bias, torch.zeros_like(module.bias)), module_name
            checked.update({prefix + "weight", prefix + "bias"})
        elif isinstance(module, (nn.Linear, nn.Conv3d)):
            weight = module.weight.detach()
            assert abs(weight.std().item() - std) < 0.25 * std, (module_name, weight.std().item(), std)
            assert abs(weight.mean().item()) < 0.25 * std, module_name
            checked.add(prefix + "weight")
            if module.bias is not None:
                assert torch.equal(module.bias, torch.zeros_like(module.bias)), module_name
                checked.add(prefix + "bias")
    # every parameter in scope was covered by one of the rules above
    expected = {n for n, _ in model.named_parameters()} if names is None else set(names)
    assert expected <= checked, expected - checked


@both_classes
@pytest.mark.parametrize("initializer_range", [0.02, 0.3])
def test_initialization(cls, initializer_range):
    """``post_init`` ran ``_init_weights`` with the config's ``initializer_range`` (torch's default init differs)."""
    model = make_model(
        cls, scrambled=False, initializer_range=initializer_range, hidden_size=64, num_attention_heads=2
    )
    _init_statistics_hold(model, initializer_range)
    assert all(p.dtype == torch.float32 for p in model.parameters())


@strategies
def test_can_init_all_missing_weights(tmp_path, strategy):
    """Tensors missing from a checkpoint (here the head, loading an encoder) get ``_init_weights`` values."""
    encoder = make_model(MultiMAEDERModel, strategy, hidden_size=64)
    encoder.save_pretrained(tmp_path)
    model, info = MultiMAEDERForVideoClassification.from_pretrained(tmp_path, output_loading_info=True)
    head = {"fc_norm.weight", "fc_norm.bias", "classifier.weight", "classifier.bias"}
    assert set(info["missing_keys"]) == head and not info["unexpected_keys"]
    _init_statistics_hold(model, model.config.initializer_range, names=head)
    for name, tensor in encoder.state_dict().items():  # while every encoder tensor loads
        assert torch.equal(model.videomae.state_dict()[name], tensor), name


@both_classes
def test_base_model_prefix_loads_base_weights(tmp_path, cls):
    """A classifier checkpoint loads into the encoder (prefix ``videomae.`` stripped) and vice versa."""
    classifier = make_model(MultiMAEDERForVideoClassification, "OFOS")
    classifier.save_pretrained(tmp_path)
    model, info = cls.from_pretrained(tmp_path, output_loading_info=True)
    assert not info["missing_keys"] and not info["mismatched_keys"]
    for name, tensor in classifier.videomae.state_dict().items():
        assert torch.equal(encoder_of(model).state_dict()[name], tensor), name
    assert model.base_model is encoder_of(model)
    assert cls.base_model_prefix == "videomae"


def _expected_num_parameters(config: MultiMAEDERConfig, head: bool) -> int:
    """Counted from VideoMAE's architecture (key projection without bias, fixed sinusoidal positions)."""
    h, i, c, p, t = config.hidden_size, config.intermediate_size, config.num_channels, config.patch_size, 2
    embeddings = c * t * p * p * h + h
    attention = 3 * h * h + 2 * h + (h * h + h)  # query, key, value (+ query and value biases), output dense
    layer = attention + (h * i + i) + (i * h + h) + 2 * 2 * h  # MLP and two LayerNorms
    total = embeddings + config.num_hidden_layers * layer
    return total + (2 * h + h * config.num_labels + config.num_labels if head else 0)


@both_classes
def test_num_parameters(cls):
    model = make_model(cls)
    head = cls is MultiMAEDERForVideoClassification
    expected = _expected_num_parameters(model.config, head)
    assert model.num_parameters() == sum(p.numel() for p in model.parameters()) == expected
    assert model.num_parameters(exclude_embeddings=True) == expected  # no nn.Embedding: nothing to exclude
    if head:
        model.freeze_backbone()
        h = model.config.hidden_size
        assert model.num_parameters(only_trainable=True) == 2 * h + h * NUM_LABELS + NUM_LABELS


@both_classes
def test_model_get_set_embeddings(cls):
    model = make_model(cls)
    embeddings = model.get_input_embeddings()
    assert isinstance(embeddings, VideoMAEPatchEmbeddings)
    assert embeddings is encoder_of(model).embeddings.patch_embeddings
    assert model.get_output_embeddings() is None


@both_classes
def test_model_main_input_name(cls):
    first_argument = list(inspect.signature(cls.forward).parameters)[1]
    assert cls.main_input_name == first_argument == "pixel_values"


def _rows_one_at_a_time(model, inputs) -> list:
    rows = []
    with torch.no_grad():
        for b in range(next(iter(inputs.values())).shape[0]):
            rows.append(model(**{k: v[b : b + 1] for k, v in inputs.items()}, output_hidden_states=True))
    return rows


@both_classes
@strategies
def test_batching_equivalence(cls, strategy):
    """Every row of a batch equals that clip run alone (1e-5; the rows themselves differ by far more)."""
    model = make_model(cls, strategy)
    inputs = clip_inputs(model.config)
    with torch.no_grad():
        batched = model(**inputs, output_hidden_states=True)
    if strategy == "RFAS":
        # RFAS in eval mode gives clip ``i`` of a batch the ``i``-th row of a seeded permutation table (by design:
        # see onnx_export.py), so only row 0 can match a clip run alone; the rest is checked on the fused clips.
        first = _rows_one_at_a_time(model, {k: v[:1] for k, v in inputs.items()})[0]
        torch.testing.assert_close(batched[0][:1], first[0], rtol=1e-5, atol=1e-5)
        with torch.no_grad():
            fused = encoder_of(model).fuse(inputs.get("pixel_values"), inputs.get("audio_values"))
        model = copy.deepcopy(model)
        encoder_of(model).config.fusion_strategy = "prefused"
        inputs = {"pixel_values": fused}
    rows = _rows_one_at_a_time(model, inputs)
    for b, row in enumerate(rows):
        torch.testing.assert_close(batched[0][b : b + 1], row[0], rtol=1e-5, atol=1e-5)
        for layer, (a, r) in enumerate(zip(batched.hidden_states, row.hidden_states, strict=True)):
            torch.testing.assert_close(a[b : b + 1], r, rtol=1e-5, atol=1e-5, msg=f"row {b} hidden state {layer}")
    assert (batched[0][0] - batched[0][1]).abs().max() > 1e-2  # different clips, different outputs


@both_classes
@strategies
def test_eager_matches_sdpa_inference(tmp_path, cls, strategy):
    """fp32 on CPU: eager and sdpa attention agree to 1e-5 (outputs are O(1)), and sdpa is really used."""
    model = make_model(cls, strategy)
    model.save_pretrained(tmp_path)
    inputs = clip_inputs(model.config)
    outputs, sdpa_calls = {}, {}
    real_sdpa = torch.nn.functional.scaled_dot_product_attention
    for implementation in ("eager", "sdpa"):
        loaded = cls.from_pretrained(tmp_path, attn_implementation=implementation).eval()
        assert loaded.config._attn_implementation == implementation
        calls = []

        def counting_sdpa(*args, _calls=calls, **kwargs):
            _calls.append(1)
            return real_sdpa(*args, **kwargs)

        with torch.no_grad(), pytest.MonkeyPatch.context() as patch:
            patch.setattr(torch.nn.functional, "scaled_dot_product_attention", counting_sdpa)
            outputs[implementation] = loaded(**inputs, output_hidden_states=True)
        sdpa_calls[implementation] = len(calls)
    assert sdpa_calls == {"eager": 0, "sdpa": TINY["num_hidden_layers"]}
    eager, sdpa = outputs["eager"], outputs["sdpa"]
    torch.testing.assert_close(sdpa[0], eager[0], rtol=1e-5, atol=1e-5)
    for a, b in zip(eager.hidden_states, sdpa.hidden_states, strict=True):
        torch.testing.assert_close(b, a, rtol=1e-5, atol=1e-5)
    assert eager[0].std() > 0.1


@pytest.mark.parametrize("strategy", ["FSLF", "CFAS"])
def test_problem_types(strategy):
    """The classifier's loss follows ``config.problem_type`` (inferred from the labels when unset)."""
    inputs = clip_inputs(make_config(strategy))
    cases = [
        # (problem_type given, num_labels, labels, inferred type, reference loss)
        (None, 5, torch.tensor([0, 4, 2]), "single_label_classification", nn.functional.cross_entropy),
        ("single_label_classification", 5, torch.tensor([3, 1, 1]), None, nn.functional.cross_entropy),
        (
            None,
            5,
            torch.tensor([[1.0, 0, 1, 0, 0], [0, 0, 0, 0, 1], [1, 1, 0, 0, 1]]),
            "multi_label_classification",
            None,
        ),
        ("multi_label_classification", 3, torch.tensor([[0.0, 1, 1], [1, 0, 0], [0, 0, 0]]), None, None),
        (None, 1, torch.tensor([0.5, -1.0, 2.0]), "regression", None),
        ("regression", 1, torch.tensor([1.5, 0.0, -0.3]), None, None),
    ]
    bce, mse = nn.functional.binary_cross_entropy_with_logits, nn.functional.mse_loss
    for problem_type, num_labels, labels, inferred, reference in cases:
        model = make_model(
            MultiMAEDERForVideoClassification, strategy, num_labels=num_labels, problem_type=problem_type
        ).train()
        with warnings.catch_warnings():
            warnings.simplefilter("error")  # e.g. "Using a target size that is different to the input size"
            out = model(**inputs, labels=labels)
        final = problem_type or inferred
        assert model.config.problem_type == final
        if final == "single_label_classification":
            expected = reference(out.logits, labels)
        elif final == "multi_label_classification":
            expected = bce(out.logits, labels)
        else:
            expected = mse(out.logits.squeeze(-1), labels)
        torch.testing.assert_close(out.loss, expected, rtol=1e-6, atol=0, msg=str((problem_type, num_labels)))
        out.loss.backward()
        assert model.classifier.weight.grad.abs().sum() > 0


@strategies
def test_load_with_mismatched_shapes(tmp_path, strategy):
    """``ignore_mismatched_sizes=True`` re-initialises only the mismatched head, with ``_init_weights`` values."""
    model = make_model(MultiMAEDERForVideoClassification, strategy)
    model.save_pretrained(tmp_path)
    with pytest.raises(RuntimeError, match="ignore_mismatched_sizes"):
        MultiMAEDERForVideoClassification.from_pretrained(tmp_path, num_labels=3)
    for loader in (MultiMAEDERForVideoClassification, AutoModelForVideoClassification):
        new, info = loader.from_pretrained(
            tmp_path, num_labels=3, ignore_mismatched_sizes=True, output_loading_info=True
        )
        assert type(new) is MultiMAEDERForVideoClassification
        assert {key for key, *_ in info["mismatched_keys"]} == {"classifier.weight", "classifier.bias"}
        assert not info["missing_keys"] and not info["unexpected_keys"]
        assert new.classifier.weight.shape == (3, model.config.hidden_size) and new.config.num_labels == 3
        saved = load_file(tmp_path / "model.safetensors")
        for name, tensor in new.state_dict().items():
            if not name.startswith("classifier."):
                assert torch.equal(tensor, model.state_dict()[name]), name
        assert torch.equal(new.classifier.bias, torch.zeros(3))  # _init_weights, not leftovers or empty memory
        assert abs(new.classifier.weight.std().item() - new.config.initializer_range) < 0.5 * 0.02
        assert not torch.equal(new.classifier.weight, saved["classifier.weight"][:3])
        with torch.no_grad():
            assert new.eval()(**clip_inputs(new.config)).logits.shape == (BATCH, 3)
    # the bare encoder ignores the head entirely
    encoder, info = AutoModel.from_pretrained(tmp_path, output_loading_info=True)
    assert type(encoder) is MultiMAEDERModel and not info["missing_keys"] and not info["mismatched_keys"]


@both_classes
@strategies
def test_from_pretrained_dtype_bfloat16(tmp_path, cls, strategy):
    """``dtype=torch.bfloat16`` gives exactly the rounded weights, runs in bf16, and stays close to fp32 math on
    those same rounded weights: bf16 arithmetic costs up to about 3% of the output spread (max over elements), a
    tensor left out or a wrong cast about 100%."""
    model = make_model(cls, strategy)
    model.save_pretrained(tmp_path)
    loaded = cls.from_pretrained(tmp_path, dtype=torch.bfloat16).eval()
    assert loaded.dtype == torch.bfloat16 and loaded.config.dtype == torch.bfloat16
    for name, tensor in model.state_dict().items():
        assert torch.equal(loaded.state_dict()[name], tensor.to(torch.bfloat16)), name
    inputs = clip_inputs(model.config)
    reference_model = copy.deepcopy(loaded).float()  # fp32 arithmetic on the same bf16-rounded weights
    with torch.no_grad():
        got = loaded(**{k: v.to(torch.bfloat16) for k, v in inputs.items()})[0]
        reference = reference_model(**{k: v.to(torch.bfloat16).float() for k, v in inputs.items()})[0]
    assert got.dtype == torch.bfloat16
    spread = reference.std()
    assert spread > 0.1
    assert (got.float() - reference).abs().max() < 0.05 * spread
    # saved in bf16, dtype="auto" keeps it
    loaded.save_pretrained(tmp_path / "bf16")
    assert cls.from_pretrained(tmp_path / "bf16", dtype="auto").dtype == torch.bfloat16


# ---------------------------------------------------------------------------------------------------------------
# 1. transformers' own ModelTesterMixin, from the sdist of the installed version (when unpacked)

_PACKAGE = "_transformers_sdist_tests"


def _load_transformers_common_tests():
    """transformers' ``tests/test_modeling_common.py`` as a module, or ``(None, why not)``."""
    common = TRANSFORMERS_TESTS / "tests" / "test_modeling_common.py"
    if not common.is_file():
        return None, f"{common} not found; set ${ENV_VAR} or run from the repository root: {FETCH_COMMAND}"
    pkg_info = TRANSFORMERS_TESTS / "PKG-INFO"
    if pkg_info.is_file():
        version = re.search(r"^Version: (\S+)", pkg_info.read_text(encoding="utf-8"), re.M)
        if version and version.group(1) != transformers.__version__:
            return None, f"{TRANSFORMERS_TESTS} holds transformers {version.group(1)}, {transformers.__version__} runs"
    deps = TRANSFORMERS_TESTS / "deps"
    if deps.is_dir() and str(deps) not in sys.path:
        sys.path.append(str(deps))
    try:
        importlib.import_module("parameterized")
    except ImportError:
        return None, f"the `parameterized` package is missing (see {FETCH_COMMAND})"
    if f"{_PACKAGE}.test_modeling_common" not in sys.modules:
        package = types.ModuleType(_PACKAGE)
        package.__path__ = [str(common.parent)]
        sys.modules[_PACKAGE] = package
        # Imported relatively by test_modeling_common.py but not shipped in the sdist: no export / generate tests.
        for module, mixin in (
            ("exporters.test_export", "ExportTesterMixin"),
            ("generation.test_utils", "GenerationTesterMixin"),
        ):
            parent = f"{_PACKAGE}.{module.split('.')[0]}"
            sys.modules.setdefault(parent, types.ModuleType(parent))
            stub = types.ModuleType(f"{_PACKAGE}.{module}")
            setattr(stub, mixin, type(mixin, (), {}))
            sys.modules[stub.__name__] = stub
    try:
        with warnings.catch_warnings():  # its marks (flash_attn_test, ...) are registered in its own conftest
            warnings.simplefilter("ignore", pytest.PytestUnknownMarkWarning)
            common_tests = importlib.import_module(f"{_PACKAGE}.test_modeling_common")
    except Exception as error:  # an incompatible release: say why instead of failing collection
        return None, f"cannot import {common}: {error!r}"
    # The mixin recognises base models and heads by class name in transformers' own auto mappings, and silently
    # skips (passes) the training, problem-type and mismatched-size checks of classes it does not find there. Add
    # ours to the mixin module's private copies (transformers' mappings themselves stay untouched).
    for name, value in (
        ("MODEL_MAPPING_NAMES", MultiMAEDERModel.__name__),
        ("MODEL_FOR_VIDEO_CLASSIFICATION_MAPPING_NAMES", MultiMAEDERForVideoClassification.__name__),
        ("MODEL_FOR_IMAGE_CLASSIFICATION_MAPPING_NAMES", MultiMAEDERForVideoClassification.__name__),
        ("MODEL_FOR_PRETRAINING_MAPPING_NAMES", MultiMAEDERForPreTraining.__name__),
    ):
        setattr(common_tests, name, OrderedDict({**getattr(common_tests, name), MultiMAEDERConfig.model_type: value}))
    return common_tests, None


_COMMON_TESTS, _WHY_NOT = _load_transformers_common_tests()


class MultiMAEDERModelTester:
    """What ModelTesterMixin asks of a model tester, for the tiny MultiMAE-DER config."""

    def __init__(self, parent, strategy: str, batch_size: int = BATCH):
        self.parent = parent
        self.strategy = strategy
        self.batch_size = batch_size
        self.is_training = True
        self.num_labels = NUM_LABELS
        for key, value in TINY.items():
            setattr(self, key, value)
        self.num_channels = 3
        self.seq_length = SEQ_LENGTH
        self.num_masks = int(0.75 * SEQ_LENGTH)  # masked tubelets when a check passes bool_masked_pos

    def get_config(self) -> MultiMAEDERConfig:
        return make_config(self.strategy, attn_implementation="eager")

    def prepare_config_and_inputs_for_common(self):
        config = self.get_config()
        return config, clip_inputs(config, self.batch_size)


if _COMMON_TESTS is not None:

    class _MultiMAEDERMixinTests(_COMMON_TESTS.ModelTesterMixin):
        all_model_classes = tuple(CLASSES)
        strategy = "FSLF"
        test_resize_embeddings = False  # no token embeddings: the patch embedding is a Conv3d
        test_torch_exportable = False  # ExportTesterMixin is not in the sdist
        additional_model_inputs = ["audio_values"]  # inputs next to the main one that checks must keep

        def setUp(self):
            self.model_tester = MultiMAEDERModelTester(self, self.strategy)

        def test_model_get_set_embeddings(self):  # as transformers' VideoMAE tests: a Conv3d patch embedding
            config, _ = self.model_tester.prepare_config_and_inputs_for_common()
            for model_class in self.all_model_classes:
                model = model_class(config)
                self.assertIsInstance(model.get_input_embeddings(), nn.Module)
                self.assertIsNone(model.get_output_embeddings())

    # Not the single-modality baselines: several checks feed the main input (`pixel_values`), which `audio` lacks.
    for _strategy in ("FSLF", "RFAS", "CFAS"):
        _name = f"TestTransformersMixin{_strategy.upper()}"
        globals()[_name] = type(_name, (_MultiMAEDERMixinTests, unittest.TestCase), {"strategy": _strategy})
    del _strategy, _name

    class MultiMAEDERPreTrainingTester(MultiMAEDERModelTester):
        """The pre-training model's inputs: the clips and a fixed ``bool_masked_pos`` drawn as the model draws one
        (:func:`draw_mask`: per-modality ratios), as transformers' VideoMAE tests give VideoMAEForPreTraining one, so
        that outputs are deterministic. The encoder reads only the visible tubelets: that is its sequence length."""

        def get_config(self) -> MultiMAEDERConfig:
            return make_config(self.strategy, attn_implementation="eager", **PRETRAINING_DECODER)

        def prepare_config_and_inputs_for_common(self):
            config, inputs = super().prepare_config_and_inputs_for_common()
            mask = draw_mask(config, self.batch_size, torch.Generator().manual_seed(0))
            self.num_masks = int(mask[0].sum())
            self.seq_length = SEQ_LENGTH - self.num_masks  # what the encoder reads
            self.mask_length = SEQ_LENGTH  # the length of a mask the mixin builds itself (eager vs sdpa)
            return config, {**inputs, "bool_masked_pos": mask}

    class TestTransformersMixinPreTraining(_COMMON_TESTS.ModelTesterMixin, unittest.TestCase):
        all_model_classes = (MultiMAEDERForPreTraining,)
        strategy = "FSLF"  # pure video and pure audio tubelets: two mask ratios and both loss parts
        test_resize_embeddings = False  # no token embeddings: the patch embedding is a Conv3d
        test_torch_exportable = False  # ExportTesterMixin is not in the sdist
        # (not bool_masked_pos: the eager / sdpa check builds its own, for 7 clips)
        additional_model_inputs = ["audio_values"]

        def setUp(self):
            self.model_tester = MultiMAEDERPreTrainingTester(self, self.strategy)
            self.model_tester.prepare_config_and_inputs_for_common()  # sets the visible sequence length

        def test_model_get_set_embeddings(self):  # as transformers' VideoMAE tests: a Conv3d patch embedding
            config, _ = self.model_tester.prepare_config_and_inputs_for_common()
            model = MultiMAEDERForPreTraining(config)
            self.assertIsInstance(model.get_input_embeddings(), nn.Module)
            self.assertIsNone(model.get_output_embeddings())

        def test_model_outputs_equivalence(self):
            """The mixin's check, exactly (tuple and dict outputs equal, with and without hidden states and
            attentions), except that it formats its failure message by subtracting the outputs before comparing
            them, which raises on the bool ``bool_masked_pos`` output; here they are compared with ``torch.equal``."""
            config, inputs = self.model_tester.prepare_config_and_inputs_for_common()
            model = MultiMAEDERForPreTraining(config).eval()
            for extra in ({}, {"output_hidden_states": True}, {"output_attentions": True}):
                with torch.no_grad():
                    as_tuple = model(**inputs, return_dict=False, **extra)
                    as_dict = model(**inputs, return_dict=True, **extra)
                self.assertIsInstance(as_tuple, tuple)
                assert_same_values(as_tuple, as_dict.to_tuple(), f"outputs with {extra}")
                self.assertEqual(len(as_tuple), 5 + len(extra))  # loss, logits, both loss parts, the mask (+ extras)

else:

    @pytest.mark.skip(reason=_WHY_NOT)
    def test_transformers_model_tester_mixin():
        """Placeholder so the skip and its reason show up in the report."""
