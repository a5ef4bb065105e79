"""Audio-visual emotion corpora for MultiMAE-DER: parsers, folds, builders, loading, publishing, synthetic data."""

from .bad_data import BadDataError, BadDataReport
from .builders import CremaDBuilder, IemocapBuilder, RavdessBuilder
from .collate import MultiMAEDERDataCollator
from .corpora import LABEL_SETS, UnknownFileNameError, get_label_set
from .folds import Fold, export_folds, get_fold, get_folds
from .loading import load_emotion_dataset, load_prefused_dataset, preprocess_to_cache, split_for_rank
from .synthetic import make_synthetic_corpus


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
