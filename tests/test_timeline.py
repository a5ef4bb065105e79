"""Emotion timelines (mmder_hf.timeline): summary, CSV rows and the plot's content, on hand-made timelines (no model).

Expected values are computed by hand from the windows given here."""

from __future__ import annotations

import csv

import pytest

from mmder_hf.timeline import plot_timeline, summarize_timeline, timeline_labels, write_timeline_csv


pytest.importorskip("matplotlib")


def _window(start: float, end: float, scores: dict, face_boxes=None) -> dict:
    best = max(scores, key=scores.get)
    entry = {"start": start, "end": end, "label": best, "score": scores[best], "scores": scores}
    if face_boxes is not None:
        entry["face_boxes"] = face_boxes
    return entry


# Three windows of 2 s, one per second; labels in the model's order (not alphabetical).
TIMELINE = [
    _window(0.0, 2.0, {"sad": 0.1, "happy": 0.7, "angry": 0.2}),
    _window(1.0, 3.0, {"sad": 0.2, "happy": 0.5, "angry": 0.3}),
    _window(2.0, 4.0, {"sad": 0.6, "happy": 0.1, "angry": 0.3}),
]


def test_labels_and_summary():
    assert timeline_labels(TIMELINE) == ["sad", "happy", "angry"]
    assert timeline_labels(TIMELINE[:1]) == ["sad", "happy", "angry"]  # the first window's order
    assert timeline_labels([]) == [] and summarize_timeline([]) == []
    summary = summarize_timeline(TIMELINE)
    # Means: happy (0.7 + 0.5 + 0.1) / 3 = 0.433, sad 0.3, angry 0.267; best first.
    assert [s["label"] for s in summary] == ["happy", "sad", "angry"]
    assert [s["score"] for s in summary] == pytest.approx([1.3 / 3, 0.9 / 3, 0.8 / 3])
    assert summarize_timeline(TIMELINE[2:]) == [
        {"label": "sad", "score": 0.6},
        {"label": "angry", "score": 0.3},
        {"label": "happy", "score": 0.1},
    ]


def test_csv_rows(tmp_path):
    path = write_timeline_csv(TIMELINE, tmp_path / "new" / "folder" / "t.csv")  # folders are made
    assert path == tmp_path / "new" / "folder" / "t.csv"
    assert path.read_text().splitlines() == [
        "start,end,label,score,sad,happy,angry",
        "0.000,2.000,happy,0.700000,0.100000,0.700000,0.200000",
        "1.000,3.000,happy,0.500000,0.200000,0.500000,0.300000",
        "2.000,4.000,sad,0.600000,0.600000,0.100000,0.300000",
    ]
    again = write_timeline_csv(TIMELINE[:1], tmp_path / "new" / "folder" / "t2.csv")  # the folder exists already
    assert len(again.read_text().splitlines()) == 2


def test_csv_counts_the_frames_with_a_face(tmp_path):
    boxes = [[1.0, 2.0, 3.0, 4.0], None, [1.0, 2.0, 3.0, 4.0], None]
    faced = [
        _window(0.0, 2.0, {"sad": 0.4, "happy": 0.6}, boxes),
        _window(1.0, 3.0, {"sad": 0.9, "happy": 0.1}, [None] * 4),
    ]
    rows = write_timeline_csv(faced, tmp_path / "faces.csv").read_text().splitlines()
    assert rows == [
        "start,end,label,score,sad,happy,face_frames",
        "0.000,2.000,happy,0.600000,0.400000,0.600000,2/4",
        "1.000,3.000,sad,0.900000,0.900000,0.100000,0/4",
    ]
    mixed = [faced[0], _window(1.0, 3.0, {"sad": 0.9, "happy": 0.1})]  # not every window has boxes: no column
    with (tmp_path / "mixed.csv").open("w") as handle:
        handle.write("stale")
    rows = write_timeline_csv(mixed, tmp_path / "mixed.csv").read_text().splitlines()
    assert rows[0] == "start,end,label,score,sad,happy" and len(rows) == 3
    assert write_timeline_csv([], tmp_path / "empty.csv").read_text().splitlines() == ["start,end,label,score"]
    with (tmp_path / "faces.csv").open(newline="") as handle:
        assert [row["face_frames"] for row in csv.DictReader(handle)] == ["2/4", "0/4"]


def test_plot_stacks_the_probabilities_over_time():
    figure = plot_timeline(TIMELINE, title="clip")
    assert tuple(figure.get_size_inches()) == pytest.approx((10, 4.2))
    [axes] = figure.axes
    assert axes.get_subplotspec().get_geometry() == (1, 1, 0, 0)
    assert axes.get_xlim() == (0.0, 4.0) and axes.get_ylim() == (0.0, 1.0)
    assert axes.get_xlabel() == "time (s)" and axes.get_ylabel() == "probability"
    assert axes.get_title() == "clip"
    assert (
        axes.titleOffsetTrans.get_matrix()[1, 2] >= 28 / 72 * figure.dpi
    )  # 28 pt above the plot, or above the labels
    figure.draw_without_rendering()
    assert not any(axes.title.get_window_extent().overlaps(t.get_window_extent()) for t in axes.texts)
    bands = axes.collections
    assert [band.get_label() for band in bands] == ["sad", "happy", "angry"]
    assert all(band.get_alpha() == pytest.approx(0.85) for band in bands)
    # Window centres 1, 2, 3 s, held out to the clip's edges 0 and 4 s; the bands stack up to 1.
    tops = []
    for band in bands:
        top: dict = {}
        for x, y in band.get_paths()[0].vertices:  # the band's outline: its top is the highest point at each x
            top[float(x)] = max(top.get(float(x), 0.0), float(y))
        tops.append(sorted(top.items()))
    assert [x for x, _ in tops[0]] == [0.0, 1.0, 2.0, 3.0, 4.0]
    assert [y for _, y in tops[0]] == pytest.approx([0.1, 0.1, 0.2, 0.6, 0.6])  # sad
    assert [y for _, y in tops[1]] == pytest.approx([0.8, 0.8, 0.7, 0.7, 0.7])  # sad + happy
    assert [y for _, y in tops[2]] == pytest.approx([1.0] * 5)  # + angry: each window sums to 1
    # The top label is written above the plot where it changes: happy at 1 s, sad at 3 s.
    notes = [(t.get_text(), t.xy, t.get_fontsize(), t.get_rotation()) for t in axes.texts]
    assert notes == [("happy", (1.0, 1.0), 7, 45), ("sad", (3.0, 1.0), 7, 45)]
    assert all(t.xyann == (0, 3) and t.anncoords == "offset points" for t in axes.texts)
    legend = axes.get_legend()
    assert [t.get_text() for t in legend.get_texts()] == ["sad", "happy", "angry"]
    assert tuple(legend.get_bbox_to_anchor().transformed(axes.transAxes.inverted()).bounds[:2]) == pytest.approx(
        (1.01, 0.5)
    )


def _long_timeline() -> list:
    """60 s in 2 s windows every 0.5 s (117 windows) whose top emotion changes at every window, but for one run of
    21 windows (from 20 s to 32 s) where "sad" stays on top: the worst case for the labels above the plot."""
    labels = ["angry", "happy", "neutral", "surprised", "sad"]
    windows = []
    for i in range(117):
        top = "sad" if 40 <= i <= 60 else labels[i % 4]
        scores = {label: (0.6 if label == top else 0.1) for label in labels}
        windows.append(_window(i * 0.5, i * 0.5 + 2.0, scores))
    return windows


def _overlapping(boxes) -> list:
    return [(a, b) for i, a in enumerate(boxes) for b in boxes[i + 1 :] if a.overlaps(b)]


@pytest.mark.parametrize("dpi", [120, 50])
def test_labels_of_a_long_timeline_never_overlap(dpi):
    timeline = _long_timeline()
    figure = plot_timeline(timeline, title="long.mp4", dpi=dpi)
    [axes] = figure.axes
    figure.draw_without_rendering()  # as saved: every extent below is what the image shows
    shown = [note for note in axes.texts if note.get_visible()]
    boxes = [note.get_window_extent() for note in shown]
    assert not _overlapping(boxes)
    # Only where the top emotion changes, with that emotion, and as many as fit (one per ~50 px at most here).
    starts = {
        w["start"] + 1.0: w["label"]
        for k, w in enumerate(timeline)
        if k == 0 or w["label"] != timeline[k - 1]["label"]
    }
    assert all(starts[note.xy[0]] == note.get_text() for note in shown)
    assert 10 <= len(shown) < len(starts) == 97
    assert ("sad", 21.0) in [(note.get_text(), note.xy[0]) for note in shown]  # the longest run keeps its label
    title = axes.title.get_window_extent()
    assert not any(title.overlaps(box) for box in boxes) and title.y1 <= figure.bbox.y1
    ticks = [label.get_window_extent() for label in axes.get_xticklabels() if label.get_visible() and label.get_text()]
    assert len(ticks) >= 4 and not _overlapping(ticks)


def test_the_title_stays_above_a_long_label():
    """ "surprised", written from the middle of the plot, reaches higher than the title's 28 pt: the title moves up."""
    scores = {"angry": 0.2, "surprised": 0.8}
    timeline = [
        _window(0.0, 2.0, {"angry": 0.8, "surprised": 0.2}),
        _window(1.0, 3.0, scores),
        _window(2.0, 4.0, scores),
    ]
    figure = plot_timeline(timeline, title="a title long enough to reach the label")
    [axes] = figure.axes
    figure.draw_without_rendering()
    assert [(t.get_text(), t.xy[0], t.get_visible()) for t in axes.texts] == [
        ("angry", 1.0, True),
        ("surprised", 2.0, True),
    ]
    title = axes.title.get_window_extent()
    assert not any(title.overlaps(t.get_window_extent()) for t in axes.texts) and title.y1 <= figure.bbox.y1
    assert axes.titleOffsetTrans.get_matrix()[1, 2] > 28 / 72 * figure.dpi


def test_plot_of_one_window_is_a_stacked_bar():
    figure = plot_timeline(TIMELINE[1:2])
    [axes] = figure.axes
    bars = axes.patches
    assert [container.get_label() for container in axes.containers] == ["sad", "happy", "angry"]
    # Centred on the window (2 s), as wide as it (2 s), stacked: 0.2, then 0.5 on it, then 0.3.
    assert [(bar.get_x(), bar.get_width()) for bar in bars] == [(1.0, 2.0)] * 3
    assert [bar.get_y() for bar in bars] == pytest.approx([0, 0.2, 0.7])
    assert [bar.get_height() for bar in bars] == pytest.approx([0.2, 0.5, 0.3])
    assert all(bar.get_alpha() == pytest.approx(0.85) for bar in bars)
    assert not axes.collections and axes.get_xlim() == (1.0, 3.0)
    assert [t.get_text() for t in axes.texts] == ["happy"] and axes.get_title() == ""


def test_plot_saved_as_png(tmp_path):
    path = plot_timeline(TIMELINE, tmp_path / "plots" / "run" / "t.png", dpi=50)  # folders are made
    assert path == tmp_path / "plots" / "run" / "t.png" and path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    from PIL import Image

    assert Image.open(path).size == (500, 210)  # 10 x 4.2 inches at 50 dpi
    again = plot_timeline(TIMELINE, tmp_path / "plots" / "run" / "t2.png", dpi=50)  # into the existing folder
    assert again.is_file()
    with pytest.raises(ValueError, match="empty"):
        plot_timeline([])


def test_saving_a_plot_switches_matplotlib_to_a_headless_backend(tmp_path):
    """Saving to a file (a script, a server) selects the Agg backend; returning the figure leaves the choice alone."""
    import matplotlib

    before = matplotlib.get_backend()
    try:
        matplotlib.use("svg")
        plot_timeline(TIMELINE)
        assert matplotlib.get_backend() == "svg"
        plot_timeline(TIMELINE, tmp_path / "t.png")
        assert matplotlib.get_backend().lower() == "agg"
    finally:
        matplotlib.use(before)
