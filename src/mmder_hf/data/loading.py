"""One entry point for every corpus and fold, the authors' pre-fused zips, a preprocess-once cache and
per-rank splitting for distributed training.

>>> from mmder_hf.data import load_emotion_dataset
>>> ds = load_emotion_dataset("ravdess", fold=1)  # built-in synthetic corpus  # doctest: +SKIP
>>> ds = load_emotion_dataset("ravdess", source="/data/ravdess", fold=3, label_set="7class")  # doctest: +SKIP
>>> ds = load_emotion_dataset("crema_d", source="me/crema_d-av", fold=2, streaming=True)  # doctest: +SKIP
"""

from __future__ import annotations

import glob
import hashlib
import json
import logging
import os
import re
import zipfile
from typing import Any, Iterable, Optional, Union

import datasets
import numpy as np
import torch

from .bad_data import BadDataError, BadDataReport
from .builders import BUILDERS
from .corpora import get_label_set, normalize_corpus_name
from .folds import get_fold
from .sources import is_hub_repo_id, list_hub_files, source_fingerprint


logger = logging.getLogger(__name__)

DatasetDictType = Union[datasets.DatasetDict, datasets.IterableDatasetDict]
DEFAULT_CACHE_DIR = os.path.join(os.path.expanduser("~"), ".cache", "mmder_hf")
PREFUSED_REPO_ID = "NoahMartinezXiang/RAVDESS"
#: Folder names in the authors' pre-fused zips -> RAVDESS 7-class label names.
PREFUSED_LABELS = {
    "Angry": "angry",
    "Disgust": "disgust",
    "Fear": "fearful",
    "Happy": "happy",
    "Neutral": "neutral",
    "Sad": "sad",
    "Surprised": "surprised",
}
_PREFUSED_SPLITS = {"train": "train", "val": "validation", "validation": "validation", "test": "test"}
_SHARD_ACTOR = re.compile(r"actor_(\d+)")


def default_synthetic_corpus(cache_dir: Optional[str] = None, num_workers: int = 2, **settings) -> str:
    """Path of the built-in synthetic RAVDESS-format corpus of these settings, written on first use.

    One folder per settings under ``cache_dir``: ``synthetic_ravdess`` for the defaults (24 actors x 16 clips: what
    ``finetune.py`` and ``pretrain.py`` read without ``--dataset_source``, and what ``demo.py`` writes), so that every
    script reads the same corpus and its preprocess cache; ``synthetic_ravdess_<actors>x<clips>`` for other sizes
    (a hash of the other settings appended when they differ too), never written over by another size.

    Args:
        settings: :class:`~mmder_hf.data.synthetic.SyntheticCorpusConfig` fields (``num_actors``...).
    """
    from .synthetic import SyntheticCorpusConfig, make_synthetic_corpus

    config, default = SyntheticCorpusConfig(**settings), SyntheticCorpusConfig()
    name = "synthetic_ravdess"
    if config != default:
        name += f"_{config.num_actors}x{config.clips_per_actor}"
        size = ("num_actors", "clips_per_actor")
        others = {k: v for k, v in vars(config).items() if k not in size and v != getattr(default, k)}
        if others:
            name += "_" + hashlib.sha1(json.dumps(others, sort_keys=True).encode()).hexdigest()[:8]
    return make_synthetic_corpus(
        os.path.join(cache_dir or DEFAULT_CACHE_DIR, name), num_workers=num_workers, **settings
    )


def _published_parquet_files(source: Any, revision: Optional[str]) -> Optional[list[str]]:
    """Parquet files (``data/...``) of a published corpus (local folder or Hub repo), or ``None`` if not one."""
    if isinstance(source, (str, os.PathLike)) and os.path.isdir(source):
        files = sorted(glob.glob(os.path.join(os.fspath(source), "**", "*.parquet"), recursive=True))
        return files or None
    if is_hub_repo_id(source):
        files = sorted(f for f in list_hub_files(source, revision) if f.endswith(".parquet"))
        if files:
            rev = f"@{revision}" if revision else ""
            return [f"hf://datasets/{source}{rev}/{f}" for f in files]
    return None


def _load_published(
    corpus: str, files: list[str], fold: Optional[int], label_set: Optional[str], streaming: bool, cache_dir
) -> DatasetDictType:
    """Split a published Parquet corpus (one shard per actor, see :mod:`mmder_hf.data.publish`) by fold.

    Shards named ``..actor_NN..`` are assigned to splits by file, so a split never reads another split's
    data; other layouts are read whole and filtered on the ``actor`` column.
    """
    by_actor = {}
    for f in files:
        match = _SHARD_ACTOR.search(os.path.basename(f))
        if match is None:
            by_actor = None
            break
        by_actor.setdefault(int(match.group(1)), []).append(f)
    if fold is None:
        return datasets.load_dataset("parquet", data_files={"train": files}, streaming=streaming, cache_dir=cache_dir)
    if by_actor is not None:
        folds = get_fold(corpus, fold, sorted(by_actor))
        data_files = {
            s: [f for a in folds.actors(s) for f in by_actor.get(a, [])] for s in ("train", "validation", "test")
        }
        empty = [s for s, v in data_files.items() if not v]
        if empty:
            raise ValueError(f"fold {fold} of {corpus} has no data for split(s) {empty}")
        ds = datasets.load_dataset("parquet", data_files=data_files, streaming=streaming, cache_dir=cache_dir)
    else:
        full = datasets.load_dataset("parquet", data_files={"train": files}, streaming=streaming, cache_dir=cache_dir)[
            "train"
        ]
        actors = sorted(set(full["actor"])) if not streaming else None
        folds = get_fold(corpus, fold, actors)
        parts = {
            s: full.filter(lambda a, keep=frozenset(folds.actors(s)): a in keep, input_columns="actor")
            for s in ("train", "validation", "test")
        }
        ds = (datasets.IterableDatasetDict if streaming else datasets.DatasetDict)(parts)
    wanted = get_label_set(corpus, label_set)
    features = ds["train"].features
    if features is not None and "emotion" in features and list(features["emotion"].names) != list(wanted.names):
        raise ValueError(
            f"published corpus uses labels {features['emotion'].names}; label_set {wanted.name} needs "
            f"{list(wanted.names)}: republish with that label set"
        )
    return ds


def load_emotion_dataset(
    name: str,
    source: Any = None,
    fold: Optional[int] = 1,
    label_set: Optional[str] = None,
    streaming: bool = False,
    vocal_channel: str = "speech",
    strict: bool = False,
    validate_media: bool = True,
    cache_dir: Optional[str] = None,
    revision: Optional[str] = None,
) -> DatasetDictType:
    """Train / validation / test of one subject-independent fold of an audio-visual emotion corpus.

    Args:
        name (`str`):
            ``"ravdess"``, ``"crema_d"`` (``"CREMA-D"``) or ``"iemocap"``.
        source (*optional*):
            where the corpus is: a local folder of the distributed files (RAVDESS zips / ``Actor_NN`` folders,
            CREMA-D ``VideoFlash`` + ``AudioWAV``, ``IEMOCAP_full_release``), a list of file paths / URLs, a
            Hub dataset repo id holding the distributed files, or a corpus published with
            ``dataset_scripts/publish_<corpus>.py`` (a Hub repo id or its local output folder of Parquet
            shards). ``None`` for RAVDESS uses the built-in synthetic corpus (written once under
            ``cache_dir``).
        fold (`int`, *optional*, defaults to 1):
            fold number (RAVDESS 1-6, CREMA-D 1-5, IEMOCAP 1-5; see :mod:`mmder_hf.data.folds`). ``None``
            returns the whole corpus as a single ``train`` split.
        label_set (`str`, *optional*):
            RAVDESS ``"8class"`` (default) or ``"7class"`` (calm merged into neutral: inferred from the paper's
            class counts, not stated by its authors); CREMA-D ``"6class"``; IEMOCAP ``"4class"`` (excited merged
            into happy).
        streaming (`bool`, defaults to `False`):
            return an :class:`~datasets.IterableDatasetDict` that reads archives member by member.
        vocal_channel (`str`, defaults to `"speech"`):
            RAVDESS only: ``"speech"``, ``"song"`` or ``"both"``.
        strict (`bool`, defaults to `False`):
            raise on the first unusable file instead of reporting (count and names) and skipping it.
        validate_media (`bool`, defaults to `True`):
            demux each media file once (remote ``hf://`` files too) to catch corrupt or truncated files and empty
            audio.
        cache_dir (`str`, *optional*):
            datasets cache (and synthetic corpus) folder; defaults to datasets' / ``~/.cache/mmder_hf``.
        revision (`str`, *optional*):
            Hub revision when ``source`` is a repo id.

    Returns:
        [`~datasets.DatasetDict`] or [`~datasets.IterableDatasetDict`] with ``train``, ``validation`` and
        ``test``; ``emotion`` is a [`~datasets.ClassLabel`], ``video`` / ``audio`` decode to torchcodec
        decoders, and ``actor`` never appears in two splits.

        Its ``bad_data`` attribute is the [`~mmder_hf.data.bad_data.BadDataReport`] of the files that were
        skipped (``.skipped``: name -> reason; ``len()``, ``.by_reason()``, ``.summary()``), which is also logged
        as a warning (count and names) on every call. Map-style, the report is saved beside the prepared data in
        the builder's cache folder (``mmder_bad_data.json``) and read back when that cache is reused, so it is
        the same on later runs; it is ``None`` only for data prepared by a version that saved no report.
        Streaming, it holds what listing the source found at once (unknown names, missing pairs, known broken
        clips) and grows with the media problems found while a split is read in this process (DataLoader workers
        log theirs). It is ``None`` for a published Parquet corpus (checked when it was published). Dataset
        operations that return a new dict (``map``, ``filter``...) do not carry the attribute over.
    """
    corpus = normalize_corpus_name(name)
    get_label_set(corpus, label_set)  # validate early
    if source is None:
        if corpus != "ravdess":
            raise ValueError(f"{corpus} needs a source (local folder, Hub repo id or published repo)")
        source = default_synthetic_corpus(cache_dir)
        logger.info("No source given: using the built-in synthetic RAVDESS-format corpus in %s", source)
    published = _published_parquet_files(source, revision)
    if published:
        ds = _load_published(corpus, published, fold, label_set, streaming, cache_dir)
        ds.bad_data = None  # validated when it was published
        return ds
    config: dict[str, Any] = {
        "source": os.fspath(source) if isinstance(source, os.PathLike) else source,
        "fold": fold,
        "label_set": get_label_set(corpus, label_set).name,
        "strict": strict,
        "validate_media": validate_media,
        "revision": revision,
        "data_fingerprint": source_fingerprint(source),
    }
    if corpus == "ravdess":
        config["vocal_channel"] = vocal_channel
    builder = BUILDERS[corpus](cache_dir=cache_dir, **config)
    if streaming:
        ds = builder.as_streaming_dataset()
        builder.log_report("while listing the source (media problems are reported as the splits are read)")
        ds.bad_data = builder.report  # the live report: media checks add to it as splits are read
        return ds
    _prepare(builder)
    report = builder.stored_report()
    if report is None:
        logger.info("No bad-data report is stored with the cached %s data in %s", corpus, builder.cache_dir)
    elif not builder.prepared_now:  # preparing logged it already; a reused cache shows the report saved with it
        report.log(f"(when the cached data in {builder.cache_dir} were prepared)")
    ds = builder.as_dataset()
    ds.bad_data = report
    return ds


def _prepare(builder: Any) -> None:
    """``builder.download_and_prepare()``; strict mode's :class:`BadDataError` comes out as is, not wrapped."""
    try:
        builder.download_and_prepare()
    except datasets.exceptions.DatasetGenerationError as err:
        cause = err.__cause__
        while cause is not None and not isinstance(cause, BadDataError):
            cause = cause.__cause__ or cause.__context__
        if cause is not None:  # strict mode: surface the clear error, not datasets' wrapper
            raise cause from None
        raise


# ------------------------------------------------------------------------------------------ pre-fused zips
def _prefused_zip(source: Any, strategy: str, revision: Optional[str]) -> str:
    filename = f"RAVDESS_{strategy.upper()}.zip"
    if source is None:
        source = PREFUSED_REPO_ID
    source = os.fspath(source)
    if os.path.isfile(source):
        return source
    if os.path.isdir(source):
        path = os.path.join(source, filename)
        if not os.path.isfile(path):
            raise FileNotFoundError(f"{filename} not found in {source}")
        return path
    if is_hub_repo_id(source):
        from huggingface_hub import hf_hub_download

        return hf_hub_download(source, filename, repo_type="dataset", revision=revision)
    raise FileNotFoundError(f"Cannot find the pre-fused zip in {source!r}")


def _prefused_members(names: Iterable[str]) -> tuple[list[tuple[str, str, str]], dict[str, str]]:
    """``(member, split, label)`` for every ``.../{train,val,test}/{Label}/*.mp4`` member, and ``member -> reason``
    for the ``.mp4`` members that cannot be used (a label folder not in :data:`PREFUSED_LABELS`, or no split
    folder above them)."""
    out, dropped = [], {}
    for name in names:
        parts = name.replace("\\", "/").split("/")
        if not name.lower().endswith(".mp4") or "__MACOSX" in parts:
            continue
        folders = [(parts[i], parts[i + 1]) for i in range(len(parts) - 2) if parts[i] in _PREFUSED_SPLITS]
        known = [(split, label) for split, label in folders if label in PREFUSED_LABELS]
        if known:
            out.append((name, _PREFUSED_SPLITS[known[0][0]], PREFUSED_LABELS[known[0][1]]))
        elif folders:
            dropped[name] = f"unknown label folder {folders[0][1]!r}"
        else:
            dropped[name] = "not in a {train,val,test}/<Label>/ folder"
    return sorted(out), dropped


def load_prefused_dataset(
    source: Any = None,
    strategy: str = "FSLF",
    streaming: bool = False,
    cache_dir: Optional[str] = None,
    revision: Optional[str] = None,
) -> DatasetDictType:
    """The authors' pre-fused RAVDESS clips (``RAVDESS_<STRATEGY>.zip``) for the ``prefused`` strategy.

    The zip holds ``{train,val,test}/{Angry,...,Surprised}/*.mp4`` (16 fused 224x224 frames, no audio).
    ``datasets``' videofolder cannot be used on it directly (5.2 labels every row with the zip's parent
    folder), so the labels are parsed from the member paths here; map-style extracts the zip once under
    ``cache_dir``, streaming reads members from the zip.

    Args:
        source: the zip, a folder holding it, or a Hub dataset repo id (default ``NoahMartinezXiang/RAVDESS``).
        strategy: ``FSLF``, ``FFLS``, ``OFOS``, ``RFAS``, ``CFAS`` or ``SFAS``.

    Returns:
        ``train`` / ``validation`` / ``test`` with ``video`` (Video), ``emotion`` (ClassLabel, RAVDESS
        7-class names) and ``file``. Actor ids are not recoverable from these files (the test files were
        renamed), so this split is the authors' one, not a subject-independent fold. Its ``bad_data``
        attribute is a [`~mmder_hf.data.bad_data.BadDataReport`] of the ``.mp4`` members left out (a label
        folder not in :data:`PREFUSED_LABELS`, or outside the split folders), also logged as a warning.
    """
    path = _prefused_zip(source, strategy, revision)
    names = list(get_label_set("ravdess", "7class").names)
    features = datasets.Features(
        {"video": datasets.Video(), "emotion": datasets.ClassLabel(names=names), "file": datasets.Value("string")}
    )
    with zipfile.ZipFile(path) as zf:
        members, dropped = _prefused_members(zf.namelist())
    report = BadDataReport(f"pre-fused {os.path.basename(path)}")
    for name, reason in dropped.items():
        report.add(name, reason)
    report.log(f"(known label folders: {', '.join(PREFUSED_LABELS)})")
    if not members:
        raise ValueError(f"{path} has no {{train,val,test}}/<Label>/*.mp4 members")
    splits = sorted({s for _, s, _ in members}, key=["train", "validation", "test"].index)
    if streaming:

        def generate(split):
            with zipfile.ZipFile(path) as zf:
                for name, s, label in members:
                    if s == split:
                        yield {"video": {"path": name, "bytes": zf.read(name)}, "emotion": label, "file": name}

        ds = datasets.IterableDatasetDict(
            {
                s: datasets.IterableDataset.from_generator(generate, gen_kwargs={"split": s}, features=features)
                for s in splits
            }
        )
        ds.bad_data = report
        return ds
    st = os.stat(path)
    key = hashlib.sha1(f"{os.path.abspath(path)}:{st.st_size}:{int(st.st_mtime)}".encode()).hexdigest()[:16]
    root = os.path.join(cache_dir or DEFAULT_CACHE_DIR, "prefused", f"{strategy.upper()}-{key}")
    if not os.path.exists(os.path.join(root, ".complete")):
        with zipfile.ZipFile(path) as zf:
            zf.extractall(root, members=[m for m, _, _ in members])
        open(os.path.join(root, ".complete"), "w").close()
    out = {}
    for s in splits:
        rows = [(m, label) for m, split, label in members if split == s]
        out[s] = datasets.Dataset.from_dict(
            {
                "video": [os.path.join(root, m) for m, _ in rows],
                "emotion": [label for _, label in rows],
                "file": [m for m, _ in rows],
            },
            features=features,
        )
    ds = datasets.DatasetDict(out)
    ds.bad_data = report
    return ds


# ------------------------------------------------------------------------------------------ cache
def cache_frame_counts(processor: Any) -> tuple[int, int]:
    """Frames of each modality the preprocess cache stores for ``processor``.

    The processor's output depends only on how many frames of each modality it returns, so one cache of ``n`` video
    frames and ``n`` audio images (``n`` the larger count the strategy uses) serves every strategy with that ``n``:
    FSLF over 8 frames and the ``video`` and ``audio`` baselines over 4 share one cache. The pre-fused clips have
    no audio track, so only their video frames are stored.
    """
    if processor.fusion_strategy == "prefused":
        return processor.num_video_frames, 0
    n = max(processor.num_video_frames, processor.num_audio_frames)
    return n, n


def preprocess_to_cache(
    dataset: DatasetDictType,
    processor: Any,
    cache_dir: str,
    batch_size: int = 8,
    label_column: str = "emotion",
    keep_columns: Iterable[str] = ("actor",),
    num_proc: Optional[int] = None,
) -> datasets.DatasetDict:
    """Map every split to model-ready arrays once, save them as Arrow, and reuse them on later calls.

    Decoding and drawing audio images dominate the cost of an epoch; doing it once turns later epochs (and
    later runs with the same processor settings) into plain tensor reads. The cache key is the dataset's
    fingerprint (for streaming splits, their builder's config: source, fold, label set and data fingerprint) plus
    the processor's settings, so changing either recomputes it.

    Clips are stored as the 8-bit images the processor returns with rescaling and normalisation off (a quarter of
    float32's size: about 2.4 MB instead of 9.6 MB per 16 x 224 x 224 clip), with the frame counts of
    :func:`cache_frame_counts`; :class:`~mmder_hf.data.MultiMAEDERDataCollator` rescales and normalises them when
    it batches them, with the processor's own arithmetic, so the model sees exactly the inputs the processor would
    have made.

    Args:
        dataset: the output of :func:`load_emotion_dataset` (map-style or streaming).
        processor: a :class:`~mmder_hf.MultiMAEDERProcessor`.
        cache_dir: folder for the cached splits (``<cache_dir>/<key>/``).
        batch_size: rows per processor call.
        label_column: the class column, stored as ``labels``; ``None`` for unlabelled clips (no ``labels``).
        keep_columns: metadata columns carried over (besides ``labels``).
        num_proc: processes for ``Dataset.map`` (map-style only).

    Returns:
        A :class:`~datasets.DatasetDict` with ``pixel_values`` / ``audio_values`` (uint8 arrays), ``labels`` and
        ``keep_columns``, formatted as torch tensors that keep their stored dtype (datasets' default would widen
        uint8 to int64, eight times the bytes). Batch the rows with :class:`~mmder_hf.data.MultiMAEDERDataCollator`,
        which makes the model's float32 inputs.

    Raises:
        `ValueError`: when the inputs are not 8-bit images (decoded float frames): decode the clips from media.
    """
    from .collate import MultiMAEDERDataCollator

    counts = cache_frame_counts(processor)
    # auto_map: added to the processor by save_pretrained (a run saves it before preprocessing, a finished run
    # reused does not): not a setting, so both find the same cache
    unkeyed = ("fusion_strategy", "num_frames", "auto_map")
    settings = {k: v for k, v in processor.to_dict().items() if k not in unkeyed}
    settings = [settings, counts, "uint8"] + (["unlabelled"] if label_column is None else [])
    parts = {
        split: ds._fingerprint if isinstance(ds, datasets.Dataset) else _streaming_identity(ds)
        for split, ds in dataset.items()
    }
    key = hashlib.sha1(json.dumps([settings, parts], sort_keys=True, default=str).encode()).hexdigest()[:16]
    path = os.path.join(cache_dir, key)
    if os.path.exists(os.path.join(path, "dataset_dict.json")):
        logger.info("Reusing the preprocessed clips in %s", path)
        return _report_faces(datasets.load_from_disk(path).with_format("torch", dtype=None), dataset)
    calls = {"do_rescale": False, "do_normalize": False, "num_video_frames": counts[0], "num_audio_frames": counts[1]}
    collator = MultiMAEDERDataCollator(
        processor, label_column=label_column, processor_kwargs=calls, return_face_boxes=True
    )
    keep = list(keep_columns)
    logger.info("Preprocessing the clips once, into %s (runs with the same data and processor reuse it)", path)

    def process(batch: dict, kept: list[str], worker: bool = False) -> dict:
        if worker and torch.get_num_threads() != 1:
            # A forked worker: one thread each, as DataLoader workers run. torch's OpenMP pool does not survive a
            # fork, so a worker forked after the parent ran the processor would otherwise hang in its first resize.
            torch.set_num_threads(1)
        rows = [dict(zip(batch, values)) for values in zip(*batch.values())]
        out = {}
        for name, values in collator(rows).items():
            if name == "face_boxes":  # what face cropping found: kept for the no-face report
                out[name] = values.numpy()
                out["face_source"] = [_row_name(row) for row in rows]
                continue
            if name != "labels" and values.dtype != torch.uint8:
                raise ValueError(
                    f"preprocess_to_cache: {name} is {values.dtype}, not 8-bit images (decoded float frames?); "
                    "decode the clips from files, bytes or decoders"
                )
            out[name] = values.numpy()
        out.update({c: batch[c] for c in kept if c in batch})
        return out

    out = {}
    for split, ds in dataset.items():
        columns = list(ds.features) if ds.features is not None else None
        features = _cache_features(processor.image_size, counts, ds, keep, getattr(processor, "face_crop", False))
        if label_column is None:  # unlabelled clips (pre-training): no labels column
            del features["labels"]
        kept = [c for c in keep if c in features]
        if isinstance(ds, datasets.Dataset):
            out[split] = ds.map(
                process,
                batched=True,
                batch_size=batch_size,
                remove_columns=columns,
                num_proc=num_proc,
                features=features,
                fn_kwargs={"kept": kept, "worker": bool(num_proc and num_proc > 1)},
                desc=f"preprocess {split}",
            )
        else:

            def generate(ds=ds, kept=kept):
                buffer = []
                for row in ds:
                    buffer.append(row)
                    if len(buffer) == batch_size:
                        yield from _unbatch(process(_batch(buffer), kept))
                        buffer = []
                if buffer:
                    yield from _unbatch(process(_batch(buffer), kept))

            out[split] = datasets.Dataset.from_generator(
                generate, features=features, cache_dir=os.path.join(cache_dir, "tmp")
            )
    result = datasets.DatasetDict(out)
    result.save_to_disk(path)
    return _report_faces(datasets.load_from_disk(path).with_format("torch", dtype=None), dataset)  # uint8 kept


def _streaming_identity(ds: datasets.IterableDataset) -> str:
    """What a streaming split reads, for the cache key: the builder's config (source, fold, label set, data
    fingerprint or data files), the split and the chain of transforms. Streaming splits have no fingerprint."""
    chain, config = _streaming_source(ds)
    if config is None:
        logger.warning(
            "Cannot tell what the streaming split %r reads (no dataset builder behind it): its preprocess cache is "
            "keyed by description and shard count only, so delete the cache folder when its data change.",
            ds.split,
        )
        config = (repr(ds.info.description), getattr(ds, "n_shards", None))
    return json.dumps([config, str(ds.split), chain], default=str)


def _streaming_source(ds: datasets.IterableDataset) -> tuple[list[str], Optional[tuple]]:
    """The chain of example iterables behind a streaming split (its transforms, outermost first) and the class and
    config of the builder generating its examples (``None`` without one).

    The one place that reaches into datasets' private internals (``IterableDataset._ex_iterable``, each iterable's
    ``ex_iterable`` and ``generate_examples_fn``; pinned by ``tests/test_dependency_pins.py``). No public attribute
    tells what a streaming split reads: its ``info`` (builder and config name, description) is the same for every
    source and fold, and ``state_dict()`` names the transforms but not the builder config.
    """
    chain, iterable, config = [], getattr(ds, "_ex_iterable", None), None
    while iterable is not None:
        chain.append(type(iterable).__name__)
        builder = getattr(getattr(iterable, "generate_examples_fn", None), "__self__", None)
        if builder is not None and getattr(builder, "config", None) is not None:
            config = (type(builder).__name__, sorted((k, repr(v)) for k, v in vars(builder.config).items()))
        iterable = getattr(iterable, "ex_iterable", None)
    return chain, config


def _cache_features(
    image_size: int, counts: tuple[int, int], ds: Any, keep: list[str], face_crop: bool = False
) -> datasets.Features:
    """Fixed-shape Array4D columns: read back as whole numpy blocks, not as nested Python lists (~100x faster).
    With face cropping, also each clip's ``face_boxes`` (NaN where no face was found) and its ``face_source``."""
    features = datasets.Features({"labels": datasets.Value("int64")})
    for name, frames in zip(("pixel_values", "audio_values"), counts):
        if frames:
            features[name] = datasets.Array4D(shape=(frames, 3, image_size, image_size), dtype="uint8")
    if face_crop and counts[0]:
        features["face_boxes"] = datasets.Array2D(shape=(counts[0], 4), dtype="float32")
        features["face_source"] = datasets.Value("string")
    for column in keep:
        if ds.features is not None and column in ds.features:
            features[column] = ds.features[column]
    return features


def _row_name(row: dict) -> str:
    """The file a dataset row reads (for reports): the video cell's path, else a placeholder."""
    from ..models.multimae_der.media import source_name

    video = row.get("video")
    if isinstance(video, dict):
        return str(video.get("path") or f"<{len(video.get('bytes') or b'')} bytes of media>")
    return source_name(video) if video is not None else "<no video>"


def _report_faces(cached: datasets.DatasetDict, dataset: Any) -> datasets.DatasetDict:
    """Count the cached clips in which face cropping found no face (their whole frames were used): noted in the
    source's ``bad_data`` report (a new one when it has none), logged, and set as the cache's ``bad_data``."""
    from .bad_data import NO_FACE, BadDataReport

    report = getattr(dataset, "bad_data", None)
    report = report if report is not None else BadDataReport("preprocess cache")
    for split, ds in cached.items():
        if "face_boxes" not in ds.column_names:
            continue
        columns = ds.with_format("numpy").select_columns(["face_boxes", "face_source"])[:]
        missing = np.isnan(columns["face_boxes"][:, :, 0]).all(axis=1)
        for name in np.asarray(columns["face_source"])[missing]:
            report.note(str(name), NO_FACE)
    if report.noted:
        counted = sum(remark == NO_FACE for remark in report.noted.values())
        logger.warning("%d cached clip(s) show no face; their whole frames were used. %s", counted, report.summary())
    cached.bad_data = report
    return cached


def _batch(rows: list[dict]) -> dict:
    return {k: [r[k] for r in rows] for k in rows[0]}


def _unbatch(batch: dict) -> Iterable[dict]:
    n = len(next(iter(batch.values())))
    for i in range(n):
        yield {k: v[i] for k, v in batch.items()}


# ------------------------------------------------------------------------------------------ distributed
def split_for_rank(
    dataset: Union[datasets.Dataset, datasets.IterableDataset],
    rank: Optional[int] = None,
    world_size: Optional[int] = None,
) -> Union[datasets.Dataset, datasets.IterableDataset]:
    """The part of ``dataset`` that process ``rank`` of ``world_size`` reads (each example on exactly one rank).

    A streaming dataset is split by shards when their number is a multiple of ``world_size`` (RAVDESS: one
    archive per actor; published corpora: one Parquet shard per actor), else by examples, so every rank
    decodes only its own clips: nothing is decoded on one rank and broadcast. This is for loops of your own: the
    `Trainer`'s accelerate data loader already gives each rank its part (with
    ``accelerator_config={"dispatch_batches": False}``), so pass it the whole split, a stream wrapped by
    :func:`~mmder_hf.data.distributed.split_streams_by_example` (by shard, ranks would take different step counts
    when shards hold different numbers of examples), as ``examples/finetune.py`` does; splitting it here as well
    would shard it twice and lose data. ``rank`` / ``world_size`` default to
    accelerate's ``PartialState``.
    """
    if rank is None or world_size is None:
        from accelerate import PartialState

        state = PartialState()
        rank = state.process_index if rank is None else rank
        world_size = state.num_processes if world_size is None else world_size
    if world_size <= 1:
        return dataset
    if not 0 <= rank < world_size:
        raise ValueError(f"rank must be in [0, {world_size}), got {rank}")
    from datasets.distributed import split_dataset_by_node

    return split_dataset_by_node(dataset, rank=rank, world_size=world_size)


__all__ = [
    "DEFAULT_CACHE_DIR",
    "cache_frame_counts",
    "PREFUSED_LABELS",
    "PREFUSED_REPO_ID",
    "default_synthetic_corpus",
    "load_emotion_dataset",
    "load_prefused_dataset",
    "preprocess_to_cache",
    "split_for_rank",
]
