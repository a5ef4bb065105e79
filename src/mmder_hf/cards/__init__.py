"""Model and dataset cards: one builder, templates in ``templates/`` rendered with huggingface_hub, offline metadata
checks, and Hub pushes.

Corpus facts on the cards come from :data:`mmder_hf.data.corpora.CORPUS_INFO`; this package may import
:mod:`mmder_hf.data`, never the reverse (the data package finds ``templates/dataset_card.md`` as a resource). The
cards of what the project publishes are rendered into the top-level ``model_cards/`` by
``python -m mmder_hf.cards.publish_cards``.
"""

from typing import TYPE_CHECKING

from ..lazy import lazy_attributes


if TYPE_CHECKING:  # for type checkers and IDEs; at run time each name is imported when first used (PEP 562)
    from .cards import (
        BEGIN_MARKER,
        CLASSIFIER_TAGS,
        END_MARKER,
        MODEL_CARDS_DIR,
        PAPER_CITATION,
        PRETRAINING_TAGS,
        PUSH_IGNORE_PATTERNS,
        VIDEOMAE_CITATION,
        backbone_license,
        completed_processor_settings,
        describe_preprocessing,
        describe_splits,
        eval_results,
        load_results,
        mean_std,
        model_license,
        paper_reference,
        push_folder,
        render_model_card,
        render_pretraining_card,
        results_table,
        template_path,
        update_model_card,
        write_model_card,
        write_pretraining_card,
    )
    from .metadata import CardMetadataError, check_card_metadata, hub_dataset_id, validate_card_metadata

#: ``cards.__all__`` and four names of ``metadata`` (tests/test_startup.py checks the first part against ``cards``).
__all__ = [
    "BEGIN_MARKER",
    "CLASSIFIER_TAGS",
    "END_MARKER",
    "MODEL_CARDS_DIR",
    "PAPER_CITATION",
    "PRETRAINING_TAGS",
    "PUSH_IGNORE_PATTERNS",
    "VIDEOMAE_CITATION",
    "backbone_license",
    "completed_processor_settings",
    "describe_preprocessing",
    "describe_splits",
    "eval_results",
    "load_results",
    "mean_std",
    "model_license",
    "paper_reference",
    "push_folder",
    "render_model_card",
    "render_pretraining_card",
    "results_table",
    "template_path",
    "update_model_card",
    "write_model_card",
    "write_pretraining_card",
    "CardMetadataError",
    "check_card_metadata",
    "hub_dataset_id",
    "validate_card_metadata",
]
_METADATA_NAMES = ("CardMetadataError", "check_card_metadata", "hub_dataset_id", "validate_card_metadata")
#: The module of each public name: importing this package (``python -m mmder_hf.cards.publish_cards``) does not
#: import the card builder and huggingface_hub's API until they are used.
_LAZY = {name: ".metadata" if name in _METADATA_NAMES else ".cards" for name in __all__}


__getattr__, __dir__ = lazy_attributes(__name__, _LAZY, globals())
