"""Builders on synthetic RAVDESS zips and fake CREMA-D / IEMOCAP trees; bad data; collator; ranks; cache."""

import logging
import os
import zipfile

import datasets
import numpy as np
import pytest
import torch
from fixtures_data import (  # noqa: F401  (fixtures)
    CLIPS,
    NUM_ACTORS,
    copy_tree_with_bad_data,
    fake_crema_d_dir,
    fake_iemocap_dir,
    hf_cache_dir,
    synthetic_ravdess_dir,
)

from mmder_hf.data import (
    BadDataError,
    MultiMAEDERDataCollator,
    RavdessBuilder,
    get_fold,
    load_emotion_dataset,
    preprocess_to_cache,
    split_for_rank,
)
from mmder_hf.data.probing import probe_media


def _actors(split):
    return [row["actor"] for row in split] if isinstance(split, datasets.IterableDataset) else split["actor"]


def _no_leak(ds, corpus, fold, present):
    expected = get_fold(corpus, fold, present)
    seen = {s: set(_actors(ds[s].select_columns(["actor"]))) for s in ("train", "validation", "test")}
    for s in seen:
        assert seen[s] == set(expected.actors(s)), s
    assert not (
        seen["train"] & seen["test"] or seen["train"] & seen["validation"] or seen["validation"] & seen["test"]
    )


def test_ravdess_builder_map_style(synthetic_ravdess_dir, hf_cache_dir):
    ds = load_emotion_dataset("ravdess", source=synthetic_ravdess_dir, fold=1, cache_dir=hf_cache_dir)
    assert isinstance(ds, datasets.DatasetDict) and set(ds) == {"train", "validation", "test"}
    assert sum(len(ds[s]) for s in ds) == NUM_ACTORS * CLIPS  # video-only and song files are skipped
    _no_leak(ds, "ravdess", 1, range(1, NUM_ACTORS + 1))
    assert ds["train"].features["emotion"].names[1] == "calm"
    assert set(ds["train"]["vocal_channel"]) == {"speech"}
    assert all(f.startswith("01-01-") for f in ds["test"]["file"])
    row = ds["test"][0]
    meta_from_name = row["file"].split(".")[0].split("-")
    assert row["emotion"] == int(meta_from_name[2]) - 1 and row["actor"] == int(meta_from_name[6])
    assert row["gender"] == ("male" if row["actor"] % 2 else "female")
    assert row["video"].metadata.num_frames == 8
    assert row["audio"].get_all_samples().data.shape[-1] >= 16000


def test_ravdess_builder_streaming_and_options(synthetic_ravdess_dir, hf_cache_dir):
    ds = load_emotion_dataset("ravdess", source=synthetic_ravdess_dir, fold=2, streaming=True, label_set="7class")
    assert isinstance(ds, datasets.IterableDatasetDict)
    assert ds["test"].n_shards == 4  # one archive per test actor, read member by member
    rows = list(ds["test"])
    assert len(rows) == 4 * CLIPS and {r["actor"] for r in rows} == {5, 6, 7, 8}
    names = ds["test"].features["emotion"].names
    assert len(names) == 7
    calm = [r for r in rows if r["file"].split("-")[2] == "02"]
    assert calm and all(names[r["emotion"]] == "neutral" for r in calm)
    assert rows[0]["video"].metadata.num_frames == 8
    _no_leak(ds, "ravdess", 2, range(1, NUM_ACTORS + 1))
    song = load_emotion_dataset(
        "ravdess", source=synthetic_ravdess_dir, fold=1, vocal_channel="song", cache_dir=hf_cache_dir
    )
    assert set(song["test"]["vocal_channel"]) == {"song"} and len(song["test"]) == 4 * 8
    both = load_emotion_dataset(
        "ravdess", source=synthetic_ravdess_dir, fold=None, vocal_channel="both", cache_dir=hf_cache_dir
    )
    assert list(both) == ["train"] and len(both["train"]) == NUM_ACTORS * 16


def test_ravdess_builder_reads_extracted_folders_and_url_lists(synthetic_ravdess_dir, tmp_path, hf_cache_dir):
    for name in sorted(os.listdir(synthetic_ravdess_dir)):
        if name.startswith("Video_Speech"):
            with zipfile.ZipFile(os.path.join(synthetic_ravdess_dir, name)) as zf:
                zf.extractall(tmp_path / "extracted")
    ds = load_emotion_dataset("ravdess", source=str(tmp_path / "extracted"), fold=1, cache_dir=hf_cache_dir)
    assert len(ds["test"]) == 4 * CLIPS
    zips = [os.path.join(synthetic_ravdess_dir, f"Video_Speech_Actor_{a:02d}.zip") for a in range(1, 9)]
    ds = load_emotion_dataset("ravdess", source=zips, fold=2, streaming=True)
    assert len(list(ds["validation"])) == 2 * CLIPS


def test_ravdess_url_lists_map_style_are_fetched_by_the_download_manager(synthetic_ravdess_dir, tmp_path):
    """Archives listed as URLs, map-style: datasets' download manager fetches them (extracting needs a local file;
    a URL used to fail there), and they give the rows their local paths give."""
    import pathlib

    paths = [os.path.join(synthetic_ravdess_dir, f"Video_Speech_Actor_{a:02d}.zip") for a in range(1, 9)]
    urls = [pathlib.Path(path).as_uri() for path in paths]  # file://: a URL that needs no network
    from_urls = load_emotion_dataset("ravdess", source=urls, fold=2, cache_dir=str(tmp_path / "hf"))
    from_paths = load_emotion_dataset("ravdess", source=paths, fold=2, cache_dir=str(tmp_path / "hf"))
    assert sorted(from_urls["validation"]["file"]) == sorted(from_paths["validation"]["file"])
    assert len(from_urls["validation"]) == 2 * CLIPS and not from_urls.bad_data.skipped


def test_ravdess_hub_repo_source(synthetic_ravdess_dir, monkeypatch, hf_cache_dir):
    """A Hub repo holding the zips: files are listed with HfApi and fetched with hf_hub_download."""
    import huggingface_hub

    files = sorted(os.listdir(synthetic_ravdess_dir))
    monkeypatch.setattr(huggingface_hub.HfApi, "list_repo_files", lambda self, repo_id, **kw: files)
    fetched = []

    def fake_download(repo_id, filename, repo_type=None, revision=None):
        assert repo_id == "someone/ravdess-zips" and repo_type == "dataset"
        fetched.append(filename)
        return os.path.join(synthetic_ravdess_dir, filename)

    monkeypatch.setattr(huggingface_hub, "hf_hub_download", fake_download)
    ds = load_emotion_dataset("ravdess", source="someone/ravdess-zips", fold=1, cache_dir=hf_cache_dir)
    assert len(ds["test"]) == 4 * CLIPS
    assert "Video_Speech_Actor_01.zip" in fetched and not any("Song" in f for f in fetched)
    from mmder_hf.data.sources import hub_file_location

    assert hub_file_location("a/b", "x.zip", streaming=True) == "hf://datasets/a/b/x.zip"


def test_bad_data_reported_and_skipped(synthetic_ravdess_dir, tmp_path, caplog, hf_cache_dir):
    expected = copy_tree_with_bad_data(synthetic_ravdess_dir, tmp_path / "bad")
    builder = RavdessBuilder(cache_dir=hf_cache_dir, source=str(tmp_path / "bad"), fold=None)
    with caplog.at_level(logging.WARNING):
        builder.download_and_prepare()
    report = builder.report.skipped
    assert len(report) == len(expected)
    for name, reason in expected.items():
        key = next(k for k in report if k.endswith(name))
        assert report[key] == reason, (name, report[key])  # exact: "audio" would also match "no audio track"
    assert caplog.text.count("ravdess: skipped 10 file(s)") == 1 and "README.txt" in caplog.text  # logged once
    assert builder.stored_report().skipped == report  # saved beside the prepared data
    ds = builder.as_dataset()["train"]
    assert len(ds) == 7 * CLIPS  # actor 8's archive is unreadable; actor 1's good clips remain
    assert 8 not in set(ds["actor"]) and set(ds.filter(lambda a: a == 1, input_columns="actor")["file"]) == {
        f"01-01-0{e}-01-0{1 + (e > 8)}-01-01.mp4" for e in range(1, 9)
    }
    streaming = RavdessBuilder(source=str(tmp_path / "bad"), fold=None).as_streaming_dataset()["train"]
    assert len(list(streaming)) == 7 * CLIPS
    with pytest.raises(BadDataError, match="corrupt archive|unknown file name"):
        load_emotion_dataset("ravdess", str(tmp_path / "bad"), fold=1, strict=True, cache_dir=str(tmp_path / "c2"))
    with pytest.raises(BadDataError):
        list(load_emotion_dataset("ravdess", str(tmp_path / "bad"), fold=1, strict=True, streaming=True)["test"])


def test_crema_d_builder(fake_crema_d_dir, hf_cache_dir, caplog):
    with caplog.at_level(logging.WARNING):
        ds = load_emotion_dataset("crema_d", source=fake_crema_d_dir, fold=1, cache_dir=hf_cache_dir)
    assert "known broken CREMA-D clip" in caplog.text and "1064_IEO_DIS_MD" in caplog.text
    assert "1002_TIE_SAD_XX" in caplog.text and "notes_about_clips.flv" in caplog.text
    assert set(ds["test"]["actor"]) == {1001, 1002} and set(ds["validation"]["actor"]) == {1019, 1020}
    assert set(ds["train"]["actor"]) == {1037, 1038, 1055, 1056, 1073, 1076}
    assert len(ds["train"]) == 12 and "1076_MTI_NEU_XX" not in ds["train"]["clip_id"]
    row = ds["test"][0]
    assert row["clip_id"] == "1001_DFA_ANG_XX" and row["gender"] == "male" and row["sentence"] == "DFA"
    assert ds["test"].features["emotion"].int2str(row["emotion"]) == "angry"
    assert row["video"].metadata.num_frames == 6 and row["audio"].get_all_samples().sample_rate == 16000
    stream = load_emotion_dataset("crema_d", source=fake_crema_d_dir, fold=5, streaming=True)
    assert {r["actor"] for r in stream["test"]} == {1073, 1076}


def test_iemocap_builder_and_segment_collation(fake_iemocap_dir, hf_cache_dir):
    ds = load_emotion_dataset("iemocap", source=fake_iemocap_dir, fold=2, cache_dir=hf_cache_dir)
    ds["test"] = ds["test"].sort("start")
    assert set(ds["test"]["session"]) == {2} and set(ds["validation"]["session"]) == {3}
    assert set(ds["train"]["session"]) == {1, 4, 5}
    names = ds["test"].features["emotion"].names
    assert len(ds["test"]) == 5  # 'fru' is outside the 4-class set
    labels = [names[e] for e in ds["test"]["emotion"]]
    assert labels == ["neutral", "happy", "angry", "sad", "happy"]  # exc -> happy
    row = ds["test"][1]
    assert row["utterance_id"] == "Ses02F_impro01_M001" and row["gender"] == "male" and row["actor"] == 3
    assert (row["start"], row["end"]) == (0.5, 1.0)

    class StandIn:  # records what the collator asks the processor for
        def __call__(
            self, videos=None, audio=None, clip_start=None, clip_end=None, audio_start=None, return_tensors="pt"
        ):
            self.kwargs = dict(
                videos=videos, audio=audio, clip_start=clip_start, clip_end=clip_end, audio_start=audio_start
            )
            frames = [
                v.get_frames_played_in_range(s, e).data.float().mean() for v, s, e in zip(videos, clip_start, clip_end)
            ]
            return {"pixel_values": torch.stack(frames)}

    proc = StandIn()
    batch = MultiMAEDERDataCollator(proc)([ds["test"][i] for i in range(3)])
    assert batch["labels"].tolist() == ds["test"]["emotion"][:3]
    assert proc.kwargs["clip_start"] == [0.0, 0.5, 1.0] and len(proc.kwargs["audio"]) == 3  # separate wav files
    assert proc.kwargs["audio_start"] == [0.0, 0.5, 1.0]  # each wav begins at its utterance's start
    means = batch["pixel_values"].tolist()  # the dialog's colour steps up every 0.5 s
    assert means[0] < means[1] < means[2] and means[2] == pytest.approx(80, abs=8)


@pytest.fixture(scope="module")
def tiny_processor():
    from mmder_hf.models.multimae_der.processing_multimae_der import MultiMAEDERProcessor

    return MultiMAEDERProcessor(image_size=32, num_frames=4)


def test_collator_with_processor_map_and_streaming(synthetic_ravdess_dir, hf_cache_dir, tiny_processor):
    ds = load_emotion_dataset("ravdess", source=synthetic_ravdess_dir, fold=1, cache_dir=hf_cache_dir)
    collator = MultiMAEDERDataCollator(tiny_processor)
    loader = torch.utils.data.DataLoader(ds["test"], batch_size=4, collate_fn=collator, num_workers=1)
    batch = next(iter(loader))
    assert batch["pixel_values"].shape == (4, 2, 3, 32, 32) and batch["audio_values"].shape == (4, 2, 3, 32, 32)
    assert batch["labels"].tolist() == ds["test"]["emotion"][:4]
    assert torch.isfinite(batch["pixel_values"]).all()
    stream = load_emotion_dataset("ravdess", source=synthetic_ravdess_dir, fold=1, streaming=True)
    batch = next(iter(torch.utils.data.DataLoader(stream["validation"], batch_size=3, collate_fn=collator)))
    assert batch["audio_values"].shape[0] == 3 and batch["labels"].dtype == torch.long
    transformed = ds["validation"].with_transform(collator.as_transform())
    assert transformed[0:2]["pixel_values"].shape == (2, 2, 3, 32, 32)


def test_preprocess_cache_is_reused(synthetic_ravdess_dir, hf_cache_dir, tiny_processor, tmp_path, monkeypatch):
    ds = load_emotion_dataset("ravdess", source=synthetic_ravdess_dir, fold=2, cache_dir=hf_cache_dir)
    ds = datasets.DatasetDict({"validation": ds["validation"].select(range(4))})
    cached = preprocess_to_cache(ds, tiny_processor, str(tmp_path), batch_size=2)
    # stored as 8-bit images (a quarter of float32's size) ...
    assert cached["validation"][0]["pixel_values"].shape == (2, 3, 32, 32)
    assert cached["validation"][0]["pixel_values"].dtype == torch.uint8
    assert cached["validation"].features["audio_values"].dtype == "uint8"
    assert [int(x) for x in cached["validation"]["labels"]] == list(ds["validation"]["emotion"])
    # ... and collated into exactly the inputs the processor makes from the files
    collator = MultiMAEDERDataCollator(tiny_processor)
    fresh = collator([ds["validation"][i] for i in range(4)])
    from_cache = collator([cached["validation"][i] for i in range(4)])
    for key in ("pixel_values", "audio_values", "labels"):
        assert from_cache[key].dtype == fresh[key].dtype and torch.equal(from_cache[key], fresh[key]), key
    monkeypatch.setattr(MultiMAEDERDataCollator, "__call__", lambda *a, **k: pytest.fail("cache not reused"))
    again = preprocess_to_cache(ds, tiny_processor, str(tmp_path), batch_size=2)
    assert torch.equal(again["validation"][0]["pixel_values"], cached["validation"][0]["pixel_values"])
    monkeypatch.undo()
    batch = MultiMAEDERDataCollator(tiny_processor)([again["validation"][i] for i in range(2)])
    assert batch["pixel_values"].shape == (2, 2, 3, 32, 32) and batch["labels"].shape == (2,)


def test_one_cache_serves_every_strategy_with_the_same_frames_per_modality(
    synthetic_ravdess_dir, hf_cache_dir, tiny_processor, tmp_path, monkeypatch
):
    from mmder_hf import MultiMAEDERProcessor

    ds = load_emotion_dataset("ravdess", source=synthetic_ravdess_dir, fold=2, cache_dir=hf_cache_dir)
    ds = datasets.DatasetDict({"validation": ds["validation"].select(range(3))})
    cached = preprocess_to_cache(ds, tiny_processor, str(tmp_path), batch_size=3)  # FSLF, 4 frames: 2 + 2
    monkeypatch.setattr(MultiMAEDERDataCollator, "__call__", lambda *a, **k: pytest.fail("cache not shared"))
    for strategy in ("video", "audio"):  # 2 frames of one modality: the same clips
        other = MultiMAEDERProcessor(image_size=32, num_frames=2, fusion_strategy=strategy)
        again = preprocess_to_cache(ds, other, str(tmp_path), batch_size=3)
        for key in ("pixel_values", "audio_values"):
            assert torch.equal(again["validation"][:][key], cached["validation"][:][key])
    monkeypatch.undo()
    assert len([p for p in os.listdir(tmp_path) if p != "tmp"]) == 1
    # ... and the cache holds exactly the processor's 8-bit images: normalised, they are its float inputs
    fresh = tiny_processor(videos=[row["video"] for row in ds["validation"]])
    rows = [cached["validation"][i] for i in range(3)]
    collated = MultiMAEDERDataCollator(tiny_processor)(rows)
    for key in ("pixel_values", "audio_values"):
        assert cached["validation"][:][key].dtype == torch.uint8 and torch.equal(collated[key], fresh[key])
    other = MultiMAEDERProcessor(image_size=32, num_frames=4, audio_representation="log-mel")
    preprocess_to_cache(ds, other, str(tmp_path), batch_size=3)  # a setting that changes the clips: a new entry
    assert len([p for p in os.listdir(tmp_path) if p != "tmp"]) == 2


def test_streaming_cache_is_keyed_by_what_the_split_reads(
    synthetic_ravdess_dir, hf_cache_dir, tiny_processor, tmp_path
):
    # two folds of the same corpus share description and shard count: they must not share a cache entry
    actors = {}
    for fold in (1, 2):
        stream = load_emotion_dataset(
            "ravdess", source=synthetic_ravdess_dir, fold=fold, streaming=True, cache_dir=hf_cache_dir
        )
        stream = datasets.IterableDatasetDict({"validation": stream["validation"]})
        cached = preprocess_to_cache(stream, tiny_processor, str(tmp_path), batch_size=4)
        actors[fold] = sorted(set(int(a) for a in cached["validation"]["actor"]))
        mapped = load_emotion_dataset("ravdess", source=synthetic_ravdess_dir, fold=fold, cache_dir=hf_cache_dir)
        assert actors[fold] == sorted(set(mapped["validation"]["actor"]))
    assert not set(actors[1]) & set(actors[2])
    assert len(os.listdir(tmp_path)) >= 2


@pytest.mark.parametrize("streaming", [True, False])
def test_two_ranks_cover_every_example_once(synthetic_ravdess_dir, hf_cache_dir, streaming):
    ds = load_emotion_dataset(
        "ravdess", source=synthetic_ravdess_dir, fold=2, streaming=streaming, cache_dir=hf_cache_dir
    )["test"]
    if not streaming:
        ds = ds.select_columns(["file", "actor"])
    else:
        ds = ds.select_columns(["file", "actor"])
    parts = [[(r["actor"], r["file"]) for r in split_for_rank(ds, rank, 2)] for rank in (0, 1)]
    assert parts[0] and parts[1] and not set(parts[0]) & set(parts[1])
    assert sorted(parts[0] + parts[1]) == sorted((r["actor"], r["file"]) for r in ds)
    if streaming:  # 4 archives: split by shards, so each rank opens only its own archives
        assert {a for a, _ in parts[0]}.isdisjoint({a for a, _ in parts[1]})


def test_a_missing_archive_keeps_the_standard_folds_map_style_and_streaming(synthetic_ravdess_dir, tmp_path, caplog):
    """A RAVDESS download lacking actor 3: fold 1 tests on 1, 2, 4; map-style and streaming split alike."""
    import logging
    import shutil

    tree = tmp_path / "RAVDESS"
    tree.mkdir()
    for name in os.listdir(synthetic_ravdess_dir):
        if name.endswith(".zip") and name != "Video_Speech_Actor_03.zip":
            shutil.copy(os.path.join(synthetic_ravdess_dir, name), tree)
    with caplog.at_level(logging.WARNING):
        mapped = load_emotion_dataset("ravdess", source=str(tree), fold=1, cache_dir=str(tmp_path / "hf"))
    assert "lacks actors [3, 9, 10" in caplog.text and "no other fold changes" in caplog.text
    stream = load_emotion_dataset("ravdess", source=str(tree), fold=1, streaming=True, cache_dir=str(tmp_path / "hf"))
    for split, expected in (("test", [1, 2, 4]), ("validation", [5, 6]), ("train", [7, 8])):
        assert sorted(set(mapped[split]["actor"])) == expected, split
        assert sorted({row["actor"] for row in stream[split]}) == expected, split


def test_a_source_that_is_not_there_is_a_one_line_user_error_and_a_file_not_found(tmp_path, monkeypatch):
    from mmder_hf.data.sources import SourceNotFoundError, is_hub_repo_id, list_source
    from mmder_hf.user_errors import UserError

    monkeypatch.chdir(tmp_path)
    (tmp_path / "runs" / "demo").mkdir(parents=True)
    assert is_hub_repo_id("me/ravdess") and not is_hub_repo_id("runs/nope")  # beside runs/: a missing folder
    for missing, line in [
        ("runs/nope", "--dataset_source runs/nope: no such folder (runs/ holds: demo)"),
        ("runs/dem", "--dataset_source runs/dem: no such folder (did you mean runs/demo?)"),
        ("nope", "--dataset_source nope: no such folder, and not a Hub dataset id (owner/name)"),
    ]:
        with pytest.raises(SourceNotFoundError) as err:
            list_source(missing)
        assert str(err.value) == line
        assert isinstance(err.value, FileNotFoundError) and isinstance(err.value, UserError) and err.value.status == 1
    assert list_source("https://example.org/Video_Speech_Actor_01.zip") == [
        "https://example.org/Video_Speech_Actor_01.zip"
    ]  # a URL is fetched, not looked for on disk


def test_the_folds_of_a_corpus_are_known_from_its_name_and_the_synthetic_settings(synthetic_ravdess_dir):
    from mmder_hf.data.folds import available_folds

    assert available_folds("ravdess") == [1, 2, 3, 4, 5, 6] and available_folds("CREMA-D") == [1, 2, 3, 4, 5]
    assert available_folds("ravdess", None) == [1, 2, 3, 4, 5, 6]  # the built-in synthetic corpus: 24 actors
    assert available_folds("ravdess", synthetic_ravdess_dir) == list(range(1, -(-NUM_ACTORS // 4) + 1))
    assert available_folds("iemocap", "/data/IEMOCAP_full_release") == [1, 2, 3, 4, 5]
