"""Metrics of emotion recognition: WAR, UAR, per-class recall and the confusion matrix (also as a picture).

They come from the `evaluate` module in ``war_uar/`` beside this file, loaded offline from its path.
"""

from __future__ import annotations

import json
import math
import os
from typing import Optional, Sequence

import numpy as np


#: Folder of the `evaluate` metric module computing WAR, UAR, per-class recall and the confusion matrix.
WAR_UAR_METRIC_PATH = os.path.join(os.path.dirname(os.path.abspath(__file__)), "war_uar")


def load_war_uar():
    """The repository's `evaluate` module for WAR / UAR, loaded offline from its path."""
    import evaluate

    return evaluate.load(WAR_UAR_METRIC_PATH)


class WarUarMetrics:
    """``compute_metrics`` for `Trainer`: WAR, UAR and per-class recall (``recall_<label>``) as scalars.

    The full result of the last call (with ``confusion_matrix`` and ``per_class_recall``) stays in
    :attr:`last`, for :func:`save_confusion_matrix`.

    Args:
        label_names (`Sequence[str]`): class names in index order.
    """

    def __init__(self, label_names: Sequence[str]):
        self.label_names = list(label_names)
        self.metric = load_war_uar()
        self.last: Optional[dict] = None

    def __call__(self, eval_pred) -> dict[str, float]:
        logits = eval_pred.predictions[0] if isinstance(eval_pred.predictions, tuple) else eval_pred.predictions
        predictions = np.asarray(logits).argmax(-1)
        result = self.metric.compute(
            predictions=predictions, references=np.asarray(eval_pred.label_ids), num_labels=len(self.label_names)
        )
        self.last = result
        metrics = {"war": result["war"], "uar": result["uar"]}
        for name, recall in zip(self.label_names, result["per_class_recall"]):
            if not math.isnan(recall):
                metrics[f"recall_{name}"] = recall
        return metrics


def save_confusion_matrix(
    matrix: Sequence[Sequence[int]], label_names: Sequence[str], path: str, title: Optional[str] = None
) -> str:
    """Draw a confusion matrix (rows: true labels, columns: predictions) as a PNG; also writes ``<path>.json``.

    Cells are coloured by row-normalised recall and annotated with counts.
    """
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    counts = np.asarray(matrix, dtype=np.int64)
    rows = counts.sum(1, keepdims=True)
    recall = np.divide(counts, np.maximum(rows, 1))
    n = len(label_names)
    fig, ax = plt.subplots(figsize=(1.2 + 0.7 * n, 1.0 + 0.6 * n), dpi=100)
    ax.imshow(recall, cmap="Blues", vmin=0, vmax=1)
    ax.set_xticks(range(n), label_names, rotation=45, ha="right")
    ax.set_yticks(range(n), label_names)
    ax.set_xlabel("predicted")
    ax.set_ylabel("true")
    for i in range(n):
        for j in range(n):
            ax.text(
                j,
                i,
                str(counts[i, j]),
                ha="center",
                va="center",
                color="white" if recall[i, j] > 0.5 else "black",
                fontsize=8,
            )
    if title:
        ax.set_title(title, fontsize=10)
    fig.tight_layout()
    os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)
    fig.savefig(path)
    plt.close(fig)
    with open(os.path.splitext(path)[0] + ".json", "w") as f:
        json.dump({"labels": list(label_names), "confusion_matrix": counts.tolist()}, f, indent=1)
    return path


__all__ = ["WAR_UAR_METRIC_PATH", "WarUarMetrics", "load_war_uar", "save_confusion_matrix"]
