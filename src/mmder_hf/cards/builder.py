"""The one card builder: metadata, templates and the checks every card of this project goes through.

Fine-tuning, cross-validation, pre-training and strategy-comparison cards are all made here: :func:`card_metadata`
fills `ModelCardData` by the same rules (the licence from the data's and the backbone's, ``base_model`` and
``datasets`` only as Hub ids, the ``custom_code`` tag for repositories that ship code), :func:`build_card` renders a
template of ``templates/`` with the shared context (citations, the markers of our block) and checks the metadata
(:func:`mmder_hf.cards.metadata.validate_card_metadata`) before anything is written.
"""

from __future__ import annotations

import importlib.resources
import os
import re
import textwrap
from pathlib import Path
from typing import TYPE_CHECKING, Any, Optional, Sequence, Union

from huggingface_hub import EvalResult, ModelCard, ModelCardData

from ..data.corpora import CORPORA, get_corpus_info
from .metadata import CUSTOM_CODE_TAG, PIPELINE_TAG, CardKind, hub_base_model, hub_dataset_id, validate_card_metadata


if TYPE_CHECKING:
    try:
        from importlib.resources.abc import Traversable
    except ImportError:  # Python 3.10
        from importlib.abc import Traversable


#: Folder holding the card templates (``model_card.md`` for every corpus, ``pretraining.md``, ``comparison.md``,
#: ``dataset_card.md``): ``mmder_hf/cards/templates/``, a package resource (a plain folder for a normal install).
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

#: The risk every emotion recogniser carries, whatever its data (the last bullet of each card's bias section).
EMOTION_RECOGNITION_RISKS = (
    "Emotion recognition from faces and voices is contested science and is regulated or banned in some settings "
    "(e.g. workplaces and schools under the EU AI Act). Do not use this model to make decisions about people "
    "(hiring, policing, education, health, credit) or for surveillance."
)

#: The file a card tells its reader the processor's settings are in (transformers v5: both parts nested).
PROCESSOR_FILE = "processor_config.json"


# ------------------------------------------------------------------------------------------------ licences
def backbone_license(base_model: Optional[str]) -> Optional[str]:
    """Licence of a backbone checkpoint: the MCG-NJU VideoMAE weights are CC BY-NC 4.0; ``None`` if unknown."""
    if not base_model:
        return None
    return "cc-by-nc-4.0" if str(base_model).lower().startswith("mcg-nju/videomae") else None


def model_license(
    corpus: Optional[str], base_model: Optional[str] = None, base_model_license: Optional[str] = None
) -> dict:
    """Licence metadata of a model trained on ``corpus`` from ``base_model``, respecting both licences.

    Returns a dict with ``license`` (and ``license_name`` / ``license_link`` for ``other``) plus ``note``, a
    sentence for the card. Rules: RAVDESS (CC BY-NC-SA) gives ``cc-by-nc-sa-4.0`` (share-alike, non-commercial)
    whatever the backbone; IEMOCAP gives ``other`` (its release form forbids redistribution of the data and
    restricts use to research); CREMA-D (ODbL) gives ``odbl`` from a permissive or random backbone and
    ``cc-by-nc-4.0`` from a non-commercial one; the synthetic corpus keeps the backbone's licence
    (``apache-2.0`` from a random initialisation). ``corpus=None`` (videos of unknown licence, e.g. for
    pre-training) gives ``unknown``: the card cannot know them.
    """
    backbone = base_model_license or backbone_license(base_model)
    if corpus is None:
        note = "The licences of the pre-training videos apply (the model card cannot know them)"
        if base_model:
            note += f", and so does the licence of the initial weights `{base_model}`" + (
                f" ({backbone})" if backbone else ""
            )
        return {"license": "unknown", "note": note + "."}
    info = get_corpus_info(corpus)
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


# ------------------------------------------------------------------------------------------------ inputs
def saved_processor_settings(output_dir: Union[str, os.PathLike]) -> Optional[dict]:
    """The flat settings of the processor saved in ``output_dir`` (``processor_config.json``, or the
    ``preprocessor_config.json`` of checkpoints saved before), ``None`` without one."""
    from ..models.multimae_der import saved_processor_settings as read_settings

    try:
        return read_settings(output_dir)
    except OSError:
        return None


def template_path(name: str, templates_dir: Union[str, os.PathLike, None] = None) -> Traversable:
    """The template ``name`` (``model_card``, ``pretraining``, ``comparison``, or a corpus name).

    Without ``templates_dir``, the packaged template; a corpus name gives ``model_card.md``, the one template of every
    corpus. With ``templates_dir``, ``<templates_dir>/<name>.md`` (a template of one's own, per corpus if wanted).
    """
    if templates_dir:
        path = Path(templates_dir) / f"{name}.md"
    else:
        known = name in CORPORA or name == "synthetic"
        path = MODEL_CARDS_DIR / f"{'model_card' if known else name}.md"
    if not path.is_file():
        raise FileNotFoundError(f"No card template {name!r} at {path}")
    return path


def bullets(items: Sequence[str], width: int = 116) -> str:
    """A markdown list, each item wrapped at ``width`` with a two-space indent (how the templates are written)."""
    wrap = dict(width=width, subsequent_indent="  ", break_long_words=False, break_on_hyphens=False)
    return "\n".join(textwrap.fill(item, initial_indent="- ", **wrap) for item in items)


def paragraph(text: str, width: int = 116) -> str:
    """``text`` wrapped at ``width`` (``""`` stays ``""``)."""
    return textwrap.fill(text, width=width, break_long_words=False, break_on_hyphens=False)


def quote(text: str, width: int = 116) -> str:
    """``text`` as a markdown block quote wrapped at ``width``."""
    return textwrap.fill(text, width=width, initial_indent="> ", subsequent_indent="> ", break_long_words=False)


# ------------------------------------------------------------------------------------------------ the builder
def card_metadata(
    kind: CardKind,
    model_name: Optional[str],
    licence: dict,
    tags: Sequence[str],
    dataset_id: Any = None,
    base_model: Any = None,
    eval_results: Optional[list[EvalResult]] = None,
    widget: Optional[list] = None,
    metrics: Optional[list[str]] = None,
) -> ModelCardData:
    """`ModelCardData` of a card of ``kind``, by the rules every card follows: ``datasets`` and ``base_model`` only
    as Hub ids (:func:`~mmder_hf.cards.metadata.hub_dataset_id`), the ``custom_code`` tag and ``library_name:
    transformers`` for repositories that ship the model's code, ``pipeline_tag: video-classification`` for
    classifiers, tags listed once in their order."""
    dataset = hub_dataset_id(dataset_id)
    ships_code = kind != "comparison"
    return ModelCardData(
        model_name=model_name,
        license=licence["license"],
        license_name=licence.get("license_name"),
        license_link=licence.get("license_link"),
        library_name="transformers",
        pipeline_tag=PIPELINE_TAG if kind == "classifier" else None,
        tags=list(dict.fromkeys([*tags, *([CUSTOM_CODE_TAG] if ships_code else [])])),
        datasets=[dataset] if dataset else None,
        base_model=hub_base_model(base_model),
        metrics=metrics,
        eval_results=eval_results or None,
        widget=widget or None,
    )


def build_card(
    kind: CardKind,
    data: ModelCardData,
    template: str,
    templates_dir: Union[str, os.PathLike, None] = None,
    **context: Any,
) -> ModelCard:
    """Render the template ``template`` with ``data`` and ``context`` (plus the citations and our block's markers),
    then check its metadata (raises :class:`~mmder_hf.cards.metadata.CardMetadataError`)."""
    shared = {
        "paper_citation": PAPER_CITATION,
        "videomae_citation": VIDEOMAE_CITATION,
        "begin_marker": BEGIN_MARKER,
        "end_marker": END_MARKER,
        "processor_file": PROCESSOR_FILE,
    }
    text = template_path(template, templates_dir).read_text(encoding="utf-8")
    card = ModelCard.from_template(data, template_str=text, **{**shared, **context})
    card = ModelCard(re.sub(r"\n{3,}", "\n\n", str(card)))  # optional parts left out leave no gaps
    validate_card_metadata(card, kind)
    return card


__all__ = [
    "BEGIN_MARKER",
    "EMOTION_RECOGNITION_RISKS",
    "END_MARKER",
    "MODEL_CARDS_DIR",
    "PAPER_CITATION",
    "PROCESSOR_FILE",
    "VIDEOMAE_CITATION",
    "backbone_license",
    "build_card",
    "bullets",
    "card_metadata",
    "model_license",
    "paragraph",
    "quote",
    "saved_processor_settings",
    "template_path",
]
