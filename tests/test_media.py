"""Frame and window timing of the media layer (media.py): which frames are sampled, which audio samples a time range
holds, clip edges, and the input checks; expected values computed by hand (index-coded frames, ramp audio)."""

from __future__ import annotations

import struct
from types import SimpleNamespace

import numpy as np
import pytest
import torch
from conftest import decode_indices, tone, write_wav

from mmder_hf.models.multimae_der import media, truncation
from mmder_hf.models.multimae_der.media import (
    MediaError,
    aligned_frame_indices,
    check_source,
    decode_clip,
    original_frame_indices,
    stream_span,
    uniform_frame_times,
)


# ---------------------------------------------------------------------------------------------------------------
# Sampling formulas


def test_aligned_indices_by_hand():
    assert aligned_frame_indices(10, 4) == [2, 4, 6, 8]  # floor((k + 1) * 10 / 5)
    assert aligned_frame_indices(3, 5) == [0, 1, 1, 2, 2]  # fewer frames than asked: repeated
    assert aligned_frame_indices(50, 8) == [5, 11, 16, 22, 27, 33, 38, 44]
    assert aligned_frame_indices(1, 2) == [0, 0]  # a one-frame clip
    assert all(type(i) is int for i in aligned_frame_indices(7, 3))
    with pytest.raises(ValueError, match="no video frames"):
        aligned_frame_indices(0, 4)


def test_uniform_times_by_hand():
    assert uniform_frame_times(2.0, 5.0, 2) == pytest.approx([3.0, 4.0])
    assert uniform_frame_times(0.0, 1.7, 16) == pytest.approx([0.1 * (k + 1) for k in range(16)])  # k T / 17


def test_original_indices_by_hand():
    assert original_frame_indices(100, 8) == [0, 6, 12, 18, 24, 30, 36, 42]  # stride 48 // 8
    assert original_frame_indices(100, 16) == [3 * k for k in range(16)]
    assert original_frame_indices(10, 4) == [0, 9, 9, 9]  # stride 12, clamped to the last frame
    assert original_frame_indices(100, 4, 10, first=5) == [5, 15, 25, 35]
    assert original_frame_indices(200, 64) == list(range(64))  # 48 // 64 = 0: stride 1
    with pytest.raises(ValueError, match="no video frames"):
        original_frame_indices(0, 4)


# ---------------------------------------------------------------------------------------------------------------
# Time spans from decoder metadata


def _video(**meta):
    fields = dict(begin_stream_seconds=None, end_stream_seconds=None, average_fps=None, duration_seconds=None)
    fields["num_frames"] = None
    fields.update(meta)
    return SimpleNamespace(metadata=SimpleNamespace(**fields))


def _audio(begin=None, duration=None):
    return SimpleNamespace(metadata=SimpleNamespace(begin_stream_seconds=begin, duration_seconds=duration))


def test_stream_span_from_whatever_metadata_there_is():
    assert stream_span(_video(begin_stream_seconds=0.5, end_stream_seconds=2.5, average_fps=25.0)) == (0.5, 2.5)
    assert stream_span(_video(end_stream_seconds=2.0, average_fps=25.0)) == (0.0, 2.0)  # no begin: 0
    assert stream_span(_video(begin_stream_seconds=1.0, duration_seconds=3.0, average_fps=10.0)) == (1.0, 4.0)
    # Neither end nor duration: frames / fps = 50 / 25 = 2 s after the begin.
    assert stream_span(_video(begin_stream_seconds=1.0, num_frames=50, average_fps=25.0)) == (1.0, 3.0)
    # The video's span wins over the audio's; audio alone: begin + duration.
    assert stream_span(_video(end_stream_seconds=2.0, average_fps=25.0), _audio(0.0, 5.0)) == (0.0, 2.0)
    assert stream_span(None, _audio(0.25, 1.5)) == (0.25, 1.75)
    assert stream_span(None, _audio(None, 1.5)) == (0.0, 1.5)
    for bad in ((_video(average_fps=25.0),), (None, _audio(0.0, None)), (None, None)):
        with pytest.raises(MediaError, match="duration") as info:
            stream_span(*bad, name="clip.mp4")
        assert info.value.source == "clip.mp4"
    with pytest.raises(MediaError, match="duration"):
        stream_span(_video(begin_stream_seconds=2.0, end_stream_seconds=2.0, average_fps=25.0))


def test_frame_rate_from_the_frame_count_when_the_header_has_none():
    assert media._video_range(_video(end_stream_seconds=2.0, num_frames=30), "x") == (0.0, 2.0, 15.0)
    assert media._video_range(_video(begin_stream_seconds=1.0, end_stream_seconds=3.0), "x") == (1.0, 3.0, 0.5)


# ---------------------------------------------------------------------------------------------------------------
# Sampled frames of real clips (index-coded: 50 frames, 25 fps, 2 s)


def test_aligned_frames_of_the_whole_clip_and_of_a_range(synthetic_clip_path):
    clip = decode_clip(str(synthetic_clip_path), 8, audio_sample_rate=None)
    assert (clip.start, clip.end) == (0.0, 2.0)
    assert decode_indices(clip.frames) == [5, 11, 16, 22, 27, 33, 38, 44]  # floor(25 (k + 1) 2 / 9)
    assert clip.frame_times == pytest.approx([i / 25 for i in [5, 11, 16, 22, 27, 33, 38, 44]])
    # 0.4-1.6 s: times 0.4 + (k + 1) 1.2 / 9; 0.8 s falls on frame 20's start and shows frame 20.
    part = decode_clip(str(synthetic_clip_path), 8, audio_sample_rate=None, clip_start=0.4, clip_end=1.6)
    assert (part.start, part.end) == (0.4, 1.6)
    assert decode_indices(part.frames) == [13, 16, 20, 23, 26, 30, 33, 36]
    # A range past the clip's end ends with the clip.
    tail = decode_clip(str(synthetic_clip_path), 4, audio_sample_rate=None, clip_start=1.0, clip_end=9.0)
    assert (tail.start, tail.end) == (1.0, 2.0)
    assert decode_indices(tail.frames) == [30, 35, 40, 45]  # 1 + (k + 1) / 5 s


def test_original_frames_stride_from_the_range_start(synthetic_clip_path):
    clip = decode_clip(str(synthetic_clip_path), 8, audio_sample_rate=None, frame_sampling="original")
    assert decode_indices(clip.frames) == [0, 6, 12, 18, 24, 30, 36, 42]
    late = decode_clip(str(synthetic_clip_path), 8, audio_sample_rate=None, frame_sampling="original", clip_start=0.4)
    assert decode_indices(late.frames) == [10, 16, 22, 28, 34, 40, 46, 49]  # from frame 10, clamped to 49
    short = decode_clip(
        str(synthetic_clip_path), 4, audio_sample_rate=None, frame_sampling="original", clip_end=0.5, frame_stride=5
    )
    assert decode_indices(short.frames) == [0, 5, 10, 12]  # frames 0-12 lie before 0.5 s


def test_a_range_starting_after_the_end_is_refused(synthetic_clip_path):
    with pytest.raises(MediaError, match=r"at or past the end of the clip \(2.000 s\)"):
        decode_clip(str(synthetic_clip_path), 4, clip_start=2.0)
    with pytest.raises(MediaError, match="must be greater than clip_start"):
        decode_clip(str(synthetic_clip_path), 4, clip_start=1.0, clip_end=1.0)


def test_frames_in_channels_last_or_grey_come_back_as_rgb_channels_first():
    def decoder(data, height=4):
        batch = SimpleNamespace(data=data, pts_seconds=torch.tensor([0.25, 0.75]))
        meta = SimpleNamespace(
            begin_stream_seconds=0.0, end_stream_seconds=1.0, average_fps=2.0, height=height, width=6, num_frames=2
        )
        return SimpleNamespace(metadata=meta, get_frames_played_at=lambda times: batch)

    hwc = torch.arange(2 * 4 * 6 * 3, dtype=torch.uint8).reshape(2, 4, 6, 3)  # opened with dimension_order="NHWC"
    for height in (4, None):  # with and without the frame size in the metadata
        frames, times = media._decode_frames(decoder(hwc, height), "x", 2, 0.0, 1.0, "aligned", None)
        assert frames.shape == (2, 3, 4, 6) and times == [0.25, 0.75]
        torch.testing.assert_close(frames, hwc.permute(0, 3, 1, 2))
    row = torch.arange(2 * 1 * 6 * 3, dtype=torch.uint8).reshape(2, 1, 6, 3)  # channels-last frames one pixel high
    frames, _ = media._decode_frames(decoder(row, height=1), "x", 2, 0.0, 1.0, "aligned", None)
    torch.testing.assert_close(frames, row.permute(0, 3, 1, 2))
    grey = torch.arange(48, dtype=torch.uint8).reshape(2, 1, 4, 6)
    frames, _ = media._decode_frames(decoder(grey), "x", 2, 0.0, 1.0, "aligned", None)
    assert frames.shape == (2, 3, 4, 6)
    assert all(torch.equal(frames[:, c], grey[:, 0]) for c in range(3))


# ---------------------------------------------------------------------------------------------------------------
# Audio samples of a time range


@pytest.fixture(scope="module")
def ramp_wav(tmp_path_factory):
    """2 s of mono 16 kHz 16-bit audio rising linearly from -0.8 to 0.8: a sample's value tells its time."""
    times = np.arange(32000) / 16000
    return write_wav(tmp_path_factory.mktemp("ramp") / "ramp.wav", (-0.8 + 0.8 * times)[None], 16000)


def _ramp(t):
    return -0.8 + 0.8 * np.asarray(t)


def test_audio_of_a_range_holds_its_own_samples(ramp_wav):
    whole = decode_clip(str(ramp_wav), 0)
    assert whole.frames is None and (whole.start, whole.end) == (0.0, 2.0) and whole.waveform.shape == (32000,)
    part = decode_clip(str(ramp_wav), 0, clip_start=0.5, clip_end=1.25)
    assert (part.start, part.end) == (0.5, 1.25) and part.waveform.shape == (12000,)
    expected = _ramp(0.5 + np.arange(12000) / 16000)
    np.testing.assert_allclose(part.waveform.numpy(), expected, atol=2e-4)
    late = decode_clip(str(ramp_wav), 0, clip_start=1.5)  # to the end of the file
    assert late.waveform.shape == (8000,) and float(late.waveform[0]) == pytest.approx(_ramp(1.5), abs=2e-4)


def test_a_range_one_sample_long_holds_that_sample(ramp_wav):
    one = decode_clip(str(ramp_wav), 0, clip_start=0.5, clip_end=0.5 + 1 / 16000)
    assert one.waveform.shape == (1,) and float(one.waveform[0]) == pytest.approx(_ramp(0.5), abs=2e-4)  # -0.4


def test_late_audio_is_placed_on_the_clips_timeline():
    """An audio track starting 0.25 s into a 1 s range: silence first, then its samples, cut at the range end."""
    data = torch.linspace(0.1, 0.9, 16000)[None]  # 1 s at 16 kHz from 0.25 s
    samples = SimpleNamespace(data=data, sample_rate=16000, pts_seconds=0.25)
    asked = []

    def played(start, end):
        asked.append((start, end))
        return samples

    decoder = SimpleNamespace(metadata=SimpleNamespace(begin_stream_seconds=0.25), get_samples_played_in_range=played)
    waveform, decoded_end = media._decode_audio(decoder, "x", 0.0, 1.0, 16000, pad_to_range=True)
    assert asked == [(0.25, 1.0)] and decoded_end == pytest.approx(1.25)
    assert waveform.shape == (16000,)
    assert (waveform[:4000] == 0).all()
    torch.testing.assert_close(waveform[4000:], data[0, :12000])
    unpadded, _ = media._decode_audio(decoder, "x", 0.0, 1.0, 16000, pad_to_range=False)
    torch.testing.assert_close(unpadded, data[0])
    asked.clear()
    media._decode_audio(decoder, "x", 0.5, None, 16000, pad_to_range=False)  # from 0.5 s to the stream's end
    assert asked == [(0.5, None)]


@pytest.mark.parametrize("audio_seconds", [1.0, 3.0])
def test_audio_alone_from_a_video_file_is_read_over_the_video_span(make_clip, audio_seconds):
    """Audio without frames from a file with a 2 s video stream is read over the video's 2 s, as when frames are read
    with it: a 1 s track is followed by silence, a 3 s one is cut at 2 s (the tone written is the expected value)."""
    path = make_clip(
        f"span_audio_{audio_seconds}",
        num_frames=20,
        fps=10.0,
        sample_rate=16000,
        channels=1,
        audio_duration=audio_seconds,
        container="mkv",
    )
    clip = decode_clip(str(path), 0)
    assert clip.frames is None and (clip.start, clip.end) == (0.0, 2.0)
    assert clip.waveform.shape == (32000,)
    wave, written = clip.waveform.numpy(), tone(audio_seconds, 16000)[0]

    def rms(x):
        return float(np.sqrt(np.mean(np.square(x))))

    assert rms(wave[:15000] - written[:15000]) < 0.02  # the tone (RMS 0.35), through AAC
    if audio_seconds == 1.0:
        assert (wave[17000:] == 0).all()  # after the track's end (and the codec's padding): silence
    else:
        assert rms(wave[17000:] - written[17000:32000]) < 0.02


@pytest.mark.parametrize("num_frames, seconds", [(2, 0.2), (1, 1.0)])
def test_two_frames_make_a_video_span_and_one_frame_does_not(make_clip, num_frames, seconds):
    """Beside 1 s of audio, a video stream of two frames at 10 fps is a real video: the audio is read over its 0.2 s;
    a single frame (as an audio file's cover picture is) is not: the audio's own 1 s is read."""
    path = make_clip(
        f"cover_{num_frames}",
        num_frames=num_frames,
        fps=10.0,
        sample_rate=16000,
        channels=1,
        audio_duration=1.0,
        container="mkv",
    )
    clip = decode_clip(str(path), 0)
    # (an AAC track in Matroska starts at -0.064 s, its encoder's priming: 1024 samples more)
    assert clip.start == pytest.approx(0.0, abs=0.07) and clip.end == pytest.approx(seconds, abs=0.03)
    assert clip.waveform.shape[0] == pytest.approx(seconds * 16000, abs=1100)


def test_an_audio_stream_without_a_declared_duration_ends_where_its_samples_do(ramp_wav):
    """A stream whose header does not tell its length (as in some live recordings): the clip ends after its decoded
    samples, 32000 at 16 kHz from 0 s."""
    import dataclasses

    from torchcodec.decoders import AudioDecoder

    decoder = AudioDecoder(str(ramp_wav))
    decoder.metadata = dataclasses.replace(decoder.metadata, duration_seconds=None, duration_seconds_from_header=None)
    clip = decode_clip(decoder, 0)
    assert clip.waveform.shape == (32000,) and (clip.start, clip.end) == (0.0, 2.0)
    np.testing.assert_allclose(clip.waveform.numpy(), _ramp(np.arange(32000) / 16000), atol=2e-4)


def test_an_audio_decoding_error_names_the_input():
    def broken(start, end):
        raise RuntimeError("decode, /build/torchcodec/src/Decoder.cpp:88, invalid data found")

    decoder = SimpleNamespace(metadata=SimpleNamespace(begin_stream_seconds=0.0), get_samples_played_in_range=broken)
    with pytest.raises(MediaError) as info:
        media._decode_audio(decoder, "talk.wav", 0.0, 1.0, 16000, pad_to_range=False)
    assert info.value.source == "talk.wav"
    assert info.value.problem == "could not decode the audio track (truncated or corrupt file?): invalid data found"


# ---------------------------------------------------------------------------------------------------------------
# Input checks and truncated files


def test_first_line_of_a_decoder_error():
    error = RuntimeError("open, /src/torchcodec/_core/SingleStreamDecoder.cpp:120, no such stream\nsecond line")
    assert media._first_line(error) == "no such stream"
    assert media._first_line(ValueError("")) == "ValueError"
    assert len(media._first_line(RuntimeError("x" * 400))) == 300


def test_check_source(tmp_path):
    one_byte = tmp_path / "one.bin"
    one_byte.write_bytes(b"x")
    assert check_source(str(one_byte)) == str(one_byte)  # not empty: FFmpeg judges it
    empty = tmp_path / "empty.mp4"
    empty.write_bytes(b"")
    cases = {str(tmp_path / "missing.mp4"): "file not found", str(empty): "file is empty", str(tmp_path): "directory"}
    for path, problem in cases.items():
        with pytest.raises(MediaError, match=problem) as info:
            check_source(path)
        assert info.value.source == path
    assert check_source(bytearray(b"abc")) == b"abc" and type(check_source(bytearray(b"abc"))) is bytes
    with pytest.raises(MediaError, match="empty bytes"):
        check_source(b"")
    with pytest.raises(MediaError, match="unsupported media input of type int"):
        check_source(3)


def test_a_file_without_the_stream_says_which(video_only_clip_path):
    data = video_only_clip_path.read_bytes()
    with pytest.raises(MediaError, match="has no audio stream") as info:
        media.open_audio_decoder(data)
    assert info.value.source == f"<{len(data)} bytes of media>"
    with pytest.raises(MediaError, match="cannot be opened as media") as info:
        media.open_audio_decoder(b"not media at all" * 20, name="junk.bin")
    assert info.value.source == "junk.bin"


@pytest.mark.parametrize("extension", ["png", "jpg", "bmp", "webp"])
def test_a_photo_is_named_a_still_image_whatever_is_read(tmp_path, extension):
    from inference_helpers import write_photo

    photo = str(write_photo(tmp_path / f"photo.{extension}"))
    data = open(photo, "rb").read()
    for read in (
        lambda: media.open_video_decoder(photo),
        lambda: media.open_audio_decoder(photo),
        lambda: decode_clip(photo, num_video_frames=4),  # frames and audio
        lambda: decode_clip(photo, num_video_frames=4, audio_sample_rate=None),  # frames only
        lambda: decode_clip(photo, num_video_frames=0),  # audio only
    ):
        with pytest.raises(MediaError) as info:
            read()
        assert str(info.value) == f"{photo}: {media.STILL_IMAGE}"
    with pytest.raises(MediaError) as info:
        media.open_video_decoder(data)
    assert str(info.value) == f"<{len(data)} bytes of media>: {media.STILL_IMAGE}"
    assert media.STILL_IMAGE == "a still image, not a video (MultiMAE-DER reads a video with its audio track)"


def test_a_picture_beside_an_audio_track_is_not_a_photo(tmp_path):
    """A music file's cover: one JPEG frame in a "video" stream beside the audio. Its audio is read and the picture
    opens as a one-frame video: the file is not refused as a still image."""
    import av

    path = tmp_path / "song_with_cover.mkv"
    with av.open(str(path), mode="w") as container:
        picture = container.add_stream("mjpeg", rate=1)
        picture.width, picture.height, picture.pix_fmt = 64, 48, "yuvj420p"
        sound = container.add_stream("aac", rate=16000, layout="mono")
        frame = av.VideoFrame.from_ndarray(np.full((48, 64, 3), 200, np.uint8), format="rgb24")
        for packet in [*picture.encode(frame.reformat(format="yuvj420p")), *picture.encode()]:
            container.mux(packet)
        samples = tone(1.0, 16000)
        for start in range(0, samples.shape[1], 1024):
            audio = av.AudioFrame.from_ndarray(np.ascontiguousarray(samples[:, start : start + 1024]), "fltp", "mono")
            audio.sample_rate, audio.pts = 16000, start
            for packet in sound.encode(audio):
                container.mux(packet)
        for packet in sound.encode():
            container.mux(packet)
    clip = decode_clip(str(path), num_video_frames=0)
    assert clip.waveform.shape[0] == pytest.approx(16000, abs=1100)  # 1 s (and the AAC encoder's padding)
    assert media.open_video_decoder(str(path)).metadata.num_frames == 1


def _wav_bytes(seconds: float, extra_chunk: bytes = b"", size: int | None = None) -> bytes:
    pcm = np.zeros(int(16000 * seconds), dtype="<i2").tobytes()
    fmt = struct.pack("<4sIHHIIHH", b"fmt ", 16, 1, 1, 16000, 32000, 2, 16)
    data = struct.pack("<4sI", b"data", len(pcm) if size is None else size) + pcm
    body = b"WAVE" + fmt + extra_chunk + data
    return struct.pack("<4sI", b"RIFF", len(body)) + body


def test_wav_header_against_the_file_length():
    assert truncation.wav_missing_seconds(_wav_bytes(1.0)) == 0.0
    assert truncation.wav_missing_seconds(_wav_bytes(1.0)[:-16000]) == pytest.approx(0.5)  # 32000 bytes per second
    odd_chunk = struct.pack("<4sI", b"LIST", 3) + b"abc\x00"  # an odd-sized chunk is padded to even
    assert truncation.wav_missing_seconds(_wav_bytes(1.0, odd_chunk)[:-8000]) == pytest.approx(0.25)
    assert truncation.wav_missing_seconds(_wav_bytes(1.0, size=0xFFFFFFFF)) is None  # streamed: size left open
    assert truncation.wav_missing_seconds(_wav_bytes(1.0, size=0)) is None
    assert truncation.wav_missing_seconds(_wav_bytes(1.0)[:30]) is None  # cut inside the format chunk
    assert truncation.wav_missing_seconds(b"not a wav file at all") is None


def test_only_a_riff_wave_header_is_read_for_missing_audio():
    """The cut check trusts a WAV's data chunk only: the same cut bytes under another RIFF form (an AVI) or another
    tag (RF64, whose real sizes live in its ds64 chunk) are not judged by it."""
    cut = _wav_bytes(1.0)[:-16000]  # 0.5 s missing as a WAV
    assert truncation.wav_missing_seconds(cut) == pytest.approx(0.5)
    assert truncation.wav_missing_seconds(cut[:8] + b"AVI " + cut[12:]) is None
    assert truncation.wav_missing_seconds(b"RF64" + cut[4:]) is None


def test_a_data_chunk_before_any_format_chunk_tells_nothing():
    """Without a format chunk ahead of the data, the byte rate is unknown: no claim about missing audio."""
    wav = _wav_bytes(1.0)[:-16000]
    fmt, data = wav[12:36], wav[36:]  # the 24-byte format chunk, then the (cut) data chunk
    assert truncation.wav_missing_seconds(wav[:12] + data + fmt) is None


def test_audio_decoding_to_nan_names_the_file(tmp_path):
    """A float WAV holding a NaN sample (written here by hand) is refused, naming the file."""
    samples = np.sin(np.arange(16000) / 5).astype("<f4")
    samples[8000] = np.nan
    fmt = struct.pack("<4sIHHIIHH", b"fmt ", 16, 3, 1, 16000, 64000, 4, 32)  # IEEE float, mono, 16 kHz
    body = b"WAVE" + fmt + struct.pack("<4sI", b"data", samples.nbytes) + samples.tobytes()
    path = tmp_path / "nan.wav"
    path.write_bytes(struct.pack("<4sI", b"RIFF", len(body)) + body)
    with pytest.raises(MediaError) as info:
        decode_clip(str(path), 0)
    assert info.value.source == str(path)
    assert info.value.problem == "the audio track decodes to NaN or infinite samples"


def test_a_cut_wav_file_is_reported_as_truncated(tmp_path, ramp_wav):
    cut = tmp_path / "cut.wav"
    cut.write_bytes(ramp_wav.read_bytes()[:-16000])  # 0.5 s of the 2 s missing
    with pytest.raises(MediaError, match="its WAV header declares 0.50 s more audio") as info:
        decode_clip(str(cut), 0)
    assert info.value.source == str(cut)


def test_a_cut_mkv_is_reported_as_truncated(make_clip):
    """Matroska has no trailing index: a cut file opens, but its header still declares 2 s."""
    data = make_clip("full_mkv", sample_rate=16000, container="mkv").read_bytes()
    with pytest.raises(
        MediaError, match=r"truncated file: its streams end at 1\.\d\d s but its container declares 2\.0"
    ):
        decode_clip(data[: int(len(data) * 0.6)], 4, audio_sample_rate=None)
    with pytest.raises(MediaError, match=r"truncated file: its (streams end|audio ends) at 1\.\d\d s"):
        decode_clip(data[: int(len(data) * 0.6)], 0)  # its audio alone
    clip = decode_clip(data, 4, audio_sample_rate=None)  # the whole file is fine
    assert decode_indices(clip.frames) == [10, 20, 30, 40]


def test_container_header_read_again_where_the_decoder_cannot_tell(synthetic_clip_path, monkeypatch):
    from torchcodec import _core
    from torchcodec.decoders import VideoDecoder

    decoder = VideoDecoder(str(synthetic_clip_path))
    direct = truncation.container_metadata(decoder)
    assert direct.duration_seconds_from_header == pytest.approx(2.0, abs=0.05)

    def unavailable(*args, **kwargs):
        raise AttributeError("gone")

    monkeypatch.setattr(_core, "get_container_metadata", unavailable)
    assert truncation.container_metadata(decoder) is None  # nothing to read again
    data = bytearray(synthetic_clip_path.read_bytes())
    for source in (str(synthetic_clip_path), data):
        again = truncation.container_metadata(decoder, source)
        assert again.duration_seconds_from_header == pytest.approx(2.0, abs=0.05)


def test_a_datasets_video_decoder_finds_its_audio_track(synthetic_clip_path):
    from torchcodec.decoders import VideoDecoder

    decoder = VideoDecoder(str(synthetic_clip_path))
    decoder._hf_encoded = {"path": str(synthetic_clip_path), "bytes": None}  # as datasets' Video leaves it
    from_decoder = decode_clip(decoder, 4)
    from_path = decode_clip(str(synthetic_clip_path), 4)
    torch.testing.assert_close(from_decoder.waveform, from_path.waveform)
    assert decode_indices(from_decoder.frames) == decode_indices(from_path.frames) == [10, 20, 30, 40]


def test_an_audio_track_reaches_a_time_only_when_its_samples_do(tmp_path, ramp_wav):
    """audio_reaches decodes a track's last moments: a 1.8 s track has samples in [1.6 s, 2 s) but does not reach
    2 s (within 0.1 s); the 2 s ramp does."""
    short = tmp_path / "short.wav"
    write_wav(short, tone(1.8, 16000, channels=1), 16000)
    assert truncation.audio_reaches(str(short), 2.0, 0.1) is False
    assert truncation.audio_reaches(str(short), 1.8, 0.1) is True
    assert truncation.audio_reaches(str(ramp_wav), 2.0, 0.1) is True


def test_a_video_ending_early_is_fine_when_the_audio_reaches_the_declared_end(ramp_wav, monkeypatch):
    """The video's packets stop at 1 s of the 2 s the container declares: truncated, unless an audio track reaches
    2 s. A scanned audio stream tells its own end; one the scan does not know is decoded near 2 s (the 2 s ramp
    file here reaches it)."""
    decoder = SimpleNamespace(metadata=SimpleNamespace(end_stream_seconds_from_content=1.0))

    def container(*streams):
        info = SimpleNamespace(duration_seconds_from_header=2.0, streams=list(streams))
        monkeypatch.setattr(truncation, "container_metadata", lambda decoder, data=None: info)

    audio = lambda duration: SimpleNamespace(media_type="audio", duration_seconds=duration)  # noqa: E731
    container(SimpleNamespace(media_type="video", duration_seconds=1.0))
    expected = "truncated file: its streams end at 1.00 s but its container declares 2.00 s"
    assert truncation.video_truncation(decoder, str(ramp_wav)) == expected  # no audio track
    container(audio(1.0))
    assert truncation.video_truncation(decoder, str(ramp_wav)) == expected  # the audio track ends early too
    container(audio(1.95))
    assert truncation.video_truncation(decoder, str(ramp_wav)) is None  # within 0.1 s of the end
    container(audio(None))  # not scanned: decoded near the declared end
    assert truncation.video_truncation(decoder, str(ramp_wav)) is None
    assert truncation.video_truncation(decoder, None) == expected  # nothing to decode
