"""The offline Hub of the end-to-end runners: ``HfApi`` patched at class level, each upload copied aside.

The runner scripts of the finetune, cross-validation, grid and pre-training tests import this in their
subprocesses (the real scripts, the real ``push_to_hub`` code paths), so that nothing reaches the network and every
pushed folder can be inspected afterwards.
"""

from __future__ import annotations

import concurrent.futures
import inspect
import os
import shutil
import types
from pathlib import Path

from huggingface_hub import HfApi


def files_to_upload(folder, allow_patterns=None, ignore_patterns=None) -> list[str]:
    """The files ``HfApi.upload_folder`` would send from ``folder`` (paths relative to it, sorted): every file in it,
    selected by huggingface_hub's own ``filter_repo_objects`` on the relative PATH with ``allow_patterns`` /
    ``ignore_patterns`` and its default ignores (``.git``, ``.cache``...), as the real upload does."""
    from huggingface_hub.utils import DEFAULT_IGNORE_PATTERNS, filter_repo_objects

    folder = Path(folder).expanduser().resolve()
    ignore = ignore_patterns or []
    ignore = [ignore] if isinstance(ignore, str) else list(ignore)
    files = [p.relative_to(folder).as_posix() for p in sorted(folder.glob("**/*")) if p.is_file()]
    return list(
        filter_repo_objects(files, allow_patterns=allow_patterns, ignore_patterns=ignore + DEFAULT_IGNORE_PATTERNS)
    )


def patch_hf_api(uploads: str, rank: str = "0") -> None:
    """Make ``HfApi`` copy what every ``upload_folder`` would send into ``uploads`` and refuse every other call that
    writes.

    Uploads are named ``<n>-rank<r>-<repo id>-<path in repo or root>`` with ``n`` counting up, so a sorted listing
    is the order of the pushes and says which rank pushed what to which repo. The calls are bound to the real
    ``upload_folder`` signature, so a wrong argument fails here as it would against the Hub.
    """
    real_upload_folder = inspect.signature(HfApi.upload_folder)

    def create_repo(self, repo_id, **kwargs):
        return types.SimpleNamespace(repo_id=repo_id, url=f"https://huggingface.co/{repo_id}")

    def upload_folder(self, **kwargs):
        call = real_upload_folder.bind(self, **kwargs).arguments
        os.makedirs(uploads, exist_ok=True)
        where = (call.get("path_in_repo") or "root").replace("/", "_")
        repo_id = call["repo_id"]
        target = os.path.join(
            uploads, f"{len(os.listdir(uploads)):03d}-rank{rank}-{repo_id.replace('/', '__')}-{where}"
        )
        os.makedirs(target)
        for relpath in files_to_upload(call["folder_path"], call.get("allow_patterns"), call.get("ignore_patterns")):
            os.makedirs(os.path.dirname(os.path.join(target, relpath)), exist_ok=True)
            shutil.copyfile(os.path.join(call["folder_path"], relpath), os.path.join(target, relpath))
        future = concurrent.futures.Future()
        future.set_result(types.SimpleNamespace(commit_url=f"{repo_id}@fake"))
        return future if call.get("run_as_future") else future.result()

    def refuse(self, *args, **kwargs):
        raise RuntimeError("unexpected Hub call")

    HfApi.create_repo, HfApi.upload_folder = create_repo, upload_folder
    HfApi.create_commit = HfApi.preupload_lfs_files = HfApi.upload_file = HfApi.model_info = refuse
