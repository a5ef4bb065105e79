"""Where the builders read a corpus from: a local folder, a list of local paths / URLs, or a Hub dataset repo.

``datasets``' download managers fetch remote files (the builders use ``dl_manager.download`` for them), but what
they lack is here: listing a Hub repo (``hub://`` entries, fetched only for the splits that read them), the source
fingerprint that keys the builder cache, and reading a zip member by member so that one corrupt member is reported
in the :class:`~mmder_hf.data.bad_data.BadDataReport` and skipped instead of failing the archive
(``dl_manager.iter_archive`` / ``extract`` drop hidden members silently, stop at a damaged member header, and extract
whole archives).
"""

from __future__ import annotations

import hashlib
import os
import re
import zipfile
import zlib
from typing import Any, BinaryIO, Iterator, Optional, Union

from ..user_errors import INPUT_STATUS, UserError, locate
from .bad_data import BadDataReport


Source = Union[str, os.PathLike, list, tuple]
_REPO_ID = re.compile(r"^[\w.-]+/[\w.-]+$")

#: The flag that names a corpus's source in every script (named in the messages of a source that is not there).
SOURCE_FLAG = "--dataset_source"

#: File endings of the video files a folder may hold (read by pre-training's ``--dataset_name videos``).
VIDEO_EXTENSIONS = (".mp4", ".avi", ".mkv", ".mov", ".webm", ".flv", ".m4v", ".mpg", ".mpeg")


class SourceNotFoundError(UserError, FileNotFoundError):
    """A data source that is not there, or holds none of the files it should: a mistake of the user's (one line
    from the scripts, exit status 1) and a `FileNotFoundError` for the code that catches that."""

    def __init__(self, message: str, status: int = INPUT_STATUS):
        super().__init__(message, status)


def is_hub_repo_id(source: Any) -> bool:
    """True for ``owner/name`` strings that are not an existing local path, nor a path into an existing local
    folder (``runs/nope`` beside ``runs/``: a folder that is not there, as :func:`~mmder_hf.user_errors.locate`
    decides)."""
    return (
        isinstance(source, str)
        and bool(_REPO_ID.match(source))
        and not os.path.exists(source)
        and not os.path.isdir(source.split("/")[0])
    )


def count_video_files(folder: str) -> int:
    """How many video files (:data:`VIDEO_EXTENSIONS`) are under ``folder``, searched recursively."""
    return sum(f.lower().endswith(VIDEO_EXTENSIONS) for _, _, files in os.walk(folder) for f in files)


def videos_hint(source: Any) -> str:
    """``"; it holds 6 video files: ..."`` when ``source`` is a local folder of videos given as a corpus, else
    ``""``: the likely mistake is a missing ``--dataset_name videos``."""
    if not (isinstance(source, (str, os.PathLike)) and os.path.isdir(source)):
        return ""
    count = count_video_files(os.fspath(source))
    if not count:
        return ""
    return f"; it holds {count} video file(s): for a folder of videos pass --dataset_name videos (pre-training)"


def check_local_source(source: str) -> None:
    """Raise :class:`SourceNotFoundError` for a source that is neither an existing path, a URL nor a Hub id, naming
    what its parent folder holds."""
    if os.path.exists(source) or "://" in source or is_hub_repo_id(source):
        return
    try:
        locate(SOURCE_FLAG, source)
    except UserError as error:
        raise SourceNotFoundError(str(error)) from None
    raise SourceNotFoundError(f"{SOURCE_FLAG} {source}: no such folder, and not a Hub dataset id (owner/name)")


def list_hub_files(repo_id: str, revision: Optional[str] = None) -> list[str]:
    """Files of a Hub *dataset* repo (``HfApi.list_repo_files``)."""
    from huggingface_hub import HfApi

    return HfApi().list_repo_files(repo_id, repo_type="dataset", revision=revision)


def hub_file_location(repo_id: str, filename: str, streaming: bool, revision: Optional[str] = None) -> str:
    """Where to read a Hub file from: an ``hf://`` URL when streaming, else a local copy (``hf_hub_download``)."""
    if streaming:
        return f"hf://datasets/{repo_id}{'@' + revision if revision else ''}/{filename}"
    from huggingface_hub import hf_hub_download

    return hf_hub_download(repo_id, filename, repo_type="dataset", revision=revision)


def list_source(source: Source, revision: Optional[str] = None) -> list[str]:
    """Flat list of file locations (local paths or URLs) under ``source``.

    Raises:
        :class:`SourceNotFoundError`: ``source`` is a local path that does not exist (before anything is read).
    """
    if isinstance(source, (list, tuple)):
        return [os.fspath(s) for s in source]
    source = os.fspath(source)
    if os.path.isdir(source):
        out = []
        for root, dirs, files in os.walk(source):
            dirs.sort()
            out.extend(os.path.join(root, f) for f in sorted(files))
        return out
    if is_hub_repo_id(source):
        return [f"hub://{source}/{f}" for f in list_hub_files(source, revision)]
    check_local_source(source)
    return [source]


def resolve_location(location: str, streaming: bool, revision: Optional[str] = None) -> str:
    """Turn a ``hub://repo/file`` listing entry into a readable location; other entries are returned as is."""
    if location.startswith("hub://"):
        owner, name, filename = location[len("hub://") :].split("/", 2)
        return hub_file_location(f"{owner}/{name}", filename, streaming, revision)
    return location


def source_fingerprint(source: Source) -> str:
    """A short hash of a local source (file names, sizes, mtimes) so the builder cache follows data changes."""
    h = hashlib.sha1()
    if isinstance(source, (str, os.PathLike)) and os.path.isdir(source):
        for path in list_source(source):
            st = os.stat(path)
            h.update(f"{os.path.relpath(path, source)}:{st.st_size}:{int(st.st_mtime)}".encode())
    else:
        h.update(repr(source).encode())
    return h.hexdigest()[:16]


def open_location(location: str) -> BinaryIO:
    """Open a local path or a remote URL (``hf://``, ``https://``) for random-access binary reading."""
    if os.path.exists(location):
        return open(location, "rb")
    from datasets.utils.file_utils import xopen

    return xopen(location, "rb")


def iter_zip_members(location: str, report: BadDataReport, strict: bool) -> Iterator[tuple[str, bytes]]:
    """Yield ``(member name, bytes)`` of a (local or remote) zip, member by member, without extracting it.

    Unreadable archives and members (bad CRC, truncated data) are reported and skipped.
    """
    label = os.path.basename(location)
    try:
        f = open_location(location)
    except (OSError, FileNotFoundError) as err:
        report.add(label, f"missing archive ({type(err).__name__})", strict)
        return
    with f:
        try:
            zf = zipfile.ZipFile(f)
        except (zipfile.BadZipFile, OSError) as err:
            report.add(label, f"corrupt archive ({err})", strict)
            return
        with zf:
            for info in zf.infolist():
                if info.is_dir():
                    continue
                try:
                    data = zf.read(info)
                except (zipfile.BadZipFile, OSError, EOFError, zlib.error) as err:
                    report.add(f"{label}:{info.filename}", f"corrupt archive member ({type(err).__name__})", strict)
                    continue
                yield info.filename, data


def extract_zip_members(
    location: str, cache_root: str, report: BadDataReport, strict: bool
) -> Iterator[tuple[str, str]]:
    """Extract a local zip member by member under ``cache_root/mmder_extracted/<key>``; yield ``(name, path)``.

    Map-style builders store paths, so the media bytes are not copied into Arrow a second time. Unlike
    ``dl_manager.extract`` (the whole archive at once), a corrupt member is reported and skipped and the rest of the
    archive is kept. The key follows the archive's path, size and mtime; members already extracted are reused.
    """
    st = os.stat(location)
    key = hashlib.sha1(f"{os.path.abspath(location)}:{st.st_size}:{int(st.st_mtime)}".encode()).hexdigest()[:16]
    root = os.path.join(cache_root, "mmder_extracted", key)
    for name, data in iter_zip_members(location, report, strict):
        target = os.path.join(root, name)
        if not (os.path.exists(target) and os.path.getsize(target) == len(data)):
            os.makedirs(os.path.dirname(target), exist_ok=True)
            with open(target + ".part", "wb") as f:
                f.write(data)
            os.replace(target + ".part", target)
        yield name, target


__all__ = [
    "SOURCE_FLAG",
    "Source",
    "SourceNotFoundError",
    "VIDEO_EXTENSIONS",
    "check_local_source",
    "count_video_files",
    "extract_zip_members",
    "hub_file_location",
    "is_hub_repo_id",
    "iter_zip_members",
    "list_hub_files",
    "list_source",
    "open_location",
    "resolve_location",
    "source_fingerprint",
    "videos_hint",
]
