"""Model and dataset cards: one builder, templates in ``templates/`` rendered with huggingface_hub, offline metadata
checks, and Hub pushes.

Corpus facts on the cards come from :data:`mmder_hf.data.corpora.CORPUS_INFO`; this package may import
:mod:`mmder_hf.data`, never the reverse (the data package finds ``templates/dataset_card.md`` as a resource). The
cards of what the project publishes are rendered into the top-level ``model_cards/`` by
``python -m mmder_hf.cards.publish_cards``.
"""

from .cards import *  # noqa: F403
from .cards import __all__ as _cards_all
from .metadata import CardMetadataError, check_card_metadata, hub_dataset_id, validate_card_metadata


__all__ = [*_cards_all, "CardMetadataError", "check_card_metadata", "hub_dataset_id", "validate_card_metadata"]
