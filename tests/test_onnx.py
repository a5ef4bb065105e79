"""ONNX export: onnxruntime gives the torch logits (within 1e-4) and top-1 on real test clips."""

from __future__ import annotations

import numpy as np
import pytest
import torch


pytest.importorskip("onnxruntime")
pytest.importorskip("onnxscript")

from inference_helpers import LABELS, save_tiny_model, tiny_classifier  # noqa: E402

from mmder_hf.cli import main  # noqa: E402
from mmder_hf.models.multimae_der.processing_multimae_der import MultiMAEDERProcessor  # noqa: E402
from mmder_hf.onnx_export import OnnxClassifier, export_onnx  # noqa: E402


@pytest.fixture(scope="module")
def clips(make_clip):
    return [
        str(make_clip("onnx_a", num_frames=20, fps=10.0, sample_rate=16000, channels=1)),
        str(make_clip("onnx_b", num_frames=30, fps=10.0, sample_rate=16000, channels=2)),
        str(make_clip("onnx_c", num_frames=15, fps=15.0, sample_rate=44100, channels=1)),
    ]


def check_against_torch(model, onnx_path, clips):
    processor = MultiMAEDERProcessor.from_model_config(model.config)
    inputs = processor(videos=clips, return_tensors="pt")
    with torch.no_grad():
        reference = model(**inputs).logits.numpy()
    runner = OnnxClassifier(onnx_path)
    logits = runner(**inputs)
    assert logits.shape == reference.shape == (len(clips), len(LABELS))
    assert np.abs(logits - reference).max() < 1e-4
    assert (logits.argmax(-1) == reference.argmax(-1)).all()
    single = runner(**{k: v[:1] for k, v in inputs.items()})  # dynamic batch axis
    assert np.abs(single - reference[:1]).max() < 1e-4
    assert runner.id2label == dict(enumerate(LABELS))
    assert runner.predict(**inputs)[0][0]["label"] == LABELS[int(reference[0].argmax())]


def test_cli_export_matches_torch_on_test_clips(tmp_path, clips, capsys):
    model_dir = save_tiny_model(tmp_path / "model", strategy="FSLF")
    out = tmp_path / "model.onnx"
    assert main(["export", "--model", str(model_dir), "--format", "onnx", str(out)]) == 0
    assert "same top-1: True" in capsys.readouterr().err
    from transformers import AutoModelForVideoClassification

    check_against_torch(AutoModelForVideoClassification.from_pretrained(model_dir).eval(), out, clips)


def test_rfas_export_reproduces_the_eval_permutations(tmp_path, clips):
    model = tiny_classifier("RFAS")
    export_onnx(model, tmp_path / "rfas.onnx")
    assert model.config.fusion_strategy == "RFAS" and not model.training  # the model itself is untouched
    check_against_torch(model, tmp_path / "rfas.onnx", clips)


@pytest.mark.slow
@pytest.mark.parametrize("strategy", ["CFAS", "audio"])
def test_other_strategies_export(tmp_path, clips, strategy):
    model = tiny_classifier(strategy)
    export_onnx(model, tmp_path / "m.onnx")
    check_against_torch(model, tmp_path / "m.onnx", clips)
