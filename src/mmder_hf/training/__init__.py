"""Training MultiMAE-DER with the 🤗 `Trainer`: recipes, the trainer, the frozen-backbone feature cache, metrics."""

from .feature_cache import can_cache_features, compute_pooled_features
from .metrics import WAR_UAR_METRIC_PATH, WarUarMetrics, load_war_uar, save_confusion_matrix
from .recipes import MODEL_SIZES, RECIPES, Recipe, RecipeArguments, parse_config_overrides, recipe_defaults
from .trainer import MultiMAEDERTrainer, SoftTargetCrossEntropy, add_drop_path, layer_decay_parameter_groups, layer_id


__all__ = [
    "MODEL_SIZES",
    "RECIPES",
    "WAR_UAR_METRIC_PATH",
    "MultiMAEDERTrainer",
    "Recipe",
    "RecipeArguments",
    "SoftTargetCrossEntropy",
    "WarUarMetrics",
    "add_drop_path",
    "can_cache_features",
    "compute_pooled_features",
    "layer_decay_parameter_groups",
    "layer_id",
    "load_war_uar",
    "parse_config_overrides",
    "recipe_defaults",
    "save_confusion_matrix",
]
