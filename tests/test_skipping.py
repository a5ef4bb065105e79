"""A clip's sampled frames decoded alone (models/multimae_der/skipping.py, the processor's route for H.264 in MP4
files): the frames, times, span and frame indices are torchcodec's to the bit, only the frames something needs are
decoded, and anything else is read by torchcodec as before."""

from __future__ import annotations

import sys
from fractions import Fraction

import av
import numpy as np
import pytest
import torch
import torch.nn.functional as F
from av_writing import flush, mux_audio
from torchcodec.decoders import Demuxer, VideoDecoder

from mmder_hf.models.multimae_der import skipping
from mmder_hf.models.multimae_der.media import MediaError, decode_clip, video_stream_range
from mmder_hf.models.multimae_der.processing_multimae_der import MultiMAEDERProcessor
from mmder_hf.models.multimae_der.skipping import open_frame_reader


def _write(path, seconds: float, fps=Fraction(10), gop: int = 250, b_frames: bool = True, movflags: str = ""):
    """Moving noise blocks (every frame differs) with a tone; ``gop``: frames between keyframes."""
    rng = np.random.default_rng(1)
    with av.open(str(path), mode="w", options={"movflags": movflags} if movflags else {}) as container:
        video = container.add_stream("libx264", rate=fps)
        video.width, video.height, video.pix_fmt = 64, 48, "yuv420p"
        video.codec_context.gop_size = gop
        video.options = {"preset": "veryfast", "x264-params": f"bframes={3 if b_frames else 0}:scenecut=0"}
        audio = container.add_stream("aac", rate=16000, layout="mono")
        base = rng.integers(0, 255, (48 // 8, 64 // 8, 3), dtype=np.uint8).repeat(8, 0).repeat(8, 1)
        count = int(seconds * fps)
        for index in range(count):
            image = np.roll(base, 2 * index, axis=1) // 2 + rng.integers(0, 64, (48, 64, 3), dtype=np.uint8)
            for packet in video.encode(av.VideoFrame.from_ndarray(image.astype(np.uint8), format="rgb24")):
                container.mux(packet)
        times = np.arange(int(seconds * 16000)) / 16000
        mux_audio(container, audio, 0.3 * np.sin(2 * np.pi * 300 * times)[None], 16000)
        flush(container, (video, audio))
    return str(path)


@pytest.fixture(scope="module")
def media(tmp_path_factory):
    folder = tmp_path_factory.mktemp("skipping")
    return {
        "b_frames": _write(folder / "b_frames.mp4", 4.0),  # one group of pictures, B-frames
        "gops": _write(folder / "gops.mp4", 4.0, gop=10),  # a keyframe every second, B-frames
        "no_b": _write(folder / "no_b.mp4", 4.0, gop=15, b_frames=False),  # P-frames only: every frame a reference
        "ntsc": _write(folder / "ntsc.mov", 3.0, fps=Fraction(30000, 1001), gop=12),
        "faststart": _write(folder / "faststart.mp4", 4.0, gop=10, movflags="faststart"),  # moov before mdat
    }


def _references(path: str) -> list[int]:
    """Indices (presentation order) of the frames other frames are predicted from, read by PyAV on its own: what
    FFmpeg decodes when told to skip every non-reference frame."""
    with av.open(path) as container:
        stream = container.streams.video[0]
        every = sorted(packet.pts for packet in container.demux(stream) if packet.size)
    with av.open(path) as container:
        stream = container.streams.video[0]
        stream.codec_context.skip_frame = "NONREF"
        return sorted(every.index(frame.pts) for frame in container.decode(stream))


RANGES = [(None, None), (0.35, 2.9), (1.05, 1.6), (2.5, None), (0.0, 0.25)]


@pytest.mark.parametrize("name", ["b_frames", "gops", "no_b", "ntsc"])
def test_span_frame_count_and_frame_index_are_torchcodecs(media, name):
    path = media[name]
    reader = open_frame_reader(path)
    decoder = VideoDecoder(path, seek_mode="exact")
    assert reader.span == video_stream_range(decoder) and reader.num_frames == len(decoder)
    index = Demuxer(path).streams[0].scan()
    begin, end, _ = reader.span
    edges = [float(t) for t in index.pts_seconds] + [end]
    times = [begin - 1.0, end + 1.0] + [t + d for t in edges for d in (-1e-9, 0.0, 1e-9)]
    times += list(np.linspace(begin, end, 97))
    assert [reader.index_at(t) for t in times] == [index.index_at(t) for t in times]
    reader.close()


@pytest.mark.parametrize("name", ["b_frames", "gops", "no_b", "ntsc"])
@pytest.mark.parametrize("sampling", ["aligned", "original"])
def test_a_clip_is_read_as_torchcodec_reads_it(media, name, sampling, monkeypatch):
    path = media[name]
    reads = []
    real_read = skipping.FrameReader.read

    def counted(self, indices, transform=None):
        result = real_read(self, indices, transform)
        reads.append((list(indices), self.frames_decoded))
        return result

    monkeypatch.setattr(skipping.FrameReader, "read", counted)
    for start, end in RANGES:
        options = {"frame_sampling": sampling, "clip_start": start, "clip_end": end}
        got = decode_clip(path, 8, 16000, **options)
        expected = decode_clip(path, 8, 16000, skip_unused_frames=False, **options)
        assert torch.equal(got.frames, expected.frames), (start, end)
        assert got.frames.stride() == expected.frames.stride()  # (n, H, W, 3) memory, as torchcodec lays it out
        assert got.frame_times == expected.frame_times and (got.start, got.end) == (expected.start, expected.end)
        assert torch.equal(got.waveform, expected.waveform)
        # resized as they are decoded: the same images as resizing torchcodec's frames
        resize = lambda frames: F.interpolate(frames, size=(20, 20), mode="bilinear", antialias=True)  # noqa: E731
        resized = decode_clip(path, 8, 16000, frame_transform=resize, **options)
        assert torch.equal(resized.frames, resize(expected.frames)), (start, end)
    assert len(reads) == 2 * len(RANGES)  # every read took this route


def _groups(indices: list[int], keyframes: list[int]) -> dict[int, int]:
    """The keyframe each wanted frame is decoded from -> the last wanted frame of that group."""
    last: dict[int, int] = {}
    for index in indices:
        key = max(k for k in keyframes if k <= index)
        last[key] = max(last.get(key, index), index)
    return last


def test_only_what_the_sampled_frames_need_is_decoded(media):
    # P-frames only: from each wanted frame's keyframe to the last wanted frame of that group, nothing else
    path = media["no_b"]
    keyframes = list(range(0, 40, 15))
    for indices in ([3, 7, 8, 20, 21, 38], [16, 17], [0], [39]):
        reader = open_frame_reader(path)
        reader.read(indices)
        expected = sum(last - key + 1 for key, last in _groups(indices, keyframes).items())
        assert reader.frames_decoded == expected, indices
        reader.close()
    # B-frames: the reference frames up to the last wanted one and the wanted ones, no more; fewer than all
    path = media["b_frames"]
    references = _references(path)
    assert 10 < len(references) < 30  # 40 frames, about half of them B-frames nothing refers to
    indices = [2, 7, 12, 17, 21, 26, 31, 35]
    reader = open_frame_reader(path)
    frames, _ = reader.read(indices)
    needed = {i for i in references if i <= 35 + 4} | set(indices)  # (+4: frames decoded ahead of display order)
    assert len(set(indices) | set(references[:8])) <= reader.frames_decoded <= len(needed) < 40
    assert reader.frames_converted == len(indices)  # only the wanted frames become RGB
    reader.close()
    # the last frame, which a B-frame decoder gives only when drained at the end of the stream; a frame wanted twice
    reader = open_frame_reader(path)
    frames, times = reader.read([39, 0, 39])
    expected = VideoDecoder(path, seek_mode="exact").get_frames_at([39, 0, 39])
    assert torch.equal(frames, expected.data) and times == expected.pts_seconds.tolist()
    assert reader.frames_converted == 2
    reader.close()


def test_the_shortest_video_it_reads_has_two_frames(tmp_path):
    path = _write(tmp_path / "two.mp4", 0.2)  # 2 frames at 10 fps
    reader = open_frame_reader(path)
    assert reader is not None and reader.num_frames == 2
    reader.close()
    got, expected = decode_clip(path, 4, 16000), decode_clip(path, 4, 16000, skip_unused_frames=False)
    assert torch.equal(got.frames, expected.frames) and got.frame_times == expected.frame_times


def test_clips_it_does_not_reproduce_are_read_by_torchcodec(media, tmp_path, monkeypatch):
    from conftest import indexed_frames, tone
    from faces_media import face_frames, write_face_clip

    from mmder_hf.data.media_writing import write_clip

    mpeg4 = write_clip(tmp_path / "mpeg4.mp4", indexed_frames(30, 48, 64), 10.0, tone(3.0, 16000, 1), 16000, "mpeg4")
    mkv = write_clip(tmp_path / "h264.mkv", indexed_frames(30, 48, 64), 10.0, tone(3.0, 16000, 1), 16000)
    assert open_frame_reader(mpeg4) is None and open_frame_reader(mkv) is None
    # a portrait phone clip: shown turned (display matrix), which torchcodec applies; read by torchcodec
    portrait = write_face_clip(tmp_path / "portrait.mp4", face_frames(20, [lambda t: (60, 60, 1.0)])[0], rotation=90)
    for path in (mpeg4, mkv, portrait):
        got = decode_clip(path, 8, 16000)
        expected = decode_clip(path, 8, 16000, skip_unused_frames=False)
        assert torch.equal(got.frames, expected.frames) and got.frame_times == expected.frame_times, path
    # a cut file (its index first, so that it opens): its video stops short of the declared duration, and
    # torchcodec's check says so, as before
    data = open(media["faststart"], "rb").read()
    with pytest.raises(MediaError) as cut:
        decode_clip(data[: len(data) * 2 // 3], 8, 16000, clip_start=0.0, clip_end=1.0)
    with pytest.raises(MediaError) as cut_as_before:
        decode_clip(data[: len(data) * 2 // 3], 8, 16000, clip_start=0.0, clip_end=1.0, skip_unused_frames=False)
    assert str(cut.value) == str(cut_as_before.value) and "truncated" in str(cut.value)
    monkeypatch.setitem(sys.modules, "av", None)  # PyAV is optional for a model's code
    assert open_frame_reader(media["b_frames"]) is None
    assert torch.equal(decode_clip(media["b_frames"], 8, None).frames, expected_frames(media["b_frames"]))


def expected_frames(path: str) -> torch.Tensor:
    return decode_clip(path, 8, None, skip_unused_frames=False).frames


def test_the_processor_takes_the_route_with_the_same_inputs(media, monkeypatch):
    processor = MultiMAEDERProcessor(image_size=32)
    path = media["gops"]
    opened = []
    real_open = skipping.open_frame_reader
    monkeypatch.setattr(skipping, "open_frame_reader", lambda *a, **k: opened.append(1) or real_open(*a, **k))
    got = processor(videos=path, clip_start=0.7, clip_end=3.1, return_tensors="pt")
    assert opened
    monkeypatch.setattr(skipping, "open_frame_reader", lambda *a, **k: None)
    expected = processor(videos=path, clip_start=0.7, clip_end=3.1, return_tensors="pt")
    assert set(got) == set(expected) == {"pixel_values", "audio_values"}
    assert all(torch.equal(got[key], expected[key]) for key in got)
