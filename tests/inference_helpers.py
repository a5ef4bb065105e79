"""Helpers shared by the inference tests (pipeline, CLI, ONNX, Space): tiny saved models."""

from __future__ import annotations

import functools
import os
import subprocess
import sys
from importlib import metadata
from pathlib import Path
from typing import Optional

import torch

from mmder_hf.training import MODEL_SIZES


LABELS = ["angry", "happy", "neutral", "sad", "surprised"]
TINY = dict(MODEL_SIZES["tiny"])  # 32 px, patch 16, 4 frames, hidden 32, 2 layers


def tiny_classifier(strategy: str = "FSLF", seed: int = 0):
    """A tiny classifier whose outputs differ clearly between clips (scrambled weights, named labels)."""
    from mmder_hf import MultiMAEDERConfig, MultiMAEDERForVideoClassification

    torch.manual_seed(seed)
    config = MultiMAEDERConfig(
        fusion_strategy=strategy,
        num_labels=len(LABELS),
        id2label=dict(enumerate(LABELS)),
        label2id={label: i for i, label in enumerate(LABELS)},
        **TINY,
    )
    model = MultiMAEDERForVideoClassification(config).eval()
    g = torch.Generator().manual_seed(seed + 1)
    with torch.no_grad():
        for param in model.parameters():
            param.copy_(torch.randn(param.shape, generator=g) * 0.5)
    return model


def assert_inputs_identical(got: dict, expected) -> None:
    """Model inputs equal to the bit: same keys, shapes, dtypes and values (NaN face boxes where no face was found,
    in both)."""
    assert sorted(got) == sorted(expected)
    for key, value in expected.items():
        assert got[key].dtype == value.dtype and got[key].shape == value.shape, key
        assert torch.equal(torch.isnan(got[key]), torch.isnan(value)), key
        assert torch.equal(got[key].nan_to_num(0.0), value.nan_to_num(0.0)), key


def save_tiny_model(
    folder: Path, strategy: str = "FSLF", training_data: Optional[str] = None, **processor_settings
) -> Path:
    """model.save_pretrained + processor.save_pretrained, as a project checkpoint (with its code files).

    ``training_data`` is recorded in the config as the training scripts do (``"synthetic"``: the built-in corpus);
    ``processor_settings`` override the processor's (``face_crop=True``...)."""
    from mmder_hf import MultiMAEDERProcessor

    model = tiny_classifier(strategy)
    model.config.training_data = training_data
    model.save_pretrained(folder)
    settings = {"audio_sample_rate": 16000, **processor_settings}
    MultiMAEDERProcessor.from_model_config(model.config, **settings).save_pretrained(folder)
    return Path(folder)


def save_tiny_pretraining_model(folder: Path, strategy: str = "FSLF") -> Path:
    """A pre-training run's folder (MultiMAEDERForPreTraining, no classification head) with its processor."""
    from mmder_hf import MultiMAEDERConfig, MultiMAEDERForPreTraining, MultiMAEDERProcessor

    torch.manual_seed(0)
    decoder = dict(
        decoder_hidden_size=16,
        decoder_num_hidden_layers=1,
        decoder_num_attention_heads=2,
        decoder_intermediate_size=32,
    )
    model = MultiMAEDERForPreTraining(MultiMAEDERConfig(fusion_strategy=strategy, **TINY, **decoder))
    model.save_pretrained(folder)
    MultiMAEDERProcessor.from_model_config(model.config, audio_sample_rate=16000).save_pretrained(folder)
    return Path(folder)


def write_photo(path: Path) -> Path:
    """A 64 x 48 photo (PNG, JPEG... by extension), as a user might pass one instead of a video."""
    import numpy as np
    from PIL import Image

    pixels = np.random.default_rng(0).integers(0, 256, (48, 64, 3), dtype=np.uint8)
    Image.fromarray(pixels).save(path)
    return Path(path)


BLOCK_MMDER_HF = """
import importlib.abc, sys
class BlockMmderHf(importlib.abc.MetaPathFinder):
    def find_spec(self, name, path, target=None):
        if name == "mmder_hf" or name.startswith("mmder_hf."):
            raise ImportError("mmder_hf is not installed here")
sys.meta_path.insert(0, BlockMmderHf())
try:
    import mmder_hf
    raise SystemExit("mmder_hf is importable: the test would prove nothing")
except ImportError:
    pass
"""


#: What a model saved by this project needs at inference (README, "Inference"): these distributions and their own
#: requirements. Everything else installed here is hidden from the remote-code processes of the tests.
RUNTIME_DISTRIBUTIONS = ("transformers", "torch", "torchcodec", "torchaudio", "numpy")
#: This project's own dependencies and extras (and Pillow) that a saved model's code must never need: each must be
#: hidden (checked in the process), else a runtime package now requires it and the README's requirement is wrong.
NOT_RUNTIME = {
    "mmder_hf": "mmder-hf",
    "datasets": "datasets",
    "av": "av",
    "accelerate": "accelerate",
    "evaluate": "evaluate",
    "matplotlib": "matplotlib",
    "pandas": "pandas",
    "gradio": "gradio",
    "gradio_client": "gradio-client",
    "onnx": "onnx",
    "onnxruntime": "onnxruntime",
    "onnxscript": "onnxscript",
    "PIL": "pillow",
    "torchvision": "torchvision",
    "pytest": "pytest",
}


def _canonical(name: str) -> str:
    from packaging.utils import canonicalize_name

    return canonicalize_name(name)


def runtime_closure(roots=RUNTIME_DISTRIBUTIONS) -> set[str]:
    """Canonical names of ``roots`` and of everything they require (markers and requested extras honoured)."""
    from packaging.requirements import Requirement

    extras_of: dict[str, frozenset] = {}
    todo = [(root, frozenset()) for root in roots]
    while todo:
        name, extras = todo.pop()
        name = _canonical(name)
        if name in extras_of and extras <= extras_of[name]:
            continue
        try:
            dist = metadata.distribution(name)
        except metadata.PackageNotFoundError:
            continue  # required on another platform, or not installed: nothing to allow
        extras_of[name] = extras_of.get(name, frozenset()) | extras
        for line in dist.requires or ():
            requirement = Requirement(line)
            wanted = {"", *extras_of[name]}
            if requirement.marker is None or any(requirement.marker.evaluate({"extra": e}) for e in wanted):
                todo.append((requirement.name, frozenset(requirement.extras)))
    return set(extras_of)


def _top_level_names(dist: metadata.Distribution) -> set[str]:
    """Import names a distribution installs: ``top_level.txt`` and the first part of every installed file."""
    names = set((dist.read_text("top_level.txt") or "").split())
    for file in dist.files or ():
        first = file.parts[0]
        if first in ("..", "__pycache__") or first.endswith((".dist-info", ".egg-info", ".data", ".pth")):
            continue
        if len(file.parts) == 1 and not first.endswith((".py", ".so", ".pyd")):
            continue
        names.add(first.split(".")[0])
    return {name for name in names if name.isidentifier()}


@functools.cache
def hidden_packages() -> tuple[frozenset, frozenset]:
    """``(import names, distribution names)`` installed here that are not part of the runtime closure."""
    allowed = runtime_closure()
    allowed_names, other_names, other_dists = set(), set(NOT_RUNTIME), set()
    for dist in metadata.distributions():
        name = _canonical(dist.metadata["Name"])
        if name in allowed:
            allowed_names |= _top_level_names(dist)
        else:
            other_dists.add(name)
            other_names |= _top_level_names(dist)
    leaked = sorted(d for d in NOT_RUNTIME.values() if _canonical(d) in allowed)
    assert not leaked, f"{leaked} became requirements of {RUNTIME_DISTRIBUTIONS}: update the README and this list"
    hidden = other_names - allowed_names - set(sys.stdlib_module_names)
    return frozenset(hidden | set(NOT_RUNTIME)), frozenset(other_dists)


_RUNTIME_ONLY_PRELUDE = """
import importlib.abc, importlib.metadata, importlib.util, re, sys
_AT_START = set(sys.modules)  # what site's .pth files imported (an editable install's finder...)
_HIDDEN, _HIDDEN_DISTS, _NOT_RUNTIME = {hidden!r}, {hidden_dists!r}, {not_runtime!r}
class _RuntimeOnly(importlib.abc.MetaPathFinder):
    # Wraps each import-system finder: hidden packages are neither importable nor installed (find_spec is None,
    # importlib.metadata does not list them), as in an environment that holds only the runtime packages.
    def __init__(self, finder):
        self.finder = finder
    def find_spec(self, name, path=None, target=None):
        if name.partition(".")[0] in _HIDDEN or not hasattr(self.finder, "find_spec"):
            return None
        return self.finder.find_spec(name, path, target)
    def find_distributions(self, *args, **kwargs):
        found = getattr(self.finder, "find_distributions", None)
        for dist in found(*args, **kwargs) if found else ():
            if re.sub(r"[-_.]+", "-", dist.metadata["Name"] or "").lower() not in _HIDDEN_DISTS:
                yield dist
    def invalidate_caches(self):
        getattr(self.finder, "invalidate_caches", lambda: None)()
sys.meta_path[:] = [_RuntimeOnly(finder) for finder in sys.meta_path]
for _name, _dist in _NOT_RUNTIME.items():
    assert _name not in sys.modules and importlib.util.find_spec(_name) is None, _name + " is importable here"
    try:
        importlib.metadata.version(_dist)
    except importlib.metadata.PackageNotFoundError:
        pass
    else:
        raise SystemExit(_dist + " is installed here: the test would prove nothing")
try:
    import mmder_hf
    raise SystemExit("mmder_hf is importable: the test would prove nothing")
except ImportError:
    pass
"""

_RUNTIME_ONLY_EPILOGUE = """
_leaked = sorted(n for n in set(sys.modules) - _AT_START if n.partition(".")[0] in _HIDDEN)
assert not _leaked, "imported although hidden: " + ", ".join(_leaked)
"""


def runtime_only_prelude() -> str:
    """Code that, run first in a fresh interpreter, leaves importable only the runtime packages
    (`RUNTIME_DISTRIBUTIONS` and what they require), the standard library and folders on ``sys.path`` (the
    ``transformers_modules`` cache of remote code)."""
    hidden, hidden_dists = hidden_packages()
    return _RUNTIME_ONLY_PRELUDE.format(
        hidden=set(sorted(hidden)), hidden_dists=set(sorted(hidden_dists)), not_runtime=NOT_RUNTIME
    )


def run_without_mmder_hf(script: str, *args, timeout: float = 300, env=None, cwd=None) -> str:
    """Run ``script`` in a fresh interpreter that can import only what the README says a saved model needs
    (transformers, torch, torchcodec, torchaudio, numpy and their own requirements): ``mmder_hf``, ``datasets``,
    ``av``, ``accelerate``, ``PIL``, ``matplotlib``... are not installed there as far as the process can tell.
    ``args`` are its ``sys.argv[1:]``, ``env`` extra environment variables (``HF_MODULES_CACHE``...). Fails if the
    script fails or imports anything hidden; returns its stdout."""
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "PYTHONPATH": "", **(env or {})}
    code = runtime_only_prelude() + script + _RUNTIME_ONLY_EPILOGUE
    result = subprocess.run(
        [sys.executable, "-c", code, *map(str, args)],
        capture_output=True,
        text=True,
        env=env,
        cwd=cwd,
        timeout=timeout,
    )
    assert result.returncode == 0, result.stderr[-3000:]
    return result.stdout
