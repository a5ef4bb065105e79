"""Audio windows and audio images: waveform -> ``n`` windows -> MFCC or log-mel -> RGB pictures.

MultiMAE-DER turns audio into images so that one VideoMAE encoder can read it (Xiang et al., ICPRS 2024). The
original preprocessing (``Preprocessing_Audio.py`` in the authors' repository) cut the peak-normalised clip into
overlapping windows, computed an MFCC matrix per window with numpy, drew it with ``matplotlib.matshow`` (viridis,
``origin="lower"``, nearest interpolation), saved the figure as a JPEG and resized it to 224 x 224. Everything here
computes the same picture directly as tensors, without plotting or JPEG round trips:

1. :func:`window_bounds` / :func:`split_windows`: for ``n`` windows the clip is cut at ``n + 2`` equally spaced
   points; window ``i`` spans ``2 / (n + 1)`` of the clip, is centred at ``(i + 1) / (n + 1)`` and overlaps each
   neighbour by half.
2. :func:`mfcc` (the paper's representation, the original formula step by step) or :func:`log_mel` (a 128-bin
   Kaldi-style log-mel filterbank, as HiCMAE uses).
3. :func:`colorize`: min-max over the matrix, viridis lookup (matplotlib's 256-entry table, embedded below),
   coefficient / mel bin 0 at the bottom row (``origin="lower"``), time from left to right.
4. :func:`feature_image` / :func:`audio_images`: resize to ``image_size x image_size`` as ``uint8`` RGB, ready to be
   rescaled and normalised exactly like video frames.

Only torch, torchaudio and numpy are needed at runtime (this file is shipped to the Hub as remote code).
"""

from __future__ import annotations

import functools
import logging
import math
from dataclasses import dataclass
from typing import Callable, Optional

import numpy as np
import torch
import torch.nn.functional as F


logger = logging.getLogger(__name__)

AUDIO_REPRESENTATIONS = ("mfcc", "log-mel")
COLORMAPS = ("viridis", "gray")

# matplotlib's "viridis" colormap as matplotlib renders it into an image: `colormaps["viridis"](range(256),
# bytes=True)[:, :3]`, i.e. 256 RGB triplets of uint8, written as hex (computed with matplotlib 3.11).
_VIRIDIS_HEX = (
    "44015444025544035745055845065a45085b46095c460b5e460c5f460e61470f62471163471265471466471567471669"
    "47186a48196b481a6c481c6e481d6f481e70482071482172482273482374472575472676472777472878472a79472b7a"
    "472c7b462d7c462f7c46307d46317e45327f45347f453580453681443781443982433a83433b83433c84423d84423e85"
    "4240854141864142864043874044873f45873f47883e48883e49893d4a893d4b893d4c893c4d8a3c4e8a3b508a3b518a"
    "3a528b3a538b39548b39558b38568b38578c37588c37598c365a8c365b8c355c8c355d8c345e8d345f8d33608d33618d"
    "32628d32638d31648d31658d31668d30678d30688d2f698d2f6a8d2e6b8e2e6c8e2e6d8e2d6e8e2d6f8e2c708e2c718e"
    "2c728e2b738e2b748e2a758e2a768e2a778e29788e29798e287a8e287a8e287b8e277c8e277d8e277e8e267f8e26808e"
    "26818e25828e25838d24848d24858d24868d23878d23888d23898d22898d228a8d228b8d218c8d218d8c218e8c208f8c"
    "20908c20918c1f928c1f938b1f948b1f958b1f968b1e978a1e988a1e998a1e998a1e9a891e9b891e9c891e9d881e9e88"
    "1e9f881ea0871fa1871fa2861fa38620a48520a58521a68521a78422a78423a88323a98224aa8225ab8126ac8127ad80"
    "28ae7f29af7f2ab07e2bb17d2cb17d2eb27c2fb37b30b47a32b57a33b67935b77836b87738b97639b9763bba753dbb74"
    "3ebc7340bd7242be7144be7045bf6f47c06e49c16d4bc26c4dc26b4fc36951c46853c56755c66657c66559c7645bc862"
    "5ec96160c96062ca5f64cb5d67cc5c69cc5b6bcd596dce5870ce5672cf5574d05477d05279d1517cd24f7ed24e81d34c"
    "83d34b86d44988d5478bd5468dd64490d64392d74195d73f97d83e9ad83c9dd93a9fd938a2da37a5da35a7db33aadb32"
    "addc30afdc2eb2dd2cb5dd2bb7dd29bade27bdde26bfdf24c2df22c5df21c7e01fcae01ecde01dcfe11cd2e11bd4e11a"
    "d7e219dae218dce218dfe318e1e318e4e318e7e419e9e419ece41aeee51bf1e51cf3e51ef6e61ff8e621fae622fde724"
)


@functools.cache
def _colormap_table(name: str) -> torch.Tensor:
    if name == "viridis":
        table = np.frombuffer(bytes.fromhex(_VIRIDIS_HEX), dtype=np.uint8).reshape(256, 3)
        return torch.from_numpy(table.copy())
    if name == "gray":
        return torch.arange(256, dtype=torch.uint8)[:, None].expand(256, 3).contiguous()
    raise ValueError(f"Unknown colormap {name!r}; expected one of {', '.join(COLORMAPS)}")


def colormap_table(name: str = "viridis") -> torch.Tensor:
    """The ``(256, 3)`` ``uint8`` RGB lookup table of ``name`` (``"viridis"``, matplotlib's default, or ``"gray"``)."""
    return _colormap_table(name).clone()


def window_bounds(num_samples: int, num_windows: int) -> list[tuple[int, int]]:
    """Sample ranges ``[start, end)`` of the ``num_windows`` overlapping audio windows of a clip.

    The clip is cut at ``num_windows + 2`` equally spaced points ``b_j = round(j * num_samples / (num_windows + 1))``;
    window ``i`` is ``[b_i, b_{i+2})``: it spans ``2 / (num_windows + 1)`` of the clip, is centred at
    ``(i + 1) / (num_windows + 1)`` and overlaps each neighbour by half. The original code used
    ``step = int(num_samples / (num_windows + 1)) - 1``, which drops the last few samples; this is the exact version.

    Args:
        num_samples (`int`): length of the clip in samples.
        num_windows (`int`): number of windows (audio images) to cut.

    Returns:
        `list[tuple[int, int]]`: ``num_windows`` pairs ``(start, end)``; a window is never empty (for clips shorter
        than ``num_windows + 1`` samples windows repeat samples).
    """
    if num_windows < 1:
        raise ValueError(f"num_windows must be >= 1, got {num_windows}")
    if num_samples < 1:
        raise ValueError(f"the clip has no audio samples (num_samples={num_samples})")
    cuts = [round(j * num_samples / (num_windows + 1)) for j in range(num_windows + 2)]
    bounds = []
    for i in range(num_windows):
        start, end = cuts[i], cuts[i + 2]
        if end <= start:  # degenerate tiny clips: keep at least one sample
            start = min(start, num_samples - 1)
            end = start + 1
        bounds.append((start, end))
    return bounds


def split_windows(waveform: torch.Tensor, num_windows: int) -> list[torch.Tensor]:
    """Cut a mono ``waveform`` of shape ``(num_samples,)`` into the windows of :func:`window_bounds` (views)."""
    if waveform.ndim != 1:
        raise ValueError(f"waveform must be mono, shaped (num_samples,), got {tuple(waveform.shape)}")
    return [waveform[start:end] for start, end in window_bounds(waveform.shape[0], num_windows)]


def prepare_waveform(waveform: torch.Tensor | np.ndarray, sample_rate: int, target_sample_rate: int) -> torch.Tensor:
    """Downmix to mono (mean over channels) and resample to ``target_sample_rate``.

    Args:
        waveform (`torch.Tensor` or `np.ndarray`): ``(num_samples,)``, ``(channels, num_samples)`` or
            ``(num_samples, channels)`` (the smaller axis is taken as channels); integer PCM is scaled to [-1, 1].
        sample_rate (`int`): its rate in Hz.
        target_sample_rate (`int`): the rate to return, in Hz (band-limited sinc resampling,
            ``torchaudio.functional.resample``).

    Returns:
        `torch.Tensor` of shape `(num_samples',)`, float32.
    """
    data = torch.as_tensor(np.asarray(waveform) if not isinstance(waveform, torch.Tensor) else waveform)
    if not data.is_floating_point():
        if data.dtype == torch.bool or data.is_complex():
            raise ValueError(f"unsupported waveform dtype {data.dtype}")
        scale = float(torch.iinfo(data.dtype).max) + 1.0 if data.dtype != torch.uint8 else 128.0
        data = (data.to(torch.float64) - (128.0 if data.dtype == torch.uint8 else 0.0)) / scale
    data = data.detach().to(torch.float32)
    if data.ndim == 2:
        channel_axis = 0 if data.shape[0] <= data.shape[1] else 1
        data = data.mean(dim=channel_axis)
    elif data.ndim != 1:
        raise ValueError(f"waveform must be (num_samples,) or (channels, num_samples), got {tuple(data.shape)}")
    if data.numel() == 0:
        raise ValueError("waveform is empty")
    if not bool(torch.isfinite(data).all()):
        raise ValueError("waveform contains NaN or infinite samples")
    if sample_rate is None or sample_rate <= 0:
        raise ValueError(f"sampling rate must be a positive number of Hz, got {sample_rate!r}")
    if int(sample_rate) != int(target_sample_rate):
        data = _resampler(int(sample_rate), int(target_sample_rate))(data)
    return data.contiguous()


@functools.lru_cache(maxsize=8)
def _resampler(sample_rate: int, target_sample_rate: int) -> torch.nn.Module:
    """torchaudio's band-limited sinc resampler for one pair of rates, its kernel made once (a timeline resamples
    hundreds of windows); float32, the same samples as ``torchaudio.functional.resample`` of float32 input."""
    from torchaudio.transforms import Resample

    return Resample(sample_rate, target_sample_rate, dtype=torch.float32)


def peak_normalize(waveform: torch.Tensor, eps: float = 1e-8) -> torch.Tensor:
    """Divide by the peak absolute value (as the original's ``normalize_audio``); silent clips are returned as is.

    The original divided unconditionally, which turns a silent clip into NaNs; here a clip whose peak is below ``eps``
    is left unchanged (its audio images are then uniform, the darkest colour of the colormap).
    """
    peak = waveform.abs().max() if waveform.numel() else torch.tensor(0.0)
    if not torch.isfinite(peak):
        raise ValueError("waveform contains NaN or infinite samples")
    if peak < eps:
        logger.warning("Audio is silent (peak %.3g): skipping peak normalisation; audio images will be uniform", peak)
        return waveform
    return waveform / peak


@functools.lru_cache(maxsize=32)
def _mel_filterbank(sample_rate: int, n_fft: int, num_filters: int) -> torch.Tensor:
    """Triangular mel filters from 0 Hz to ``sample_rate / 2`` on FFT bins, exactly as the original builds them."""
    high_mel = 2595.0 * np.log10(1.0 + (sample_rate / 2.0) / 700.0)
    mel_points = np.linspace(0.0, high_mel, num_filters + 2)
    hz_points = 700.0 * (10.0 ** (mel_points / 2595.0) - 1.0)
    bins = np.floor((n_fft + 1) * hz_points / sample_rate)
    k = np.arange(n_fft // 2 + 1, dtype=np.float64)[None, :]
    left, center, right = bins[:-2, None], bins[1:-1, None], bins[2:, None]
    with np.errstate(divide="ignore", invalid="ignore"):
        rising = np.where((k >= left) & (k < center), (k - left) / (center - left), 0.0)
        falling = np.where((k >= center) & (k < right), (right - k) / (right - center), 0.0)
    return torch.from_numpy(rising + falling)  # (num_filters, n_fft // 2 + 1), float64


@functools.lru_cache(maxsize=8)
def _dct_matrix(size: int) -> torch.Tensor:
    """Orthonormal DCT-II matrix (``scipy.fftpack.dct(x, type=2, norm="ortho") == x @ D.T``)."""
    n = torch.arange(size, dtype=torch.float64)
    matrix = torch.cos(math.pi / size * (n[None, :] + 0.5) * n[:, None]) * math.sqrt(2.0 / size)
    matrix[0] /= math.sqrt(2.0)
    return matrix


def mfcc(
    signal: torch.Tensor,
    sample_rate: int,
    pre_emphasis: float = 0.97,
    frame_length_ms: float = 25.0,
    hop_length_ms: float = 10.0,
    n_fft: int = 512,
    num_mel_filters: int = 40,
    num_mfcc: int = 13,
    cepstral_lifter: float = 22.0,
) -> torch.Tensor:
    """MFCC matrix of one window, the original MultiMAE-DER formula computed with torch (in float64).

    Steps: pre-emphasis ``x[t] - 0.97 x[t-1]``; Hamming-windowed frames of ``frame_length_ms`` every
    ``hop_length_ms`` (the last frame zero-padded; ``ceil((N - frame) / hop)`` frames as in the original, at least
    one); power spectrum ``|rfft(frame, n_fft)|^2 / n_fft`` (a frame longer than ``n_fft`` is truncated, as numpy
    does); ``num_mel_filters`` triangular mel filters from 0 Hz to ``sample_rate / 2``; ``20 log10`` (zeros replaced
    by float64 eps); orthonormal DCT-II; coefficients ``1 .. num_mfcc`` (``c0`` dropped); sinusoidal lifter
    ``1 + L/2 sin(pi n / L)`` with ``n = 0 .. num_mfcc - 1``. No mean or variance normalisation.

    Departure from the original: its hop was 0.1 ms (a 13 x ~8000 matrix per window, downsampled again when drawn);
    the default here is the usual 10 ms.

    Args:
        signal (`torch.Tensor` of shape `(num_samples,)`): mono window.
        sample_rate (`int`): sampling rate of ``signal`` in Hz.

    Returns:
        `torch.Tensor` of shape `(num_frames, num_mfcc)`, float64.
    """
    x = signal.detach().to(torch.float64).reshape(-1)
    if x.numel() == 0:
        raise ValueError("cannot compute MFCC of an empty window")
    emphasized = torch.cat((x[:1], x[1:] - pre_emphasis * x[:-1]))
    frame_length = max(1, int(round(frame_length_ms / 1000.0 * sample_rate)))
    hop = max(1, int(round(hop_length_ms / 1000.0 * sample_rate)))
    length = emphasized.numel()
    num_frames = max(1, math.ceil((length - frame_length) / hop)) if length > frame_length else 1
    padded = F.pad(emphasized, (0, num_frames * hop + frame_length - length))
    frames = padded.unfold(0, frame_length, hop)[:num_frames]
    frames = frames * _hamming(frame_length)
    spectrum = torch.fft.rfft(frames, n=n_fft)
    # |X|^2 as re^2 + im^2: the same power as abs().square() (to ~1e-16), without complex abs's slow hypot
    power = (spectrum.real.square() + spectrum.imag.square()) / n_fft
    energies = power @ _mel_filterbank(int(sample_rate), int(n_fft), int(num_mel_filters)).T
    energies = torch.where(energies == 0, torch.finfo(torch.float64).eps, energies)
    cepstra = (20.0 * torch.log10(energies)) @ _dct_matrix(int(num_mel_filters))[1 : num_mfcc + 1].T
    return cepstra * _lifter(cepstra.shape[1], float(cepstral_lifter))


@functools.lru_cache(maxsize=8)
def _hamming(length: int) -> torch.Tensor:
    """The symmetric Hamming window of :func:`mfcc`'s frames (made once per length)."""
    return torch.hamming_window(length, periodic=False, dtype=torch.float64)


@functools.lru_cache(maxsize=8)
def _lifter(count: int, cepstral_lifter: float) -> torch.Tensor:
    """The sinusoidal lifter ``1 + L/2 sin(pi n / L)``, ``n = 0 .. count - 1`` (made once per shape)."""
    n = torch.arange(count, dtype=torch.float64)
    return 1.0 + (cepstral_lifter / 2.0) * torch.sin(math.pi * n / cepstral_lifter)


def log_mel(
    signal: torch.Tensor,
    sample_rate: int,
    num_mel_bins: int = 128,
    frame_length_ms: float = 25.0,
    hop_length_ms: float = 10.0,
) -> torch.Tensor:
    """Log-mel filterbank of one window, as HiCMAE / AST compute it (``torchaudio.compliance.kaldi.fbank``).

    Mean removed, Hanning window, ``num_mel_bins`` HTK mel bins from 20 Hz to ``sample_rate / 2``, natural log, no
    dither. Windows shorter than one frame are zero-padded to one frame.

    Returns:
        `torch.Tensor` of shape `(num_frames, num_mel_bins)`, float32.
    """
    from torchaudio.compliance import kaldi

    x = signal.detach().to(torch.float32).reshape(-1)
    if x.numel() == 0:
        raise ValueError("cannot compute a log-mel spectrogram of an empty window")
    x = x - x.mean()
    frame_length = int(round(frame_length_ms / 1000.0 * sample_rate))
    if x.numel() < frame_length:
        x = F.pad(x, (0, frame_length - x.numel()))
    return kaldi.fbank(
        x[None],
        sample_frequency=float(sample_rate),
        num_mel_bins=num_mel_bins,
        frame_length=frame_length_ms,
        frame_shift=hop_length_ms,
        dither=0.0,
        window_type="hanning",
        htk_compat=True,
        use_energy=False,
    )


def colorize(matrix: torch.Tensor, colormap: str = "viridis", origin: str = "lower") -> torch.Tensor:
    """Draw a ``(rows, columns)`` matrix as an RGB picture the way ``matplotlib.matshow`` does.

    Values are min-max normalised over the matrix (matplotlib's default ``Normalize``), mapped to the 256-entry
    colormap (index ``floor(256 x)`` clipped to 255, as matplotlib does) and flipped vertically when
    ``origin="lower"`` so that row 0 is at the bottom. A constant matrix (e.g. silence, up to rounding) maps to
    colour 0.

    Returns:
        `torch.Tensor` of shape `(3, rows, columns)`, uint8.
    """
    if matrix.ndim != 2:
        raise ValueError(f"matrix must be 2-D, got shape {tuple(matrix.shape)}")
    matrix = matrix.detach()
    if not bool(torch.isfinite(matrix).all()):
        raise ValueError("matrix contains NaN or infinite values")
    low, high = matrix.min(), matrix.max()
    span = high - low
    # Rounding noise on a constant matrix (the MFCC of digital silence is ~1e-14) must not be stretched to the
    # full colour range: spans of at most 1e-6 of the values' magnitude count as constant.
    constant = bool(span <= 1e-6 * max(1.0, float(low.abs()), float(high.abs())))
    scaled = torch.zeros_like(matrix) if constant else (matrix - low) / span
    index = (scaled * 256).to(torch.long).clamp_(0, 255)
    rgb = _colormap_table(colormap)[index]  # (rows, columns, 3)
    if origin == "lower":
        rgb = rgb.flip(0)
    elif origin != "upper":
        raise ValueError(f"origin must be 'lower' or 'upper', got {origin!r}")
    return rgb.permute(2, 0, 1).contiguous()


def feature_image(
    features: torch.Tensor,
    image_size: int,
    colormap: str = "viridis",
    origin: str = "lower",
    interpolation: str = "nearest",
) -> torch.Tensor:
    """One audio image: a ``(num_frames, num_features)`` matrix drawn with time on the x axis and resized.

    Args:
        features (`torch.Tensor` of shape `(num_frames, num_features)`): MFCC or log-mel matrix.
        image_size (`int`): side of the square output.
        colormap (`str`, *optional*, defaults to `"viridis"`): ``"viridis"`` or ``"gray"``.
        origin (`str`, *optional*, defaults to `"lower"`): where feature 0 is drawn, as in matplotlib.
        interpolation (`str`, *optional*, defaults to `"nearest"`): ``"nearest"`` keeps the crisp bands of the
            original's ``matshow(interpolation="nearest")``; ``"bilinear"`` smooths them (antialiased when shrinking).

    Returns:
        `torch.Tensor` of shape `(3, image_size, image_size)`, uint8.
    """
    return resize_pictures(colorize(features.T, colormap=colormap, origin=origin)[None], image_size, interpolation)[0]


def resize_pictures(pictures: torch.Tensor, image_size: int, interpolation: str = "nearest") -> torch.Tensor:
    """``(n, 3, rows, columns)`` uint8 pictures -> ``(n, 3, image_size, image_size)`` (see :func:`feature_image`)."""
    size = (image_size, image_size)
    if interpolation == "nearest":
        # nearest-exact picks whole rows and columns: selecting them is the same pixels ~20x faster than interpolate
        rows, columns = (_nearest_exact_indices(length, image_size) for length in pictures.shape[-2:])
        return pictures.index_select(-1, columns).index_select(-2, rows)
    if interpolation == "bilinear":
        return F.interpolate(pictures, size=size, mode="bilinear", align_corners=False, antialias=True)
    raise ValueError(f"interpolation must be 'nearest' or 'bilinear', got {interpolation!r}")


@functools.lru_cache(maxsize=64)
def _nearest_exact_indices(length: int, size: int) -> torch.Tensor:
    """The source index of each of ``size`` output positions when ``F.interpolate(mode="nearest-exact")`` resizes
    ``length`` positions: asked of torch itself, by resizing the positions' own numbers (exact in float32)."""
    positions = torch.arange(length, dtype=torch.float32).view(1, 1, length)
    return F.interpolate(positions, size=size, mode="nearest-exact").view(size).long()


_REPRESENTATION_ALIASES = {"mfcc": "mfcc", "log-mel": "log-mel", "log_mel": "log-mel", "logmel": "log-mel"}


@dataclass(frozen=True)
class AudioImageSettings:
    r"""
    How a waveform becomes audio pictures: the processor's audio settings in one validated group.

    Args:
        representation (`str`, *optional*, defaults to `"mfcc"`):
            ``"mfcc"`` (:func:`mfcc`, the paper's MFCC pictures) or ``"log-mel"`` (:func:`log_mel`, as HiCMAE).
        do_peak_normalize (`bool`, *optional*, defaults to `True`):
            Divide the clip's waveform by its peak first (guarded for silence, see :func:`peak_normalize`), so that
            the pictures do not depend on the recording level. This matters for ``"log-mel"`` only: its empty low mel
            bins are floored at a fixed log energy, so without it a quieter recording draws different pictures. MFCC
            pictures are the same either way (up to rounding): a gain only shifts every log mel energy of a frame
            by the same amount, which moves ``c0`` alone (dropped), and each picture is min-max scaled.
        pre_emphasis, frame_length_ms, hop_length_ms, n_fft, num_mel_filters, num_mfcc, cepstral_lifter:
            The MFCC parameters of :func:`mfcc` (frame length and hop also serve ``log-mel``).
        num_log_mel_bins (`int`, *optional*, defaults to 128):
            Mel bins of the ``"log-mel"`` representation.
        colormap (`str`, *optional*, defaults to `"viridis"`), origin (`str`, *optional*, defaults to `"lower"`),
        interpolation (`str`, *optional*, defaults to `"nearest"`):
            How the matrix is drawn, see :func:`feature_image`.
    """

    representation: str = "mfcc"
    do_peak_normalize: bool = True
    pre_emphasis: float = 0.97
    frame_length_ms: float = 25.0
    hop_length_ms: float = 10.0
    n_fft: int = 512
    num_mel_filters: int = 40
    num_mfcc: int = 13
    cepstral_lifter: float = 22.0
    num_log_mel_bins: int = 128
    colormap: str = "viridis"
    origin: str = "lower"
    interpolation: str = "nearest"

    def __post_init__(self):
        representation = _REPRESENTATION_ALIASES.get(str(self.representation).lower())
        if representation is None:
            raise ValueError(
                f"audio_representation must be one of {AUDIO_REPRESENTATIONS}, got {self.representation!r}"
            )
        object.__setattr__(self, "representation", representation)
        for name, value, allowed in (
            ("audio_colormap", self.colormap, COLORMAPS),
            ("audio_image_origin", self.origin, ("lower", "upper")),
            ("audio_image_interpolation", self.interpolation, ("nearest", "bilinear")),
        ):
            if value not in allowed:
                raise ValueError(f"{name} must be one of {allowed}, got {value!r}")

    def features(self, window: torch.Tensor, sample_rate: int) -> torch.Tensor:
        """The ``(num_frames, num_features)`` matrix of one audio window."""
        if self.representation == "mfcc":
            return mfcc(
                window,
                sample_rate,
                pre_emphasis=self.pre_emphasis,
                frame_length_ms=self.frame_length_ms,
                hop_length_ms=self.hop_length_ms,
                n_fft=self.n_fft,
                num_mel_filters=self.num_mel_filters,
                num_mfcc=self.num_mfcc,
                cepstral_lifter=self.cepstral_lifter,
            )
        return log_mel(
            window,
            sample_rate,
            num_mel_bins=self.num_log_mel_bins,
            frame_length_ms=self.frame_length_ms,
            hop_length_ms=self.hop_length_ms,
        )


def audio_images(
    waveform: torch.Tensor,
    sample_rate: int,
    num_windows: int,
    image_size: int = 224,
    settings: Optional[AudioImageSettings] = None,
    normalize: Optional[Callable[[torch.Tensor], torch.Tensor]] = None,
) -> torch.Tensor:
    """Turn a mono waveform into ``num_windows`` audio images (the ``S_i`` of the paper).

    Args:
        waveform (`torch.Tensor` of shape `(num_samples,)`): mono audio of the whole clip.
        sample_rate (`int`): its sampling rate in Hz.
        num_windows (`int`): number of images (see :func:`window_bounds`).
        image_size (`int`, *optional*, defaults to 224): side of each image.
        settings ([`AudioImageSettings`], *optional*): how the pictures are made (defaults: the paper's MFCC).
        normalize (`Callable`, *optional*): a per-pixel map of the uint8 pictures to the model's inputs (the
            processor's ``rescale_and_normalize``), applied here: before the nearest-exact enlargement, which only
            repeats pixels (the same values, on a few hundred pixels instead of 150,000 a picture); after a bilinear
            one.

    Returns:
        `torch.Tensor` of shape `(num_windows, 3, image_size, image_size)`, uint8 (float32 with ``normalize``).

    Example:

    ```python
    >>> import torch
    >>> from mmder_hf.models.multimae_der.audio_features import audio_images
    >>> wave = torch.sin(torch.linspace(0, 2000, 16000))
    >>> audio_images(wave, 16000, num_windows=8, image_size=32).shape
    torch.Size([8, 3, 32, 32])
    ```
    """
    settings = settings or AudioImageSettings()
    waveform = torch.as_tensor(waveform)
    if waveform.ndim != 1:
        raise ValueError(f"waveform must be mono, shaped (num_samples,), got {tuple(waveform.shape)}")
    if settings.do_peak_normalize:
        waveform = peak_normalize(waveform)
    pictures = [
        colorize(settings.features(window, sample_rate).T, colormap=settings.colormap, origin=settings.origin)
        for window in split_windows(waveform, num_windows)
    ]
    if normalize is not None and settings.interpolation == "nearest":  # only repeats pixels: normalise the few first
        pictures, normalize = [normalize(picture) for picture in pictures], None
    if all(picture.shape == pictures[0].shape for picture in pictures):  # resized together: one call, same pixels
        images = resize_pictures(torch.stack(pictures), image_size, settings.interpolation)
    else:
        images = torch.cat(
            [resize_pictures(picture[None], image_size, settings.interpolation) for picture in pictures]
        )
    return images if normalize is None else normalize(images)


__all__ = [
    "AUDIO_REPRESENTATIONS",
    "COLORMAPS",
    "AudioImageSettings",
    "audio_images",
    "colorize",
    "colormap_table",
    "feature_image",
    "log_mel",
    "mfcc",
    "peak_normalize",
    "prepare_waveform",
    "split_windows",
    "window_bounds",
]
