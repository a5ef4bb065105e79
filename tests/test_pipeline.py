"""MultiMAEDERPipeline: predictions, batching, timelines (lazy windows), bad inputs, remote code, widget metadata."""

from __future__ import annotations

import json
import math
import os
import textwrap

import numpy as np
import pytest
import torch
from inference_helpers import LABELS, run_without_mmder_hf, save_tiny_model, tiny_classifier

from mmder_hf.models.multimae_der import TASK, MultiMAEDERPipeline, register
from mmder_hf.models.multimae_der.media import MediaError
from mmder_hf.models.multimae_der.pipeline import sliding_windows
from mmder_hf.models.multimae_der.processing_multimae_der import MultiMAEDERProcessor


@pytest.fixture(scope="module")
def model_dir(tmp_path_factory):
    return save_tiny_model(tmp_path_factory.mktemp("tiny_model"))


@pytest.fixture(scope="module")
def pipe(model_dir):
    from transformers import AutoModelForVideoClassification

    model = AutoModelForVideoClassification.from_pretrained(model_dir)
    return MultiMAEDERPipeline(model=model, device="cpu")


@pytest.fixture(scope="module")
def long_clip(make_clip):
    return make_clip("long_for_timeline", num_frames=70, fps=10.0, sample_rate=16000, channels=1)  # 7 s


@pytest.fixture(scope="module")
def short_clip(make_clip):
    return make_clip("short_for_pipeline", num_frames=20, fps=10.0, sample_rate=16000, channels=1)  # 2 s


def direct_probs(pipe, **processor_kwargs) -> torch.Tensor:
    inputs = pipe.processor(return_tensors="pt", **processor_kwargs)
    with torch.no_grad():
        return pipe.model(**inputs).logits.softmax(-1)[0]


# ---------------------------------------------------------------------------------------------------------------
# Scores, windows and the samples each window holds, against hand-computed values.


def test_scores_are_the_softmax_sorted_and_cut_to_top_k(pipe):
    logits = [1.0, 3.0, 0.0, 2.0, -1.0]  # angry, happy, neutral, sad, surprised
    softmax = np.exp(logits) / np.exp(logits).sum()
    output = [{"logits": torch.tensor([logits]), "start": None, "end": None, "is_last": True}]
    top = pipe.postprocess(output, top_k=3)
    assert [p["label"] for p in top] == ["happy", "sad", "angry"]
    assert [p["score"] for p in top] == pytest.approx(softmax[[1, 3, 0]].tolist(), abs=1e-6)
    assert [p["label"] for p in pipe.postprocess(output, top_k=1)] == ["happy"]
    every = pipe.postprocess(output)  # default top_k 5: every label
    assert [p["label"] for p in every] == ["happy", "sad", "angry", "neutral", "surprised"]
    assert sum(p["score"] for p in every) == pytest.approx(1, abs=1e-6)
    assert len(pipe.postprocess(output, top_k=50)) == 5


def test_timeline_entries_by_hand(pipe):
    nan = float("nan")
    outputs = [
        {  # softmax of (0, 0, 0, 0, ln 4): 1/8 each, surprised 1/2
            "logits": torch.tensor([[0.0, 0.0, 0.0, 0.0, math.log(4.0)]]),
            "start": 1 / 3,
            "end": 1 / 3 + 2,
            "is_last": False,
            "face_boxes": torch.tensor([[[1.2345678, 3.14159, 10.006, 99.999], [nan] * 4]]),
        },
        {"logits": torch.tensor([[math.log(3.0), 0.0, 0.0, 0.0, 0.0]]), "start": 2 / 3, "end": 8 / 3, "is_last": True},
    ]
    first, second = pipe.postprocess(outputs, timeline=True)
    assert (first["start"], first["end"], second["start"], second["end"]) == (0.333333, 2.333333, 0.666667, 2.666667)
    assert first["label"] == "surprised" and first["score"] == pytest.approx(0.5)
    assert first["scores"] == pytest.approx(
        {"angry": 0.125, "happy": 0.125, "neutral": 0.125, "sad": 0.125, "surprised": 0.5}
    )
    assert list(first["scores"]) == LABELS
    assert first["face_boxes"] == [[1.23, 3.14, 10.01, 100.0], None]  # source pixels, 2 decimals; None: no face
    assert second["label"] == "angry" and second["score"] == pytest.approx(3 / 7) and "face_boxes" not in second


def test_sliding_windows_at_the_edges():
    assert sliding_windows(0.0, 0.1 + 0.2, 0.3, 0.1) == [(0.0, 0.1 + 0.2)]  # a hair longer than the window: one
    assert sliding_windows(2.0, 9.0, 3.0, 2.0) == [(2.0, 5.0), (4.0, 7.0), (6.0, 9.0)]  # from the clip's start
    # 4.5 s from 1.5 s, 2 s windows every 1.5 s: 1.5-3.5, 3-5, and the tail 4-6 s.
    assert sliding_windows(1.5, 6.0, 2.0, 1.5) == [(1.5, 3.5), (3.0, 5.0), (4.0, 6.0)]
    assert sliding_windows(1.0, 1.5, 3.0, 1.0) == [(1.0, 1.5)]
    for window, stride in ((0.0, 1.0), (-1.0, 1.0), (1.0, -1.0)):
        with pytest.raises(ValueError, match="positive"):
            sliding_windows(0.0, 7.0, window, stride)


def test_arguments_are_checked_before_the_input_is_read(pipe, tmp_path):
    missing = str(tmp_path / "missing.mp4")
    for kwargs in ({"window": 1.0, "stride": 0.0}, {"window": 0.0}, {"window": -2.0, "stride": 1.0}):
        with pytest.raises(ValueError, match="window and stride must be positive seconds"):
            pipe(missing, **kwargs)
    with pytest.raises(ValueError, match="top_k must be >= 1"):
        pipe(missing, top_k=0)


def test_decoded_timeline_windows_hold_their_own_frames_and_samples(pipe, monkeypatch):
    from conftest import decode_indices, indexed_frames

    frames = indexed_frames(20, 48, 64)  # 2 s at 10 fps
    waveform = (np.arange(32000, dtype=np.float32) / 32000)[None]  # 2 s at 16 kHz: the value tells the sample
    calls = []
    processor_call = MultiMAEDERProcessor.__call__

    def spy(self, *args, **kwargs):
        calls.append(kwargs)
        return processor_call(self, *args, **kwargs)

    monkeypatch.setattr(MultiMAEDERProcessor, "__call__", spy)
    clip = {"video": frames, "audio": waveform, "sampling_rate": 16000, "fps": 10.0}
    progress = []
    timeline = pipe(clip, window=1.0, stride=0.5, batch_size=2, window_callback=lambda d, t: progress.append((d, t)))
    assert [(w["start"], w["end"]) for w in timeline] == [(0.0, 1.0), (0.5, 1.5), (1.0, 2.0)]
    assert progress == [(1, 3), (2, 3), (3, 3)]  # (done, total) after each window
    for call, (first, last) in zip(calls, [(0, 10), (5, 15), (10, 20)]):
        assert decode_indices(call["videos"]) == list(range(first, last))
        audio = np.asarray(call["audio"])
        assert audio.shape == (1, 16000) and call["sampling_rate"] == 16000
        np.testing.assert_array_equal(audio[0], waveform[0, first * 1600 : last * 1600])
    calls.clear()
    # clip_start / clip_end: windows over 0.5-1.7 s only; a window shorter than one frame or sample keeps one.
    ranged = pipe(clip, window=1.0, stride=1.0, clip_start=0.5, clip_end=1.7)
    assert np.array([(w["start"], w["end"]) for w in ranged]) == pytest.approx(np.array([(0.5, 1.5), (0.7, 1.7)]))
    assert [decode_indices(c["videos"]) for c in calls] == [list(range(5, 15)), list(range(7, 17))]
    assert [np.asarray(c["audio"])[0, [0, -1]].tolist() for c in calls] == [
        waveform[0, [8000, 23999]].tolist(),
        waveform[0, [11200, 27199]].tolist(),
    ]


def test_a_decoded_window_one_sample_long_holds_that_sample_and_one_frame(pipe, monkeypatch):
    """A range as short as one audio sample (1/16000 s from 0.5 s): its window holds sample 8000 alone and the frame
    shown at 0.5 s (frame 5 at 10 fps)."""
    from conftest import decode_indices, indexed_frames

    calls = []
    processor_call = MultiMAEDERProcessor.__call__
    monkeypatch.setattr(
        MultiMAEDERProcessor, "__call__", lambda self, *a, **k: calls.append(k) or processor_call(self, *a, **k)
    )
    waveform = (np.arange(32000, dtype=np.float32) / 32000)[None]  # the value tells the sample
    clip = {"video": indexed_frames(20, 48, 64), "audio": waveform, "sampling_rate": 16000, "fps": 10.0}
    timeline = pipe(clip, window=1.0, clip_start=0.5, clip_end=0.5 + 1 / 16000)
    assert len(timeline) == 1 and timeline[0]["start"] == 0.5
    assert timeline[0]["end"] == pytest.approx(0.5 + 1 / 16000, abs=1e-6)  # shown to 6 decimals
    [call] = calls
    assert decode_indices(call["videos"]) == [5]
    np.testing.assert_array_equal(np.asarray(call["audio"]), waveform[:, 8000:8001])


def test_decoder_inputs_and_clip_ranges_without_window(pipe, short_clip):
    from torchcodec.decoders import VideoDecoder

    by_path = pipe(str(short_clip), top_k=5)
    decoder = VideoDecoder(str(short_clip))
    decoder._hf_encoded = {"path": str(short_clip), "bytes": None}  # as a datasets Video column returns it
    by_decoder = pipe(decoder, top_k=5)
    assert [p["label"] for p in by_decoder] == [p["label"] for p in by_path]
    assert [p["score"] for p in by_decoder] == pytest.approx([p["score"] for p in by_path], abs=1e-6)
    assert len(pipe(str(short_clip), top_k=1)) == 1
    late = {p["label"]: p["score"] for p in pipe(str(short_clip), clip_start=1.0)}
    probs = direct_probs(pipe, videos=str(short_clip), clip_start=1.0)
    assert [late[label] for label in LABELS] == pytest.approx(probs.tolist(), abs=1e-6)
    early = {p["label"]: p["score"] for p in pipe(str(short_clip), clip_end=1.0)}
    probs = direct_probs(pipe, videos=str(short_clip), clip_end=1.0)
    assert [early[label] for label in LABELS] == pytest.approx(probs.tolist(), abs=1e-6)
    assert late != pytest.approx(early, abs=1e-3)  # the two halves differ: the range was used


def test_a_video_only_model_reads_frames_only(make_clip):
    from torchcodec.decoders import VideoDecoder

    model = tiny_classifier("video")
    processor = MultiMAEDERProcessor.from_model_config(model.config)
    video_pipe = MultiMAEDERPipeline(model=model, processor=processor, device="cpu")
    silent = make_clip("video_only_for_pipeline", num_frames=10, fps=10.0, audio=False)
    timeline = video_pipe(str(silent), window=0.5, stride=0.5)  # no audio track needed
    assert np.array([(w["start"], w["end"]) for w in timeline]) == pytest.approx(np.array([(0.0, 0.5), (0.5, 1.0)]))
    frames = VideoDecoder(str(silent)).get_frames_in_range(0, 10).data.permute(0, 2, 3, 1).numpy()
    out = video_pipe(frames, top_k=5)  # decoded frames alone
    with torch.no_grad():
        probs = model(**processor(videos=frames, return_tensors="pt")).logits.softmax(-1)[0]
    assert {p["label"]: p["score"] for p in out} == pytest.approx(dict(zip(LABELS, probs.tolist())), abs=1e-6)


def test_a_downloaded_clip_is_named_by_its_url(pipe, make_clip, monkeypatch):
    from mmder_hf.models.multimae_der import pipeline as pipeline_module

    silent = make_clip("video_only_for_pipeline", num_frames=10, fps=10.0, audio=False)
    url = "https://example.org/silent.mp4"
    monkeypatch.setattr(pipeline_module, "_download", lambda address: silent.read_bytes())
    for kwargs in ({}, {"window": 0.5}):
        with pytest.raises(MediaError, match="no audio stream") as info:
            pipe(url, **kwargs)
        assert info.value.source == url


def test_more_than_one_worker_is_reduced_to_one(pipe, short_clip, caplog):
    import logging

    with caplog.at_level(logging.WARNING):
        iterator = pipe.get_iterator([str(short_clip)], 2, 1, {}, {}, {})
    assert iterator.loader.loader.num_workers == 1
    assert any("num_workers > 1 is not supported" in r.getMessage() for r in caplog.records)
    assert pipe.get_iterator([str(short_clip)], 0, 1, {}, {}, {}).loader.loader.num_workers == 0


def test_a_model_without_a_saved_processor_gets_one_from_its_config(short_clip, caplog):
    model = tiny_classifier()  # in memory: no folder to load a processor from
    bare = MultiMAEDERPipeline(model=model, device="cpu")
    assert bare.processor.to_dict() == MultiMAEDERProcessor.from_model_config(model.config).to_dict()
    assert [p["label"] for p in bare(str(short_clip), top_k=1)] == [
        LABELS[int(direct_probs(bare, videos=str(short_clip)).argmax())]
    ]


SYNTHETIC_WARNING = (
    "trained on the built-in synthetic corpus; it recognises synthetic clips only, not real faces and voices"
)


def test_a_model_trained_on_synthetic_data_is_warned_about_once(model_dir, tmp_path, short_clip, long_clip, caplog):
    import logging

    from transformers import pipeline

    synthetic = save_tiny_model(tmp_path / "synthetic", training_data="synthetic")
    for folder, expected in ((synthetic, [f"{synthetic}: {SYNTHETIC_WARNING}"]), (model_dir, [])):
        caplog.clear()
        with caplog.at_level(logging.WARNING):
            pipe = pipeline(model=str(folder), trust_remote_code=True)  # as the README loads a saved model
            assert len(pipe([str(short_clip), str(long_clip)], top_k=1)) == 2
            pipe(str(short_clip), top_k=1)
        assert [r.getMessage() for r in caplog.records if r.levelno >= logging.WARNING] == expected, folder


def test_video_only_and_audio_only_timelines_over_decoded_data(make_clip, monkeypatch):
    from conftest import decode_indices, indexed_frames

    calls = []
    processor_call = MultiMAEDERProcessor.__call__
    monkeypatch.setattr(
        MultiMAEDERProcessor, "__call__", lambda self, *a, **k: calls.append(k) or processor_call(self, *a, **k)
    )
    video_model = tiny_classifier("video")
    video_pipe = MultiMAEDERPipeline(
        model=video_model, processor=MultiMAEDERProcessor.from_model_config(video_model.config), device="cpu"
    )
    frames = indexed_frames(15, 48, 64)  # 1.5 s at 10 fps, no audio
    timeline = video_pipe({"video": frames, "fps": 10.0}, window=1.0, stride=0.5)
    assert [(w["start"], w["end"]) for w in timeline] == [(0.0, 1.0), (0.5, 1.5)]
    assert [decode_indices(c["videos"]) for c in calls] == [list(range(0, 10)), list(range(5, 15))]
    assert all(c.get("audio") is None for c in calls)
    calls.clear()
    audio_model = tiny_classifier("audio")
    audio_pipe = MultiMAEDERPipeline(
        model=audio_model,
        processor=MultiMAEDERProcessor.from_model_config(audio_model.config, audio_sample_rate=16000),
        device="cpu",
    )
    waveform = np.sin(np.arange(40000, dtype=np.float32) / 7)  # 2.5 s at 16 kHz, no video
    from mmder_hf.models.multimae_der import pipeline as pipeline_module

    spans, windows = [], pipeline_module.sliding_windows

    def checked_windows(start, end, window, stride):  # the span is checked before any window is made
        spans.append((start, end))
        assert (start, end) == (0.0, 2.5), "the timeline spans the waveform: 40000 samples at 16 kHz"
        return windows(start, end, window, stride)

    monkeypatch.setattr(pipeline_module, "sliding_windows", checked_windows)
    timeline = audio_pipe({"audio": waveform, "sampling_rate": 16000}, window=1.0, stride=1.0)
    assert spans == [(0.0, 2.5)]
    assert [(w["start"], w["end"]) for w in timeline] == [(0.0, 1.0), (1.0, 2.0), (1.5, 2.5)]
    for call, first in zip(calls, (0, 16000, 24000)):
        np.testing.assert_array_equal(np.asarray(call["audio"]), waveform[first : first + 16000])


def test_each_window_of_a_file_is_decoded_with_both_streams(short_clip):
    """With one video frame and one audio image per clip, every window still opens the video and the audio."""
    model = tiny_classifier()
    processor = MultiMAEDERProcessor(fusion_strategy="FSLF", num_frames=2, image_size=32, audio_sample_rate=16000)
    small = MultiMAEDERPipeline(model=model, processor=processor, device="cpu")
    items = list(small.preprocess(str(short_clip), window=1.0, stride=1.0))
    assert [(item["start"], item["end"], item["is_last"]) for item in items] == [(0.0, 1.0, False), (1.0, 2.0, True)]
    for item in items:
        assert item["pixel_values"].shape[:2] == (1, 1) and item["audio_values"].shape[:2] == (1, 1)


def test_one_worker_is_not_warned_about(pipe, short_clip, caplog):
    import logging

    with caplog.at_level(logging.WARNING):
        iterator = pipe.get_iterator([str(short_clip)], 1, 1, {}, {}, {})
    assert iterator.loader.loader.num_workers == 1 and not caplog.records


def test_predict_matches_model_and_is_sorted(pipe, short_clip):
    out = pipe(str(short_clip), top_k=3)
    assert [set(p) for p in out] == [{"label", "score"}] * 3
    assert [p["score"] for p in out] == sorted((p["score"] for p in out), reverse=True)
    probs = direct_probs(pipe, videos=str(short_clip))
    expected = [LABELS[i] for i in probs.argsort(descending=True)[:3]]
    assert [p["label"] for p in out] == expected
    assert out[0]["score"] == pytest.approx(float(probs.max()), abs=1e-6)
    assert len(pipe(short_clip)) == 5  # default top_k, clamped to the number of labels; Path accepted
    assert len(pipe(short_clip, top_k=50)) == 5


def test_inputs_bytes_decoded_and_batched_agree(pipe, short_clip, long_clip):
    by_path = pipe(str(short_clip))
    by_bytes = pipe(short_clip.read_bytes())
    for a, b in zip(by_path, by_bytes):
        assert a["label"] == b["label"] and a["score"] == pytest.approx(b["score"], abs=1e-6)

    from torchcodec.decoders import AudioDecoder, VideoDecoder

    frames = VideoDecoder(str(short_clip)).get_frames_in_range(0, 20).data.permute(0, 2, 3, 1).numpy()
    samples = AudioDecoder(str(short_clip)).get_all_samples()
    decoded = pipe({"video": frames, "audio": samples.data.numpy(), "sampling_rate": samples.sample_rate}, top_k=5)
    assert sorted(p["label"] for p in decoded) == sorted(LABELS)
    assert sum(p["score"] for p in decoded) == pytest.approx(1, abs=1e-5)
    decoded_input = {"video": frames, "audio": samples.data.numpy(), "sampling_rate": samples.sample_rate, "fps": 10.0}
    timeline = pipe(decoded_input, window=1.0, stride=0.5)
    assert [(w["start"], w["end"]) for w in timeline] == [(0.0, 1.0), (0.5, 1.5), (1.0, 2.0)]
    with pytest.raises(ValueError, match="fps"):
        pipe({k: v for k, v in decoded_input.items() if k != "fps"}, window=1.0)

    singles = [pipe(str(short_clip), top_k=2), pipe(str(long_clip), top_k=2)]
    batched = pipe([str(short_clip), str(long_clip)], batch_size=2, top_k=2)
    assert len(batched) == 2
    for single, batch in zip(singles, batched):
        assert [p["label"] for p in single] == [p["label"] for p in batch]
        assert [p["score"] for p in single] == pytest.approx([p["score"] for p in batch], abs=1e-5)


def test_sliding_windows():
    assert sliding_windows(0.0, 2.0, 3.0, 1.0) == [(0.0, 2.0)]
    assert sliding_windows(0.0, 7.0, 3.0, 1.0) == [(0.0, 3.0), (1.0, 4.0), (2.0, 5.0), (3.0, 6.0), (4.0, 7.0)]
    assert sliding_windows(0.0, 7.0, 3.0, 3.0) == [(0.0, 3.0), (3.0, 6.0), (4.0, 7.0)]
    with pytest.raises(ValueError):
        sliding_windows(0.0, 7.0, 3.0, 0.0)


def test_timeline_reads_the_file_once_and_gives_each_window_its_clip_scores(pipe, long_clip, monkeypatch):
    calls = []
    processor_call = MultiMAEDERProcessor.__call__

    def spy(self, *args, **kwargs):
        calls.append(kwargs)
        return processor_call(self, *args, **kwargs)

    monkeypatch.setattr(MultiMAEDERProcessor, "__call__", spy)
    progress = []
    timeline = pipe(
        str(long_clip), window=3.0, stride=1.0, batch_size=3, window_callback=lambda d, t: progress.append((d, t))
    )
    monkeypatch.undo()

    spans = [(w["start"], w["end"]) for w in timeline]
    assert np.allclose(spans, [(0.0, 3.0), (1.0, 4.0), (2.0, 5.0), (3.0, 6.0), (4.0, 7.0)], atol=0.05)
    assert progress == [(1, 5), (2, 5), (3, 5), (4, 5), (5, 5)]  # (done, total) after each window
    # One pass over the file (streaming.py): the processor is never called per window; its parts make the inputs.
    assert calls == []
    for entry in timeline:
        assert set(entry) == {"start", "end", "label", "score", "scores"}
        assert list(entry["scores"]) == LABELS and sum(entry["scores"].values()) == pytest.approx(1, abs=1e-5)
        assert entry["label"] == max(entry["scores"], key=entry["scores"].get)
        # The numbers of the processor on that time range of the file, whatever the batch size.
        probs = direct_probs(pipe, videos=str(long_clip), clip_start=entry["start"], clip_end=entry["end"])
        assert [entry["scores"][label] for label in LABELS] == pytest.approx(probs.tolist(), abs=1e-6)
    unbatched = pipe(str(long_clip), window=3.0, stride=1.0, batch_size=1)
    for a, b in zip(timeline, unbatched):
        assert a["scores"] == pytest.approx(b["scores"], abs=1e-6)
    assert len(pipe(str(long_clip), window=3.0)) == 4  # stride defaults to window / 2: 0, 1.5, 3, 4.5 (+ tail)


def test_a_decoder_input_is_read_window_by_window_with_the_same_scores(pipe, long_clip, monkeypatch):
    from torchcodec.decoders import VideoDecoder

    decoder = VideoDecoder(str(long_clip))
    decoder._hf_encoded = {"path": str(long_clip), "bytes": None}  # as a datasets Video column returns it
    calls = []
    processor_call = MultiMAEDERProcessor.__call__
    monkeypatch.setattr(
        MultiMAEDERProcessor, "__call__", lambda self, *a, **k: calls.append(k) or processor_call(self, *a, **k)
    )
    timeline = pipe(decoder, window=3.0, stride=1.0, batch_size=2)
    monkeypatch.undo()
    # Each window is decoded on its own from the one decoder given: never the whole file at once.
    assert len(calls) == 5 and all(c["videos"] is decoder for c in calls)
    assert [(c["clip_start"], c["clip_end"]) for c in calls] == [(w["start"], w["end"]) for w in timeline]
    one_pass = pipe(str(long_clip), window=3.0, stride=1.0, batch_size=2)
    assert [(w["start"], w["end"], w["label"]) for w in timeline] == [
        (w["start"], w["end"], w["label"]) for w in one_pass
    ]
    for a, b in zip(timeline, one_pass):
        assert a["scores"] == pytest.approx(b["scores"], abs=1e-6)


def test_bad_inputs_name_the_input(pipe, tmp_path, make_clip):
    empty = tmp_path / "empty.mp4"
    empty.write_bytes(b"")
    garbage = tmp_path / "garbage.mp4"
    garbage.write_bytes(b"this is not a video" * 10)
    cases = {
        str(tmp_path / "missing.mp4"): "not found",
        str(empty): "empty",
        str(garbage): "cannot be opened as media",
        str(tmp_path): "directory",
    }
    for source, problem in cases.items():
        for kwargs in ({}, {"window": 1.0}):
            with pytest.raises(MediaError, match=problem) as info:
                pipe(source, **kwargs)
            assert str(info.value).startswith(source)
    silent = make_clip("video_only_for_pipeline", num_frames=10, fps=10.0, audio=False)
    with pytest.raises(MediaError, match="no audio stream") as info:
        pipe(str(silent))
    assert str(silent) in str(info.value)
    with pytest.raises(TypeError, match="Unsupported input"):
        pipe(12345)
    with pytest.raises(ValueError, match="stride is only used together with window"):
        pipe(str(silent), stride=1.0)
    with pytest.raises(ValueError, match="top_k"):
        pipe(str(silent), top_k=0)


def test_a_photo_is_named_a_still_image(pipe, tmp_path):
    from inference_helpers import write_photo

    from mmder_hf.models.multimae_der.media import STILL_IMAGE

    photo = write_photo(tmp_path / "photo.png")
    for kwargs in ({}, {"window": 1.0}):  # one prediction, and a timeline (its own decoders)
        with pytest.raises(MediaError) as info:
            pipe(str(photo), **kwargs)
        assert str(info.value) == f"{photo}: {STILL_IMAGE}"


def test_pipeline_save_pretrained_and_task_registration(pipe, tmp_path, short_clip):
    from transformers import pipeline

    register()
    register()  # idempotent
    pipe.save_pretrained(tmp_path / "saved")
    config = json.loads((tmp_path / "saved" / "config.json").read_text())
    assert config["custom_pipelines"][TASK]["impl"] == "pipeline.MultiMAEDERPipeline"
    assert {
        "pipeline.py",
        "processing_multimae_der.py",
        "processor_config.json",
        "modeling_multimae_der.py",
    } <= set(os.listdir(tmp_path / "saved"))
    expected = pipe(str(short_clip))
    remote = pipeline(model=str(tmp_path / "saved"), trust_remote_code=True, device="cpu")
    assert type(remote).__name__ == "MultiMAEDERPipeline"
    local = pipeline(TASK, model=str(tmp_path / "saved"), pipeline_class=MultiMAEDERPipeline, device="cpu")
    for loaded in (remote, local):
        got = loaded(str(short_clip))
        assert [p["label"] for p in got] == [p["label"] for p in expected]
        assert [p["score"] for p in got] == pytest.approx([p["score"] for p in expected], abs=1e-6)


def test_saving_into_an_existing_folder_writes_it_again(pipe, tmp_path):
    """push_to_hub saves into a temporary folder it has made already; saving twice into one folder works too."""
    for _ in range(2):
        pipe.save_pretrained(tmp_path)  # exists (pytest made it)
        config = json.loads((tmp_path / "config.json").read_text())
        assert config["custom_pipelines"][TASK]["impl"] == "pipeline.MultiMAEDERPipeline"
        assert (tmp_path / "processor_config.json").is_file()


REMOTE_PIPELINE_SCRIPT = textwrap.dedent(
    """
    import json
    from transformers import pipeline
    folder, clip, long_clip = sys.argv[1:4]
    pipe = pipeline(model=folder, trust_remote_code=True, device="cpu")
    assert type(pipe).__module__.startswith("transformers_modules"), type(pipe).__module__
    assert type(pipe.model).__module__.startswith("transformers_modules"), type(pipe.model).__module__
    out = {
        "single": pipe(clip, top_k=3),
        "batch": pipe([clip, long_clip], batch_size=2, top_k=2),
        "timeline": pipe(long_clip, window=3.0, stride=2.0, batch_size=2),
    }
    try:
        pipe(folder + "/missing.mp4")
    except ValueError as error:
        out["error"] = str(error)
    print("RESULT" + json.dumps(out))
    """
)


def test_remote_pipeline_in_a_fresh_process_without_the_package(model_dir, pipe, short_clip, long_clip):
    stdout = run_without_mmder_hf(REMOTE_PIPELINE_SCRIPT, model_dir, short_clip, long_clip)
    remote = json.loads(stdout.split("RESULT", 1)[1])
    local = {
        "single": pipe(str(short_clip), top_k=3),
        "batch": pipe([str(short_clip), str(long_clip)], batch_size=2, top_k=2),
        "timeline": pipe(str(long_clip), window=3.0, stride=2.0, batch_size=2),
    }
    for key in ("single", "batch"):
        assert json.dumps(remote[key]) and [p["label"] for p in np.ravel(remote[key])] == [
            p["label"] for p in np.ravel(local[key])
        ]
        assert [p["score"] for p in np.ravel(remote[key])] == pytest.approx(
            [p["score"] for p in np.ravel(local[key])], abs=1e-6
        )
    assert [(w["start"], w["end"], w["label"]) for w in remote["timeline"]] == [
        (w["start"], w["end"], w["label"]) for w in local["timeline"]
    ]
    assert remote["error"].startswith(f"{model_dir}/missing.mp4") and "not found" in remote["error"]


def test_timeline_csv_and_plot(pipe, long_clip, tmp_path):
    import csv

    from mmder_hf.timeline import plot_timeline, summarize_timeline, write_timeline_csv

    timeline = pipe(str(long_clip), window=3.0, stride=2.0, batch_size=4)
    csv_path = write_timeline_csv(timeline, tmp_path / "t.csv")
    assert csv_path.read_text().splitlines()[0] == "start,end,label,score," + ",".join(LABELS)
    with csv_path.open(newline="") as handle:
        again = list(csv.DictReader(handle))
    assert [w["label"] for w in again] == [w["label"] for w in timeline]
    for a, b in zip(again, timeline):
        assert float(a["start"]) == pytest.approx(b["start"], abs=1e-3) and float(a["score"]) == pytest.approx(
            b["score"], abs=1e-5
        )
        assert {k: float(a[k]) for k in LABELS} == pytest.approx(b["scores"], abs=1e-5)
    png = plot_timeline(timeline, tmp_path / "t.png", title="long clip")
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" and png.stat().st_size > 5000
    plot_timeline(timeline[:1], tmp_path / "one.png")  # a clip shorter than one window
    summary = summarize_timeline(timeline)
    assert [s["label"] for s in summary] and sum(s["score"] for s in summary) == pytest.approx(1, abs=1e-5)


def test_widget_examples(model_dir, pipe, short_clip):
    from mmder_hf.cards.widget import widget_examples

    entries = widget_examples(
        model_dir,
        [{"path": short_clip, "src": "https://example.org/clip.mp4", "example_title": "Clip"}, short_clip],
        top_k=2,
    )
    assert entries[0]["example_title"] == "Clip" and entries[0]["src"] == "https://example.org/clip.mp4"
    assert entries[1]["src"] == short_clip.name and entries[1]["example_title"] == short_clip.stem
    expected = pipe(str(short_clip), top_k=2)
    assert [o["label"] for o in entries[0]["output"]] == [p["label"] for p in expected]
    assert [o["score"] for o in entries[0]["output"]] == [round(p["score"], 4) for p in expected]
