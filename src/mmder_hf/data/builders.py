"""`datasets` builders that read RAVDESS, CREMA-D and IEMOCAP exactly as they are distributed.

datasets >= 4 no longer runs loading scripts, but a :class:`datasets.GeneratorBasedBuilder` subclass still
works when our code instantiates it (``download_and_prepare`` / ``as_dataset`` / ``as_streaming_dataset``);
:func:`mmder_hf.data.load_emotion_dataset` does that for you.

* RAVDESS: the Zenodo ``Video_Speech_Actor_NN.zip`` (and ``Video_Song_Actor_NN.zip``) archives, or the
  ``Actor_NN/`` folders they extract to. Only full audio-visual files (modality 01) are used; video-only and
  audio-only files never are. Each split opens only the archives of its actors; streaming reads zip members
  one by one (no archive is extracted), map-style extracts the members once into the cache.
* CREMA-D: ``VideoFlash/*.flv`` + ``AudioWAV/*.wav`` (or ``AudioMP3/*.mp3``) and ``VideoDemographics.csv``;
  its known broken clips are excluded and reported.
* IEMOCAP: the ``IEMOCAP_full_release`` folder; one row per utterance with the dialog video and the
  utterance's ``start`` / ``end`` times (the collator cuts the segment) and the utterance wav.

Sources: a local folder, a list of local paths / URLs, or a Hub dataset repo id holding those files (listed and
read by :mod:`mmder_hf.data.sources`; remote archives are fetched with datasets' download manager). Bad data
(unknown names, corrupt, truncated or missing members, empty audio; :mod:`mmder_hf.data.probing` checks the media) is
reported (count and names) and skipped, or raises :class:`~mmder_hf.data.bad_data.BadDataError` with
``strict=True``; nothing is relabelled. The report (``builder.report``, a
:class:`~mmder_hf.data.bad_data.BadDataReport`) is saved beside the prepared data
(:data:`~mmder_hf.data.bad_data.REPORT_FILENAME`, read back by ``builder.stored_report()`` when the cache is reused)
and reaches users as ``load_emotion_dataset(...).bad_data``. Each builder's ``DatasetInfo``
(description, citation, homepage, licence) is read from :data:`mmder_hf.data.corpora.CORPUS_INFO`.
"""

from __future__ import annotations

import json
import logging
import os
import posixpath
import re
from collections import defaultdict
from dataclasses import dataclass
from typing import Any, Iterator, Optional, Union

import datasets

from .bad_data import REPORT_FILENAME, BadDataReport
from .corpora import (
    CREMA_D_BROKEN,
    IEMOCAP_EMOTIONS,
    RAVDESS_ACTORS,
    UnknownFileNameError,
    get_corpus_info,
    get_label_set,
    parse_crema_d_filename,
    parse_iemocap_evaluation,
    parse_iemocap_utterance_id,
    parse_ravdess_filename,
    read_crema_d_demographics,
)
from .folds import get_fold
from .probing import probe_location, probe_media
from .sources import (
    SourceNotFoundError,
    extract_zip_members,
    iter_zip_members,
    list_source,
    open_location,
    resolve_location,
    videos_hint,
)
from .synthetic import is_synthetic_source


logger = logging.getLogger(__name__)

_ARCHIVE = re.compile(r"Video_(Speech|Song)_Actor_(\d+)\.zip$")
_ACTOR_DIR = re.compile(r"(?:^|/)Actor_(\d+)$")


# ------------------------------------------------------------------------------------------ configs
@dataclass
class EmotionCorpusConfig(datasets.BuilderConfig):
    """Settings shared by the three builders.

    Args:
        source (`str`, `list` or `os.PathLike`):
            local folder, list of local paths / URLs, or Hub dataset repo id holding the distributed files.
        fold (`int`, *optional*):
            subject-independent fold (see :mod:`mmder_hf.data.folds`); ``None`` gives one ``train`` split with
            the whole corpus (used for publishing).
        label_set (`str`, *optional*):
            name of the label set (default: the corpus' standard one).
        strict (`bool`, defaults to `False`):
            raise :class:`~mmder_hf.data.bad_data.BadDataError` on the first unusable file instead of reporting and
            skipping it.
        validate_media (`bool`, defaults to `True`):
            demux every file (remote ones too: they are read once for it) to catch corrupt or truncated media and
            empty audio before it reaches training.
        revision (`str`, *optional*):
            Hub revision when ``source`` is a repo id.
        data_fingerprint (`str`, *optional*):
            hash of the local source, part of the cache key so that changed data is re-read.
    """

    source: Any = None
    fold: Optional[int] = None
    label_set: Optional[str] = None
    strict: bool = False
    validate_media: bool = True
    revision: Optional[str] = None
    data_fingerprint: Optional[str] = None


@dataclass
class RavdessConfig(EmotionCorpusConfig):
    """RAVDESS settings; ``vocal_channel``: ``"speech"`` (default, the standard protocol), ``"song"`` or ``"both"``."""

    vocal_channel: str = "speech"


class _EmotionBuilder(datasets.GeneratorBasedBuilder):
    """Shared split logic: one split per fold part, each reading only its actors' files."""

    corpus = ""
    BUILDER_CONFIG_CLASS = EmotionCorpusConfig

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self._reset_report()
        self._preparing = False
        #: whether ``download_and_prepare`` prepared the data in this process (``False``: the cache was reused)
        self.prepared_now = False

    def _download_and_prepare(self, dl_manager, verification_mode, **prepare_split_kwargs):
        """Prepare every split, then save the bad-data report beside the data and log it once.

        The report is written into the folder that datasets moves into place once the data are complete, so a later
        run that reuses the cache finds it there (:meth:`stored_report`).
        """
        self._preparing = True
        try:
            super()._download_and_prepare(dl_manager, verification_mode, **prepare_split_kwargs)
        finally:
            self._preparing = False
        with self._fs.open(posixpath.join(self._output_dir, REPORT_FILENAME), "w") as f:
            json.dump(self.report.to_dict(), f, indent=1)
        self.prepared_now = True
        self.log_report()

    def stored_report(self) -> Optional[BadDataReport]:
        """The bad-data report saved when the cached data were prepared; ``None`` when there is none (not prepared
        yet, or prepared by a version that saved no report)."""
        path = posixpath.join(self._output_dir, REPORT_FILENAME)
        if not self._fs.exists(path):
            return None
        with self._fs.open(path, "r") as f:
            return BadDataReport.from_dict(json.load(f))

    def _split_done(self) -> None:
        """All examples of a split (or of one of its shards) were generated: when streaming, log the report found
        so far if it grew (preparing logs it once, after the last split)."""
        if not self._preparing and len(self.report) > self._logged:
            self.log_report()

    def log_report(self, note: str = "") -> None:
        """Log :attr:`report` (a warning with count and names, when anything was skipped)."""
        self._logged = len(self.report)
        self.report.log(note)

    def _reset_report(self) -> None:
        self.report = BadDataReport(self.corpus)
        self._logged = 0  # entries of the report already logged while streaming

    @property
    def label_set(self):
        return get_label_set(self.corpus, self.config.label_set)

    def _dataset_info(self, features: datasets.Features) -> datasets.DatasetInfo:
        """``DatasetInfo`` whose description, citation, homepage and licence come from the corpus registry."""
        info = get_corpus_info(self.corpus)
        return datasets.DatasetInfo(
            description=info.description,
            features=features,
            citation=info.citation,
            homepage=info.homepage,
            license=info.license,
        )

    def _split_by_fold(self, actors: list[int], make_kwargs) -> list[datasets.SplitGenerator]:
        if self.config.fold is None:
            return [datasets.SplitGenerator(name=datasets.Split.TRAIN, gen_kwargs=make_kwargs(set(actors)))]
        fold = get_fold(self.corpus, self.config.fold, actors)
        return [
            datasets.SplitGenerator(name=split, gen_kwargs=make_kwargs(set(fold.actors(split))))
            for split in ("train", "validation", "test")
        ]

    def _skip(self, name: str, reason: str) -> None:
        self.report.add(name, reason, self.config.strict)


# ------------------------------------------------------------------------------------------ RAVDESS
class RavdessBuilder(_EmotionBuilder):
    """RAVDESS audio-visual clips (modality 01) from the distributed zips or ``Actor_NN/`` folders.

    Example:

    ```python
    >>> builder = RavdessBuilder(source="path/to/ravdess", fold=1)  # doctest: +SKIP
    >>> builder.download_and_prepare(); ds = builder.as_dataset()  # doctest: +SKIP
    >>> ds["test"][0]["video"]  # a torchcodec VideoDecoder  # doctest: +SKIP
    ```
    """

    corpus = "ravdess"
    BUILDER_CONFIG_CLASS = RavdessConfig
    DEFAULT_CONFIG_NAME = "default"
    BUILDER_CONFIGS = [RavdessConfig(name="default")]

    def _info(self) -> datasets.DatasetInfo:
        return self._dataset_info(
            datasets.Features(
                {
                    "video": datasets.Video(),
                    "audio": datasets.Audio(),
                    "file": datasets.Value("string"),
                    "actor": datasets.Value("int32"),
                    "gender": datasets.Value("string"),
                    "emotion": datasets.ClassLabel(names=list(self.label_set.names)),
                    "emotion_raw": datasets.Value("string"),
                    "intensity": datasets.Value("string"),
                    "statement": datasets.Value("int32"),
                    "repetition": datasets.Value("int32"),
                    "vocal_channel": datasets.Value("string"),
                }
            )
        )

    def _channels(self) -> tuple[str, ...]:
        choice = self.config.vocal_channel
        if choice not in ("speech", "song", "both"):
            raise ValueError(f"vocal_channel must be 'speech', 'song' or 'both', got {choice!r}")
        return ("speech", "song") if choice == "both" else (choice,)

    def _split_generators(self, dl_manager) -> list[datasets.SplitGenerator]:
        if self.config.source is None:
            raise ValueError("RavdessBuilder needs a source (folder, list of zips/URLs, or Hub repo id)")
        self._reset_report()
        streaming = dl_manager.is_streaming
        self._dl_manager = dl_manager  # fetches remote archives (see _fetch)
        units = defaultdict(list)  # actor -> [(kind, location)]
        channels = self._channels()
        for location in list_source(self.config.source, self.config.revision):
            match = _ARCHIVE.search(location.replace("\\", "/"))
            if match and match.group(1).lower() in channels:
                units[int(match.group(2))].append(("zip", location))
        if isinstance(self.config.source, (str, os.PathLike)) and os.path.isdir(self.config.source):
            for root, dirs, _ in os.walk(self.config.source):
                match = _ACTOR_DIR.search(root.replace("\\", "/"))
                if match and not units.get(int(match.group(1)), [("", "")])[0][0] == "zip":
                    units[int(match.group(1))].append(("dir", root))
                    dirs.clear()
        if not units:
            archives = " or ".join(f"Video_{c.capitalize()}_Actor_NN.zip" for c in channels)
            raise SourceNotFoundError(
                f"No RAVDESS {archives} archives or Actor_NN folders found in {self.config.source!r}"
                + videos_hint(self.config.source)
            )
        actors = sorted(units)
        absent = [a for a in RAVDESS_ACTORS if a not in units]
        if absent and not is_synthetic_source(self.config.source):
            logger.warning(
                "RAVDESS source lacks actors %s: the folds holding them shrink, no other fold changes (standard "
                "blocks of 4 actors; see the fold table)",
                absent,
            )

        def make_kwargs(split_actors):
            units_ = [(a, kind, loc) for a in sorted(split_actors) for kind, loc in units.get(a, [])]
            return {"units": units_, "streaming": streaming}

        return self._split_by_fold(actors, make_kwargs)

    def _members(self, kind: str, location: str, streaming: bool) -> Iterator[tuple[str, Union[bytes, str]]]:
        if kind == "dir":
            for name in sorted(os.listdir(location)):
                yield os.path.join(os.path.basename(location), name), os.path.join(location, name)
            return
        location = self._fetch(location, streaming)
        if streaming:
            yield from iter_zip_members(location, self.report, self.config.strict)
        else:  # extracted member by member (a corrupt member does not lose the archive) into the cache
            yield from extract_zip_members(location, self._cache_dir_root, self.report, self.config.strict)

    def _fetch(self, location: str, streaming: bool) -> str:
        """An archive's listing entry as a location to read: Hub entries through :func:`resolve_location`, then
        remote URLs through datasets' download manager (map-style: downloaded into its cache, as extracting needs a
        local file; streaming: read in place). Local paths are read where they are."""
        location = resolve_location(location, streaming, self.config.revision)
        return self._dl_manager.download(location) if "://" in location else location

    def _generate_examples(self, units, streaming) -> Iterator[tuple[str, dict]]:
        label_set = self.label_set
        channels = self._channels()
        for archive_actor, kind, location in units:
            for name, data in self._members(kind, location, streaming):
                base = name.replace("\\", "/").rsplit("/", 1)[-1]
                try:
                    meta = parse_ravdess_filename(base)
                except UnknownFileNameError:
                    self._skip(name, "unknown file name")
                    continue
                if meta["modality"] != "audio-visual" or meta["vocal_channel"] not in channels:
                    continue  # video-only / audio-only files are never used (by design, not an error)
                if meta["actor"] != archive_actor:
                    self._skip(name, f"actor {meta['actor']} in the name but archive of actor {archive_actor}")
                    continue
                size = len(data) if isinstance(data, bytes) else os.path.getsize(data)
                if size == 0:
                    self._skip(name, "empty file")
                    continue
                if self.config.validate_media:
                    problem = probe_media(data)
                    if problem:
                        self._skip(name, problem)
                        continue
                label = label_set.map(meta["emotion"])
                if label is None:
                    continue
                media = {"path": base, "bytes": data} if isinstance(data, bytes) else data
                yield (
                    f"{archive_actor:02d}/{name}",
                    {
                        "video": media,
                        "audio": media,
                        "file": base,
                        "actor": meta["actor"],
                        "gender": meta["gender"],
                        "emotion": label,
                        "emotion_raw": meta["emotion"],
                        "intensity": meta["intensity"],
                        "statement": meta["statement"],
                        "repetition": meta["repetition"],
                        "vocal_channel": meta["vocal_channel"],
                    },
                )
        self._split_done()


# ------------------------------------------------------------------------------------------ CREMA-D
class CremaDBuilder(_EmotionBuilder):
    """CREMA-D clips: ``VideoFlash/<clip>.flv`` paired with ``AudioWAV/<clip>.wav`` (or ``AudioMP3``)."""

    corpus = "crema_d"
    BUILDER_CONFIG_CLASS = EmotionCorpusConfig
    DEFAULT_CONFIG_NAME = "default"
    BUILDER_CONFIGS = [EmotionCorpusConfig(name="default")]

    def _info(self) -> datasets.DatasetInfo:
        return self._dataset_info(
            datasets.Features(
                {
                    "video": datasets.Video(),
                    "audio": datasets.Audio(),
                    "file": datasets.Value("string"),
                    "clip_id": datasets.Value("string"),
                    "actor": datasets.Value("int32"),
                    "gender": datasets.Value("string"),
                    "sentence": datasets.Value("string"),
                    "emotion": datasets.ClassLabel(names=list(self.label_set.names)),
                    "emotion_raw": datasets.Value("string"),
                    "level": datasets.Value("string"),
                }
            )
        )

    def _split_generators(self, dl_manager) -> list[datasets.SplitGenerator]:
        if self.config.source is None:
            raise ValueError("CremaDBuilder needs a source (folder or Hub repo id)")
        self._reset_report()
        streaming = dl_manager.is_streaming
        videos, audios, genders = {}, {}, {}
        for location in list_source(self.config.source, self.config.revision):
            parts = location.replace("\\", "/").split("/")
            folder, base = (parts[-2] if len(parts) > 1 else ""), parts[-1]
            if base == "VideoDemographics.csv":
                with open_location(resolve_location(location, streaming, self.config.revision)) as f:
                    genders = read_crema_d_demographics(f.read().decode("utf-8", "replace"))
                continue
            stem, ext = os.path.splitext(base)
            if folder == "VideoFlash" or (ext == ".flv" and folder != "AudioWAV"):
                videos[stem] = location
            elif folder in ("AudioWAV", "AudioMP3") or ext in (".wav", ".mp3"):
                if ext == ".wav" or stem not in audios:  # prefer the lossless wav
                    audios[stem] = location
        if not videos:
            source = self.config.source
            raise SourceNotFoundError(f"No CREMA-D VideoFlash/*.flv files in {source!r}" + videos_hint(source))
        clips = defaultdict(list)  # actor -> [(clip_id, video, audio, meta)]
        for stem in sorted(set(videos) | set(audios)):
            name = videos.get(stem) or audios.get(stem)
            try:
                meta = parse_crema_d_filename(stem, genders)
            except UnknownFileNameError:
                self._skip(os.path.basename(name), "unknown file name")
                continue
            if stem in CREMA_D_BROKEN:
                # known broken: always excluded (even in strict mode), and reported
                self.report.add(stem, f"known broken CREMA-D clip: {CREMA_D_BROKEN[stem]}")
                continue
            if stem not in videos or stem not in audios:
                self._skip(stem, "missing video" if stem not in videos else "missing audio")
                continue
            clips[meta["actor"]].append((stem, videos[stem], audios[stem], meta))
        actors = sorted(clips)

        def make_kwargs(split_actors):
            return {"clips": [c for a in sorted(split_actors) for c in clips.get(a, [])], "streaming": streaming}

        return self._split_by_fold(actors, make_kwargs)

    def _generate_examples(self, clips, streaming) -> Iterator[tuple[str, dict]]:
        label_set = self.label_set
        for stem, video, audio, meta in clips:
            video = resolve_location(video, streaming, self.config.revision)
            audio = resolve_location(audio, streaming, self.config.revision)
            if self.config.validate_media:  # local paths, and remote (hf://) files read into memory
                problem = probe_location(video, need_audio=False) or probe_location(audio, need_video=False)
                if problem:
                    self._skip(stem, problem)
                    continue
            label = label_set.map(meta["emotion"])
            if label is None:
                continue
            yield (
                stem,
                {
                    "video": video,
                    "audio": audio,
                    "file": os.path.basename(video),
                    "clip_id": stem,
                    "actor": meta["actor"],
                    "gender": meta["gender"],
                    "sentence": meta["sentence"],
                    "emotion": label,
                    "emotion_raw": meta["emotion"],
                    "level": meta["level"],
                },
            )
        self._split_done()


# ------------------------------------------------------------------------------------------ IEMOCAP
class IemocapBuilder(_EmotionBuilder):
    """IEMOCAP utterances from a local ``IEMOCAP_full_release`` folder (its licence forbids redistribution).

    ``video`` is the dialog video (both actors side by side, as released) and ``start`` / ``end`` the
    utterance's times in it; ``audio`` is the utterance wav. ``actor`` is 1..10 (``2 * session - 1`` male,
    ``2 * session`` female); folds are leave-one-session-out.
    """

    corpus = "iemocap"
    BUILDER_CONFIG_CLASS = EmotionCorpusConfig
    DEFAULT_CONFIG_NAME = "default"
    BUILDER_CONFIGS = [EmotionCorpusConfig(name="default")]

    def _info(self) -> datasets.DatasetInfo:
        return self._dataset_info(
            datasets.Features(
                {
                    "video": datasets.Video(),
                    "audio": datasets.Audio(),
                    "file": datasets.Value("string"),
                    "utterance_id": datasets.Value("string"),
                    "dialog": datasets.Value("string"),
                    "session": datasets.Value("int32"),
                    "actor": datasets.Value("int32"),
                    "speaker": datasets.Value("string"),
                    "gender": datasets.Value("string"),
                    "improvised": datasets.Value("bool"),
                    "start": datasets.Value("float32"),
                    "end": datasets.Value("float32"),
                    # the utterance wav begins at the utterance's start in the dialog video (its own timeline)
                    "audio_start": datasets.Value("float32"),
                    "emotion": datasets.ClassLabel(names=list(self.label_set.names)),
                    "emotion_raw": datasets.Value("string"),
                }
            )
        )

    def _find_release(self) -> str:
        source = os.fspath(self.config.source)
        for candidate in (source, os.path.join(source, "IEMOCAP_full_release")):
            if os.path.isdir(os.path.join(candidate, "Session1")):
                return candidate
        raise SourceNotFoundError(f"No IEMOCAP release (Session1..5 folders) in {source!r}" + videos_hint(source))

    def _split_generators(self, dl_manager) -> list[datasets.SplitGenerator]:
        if self.config.source is None:
            raise ValueError("IEMOCAP needs source=<your local IEMOCAP_full_release folder>")
        if not os.path.isdir(os.fspath(self.config.source)):
            raise SourceNotFoundError(
                f"IEMOCAP release folder not found: {os.fspath(self.config.source)!r} (IEMOCAP is read from a local "
                "IEMOCAP_full_release folder, or a private copy published with dataset_scripts/publish_iemocap.py)"
            )
        self._reset_report()
        release = self._find_release()
        rows = defaultdict(list)  # actor -> [row]
        for session in range(1, 6):
            eval_dir = os.path.join(release, f"Session{session}", "dialog", "EmoEvaluation")
            if not os.path.isdir(eval_dir):
                self._skip(f"Session{session}", "missing session folder")
                continue
            for name in sorted(os.listdir(eval_dir)):
                if not name.endswith(".txt") or name.startswith("."):
                    continue
                with open(os.path.join(eval_dir, name), encoding="utf-8", errors="replace") as f:
                    for row in parse_iemocap_evaluation(f.read()):
                        try:
                            meta = parse_iemocap_utterance_id(row["utterance_id"])
                        except UnknownFileNameError:
                            self._skip(row["utterance_id"], "unknown utterance id")
                            continue
                        dialog = meta["dialog"]
                        row.update(meta)
                        row["video_path"] = os.path.join(
                            release, f"Session{session}", "dialog", "avi", "DivX", f"{dialog}.avi"
                        )
                        row["audio_path"] = os.path.join(
                            release, f"Session{session}", "sentences", "wav", dialog, f"{row['utterance_id']}.wav"
                        )
                        rows[meta["actor"]].append(row)
        actors = sorted(rows)

        def make_kwargs(split_actors):
            return {"rows": [r for a in sorted(split_actors) for r in rows.get(a, [])]}

        return self._split_by_fold(actors, make_kwargs)

    def _generate_examples(self, rows) -> Iterator[tuple[str, dict]]:
        label_set = self.label_set
        checked = {}
        for row in rows:
            emotion = IEMOCAP_EMOTIONS.get(row["label_code"])
            label = label_set.map(emotion) if emotion else None
            if label is None:
                continue  # outside the 4-class protocol (frustrated, other, undecided, ...): not bad data
            utt = row["utterance_id"]
            if not os.path.exists(row["video_path"]):
                self._skip(utt, "missing dialog video")
                continue
            if not os.path.exists(row["audio_path"]):
                self._skip(utt, "missing utterance audio")
                continue
            if self.config.validate_media:
                if row["video_path"] not in checked:
                    checked[row["video_path"]] = probe_media(row["video_path"], need_audio=False)
                problem = checked[row["video_path"]] or probe_media(row["audio_path"], need_video=False)
                if problem:
                    self._skip(utt, problem)
                    continue
            yield (
                utt,
                {
                    "video": row["video_path"],
                    "audio": row["audio_path"],
                    "file": os.path.basename(row["audio_path"]),
                    "utterance_id": utt,
                    "dialog": row["dialog"],
                    "session": row["session"],
                    "actor": row["actor"],
                    "speaker": row["speaker"],
                    "gender": row["gender"],
                    "improvised": row["improvised"],
                    "start": row["start"],
                    "end": row["end"],
                    "audio_start": row["start"],
                    "emotion": label,
                    "emotion_raw": emotion,
                },
            )
        self._split_done()


BUILDERS = {"ravdess": RavdessBuilder, "crema_d": CremaDBuilder, "iemocap": IemocapBuilder}


__all__ = [
    "BUILDERS",
    "CremaDBuilder",
    "EmotionCorpusConfig",
    "IemocapBuilder",
    "RavdessBuilder",
    "RavdessConfig",
]
