"""MultiMAE-DER for the Hugging Face ecosystem: audio-visual emotion recognition with one VideoMAE encoder.

Importing the package registers the model with transformers' auto classes (``AutoConfig``, ``AutoModel``,
``AutoModelForVideoClassification``, ``AutoModelForPreTraining``, ``AutoProcessor``, ``AutoVideoProcessor``,
``AutoFeatureExtractor``) and its pipeline, and marks the classes for ``register_for_auto_class``, so that
``save_pretrained`` writes the code files and ``auto_map`` that let anyone load a checkpoint with
``trust_remote_code=True`` without installing this package. The import itself is instant: names are imported when
first used (PEP 562), and the registration runs when transformers' auto classes are first imported (they import
torch themselves), when a model class is first used through ``mmder_hf``, or on ``mmder_hf.register()`` (see
``auto_registration``).

Layout: ``models/multimae_der/`` holds exactly what ships with every checkpoint; ``data/`` the corpora, folds,
caches and publishing; ``training/`` the runs (arguments, recipes, the run's life, the trainers, fine-tuning,
pre-training, cross-validation, the grid); ``cards/`` model cards.
"""

from typing import TYPE_CHECKING

from .auto_registration import ensure_registered, install
from .lazy import lazy_attributes


if TYPE_CHECKING:  # for type checkers and IDEs; at run time each name is imported when first used (PEP 562)
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
        register,  # noqa: F401 - mmder_hf.register(), not in __all__
    )


__version__ = "0.1.0"

#: Where each public name lives. Nothing heavy (torch, transformers' modeling, datasets, av, matplotlib, OpenCV) is
#: imported by ``import mmder_hf``: a name's module is imported when the name is first used, so ``mmder --help``
#: and the data helpers start at once. Registration with transformers' auto classes: see ``auto_registration``.
_DATA_NAMES = (
    "MultiMAEDERDataCollator",
    "get_fold",
    "get_folds",
    "load_emotion_dataset",
    "load_prefused_dataset",
    "make_synthetic_corpus",
    "preprocess_to_cache",
)
_MODEL_NAMES = (
    "FUSION_STRATEGIES",
    "MediaError",
    "MultiMAEDERConfig",
    "MultiMAEDERFeatureExtractor",
    "MultiMAEDERForPreTraining",
    "MultiMAEDERForVideoClassification",
    "MultiMAEDERModel",
    "MultiMAEDERPipeline",
    "MultiMAEDERPreTrainedModel",
    "MultiMAEDERProcessor",
    "MultiMAEDERVideoProcessor",
    "fuse",
    "register",
)
_LAZY = {**dict.fromkeys(_DATA_NAMES, ".data"), **dict.fromkeys(_MODEL_NAMES, ".models.multimae_der")}


def _registers(name: str, module_name: str) -> None:
    """Using the model's classes registers them with transformers (save_pretrained needs them marked)."""
    if name.startswith("MultiMAEDER") and module_name == ".models.multimae_der":
        ensure_registered()


__getattr__, __dir__ = lazy_attributes(__name__, _LAZY, globals(), on_import=_registers)


install()

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
