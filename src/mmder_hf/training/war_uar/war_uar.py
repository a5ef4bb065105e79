# Copyright 2025 The mmder-hf authors. Licensed under the Apache License, Version 2.0.
"""WAR and UAR: the two numbers every emotion-recognition paper reports, as an `evaluate` metric module.

Loaded offline from its path (no Hub access needed)::

    import evaluate
    war_uar = evaluate.load("src/mmder_hf/metrics/war_uar")
"""

import datasets
import evaluate
import numpy as np


_DESCRIPTION = """
Weighted average recall (WAR) and unweighted average recall (UAR) of a single-label classifier.

- WAR is the recall of every class weighted by its number of references, which is the accuracy.
- UAR is the plain mean of the per-class recalls (macro recall), so every class counts the same however rare.
  Classes without any reference have no recall: they are reported as NaN in `per_class_recall` and left out
  of the mean (predictions of such a class still lower the other classes' recall).

The module also returns the per-class recall and the confusion matrix (rows: references, columns: predictions).
"""

_KWARGS_DESCRIPTION = """
Args:
    predictions (`list` of `int`): predicted class indices.
    references (`list` of `int`): true class indices.
    num_labels (`int`, *optional*): number of classes; defaults to 1 + the largest index seen. Sets the size of
        the confusion matrix and of `per_class_recall`.

Returns:
    war (`float`): weighted average recall (accuracy), in [0, 1].
    uar (`float`): unweighted average recall, in [0, 1].
    per_class_recall (`list` of `float`): recall of each class (NaN for a class without references).
    confusion_matrix (`list` of `list` of `int`): `num_labels x num_labels` counts, [reference][prediction].

Examples:
    >>> war_uar = evaluate.load("src/mmder_hf/metrics/war_uar")
    >>> out = war_uar.compute(predictions=[0, 0, 1, 2], references=[0, 1, 1, 2])
    >>> round(out["war"], 4), round(out["uar"], 4)
    (0.75, 0.8333)
"""

_CITATION = """
@inproceedings{schuller2009interspeech,
  title={The INTERSPEECH 2009 emotion challenge},
  author={Schuller, Bj{\\"o}rn and Steidl, Stefan and Batliner, Anton},
  booktitle={Proc. Interspeech},
  pages={312--315},
  year={2009}
}
"""


@evaluate.utils.file_utils.add_start_docstrings(_DESCRIPTION, _KWARGS_DESCRIPTION)
class WarUar(evaluate.Metric):
    """Weighted and unweighted average recall, per-class recall and confusion matrix."""

    def _info(self):
        return evaluate.MetricInfo(
            description=_DESCRIPTION,
            citation=_CITATION,
            inputs_description=_KWARGS_DESCRIPTION,
            features=datasets.Features(
                {"predictions": datasets.Value("int64"), "references": datasets.Value("int64")}
            ),
            reference_urls=["https://en.wikipedia.org/wiki/Precision_and_recall"],
        )

    def _compute(self, predictions, references, num_labels=None):
        predictions = np.asarray(predictions, dtype=np.int64)
        references = np.asarray(references, dtype=np.int64)
        if num_labels is None:
            num_labels = int(max(predictions.max(initial=-1), references.max(initial=-1))) + 1
        if predictions.size and (
            min(predictions.min(), references.min()) < 0 or max(predictions.max(), references.max()) >= num_labels
        ):
            raise ValueError(f"Class indices must lie in [0, {num_labels})")
        confusion = np.zeros((num_labels, num_labels), dtype=np.int64)
        np.add.at(confusion, (references, predictions), 1)
        support = confusion.sum(axis=1)
        with np.errstate(invalid="ignore", divide="ignore"):
            recall = np.where(support > 0, np.diag(confusion) / np.maximum(support, 1), np.nan)
        present = support > 0
        return {
            "war": float(np.diag(confusion).sum() / max(support.sum(), 1)),
            "uar": float(recall[present].mean()) if present.any() else 0.0,
            "per_class_recall": [float(r) for r in recall],
            "confusion_matrix": confusion.tolist(),
        }
