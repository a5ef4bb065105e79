"""Training recipes and helpers for MultiMAE-DER with the 🤗 `Trainer`.

* :data:`RECIPES`: documented presets (``paper``, ``finetune``, ``quick``) applied as parser defaults, so every
  command-line flag still overrides them (:func:`apply_recipe_defaults`).
* :class:`RecipeArguments`: the training choices `TrainingArguments` has no field for (frozen backbone, layer-wise
  learning-rate decay, drop path, mixup, flips, the feature-cache fast path).
* :func:`freeze_backbone`, :func:`layer_decay_parameter_groups`, :func:`add_drop_path`.
* :class:`MultiMAEDERTrainer`: a `Trainer` with layer-wise lr decay, mixup / flip augmentation and a
  model-card hook.
* Frozen-backbone fast path: :func:`can_cache_features`, :func:`compute_pooled_features` and
  :func:`feature_head_mode` (the encoder runs once per clip; the head trains on the cached features).
* Metrics: :class:`WarUarMetrics` (a ``compute_metrics`` built on the repository's `evaluate` module
  ``metrics/war_uar``) and :func:`save_confusion_matrix`.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import logging
import math
import os
import types
from dataclasses import dataclass, field
from typing import Any, Callable, Iterator, Optional, Sequence

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn
from transformers import Trainer
from transformers.modeling_outputs import ImageClassifierOutput


logger = logging.getLogger(__name__)

#: Folder of the `evaluate` metric module computing WAR, UAR, per-class recall and the confusion matrix.
WAR_UAR_METRIC_PATH = os.path.join(os.path.dirname(os.path.abspath(__file__)), "metrics", "war_uar")


# ----------------------------------------------------------------------------------------------------- recipes
@dataclass(frozen=True)
class Recipe:
    """A named set of defaults: ``training`` for `TrainingArguments`, ``recipe`` for :class:`RecipeArguments`."""

    name: str
    description: str
    training: dict = field(default_factory=dict)
    recipe: dict = field(default_factory=dict)


RECIPES: dict[str, Recipe] = {
    "paper": Recipe(
        "paper",
        "The published MultiMAE-DER protocol (authors' code): frozen VideoMAE encoder and a linear probe (mean "
        "pool -> LayerNorm -> Linear), AdamW with a constant lr of 1e-2, weight decay 0.05, cross-entropy, batch "
        "16, 100 epochs, no augmentation, the model after the last epoch evaluated. The frozen encoder runs once "
        "per clip (feature-cache fast path).",
        training={
            "learning_rate": 1e-2,
            "weight_decay": 0.05,
            "per_device_train_batch_size": 16,
            "per_device_eval_batch_size": 16,
            "num_train_epochs": 100,
            "lr_scheduler_type": "constant",
            "warmup_steps": 0,
            "optim": "adamw_torch",
            "label_smoothing_factor": 0.0,
            "eval_strategy": "no",
            "save_strategy": "epoch",
            "save_total_limit": 2,
            "logging_strategy": "epoch",
        },
        recipe={"freeze_backbone": True, "layer_decay": 1.0, "drop_path_rate": 0.0, "mixup_alpha": 0.0, "flip": False},
    ),
    "finetune": Recipe(
        "finetune",
        "Full fine-tuning as in MAE-DFER (the paper's reference): AdamW, lr 1e-3 x batch/256 (6.25e-5 at batch 16; "
        "scale it with the total batch), weight decay 0.05, layer-wise lr decay 0.75, drop path 0.1, label "
        "smoothing 0.1, 5% linear warmup then cosine decay, 100 epochs, horizontal flips of the face frames; mixup "
        "is an option (`--mixup_alpha 0.8`). Evaluated on the validation split after every epoch; the last "
        "epoch's model is kept (no selection on validation unless asked).",
        training={
            "learning_rate": 6.25e-5,
            "weight_decay": 0.05,
            "per_device_train_batch_size": 16,
            "per_device_eval_batch_size": 16,
            "num_train_epochs": 100,
            "lr_scheduler_type": "cosine",
            "warmup_steps": 0.05,
            "optim": "adamw_torch",
            "label_smoothing_factor": 0.1,
            "eval_strategy": "epoch",
            "save_strategy": "epoch",
            "save_total_limit": 2,
            "logging_strategy": "epoch",
        },
        recipe={"freeze_backbone": False, "layer_decay": 0.75, "drop_path_rate": 0.1, "mixup_alpha": 0.0, "flip": True},
    ),
    "quick": Recipe(
        "quick",
        "The built-in default for the synthetic corpus and a small randomly initialised model: full training "
        "from scratch on a CPU in a minute or two (AdamW lr 1e-3, weight decay 0.05, batch 16, 5% warmup then "
        "cosine, 15 epochs, evaluation every epoch).",
        training={
            "learning_rate": 1e-3,
            "weight_decay": 0.05,
            "per_device_train_batch_size": 16,
            "per_device_eval_batch_size": 32,
            "num_train_epochs": 15,
            "lr_scheduler_type": "cosine",
            "warmup_steps": 0.05,
            "optim": "adamw_torch",
            "label_smoothing_factor": 0.0,
            "eval_strategy": "epoch",
            "save_strategy": "epoch",
            "save_total_limit": 2,
            "logging_strategy": "epoch",
        },
        recipe={"freeze_backbone": False, "layer_decay": 1.0, "drop_path_rate": 0.0, "mixup_alpha": 0.0, "flip": False},
    ),
}


@dataclass
class RecipeArguments:
    """Training choices beyond `TrainingArguments`; a recipe sets their defaults, flags override them."""

    recipe: str = field(
        default="quick",
        metadata={
            "help": "Preset of defaults that any flag overrides: " + "; ".join(f"'{r.name}': {r.description}" for r in RECIPES.values()),
            "choices": list(RECIPES),
        },
    )  # fmt: skip
    freeze_backbone: bool = field(
        default=False, metadata={"help": "Freeze the VideoMAE encoder (run in eval mode); train fc_norm + classifier only."}
    )
    layer_decay: float = field(
        default=1.0,
        metadata={"help": "Layer-wise lr decay: layer l of L gets lr * layer_decay ** (L + 1 - l) (1.0: off)."},
    )
    drop_path_rate: float = field(
        default=0.0, metadata={"help": "Stochastic depth: largest drop-path rate, linear over the encoder layers."}
    )
    mixup_alpha: float = field(
        default=0.0, metadata={"help": "Mixup of training clips with Beta(alpha, alpha) weights (0: off)."}
    )
    flip: bool = field(default=False, metadata={"help": "Random horizontal flips of the face frames while training."})
    use_feature_cache: bool = field(
        default=True,
        metadata={
            "help": "With a frozen backbone and no augmentation, compute the encoder features once and train the "
            "head on them (same result as the plain loop, much faster)."
        },
    )

    def __post_init__(self):
        if self.recipe not in RECIPES:
            raise ValueError(f"Unknown recipe {self.recipe!r}; expected one of {list(RECIPES)}")

    @property
    def augments(self) -> bool:
        """Whether training inputs are randomly transformed (which rules out the feature cache)."""
        return self.mixup_alpha > 0 or self.flip


def _recipe_from_argv(argv: Sequence[str]) -> Optional[str]:
    pre = argparse.ArgumentParser(add_help=False)
    pre.add_argument("--recipe", default=None)
    known, _ = pre.parse_known_args(list(argv))
    return known.recipe


def apply_recipe_defaults(parser: argparse.ArgumentParser, argv: Sequence[str], default: str = "quick") -> Recipe:
    """Set ``parser``'s defaults to the recipe named by ``--recipe`` in ``argv`` (else ``default``).

    Flags given on the command line still win, since argparse only falls back to defaults for absent flags.
    """
    name = _recipe_from_argv(argv) or default
    if name not in RECIPES:
        raise ValueError(f"Unknown recipe {name!r}; expected one of {list(RECIPES)}")
    recipe = RECIPES[name]
    known = {action.dest for action in parser._actions}
    defaults = {k: v for k, v in {**recipe.training, **recipe.recipe, "recipe": name}.items() if k in known}
    parser.set_defaults(**defaults)
    return recipe


# ------------------------------------------------------------------------------------------- model sizes
#: Randomly initialised configurations for runs without a checkpoint (``--model_size``). ``small`` is the built-in
#: default: it learns the synthetic corpus on a CPU in a minute or two. ``base`` / ``large`` are VideoMAE-B / -L.
MODEL_SIZES: dict[str, dict] = {
    "tiny": dict(image_size=32, patch_size=16, num_frames=4, hidden_size=32, num_hidden_layers=2, num_attention_heads=2, intermediate_size=64),
    "small": dict(image_size=32, patch_size=16, num_frames=8, hidden_size=64, num_hidden_layers=2, num_attention_heads=4, intermediate_size=128),
    "base": dict(image_size=224, patch_size=16, num_frames=16, hidden_size=768, num_hidden_layers=12, num_attention_heads=12, intermediate_size=3072),
    "large": dict(image_size=224, patch_size=16, num_frames=16, hidden_size=1024, num_hidden_layers=24, num_attention_heads=16, intermediate_size=4096),
}  # fmt: skip


def parse_config_overrides(overrides: Optional[str]) -> dict[str, Any]:
    """``"hidden_size=128,num_hidden_layers=4,hidden_act=gelu"`` -> ``{"hidden_size": 128, ...}`` (JSON values)."""
    out: dict[str, Any] = {}
    for item in filter(None, (overrides or "").split(",")):
        key, _, value = item.partition("=")
        try:
            out[key.strip()] = json.loads(value)
        except json.JSONDecodeError:
            out[key.strip()] = value.strip()
    return out


def cache_processor_settings(num_video_frames: int, num_audio_frames: int) -> dict:
    """Processor ``fusion_strategy`` / ``num_frames`` that produce ``n`` frames of *both* modalities.

    The processor's output depends only on how many frames of each modality it returns, so one preprocessed
    cache of ``n`` video frames and ``n`` audio images serves every strategy (and both single-modality baselines)
    whose modalities use ``n`` frames: FSLF with ``num_frames=8``, ``video`` and ``audio`` with ``num_frames=4``.
    """
    n = max(num_video_frames, num_audio_frames)
    return {"fusion_strategy": "FSLF", "num_frames": 2 * n}


# ------------------------------------------------------------------------------------------ model surgery
def freeze_backbone(model: nn.Module) -> nn.Module:
    """Freeze ``model.videomae`` (no gradients) and keep it in eval mode even when ``model.train()`` is called.

    A frozen encoder then behaves the same in training and evaluation (no dropout, no drop path, fixed RFAS
    permutations), as in the original Keras code where a non-trainable layer runs in inference mode.
    """
    backbone = model.videomae
    for param in backbone.parameters():
        param.requires_grad_(False)

    def _always_eval(self, mode: bool = True):
        return nn.Module.train(self, False)

    backbone.train = types.MethodType(_always_eval, backbone)
    backbone.train(False)
    return model


def is_backbone_frozen(model: nn.Module) -> bool:
    """True when no encoder parameter requires gradients."""
    return not any(p.requires_grad for p in model.videomae.parameters())


def layer_id(name: str, num_layers: int) -> int:
    """Depth of parameter ``name`` for layer-wise lr decay: embeddings 0, encoder layer i -> i + 1, head L + 1."""
    if ".embeddings." in f".{name}":
        return 0
    marker = "encoder.layer."
    if marker in name:
        return int(name.split(marker, 1)[1].split(".", 1)[0]) + 1
    return num_layers + 1


def layer_decay_parameter_groups(
    model: nn.Module, learning_rate: float, weight_decay: float, layer_decay: float, decay_parameters: Sequence[str]
) -> list[dict]:
    """AdamW parameter groups with layer-wise lr decay (BEiT / MAE-DFER style) and the usual no-decay split.

    Group ``(depth, decay)`` gets ``lr = learning_rate * layer_decay ** (L + 1 - depth)``; biases and norms get no
    weight decay (``decay_parameters`` lists those that do, as `Trainer.get_decay_parameter_names` returns them).
    """
    num_layers = model.config.num_hidden_layers
    decay_parameters = set(decay_parameters)
    groups: dict[tuple[int, bool], dict] = {}
    for name, param in model.named_parameters():
        if not param.requires_grad:
            continue
        depth = layer_id(name, num_layers)
        decays = name in decay_parameters
        key = (depth, decays)
        if key not in groups:
            groups[key] = {
                "params": [],
                "names": [],
                "weight_decay": weight_decay if decays else 0.0,
                "lr": learning_rate * layer_decay ** (num_layers + 1 - depth),
            }
        groups[key]["params"].append(param)
        groups[key]["names"].append(name)
    return [groups[key] for key in sorted(groups)]


def _drop_path(x: torch.Tensor, rate: float) -> torch.Tensor:
    keep = 1.0 - rate
    mask = x.new_empty((x.shape[0],) + (1,) * (x.ndim - 1)).bernoulli_(keep)
    return x * mask / keep


def add_drop_path(model: nn.Module, drop_path_rate: float) -> list:
    """Add stochastic depth to every encoder layer (rate growing linearly to ``drop_path_rate``), with hooks.

    transformers' VideoMAE has no drop path; the hooks drop the attention branch and the MLP branch of each
    residual block per sample while the module is training, as timm's ``DropPath`` does. Returns the handles.
    """
    handles = []
    if drop_path_rate <= 0:
        return handles
    layers = model.videomae.encoder.layer
    rates = np.linspace(0, drop_path_rate, len(layers)).tolist()
    for layer, rate in zip(layers, rates):
        if rate <= 0:
            continue

        def attention_hook(module, args, output, rate=rate):
            return _drop_path(output, rate) if module.training else output

        def mlp_hook(module, args, output, rate=rate):
            # VideoMAEOutput adds its residual (args[1]) itself: drop only the branch.
            if not module.training:
                return output
            residual = args[1]
            return residual + _drop_path(output - residual, rate)

        handles.append(layer.attention.register_forward_hook(attention_hook))
        handles.append(layer.output.register_forward_hook(mlp_hook))
    return handles


# ------------------------------------------------------------------------------------------------- trainer
class MultiMAEDERTrainer(Trainer):
    """`Trainer` with layer-wise lr decay, mixup and face flips, and a model-card hook.

    Args:
        recipe_args (:class:`RecipeArguments`, *optional*): ``layer_decay``, ``mixup_alpha`` and ``flip`` are used.
        card_writer (`Callable[[str], Any]`, *optional*): called with the output folder instead of `Trainer`'s own
            card writer (``push_to_hub`` calls it before uploading), so the pushed README is this project's card.
        All other arguments are `Trainer`'s.
    """

    def __init__(self, *args, recipe_args: Optional[RecipeArguments] = None, card_writer: Optional[Callable] = None, **kwargs):
        self.recipe_args = recipe_args or RecipeArguments()
        self.card_writer = card_writer
        super().__init__(*args, **kwargs)

    def create_optimizer(self, model=None):
        if self.optimizer is None and self.recipe_args.layer_decay != 1.0:
            opt_model = self.model if model is None else model
            optimizer_cls, optimizer_kwargs = self.get_optimizer_cls_and_kwargs(self.args, opt_model)
            optimizer_kwargs.pop("lr", None)
            groups = layer_decay_parameter_groups(
                opt_model,
                self.args.learning_rate,
                self.args.weight_decay,
                self.recipe_args.layer_decay,
                self.get_decay_parameter_names(opt_model),
            )
            for group in groups:
                group.pop("names")
            self.optimizer = optimizer_cls(groups, **optimizer_kwargs)
            return self.optimizer
        return super().create_optimizer(model)

    def _augment(self, inputs: dict) -> dict:
        if self.recipe_args.flip and inputs.get("pixel_values") is not None:
            video = inputs["pixel_values"]
            flip = torch.rand(video.shape[0], device=video.device) < 0.5
            inputs = {**inputs, "pixel_values": torch.where(flip.view(-1, 1, 1, 1, 1), video.flip(-1), video)}
        return inputs

    def compute_loss(self, model, inputs, return_outputs=False, num_items_in_batch=None):
        if not model.training or not self.recipe_args.augments or "labels" not in inputs:
            return super().compute_loss(model, inputs, return_outputs=return_outputs, num_items_in_batch=num_items_in_batch)
        inputs = self._augment(dict(inputs))
        if self.recipe_args.mixup_alpha <= 0:
            return super().compute_loss(model, inputs, return_outputs=return_outputs, num_items_in_batch=num_items_in_batch)
        labels = inputs.pop("labels")
        lam = float(np.random.beta(self.recipe_args.mixup_alpha, self.recipe_args.mixup_alpha))
        perm = torch.randperm(labels.shape[0], device=labels.device)
        for key in ("pixel_values", "audio_values"):
            if inputs.get(key) is not None:
                inputs[key] = lam * inputs[key] + (1 - lam) * inputs[key][perm]
        outputs = model(**inputs)
        logits = outputs.logits.float()
        smoothing = self.args.label_smoothing_factor

        def cross_entropy(target):
            return F.cross_entropy(logits, target, reduction="sum", label_smoothing=smoothing)

        loss = lam * cross_entropy(labels) + (1 - lam) * cross_entropy(labels[perm])
        if num_items_in_batch is not None and self.model_accepts_loss_kwargs:
            loss = loss / num_items_in_batch
            if self.args.average_tokens_across_devices:
                loss = loss * self.accelerator.num_processes
        else:
            loss = loss / labels.numel()
        return (loss, outputs) if return_outputs else loss

    def create_model_card(self, **kwargs):
        if self.card_writer is None:
            return super().create_model_card(**kwargs)
        if self.is_world_process_zero():
            self.card_writer(self.args.output_dir)


# ------------------------------------------------------------------------------------------------- data
def fixed_shape_arrays(dataset, columns: Sequence[str] = ("pixel_values", "audio_values")):
    """Cast nested-list clip columns of a preprocessed dataset to fixed-shape ``Array4D`` and format it as numpy.

    Nested ``List`` columns are read back element by element by the datasets formatters (seconds per batch of
    small clips: datasets 5.2 retries a failing ``torchvision.io.VideoReader`` import for every number), while
    ``Array4D`` columns come back as whole arrays. The cast result is cached by ``datasets`` like any map.
    """
    import datasets

    features = dataset.features.copy()
    changed = False
    for column in columns:
        feature = features.get(column)
        if feature is None or isinstance(feature, datasets.Array4D) or len(dataset) == 0:
            continue
        shape = tuple(np.asarray(dataset.with_format(None)[0][column]).shape)
        if len(shape) != 4:
            continue
        features[column] = datasets.Array4D(shape=shape, dtype="float32")
        changed = True
    if changed:
        dataset = dataset.cast(features)
    return dataset.with_format("numpy", dtype=None)  # dtype=None: uint8 clips stay uint8 (not widened to int64)


# ------------------------------------------------------------------------------- frozen-backbone fast path
def can_cache_features(model: nn.Module, recipe_args: RecipeArguments) -> bool:
    """Whether the head can train on cached encoder features with exactly the plain loop's result.

    Needs a frozen encoder (:func:`freeze_backbone`: eval mode, so no dropout or drop path), inputs that are
    never augmented, and a deterministic fusion (RFAS draws permutations per batch position, so its features
    depend on how clips are batched).
    """
    return (
        recipe_args.use_feature_cache
        and is_backbone_frozen(model)
        and not recipe_args.augments
        and model.config.fusion_strategy != "RFAS"
    )


def _world() -> tuple[int, int]:
    if torch.distributed.is_available() and torch.distributed.is_initialized():
        return torch.distributed.get_rank(), torch.distributed.get_world_size()
    return 0, 1


def compute_pooled_features(
    model: nn.Module,
    dataset,
    data_collator: Callable,
    batch_size: int = 32,
    num_workers: int = 0,
    device: Optional[torch.device] = None,
    desc: str = "encoder features",
):
    """Run the encoder once over ``dataset`` and return a `datasets.Dataset` with ``features`` and ``labels``.

    ``features`` are :meth:`MultiMAEDERForVideoClassification.pooled_features` (mean-pooled tokens before
    ``fc_norm``), in float32, in the dataset's order. Under `torch.distributed` each rank encodes every
    ``world_size``-th clip and the pieces are gathered, so each clip is encoded once in all.
    """
    import datasets
    from torch.utils.data import DataLoader, Subset
    from tqdm.auto import tqdm

    device = device or next(model.parameters()).device
    rank, world_size = _world()
    indices = None
    if world_size > 1 and hasattr(dataset, "__len__"):
        indices = list(range(rank, len(dataset), world_size))
        dataset = Subset(dataset, indices)
    loader = DataLoader(dataset, batch_size=batch_size, shuffle=False, collate_fn=data_collator, num_workers=num_workers)
    was_training = model.training
    model.eval()
    features, labels = [], []
    with torch.inference_mode():
        for batch in tqdm(loader, desc=desc, disable=rank != 0):
            labels.append(torch.as_tensor(batch["labels"]).cpu())
            inputs = {k: batch[k].to(device) for k in ("pixel_values", "audio_values") if batch.get(k) is not None}
            features.append(model.pooled_features(**inputs).float().cpu())
    model.train(was_training)
    features = torch.cat(features) if features else torch.empty(0, model.config.hidden_size)
    labels = torch.cat(labels) if labels else torch.empty(0, dtype=torch.long)
    if indices is not None:
        gathered = [None] * world_size
        torch.distributed.all_gather_object(gathered, (indices, features, labels))
        order = torch.tensor([i for part in gathered for i in part[0]])
        features = torch.cat([part[1] for part in gathered])[order.argsort()]
        labels = torch.cat([part[2] for part in gathered])[order.argsort()]
    return datasets.Dataset.from_dict({"features": features.numpy(), "labels": labels.numpy()}).with_format("torch")


def _head_forward(self, features: Optional[torch.Tensor] = None, labels: Optional[torch.Tensor] = None, **kwargs):
    """The classification head on cached ``features``, computing exactly what ``forward`` computes after pooling."""
    logits = self.classifier(self.fc_norm(features))
    loss = None
    if labels is not None:
        loss = self.loss_function(labels, logits, self.config, **kwargs)
    return ImageClassifierOutput(loss=loss, logits=logits)


@contextlib.contextmanager
def feature_head_mode(model: nn.Module) -> Iterator[nn.Module]:
    """Temporarily make ``model.forward`` take cached ``features`` (see :func:`compute_pooled_features`).

    The model itself (parameters, config, code files) is unchanged, so the `Trainer` still saves, checkpoints,
    resumes and pushes the full model while only the head is computed.
    """
    model.forward = types.MethodType(_head_forward, model)
    try:
        yield model
    finally:
        del model.forward


# -------------------------------------------------------------------------------------------------- metrics
def load_war_uar():
    """The repository's `evaluate` module for WAR / UAR, loaded offline from its path."""
    import evaluate

    return evaluate.load(WAR_UAR_METRIC_PATH)


class WarUarMetrics:
    """``compute_metrics`` for `Trainer`: WAR, UAR and per-class recall (``recall_<label>``) as scalars.

    The full result of the last call (with ``confusion_matrix`` and ``per_class_recall``) stays in
    :attr:`last`, for :func:`save_confusion_matrix`.

    Args:
        label_names (`Sequence[str]`): class names in index order.
    """

    def __init__(self, label_names: Sequence[str]):
        self.label_names = list(label_names)
        self.metric = load_war_uar()
        self.last: Optional[dict] = None

    def __call__(self, eval_pred) -> dict[str, float]:
        logits = eval_pred.predictions[0] if isinstance(eval_pred.predictions, tuple) else eval_pred.predictions
        predictions = np.asarray(logits).argmax(-1)
        result = self.metric.compute(
            predictions=predictions, references=np.asarray(eval_pred.label_ids), num_labels=len(self.label_names)
        )
        self.last = result
        metrics = {"war": result["war"], "uar": result["uar"]}
        for name, recall in zip(self.label_names, result["per_class_recall"]):
            if not math.isnan(recall):
                metrics[f"recall_{name}"] = recall
        return metrics


def save_confusion_matrix(
    matrix: Sequence[Sequence[int]], label_names: Sequence[str], path: str, title: Optional[str] = None
) -> str:
    """Draw a confusion matrix (rows: true labels, columns: predictions) as a PNG; also writes ``<path>.json``.

    Cells are coloured by row-normalised recall and annotated with counts.
    """
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    counts = np.asarray(matrix, dtype=np.int64)
    rows = counts.sum(1, keepdims=True)
    recall = np.divide(counts, np.maximum(rows, 1))
    n = len(label_names)
    fig, ax = plt.subplots(figsize=(1.2 + 0.7 * n, 1.0 + 0.6 * n), dpi=100)
    ax.imshow(recall, cmap="Blues", vmin=0, vmax=1)
    ax.set_xticks(range(n), label_names, rotation=45, ha="right")
    ax.set_yticks(range(n), label_names)
    ax.set_xlabel("predicted")
    ax.set_ylabel("true")
    for i in range(n):
        for j in range(n):
            ax.text(j, i, str(counts[i, j]), ha="center", va="center", color="white" if recall[i, j] > 0.5 else "black", fontsize=8)
    if title:
        ax.set_title(title, fontsize=10)
    fig.tight_layout()
    os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)
    fig.savefig(path)
    plt.close(fig)
    with open(os.path.splitext(path)[0] + ".json", "w") as f:
        json.dump({"labels": list(label_names), "confusion_matrix": counts.tolist()}, f, indent=1)
    return path


__all__ = [
    "MODEL_SIZES",
    "RECIPES",
    "WAR_UAR_METRIC_PATH",
    "MultiMAEDERTrainer",
    "Recipe",
    "RecipeArguments",
    "WarUarMetrics",
    "add_drop_path",
    "apply_recipe_defaults",
    "cache_processor_settings",
    "can_cache_features",
    "compute_pooled_features",
    "feature_head_mode",
    "fixed_shape_arrays",
    "freeze_backbone",
    "is_backbone_frozen",
    "layer_decay_parameter_groups",
    "layer_id",
    "load_war_uar",
    "parse_config_overrides",
    "save_confusion_matrix",
]
