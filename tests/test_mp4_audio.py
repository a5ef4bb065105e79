"""A video file's audio opened alone (models/multimae_der/mp4_audio.py): the view lists only the audio track, reads
the file's own bytes but for the renamed video tracks, gives the audio decoder exactly the samples and metadata of
the file itself, and is refused (``None``) for everything it does not recognise."""

from __future__ import annotations

from fractions import Fraction

import av
import numpy as np
import pytest
import torch
from av_writing import flush, mux_audio
from torchcodec.decoders import AudioDecoder, get_container_metadata

from mmder_hf.models.multimae_der.audio_ranges import AudioRanges
from mmder_hf.models.multimae_der.media import decode_clip, open_audio_decoder
from mmder_hf.models.multimae_der.mp4_audio import audio_only_view
from mmder_hf.models.multimae_der.truncation import container_metadata


def _write(path, seconds: float = 2.0, movflags: str = "", video: bool = True, audio: bool = True) -> str:
    """A 64x48 H.264 + noisy stereo AAC file (noise makes the encoder use its noise tools, which keep decoder state)"""
    rng = np.random.default_rng(0)
    options = {"movflags": movflags} if movflags else {}
    with av.open(str(path), mode="w", options=options) as container:
        streams = []
        if video:
            vstream = container.add_stream("libx264", rate=Fraction(25))
            vstream.width, vstream.height, vstream.pix_fmt = 64, 48, "yuv420p"
            streams.append(vstream)
        if audio:
            astream = container.add_stream("aac", rate=48000, layout="stereo")
            streams.append(astream)
        for index in range(int(seconds * 25) if video else 0):
            image = rng.integers(0, 255, (48, 64, 3), dtype=np.uint8)
            for packet in vstream.encode(av.VideoFrame.from_ndarray(image, format="rgb24")):
                container.mux(packet)
        if audio:
            total = int(seconds * 48000)
            times = np.arange(total) / 48000
            wave = np.stack([0.3 * np.sin(2 * np.pi * 220 * times), 0.3 * np.sin(2 * np.pi * 330 * times)])
            mux_audio(container, astream, wave + 0.2 * rng.standard_normal(wave.shape), 48000)
        flush(container, streams)
    return str(path)


@pytest.fixture(scope="module")
def media(tmp_path_factory):
    folder = tmp_path_factory.mktemp("mp4_audio")
    return {
        "moov_last": _write(folder / "moov_last.mp4"),
        "faststart": _write(folder / "faststart.mp4", movflags="faststart"),
        "mov": _write(folder / "clip.mov"),
        "fragmented": _write(folder / "fragmented.mp4", movflags="frag_keyframe+empty_moov"),
        "audio_only": _write(folder / "audio_only.m4a", video=False),
        "video_only": _write(folder / "video_only.mp4", audio=False),
        "mkv": _write(folder / "clip.mkv"),
    }


def _streams(source) -> list[str]:
    return [stream.media_type for stream in get_container_metadata(source).streams]


@pytest.mark.parametrize("name", ["moov_last", "faststart", "mov"])
def test_the_view_lists_only_the_audio_and_changes_nothing_else(media, name):
    path = media[name]
    assert _streams(path) == ["video", "audio"]
    original = open(path, "rb").read()
    for source in (path, original):
        view = audio_only_view(source)
        assert view is not None
        seen = view.read()
        view.close()
        # the same bytes but for one box type, "trak" read as "free": that of the video track
        changed = [i for i in range(len(original)) if seen[i] != original[i]]
        assert len(seen) == len(original) and changed and set(changed) <= set(range(changed[0], changed[0] + 4))
        assert original[changed[0] : changed[0] + 4] == b"trak" and seen[changed[0] : changed[0] + 4] == b"free"
        assert original.index(b"vmhd") > changed[0]  # the renamed track is the one with the video media header
    view = audio_only_view(path)
    assert _streams(view) == ["audio"]
    # reads of any size and at any position see the rename too (FFmpeg reads in buffers)
    offset = changed[0]
    for start, size in [(offset - 3, 5), (offset + 2, 1), (offset - 100, 300), (0, len(original))]:
        view.seek(start)
        assert view.read(size) == seen[start : start + size]
    view.close()


@pytest.mark.parametrize("name", ["moov_last", "faststart", "mov"])
def test_the_audio_decoder_gives_the_files_own_samples(media, name):
    path = media[name]
    plain, viewed = AudioDecoder(path), open_audio_decoder(path)
    # opened through the view: its container holds the audio alone (the video was not probed)
    assert [stream.media_type for stream in container_metadata(viewed).streams] == ["audio"]
    assert [stream.media_type for stream in container_metadata(plain).streams] == ["video", "audio"]
    for field in ("begin_stream_seconds", "duration_seconds", "sample_rate", "num_channels", "codec"):
        assert getattr(viewed.metadata, field) == getattr(plain.metadata, field), field
    ranges = [(0.0, 2.0), (0.013, 0.4), (0.5, 1.7), (1.9, 2.5), (0.02, 0.021)]
    for start, end in ranges:
        expected = AudioDecoder(path).get_samples_played_in_range(start, end)
        got = open_audio_decoder(path).get_samples_played_in_range(start, end)
        assert float(got.pts_seconds) == float(expected.pts_seconds), (start, end)
        assert torch.equal(got.data, expected.data), (start, end)
    assert torch.equal(viewed.get_all_samples().data, plain.get_all_samples().data)
    # a timeline's ranges (AudioRanges) and a clip's waveform too
    reader = AudioRanges(path)
    for start, end in ranges:
        got, first, _ = reader.read(start, end)
        expected = AudioDecoder(path).get_samples_played_in_range(start, end)
        assert torch.equal(got, expected.data) and first == float(expected.pts_seconds), (start, end)


def test_a_clip_reads_the_same_waveform_either_way(media, monkeypatch):
    path = media["faststart"]
    viewed = decode_clip(path, 4, 16000, clip_start=0.3, clip_end=1.6)
    import mmder_hf.models.multimae_der.mp4_audio as mp4_audio

    monkeypatch.setattr(mp4_audio, "audio_only_view", lambda data: None)  # the file opened as it is
    plain = decode_clip(path, 4, 16000, clip_start=0.3, clip_end=1.6)
    assert torch.equal(viewed.waveform, plain.waveform) and torch.equal(viewed.frames, plain.frames)


@pytest.mark.parametrize("name", ["fragmented", "audio_only", "video_only", "mkv"])
def test_anything_else_is_opened_as_it_is(media, name):
    assert audio_only_view(media[name]) is None
    assert audio_only_view(open(media[name], "rb").read()) is None


def test_malformed_or_foreign_data_is_refused(media, tmp_path):
    original = open(media["faststart"], "rb").read()
    moov = original.index(b"moov") - 4
    cut = bytearray(original)
    cut[moov : moov + 4] = (len(original) * 2).to_bytes(4, "big")  # a moov box larger than the file
    assert audio_only_view(bytes(cut)) is None
    assert audio_only_view(b"RIFF\x00\x00\x00\x00WAVEfmt ") is None
    assert audio_only_view(b"") is None
    assert audio_only_view(str(tmp_path / "missing.mp4")) is None
    assert audio_only_view(12) is None


def _rewritten(original: bytes, tmp_path, name: str, edit) -> str:
    data = bytearray(original)
    edit(data)
    path = tmp_path / name
    path.write_bytes(bytes(data))
    return str(path)


def test_64_bit_and_open_ended_box_sizes(media, tmp_path):
    """A box may give its size in 64 bits (size field 1), as an mdat over 4 GiB does, and the last box may run to the
    end of the file (size field 0): both are read, and the samples stay the file's own."""
    original = open(media["moov_last"], "rb").read()  # ftyp, free (8 bytes), mdat, moov
    mdat = original.index(b"mdat") - 4
    assert original[mdat - 8 : mdat] == b"\x00\x00\x00\x08free"
    mdat_size = int.from_bytes(original[mdat : mdat + 4], "big")

    def large_mdat(data):  # the 8-byte free box and the mdat header become one 16-byte header: offsets unchanged
        data[mdat - 8 : mdat + 8] = b"\x00\x00\x00\x01mdat" + (mdat_size + 8).to_bytes(8, "big")

    def open_ended_moov(data):
        data[moov : moov + 4] = b"\x00\x00\x00\x00"

    moov = original.index(b"moov") - 4
    moov_size = int.from_bytes(original[moov : moov + 4], "big")
    # the last box, so that growing its header by 8 bytes moves no sample (they are in mdat, before it)
    large_moov = b"\x00\x00\x00\x01moov" + (moov_size + 8).to_bytes(8, "big") + original[moov + 8 :]
    edits = (("large_mdat.mp4", large_mdat), ("open_ended_moov.mp4", open_ended_moov), ("large_moov.mp4", None))
    for name, edit in edits:
        if edit is None:
            path = str(tmp_path / name)
            (tmp_path / name).write_bytes(original[:moov] + large_moov)
        else:
            path = _rewritten(original, tmp_path, name, edit)
        assert _streams(path) == ["video", "audio"], name  # FFmpeg reads the rewritten file as the original
        view = audio_only_view(path)
        assert view is not None and _streams(view) == ["audio"], name
        expected = AudioDecoder(path).get_samples_played_in_range(0.3, 1.1).data
        assert torch.equal(open_audio_decoder(path).get_samples_played_in_range(0.3, 1.1).data, expected), name


def test_a_moov_past_the_size_cap_is_left_alone(media, monkeypatch):
    import mmder_hf.models.multimae_der.mp4_audio as mp4_audio

    original = open(media["faststart"], "rb").read()
    moov = original.index(b"moov") - 4
    size = int.from_bytes(original[moov : moov + 4], "big")
    monkeypatch.setattr(mp4_audio, "MAX_MOOV_BYTES", size)
    assert audio_only_view(original) is not None
    monkeypatch.setattr(mp4_audio, "MAX_MOOV_BYTES", size - 1)
    assert audio_only_view(original) is None
