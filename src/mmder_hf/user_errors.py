"""User mistakes as one line: the flag or file, what was expected, and what to do next.

One place for every script and the ``mmder`` CLI, so that a typo gets the same "did you mean" everywhere and a
path-or-Hub-id is decided the same way everywhere:

- :class:`UserError` is a mistake the user can fix; :func:`script_errors` prints it as ``<prog>: error: <line>``
  and exits with status 2 (a flag or argument) or 1 (a file, a folder, the network), never a traceback.
- :func:`closest` / :func:`check_choice` give the "did you mean" of a flag or a choice.
- :func:`locate` decides whether a value is a local path or a Hub id, and says which it assumed.
"""

from __future__ import annotations

import contextlib
import difflib
import logging
import os
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Iterable, Iterator, Optional


logger = logging.getLogger(__name__)

#: Exit status of a usage mistake (argparse's), and of any other mistake the user can fix (a file, the network).
USAGE_STATUS, INPUT_STATUS = 2, 1


class UserError(ValueError):
    """A mistake the user can fix, printed as one line by :func:`script_errors` (exit status ``status``)."""

    def __init__(self, message: str, status: int = USAGE_STATUS):
        super().__init__(message)
        self.status = status


def closest(word: str, options: Iterable[str], cutoff: float = 0.6) -> Optional[str]:
    """The option closest to ``word`` (case-insensitive), or ``None`` when none is close."""
    options = list(options)
    lowered = {option.lower(): option for option in options}
    match = difflib.get_close_matches(str(word).lower(), list(lowered), n=1, cutoff=cutoff)
    return lowered[match[0]] if match else None


def did_you_mean(word: str, options: Iterable[str]) -> str:
    """``" (did you mean FSLF?)"`` when an option is close to ``word``, else ``""``."""
    match = closest(word, options)
    return f" (did you mean {match}?)" if match else ""


def check_choice(flag: str, value: str, choices: Iterable[str]) -> str:
    """``value`` spelled as in ``choices`` (case-insensitive), or a :class:`UserError` naming ``flag``, the choices and
    the closest one (``--fusion_strategy: unknown 'FSFL'; expected one of FSLF, ... (did you mean FSLF?)``)."""
    choices = list(choices)
    for choice in choices:
        if str(value).lower() == choice.lower():
            return choice
    raise UserError(f"{flag}: unknown {value!r}; expected one of {', '.join(choices)}{did_you_mean(value, choices)}")


@dataclass(frozen=True)
class Location:
    """Where a ``--model`` / ``--dataset_source`` value points: ``kind`` is ``"local"`` or ``"hub"``."""

    kind: str
    value: str

    @property
    def is_local(self) -> bool:
        return self.kind == "local"


def looks_like_hub_id(value: str) -> bool:
    """``name`` or ``org/name`` made of the characters the Hub allows (no leading ``.``, ``/``, ``~``)."""
    parts = value.split("/")
    allowed = set("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789-_.")
    return (
        1 <= len(parts) <= 2
        and all(part and set(part) <= allowed and not part.startswith((".", "-")) for part in parts)
        and not value.endswith((".mp4", ".zip", ".json", ".wav", ".avi"))
    )


def locate(flag: str, value: str, what: str = "folder") -> Location:
    """Decide whether ``value`` (given with ``flag``) is a local path or a Hub id, and log which was assumed.

    A path that exists is local. A value that cannot be a Hub id (``./x``, ``/data/x``, ``a/b/c``, ``~/x``, a file
    name), or whose first part is a local folder (``runs/nope`` beside ``runs/``), is a local path that does not
    exist: a :class:`UserError` (exit status 1) naming it, instead of a Hub lookup with a misleading message.
    Anything else is a Hub id.
    """
    path = Path(os.path.expanduser(value))
    if path.exists():
        return Location("local", str(path))
    parent = path.parent
    if not looks_like_hub_id(value) or (len(value.split("/")) == 2 and parent.is_dir()):
        raise UserError(f"{flag} {value}: no such {what}{_nearby(path)}", status=INPUT_STATUS)
    logger.info("%s %s: no local %s of that name, so it is read as a Hub id", flag, value, what)
    return Location("hub", value)


def _nearby(path: Path, limit: int = 5) -> str:
    """`` (did you mean runs/demo?)`` or `` (runs/ holds: a, b, c)``: what the parent folder does hold."""
    parent = path.parent
    if str(parent) in ("", ".") or not parent.is_dir():
        return ""
    names = sorted(p.name for p in parent.iterdir() if not p.name.startswith("."))
    match = closest(path.name, names)
    if match:
        return f" (did you mean {parent / match}?)"
    if not names:
        return f" ({parent}/ is empty)"
    shown = ", ".join(names[:limit]) + (f" and {len(names) - limit} more" if len(names) > limit else "")
    return f" ({parent}/ holds: {shown})"


@contextlib.contextmanager
def script_errors(prog: Optional[str] = None) -> Iterator[None]:
    """Turn a :class:`UserError` raised inside into one line on stderr and its exit status (``SystemExit``)."""
    try:
        yield
    except UserError as error:
        name = prog or Path(sys.argv[0]).name
        print(f"{name}: error: {error}", file=sys.stderr)
        raise SystemExit(error.status) from None


__all__ = [
    "INPUT_STATUS",
    "USAGE_STATUS",
    "Location",
    "UserError",
    "check_choice",
    "closest",
    "did_you_mean",
    "locate",
    "looks_like_hub_id",
    "script_errors",
]
