"""Widget examples are what the model read from each row, and respect the data's licence (one test per corpus)."""

import os

import datasets
from fixtures_data import fake_crema_d_dir, fake_iemocap_dir, hf_cache_dir, synthetic_ravdess_dir
from inference_helpers import LABELS, tiny_classifier

from mmder_hf import MultiMAEDERProcessor, load_emotion_dataset
from mmder_hf.models.multimae_der.media import open_audio_decoder, open_video_decoder, stream_span
from mmder_hf.training.finetune import widget_examples_from_split


def _model_folder(folder):
    model = tiny_classifier("FSLF")
    model.save_pretrained(folder)
    MultiMAEDERProcessor.from_model_config(model.config).save_pretrained(folder)
    return str(folder)


def test_ravdess_examples_are_the_test_clips_themselves(synthetic_ravdess_dir, hf_cache_dir, tmp_path):
    test = load_emotion_dataset("ravdess", source=synthetic_ravdess_dir, fold=1, cache_dir=hf_cache_dir)["test"]
    out = _model_folder(tmp_path / "model")
    entries = widget_examples_from_split(test, out, "me/m", "synthetic")
    assert len(entries) == 2 and entries[0]["src"].startswith("https://huggingface.co/me/m/resolve/main/examples/")
    files = sorted(os.listdir(os.path.join(out, "examples")))
    assert len(files) == 2
    raw = test.cast_column("video", datasets.Video(decode=False))
    originals = {os.path.basename(r["video"]["path"]): r["video"]["path"] for r in raw}
    for name in files:  # a RAVDESS clip holds its own audio: copied byte for byte
        original = originals[name.split("_", 1)[1]]
        with open(os.path.join(out, "examples", name), "rb") as a, open(original, "rb") as b:
            assert a.read() == b.read()
    assert {e["output"][0]["label"] for e in entries} <= set(LABELS)


def test_crema_d_examples_carry_the_separate_audio(fake_crema_d_dir, hf_cache_dir, tmp_path):
    test = load_emotion_dataset("crema_d", source=fake_crema_d_dir, fold=1, cache_dir=hf_cache_dir)["test"]
    out = _model_folder(tmp_path / "model")
    entries = widget_examples_from_split(test, out, None, "crema_d")
    assert len(entries) == 2 and entries[0]["src"].startswith("examples/")
    rows = {row["clip_id"]: row for row in test}
    for name in sorted(os.listdir(os.path.join(out, "examples"))):
        path = os.path.join(out, "examples", name)
        row = rows[name.split("_", 1)[1].rsplit(".", 1)[0]]
        # the flv has no audio track: the example muxes in the wav over the part of the video's timeline it covers,
        # as the processor reads it (this flv starts at 0.167 s, the wav at 0 and stops at 0.5 s)
        video_begin, video_end = stream_span(open_video_decoder(row["video"]._hf_encoded["path"]))
        wav = open_audio_decoder(row["audio"]._hf_encoded["path"])
        covered = min(video_end, wav.metadata.duration_seconds) - video_begin
        assert abs(open_audio_decoder(path).metadata.duration_seconds - covered) < 0.07
        begin, end = stream_span(open_video_decoder(path))
        assert abs((end - begin) - (video_end - video_begin)) < 0.1
        # what the model reads from the example is what it read from the row (lossy re-encoding aside)
        processor = MultiMAEDERProcessor(image_size=32, num_frames=4)
        from_example = processor(videos=path)
        from_row = processor(videos=row["video"], audio=row["audio"])
        for key in ("pixel_values", "audio_values"):
            assert (from_example[key] - from_row[key]).abs().mean() < 0.15, key


def test_iemocap_gets_no_examples(fake_iemocap_dir, hf_cache_dir, tmp_path):
    test = load_emotion_dataset("iemocap", source=fake_iemocap_dir, fold=1, cache_dir=hf_cache_dir)["test"]
    out = _model_folder(tmp_path / "model")
    assert widget_examples_from_split(test, out, "me/m", "iemocap") == []
    examples = os.path.join(out, "examples")
    assert not os.path.isdir(examples) or not os.listdir(examples)  # nothing that a push would upload
