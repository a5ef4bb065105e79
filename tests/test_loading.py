"""data/loading.py without media decoding: published Parquet corpora split by fold, the pre-fused zips, the cache's
frame counts, features and face report, rank splitting, and the error paths; expected values computed here.
"""

import os
import types
import zipfile

import datasets
import numpy as np
import pytest

from mmder_hf.data import loading
from mmder_hf.data.bad_data import NO_FACE, BadDataError, BadDataReport
from mmder_hf.data.folds import get_fold


RAVDESS_8 = ["neutral", "calm", "happy", "sad", "angry", "fearful", "disgust", "surprised"]


def _write_published(folder, actors, names=RAVDESS_8, sharded=True, clips=2):
    """A published corpus: Parquet files ``data/..actor_NN..parquet`` (or one file) with actor / emotion columns."""
    features = datasets.Features(
        {
            "actor": datasets.Value("int64"),
            "emotion": datasets.ClassLabel(names=names),
            "file": datasets.Value("string"),
        }
    )
    os.makedirs(os.path.join(folder, "data"), exist_ok=True)
    rows = [
        {"actor": a, "emotion": (a + i) % len(names), "file": f"a{a:02d}_{i}"} for a in actors for i in range(clips)
    ]
    if sharded:
        for a in actors:
            part = [r for r in rows if r["actor"] == a]
            ds = datasets.Dataset.from_list(part, features=features)
            ds.to_parquet(os.path.join(folder, "data", f"train-actor_{a:02d}.parquet"))
    else:
        datasets.Dataset.from_list(rows, features=features).to_parquet(os.path.join(folder, "data", "all.parquet"))
    return str(folder)


@pytest.fixture(scope="module")
def published(tmp_path_factory):
    return _write_published(tmp_path_factory.mktemp("published"), range(1, 25))


@pytest.mark.parametrize("streaming", [False, True])
def test_a_published_corpus_is_split_by_fold_one_shard_per_actor(published, tmp_path, streaming):
    ds = loading.load_emotion_dataset(
        "ravdess", source=published, fold=2, streaming=streaming, cache_dir=str(tmp_path)
    )
    assert ds.bad_data is None and set(ds) == {"train", "validation", "test"}
    fold = get_fold("ravdess", 2)  # test 5-8, validation 9-10, train the rest
    for split in ("train", "validation", "test"):
        actors = sorted(r["actor"] for r in ds[split])
        assert actors == sorted(2 * list(fold.actors(split))), split
    first = next(iter(ds["test"]))
    assert first["emotion"] == (first["actor"] + int(first["file"][-1])) % 8
    if not streaming:
        assert ds["train"].features["emotion"].names == RAVDESS_8


def test_published_files_are_found_in_folders_and_not_elsewhere(published, tmp_path):
    files = loading._published_parquet_files(published, None)
    assert len(files) == 24 and files == sorted(files) and all(f.endswith(".parquet") for f in files)
    assert os.path.basename(files[0]) == "train-actor_01.parquet"
    (tmp_path / "empty").mkdir()
    assert loading._published_parquet_files(str(tmp_path / "empty"), None) is None
    assert loading._published_parquet_files(str(tmp_path / "nowhere" / "x"), None) is None
    assert loading._published_parquet_files(["a.mp4"], None) is None


def test_published_files_of_a_hub_repo(monkeypatch):
    calls = []

    def list_hub_files(repo, revision):
        calls.append((repo, revision))
        return ["README.md", "data/train-actor_02.parquet", "data/train-actor_01.parquet"]

    monkeypatch.setattr(loading, "list_hub_files", list_hub_files)
    assert loading._published_parquet_files("me/ravdess-av", "v1") == [
        "hf://datasets/me/ravdess-av@v1/data/train-actor_01.parquet",
        "hf://datasets/me/ravdess-av@v1/data/train-actor_02.parquet",
    ]
    assert loading._published_parquet_files("me/ravdess-av", None)[0] == (
        "hf://datasets/me/ravdess-av/data/train-actor_01.parquet"
    )
    assert calls == [("me/ravdess-av", "v1"), ("me/ravdess-av", None)]
    monkeypatch.setattr(loading, "list_hub_files", lambda repo, revision: ["README.md"])
    assert loading._published_parquet_files("me/raw", None) is None


def test_a_published_corpus_without_shards_is_filtered_on_the_actor_column(tmp_path):
    source = _write_published(tmp_path / "one", range(1, 25), sharded=False)
    ds = loading.load_emotion_dataset("ravdess", source=source, fold=6, cache_dir=str(tmp_path / "hf"))
    fold = get_fold("ravdess", 6)
    for split in ("train", "validation", "test"):
        assert sorted(ds[split]["actor"]) == sorted(2 * list(fold.actors(split))), split
    whole = loading.load_emotion_dataset("ravdess", source=source, fold=None, cache_dir=str(tmp_path / "hf"))
    assert list(whole) == ["train"] and len(whole["train"]) == 48
    stream = loading.load_emotion_dataset("ravdess", source=source, fold=6, streaming=True, cache_dir=str(tmp_path))
    assert sorted(r["actor"] for r in stream["validation"]) == [1, 1, 2, 2]


def test_a_published_corpus_missing_a_split_or_with_other_labels_is_refused(tmp_path):
    # actors 1-4 and 9-24: fold 1 validates on the next actors present (9, 10); fold 2 has no test actors
    source = _write_published(tmp_path / "gap", [*range(1, 5), *range(9, 25)], clips=1)
    ds = loading.load_emotion_dataset("ravdess", source=source, fold=1, cache_dir=str(tmp_path / "hf"))
    assert sorted(ds["validation"]["actor"]) == [9, 10] and sorted(ds["test"]["actor"]) == [1, 2, 3, 4]
    assert sorted(ds["train"]["actor"]) == list(range(11, 25))
    with pytest.raises(ValueError, match=r"ravdess fold 2 has none of its test actors \[5, 6, 7, 8\]"):
        loading.load_emotion_dataset("ravdess", source=source, fold=2, cache_dir=str(tmp_path / "hf"))
    ds = loading.load_emotion_dataset("ravdess", source=source, fold=3, cache_dir=str(tmp_path / "hf"))
    assert sorted(set(ds["test"]["actor"])) == [9, 10, 11, 12]
    with pytest.raises(ValueError, match="label_set 7class needs"):
        loading.load_emotion_dataset("ravdess", source=source, fold=3, label_set="7", cache_dir=str(tmp_path / "hf"))
    seven = _write_published(tmp_path / "seven", range(1, 25), names=RAVDESS_8[:1] + RAVDESS_8[2:], clips=1)
    ds = loading.load_emotion_dataset("ravdess", source=seven, fold=1, label_set="7class", cache_dir=str(tmp_path))
    assert ds["test"].features["emotion"].names == RAVDESS_8[:1] + RAVDESS_8[2:]


def test_a_published_iemocap_copy_missing_a_session_is_refused_for_the_folds_that_need_it(tmp_path):
    source = _write_published(tmp_path / "iemocap", range(1, 9), names=["neutral", "happy", "angry", "sad"], clips=1)
    ds = loading.load_emotion_dataset("iemocap", source=source, fold=1, cache_dir=str(tmp_path / "hf"))
    assert sorted(ds["test"]["actor"]) == [1, 2] and sorted(ds["validation"]["actor"]) == [3, 4]
    assert sorted(ds["train"]["actor"]) == [5, 6, 7, 8]  # session 5 (actors 9, 10) is not there
    with pytest.raises(ValueError, match=r"fold 4 of iemocap has no data for split\(s\) \['validation'\]"):
        loading.load_emotion_dataset("iemocap", source=source, fold=4, cache_dir=str(tmp_path / "hf"))


def test_the_built_in_synthetic_corpus_and_sources_required(tmp_path, monkeypatch):
    calls = []

    def make(folder, num_workers=None, **kwargs):
        calls.append((folder, num_workers, kwargs))
        return folder

    import mmder_hf.data.synthetic as synthetic

    monkeypatch.setattr(synthetic, "make_synthetic_corpus", make)
    assert loading.default_synthetic_corpus(str(tmp_path)) == str(tmp_path / "synthetic_ravdess")
    # another size is another folder: never written over the default corpus (nor its archives left in it)
    assert loading.default_synthetic_corpus(str(tmp_path), num_workers=0, num_actors=6) == str(
        tmp_path / "synthetic_ravdess_6x16"
    )
    assert loading.default_synthetic_corpus() == os.path.join(loading.DEFAULT_CACHE_DIR, "synthetic_ravdess")
    # the default settings given explicitly (as demo.py gives them): the default folder
    assert loading.default_synthetic_corpus(None, num_actors=24, clips_per_actor=16).endswith("/synthetic_ravdess")
    seeded = loading.default_synthetic_corpus(str(tmp_path), seed=1)
    assert os.path.basename(seeded).startswith("synthetic_ravdess_24x16_") and len(os.path.basename(seeded)) == 32
    assert [c[1:] for c in calls[:3]] == [(2, {}), (0, {"num_actors": 6}), (2, {})]
    assert loading.DEFAULT_CACHE_DIR == os.path.join(os.path.expanduser("~"), ".cache", "mmder_hf")
    for corpus in ("crema_d", "iemocap"):
        with pytest.raises(ValueError, match=f"{corpus} needs a source"):
            loading.load_emotion_dataset(corpus, cache_dir=str(tmp_path))
    with pytest.raises(ValueError, match="Unknown label set"):
        loading.load_emotion_dataset("ravdess", label_set="6class", cache_dir=str(tmp_path))
    # a RAVDESS source of None reads the synthetic corpus (here: a published copy in its place)
    published = _write_published(tmp_path / "synthetic_ravdess", range(1, 25), clips=1)
    monkeypatch.setattr(loading, "default_synthetic_corpus", lambda cache_dir: calls.append(cache_dir) or published)
    ds = loading.load_emotion_dataset("ravdess", fold=4, cache_dir=str(tmp_path / "c"))
    assert calls[-1] == str(tmp_path / "c") and sorted(ds["test"]["actor"]) == [13, 14, 15, 16]


def test_prepare_surfaces_strict_modes_error():
    class Builder:
        def __init__(self, error=None):
            self.error, self.calls = error, 0

        def download_and_prepare(self):
            self.calls += 1
            if self.error:
                raise self.error

    ok = Builder()
    loading._prepare(ok)
    assert ok.calls == 1
    strict = BadDataError("ravdess: x.mp4: empty file (strict mode)")
    inner = RuntimeError("while generating")
    inner.__context__ = strict
    wrapped = datasets.exceptions.DatasetGenerationError("An error occurred while generating the dataset")
    wrapped.__cause__ = inner
    with pytest.raises(BadDataError, match="empty file") as err:
        loading._prepare(Builder(wrapped))
    assert err.value is strict
    other = datasets.exceptions.DatasetGenerationError("other")
    other.__cause__ = RuntimeError("disk full")
    with pytest.raises(datasets.exceptions.DatasetGenerationError, match="other"):
        loading._prepare(Builder(other))
    with pytest.raises(KeyError):
        loading._prepare(Builder(KeyError("not wrapped")))


# ------------------------------------------------------------------------------------------ pre-fused zips
def test_prefused_members_read_split_and_label_from_the_path():
    names = [
        "RAVDESS_FSLF/train/Angry/01.mp4",
        "RAVDESS_FSLF\\val\\Fear\\02.MP4",
        "test/Surprised/03.mp4",
        "x/validation/Neutral/04.mp4",
        "train/Calm/05.mp4",  # not a 7-class folder
        "clips/06.mp4",  # no split folder
        "__MACOSX/train/Angry/._01.mp4",
        "train/Angry/notes.txt",
        "train/Happy/sub/07.mp4",  # the label folder need not hold the file directly
    ]
    members, dropped = loading._prefused_members(names)
    assert members == sorted(
        [
            ("RAVDESS_FSLF/train/Angry/01.mp4", "train", "angry"),
            ("RAVDESS_FSLF\\val\\Fear\\02.MP4", "validation", "fearful"),
            ("test/Surprised/03.mp4", "test", "surprised"),
            ("x/validation/Neutral/04.mp4", "validation", "neutral"),
            ("train/Happy/sub/07.mp4", "train", "happy"),
        ]
    )
    assert dropped == {
        "train/Calm/05.mp4": "unknown label folder 'Calm'",
        "clips/06.mp4": "not in a {train,val,test}/<Label>/ folder",
    }
    assert loading._prefused_members(["train/06.mp4"]) == (
        [],
        {"train/06.mp4": "not in a {train,val,test}/<Label>/ folder"},
    )
    assert loading.PREFUSED_LABELS == {
        "Angry": "angry",
        "Disgust": "disgust",
        "Fear": "fearful",
        "Happy": "happy",
        "Neutral": "neutral",
        "Sad": "sad",
        "Surprised": "surprised",
    }


def _prefused_zip(path):
    with zipfile.ZipFile(path, "w") as zf:
        zf.writestr("RAVDESS_FSLF/train/Angry/a.mp4", b"angry-train")
        zf.writestr("RAVDESS_FSLF/train/Sad/b.mp4", b"sad-train")
        zf.writestr("RAVDESS_FSLF/test/Happy/c.mp4", b"happy-test")
        zf.writestr("RAVDESS_FSLF/train/Calm/d.mp4", b"calm")
    return path


def test_prefused_zip_location(tmp_path, monkeypatch):
    zip_path = _prefused_zip(tmp_path / "RAVDESS_FSLF.zip")
    assert loading._prefused_zip(str(zip_path), "ofos", None) == str(zip_path)  # a file is used as it is
    assert loading._prefused_zip(tmp_path, "fslf", None) == str(zip_path)
    with pytest.raises(FileNotFoundError, match="RAVDESS_CFAS.zip not found in"):
        loading._prefused_zip(str(tmp_path), "cfas", None)
    with pytest.raises(FileNotFoundError, match="Cannot find the pre-fused zip in"):
        loading._prefused_zip(str(tmp_path / "no" / "where" / "x"), "fslf", None)
    import huggingface_hub

    calls = []
    monkeypatch.setattr(huggingface_hub, "hf_hub_download", lambda *a, **k: calls.append((a, k)) or "/hub/zip")
    assert loading._prefused_zip(None, "sfas", "main") == "/hub/zip"
    assert calls == [(("NoahMartinezXiang/RAVDESS", "RAVDESS_SFAS.zip"), {"repo_type": "dataset", "revision": "main"})]


def test_prefused_dataset_map_style_and_streaming(tmp_path):
    zip_path = str(_prefused_zip(tmp_path / "RAVDESS_FSLF.zip"))
    ds = loading.load_prefused_dataset(zip_path, "fslf", cache_dir=str(tmp_path / "cache"))
    assert list(ds) == ["train", "test"]  # the splits present, in order
    assert ds.bad_data.skipped == {"RAVDESS_FSLF/train/Calm/d.mp4": "unknown label folder 'Calm'"}
    names = ds["train"].features["emotion"].names
    assert names == ["neutral", "happy", "sad", "angry", "fearful", "disgust", "surprised"]
    assert [names[e] for e in ds["train"]["emotion"]] == ["angry", "sad"]
    assert ds["test"]["file"] == ["RAVDESS_FSLF/test/Happy/c.mp4"]
    video = ds["test"].with_format("arrow")[:]["video"].to_pylist()[0]
    root = os.path.dirname(os.path.dirname(os.path.dirname(os.path.dirname(video["path"]))))
    assert os.path.basename(root).startswith("FSLF-") and os.path.isfile(os.path.join(root, ".complete"))
    with open(video["path"], "rb") as f:
        assert f.read() == b"happy-test"  # extracted once under cache_dir
    assert not os.path.exists(os.path.join(root, "RAVDESS_FSLF", "train", "Calm"))
    stream = loading.load_prefused_dataset(zip_path, "fslf", streaming=True)
    assert set(stream) == {"train", "test"} and stream.bad_data.skipped == ds.bad_data.skipped
    rows = list(stream["train"].decode(False))
    assert [(r["file"], r["video"]["bytes"]) for r in rows] == [
        ("RAVDESS_FSLF/train/Angry/a.mp4", b"angry-train"),
        ("RAVDESS_FSLF/train/Sad/b.mp4", b"sad-train"),
    ]
    empty = tmp_path / "empty.zip"
    with zipfile.ZipFile(empty, "w") as zf:
        zf.writestr("readme.txt", b"x")
    with pytest.raises(ValueError, match="has no"):
        loading.load_prefused_dataset(str(empty), cache_dir=str(tmp_path / "cache"))


# ------------------------------------------------------------------------------------------ cache pieces
def test_cache_frame_counts_per_strategy():
    def proc(strategy, video, audio):
        return types.SimpleNamespace(fusion_strategy=strategy, num_video_frames=video, num_audio_frames=audio)

    assert loading.cache_frame_counts(proc("prefused", 16, 8)) == (16, 0)
    assert loading.cache_frame_counts(proc("FSLF", 8, 8)) == (8, 8)
    assert loading.cache_frame_counts(proc("video", 4, 0)) == (4, 4)
    assert loading.cache_frame_counts(proc("OFOS", 6, 10)) == (10, 10)


def test_cache_features_shapes_and_kept_columns():
    ds = datasets.Dataset.from_dict(
        {"actor": [1], "file": ["a"]},
        features=datasets.Features({"actor": datasets.Value("int32"), "file": datasets.Value("string")}),
    )
    features = loading._cache_features(32, (8, 4), ds, ["actor", "missing"], face_crop=True)
    assert list(features) == ["labels", "pixel_values", "audio_values", "face_boxes", "face_source", "actor"]
    assert features["pixel_values"] == datasets.Array4D(shape=(8, 3, 32, 32), dtype="uint8")
    assert features["audio_values"] == datasets.Array4D(shape=(4, 3, 32, 32), dtype="uint8")
    assert features["face_boxes"] == datasets.Array2D(shape=(8, 4), dtype="float32")
    assert features["actor"] == datasets.Value("int32") and features["labels"] == datasets.Value("int64")
    features = loading._cache_features(16, (16, 0), ds, [], face_crop=False)
    assert list(features) == ["labels", "pixel_values"]


def test_rows_batches_and_row_names():
    rows = [{"a": 1, "b": "x"}, {"a": 2, "b": "y"}]
    assert loading._batch(rows) == {"a": [1, 2], "b": ["x", "y"]}
    assert list(loading._unbatch({"a": [1, 2], "b": ["x", "y"]})) == rows
    assert loading._row_name({"video": {"path": "v.mp4", "bytes": None}}) == "v.mp4"
    assert loading._row_name({"video": {"path": None, "bytes": b"1234"}}) == "<4 bytes of media>"
    assert loading._row_name({"video": "clip.mp4"}) == "clip.mp4"
    assert loading._row_name({"audio": "a.wav"}) == "<no video>"


def test_face_report_counts_clips_without_a_face(caplog):
    boxes = np.zeros((3, 2, 4), dtype=np.float32)
    boxes[1] = np.nan  # no face in any frame
    boxes[2, 0] = np.nan  # a face in one frame: fine
    features = datasets.Features(
        {"face_boxes": datasets.Array2D(shape=(2, 4), dtype="float32"), "face_source": datasets.Value("string")}
    )
    split = datasets.Dataset.from_dict({"face_boxes": boxes, "face_source": ["a", "b", "c"]}, features=features)
    other = datasets.Dataset.from_dict({"labels": [1]})
    cached = datasets.DatasetDict({"train": split, "test": other})
    source = types.SimpleNamespace(bad_data=BadDataReport("ravdess"))
    with caplog.at_level("WARNING"):
        out = loading._report_faces(cached, source)
    assert out is cached and out.bad_data is source.bad_data
    assert out.bad_data.noted == {"b": NO_FACE} and out.bad_data.skipped == {}
    assert "1 cached clip(s) show no face" in caplog.text
    fresh = loading._report_faces(datasets.DatasetDict({"test": other}), object())
    assert fresh.bad_data.corpus == "preprocess cache" and not fresh.bad_data.noted


# ------------------------------------------------------------------------------------------ ranks
def test_split_for_rank_gives_each_example_to_one_rank():
    ds = datasets.Dataset.from_dict({"i": list(range(10))})
    assert loading.split_for_rank(ds, rank=0, world_size=1) is ds
    parts = [list(loading.split_for_rank(ds, rank=r, world_size=3)["i"]) for r in range(3)]
    assert sorted(sum(parts, [])) == list(range(10)) and all(parts)
    assert loading.split_for_rank(ds) is ds  # one process: accelerate's state says world size 1
    # the rank left out is this process's (0 here): the first of 2 contiguous halves
    assert list(loading.split_for_rank(ds, world_size=2)["i"]) == [0, 1, 2, 3, 4]
    for rank in (-1, 3):
        with pytest.raises(ValueError, match=r"rank must be in \[0, 3\)"):
            loading.split_for_rank(ds, rank=rank, world_size=3)


class _StandInBuilder:
    """Records how load_emotion_dataset configures and uses a corpus builder (no media)."""

    made = []
    prepared_now = False
    report = None

    def __init__(self, cache_dir=None, **config):
        self.cache_dir, self.config, self.prepared = cache_dir, config, 0
        _StandInBuilder.made.append(self)

    def download_and_prepare(self):
        self.prepared += 1

    def stored_report(self):
        return type(self).report

    def as_dataset(self):
        return datasets.DatasetDict({"train": datasets.Dataset.from_dict({"actor": [1]})})


def test_a_builder_is_configured_prepared_and_its_stored_report_shown(tmp_path, monkeypatch, caplog):
    monkeypatch.setitem(loading.BUILDERS, "ravdess", _StandInBuilder)
    monkeypatch.setattr(_StandInBuilder, "made", [])
    source = tmp_path / "zips"
    source.mkdir()
    report = BadDataReport("ravdess", skipped={"Actor_01/x.mp4": "empty file"})
    monkeypatch.setattr(_StandInBuilder, "report", report)
    with caplog.at_level("INFO"):
        ds = loading.load_emotion_dataset(
            "RAVDESS", source=source, fold=3, label_set="7", strict=True, revision="v2", cache_dir=str(tmp_path / "c")
        )
    (builder,) = _StandInBuilder.made
    assert builder.cache_dir == str(tmp_path / "c") and builder.prepared == 1 and ds.bad_data is report
    fingerprint = builder.config.pop("data_fingerprint")
    assert builder.config == {
        "source": str(source),
        "fold": 3,
        "label_set": "7class",
        "strict": True,
        "validate_media": True,
        "revision": "v2",
        "vocal_channel": "speech",
    }
    assert len(fingerprint) == 16
    # a reused cache shows the report saved with it; a fresh preparation has logged it already
    assert "(when the cached data in" in caplog.text and "Actor_01/x.mp4" in caplog.text
    caplog.clear()
    monkeypatch.setattr(_StandInBuilder, "prepared_now", True)
    loading.load_emotion_dataset("ravdess", source=str(source), cache_dir=str(tmp_path / "c"))
    assert "(when the cached data in" not in caplog.text
    monkeypatch.setattr(_StandInBuilder, "report", None)
    with caplog.at_level("INFO"):
        ds = loading.load_emotion_dataset("ravdess", source=str(source), cache_dir=str(tmp_path / "c"))
    assert ds.bad_data is None and "No bad-data report is stored" in caplog.text


def test_a_published_corpus_is_found_whatever_the_revision(published, tmp_path):
    ds = loading.load_emotion_dataset("ravdess", source=published, fold=1, revision="main", cache_dir=str(tmp_path))
    assert ds.bad_data is None and sorted(set(ds["test"]["actor"])) == [1, 2, 3, 4]


class _StandInProcessor:
    """Returns 8-bit clips whose pixels encode the row (its ``video`` name's number) and face boxes (NaN: no face
    in clip ``b``); records its calls."""

    fusion_strategy, num_video_frames, num_audio_frames, image_size, face_crop = "FSLF", 2, 3, 4, True

    def __init__(self):
        self.calls = []

    def to_dict(self):
        return {"image_size": self.image_size, "face_crop": self.face_crop, "num_video_frames": self.num_video_frames}

    def __call__(self, videos=None, return_tensors=None, **kwargs):
        import torch

        self.calls.append({"videos": list(videos), **kwargs})
        n = [int(v[1:]) for v in videos]
        pixel = torch.stack([torch.full((kwargs["num_video_frames"], 3, 4, 4), i, dtype=torch.uint8) for i in n])
        audio = torch.stack([torch.full((kwargs["num_audio_frames"], 3, 4, 4), 100 + i, dtype=torch.uint8) for i in n])
        boxes = torch.tensor([[[float("nan")] * 4 if i == 2 else [0.0, 0.0, 1.0, 1.0]] * 3 for i in n])
        out = {"pixel_values": pixel, "audio_values": audio}
        return {**out, "face_boxes": boxes} if self.face_crop else out


def test_preprocess_to_cache_stores_8bit_clips_labels_faces_and_is_reused(tmp_path, caplog):
    import torch

    source = datasets.DatasetDict(
        {"test": datasets.Dataset.from_dict({"video": ["v1", "v2", "v3"], "emotion": [5, 0, 7], "actor": [1, 2, 2]})}
    )
    source.bad_data = BadDataReport("ravdess")
    proc = _StandInProcessor()
    with caplog.at_level("WARNING"):
        cached = loading.preprocess_to_cache(source, proc, str(tmp_path), batch_size=2)
    # one cache of max(2, 3) = 3 frames per modality, 8-bit, asked without rescaling or normalisation
    assert [c["videos"] for c in proc.calls] == [["v1", "v2"], ["v3"]]
    assert all(
        (c["do_rescale"], c["do_normalize"], c["num_video_frames"], c["num_audio_frames"]) == (False, False, 3, 3)
        for c in proc.calls
    )
    test = cached["test"][:]
    assert test["pixel_values"].dtype == test["audio_values"].dtype == torch.uint8
    assert test["pixel_values"].shape == (3, 3, 3, 4, 4) and test["audio_values"].shape == (3, 3, 3, 4, 4)
    assert [int(x) for x in test["pixel_values"][:, 0, 0, 0, 0]] == [1, 2, 3]
    assert [int(x) for x in test["audio_values"][:, 0, 0, 0, 0]] == [101, 102, 103]
    assert test["labels"].tolist() == [5, 0, 7] and test["actor"].tolist() == [1, 2, 2]
    assert list(test["face_source"]) == ["v1", "v2", "v3"]
    assert cached.bad_data is source.bad_data and source.bad_data.noted == {"v2": NO_FACE}
    assert "1 cached clip(s) show no face" in caplog.text
    # the same data and settings: read back, the processor is not called again
    again = loading.preprocess_to_cache(source, proc, str(tmp_path), batch_size=2)
    assert len(proc.calls) == 2 and again["test"][:]["labels"].tolist() == [5, 0, 7]
    # other settings: a new cache
    proc.image_size = 4
    proc.face_crop = False
    loading.preprocess_to_cache(source, proc, str(tmp_path), batch_size=3, label_column=None)
    assert len(proc.calls) == 3 and len([d for d in os.listdir(tmp_path) if d != "tmp"]) == 2


def test_preprocess_to_cache_refuses_float_frames(tmp_path):
    import torch

    class FloatFrames(_StandInProcessor):
        def __call__(self, videos=None, return_tensors=None, **kwargs):
            out = super().__call__(videos, return_tensors, **kwargs)
            return {**out, "pixel_values": out["pixel_values"].to(torch.float32)}

    source = datasets.DatasetDict({"test": datasets.Dataset.from_dict({"video": ["v1"], "emotion": [1]})})
    with pytest.raises(ValueError, match="pixel_values is torch.float32, not 8-bit images"):
        loading.preprocess_to_cache(source, FloatFrames(), str(tmp_path))


def test_a_cache_left_half_written_is_built_again(tmp_path):
    """A run killed while saving leaves the cache folder without its dataset_dict.json: rebuilt, never loaded."""
    source = datasets.DatasetDict({"test": datasets.Dataset.from_dict({"video": ["v1", "v2"], "emotion": [3, 4]})})
    proc = _StandInProcessor()
    loading.preprocess_to_cache(source, proc, str(tmp_path), batch_size=2)
    (folder,) = [d for d in os.listdir(tmp_path) if d != "tmp"]
    os.remove(tmp_path / folder / "dataset_dict.json")
    again = loading.preprocess_to_cache(source, proc, str(tmp_path), batch_size=2)
    assert len(proc.calls) == 2 and again["test"][:]["labels"].tolist() == [3, 4]
    assert (tmp_path / folder / "dataset_dict.json").is_file()


def test_a_streaming_split_is_cached_under_what_it_reads_and_its_transforms():
    def rows():
        yield from ({"video": f"v{i}", "emotion": i} for i in range(4))

    stream = datasets.IterableDataset.from_generator(rows)
    same = datasets.IterableDataset.from_generator(rows)
    identity = loading._streaming_identity
    assert identity(stream) == identity(same)
    assert identity(stream.take(2)) != identity(stream)  # fewer clips: another cache
    assert identity(stream.skip(1)) not in (identity(stream), identity(stream.take(2)))
