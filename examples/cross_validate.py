#!/usr/bin/env python
"""Subject-independent cross-validation: ``examples/finetune.py`` on every fold, then per-fold and mean ± std WAR/UAR.

    python examples/cross_validate.py --output_dir runs/cv --dataset_name ravdess --dataset_source /data/ravdess \\
        --recipe paper --model_name_or_path MCG-NJU/videomae-large-finetuned-kinetics --bf16

Every flag this script does not know is passed to each ``finetune.py`` run. Fold ``k`` trains in
``<output_dir>/fold_<k>``; a fold whose ``all_results.json`` holds test metrics is skipped, and a fold that was
interrupted resumes from its last checkpoint, so re-running the same command finishes the job. Writes
``cv_results.json`` (per fold + mean/std), ``cv_results.md`` (markdown table), ``cv_folds.png`` (per-fold chart) and
``README.md`` (aggregate model card). With ``--push_to_hub --hub_model_id me/multimae-der-ravdess`` each fold's model
goes to ``me/multimae-der-ravdess-fold<k>`` and the aggregate card and results to ``me/multimae-der-ravdess``.
"""

from __future__ import annotations

import argparse
import json
import logging
import math
import os
import time
from typing import Optional, Sequence

import finetune  # examples/finetune.py, beside this script (the script's folder is on sys.path)

from mmder_hf.cards import mean_std, push_folder, render_model_card, results_table, update_model_card
from mmder_hf.data import get_folds
from mmder_hf.data.synthetic import METADATA_FILE, is_synthetic_source
from mmder_hf.models.multimae_der import MultiMAEDERConfig
from mmder_hf.training import RECIPES
from mmder_hf.training.finetune import (
    DataArguments,
    corpus_for_card,
    describe_differences,
    end_process_group,
    result_settings,
    settings_differences,
)


logger = logging.getLogger(__name__)


def parse_args(argv: Optional[Sequence[str]] = None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--output_dir", required=True)
    parser.add_argument("--dataset_name", "--corpus", default="ravdess")
    parser.add_argument("--dataset_source", default=None)
    parser.add_argument(
        "--folds", default=None, help="Comma-separated fold numbers (default: every fold of the corpus)."
    )
    parser.add_argument("--push_to_hub", action="store_true", help="Push each fold's model and the aggregate card.")
    parser.add_argument("--hub_model_id", default=None, help="Aggregate repo id; folds go to <id>-fold<k>.")
    parser.add_argument("--hub_private_repo", action="store_true")
    parser.add_argument(
        "--rerun_mismatched",
        action="store_true",
        help="Train again a fold whose saved run used other settings (the old folder is kept beside it).",
    )
    return parser.parse_known_args(argv)


def default_folds(corpus: str, source: Optional[str]) -> list[int]:
    """Every fold of ``corpus``; for a synthetic corpus, one per block of 4 generated actors."""
    if is_synthetic_source(source):
        actors = 24  # the built-in corpus
        if source is not None:
            with open(os.path.join(source, METADATA_FILE)) as f:
                actors = json.load(f)["config"]["num_actors"]
        return list(range(1, math.ceil(actors / 4) + 1))
    return [fold.fold for fold in get_folds(corpus)]


def fold_finished(fold_dir: str) -> Optional[dict]:
    path = os.path.join(fold_dir, "all_results.json")
    if os.path.isfile(path):
        with open(path) as f:
            results = json.load(f)
        if "test_war" in results and "test_uar" in results:
            return results
    return None


def save_fold_chart(fold_results: dict[int, dict], path: str, title: str) -> str:
    """Grouped bars of test WAR and UAR per fold, with the means as dashed lines."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    import numpy as np

    folds = sorted(fold_results)
    war = np.array([fold_results[k]["test_war"] for k in folds]) * 100
    uar = np.array([fold_results[k]["test_uar"] for k in folds]) * 100
    x = np.arange(len(folds))
    fig, ax = plt.subplots(figsize=(1.5 + 0.9 * len(folds), 3.6), dpi=100)
    ax.bar(x - 0.2, war, 0.4, label=f"WAR (mean {war.mean():.1f})", color="#3b6fb6")
    ax.bar(x + 0.2, uar, 0.4, label=f"UAR (mean {uar.mean():.1f})", color="#f0a030")
    ax.axhline(war.mean(), color="#3b6fb6", linestyle="--", linewidth=1)
    ax.axhline(uar.mean(), color="#f0a030", linestyle="--", linewidth=1)
    ax.set_xticks(x, [f"fold {k}" for k in folds])
    ax.set_ylabel("test recall (%)")
    ax.set_ylim(0, 100)
    ax.set_title(title, fontsize=10)
    ax.legend(loc="lower right", fontsize=8)
    fig.tight_layout()
    fig.savefig(path)
    plt.close(fig)
    return path


def main(argv: Optional[Sequence[str]] = None) -> dict:
    args, passthrough = parse_args(argv)
    logging.basicConfig(
        level=logging.INFO, format="%(asctime)s - %(levelname)s - %(name)s - %(message)s", datefmt="%H:%M:%S"
    )
    os.makedirs(args.output_dir, exist_ok=True)
    folds = (
        [int(k) for k in args.folds.split(",")]
        if args.folds
        else default_folds(args.dataset_name, args.dataset_source)
    )
    data_flags = ["--dataset_name", args.dataset_name] + (
        ["--dataset_source", args.dataset_source] if args.dataset_source else []
    )

    fold_results: dict[int, dict] = {}
    for fold in folds:
        fold_dir = os.path.join(args.output_dir, f"fold_{fold}")
        push = []
        if args.push_to_hub:
            push = ["--push_to_hub", "--hub_model_id", f"{args.hub_model_id}-fold{fold}"]
            push += ["--hub_private_repo", "true"] if args.hub_private_repo else []
        fold_argv = [*passthrough, *data_flags, "--fold", str(fold), "--output_dir", fold_dir, *push]
        # A finished (or interrupted) fold is reused only when it was run with this run's settings.
        differences = settings_differences(fold_dir, result_settings(*finetune.parse_args(fold_argv)))
        if differences:
            if not args.rerun_mismatched:
                raise SystemExit(
                    f"cross_validate: fold {fold} in {fold_dir} was run with other settings "
                    f"({describe_differences(differences)}); pass --rerun_mismatched to train it again, or use "
                    "another --output_dir"
                )
            kept = f"{fold_dir}.replaced-{time.strftime('%Y%m%d-%H%M%S')}"
            logger.warning("Fold %d was run with other settings: moved to %s and trained again", fold, kept)
            os.replace(fold_dir, kept)
        done = fold_finished(fold_dir)
        if done is not None:
            logger.info("Fold %d already finished (%s): skipped", fold, fold_dir)
            fold_results[fold] = done
            continue
        finetune.main(fold_argv)
        fold_results[fold] = fold_finished(fold_dir) or {}

    if not _is_main_process():
        return fold_results
    # ---------------------------------------------------------------------------------------- aggregate
    complete = {k: v for k, v in fold_results.items() if "test_war" in v}
    summary = {"folds": {}, "mean": {}, "std": {}}
    for fold, metrics in sorted(complete.items()):
        summary["folds"][str(fold)] = {k: metrics.get(k) for k in ("test_war", "test_uar", "eval_war", "eval_uar")}
        if metrics.get("test_fold_missing_actors"):  # smaller than the standard fold: say so beside its numbers
            summary["folds"][str(fold)]["missing_actors"] = metrics["test_fold_missing_actors"]
    for key in ("test_war", "test_uar", "eval_war", "eval_uar"):
        values = [m[key] for m in complete.values() if m.get(key) is not None]
        if values:
            summary["mean"][key], summary["std"][key] = mean_std(values)
    with open(os.path.join(args.output_dir, "cv_results.json"), "w") as f:
        json.dump(summary, f, indent=1)
    corpus = corpus_for_card(DataArguments(dataset_name=args.dataset_name, dataset_source=args.dataset_source))
    table = results_table(complete)
    with open(os.path.join(args.output_dir, "cv_results.md"), "w") as f:
        f.write(f"# {corpus}: {len(complete)}-fold cross-validation (test split of each fold)\n\n{table}\n")
    save_fold_chart(complete, os.path.join(args.output_dir, "cv_folds.png"), f"{corpus}: test WAR / UAR per fold")

    first = os.path.join(args.output_dir, f"fold_{min(complete)}")
    config = MultiMAEDERConfig.from_pretrained(first)
    with open(os.path.join(first, "run_args.json")) as f:
        run = json.load(f)
    hub_id = args.hub_model_id or os.path.basename(os.path.abspath(args.output_dir))
    card = render_model_card(
        corpus,
        hub_id,
        complete,
        config=config,
        base_model=run["model"]["model_name_or_path"],
        dataset_id=args.dataset_source,
        label_set=run["data"]["label_set"],
        recipe=run["recipe"]["recipe"],
        recipe_description=RECIPES[run["recipe"]["recipe"]].description,
        usage_model_id=f"{hub_id}-fold{min(complete)}" if args.push_to_hub else first,
        fold_repos=[(k, f"{hub_id}-fold{k}") for k in sorted(complete)] if args.push_to_hub else None,
        confusion_matrix_file=None,
        extra_tags=["cross-validation"],
    )
    update_model_card(os.path.join(args.output_dir, "README.md"), card)
    print(f"\n{len(complete)}-fold cross-validation on {corpus}:\n{table}")
    if args.push_to_hub:
        push_folder(
            args.output_dir,
            hub_id,
            commit_message=f"Cross-validation over {len(complete)} folds",
            private=args.hub_private_repo or None,
            ignore_patterns=["fold_*", "fold_*/**"],
        )
    return summary


def _is_main_process() -> bool:
    from accelerate import PartialState

    return PartialState().is_main_process


if __name__ == "__main__":
    try:
        main()
    finally:
        end_process_group()  # a process group left to interpreter exit can abort the process
