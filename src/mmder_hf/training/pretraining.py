"""The pieces ``examples/pretrain.py`` wires together: self-supervised pre-training of the MultiMAE-DER encoder.

* :class:`PretrainingArguments` and :func:`parse_pretraining_args`: finetune.py's ``ModelArguments`` and
  ``DataArguments`` (the same flags mean the same things), the masking / target flags, and every `TrainingArguments`
  flag, with the defaults of a pre-training recipe (:data:`PRETRAINING_RECIPES`).
* :func:`load_pretraining_data`: unlabelled clips from a folder of videos (any layout, searched recursively), a Hub
  dataset (streamed), or a corpus's training actors of one fold (labels ignored, the fold's test actors never read).
* :func:`prepare_pretraining_data`: decoding in DataLoader workers, or the preprocess-once cache; under several
  processes each rank builds and reads only its own contiguous shard (:class:`RankShardBatchSampler`).
* :class:`MultiMAEDERPreTrainer`: `Trainer` that logs the loss per modality and reads each rank's own shard.
* :class:`ReconstructionPictureCallback` / :func:`save_reconstruction_picture` / :func:`save_loss_curve`: pictures.
* :class:`PretrainingCardWriter`: the model card (data, clip count, mask ratios, epochs, loss curve).
"""

from __future__ import annotations

import json
import logging
import math
import os
import sys
from dataclasses import asdict, dataclass, field
from functools import partial
from typing import Any, Optional, Sequence

import datasets
import torch
from torch.utils.data import DataLoader
from transformers import Trainer, TrainerCallback, TrainingArguments
from transformers.trainer_utils import seed_worker

from ..data import MultiMAEDERDataCollator, load_emotion_dataset, preprocess_to_cache
from ..data.builders import BadDataReport, probe_media
from ..data.corpora import get_corpus_info, normalize_corpus_name
from ..data.distributed import ExampleSplitStream, split_streams_by_example
from ..data.loading import DEFAULT_CACHE_DIR
from ..data.synthetic import is_synthetic_source
from ..models.multimae_der import MultiMAEDERConfig, MultiMAEDERForPreTraining, draw_mask, mask_ratios
from ..models.multimae_der.modeling_multimae_der import (
    AUDIO,
    MIXED,
    VIDEO,
    patchify,
    tubelet_modalities,
    unpatchify,
)
from .finetune import DataArguments, ModelArguments, parse_with_recipe, result_settings, split_sizes
from .recipes import DECODER_SIZES, MODEL_SIZES, parse_config_overrides


logger = logging.getLogger(__name__)

#: ``--dataset_name`` for unlabelled videos: a local folder (searched recursively) or a Hub dataset id.
VIDEOS = "videos"
#: File endings read from a folder of videos.
VIDEO_EXTENSIONS = (".mp4", ".avi", ".mkv", ".mov", ".webm", ".flv", ".m4v", ".mpg", ".mpeg")

_COMMON = {"remove_unused_columns": False, "report_to": "none", "do_train": True, "do_eval": True}
#: Pre-training recipes: `TrainingArguments` defaults that any flag overrides.
PRETRAINING_RECIPES: dict[str, dict] = {
    # MAE-DFER on VoxCeleb2 (scripts/voxceleb2): AdamW (0.9, 0.95), lr 3e-4 at a total batch of 64, weight decay
    # 0.05, 5 warm-up epochs of 100 (5%), cosine; scale the lr with the total batch.
    "mae_dfer": {
        **_COMMON,
        "learning_rate": 3e-4,
        "adam_beta2": 0.95,
        "weight_decay": 0.05,
        "per_device_train_batch_size": 32,
        "per_device_eval_batch_size": 32,
        "num_train_epochs": 100,
        "lr_scheduler_type": "cosine",
        "warmup_steps": 0.05,
        "eval_strategy": "epoch",
        "save_strategy": "epoch",
        "save_total_limit": 2,
        "logging_strategy": "steps",
        "logging_steps": 50,
    },
    # A small random model on the synthetic corpus, on a CPU in a few minutes: the held-out loss halves in 60 epochs
    # (tests/test_pretraining_run.py), the face pixels catching up with the audio pictures after about 30.
    "quick": {
        **_COMMON,
        "learning_rate": 2e-3,
        "adam_beta2": 0.95,
        "weight_decay": 0.05,
        "per_device_train_batch_size": 16,
        "per_device_eval_batch_size": 32,
        "num_train_epochs": 60,
        "lr_scheduler_type": "cosine",
        "warmup_steps": 0.05,
        "eval_strategy": "epoch",
        "save_strategy": "epoch",
        "save_total_limit": 2,
        "logging_strategy": "epoch",
    },
}


@dataclass
class PretrainingArguments:
    """Masking, target and unlabelled-data choices of a pre-training run."""

    recipe: str = field(
        default="quick",
        metadata={
            "help": "Defaults that any flag overrides: 'mae_dfer' (MAE-DFER's VoxCeleb2 recipe: AdamW (0.9, 0.95), "
            "lr 3e-4 at a total batch of 64, weight decay 0.05, 100 epochs, 5%% warm-up then cosine) or 'quick' "
            "(a small random model on the synthetic corpus: lr 2e-3, batch 16, 60 epochs).",
            "choices": list(PRETRAINING_RECIPES),
        },
    )
    mask_type: Optional[str] = field(
        default=None,
        metadata={
            "help": "'tube' (the same patches in every tubelet of a modality) or 'random'. Default, as for the "
            "masking and target flags below: a MultiMAE-DER checkpoint's setting, else tube.",
            "choices": ["tube", "random"],
        },
    )
    mask_ratio_video: Optional[float] = field(
        default=None,
        metadata={
            "help": "Masked share of the video tubelets, and of every tubelet that mixes the modalities "
            "(OFOS, RFAS, CFAS, SFAS: this one ratio). Default: the checkpoint's, else 0.9.",
        },
    )
    mask_ratio_audio: Optional[float] = field(
        default=None,
        metadata={
            "help": "Masked share of the pure audio tubelets (FSLF, FFLS, audio). Default: the checkpoint's, else 0.8."
        },
    )
    pretraining_target: Optional[str] = field(
        default=None,
        metadata={
            "help": "'pixels' (normalised per patch with --norm_pix_loss) or 'frame_difference' (MAE-DFER). Default: "
            "the checkpoint's, else pixels.",
            "choices": ["pixels", "frame_difference"],
        },
    )
    norm_pix_loss: Optional[bool] = field(
        default=None,
        metadata={
            "help": "Normalise each target patch (VideoMAE). Default: the checkpoint's, else true.",
            "nargs": "?",
            "const": True,
        },
    )
    video_column: str = field(
        default="video", metadata={"help": "Video column of a Hub dataset (--dataset_name videos)."}
    )
    validation_clips: int = field(
        default=64,
        metadata={"help": "Clips of a folder of videos held out for the validation loss (at most a tenth of them)."},
    )
    reconstruction_clips: int = field(
        default=2, metadata={"help": "Held-out clips drawn in the reconstruction picture after every evaluation."}
    )

    def __post_init__(self):
        if self.recipe not in PRETRAINING_RECIPES:
            raise ValueError(
                f"Unknown pre-training recipe {self.recipe!r}; expected one of {list(PRETRAINING_RECIPES)}"
            )


def parse_pretraining_args(argv: Optional[Sequence[str]] = None) -> tuple:
    """``(ModelArguments, DataArguments, PretrainingArguments, TrainingArguments)`` from flags or one JSON file.

    ``--recipe`` (default ``quick``) gives the `TrainingArguments` defaults; every flag overrides them.
    """
    types = (ModelArguments, DataArguments, PretrainingArguments, TrainingArguments)
    return parse_with_recipe(types, PretrainingArguments, PRETRAINING_RECIPES.__getitem__, argv)


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
    overrides = parse_config_overrides(model_args.config_overrides, known=MultiMAEDERConfig().to_dict())
    for key in ("num_frames", "image_size"):
        if getattr(model_args, key) is not None:
            overrides[key] = getattr(model_args, key)
    settings = {**pretraining_config_settings(pretrain_args), **overrides}
    kwargs = {"attn_implementation": model_args.attn_implementation} if model_args.attn_implementation else {}
    if model_args.model_name_or_path is None:
        size = {**MODEL_SIZES[model_args.model_size], **DECODER_SIZES[model_args.model_size]}
        config = MultiMAEDERConfig(**{**size, **settings}, fusion_strategy=model_args.fusion_strategy)
        if model_args.attn_implementation:
            config._attn_implementation = model_args.attn_implementation
        return MultiMAEDERForPreTraining(config)
    return MultiMAEDERForPreTraining.from_pretrained(
        model_args.model_name_or_path,
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


# ------------------------------------------------------------------------------------------------------- data
def find_videos(folder: str) -> list[str]:
    """Every video file under ``folder`` (any layout, searched recursively), sorted."""
    found = []
    for root, dirs, files in os.walk(folder):
        dirs.sort()
        found += [os.path.join(root, f) for f in files if f.lower().endswith(VIDEO_EXTENSIONS)]
    if not found:
        raise ValueError(f"No video files ({', '.join(VIDEO_EXTENSIONS)}) under {folder}")
    return sorted(found)


def skip_unusable_videos(
    paths: list[str], root: str, need_video: bool = True, need_audio: bool = True, num_proc: Optional[int] = None
) -> tuple[list[str], BadDataReport]:
    """The files of ``paths`` that have the streams the strategy reads, and a report naming the others and why.

    Each file is demuxed once (:func:`~mmder_hf.data.builders.probe_media`, no decoding), in ``num_proc``
    processes, so that a broken file or one without an audio track is skipped and reported here rather than
    stopping the run at its first batch.
    """
    probed = datasets.Dataset.from_dict({"path": paths}).map(
        partial(_probe_batch, need_video=need_video, need_audio=need_audio),
        batched=True,
        batch_size=16,
        num_proc=num_proc if num_proc and num_proc > 1 and len(paths) > 1 else None,
        desc="checking the videos",
    )
    report = BadDataReport("videos")
    for path, reason in zip(paths, probed["reason"]):
        if reason:
            report.add(os.path.relpath(path, root), reason)
    report.log()
    return [p for p, reason in zip(paths, probed["reason"]) if not reason], report


def _probe_batch(batch: dict, need_video: bool, need_audio: bool) -> dict:
    return {"reason": [probe_media(p, need_video=need_video, need_audio=need_audio) or "" for p in batch["path"]]}


@dataclass
class PretrainingData:
    """Unlabelled ``train`` / ``validation`` splits and what the card says about them."""

    splits: dict
    description: str
    corpus: Optional[str] = None
    dataset_id: Optional[str] = None

    @property
    def train_clips(self) -> Any:
        train = self.splits["train"]
        return len(train) if isinstance(train, datasets.Dataset) else "streamed"

    @property
    def eval_clips(self) -> Optional[int]:
        ds = self.splits.get("validation")
        return len(ds) if isinstance(ds, datasets.Dataset) else None


def _undecoded_video(ds: Any, column: str) -> Any:
    """``ds`` with its video as ``{"path", "bytes"}`` cells in a ``video`` column: the processor reads the frames
    and the audio track of each file itself."""
    if column != "video":
        ds = ds.rename_column(column, "video")
    features = getattr(ds, "features", None)
    if features is not None and isinstance(features.get("video"), datasets.Video):
        ds = ds.cast_column("video", datasets.Video(decode=False))
    return ds


def load_pretraining_data(
    data_args: DataArguments,
    pretrain_args: PretrainingArguments,
    training_args: TrainingArguments,
    fusion_strategy: Optional[str] = None,
) -> PretrainingData:
    """Unlabelled clips for pre-training, with a held-out ``validation`` split for the loss.

    * ``--dataset_name videos --dataset_source <folder>``: every video file under the folder (recursively);
      ``--validation_clips`` of them (at most a tenth), drawn with the seed, are held out. Files without the streams
      ``fusion_strategy`` reads (audio for all but ``video`` / ``prefused``, video for all but ``audio``) or that
      are broken are skipped and reported (:func:`skip_unusable_videos`).
    * ``--dataset_name videos --dataset_source <Hub dataset id>``: its ``train`` split, streamed (``--max_steps``);
      its ``validation`` split, if any, for the loss (``--validation_clips`` of it).
    * ``--dataset_name <corpus> [--dataset_source ...] --fold k``: the corpus's fold ``k``: its training actors are
      pre-trained on and its validation actors give the held-out loss; its **test actors are never read**, so that
      fine-tuning on fold ``k`` afterwards reports results on clips the encoder has not seen. Labels are ignored.
    """
    source = data_args.dataset_source
    if data_args.dataset_name.lower() == VIDEOS:
        if source is None:
            raise ValueError("--dataset_name videos needs --dataset_source: a folder of videos or a Hub dataset id")
        if os.path.isdir(source):
            paths = find_videos(source)
            if data_args.max_train_samples is not None:
                paths = paths[: data_args.max_train_samples]
            found = len(paths)
            paths, report = skip_unusable_videos(
                paths,
                source,
                need_video=fusion_strategy != "audio",
                need_audio=fusion_strategy not in ("video", "prefused"),
                num_proc=data_args.preprocessing_num_workers,
            )
            if not paths:
                raise ValueError(f"None of the {found} video files under {source} can be used:\n{report.summary()}")
            names = [os.path.relpath(path, source) for path in paths]
            full = datasets.Dataset.from_dict({"video": paths, "file": names})
            held = min(pretrain_args.validation_clips, len(paths) // 10)
            if held:
                parts = full.train_test_split(test_size=held, seed=training_args.seed, shuffle=True)
                splits = {"train": parts["train"], "validation": parts["test"]}
            else:
                splits = {"train": full}
            description = (
                f"{len(paths)} video files found under a local folder (searched recursively; unlabelled). "
                f"{held} of them, drawn with seed {training_args.seed}, are held out for the validation loss."
            )
            if len(report):
                reasons = "; ".join(f"{reason}: {len(files)}" for reason, files in sorted(report.by_reason().items()))
                description += f" {len(report)} unusable file(s) were skipped ({reasons})."
            return PretrainingData(splits, description)
        if not data_args.streaming or training_args.max_steps <= 0:
            raise ValueError("A Hub dataset of videos is streamed: pass --streaming true and --max_steps")
        streamed = datasets.load_dataset(source, streaming=True, cache_dir=data_args.cache_dir)
        splits = {"train": _undecoded_video(streamed["train"], pretrain_args.video_column)}
        if "validation" in streamed:
            splits["validation"] = _undecoded_video(streamed["validation"], pretrain_args.video_column).take(
                data_args.max_eval_samples or pretrain_args.validation_clips
            )
        description = f"The `train` split of the Hub dataset `{source}`, streamed (unlabelled)."
        if "validation" in splits:
            description += " Its `validation` split gives the held-out loss."
        return PretrainingData(splits, description, dataset_id=source)

    corpus = normalize_corpus_name(data_args.dataset_name)
    with training_args.main_process_first(desc="loading the corpus"):
        raw = load_emotion_dataset(
            corpus,
            source=source,
            fold=data_args.fold,
            label_set=data_args.label_set,
            streaming=data_args.streaming,
            cache_dir=data_args.cache_dir,
        )
    splits = {"train": raw["train"], "validation": raw["validation"]}  # never the test actors
    for split, limit in (("train", data_args.max_train_samples), ("validation", data_args.max_eval_samples)):
        if limit is not None:
            ds = splits[split]
            splits[split] = ds.take(limit) if data_args.streaming else ds.select(range(min(limit, len(ds))))
    info = get_corpus_info(corpus)
    name = "the built-in synthetic RAVDESS-format corpus" if is_synthetic_source(source) else info.pretty_name
    sizes = split_sizes(raw)
    actors = {split: ", ".join(map(str, ids)) for split, (_, ids) in sizes.items()}
    description = (
        f"The training actors of fold {data_args.fold} of {name} (labels ignored)"
        + (f": actors {actors['train']}" if "train" in actors else "")
        + "; the held-out loss is computed on the fold's validation actors"
        + (f" ({actors['validation']})" if "validation" in actors else "")
        + f". The fold's test actors{' (' + actors['test'] + ')' if 'test' in actors else ''} were never read, so "
        f"fine-tuning on fold {data_args.fold} afterwards is evaluated on people the encoder has not seen."
    )
    synthetic = is_synthetic_source(source)
    return PretrainingData(splits, description, corpus="synthetic" if synthetic else corpus, dataset_id=source)


class RankShardSampler:
    """One process's own contiguous shard in a fresh random order every epoch (``set_epoch``), completed to
    ``ceil(total / world_size)`` indices: a rank whose shard is one clip shorter repeats its first clip once."""

    def __init__(self, num_examples: int, total: int, world_size: int, seed: int):
        self.num_examples, self.seed = num_examples, seed
        self.per_rank = math.ceil(total / world_size)
        if not 0 < num_examples <= self.per_rank:
            raise ValueError(f"a shard of {num_examples} clips cannot be one of {world_size} shards of {total}")
        self.epoch = 0

    def set_epoch(self, epoch: int) -> None:
        self.epoch = epoch

    def __iter__(self):
        generator = torch.Generator().manual_seed(self.seed * 100_003 + self.epoch)
        order = torch.randperm(self.num_examples, generator=generator).tolist()
        return iter(order + order[: self.per_rank - self.num_examples])

    def __len__(self) -> int:
        return self.per_rank


class RankShardBatchSampler:
    """Batches of :class:`RankShardSampler`: every rank yields the same number of batches, as distributed training
    needs. Every clip is read exactly once per epoch when ``world_size`` divides ``total``, and at most one clip per
    rank twice otherwise. ``set_epoch`` reshuffles (accelerate's loader and the `Trainer` call it every epoch)."""

    def __init__(self, num_examples: int, total: int, world_size: int, batch_size: int, seed: int, drop_last=False):
        self.sampler = RankShardSampler(num_examples, total, world_size, seed)
        self.batch_size, self.drop_last = batch_size, drop_last

    def set_epoch(self, epoch: int) -> None:
        self.sampler.set_epoch(epoch)

    def __iter__(self):
        order = list(self.sampler)
        for start in range(0, len(order), self.batch_size):
            batch = order[start : start + self.batch_size]
            if len(batch) == self.batch_size or not self.drop_last:
                yield batch

    def __len__(self) -> int:
        full, rest = divmod(len(self.sampler), self.batch_size)
        return full + int(bool(rest) and not self.drop_last)


@dataclass
class PreparedData:
    train: Any
    validation: Any
    collator: MultiMAEDERDataCollator
    #: clips of the whole training split when each rank holds only its own shard (else ``None``)
    rank_sharded_total: Optional[int] = None


def prepare_pretraining_data(
    data: PretrainingData,
    model: MultiMAEDERForPreTraining,
    processor: Any,
    data_args: DataArguments,
    training_args: TrainingArguments,
) -> PreparedData:
    """What the `Trainer` reads: the collator decodes clips in DataLoader workers, or the preprocess-once cache
    (``--preprocess_cache``, built with ``--preprocessing_num_workers`` processes) holds them.

    Under several processes a map-style training split is cut into one contiguous shard per rank; each rank builds
    the cache of its own shard only (so no node needs the others' files) and reads only that shard
    (:class:`RankShardBatchSampler`, through :class:`MultiMAEDERPreTrainer`). A streaming split is given whole to the
    `Trainer`, split by example with even batches (:class:`~mmder_hf.data.distributed.ExampleSplitStream`).
    """
    collator = MultiMAEDERDataCollator(processor, label_column=None)
    train, validation = data.splits["train"], data.splits.get("validation")
    world, rank = max(training_args.world_size, 1), training_args.process_index
    total = None
    if world > 1 and isinstance(train, datasets.Dataset):
        total = len(train)
        train = train.shard(num_shards=world, index=rank, contiguous=True)
        logger.info("Rank %d of %d reads its own %d of the %d training clips", rank, world, len(train), total)
        if total % world:
            logger.warning(
                "%d training clips for %d processes: %d rank(s) repeat one clip per epoch to keep equal steps",
                total,
                world,
                world - total % world,
            )
    if data_args.preprocess_cache and isinstance(train, datasets.Dataset):
        cache_root = os.path.join(data_args.cache_dir or DEFAULT_CACHE_DIR, "preprocessed")
        splits = datasets.DatasetDict({"train": train})
        build = partial(
            preprocess_to_cache,
            processor=processor,
            cache_dir=cache_root,
            label_column=None,
            keep_columns=("file",),  # names the clip (logs, tests); the collator ignores it
            num_proc=data_args.preprocessing_num_workers,
        )
        if total is None:
            with training_args.main_process_first(desc="preprocessing"):
                train = build(splits)["train"]
        else:  # each rank its own shard: nobody waits for, or reads, another rank's files
            train = build(splits)["train"]
        config = model.config
        unused = [
            c
            for c, n in (("pixel_values", config.num_video_frames), ("audio_values", config.num_audio_frames))
            if not n
        ]
        train = train.remove_columns([c for c in unused if c in train.column_names])
    # A stream goes to the Trainer whole, split by example with even batches (never by shard: uneven step counts).
    sizes = {"train": training_args.per_device_train_batch_size, None: training_args.per_device_eval_batch_size}
    streams = split_streams_by_example({"train": train, "validation": validation}, sizes, world, rank)
    return PreparedData(streams["train"], streams["validation"], collator, total)


# ---------------------------------------------------------------------------------------------------- trainer
class MultiMAEDERPreTrainer(Trainer):
    """`Trainer` for `MultiMAEDERForPreTraining`: logs ``loss_video`` / ``loss_audio`` beside the loss (training
    logs and ``eval_*`` metrics), reads each rank's own shard when ``rank_sharded_total`` is given, and writes this
    project's model card (``card_writer``) before pushes."""

    def __init__(self, *args, rank_sharded_total: Optional[int] = None, card_writer=None, **kwargs):
        self.rank_sharded_total = rank_sharded_total
        self.card_writer = card_writer
        self._modality_sums = {"train": {}, "eval": {}}
        super().__init__(*args, **kwargs)

    def _record(self, phase: str, outputs: Any, weight: int) -> None:
        sums = self._modality_sums[phase]
        for name in ("loss_video", "loss_audio"):
            value = outputs.get(name)
            if value is not None:
                total, count = sums.get(name, (0.0, 0))
                sums[name] = (total + float(value.detach()) * weight, count + weight)

    def compute_loss(self, model, inputs, return_outputs=False, num_items_in_batch=None):
        outputs = model(**inputs)
        if model.training:
            self._record("train", outputs, 1)
        return (outputs["loss"], outputs) if return_outputs else outputs["loss"]

    def prediction_step(self, model, inputs, prediction_loss_only, ignore_keys=None):
        inputs = self._prepare_inputs(inputs)
        with torch.no_grad():
            outputs = model(**inputs)
        batch = next(v for v in inputs.values() if isinstance(v, torch.Tensor)).shape[0]
        self._record("eval", outputs, batch)
        return outputs["loss"].detach(), None, None

    def _mean_across_ranks(self, sums: dict) -> dict:
        means = {}
        for name, (total, count) in sorted(sums.items()):
            pair = torch.tensor([total, float(count)], device=self.args.device, dtype=torch.float64)
            if self.args.world_size > 1:
                pair = self.accelerator.reduce(pair, reduction="sum")
            if pair[1] > 0:
                means[name] = float(pair[0] / pair[1])
        sums.clear()
        return means

    def evaluate(self, *args, **kwargs):
        """The `Trainer`'s evaluation, on a fork of the random state, so that it leaves the training stream (masks,
        shuffles) untouched: iterating a DataLoader draws from the global generator. The `Trainer` saves a
        checkpoint's random state before the end-of-epoch evaluation of the same step, so without this a resumed
        run would draw other masks than an uninterrupted one."""
        devices = [self.args.device] if self.args.device.type == "cuda" else []
        with torch.random.fork_rng(devices=devices):
            return super().evaluate(*args, **kwargs)

    def evaluation_loop(self, *args, **kwargs):
        self._modality_sums["eval"].clear()
        output = super().evaluation_loop(*args, **kwargs)
        prefix = kwargs.get("metric_key_prefix", args[3] if len(args) > 3 else "eval")
        for name, value in self._mean_across_ranks(self._modality_sums["eval"]).items():
            output.metrics[f"{prefix}_{name}"] = value
        return output

    def log(self, logs: dict, *args, **kwargs) -> None:
        if "loss" in logs:  # a training log: add the modality parts since the last one
            logs.update(self._mean_across_ranks(self._modality_sums["train"]))
        super().log(logs, *args, **kwargs)

    def get_train_dataloader(self) -> DataLoader:
        if self.rank_sharded_total is None:
            return super().get_train_dataloader()
        args = self.args
        sampler = RankShardBatchSampler(
            len(self.train_dataset),
            self.rank_sharded_total,
            args.world_size,
            self._train_batch_size,
            args.data_seed if args.data_seed is not None else args.seed,
            drop_last=args.dataloader_drop_last,
        )
        loader = DataLoader(
            self.train_dataset,
            batch_sampler=sampler,
            collate_fn=self.data_collator,
            num_workers=args.dataloader_num_workers,
            pin_memory=args.dataloader_pin_memory,
            persistent_workers=args.dataloader_persistent_workers and args.dataloader_num_workers > 0,
            prefetch_factor=args.dataloader_prefetch_factor if args.dataloader_num_workers > 0 else None,
            worker_init_fn=partial(seed_worker, num_workers=args.dataloader_num_workers, rank=args.process_index),
        )
        prepared = self.accelerator.prepare(loader)
        # The batches are this rank's already: accelerate's sharding wrapper must pass them through unchanged
        # (not split them among ranks again, nor complete a short last batch with clips from the start).
        wrapper = getattr(prepared, "batch_sampler", None)
        if getattr(wrapper, "batch_sampler", None) is sampler:
            wrapper.num_processes, wrapper.process_index, wrapper.even_batches = 1, 0, False
        return prepared

    def create_model_card(self, **kwargs):
        if self.card_writer is None:
            return super().create_model_card(**kwargs)
        if self.is_world_process_zero():
            self.card_writer(self.args.output_dir)

    @staticmethod
    def read_metric(path: str, key: str) -> Optional[float]:
        """One value of a metrics file the `Trainer` saved (``init_results.json``...), ``None`` if absent."""
        with open(path) as f:
            return json.load(f).get(key)


# --------------------------------------------------------------------------------------------------- pictures
def _denormalise(clip: torch.Tensor, config: MultiMAEDERConfig) -> torch.Tensor:
    mean = torch.tensor(config.pixel_mean, dtype=clip.dtype).view(1, 1, -1, 1, 1)
    std = torch.tensor(config.pixel_deviation, dtype=clip.dtype).view(1, 1, -1, 1, 1)
    return (clip * std + mean).clamp(0, 1)


@torch.no_grad()
def reconstruct(model: MultiMAEDERForPreTraining, batch: dict) -> dict[str, torch.Tensor]:
    """``input``, ``masked`` (masked patches grey) and ``reconstruction`` (visible patches as given, masked ones as
    predicted) of the fused clips in ``batch``, as ``(batch, frames, 3, H, W)`` images in [0, 1], and the frames'
    modality codes. Predictions in normalised-patch space get each true patch's mean and spread back, as MAE's
    pictures do; a frame-difference target is added back to the tubelet's first frame."""
    was_training = model.training
    model.eval()
    config = model.config
    inputs = {k: v.to(model.device) for k, v in batch.items() if k in ("pixel_values", "audio_values")}
    out = model(**inputs)
    clip, codes = model.fuse(inputs.get("pixel_values"), inputs.get("audio_values"))
    model.train(was_training)
    clip, mask = clip.float().cpu(), out.bool_masked_pos.cpu()
    pixels = _denormalise(clip, config)
    patches = patchify(pixels, config.tubelet_size, config.patch_size)  # (B, N, ts*p*p, C)
    b, n, d, c = patches.shape
    predicted = out.logits.float().cpu().reshape(b, -1, d, c)
    if config.pretraining_target == "frame_difference":
        frames = predicted.reshape(b, predicted.shape[1], config.tubelet_size, -1, c)
        frames = torch.cat((frames[:, :, :1], frames[:, :, 1:] + frames[:, :, :1]), dim=2)
        predicted = frames.reshape(b, -1, d, c)
    if config.norm_pix_loss:
        true = patches[mask].reshape(b, -1, d, c)
        spread = true.var(dim=-2, unbiased=True, keepdim=True).sqrt() + 1e-6
        predicted = predicted * spread + true.mean(dim=-2, keepdim=True)
    full = patches.clone()
    full[mask] = predicted.reshape(-1, d, c)
    grey = patches.clone()
    grey[mask] = 0.5
    return {
        "input": pixels,
        "masked": unpatchify(grey.reshape(b, n, -1), config),
        "reconstruction": unpatchify(full.reshape(b, n, -1), config).clamp(0, 1),
        "modalities": codes.cpu(),
    }


def save_reconstruction_picture(model: MultiMAEDERForPreTraining, batch: dict, path: str, title: str = "") -> str:
    """A PNG a person can look at: for each clip, its fused frames as input / masked / reconstructed rows, every
    column labelled with what the frame shows (face frame, audio image, or both), so the video and the audio parts
    of the reconstruction can be judged apart."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    images = reconstruct(model, batch)
    clips, frames = images["input"].shape[:2]
    names = {0: "face", 1: "audio", 2: "mixed"}
    figure, axes = plt.subplots(3 * clips, frames, figsize=(1.3 * frames, 1.4 * 3 * clips), squeeze=False)
    for i in range(clips):
        for r, row in enumerate(("input", "masked", "reconstruction")):
            for f in range(frames):
                ax = axes[3 * i + r, f]
                ax.imshow(images[row][i, f].permute(1, 2, 0).numpy())
                ax.set_xticks([]), ax.set_yticks([])
                if r == 0:
                    ax.set_title(f"{names[int(images['modalities'][i, f])]} {f}", fontsize=7)
                if f == 0:
                    ax.set_ylabel(f"clip {i + 1}\n{row}", fontsize=7)
    figure.suptitle(title or "input / masked / reconstruction", fontsize=9)
    figure.tight_layout()
    os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)
    figure.savefig(path, dpi=100)
    plt.close(figure)
    return path


class ReconstructionPictureCallback(TrainerCallback):
    """After every evaluation, the main process draws the same held-out clips (:func:`save_reconstruction_picture`)
    into ``<output_dir>/reconstructions/step-<N>.png`` and ``<output_dir>/reconstructions.png`` (the latest)."""

    def __init__(self, batch: dict):
        self.batch = batch

    def on_evaluate(self, args, state, control, model=None, metrics=None, **kwargs):
        if not state.is_world_process_zero or model is None:
            return
        model = getattr(model, "module", model)
        loss = (metrics or {}).get("eval_loss")
        title = f"step {state.global_step}" + (f", held-out loss {loss:.3f}" if loss is not None else "")
        path = os.path.join(args.output_dir, "reconstructions", f"step-{state.global_step}.png")
        save_reconstruction_picture(model, self.batch, path, title)
        save_reconstruction_picture(model, self.batch, os.path.join(args.output_dir, "reconstructions.png"), title)


def save_loss_curve(log_history: list[dict], path: str, initial_eval_loss: Optional[float] = None) -> Optional[str]:
    """``loss_curve.png``: the training loss (and its face / audio parts) and the held-out loss against steps."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    series = {k: [] for k in ("loss", "loss_video", "loss_audio", "eval_loss")}
    for entry in log_history:
        for key in series:
            if key in entry:
                series[key].append((entry["step"], entry[key]))
    if initial_eval_loss is not None:
        series["eval_loss"].insert(0, (0, initial_eval_loss))
    if not any(series.values()):
        return None
    figure, ax = plt.subplots(figsize=(6, 3.5))
    labels = {"loss": "training", "loss_video": "training, face pixels", "loss_audio": "training, audio pixels"}
    labels["eval_loss"] = "held-out clips"
    for key, points in series.items():
        if points:
            style = "o-" if key == "eval_loss" else "-"
            ax.plot(*zip(*points), style, label=labels[key], linewidth=1.5 if key in ("loss", "eval_loss") else 0.8)
    ax.set_xlabel("step")
    ax.set_ylabel("reconstruction loss (MSE)")
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8)
    figure.tight_layout()
    figure.savefig(path, dpi=100)
    plt.close(figure)
    return path


def first_batch(dataset: Any, collator: MultiMAEDERDataCollator, count: int) -> Optional[dict]:
    """The first ``count`` clips of ``dataset``, collated (the clips of the reconstruction pictures)."""
    if dataset is None or count <= 0:
        return None
    rows = (
        list(dataset.take(count))
        if isinstance(dataset, (datasets.IterableDataset, ExampleSplitStream))
        else list(dataset.select(range(min(count, len(dataset)))))
    )
    return collator(rows) if rows else None


# ------------------------------------------------------------------------------------------------------- card
def save_pretraining_run_args(
    output_dir: str, argv: Optional[Sequence[str]], all_args: Sequence[Any], started: float, **extra
) -> str:
    """``run_args.json``: the command, every argument, the settings that change the results (compared by a later
    run in the same folder: :func:`~mmder_hf.training.finetune.settings_differences`), wall time and versions."""
    import time

    import transformers

    record = {"argv": list(sys.argv if argv is None else argv)}
    for name, args in zip(("model", "data", "pretraining", "training"), all_args):
        record[name] = args.to_dict() if hasattr(args, "to_dict") else asdict(args)
    record["settings"] = result_settings(*all_args)
    record.update(wall_time_s=round(time.time() - started, 1), **extra)
    record["versions"] = {"torch": torch.__version__, "transformers": transformers.__version__}
    path = os.path.join(output_dir, "run_args.json")
    with open(path, "w") as f:
        json.dump(record, f, indent=1, default=str)
    return path


def _value(setting: Any) -> Any:
    return getattr(setting, "value", setting)  # an enum's value, not its repr


def pretraining_hyperparameters(training_args: TrainingArguments, pretrain_args: PretrainingArguments) -> dict:
    world = max(training_args.world_size, 1)
    return {
        "recipe": pretrain_args.recipe,
        "optimizer": f"{_value(training_args.optim)} (betas {training_args.adam_beta1}, {training_args.adam_beta2})",
        "learning rate": training_args.learning_rate,
        "lr schedule": f"{_value(training_args.lr_scheduler_type)}, warmup {training_args.warmup_steps}",
        "weight decay": training_args.weight_decay,
        "batch size (total)": training_args.per_device_train_batch_size
        * training_args.gradient_accumulation_steps
        * world,
        "epochs": training_args.num_train_epochs
        if training_args.max_steps <= 0
        else f"{training_args.max_steps} steps",
        "processes": world,
        "seed": training_args.seed,
        "precision": "bf16" if training_args.bf16 else "fp16" if training_args.fp16 else "fp32",
    }


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
            hyperparameters=pretraining_hyperparameters(args, self.pretrain_args),
            losses={**last_losses(history), "initial_eval_loss": self.initial_eval_loss},
        )


__all__ = [
    "DECODER_SIZES",
    "PRETRAINING_RECIPES",
    "VIDEOS",
    "MultiMAEDERPreTrainer",
    "PretrainingArguments",
    "PretrainingCardWriter",
    "PretrainingData",
    "RankShardBatchSampler",
    "RankShardSampler",
    "ReconstructionPictureCallback",
    "build_pretraining_model",
    "describe_masks",
    "saved_log_history",
    "describe_target",
    "find_videos",
    "first_batch",
    "last_losses",
    "load_pretraining_data",
    "match_processor_statistics",
    "parse_pretraining_args",
    "prepare_pretraining_data",
    "pretraining_config_settings",
    "pretraining_hyperparameters",
    "reconstruct",
    "save_loss_curve",
    "save_pretraining_run_args",
    "save_reconstruction_picture",
]
