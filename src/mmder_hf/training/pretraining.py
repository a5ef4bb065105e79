"""Pre-training's own work: self-supervised pre-training of the MultiMAE-DER encoder (VideoMAE's masked autoencoder
over fused audio-visual clips), side by side with :mod:`~mmder_hf.training.finetune`.

* :func:`build_pretraining_model`, :func:`describe_masks` / :func:`describe_target`: the masked autoencoder and
  what its objective is, in words for logs and the card.
* :mod:`~mmder_hf.training.pretraining_data`: the unlabelled clips it reads.
* :class:`PretrainingCardWriter`: the model card (data, clip count, mask ratios, epochs, loss curve).
* :func:`run_pretraining`: the whole run, as ``examples/pretrain.py`` starts it.

The arguments are in :mod:`~mmder_hf.training.arguments`, the run's life (refuse / reuse / resume, the record of
its settings) in :mod:`~mmder_hf.training.run`, the `Trainer` in :mod:`~mmder_hf.training.trainers`, the pictures
in :mod:`~mmder_hf.training.pictures`.
"""

from __future__ import annotations

import json
import logging
import math
import os
import time
from dataclasses import dataclass
from typing import Any, Optional, Sequence

from transformers import TrainingArguments, set_seed
from transformers.trainer_utils import get_last_checkpoint

from ..models.multimae_der import MultiMAEDERConfig, MultiMAEDERForPreTraining, draw_mask, mask_ratios
from ..models.multimae_der.modeling_multimae_der import AUDIO, MIXED, VIDEO, tubelet_modalities
from .arguments import DataArguments, ModelArguments, PretrainingArguments
from .model_loading import load_pretrained
from .pictures import ReconstructionPictureCallback, first_batch, save_loss_curve
from .pretraining_data import PretrainingData, load_pretraining_data, prepare_pretraining_data
from .recipes import DECODER_SIZES, MODEL_SIZES, PRETRAINING_RECIPES
from .run import (
    build_processor,
    config_overrides,
    hyperparameters,
    refuse_other_settings,
    result_settings,
    reuse_or_start_run,
    save_run_args,
    train_and_save,
)
from .trainers import MultiMAEDERPreTrainer


logger = logging.getLogger(__name__)


# ------------------------------------------------------------------------------------------------------ model
def pretraining_config_settings(pretrain_args: PretrainingArguments) -> dict:
    """The config fields a pre-training run sets from its flags."""
    return {
        "mask_type": pretrain_args.mask_type,
        "mask_ratio_video": pretrain_args.mask_ratio_video,
        "mask_ratio_audio": pretrain_args.mask_ratio_audio,
        "pretraining_target": pretrain_args.pretraining_target,
        "norm_pix_loss": pretrain_args.norm_pix_loss,
    }


def build_pretraining_model(
    model_args: ModelArguments, pretrain_args: PretrainingArguments
) -> MultiMAEDERForPreTraining:
    """A random masked autoencoder of ``--model_size`` (encoder and :data:`DECODER_SIZES`), or a checkpoint: a
    VideoMAE pre-training checkpoint (encoder and decoder load exactly), a MultiMAE-DER pre-training run (to go on
    from it), or any VideoMAE / MultiMAE-DER encoder (the decoder then starts random)."""
    settings = {**pretraining_config_settings(pretrain_args), **config_overrides(model_args)}
    kwargs = {"attn_implementation": model_args.attn_implementation} if model_args.attn_implementation else {}
    if model_args.model_name_or_path is None:
        size = {**MODEL_SIZES[model_args.model_size], **DECODER_SIZES[model_args.model_size]}
        config = MultiMAEDERConfig(**{**size, **settings}, fusion_strategy=model_args.fusion_strategy, **kwargs)
        return MultiMAEDERForPreTraining(config)
    return load_pretrained(
        MultiMAEDERForPreTraining,
        model_args.model_name_or_path,
        "decoder",
        fusion_strategy=model_args.fusion_strategy,
        revision=model_args.model_revision,
        trust_remote_code=model_args.trust_remote_code,
        **settings,
        **kwargs,
    )


def match_processor_statistics(model: MultiMAEDERForPreTraining, processor: Any) -> None:
    """Targets are computed in pixel space: undo exactly the normalisation the processor applies."""
    model.config.pixel_mean = [float(v) for v in processor.image_mean]
    model.config.pixel_deviation = [float(v) for v in processor.image_std]


def describe_masks(config: MultiMAEDERConfig) -> str:
    """One sentence for logs and the card: the mask type and the ratio of each kind of tubelet."""
    names = {"video": "video tubelets", "audio": "audio tubelets", "mixed": "tubelets mixing both modalities"}
    kinds = tubelet_modalities(config)
    per_frame = draw_mask(config, 1).numel() // len(kinds)
    parts = []
    for kind, ratio in mask_ratios(config).items():
        members = kinds.count({"video": VIDEO, "audio": AUDIO, "mixed": MIXED}[kind])
        drawn = per_frame if config.mask_type == "tube" else per_frame * members
        masked = math.floor(ratio * drawn + 1e-6)
        unit = "patches per tubelet" if config.mask_type == "tube" else f"patches of its {members} tubelet(s)"
        parts.append(f"{ratio:g} of the {names[kind]} ({masked} of {drawn} {unit})")
    ratios = ", ".join(parts)
    how = (
        "tube masking (the same spatial patches in every tubelet of a modality)"
        if config.mask_type == "tube"
        else "random masking (every tubelet drawn on its own)"
    )
    return f"{how}, masking {ratios} ({config.fusion_strategy}, tubelets of {config.tubelet_size} frames)."


def describe_target(config: MultiMAEDERConfig) -> str:
    pixels = "pixels normalised per patch and channel (norm_pix_loss)" if config.norm_pix_loss else "raw pixels"
    if config.pretraining_target == "frame_difference":
        return (
            f"MAE-DFER's joint appearance and motion target: the first frame of each masked tubelet as {pixels}, "
            "each later frame as its difference from the first; mean squared error."
        )
    return f"the masked tubelets' {pixels}; mean squared error (VideoMAE)."


def read_metric(path: str, key: str) -> Optional[float]:
    """One value of a metrics file the `Trainer` saved (``init_results.json``...), ``None`` if absent."""
    with open(path) as f:
        return json.load(f).get(key)


def saved_log_history(output_dir: str) -> list[dict]:
    """The ``log_history`` of the ``trainer_state.json`` in ``output_dir`` (``[]`` without one)."""
    state_path = os.path.join(output_dir, "trainer_state.json")
    if not os.path.isfile(state_path):
        return []
    with open(state_path) as f:
        return json.load(f).get("log_history", [])


def last_losses(log_history: list[dict]) -> dict:
    """The last logged training loss (and parts) and the last held-out loss (and parts)."""
    losses = {}
    for entry in log_history:
        for key in ("loss", "loss_video", "loss_audio"):
            if key in entry:
                losses[f"train_{key}"] = entry[key]
        for key in ("eval_loss", "eval_loss_video", "eval_loss_audio"):
            if key in entry:
                losses[key] = entry[key]
    return losses


@dataclass
class PretrainingCardWriter:
    """Writes the run's model card (also the `Trainer`'s hook before each push) from its saved state."""

    model_args: ModelArguments
    pretrain_args: PretrainingArguments
    training_args: TrainingArguments
    config: MultiMAEDERConfig
    data: PretrainingData
    initial_eval_loss: Optional[float] = None
    #: the live ``trainer.state.log_history``; ``None``: read from ``trainer_state.json`` (checkpoint pushes)
    history: Optional[list] = None

    def __call__(self, output_dir: str) -> None:
        from ..cards import write_pretraining_card

        history = saved_log_history(output_dir) if self.history is None else self.history
        if history:
            save_loss_curve(history, os.path.join(output_dir, "loss_curve.png"), self.initial_eval_loss)
        args = self.training_args
        write_pretraining_card(
            output_dir,
            self.config,
            model_id=args.hub_model_id or os.path.basename(os.path.abspath(args.output_dir)),
            data_description=self.data.description,
            train_clips=self.data.train_clips,
            eval_clips=self.data.eval_clips,
            mask_description=describe_masks(self.config),
            target_description=describe_target(self.config),
            corpus=self.data.corpus,
            dataset_id=self.data.dataset_id,
            base_model=self.model_args.model_name_or_path,
            hyperparameters=hyperparameters(args, self.pretrain_args),
            losses={**last_losses(history), "initial_eval_loss": self.initial_eval_loss},
        )


def run_pretraining(
    model_args: ModelArguments,
    data_args: DataArguments,
    pretrain_args: PretrainingArguments,
    training_args: TrainingArguments,
    argv: Optional[Sequence[str]] = None,
) -> dict:
    """Pre-train (or go on pre-training) as the arguments say, in ``training_args.output_dir``: the held-out loss at
    initialisation, training (resumed from the last checkpoint; a finished run of these settings is reused, never
    trained again), the held-out loss, pictures, ``run_args.json``, the card, and a push when asked.

    ``argv`` is the command recorded in ``run_args.json`` (default ``sys.argv``). Returns the metrics.
    """
    started = time.time()
    logger.info("Recipe %r: %s", pretrain_args.recipe, PRETRAINING_RECIPES[pretrain_args.recipe].description)
    output_dir = training_args.output_dir
    all_args = (model_args, data_args, pretrain_args, training_args)
    refuse_other_settings(output_dir, result_settings(*all_args))
    last_checkpoint = get_last_checkpoint(output_dir) if os.path.isdir(output_dir) and training_args.do_train else None
    set_seed(training_args.seed)

    # Data, model and processor. The folder holds the code files and processor from the start, so every
    # checkpoint the Trainer pushes loads with trust_remote_code.
    data = load_pretraining_data(data_args, pretrain_args, training_args, model_args.fusion_strategy)
    held_out = f"{data.eval_clips} held-out" if data.eval_clips is not None else "no held-out"
    source = data_args.dataset_source or "the built-in synthetic corpus"
    logger.info("Data: %s training clips and %s clips from %s", data.train_clips, held_out, source)
    model = build_pretraining_model(model_args, pretrain_args)
    processor = build_processor(model_args, data_args, model.config)
    match_processor_statistics(model, processor)
    logger.info("Masks: %s", describe_masks(model.config))
    finished = reuse_or_start_run(model, processor, training_args, kind="pre-training")
    if finished is None and training_args.should_save:  # the settings from the start: a killed run refuses others
        save_run_args(output_dir, argv, all_args, started)
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
        trainer.log_metrics("init", metrics)
        trainer.save_metrics("init", metrics)
        results.update(metrics)
    if os.path.isfile(init_path):
        card_writer.initial_eval_loss = read_metric(init_path, "init_loss")
    if finished is not None:
        results.update(finished)
    elif training_args.do_train:
        results.update(train_and_save(trainer, training_args, last_checkpoint, data.train_clips))
    if evaluate:
        metrics = trainer.evaluate()
        trainer.log_metrics("eval", metrics)
        trainer.save_metrics("eval", metrics)
        results.update(metrics)

    if trainer.is_world_process_zero():
        if finished is None:
            save_run_args(output_dir, argv, all_args, started, train_clips=data.train_clips)
        # a finished run's training log is the saved one: this process only evaluated
        saved = saved_log_history(output_dir) if finished is not None else []
        card_writer.history = saved + trainer.state.log_history
        card_writer(output_dir)
        logger.info("Saved the model, processor, metrics, pictures and card to %s", output_dir)
    if training_args.push_to_hub:
        trainer.push_to_hub(commit_message=f"MultiMAE-DER pre-training ({model.config.fusion_strategy})")
    return results


__all__ = [
    "PretrainingCardWriter",
    "build_pretraining_model",
    "describe_masks",
    "describe_target",
    "last_losses",
    "match_processor_statistics",
    "run_pretraining",
    "pretraining_config_settings",
    "read_metric",
    "saved_log_history",
]
