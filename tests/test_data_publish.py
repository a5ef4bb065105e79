"""Publishing round trip (patched HfApi -> Parquet -> load_dataset / load_emotion_dataset) and pre-fused zips."""

import os
import zipfile

import datasets
import numpy as np
import pytest
from fixtures_data import CLIPS, NUM_ACTORS, fake_iemocap_dir, hf_cache_dir, synthetic_ravdess_dir  # noqa: F401

from mmder_hf.data import load_emotion_dataset, load_prefused_dataset, split_for_rank
from mmder_hf.data.media_writing import write_clip
from mmder_hf.data.publish import RedistributionError, export_corpus_parquet, publish_main, push_corpus


@pytest.fixture(scope="module")
def published_dir(synthetic_ravdess_dir, tmp_path_factory, hf_cache_dir):
    out = str(tmp_path_factory.mktemp("published"))
    export_corpus_parquet("ravdess", synthetic_ravdess_dir, out, repo_id="me/ravdess-av", cache_dir=hf_cache_dir)
    return out


@pytest.fixture
def fake_hub(monkeypatch):
    """Class-level patches on HfApi: record what would be created and uploaded."""
    import huggingface_hub

    calls = {}

    def create_repo(self, repo_id, repo_type=None, private=None, exist_ok=False, **kw):
        calls["create_repo"] = dict(repo_id=repo_id, repo_type=repo_type, private=private)
        return f"https://huggingface.co/datasets/{repo_id}"

    def upload_folder(self, folder_path, repo_id, repo_type=None, **kw):
        calls["upload_folder"] = dict(
            repo_id=repo_id,
            repo_type=repo_type,
            files=sorted(
                os.path.relpath(os.path.join(r, f), folder_path) for r, _, fs in os.walk(folder_path) for f in fs
            ),
        )
        return "commit-url"

    monkeypatch.setattr(huggingface_hub.HfApi, "create_repo", create_repo)
    monkeypatch.setattr(huggingface_hub.HfApi, "upload_folder", upload_folder)
    return calls


def test_publish_round_trip(published_dir, fake_hub):
    assert push_corpus(published_dir, "me/ravdess-av", private=False, corpus="ravdess") == "commit-url"
    assert fake_hub["create_repo"] == {"repo_id": "me/ravdess-av", "repo_type": "dataset", "private": False}
    files = fake_hub["upload_folder"]["files"]
    assert {"README.md", "folds.json", "folds.csv"} <= set(files)
    assert [f for f in files if f.endswith(".parquet")] == [f"data/actor_{a:02d}.parquet" for a in range(1, 9)]
    card = open(os.path.join(published_dir, "README.md")).read()
    # the synthetic corpus is published as what it is: our licence, no RAVDESS source or citation
    assert "license: apache-2.0" in card and "synthetic RAVDESS-format corpus" in card and "synthetic-data" in card
    assert "livingstone2018ravdess" not in card and "zenodo" not in card.lower() and "cc-by-nc-sa" not in card
    assert "https://github.com/)" not in card  # no placeholder link
    assert "| 1 | 1-4 | 5-6 | 7-24 |" in card and "data/*.parquet" in card

    # what was uploaded loads with no scripts, streaming, media embedded (no path back to the source tree)
    stream = datasets.load_dataset(published_dir, streaming=True)["train"]
    rows = list(stream)
    assert len(rows) == NUM_ACTORS * CLIPS
    assert isinstance(stream.features["video"], datasets.Video)
    assert isinstance(stream.features["emotion"], datasets.ClassLabel)
    assert rows[0]["video"].metadata.num_frames == 8
    assert rows[0]["audio"].get_all_samples().data.shape[-1] >= 16000
    table = datasets.load_dataset(published_dir, split="train").cast_column("video", datasets.Video(decode=False))
    assert all(v["bytes"] for v in table["video"])


def test_a_ravdess_tree_is_published_with_ravdess_facts(synthetic_ravdess_dir, hf_cache_dir, tmp_path):
    import shutil

    tree = tmp_path / "RAVDESS"  # the same archives, without the synthetic corpus's metadata: a RAVDESS download
    tree.mkdir()
    for name in os.listdir(synthetic_ravdess_dir):
        if name.endswith(".zip"):
            shutil.copy(os.path.join(synthetic_ravdess_dir, name), tree)
    out = tmp_path / "out"
    export_corpus_parquet("ravdess", str(tree), str(out), repo_id="me/ravdess-av", cache_dir=hf_cache_dir)
    card = (out / "README.md").read_text()
    assert "license: cc-by-nc-sa-4.0" in card and "livingstone2018ravdess" in card and "zenodo.org" in card
    assert "synthetic" not in card


def test_published_corpus_splits_by_fold(published_dir, synthetic_ravdess_dir, hf_cache_dir):
    raw = load_emotion_dataset("ravdess", synthetic_ravdess_dir, fold=2, cache_dir=hf_cache_dir)
    pub = load_emotion_dataset("ravdess", published_dir, fold=2, cache_dir=hf_cache_dir)
    for split in ("train", "validation", "test"):
        published = sorted(zip(pub[split]["file"], pub[split]["emotion"]))
        assert published == sorted(zip(raw[split]["file"], raw[split]["emotion"]))
    stream = load_emotion_dataset("ravdess", published_dir, fold=1, streaming=True)
    assert stream["test"].n_shards == 4 and {r["actor"] for r in stream["test"]} == {1, 2, 3, 4}
    parts = [{r["file"] + str(r["actor"]) for r in split_for_rank(stream["test"], rank, 2)} for rank in (0, 1)]
    assert not parts[0] & parts[1] and len(parts[0] | parts[1]) == 4 * CLIPS
    with pytest.raises(ValueError, match="label"):
        load_emotion_dataset("ravdess", published_dir, fold=1, label_set="7class")


def test_published_hub_repo_id(published_dir, monkeypatch, hf_cache_dir):
    """A Hub repo id of a published corpus: its Parquet files are listed and read through hf:// URLs."""
    import huggingface_hub

    from mmder_hf.data import loading

    files = ["README.md"] + [f"data/actor_{a:02d}.parquet" for a in range(1, 9)]
    monkeypatch.setattr(huggingface_hub.HfApi, "list_repo_files", lambda self, repo_id, **kw: files)
    seen = {}
    real = datasets.load_dataset

    def fake_load(path, data_files=None, **kw):  # hf:// cannot be reached offline: map back to the local copy
        seen.update(data_files)
        prefix = "hf://datasets/me/ravdess-av"
        local = {s: [f.replace(prefix, published_dir) for f in v] for s, v in data_files.items()}
        return real(path, data_files=local, **kw)

    monkeypatch.setattr(loading.datasets, "load_dataset", fake_load)
    ds = load_emotion_dataset("ravdess", "me/ravdess-av", fold=1, cache_dir=hf_cache_dir)
    assert seen["test"] == [f"hf://datasets/me/ravdess-av/data/actor_{a:02d}.parquet" for a in (1, 2, 3, 4)]
    assert set(ds["validation"]["actor"]) == {5, 6}


def test_iemocap_publish_private_only(fake_iemocap_dir, tmp_path, fake_hub):
    with pytest.raises(RedistributionError):
        push_corpus(str(tmp_path), "me/iemocap", private=False, corpus="iemocap")
    assert "create_repo" not in fake_hub
    with pytest.raises(SystemExit):
        publish_main("iemocap", ["--source", fake_iemocap_dir, "--repo_id", "me/iemocap"])
    out = str(tmp_path / "iemo")
    argv = ["--source", fake_iemocap_dir, "--repo_id", "me/iemocap", "--private", "--output_dir", out]
    publish_main("iemocap", argv)
    assert fake_hub["create_repo"]["private"] is True
    card = open(os.path.join(out, "README.md")).read()
    assert "NO redistribution" in card
    ds = load_emotion_dataset("iemocap", out, fold=1)
    assert set(ds["test"]["session"]) == {1} and "dialog_start" in ds["test"].column_names
    assert "start" not in ds["test"].column_names  # the published video is already the utterance segment
    row = ds["test"][0]
    assert row["video"].metadata.num_frames == 5  # 0.5 s at 10 fps cut from the dialog


def _prefused_zip(path):
    frames = np.zeros((16, 32, 32, 3), dtype=np.uint8)
    with zipfile.ZipFile(path, "w") as zf:
        tmp = os.path.join(os.path.dirname(path), "c.mp4")
        write_clip(tmp, frames, 8)
        data = open(tmp, "rb").read()
        members = {"train": ["Angry", "Happy", "Neutral"], "val": ["Sad"], "test": ["Surprised", "Fear", "Disgust"]}
        for split, labels in members.items():
            for i, label in enumerate(labels):
                zf.writestr(f"RAVDESS_FSLF/{split}/{label}/clip_{i}.mp4", data)
        zf.writestr("__MACOSX/RAVDESS_FSLF/train/Angry/._clip_0.mp4", b"junk")
    return path


@pytest.mark.parametrize("streaming", [False, True])
def test_prefused_zip_layout(tmp_path, streaming):
    path = _prefused_zip(str(tmp_path / "RAVDESS_FSLF.zip"))
    ds = load_prefused_dataset(str(tmp_path), strategy="FSLF", streaming=streaming, cache_dir=str(tmp_path / "c"))
    assert list(ds) == ["train", "validation", "test"]
    names = ds["train"].features["emotion"].names
    assert len(names) == 7 and "calm" not in names
    rows = {s: list(ds[s]) for s in ds}
    assert [names[r["emotion"]] for r in rows["train"]] == ["angry", "happy", "neutral"]
    assert [names[r["emotion"]] for r in rows["test"]] == ["disgust", "fearful", "surprised"]
    assert [names[r["emotion"]] for r in rows["validation"]] == ["sad"]
    assert rows["test"][0]["video"].metadata.num_frames == 16
    assert load_prefused_dataset(path, strategy="FSLF", cache_dir=str(tmp_path / "c"))["validation"].num_rows == 1
