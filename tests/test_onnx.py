"""ONNX export: onnxruntime gives the torch logits (within 1e-4) and top-1 on real test clips; the file's metadata,
inputs and the runner's scores (softmax of the logits, sorted, named)."""

from __future__ import annotations

import json
import sys

import numpy as np
import pytest
import torch


pytest.importorskip("onnxruntime")
pytest.importorskip("onnxscript")

from inference_helpers import LABELS, tiny_classifier  # noqa: E402

from mmder_hf.models.multimae_der.processing_multimae_der import MultiMAEDERProcessor  # noqa: E402
from mmder_hf.onnx_export import DEFAULT_RFAS_MAX_BATCH, OnnxClassifier, export_onnx  # noqa: E402


@pytest.fixture(scope="module")
def clips(make_clip):
    return [
        str(make_clip("onnx_a", num_frames=20, fps=10.0, sample_rate=16000, channels=1)),
        str(make_clip("onnx_b", num_frames=30, fps=10.0, sample_rate=16000, channels=2)),
        str(make_clip("onnx_c", num_frames=15, fps=15.0, sample_rate=44100, channels=1)),
    ]


@pytest.fixture(scope="module")
def cfas(tmp_path_factory):
    """A CFAS model (its antialiased resize needs the default, dynamo exporter) exported while in training mode:
    (model, path, what export_onnx returned, mode after)."""
    model = tiny_classifier("CFAS").train()
    path = tmp_path_factory.mktemp("onnx_cfas") / "model.onnx"
    returned = export_onnx(model, path)
    return model, path, returned, model.training


@pytest.fixture(scope="module")
def rfas(tmp_path_factory):
    model = tiny_classifier("RFAS")
    path = tmp_path_factory.mktemp("onnx_rfas") / "rfas.onnx"
    export_onnx(model, path)
    return model, path


@pytest.fixture(scope="module")
def audio_only(tmp_path_factory):
    """Exported into folders that do not exist yet (export makes them)."""
    model = tiny_classifier("audio")
    path = tmp_path_factory.mktemp("onnx_audio") / "new" / "folder" / "audio.onnx"
    export_onnx(model, path, opset_version=18)
    return model, path


def torch_logits(model, **inputs) -> np.ndarray:
    with torch.no_grad():
        return model.eval()(**inputs).logits.numpy()


def check_against_torch(model, onnx_path, clips):
    processor = MultiMAEDERProcessor.from_model_config(model.config)
    inputs = processor(videos=clips, return_tensors="pt")
    reference = torch_logits(model, **inputs)
    runner = OnnxClassifier(onnx_path)
    logits = runner(**inputs)
    assert logits.dtype == np.float32
    assert logits.shape == reference.shape == (len(clips), len(LABELS))
    assert np.abs(logits - reference).max() < 1e-4
    assert (logits.argmax(-1) == reference.argmax(-1)).all()
    single = runner(**{k: v[:1] for k, v in inputs.items()})  # dynamic batch axis
    assert np.abs(single - reference[:1]).max() < 1e-4
    numpy_inputs = runner(**{k: v.numpy().astype(np.float64) for k, v in inputs.items()})  # numpy in, any float
    assert np.abs(numpy_inputs - reference).max() < 1e-4
    assert runner.id2label == dict(enumerate(LABELS))
    assert runner.predict(**inputs)[0][0]["label"] == LABELS[int(reference[0].argmax())]


def test_export_matches_torch_on_test_clips(cfas, clips):
    model, path, returned, training_after = cfas
    assert returned == path  # the written file's path
    assert training_after  # the model is put back in training mode
    assert sorted(p.name for p in path.parent.iterdir()) == ["model.onnx"]  # weights embedded: one file
    check_against_torch(model, path, clips)


def test_metadata_names_labels_inputs_and_layout(cfas, audio_only):
    import onnx

    for model, path in (cfas[:2], audio_only):
        meta = {p.key: p.value for p in onnx.load(str(path)).metadata_props}
        config = model.config
        expected_inputs = (["pixel_values"] if config.num_video_frames else []) + (
            ["audio_values"] if config.num_audio_frames else []
        )
        assert meta == {
            "id2label": json.dumps({str(i): label for i, label in enumerate(LABELS)}),
            "fusion_strategy": config.fusion_strategy,
            "input_names": ",".join(expected_inputs),
            "num_video_frames": str(config.num_video_frames),
            "num_audio_frames": str(config.num_audio_frames),
            "image_size": "32",
        }
        assert OnnxClassifier(path).input_names == expected_inputs
    assert cfas[0].config.num_video_frames == 4 and cfas[0].config.num_audio_frames == 4  # CFAS: both, side by side
    assert audio_only[0].config.num_video_frames == 0  # so the audio model takes audio_values only


def test_single_modality_export_takes_one_input(audio_only, clips):
    import onnx

    model, path = audio_only
    opsets = {o.domain: o.version for o in onnx.load(str(path)).opset_import}
    assert opsets[""] == 18  # the opset asked for (the exporter defaults to 20 here)
    processor = MultiMAEDERProcessor.from_model_config(model.config)
    inputs = processor(videos=clips, return_tensors="pt")
    assert list(inputs) == ["audio_values"]
    runner = OnnxClassifier(path, intra_op_num_threads=1)
    reference = torch_logits(model, **inputs)
    assert np.abs(runner(**inputs) - reference).max() < 1e-4
    with pytest.raises(ValueError, match="This ONNX model needs audio_values"):
        runner(pixel_values=torch.zeros(1, 4, 3, 32, 32))


def test_rfas_export_reproduces_the_eval_permutations(rfas, clips):
    model, path = rfas
    assert model.config.fusion_strategy == "RFAS" and not model.training  # the model itself is untouched
    check_against_torch(model, path, clips)


def test_rfas_export_takes_batches_up_to_the_stored_table(rfas):
    model, path = rfas
    assert DEFAULT_RFAS_MAX_BATCH == 256  # documented default
    generator = torch.Generator().manual_seed(3)
    config = model.config
    inputs = {
        "pixel_values": torch.randn(256, config.num_video_frames, 3, 32, 32, generator=generator),
        "audio_values": torch.randn(256, config.num_audio_frames, 3, 32, 32, generator=generator),
    }
    logits = OnnxClassifier(path)(**inputs)
    assert np.abs(logits - torch_logits(model, **inputs)).max() < 1e-4


def test_runner_uses_the_cpu_provider_unless_told(cfas, monkeypatch):
    import onnxruntime as ort

    seen = []
    real = ort.InferenceSession

    def spy(path, sess_options=None, providers=None, **kwargs):
        seen.append((providers, sess_options.intra_op_num_threads))
        return real(path, sess_options=sess_options, providers=providers, **kwargs)

    monkeypatch.setattr(ort, "InferenceSession", spy)
    OnnxClassifier(cfas[1])
    OnnxClassifier(cfas[1], providers=["CPUExecutionProvider"], intra_op_num_threads=2)
    assert seen == [(["CPUExecutionProvider"], 0), (["CPUExecutionProvider"], 2)]


def test_predict_is_the_sorted_softmax_of_the_torch_logits(cfas):
    model, path = cfas[:2]
    generator = torch.Generator().manual_seed(1)
    config = model.config
    inputs = {
        "pixel_values": 3 * torch.randn(3, config.num_video_frames, 3, 32, 32, generator=generator),
        "audio_values": 3 * torch.randn(3, config.num_audio_frames, 3, 32, 32, generator=generator),
    }
    logits = torch_logits(model, **inputs).astype(np.float64)
    # softmax by hand, per clip
    probs = [[np.exp(v) / sum(np.exp(w) for w in row) for v in row] for row in logits]
    runner = OnnxClassifier(path)
    full = runner.predict(top_k=len(LABELS), **inputs)
    assert len(full) == 3
    for row, out in zip(probs, full):
        order = sorted(range(len(LABELS)), key=lambda i: -row[i])
        assert [p["label"] for p in out] == [LABELS[i] for i in order]
        assert [p["score"] for p in out] == pytest.approx([row[i] for i in order], abs=1e-5)
        assert sum(p["score"] for p in out) == pytest.approx(1.0, abs=1e-5)
        assert all(isinstance(p["score"], float) for p in out)
    top2 = runner.predict(top_k=2, **inputs)
    assert [[p["label"] for p in out] for out in top2] == [[p["label"] for p in out[:2]] for out in full]
    assert [len(out) for out in runner.predict(top_k=1, **inputs)] == [1, 1, 1]
    assert [len(out) for out in runner.predict(top_k=0, **inputs)] == [1, 1, 1]  # at least one label
    assert [len(out) for out in runner.predict(**inputs)] == [5, 5, 5]  # default top 5


def test_predict_names_unknown_indices_by_number(cfas):
    runner = OnnxClassifier(cfas[1])
    runner.id2label = {0: "angry"}  # a file without some names
    config = cfas[0].config
    inputs = {
        "pixel_values": torch.zeros(1, config.num_video_frames, 3, 32, 32),
        "audio_values": torch.zeros(1, config.num_audio_frames, 3, 32, 32),
    }
    labels = {p["label"] for p in runner.predict(top_k=5, **inputs)[0]}
    assert labels == {"angry", "1", "2", "3", "4"}


@pytest.mark.slow
@pytest.mark.parametrize("strategy", ["FSLF", "video"])
def test_other_strategies_export(tmp_path, clips, strategy):
    model = tiny_classifier(strategy)
    export_onnx(model, tmp_path / "m.onnx")
    check_against_torch(model, tmp_path / "m.onnx", clips)


@pytest.mark.parametrize("package", ["onnxscript", "onnx"])
def test_export_without_the_onnx_extra_names_it(package, tmp_path, monkeypatch):
    """Checked before any tracing: what is missing and how to install it, not "No module named ..." from inside."""
    monkeypatch.setitem(sys.modules, package, None)  # as if not installed
    with pytest.raises(ImportError) as info:
        export_onnx(tiny_classifier("FSLF"), tmp_path / "m.onnx")
    assert str(info.value) == (
        f"{package} not installed: ONNX export and inference need the ONNX extra (onnx, onnxscript, onnxruntime): "
        'pip install -e ".[onnx]" in your mmder-hf clone'
    )
    assert not (tmp_path / "m.onnx").exists()


def test_the_runner_without_onnxruntime_names_the_extra(cfas, monkeypatch):
    monkeypatch.setitem(sys.modules, "onnxruntime", None)
    with pytest.raises(ImportError, match=r'^onnxruntime not installed: .*pip install -e "\.\[onnx\]"'):
        OnnxClassifier(cfas[1])
