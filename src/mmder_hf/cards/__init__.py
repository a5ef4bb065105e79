"""Model and dataset cards: templates in ``templates/`` rendered with huggingface_hub's ``ModelCard``, and Hub pushes."""

from .cards import *  # noqa: F403
from .cards import __all__  # noqa: F401
