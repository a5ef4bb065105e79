"""What ``mmder predict`` reads: files and URLs as given, each folder replaced by its videos, each ``@list.txt`` by
its entries. A folder or list that yields nothing is a mistake (one line, exit status 1), not an empty run."""

from __future__ import annotations

import os
from typing import Sequence

from .user_errors import INPUT_STATUS, UserError


#: What ``mmder predict FOLDER`` picks up (any case), recursively.
VIDEO_EXTENSIONS = (".mp4", ".mov", ".avi", ".mkv", ".webm", ".m4v", ".mpg", ".mpeg", ".flv", ".wmv")


def _is_url(path: str) -> bool:
    return path.startswith(("http://", "https://"))


def _folder_videos(folder: str) -> list[str]:
    """The videos under ``folder``, recursively, sorted; hidden files and folders (``.git``, macOS ``._clip.mp4``
    metadata) are skipped. An empty result is an error: a mistyped or wrong folder should not pass silently."""
    found = []
    for parent, folders, names in os.walk(folder):
        folders[:] = [name for name in folders if not name.startswith(".")]
        found += [
            os.path.join(parent, name)
            for name in names
            if not name.startswith(".") and name.lower().endswith(VIDEO_EXTENSIONS)
        ]
    if not found:
        raise UserError(
            f"{folder}: no videos in this folder or below (looked for {' '.join(VIDEO_EXTENSIONS)}, any case); "
            "pass video files or a folder that holds some",
            INPUT_STATUS,
        )
    return sorted(found)


def _listed_inputs(argument: str) -> list[str]:
    """The entries of ``@list.txt``: one path or URL per line, blank lines and ``# comments`` skipped; a relative
    path is read from the list's folder (so a list travels with its clips)."""
    list_file = argument[1:]
    try:
        with open(list_file, encoding="utf-8") as handle:
            lines = [line.strip() for line in handle]
    except FileNotFoundError as error:
        message = f"{argument}: list file {list_file} not found (@LIST names a text file of paths)"
        raise UserError(message, INPUT_STATUS) from error
    except (OSError, UnicodeDecodeError) as error:
        reason = str(error).strip().splitlines()[0] if str(error).strip() else type(error).__name__
        raise UserError(f"{argument}: cannot read the list file: {reason}", INPUT_STATUS) from error
    folder = os.path.dirname(list_file)
    entries = [line for line in lines if line and not line.startswith("#")]
    entries = [entry if _is_url(entry) or os.path.isabs(entry) else os.path.join(folder, entry) for entry in entries]
    if not entries:
        raise UserError(
            f"{argument}: the list holds no videos (one path or URL per line; blank lines and lines starting "
            "with # are skipped)",
            INPUT_STATUS,
        )
    return entries


def expand_inputs(arguments: Sequence[str]) -> list[str]:
    """``predict``'s files: each folder replaced by its videos (:func:`_folder_videos`), each ``@list.txt`` by its
    entries (a folder listed there expands too); plain files and URLs kept as given, in the order given."""
    files: list[str] = []
    for argument in arguments:
        if argument.startswith("@") and len(argument) > 1:
            for entry in _listed_inputs(argument):
                files += _folder_videos(entry) if os.path.isdir(entry) else [entry]
        elif not _is_url(argument) and os.path.isdir(argument):
            files += _folder_videos(argument)
        else:
            files.append(argument)
    return files


__all__ = ["VIDEO_EXTENSIONS", "expand_inputs"]
