"""Model cards and Hub pushes for fine-tuned MultiMAE-DER models.

Cards are rendered from the Jinja templates in ``templates/`` (one per corpus, shipped inside this package and
found with ``importlib.resources``) with huggingface_hub's `ModelCard.from_template`; what a card states about
the corpus (name, licence, protocol, citation, tags) is read from :data:`mmder_hf.data.corpora.CORPUS_INFO`,
so model cards, dataset cards and the builders cannot disagree. The YAML metadata (licence, ``library_name``,
``pipeline_tag``, tags, datasets, ``base_model`` and a ``model-index`` with WAR and UAR per fold and their mean) is
built with `ModelCardData` and `EvalResult`. An existing ``README.md`` is updated, not overwritten: only the
block between ``<!-- mmder-hf:card:begin -->`` and ``<!-- mmder-hf:card:end -->`` is replaced, and existing tags
and datasets are kept.
"""

from __future__ import annotations

import importlib.resources
import json
import logging
import math
import os
import re
from pathlib import Path
from typing import TYPE_CHECKING, Any, Optional, Sequence, Union

from huggingface_hub import EvalResult, HfApi, ModelCard, ModelCardData

from ..data.corpora import get_corpus_info


if TYPE_CHECKING:
    try:
        from importlib.resources.abc import Traversable
    except ImportError:  # Python 3.10
        from importlib.abc import Traversable

logger = logging.getLogger(__name__)


#: Folder holding the card templates (``<corpus>.md``, ``dataset_card.md``): ``mmder_hf/cards/templates/``, a
#: package resource (a plain folder for a normal install, readable from a zip too).
MODEL_CARDS_DIR: Traversable = importlib.resources.files("mmder_hf.cards") / "templates"
BEGIN_MARKER = "<!-- mmder-hf:card:begin -->"
END_MARKER = "<!-- mmder-hf:card:end -->"

PAPER_CITATION = """@inproceedings{xiang2024multimaeder,
  author    = {Xiang, Peihao and Lin, Chaohao and Wu, Kaida and Bai, Ou},
  title     = {MultiMAE-DER: Multimodal Masked Autoencoder for Dynamic Emotion Recognition},
  booktitle = {2024 14th International Conference on Pattern Recognition Systems (ICPRS)},
  pages     = {1--7},
  year      = {2024},
  doi       = {10.1109/ICPRS62101.2024.10677820},
  eprint    = {2404.18327},
  archivePrefix = {arXiv}
}"""

VIDEOMAE_CITATION = """@inproceedings{tong2022videomae,
  title     = {VideoMAE: Masked Autoencoders are Data-Efficient Learners for Self-Supervised Video Pre-Training},
  author    = {Tong, Zhan and Song, Yibing and Wang, Jue and Wang, Limin},
  booktitle = {Advances in Neural Information Processing Systems},
  year      = {2022}
}"""


_HUB_ID = re.compile(r"^[\w.-]+/[\w.-]+$")
_NC_BACKBONE = re.compile(r"^MCG-NJU/videomae", re.IGNORECASE)


def backbone_license(base_model: Optional[str]) -> Optional[str]:
    """Licence of a backbone checkpoint: the MCG-NJU VideoMAE weights are CC BY-NC 4.0; ``None`` if unknown."""
    if not base_model:
        return None
    if _NC_BACKBONE.match(str(base_model)):
        return "cc-by-nc-4.0"
    return None


def model_license(corpus: str, base_model: Optional[str] = None, base_model_license: Optional[str] = None) -> dict:
    """Licence metadata of a model fine-tuned on ``corpus`` from ``base_model``, respecting both licences.

    Returns a dict with ``license`` (and ``license_name`` / ``license_link`` for ``other``) plus ``note``, a
    sentence for the card. Rules: RAVDESS (CC BY-NC-SA) gives ``cc-by-nc-sa-4.0`` (share-alike, non-commercial)
    whatever the backbone; IEMOCAP gives ``other`` (its release form forbids redistribution of the data and
    restricts use to research); CREMA-D (ODbL) gives ``odbl`` from a permissive or random backbone and
    ``cc-by-nc-4.0`` from a non-commercial one; the synthetic corpus keeps the backbone's licence
    (``apache-2.0`` from a random initialisation).
    """
    info = get_corpus_info(corpus)
    backbone = base_model_license or backbone_license(base_model)
    non_commercial = backbone is not None and "nc" in backbone
    if info.name == "ravdess":  # share-alike: the data's licence whatever the backbone
        meta = {"license": info.license}
    elif info.name == "iemocap":
        meta = {"license": info.license, "license_name": info.license_slug, "license_link": info.license_link}
    elif info.name == "crema_d":
        meta = {"license": "cc-by-nc-4.0" if non_commercial else info.license}
    else:
        meta = {"license": backbone or info.license}
    parts = [f"Trained on {info.pretty_name} ({info.license_name})"]
    if base_model:
        parts.append(f"from the backbone `{base_model}`" + (f" ({backbone})" if backbone else ""))
    else:
        parts.append("from a random initialisation")
    meta["note"] = (
        ", ".join(parts)
        + f": released under `{meta['license']}`"
        + (f" ({meta['license_name']})." if "license_name" in meta else ".")
    )
    return meta


# ----------------------------------------------------------------------------------------------- results
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


def _hyperparameter_table(hyperparameters: dict) -> str:
    if not hyperparameters:
        return ""
    lines = ["| setting | value |", "|---|---|"]
    lines += [f"| {k} | {v} |" for k, v in hyperparameters.items()]
    return "\n".join(lines)


# ------------------------------------------------------------------------------------------------- cards
def template_path(corpus: str, templates_dir: Union[str, os.PathLike, None] = None) -> Traversable:
    """The card template of ``corpus``: ``<templates_dir>/<corpus>.md``, by default the packaged one.

    The packaged template is a resource (:data:`MODEL_CARDS_DIR`), a `Path` for a normal install; read it with
    ``read_text`` (or ``importlib.resources.as_file`` where a real file is needed).
    """
    path = (Path(templates_dir) if templates_dir else MODEL_CARDS_DIR) / f"{corpus}.md"
    if not path.is_file():
        raise FileNotFoundError(f"No model card template for {corpus!r} at {path}")
    return path


def completed_processor_settings(settings: Optional[dict], config: Any = None) -> dict:
    """A processor's saved settings (``preprocessor_config.json``) completed with the processor's defaults, or
    without saved settings the defaults for ``config``'s strategy, clip length and frame size."""
    from ..models.multimae_der import MultiMAEDERProcessor

    defaults = MultiMAEDERProcessor().to_dict()
    if not settings and config is not None:
        settings = {
            k: getattr(config, k) for k in ("fusion_strategy", "num_frames", "image_size") if hasattr(config, k)
        }
    return {**defaults, **{k: v for k, v in (settings or {}).items() if k in defaults}}


def describe_preprocessing(settings: Optional[dict]) -> str:
    """What the model reads, in words, from a processor's saved settings (``preprocessor_config.json``)."""
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


def render_model_card(
    corpus: str,
    model_id: str,
    fold_results: dict[int, dict],
    config: Any = None,
    base_model: Optional[str] = None,
    dataset_id: Optional[str] = None,
    label_names: Optional[Sequence[str]] = None,
    recipe: Optional[str] = None,
    recipe_description: str = "",
    hyperparameters: Optional[dict] = None,
    fold: Optional[int] = None,
    label_set: Optional[str] = None,
    confusion_matrix_file: Optional[str] = None,
    extra_tags: Sequence[str] = (),
    templates_dir: Union[str, os.PathLike, None] = None,
    widget: Optional[list] = None,
    processor_settings: Optional[dict] = None,
    splits: Optional[dict] = None,
    **template_kwargs,
) -> ModelCard:
    """Render the card of a model (one fold) or of a cross-validation (several folds) from its template.

    Args:
        corpus (`str`): ``ravdess``, ``crema_d``, ``iemocap`` or ``synthetic``; picks the template.
        model_id (`str`): Hub id (``user/multimae-der-ravdess``) or name shown in the usage code.
        fold_results (`dict[int, dict]`): test metrics per fold as `Trainer` saves them (``test_war``, ``test_uar``).
        config (`MultiMAEDERConfig`, *optional*): fills the architecture, fusion strategy and labels.
        base_model (`str`, *optional*): backbone the model was fine-tuned from (``None``: random initialisation).
        dataset_id (`str`, *optional*): Hub dataset id of the training data (metadata ``datasets``).
        recipe / recipe_description / hyperparameters: the training recipe, shown in the card.
        confusion_matrix_file (`str`, *optional*): file name of the confusion-matrix PNG in the repository.
        splits (`dict`, *optional*): ``split -> (clips, actor ids)`` of the data used, stated in the card.
        processor_settings (`dict`, *optional*): the saved ``preprocessor_config.json``; the card's description of
            the inputs is rendered from it (defaults: the processor's defaults for ``config``).
        widget (`list[dict]`, *optional*): example clips with precomputed outputs
            (:func:`mmder_hf.widget.widget_examples`); the hosted widget cannot run custom code, so they are shown
            as they are.
        **template_kwargs: more variables for the template.
    """
    info = get_corpus_info(corpus)
    corpus = info.name
    licence = model_license(corpus, base_model)
    inputs = completed_processor_settings(processor_settings, config)
    if label_names is None and config is not None and getattr(config, "id2label", None):
        label_names = [config.id2label[i] for i in sorted(config.id2label)]
    strategy = getattr(config, "fusion_strategy", None)
    tags = ["multimae-der", "videomae", "emotion-recognition", "audio-visual", "video-classification", "mmder-hf"]
    tags += list(info.tags) + ([f"fusion-{strategy.lower()}"] if strategy else []) + list(extra_tags)
    if dataset_id and (os.path.exists(str(dataset_id)) or not _HUB_ID.match(str(dataset_id))):
        dataset_id = None  # a local folder is no dataset id
    # the model-index names the Hub dataset the run read, or the corpus by name: never a made-up repo id
    dataset_type = dataset_id or corpus
    card_data = ModelCardData(
        model_name=model_id.split("/")[-1],
        license=licence["license"],
        license_name=licence.get("license_name"),
        license_link=licence.get("license_link"),
        library_name="transformers",
        pipeline_tag="video-classification",
        tags=list(dict.fromkeys(tags)),
        datasets=[dataset_id] if dataset_id else None,
        base_model=base_model if base_model and not os.path.isdir(str(base_model)) else None,
        metrics=["war", "uar"],
        eval_results=eval_results(fold_results, dataset_type, info.pretty_name) or None,
        widget=widget or None,
    )
    folds = sorted(fold_results)
    single = fold_results[folds[0]] if len(folds) == 1 else {}
    context = {
        "model_id": model_id,
        "corpus": corpus,
        "corpus_pretty": info.pretty_name,
        "dataset_id": dataset_id,
        "data_license_name": info.license_name,
        "license": licence["license"],
        "license_note": licence["note"],
        "protocol": info.protocol,
        "fold": fold if fold is not None else (folds[0] if len(folds) == 1 else None),
        "folds": folds,
        "num_folds": len(folds),
        "label_set": label_set,
        "label_names": list(label_names or []),
        "fusion_strategy": strategy,
        "num_frames": getattr(config, "num_frames", None),
        "image_size": getattr(config, "image_size", None),
        "hidden_size": getattr(config, "hidden_size", None),
        "num_hidden_layers": getattr(config, "num_hidden_layers", None),
        "num_video_frames": getattr(config, "num_video_frames", None),
        "num_audio_frames": getattr(config, "num_audio_frames", None),
        "base_model": base_model,
        "recipe": recipe,
        "recipe_description": recipe_description,
        "hyperparameters_table": _hyperparameter_table(hyperparameters or {}),
        "results_table": results_table(fold_results) if fold_results else "",
        "test_war": _finite(single.get("test_war")),
        "test_uar": _finite(single.get("test_uar")),
        "eval_war": _finite(single.get("eval_war")),
        "eval_uar": _finite(single.get("eval_uar")),
        "confusion_matrix_file": confusion_matrix_file,
        "preprocessing": describe_preprocessing(inputs),
        "audio_pictures": "MFCC images" if inputs["audio_representation"] == "mfcc" else "log-mel images",
        "face_crop": bool(inputs["face_crop"]),
        "face_crop_note": info.face_crop_note or "",
        "data_splits": describe_splits(
            corpus, splits, fold if fold is not None else (folds[0] if len(folds) == 1 else None)
        ),
        "paper_reference": paper_reference(corpus, strategy),
        "paper_citation": PAPER_CITATION,
        "videomae_citation": VIDEOMAE_CITATION,
        "dataset_citation": info.citation,
        "begin_marker": BEGIN_MARKER,
        "end_marker": END_MARKER,
        **template_kwargs,
    }
    template = template_path(corpus, templates_dir).read_text(encoding="utf-8")
    return ModelCard.from_template(card_data, template_str=template, **context)


def _merge_list(old: Any, new: Any) -> Optional[list]:
    def as_list(value: Any) -> list:
        return [value] if isinstance(value, str) else list(value or [])

    return list(dict.fromkeys(as_list(old) + as_list(new))) or None


def update_model_card(path: Union[str, os.PathLike], card: ModelCard) -> ModelCard:
    """Write ``card`` to ``path``; if a README is there, keep its own text and tags and replace only our block.

    The rendered text between :data:`BEGIN_MARKER` and :data:`END_MARKER` replaces the same block of the existing
    card (appended when the existing card has none); metadata is the new card's, with the union of both cards'
    ``tags`` and ``datasets``.
    """
    path = Path(path)
    if path.is_file():
        old = ModelCard.load(path)
        new_data = card.data.to_dict()
        for key in ("tags", "datasets"):
            merged = _merge_list(old.data.to_dict().get(key), new_data.get(key))
            if merged:
                setattr(card.data, key, merged)
        for key, value in old.data.to_dict().items():
            if key not in new_data or new_data[key] is None:
                setattr(card.data, key, value)
        block = _block(card.text)
        if BEGIN_MARKER in old.text and END_MARKER in old.text:
            head, rest = old.text.split(BEGIN_MARKER, 1)
            tail = rest.split(END_MARKER, 1)[1]
            text = head + block + tail
        else:
            text = old.text.rstrip() + "\n\n" + block + "\n"
        card = ModelCard(f"---\n{card.data.to_yaml()}\n---\n{text}")
    path.parent.mkdir(parents=True, exist_ok=True)
    card.save(path)
    return card


def _block(text: str) -> str:
    if BEGIN_MARKER in text and END_MARKER in text:
        return BEGIN_MARKER + text.split(BEGIN_MARKER, 1)[1].split(END_MARKER, 1)[0] + END_MARKER
    return f"{BEGIN_MARKER}\n{text.strip()}\n{END_MARKER}"


def load_results(output_dir: Union[str, os.PathLike]) -> dict:
    """The metrics `Trainer` saved in ``output_dir`` (``all_results.json``, else eval/test result files)."""
    output_dir = Path(output_dir)
    results: dict = {}
    for name in ("eval_results.json", "test_results.json", "all_results.json"):
        if (output_dir / name).is_file():
            results.update(json.loads((output_dir / name).read_text()))
    return results


def write_model_card(
    output_dir: Union[str, os.PathLike],
    corpus: str,
    model_id: Optional[str] = None,
    fold: Optional[int] = None,
    results: Optional[dict] = None,
    config: Any = None,
    **kwargs,
) -> Path:
    """Render and write (or update) ``output_dir/README.md`` for a single-fold run from its saved metrics."""
    output_dir = Path(output_dir)
    results = results if results is not None else load_results(output_dir)
    if config is None and (output_dir / "config.json").is_file():
        from ..models.multimae_der import MultiMAEDERConfig

        config = MultiMAEDERConfig.from_pretrained(output_dir)
    if "confusion_matrix_file" not in kwargs and (output_dir / "confusion_matrix.png").is_file():
        kwargs["confusion_matrix_file"] = "confusion_matrix.png"
    if "processor_settings" not in kwargs and (output_dir / "preprocessor_config.json").is_file():
        kwargs["processor_settings"] = json.loads((output_dir / "preprocessor_config.json").read_text())
    card = render_model_card(
        corpus, model_id or output_dir.resolve().name, {fold or 1: results}, config=config, fold=fold, **kwargs
    )
    path = output_dir / "README.md"
    update_model_card(path, card)
    logger.info("Model card written to %s", path)
    return path


def write_pretraining_card(
    output_dir: Union[str, os.PathLike],
    config: Any,
    model_id: str,
    data_description: str,
    train_clips: Any,
    eval_clips: Optional[int],
    mask_description: str,
    target_description: str,
    corpus: Optional[str] = None,
    dataset_id: Optional[str] = None,
    base_model: Optional[str] = None,
    hyperparameters: Optional[dict] = None,
    losses: Optional[dict] = None,
    **template_kwargs,
) -> Path:
    """Render ``templates/pretraining.md`` into ``output_dir/README.md`` (updating an existing card).

    ``corpus`` names the corpus whose training actors were read (its licence then applies); ``None`` for a folder of
    videos or a Hub dataset, whose licence the card cannot know. ``losses`` holds ``train_loss``, ``eval_loss``, their
    ``_video`` / ``_audio`` parts and ``initial_eval_loss``; pictures in ``output_dir`` are linked when present.
    """
    output_dir = Path(output_dir)
    if corpus is not None:
        licence = model_license(corpus, base_model)
    else:
        licence = {
            "license": "other",
            "license_name": "pretraining-data-licence",  # no link: the card cannot know the videos' licences
            "note": "The licences of the pre-training videos (and of the initial weights, if any) apply; "
            "the model card cannot know them.",
        }
    if dataset_id and (os.path.exists(str(dataset_id)) or not _HUB_ID.match(str(dataset_id))):
        dataset_id = None
    tags = ["multimae-der", "videomae", "masked-autoencoder", "self-supervised", "audio-visual", "mmder-hf"]
    tags.append(f"fusion-{config.fusion_strategy.lower()}")
    card_data = ModelCardData(
        model_name=model_id.split("/")[-1],
        license=licence["license"],
        license_name=licence.get("license_name"),
        license_link=licence.get("license_link"),
        library_name="transformers",
        tags=tags,
        datasets=[dataset_id] if dataset_id else None,
        base_model=base_model if base_model and not os.path.isdir(str(base_model)) else None,
    )
    saved = output_dir / "preprocessor_config.json"
    settings = completed_processor_settings(json.loads(saved.read_text()) if saved.is_file() else None, config)
    losses = {k: _finite(v) for k, v in (losses or {}).items()}
    context = {
        "model_id": model_id,
        "license": licence["license"],
        "license_note": licence["note"],
        "base_model": base_model,
        "data_description": data_description,
        "train_clips": train_clips,
        "eval_clips": eval_clips,
        "mask_description": mask_description,
        "target_description": target_description,
        "preprocessing": describe_preprocessing(settings),
        "hyperparameters_table": _hyperparameter_table(hyperparameters or {}),
        "fmt": lambda v: "" if v is None else f"{v:.4f}",
        "loss_curve_file": "loss_curve.png" if (output_dir / "loss_curve.png").is_file() else None,
        "reconstructions_file": "reconstructions.png" if (output_dir / "reconstructions.png").is_file() else None,
        "paper_citation": PAPER_CITATION,
        "videomae_citation": VIDEOMAE_CITATION,
        "begin_marker": BEGIN_MARKER,
        "end_marker": END_MARKER,
        **{k: getattr(config, k) for k in ("fusion_strategy", "num_frames", "image_size", "hidden_size")},
        **{k: getattr(config, k) for k in ("num_hidden_layers", "decoder_hidden_size", "decoder_num_hidden_layers")},
        "num_video_frames": config.num_video_frames,
        "num_audio_frames": config.num_audio_frames,
        **{k: losses.get(k) for k in ("train_loss", "train_loss_video", "train_loss_audio", "initial_eval_loss")},
        **{k: losses.get(k) for k in ("eval_loss", "eval_loss_video", "eval_loss_audio")},
        **template_kwargs,
    }
    template = template_path("pretraining").read_text(encoding="utf-8")
    card = ModelCard.from_template(card_data, template_str=template, **context)
    path = output_dir / "README.md"
    update_model_card(path, card)
    logger.info("Pre-training model card written to %s", path)
    return path


# ------------------------------------------------------------------------------------------------- push
#: What `push_folder` leaves out, as ``upload_folder(ignore_patterns=...)``: fnmatch patterns on each file's path
#: relative to the folder, where ``*`` also matches ``/`` (huggingface_hub's ``filter_repo_objects``). Private files
#: and folders (``_*``) and Trainer checkpoints (``checkpoint-*``), at the top or deeper (a fold's ``checkpoint-8/``);
#: TensorBoard logs (``runs/``); ``.pt`` files (optimizer and scheduler states); a half-written trainer state.
PUSH_IGNORE_PATTERNS = ["_*", "*/_*", "checkpoint-*", "*/checkpoint-*", "runs/*", "*.pt", "trainer_state.json.tmp"]


def push_folder(
    folder: Union[str, os.PathLike],
    repo_id: str,
    commit_message: str = "Upload MultiMAE-DER model",
    private: Optional[bool] = None,
    token: Optional[str] = None,
    path_in_repo: Optional[str] = None,
    revision: Optional[str] = None,
    ignore_patterns: Sequence[str] = (),
):
    """Create ``repo_id`` if needed and upload ``folder`` (model, code files, processor, card, metrics, PNGs).

    Checkpoint folders and private files (``_*``) are left out, as `Trainer.push_to_hub` does, and so are TensorBoard
    ``runs/`` and ``.pt`` files (:data:`PUSH_IGNORE_PATTERNS`), plus ``ignore_patterns`` (same fnmatch semantics).
    """
    api = HfApi(token=token)
    repo_url = api.create_repo(repo_id, private=private, exist_ok=True, repo_type="model")
    return api.upload_folder(
        repo_id=repo_url.repo_id,
        folder_path=str(folder),
        path_in_repo=path_in_repo,
        commit_message=commit_message,
        ignore_patterns=PUSH_IGNORE_PATTERNS + list(ignore_patterns),
        revision=revision,
    )


__all__ = [
    "BEGIN_MARKER",
    "END_MARKER",
    "MODEL_CARDS_DIR",
    "PAPER_CITATION",
    "backbone_license",
    "describe_preprocessing",
    "describe_splits",
    "eval_results",
    "load_results",
    "mean_std",
    "model_license",
    "push_folder",
    "render_model_card",
    "results_table",
    "template_path",
    "update_model_card",
    "write_model_card",
    "write_pretraining_card",
]
