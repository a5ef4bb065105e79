#!/usr/bin/env python
"""The paper's table in one command: every fusion strategy and both baselines, cross-validated, beside the paper.

    python examples/compare_strategies.py --output_dir runs/grid-ravdess --dataset_name ravdess \\
        --dataset_source /data/ravdess --label_set 7class --recipe paper \\
        --model_name_or_path MCG-NJU/videomae-large-finetuned-kinetics --bf16

For each model of ``--strategies`` (default: FSLF, FFLS, CFAS, OFOS, SFAS, RFAS, video, audio, the paper's table) this
cross-validates the model as ``examples/cross_validate.py`` does, in ``<output_dir>/<model>/``: every fold of the
corpus (or ``--folds``), finished folds skipped, interrupted ones resumed, and a folder run with other settings
refused (or trained again with ``--rerun_mismatched``), so re-running the same command finishes the grid. Every flag
of ``finetune.py`` works here too and applies to each run (``--lora_r 8``: LoRA everywhere), and the same command runs
under ``accelerate launch`` on one GPU or many.

Writes ``grid_results.json`` (per model: per-fold, mean and std test WAR / UAR, and the paper's numbers),
``grid_results.md`` (the table, each column labelled with its protocol), ``grid_folds.png`` (models x folds) and
``README.md`` (a summary card). With ``--push_to_hub --hub_model_id me/multimae-der-ravdess`` model ``m`` fold ``k``
goes to ``me/multimae-der-ravdess-<m>-fold<k>``, its cross-validation card to ``me/multimae-der-ravdess-<m>`` and the
summary to ``me/multimae-der-ravdess``.
"""

from __future__ import annotations

import sys
from typing import Optional, Sequence

from mmder_hf.training import compare_strategies, parse_grid_args
from mmder_hf.training.run import OtherSettingsError, end_process_group, setup_run


def main(argv: Optional[Sequence[str]] = None) -> Optional[dict]:
    argv = list(sys.argv[1:] if argv is None else argv)
    if any(arg.split("=")[0] == "--fusion_strategy" for arg in argv):
        raise SystemExit("compare_strategies: --fusion_strategy is set per model by this script: use --strategies")
    grid_args, cv_args, model_args, data_args, recipe_args, training_args = parse_grid_args(argv)
    setup_run(model_args, training_args)
    command = ["python", "examples/compare_strategies.py", *argv]
    try:
        return compare_strategies(grid_args, cv_args, model_args, data_args, recipe_args, training_args, command)
    except OtherSettingsError as error:
        raise SystemExit(f"compare_strategies: {error}") from None


if __name__ == "__main__":
    from mmder_hf.user_errors import script_errors

    try:
        with script_errors():  # a mistake of the user's: one line and its exit status, no traceback
            main()
    finally:
        end_process_group()  # a process group left to interpreter exit can abort the process
