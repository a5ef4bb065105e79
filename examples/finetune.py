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

import contextlib
import copy
import json
import logging
import os
import shutil
import sys
import time
from dataclasses import asdict, dataclass, field
from typing import Optional, Sequence

import datasets
import torch
import transformers
from transformers import HfArgumentParser, TrainingArguments, set_seed
from transformers.trainer_utils import get_last_checkpoint

from mmder_hf import MultiMAEDERConfig, MultiMAEDERForVideoClassification
from mmder_hf.data import MultiMAEDERDataCollator, load_emotion_dataset, load_prefused_dataset, preprocess_to_cache, split_for_rank
from mmder_hf.hub import write_model_card
from mmder_hf.processing_multimae_der import MultiMAEDERProcessor
from mmder_hf.training import (
    MODEL_SIZES,
    RECIPES,
    MultiMAEDERTrainer,
    RecipeArguments,
    WarUarMetrics,
    add_drop_path,
    apply_recipe_defaults,
    cache_processor_settings,
    can_cache_features,
    compute_pooled_features,
    feature_head_mode,
    freeze_backbone,
    parse_config_overrides,
    save_confusion_matrix,
)


logger = logging.getLogger(__name__)


@dataclass
class ModelArguments:
    """Which backbone to start from and how the model fuses the modalities."""

    model_name_or_path: Optional[str] = field(
        default=None,
        metadata={
            "help": "A VideoMAE checkpoint (Hub id such as MCG-NJU/videomae-base or a folder; pre-training or "
            "classification), a MultiMAE-DER checkpoint, or nothing for a randomly initialised model of "
            "--model_size."
        },
    )
    model_size: str = field(
        default="small",
        metadata={"help": "Random model when no checkpoint is given.", "choices": list(MODEL_SIZES)},
    )
    config_overrides: Optional[str] = field(
        default=None,
        metadata={"help": "Config fields to change, e.g. 'hidden_size=128,num_hidden_layers=4,hidden_dropout_prob=0.1'."},
    )
    fusion_strategy: str = field(
        default="FSLF",
        metadata={"help": "FSLF, FFLS, OFOS, RFAS, CFAS, SFAS; the baselines 'video' / 'audio'; or 'prefused'."},
    )
    num_frames: Optional[int] = field(
        default=None, metadata={"help": "Length of the fused clip (default: the checkpoint's or --model_size's)."}
    )
    image_size: Optional[int] = field(
        default=None, metadata={"help": "Frame side in pixels (default: the checkpoint's or --model_size's)."}
    )
    attn_implementation: Optional[str] = field(
        default=None, metadata={"help": "'sdpa' (default), 'eager', 'flex_attention' or 'flash_attention_2'."}
    )
    trust_remote_code: bool = field(default=False, metadata={"help": "Allow code from the checkpoint repository."})
    model_revision: str = field(default="main", metadata={"help": "Checkpoint revision (branch, tag or commit)."})
    torch_num_threads: Optional[int] = field(
        default=None,
        metadata={
            "help": "CPU threads for torch. Default: 1 when a tiny/small random model trains on the CPU (its "
            "matrices are so small that threads cost more than they give, ~15x on a busy 2-core machine) and "
            "OMP_NUM_THREADS is unset; otherwise torch's default."
        },
    )


@dataclass
class DataArguments:
    """Which corpus, fold and labels, and how clips become model inputs."""

    dataset_name: str = field(
        default="ravdess", metadata={"help": "Corpus: ravdess, crema_d or iemocap.", "aliases": ["--corpus"]}
    )
    dataset_source: Optional[str] = field(
        default=None,
        metadata={
            "help": "Local folder of the distributed files, a Hub dataset id holding them, or a corpus published "
            "with dataset_scripts/publish_<corpus>.py. Nothing (RAVDESS only): the built-in synthetic corpus."
        },
    )
    fold: int = field(default=1, metadata={"help": "Subject-independent fold (RAVDESS 1-6, CREMA-D 1-5, IEMOCAP 1-5)."})
    label_set: Optional[str] = field(
        default=None, metadata={"help": "RAVDESS 8class (default) or 7class; CREMA-D 6class; IEMOCAP 4class."}
    )
    prefused_layout: str = field(
        default="FSLF",
        metadata={"help": "With --fusion_strategy prefused: which of the authors' RAVDESS_<LAYOUT>.zip to read."},
    )
    audio_representation: str = field(
        default="mfcc", metadata={"help": "Audio pictures: 'mfcc' (the paper) or 'log-mel'.", "choices": ["mfcc", "log-mel"]}
    )
    frame_sampling: str = field(
        default="aligned", metadata={"help": "'aligned' (frames at the audio windows' centres) or 'original'."}
    )
    streaming: bool = field(default=False, metadata={"help": "Stream the corpus (needs --max_steps); decodes on the fly."})
    preprocess_cache: bool = field(
        default=True,
        metadata={"help": "Preprocess every clip once into an Arrow cache reused by later epochs and runs (map-style)."},
    )
    preprocessing_num_workers: Optional[int] = field(default=None, metadata={"help": "Processes for the preprocessing."})
    cache_dir: Optional[str] = field(
        default=None, metadata={"help": "Cache for datasets, the synthetic corpus and preprocessed clips."}
    )
    max_train_samples: Optional[int] = field(default=None, metadata={"help": "Keep only this many training clips."})
    max_eval_samples: Optional[int] = field(default=None, metadata={"help": "Keep only this many validation/test clips."})


def parse_args(argv: Optional[Sequence[str]] = None):
    argv = list(sys.argv[1:] if argv is None else argv)
    parser = HfArgumentParser((ModelArguments, DataArguments, RecipeArguments, TrainingArguments))
    # Media columns must reach the collator; nothing is reported anywhere unless asked.
    # Train, then report validation and test metrics, unless told otherwise (`--do_predict False`...).
    parser.set_defaults(remove_unused_columns=False, report_to="none", do_train=True, do_eval=True, do_predict=True)
    if len(argv) == 1 and argv[0].endswith(".json"):
        return parser.parse_json_file(os.path.abspath(argv[0]))
    apply_recipe_defaults(parser, argv)
    return parser.parse_args_into_dataclasses(args=argv)


def load_data(data_args: DataArguments, model_args: ModelArguments, training_args: TrainingArguments):
    with training_args.main_process_first(desc="loading the corpus"):
        if model_args.fusion_strategy.lower() == "prefused":
            raw = load_prefused_dataset(
                data_args.dataset_source, strategy=data_args.prefused_layout, streaming=data_args.streaming,
                cache_dir=data_args.cache_dir,
            )  # fmt: skip
        else:
            raw = load_emotion_dataset(
                data_args.dataset_name, source=data_args.dataset_source, fold=data_args.fold,
                label_set=data_args.label_set, streaming=data_args.streaming, cache_dir=data_args.cache_dir,
            )  # fmt: skip
    for split, limit in (("train", data_args.max_train_samples), ("validation", data_args.max_eval_samples), ("test", data_args.max_eval_samples)):
        if limit is not None and split in raw:
            raw[split] = raw[split].take(limit) if data_args.streaming else raw[split].select(range(min(limit, len(raw[split]))))
    return raw


def build_model(model_args: ModelArguments, label_names: list[str]) -> MultiMAEDERForVideoClassification:
    labels = {"id2label": dict(enumerate(label_names)), "label2id": {name: i for i, name in enumerate(label_names)}}
    overrides = parse_config_overrides(model_args.config_overrides)
    for key in ("num_frames", "image_size"):
        if getattr(model_args, key) is not None:
            overrides[key] = getattr(model_args, key)
    kwargs = {"attn_implementation": model_args.attn_implementation} if model_args.attn_implementation else {}
    if model_args.model_name_or_path is None:
        config = MultiMAEDERConfig(
            **{**MODEL_SIZES[model_args.model_size], **overrides}, fusion_strategy=model_args.fusion_strategy, **labels
        )
        if model_args.attn_implementation:
            config._attn_implementation = model_args.attn_implementation
        return MultiMAEDERForVideoClassification(config)
    # VideoMAE checkpoints (pre-training or classification) and MultiMAE-DER checkpoints both load here: the encoder
    # and head keep VideoMAE's parameter names; a head of another size is re-initialised.
    return MultiMAEDERForVideoClassification.from_pretrained(
        model_args.model_name_or_path, fusion_strategy=model_args.fusion_strategy, revision=model_args.model_revision,
        trust_remote_code=model_args.trust_remote_code, ignore_mismatched_sizes=True, **labels, **overrides, **kwargs,
    )  # fmt: skip


def build_processor(model_args, data_args, config) -> MultiMAEDERProcessor:
    settings = {"audio_representation": data_args.audio_representation, "frame_sampling": data_args.frame_sampling}
    source = model_args.model_name_or_path
    if source is not None and os.path.isfile(os.path.join(source, "preprocessor_config.json")):
        processor = MultiMAEDERProcessor.from_pretrained(source)
        for key, value in {**settings, "fusion_strategy": config.fusion_strategy, "num_frames": config.num_frames, "image_size": config.image_size}.items():
            setattr(processor, key, value)
        return processor
    return MultiMAEDERProcessor.from_model_config(config, **settings)


def save_code_and_processor(model, processor, output_dir: str) -> None:
    """Everything a checkpoint push needs besides the weights: config + code files, pipeline code, processor."""
    from mmder_hf.pipeline import add_pipeline_to_checkpoint, custom_pipelines_entry

    model.config.custom_pipelines = custom_pipelines_entry()
    model.save_pretrained(output_dir)
    processor.save_pretrained(output_dir)
    add_pipeline_to_checkpoint(output_dir)


def corpus_for_card(data_args: DataArguments) -> str:
    from mmder_hf.data.corpora import normalize_corpus_name

    corpus = normalize_corpus_name(data_args.dataset_name)
    source = data_args.dataset_source
    synthetic = source is None or os.path.isfile(os.path.join(str(source), "synthetic_corpus.json"))
    return "synthetic" if corpus == "ravdess" and synthetic else corpus


def main(argv: Optional[Sequence[str]] = None) -> dict:
    model_args, data_args, recipe_args, training_args = parse_args(argv)
    started = time.time()

    logging.basicConfig(
        format="%(asctime)s - %(levelname)s - %(name)s - %(message)s", datefmt="%H:%M:%S", handlers=[logging.StreamHandler(sys.stdout)]
    )  # fmt: skip
    log_level = training_args.get_process_log_level()
    logger.setLevel(log_level)
    logging.getLogger("mmder_hf").setLevel(log_level)
    datasets.utils.logging.set_verbosity(log_level)
    transformers.utils.logging.set_verbosity(log_level)
    logger.info("Recipe %r: %s", recipe_args.recipe, RECIPES[recipe_args.recipe].description)
    # Each rank reads its own clips; accelerate must not decode on rank 0 and broadcast.
    training_args.accelerator_config.dispatch_batches = False
    if training_args.device.type == "cpu":
        training_args.dataloader_pin_memory = False  # nothing to pin for (and a warning every epoch)

    last_checkpoint = None
    if os.path.isdir(training_args.output_dir) and training_args.do_train:
        last_checkpoint = get_last_checkpoint(training_args.output_dir)
        if last_checkpoint is not None and training_args.resume_from_checkpoint is None:
            logger.warning("Resuming from %s", last_checkpoint)
    set_seed(training_args.seed)
    threads = model_args.torch_num_threads
    if threads is None and "OMP_NUM_THREADS" not in os.environ and training_args.device.type == "cpu":
        threads = 1 if model_args.model_name_or_path is None and model_args.model_size in ("tiny", "small") else None
    if threads:
        torch.set_num_threads(threads)

    # ------------------------------------------------------------------------------------------------ data
    raw = load_data(data_args, model_args, training_args)
    label_names = list(raw["train"].features["emotion"].names)

    # ----------------------------------------------------------------------------------------------- model
    model = build_model(model_args, label_names)
    processor = build_processor(model_args, data_args, model.config)
    if recipe_args.freeze_backbone:
        freeze_backbone(model)
    add_drop_path(model, recipe_args.drop_path_rate)
    if training_args.should_save:
        save_code_and_processor(model, processor, training_args.output_dir)

    # -------------------------------------------------------------------------------------- preprocessing
    streaming = data_args.streaming
    if streaming:
        raw = datasets.IterableDatasetDict({k: split_for_rank(v) if k == "train" else v for k, v in raw.items()})
    collator = MultiMAEDERDataCollator(processor)
    if data_args.preprocess_cache and not streaming:
        config = model.config
        cache_proc = processor
        if config.fusion_strategy != "prefused":
            cache_proc = copy.deepcopy(processor)
            for key, value in cache_processor_settings(config.num_video_frames, config.num_audio_frames).items():
                setattr(cache_proc, key, value)
        cache_root = os.path.join(data_args.cache_dir or os.path.expanduser("~/.cache/mmder_hf"), "preprocessed")
        unused = [c for c in ("actor", "pixel_values" if not config.num_video_frames else None, "audio_values" if not config.num_audio_frames else None) if c]
        with training_args.main_process_first(desc="preprocessing"):
            data = preprocess_to_cache(raw, cache_proc, cache_root, num_proc=data_args.preprocessing_num_workers)
            data = datasets.DatasetDict({k: v.remove_columns([c for c in unused if c in v.column_names]) for k, v in data.items()})
    else:
        data = raw
    if streaming and training_args.max_steps <= 0:
        raise ValueError("--streaming needs --max_steps (an iterable dataset has no length)")

    # ---------------------------------------------------------------------------------- fast path or plain
    use_cache = can_cache_features(model, recipe_args)
    if use_cache:
        logger.info("Frozen backbone and no augmentation: encoding every clip once, then training the head")
        model.to(training_args.device)
        encode = dict(data_collator=collator, batch_size=training_args.per_device_eval_batch_size, device=training_args.device)
        data = {split: compute_pooled_features(model, ds, desc=f"encoder features ({split})", **encode) for split, ds in data.items()}
        collator = transformers.default_data_collator

    compute_metrics = WarUarMetrics(label_names)
    hub_id = training_args.hub_model_id or os.path.basename(os.path.abspath(training_args.output_dir))

    widget: list = []

    def card_writer(output_dir: str) -> None:
        write_model_card(
            output_dir, corpus_for_card(data_args), model_id=hub_id, fold=data_args.fold, config=model.config,
            base_model=model_args.model_name_or_path, dataset_id=data_args.dataset_source, label_set=data_args.label_set,
            recipe=recipe_args.recipe, recipe_description=RECIPES[recipe_args.recipe].description,
            hyperparameters=hyperparameters(training_args, recipe_args), widget=widget,
        )  # fmt: skip

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
    head_mode = feature_head_mode(model) if use_cache else contextlib.nullcontext()
    results: dict = {}
    with head_mode:
        # ------------------------------------------------------------------------------------------ train
        if training_args.do_train:
            checkpoint = training_args.resume_from_checkpoint or last_checkpoint
            train_result = trainer.train(resume_from_checkpoint=checkpoint)
            trainer.save_model()
            metrics = train_result.metrics
            metrics["train_samples"] = len(data["train"]) if not streaming else training_args.max_steps * training_args.train_batch_size
            trainer.log_metrics("train", metrics)
            trainer.save_metrics("train", metrics)
            trainer.save_state()
            results.update(metrics)
        # --------------------------------------------------------------------------------------- evaluate
        if training_args.do_eval and "validation" in data:
            metrics = trainer.evaluate()
            trainer.log_metrics("eval", metrics)
            trainer.save_metrics("eval", metrics)
            results.update(metrics)
        if training_args.do_predict and "test" in data:
            output = trainer.predict(data["test"], metric_key_prefix="test")
            trainer.log_metrics("test", output.metrics)
            trainer.save_metrics("test", output.metrics)
            results.update(output.metrics)
            if trainer.is_world_process_zero() and compute_metrics.last is not None:
                title = f"{corpus_for_card(data_args)} fold {data_args.fold} {model.config.fusion_strategy}: test WAR {output.metrics['test_war']:.3f}, UAR {output.metrics['test_uar']:.3f}"
                save_confusion_matrix(compute_metrics.last["confusion_matrix"], label_names, os.path.join(training_args.output_dir, "confusion_matrix.png"), title)

    # ------------------------------------------------------------------------------------ card and push
    if trainer.is_world_process_zero():
        with open(os.path.join(training_args.output_dir, "run_args.json"), "w") as f:
            json.dump(
                {"argv": list(sys.argv if argv is None else argv), "model": asdict(model_args), "data": asdict(data_args),
                 "recipe": asdict(recipe_args), "training": training_args.to_dict(), "wall_time_s": round(time.time() - started, 1),
                 "feature_cache": use_cache, "versions": {"torch": torch.__version__, "transformers": transformers.__version__}},
                f, indent=1, default=str,
            )  # fmt: skip
        if "test" in raw and not streaming and model.config.fusion_strategy != "prefused":
            widget.extend(widget_examples_from_split(raw["test"], training_args.output_dir, training_args.hub_model_id))
        card_writer(training_args.output_dir)
    if training_args.push_to_hub:
        trainer.push_to_hub(commit_message=f"MultiMAE-DER {model.config.fusion_strategy}, fold {data_args.fold}")
    return results


def widget_examples_from_split(split: datasets.Dataset, output_dir: str, hub_model_id: Optional[str], count: int = 2) -> list:
    """Copy ``count`` test clips of different emotions next to the card and precompute the model's outputs on them.

    The clips go to ``<output_dir>/examples/`` (pushed with the model), and the card's ``widget`` entries point at
    their Hub URLs (or at the relative path when no ``--hub_model_id`` is given).
    """
    from mmder_hf.widget import widget_examples

    raw = split.cast_column("video", datasets.Video(decode=False)).select_columns(["video", "emotion"])
    names = split.features["emotion"].names
    examples, seen = [], set()
    os.makedirs(os.path.join(output_dir, "examples"), exist_ok=True)
    for row in raw:
        media = row["video"]
        if row["emotion"] in seen or not (media.get("bytes") or media.get("path")):
            continue
        seen.add(row["emotion"])
        name = f"{names[row['emotion']]}_{os.path.basename(media.get('path') or 'clip.mp4')}"
        target = os.path.join(output_dir, "examples", name)
        if media.get("bytes"):
            with open(target, "wb") as f:
                f.write(media["bytes"])
        else:
            shutil.copyfile(media["path"], target)
        src = f"examples/{name}"
        if hub_model_id:
            src = f"https://huggingface.co/{hub_model_id}/resolve/main/{src}"
        examples.append({"path": target, "src": src, "example_title": f"{names[row['emotion']]} (test clip)"})
        if len(examples) == count:
            break
    return widget_examples(output_dir, examples, top_k=3)


def hyperparameters(training_args: TrainingArguments, recipe_args: RecipeArguments) -> dict:
    """The settings a model card shows."""
    world = max(training_args.world_size, 1)
    return {
        "recipe": recipe_args.recipe,
        "frozen backbone": recipe_args.freeze_backbone,
        "optimizer": training_args.optim,
        "learning rate": training_args.learning_rate,
        "lr schedule": f"{training_args.lr_scheduler_type}, warmup {training_args.warmup_steps}",
        "weight decay": training_args.weight_decay,
        "layer-wise lr decay": recipe_args.layer_decay,
        "drop path": recipe_args.drop_path_rate,
        "label smoothing": training_args.label_smoothing_factor,
        "mixup alpha": recipe_args.mixup_alpha,
        "face flips": recipe_args.flip,
        "batch size (total)": training_args.per_device_train_batch_size * training_args.gradient_accumulation_steps * world,
        "epochs": training_args.num_train_epochs if training_args.max_steps <= 0 else f"{training_args.max_steps} steps",
        "seed": training_args.seed,
        "precision": "bf16" if training_args.bf16 else "fp16" if training_args.fp16 else "fp32",
    }


if __name__ == "__main__":
    main()
