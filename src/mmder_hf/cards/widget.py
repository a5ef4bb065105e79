"""Model-card widget metadata: example clips with outputs computed ahead of time.

The Hub's hosted widget does not run models that need custom code, but a card can still show example inputs with
their outputs. :func:`widget_examples` runs the pipeline on local copies of the example clips and returns the card's
``widget:`` entries (``ModelCardData(widget=...)``); ``pipeline_tag`` stays ``video-classification``.

```python
>>> from mmder_hf.cards.widget import widget_examples
>>> widget_examples("path/to/model", [  # doctest: +SKIP
...     {"path": "examples/happy.mp4", "src": "https://huggingface.co/org/model/resolve/main/examples/happy.mp4",
...      "example_title": "Happy"}])
[{'example_title': 'Happy', 'src': 'https://...', 'output': [{'label': 'happy', 'score': 0.91}, ...]}]
```
"""

from __future__ import annotations

import logging
import os
from pathlib import Path
from typing import Any, Sequence, Union


def widget_examples(
    model: Any,
    examples: Sequence[Union[dict, str, os.PathLike]],
    top_k: int = 5,
    decimals: int = 4,
) -> list[dict]:
    """Run the pipeline on example clips and return the model card's ``widget`` entries with precomputed outputs.

    Args:
        model (`str`, `os.PathLike`, a model or a [`~pipeline.MultiMAEDERPipeline`]):
            A saved model folder / Hub id, a loaded classifier, or a ready pipeline.
        examples (`list`):
            Each a dict ``{"path": local file, "src": URL shown on the card, "example_title": title}`` (``src``
            defaults to the file name, i.e. a file uploaded next to the card; ``example_title`` to the file stem), or
            just a local path.
        top_k (`int`, *optional*, defaults to 5): labels kept per example.
        decimals (`int`, *optional*, defaults to 4): rounding of the scores.

    Returns:
        `list[dict]`: ``[{"example_title", "src", "output": [{"label", "score"}, ...]}, ...]``, ready for
        ``ModelCardData(widget=...)``.
    """
    from ..models.multimae_der import MultiMAEDERPipeline

    if isinstance(model, MultiMAEDERPipeline):
        pipe = model
    else:
        if isinstance(model, (str, os.PathLike)):
            from transformers import AutoModelForVideoClassification

            import mmder_hf  # noqa: F401 - auto classes

            model = AutoModelForVideoClassification.from_pretrained(os.fspath(model))
        # the card computing its own examples is not a user running the model: no synthetic-corpus warning here
        pipeline_logger = logging.getLogger(MultiMAEDERPipeline.__module__)
        level = pipeline_logger.level
        pipeline_logger.setLevel(logging.ERROR)
        try:
            pipe = MultiMAEDERPipeline(model=model, device=model.device)
        finally:
            pipeline_logger.setLevel(level)
    entries = []
    for example in examples:
        if not isinstance(example, dict):
            example = {"path": os.fspath(example)}
        path = Path(example["path"])
        predictions = pipe(os.fspath(path), top_k=top_k)
        entries.append(
            {
                "example_title": example.get("example_title") or path.stem,
                "src": example.get("src") or path.name,
                "output": [{"label": p["label"], "score": round(p["score"], decimals)} for p in predictions],
            }
        )
    return entries


__all__ = ["widget_examples"]
