"""Publish a corpus to the Hub as Parquet shards with embedded media, loadable with no scripts.

Layout written to ``output_dir`` (and uploaded as is)::

    README.md                 dataset card: licence, citation, protocol, fold table (mmder_hf/cards/templates/)
    folds.json, folds.csv     the fold definitions (mmder_hf.data.folds)
    data/actor_NN.parquet     one shard per actor: video + audio bytes (Video / Audio features) + metadata

One shard per actor lets :func:`~mmder_hf.data.load_emotion_dataset` give each split only its actors' files
and lets ``split_dataset_by_node`` split streaming data by shard. ``load_dataset(repo_id, streaming=True)``
reads it with no code. The ``audio`` column holds only the audio track (RAVDESS: the AAC track remuxed into
``.m4a`` without re-encoding, so the clip's bytes are not stored twice; CREMA-D / IEMOCAP: the wav file).
IEMOCAP's utterances are cut out of the dialog videos (re-encoded H.264). What the card states about a corpus,
and whether its licence allows public repos (IEMOCAP's does not), is read from
:data:`mmder_hf.data.corpora.CORPUS_INFO`; the card template is found as a package resource, so this module
does not import :mod:`mmder_hf.cards`.
"""

from __future__ import annotations

import importlib.resources
import io
import logging
import os
import shutil
from pathlib import Path
from typing import TYPE_CHECKING, Any, Optional, Sequence, Union

import datasets

from ..user_errors import UserError, check_choice, locate
from .corpora import get_corpus_info, get_label_set, normalize_corpus_name
from .folds import export_folds, fold_table_markdown
from .synthetic import is_synthetic_source


if TYPE_CHECKING:
    from huggingface_hub import DatasetCard

    try:
        from importlib.resources.abc import Traversable
    except ImportError:  # Python 3.10
        from importlib.abc import Traversable

logger = logging.getLogger(__name__)


class RedistributionError(ValueError):
    """Publishing would break the corpus' licence (IEMOCAP to a public repo)."""


def _read(value: Any) -> tuple[Optional[str], bytes]:
    """``(path, bytes)`` of a non-decoded Video / Audio cell."""
    path, data = value.get("path"), value.get("bytes")
    if data is None:
        with open(path, "rb") as f:
            data = f.read()
    return path, data


def audio_track_bytes(data: bytes) -> bytes:
    """The audio track of a media file, remuxed (not re-encoded) into an ``.m4a`` container."""
    import av

    buffer = io.BytesIO()
    with av.open(io.BytesIO(data)) as inp, av.open(buffer, "w", format="ipod") as out:
        stream = inp.streams.audio[0]
        target = out.add_stream_from_template(stream)
        for packet in inp.demux(stream):
            if packet.dts is None:
                continue
            packet.stream = target
            out.mux(packet)
    return buffer.getvalue()


def cut_segment(video_path: str, start: float, end: float) -> bytes:
    """Re-encode ``[start, end)`` seconds of a video (no audio) as H.264 mp4 bytes (IEMOCAP utterances)."""
    import tempfile

    from torchcodec.decoders import VideoDecoder

    from .media_writing import write_clip

    decoder = VideoDecoder(video_path, dimension_order="NHWC")
    frames = decoder.get_frames_played_in_range(start, end).data.numpy()
    fps = decoder.metadata.average_fps or 30.0
    with tempfile.TemporaryDirectory() as tmp:
        path = write_clip(os.path.join(tmp, "segment.mp4"), frames, fps, None)
        with open(path, "rb") as f:
            return f.read()


def _records(corpus: str, ds: datasets.Dataset) -> list[dict]:
    rows = []
    for row in ds:
        row = dict(row)
        vpath, vbytes = _read(row["video"])
        apath, abytes = _read(row["audio"])
        base = os.path.splitext(os.path.basename(row["file"]))[0]
        if corpus == "ravdess":
            abytes, apath = audio_track_bytes(vbytes), base + ".m4a"
        elif corpus == "iemocap":
            vbytes = cut_segment(vpath, row["start"], row["end"])
            vpath = row["utterance_id"] + ".mp4"
            row["dialog_start"], row["dialog_end"] = row.pop("start"), row.pop("end")
            row.pop("audio_start", None)  # the cut video and the wav now share one timeline
        row["video"] = {"path": os.path.basename(vpath), "bytes": vbytes}
        row["audio"] = {"path": os.path.basename(apath), "bytes": abytes}
        rows.append(row)
    return rows


def dataset_card_template() -> Traversable:
    """The packaged dataset card template: a resource of the ``mmder_hf.cards`` package, looked up at call time.

    A resource lookup instead of an import keeps the dependency one way (cards reads data, not the reverse).
    """
    return importlib.resources.files("mmder_hf") / "cards" / "templates" / "dataset_card.md"


def render_dataset_card(
    corpus: str,
    repo_id: str,
    label_names: list[str],
    num_rows: dict,
    template_path: Union[str, os.PathLike, None] = None,
    synthetic: bool = False,
) -> DatasetCard:
    """A :class:`huggingface_hub.DatasetCard` for a published corpus; its facts come from the corpus registry.

    ``synthetic``: the corpus is the synthetic RAVDESS-format one, whose card states its own licence and origin
    (only its folds follow ``corpus``'s protocol).

    ``template_path`` overrides the packaged template (:func:`dataset_card_template`); a missing template falls
    back to huggingface_hub's default one.
    """
    from huggingface_hub import DatasetCard, DatasetCardData

    corpus = normalize_corpus_name(corpus)
    info = get_corpus_info("synthetic" if synthetic else corpus)
    card_data = DatasetCardData(
        license=info.license,
        pretty_name=info.dataset_pretty_name,
        task_categories=["video-classification", "audio-classification"],
        tags=["emotion-recognition", "audio-visual", "mmder-hf", *info.tags],
        configs=[{"config_name": "default", "data_files": [{"split": "train", "path": "data/*.parquet"}]}],
    )
    kwargs = dict(
        corpus=corpus,
        repo_id=repo_id,
        pretty_name=info.dataset_pretty_name,
        homepage=info.homepage,
        citation=info.citation,
        protocol=info.protocol,
        redistribution=info.redistribution,
        fold_table=fold_table_markdown(corpus),
        label_names=", ".join(label_names),
        num_rows=sum(num_rows.values()),
        num_actors=len(num_rows),
        private_only=not info.redistributable,
    )
    template = dataset_card_template() if template_path is None else Path(template_path)
    if template.is_file():
        return DatasetCard.from_template(card_data, template_str=template.read_text(encoding="utf-8"), **kwargs)
    return DatasetCard.from_template(card_data, **kwargs)  # huggingface_hub's default template


def export_corpus_parquet(
    name: str,
    source: Any,
    output_dir: str,
    repo_id: str = "",
    label_set: Optional[str] = None,
    vocal_channel: str = "speech",
    strict: bool = False,
    cache_dir: Optional[str] = None,
) -> dict[int, int]:
    """Convert a corpus to ``output_dir`` (Parquet shards per actor, card, folds). Returns ``actor -> rows``."""
    from tqdm.auto import tqdm

    from .loading import load_emotion_dataset

    corpus = normalize_corpus_name(name)
    ds = load_emotion_dataset(
        corpus, source, fold=None, label_set=label_set, vocal_channel=vocal_channel, strict=strict, cache_dir=cache_dir
    )["train"]
    ds = ds.cast_column("video", datasets.Video(decode=False)).cast_column("audio", datasets.Audio(decode=False))
    features = ds.features.copy()
    features["video"], features["audio"] = datasets.Video(), datasets.Audio()
    if corpus == "iemocap":
        features["dialog_start"], features["dialog_end"] = features.pop("start"), features.pop("end")
        features.pop("audio_start", None)
    data_dir = os.path.join(output_dir, "data")
    if os.path.isdir(data_dir):
        shutil.rmtree(data_dir)
    os.makedirs(data_dir)
    counts = {}
    actors = sorted(set(ds["actor"]))
    for actor in tqdm(actors, desc=f"{corpus} -> parquet", disable=None):  # a bar on a terminal only
        part = ds.filter(lambda a: a == actor, input_columns="actor")
        shard = datasets.Dataset.from_list(_records(corpus, part), features=features)
        shard.to_parquet(os.path.join(data_dir, f"actor_{actor:02d}.parquet"))
        counts[actor] = len(shard)
    exported = export_folds(output_dir, [corpus])
    for path in exported:  # folds.json / folds.csv at the repo root
        os.replace(path, os.path.join(output_dir, "folds" + os.path.splitext(path)[1]))
    names = list(get_label_set(corpus, label_set).names)
    card = render_dataset_card(corpus, repo_id, names, counts, synthetic=is_synthetic_source(source))
    card.save(os.path.join(output_dir, "README.md"))
    logger.info("Wrote %d rows of %s (%d actors) to %s", sum(counts.values()), corpus, len(counts), output_dir)
    return counts


def push_corpus(output_dir: str, repo_id: str, private: bool, corpus: str, token: Optional[str] = None) -> str:
    """Create the dataset repo and upload ``output_dir``; IEMOCAP refuses public repos. Returns the commit URL."""
    from huggingface_hub import HfApi

    info = get_corpus_info(corpus)
    if not info.redistributable and not private:
        raise RedistributionError(
            f"{info.pretty_name}'s licence forbids redistribution: publish it only to a private repo (--private)"
        )
    api = HfApi(token=token)
    api.create_repo(repo_id, repo_type="dataset", private=private, exist_ok=True)
    return api.upload_folder(
        folder_path=output_dir, repo_id=repo_id, repo_type="dataset", commit_message=f"Publish {corpus} (mmder-hf)"
    )


def publish_main(corpus: str, argv: Optional[Sequence[str]] = None) -> None:
    """Shared command line of ``dataset_scripts/publish_<corpus>.py``."""
    import argparse

    corpus = normalize_corpus_name(corpus)
    info = get_corpus_info(corpus)
    parser = argparse.ArgumentParser(description=f"Convert {corpus} to Parquet with embedded media and push it.")
    source_help = f"local folder or Hub dataset repo of {info.pretty_name} as distributed"
    if corpus == "ravdess":
        source_help += " (default: the built-in synthetic corpus in RAVDESS format)"
    parser.add_argument("--source", required=corpus != "ravdess", default=None, help=source_help)
    example = info.dataset_id or f"{corpus.replace('_', '-')}-av"
    parser.add_argument("--repo_id", required=True, help=f"Hub dataset repo, e.g. me/{example}")
    parser.add_argument("--output_dir", default=None, help="local folder for the Parquet shards and card")
    label_sets = [label_set.name for label_set in info.label_sets]
    parser.add_argument(
        "--label_set", default=None, help=f"{', '.join(label_sets)} (default: {info.default_label_set})"
    )
    parser.add_argument("--private", action="store_true", help="create a private repo (required for IEMOCAP)")
    parser.add_argument("--no_push", action="store_true", help="only write the local folder")
    parser.add_argument("--strict", action="store_true", help="fail on the first unusable file")
    if corpus == "ravdess":
        parser.add_argument("--vocal_channel", default="speech", choices=["speech", "song", "both"])
    args = parser.parse_args(argv)
    try:
        if args.label_set is not None:
            args.label_set = check_choice("--label_set", args.label_set, label_sets)
        if args.source is not None:
            args.source = locate("--source", args.source).value
    except UserError as error:  # one line, as argparse's own errors
        parser.exit(error.status, f"{parser.prog}: error: {error}\n")
    if not info.redistributable and not args.private and not args.no_push:
        parser.error(
            f"{info.pretty_name}'s licence forbids redistribution: pass --private (and share with licensees only)"
        )
    output_dir = args.output_dir or f"{args.repo_id.split('/')[-1]}-parquet"
    export_corpus_parquet(
        corpus,
        args.source,
        output_dir,
        repo_id=args.repo_id,
        label_set=args.label_set,
        vocal_channel=getattr(args, "vocal_channel", "speech"),
        strict=args.strict,
    )
    if not args.no_push:
        push_corpus(output_dir, args.repo_id, private=args.private, corpus=corpus)


__all__ = [
    "RedistributionError",
    "audio_track_bytes",
    "cut_segment",
    "dataset_card_template",
    "export_corpus_parquet",
    "publish_main",
    "push_corpus",
    "render_dataset_card",
]
