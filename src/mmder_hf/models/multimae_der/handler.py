"""Hugging Face Inference Endpoints handler: a saved MultiMAE-DER folder (or Hub repo) served as a JSON API.

Inference Endpoints import ``handler.py`` from the root of the repository as a top-level module (no package, so no
relative imports) and call ``EndpointHandler(path)(data)`` with the request's JSON body. The model loads through
transformers' public API from the code files saved beside this one (``pipeline(model=path, trust_remote_code=True)``),
so the endpoint needs the packages of ``requirements.txt``, not ``mmder_hf``.

Request: ``{"inputs": <the video file as base64> | <an http(s) URL>, "parameters": {"top_k": 3}}`` ->
``[{"label", "score"}, ...]`` best first; with ``"timeline": true`` (``"window"`` seconds, default 3.0, ``"stride"``
seconds, default window / 2) -> ``[{"start", "end", "label", "score", "scores": {label: score}}, ...]``. A bad
request raises a `ValueError` whose message is one line: the endpoint answers it with HTTP 400 ``{"error": ...}``.
"""

from __future__ import annotations

import base64
import binascii
import difflib
import logging
import os
import re
from typing import Any, Union

import torch
from transformers import pipeline


logger = logging.getLogger(__name__)

#: The request parameters and the JSON types they take.
PARAMETERS = {
    "top_k": "a whole number >= 1",
    "timeline": "true or false",
    "window": "seconds > 0",
    "stride": "seconds > 0",
}
DEFAULT_WINDOW = 3.0
_URL_PREFIXES = ("http://", "https://")
_DATA_URL = re.compile(r"^data:[\w/+.-]*(;[\w=.-]+)*;base64,")


def _one_line(text: str) -> str:
    lines = [line.strip() for line in str(text).splitlines() if line.strip()]
    return lines[0] if lines else ""


def _is_number(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool)


def read_parameters(parameters: Any) -> dict:
    """The pipeline's keyword arguments for a request's ``"parameters"``, or a one-line `ValueError` naming the
    parameter, what it takes and, for an unknown name, the closest known one."""
    if parameters is None:
        return {}
    if not isinstance(parameters, dict):
        raise ValueError(f'"parameters" must be a JSON object such as {{"top_k": 3}}, got {type(parameters).__name__}')
    for name in parameters:
        if name not in PARAMETERS:
            close = difflib.get_close_matches(str(name), list(PARAMETERS), n=1)
            hint = f' (did you mean "{close[0]}"?)' if close else ""
            raise ValueError(f'unknown parameter "{name}"{hint}; expected some of {", ".join(PARAMETERS)}')
    top_k, timeline = parameters.get("top_k"), parameters.get("timeline", False)
    window, stride = parameters.get("window"), parameters.get("stride")
    if top_k is not None and (not isinstance(top_k, int) or isinstance(top_k, bool) or top_k < 1):
        raise ValueError(f'"top_k" must be {PARAMETERS["top_k"]}, got {top_k!r}')
    if not isinstance(timeline, bool):
        raise ValueError(f'"timeline" must be {PARAMETERS["timeline"]}, got {timeline!r}')
    for name, value in (("window", window), ("stride", stride)):
        if value is not None and (not _is_number(value) or not value > 0):
            raise ValueError(f'"{name}" must be {PARAMETERS[name]}, got {value!r}')
    if not timeline:
        if window is not None or stride is not None:
            raise ValueError('"window" and "stride" set a timeline: add "timeline": true')
        return {} if top_k is None else {"top_k": top_k}
    if top_k is not None:
        raise ValueError('"top_k" does not apply to a timeline (each window holds every label\'s score): remove it')
    window = float(window) if window is not None else DEFAULT_WINDOW
    return {"window": window, "stride": float(stride) if stride is not None else window / 2}


def read_inputs(inputs: Any) -> Union[str, bytes]:
    """The pipeline's input for a request's ``"inputs"``: an http(s) URL as it is, base64 (or a ``data:`` URL)
    decoded to the file's bytes, raw bytes (a binary request body) as they are."""
    if isinstance(inputs, (bytes, bytearray)):
        return bytes(inputs)
    if not isinstance(inputs, str):
        raise ValueError(
            f'"inputs" must be a string (the video file as base64, or an http(s) URL), got {type(inputs).__name__}'
        )
    text = inputs.strip()
    if text.startswith(_URL_PREFIXES):
        return text
    text = _DATA_URL.sub("", text, count=1)
    try:
        data = base64.b64decode(re.sub(r"\s+", "", text), validate=True)
    except (binascii.Error, ValueError):
        shown = text[:40] + ("..." if len(text) > 40 else "")
        raise ValueError(
            f'"inputs" is neither base64 nor an http(s) URL ({shown!r}): send the video file\'s bytes base64-encoded, '
            "or a URL the endpoint can download"
        ) from None
    if not data:
        raise ValueError('"inputs" is empty: send the video file\'s bytes base64-encoded, or an http(s) URL')
    return data


class EndpointHandler:
    """Loads the folder's pipeline once; each call answers one request (see the module docstring for the format).

    Args:
        path (`str`, *optional*): the model folder; defaults to the folder holding this file.
    """

    def __init__(self, path: str = ""):
        path = path or os.path.dirname(os.path.abspath(__file__))
        device = "cuda" if torch.cuda.is_available() else "cpu"
        self.pipeline = pipeline(model=path, trust_remote_code=True, device=device)

    def __call__(self, data: dict[str, Any]) -> list[dict[str, Any]]:
        if not isinstance(data, dict) or "inputs" not in data:
            raise ValueError('the request needs "inputs": the video file as base64, or an http(s) URL')
        kwargs = read_parameters(data.get("parameters"))
        media = read_inputs(data["inputs"])
        try:
            return self.pipeline(media, **kwargs)
        except Exception as error:
            # The endpoint answers every exception with 400 and its message: make that one line (the full error
            # goes to the endpoint's log), and name a file sent as bytes ("<N bytes of media>") after the request.
            if isinstance(error, ValueError):
                logger.info("bad request: %s", error)
            else:
                logger.exception("request failed")
            message = _one_line(error) or type(error).__name__
            if isinstance(media, bytes):
                message = re.sub(r"^<\d+ bytes of media>", f'"inputs" ({len(media)} bytes decoded)', message)
            raise ValueError(message) from error


__all__ = ["EndpointHandler", "read_inputs", "read_parameters"]
