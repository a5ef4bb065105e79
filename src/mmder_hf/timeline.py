"""Emotion timelines of long videos: compute (sliding windows through the pipeline), summarise, save as CSV, plot.

A timeline is a plain list of windows, as :class:`~mmder_hf.MultiMAEDERPipeline` returns it with
``window=``: ``[{"start": s, "end": e, "label": top, "score": p, "scores": {label: p, ...}}, ...]``.
"""

from __future__ import annotations

import csv
import logging
import os
from pathlib import Path
from typing import Any, Optional, Sequence, Union


logger = logging.getLogger(__name__)

#: Defaults of the CLI and the Space (one place): 3 s windows (a RAVDESS utterance lasts about 3.7 s), one per second.
DEFAULT_WINDOW = 3.0
DEFAULT_STRIDE = 1.0


def timeline_labels(timeline: Sequence[dict]) -> list[str]:
    """Label names in the order of the first window's ``scores``."""
    return list(timeline[0]["scores"]) if timeline else []


def summarize_timeline(timeline: Sequence[dict]) -> list[dict]:
    """Mean score of each label over the windows, sorted: ``[{"label", "score"}]`` (the whole video's emotions)."""
    labels = timeline_labels(timeline)
    if not labels:
        return []
    means = {label: sum(w["scores"][label] for w in timeline) / len(timeline) for label in labels}
    return [{"label": k, "score": v} for k, v in sorted(means.items(), key=lambda kv: -kv[1])]


def timeline_csv_header(labels: Sequence[str], faces: bool) -> list[str]:
    """The CSV columns of a timeline: ``start,end,label,score,<one per label>[,face_frames]``."""
    return ["start", "end", "label", "score", *labels] + (["face_frames"] if faces else [])


def timeline_csv_row(entry: dict, labels: Sequence[str], faces: bool) -> list[str]:
    """One window's CSV row (see :func:`timeline_csv_header`); ``face_frames`` is in how many of the window's sampled
    frames the tracked face was found."""
    face = []
    if faces:
        boxes = entry["face_boxes"]
        face = [f"{sum(box is not None for box in boxes)}/{len(boxes)}"]
    return [
        f"{entry['start']:.3f}",
        f"{entry['end']:.3f}",
        entry["label"],
        f"{entry['score']:.6f}",
        *(f"{entry['scores'][label]:.6f}" for label in labels),
        *face,
    ]


def write_timeline_csv(timeline: Sequence[dict], path: Union[str, os.PathLike]) -> Path:
    """Write one row per window: ``start,end,label,score,<one column per label>``; with face cropping (entries with
    ``face_boxes``) also ``face_frames``: in how many of the window's sampled frames the tracked face was found."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    labels = timeline_labels(timeline)
    faces = bool(timeline) and all("face_boxes" in entry for entry in timeline)
    with path.open("w", newline="", encoding="utf-8") as handle:
        writer = csv.writer(handle)
        writer.writerow(timeline_csv_header(labels, faces))
        for entry in timeline:
            writer.writerow(timeline_csv_row(entry, labels, faces))
    return path


#: Points between the plot and its title (more when the top-emotion labels reach higher).
TITLE_PAD = 28.0


def _keep_apart(notes: Sequence[Any], lengths: Sequence[int], gap: float = 2.0) -> None:
    """Hide the labels that would overlap another: a long video's top emotion may change every window, and labels
    written on top of each other cannot be read. The longest runs keep their label first (then the earliest); the
    boxes compared are the labels' drawn extents (``gap`` pixels apart at least)."""
    from matplotlib.transforms import Bbox

    boxes = [note.get_window_extent() for note in notes]
    kept: list[Any] = []
    for index in sorted(range(len(notes)), key=lambda i: (-lengths[i], i)):
        x0, y0, x1, y1 = boxes[index].extents
        padded = Bbox.from_extents(x0 - gap, y0 - gap, x1 + gap, y1 + gap)
        if any(padded.overlaps(other) for other in kept):
            notes[index].set_visible(False)
        else:
            kept.append(boxes[index])


def _lift_title(axes: Any, notes: Sequence[Any], gap: float = 4.0) -> bool:
    """Move the title above the highest label shown (a long label such as "surprised" reaches past ``TITLE_PAD``);
    whether it moved."""
    tops = [note.get_window_extent().y1 for note in notes if note.get_visible()]
    if not tops:
        return False
    needed = (max(tops) - axes.get_window_extent().y1) * 72.0 / axes.figure.dpi + gap
    if needed <= TITLE_PAD:
        return False
    axes.set_title(axes.get_title(), pad=needed)
    return True


def plot_timeline(
    timeline: Sequence[dict],
    path: Optional[Union[str, os.PathLike]] = None,
    title: Optional[str] = None,
    dpi: int = 120,
) -> Any:
    """Plot the timeline: one stacked band per emotion (probabilities at each window's centre) and the top emotion.

    Args:
        timeline (`list[dict]`): as the pipeline returns it with ``window=``.
        path (`str` or `os.PathLike`, *optional*): where to save the figure (PNG by extension); the figure is
            closed after saving.
        title (`str`, *optional*): figure title.
        dpi (`int`, *optional*, defaults to 120): resolution of the saved image.

    Returns:
        The matplotlib ``Figure`` when ``path`` is `None`, else the `Path` written.
    """
    import matplotlib

    if path is not None:
        matplotlib.use("Agg", force=False)
    from matplotlib.figure import Figure

    if not timeline:
        raise ValueError("the timeline is empty")
    labels = timeline_labels(timeline)
    centres = [(w["start"] + w["end"]) / 2 for w in timeline]
    series = [[w["scores"][label] for w in timeline] for label in labels]
    figure = Figure(figsize=(10, 4.2), dpi=dpi)  # not pyplot: no global state, thread-safe in servers
    axes = figure.add_subplot(1, 1, 1)
    colors = [matplotlib.colormaps["tab10"](i % 10) for i in range(len(labels))]
    if len(timeline) == 1:
        bottom = 0.0
        for label, values, color in zip(labels, series, colors):
            axes.bar(
                centres[0],
                values[0],
                width=timeline[0]["end"] - timeline[0]["start"],
                bottom=bottom,
                color=color,
                label=label,
                alpha=0.85,
            )
            bottom += values[0]
    else:
        # Hold the first and last windows' values out to the clip's edges so the bands span the whole video.
        xs = [timeline[0]["start"], *centres, timeline[-1]["end"]]
        ys = [[values[0], *values, values[-1]] for values in series]
        axes.stackplot(xs, ys, labels=labels, colors=colors, alpha=0.85)
    start, end = min(w["start"] for w in timeline), max(w["end"] for w in timeline)
    axes.set_xlim(start, end)
    axes.set_ylim(0, 1)
    axes.set_xlabel("time (s)")
    axes.set_ylabel("probability")
    # Top emotion above the plot, written where it changes (the start of each run of windows with the same top).
    notes, runs = [], []
    for index, (centre, entry) in enumerate(zip(centres, timeline)):
        if not runs or entry["label"] != timeline[runs[-1]]["label"]:
            runs.append(index)
            notes.append(
                axes.annotate(
                    entry["label"],
                    (centre, 1.0),
                    xytext=(0, 3),
                    textcoords="offset points",
                    fontsize=7,
                    rotation=45,
                    ha="left",
                    va="bottom",
                )
            )
    axes.legend(loc="center left", bbox_to_anchor=(1.01, 0.5), fontsize=8, frameon=False)
    if title:
        axes.set_title(title, pad=TITLE_PAD)
    figure.tight_layout()
    lengths = [end - start for start, end in zip(runs, [*runs[1:], len(timeline)])]
    _keep_apart(notes, lengths)
    if title and _lift_title(axes, notes):
        figure.tight_layout()
    if path is None:
        return figure
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    figure.savefig(path, dpi=dpi)
    return path


__all__ = [
    "DEFAULT_STRIDE",
    "DEFAULT_WINDOW",
    "plot_timeline",
    "summarize_timeline",
    "timeline_labels",
    "write_timeline_csv",
]
