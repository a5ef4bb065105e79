"""The frozen-backbone feature cache: each clip's features are the model's pooled encoder output, in order.

Fast: a tiny random model and a few random clips; the expected features are computed here clip by clip from the
encoder's last hidden state (mean over tokens), independently of the cache's batching.
"""

import os
import subprocess
import sys
import textwrap
from pathlib import Path
from types import SimpleNamespace

import datasets
import pytest
import torch

from mmder_hf import MultiMAEDERConfig, MultiMAEDERForVideoClassification
from mmder_hf.training import MODEL_SIZES, RecipeArguments, can_cache_features, compute_pooled_features, feature_cache


def _model(strategy="FSLF"):
    torch.manual_seed(0)
    config = MultiMAEDERConfig(fusion_strategy=strategy, num_labels=3, **MODEL_SIZES["tiny"])
    return MultiMAEDERForVideoClassification(config).freeze_backbone()


@pytest.fixture(scope="module")
def model():
    return _model()


def _rows(n, seed=0):
    g = torch.Generator().manual_seed(seed)
    return [
        {
            "pixel_values": torch.randn(2, 3, 32, 32, generator=g),
            "audio_values": torch.randn(2, 3, 32, 32, generator=g),
            "labels": (7 * i + 1) % 3,
        }
        for i in range(n)
    ]


def _collate(rows):
    return {
        "pixel_values": torch.stack([r["pixel_values"] for r in rows]),
        "audio_values": torch.stack([r["audio_values"] for r in rows]),
        "labels": torch.tensor([r["labels"] for r in rows]),
    }


def _expected(model, rows):
    """Each clip alone through the encoder: mean of its last hidden state over the tokens."""
    with torch.no_grad():
        return torch.cat(
            [
                model.videomae(pixel_values=r["pixel_values"][None], audio_values=r["audio_values"][None])
                .last_hidden_state.mean(1)
                .float()
                for r in rows
            ]
        )


def test_cached_features_are_the_models_pooled_output_in_order(model, capsys, monkeypatch):
    monkeypatch.setattr(sys.stderr, "isatty", lambda: True)  # a terminal: the one place a bar is drawn
    rows = _rows(7)
    model.train()  # the cache runs the encoder in eval mode and gives the model back as it found it
    cached = compute_pooled_features(model, rows, _collate, batch_size=3)
    assert model.training and model.classifier.training
    assert isinstance(cached, datasets.Dataset) and cached.column_names == ["features", "labels"]
    features, labels = cached[:]["features"], cached[:]["labels"]
    assert features.shape == (7, model.config.hidden_size) and features.dtype == torch.float32
    assert torch.allclose(features, _expected(model, rows), atol=1e-5)
    assert labels.tolist() == [r["labels"] for r in rows] and labels.dtype == torch.int64
    # the head on the cached features gives the full model's logits
    model.eval()
    with torch.no_grad():
        full = model(**{k: v for k, v in _collate(rows).items() if k != "labels"}).logits
        head = model(features=features).logits
    assert torch.allclose(head, full, atol=1e-5)
    assert "encoder features" in capsys.readouterr().err  # progress is shown on rank 0, on a terminal
    monkeypatch.setattr(sys.stderr, "isatty", lambda: False)  # a log file: no bar redraws in it
    compute_pooled_features(model, rows, _collate, batch_size=3)
    assert "encoder features" not in capsys.readouterr().err


def test_the_cache_runs_the_encoder_in_eval_mode_and_restores_the_mode():
    """A model that is not frozen, with dropout: its cached features are still the eval-mode (dropout-free) ones."""
    torch.manual_seed(0)
    config = MultiMAEDERConfig(num_labels=3, hidden_dropout_prob=0.5, **MODEL_SIZES["tiny"])
    model = MultiMAEDERForVideoClassification(config)
    rows = _rows(4, seed=1)
    model.eval()
    expected = _expected(model, rows)
    seen = []
    hook = model.videomae.register_forward_pre_hook(lambda m, a: seen.append(m.training))
    try:
        model.train()
        cached = compute_pooled_features(model, rows, _collate, batch_size=4, device=torch.device("cpu"))
        assert model.training and model.videomae.training  # given back in train mode
        model.eval()
        compute_pooled_features(model, rows, _collate, batch_size=4, desc="probe")
        assert not model.training
    finally:
        hook.remove()
    assert seen == [False, False]
    assert torch.allclose(cached[:]["features"], expected, atol=1e-5)


def test_an_empty_dataset_gives_empty_columns(model):
    cached = compute_pooled_features(model, [], _collate)
    assert len(cached) == 0 and cached.column_names == ["features", "labels"]


def test_each_rank_encodes_its_share_and_the_pieces_are_gathered_in_order(model, monkeypatch):
    """Rank 1 of 2 encodes clips 1, 3, 5; rank 0's pieces (0, 2, 4, 6) arrive by accelerate's gather_object."""
    rows = _rows(7, seed=2)
    expected = _expected(model, rows)
    encoded = []
    original = model.pooled_features

    def recording(**inputs):
        encoded.append(inputs["pixel_values"].clone())
        return original(**inputs)

    monkeypatch.setattr(model, "pooled_features", recording)
    gathered_calls = []

    def gather_object(obj):  # each process gives a list; gather_object concatenates them in rank order
        gathered_calls.append(obj)
        rank0 = ([0, 2, 4, 6], expected[[0, 2, 4, 6]], torch.tensor([rows[i]["labels"] for i in (0, 2, 4, 6)]))
        return [rank0, *obj]

    monkeypatch.setattr(feature_cache, "PartialState", lambda: SimpleNamespace(process_index=1, num_processes=2))
    monkeypatch.setattr(feature_cache, "gather_object", gather_object)
    cached = compute_pooled_features(model, rows, _collate, batch_size=2)
    clips = torch.cat(encoded)
    assert torch.equal(clips, torch.stack([rows[i]["pixel_values"] for i in (1, 3, 5)]))  # only its share
    [(indices, features, labels)] = gathered_calls[0]
    assert indices == [1, 3, 5] and labels.tolist() == [rows[i]["labels"] for i in (1, 3, 5)]
    assert torch.allclose(features, expected[[1, 3, 5]], atol=1e-5)
    assert torch.allclose(cached[:]["features"], expected, atol=1e-5)  # the whole dataset, in its order
    assert cached[:]["labels"].tolist() == [r["labels"] for r in rows]


TWO_RANKS = textwrap.dedent(
    """
    import sys
    import torch
    from accelerate import PartialState

    sys.path.insert(0, sys.argv[2])
    import test_feature_cache as t
    from mmder_hf.training import compute_pooled_features

    state = PartialState(cpu=True)  # as TrainingArguments(use_cpu=True) sets it up
    model, rows, encoded = t._model(), t._rows(7, seed=2), []
    original = model.pooled_features

    def recording(**inputs):
        for clip in inputs["pixel_values"]:
            encoded.extend(i for i, row in enumerate(rows) if torch.equal(row["pixel_values"], clip))
        return original(**inputs)

    model.pooled_features = recording
    cached = compute_pooled_features(model, rows, t._collate, batch_size=2)
    out = {"world": (state.process_index, state.num_processes), "encoded": encoded, **cached[:]}
    torch.save(out, f"{sys.argv[1]}/rank{state.process_index}.pt")
    """
)


@pytest.mark.slow
def test_two_gloo_processes_each_encode_their_share_and_both_get_every_clip(model, tmp_path, free_port):
    """Under ``accelerate launch`` (two CPU processes over gloo) rank r encodes clips r, r + 2, ...; both ranks end
    with every clip's features, in the dataset's order, as one process computes them."""
    root = Path(__file__).resolve().parent
    launcher = [sys.executable, "-m", "accelerate.commands.launch", "--config_file"]
    launcher += [str(root.parent / "examples" / "accelerate_configs" / "cpu_2proc.yaml")]
    launcher += ["--main_process_port", str(free_port), "--no_python", sys.executable, "-c", TWO_RANKS]
    env = {**os.environ, "GLOO_SOCKET_IFNAME": "lo", "HF_HUB_OFFLINE": "1", "OMP_NUM_THREADS": "1"}
    done = subprocess.run(
        [*launcher, str(tmp_path), str(root)], capture_output=True, text=True, env=env, timeout=600, cwd=tmp_path
    )
    assert done.returncode == 0, done.stderr[-6000:]
    rows = _rows(7, seed=2)
    expected = _expected(model, rows)
    for rank in (0, 1):
        out = torch.load(tmp_path / f"rank{rank}.pt")
        assert out["world"] == (rank, 2) and out["encoded"] == list(range(rank, 7, 2)), rank  # its share only
        assert torch.allclose(out["features"], expected, atol=1e-5), rank  # every clip, in order
        assert out["labels"].tolist() == [r["labels"] for r in rows], rank


def test_one_process_encodes_every_clip_and_gathers_nothing(model, monkeypatch):
    """Not launched on several processes (accelerate's ``PartialState``: one): nothing to split or gather."""

    def gather_object(obj):
        raise AssertionError("gathered in a one-process run")

    monkeypatch.setattr(feature_cache, "gather_object", gather_object)
    rows = _rows(3, seed=3)
    cached = compute_pooled_features(model, rows, _collate, batch_size=2)
    assert torch.allclose(cached[:]["features"], _expected(model, rows), atol=1e-5)


def test_the_cache_is_offered_only_when_it_gives_the_plain_result():
    frozen = _model()
    assert can_cache_features(frozen, RecipeArguments(freeze_backbone=True)) is True
    assert not can_cache_features(frozen, RecipeArguments(freeze_backbone=True, use_feature_cache=False))
    assert not can_cache_features(frozen, RecipeArguments(freeze_backbone=True, flip=True))
    assert not can_cache_features(_model("RFAS"), RecipeArguments(freeze_backbone=True))
    trainable = _model()
    trainable.videomae.embeddings.patch_embeddings.projection.weight.requires_grad_(True)  # one encoder weight
    assert not can_cache_features(trainable, RecipeArguments(freeze_backbone=True))


def test_clips_go_to_the_models_device_unless_another_is_given():
    """A stand-in model on the ``meta`` device records where its inputs are (no real accelerator needed)."""

    class OnDevice(torch.nn.Module):
        def __init__(self):
            super().__init__()
            self.weight = torch.nn.Parameter(torch.empty(1, device="meta"))
            self.seen = []

        def pooled_features(self, pixel_values, audio_values):
            self.seen.append((pixel_values.device.type, audio_values.device.type))
            return torch.ones(pixel_values.shape[0], 2)

    model = OnDevice()
    cached = compute_pooled_features(model, _rows(3), _collate, batch_size=2)
    assert model.seen == [("meta", "meta")] * 2 and cached[:]["features"].tolist() == [[1.0, 1.0]] * 3
    model.seen.clear()
    compute_pooled_features(model, _rows(3), _collate, batch_size=3, device=torch.device("cpu"))
    assert model.seen == [("cpu", "cpu")]
