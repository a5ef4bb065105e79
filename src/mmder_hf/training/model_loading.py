"""One line saying what a checkpoint loaded into a model, instead of transformers' table of every weight not loaded.

A classifier started from a pre-training run drops the decoder and starts a new head: expected, and said in one INFO
line. An encoder weight that does not load is not expected: a WARNING naming it.
"""

from __future__ import annotations

import logging
from typing import Any, Iterable

import transformers


logger = logging.getLogger(__name__)

#: Top-level modules of VideoMAE / MultiMAE-DER models besides the encoder (``videomae``), by what they are.
MODEL_PARTS = {
    "decoder": "decoder",
    "encoder_to_decoder": "decoder",
    "mask_token": "decoder",
    "classifier": "classification head",
    "fc_norm": "classification head",
}


def _parts(keys: Iterable[str]) -> str:
    names = {MODEL_PARTS.get(key.split(".")[0], key.split(".")[0]) for key in keys}
    return " and ".join(sorted(names))


def describe_loading(source: str, info: dict, new_part: str) -> tuple[int, str]:
    """``(level, line)`` saying what ``from_pretrained(source, output_loading_info=True)`` loaded.

    A checkpoint of another task keeps its encoder and drops the rest (a pre-training decoder, a classification
    head), and the model's ``new_part`` starts new: that is expected, and said at INFO. An encoder weight that is
    missing or unused is not: said at WARNING, with a name, since the encoder would then start partly random.
    """
    missing, unused = sorted(info.get("missing_keys", ())), sorted(info.get("unexpected_keys", ()))
    mismatched = sorted(key for key, *_ in info.get("mismatched_keys", ()))
    encoder = [k for k in missing + mismatched + unused if k.startswith("videomae.")]
    if encoder:
        return logging.WARNING, (
            f"{source}: {len(encoder)} encoder weight(s) did not load (e.g. {encoder[0]}): the encoder starts partly "
            "random. Is it a VideoMAE or MultiMAE-DER checkpoint of this size?"
        )
    if not (missing or unused or mismatched):
        return logging.INFO, f"Loaded every weight of {source}"
    kind = "the pre-training checkpoint " if _parts(unused) == "decoder" else ""
    said = [f"its {_parts(unused)} is dropped"] if unused else []
    if mismatched:
        said.append(f"its {_parts(mismatched)} has other shapes (another number of labels)")
    if missing or mismatched:
        said.append(f"the {new_part} is new")
    return logging.INFO, f"Loaded the encoder of {kind}{source}: {' and '.join(said)} (expected)"


def load_pretrained(model_class: type, source: str, new_part: str, **kwargs) -> Any:
    """``model_class.from_pretrained(source, **kwargs)`` with one line saying what was loaded
    (:func:`describe_loading`) instead of transformers' table of every weight not loaded, which reads as a failure
    when a classifier starts from a pre-training run. transformers is quiet during the load only."""
    verbosity = transformers.utils.logging.get_verbosity()
    transformers.utils.logging.set_verbosity_error()
    try:
        model, info = model_class.from_pretrained(source, output_loading_info=True, **kwargs)
    finally:
        transformers.utils.logging.set_verbosity(verbosity)
    logger.log(*describe_loading(source, info, new_part))
    return model


__all__ = ["MODEL_PARTS", "describe_loading", "load_pretrained"]
