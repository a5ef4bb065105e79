#!/usr/bin/env python
"""The paper's table in one command: every fusion strategy and both baselines, cross-validated, beside the paper.

    python examples/compare_strategies.py --output_dir runs/grid-ravdess --dataset_name ravdess \\
        --dataset_source /data/ravdess --label_set 7class --recipe paper \\
        --model_name_or_path MCG-NJU/videomae-large-finetuned-kinetics --bf16

For each model of ``--strategies`` (default: FSLF, FFLS, CFAS, OFOS, SFAS, RFAS, video, audio, the paper's table)
this runs ``examples/cross_validate.py`` in ``<output_dir>/<model>/``: every fold of the corpus (or ``--folds``),
finished folds skipped, interrupted ones resumed, and a folder run with other settings refused (or trained again
with ``--rerun_mismatched``), so re-running the same command finishes the grid. Every flag this script does not know
goes to each ``finetune.py`` run, and the same command runs under ``accelerate launch`` on one GPU or many.

Writes ``grid_results.json`` (per model: per-fold, mean and std test WAR / UAR, and the paper's numbers),
``grid_results.md`` (the table, each column labelled with its protocol), ``grid_folds.png`` (models x folds) and
``README.md`` (a summary card). With ``--push_to_hub --hub_model_id me/multimae-der-ravdess`` model ``m`` fold ``k``
goes to ``me/multimae-der-ravdess-<m>-fold<k>``, its cross-validation card to ``me/multimae-der-ravdess-<m>`` and the
summary to ``me/multimae-der-ravdess``.
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import sys
from typing import Optional, Sequence

import cross_validate  # examples/cross_validate.py, beside this script (the script's folder is on sys.path)

from mmder_hf.cards import push_folder, update_model_card
from mmder_hf.cards.comparison import comparison_table, render_comparison_card, save_grid_chart, summarize_grid
from mmder_hf.data.corpora import PAPER_MODELS
from mmder_hf.models.multimae_der import FUSION_STRATEGIES
from mmder_hf.training.finetune import DataArguments, corpus_for_card, end_process_group


logger = logging.getLogger(__name__)


def parse_args(argv: Optional[Sequence[str]] = None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--output_dir", required=True)
    parser.add_argument("--dataset_name", "--corpus", default="ravdess")
    parser.add_argument("--dataset_source", default=None)
    parser.add_argument(
        "--strategies",
        default=",".join(PAPER_MODELS),
        help="Comma-separated models: fusion strategies and the baselines 'video' / 'audio' (default: the paper's).",
    )
    parser.add_argument("--folds", default=None, help="Comma-separated fold numbers (default: every fold).")
    parser.add_argument("--push_to_hub", action="store_true", help="Push every model, each model's card, the summary.")
    parser.add_argument("--hub_model_id", default=None, help="Summary repo id; model m goes to <id>-<m>[-fold<k>].")
    parser.add_argument("--hub_private_repo", action="store_true")
    parser.add_argument("--rerun_mismatched", action="store_true", help="Train again runs made with other settings.")
    args, passthrough = parser.parse_known_args(argv)
    args.strategies = [s.strip() for s in args.strategies.split(",") if s.strip()]
    known = {s.lower(): s for s in (*FUSION_STRATEGIES, "video", "audio")}
    unknown = [s for s in args.strategies if s.lower() not in known]
    if unknown:
        parser.error(f"--strategies: unknown {', '.join(unknown)}; expected some of {', '.join(known.values())}")
    args.strategies = [known[s.lower()] for s in args.strategies]
    if args.push_to_hub and not args.hub_model_id:
        parser.error("--push_to_hub needs --hub_model_id (the summary repo; models go to <id>-<model>)")
    if "--fusion_strategy" in passthrough or "--output_dir" in passthrough:
        parser.error("--fusion_strategy and --output_dir are set per model by this script: use --strategies")
    return args, passthrough


def model_repo(hub_model_id: str, model: str) -> str:
    return f"{hub_model_id}-{model.lower()}"


def main(argv: Optional[Sequence[str]] = None) -> Optional[dict]:
    args, passthrough = parse_args(argv)
    common = ["--dataset_name", args.dataset_name]
    common += ["--dataset_source", args.dataset_source] if args.dataset_source else []
    common += ["--folds", args.folds] if args.folds else []
    common += ["--rerun_mismatched"] if args.rerun_mismatched else []
    per_model: dict[str, dict[int, dict]] = {}
    for number, model in enumerate(args.strategies, 1):
        logger.info("Model %d of %d: %s", number, len(args.strategies), model)
        push = []
        if args.push_to_hub:
            push = ["--push_to_hub", "--hub_model_id", model_repo(args.hub_model_id, model)]
            push += ["--hub_private_repo"] if args.hub_private_repo else []
        model_dir = os.path.join(args.output_dir, model)
        cross_validate.main([*passthrough, *common, *push, "--output_dir", model_dir, "--fusion_strategy", model])
        if cross_validate._is_main_process():
            with open(os.path.join(model_dir, "cv_results.json")) as f:
                per_model[model] = {int(k): v for k, v in json.load(f)["folds"].items()}
    if not cross_validate._is_main_process():
        return None

    first_run = next(os.path.join(args.output_dir, m, f"fold_{min(per_model[m])}", "run_args.json") for m in per_model)
    with open(first_run) as f:
        run = json.load(f)
    corpus = corpus_for_card(DataArguments(dataset_name=args.dataset_name, dataset_source=args.dataset_source))
    summary = summarize_grid(per_model, corpus, run["data"]["label_set"])
    with open(os.path.join(args.output_dir, "grid_results.json"), "w") as f:
        json.dump(summary, f, indent=1)
    table = comparison_table(summary)
    with open(os.path.join(args.output_dir, "grid_results.md"), "w") as f:
        f.write(f"# {summary['corpus_pretty']}: fusion strategies, test split of each fold\n\n{table}\n")
    save_grid_chart(summary, os.path.join(args.output_dir, "grid_folds.png"))
    hub_id = args.hub_model_id or os.path.basename(os.path.abspath(args.output_dir))
    card = render_comparison_card(
        summary,
        hub_id,
        model_repos={m: model_repo(hub_id, m) for m in per_model} if args.push_to_hub else None,
        base_model=run["model"]["model_name_or_path"],
        dataset_id=args.dataset_source,
        recipe=run["recipe"]["recipe"],
        command=["python", "examples/compare_strategies.py", *(argv if argv is not None else sys.argv[1:])],
    )
    update_model_card(os.path.join(args.output_dir, "README.md"), card)
    print(f"\nFusion strategies on {summary['corpus_pretty']}:\n{table}")
    if args.push_to_hub:
        push_folder(
            args.output_dir,
            hub_id,
            commit_message=f"Strategy comparison: {len(per_model)} models x {len(summary['folds'])} folds",
            private=args.hub_private_repo or None,
            ignore_patterns=[p for m in per_model for p in (m, f"{m}/*")],  # each model has its own repos
        )
    return summary


if __name__ == "__main__":
    logging.basicConfig(level=logging.INFO, format="%(asctime)s - %(levelname)s - %(name)s - %(message)s")
    try:
        main()
    finally:
        end_process_group()  # a process group left to interpreter exit can abort the process
