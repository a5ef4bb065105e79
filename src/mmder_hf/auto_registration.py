"""Registering MultiMAE-DER with transformers' auto classes when they are first imported, not when mmder_hf is.

``import mmder_hf`` promises that ``AutoConfig`` / ``AutoModelForVideoClassification`` / ``AutoProcessor`` / ... and
``pipeline("audio-visual-emotion-recognition")`` know the model afterwards. Registering needs the model's classes,
hence torch (~1.6 s) and transformers' modeling (~2 s more), which ``mmder --help`` or ``import mmder_hf`` for the
data helpers should not pay. Every one of transformers' auto modules imports torch itself, so registering right after
the first of them is loaded costs nothing a user of the auto classes does not pay anyway: :func:`install` puts a
finder on ``sys.meta_path`` (Python's import-hook API) that watches transformers' and mmder_hf's imports, runs
:func:`ensure_registered` once one of those modules has been loaded and the import that loaded it is complete, and
then takes itself off. When one of them is already loaded at ``import mmder_hf``,
registration happens at once. ``mmder_hf.register()`` (and using any of the model's classes through ``mmder_hf``)
registers explicitly.
"""

from __future__ import annotations

import importlib.abc
import logging
import sys
from types import ModuleType
from typing import Any, Optional, Sequence


logger = logging.getLogger(__name__)

#: transformers' modules whose loading means the auto classes or the pipeline registry are about to be used.
TRIGGERS = frozenset(
    {
        "transformers.models.auto.configuration_auto",
        "transformers.models.auto.modeling_auto",
        "transformers.models.auto.processing_auto",
        "transformers.models.auto.video_processing_auto",
        "transformers.models.auto.feature_extraction_auto",
        "transformers.models.auto.image_processing_auto",
        "transformers.pipelines",
    }
)

_registered = False
_registering = False


def ensure_registered() -> bool:
    """Register the model with transformers once (see ``models.multimae_der.register``); True when done.

    The import hook calls it only once no import of transformers' or mmder_hf's modules is under way (registering
    imports both, and would meet half-initialized modules); an ImportError (or AttributeError) of such a module still
    defers it to the next chance.
    """
    global _registered, _registering, _pending
    if _registered:
        return True
    if _registering:
        return False
    _registering = True
    try:
        from .models.multimae_der import register

        register()
    except (ImportError, AttributeError):  # a partially initialized module: the next chance retries
        logger.debug("registration deferred", exc_info=True)
        return False
    finally:
        _registering = False
    _registered, _pending = True, False
    _uninstall()
    return True


#: Modules whose import is followed: registering waits until no import of theirs is under way (it needs them whole).
WATCHED = ("transformers", "mmder_hf")

_pending = False  # a trigger was loaded but registering had to wait
_depth = 0  # imports of watched modules under way


class _RegisteringLoader(importlib.abc.Loader):
    """Runs the real loader; when the outermost watched import is done and a trigger was loaded, registers."""

    def __init__(self, loader: importlib.abc.Loader, trigger: bool) -> None:
        self._loader = loader
        self._trigger = trigger

    def create_module(self, spec: Any) -> Optional[ModuleType]:
        return self._loader.create_module(spec)

    def exec_module(self, module: ModuleType) -> None:
        global _depth, _pending
        _depth += 1
        try:
            self._loader.exec_module(module)
        finally:
            _depth -= 1
        _pending = _pending or self._trigger
        if _pending and _depth == 0:
            ensure_registered()

    def __getattr__(self, name: str) -> Any:  # get_source, get_filename, is_package... for inspect and friends
        return getattr(self._loader, name)


class _TriggerFinder(importlib.abc.MetaPathFinder):
    """Finds nothing itself: wraps the loader the other finders give for transformers' and mmder_hf's modules."""

    def find_spec(self, fullname: str, path: Optional[Sequence[str]], target: Optional[ModuleType] = None) -> Any:
        if _registered or fullname.partition(".")[0] not in WATCHED:
            return None
        for finder in sys.meta_path:
            if finder is self or not hasattr(finder, "find_spec"):
                continue
            spec = finder.find_spec(fullname, path, target)
            if spec is not None:
                if spec.loader is not None and hasattr(spec.loader, "exec_module"):
                    spec.loader = _RegisteringLoader(spec.loader, trigger=fullname in TRIGGERS)
                return spec
        return None


_FINDER = _TriggerFinder()


def _uninstall() -> None:
    if _FINDER in sys.meta_path:
        sys.meta_path.remove(_FINDER)


def install() -> None:
    """Register now if transformers' auto classes are already loaded, else when the first of them is."""
    if any(name in sys.modules for name in TRIGGERS) and ensure_registered():
        return
    if _FINDER not in sys.meta_path:
        sys.meta_path.insert(0, _FINDER)


__all__ = ["TRIGGERS", "ensure_registered", "install"]
