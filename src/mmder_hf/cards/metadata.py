"""What a card's YAML metadata must hold, checked offline, and the one rule for which names go into it.

`ModelCard.validate` asks the Hub (it needs the network); :func:`check_card_metadata` checks the same kind of thing
here, through huggingface_hub's public parsing (`ModelCard`, `ModelCardData`, `EvalResult`, `metadata_load`): the
licence (with ``license_name`` / ``license_link`` for ``other``), ``library_name``, ``pipeline_tag:
video-classification`` and the ``custom_code`` tag (the Hub's "Use this model" snippet then adds
``trust_remote_code=True``), ``base_model`` and ``datasets`` as Hub ids, and a well-formed ``model-index`` (known
metric types, finite values). The card builder runs it on every card before writing it.
"""

from __future__ import annotations

import math
import os
import re
from pathlib import Path
from typing import Any, Literal, Optional, Union

from huggingface_hub import ModelCard, metadata_load
from huggingface_hub.errors import HFValidationError
from huggingface_hub.utils import validate_repo_id

from ..data.sources import is_hub_repo_id


#: What a card is of: a classifier (fine-tuning, cross-validation), a pre-trained masked autoencoder (both ship code
#: and load with ``trust_remote_code``), or a strategy comparison (a summary repo: tables and charts, no model).
CardKind = Literal["classifier", "pretraining", "comparison"]

#: Licence ids the Hub knows (https://hf.co/docs/hub/repositories-licenses); ``other`` needs a name and a link.
HUB_LICENSES = frozenset(
    """apache-2.0 mit openrail bigscience-openrail-m creativeml-openrail-m bigscience-bloom-rail-1.0 bigcode-openrail-m
    afl-3.0 artistic-2.0 bsl-1.0 bsd bsd-2-clause bsd-3-clause bsd-3-clause-clear c-uda cc cc0-1.0 cc-by-2.0
    cc-by-2.5 cc-by-3.0 cc-by-4.0 cc-by-sa-3.0 cc-by-sa-4.0 cc-by-nc-2.0 cc-by-nc-3.0 cc-by-nc-4.0 cc-by-nd-4.0
    cc-by-nc-nd-3.0 cc-by-nc-nd-4.0 cc-by-nc-sa-2.0 cc-by-nc-sa-3.0 cc-by-nc-sa-4.0 cdla-sharing-1.0
    cdla-permissive-1.0 cdla-permissive-2.0 wtfpl ecl-2.0 epl-1.0 epl-2.0 etalab-2.0 eupl-1.1 eupl-1.2 agpl-3.0 gfdl
    gpl gpl-2.0 gpl-3.0 lgpl lgpl-2.1 lgpl-3.0 isc h-research intel-research lppl-1.3c ms-pl apple-ascl apple-amlr
    mpl-2.0 odc-by odbl openrail++ osl-3.0 postgresql ofl-1.1 ncsa unlicense zlib pddl lgpl-lr
    deepfloyd-if-license fair-noncommercial-research-license llama2 llama3 llama3.1 llama3.2 llama3.3 llama4 gemma
    unknown other""".split()
)
#: The metric types of our model-index entries (``metrics`` metadata): weighted and unweighted average recall.
METRIC_TYPES = ("war", "uar")
PIPELINE_TAG = "video-classification"
CUSTOM_CODE_TAG = "custom_code"
_LICENSE_NAME = re.compile(r"^[a-z0-9][a-z0-9.+-]*$")
_LICENSE_FILE = re.compile(r"^[\w.-]+(/[\w.-]+)*$")


class CardMetadataError(ValueError):
    """A card whose metadata the Hub would reject or mislabel; the message names every bad field."""


# ------------------------------------------------------------------------------------------------ the one rule
def hub_dataset_id(source: Any) -> Optional[str]:
    """The ``datasets`` entry of a run that read ``source``: the Hub dataset id itself, ``None`` for anything else
    (a local folder, a path into one, a URL, the built-in synthetic corpus). The one rule every card applies."""
    return source if is_hub_repo_id(source) else None


def hub_base_model(name: Any) -> Optional[str]:
    """The ``base_model`` entry for a run started from ``name``: a Hub model id, ``None`` for a local folder (the
    card cannot link it) or a random initialisation. Same rule as :func:`hub_dataset_id`."""
    return hub_dataset_id(name)


# ------------------------------------------------------------------------------------------------ checks
def _hub_id_problem(field: str, value: Any) -> Optional[str]:
    if not isinstance(value, str):
        return f"{field}: {value!r} is not a Hub id (owner/name)"
    try:
        validate_repo_id(value)
    except HFValidationError:
        return f"{field}: {value!r} is not a Hub id (owner/name)"
    if "/" not in value or os.path.isabs(value):
        return f"{field}: {value!r} is not a Hub id (owner/name)"
    return None


def _as_list(value: Any) -> list:
    return [value] if isinstance(value, str) or not isinstance(value, (list, tuple)) else list(value)


def _card(card: Union[ModelCard, str, os.PathLike]) -> tuple[Optional[ModelCard], list[str]]:
    """Parse ``card`` (a `ModelCard`, a README's text or its path) as the Hub would; a model-index that
    huggingface_hub cannot read is a problem, not an exception."""
    if isinstance(card, ModelCard):
        card = str(card)
    elif isinstance(card, os.PathLike) or (isinstance(card, str) and "\n" not in card and Path(card).is_file()):
        if not metadata_load(card):
            return None, ["no YAML metadata block at the top of the card"]
        card = Path(card).read_text(encoding="utf-8")
    try:
        return ModelCard(card), []
    except ValueError as error:  # huggingface_hub's message for a model-index it cannot parse
        return None, [f"model-index: {' '.join(str(error).split())}"]


def check_card_metadata(card: Union[ModelCard, str, os.PathLike], kind: CardKind = "classifier") -> list[str]:
    """The problems of a card's metadata, one line each (``[]``: none), checked offline.

    Args:
        card: a `ModelCard`, a README's text or the path of one.
        kind: ``classifier`` (needs ``pipeline_tag: video-classification`` and the ``custom_code`` tag),
            ``pretraining`` (needs the ``custom_code`` tag) or ``comparison`` (a summary repo, no code).
    """
    parsed, problems = _card(card)
    if parsed is None:
        return problems
    data = parsed.data
    meta = data.to_dict()
    licence = meta.get("license")
    if not licence:
        problems.append("license: missing (a licence id of the Hub, e.g. apache-2.0, or other)")
    elif licence not in HUB_LICENSES:
        problems.append(f"license: {licence!r} is no licence id of the Hub (use other with license_name/license_link)")
    elif licence == "other":
        name, link = meta.get("license_name"), meta.get("license_link")
        if not name or not _LICENSE_NAME.match(str(name)):
            problems.append(f"license_name: {name!r}; license: other needs a lower-case id such as my-license-1.0")
        if not link or not (str(link).startswith("https://") or _LICENSE_FILE.match(str(link))):
            problems.append(f"license_link: {link!r}; license: other needs a URL or a file of the repo (LICENSE)")
    if kind != "comparison" and meta.get("library_name") != "transformers":
        problems.append(f"library_name: {meta.get('library_name')!r}, expected 'transformers'")
    if kind == "classifier" and meta.get("pipeline_tag") != PIPELINE_TAG:
        problems.append(f"pipeline_tag: {meta.get('pipeline_tag')!r}, expected {PIPELINE_TAG!r}")
    tags = meta.get("tags") or []
    if kind != "comparison" and CUSTOM_CODE_TAG not in tags:
        problems.append(f"tags: no {CUSTOM_CODE_TAG!r} tag (the model loads with trust_remote_code=True)")
    for field in ("base_model", "datasets"):
        for value in _as_list(meta.get(field)) if meta.get(field) is not None else []:
            problem = _hub_id_problem(field, value)
            if problem:
                problems.append(problem)
    allowed = set(_as_list(meta.get("metrics") or METRIC_TYPES))
    for result in data.eval_results or []:
        where = f"model-index ({result.dataset_config or result.dataset_type}, {result.metric_type})"
        if result.task_type != PIPELINE_TAG:
            problems.append(f"{where}: task type {result.task_type!r}, expected {PIPELINE_TAG!r}")
        if result.metric_type not in allowed:
            problems.append(f"{where}: metric type not among the card's metrics {sorted(allowed)}")
        value = result.metric_value
        if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
            problems.append(f"{where}: value {value!r} is not a finite number")
        if not result.dataset_type or not result.dataset_name:
            problems.append(f"{where}: dataset type and name are both needed")
    return problems


def validate_card_metadata(card: Union[ModelCard, str, os.PathLike], kind: CardKind = "classifier") -> None:
    """Raise :class:`CardMetadataError` naming every problem :func:`check_card_metadata` finds."""
    problems = check_card_metadata(card, kind)
    if problems:
        raise CardMetadataError(f"model card metadata ({kind}): " + "; ".join(problems))


__all__ = [
    "CUSTOM_CODE_TAG",
    "CardMetadataError",
    "HUB_LICENSES",
    "METRIC_TYPES",
    "PIPELINE_TAG",
    "check_card_metadata",
    "hub_base_model",
    "hub_dataset_id",
    "validate_card_metadata",
]
