"""MultiMAE-DER for the Hugging Face ecosystem: audio-visual emotion recognition with one VideoMAE encoder.

Importing the package registers the model with transformers' auto classes (``AutoConfig``, ``AutoModel``,
``AutoModelForVideoClassification``, ``AutoModelForPreTraining``, ``AutoProcessor``, ``AutoVideoProcessor``,
``AutoFeatureExtractor``) and its pipeline, and marks the classes for ``register_for_auto_class``, so that
``save_pretrained`` writes the code files and ``auto_map`` that let anyone load a checkpoint with
``trust_remote_code=True`` without installing this package.

Layout: ``models/multimae_der/`` holds exactly what ships with every checkpoint; ``data/`` the corpora, folds,
caches and publishing; ``training/`` the runs (arguments, recipes, the run's life, the trainers, fine-tuning,
pre-training, cross-validation, the grid); ``cards/`` model cards.
"""

from .data import (
    MultiMAEDERDataCollator,
    get_fold,
    get_folds,
    load_emotion_dataset,
    load_prefused_dataset,
    make_synthetic_corpus,
    preprocess_to_cache,
)
from .models.multimae_der import (
    FUSION_STRATEGIES,
    MediaError,
    MultiMAEDERConfig,
    MultiMAEDERFeatureExtractor,
    MultiMAEDERForPreTraining,
    MultiMAEDERForVideoClassification,
    MultiMAEDERModel,
    MultiMAEDERPipeline,
    MultiMAEDERPreTrainedModel,
    MultiMAEDERProcessor,
    MultiMAEDERVideoProcessor,
    fuse,
    register,
)


__version__ = "0.1.0"

register()

# What a user calls. Helpers (``write_clip``, ``TASK``, ``add_remote_code``, ``split_for_rank``...) stay importable
# from their own modules.
__all__ = [
    "FUSION_STRATEGIES",
    "MediaError",
    "MultiMAEDERConfig",
    "MultiMAEDERDataCollator",
    "MultiMAEDERFeatureExtractor",
    "MultiMAEDERForPreTraining",
    "MultiMAEDERForVideoClassification",
    "MultiMAEDERModel",
    "MultiMAEDERPipeline",
    "MultiMAEDERPreTrainedModel",
    "MultiMAEDERProcessor",
    "MultiMAEDERVideoProcessor",
    "fuse",
    "get_fold",
    "get_folds",
    "load_emotion_dataset",
    "load_prefused_dataset",
    "make_synthetic_corpus",
    "preprocess_to_cache",
]
