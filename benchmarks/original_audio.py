"""A faithful re-creation of the original MultiMAE-DER audio step, used only as a benchmark baseline.

Reconstructed from the description of the authors' preprocessing (see the project's method notes): audio at
44.1 kHz, peak-normalised, stereo samples read as one interleaved signal; for n audio frames, window i spans
2/(n+1) of the clip centred at (i+1)/(n+1); per window an MFCC with pre-emphasis 0.97, 25 ms Hamming frames,
a 0.1 ms hop, NFFT 512 (frames longer than NFFT are truncated), 40 mel filters from 0 Hz to fs/2, dB, DCT-II
(ortho), coefficients 1..13, sinusoidal lifter 22; the 13 x N matrix drawn with matplotlib (viridis), saved
as a 400x400 JPEG and read back resized to 224x224 RGB.
"""

from __future__ import annotations

import io

import numpy as np


def _mel_filterbank(num_filters: int, nfft: int, sample_rate: int) -> np.ndarray:
    def hz_to_mel(hz):
        return 2595 * np.log10(1 + hz / 700.0)

    def mel_to_hz(mel):
        return 700 * (10 ** (mel / 2595.0) - 1)

    mels = np.linspace(hz_to_mel(0), hz_to_mel(sample_rate / 2), num_filters + 2)
    bins = np.floor((nfft + 1) * mel_to_hz(mels) / sample_rate).astype(int)
    bank = np.zeros((num_filters, nfft // 2 + 1))
    for j in range(num_filters):
        for i in range(bins[j], bins[j + 1]):
            bank[j, i] = (i - bins[j]) / (bins[j + 1] - bins[j])
        for i in range(bins[j + 1], bins[j + 2]):
            bank[j, i] = (bins[j + 2] - i) / (bins[j + 2] - bins[j + 1])
    return bank


def _dct_ortho(x: np.ndarray) -> np.ndarray:
    n = x.shape[-1]
    k = np.arange(n)
    basis = np.cos(np.pi * (2 * k[None, :] + 1) * k[:, None] / (2 * n)) * np.sqrt(2.0 / n)
    basis[0] /= np.sqrt(2.0)
    return x @ basis.T


def original_mfcc(signal: np.ndarray, sample_rate: int = 44100) -> np.ndarray:
    """13 x N MFCC matrix with the original's parameters (0.1 ms hop, NFFT 512, Hamming, lifter 22)."""
    signal = np.append(signal[0], signal[1:] - 0.97 * signal[:-1])
    frame_len, frame_step, nfft = int(round(0.025 * sample_rate)), max(1, int(round(0.0001 * sample_rate))), 512
    num_frames = 1 + max(0, int(np.ceil((len(signal) - frame_len) / frame_step)))
    padded = np.concatenate([signal, np.zeros(max(0, (num_frames - 1) * frame_step + frame_len - len(signal)))])
    index = np.arange(frame_len)[None, :] + frame_step * np.arange(num_frames)[:, None]
    frames = padded[index] * np.hamming(frame_len)[None, :]
    power = np.abs(np.fft.rfft(frames, nfft)) ** 2 / nfft
    energies = power @ _mel_filterbank(40, nfft, sample_rate).T
    energies = 20 * np.log10(np.maximum(energies, np.finfo(float).eps))
    cepstra = _dct_ortho(energies)[:, 1:14]
    lift = 1 + (22 / 2.0) * np.sin(np.pi * np.arange(13) / 22)
    return (cepstra * lift).T


def original_audio_images(waveform: np.ndarray, sample_rate: int = 44100, num_windows: int = 8) -> np.ndarray:
    """``(num_windows, 224, 224, 3)`` uint8 images, the original way: plot, save as JPEG, read, resize."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    from PIL import Image

    signal = waveform.T.reshape(-1) if waveform.ndim == 2 else waveform  # interleaved stereo, as the original
    signal = signal / max(np.abs(signal).max(), 1e-9)
    length = len(signal)
    images = []
    for i in range(num_windows):
        centre, half = (i + 1) / (num_windows + 1), 1.0 / (num_windows + 1)
        start, end = int((centre - half) * length), int((centre + half) * length)
        mfcc = original_mfcc(signal[start:end], sample_rate)
        figure = plt.figure(figsize=(4, 4), dpi=100)
        plt.imshow(mfcc, cmap="viridis", aspect="auto", origin="lower")
        buffer = io.BytesIO()
        figure.savefig(buffer, format="jpeg")
        plt.close(figure)
        buffer.seek(0)
        images.append(np.asarray(Image.open(buffer).convert("RGB").resize((224, 224))))
    return np.stack(images)


__all__ = ["original_audio_images", "original_mfcc"]
