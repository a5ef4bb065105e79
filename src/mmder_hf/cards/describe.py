"""What a card says in words and tables: results per fold, the model-index entries, the inputs the model reads, the
data splits, the paper's reference number and the settings table. Pure functions of their arguments."""

from __future__ import annotations

import math
from typing import Any, Optional, Sequence

from huggingface_hub import EvalResult

from ..data.corpora import get_corpus_info


def _finite(value: Any) -> Optional[float]:
    try:
        value = float(value)
    except (TypeError, ValueError):
        return None
    return value if math.isfinite(value) else None


def mean_std(values: Sequence[float]) -> tuple[float, float]:
    """Mean and population standard deviation (``ddof=0``) of ``values``."""
    values = [float(v) for v in values]
    mean = sum(values) / len(values)
    return mean, math.sqrt(sum((v - mean) ** 2 for v in values) / len(values))


def results_table(fold_results: dict[int, dict], prefix: str = "test") -> str:
    """Markdown table of WAR / UAR (%) per fold and their mean ± std, from ``{fold: metrics}``."""
    lines = ["| fold | WAR (%) | UAR (%) |", "|---|---|---|"]
    wars, uars = [], []
    for fold in sorted(fold_results):
        metrics = fold_results[fold]
        war, uar = _finite(metrics.get(f"{prefix}_war")), _finite(metrics.get(f"{prefix}_uar"))
        if war is None or uar is None:
            lines.append(f"| {fold} | - | - |")
            continue
        lines.append(f"| {fold} | {war * 100:.2f} | {uar * 100:.2f} |")
        wars.append(war)
        uars.append(uar)
    if len(wars) > 1:
        (mw, sw), (mu, su) = mean_std(wars), mean_std(uars)
        mean_war, mean_uar = f"**{mw * 100:.2f} ± {sw * 100:.2f}**", f"**{mu * 100:.2f} ± {su * 100:.2f}**"
        lines.append(f"| **mean ± std** | {mean_war} | {mean_uar} |")
    return "\n".join(lines)


def eval_results(
    fold_results: dict[int, dict], dataset_type: str, dataset_name: str, prefix: str = "test"
) -> list[EvalResult]:
    """`EvalResult` entries (model-index) for WAR and UAR on each fold's test split, plus their mean."""
    out = []
    wars, uars = [], []

    def result(key: str, config: str, name: str, value: float) -> EvalResult:
        return EvalResult(
            task_type="video-classification",
            task_name="Audio-visual emotion recognition",
            dataset_type=dataset_type,
            dataset_name=dataset_name,
            dataset_config=config,
            dataset_split=prefix,
            metric_type=key,
            metric_name=name,
            metric_value=round(value, 4),
        )

    for fold in sorted(fold_results):
        metrics = fold_results[fold]
        for key, label, bucket in (("war", "WAR", wars), ("uar", "UAR", uars)):
            value = _finite(metrics.get(f"{prefix}_{key}"))
            if value is None:
                continue
            bucket.append(value)
            out.append(result(key, f"fold{fold}", f"{label} (fold {fold})", value))
    if len(fold_results) > 1 and wars and uars:
        for key, label, bucket in (("war", "WAR", wars), ("uar", "UAR", uars)):
            name = f"{label} (mean of {len(bucket)} folds)"
            out.append(result(key, f"mean-of-{len(bucket)}-folds", name, mean_std(bucket)[0]))
    return out


def _cell(value: Any) -> str:
    """One settings-table cell: lists joined with commas, whole numbers as they are, ``|`` escaped."""
    if isinstance(value, (list, tuple, set)):
        value = ", ".join(str(v) for v in value)
    elif isinstance(value, dict):
        value = ", ".join(f"{k}={v}" for k, v in value.items())
    return str(value).replace("|", "\\|").replace("\n", " ")


def hyperparameter_table(hyperparameters: dict) -> str:
    """Markdown ``| setting | value |`` table of a run's settings, whatever they are (LoRA's rank, target modules and
    trainable parameters included); ``""`` without any."""
    if not hyperparameters:
        return ""
    lines = ["| setting | value |", "|---|---|"]
    lines += [f"| {_cell(k)} | {_cell(v)} |" for k, v in hyperparameters.items()]
    return "\n".join(lines)


def flat_processor_settings(settings: Optional[dict]) -> dict:
    """A processor's settings as one flat dict: a saved ``processor_config.json`` (parts nested) is flattened by the
    processor's own reader; flat settings (a ``preprocessor_config.json``, or settings given by hand) are kept."""
    from ..models.multimae_der.processing_multimae_der import flat_processor_settings as flatten

    settings = dict(settings or {})
    if isinstance(settings.get("video_processor"), dict) or isinstance(settings.get("feature_extractor"), dict):
        return flatten({"processor_class": "MultiMAEDERProcessor", **settings})
    return settings


def completed_processor_settings(settings: Optional[dict], config: Any = None) -> dict:
    """A processor's saved settings completed with the processor's defaults, or without saved settings the defaults
    for ``config``'s strategy, clip length and frame size."""
    from ..models.multimae_der import MultiMAEDERProcessor

    defaults = flat_processor_settings(MultiMAEDERProcessor().to_dict())
    settings = flat_processor_settings(settings)
    if not settings and config is not None:
        settings = {
            k: getattr(config, k) for k in ("fusion_strategy", "num_frames", "image_size") if hasattr(config, k)
        }
    return {**defaults, **{k: v for k, v in settings.items() if k in defaults}}


def describe_preprocessing(settings: Optional[dict]) -> str:
    """What the model reads, in words, from a processor's saved settings (``processor_config.json``)."""
    from ..models.multimae_der.fusion import frames_per_modality

    p = completed_processor_settings(settings)
    n_video, n_audio = frames_per_modality(p["fusion_strategy"], p["num_frames"])
    size = p["image_size"]
    parts = []
    if n_video:
        if p["frame_sampling"] == "aligned":
            sampling = "at the centres of the audio windows" if n_audio else "evenly over the clip"
        else:
            sampling = f"every {p['original_frame_stride'] or max(1, 48 // n_video)}th frame from the first"
        if p.get("face_crop"):
            align = ", rotated upright" if p.get("face_align") else ""
            resize = (
                f"each cropped to a square around the clip's tracked main face (margin {p['face_margin']:g} of the "
                f"face box per side{align}; whole frames when no face is found) and resized to {size} x {size}"
            )
        else:
            resize = f"resized to {size} x {size} (aspect ratio not kept, no face crop)"
        parts.append(f"{n_video} video frame(s) sampled {sampling}, {resize}")
    if n_audio:
        if p["audio_representation"] == "mfcc":
            picture = (
                f"an MFCC picture (coefficients 1-{p['num_mfcc']} of {p['num_mel_filters']} mel filters, "
                f"pre-emphasis {p['pre_emphasis']}, lifter {p['cepstral_lifter']}"
            )
        else:
            picture = f"a log-mel picture ({p['num_log_mel_bins']} Kaldi mel bins"
        picture += (
            f", {p['frame_length_ms']:g} ms frames every {p['hop_length_ms']:g} ms, {p['audio_colormap']}, "
            f"{size} x {size})"
        )
        normalise = ", peak-normalised" if p["do_peak_normalize"] else ""
        parts.append(
            f"audio downmixed to mono, resampled to {p['audio_sample_rate']} Hz{normalise}, cut into {n_audio} "
            f"overlapping windows, each drawn as {picture}"
        )
    mean = ", ".join(f"{v:g}" for v in p["image_mean"])
    std = ", ".join(f"{v:g}" for v in p["image_std"])
    parts.append(f"pixels scaled to [0, 1] and normalised with mean ({mean}), std ({std})")
    return "; ".join(parts) + "."


def describe_splits(corpus: str, splits: Optional[dict], fold: Optional[int] = None) -> str:
    """``train: 432 clips of 18 actors (3, 4, ...); ...`` for the card, with the standard fold's actors that the
    source lacked and how the peers' splits differ."""
    if not splits:
        return ""
    parts = []
    for split in ("train", "validation", "test"):
        if split in splits:
            clips, actors = splits[split]
            count = f"{clips} clips of " if clips is not None else ""
            parts.append(f"{split}: {count}{len(actors)} actors ({', '.join(str(a) for a in actors)})")
    text = "; ".join(parts) + "."
    if fold is not None and corpus in ("ravdess", "crema_d", "iemocap"):
        from ..data.folds import missing_actors

        present = [a for _, actors in splits.values() for a in actors]
        absent = missing_actors(corpus, fold, present)
        if absent:
            listed = "; ".join(f"{split} {', '.join(map(str, actors))}" for split, actors in absent.items())
            text += f" **Smaller than the standard fold {fold}**: the source lacked actors ({listed})."
    if corpus == "ravdess" and "validation" in splits:
        text += (
            " HiCMAE and MAE-DFER train on 20 actors per fold (no validation actors); here 2 of them validate, so"
            " the model trains on 18."
        )
    return text


def paper_reference(corpus: str, strategy: Optional[str] = None) -> str:
    """The paper's number for ``strategy`` (default FSLF) on ``corpus``, with its protocol; ``""`` when none."""
    published = get_corpus_info(corpus).published
    if published is None:
        return ""
    model = strategy if strategy in published.results else "FSLF"
    uar, war = published.results[model]
    figures = f"{war:.2f} WAR" + (f" / {uar:.2f} UAR" if uar is not None else "")
    return (
        f"For reference, the paper reports {figures} ({model}, {published.label_set}) on "
        f"{get_corpus_info(corpus).pretty_name} ({published.protocol}) with {published.backbone}; numbers from "
        "different protocols are not comparable."
    )


__all__ = [
    "completed_processor_settings",
    "describe_preprocessing",
    "describe_splits",
    "eval_results",
    "flat_processor_settings",
    "hyperparameter_table",
    "mean_std",
    "paper_reference",
    "results_table",
]
