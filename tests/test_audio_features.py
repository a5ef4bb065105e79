"""Audio windows, MFCC / log-mel matrices and their pictures, checked against independent references."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from mmder_hf.models.multimae_der.audio_features import (
    AudioImageSettings,
    audio_images,
    colorize,
    colormap_table,
    feature_image,
    log_mel,
    mfcc,
    peak_normalize,
    prepare_waveform,
    split_windows,
    window_bounds,
)


def reference_mfcc(
    signal: np.ndarray,
    sample_rate: int,
    hop_seconds: float,
    nfilt: int = 40,
    nfft: int = 512,
    frame_seconds: float = 0.025,
) -> np.ndarray:
    """The original MultiMAE-DER ``MFCC()`` (numpy, loops), with scipy's orthonormal DCT-II written out."""
    emphasized = np.append(signal[0], signal[1:] - 0.97 * signal[:-1])
    frame_length, frame_step = int(round(frame_seconds * sample_rate)), int(round(hop_seconds * sample_rate))
    num_frames = int(np.ceil(float(np.abs(len(emphasized) - frame_length)) / frame_step))
    pad = np.append(emphasized, np.zeros(num_frames * frame_step + frame_length - len(emphasized)))
    idx = (
        np.tile(np.arange(frame_length), (num_frames, 1))
        + np.tile(np.arange(0, num_frames * frame_step, frame_step), (frame_length, 1)).T
    )
    frames = pad[idx] * np.hamming(frame_length)
    power = (1.0 / nfft) * np.abs(np.fft.rfft(frames, nfft)) ** 2
    mel_high = 2595 * np.log10(1 + (sample_rate / 2) / 700)
    hz = 700 * (10 ** (np.linspace(0, mel_high, nfilt + 2) / 2595) - 1)
    bins = np.floor((nfft + 1) * hz / sample_rate)
    fbank = np.zeros((nfilt, nfft // 2 + 1))
    for m in range(1, nfilt + 1):
        for k in range(int(bins[m - 1]), int(bins[m])):
            fbank[m - 1, k] = (k - bins[m - 1]) / (bins[m] - bins[m - 1])
        for k in range(int(bins[m]), int(bins[m + 1])):
            fbank[m - 1, k] = (bins[m + 1] - k) / (bins[m + 1] - bins[m])
    energies = power @ fbank.T
    energies = np.where(energies == 0, np.finfo(float).eps, energies)
    db = 20 * np.log10(energies)
    n = np.arange(nfilt)
    dct = np.empty_like(db)
    for k in range(nfilt):
        scale = math.sqrt(1 / nfilt) if k == 0 else math.sqrt(2 / nfilt)
        dct[:, k] = scale * (db * np.cos(np.pi * k * (2 * n + 1) / (2 * nfilt))).sum(1)
    out = dct[:, 1:14]
    return out * (1 + 11 * np.sin(np.pi * np.arange(13) / 22))


def speech_like(num_samples: int, sample_rate: int, seed: int = 0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    t = np.arange(num_samples) / sample_rate
    voiced = sum(np.sin(2 * np.pi * f * t) / (i + 1) for i, f in enumerate((180, 360, 720, 1500, 3100)))
    return (0.3 * voiced * (1 + np.sin(2 * np.pi * 3 * t)) + 0.02 * rng.standard_normal(num_samples)).astype(
        np.float64
    )


@pytest.mark.parametrize("sample_rate,hop", [(16000, 0.010), (44100, 0.010), (16000, 0.0001), (8000, 0.0001)])
def test_mfcc_matches_original_formula(sample_rate, hop):
    # 44.1 kHz exercises the original's quirk: 1102-sample frames truncated to the 512-point FFT
    signal = speech_like(int(0.4 * sample_rate), sample_rate)
    expected = reference_mfcc(signal, sample_rate, hop)
    got = mfcc(torch.from_numpy(signal), sample_rate, hop_length_ms=hop * 1000).numpy()
    num_frames = math.ceil((len(signal) - round(0.025 * sample_rate)) / round(hop * sample_rate))
    assert got.shape == expected.shape == (num_frames, 13)
    np.testing.assert_allclose(got, expected, rtol=1e-7, atol=1e-7)


def test_mfcc_with_one_sample_frames_matches_original_formula():
    """A 0.125 ms frame at 8 kHz is one sample (its Hamming window is [1]), every 1 ms."""
    signal = speech_like(800, 8000)
    expected = reference_mfcc(signal, 8000, 0.001, frame_seconds=0.000125)
    got = mfcc(torch.from_numpy(signal), 8000, frame_length_ms=0.125, hop_length_ms=1.0).numpy()
    assert got.shape == expected.shape == (100, 13)
    np.testing.assert_allclose(got, expected, rtol=1e-7, atol=1e-7)


def test_mfcc_with_empty_mel_filters_matches_original_formula():
    """128 filters on a 512-point FFT at 16 kHz: the narrow low filters catch no FFT bin, so their energy is exactly
    0 and becomes float64's eps (-313 dB) whatever the level, unlike the other filters."""
    signal = speech_like(8000, 16000)
    expected = reference_mfcc(signal, 16000, 0.010, nfilt=128)
    got = mfcc(torch.from_numpy(signal), 16000, num_mel_filters=128).numpy()
    assert got.shape == expected.shape == (48, 13)
    np.testing.assert_allclose(got, expected, rtol=1e-7, atol=1e-6)
    doubled = mfcc(torch.from_numpy(2 * signal), 16000, num_mel_filters=128).numpy()
    assert np.abs(doubled - got).max() > 1.0  # the empty filters do not follow the level: the shape changes


def test_mfcc_short_and_silent_windows_are_finite():
    assert mfcc(torch.randn(100), 16000).shape == (1, 13)  # shorter than one 25 ms frame
    silent = mfcc(torch.zeros(8000), 16000)
    assert torch.isfinite(silent).all() and silent.abs().max() < 1e-6  # constant log energy: c1..c13 vanish


def test_window_bounds_extent_centre_and_overlap():
    bounds = window_bounds(9000, 8)
    assert bounds == [(1000 * i, 1000 * (i + 2)) for i in range(8)]
    num_samples, n = 17_321, 16
    for i, (start, end) in enumerate(window_bounds(num_samples, n)):
        assert abs((end - start) - 2 * num_samples / (n + 1)) <= 1
        assert abs((start + end) / 2 - (i + 1) * num_samples / (n + 1)) <= 1
    windows = split_windows(torch.arange(9000.0), 8)
    assert torch.equal(windows[1][:1000], windows[0][1000:])  # half overlap
    assert window_bounds(3, 8)[-1][1] <= 3 and all(e > s for s, e in window_bounds(3, 8))


def test_colormap_is_matplotlibs_viridis():
    table = colormap_table("viridis")
    assert table.shape == (256, 3) and table.dtype == torch.uint8
    assert table[0].tolist() == [68, 1, 84] and table[255].tolist() == [253, 231, 36]
    matplotlib = pytest.importorskip("matplotlib")
    expected = matplotlib.colormaps["viridis"](np.arange(256), bytes=True)[:, :3]
    np.testing.assert_array_equal(table.numpy(), expected)


def test_gray_colormap_is_the_identity_ramp():
    table = colormap_table("gray")
    assert table.shape == (256, 3) and table.dtype == torch.uint8
    assert torch.equal(table, torch.arange(256, dtype=torch.uint8)[:, None].repeat(1, 3))
    rgb = colorize(torch.tensor([[0.0, 1.0], [2.0, 4.0]]), colormap="gray")  # min 0, 1/4 -> 64, max -> 255
    assert rgb[0].tolist() == [[128, 255], [0, 64]] and torch.equal(rgb[0], rgb[1]) and torch.equal(rgb[0], rgb[2])


def test_mfcc_of_a_one_sample_window():
    """Tiny clips give one-sample windows: one zero-padded frame whose spectrum is flat, whatever the sample."""
    first = mfcc(torch.tensor([0.3]), 16000)
    assert first.shape == (1, 13) and torch.isfinite(first).all() and first.abs().max() > 1.0
    torch.testing.assert_close(mfcc(torch.tensor([-0.7]), 16000), first, rtol=1e-9, atol=1e-9)
    with pytest.raises(ValueError, match="empty window"):
        mfcc(torch.tensor([]), 16000)
    # log-mel removes the mean first: one sample is silence, every bin at the floor ln(float32 eps)
    floor = log_mel(torch.tensor([0.3]), 16000)
    assert floor.shape == (1, 128)
    torch.testing.assert_close(floor, torch.full((1, 128), math.log(np.finfo(np.float32).eps)))
    with pytest.raises(ValueError, match="empty window"):
        log_mel(torch.tensor([]), 16000)


def test_colorize_minmax_origin_and_constant():
    matrix = torch.tensor([[0.0, 1.0], [2.0, 4.0]])  # row 0 is drawn at the bottom
    rgb = colorize(matrix)
    table = colormap_table()
    assert rgb.shape == (3, 2, 2)
    assert rgb[:, 1, 0].tolist() == table[0].tolist()  # minimum, bottom left
    assert rgb[:, 0, 1].tolist() == table[255].tolist()  # maximum, top right
    assert rgb[:, 1, 1].tolist() == table[64].tolist()  # 1/4 of the range -> floor(0.25 * 256)
    assert colorize(matrix, origin="upper")[:, 0, 0].tolist() == table[0].tolist()
    constant = colorize(torch.full((13, 5), -3.0))
    assert (constant == table[0].view(3, 1, 1)).all()


def test_feature_image_layout():
    features = torch.zeros(4, 13)  # 4 time frames, 13 coefficients
    features[:, 0] = 1.0  # coefficient 1 bright -> bottom band
    image = feature_image(features, 26)
    assert image.shape == (3, 26, 26) and image.dtype == torch.uint8
    yellow, purple = colormap_table()[255], colormap_table()[0]
    assert (image[:, -2:, :] == yellow.view(3, 1, 1)).all()
    assert (image[:, :20, :] == purple.view(3, 1, 1)).all()
    smooth = feature_image(features, 26, interpolation="bilinear")
    assert smooth.shape == (3, 26, 26)


def test_mfcc_picture_matches_matplotlib_matshow():
    """The original drew ``matshow(mfcc.T, interpolation="nearest", aspect="auto", origin="lower")`` (viridis)."""
    matplotlib = pytest.importorskip("matplotlib")
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    features = mfcc(torch.from_numpy(speech_like(12000, 16000)), 16000)
    size = 64
    figure = plt.figure(figsize=(1, 1), dpi=size)
    axes = figure.add_axes([0, 0, 1, 1])  # the image only: no white margins
    axes.matshow(features.numpy().T, interpolation="nearest", aspect="auto", origin="lower")
    axes.axis("off")
    figure.canvas.draw()
    expected = np.asarray(figure.canvas.buffer_rgba())[..., :3]
    plt.close(figure)
    got = feature_image(features, size).permute(1, 2, 0).numpy()
    assert (got == expected).all(-1).mean() > 0.98  # identical up to a rare rounding at band edges


@pytest.mark.parametrize("representation", ["mfcc", "log-mel"])
def test_audio_images_shapes_and_window_content(representation):
    sample_rate = 16000
    # first half 300 Hz, second half 3 kHz: the first and last images must differ, windows in one half agree
    t = torch.arange(2 * sample_rate) / sample_rate
    wave = torch.where(t < 1.0, torch.sin(2 * math.pi * 300 * t), torch.sin(2 * math.pi * 3000 * t))
    images = audio_images(
        wave, sample_rate, 8, image_size=32, settings=AudioImageSettings(representation=representation)
    )
    assert images.shape == (8, 3, 32, 32) and images.dtype == torch.uint8
    assert not torch.equal(images[0], images[-1])
    assert (images[0].float() - images[1].float()).abs().mean() < (images[0].float() - images[-1].float()).abs().mean()


@pytest.mark.parametrize("sample_rate,num_samples", [(16000, 8000), (44100, 22050), (16000, 300)])
def test_log_mel_matches_kaldi_fbank(sample_rate, num_samples):
    """``log_mel`` against Kaldi's fbank written out from its definition (numpy, float64), not a torchaudio call.

    Per frame of 25 ms every 10 ms (``snip_edges``: only whole frames): the clip's mean removed first (as the code
    says; windows shorter than a frame are then zero-padded to one), the frame's own DC offset removed, Kaldi's
    pre-emphasis ``x[t] - 0.97 x[t-1]`` (``x[0] - 0.97 x[0]`` for the first sample), the symmetric Hanning window
    ``0.5 - 0.5 cos(2 pi n / (N - 1))``, zero-padded to the next power of two, power spectrum, 128 triangular
    filters equally spaced on the HTK mel scale ``1127 ln(1 + f / 700)`` from 20 Hz to Nyquist (weights computed in
    mel), natural log of the energies floored at float32's eps. Float32 rounding costs ~1e-4; a Hamming window, no
    pre-emphasis, no DC removal, magnitude instead of power or 0 Hz as the lowest edge each cost more than 7 (in
    natural-log units).
    """

    def reference_log_mel(signal: np.ndarray, rate: int, num_bins: int = 128) -> np.ndarray:
        x = np.asarray(signal, dtype=np.float64)
        x = x - x.mean()
        length, hop = round(0.025 * rate), round(0.010 * rate)
        x = np.pad(x, (0, max(0, length - len(x))))
        starts = np.arange(1 + (len(x) - length) // hop) * hop
        frames = x[starts[:, None] + np.arange(length)]
        frames = frames - frames.mean(axis=1, keepdims=True)
        frames = frames - 0.97 * np.concatenate([frames[:, :1], frames[:, :-1]], axis=1)
        frames = frames * (0.5 - 0.5 * np.cos(2 * np.pi * np.arange(length) / (length - 1)))
        n_fft = 1 << (length - 1).bit_length()
        power = np.abs(np.fft.rfft(frames, n_fft)) ** 2
        mel = 1127.0 * np.log(1.0 + np.arange(n_fft // 2 + 1) * rate / n_fft / 700.0)
        low, high = 1127.0 * np.log(1.0 + 20.0 / 700.0), 1127.0 * np.log(1.0 + rate / 2 / 700.0)
        delta = (high - low) / (num_bins + 1)
        left = low + delta * np.arange(num_bins)[:, None]
        center, right = left + delta, left + 2 * delta
        rising, falling = (mel - left) / (center - left), (right - mel) / (right - center)
        bank = np.where((mel > left) & (mel < right), np.where(mel <= center, rising, falling), 0.0)
        return np.log(np.maximum(power @ bank.T, np.finfo(np.float32).eps))

    wave = torch.from_numpy(speech_like(num_samples, sample_rate) + 0.1).float()  # with a DC offset
    expected = reference_log_mel(wave.numpy(), sample_rate)
    got = log_mel(wave, sample_rate)
    assert got.dtype == torch.float32
    num_frames = max(1, 1 + (num_samples - round(0.025 * sample_rate)) // round(0.010 * sample_rate))
    assert got.shape == expected.shape == (num_frames, 128)
    assert expected.max() - expected.min() > 10  # the values span orders of magnitude of energy
    np.testing.assert_allclose(got.numpy(), expected, rtol=0, atol=1e-3)


def test_audio_image_settings_are_validated_once_with_clear_messages():
    assert AudioImageSettings(representation="LOG_MEL").representation == "log-mel"
    for kwargs, field in (
        ({"representation": "cqt"}, "audio_representation"),
        ({"colormap": "jet"}, "audio_colormap"),
        ({"origin": "middle"}, "audio_image_origin"),
        ({"interpolation": "cubic"}, "audio_image_interpolation"),
    ):
        with pytest.raises(ValueError, match=field):
            AudioImageSettings(**kwargs)


def test_silent_audio_gives_uniform_images_without_nan(caplog):
    images = audio_images(torch.zeros(16000), 16000, 4, image_size=16)
    assert (images == colormap_table()[0].view(1, 3, 1, 1)).all()
    assert "silent" in caplog.text
    assert torch.equal(peak_normalize(torch.zeros(5)), torch.zeros(5))
    torch.testing.assert_close(peak_normalize(torch.tensor([0.5, -2.0])), torch.tensor([0.25, -1.0]))


def test_prepare_waveform_downmix_layouts_and_int_pcm():
    left, right = torch.rand(1000) - 0.5, torch.rand(1000) - 0.5
    expected = (left + right) / 2
    torch.testing.assert_close(prepare_waveform(torch.stack([left, right]), 16000, 16000), expected)
    torch.testing.assert_close(prepare_waveform(torch.stack([left, right], 1).numpy(), 16000, 16000), expected)
    pcm = np.array([0, 16384, -32768], dtype=np.int16)
    torch.testing.assert_close(prepare_waveform(pcm, 8000, 8000), torch.tensor([0.0, 0.5, -1.0]))
    with pytest.raises(ValueError, match="NaN"):
        prepare_waveform(torch.tensor([0.0, float("nan")]), 8000, 8000)


@pytest.mark.parametrize("source_rate", [44100, 48000, 8000])
def test_prepare_waveform_resamples_keeping_frequency(source_rate):
    t = np.arange(source_rate) / source_rate  # 1 s
    wave = prepare_waveform(np.sin(2 * np.pi * 1000 * t), source_rate, 16000)
    assert abs(wave.shape[0] - 16000) <= 1
    spectrum = torch.fft.rfft(wave[1000:-1000] * torch.hann_window(wave.shape[0] - 2000))
    peak_hz = spectrum.abs().argmax().item() * 16000 / (wave.shape[0] - 2000)
    assert abs(peak_hz - 1000) < 5


# ---------------------------------------------------------------------------------------------------------------
# Windows, waveforms and pictures against hand computations


def test_window_bounds_exact_for_tiny_clips_and_each_window_holds_its_samples():
    # cuts round(j * N / (n + 1)); an empty window keeps one sample
    assert window_bounds(1, 3) == [(0, 1), (0, 1), (0, 1)]
    assert window_bounds(3, 8) == [(0, 1), (0, 1), (1, 2), (1, 2), (1, 2), (2, 3), (2, 3), (2, 3)]
    assert window_bounds(10, 1) == [(0, 10)]  # one window: the whole clip
    assert window_bounds(12, 2) == [(0, 8), (4, 12)]
    for args in ((0, 4), (10, 0)):
        with pytest.raises(ValueError):
            window_bounds(*args)
    windows = split_windows(torch.arange(12.0), 2)
    assert [w.tolist() for w in windows] == [list(range(0, 8)), list(range(4, 12))]


def test_prepare_waveform_takes_tensors_that_numpy_cannot_hold():
    wave = torch.tensor([0.5, -0.25, 0.125, 1.0])
    for tensor in (wave.clone().requires_grad_(True), wave.to(torch.bfloat16)):  # e.g. a model's output
        out = prepare_waveform(tensor, 16000, 16000)
        assert out.dtype == torch.float32 and not out.requires_grad
        assert out.tolist() == wave.tolist()


def test_peak_normalize_threshold_is_strictly_below_eps():
    wave = torch.tensor([0.5, -0.25])
    assert peak_normalize(wave, eps=0.5).tolist() == [1.0, -0.5]  # a peak equal to eps is divided by
    assert peak_normalize(wave, eps=0.5000001).tolist() == [0.5, -0.25]  # below eps: left as is


def test_colorize_counts_spans_of_at_most_a_millionth_of_the_magnitude_as_constant():
    table = colormap_table()
    large = colorize(torch.tensor([[1000.0, 1000.0005]], dtype=torch.float64))  # span 5e-4 < 1e-6 * 1000
    assert (large == table[0].view(3, 1, 1)).all()
    small = colorize(torch.tensor([[0.0, 5e-7]], dtype=torch.float64))  # below 1e-6 (magnitudes under 1 count as 1)
    assert (small == table[0].view(3, 1, 1)).all()
    at_most = colorize(torch.tensor([[0.0, 1e-6]], dtype=torch.float64))  # a span of exactly 1e-6 still counts
    assert (at_most == table[0].view(3, 1, 1)).all()
    stretched = colorize(torch.tensor([[1000.0, 1000.002]], dtype=torch.float64))  # 2e-3 > 1e-3: stretched
    assert stretched[:, 0, 0].tolist() == table[0].tolist() and stretched[:, 0, 1].tolist() == table[255].tolist()


def reference_audio_images(wave: np.ndarray, sample_rate: int, num_windows: int, size: int) -> np.ndarray:
    """The whole default picture pipeline in numpy: peak normalisation, windows, the original MFCC, matshow colours
    (min-max, floor(256 x), viridis, coefficient 1 at the bottom) and nearest-exact resizing (pixel centres)."""
    wave = wave / np.abs(wave).max()
    viridis = colormap_table().numpy()  # checked against matplotlib in test_colormap_is_matplotlibs_viridis
    images = []
    for i in range(num_windows):
        start = round(i * len(wave) / (num_windows + 1))
        end = round((i + 2) * len(wave) / (num_windows + 1))
        matrix = reference_mfcc(wave[start:end], sample_rate, 0.010).T  # (13 coefficients, frames)
        scaled = (matrix - matrix.min()) / (matrix.max() - matrix.min())
        picture = viridis[np.clip(np.floor(scaled * 256).astype(int), 0, 255)][::-1]  # row 0 at the bottom
        rows = np.floor((np.arange(size) + 0.5) * picture.shape[0] / size).astype(int)
        cols = np.floor((np.arange(size) + 0.5) * picture.shape[1] / size).astype(int)
        images.append(picture[rows][:, cols].transpose(2, 0, 1))
    return np.stack(images)


def test_default_audio_images_match_an_independent_numpy_pipeline():
    wave = speech_like(16000, 16000, seed=1) * 0.7
    expected = reference_audio_images(wave, 16000, 4, 24)
    got = audio_images(torch.from_numpy(wave), 16000, 4, image_size=24)
    assert got.shape == (4, 3, 24, 24) and got.dtype == torch.uint8
    np.testing.assert_array_equal(got.numpy(), expected)
    # the defaults of mfcc() itself are the same recipe (25 ms frames, 10 ms hop, 512-point FFT, 40 filters, ...)
    np.testing.assert_allclose(mfcc(torch.from_numpy(wave), 16000).numpy(), reference_mfcc(wave, 16000, 0.010), 1e-9)


@pytest.mark.parametrize("gain", [0.25, 0.1])
def test_do_peak_normalize_makes_log_mel_pictures_level_independent(gain):
    wave = torch.from_numpy(speech_like(16000, 16000)).float()
    images = {}
    for representation in ("mfcc", "log-mel"):
        for peak in (True, False):
            settings = AudioImageSettings(representation=representation, do_peak_normalize=peak)
            images[representation, peak] = [audio_images(w, 16000, 4, 24, settings) for w in (wave, gain * wave)]
    # log-mel: its empty low mel bins sit at a fixed floor, so the level shows unless the peak is normalised
    loud, quiet = images["log-mel", True]
    assert torch.equal(loud, quiet)
    loud, quiet = images["log-mel", False]
    assert (loud != quiet).float().mean() > 0.5
    by_hand = audio_images(wave / wave.abs().max(), 16000, 4, 24, AudioImageSettings("log-mel", False))
    assert torch.equal(images["log-mel", True][0], by_hand)
    # MFCC: a gain only moves the dropped c0, so the setting changes nothing
    assert all(torch.equal(images["mfcc", True][0], other) for other in images["mfcc", True] + images["mfcc", False])


@pytest.mark.parametrize("interpolation", ["nearest", "bilinear"])
def test_normalised_pictures_are_the_normalised_uint8_pictures(interpolation):
    """``normalize=`` (the timeline engine's route: small pictures normalised before the nearest-exact enlargement)
    gives the values of normalising the finished uint8 pictures, to the bit, for both enlargements."""
    from mmder_hf.models.multimae_der.video_processing_multimae_der import rescale_and_normalize_images

    wave = torch.from_numpy(speech_like(24000, 16000, seed=3))
    settings = AudioImageSettings(interpolation=interpolation)

    def normalize(images):
        return rescale_and_normalize_images(images, 1 / 255, (0.485, 0.456, 0.406), (0.229, 0.224, 0.225))

    pictures = audio_images(wave, 16000, 8, image_size=40, settings=settings)
    values = audio_images(wave, 16000, 8, image_size=40, settings=settings, normalize=normalize)
    assert pictures.dtype == torch.uint8 and values.dtype == torch.float32 and values.shape == (8, 3, 40, 40)
    assert torch.equal(values, normalize(pictures))
    assert len(torch.unique(values[:, 0])) > 5  # real pictures, not a constant
