"""MultiMAEDERProcessor on real (self-encoded) media: sampling, inputs of every kind, bad inputs, save/load paths."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap

import numpy as np
import pytest
import torch
from inference_helpers import run_without_mmder_hf

from mmder_hf.models.multimae_der import MultiMAEDERProcessor, register
from mmder_hf.models.multimae_der.configuration_multimae_der import MultiMAEDERConfig
from mmder_hf.models.multimae_der.media import MediaError, decode_clip


def tiny(**kwargs) -> MultiMAEDERProcessor:
    settings = {"num_frames": 4, "image_size": 32}
    settings.update(kwargs)
    return MultiMAEDERProcessor(**settings)


def to_uint8_range(values: torch.Tensor, processor: MultiMAEDERProcessor) -> np.ndarray:
    """Undo rescale + normalise: ``(frames, 3, H, W)`` back to 0..255."""
    mean = torch.tensor(processor.image_mean).view(3, 1, 1)
    std = torch.tensor(processor.image_std).view(3, 1, 1)
    return ((values * std + mean) * 255).numpy()


def sampled_indices(output, processor, frame_index_decoder, item: int = 0) -> list[int]:
    return frame_index_decoder(to_uint8_range(output["pixel_values"][item], processor))


def decode_all(path):
    """Every frame ``(T, H, W, 3)`` uint8 and the audio of the video's time span at its native rate."""
    from torchcodec.decoders import AudioDecoder, VideoDecoder

    video = VideoDecoder(str(path))
    frames = video.get_frames_in_range(0, len(video)).data.permute(0, 2, 3, 1).numpy()
    samples = AudioDecoder(str(path)).get_samples_played_in_range(0, video.metadata.end_stream_seconds)
    return frames, samples.data.numpy(), samples.sample_rate


# ---------------------------------------------------------------------------------------------------------------
# Settings, layouts and routes checked against hand-computed values


def test_normalisation_and_decoded_frame_sampling_by_hand():
    """Frame t is a flat colour (t, 2t, 3t) + 40: aligned sampling of 4 of 10 frames takes floor((k + 1) 10 / 5),
    i.e. frames 2, 4, 6, 8; each value v becomes (v / 255 - mean_c) / std_c."""
    t = np.arange(10)
    colours = np.stack([t, 2 * t, 3 * t], axis=1) + 40
    frames = np.broadcast_to(colours[:, None, None, :], (10, 8, 8, 3)).astype(np.uint8)
    mean, std = (0.1, 0.2, 0.3), (0.5, 0.25, 0.125)
    processor = MultiMAEDERProcessor(
        fusion_strategy="video", num_frames=4, image_size=8, image_mean=mean, image_std=std
    )
    picked = colours[[2, 4, 6, 8]].astype(np.float64)  # (4, 3)
    cases = {
        (None, None): (picked / 255 - mean) / std,
        (False, None): (picked - mean) / std,
        (None, False): picked / 255,
    }
    for (rescale, normalize), expected in cases.items():
        out = processor(videos=frames, do_rescale=rescale, do_normalize=normalize)["pixel_values"]
        assert out.shape == (1, 4, 3, 8, 8) and out.dtype == torch.float32
        want = torch.from_numpy(expected).float().view(1, 4, 3, 1, 1).expand(1, 4, 3, 8, 8)
        torch.testing.assert_close(out, want, rtol=1e-6, atol=1e-6)
    raw = processor(videos=frames, do_rescale=False, do_normalize=False)["pixel_values"]
    assert raw.dtype == torch.uint8 and raw[0, :, :, 0, 0].tolist() == colours[[2, 4, 6, 8]].tolist()


def test_frame_layouts_alpha_and_gray_give_the_rgb_inputs():
    rng = np.random.default_rng(0)
    rgb = rng.integers(0, 255, (6, 12, 10, 3)).astype(np.uint8)
    gray = rng.integers(0, 255, (6, 12, 10, 1)).astype(np.uint8)
    rgba = np.concatenate([rgb, rng.integers(0, 255, (6, 12, 10, 1)).astype(np.uint8)], axis=-1)
    processor = tiny(fusion_strategy="video", image_size=16)
    reference = processor(videos=rgb)["pixel_values"]
    for frames in (rgba, rgba.transpose(0, 3, 1, 2), rgb.transpose(0, 3, 1, 2)):  # alpha dropped, either layout
        assert torch.equal(processor(videos=frames)["pixel_values"], reference)
    gray_as_rgb = processor(videos=np.repeat(gray, 3, axis=-1))["pixel_values"]
    for frames in (gray, gray.transpose(0, 3, 1, 2)):
        assert torch.equal(processor(videos=frames)["pixel_values"], gray_as_rgb)


def test_thin_and_single_frames_are_resized_empty_ones_rejected():
    processor = tiny(fusion_strategy="video", image_size=8, image_mean=(0.0,) * 3, image_std=(1.0,) * 3)
    for shape in ((2, 5, 1, 3), (2, 3, 1, 5), (1, 6, 6, 3)):  # 1 px wide, 1 px high (channels first), 1 frame
        out = processor(videos=np.full(shape, 51, dtype=np.uint8))["pixel_values"]
        torch.testing.assert_close(out, torch.full((1, 4, 3, 8, 8), 0.2))  # 51 / 255, on every sampled frame
    for shape in ((0, 5, 5, 3), (2, 0, 5, 3), (2, 5, 0, 3)):
        with pytest.raises(ValueError, match="frames are empty"):
            processor(videos=np.zeros(shape, dtype=np.uint8))


def test_a_time_range_on_decoded_frames_is_refused_not_ignored():
    frames = np.zeros((5, 8, 8, 3), dtype=np.uint8)
    wave = np.zeros(8000, dtype=np.float32)
    for times in ({"clip_start": 0.5}, {"clip_end": 1.0}, {"clip_start": 0.0, "clip_end": 1.0}):
        with pytest.raises(ValueError, match="need a file, bytes or decoder input"):
            tiny(fusion_strategy="video")(videos=frames, **times)
        with pytest.raises(ValueError, match="need a file, bytes or decoder input"):
            tiny(fusion_strategy="audio")(audio=wave, sampling_rate=16000, **times)


def test_batches_as_5d_frame_and_3d_audio_arrays_are_split_per_clip():
    rng = np.random.default_rng(1)
    frames = rng.integers(0, 255, (2, 9, 16, 16, 3)).astype(np.uint8)
    audio = (0.3 * rng.standard_normal((2, 2, 8000))).astype(np.float32)
    processor = tiny(image_size=16)
    batch = processor(videos=frames, audio=audio, sampling_rate=16000)
    assert batch["pixel_values"].shape == batch["audio_values"].shape == (2, 2, 3, 16, 16)
    for i in range(2):
        alone = processor(videos=frames[i], audio=audio[i], sampling_rate=16000)
        for key in ("pixel_values", "audio_values"):
            assert torch.equal(batch[key][i : i + 1], alone[key]), (key, i)


def test_audio_baseline_reads_no_frames():
    wave = np.sin(2 * np.pi * 440 * np.arange(16000) / 16000).astype(np.float32)
    processor = tiny(fusion_strategy="audio")
    expected = processor(audio=wave, sampling_rate=16000)["audio_values"]
    no_frames = np.zeros((0, 8, 8, 3), dtype=np.uint8)  # e.g. an audio-only row of a dataset
    assert torch.equal(processor(videos=no_frames, audio=wave, sampling_rate=16000)["audio_values"], expected)


def test_face_detector_runs_only_with_face_crop(synthetic_clip_path, monkeypatch):
    from mmder_hf.models.multimae_der import video_processing_multimae_der

    monkeypatch.setattr(video_processing_multimae_der, "crop_faces", lambda *a, **k: pytest.fail("detector ran"))
    output = tiny()(videos=str(synthetic_clip_path))
    assert set(output.keys()) == {"pixel_values", "audio_values"}


def test_face_crop_returns_one_box_per_frame_even_for_a_single_frame(synthetic_clip_path):
    pytest.importorskip("cv2")
    processor = tiny(fusion_strategy="video", num_frames=1, face_crop=True)
    output = processor(videos=str(synthetic_clip_path))
    assert output["pixel_values"].shape == (1, 1, 3, 32, 32)
    assert output["face_boxes"].shape == (1, 1, 4) and torch.isnan(output["face_boxes"]).all()  # no face in it


def test_settings_are_validated_with_their_ranges():
    for kwargs in (
        {"face_margin": 0.0},
        {"face_margin": 2.0},
        {"face_detect_width": 32},
        {"face_score_threshold": 0.01},
    ):
        tiny(**kwargs)
    for kwargs, message in (
        ({"face_margin": -0.01}, "face_margin"),
        ({"face_margin": 2.01}, "face_margin"),
        ({"face_detect_width": 31}, "face_detect_width"),
        ({"face_score_threshold": 0.0}, "face_score_threshold"),
        ({"face_score_threshold": 1.0}, "face_score_threshold"),
        ({"face_crop": "yes"}, "face_crop must be true or false"),
        ({"image_mean": (0.5, 0.5)}, "image_mean and image_std"),
        ({"image_std": (0.2, 0.0, 0.2)}, "image_mean and image_std"),
        ({"num_frames": 5}, "even num_frames"),
    ):
        with pytest.raises(ValueError, match=message):
            tiny(**kwargs)


def test_every_setting_survives_save_and_load(tmp_path):
    changed = dict(
        fusion_strategy="ofos",
        num_frames=6,
        image_size=40,
        frame_sampling="original",
        original_frame_stride=5,
        do_rescale=False,
        rescale_factor=0.5,
        do_normalize=False,
        image_mean=(0.1, 0.2, 0.3),
        image_std=(0.4, 0.5, 0.6),
        audio_sample_rate=22050,
        audio_representation="logmel",
        do_peak_normalize=False,
        pre_emphasis=0.9,
        frame_length_ms=20.0,
        hop_length_ms=5.0,
        n_fft=1024,
        num_mel_filters=26,
        num_mfcc=12,
        cepstral_lifter=20.0,
        num_log_mel_bins=64,
        audio_colormap="gray",
        audio_image_origin="upper",
        audio_image_interpolation="bilinear",
        seek_mode="approximate",
        num_decoder_threads=2,
        face_margin=0.5,
        face_align=True,
        face_strict=True,
        face_detect_width=256,
        face_score_threshold=0.7,
    )
    processor = MultiMAEDERProcessor(**changed)
    processor.save_pretrained(tmp_path)
    loaded = MultiMAEDERProcessor.from_pretrained(tmp_path)
    canonical = {"fusion_strategy": "OFOS", "audio_representation": "log-mel"}
    for name, value in changed.items():
        want = canonical.get(name, list(value) if isinstance(value, tuple) else value)
        assert getattr(loaded, name) == getattr(processor, name) == want, name
    settings = loaded.audio_settings
    assert (settings.representation, settings.do_peak_normalize, settings.n_fft, settings.colormap) == (
        "log-mel",
        False,
        1024,
        "gray",
    )


def write_16k_wav(path, seconds: float, seed: int = 0) -> np.ndarray:
    """A mono 16 kHz noise WAV; returns its samples as the decoder reads them (float32)."""
    from conftest import write_wav
    from torchcodec.decoders import AudioDecoder

    noise = np.random.default_rng(seed).uniform(-0.5, 0.5, int(seconds * 16000)).astype(np.float32)
    write_wav(path, noise, 16000)
    return AudioDecoder(str(path)).get_all_samples().data[0].numpy()


def test_a_separate_audio_file_is_read_on_its_own_timeline(synthetic_clip_path, tmp_path):
    """``audio_start``: the utterance WAV begins 0.5 s into the video; ``[clip_start, clip_end)`` of the video is
    ``[clip_start - 0.5, clip_end - 0.5)`` of the WAV, with silence where the WAV stops short."""
    samples = write_16k_wav(tmp_path / "utterance.wav", 1.0)  # 16000 samples: the video's 0.5 s .. 1.5 s
    wav = str(tmp_path / "utterance.wav")
    processor = tiny(fusion_strategy="audio")

    def from_samples(wave):
        return processor(audio=wave, sampling_rate=16000)["audio_values"]

    def from_file(**times):
        return processor(videos=str(synthetic_clip_path), audio=wav, audio_start=0.5, **times)["audio_values"]

    assert torch.equal(from_file(clip_start=0.75, clip_end=1.25), from_samples(samples[4000:12000]))
    padded = np.concatenate([samples[8000:], np.zeros(8000, dtype=np.float32)])  # 1.0 .. 2.0: half past the WAV
    assert torch.equal(from_file(clip_start=1.0, clip_end=2.0), from_samples(padded))
    assert torch.equal(from_file(clip_start=1.0), from_samples(samples[8000:]))  # to the WAV's end
    # with the video's frames too (FSLF): the same audio pictures
    fslf = tiny()(videos=str(synthetic_clip_path), audio=wav, audio_start=0.5, clip_start=1.0, clip_end=2.0)
    frames = np.zeros((4, 8, 8, 3), np.uint8)
    assert torch.equal(fslf["audio_values"], tiny()(videos=frames, audio=padded, sampling_rate=16000)["audio_values"])


# ---------------------------------------------------------------------------------------------------------------
# Defaults and output layout


def test_defaults_match_default_config():
    processor, config = MultiMAEDERProcessor(), MultiMAEDERConfig()
    assert (processor.fusion_strategy, processor.num_frames, processor.image_size) == (
        config.fusion_strategy,
        config.num_frames,
        config.image_size,
    )
    assert processor.num_video_frames == config.num_video_frames
    assert processor.num_audio_frames == config.num_audio_frames
    assert processor.image_mean == [0.485, 0.456, 0.406] and processor.image_std == [0.225] * 3
    assert processor.frame_sampling == "aligned" and processor.audio_representation == "mfcc"
    config = MultiMAEDERConfig(fusion_strategy="cfas", num_frames=4, image_size=32)
    small = MultiMAEDERProcessor.from_model_config(config)
    assert (small.fusion_strategy, small.num_video_frames, small.num_audio_frames) == ("CFAS", 4, 4)
    assert small.image_size == 32


@pytest.mark.parametrize(
    "strategy,video_frames,audio_frames",
    [
        ("FSLF", 2, 2),
        ("OFOS", 2, 2),
        ("CFAS", 4, 4),
        ("SFAS", 4, 4),
        ("video", 4, 0),
        ("prefused", 4, 0),
        ("audio", 0, 4),
    ],
)
def test_output_keys_and_shapes_per_strategy(synthetic_clip_path, strategy, video_frames, audio_frames):
    output = tiny(fusion_strategy=strategy)(videos=str(synthetic_clip_path), return_tensors="pt")
    expected_keys = {"pixel_values"} if video_frames else set()
    assert set(output.keys()) == expected_keys | ({"audio_values"} if audio_frames else set())
    for key, frames in (("pixel_values", video_frames), ("audio_values", audio_frames)):
        if frames:
            assert output[key].shape == (1, frames, 3, 32, 32) and output[key].dtype == torch.float32
            assert torch.isfinite(output[key]).all()


def test_default_processor_on_720p_clip_with_audio(make_clip):
    path = make_clip("hd_clip", num_frames=12, height=720, width=1280, fps=30, sample_rate=48000)
    output = MultiMAEDERProcessor()(videos=str(path))
    assert output["pixel_values"].shape == output["audio_values"].shape == (1, 8, 3, 224, 224)


def test_numpy_return_type(synthetic_clip_path):
    output = tiny()(videos=str(synthetic_clip_path), return_tensors="np")
    assert isinstance(output["pixel_values"], np.ndarray) and output["audio_values"].shape == (1, 2, 3, 32, 32)


# ---------------------------------------------------------------------------------------------------------------
# Frame sampling


def test_aligned_sampling_picks_window_centres(synthetic_clip_path, frame_index_decoder):
    processor = tiny(fusion_strategy="video")  # 4 frames of a 50-frame clip: (k + 1) / 5 of the clip
    output = processor(videos=str(synthetic_clip_path))
    assert sampled_indices(output, processor, frame_index_decoder) == [10, 20, 30, 40]
    fslf = tiny()  # 2 video frames at 1/3 and 2/3: the centres of the 2 audio windows
    assert sampled_indices(fslf(videos=str(synthetic_clip_path)), fslf, frame_index_decoder) == [16, 33]


@pytest.mark.parametrize("stride,expected", [(None, [0, 12, 24, 36]), (5, [0, 5, 10, 15]), (20, [0, 20, 40, 49])])
def test_original_sampling_strides_from_frame_zero(synthetic_clip_path, frame_index_decoder, stride, expected):
    processor = tiny(fusion_strategy="video", frame_sampling="original", original_frame_stride=stride)
    assert sampled_indices(processor(videos=str(synthetic_clip_path)), processor, frame_index_decoder) == expected


@pytest.mark.parametrize("height,width,fps", [(72, 128, 30.0), (36, 36, 12.5), (48, 64, 30000 / 1001)])
def test_aligned_sampling_across_sizes_and_frame_rates(make_clip, frame_index_decoder, height, width, fps):
    path = make_clip(f"clip_{height}x{width}_{fps:.3f}", num_frames=37, height=height, width=width, fps=fps)
    processor = tiny(fusion_strategy="CFAS")
    output = processor(videos=str(path))
    assert sampled_indices(output, processor, frame_index_decoder) == [(k + 1) * 37 // 5 for k in range(4)]


def test_variable_frame_rate_is_sampled_by_time(vfr_clip_path, frame_index_decoder):
    from torchcodec.decoders import VideoDecoder

    path, starts = vfr_clip_path
    end = VideoDecoder(str(path)).metadata.end_stream_seconds
    processor = tiny(fusion_strategy="video")
    indices = sampled_indices(processor(videos=str(path)), processor, frame_index_decoder)
    expected = [int(np.searchsorted(starts, (k + 1) / 5 * end + 1e-6, side="right")) - 1 for k in range(4)]
    assert indices == expected == [6, 12, 18, 32]  # index-uniform sampling would give 10, 20, 30, 40


def test_short_clip_repeats_frames(make_clip, frame_index_decoder):
    path = make_clip("three_frames", num_frames=3, fps=25)
    processor = tiny(fusion_strategy="CFAS")
    output = processor(videos=str(path))
    assert sampled_indices(output, processor, frame_index_decoder) == [0, 1, 1, 2]
    assert torch.isfinite(output["audio_values"]).all()
    original = tiny(num_frames=16, fusion_strategy="video", frame_sampling="original")
    assert sampled_indices(original(videos=str(path)), original, frame_index_decoder) == [0, 2] + [2] * 14


def test_clip_range_decodes_only_that_segment(synthetic_clip_path, frame_index_decoder):
    processor = tiny(fusion_strategy="video")
    output = processor(videos=str(synthetic_clip_path), clip_start=0.5, clip_end=1.5)
    assert sampled_indices(output, processor, frame_index_decoder) == [17, 22, 27, 32]
    clip = decode_clip(str(synthetic_clip_path), 2, 16000, clip_start=0.5, clip_end=1.5)
    assert (clip.start, clip.end) == (0.5, 1.5) and abs(clip.waveform.shape[0] - 16000) <= 1
    whole = tiny()(videos=str(synthetic_clip_path), clip_start=0, clip_end=99)  # clamped to the clip
    torch.testing.assert_close(whole["pixel_values"], tiny()(videos=str(synthetic_clip_path))["pixel_values"])


# ---------------------------------------------------------------------------------------------------------------
# Audio: rates, channels, downmix


@pytest.mark.parametrize("sample_rate,channels", [(48000, 2), (44100, 1), (22050, 2), (8000, 1)])
def test_audio_is_downmixed_and_resampled(make_clip, sample_rate, channels):
    name = f"audio_{sample_rate}_{channels}"
    path = make_clip(name, num_frames=25, fps=25, sample_rate=sample_rate, channels=channels)
    clip = decode_clip(str(path), 1, 16000)
    wave = clip.waveform
    assert wave.ndim == 1 and abs(wave.shape[0] - 16000) <= 1  # the video's 1 s span at 16 kHz
    spectrum = torch.fft.rfft(wave[2000:14000]).abs()
    hz = lambda f: int(round(f * 12000 / 16000))  # noqa: E731
    assert abs(spectrum.argmax().item() - hz(440 if channels == 1 else 880)) <= 1 or channels == 2
    # the tones have amplitude 0.5; the mono mix is their mean, so each contributes 0.5 / channels
    amplitude = lambda f: 2 * spectrum[hz(f) - 2 : hz(f) + 3].max().item() / 12000  # noqa: E731
    assert amplitude(440) == pytest.approx(0.5 / channels, rel=0.1)
    if channels == 2:
        assert amplitude(880) == pytest.approx(0.25, rel=0.1)


def test_decoded_input_matches_file_input(synthetic_clip_path):
    processor = tiny(fusion_strategy="CFAS")
    from_file = processor(videos=str(synthetic_clip_path))
    frames, wave, rate = decode_all(synthetic_clip_path)
    from_numpy = processor(videos=frames, audio=wave, sampling_rate=rate)
    channels_first = torch.from_numpy(frames).permute(0, 3, 1, 2)
    from_torch = processor(videos=channels_first, audio=torch.from_numpy(wave), sampling_rate=rate)
    from_frame_list = processor(videos=list(frames), audio=wave, sampling_rate=rate)
    file_with_waveform = processor(videos=str(synthetic_clip_path), audio=wave, sampling_rate=rate)
    for other in (from_numpy, from_torch, from_frame_list, file_with_waveform):
        torch.testing.assert_close(other["pixel_values"], from_file["pixel_values"], atol=0, rtol=0)
        torch.testing.assert_close(other["audio_values"], from_file["audio_values"], atol=0, rtol=0)


def test_bytes_decoders_and_batches(synthetic_clip_path, make_clip):
    from torchcodec.decoders import AudioDecoder, VideoDecoder

    processor = tiny()
    path = str(synthetic_clip_path)
    reference = processor(videos=path)
    data = synthetic_clip_path.read_bytes()
    for output in (
        processor(videos=data),
        processor(videos=VideoDecoder(path), audio=AudioDecoder(path)),
        processor(videos=VideoDecoder(data, seek_mode="approximate", dimension_order="NHWC"), audio=data),
    ):
        torch.testing.assert_close(output["pixel_values"], reference["pixel_values"], atol=0, rtol=0)
        torch.testing.assert_close(output["audio_values"], reference["audio_values"], atol=0, rtol=0)

    other = str(make_clip("other_clip", num_frames=30, fps=15, sample_rate=16000, channels=1))
    batch = processor(videos=[path, other])
    assert batch["pixel_values"].shape == (2, 2, 3, 32, 32)
    torch.testing.assert_close(batch["pixel_values"][:1], reference["pixel_values"], atol=0, rtol=0)
    torch.testing.assert_close(batch["audio_values"][1:], processor(videos=other)["audio_values"], atol=0, rtol=0)
    ranged = processor(videos=[path, other], clip_start=[None, 0.5], clip_end=[None, 1.5])
    alone = processor(videos=other, clip_start=0.5, clip_end=1.5)
    torch.testing.assert_close(ranged["audio_values"][1:], alone["audio_values"], atol=0, rtol=0)


def test_datasets_video_decoder_finds_its_audio_track(synthetic_clip_path):
    datasets = pytest.importorskip("datasets")
    dataset = datasets.Dataset.from_dict({"video": [str(synthetic_clip_path)], "audio": [str(synthetic_clip_path)]})
    dataset = dataset.cast_column("video", datasets.Video()).cast_column("audio", datasets.Audio())
    row = dataset[0]
    processor = tiny()
    reference = processor(videos=str(synthetic_clip_path))
    for output in (processor(videos=row["video"]), processor(videos=row["video"], audio=row["audio"])):
        torch.testing.assert_close(output["pixel_values"], reference["pixel_values"], atol=0, rtol=0)
        torch.testing.assert_close(output["audio_values"], reference["audio_values"], atol=0, rtol=0)


def test_audio_only_inputs(audio_only_path):
    processor = tiny(fusion_strategy="audio")
    from_file = processor(videos=str(audio_only_path))
    assert set(from_file.keys()) == {"audio_values"} and from_file["audio_values"].shape == (1, 4, 3, 32, 32)
    torch.testing.assert_close(processor(audio=str(audio_only_path))["audio_values"], from_file["audio_values"])
    wave = np.sin(2 * np.pi * 440 * np.arange(44100) / 44100)
    assert processor(audio=wave, sampling_rate=22050)["audio_values"].shape == (1, 4, 3, 32, 32)
    assert processor(audio=[wave, wave[:30000]], sampling_rate=[22050, 16000])["audio_values"].shape[0] == 2


def test_log_mel_representation(synthetic_clip_path):
    output = tiny(audio_representation="log_mel")(videos=str(synthetic_clip_path))
    mfcc = tiny()(videos=str(synthetic_clip_path))
    assert output["audio_values"].shape == mfcc["audio_values"].shape
    assert not torch.equal(output["audio_values"], mfcc["audio_values"])


# ---------------------------------------------------------------------------------------------------------------
# Bad input


def test_missing_file(tmp_path):
    missing = tmp_path / "nope.mp4"
    with pytest.raises(MediaError, match=r"nope\.mp4: file not found"):
        tiny()(videos=str(missing))
    with pytest.raises(MediaError, match="file not found"):
        tiny(fusion_strategy="audio")(audio=str(missing))


def test_not_media(tmp_path):
    fake = tmp_path / "fake.mp4"
    fake.write_text("this is not a video\n" * 50)
    with pytest.raises(MediaError, match=r"fake\.mp4: cannot be opened as media"):
        tiny()(videos=str(fake))
    empty = tmp_path / "empty.mp4"
    empty.write_bytes(b"")
    with pytest.raises(MediaError, match=r"empty\.mp4: file is empty"):
        tiny()(videos=str(empty))
    with pytest.raises(MediaError, match="empty bytes"):
        tiny()(videos=b"")
    with pytest.raises(MediaError, match=r"<20 bytes of media>: cannot be opened"):
        tiny()(videos=b"\x00" * 20)
    with pytest.raises(MediaError, match="is a directory"):
        tiny()(videos=str(tmp_path))


def test_truncated_files(synthetic_clip_path, make_clip, tmp_path):
    # mp4 with its index (moov) at the end: nothing can be recovered -> clear error
    data = synthetic_clip_path.read_bytes()
    cut = tmp_path / "cut.mp4"
    cut.write_bytes(data[: len(data) // 2])
    with pytest.raises(MediaError, match=r"cut\.mp4: cannot be opened as media .*truncated"):
        tiny()(videos=str(cut))
    # Matroska needs no trailing index: the part that is there opens and would decode as a shorter clip, but its
    # header still declares the whole duration, so every strategy reports the file as truncated
    mkv_path = make_clip("full_mkv", sample_rate=16000, container="mkv")
    mkv_bytes = mkv_path.read_bytes()
    cut_mkv = tmp_path / "cut.mkv"
    cut_mkv.write_bytes(mkv_bytes[: int(len(mkv_bytes) * 0.6)])
    for strategy in ("video", "FSLF", "audio"):
        with pytest.raises(MediaError, match=r"cut\.mkv: truncated file: its (streams end|audio ends) at 1\.\d\d s "):
            tiny(fusion_strategy=strategy)(videos=str(cut_mkv))
    for strategy in ("video", "FSLF", "audio"):  # the whole file is fine
        assert torch.isfinite(next(iter(tiny(fusion_strategy=strategy)(videos=str(mkv_path)).values()))).all()


def test_missing_streams(video_only_clip_path, audio_only_path):
    with pytest.raises(MediaError, match=r"video_only_clip\.mp4: has no audio stream"):
        tiny()(videos=str(video_only_clip_path))
    assert tiny(fusion_strategy="video")(videos=str(video_only_clip_path))["pixel_values"].shape == (1, 4, 3, 32, 32)
    with pytest.raises(MediaError, match=r"audio_only\.wav: has no video stream"):
        tiny()(videos=str(audio_only_path))


def test_silent_audio_is_finite(make_clip):
    path = make_clip("silent_clip", num_frames=25, silent=True)
    output = tiny()(videos=str(path))
    audio = output["audio_values"]
    assert torch.isfinite(audio).all()
    assert torch.equal(audio, audio[:, :, :, :1, :1].expand_as(audio))  # uniform pictures


def test_odd_sizes(make_clip, frame_index_decoder):
    path = make_clip("odd_clip", num_frames=20, height=35, width=61, fps=20)  # padded to even by the encoder
    processor = tiny(fusion_strategy="video")
    assert sampled_indices(processor(videos=str(path)), processor, frame_index_decoder) == [4, 8, 12, 16]
    frames = np.zeros((5, 33, 47, 3), dtype=np.uint8)
    assert processor(videos=frames)["pixel_values"].shape == (1, 4, 3, 32, 32)
    gray = np.zeros((5, 17, 9, 1), dtype=np.uint8)
    assert processor(videos=gray)["pixel_values"].shape == (1, 4, 3, 32, 32)


def test_argument_errors(synthetic_clip_path):
    frames = np.zeros((5, 8, 8, 3), dtype=np.uint8)
    with pytest.raises(ValueError, match="sampling_rate"):
        tiny()(videos=frames, audio=np.zeros(1000))
    with pytest.raises(ValueError, match="needs audio"):
        tiny()(videos=frames)
    with pytest.raises(ValueError, match="needs video"):
        tiny()(audio=np.zeros(1000), sampling_rate=8000)
    with pytest.raises(MediaError, match=r"synthetic_clip\.mp4: clip_start .* past the end"):
        tiny()(videos=str(synthetic_clip_path), clip_start=5.0)
    with pytest.raises(MediaError, match="clip_end"):
        tiny()(videos=str(synthetic_clip_path), clip_start=1.0, clip_end=0.5)
    with pytest.raises(ValueError, match="2 videos but 1 audio"):
        tiny()(videos=[frames, frames], audio=[np.zeros(100)], sampling_rate=8000)
    with pytest.raises(ValueError, match="fusion_strategy"):
        MultiMAEDERProcessor(fusion_strategy="XYZ")
    with pytest.raises(ValueError, match="frame_sampling"):
        MultiMAEDERProcessor(frame_sampling="random")


def test_media_error_is_picklable():
    import pickle

    error = pickle.loads(pickle.dumps(MediaError("a.mp4", "file not found")))
    assert isinstance(error, ValueError) and str(error) == "a.mp4: file not found" and error.source == "a.mp4"


# ---------------------------------------------------------------------------------------------------------------
# Save / load


def test_save_load_round_trip_and_auto_processor(tmp_path, synthetic_clip_path):
    from transformers import AutoProcessor

    processor = tiny(
        fusion_strategy="CFAS", frame_sampling="original", audio_representation="log-mel", image_std=(0.2, 0.3, 0.4)
    )
    processor.save_pretrained(tmp_path)
    saved = json.loads((tmp_path / "processor_config.json").read_text())
    assert saved["processor_class"] == "MultiMAEDERProcessor"
    assert saved["feature_extractor"]["audio_representation"] == "log-mel"
    loaded = MultiMAEDERProcessor.from_pretrained(tmp_path)
    assert loaded.to_dict() == processor.to_dict()
    expected = processor(videos=str(synthetic_clip_path))
    for other in (loaded,):
        output = other(videos=str(synthetic_clip_path))
        for key in expected:
            torch.testing.assert_close(output[key], expected[key], atol=0, rtol=0)

    register()
    auto = AutoProcessor.from_pretrained(tmp_path)
    assert type(auto) is MultiMAEDERProcessor and auto.to_dict() == processor.to_dict()


def test_remote_code_loads_without_the_package(tmp_path, synthetic_clip_path):
    processor = tiny(fusion_strategy="OFOS")
    folder = tmp_path / "saved"
    previous = MultiMAEDERProcessor._auto_class
    try:
        MultiMAEDERProcessor.register_for_auto_class("AutoProcessor")
        processor.save_pretrained(folder)
    finally:
        MultiMAEDERProcessor._auto_class = previous  # importing mmder_hf registered it: leave it as it was
    config = json.loads((folder / "processor_config.json").read_text())
    assert config["auto_map"] == {"AutoProcessor": "processing_multimae_der.MultiMAEDERProcessor"}
    for name in ("processing_multimae_der.py", "media.py", "audio_features.py", "fusion.py"):
        assert (folder / name).exists()
    expected = processor(videos=str(synthetic_clip_path))

    script = textwrap.dedent(
        f"""
        import torch
        from transformers import AutoProcessor
        processor = AutoProcessor.from_pretrained({str(folder)!r}, trust_remote_code=True)
        assert type(processor).__name__ == "MultiMAEDERProcessor", type(processor)
        assert not type(processor).__module__.startswith("mmder_hf"), type(processor).__module__
        output = processor(videos={str(synthetic_clip_path)!r})
        torch.save(dict(output), {str(tmp_path / "remote.pt")!r})
        """
    )
    # a fresh process with only the stated runtime packages importable (no mmder_hf, av, datasets, PIL...)
    run_without_mmder_hf(script, env={"HF_MODULES_CACHE": str(tmp_path / "modules")}, cwd=tmp_path, timeout=240)
    remote = torch.load(tmp_path / "remote.pt")
    assert set(remote) == set(expected.keys())
    for key in expected:
        torch.testing.assert_close(remote[key], expected[key], atol=0, rtol=0)
