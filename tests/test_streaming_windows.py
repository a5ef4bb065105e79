"""The one-pass timeline reader (models/multimae_der/streaming.py) on real files: each window's inputs equal the
processor's for that window as a clip, bit for bit; the video is demuxed and decoded once, in order; windows come
out in order as soon as complete; only the open windows' frames are held; the pipeline's timeline keeps its scores.
"""

from __future__ import annotations

import math
import sys
import weakref
from pathlib import Path

import numpy as np
import pytest
import torch
from inference_helpers import assert_inputs_identical

from mmder_hf.models.multimae_der import streaming
from mmder_hf.models.multimae_der.media import MediaError, open_video_decoder, sampling_times, stream_span
from mmder_hf.models.multimae_der.pipeline import sliding_windows
from mmder_hf.models.multimae_der.processing_multimae_der import MultiMAEDERProcessor
from mmder_hf.models.multimae_der.streaming import StreamingWindows


sys.path.insert(0, str(Path(__file__).resolve().parent))
FPS = 10.0


@pytest.fixture(scope="module")
def clip(make_clip) -> str:
    """7 s at 10 fps (70 frames, each a flat colour telling its index), 44.1 kHz stereo AAC."""
    return str(make_clip("streaming_windows_7s", num_frames=70, fps=FPS))


def _processor(strategy: str = "FSLF", **kwargs) -> MultiMAEDERProcessor:
    settings = dict(fusion_strategy=strategy, num_frames=8, image_size=32, audio_sample_rate=16000)
    return MultiMAEDERProcessor(**{**settings, **kwargs})


def _windows(path: str, window: float, stride: float) -> list:
    return sliding_windows(*stream_span(open_video_decoder(path)), window, stride)


def _frame_index(path: str, times: list) -> list[int]:
    """The frames a seeking decoder shows at ``times`` (the clip runs at 10 fps from 0 s)."""
    from torchcodec.decoders import VideoDecoder

    return [round(t * FPS) for t in VideoDecoder(path).get_frames_played_at(times).pts_seconds.tolist()]


# ---------------------------------------------------------------------------------------------------------------
# Bit for bit the processor's clips


@pytest.mark.parametrize("skip_unused_frames", [True, False], ids=["skipping", "every frame"])
@pytest.mark.parametrize(
    "strategy, sampling",
    [("FSLF", "aligned"), ("CFAS", "aligned"), ("video", "aligned"), ("FSLF", "original")],
)
def test_each_window_is_the_processors_clip_to_the_bit(clip, strategy, sampling, skip_unused_frames):
    processor = _processor(strategy, frame_sampling=sampling, num_frames=4 if strategy == "CFAS" else 8)
    # 3 s every 2 s: the first window, one in the middle, the tail window (4-7 s, added to reach the end); then
    # windows of 0.05 s, shorter than the frames' 0.1 s spacing (all their frames are one frame)
    assert _windows(clip, 3.0, 2.0) == [(0.0, 3.0), (2.0, 5.0), (4.0, 7.0)]
    for windows in (_windows(clip, 3.0, 2.0), [(1.0, 1.05), (1.03, 1.08), (6.9, 6.95)]):
        engine = StreamingWindows(processor, clip, windows, skip_unused_frames=skip_unused_frames)
        got = list(engine)
        assert engine.route == ("skipping" if skip_unused_frames else "every frame")
        assert [(start, end) for start, end, _ in got] == windows
        for start, end, inputs in got:
            expected = processor(videos=clip, clip_start=start, clip_end=end, return_tensors="pt")
            assert_inputs_identical(inputs, expected)


def test_face_crops_are_tracked_within_each_window_as_in_its_clip(tmp_path):
    pytest.importorskip("cv2")
    from faces_media import face_frames, write_face_clip

    # The main face is hidden in frames 9-14 (NaN boxes there) while a smaller one stays in view.
    main = lambda t: None if 9 <= t <= 14 else (60 + 12 * t, 200, 1.3)  # noqa: E731
    other = lambda t: (1100 - 14 * t, 380, 0.6)  # noqa: E731
    path = write_face_clip(tmp_path / "two_people.mp4", face_frames(24, [main, other])[0])
    processor = _processor("FSLF", image_size=64, face_crop=True)
    windows = _windows(path, 1.2, 0.5)
    got = list(StreamingWindows(processor, path, windows))
    assert len(got) == len(windows) == 4
    hidden = 0
    for start, end, inputs in got:
        expected = processor(videos=path, clip_start=start, clip_end=end, return_tensors="pt")
        assert_inputs_identical(inputs, expected)
        hidden += int(torch.isnan(inputs["face_boxes"][0, :, 0]).sum())
    assert hidden > 0  # some windows sample the frames where the main face is hidden


# ---------------------------------------------------------------------------------------------------------------
# One pass, in order, as soon as complete, with bounded memory


class _Counted:
    """Counts the Demuxers opened on the video stream and the packets they give (audio demuxers apart), and the
    frames converted to RGB (live ones too)."""

    def __init__(self, monkeypatch, on_convert=None):
        import torchcodec.decoders as decoders

        self.demuxers, self.packets, self.audio_demuxers, self.audio_decoders, self.converted = 0, 0, 0, 0, []
        counter = self

        class Demuxer(decoders.Demuxer):
            def __init__(self, *args, **kwargs):
                super().__init__(*args, **kwargs)
                self.video = any(stream.metadata.media_type == "video" for stream in self.streams)
                if self.video:
                    counter.demuxers += 1
                else:
                    counter.audio_demuxers += 1

            def __next__(self):
                packet = super().__next__()
                counter.packets += self.video
                return packet

        class ColorConverter(decoders.ColorConverter):
            def convert(self, raw_frame):
                frame = super().convert(raw_frame)
                counter.converted.append(weakref.ref(frame.data))
                if on_convert is not None:
                    on_convert()
                return frame

        class AudioDecoder(decoders.AudioDecoder):
            def __init__(self, *args, **kwargs):
                super().__init__(*args, **kwargs)
                counter.audio_decoders += 1

        monkeypatch.setattr(decoders, "Demuxer", Demuxer)
        monkeypatch.setattr(decoders, "AudioDecoder", AudioDecoder)
        monkeypatch.setattr(decoders, "ColorConverter", ColorConverter)
        for name in ("get_frames_played_at", "get_frame_played_at", "get_frames_at", "get_frame_at"):
            monkeypatch.setattr(decoders.VideoDecoder, name, self._refuse(name))

    @staticmethod
    def _refuse(name):
        def refuse(*args, **kwargs):
            raise AssertionError(f"a seeking decoder was used: VideoDecoder.{name}")

        return refuse


def test_the_video_is_demuxed_and_decoded_once(clip, monkeypatch):
    from torchcodec.decoders import VideoDecoder

    processor = _processor("FSLF")
    windows = _windows(clip, 3.0, 1.0)
    times = [t for start, end in windows for t in sampling_times(0.0, 7.0, start, end, 4)]
    distinct = len(set(_frame_index(clip, times)))  # the frames some window samples
    packets = len(VideoDecoder(clip))  # H.264: one packet per frame
    counted = _Counted(monkeypatch)
    engine = StreamingWindows(processor, clip, windows, skip_unused_frames=False)
    assert len(list(engine)) == len(windows) == 5 and engine.route == "every frame"
    assert counted.demuxers == 1 and counted.packets == packets == 70
    assert (engine.packets_read, engine.frames_decoded) == (70, 70)
    assert len(counted.converted) == engine.frames_converted == distinct < 70  # only the sampled frames
    # The windows' audio comes through one audio demuxer, opened for the pass and once more for the first window
    # (it starts at the stream's start, where a fresh decoder reads from the first packet): no decoder per window.
    assert counted.audio_demuxers == 2 and counted.audio_decoders == 0


def test_windows_come_out_in_order_as_soon_as_complete(clip):
    processor = _processor("video")
    windows = _windows(clip, 2.0, 1.5)  # 0-2, 1.5-3.5, 3-5, 4.5-6.5 and the tail 5-7 s
    # A window is complete once the frame after its last sampled frame is decoded (that frame's timestamp ends the
    # time its last frame is shown), or at the end of the file.
    last = [_frame_index(clip, sampling_times(0.0, 7.0, start, end, 8))[-1] for start, end in windows]
    expected = [min(index + 2, 70) for index in last]
    engine = StreamingWindows(processor, clip, windows, skip_unused_frames=False)
    iterator = iter(engine)
    seen = []
    for start, end, _ in iterator:
        seen.append(((start, end), engine.frames_decoded))
    assert [span for span, _ in seen] == windows
    assert [decoded for _, decoded in seen] == expected
    # by hand: the last of 8 frames is at 8/9 of a 2 s window, 1.78 s in: frames 17, 32, 47, 62 and 67 (tail)
    assert expected == [19, 34, 49, 64, 69]  # the first window came out after 19 of the 70 frames
    again = iter(engine)  # a generator: step it
    start, end, first = next(again)
    assert (start, end) == windows[0] and engine.frames_decoded == expected[0]
    assert set(first) == {"pixel_values"}


def _reference_frames(path: str) -> set:
    """Indices (presentation order) of the frames other frames are predicted from: what FFmpeg still decodes when
    told to skip non-reference frames, read here by PyAV on its own."""
    import av

    with av.open(path) as container:
        stream = container.streams.video[0]
        every = sorted(packet.pts for packet in container.demux(stream) if packet.pts is not None)
    with av.open(path) as container:
        stream = container.streams.video[0]
        stream.codec_context.skip_frame = "NONREF"
        return {every.index(frame.pts) for frame in container.decode(stream)}


def test_frames_no_window_samples_and_no_frame_needs_are_not_decoded(clip):
    """H.264 with B-frames: a pass decodes the reference frames and the sampled ones, nothing else, and gives the
    windows of the pass that decodes every frame, to the bit (face crops too: test above)."""
    processor = _processor("FSLF")
    windows = _windows(clip, 3.0, 1.0)
    count = processor.num_video_frames  # FSLF: 4 face frames of the 8
    times = [t for start, end in windows for t in sampling_times(0.0, 7.0, start, end, count)]
    sampled = set(_frame_index(clip, times))
    references = _reference_frames(clip)
    assert len(references) < 70 and not sampled <= references  # B-frames, some of them sampled
    engine = StreamingWindows(processor, clip, windows)
    skipping = list(engine)
    assert engine.route == "skipping" and engine.packets_read == 70
    assert engine.frames_decoded == len(references | sampled) < 70
    assert engine.frames_converted == len(sampled)
    every = list(StreamingWindows(processor, clip, windows, skip_unused_frames=False))
    assert [span[:2] for span in skipping] == [span[:2] for span in every] == windows
    for (_, _, got), (_, _, expected) in zip(skipping, every):
        assert_inputs_identical(got, expected)


def test_videos_the_skipping_pass_cannot_read_get_every_frame_decoded(clip, tmp_path, monkeypatch):
    """A codec other than H.264, a rotated (portrait phone) clip, or no PyAV: every frame is decoded, with the
    processor's clip inputs."""
    from faces_media import face_frames, write_face_clip

    processor = _processor("video", image_size=32)
    from conftest import indexed_frames, tone

    from mmder_hf.data.media_writing import write_clip

    mpeg4 = write_clip(tmp_path / "mpeg4.mkv", indexed_frames(40, 48, 64), FPS, tone(4.0, 44100, 2), 44100, "mpeg4")
    portrait = write_face_clip(tmp_path / "portrait.mp4", face_frames(20, [lambda t: (60, 60, 1.0)])[0], rotation=90)
    for path in (mpeg4, portrait):
        windows = _windows(path, 1.0, 1.0)
        engine = StreamingWindows(processor, path, windows)
        for start, end, inputs in engine:
            expected = processor(videos=path, clip_start=start, clip_end=end, return_tensors="pt")
            assert_inputs_identical(inputs, expected)
        assert engine.route == "every frame", path
    monkeypatch.setitem(sys.modules, "av", None)  # PyAV is optional for a model's code
    engine = StreamingWindows(processor, clip, [(0.0, 1.0)])
    ((_, _, inputs),) = list(engine)
    assert engine.route == "every frame"
    assert_inputs_identical(inputs, processor(videos=clip, clip_start=0.0, clip_end=1.0, return_tensors="pt"))


@pytest.mark.parametrize("face_crop", [False, True])
def test_only_the_open_windows_frames_are_held(make_clip, face_crop, monkeypatch):
    if face_crop:
        pytest.importorskip("cv2")
    processor = _processor("video", face_crop=face_crop)
    held_at_most = {}
    for seconds in (8, 16):
        path = str(make_clip(f"streaming_windows_{seconds}s", num_frames=int(seconds * FPS), fps=FPS, audio=False))
        windows = _windows(path, 3.0, 1.0)
        first = [_frame_index(path, sampling_times(0.0, seconds, s, e, 8))[0] for s, e in windows]
        state = {"handed_out": 0, "most": 0}
        stored = []  # what the windows keep: the RGB frames (face crops), or their resized images

        def check() -> None:
            """At every frame converted and every window handed out: the frames alive are at most 8 for each
            window started (its first frame decoded) and not handed out yet, + the one being converted."""
            live = sum(ref() is not None for ref in (counted.converted if face_crop else stored))
            started = sum(1 for index in first[state["handed_out"] :] if index < engine.frames_decoded)
            assert live <= 8 * started + 1, (live, started)
            state["most"] = max(state["most"], live)

        counted = _Counted(monkeypatch, on_convert=check)
        if not face_crop:
            resize = processor.video_processor.frames_to_images

            def recorded(frames, name):
                images, boxes = resize(frames, name)
                stored.append(weakref.ref(images))
                return images, boxes

            monkeypatch.setattr(processor.video_processor, "frames_to_images", recorded)
        engine = StreamingWindows(processor, path, windows, skip_unused_frames=False)
        for _ in engine:
            state["handed_out"] += 1
            check()
        monkeypatch.undo()
        assert state["handed_out"] == len(windows)
        assert len(counted.converted) > 2 * state["most"]  # frames converted, then dropped once no window needs them
        held_at_most[seconds] = (state["most"], engine.max_frames_held, engine.max_open_windows)
    # 3 s windows every second: at most 4 open at once; memory does not grow with the video's length
    assert held_at_most[8] == held_at_most[16]
    assert held_at_most[16][1] <= 8 * held_at_most[16][2] <= 8 * 4 < 160


def test_a_truncated_file_is_named_before_any_window(make_clip, tmp_path):
    data = Path(make_clip("streaming_windows_whole", num_frames=40, fps=FPS, container="mkv")).read_bytes()
    cut = tmp_path / "cut.mkv"
    cut.write_bytes(data[: int(len(data) * 0.6)])  # an interrupted download: the header still says 4 s
    engine = StreamingWindows(_processor("FSLF"), str(cut), [(0.0, 1.0), (1.0, 2.0)])
    with pytest.raises(MediaError, match=rf"^{cut}: truncated file: its streams end at"):
        next(iter(engine))


def test_settings_it_does_not_read_are_refused(clip):
    with pytest.raises(ValueError, match="seek_mode='exact'"):
        StreamingWindows(_processor("FSLF", seek_mode="approximate"), clip, [(0.0, 1.0)])
    with pytest.raises(ValueError, match="reads none"):
        StreamingWindows(_processor("audio"), clip, [(0.0, 1.0)])
    with pytest.raises(ValueError, match="in order"):
        StreamingWindows(_processor("FSLF"), clip, [(1.0, 2.0), (0.0, 1.0)])
    StreamingWindows(_processor("FSLF"), clip, [(0.0, 1.0), (0.0, 2.0)])  # the same start twice is still in order
    assert streaming.streaming_supported()


# ---------------------------------------------------------------------------------------------------------------
# The pipeline's timeline


def test_the_pipeline_timeline_keeps_the_scores_of_reading_window_by_window(clip, monkeypatch):
    from inference_helpers import tiny_classifier
    from torchcodec.decoders import VideoDecoder

    from mmder_hf.models.multimae_der import MultiMAEDERPipeline

    model = tiny_classifier()
    pipe = MultiMAEDERPipeline(model=model, processor=MultiMAEDERProcessor.from_model_config(model.config))
    # window by window: a torchcodec decoder input is read through seeking decoders, one window at a time
    decoder = VideoDecoder(clip)
    decoder._hf_encoded = {"path": clip, "bytes": None}  # as a datasets Video column returns it
    per_window = pipe(decoder, window=3.0, stride=1.0, batch_size=2)
    counted = _Counted(monkeypatch)
    one_pass = pipe(clip, window=3.0, stride=1.0, batch_size=2)
    assert counted.demuxers == 1
    assert len(one_pass) == len(per_window) == 5
    for a, b in zip(one_pass, per_window):
        assert (a["start"], a["end"], a["label"]) == (b["start"], b["end"], b["label"])
        assert a["score"] == pytest.approx(b["score"], abs=1e-6)
        assert a["scores"] == pytest.approx(b["scores"], abs=1e-6)
    assert not math.isclose(one_pass[0]["scores"]["happy"], one_pass[-1]["scores"]["happy"], abs_tol=1e-6)
    assert np.isfinite([w["score"] for w in one_pass]).all()
