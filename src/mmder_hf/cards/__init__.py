"""Model and dataset cards: templates in ``templates/`` rendered with huggingface_hub, and Hub pushes.

Corpus facts on the cards come from :data:`mmder_hf.data.corpora.CORPUS_INFO`; this package may import
:mod:`mmder_hf.data`, never the reverse (the data package finds ``templates/dataset_card.md`` as a resource).
"""

from .cards import *  # noqa: F403
from .cards import __all__  # noqa: F401
