#!/usr/bin/env python
"""Pre-train the MultiMAE-DER encoder without labels: VideoMAE's masked autoencoder over fused audio-visual clips.

The built-in default (only ``--output_dir`` given) pre-trains a small random model on the training actors of fold 1
of the synthetic corpus, on a CPU in a few minutes:

    python examples/pretrain.py --output_dir runs/pretrained

A folder of talking-face videos (any layout, searched recursively), a Hub dataset (streamed), or a corpus's training
actors (``--dataset_name ravdess --dataset_source /data/RAVDESS --fold 3``: the fold's test actors are never read):

    python examples/pretrain.py --output_dir runs/pretrained --dataset_name videos --dataset_source /data/vox2 \\
        --model_name_or_path MCG-NJU/videomae-base --recipe mae_dfer --bf16

Every `TrainingArguments` flag works, and the same command runs under ``accelerate launch`` / ``torchrun`` on any
number of processes and nodes (each rank reads, and caches, only its own shard of the clips). Then fine-tune:

    python examples/finetune.py --output_dir runs/finetuned --model_name_or_path runs/pretrained

Writes to ``--output_dir``: the masked autoencoder with its code files (``AutoModelForPreTraining`` with
``trust_remote_code=True``), the processor, ``init_results.json`` / ``train_results.json`` / ``eval_results.json``
(``*_loss``, ``*_loss_video``, ``*_loss_audio``), ``loss_curve.png``, ``reconstructions.png`` (and
``reconstructions/step-<N>.png`` after every evaluation), ``README.md`` (the model card) and ``run_args.json``.
"""

from __future__ import annotations

import logging
import os
import time
from typing import Optional, Sequence

from transformers import set_seed
from transformers.trainer_utils import get_last_checkpoint

from mmder_hf.training.finetune import (
    build_processor,
    end_process_group,
    refuse_other_settings,
    result_settings,
    reuse_or_start_run,
    setup_run,
)
from mmder_hf.training.pretraining import (
    MultiMAEDERPreTrainer,
    PretrainingCardWriter,
    ReconstructionPictureCallback,
    build_pretraining_model,
    describe_masks,
    first_batch,
    load_pretraining_data,
    match_processor_statistics,
    parse_pretraining_args,
    prepare_pretraining_data,
    save_pretraining_run_args,
    saved_log_history,
)


logger = logging.getLogger(__name__)


def main(argv: Optional[Sequence[str]] = None) -> dict:
    model_args, data_args, pretrain_args, training_args = parse_pretraining_args(argv)
    started = time.time()
    setup_run(model_args, training_args)
    output_dir = training_args.output_dir
    all_args = (model_args, data_args, pretrain_args, training_args)
    refuse_other_settings(output_dir, result_settings(*all_args))
    last_checkpoint = get_last_checkpoint(output_dir) if os.path.isdir(output_dir) and training_args.do_train else None
    set_seed(training_args.seed)

    # Data, model and processor. The folder holds the code files and processor from the start, so every
    # checkpoint the Trainer pushes loads with trust_remote_code.
    data = load_pretraining_data(data_args, pretrain_args, training_args, model_args.fusion_strategy)
    model = build_pretraining_model(model_args, pretrain_args)
    processor = build_processor(model_args, data_args, model.config)
    match_processor_statistics(model, processor)
    logger.info("Masks: %s", describe_masks(model.config))
    finished = reuse_or_start_run(model, processor, training_args, kind="pre-training")
    if finished is None and training_args.should_save:  # the settings from the start: a killed run refuses others
        save_pretraining_run_args(output_dir, argv, all_args, started)
    prepared = prepare_pretraining_data(data, model, processor, data_args, training_args)

    card_writer = PretrainingCardWriter(model_args, pretrain_args, training_args, model.config, data)
    trainer = MultiMAEDERPreTrainer(
        model=model,
        args=training_args,
        train_dataset=prepared.train,
        eval_dataset=prepared.validation,
        data_collator=prepared.collator,
        processing_class=processor,
        rank_sharded_total=prepared.rank_sharded_total,
        card_writer=card_writer,
    )
    pictures = first_batch(prepared.validation, prepared.collator, pretrain_args.reconstruction_clips)
    if pictures is not None:
        trainer.add_callback(ReconstructionPictureCallback(pictures))

    results: dict = {}
    evaluate = training_args.do_eval and prepared.validation is not None
    init_path = os.path.join(output_dir, "init_results.json")
    # the held-out loss at initialisation: the bar to go below
    if evaluate and last_checkpoint is None and finished is None:
        metrics = trainer.evaluate(metric_key_prefix="init")
        trainer.save_metrics("init", metrics)
        results.update(metrics)
    if os.path.isfile(init_path):
        card_writer.initial_eval_loss = MultiMAEDERPreTrainer.read_metric(init_path, "init_loss")
    if finished is not None:
        results.update(finished)
    elif training_args.do_train:
        if last_checkpoint is not None and training_args.resume_from_checkpoint is None:
            logger.warning("Resuming from %s", last_checkpoint)
        train_result = trainer.train(resume_from_checkpoint=training_args.resume_from_checkpoint or last_checkpoint)
        trainer.save_model()
        metrics = train_result.metrics
        metrics["train_samples"] = data.train_clips
        trainer.log_metrics("train", metrics)
        trainer.save_metrics("train", metrics)
        trainer.save_state()
        results.update(metrics)
    if evaluate:
        metrics = trainer.evaluate()
        trainer.log_metrics("eval", metrics)
        trainer.save_metrics("eval", metrics)
        results.update(metrics)

    if trainer.is_world_process_zero():
        if finished is None:
            save_pretraining_run_args(output_dir, argv, all_args, started, train_clips=data.train_clips)
        # a finished run's training log is the saved one: this process only evaluated
        saved = saved_log_history(output_dir) if finished is not None else []
        card_writer.history = saved + trainer.state.log_history
        card_writer(output_dir)
    if training_args.push_to_hub:
        trainer.push_to_hub(commit_message=f"MultiMAE-DER pre-training ({model.config.fusion_strategy})")
    return results


if __name__ == "__main__":
    try:
        main()
    finally:
        end_process_group()  # a process group left to interpreter exit can abort the process
