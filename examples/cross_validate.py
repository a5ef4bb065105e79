#!/usr/bin/env python
"""Subject-independent cross-validation: ``examples/finetune.py`` on every fold, then per-fold and mean ± std WAR/UAR.

    python examples/cross_validate.py --output_dir runs/cv --dataset_name ravdess --dataset_source /data/ravdess \\
        --recipe paper --model_name_or_path MCG-NJU/videomae-large-finetuned-kinetics --bf16

Every flag of ``finetune.py`` works here too and applies to each fold's run (``--lora_r 8``: LoRA in every fold). Fold
``k`` trains in ``<output_dir>/fold_<k>``; a fold whose ``all_results.json`` holds test metrics is skipped, and a fold
that was interrupted resumes from its last checkpoint, so re-running the same command finishes the job. Writes
``cv_results.json`` (per fold + mean/std), ``cv_results.md`` (markdown table), ``cv_folds.png`` (per-fold chart) and
``README.md`` (aggregate model card). With ``--push_to_hub --hub_model_id me/multimae-der-ravdess`` each fold's model
goes to ``me/multimae-der-ravdess-fold<k>`` and the aggregate card and results to ``me/multimae-der-ravdess``.
"""

from __future__ import annotations

from typing import Optional, Sequence

from mmder_hf.training import cross_validate, parse_cross_validation_args
from mmder_hf.training.run import OtherSettingsError, end_process_group, setup_run


def main(argv: Optional[Sequence[str]] = None) -> Optional[dict]:
    cv_args, model_args, data_args, recipe_args, training_args = parse_cross_validation_args(argv)
    setup_run(model_args, training_args)
    try:
        return cross_validate(cv_args, model_args, data_args, recipe_args, training_args)
    except OtherSettingsError as error:
        raise SystemExit(f"cross_validate: {error}") from None


if __name__ == "__main__":
    from mmder_hf.user_errors import script_errors

    try:
        with script_errors():  # a mistake of the user's: one line and its exit status, no traceback
            main()
    finally:
        end_process_group()  # a process group left to interpreter exit can abort the process
