"""WAR / UAR metric module and the Trainer metrics wrapper, checked against numbers computed by hand.

WAR is the accuracy (every clip counts the same); UAR is the plain mean of the per-class recalls over the classes
that have references (a class never predicted still counts, with recall 0). The confusion-matrix picture is checked
through the figure it draws: its size, colours, tick labels and the count written in each cell.
"""

from __future__ import annotations

import json
import math
import struct

import numpy as np
import pytest
from transformers import EvalPrediction

from mmder_hf.training.metrics import WarUarMetrics, load_war_uar, save_confusion_matrix


@pytest.fixture(scope="module")
def war_uar():
    return load_war_uar()


# Six clips, four classes. References per class: 0 -> 2 clips, 1 -> 1 clip, 2 -> 3 clips, 3 -> none.
# Predictions: class 1 is never predicted, class 3 is predicted once (a class without references).
REFERENCES = [0, 0, 1, 2, 2, 2]
PREDICTIONS = [0, 2, 0, 2, 2, 3]
# Confusion matrix by hand, rows = references, columns = predictions.
CONFUSION = [
    [1, 0, 1, 0],
    [1, 0, 0, 0],
    [0, 0, 2, 1],
    [0, 0, 0, 0],
]
# Recalls by hand: class 0 1/2, class 1 0/1, class 2 2/3, class 3 no references.
RECALL = [1 / 2, 0.0, 2 / 3]
WAR = 3 / 6  # three correct out of six
UAR = (1 / 2 + 0 + 2 / 3) / 3  # = 7/18


def test_war_is_accuracy_and_uar_is_the_mean_recall_of_the_present_classes(war_uar):
    out = war_uar.compute(predictions=PREDICTIONS, references=REFERENCES, num_labels=4)
    assert out["confusion_matrix"] == CONFUSION
    assert out["war"] == pytest.approx(WAR)
    assert out["uar"] == pytest.approx(7 / 18) == pytest.approx(UAR)
    assert out["per_class_recall"][:3] == pytest.approx(RECALL)
    assert math.isnan(out["per_class_recall"][3]) and len(out["per_class_recall"]) == 4


def test_num_labels_defaults_to_one_more_than_the_largest_index(war_uar):
    out = war_uar.compute(predictions=PREDICTIONS, references=REFERENCES)
    assert out["confusion_matrix"] == CONFUSION and len(out["per_class_recall"]) == 4
    # The largest index only among the references, or only among the predictions.
    assert len(war_uar.compute(predictions=[0, 0], references=[0, 2])["confusion_matrix"]) == 3
    assert len(war_uar.compute(predictions=[0, 2], references=[0, 0])["confusion_matrix"]) == 3
    only_zero = war_uar.compute(predictions=[0, 0], references=[0, 0])
    assert only_zero["confusion_matrix"] == [[2]] and only_zero["war"] == only_zero["uar"] == 1.0


def test_a_single_clip(war_uar):
    right = war_uar.compute(predictions=[1], references=[1], num_labels=2)
    assert right["war"] == 1.0 and right["uar"] == 1.0 and right["confusion_matrix"] == [[0, 0], [0, 1]]
    wrong = war_uar.compute(predictions=[0], references=[1], num_labels=2)
    assert wrong["war"] == 0.0 and wrong["uar"] == 0.0 and wrong["confusion_matrix"] == [[0, 0], [1, 0]]


def test_rare_class_weighs_as_much_as_a_frequent_one_in_uar(war_uar):
    # 9 clips of class 0 all right, 1 clip of class 1 wrong: WAR 0.9, UAR (1 + 0) / 2 = 0.5.
    out = war_uar.compute(predictions=[0] * 10, references=[0] * 9 + [1])
    assert out["war"] == pytest.approx(0.9) and out["uar"] == pytest.approx(0.5)
    assert out["per_class_recall"] == [1.0, 0.0]


def test_no_clips_gives_zeros(war_uar):
    out = war_uar._compute(predictions=[], references=[])
    assert out == {"war": 0.0, "uar": 0.0, "per_class_recall": [], "confusion_matrix": []}
    out = war_uar._compute(predictions=[], references=[], num_labels=2)
    assert out["war"] == 0.0 and out["uar"] == 0.0 and out["confusion_matrix"] == [[0, 0], [0, 0]]


@pytest.mark.parametrize(
    "predictions, references",
    [([0, -1], [0, 1]), ([0, 1], [-1, 1]), ([0, 3], [0, 1]), ([0, 1], [0, 3])],
)
def test_indices_outside_the_classes_are_refused(war_uar, predictions, references):
    with pytest.raises(ValueError, match=r"Class indices must lie in \[0, 3\)"):
        war_uar._compute(predictions=predictions, references=references, num_labels=3)


def test_index_zero_and_the_last_class_are_accepted(war_uar):
    out = war_uar.compute(predictions=[0, 2], references=[2, 0], num_labels=3)
    assert out["war"] == 0.0 and out["confusion_matrix"] == [[0, 0, 1], [0, 0, 0], [1, 0, 0]]


def test_metric_module_describes_itself(war_uar):
    assert "Weighted average recall (WAR)" in war_uar.description
    assert "interspeech" in war_uar.citation.lower()
    # The class docstring starts with the description, then the arguments.
    doc = type(war_uar).__doc__
    assert doc.index("Weighted average recall (WAR)") < doc.index("Args:")


def test_trainer_metrics_from_logits(war_uar):
    labels = ["neutral", "happy", "sad", "angry"]
    # One-hot-ish logits whose argmax over the class axis is PREDICTIONS.
    logits = np.full((6, 4), -1.0)
    logits[np.arange(6), PREDICTIONS] = 2.0
    logits[:, 1] += 0.5  # class 1 the runner-up everywhere: only the argmax over classes finds PREDICTIONS
    metrics = WarUarMetrics(labels)
    out = metrics(EvalPrediction(predictions=logits, label_ids=np.array(REFERENCES)))
    assert out == pytest.approx(
        {"war": WAR, "uar": UAR, "recall_neutral": 1 / 2, "recall_happy": 0.0, "recall_sad": 2 / 3}
    )
    assert "recall_angry" not in out  # no references: no recall, not a 0
    assert metrics.last["confusion_matrix"] == CONFUSION


def test_trainer_metrics_take_the_logits_out_of_a_tuple():
    logits = np.array([[0.0, 3.0], [0.0, 3.0], [3.0, 0.0]])
    other = np.array([[9.0, 0.0], [9.0, 0.0], [9.0, 0.0]])  # e.g. hidden states after the logits
    out = WarUarMetrics(["a", "b"])(EvalPrediction(predictions=(logits, other), label_ids=np.array([1, 1, 1])))
    assert out == pytest.approx({"war": 2 / 3, "uar": 2 / 3, "recall_b": 2 / 3})


# ------------------------------------------------------------------------------------------- confusion picture
def _png_size(path) -> tuple[int, int]:
    with open(path, "rb") as f:
        head = f.read(24)
    assert head[:8] == b"\x89PNG\r\n\x1a\n"
    return struct.unpack(">II", head[16:24])


@pytest.fixture
def drawn(monkeypatch, tmp_path):
    """Call save_confusion_matrix and keep the figure it drew (it closes it, but the object survives)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    figures = []
    subplots = plt.subplots

    def keep(*args, **kwargs):
        fig, ax = subplots(*args, **kwargs)
        figures.append((fig, ax))
        return fig, ax

    monkeypatch.setattr(plt, "subplots", keep)
    # rows: 2 clips (1 right), 3 clips (3 right), 1 clip (0 right): recalls 0.5, 1.0, 0.0
    matrix = [[1, 1, 0], [0, 3, 0], [1, 0, 0]]
    path = save_confusion_matrix(matrix, ["calm", "happy", "sad"], str(tmp_path / "out" / "cm.png"), title="fold 1")
    return path, figures[0], tmp_path


def test_confusion_png_size_and_json(drawn):
    path, (fig, ax), tmp_path = drawn
    assert path == str(tmp_path / "out" / "cm.png")
    # figsize (1.2 + 0.7 n, 1.0 + 0.6 n) inches at 100 dpi, n = 3 classes
    assert _png_size(path) == (330, 280)
    saved = json.loads((tmp_path / "out" / "cm.json").read_text())
    assert saved == {"labels": ["calm", "happy", "sad"], "confusion_matrix": [[1, 1, 0], [0, 3, 0], [1, 0, 0]]}


def test_confusion_figure_contents(drawn):
    import matplotlib.pyplot as plt

    path, (fig, ax), _ = drawn
    assert fig.number not in plt.get_fignums()  # closed: a long run does not pile up figures
    (image,) = ax.get_images()
    np.testing.assert_allclose(image.get_array(), [[0.5, 0.5, 0], [0, 1, 0], [1, 0, 0]])
    assert image.norm.vmin == 0 and image.norm.vmax == 1 and image.get_cmap().name == "Blues"
    assert [t.get_text() for t in ax.get_xticklabels()] == ["calm", "happy", "sad"]
    assert [t.get_text() for t in ax.get_yticklabels()] == ["calm", "happy", "sad"]
    assert all(t.get_rotation() == 45 for t in ax.get_xticklabels())
    assert ax.get_xlabel() == "predicted" and ax.get_ylabel() == "true" and ax.get_title() == "fold 1"
    cells = {(t.get_position(), t.get_text()): t for t in ax.texts}
    expected = {
        (float(j), float(i)): str(v)
        for i, row in enumerate([[1, 1, 0], [0, 3, 0], [1, 0, 0]])
        for j, v in enumerate(row)
    }
    assert {pos: text for pos, text in cells} == expected  # count of row i (true) column j (predicted) at x=j, y=i
    colours = {pos: t.get_color() for (pos, _), t in cells.items()}
    assert colours[(1.0, 1.0)] == "white"  # recall 1.0
    assert colours[(0.0, 2.0)] == "white"  # recall 1.0 (row sad, predicted calm)
    assert colours[(0.0, 0.0)] == "black" and colours[(1.0, 0.0)] == "black"  # recall exactly 0.5: not above half
    assert all(t.get_fontsize() == 8 for t in ax.texts)
