"""Training recipes of both kinds: documented presets of defaults that any flag overrides; the random model sizes.

* :data:`RECIPES`: the fine-tuning recipes ``paper``, ``finetune`` and ``quick``; :data:`PRETRAINING_RECIPES`: the
  pre-training recipes ``mae_dfer`` and ``quick``. Each is a :class:`Recipe`: `TrainingArguments` defaults plus, for
  fine-tuning, `RecipeArguments` and data defaults.
* :data:`MODEL_SIZES` / :data:`DECODER_SIZES`: randomly initialised configurations for runs without a checkpoint.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Literal


#: What every run does unless told otherwise: media columns reach the collator, nothing is reported anywhere, and
#: a run trains and then reports its validation loss or metrics (a fine-tuning run its test metrics too).
RUN_DEFAULTS: dict[str, Any] = {"remove_unused_columns": False, "report_to": "none", "do_train": True, "do_eval": True}


@dataclass(frozen=True)
class Recipe:
    """A named set of defaults: ``training`` for `TrainingArguments`, ``recipe`` for `RecipeArguments`, ``data`` for
    the data flags (`DataArguments`); ``kind`` says which script it is for (``finetune`` or ``pretrain``)."""

    name: str
    description: str
    training: dict = field(default_factory=dict)
    recipe: dict = field(default_factory=dict)
    data: dict = field(default_factory=dict)
    kind: Literal["finetune", "pretrain"] = "finetune"

    def defaults(self) -> dict[str, Any]:
        """Every default a run of this recipe starts from (:data:`RUN_DEFAULTS` included), as flag name -> value."""
        run = {**RUN_DEFAULTS, "do_predict": True} if self.kind == "finetune" else dict(RUN_DEFAULTS)
        return {**run, **self.training, **self.recipe, **self.data, "recipe": self.name}


#: Fine-tuning recipes (``examples/finetune.py --recipe``).
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


#: Pre-training recipes (``examples/pretrain.py --recipe``): `TrainingArguments` defaults that any flag overrides.
PRETRAINING_RECIPES: dict[str, Recipe] = {
    # MAE-DFER on VoxCeleb2 (scripts/voxceleb2): AdamW (0.9, 0.95), lr 3e-4 at a total batch of 64, weight decay
    # 0.05, 5 warm-up epochs of 100 (5%), cosine; scale the lr with the total batch.
    "mae_dfer": Recipe(
        "mae_dfer",
        "MAE-DFER's VoxCeleb2 recipe: AdamW (0.9, 0.95), lr 3e-4 at a total batch of 64, weight decay 0.05, 100 "
        "epochs, 5% warm-up then cosine",
        training={
            "learning_rate": 3e-4,
            "adam_beta2": 0.95,
            "weight_decay": 0.05,
            "per_device_train_batch_size": 32,
            "per_device_eval_batch_size": 32,
            "num_train_epochs": 100,
            "lr_scheduler_type": "cosine",
            "warmup_steps": 0.05,
            "eval_strategy": "epoch",
            "save_strategy": "epoch",
            "save_total_limit": 2,
            "logging_strategy": "steps",
            "logging_steps": 50,
        },
        kind="pretrain",
    ),
    # A small random model on the synthetic corpus, on a CPU in a few minutes: the held-out loss halves in 60 epochs
    # (tests/test_pretraining_run.py), the face pixels catching up with the audio pictures after about 30.
    "quick": Recipe(
        "quick",
        "a small random model on the synthetic corpus: lr 2e-3, batch 16, 60 epochs",
        training={
            "learning_rate": 2e-3,
            "adam_beta2": 0.95,
            "weight_decay": 0.05,
            "per_device_train_batch_size": 16,
            "per_device_eval_batch_size": 32,
            "num_train_epochs": 60,
            "lr_scheduler_type": "cosine",
            "warmup_steps": 0.05,
            "eval_strategy": "epoch",
            "save_strategy": "epoch",
            "save_total_limit": 2,
            "logging_strategy": "epoch",
        },
        kind="pretrain",
    ),
}


def get_recipe(name: str, recipes: dict[str, Recipe] = RECIPES) -> Recipe:
    """The recipe called ``name`` among ``recipes`` (default: the fine-tuning ones); an unknown name is a one-line
    error naming the choices."""
    if name not in recipes:
        kind = "pre-training recipe" if next(iter(recipes.values())).kind == "pretrain" else "recipe"
        raise ValueError(f"Unknown {kind} {name!r}; expected one of {list(recipes)}")
    return recipes[name]


def recipe_defaults(name: str) -> dict[str, Any]:
    """Every default fine-tuning recipe ``name`` sets (`TrainingArguments`, `RecipeArguments` and data fields,
    ``recipe`` too; not :data:`RUN_DEFAULTS`)."""
    recipe = get_recipe(name)
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
    "PRETRAINING_RECIPES",
    "RECIPES",
    "RUN_DEFAULTS",
    "Recipe",
    "get_recipe",
    "recipe_defaults",
]
