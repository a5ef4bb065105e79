"""Helpers shared by the inference tests (pipeline, CLI, ONNX, Space): tiny saved models."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import torch


LABELS = ["angry", "happy", "neutral", "sad", "surprised"]
TINY = dict(
    image_size=32,
    patch_size=16,
    num_frames=4,
    hidden_size=32,
    num_hidden_layers=2,
    num_attention_heads=2,
    intermediate_size=64,
)


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


def save_tiny_model(folder: Path, strategy: str = "FSLF") -> Path:
    """model.save_pretrained + processor.save_pretrained, as a project checkpoint (with its code files)."""
    from mmder_hf import MultiMAEDERProcessor

    model = tiny_classifier(strategy)
    model.save_pretrained(folder)
    MultiMAEDERProcessor.from_model_config(model.config, audio_sample_rate=16000).save_pretrained(folder)
    return Path(folder)


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


def run_without_mmder_hf(script: str, *args, timeout: float = 300) -> str:
    """Run ``script`` in a fresh interpreter where ``import mmder_hf`` fails; return its stdout."""
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "PYTHONPATH": ""}
    result = subprocess.run(
        [sys.executable, "-c", BLOCK_MMDER_HF + script, *map(str, args)],
        capture_output=True,
        text=True,
        env=env,
        timeout=timeout,
    )
    assert result.returncode == 0, result.stderr[-3000:]
    return result.stdout
