"""MultiMAEDERDataCollator without media: a stand-in processor records exactly what the collator asks of it.

Fast (no decoding): the collator's own decisions are checked, i.e. what it stacks, which labels and dtypes it
returns, and which media, segment times and options it passes to the processor.
"""

import pytest
import torch

from mmder_hf.data.collate import MultiMAEDERDataCollator, media_source


class StandIn:
    """Records each call; returns a batch with a ``face_boxes`` entry, as a face-cropping processor does."""

    def __init__(self):
        self.calls = []
        self.rescaled = []

    def __call__(self, **kwargs):
        self.calls.append(kwargs)
        n = len(kwargs.get("videos") or kwargs.get("audio"))
        return {"pixel_values": torch.zeros(n, 2), "face_boxes": [[0, 0, 1, 1]] * n}

    def rescale_and_normalize(self, stacked):
        self.rescaled.append(stacked.clone())
        return stacked.float() / 255.0 - 1.0


class Decoded:
    """What a ``datasets`` Video/Audio decoder carries: the ``{"path", "bytes"}`` it was made from."""

    def __init__(self, path=None, data=None):
        self._hf_encoded = {"path": path, "bytes": data}


def test_media_source_prefers_bytes_then_path_and_passes_other_values():
    assert media_source({"path": "a.mp4", "bytes": b"xyz"}) == b"xyz"
    assert media_source({"path": "a.mp4", "bytes": None}) == "a.mp4"
    assert media_source({"path": "a.mp4"}) == "a.mp4"
    decoder = Decoded("a.mp4")
    assert media_source(decoder) is decoder and media_source("b.wav") == "b.wav"


def test_an_empty_batch_is_refused():
    with pytest.raises(ValueError, match="empty batch"):
        MultiMAEDERDataCollator(StandIn())([])


def test_preprocessed_float_rows_are_stacked_as_they_are_with_int64_labels():
    proc = StandIn()
    rows = [
        {"pixel_values": [[1.5, 2.0]], "audio_values": [[0.25]], "emotion": 3},
        {"pixel_values": [[3.0, 4.0]], "audio_values": [[0.5]], "emotion": 0},
        {"pixel_values": [[5.0, 6.5]], "audio_values": [[0.75]], "emotion": 7},
    ]
    batch = MultiMAEDERDataCollator(proc)(rows)
    assert set(batch) == {"pixel_values", "audio_values", "labels"}
    assert torch.equal(batch["pixel_values"], torch.tensor([[[1.5, 2.0]], [[3.0, 4.0]], [[5.0, 6.5]]]))
    assert torch.equal(batch["audio_values"], torch.tensor([[[0.25]], [[0.5]], [[0.75]]]))
    assert batch["labels"].dtype == torch.int64 and batch["labels"].tolist() == [3, 0, 7]
    assert proc.calls == [] and proc.rescaled == []  # already processed: the processor is never run


def test_preprocessed_8bit_rows_are_rescaled_and_normalised_per_modality():
    proc = StandIn()
    rows = [{"audio_values": torch.tensor([0, 255], dtype=torch.uint8), "labels": 1}]  # one modality, one row
    batch = MultiMAEDERDataCollator(proc)(rows)
    assert set(batch) == {"audio_values", "labels"}
    assert len(proc.rescaled) == 1 and torch.equal(proc.rescaled[0], torch.tensor([[0, 255]], dtype=torch.uint8))
    assert torch.equal(batch["audio_values"], torch.tensor([[-1.0, 0.0]]))
    assert batch["labels"].tolist() == [1]
    rows = [{"pixel_values": torch.tensor([51], dtype=torch.uint8), "emotion": 2}] * 2
    batch = MultiMAEDERDataCollator(proc)(rows)
    assert set(batch) == {"pixel_values", "labels"} and torch.allclose(
        batch["pixel_values"], torch.tensor([[-0.8]] * 2)
    )


def test_labels_column_wins_over_the_label_column_and_none_means_no_labels():
    rows = [{"pixel_values": [0.0], "labels": 4, "emotion": 1}, {"pixel_values": [0.0], "labels": 5, "emotion": 2}]
    assert MultiMAEDERDataCollator(StandIn())(rows)["labels"].tolist() == [4, 5]
    rows = [{"pixel_values": [0.0], "target": 6, "emotion": 1}]
    assert MultiMAEDERDataCollator(StandIn(), label_column="target")(rows)["labels"].tolist() == [6]
    assert "labels" not in MultiMAEDERDataCollator(StandIn(), label_column=None)(rows)
    assert "labels" not in MultiMAEDERDataCollator(StandIn())([{"pixel_values": [0.0]}])  # no emotion column


def test_raw_rows_pass_video_segment_times_and_options_and_drop_face_boxes():
    proc = StandIn()
    rows = [
        {"video": {"path": "d1.avi", "bytes": None}, "start": 1, "end": 2.5, "emotion": 1},
        {"video": {"path": "d2.avi", "bytes": b"v2"}, "start": 0.5, "end": 3, "emotion": 2},
    ]
    collator = MultiMAEDERDataCollator(proc, processor_kwargs={"do_normalize": False})
    batch = collator(rows)
    assert proc.calls == [
        {
            "videos": ["d1.avi", b"v2"],
            "clip_start": [1.0, 0.5],
            "clip_end": [2.5, 3.0],
            "do_normalize": False,
            "return_tensors": "pt",
        }
    ]
    assert set(batch) == {"pixel_values", "labels"} and batch["labels"].tolist() == [1, 2]
    batch = MultiMAEDERDataCollator(proc, return_face_boxes=True)([{"video": "a.mp4"}])
    assert batch["face_boxes"] == [[0, 0, 1, 1]] and proc.calls[-1] == {"videos": ["a.mp4"], "return_tensors": "pt"}


def test_segment_times_need_both_columns():
    proc = StandIn()
    MultiMAEDERDataCollator(proc)([{"video": "a.mp4", "start": 1.0}])
    MultiMAEDERDataCollator(proc)([{"video": "a.mp4", "end": 1.0}])
    assert proc.calls == [{"videos": ["a.mp4"], "return_tensors": "pt"}] * 2


def test_audio_is_passed_only_when_it_points_at_another_file():
    proc = StandIn()
    collator = MultiMAEDERDataCollator(proc)
    # RAVDESS: both columns point at the same mp4 (paths, dicts or decoders): the processor reads its track once
    collator([{"video": "a.mp4", "audio": "a.mp4"}, {"video": "b.mp4", "audio": "b.mp4"}])
    same = {"path": "c.mp4", "bytes": b"1234"}
    collator([{"video": dict(same), "audio": dict(same)}])
    collator([{"video": Decoded("d.mp4", b"12"), "audio": Decoded("d.mp4", b"12")}])
    assert [c.get("audio") for c in proc.calls] == [None, None, None]
    # IEMOCAP: a separate utterance wav, beginning at audio_start in the video
    rows = [
        {"video": "dialog.avi", "audio": "utt1.wav", "audio_start": 2, "start": 2, "end": 3},
        {"video": "dialog.avi", "audio": "dialog.avi", "audio_start": 0.5, "start": 0.5, "end": 1},
    ]
    collator(rows)
    assert proc.calls[-1] == {
        "videos": ["dialog.avi", "dialog.avi"],
        "audio": ["utt1.wav", "dialog.avi"],  # one row differs: every row's audio goes
        "audio_start": [2.0, 0.5],
        "clip_start": [2.0, 0.5],
        "clip_end": [3.0, 1.0],
        "return_tensors": "pt",
    }


@pytest.mark.parametrize(
    "video, audio",
    [
        (Decoded(None, b"abc"), Decoded(None, b"abcdef")),  # decoders of in-memory media of different sizes
        ({"path": None, "bytes": b"abc"}, {"path": None, "bytes": b"abcdef"}),  # the dicts they come from
        (Decoded("a.mp4"), Decoded("a.wav")),  # decoders of different files
        ("a.mp4", b"RIFF...."),  # a path and bytes
        (object(), object()),  # unknown objects are never taken for the same file
    ],
)
def test_different_media_sources_are_told_apart(video, audio):
    proc = StandIn()
    MultiMAEDERDataCollator(proc)([{"video": video, "audio": audio}])
    assert len(proc.calls[0]["audio"]) == 1
    expected = audio.get("bytes") if isinstance(audio, dict) else audio
    assert proc.calls[0]["audio"][0] is expected and "audio_start" not in proc.calls[0]


def test_audio_only_rows_and_no_audio_column():
    proc = StandIn()
    MultiMAEDERDataCollator(proc)([{"audio": "u.wav", "emotion": 0}])
    assert proc.calls[-1] == {"audio": ["u.wav"], "return_tensors": "pt"}
    MultiMAEDERDataCollator(proc)([{"video": "v.mp4"}])  # no audio column at all
    MultiMAEDERDataCollator(proc, audio_column=None)([{"video": "v.mp4", "audio": "u.wav"}])
    assert proc.calls[-2:] == [{"videos": ["v.mp4"], "return_tensors": "pt"}] * 2


def test_as_transform_turns_a_batch_of_columns_into_rows():
    proc = StandIn()
    transform = MultiMAEDERDataCollator(proc).as_transform()
    batch = transform({"video": ["a.mp4", "b.mp4"], "start": [0, 1], "end": [1, 2], "emotion": [5, 6]})
    assert proc.calls == [{"videos": ["a.mp4", "b.mp4"], "clip_start": [0.0, 1.0], "clip_end": [1.0, 2.0],
                           "return_tensors": "pt"}]  # fmt: skip
    assert batch["labels"].tolist() == [5, 6]
