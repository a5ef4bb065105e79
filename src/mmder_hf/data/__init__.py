"""Audio-visual emotion corpora for MultiMAE-DER: parsers, folds, builders, loading, publishing, synthetic data."""

from typing import TYPE_CHECKING

from ..lazy import lazy_attributes


if TYPE_CHECKING:  # for type checkers and IDEs; at run time each name is imported when first used (PEP 562)
    from .bad_data import BadDataError, BadDataReport
    from .builders import CremaDBuilder, IemocapBuilder, RavdessBuilder
    from .collate import MultiMAEDERDataCollator
    from .corpora import LABEL_SETS, UnknownFileNameError, get_label_set
    from .folds import Fold, export_folds, get_fold, get_folds
    from .loading import load_emotion_dataset, load_prefused_dataset, preprocess_to_cache, split_for_rank
    from .synthetic import make_synthetic_corpus

#: The module of each public name. Importing this package imports none of them, so ``mmder_hf.data.corpora``
#: (file names and label sets) does not pay for ``datasets``, torch or the media decoders.
_LAZY = {
    **dict.fromkeys(("BadDataError", "BadDataReport"), ".bad_data"),
    **dict.fromkeys(("CremaDBuilder", "IemocapBuilder", "RavdessBuilder"), ".builders"),
    **dict.fromkeys(("MultiMAEDERDataCollator",), ".collate"),
    **dict.fromkeys(("LABEL_SETS", "UnknownFileNameError", "get_label_set"), ".corpora"),
    **dict.fromkeys(("Fold", "export_folds", "get_fold", "get_folds"), ".folds"),
    **dict.fromkeys(
        ("load_emotion_dataset", "load_prefused_dataset", "preprocess_to_cache", "split_for_rank"), ".loading"
    ),
    **dict.fromkeys(("make_synthetic_corpus",), ".synthetic"),
}


__getattr__, __dir__ = lazy_attributes(__name__, _LAZY, globals())


__all__ = [
    "BadDataError",
    "BadDataReport",
    "CremaDBuilder",
    "Fold",
    "IemocapBuilder",
    "LABEL_SETS",
    "MultiMAEDERDataCollator",
    "RavdessBuilder",
    "UnknownFileNameError",
    "export_folds",
    "get_fold",
    "get_folds",
    "get_label_set",
    "load_emotion_dataset",
    "load_prefused_dataset",
    "make_synthetic_corpus",
    "preprocess_to_cache",
    "split_for_rank",
]
