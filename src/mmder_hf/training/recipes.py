"""Training recipes: documented presets of defaults that any flag overrides, and the random model sizes.

* :data:`RECIPES`: ``paper``, ``finetune`` and ``quick``, each a set of `TrainingArguments` defaults plus
  :class:`RecipeArguments` defaults (:func:`recipe_defaults`).
* :class:`RecipeArguments`: the training choices `TrainingArguments` has no field for (frozen backbone, layer-wise
  learning-rate decay, drop path, mixup, flips, the feature-cache fast path).
* :data:`MODEL_SIZES`: randomly initialised configurations for runs without a checkpoint.
"""

from __future__ import annotations

import difflib
import json
from dataclasses import dataclass, field
from typing import Any, Iterable, Optional


@dataclass(frozen=True)
class Recipe:
    """A named set of defaults: ``training`` for `TrainingArguments`, ``recipe`` for :class:`RecipeArguments`,
    ``data`` for the data flags (``DataArguments`` of ``training.finetune``)."""

    name: str
    description: str
    training: dict = field(default_factory=dict)
    recipe: dict = field(default_factory=dict)
    data: dict = field(default_factory=dict)


RECIPES: dict[str, Recipe] = {
    "paper": Recipe(
        "paper",
        "The published MultiMAE-DER protocol (authors' code): frozen VideoMAE encoder and a linear probe (mean "
        "pool -> LayerNorm -> Linear), AdamW with a constant lr of 1e-2, weight decay 0.05, cross-entropy, batch "
        "16, 100 epochs, no augmentation, the model after the last epoch evaluated. The frozen encoder runs once "
        "per clip (feature-cache fast path). Whole frames, as published (no face cropping).",
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
        "epoch's model is kept (no selection on validation unless asked). Frames are cropped to the tracked face "
        "(`--face_crop`, as HiCMAE and MAE-DFER feed face crops) on real corpora.",
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
        recipe={
            "freeze_backbone": False,
            "layer_decay": 0.75,
            "drop_path_rate": 0.1,
            "mixup_alpha": 0.0,
            "flip": True,
        },
        data={"face_crop": True},
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
        recipe={
            "freeze_backbone": False,
            "layer_decay": 1.0,
            "drop_path_rate": 0.0,
            "mixup_alpha": 0.0,
            "flip": False,
        },
    ),
}


@dataclass
class RecipeArguments:
    """Training choices beyond `TrainingArguments`; a recipe sets their defaults, flags override them."""

    recipe: str = field(
        default="quick",
        metadata={
            "help": "Preset of defaults that any flag overrides: "
            # argparse %-formats help texts: the descriptions' "5%" must reach it as "5%%"
            + "; ".join(f"'{r.name}': {r.description}" for r in RECIPES.values()).replace("%", "%%"),
            "choices": list(RECIPES),
        },
    )
    freeze_backbone: bool = field(
        default=False,
        metadata={"help": "Freeze the VideoMAE encoder (run in eval mode); train fc_norm + classifier only."},
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


def recipe_defaults(name: str) -> dict[str, Any]:
    """Every default recipe ``name`` sets (`TrainingArguments`, :class:`RecipeArguments` and data fields, ``recipe``
    too)."""
    if name not in RECIPES:
        raise ValueError(f"Unknown recipe {name!r}; expected one of {list(RECIPES)}")
    recipe = RECIPES[name]
    return {**recipe.training, **recipe.recipe, **recipe.data, "recipe": name}


# ------------------------------------------------------------------------------------------- model sizes
#: Randomly initialised configurations for runs without a checkpoint (``--model_size``). ``small`` is the built-in
#: default: it learns the synthetic corpus on a CPU in a minute or two. ``base`` / ``large`` are VideoMAE-B / -L.
MODEL_SIZES: dict[str, dict] = {
    "tiny": dict(
        image_size=32,
        patch_size=16,
        num_frames=4,
        hidden_size=32,
        num_hidden_layers=2,
        num_attention_heads=2,
        intermediate_size=64,
    ),
    "small": dict(
        image_size=32,
        patch_size=16,
        num_frames=8,
        hidden_size=64,
        num_hidden_layers=2,
        num_attention_heads=4,
        intermediate_size=128,
    ),
    "base": dict(
        image_size=224,
        patch_size=16,
        num_frames=16,
        hidden_size=768,
        num_hidden_layers=12,
        num_attention_heads=12,
        intermediate_size=3072,
    ),
    "large": dict(
        image_size=224,
        patch_size=16,
        num_frames=16,
        hidden_size=1024,
        num_hidden_layers=24,
        num_attention_heads=16,
        intermediate_size=4096,
    ),
}


def parse_config_overrides(overrides: Optional[str], known: Optional[Iterable[str]] = None) -> dict[str, Any]:
    """``"hidden_size=128,num_hidden_layers=4,hidden_act=gelu"`` -> ``{"hidden_size": 128, ...}`` (JSON values).

    Raises:
        `ValueError`: an item without ``=``, or a key outside ``known`` (a typo would otherwise add a junk config
        field silently); the message names the key and the closest known ones.
    """
    out: dict[str, Any] = {}
    known = set(known) if known is not None else None
    for item in filter(None, (overrides or "").split(",")):
        key, sep, value = item.partition("=")
        key = key.strip()
        if not sep or not key:
            raise ValueError(f"--config_overrides: {item!r} is not key=value")
        if known is not None and key not in known:
            close = difflib.get_close_matches(key, sorted(known), n=3)
            hint = f"; did you mean {', '.join(close)}?" if close else ""
            raise ValueError(f"--config_overrides: {key!r} is not a MultiMAEDERConfig field{hint}")
        try:
            out[key] = json.loads(value)
        except json.JSONDecodeError:
            out[key] = value.strip()
    return out


#: Decoders of the random models (``--model_size``): VideoMAE's for base (384 wide, 4 layers) and large (512, 4);
#: narrow and shallow for the CPU-sized ones.
DECODER_SIZES: dict[str, dict] = {
    "tiny": dict(
        decoder_hidden_size=32,
        decoder_num_hidden_layers=1,
        decoder_num_attention_heads=2,
        decoder_intermediate_size=64,
    ),
    "small": dict(
        decoder_hidden_size=64,
        decoder_num_hidden_layers=1,
        decoder_num_attention_heads=4,
        decoder_intermediate_size=128,
    ),
    "base": dict(
        decoder_hidden_size=384,
        decoder_num_hidden_layers=4,
        decoder_num_attention_heads=6,
        decoder_intermediate_size=1536,
    ),
    "large": dict(
        decoder_hidden_size=512,
        decoder_num_hidden_layers=4,
        decoder_num_attention_heads=8,
        decoder_intermediate_size=2048,
    ),
}


__all__ = [
    "DECODER_SIZES",
    "MODEL_SIZES",
    "RECIPES",
    "Recipe",
    "RecipeArguments",
    "parse_config_overrides",
    "recipe_defaults",
]
