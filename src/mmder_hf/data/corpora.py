"""Corpus knowledge: file-name parsers, label sets, known-broken files and the registry of corpus facts.

Everything a researcher would otherwise re-derive from each corpus' README lives here, so the builders,
the fold definitions, the publishing commands and the model cards all agree on one reading of the metadata.
:data:`CORPUS_INFO` is the one place for what they *state* about a corpus (licence, homepage, citation,
protocol, redistribution rule, tags, label sets): change a fact here and every card and builder follows.
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
    """Name of the Zenodo archive holding one actor's audio-visual files (e.g. ``Video_Speech_Actor_01.zip``)."""
    return f"Video_{vocal_channel.capitalize()}_Actor_{actor:02d}.zip"


def ravdess_file_name(
    emotion: int,
    intensity: int,
    statement: int,
    repetition: int,
    actor: int,
    modality: int = 1,
    vocal_channel: int = 1,
) -> str:
    """RAVDESS file name ``MM-VV-EE-II-SS-RR-AA.mp4`` from its numeric codes."""
    ext = "wav" if modality == 3 else "mp4"
    codes = (modality, vocal_channel, emotion, intensity, statement, repetition, actor)
    return "-".join(f"{code:02d}" for code in codes) + f".{ext}"


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
    "neu": "neutral",
    "hap": "happy",
    "exc": "excited",
    "ang": "angry",
    "sad": "sad",
    "fru": "frustrated",
    "fea": "fearful",
    "sur": "surprised",
    "dis": "disgust",
    "oth": "other",
    "xxx": "undecided",
}
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
    #: what a model card adds after the label set's name (``None``: nothing to add)
    card_note: Optional[str] = None

    def map(self, emotion: str) -> Optional[str]:
        """Label name for a raw corpus emotion, or ``None`` when the emotion is outside this label set."""
        return self.mapping.get(emotion)


_RAVDESS_LABEL_SETS = (
    LabelSet("ravdess", "8class", RAVDESS_EMOTIONS, {e: e for e in RAVDESS_EMOTIONS}, "RAVDESS's eight emotions"),
    LabelSet(
        "ravdess",
        "7class",
        tuple(e for e in RAVDESS_EMOTIONS if e != "calm"),
        {**{e: e for e in RAVDESS_EMOTIONS}, "calm": "neutral"},
        "MultiMAE-DER paper variant: calm merged into neutral (inferred from the paper's 7 classes and clip counts; "
        "the authors do not say how they made them)",
        card_note="calm merged into neutral, as inferred from the paper's class counts; the authors do not say",
    ),
)
_CREMA_D_LABEL_SETS = (
    LabelSet(
        "crema_d",
        "6class",
        ("neutral", "happy", "sad", "angry", "fearful", "disgust"),
        {e: e for e in CREMA_D_EMOTIONS.values()},
        "CREMA-D's six emotions",
    ),
)
_IEMOCAP_LABEL_SETS = (
    LabelSet(
        "iemocap",
        "4class",
        ("neutral", "happy", "angry", "sad"),
        {"neutral": "neutral", "happy": "happy", "excited": "happy", "angry": "angry", "sad": "sad"},
        "standard 4-class IEMOCAP (excited merged into happy; other labels dropped)",
    ),
)


# --------------------------------------------------------------------------------------------- registry
#: The paper's strategies and baselines, in the order of its table (best first).
PAPER_MODELS = ("FSLF", "FFLS", "CFAS", "OFOS", "SFAS", "RFAS", "video", "audio")


@dataclass(frozen=True)
class PublishedResults:
    """What the MultiMAE-DER paper reports on a corpus, and under which protocol (so no table mixes protocols).

    Attributes:
        protocol: how the paper's numbers were measured, in one phrase (table column labels).
        label_set: the label set they use (a name from the corpus' label sets).
        backbone: the encoder the paper used.
        results: ``model -> (UAR, WAR)`` in percent, ``model`` a fusion strategy or ``video`` / ``audio``; the
            paper reports WAR only for the single-modality baselines (UAR ``None``).
    """

    protocol: str
    label_set: str
    backbone: str
    results: dict[str, tuple[Optional[float], float]]


_PAPER_BACKBONE = "VideoMAE ViT-L, frozen (linear probe)"


@dataclass(frozen=True)
class CorpusInfo:
    """Every fact that cards, builders and publishing state about one corpus, kept once so that they cannot drift.

    Attributes:
        name: canonical key (``ravdess``, ``crema_d``, ``iemocap`` or ``synthetic``).
        pretty_name: short display name (model cards, the model-index ``dataset.name``).
        dataset_pretty_name: title of a published copy (dataset card and its ``pretty_name`` metadata).
        description: one line for the builders' ``DatasetInfo`` (also part of the preprocess cache key).
        license: Hub licence id of the data.
        license_name: the data licence as people read it (model cards).
        homepage: where the corpus is distributed (``None``: generated here).
        citation: BibTeX entry; one key per corpus (:attr:`citation_key`). Long author lists are continued with
            a backslash so that the entry renders with one ``author`` line.
        dataset_id: default Hub dataset name of a published copy (``None``: none by default).
        protocol: the evaluation protocol in one sentence (model and dataset cards; implemented in
            :mod:`mmder_hf.data.folds`).
        redistributable: ``False`` when the licence allows private copies only (publishing refuses public repos).
        redistribution: what the licence allows, in one sentence (dataset cards).
        tags: Hub tags naming the corpus.
        label_sets: the corpus' :class:`LabelSet` s; ``default_label_set`` names the standard one.
        license_slug, license_link: the Hub ``license_name`` / ``license_link`` metadata, for ``license: other``.
        published: what the MultiMAE-DER paper reports on the corpus (``None``: nothing).
        face_crop_note: what a face crop of the corpus's videos gives when that is not simply the one face in
            them, in one sentence (model cards, and the warning of a face-cropped run); ``None``: nothing to say.
        no_face_crop_note: what the model card says of a run without face crop (``None``: nothing to say).
        card_title: the corpus as a model card's title names it (``... emotion recognition on <card_title>``).
        card_trained_on: how the model card's introduction says the model was trained (``fine-tuned on ...``).
        card_notice: a warning quoted right under the card's title (``None``: none).
        card_results_note: a paragraph under the card's results (``None``: the paper's number for the corpus).
        card_data: the card's **Data** line: what was read of the corpus (the dataset id read is appended).
        card_limitations, card_bias: the bullets of the card's limitations and bias sections for this corpus.
        card_licence_notice: what the licence of the data asks a model card to say (``None``: nothing).
    """

    name: str
    pretty_name: str
    dataset_pretty_name: str
    description: str
    license: str
    license_name: str
    homepage: Optional[str]
    citation: str
    dataset_id: Optional[str]
    protocol: str
    redistributable: bool
    redistribution: str
    tags: tuple[str, ...]
    label_sets: tuple[LabelSet, ...]
    default_label_set: str
    license_slug: Optional[str] = None
    license_link: Optional[str] = None
    published: Optional[PublishedResults] = None
    face_crop_note: Optional[str] = None
    no_face_crop_note: Optional[str] = None
    card_title: str = ""
    card_trained_on: str = ""
    card_notice: Optional[str] = None
    card_results_note: Optional[str] = None
    card_data: str = ""
    card_limitations: tuple[str, ...] = ()
    card_bias: tuple[str, ...] = ()
    card_licence_notice: Optional[str] = None

    @property
    def citation_key(self) -> Optional[str]:
        """BibTeX key of :attr:`citation` (``livingstone2018ravdess``), ``None`` without a citation."""
        match = re.match(r"\s*@\w+\{([^,\s]+),", self.citation)
        return match.group(1) if match else None


#: Model-card bullets shared by corpora: the clip length, and what the labels are.
_FIXED_CLIP = "The model sees a fixed number of frames of each clip; long videos must be cut into clips."
_EXPRESSED = "Predictions are categorical labels of **expressed** {what}emotion, not of what a person feels."

#: Folds of CREMA-D by actor id range (stated in its protocol, implemented in :mod:`mmder_hf.data.folds`).
CREMA_D_FOLD_RANGES = ((1001, 1018), (1019, 1036), (1037, 1054), (1055, 1072), (1073, 1091))

CORPUS_INFO: dict[str, CorpusInfo] = {
    "ravdess": CorpusInfo(
        name="ravdess",
        pretty_name="RAVDESS",
        dataset_pretty_name="RAVDESS audio-visual speech",
        description="RAVDESS audio-visual speech/song clips (modality 01) with parsed metadata.",
        license="cc-by-nc-sa-4.0",
        license_name="CC BY-NC-SA 4.0",
        homepage="https://zenodo.org/records/1188976",
        citation="""@article{livingstone2018ravdess,
  title   = {The Ryerson Audio-Visual Database of Emotional Speech and Song (RAVDESS)},
  author  = {Livingstone, Steven R. and Russo, Frank A.},
  journal = {PLoS ONE},
  volume  = {13},
  number  = {5},
  pages   = {e0196391},
  year    = {2018},
  doi     = {10.1371/journal.pone.0196391}
}""",
        dataset_id="ravdess-av",
        protocol="6 subject-independent folds of 4 consecutive actors (01-04, 05-08, ...); validation: the first two "
        "actors of the next block.",
        redistributable=True,
        redistribution="CC BY-NC-SA 4.0: non-commercial use, share alike, attribute the authors.",
        tags=("ravdess",),
        label_sets=_RAVDESS_LABEL_SETS,
        default_label_set="8class",
        card_title="RAVDESS",
        card_trained_on="fine-tuned on the RAVDESS audio-visual speech clips",
        card_data="RAVDESS (Livingstone & Russo, 2018), audio-visual speech files (modality 01; video-only and "
        "audio-only duplicates never used)",
        card_limitations=(
            "RAVDESS holds 24 North-American English-speaking actors reading two neutral sentences with **acted** "
            "emotions in a studio, frontal face, clean audio. Spontaneous emotions, other languages, poor lighting, "
            "profiles, several faces, music or noise are out of distribution.",
            _EXPRESSED.format(what="(portrayed) "),
            "Fold-to-fold variation with 4 test actors is large; report per-fold numbers and their spread.",
            _FIXED_CLIP,
        ),
        card_bias=(
            "12 female and 12 male actors, mostly white, aged 21-33: performance for other ages, ethnicities and "
            "cultures is unknown and likely lower. Emotional display rules differ across cultures.",
        ),
        card_licence_notice="The licence (non-commercial, share-alike) follows the data's CC BY-NC-SA 4.0 licence.",
        published=PublishedResults(
            protocol="one 1080 / 360 train / test split, not cross-validation",
            label_set="7class",
            backbone=_PAPER_BACKBONE,
            results={
                "FSLF": (83.23, 83.61),
                "FFLS": (82.27, 83.56),
                "CFAS": (80.65, 81.39),
                "OFOS": (77.78, 78.61),
                "SFAS": (75.79, 76.94),
                "RFAS": (75.97, 75.44),
                "video": (None, 74.13),
                "audio": (None, 80.55),
            },
        ),
    ),
    "crema_d": CorpusInfo(
        name="crema_d",
        pretty_name="CREMA-D",
        dataset_pretty_name="CREMA-D audio-visual",
        description="CREMA-D audio-visual clips with parsed metadata.",
        license="odbl",
        license_name="Open Database License (ODbL) v1.0, contents under DbCL v1.0",
        homepage="https://github.com/CheyneyComputerScience/CREMA-D",
        citation="""@article{cao2014cremad,
  title   = {CREMA-D: Crowd-sourced Emotional Multimodal Actors Dataset},
  author  = {Cao, Houwei and Cooper, David G. and Keutmann, Michael K. and Gur, Ruben C. and Nenkova, Ani and \
Verma, Ragini},
  journal = {IEEE Transactions on Affective Computing},
  volume  = {5},
  number  = {4},
  pages   = {377--390},
  year    = {2014},
  doi     = {10.1109/TAFFC.2014.2336244}
}""",
        dataset_id="crema-d-av",
        protocol=f"5 subject-independent folds by actor id ({', '.join(f'{a}-{b}' for a, b in CREMA_D_FOLD_RANGES)}); "
        f"validation: the first four actors of the next range; the known broken clips ({', '.join(CREMA_D_BROKEN)}) "
        "are excluded.",
        redistributable=True,
        redistribution="Open Database License (ODbL) for the database, Database Contents License (DbCL) for its "
        "contents.",
        tags=("crema-d",),
        label_sets=_CREMA_D_LABEL_SETS,
        default_label_set="6class",
        card_title="CREMA-D",
        card_trained_on="fine-tuned on the CREMA-D clips",
        card_data="CREMA-D (Cao et al., 2014): the `VideoFlash` videos with the `AudioWAV` tracks, less the known "
        "broken clips (listed in the protocol)",
        card_limitations=(
            "CREMA-D holds 91 actors (ages 20-74) speaking 12 fixed English sentences with **acted** emotions at "
            "several intensities, in front of a green screen. Spontaneous emotions, other languages, in-the-wild "
            "video, profiles or several faces are out of distribution.",
            "The crowd-sourced perceptual ratings disagree with the intended emotion for a sizeable part of the "
            "clips; this model learns the **intended** label.",
            _EXPRESSED.format(what=""),
            _FIXED_CLIP,
        ),
        card_bias=(
            "48 male and 43 female actors of several races and ethnicities (African American, Asian, Caucasian, "
            "Hispanic, unspecified), all recorded in one US lab: performance for other ages, accents and cultures is "
            "unknown; per-group metrics should be checked before any use.",
        ),
        card_licence_notice="The data is under the Open Database License (ODbL) v1.0, contents under DbCL v1.0; a "
        'model is a "produced work" under the ODbL, which requires this notice: *contains information from CREMA-D, '
        "which is made available under the ODbL*.",
        published=PublishedResults(
            protocol="one undocumented split",
            label_set="6class",
            backbone=_PAPER_BACKBONE,
            results={
                "FSLF": (79.12, 79.36),
                "FFLS": (78.59, 78.83),
                "CFAS": (78.24, 78.16),
                "OFOS": (76.88, 76.54),
                "SFAS": (75.73, 75.48),
                "RFAS": (74.62, 74.90),
                "video": (None, 77.83),
                "audio": (None, 78.45),
            },
        ),
    ),
    "iemocap": CorpusInfo(
        name="iemocap",
        pretty_name="IEMOCAP",
        dataset_pretty_name="IEMOCAP (private copy)",
        description="IEMOCAP utterances (4-class protocol) with dialog video segments and utterance audio.",
        license="other",
        license_name="USC IEMOCAP release agreement (research use, no redistribution)",
        homepage="https://sail.usc.edu/iemocap/",
        citation="""@article{busso2008iemocap,
  title   = {IEMOCAP: Interactive Emotional Dyadic Motion Capture Database},
  author  = {Busso, Carlos and Bulut, Murtaza and Lee, Chi-Chun and Kazemzadeh, Abe and Mower, Emily and \
Kim, Samuel and Chang, Jeannette N. and Lee, Sungbok and Narayanan, Shrikanth S.},
  journal = {Language Resources and Evaluation},
  volume  = {42},
  number  = {4},
  pages   = {335--359},
  year    = {2008},
  doi     = {10.1007/s10579-008-9076-6}
}""",
        dataset_id=None,
        protocol="Leave-one-session-out (5 folds); validation: the next session; 4 classes (neutral, happy + excited, "
        "angry, sad).",
        redistributable=False,
        redistribution="USC IEMOCAP release form: NO redistribution. This repository must stay private and be shared "
        "with no one who has not signed the release form.",
        tags=("iemocap",),
        label_sets=_IEMOCAP_LABEL_SETS,
        default_label_set="4class",
        published=PublishedResults(
            protocol="one undocumented split",
            label_set="4class",
            backbone=_PAPER_BACKBONE,
            results={
                "FSLF": (63.21, 63.73),
                "FFLS": (62.92, 63.43),
                "CFAS": (61.98, 62.25),
                "OFOS": (61.87, 61.12),
                "SFAS": (60.39, 60.17),
                "RFAS": (58.62, 59.98),
                "video": (None, 56.13),
                "audio": (None, 58.69),
            },
        ),
        license_slug="iemocap-release-agreement",
        license_link="https://sail.usc.edu/iemocap/release_form.php",
        face_crop_note="The dialog videos show both actors side by side: the crop follows the main face track (the "
        "face seen larger, more often and nearer the centre), which need not be the speaker.",
        no_face_crop_note="No face crop: the dialog videos show both actors side by side.",
        card_title="IEMOCAP",
        card_trained_on="fine-tuned on IEMOCAP utterances",
        card_data="IEMOCAP (Busso et al., 2008), a local copy of the release (not redistributable): each utterance's "
        "segment of the dialog video and its wav file; utterances outside the 4-class protocol dropped",
        card_limitations=(
            "IEMOCAP holds 10 actors (5 sessions of one female and one male) in scripted and improvised dyadic "
            "conversations, with motion-capture markers on the face; the labels are annotators' majority votes. "
            "Other languages, in-the-wild video or other camera set-ups are out of distribution.",
            "Both actors appear in every frame: the model is not told who is speaking.",
            "Predictions are categorical labels of **perceived** emotion in 4 classes only (frustration, surprise, "
            "fear and others are not modelled).",
            "The model sees a fixed number of frames of each utterance; long recordings must be segmented.",
        ),
        card_bias=(
            "Ten North-American English-speaking actors are far too few to represent the range of ages, ethnicities "
            "and cultures; per-group behaviour is unknown.",
        ),
        card_licence_notice="**Licence**: IEMOCAP is distributed by USC SAIL under a release agreement for research "
        "use that forbids redistribution. These weights are trained on it: share them only as that agreement allows "
        "(for example in a private or gated repository for licensed users), and check the agreement before "
        "publishing.",
    ),
    "synthetic": CorpusInfo(
        name="synthetic",
        pretty_name="synthetic RAVDESS-format corpus",
        dataset_pretty_name="synthetic RAVDESS-format corpus",
        description="Synthetic RAVDESS-format clips (a coloured square and a tone per clip) made by "
        "mmder_hf.data.synthetic.",
        license="apache-2.0",
        license_name="Apache 2.0 (generated by mmder-hf)",
        homepage=None,
        citation="",
        dataset_id=None,
        protocol="RAVDESS-format fold 1 over the generated actors: test on a block of 4 actors, validate on 2 others, "
        "train on the rest. The emotion is split into a visual cue (colour of a square: emotion % 4) and an audio "
        "cue (pitch of a tone: emotion // 4): one modality alone leaves 2 (video) or 4 (audio) candidates.",
        redistributable=True,
        redistribution="Apache 2.0: generated by mmder-hf; no person appears in the data.",
        tags=("synthetic-data",),
        label_sets=_RAVDESS_LABEL_SETS,
        default_label_set="8class",
        card_title="the synthetic corpus",
        card_trained_on="trained on mmder-hf's **synthetic** RAVDESS-format corpus",
        card_notice="**Synthetic clips only.** This model was trained on the built-in synthetic corpus of mmder-hf "
        "(colour and pitch cues drawn by a program, not recordings of people): it recognises synthetic clips only, "
        'not real faces and voices. Its `config.json` says so (`"training_data": "synthetic"`).',
        card_results_note="This is a **demonstration / test model**: the corpus is built so that neither modality "
        "alone determines the label (a perfect video-only model reaches at most 50 % WAR, a perfect audio-only model "
        "at most 25 %), so a WAR well above 50 % shows that the fusion works end to end.",
        card_data="generated by `python -m mmder_hf.data.synthetic` (deterministic from its seed): per actor a "
        "background, a coloured square (the visual cue) and a tone (the audio cue), in RAVDESS's file layout and "
        "naming",
        card_limitations=(
            "Trained on synthetic clips (coloured squares and pure tones), it knows nothing about faces, voices or "
            "emotions: its labels mean nothing on real videos. Use it to test code, pipelines and deployments only.",
        ),
        card_bias=(
            "No person appears in the data. The model must not be presented or used as an emotion recogniser.",
        ),
    ),
}
#: ``corpus -> label set name -> LabelSet`` of the three real corpora (read from :data:`CORPUS_INFO`).
LABEL_SETS: dict[str, dict[str, LabelSet]] = {c: {ls.name: ls for ls in CORPUS_INFO[c].label_sets} for c in CORPORA}
DEFAULT_LABEL_SETS = {c: CORPUS_INFO[c].default_label_set for c in CORPORA}
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


def get_corpus_info(name: str) -> CorpusInfo:
    """The :class:`CorpusInfo` of ``name`` (any spelling :func:`normalize_corpus_name` accepts, or ``synthetic``)."""
    key = name.strip().lower()
    return CORPUS_INFO["synthetic" if key == "synthetic" else normalize_corpus_name(key)]


__all__ = [
    "CORPORA",
    "CORPUS_INFO",
    "CREMA_D_ACTORS",
    "CREMA_D_BROKEN",
    "CREMA_D_EMOTIONS",
    "CREMA_D_FOLD_RANGES",
    "CREMA_D_SENTENCES",
    "CorpusInfo",
    "DEFAULT_LABEL_SETS",
    "IEMOCAP_EMOTIONS",
    "LABEL_SETS",
    "LabelSet",
    "RAVDESS_ACTORS",
    "RAVDESS_EMOTIONS",
    "UnknownFileNameError",
    "get_corpus_info",
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
