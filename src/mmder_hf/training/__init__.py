"""Training MultiMAE-DER with the 🤗 `Trainer`, one room per part of a run.

* ``arguments``: the argument dataclasses of every script and the one recipe-aware parser;
* ``recipes``: the recipes of both kinds (one `Recipe` type) and the random model sizes;
* ``run``: the life of a run that fine-tuning and pre-training share (setup, refuse / reuse / resume, the record of
  its settings, the hyperparameter table, the processor, split trimming);
* ``trainers``: both `Trainer` subclasses, with one model-card hook;
* ``finetune`` / ``pretraining`` (+ ``pretraining_data``): each kind of run's own work, and the run itself;
* ``cross_validation`` / ``grid``: every fold, and every strategy of the paper's table;
* ``pictures``, ``metrics``, ``feature_cache``: reconstruction pictures, WAR / UAR, the frozen-backbone fast path;
* ``lora``: LoRA adapters through peft (``--lora_r``), the merged result and the adapter beside it.
"""

from typing import TYPE_CHECKING

from ..lazy import lazy_attributes


if TYPE_CHECKING:  # for type checkers and IDEs; at run time each name is imported when first used (PEP 562)
    from .arguments import (
        CrossValidationArguments,
        DataArguments,
        GridArguments,
        ModelArguments,
        PretrainingArguments,
        RecipeArguments,
        parse_args,
        parse_cross_validation_args,
        parse_grid_args,
        parse_pretraining_args,
    )
    from .cross_validation import cross_validate
    from .feature_cache import can_cache_features, compute_pooled_features
    from .finetune import run_finetuning
    from .grid import compare_strategies
    from .lora import LoraArguments, apply_lora, save_merged_and_adapter
    from .metrics import WAR_UAR_METRIC_PATH, WarUarMetrics, load_war_uar, save_confusion_matrix
    from .pretraining import run_pretraining
    from .recipes import MODEL_SIZES, PRETRAINING_RECIPES, RECIPES, Recipe, recipe_defaults
    from .trainers import (
        MultiMAEDERPreTrainer,
        MultiMAEDERTrainer,
        SoftTargetCrossEntropy,
        add_drop_path,
        layer_decay_parameter_groups,
        layer_id,
    )

#: The module of each public name. Importing this package imports none of them, so one of its modules
#: (``arguments``, ``recipes``...) does not pay for the trainers, peft and the rest.
_LAZY = {
    **dict.fromkeys(
        (
            "CrossValidationArguments",
            "DataArguments",
            "GridArguments",
            "ModelArguments",
            "PretrainingArguments",
            "RecipeArguments",
            "parse_args",
            "parse_cross_validation_args",
            "parse_grid_args",
            "parse_pretraining_args",
        ),
        ".arguments",
    ),
    **dict.fromkeys(("cross_validate",), ".cross_validation"),
    **dict.fromkeys(("can_cache_features", "compute_pooled_features"), ".feature_cache"),
    **dict.fromkeys(("run_finetuning",), ".finetune"),
    **dict.fromkeys(("compare_strategies",), ".grid"),
    **dict.fromkeys(("LoraArguments", "apply_lora", "save_merged_and_adapter"), ".lora"),
    **dict.fromkeys(("WAR_UAR_METRIC_PATH", "WarUarMetrics", "load_war_uar", "save_confusion_matrix"), ".metrics"),
    **dict.fromkeys(("run_pretraining",), ".pretraining"),
    **dict.fromkeys(("MODEL_SIZES", "PRETRAINING_RECIPES", "RECIPES", "Recipe", "recipe_defaults"), ".recipes"),
    **dict.fromkeys(
        (
            "MultiMAEDERPreTrainer",
            "MultiMAEDERTrainer",
            "SoftTargetCrossEntropy",
            "add_drop_path",
            "layer_decay_parameter_groups",
            "layer_id",
        ),
        ".trainers",
    ),
}


__getattr__, __dir__ = lazy_attributes(__name__, _LAZY, globals())


__all__ = [
    "MODEL_SIZES",
    "PRETRAINING_RECIPES",
    "RECIPES",
    "WAR_UAR_METRIC_PATH",
    "CrossValidationArguments",
    "DataArguments",
    "GridArguments",
    "LoraArguments",
    "ModelArguments",
    "MultiMAEDERPreTrainer",
    "MultiMAEDERTrainer",
    "PretrainingArguments",
    "Recipe",
    "RecipeArguments",
    "SoftTargetCrossEntropy",
    "WarUarMetrics",
    "add_drop_path",
    "apply_lora",
    "can_cache_features",
    "compare_strategies",
    "compute_pooled_features",
    "cross_validate",
    "layer_decay_parameter_groups",
    "layer_id",
    "load_war_uar",
    "parse_args",
    "parse_cross_validation_args",
    "parse_grid_args",
    "parse_pretraining_args",
    "recipe_defaults",
    "run_finetuning",
    "run_pretraining",
    "save_confusion_matrix",
    "save_merged_and_adapter",
]
