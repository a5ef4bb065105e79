"""Truncated and broken media on the real paths: the processor, corpus building, the bad-data report that
load_emotion_dataset returns (and shows again when its cache is reused), and the pre-fused zips' unknown folders."""

from __future__ import annotations

import json
import logging
import os
import zipfile

import numpy as np
import pytest
from fixtures_data import (  # noqa: F401  (fixtures)
    _write_wav,
    copy_tree_with_bad_data,
    fake_crema_d_dir,
    hf_cache_dir,
    synthetic_ravdess_dir,
    truncated_clip,
)

from mmder_hf.data import RavdessBuilder, load_emotion_dataset, load_prefused_dataset
from mmder_hf.data.bad_data import REPORT_FILENAME
from mmder_hf.data.media_writing import write_clip
from mmder_hf.models.multimae_der import MultiMAEDERProcessor
from mmder_hf.models.multimae_der.media import MediaError


STRATEGIES = ("video", "FSLF", "audio")


def tiny(strategy: str = "FSLF") -> MultiMAEDERProcessor:
    return MultiMAEDERProcessor(num_frames=4, image_size=32, fusion_strategy=strategy)


def cut(path, tmp_path, fraction: float = 0.6, name: str = "") -> str:
    data = open(path, "rb").read()
    out = tmp_path / (name or f"cut_{os.path.basename(str(path))}")
    out.write_bytes(data[: int(len(data) * fraction)])
    return str(out)


def assert_no_build_paths(text: str) -> None:
    assert "/__w/" not in text and ".cpp" not in text and "torchcodec/_core" not in text, text


# ---------------------------------------------------------------------------------------------------------------
# The processor (decode_clip)


@pytest.mark.parametrize("container", ["mkv", "flv", "avi"])
def test_a_truncated_clip_raises_for_every_strategy(make_clip, tmp_path, container):
    whole = make_clip(f"whole_{container}", sample_rate=16000, channels=1, container=container)
    broken = cut(whole, tmp_path)
    name = os.path.basename(broken).replace(".", r"\.")
    for strategy in STRATEGIES:
        with pytest.raises(MediaError, match=rf"{name}: .*truncated") as error:
            tiny(strategy)(videos=broken)
        assert_no_build_paths(str(error.value))
        out = tiny(strategy)(videos=str(whole))  # the complete file is fine
        assert all(np.isfinite(v.numpy()).all() for v in out.values())


def test_truncation_is_caught_for_bytes_and_datasets_decoders(make_clip, tmp_path):
    datasets = pytest.importorskip("datasets")
    broken = cut(make_clip("whole_mkv_b", sample_rate=16000, channels=1, container="mkv"), tmp_path)
    data = open(broken, "rb").read()
    with pytest.raises(
        MediaError, match=rf"<{len(data)} bytes of media>: truncated file: its streams end at 1\.\d+ s"
    ):
        tiny()(videos=data)
    rows = datasets.Dataset.from_dict({"video": [broken], "audio": [broken]})
    row = rows.cast_column("video", datasets.Video()).cast_column("audio", datasets.Audio())[0]
    for kwargs in ({"videos": row["video"]}, {"videos": row["video"], "audio": row["audio"]}):
        with pytest.raises(MediaError, match=r"cut_whole_mkv_b\.mkv: truncated file"):
            tiny()(**kwargs)
    with pytest.raises(MediaError, match=r"cut_whole_mkv_b\.mkv: truncated file: its audio ends at"):
        tiny("audio")(audio=row["audio"])


@pytest.mark.parametrize("container", ["mkv", "mp4"])
def test_streams_of_different_lengths_are_not_truncation(make_clip, container):
    """A track shorter or longer than the other is how some files are; only a file cut short is truncated."""
    for audio_duration in (1.0, 3.0):  # the video lasts 2 s
        path = make_clip(f"audio_{audio_duration}_{container}", audio_duration=audio_duration, container=container)
        for strategy in STRATEGIES:
            out = tiny(strategy)(videos=str(path))
            assert all(np.isfinite(v.numpy()).all() for v in out.values())


def test_a_separate_audio_file_whose_video_is_longer_is_not_truncation(make_clip, synthetic_clip_path):
    """CREMA-D / IEMOCAP read the audio from a file of its own. When that file holds a 2 s video and a complete 1 s
    audio track (Matroska: no per-stream duration, so its video is scanned), the short track is how the file is:
    its tone for 1 s, then silence to the clip's 2 s."""
    from mmder_hf.models.multimae_der.media import decode_clip

    audio_file = make_clip("audio_1.0_mkv", audio_duration=1.0, container="mkv")
    clip = decode_clip(str(synthetic_clip_path), 4, audio_source=str(audio_file))
    assert (clip.start, clip.end) == (0.0, 2.0) and clip.waveform.shape == (32000,)
    wave = clip.waveform.numpy()
    assert np.sqrt(np.mean(wave[:15000] ** 2)) > 0.2  # the tone (440 Hz and 880 Hz at 0.5, mixed to mono)
    assert (wave[17000:] == 0).all()


@pytest.mark.parametrize("strategy", STRATEGIES)
def test_a_photo_is_refused_as_a_still_image(tmp_path, strategy):
    from inference_helpers import write_photo

    from mmder_hf.models.multimae_der.media import STILL_IMAGE

    photo = write_photo(tmp_path / "photo.jpg")
    with pytest.raises(MediaError) as info:
        tiny(strategy)(videos=str(photo))
    assert str(info.value) == f"{photo}: {STILL_IMAGE}"
    data = photo.read_bytes()
    with pytest.raises(MediaError) as info:
        tiny(strategy)(videos=data)
    assert str(info.value) == f"<{len(data)} bytes of media>: {STILL_IMAGE}"


def test_truncated_wav_alone_or_beside_a_video(audio_only_path, synthetic_clip_path, tmp_path):
    # FFmpeg derives a WAV's duration from the file size: only the header's data size shows the cut
    broken = cut(audio_only_path, tmp_path)
    wav = r"cut_audio_only\.wav: truncated file: its WAV header declares 0\.\d+ s more audio than the file holds"
    with pytest.raises(MediaError, match=wav):
        tiny("audio")(audio=broken)
    with pytest.raises(MediaError, match=wav):  # CREMA-D / IEMOCAP: the audio is a separate file
        tiny()(videos=str(synthetic_clip_path), audio=broken)
    assert tiny()(videos=str(synthetic_clip_path), audio=str(audio_only_path))["audio_values"].shape[0] == 1


def test_decoder_errors_name_the_file_without_build_paths(synthetic_clip_path, make_clip, tmp_path):
    # an mp4 whose index (at its end) is cut off does not open
    broken = cut(synthetic_clip_path, tmp_path, 0.5)
    with pytest.raises(MediaError) as error:
        tiny()(videos=broken)
    text = str(error.value)
    assert text.startswith(f"{broken}: cannot be opened as media") and "Invalid data found" in text
    assert_no_build_paths(text)
    # an FLV cut mid-packet opens; decoding its audio then fails in the middle of the stream
    flv = cut(make_clip("whole_flv_e", sample_rate=16000, channels=1, container="flv"), tmp_path)
    with pytest.raises(MediaError) as error:
        tiny("audio")(videos=flv)
    text = str(error.value)
    assert text.startswith(f"{flv}: could not decode the audio track (truncated or corrupt file?): Could not push")
    assert_no_build_paths(text)


# ---------------------------------------------------------------------------------------------------------------
# Corpus building and the report load_emotion_dataset returns


def test_bad_data_report_is_returned_and_shown_again_from_the_cache(
    synthetic_ravdess_dir, tmp_path, caplog, monkeypatch
):
    expected = copy_tree_with_bad_data(synthetic_ravdess_dir, tmp_path / "bad")
    kwargs = dict(source=str(tmp_path / "bad"), fold=None, cache_dir=str(tmp_path / "cache"))
    with caplog.at_level(logging.WARNING):
        ds = load_emotion_dataset("ravdess", **kwargs)
    skipped = {name.rsplit(":", 1)[-1]: reason for name, reason in ds.bad_data.skipped.items()}
    assert skipped == expected
    assert caplog.text.count("ravdess: skipped 10 file(s)") == 1 and "01-01-08-02-02-02-01.mp4" in caplog.text
    stored = [os.path.join(root, REPORT_FILENAME) for root, _, files in os.walk(tmp_path / "cache")]
    stored = [p for p in stored if os.path.exists(p)]
    assert len(stored) == 1 and json.load(open(stored[0]))["skipped"] == ds.bad_data.skipped

    caplog.clear()
    monkeypatch.setattr(RavdessBuilder, "_generate_examples", lambda *a, **k: pytest.fail("cache not reused"))
    with caplog.at_level(logging.WARNING):
        again = load_emotion_dataset("ravdess", **kwargs)
    assert again.bad_data.skipped == ds.bad_data.skipped and len(again["train"]) == len(ds["train"])
    assert "ravdess: skipped 10 file(s) (when the cached data in" in caplog.text
    assert "truncated media (its last packet is incomplete): 1: Actor_01/01-01-02-02-02-02-01.mp4" in caplog.text
    monkeypatch.undo()

    stream = load_emotion_dataset("ravdess", source=str(tmp_path / "bad"), fold=None, streaming=True)
    assert len(list(stream["train"].select_columns(["file"]))) == len(ds["train"])
    assert stream.bad_data.skipped == ds.bad_data.skipped  # filled while the split was read


def test_crema_d_hub_files_are_validated_too(fake_crema_d_dir, tmp_path, monkeypatch, caplog):
    """Streaming from a Hub repo reads hf:// URLs, not local paths: their media are checked all the same."""
    import shutil

    import huggingface_hub

    import mmder_hf.data.sources as sources

    root = tmp_path / "crema"
    shutil.copytree(fake_crema_d_dir, root)
    (root / "VideoFlash" / "1001_TIE_SAD_XX.flv").write_bytes(truncated_clip(str(tmp_path / "t.flv")))
    _write_wav(root / "AudioWAV" / "1001_TIE_SAD_XX.wav")
    _write_wav(root / "AudioWAV" / "1002_ITS_FEA_XX.wav", seconds=1.0)
    write_clip(root / "VideoFlash" / "1002_ITS_FEA_XX.flv", np.zeros((6, 32, 48, 3), np.uint8), 12)
    wav = (root / "AudioWAV" / "1002_ITS_FEA_XX.wav").read_bytes()
    (root / "AudioWAV" / "1002_ITS_FEA_XX.wav").write_bytes(wav[: len(wav) // 2])
    files = sorted(os.path.relpath(os.path.join(d, f), root) for d, _, names in os.walk(root) for f in names)
    monkeypatch.setattr(huggingface_hub.HfApi, "list_repo_files", lambda self, repo_id, **kw: files)
    import fsspec

    memory = fsspec.filesystem("memory")  # a remote file system, as hf:// is: no local paths to check
    for name in files:
        memory.pipe(f"/crema-d/{name}", (root / name).read_bytes())
    urls = []

    def location(repo_id, filename, streaming, revision=None):
        assert streaming and repo_id == "someone/crema-d"
        urls.append(filename)
        return f"memory://crema-d/{filename}"

    monkeypatch.setattr(sources, "hub_file_location", location)
    with caplog.at_level(logging.WARNING):
        ds = load_emotion_dataset("crema_d", source="someone/crema-d", fold=None, streaming=True)
        clips = {row["clip_id"] for row in ds["train"].select_columns(["clip_id"])}
    assert urls and "1001_DFA_ANG_XX" in clips
    assert ds.bad_data.skipped["1001_TIE_SAD_XX"] == "truncated media (its last packet is incomplete)"
    assert ds.bad_data.skipped["1002_ITS_FEA_XX"] == (
        "truncated media (its WAV header declares more audio than the file holds)"
    )
    assert not {"1001_TIE_SAD_XX", "1002_ITS_FEA_XX"} & clips
    assert "1001_TIE_SAD_XX" in caplog.text and "1002_ITS_FEA_XX" in caplog.text


# ---------------------------------------------------------------------------------------------------------------
# Pre-fused zips


@pytest.mark.parametrize("streaming", [False, True])
def test_prefused_members_outside_the_known_label_folders_are_reported(tmp_path, caplog, streaming):
    clip = write_clip(str(tmp_path / "c.mp4"), np.zeros((16, 32, 32, 3), dtype=np.uint8), 8)
    data = open(clip, "rb").read()
    path = tmp_path / "RAVDESS_FSLF.zip"
    with zipfile.ZipFile(path, "w") as zf:
        for member in ("train/Angry/a.mp4", "train/Calm/b.mp4", "val/Sad/c.mp4", "test/Happy/d.mp4", "e.mp4"):
            zf.writestr(f"RAVDESS_FSLF/{member}", data)
        zf.writestr("RAVDESS_FSLF/test/happy/f.mp4", data)  # label folders are case-sensitive
    with caplog.at_level(logging.WARNING):
        ds = load_prefused_dataset(str(path), streaming=streaming, cache_dir=str(tmp_path / "c"))
    assert ds.bad_data.skipped == {
        "RAVDESS_FSLF/train/Calm/b.mp4": "unknown label folder 'Calm'",
        "RAVDESS_FSLF/test/happy/f.mp4": "unknown label folder 'happy'",
        "RAVDESS_FSLF/e.mp4": "not in a {train,val,test}/<Label>/ folder",
    }
    assert "skipped 3 file(s)" in caplog.text and "RAVDESS_FSLF/train/Calm/b.mp4" in caplog.text
    assert [len(list(ds[s])) for s in ("train", "validation", "test")] == [1, 1, 1]
