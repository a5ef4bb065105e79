"""The strategy comparison (the paper's table, re-run under a stated protocol): markdown, chart and summary card.

``examples/compare_strategies.py`` trains every model of the grid over every fold and calls these on the
cross-validation summaries it collects. The paper's published numbers come from
:attr:`mmder_hf.data.corpora.CorpusInfo.published`; every column says which protocol its numbers come from, because
the paper's RAVDESS numbers are one train/test split and ours are subject-independent cross-validation.
"""

from __future__ import annotations

import math
import os
from typing import Any, Optional, Sequence, Union

from huggingface_hub import ModelCard

from ..data.corpora import get_corpus_info
from .builder import build_card, card_metadata, model_license
from .describe import mean_std


def summarize_grid(per_model: dict[str, dict[int, dict]], corpus: str, label_set: Optional[str]) -> dict:
    """The comparison as JSON-ready data: per model its per-fold test WAR / UAR, mean and std, and the paper's.

    Args:
        per_model: ``model -> {fold: metrics}`` with ``test_war`` / ``test_uar`` as fractions (Trainer's output).
        corpus: the corpus the grid ran on (picks the published numbers and the protocol).
        label_set: the label set of our runs; the paper's numbers are shown beside ours whatever it is, and the
            labels of both are stated so that a 7-vs-8-class difference is visible.
    """
    info = get_corpus_info(corpus)
    published = info.published
    folds = sorted({int(k) for results in per_model.values() for k in results})
    models: dict[str, Any] = {}
    for model, fold_results in per_model.items():
        done = {int(k): v for k, v in fold_results.items() if "test_war" in v and "test_uar" in v}
        entry: dict[str, Any] = {
            "folds": {str(k): {m: done[k][m] for m in ("test_war", "test_uar")} for k in sorted(done)},
            "missing_folds": [k for k in folds if k not in done],
        }
        for metric in ("test_war", "test_uar"):
            values = [done[k][metric] for k in sorted(done)]
            entry[f"mean_{metric}"], entry[f"std_{metric}"] = mean_std(values) if values else (None, None)
        paper = published.results.get(model) if published else None
        entry["paper"] = {"uar": paper[0], "war": paper[1]} if paper else None
        models[model] = entry
    return {
        "corpus": info.name,
        "corpus_pretty": info.pretty_name,
        "label_set": label_set,
        "protocol": f"{len(folds)}-fold subject-independent cross-validation ({info.protocol})",
        "folds": folds,
        "paper_protocol": published.protocol if published else None,
        "paper_label_set": published.label_set if published else None,
        "paper_backbone": published.backbone if published else None,
        "models": models,
    }


def _pct(value: Optional[float]) -> str:
    return "-" if value is None or not math.isfinite(value) else f"{value * 100:.2f}"


def _mean_std(entry: dict, metric: str) -> str:
    """``75.00 ± 5.00`` over the finished folds; one fold's value alone (a spread of one number is no spread)."""
    mean, std = entry.get(f"mean_{metric}"), entry.get(f"std_{metric}")
    if mean is None:
        return "-"
    return f"{mean * 100:.2f}" if len(entry["folds"]) == 1 else f"{mean * 100:.2f} ± {std * 100:.2f}"


def comparison_table(summary: dict) -> str:
    """Markdown: one row per model; per-fold WAR / UAR, mean ± std, and the paper's numbers, each column labelled."""
    folds = summary["folds"]
    ours = f"ours: {len(folds)}-fold CV, {summary['label_set'] or 'default labels'}"
    header = ["model"]
    if folds:
        header += [*(f"fold {k} WAR / UAR" for k in folds), f"WAR ({ours})", f"UAR ({ours})"]
    if summary["paper_protocol"]:
        theirs = f"paper: {summary['paper_protocol']}, {summary['paper_label_set']}"
        header += [f"WAR ({theirs})", f"UAR ({theirs})"]
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    for model, entry in summary["models"].items():
        cells = [model]
        for k in folds:
            fold = entry["folds"].get(str(k))
            cells.append(f"{_pct(fold['test_war'])} / {_pct(fold['test_uar'])}" if fold else "-")
        cells += [_mean_std(entry, "test_war"), _mean_std(entry, "test_uar")] if folds else []
        if summary["paper_protocol"]:
            paper = entry["paper"] or {}
            cells += [
                f"{paper['war']:.2f}" if paper.get("war") is not None else "-",
                f"{paper['uar']:.2f}" if paper.get("uar") is not None else "-",
            ]
        lines.append("| " + " | ".join(cells) + " |")
    spread = "mean ± population std over the folds" if len(folds) > 1 else "one fold, so no spread to show"
    ours = f"Ours: {summary['protocol']}, {spread}." if folds else "Ours: no fold trained yet."
    notes = [f"All numbers are test recall in %: WAR = accuracy, UAR = macro recall. {ours}"]
    if summary["paper_protocol"]:
        notes.append(
            f"Paper: {summary['paper_protocol']} with {summary['paper_backbone']}, {summary['paper_label_set']} "
            "(the paper gives WAR only for the single-modality baselines). Numbers from different protocols are not "
            "comparable: they are shown side by side, not ranked together."
        )
    else:
        notes.append("The paper publishes no numbers for this corpus.")
    missing = {m: e["missing_folds"] for m, e in summary["models"].items() if e["missing_folds"]}
    if missing:
        notes.append(
            "Not finished yet: " + "; ".join(f"{m} folds {', '.join(map(str, k))}" for m, k in missing.items()) + "."
        )
    return "\n".join(lines) + "\n\n" + "\n".join(notes)


def save_grid_chart(summary: dict, path: Union[str, os.PathLike]) -> str:
    """Heat maps of test WAR and UAR, models x folds (plus the mean), with the values written in the cells."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    import numpy as np

    models, folds = list(summary["models"]), summary["folds"]
    columns = [f"fold {k}" for k in folds] + ["mean"]
    fig, axes = plt.subplots(1, 2, figsize=(2.5 + 1.4 * len(columns), 1.2 + 0.45 * len(models)), dpi=100)
    for ax, metric, name in zip(axes, ("test_war", "test_uar"), ("WAR", "UAR")):
        values = np.full((len(models), len(columns)), np.nan)
        for i, model in enumerate(models):
            entry = summary["models"][model]
            for j, k in enumerate(folds):
                if str(k) in entry["folds"]:
                    values[i, j] = entry["folds"][str(k)][metric] * 100
            if entry[f"mean_{metric}"] is not None:
                values[i, -1] = entry[f"mean_{metric}"] * 100
        ax.imshow(values, cmap="viridis", vmin=0, vmax=100, aspect="auto")
        for (i, j), value in np.ndenumerate(values):
            text = "-" if np.isnan(value) else f"{value:.1f}"
            ax.text(j, i, text, ha="center", va="center", color="white" if value < 60 else "black", fontsize=8)
        ax.set_xticks(range(len(columns)), columns, fontsize=8)
        ax.set_yticks(range(len(models)), models, fontsize=8)
        ax.set_title(f"test {name} (%)", fontsize=10)
    fig.suptitle(f"{summary['corpus_pretty']}: {summary['protocol'].split(' (')[0]}", fontsize=10)
    fig.tight_layout()
    fig.savefig(path)
    plt.close(fig)
    return str(path)


def render_comparison_card(
    summary: dict,
    model_id: str,
    model_repos: Optional[dict[str, str]] = None,
    base_model: Optional[str] = None,
    dataset_id: Optional[str] = None,
    recipe: Optional[str] = None,
    command: Optional[Sequence[str]] = None,
    chart_file: Optional[str] = "grid_folds.png",
    **template_kwargs: Any,
) -> ModelCard:
    """Summary card of a strategy comparison (``templates/comparison.md``): the table, the chart, where each model
    lives and how it was run. ``command`` is the argument list (joined with spaces) or the command line itself."""
    corpus = summary["corpus"]
    licence = model_license(corpus, base_model)
    tags = ["multimae-der", "emotion-recognition", "audio-visual", "mmder-hf", "strategy-comparison"]
    data = card_metadata("comparison", None, licence, [*tags, *get_corpus_info(corpus).tags], dataset_id, base_model)
    context = {
        "summary": summary,
        "table": comparison_table(summary),
        "recipe": recipe,
        "base_model": base_model,
        "chart_file": chart_file,
        "model_repos": model_repos,
        "command": command if isinstance(command, str) or command is None else " ".join(command),
        "license_note": licence["note"],
        **template_kwargs,
    }
    return build_card("comparison", data, "comparison", **context)
