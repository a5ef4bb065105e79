"""ONNX export of a MultiMAE-DER classifier, and a small onnxruntime runner.

The exported graph is the evaluation-mode model: ``(pixel_values, audio_values) -> logits``, with the fusion inside
the graph and a dynamic batch axis. Models whose fusion strategy reads one modality only (``video``, ``audio``,
``prefused``) take only that input.

RFAS draws a random frame order per clip; in evaluation mode the model draws it from a generator seeded with
``config.rfas_seed``, so clip ``i`` of a batch always gets the ``i``-th row of the same random table. The export
stores that table (``rfas_max_batch`` rows) as a constant of the graph, so onnxruntime reproduces the torch logits
exactly for batches of up to ``rfas_max_batch`` clips.

The label names and the input layout are written into the ONNX file's metadata (``metadata_props``): ``id2label``
(JSON), ``fusion_strategy``, ``input_names``, ``num_video_frames``, ``num_audio_frames``, ``image_size``.
"""

from __future__ import annotations

import copy
import importlib.util
import json
import logging
import os
import warnings
from pathlib import Path
from typing import Optional, Union

import numpy as np
import torch
from torch import nn

from .models.multimae_der.fusion import interleave, reorder


logger = logging.getLogger(__name__)

#: Rows of the RFAS permutation table stored in the graph: the largest batch an exported RFAS model accepts.
DEFAULT_RFAS_MAX_BATCH = 256
#: What export and onnxruntime need, and how to install it (the package is installed from its repository, not PyPI).
ONNX_EXTRA = "the ONNX extra (onnx, onnxscript, onnxruntime)"
ONNX_INSTALL = 'pip install -e ".[onnx]" in your mmder-hf clone'


def missing_onnx_packages(dynamo: bool = True, verify: bool = True) -> list[str]:
    """The packages of the ONNX extra that an export needs and this environment lacks (checked without importing
    them, so that a missing one is named up front rather than as "No module named ..." deep in the exporter)."""
    needed = ["onnx"] + (["onnxscript"] if dynamo else []) + (["onnxruntime"] if verify else [])
    return [name for name in needed if importlib.util.find_spec(name) is None]


def _require(names: list[str]) -> None:
    if names:
        raise ImportError(
            f"{', '.join(names)} not installed: ONNX export and inference need {ONNX_EXTRA}: {ONNX_INSTALL}"
        )


class _ExportableClassifier(nn.Module):
    """``(pixel_values?, audio_values?) -> logits`` of a MultiMAE-DER classifier, traceable by the ONNX exporter."""

    def __init__(self, model: nn.Module, rfas_max_batch: int = DEFAULT_RFAS_MAX_BATCH):
        super().__init__()
        config = model.config
        self.strategy = config.fusion_strategy
        self.input_names = [
            name
            for name, count in (("pixel_values", config.num_video_frames), ("audio_values", config.num_audio_frames))
            if count > 0
        ]
        self.model = model
        if self.strategy == "RFAS":
            # The same table the model draws in eval mode: CPU torch.rand fills row after row, so the first B rows
            # of a (max_batch, frames) draw equal a (B, frames) draw from the same seed.
            generator = torch.Generator().manual_seed(config.rfas_seed)
            keys = torch.rand(rfas_max_batch, config.num_frames, generator=generator)
            self.register_buffer("rfas_order", keys.argsort(dim=1), persistent=False)
            # The wrapped model (a private copy) reads the clip as already fused: the graph does the RFAS step.
            self.model = copy.deepcopy(model)
            self.model.config.fusion_strategy = "prefused"
            for module in self.model.modules():
                if getattr(module, "config", None) is not None:
                    module.config = self.model.config

    def forward(
        self, pixel_values: Optional[torch.Tensor] = None, audio_values: Optional[torch.Tensor] = None
    ) -> torch.Tensor:
        if self.strategy == "RFAS":
            clip = interleave(pixel_values, audio_values)
            return self.model(pixel_values=reorder(clip, self.rfas_order[: clip.shape[0]])).logits
        return self.model(pixel_values=pixel_values, audio_values=audio_values).logits


def export_onnx(
    model: nn.Module,
    output_path: Union[str, os.PathLike],
    batch_size: int = 2,
    opset_version: Optional[int] = None,
    dynamo: bool = True,
    rfas_max_batch: int = DEFAULT_RFAS_MAX_BATCH,
) -> Path:
    """Export a MultiMAE-DER classifier to ONNX, in evaluation mode, with a dynamic batch axis.

    Args:
        model (`MultiMAEDERForVideoClassification`):
            The classifier (in-library or loaded with ``trust_remote_code``); it is not modified.
        output_path (`str` or `os.PathLike`):
            Where to write the ``.onnx`` file (weights are embedded).
        batch_size (`int`, *optional*, defaults to 2):
            Batch size of the example inputs used for tracing; the exported batch axis is dynamic anyway.
        opset_version (`int`, *optional*):
            ONNX opset; the exporter's default when `None`.
        dynamo (`bool`, *optional*, defaults to `True`):
            Use the ``torch.export``-based exporter (needs ``onnxscript``); it handles every fusion strategy,
            including CFAS's antialiased resize, which the legacy TorchScript exporter (``dynamo=False``) cannot.
        rfas_max_batch (`int`, *optional*, defaults to 256):
            For RFAS models: the largest batch the exported graph accepts (rows of the stored permutation table).

    Returns:
        `Path`: ``output_path``.

    Example:

    ```python
    >>> from mmder_hf import MultiMAEDERForVideoClassification
    >>> from mmder_hf.onnx_export import export_onnx, OnnxClassifier
    >>> model = MultiMAEDERForVideoClassification.from_pretrained("path/to/model")  # doctest: +SKIP
    >>> export_onnx(model, "model.onnx")  # doctest: +SKIP
    >>> OnnxClassifier("model.onnx")(pixel_values=video, audio_values=audio)  # numpy logits  # doctest: +SKIP
    ```
    """
    _require(missing_onnx_packages(dynamo=dynamo, verify=False))
    output_path = Path(output_path)
    output_path.parent.mkdir(parents=True, exist_ok=True)
    was_training = model.training
    model.eval()
    try:
        wrapper = _ExportableClassifier(model, rfas_max_batch=rfas_max_batch).eval()
        config = model.config
        param = next(model.parameters())
        size = (config.num_channels, config.image_size, config.image_size)
        counts = {"pixel_values": config.num_video_frames, "audio_values": config.num_audio_frames}
        example = {
            name: torch.randn(batch_size, counts[name], *size, dtype=param.dtype, device=param.device)
            for name in wrapper.input_names
        }
        kwargs = {}
        if opset_version is not None:
            kwargs["opset_version"] = opset_version
        if dynamo:
            batch = torch.export.Dim("batch", min=1, max=rfas_max_batch if config.fusion_strategy == "RFAS" else 65536)
            kwargs["dynamic_shapes"] = {name: {0: batch} for name in wrapper.input_names}
        else:
            kwargs["dynamic_axes"] = {name: {0: "batch"} for name in [*wrapper.input_names, "logits"]}
        with torch.no_grad(), warnings.catch_warnings():
            # All inputs share the one batch axis; the exporter warns that it merges their names.
            warnings.filterwarnings("ignore", message=".*axis name.*will not be used.*")
            torch.onnx.export(
                wrapper,
                (),
                str(output_path),
                kwargs=example,
                input_names=wrapper.input_names,
                output_names=["logits"],
                dynamo=dynamo,
                external_data=False,
                verbose=False,
                **kwargs,
            )
        _write_metadata(output_path, model, wrapper.input_names)
    finally:
        model.train(was_training)
    logger.info("Exported %s (%s) to %s", type(model).__name__, model.config.fusion_strategy, output_path)
    return output_path


def _write_metadata(path: Path, model: nn.Module, input_names: list[str]) -> None:
    import onnx

    proto = onnx.load(str(path))
    config = model.config
    values = {
        "id2label": json.dumps({str(k): v for k, v in config.id2label.items()}),
        "fusion_strategy": config.fusion_strategy,
        "input_names": ",".join(input_names),
        "num_video_frames": str(config.num_video_frames),
        "num_audio_frames": str(config.num_audio_frames),
        "image_size": str(config.image_size),
    }
    kept = [p for p in proto.metadata_props if p.key not in values]
    del proto.metadata_props[:]
    proto.metadata_props.extend(kept)
    for key, value in values.items():
        entry = proto.metadata_props.add()
        entry.key, entry.value = key, value
    onnx.save(proto, str(path))


class OnnxClassifier:
    """Run an exported MultiMAE-DER classifier with onnxruntime.

    Args:
        path (`str` or `os.PathLike`): the ``.onnx`` file written by :func:`export_onnx`.
        providers (`list[str]`, *optional*): onnxruntime execution providers, CPU by default.
        intra_op_num_threads (`int`, *optional*): threads onnxruntime may use (its default when `None`).

    Attributes:
        id2label (`dict[int, str]`): label names stored in the file.
        input_names (`list[str]`): the graph's inputs (``pixel_values`` and/or ``audio_values``).
    """

    def __init__(
        self,
        path: Union[str, os.PathLike],
        providers: Optional[list[str]] = None,
        intra_op_num_threads: Optional[int] = None,
    ):
        _require([name for name in ("onnxruntime",) if importlib.util.find_spec(name) is None])
        import onnxruntime as ort

        options = ort.SessionOptions()
        if intra_op_num_threads is not None:
            options.intra_op_num_threads = intra_op_num_threads
        self.session = ort.InferenceSession(
            os.fspath(path), sess_options=options, providers=providers or ["CPUExecutionProvider"]
        )
        meta = self.session.get_modelmeta().custom_metadata_map
        self.id2label = {int(k): v for k, v in json.loads(meta.get("id2label", "{}")).items()}
        self.input_names = [i.name for i in self.session.get_inputs()]

    def __call__(
        self,
        pixel_values: Optional[Union[np.ndarray, torch.Tensor]] = None,
        audio_values: Optional[Union[np.ndarray, torch.Tensor]] = None,
    ) -> np.ndarray:
        """Logits ``(batch, num_labels)`` as a float32 numpy array."""
        given = {"pixel_values": pixel_values, "audio_values": audio_values}
        feeds = {}
        for name in self.input_names:
            value = given[name]
            if value is None:
                raise ValueError(f"This ONNX model needs {name}")
            if isinstance(value, torch.Tensor):
                value = value.detach().cpu().numpy()
            feeds[name] = np.ascontiguousarray(value, dtype=np.float32)
        return self.session.run(["logits"], feeds)[0]

    def predict(self, top_k: int = 5, **inputs) -> list[list[dict]]:
        """``[{"label", "score"}, ...]`` per clip, sorted by score (softmax over the logits)."""
        logits = self(**inputs)
        logits = logits - logits.max(axis=-1, keepdims=True)
        probs = np.exp(logits) / np.exp(logits).sum(axis=-1, keepdims=True)
        out = []
        for row in probs:
            order = np.argsort(-row)[: max(1, top_k)]
            out.append([{"label": self.id2label.get(int(i), str(int(i))), "score": float(row[i])} for i in order])
        return out


__all__ = [
    "DEFAULT_RFAS_MAX_BATCH",
    "ONNX_EXTRA",
    "ONNX_INSTALL",
    "OnnxClassifier",
    "export_onnx",
    "missing_onnx_packages",
]
