"""Subject-independent cross-validation: one fine-tuning run per fold
(:func:`~mmder_hf.training.finetune.run_finetuning`), then per-fold and mean ± std WAR / UAR, a chart and an
aggregate card.

Fold ``k`` trains in ``<output_dir>/fold_<k>``; a fold whose ``all_results.json`` holds test metrics is skipped, a
fold that was interrupted resumes from its last checkpoint, and a fold run with other settings is refused (or, with
``--rerun_mismatched``, moved aside and trained again), so that running the same command again finishes the job.
"""

from __future__ import annotations

import dataclasses
import json
import logging
import os
import time
from typing import Optional

from accelerate import PartialState
from transformers import TrainingArguments

from ..cards import mean_std, push_folder, render_model_card, results_table, update_model_card
from ..data.folds import available_folds
from ..models.multimae_der import MultiMAEDERConfig
from ..user_errors import UserError
from .arguments import (
    CrossValidationArguments,
    DataArguments,
    ModelArguments,
    RecipeArguments,
)
from .checks import CROSS_VALIDATION_NEEDS_HUB_ID
from .finetune import corpus_for_card, run_finetuning
from .recipes import RECIPES
from .run import OtherSettingsError, describe_differences, result_settings, settings_differences


logger = logging.getLogger(__name__)


def default_folds(corpus: str, source: Optional[str]) -> list[int]:
    """Every fold of ``corpus``; for a synthetic corpus, one per block of 4 generated actors."""
    return available_folds(corpus, source)


def fold_finished(fold_dir: str) -> Optional[dict]:
    """The saved results of a fold run that reached its test metrics, else ``None`` (a fold to run or resume)."""
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


def cross_validate(
    cv_args: CrossValidationArguments,
    model_args: ModelArguments,
    data_args: DataArguments,
    recipe_args: RecipeArguments,
    training_args: TrainingArguments,
) -> Optional[dict]:
    """Fine-tune every fold of ``--folds`` (default: every fold of the corpus) in ``<output_dir>/fold_<k>`` and write
    ``cv_results.json`` (per fold, mean and std), ``cv_results.md``, ``cv_folds.png`` and ``README.md`` (the
    aggregate card). With ``--push_to_hub --hub_model_id me/x``, fold ``k`` goes to ``me/x-fold<k>`` and the
    aggregate to ``me/x``.

    Returns the summary on the main process, ``None`` on the others.

    Raises:
        `OtherSettingsError`: a fold's folder holds a run with other settings (and not ``--rerun_mismatched``).
    """
    output_dir = training_args.output_dir
    if training_args.push_to_hub and not training_args.hub_model_id:
        raise UserError(CROSS_VALIDATION_NEEDS_HUB_ID)
    os.makedirs(output_dir, exist_ok=True)
    folds = cv_args.fold_list() or default_folds(data_args.dataset_name, data_args.dataset_source)

    fold_results: dict[int, dict] = {}
    for fold in folds:
        fold_dir = os.path.join(output_dir, f"fold_{fold}")
        fold_data = dataclasses.replace(data_args, fold=fold)
        fold_training = dataclasses.replace(
            training_args,
            output_dir=fold_dir,
            hub_model_id=f"{training_args.hub_model_id}-fold{fold}" if training_args.push_to_hub else None,
        )
        # A finished (or interrupted) fold is reused only when it was run with this run's settings.
        settings = result_settings(model_args, fold_data, recipe_args, fold_training)
        differences = settings_differences(fold_dir, settings)
        if differences:
            if not cv_args.rerun_mismatched:
                raise OtherSettingsError(
                    f"fold {fold} in {fold_dir} was run with other settings ({describe_differences(differences)}); "
                    "pass --rerun_mismatched to train it again, or use another --output_dir"
                )
            kept = f"{fold_dir}.replaced-{time.strftime('%Y%m%d-%H%M%S')}"
            logger.warning("Fold %d was run with other settings: moved to %s and trained again", fold, kept)
            os.replace(fold_dir, kept)
        done = fold_finished(fold_dir)
        if done is not None:
            logger.info("Fold %d already finished (%s): skipped", fold, fold_dir)
            fold_results[fold] = done
            continue
        run_finetuning(model_args, fold_data, recipe_args, fold_training)
        fold_results[fold] = fold_finished(fold_dir) or {}

    if not PartialState().is_main_process:
        return None
    return write_cross_validation(fold_results, data_args, training_args)


def write_cross_validation(
    fold_results: dict[int, dict], data_args: DataArguments, training_args: TrainingArguments
) -> dict:
    """The results of the finished folds: ``cv_results.json`` / ``.md``, ``cv_folds.png``, the aggregate card, and
    its push (without the fold folders, which have their own repos)."""
    output_dir = training_args.output_dir
    complete = {k: v for k, v in fold_results.items() if "test_war" in v}
    summary: dict = {"folds": {}, "mean": {}, "std": {}}
    for fold, metrics in sorted(complete.items()):
        summary["folds"][str(fold)] = {k: metrics.get(k) for k in ("test_war", "test_uar", "eval_war", "eval_uar")}
        if metrics.get("test_fold_missing_actors"):  # smaller than the standard fold: say so beside its numbers
            summary["folds"][str(fold)]["missing_actors"] = metrics["test_fold_missing_actors"]
    for key in ("test_war", "test_uar", "eval_war", "eval_uar"):
        values = [m[key] for m in complete.values() if m.get(key) is not None]
        if values:
            summary["mean"][key], summary["std"][key] = mean_std(values)
    with open(os.path.join(output_dir, "cv_results.json"), "w") as f:
        json.dump(summary, f, indent=1)
    corpus = corpus_for_card(data_args)
    table = results_table(complete)
    with open(os.path.join(output_dir, "cv_results.md"), "w") as f:
        f.write(f"# {corpus}: {len(complete)}-fold cross-validation (test split of each fold)\n\n{table}\n")
    save_fold_chart(complete, os.path.join(output_dir, "cv_folds.png"), f"{corpus}: test WAR / UAR per fold")

    first = os.path.join(output_dir, f"fold_{min(complete)}")
    config = MultiMAEDERConfig.from_pretrained(first)
    with open(os.path.join(first, "run_args.json")) as f:
        run = json.load(f)
    push = training_args.push_to_hub
    hub_id = training_args.hub_model_id or os.path.basename(os.path.abspath(output_dir))
    card = render_model_card(
        corpus,
        hub_id,
        complete,
        config=config,
        base_model=run["model"]["model_name_or_path"],
        dataset_id=data_args.dataset_source,
        label_set=run["data"]["label_set"],
        recipe=run["recipe"]["recipe"],
        recipe_description=RECIPES[run["recipe"]["recipe"]].description,
        usage_model_id=f"{hub_id}-fold{min(complete)}" if push else first,
        fold_repos=[(k, f"{hub_id}-fold{k}") for k in sorted(complete)] if push else None,
        confusion_matrix_file=None,
        extra_tags=["cross-validation"],
    )
    update_model_card(os.path.join(output_dir, "README.md"), card)
    print(f"\n{len(complete)}-fold cross-validation on {corpus}:\n{table}")
    if push:
        push_folder(
            output_dir,
            hub_id,
            commit_message=f"Cross-validation over {len(complete)} folds",
            private=training_args.hub_private_repo or None,
            ignore_patterns=["fold_*", "fold_*/**"],
        )
    return summary


__all__ = ["cross_validate", "default_folds", "fold_finished", "save_fold_chart", "write_cross_validation"]
