"""Corpus knowledge: file-name parsers, label sets and known-broken files of RAVDESS, CREMA-D and IEMOCAP.

Everything a researcher would otherwise re-derive from each corpus' README lives here, so the builders,
the fold definitions and the publishing commands all agree on one reading of the metadata.
"""

from __future__ import annotations

import logging
import re
from dataclasses import dataclass, field
from typing import Optional


logger = logging.getLogger(__name__)

CORPORA = ("ravdess", "crema_d", "iemocap")

# --------------------------------------------------------------------------------------------- RAVDESS
#: RAVDESS emotion codes (file-name field 3), in code order; the 8-class label set uses this order.
RAVDESS_EMOTIONS = ("neutral", "calm", "happy", "sad", "angry", "fearful", "disgust", "surprised")
RAVDESS_MODALITIES = {1: "audio-visual", 2: "video-only", 3: "audio-only"}
RAVDESS_VOCAL_CHANNELS = {1: "speech", 2: "song"}
RAVDESS_INTENSITIES = {1: "normal", 2: "strong"}
RAVDESS_STATEMENTS = {1: "Kids are talking by the door", 2: "Dogs are sitting by the door"}
RAVDESS_ACTORS = tuple(range(1, 25))
#: Emotions recorded for song (RAVDESS README): no disgust and no surprised.
RAVDESS_SONG_EMOTIONS = ("neutral", "calm", "happy", "sad", "angry", "fearful")
_RAVDESS_NAME = re.compile(r"^(\d{2})-(\d{2})-(\d{2})-(\d{2})-(\d{2})-(\d{2})-(\d{2})\.(mp4|wav)$")


class UnknownFileNameError(ValueError):
    """A file name that does not follow the corpus' naming scheme (never guessed: it would mislabel)."""


def ravdess_archive_name(actor: int, vocal_channel: str = "speech") -> str:
    """File name of the Zenodo archive holding one actor's audio-visual files (e.g. ``Video_Speech_Actor_01.zip``)."""
    return f"Video_{vocal_channel.capitalize()}_Actor_{actor:02d}.zip"


def ravdess_file_name(
    emotion: int, intensity: int, statement: int, repetition: int, actor: int, modality: int = 1, vocal_channel: int = 1
) -> str:
    """RAVDESS file name ``MM-VV-EE-II-SS-RR-AA.mp4`` from its numeric codes."""
    ext = "wav" if modality == 3 else "mp4"
    return f"{modality:02d}-{vocal_channel:02d}-{emotion:02d}-{intensity:02d}-{statement:02d}-{repetition:02d}-{actor:02d}.{ext}"


def parse_ravdess_filename(name: str) -> dict:
    """Parse a RAVDESS file name (any directory prefix is ignored) into metadata columns.

    Returns a dict with ``file`` (base name), ``modality``, ``vocal_channel``, ``emotion`` (name, see
    :data:`RAVDESS_EMOTIONS`), ``emotion_code``, ``intensity``, ``statement`` (1 or 2), ``statement_text``,
    ``repetition``, ``actor`` (1-24) and ``gender`` (odd actors male, even female, per the RAVDESS README).

    Raises:
        UnknownFileNameError: if the name does not follow ``MM-VV-EE-II-SS-RR-AA.mp4`` or a code is out of
            range (including the impossible "strong neutral").
    """
    base = name.replace("\\", "/").rsplit("/", 1)[-1]
    match = _RAVDESS_NAME.match(base)
    if match is None:
        raise UnknownFileNameError(f"Not a RAVDESS file name: {name!r}")
    modality, channel, emotion, intensity, statement, repetition, actor = (int(g) for g in match.groups()[:7])
    if (
        modality not in RAVDESS_MODALITIES
        or channel not in RAVDESS_VOCAL_CHANNELS
        or not 1 <= emotion <= 8
        or intensity not in RAVDESS_INTENSITIES
        or statement not in RAVDESS_STATEMENTS
        or repetition not in (1, 2)
        or actor < 1
        or (emotion == 1 and intensity == 2)
    ):
        raise UnknownFileNameError(f"RAVDESS code out of range in {name!r}")
    return {
        "file": base,
        "modality": RAVDESS_MODALITIES[modality],
        "vocal_channel": RAVDESS_VOCAL_CHANNELS[channel],
        "emotion": RAVDESS_EMOTIONS[emotion - 1],
        "emotion_code": emotion,
        "intensity": RAVDESS_INTENSITIES[intensity],
        "statement": statement,
        "statement_text": RAVDESS_STATEMENTS[statement],
        "repetition": repetition,
        "actor": actor,
        "gender": "male" if actor % 2 else "female",
    }


# --------------------------------------------------------------------------------------------- CREMA-D
CREMA_D_EMOTIONS = {"ANG": "angry", "DIS": "disgust", "FEA": "fearful", "HAP": "happy", "NEU": "neutral", "SAD": "sad"}
CREMA_D_LEVELS = {"LO": "low", "MD": "medium", "HI": "high", "XX": "unspecified"}
CREMA_D_SENTENCES = {
    "IEO": "It's eleven o'clock",
    "TIE": "That is exactly what happened",
    "IOM": "I'm on my way to the meeting",
    "IWW": "I wonder what this is about",
    "TAI": "The airplane is almost full",
    "MTI": "Maybe tomorrow it will be cold",
    "IWL": "I would like a new alarm clock",
    "ITH": "I think I have a doctor's appointment",
    "DFA": "Don't forget a jacket",
    "ITS": "I think I've seen this before",
    "TSI": "The surface is slick",
    "WSI": "We'll stop in a couple of minutes",
}
CREMA_D_ACTORS = tuple(range(1001, 1092))
#: Clips that cannot be used (CREMA-D issue tracker): no duration, or a one-minute compilation.
CREMA_D_BROKEN = {
    "1076_MTI_NEU_XX": "no duration (empty media)",
    "1076_MTI_SAD_XX": "no duration (empty media)",
    "1064_TIE_SAD_XX": "no duration (empty media)",
    "1064_IEO_DIS_MD": "one-minute compilation instead of one sentence",
}
_CREMA_D_NAME = re.compile(r"^(\d{4})_([A-Z]{3})_([A-Z]{3})_([A-Z]{2})(?:\.(\w+))?$")


def parse_crema_d_filename(name: str, genders: Optional[dict[int, str]] = None) -> dict:
    """Parse a CREMA-D clip name ``ActorID_SENTENCE_EMOTION_LEVEL[.ext]`` (e.g. ``1001_DFA_ANG_XX.flv``).

    Args:
        name: file name or path.
        genders: optional ``actor -> "male"|"female"`` map read from ``VideoDemographics.csv``; the name
            itself carries no gender, so without it ``gender`` is ``"unknown"``.

    Raises:
        UnknownFileNameError: on names outside the scheme or with unknown codes.
    """
    base = name.replace("\\", "/").rsplit("/", 1)[-1]
    match = _CREMA_D_NAME.match(base)
    if match is None:
        raise UnknownFileNameError(f"Not a CREMA-D file name: {name!r}")
    actor, sentence, emotion, level = int(match.group(1)), match.group(2), match.group(3), match.group(4)
    if sentence not in CREMA_D_SENTENCES or emotion not in CREMA_D_EMOTIONS or level not in CREMA_D_LEVELS:
        raise UnknownFileNameError(f"Unknown CREMA-D code in {name!r}")
    if actor not in CREMA_D_ACTORS:
        raise UnknownFileNameError(f"CREMA-D actor id out of range (1001-1091) in {name!r}")
    clip_id = base.rsplit(".", 1)[0] if "." in base else base
    return {
        "file": base,
        "clip_id": clip_id,
        "actor": actor,
        "sentence": sentence,
        "sentence_text": CREMA_D_SENTENCES[sentence],
        "emotion": CREMA_D_EMOTIONS[emotion],
        "emotion_code": emotion,
        "level": CREMA_D_LEVELS[level],
        "gender": (genders or {}).get(actor, "unknown"),
    }


def read_crema_d_demographics(text: str) -> dict[int, str]:
    """Read ``VideoDemographics.csv`` (``ActorID,Age,Sex,Race,Ethnicity``) into ``actor -> gender``."""
    import csv
    import io

    genders = {}
    for row in csv.DictReader(io.StringIO(text)):
        sex = (row.get("Sex") or "").strip().lower()
        if row.get("ActorID") and sex in ("male", "female"):
            genders[int(row["ActorID"])] = sex
    return genders


# --------------------------------------------------------------------------------------------- IEMOCAP
IEMOCAP_EMOTIONS = {
    "neu": "neutral", "hap": "happy", "exc": "excited", "ang": "angry", "sad": "sad", "fru": "frustrated",
    "fea": "fearful", "sur": "surprised", "dis": "disgust", "oth": "other", "xxx": "undecided",
}  # fmt: skip
IEMOCAP_SESSIONS = (1, 2, 3, 4, 5)
_IEMOCAP_UTT = re.compile(r"^Ses0([1-5])([FM])_(impro|script)(\w+?)_([FM])(\d{3})$")
_IEMOCAP_EVAL = re.compile(r"^\[(\d+\.?\d*)\s*-\s*(\d+\.?\d*)\]\s+(\S+)\s+(\w+)\s+\[")


def parse_iemocap_utterance_id(utterance_id: str) -> dict:
    """Parse an IEMOCAP utterance id such as ``Ses01F_impro01_F000`` or ``Ses03M_script02_2_M017``.

    The session letter is the gender of the actor wearing motion capture; the letter before the turn number
    is the speaker's gender. Each session has one female and one male actor, so ``speaker`` is e.g.
    ``Ses01F`` and ``actor`` an integer ``2 * session - (1 if male else 0)`` (1..10).
    """
    match = _IEMOCAP_UTT.match(utterance_id)
    if match is None:
        raise UnknownFileNameError(f"Not an IEMOCAP utterance id: {utterance_id!r}")
    session, _, kind, _, speaker_gender, turn = match.groups()
    session = int(session)
    dialog = utterance_id.rsplit("_", 1)[0]
    return {
        "utterance_id": utterance_id,
        "dialog": dialog,
        "session": session,
        "improvised": kind == "impro",
        "gender": "female" if speaker_gender == "F" else "male",
        "speaker": f"Ses{session:02d}{speaker_gender}",
        "actor": 2 * session - (1 if speaker_gender == "M" else 0),
        "turn": int(turn),
    }


def parse_iemocap_evaluation(text: str) -> list[dict]:
    """Read one ``EmoEvaluation/<dialog>.txt`` file: one dict per utterance with times and the consensus label.

    Only the summary lines ``[start - end]<TAB>utterance_id<TAB>label<TAB>[v, a, d]`` are read; the
    per-annotator lines below them are ignored.
    """
    rows = []
    for line in text.splitlines():
        match = _IEMOCAP_EVAL.match(line.strip())
        if match:
            start, end, utt, label = match.groups()
            rows.append({"utterance_id": utt, "start": float(start), "end": float(end), "label_code": label})
    return rows


# --------------------------------------------------------------------------------------------- label sets
@dataclass(frozen=True)
class LabelSet:
    """A named set of class labels for a corpus and how raw corpus emotions map onto it.

    Raw emotions missing from ``mapping`` are not part of the task and are dropped (and counted), never
    assigned a neighbouring class.
    """

    corpus: str
    name: str
    names: tuple[str, ...]
    mapping: dict = field(default_factory=dict)
    description: str = ""

    def map(self, emotion: str) -> Optional[str]:
        """Label name for a raw corpus emotion, or ``None`` when the emotion is outside this label set."""
        return self.mapping.get(emotion)


LABEL_SETS: dict[str, dict[str, LabelSet]] = {
    "ravdess": {
        "8class": LabelSet(
            "ravdess", "8class", RAVDESS_EMOTIONS, {e: e for e in RAVDESS_EMOTIONS}, "RAVDESS's eight emotions"
        ),
        "7class": LabelSet(
            "ravdess",
            "7class",
            tuple(e for e in RAVDESS_EMOTIONS if e != "calm"),
            {**{e: e for e in RAVDESS_EMOTIONS}, "calm": "neutral"},
            "MultiMAE-DER paper variant: calm merged into neutral",
        ),
    },
    "crema_d": {
        "6class": LabelSet(
            "crema_d",
            "6class",
            ("neutral", "happy", "sad", "angry", "fearful", "disgust"),
            {e: e for e in CREMA_D_EMOTIONS.values()},
            "CREMA-D's six emotions",
        )
    },
    "iemocap": {
        "4class": LabelSet(
            "iemocap",
            "4class",
            ("neutral", "happy", "angry", "sad"),
            {"neutral": "neutral", "happy": "happy", "excited": "happy", "angry": "angry", "sad": "sad"},
            "standard 4-class IEMOCAP (excited merged into happy; other labels dropped)",
        )
    },
}
DEFAULT_LABEL_SETS = {"ravdess": "8class", "crema_d": "6class", "iemocap": "4class"}
_ALIASES = {"crema-d": "crema_d", "cremad": "crema_d", "crema": "crema_d"}


def normalize_corpus_name(name: str) -> str:
    """Canonical corpus name (``ravdess``, ``crema_d`` or ``iemocap``); accepts ``CREMA-D`` etc."""
    key = name.strip().lower()
    key = _ALIASES.get(key, key)
    if key not in CORPORA:
        raise ValueError(f"Unknown corpus {name!r}; expected one of {', '.join(CORPORA)}")
    return key


def get_label_set(corpus: str, label_set: Optional[str] = None) -> LabelSet:
    """Return the :class:`LabelSet` ``label_set`` (default: the corpus' standard one) of ``corpus``."""
    corpus = normalize_corpus_name(corpus)
    name = label_set or DEFAULT_LABEL_SETS[corpus]
    name = {"8": "8class", "7": "7class", "6": "6class", "4": "4class"}.get(str(name), str(name))
    if name not in LABEL_SETS[corpus]:
        raise ValueError(f"Unknown label set {label_set!r} for {corpus}; expected one of {list(LABEL_SETS[corpus])}")
    return LABEL_SETS[corpus][name]


__all__ = [
    "CORPORA",
    "CREMA_D_ACTORS",
    "CREMA_D_BROKEN",
    "CREMA_D_EMOTIONS",
    "CREMA_D_SENTENCES",
    "DEFAULT_LABEL_SETS",
    "IEMOCAP_EMOTIONS",
    "LABEL_SETS",
    "LabelSet",
    "RAVDESS_ACTORS",
    "RAVDESS_EMOTIONS",
    "UnknownFileNameError",
    "get_label_set",
    "normalize_corpus_name",
    "parse_crema_d_filename",
    "parse_iemocap_evaluation",
    "parse_iemocap_utterance_id",
    "parse_ravdess_filename",
    "ravdess_archive_name",
    "ravdess_file_name",
    "read_crema_d_demographics",
]
