"""The paper's table in one run: every fusion strategy and both baselines cross-validated
(:func:`~mmder_hf.training.cross_validation.cross_validate`), beside the paper's numbers.

Model ``m`` runs in ``<output_dir>/<m>/`` (its folds in ``<output_dir>/<m>/fold_<k>``); finished folds are skipped,
interrupted ones resumed, and a folder run with other settings refused, so that running the same command again
finishes the grid.
"""

from __future__ import annotations

import dataclasses
import json
import logging
import os
from typing import Optional, Sequence

from accelerate import PartialState
from transformers import TrainingArguments

from ..cards import push_folder, update_model_card
from ..cards.comparison import comparison_table, render_comparison_card, save_grid_chart, summarize_grid
from ..user_errors import UserError
from .arguments import (
    CrossValidationArguments,
    DataArguments,
    GridArguments,
    ModelArguments,
    RecipeArguments,
)
from .checks import GRID_NEEDS_HUB_ID
from .cross_validation import cross_validate
from .finetune import corpus_for_card


logger = logging.getLogger(__name__)


def model_repo(hub_model_id: str, model: str) -> str:
    """The repo of one model of the grid: ``<hub_model_id>-<model>``, lower case."""
    return f"{hub_model_id}-{model.lower()}"


def compare_strategies(
    grid_args: GridArguments,
    cv_args: CrossValidationArguments,
    model_args: ModelArguments,
    data_args: DataArguments,
    recipe_args: RecipeArguments,
    training_args: TrainingArguments,
    command: Optional[Sequence[str]] = None,
) -> Optional[dict]:
    """Cross-validate each model of ``--strategies`` and write ``grid_results.json`` (per model: per-fold, mean and
    std test WAR / UAR, and the paper's numbers), ``grid_results.md`` (the table, each column labelled with its
    protocol), ``grid_folds.png`` and ``README.md`` (a summary card that quotes ``command``). With ``--push_to_hub
    --hub_model_id me/x``, model ``m`` fold ``k`` goes to ``me/x-<m>-fold<k>``, its cross-validation card to
    ``me/x-<m>`` and the summary to ``me/x``.

    Returns the summary on the main process, ``None`` on the others.
    """
    if training_args.push_to_hub and not training_args.hub_model_id:
        raise UserError(GRID_NEEDS_HUB_ID)
    output_dir = training_args.output_dir
    models = grid_args.model_list()
    per_model: dict[str, dict[int, dict]] = {}
    for number, model in enumerate(models, 1):
        logger.info("Model %d of %d: %s", number, len(models), model)
        model_dir = os.path.join(output_dir, model)
        hub_id = model_repo(training_args.hub_model_id, model) if training_args.push_to_hub else None
        model_training = dataclasses.replace(training_args, output_dir=model_dir, hub_model_id=hub_id)
        model_model = dataclasses.replace(model_args, fusion_strategy=model)
        summary = cross_validate(cv_args, model_model, data_args, recipe_args, model_training)
        if summary is not None:
            per_model[model] = {int(k): v for k, v in summary["folds"].items()}
    if not PartialState().is_main_process:
        return None

    first_run = next(os.path.join(output_dir, m, f"fold_{min(per_model[m])}", "run_args.json") for m in per_model)
    with open(first_run) as f:
        run = json.load(f)
    corpus = corpus_for_card(data_args)
    summary = summarize_grid(per_model, corpus, run["data"]["label_set"])
    with open(os.path.join(output_dir, "grid_results.json"), "w") as f:
        json.dump(summary, f, indent=1)
    table = comparison_table(summary)
    with open(os.path.join(output_dir, "grid_results.md"), "w") as f:
        f.write(f"# {summary['corpus_pretty']}: fusion strategies, test split of each fold\n\n{table}\n")
    save_grid_chart(summary, os.path.join(output_dir, "grid_folds.png"))
    hub_id = training_args.hub_model_id or os.path.basename(os.path.abspath(output_dir))
    card = render_comparison_card(
        summary,
        hub_id,
        model_repos={m: model_repo(hub_id, m) for m in per_model} if training_args.push_to_hub else None,
        base_model=run["model"]["model_name_or_path"],
        dataset_id=data_args.dataset_source,
        recipe=run["recipe"]["recipe"],
        command=list(command) if command is not None else None,
    )
    update_model_card(os.path.join(output_dir, "README.md"), card)
    print(f"\nFusion strategies on {summary['corpus_pretty']}:\n{table}")
    if training_args.push_to_hub:
        push_folder(
            output_dir,
            hub_id,
            commit_message=f"Strategy comparison: {len(per_model)} models x {len(summary['folds'])} folds",
            private=training_args.hub_private_repo or None,
            ignore_patterns=[p for m in per_model for p in (m, f"{m}/*")],  # each model has its own repos
        )
    return summary


__all__ = ["compare_strategies", "model_repo"]
