"""Fine-tuning's own work, side by side with :mod:`~mmder_hf.training.pretraining`: the labelled fold, the
classifier, what the `Trainer` reads, the card, and the whole run.

* :func:`load_data` / :func:`prepare_datasets`: the fold's splits, preprocessed once (or streamed), and what the
  `Trainer` reads under any number of processes; :func:`report_rank_split` says how they are shared.
* :func:`build_model`: a random model of ``--model_size`` or a checkpoint, with the recipe's frozen backbone and
  drop path.
* :class:`CardWriter`, :func:`widget_examples_from_split`, :func:`fold_shortfall`: the model card and its examples.
* :func:`run_finetuning`: the whole run, as ``examples/finetune.py`` starts it and cross-validation runs each fold.

The arguments are in :mod:`~mmder_hf.training.arguments`, the run's life (refuse / reuse / resume, the record of
its settings) in :mod:`~mmder_hf.training.run`, the `Trainer` in :mod:`~mmder_hf.training.trainers`.
"""

from __future__ import annotations

import logging
import os
import time
from dataclasses import dataclass, field
from typing import Any, Optional, Sequence

import datasets
import transformers
from transformers import TrainingArguments, set_seed
from transformers.trainer_utils import get_last_checkpoint

from ..cards import write_model_card
from ..cards.widget import widget_examples
from ..data import MultiMAEDERDataCollator, load_emotion_dataset, load_prefused_dataset, preprocess_to_cache
from ..data.corpora import get_corpus_info, normalize_corpus_name
from ..data.distributed import ExampleSplitStream, split_streams_by_example
from ..data.loading import DEFAULT_CACHE_DIR
from ..data.media_writing import write_row_clip
from ..data.synthetic import is_synthetic_source
from ..models.multimae_der import MultiMAEDERConfig, MultiMAEDERForVideoClassification, MultiMAEDERProcessor
from .arguments import DataArguments, ModelArguments, RecipeArguments
from .feature_cache import can_cache_features, compute_pooled_features
from .lora import apply_lora, count_parameters, describe_parameters, lora_card_rows, push_at_the_end_only
from .metrics import WarUarMetrics, save_confusion_matrix
from .model_loading import load_pretrained
from .recipes import MODEL_SIZES, RECIPES
from .run import (
    build_processor,
    config_overrides,
    drop_unused_columns,
    hyperparameters,
    refuse_other_settings,
    result_settings,
    reuse_or_start_run,
    save_run_args,
    split_sizes,
    train_and_save,
    trim_splits,
)
from .trainers import MultiMAEDERTrainer, add_drop_path


logger = logging.getLogger(__name__)


def load_data(data_args: DataArguments, model_args: ModelArguments, training_args: TrainingArguments) -> Any:
    """The fold's train / validation / test splits (the authors' pre-fused zips for ``prefused``), trimmed."""
    with training_args.main_process_first(desc="loading the corpus"):
        if model_args.fusion_strategy.lower() == "prefused":
            raw = load_prefused_dataset(
                data_args.dataset_source,
                strategy=data_args.prefused_layout,
                streaming=data_args.streaming,
                cache_dir=data_args.cache_dir,
            )
        else:
            raw = load_emotion_dataset(
                data_args.dataset_name,
                source=data_args.dataset_source,
                fold=data_args.fold,
                label_set=data_args.label_set,
                streaming=data_args.streaming,
                cache_dir=data_args.cache_dir,
            )
    raw = trim_splits(raw, data_args)
    sizes = [f"{len(ds)} {split}" for split, ds in raw.items() if isinstance(ds, datasets.Dataset)]
    if sizes and training_args.process_index == 0:
        source = data_args.dataset_source or "the built-in synthetic corpus"
        logger.info(
            "Data: %s fold %s from %s: %s clips", data_args.dataset_name, data_args.fold, source, ", ".join(sizes)
        )
    return raw


def build_model(
    model_args: ModelArguments, recipe_args: RecipeArguments, label_names: list[str]
) -> MultiMAEDERForVideoClassification:
    """A random model of ``--model_size`` or a checkpoint, with the recipe's frozen backbone and drop path."""
    labels = {"id2label": dict(enumerate(label_names)), "label2id": {name: i for i, name in enumerate(label_names)}}
    overrides = config_overrides(model_args)
    kwargs = {"attn_implementation": model_args.attn_implementation} if model_args.attn_implementation else {}
    if model_args.model_name_or_path is None:
        size = {**MODEL_SIZES[model_args.model_size], **overrides}
        config = MultiMAEDERConfig(**size, fusion_strategy=model_args.fusion_strategy, **labels, **kwargs)
        model = MultiMAEDERForVideoClassification(config)
    else:
        # VideoMAE checkpoints (pre-training or classification) and MultiMAE-DER checkpoints both load here: the
        # encoder and head keep VideoMAE's parameter names; a head of another size is re-initialised.
        model = load_pretrained(
            MultiMAEDERForVideoClassification,
            model_args.model_name_or_path,
            "classification head",
            fusion_strategy=model_args.fusion_strategy,
            revision=model_args.model_revision,
            trust_remote_code=model_args.trust_remote_code,
            ignore_mismatched_sizes=True,
            **labels,
            **overrides,
            **kwargs,
        )
    if recipe_args.freeze_backbone:
        model.freeze_backbone()
    add_drop_path(model, recipe_args.drop_path_rate)
    return model


def adapt_with_lora(
    model: MultiMAEDERForVideoClassification,
    model_args: ModelArguments,
    recipe_args: RecipeArguments,
    training_args: TrainingArguments,
) -> Any:
    """``model`` with LoRA adapters when ``--lora_r`` asks (:func:`~mmder_hf.training.lora.apply_lora`; pushed when
    the run ends only), else ``model``; logs the trainable parameter count either way.

    A finished run's merged weights are already loaded: its adapters start at zero, so it computes the same.
    """
    if not recipe_args.uses_lora:
        logger.info("trainable parameters: %s", describe_parameters(*count_parameters(model)))
        return model
    if model_args.model_name_or_path is None:
        logger.warning(
            "LoRA on a randomly initialised encoder (no --model_name_or_path): its weights stay random and only the "
            "adapters and the head learn; LoRA is meant to adapt a trained checkpoint"
        )
    push_at_the_end_only(training_args)
    return apply_lora(model, recipe_args)


def prepare_datasets(
    raw: Any,
    model: MultiMAEDERForVideoClassification,
    processor: MultiMAEDERProcessor,
    data_args: DataArguments,
    recipe_args: RecipeArguments,
    training_args: TrainingArguments,
) -> tuple[dict, Any, bool]:
    """The splits the `Trainer` reads, its collator, and whether the frozen-backbone feature cache is used.

    Map-style corpora are preprocessed once into the 8-bit cache (``--preprocess_cache``); with a frozen encoder
    and no augmentation, the encoder then runs once per clip and the head trains on the features.

    Under several processes each split is given to the `Trainer` whole: its accelerate data loader gives each rank
    its part (a map-style split by indices; a streaming split by example, batch by batch, through
    :class:`~mmder_hf.data.distributed.ExampleSplitStream`, so that uneven shards never give ranks different step
    counts), and the collator decodes only those. Splitting it here as well
    (:func:`~mmder_hf.data.split_for_rank`) would shard it twice and lose data.
    """
    streaming = data_args.streaming
    if streaming and training_args.max_steps <= 0:
        raise ValueError("--streaming needs --max_steps (an iterable dataset has no length)")
    collator = MultiMAEDERDataCollator(processor)
    data = raw
    report_rank_split(raw["train"], training_args)
    if data_args.preprocess_cache and not streaming:
        cache_root = os.path.join(data_args.cache_dir or DEFAULT_CACHE_DIR, "preprocessed")
        with training_args.main_process_first(desc="preprocessing"):
            data = preprocess_to_cache(raw, processor, cache_root, num_proc=data_args.preprocessing_num_workers)
        data = datasets.DatasetDict({k: drop_unused_columns(v, model.config, also=["actor"]) for k, v in data.items()})
    use_cache = can_cache_features(model, recipe_args)
    if use_cache:
        logger.info("Frozen backbone and no augmentation: encoding every clip once, then training the head")
        model.to(training_args.device)
        encode = dict(
            data_collator=collator, batch_size=training_args.per_device_eval_batch_size, device=training_args.device
        )
        data = {
            split: compute_pooled_features(model, ds, desc=f"encoder features ({split})", **encode)
            for split, ds in data.items()
        }
        collator = transformers.default_data_collator
    if streaming:  # by example with even batches, never by shard (see mmder_hf.data.distributed)
        sizes = {"train": training_args.per_device_train_batch_size, None: training_args.per_device_eval_batch_size}
        data = split_streams_by_example(data, sizes, training_args.world_size, training_args.process_index)
    return data, collator, use_cache


def report_rank_split(train: Any, training_args: TrainingArguments) -> Optional[str]:
    """Say how the training split is shared among processes, and how many clips repeat to fill the last batch.

    accelerate completes the last batch of an epoch from the start of the split so that every rank takes the same
    number of full batches: those clips are seen twice in that epoch. Returns the message (also logged).
    """
    world = training_args.world_size
    if world <= 1:
        return None
    per_step = training_args.per_device_train_batch_size * world
    uneven = False
    if isinstance(train, (datasets.IterableDataset, ExampleSplitStream)):
        uneven = True
        message = (
            f"The training stream ({train.n_shards} shard(s)) is split by example among {world} processes, so that "
            f"every process takes the same steps: each reads the whole stream and keeps its own part of each batch of "
            f"{per_step}; the last batch of each pass is completed from the first (how many: logged after each pass)"
        )
    else:
        repeated = -len(train) % per_step
        message = f"{len(train)} training clips shared among {world} processes"
        if repeated:
            uneven = True
            message += f"; {repeated} clip(s) repeat in each epoch to complete the last batch of {per_step}"
    if training_args.process_index == 0:
        (logger.warning if uneven else logger.info)(message)
    return message


def corpus_for_card(data_args: DataArguments) -> str:
    """The card template of a run: the corpus, or ``synthetic`` for the built-in synthetic corpus."""
    corpus = normalize_corpus_name(data_args.dataset_name)
    source = data_args.dataset_source
    synthetic = is_synthetic_source(source)
    return "synthetic" if corpus == "ravdess" and synthetic else corpus


@dataclass
class CardWriter:
    """Writes a run's model card (also the `Trainer`'s hook before each push); ``widget`` is filled after testing."""

    model_args: ModelArguments
    data_args: DataArguments
    recipe_args: RecipeArguments
    training_args: TrainingArguments
    config: MultiMAEDERConfig
    widget: list = field(default_factory=list)
    #: ``split -> (clips, actors)`` of the data the run used, stated in the card (see :func:`split_sizes`).
    splits: dict = field(default_factory=dict)
    #: Rows added to the hyperparameter table (a LoRA run's settings and trainable parameters).
    extra_rows: dict = field(default_factory=dict)

    def __call__(self, output_dir: str) -> None:
        args = self.training_args
        write_model_card(
            output_dir,
            corpus_for_card(self.data_args),
            config=self.config,
            fold=self.data_args.fold,
            model_id=args.hub_model_id or os.path.basename(os.path.abspath(args.output_dir)),
            base_model=self.model_args.model_name_or_path,
            dataset_id=self.data_args.dataset_source,
            label_set=self.data_args.label_set,
            recipe=self.recipe_args.recipe,
            recipe_description=RECIPES[self.recipe_args.recipe].description,
            hyperparameters={**hyperparameters(args, self.recipe_args), **self.extra_rows},
            widget=self.widget,
            splits=self.splits,
        )


def fold_shortfall(data_args: DataArguments, splits: dict) -> dict[str, list[int]]:
    """``split -> actor ids`` of the standard fold that this run's data lacked (a missing or corrupt archive)."""
    corpus = corpus_for_card(data_args)
    if corpus == "synthetic" or data_args.fold is None or not splits:
        return {}
    from ..data.folds import missing_actors

    return missing_actors(corpus, data_args.fold, [a for _, actors in splits.values() for a in actors])


def widget_examples_from_split(
    split: datasets.Dataset,
    output_dir: str,
    hub_model_id: Optional[str],
    corpus: str,
    audio_sample_rate: int = 16000,
    count: int = 2,
) -> list:
    """Write ``count`` test clips of different emotions next to the card and precompute the model's outputs on them.

    Each clip is exactly what the model read from its row (:func:`~mmder_hf.data.media_writing.write_row_clip`:
    the row's time range with its audio in one file), so the card shows the model's output on the clip it shows.
    The clips go to ``<output_dir>/examples/`` (pushed with the model) and the card's ``widget`` entries point at
    their Hub URLs (or at the relative path when no ``--hub_model_id`` is given). A corpus whose licence forbids
    redistribution (IEMOCAP) gets no examples: they would be pushed with the model.
    """
    info = get_corpus_info(corpus)
    if not info.redistributable:
        logger.info("No widget examples: the %s licence forbids redistributing its clips", info.pretty_name)
        return []
    media = [c for c in ("video", "audio") if c in split.column_names]
    raw = split.cast_column("video", datasets.Video(decode=False))
    if "audio" in media:
        raw = raw.cast_column("audio", datasets.Audio(decode=False))
    names = split.features["emotion"].names
    examples, seen = [], set()
    os.makedirs(os.path.join(output_dir, "examples"), exist_ok=True)
    for row in raw:
        if row["emotion"] in seen:
            continue
        seen.add(row["emotion"])
        stem = os.path.splitext(os.path.basename(row["video"].get("path") or "clip"))[0]
        name = f"{names[row['emotion']]}_{stem}.mp4"
        target = write_row_clip(row, os.path.join(output_dir, "examples", name), audio_sample_rate)
        src = f"examples/{name}"
        if hub_model_id:
            src = f"https://huggingface.co/{hub_model_id}/resolve/main/{src}"
        examples.append({"path": target, "src": src, "example_title": f"{names[row['emotion']]} (test clip)"})
        if len(examples) == count:
            break
    return widget_examples(output_dir, examples, top_k=3)


def run_finetuning(
    model_args: ModelArguments,
    data_args: DataArguments,
    recipe_args: RecipeArguments,
    training_args: TrainingArguments,
    argv: Optional[Sequence[str]] = None,
) -> dict:
    """Fine-tune (and test) as the arguments say, in ``training_args.output_dir``: data -> model -> `Trainer` ->
    train (resumed from the last checkpoint; a finished run of these settings is reused, never trained again) ->
    validation and test metrics -> confusion matrix, ``run_args.json``, the card with its examples -> push.

    ``argv`` is the command recorded in ``run_args.json`` (default ``sys.argv``). Returns the metrics.
    """
    started = time.time()
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
    model.config.training_data = corpus_for_card(data_args)  # "synthetic": it recognises synthetic clips only
    processor = build_processor(model_args, data_args, model.config)
    finished = reuse_or_start_run(model, processor, training_args)  # a finished run is evaluated and carded again
    model = adapt_with_lora(model, model_args, recipe_args, training_args)
    data, collator, feature_cache = prepare_datasets(raw, model, processor, data_args, recipe_args, training_args)

    compute_metrics = WarUarMetrics(label_names)
    splits = split_sizes(raw)
    card_writer = CardWriter(model_args, data_args, recipe_args, training_args, model.config, splits=splits)
    card_writer.extra_rows = lora_card_rows(recipe_args, model)
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
        streamed = training_args.max_steps * training_args.train_batch_size
        clips = streamed if data_args.streaming else len(data["train"])
        results.update(train_and_save(trainer, training_args, last_checkpoint, clips))
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
        trainable, total = count_parameters(model)
        parameters = {"trainable": trainable, "total": total}
        save_run_args(output_dir, argv, all_args, started, feature_cache=feature_cache, parameters=parameters)
        if "test" in raw and not data_args.streaming and model.config.fusion_strategy != "prefused":
            card_writer.widget = widget_examples_from_split(
                raw["test"],
                output_dir,
                training_args.hub_model_id,
                corpus_for_card(data_args),
                processor.audio_sample_rate,
            )
        card_writer(output_dir)
        logger.info("Saved the model, processor, metrics and card to %s", output_dir)
    if training_args.push_to_hub:
        trainer.push_to_hub(commit_message=f"MultiMAE-DER {model.config.fusion_strategy}, fold {data_args.fold}")
    return results


__all__ = [
    "CardWriter",
    "adapt_with_lora",
    "build_model",
    "corpus_for_card",
    "run_finetuning",
    "fold_shortfall",
    "load_data",
    "prepare_datasets",
    "report_rank_split",
    "widget_examples_from_split",
]
