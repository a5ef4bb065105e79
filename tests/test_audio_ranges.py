"""Many ranges of one file's audio (models/multimae_der/audio_ranges.py): each range's samples equal, to the bit,
those of a torchcodec AudioDecoder opened for that range alone (what a clip reads), while the file is opened once."""

from __future__ import annotations

import random

import pytest
import torch

from mmder_hf.models.multimae_der.audio_ranges import AudioRanges
from mmder_hf.models.multimae_der.media import read_clip_audio


def _fresh(path, start: float, end: float):
    from torchcodec.decoders import AudioDecoder

    samples = AudioDecoder(path).get_samples_played_in_range(start, end)
    return samples.data, float(samples.pts_seconds), int(samples.sample_rate)


def _ranges(duration: float, seed: int = 0) -> list[tuple[float, float]]:
    """Timeline windows, then random ranges in random order (backwards seeks), tiny ones, and both ends."""
    rng = random.Random(seed)
    spans = [(float(s), min(s + 3.0, duration)) for s in range(int(duration) - 2)]
    for _ in range(25):
        start = rng.uniform(0.0, duration - 0.1)
        spans.append((start, min(duration, start + rng.uniform(0.01, 3.0))))
    return spans + [(0.0, 0.02), (0.004, 1.0), (duration - 0.4, duration), (duration - 0.4, duration + 1.0)]


@pytest.mark.parametrize("rate", [44100, 48000, 16000])
def test_each_range_is_what_a_fresh_decoder_reads(make_clip, rate, monkeypatch):
    path = str(make_clip(f"audio_ranges_{rate}", num_frames=60, fps=10.0, sample_rate=rate))
    spans = _ranges(6.0, seed=rate)
    expected = [_fresh(path, start, end) for start, end in spans]

    import torchcodec.decoders as decoders

    opened = []

    class Demuxer(decoders.Demuxer):
        def __init__(self, *args, **kwargs):
            super().__init__(*args, **kwargs)
            opened.append(kwargs.get("streams"))

    def refuse(*args, **kwargs):
        raise AssertionError("an AudioDecoder was opened: the fast route fell back")

    monkeypatch.setattr(decoders, "Demuxer", Demuxer)
    monkeypatch.setattr(decoders, "AudioDecoder", refuse)
    ranges = AudioRanges(path)
    for (start, end), (data, first, sample_rate) in zip(spans, expected):
        got, got_first, got_rate = ranges.read(start, end)
        assert (got_first, got_rate) == (first, sample_rate), (start, end)
        assert got.dtype == data.dtype and got.shape == data.shape, (start, end)
        assert torch.equal(got, data), (start, end)
    assert (ranges.fast_reads, ranges.fallback_reads) == (len(spans), 0)
    # One demuxer for the file, plus one each time a range starts within the pre-roll of the stream's start (as a
    # fresh decoder does, it then reads from the first packet on).
    from_start = sum(1 for start, _ in spans if start - 4 * 1024 / rate <= 0.5 / rate)
    assert opened == ["audio"] * (1 + from_start)


def test_other_files_are_read_by_fresh_decoders_with_the_same_samples(make_clip):
    """Matroska times are in milliseconds, not samples: the fast route does not reproduce them, so it is not taken."""
    path = str(make_clip("audio_ranges_mkv", num_frames=60, fps=10.0, container="mkv"))
    ranges = AudioRanges(path)
    for start, end in _ranges(6.0, seed=1)[:12]:
        got, first, rate = ranges.read(start, end)
        data, expected_first, expected_rate = _fresh(path, start, end)
        assert torch.equal(got, data) and (first, rate) == (expected_first, expected_rate)
    assert (ranges.fast_reads, ranges.fallback_reads) == (0, 12)


def test_a_clips_waveform_is_the_same_either_way(make_clip):
    """read_clip_audio with the shared reader gives the clip's mono 16 kHz waveform to the bit, placed on the range
    (silence after the end of the track)."""
    path = str(make_clip("audio_ranges_short_track", num_frames=60, fps=10.0, audio_duration=4.5))
    ranges = AudioRanges(path)
    for start, end in [(0.0, 3.0), (1.0, 4.0), (2.0, 5.0), (3.0, 6.0), (0.3, 0.35)]:
        expected = read_clip_audio(path, start, end, 16000)
        got = read_clip_audio(path, start, end, 16000, ranges=ranges)
        assert torch.equal(got, expected) and got.shape[-1] == round((end - start) * 16000)
    assert ranges.fast_reads == 5
