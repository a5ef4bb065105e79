"""The offline Hub of the end-to-end runners: ``HfApi`` patched at class level, each upload copied aside.

The runner scripts of the finetune, cross-validation, grid and pre-training tests import this in their
subprocesses (the real scripts, the real ``push_to_hub`` code paths), so that nothing reaches the network and every
pushed folder can be inspected afterwards.
"""

from __future__ import annotations

import concurrent.futures
import os
import shutil
import types

from huggingface_hub import HfApi


def patch_hf_api(uploads: str, rank: str = "0") -> None:
    """Make ``HfApi`` copy every ``upload_folder`` into ``uploads`` and refuse every other call that writes.

    Uploads are named ``<n>-rank<r>-<repo id>-<path in repo or root>`` with ``n`` counting up, so a sorted listing
    is the order of the pushes and says which rank pushed what to which repo.
    """

    def create_repo(self, repo_id, **kwargs):
        return types.SimpleNamespace(repo_id=repo_id, url=f"https://huggingface.co/{repo_id}")

    def upload_folder(
        self, *, repo_id, folder_path, path_in_repo=None, ignore_patterns=None, run_as_future=False, **kwargs
    ):
        os.makedirs(uploads, exist_ok=True)
        where = (path_in_repo or "root").replace("/", "_")
        name = f"{len(os.listdir(uploads)):03d}-rank{rank}-{repo_id.replace('/', '__')}-{where}"
        shutil.copytree(
            folder_path, os.path.join(uploads, name), ignore=shutil.ignore_patterns(*(ignore_patterns or []))
        )
        future = concurrent.futures.Future()
        future.set_result(types.SimpleNamespace(commit_url=f"{repo_id}@fake"))
        return future if run_as_future else future.result()

    def refuse(self, *args, **kwargs):
        raise RuntimeError("unexpected Hub call")

    HfApi.create_repo, HfApi.upload_folder = create_repo, upload_folder
    HfApi.create_commit = HfApi.preupload_lfs_files = HfApi.upload_file = HfApi.model_info = refuse
