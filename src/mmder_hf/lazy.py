"""Packages whose public names are imported when first used (PEP 562), so that ``import mmder_hf`` and the CLI start
at once. (``models/multimae_der/__init__.py`` keeps its own copy: the shipped folder imports only itself.)"""

from __future__ import annotations

import importlib
from typing import Any, Callable, Optional


def lazy_attributes(
    package: str, where: dict[str, str], namespace: dict, on_import: Optional[Callable[[str, str], None]] = None
) -> tuple[Callable[[str], Any], Callable[[], list]]:
    """``(__getattr__, __dir__)`` for ``package``: name ``n`` comes from module ``where[n]`` (relative to the package)
    on first use and is then kept in ``namespace`` (the package's globals); ``on_import(name, module)`` runs after."""

    def __getattr__(name: str) -> Any:
        module_name = where.get(name)
        if module_name is None:
            raise AttributeError(f"module {package!r} has no attribute {name!r}")
        value = getattr(importlib.import_module(module_name, package), name)
        if on_import is not None:
            on_import(name, module_name)
        namespace[name] = value
        return value

    def __dir__() -> list:
        return sorted({*namespace, *where})

    return __getattr__, __dir__
