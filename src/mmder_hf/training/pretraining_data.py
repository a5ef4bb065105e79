"""The unlabelled clips pre-training reads, and how the `Trainer` reads them.

* :func:`load_pretraining_data`: unlabelled clips from a folder of videos (any layout, searched recursively), a Hub
  dataset (streamed), or a corpus's training actors of one fold (labels ignored, the fold's test actors never read).
* :func:`prepare_pretraining_data`: decoding in DataLoader workers, or the preprocess-once cache; under several
  processes each rank builds and reads only its own contiguous shard
  (:class:`~mmder_hf.data.distributed.RankShardBatchSampler`, through the pre-training `Trainer`).
"""

from __future__ import annotations

import logging
import os
from dataclasses import dataclass
from functools import partial
from typing import Any, Optional

import datasets
from transformers import TrainingArguments

from ..data import MultiMAEDERDataCollator, load_emotion_dataset, preprocess_to_cache
from ..data.bad_data import BadDataReport
from ..data.corpora import get_corpus_info, normalize_corpus_name
from ..data.distributed import split_streams_by_example
from ..data.loading import DEFAULT_CACHE_DIR
from ..data.probing import probe_media
from ..data.sources import SOURCE_FLAG, VIDEO_EXTENSIONS, SourceNotFoundError
from ..data.synthetic import is_synthetic_source
from ..models.multimae_der import MultiMAEDERForPreTraining
from ..user_errors import INPUT_STATUS, UserError, locate
from .arguments import DataArguments, PretrainingArguments
from .checks import VIDEOS
from .run import drop_unused_columns, split_sizes, trim_splits


logger = logging.getLogger(__name__)


# ------------------------------------------------------------------------------------------------------- data
def find_videos(folder: str) -> list[str]:
    """Every video file under ``folder`` (any layout, searched recursively), sorted."""
    found = []
    for root, dirs, files in os.walk(folder):
        dirs.sort()
        found += [os.path.join(root, f) for f in files if f.lower().endswith(VIDEO_EXTENSIONS)]
    if not found:
        raise SourceNotFoundError(f"{SOURCE_FLAG} {folder}: no video files ({', '.join(VIDEO_EXTENSIONS)}) under it")
    return sorted(found)


def skip_unusable_videos(
    paths: list[str], root: str, need_video: bool = True, need_audio: bool = True, num_proc: Optional[int] = None
) -> tuple[list[str], BadDataReport]:
    """The files of ``paths`` that have the streams the strategy reads, and a report naming the others and why.

    Each file is demuxed once (:func:`~mmder_hf.data.probing.probe_media`, no decoding), in ``num_proc``
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

    * ``--dataset_name videos --dataset_source <folder>``: every video file under the folder
      (:func:`load_video_folder`);
    * ``--dataset_name videos --dataset_source <Hub dataset id>``: its splits, streamed (:func:`load_hub_videos`);
    * ``--dataset_name <corpus> [--dataset_source ...] --fold k``: the fold's training and validation actors, never
      its test actors (:func:`load_corpus_fold`).
    """
    if data_args.dataset_name.lower() != VIDEOS:
        return load_corpus_fold(data_args, training_args)
    source = data_args.dataset_source
    if source is None:
        raise UserError("--dataset_name videos needs --dataset_source: a folder of videos or a Hub dataset id")
    location = locate(SOURCE_FLAG, source)  # a local path that is not there is refused here, not read as a Hub id
    if location.is_local:
        return load_video_folder(location.value, data_args, pretrain_args, training_args, fusion_strategy)
    return load_hub_videos(source, data_args, pretrain_args, training_args)


def held_out_count(clips: int, validation_clips: int) -> int:
    """How many of ``clips`` a folder of videos holds out for the validation loss: ``--validation_clips``, at most a
    tenth of them, and at least one while one is left to train on (the `Trainer` evaluates every epoch, and an
    evaluation needs clips)."""
    if validation_clips <= 0 or clips < 2:
        return 0
    return max(1, min(validation_clips, clips // 10))


def split_held_out(
    full: datasets.Dataset, validation_clips: int, seed: int, source: str = "the folder", limited: bool = False
) -> dict:
    """``{"train", "validation"}`` of a folder's clips: :func:`held_out_count` of them, drawn with ``seed``, held out.
    ``limited``: ``--max_train_samples`` cut the clips (the refusal of too few then names it).

    Raises:
        `~mmder_hf.user_errors.UserError` (exit status 1): fewer than 2 clips, one to train on and one to hold out.
    """
    clips = len(full)
    if clips < 2:
        raise UserError(
            f"{SOURCE_FLAG} {source}: {clips} usable video file(s); pre-training needs at least 2 (one to train on, "
            "one held out for the validation loss): "
            + ("pass a larger --max_train_samples" if limited else "pass a folder with more videos"),
            status=INPUT_STATUS,
        )
    held = held_out_count(clips, validation_clips)
    if not held:
        return {"train": full}
    parts = full.train_test_split(test_size=held, seed=seed, shuffle=True)
    why = "a tenth of them" if held == clips // 10 and held < validation_clips else "--validation_clips"
    if held > clips // 10:
        why = "at least one, however few the clips"
    logger.info("Holding out %d of the %d clips for the validation loss (%s)", held, clips, why)
    return {"train": parts["train"], "validation": parts["test"]}


def load_video_folder(
    source: str,
    data_args: DataArguments,
    pretrain_args: PretrainingArguments,
    training_args: TrainingArguments,
    fusion_strategy: Optional[str] = None,
) -> PretrainingData:
    """Every video file under ``source`` (recursively); ``--validation_clips`` of them (at most a tenth, at least
    one), drawn with the seed, are held out (:func:`split_held_out`). Files without the streams ``fusion_strategy``
    reads (audio for all but ``video`` / ``prefused``, video for all but ``audio``) or that are broken are skipped
    and reported (:func:`skip_unusable_videos`)."""
    paths = find_videos(source)
    limit = data_args.max_train_samples
    limited = limit is not None and limit < len(paths)
    paths = paths[:limit] if limited else paths
    found = len(paths)
    paths, report = skip_unusable_videos(
        paths,
        source,
        need_video=fusion_strategy != "audio",
        need_audio=fusion_strategy not in ("video", "prefused"),
        num_proc=data_args.preprocessing_num_workers,
    )
    if not paths:  # each file and why: logged by skip_unusable_videos
        reasons = "; ".join(f"{reason}: {len(files)}" for reason, files in sorted(report.by_reason().items()))
        raise SourceNotFoundError(f"{SOURCE_FLAG} {source}: none of its {found} video file(s) can be used ({reasons})")
    names = [os.path.relpath(path, source) for path in paths]
    full = datasets.Dataset.from_dict({"video": paths, "file": names})
    splits = split_held_out(full, pretrain_args.validation_clips, training_args.seed, source, limited)
    held = len(splits.get("validation", ()))
    description = (
        f"{len(paths)} video files found under a local folder (searched recursively; unlabelled). "
        f"{held} of them, drawn with seed {training_args.seed}, are held out for the validation loss."
    )
    if len(report):
        reasons = "; ".join(f"{reason}: {len(files)}" for reason, files in sorted(report.by_reason().items()))
        description += f" {len(report)} unusable file(s) were skipped ({reasons})."
    return PretrainingData(splits, description)


def load_hub_videos(
    source: str, data_args: DataArguments, pretrain_args: PretrainingArguments, training_args: TrainingArguments
) -> PretrainingData:
    """The ``train`` split of the Hub dataset ``source``, streamed (``--max_steps``); its ``validation`` split, if
    any, for the loss (``--validation_clips`` of it)."""
    if not data_args.streaming or training_args.max_steps <= 0:
        raise UserError(
            f"{SOURCE_FLAG} {source}: no local folder of that name, so it is read as a Hub dataset of videos, which "
            "is streamed: pass --streaming true and --max_steps N (or the path of a local folder)"
        )
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


def load_corpus_fold(data_args: DataArguments, training_args: TrainingArguments) -> PretrainingData:
    """The corpus's fold ``k``: its training actors are pre-trained on and its validation actors give the held-out
    loss; its **test actors are never read**, so that fine-tuning on fold ``k`` afterwards reports results on clips
    the encoder has not seen. Labels are ignored."""
    source = data_args.dataset_source
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
    splits = trim_splits({"train": raw["train"], "validation": raw["validation"]}, data_args)  # never the test actors
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
        train = drop_unused_columns(train, model.config)
    # A stream goes to the Trainer whole, split by example with even batches (never by shard: uneven step counts).
    sizes = {"train": training_args.per_device_train_batch_size, None: training_args.per_device_eval_batch_size}
    streams = split_streams_by_example({"train": train, "validation": validation}, sizes, world, rank)
    return PreparedData(streams["train"], streams["validation"], collator, total)


__all__ = [
    "VIDEOS",
    "VIDEO_EXTENSIONS",
    "PreparedData",
    "PretrainingData",
    "find_videos",
    "held_out_count",
    "load_corpus_fold",
    "load_hub_videos",
    "load_pretraining_data",
    "load_video_folder",
    "prepare_pretraining_data",
    "skip_unusable_videos",
    "split_held_out",
]
