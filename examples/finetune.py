#!/usr/bin/env python
"""Fine-tune MultiMAE-DER on an audio-visual emotion corpus with the 🤗 Trainer.

The built-in default (only ``--output_dir`` given) trains a small random model on the synthetic RAVDESS-format
corpus on a CPU in a minute or two:

    python examples/finetune.py --output_dir runs/demo

Every `TrainingArguments` flag works (``--bf16``, ``--push_to_hub``, ``--hub_model_id``, ``--eval_strategy``...), and
the same command runs under ``accelerate launch`` / ``torchrun`` on any number of processes. A recipe
(``--recipe paper|finetune|quick``) sets documented defaults that any flag overrides; see
``mmder_hf.training.RECIPES``. Arguments can also come from one JSON file: ``python examples/finetune.py args.json``.

Writes to ``--output_dir``: the model with its code files (loadable with ``trust_remote_code=True``), the processor,
``train_results.json`` / ``eval_results.json`` / ``test_results.json`` / ``all_results.json`` (``eval_war``,
``eval_uar``, ``test_war``, ``test_uar``, per-class recall), ``confusion_matrix.png`` (+ ``.json``) on the test
split, ``README.md`` (the model card) and ``run_args.json``.
"""

from __future__ import annotations

import logging
import os
import time
from typing import Optional, Sequence

from transformers import set_seed
from transformers.trainer_utils import get_last_checkpoint

from mmder_hf.training import RECIPES, MultiMAEDERTrainer, WarUarMetrics, save_confusion_matrix
from mmder_hf.training.finetune import (
    CardWriter,
    build_model,
    build_processor,
    corpus_for_card,
    end_process_group,
    fold_shortfall,
    load_data,
    parse_args,
    prepare_datasets,
    refuse_other_settings,
    result_settings,
    reuse_or_start_run,
    save_run_args,
    setup_run,
    split_sizes,
    widget_examples_from_split,
)


logger = logging.getLogger(__name__)


def main(argv: Optional[Sequence[str]] = None) -> dict:
    model_args, data_args, recipe_args, training_args = parse_args(argv)
    started = time.time()
    setup_run(model_args, training_args)
    logger.info("Recipe %r: %s", recipe_args.recipe, RECIPES[recipe_args.recipe].description)
    output_dir = training_args.output_dir
    refuse_other_settings(output_dir, result_settings(model_args, data_args, recipe_args, training_args))
    last_checkpoint = get_last_checkpoint(output_dir) if os.path.isdir(output_dir) and training_args.do_train else None
    set_seed(training_args.seed)

    # Data, model and processor. The folder holds the code files and processor from the start, so every
    # checkpoint the Trainer pushes loads with trust_remote_code.
    raw = load_data(data_args, model_args, training_args)
    label_names = list(raw["train"].features["emotion"].names)
    model = build_model(model_args, recipe_args, label_names)
    processor = build_processor(model_args, data_args, model.config)
    finished = reuse_or_start_run(model, processor, training_args)  # a finished run is evaluated and carded again
    data, collator, feature_cache = prepare_datasets(raw, model, processor, data_args, recipe_args, training_args)

    compute_metrics = WarUarMetrics(label_names)
    splits = split_sizes(raw)
    card_writer = CardWriter(model_args, data_args, recipe_args, training_args, model.config, splits=splits)
    trainer = MultiMAEDERTrainer(
        model=model,
        args=training_args,
        train_dataset=data["train"],
        eval_dataset=data.get("validation"),
        data_collator=collator,
        processing_class=processor,
        compute_metrics=compute_metrics,
        recipe_args=recipe_args,
        card_writer=card_writer,
    )

    results: dict = {}
    if finished is not None:
        results.update(finished)
    elif training_args.do_train:
        if last_checkpoint is not None and training_args.resume_from_checkpoint is None:
            logger.warning("Resuming from %s", last_checkpoint)
        train_result = trainer.train(resume_from_checkpoint=training_args.resume_from_checkpoint or last_checkpoint)
        trainer.save_model()
        metrics = train_result.metrics
        streamed = training_args.max_steps * training_args.train_batch_size
        metrics["train_samples"] = streamed if data_args.streaming else len(data["train"])
        trainer.log_metrics("train", metrics)
        trainer.save_metrics("train", metrics)
        trainer.save_state()
        results.update(metrics)
    if training_args.do_eval and "validation" in data:
        metrics = trainer.evaluate()
        trainer.log_metrics("eval", metrics)
        trainer.save_metrics("eval", metrics)
        results.update(metrics)
    if training_args.do_predict and "test" in data:
        metrics = trainer.predict(data["test"], metric_key_prefix="test").metrics
        shortfall = fold_shortfall(data_args, splits)
        if shortfall:  # the results say that this fold is smaller than the standard one (and which actors it lacks)
            metrics["test_fold_missing_actors"] = "; ".join(
                f"{k} {', '.join(map(str, v))}" for k, v in shortfall.items()
            )
        trainer.log_metrics("test", metrics)
        trainer.save_metrics("test", metrics)
        results.update(metrics)
        if trainer.is_world_process_zero() and compute_metrics.last is not None:
            title = (
                f"{corpus_for_card(data_args)} fold {data_args.fold} {model.config.fusion_strategy}: "
                f"test WAR {metrics['test_war']:.3f}, UAR {metrics['test_uar']:.3f}"
            )
            matrix = compute_metrics.last["confusion_matrix"]
            save_confusion_matrix(matrix, label_names, os.path.join(output_dir, "confusion_matrix.png"), title)

    if trainer.is_world_process_zero():
        all_args = (model_args, data_args, recipe_args, training_args)
        save_run_args(output_dir, argv, all_args, started, feature_cache=feature_cache)
        if "test" in raw and not data_args.streaming and model.config.fusion_strategy != "prefused":
            card_writer.widget = widget_examples_from_split(
                raw["test"],
                output_dir,
                training_args.hub_model_id,
                corpus_for_card(data_args),
                processor.audio_sample_rate,
            )
        card_writer(output_dir)
    if training_args.push_to_hub:
        trainer.push_to_hub(commit_message=f"MultiMAE-DER {model.config.fusion_strategy}, fold {data_args.fold}")
    return results


if __name__ == "__main__":
    try:
        main()
    finally:
        end_process_group()  # a process group left to interpreter exit can abort the process
