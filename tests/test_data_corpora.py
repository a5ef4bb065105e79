"""Corpus parsers, label sets, fold definitions and the one registry of corpus facts."""

import ast
import csv
import json
import os
from pathlib import Path

import pytest

from mmder_hf.data.corpora import (
    CORPORA,
    CORPUS_INFO,
    CREMA_D_BROKEN,
    UnknownFileNameError,
    get_corpus_info,
    get_label_set,
    parse_crema_d_filename,
    parse_iemocap_evaluation,
    parse_iemocap_utterance_id,
    parse_ravdess_filename,
    read_crema_d_demographics,
)
from mmder_hf.data.folds import crema_d_folds, export_folds, get_fold, iemocap_folds, ravdess_folds


def test_parse_ravdess_every_field():
    meta = parse_ravdess_filename("Actor_12/01-02-05-02-01-02-12.mp4")
    assert meta == {
        "file": "01-02-05-02-01-02-12.mp4",
        "modality": "audio-visual",
        "vocal_channel": "song",
        "emotion": "angry",
        "emotion_code": 5,
        "intensity": "strong",
        "statement": 1,
        "statement_text": "Kids are talking by the door",
        "repetition": 2,
        "actor": 12,
        "gender": "female",
    }
    meta = parse_ravdess_filename("02-01-08-01-02-01-07.mp4")
    assert (meta["modality"], meta["vocal_channel"], meta["emotion"], meta["gender"]) == (
        "video-only",
        "speech",
        "surprised",
        "male",
    )
    assert parse_ravdess_filename("03-01-02-01-01-01-01.wav")["modality"] == "audio-only"


@pytest.mark.parametrize(
    "name",
    [
        "01-01-09-01-01-01-01.mp4",
        "01-01-01-02-01-01-01.mp4",
        "04-01-01-01-01-01-01.mp4",
        "clip.mp4",
        "01-01-01-01-01-01.mp4",
        "01-01-03-01-03-01-01.mp4",
    ],
)
def test_parse_ravdess_rejects_bad_names(name):
    with pytest.raises(UnknownFileNameError):
        parse_ravdess_filename(name)


def test_parse_crema_d_every_field():
    genders = read_crema_d_demographics("ActorID,Age,Sex,Race,Ethnicity\n1001,51,Male,Caucasian,Not Hispanic\n")
    meta = parse_crema_d_filename("VideoFlash/1001_DFA_ANG_XX.flv", genders)
    assert meta == {
        "file": "1001_DFA_ANG_XX.flv",
        "clip_id": "1001_DFA_ANG_XX",
        "actor": 1001,
        "sentence": "DFA",
        "sentence_text": "Don't forget a jacket",
        "emotion": "angry",
        "emotion_code": "ANG",
        "level": "unspecified",
        "gender": "male",
    }
    assert parse_crema_d_filename("1091_IEO_SAD_HI")["level"] == "high"
    assert parse_crema_d_filename("1050_TSI_FEA_LO.wav")["gender"] == "unknown"
    for bad in ("1001_DFA_XYZ_XX.flv", "0999_DFA_ANG_XX", "1001_ABC_ANG_XX", "foo.flv"):
        with pytest.raises(UnknownFileNameError):
            parse_crema_d_filename(bad)
    assert set(CREMA_D_BROKEN) == {"1076_MTI_NEU_XX", "1076_MTI_SAD_XX", "1064_TIE_SAD_XX", "1064_IEO_DIS_MD"}


def test_parse_iemocap():
    meta = parse_iemocap_utterance_id("Ses03M_script02_2_F017")
    assert meta == {
        "utterance_id": "Ses03M_script02_2_F017",
        "dialog": "Ses03M_script02_2",
        "session": 3,
        "improvised": False,
        "gender": "female",
        "speaker": "Ses03F",
        "actor": 6,
        "turn": 17,
    }
    assert parse_iemocap_utterance_id("Ses01F_impro01_M000")["actor"] == 1
    rows = parse_iemocap_evaluation(
        "% [START_TIME - END_TIME] TURN_NAME EMOTION [V, A, D]\n\n"
        "[6.2901 - 8.2357]\tSes01F_impro01_F000\tneu\t[2.5000, 2.5000, 2.5000]\nC-E2:\tNeutral;\t()\n"
    )
    assert rows == [{"utterance_id": "Ses01F_impro01_F000", "start": 6.2901, "end": 8.2357, "label_code": "neu"}]
    with pytest.raises(UnknownFileNameError):
        parse_iemocap_utterance_id("Ses06F_impro01_F000")


RAVDESS_CODES = {
    "modality": {1: "audio-visual", 2: "video-only", 3: "audio-only"},
    "vocal_channel": {1: "speech", 2: "song"},
    "emotion": {
        1: "neutral",
        2: "calm",
        3: "happy",
        4: "sad",
        5: "angry",
        6: "fearful",
        7: "disgust",
        8: "surprised",
    },
    "intensity": {1: "normal", 2: "strong"},
    "statement_text": {1: "Kids are talking by the door", 2: "Dogs are sitting by the door"},
}


def test_parse_ravdess_every_code_of_every_field():
    """Each code of each field (RAVDESS README), with the others fixed, and every actor's gender."""
    from mmder_hf.data.corpora import RAVDESS_ACTORS, ravdess_archive_name, ravdess_file_name

    for code, name in RAVDESS_CODES["modality"].items():
        ext = "wav" if code == 3 else "mp4"
        assert parse_ravdess_filename(f"{code:02d}-01-03-01-01-01-01.{ext}")["modality"] == name
        assert ravdess_file_name(3, 1, 1, 1, 1, modality=code) == f"{code:02d}-01-03-01-01-01-01.{ext}"
    for code, name in RAVDESS_CODES["vocal_channel"].items():
        assert parse_ravdess_filename(f"01-{code:02d}-03-01-01-01-01.mp4")["vocal_channel"] == name
    for code, name in RAVDESS_CODES["emotion"].items():
        meta = parse_ravdess_filename(f"01-01-{code:02d}-01-01-01-01.mp4")
        assert (meta["emotion"], meta["emotion_code"]) == (name, code)
    for code, name in RAVDESS_CODES["intensity"].items():
        assert parse_ravdess_filename(f"01-01-03-{code:02d}-01-01-01.mp4")["intensity"] == name
    for code, text in RAVDESS_CODES["statement_text"].items():
        meta = parse_ravdess_filename(f"01-01-03-01-{code:02d}-01-01.mp4")
        assert (meta["statement"], meta["statement_text"]) == (code, text)
    for repetition in (1, 2):
        assert parse_ravdess_filename(f"01-01-03-01-01-{repetition:02d}-01.mp4")["repetition"] == repetition
    for actor in range(1, 25):
        meta = parse_ravdess_filename(f"01-01-03-01-01-01-{actor:02d}.mp4")
        assert (meta["actor"], meta["gender"]) == (actor, "male" if actor in range(1, 25, 2) else "female")
    assert RAVDESS_ACTORS == tuple(range(1, 25)) and len(RAVDESS_ACTORS) == 24
    # strong intensity is fine for any emotion but neutral; directory prefixes of either kind are ignored
    assert parse_ravdess_filename("01-01-02-02-01-01-01.mp4")["intensity"] == "strong"
    meta = parse_ravdess_filename("C:\\data\\Actor_03\\01-02-04-02-02-02-03.mp4")
    assert (meta["file"], meta["vocal_channel"], meta["actor"]) == ("01-02-04-02-02-02-03.mp4", "song", 3)
    assert parse_ravdess_filename("a/b/01-01-04-01-01-01-05.mp4")["file"] == "01-01-04-01-01-01-05.mp4"
    assert ravdess_file_name(8, 2, 1, 2, 24, vocal_channel=2) == "01-02-08-02-01-02-24.mp4"
    assert ravdess_archive_name(7) == "Video_Speech_Actor_07.zip"
    assert ravdess_archive_name(12, "song") == "Video_Song_Actor_12.zip"


@pytest.mark.parametrize(
    "name",
    [
        "00-01-03-01-01-01-01.mp4",  # modality 0
        "01-03-03-01-01-01-01.mp4",  # vocal channel 3
        "01-00-03-01-01-01-01.mp4",  # vocal channel 0
        "01-01-00-01-01-01-01.mp4",  # emotion 0
        "01-01-03-03-01-01-01.mp4",  # intensity 3
        "01-01-03-01-00-01-01.mp4",  # statement 0
        "01-01-03-01-01-03-01.mp4",  # repetition 3
        "01-01-03-01-01-00-01.mp4",  # repetition 0
        "01-01-03-01-01-01-00.mp4",  # actor 0
        "01-01-01-02-02-02-02.mp4",  # strong neutral does not exist
        "01-01-03-01-01-01-01.avi",  # extension
    ],
)
def test_parse_ravdess_rejects_each_out_of_range_code(name):
    with pytest.raises(UnknownFileNameError):
        parse_ravdess_filename(name)


CREMA_D_CODES = {
    "sentence_text": {
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
    },
    "emotion": {"ANG": "angry", "DIS": "disgust", "FEA": "fearful", "HAP": "happy", "NEU": "neutral", "SAD": "sad"},
    "level": {"LO": "low", "MD": "medium", "HI": "high", "XX": "unspecified"},
}


def test_parse_crema_d_every_code_and_actor_range():
    from mmder_hf.data.corpora import CREMA_D_ACTORS

    for code, text in CREMA_D_CODES["sentence_text"].items():
        meta = parse_crema_d_filename(f"1002_{code}_SAD_LO.wav")
        assert (meta["sentence"], meta["sentence_text"]) == (code, text)
    for code, name in CREMA_D_CODES["emotion"].items():
        meta = parse_crema_d_filename(f"1002_IEO_{code}_XX")
        assert (meta["emotion"], meta["emotion_code"]) == (name, code)
    for code, name in CREMA_D_CODES["level"].items():
        assert parse_crema_d_filename(f"1002_IEO_SAD_{code}.flv")["level"] == name
    meta = parse_crema_d_filename("1091_WSI_NEU_XX")  # no extension: the clip id is the whole name
    assert (meta["file"], meta["clip_id"], meta["actor"]) == ("1091_WSI_NEU_XX", "1091_WSI_NEU_XX", 1091)
    meta = parse_crema_d_filename("D:\\CREMA-D\\AudioWAV\\1001_TSI_HAP_HI.wav")
    assert (meta["file"], meta["clip_id"], meta["actor"]) == ("1001_TSI_HAP_HI.wav", "1001_TSI_HAP_HI", 1001)
    assert parse_crema_d_filename("a/b/1050_TSI_FEA_LO.mp4")["clip_id"] == "1050_TSI_FEA_LO"
    for bad in ("1000_DFA_ANG_XX", "1092_DFA_ANG_XX", "1001_DFA_ANG_QQ", "1001_DFA_ANG_XX.flv.bak"):
        with pytest.raises(UnknownFileNameError):
            parse_crema_d_filename(bad)
    assert CREMA_D_ACTORS == tuple(range(1001, 1092)) and len(CREMA_D_ACTORS) == 91


def test_crema_d_demographics_keep_only_known_genders():
    text = (
        "ActorID,Age,Sex,Race,Ethnicity\n"
        "1001,51, MALE ,Caucasian,Not Hispanic\n"
        "1002,21,female,Caucasian,Not Hispanic\n"
        "1003,30,Other,x,y\n"  # neither: left out (unknown)
        ",30,Male,x,y\n"  # no actor id
        "1004,30,,x,y\n"
    )
    genders = read_crema_d_demographics(text)
    assert genders == {1001: "male", 1002: "female"}
    assert parse_crema_d_filename("1003_DFA_ANG_XX", genders)["gender"] == "unknown"
    assert parse_crema_d_filename("1002_DFA_ANG_XX", genders)["gender"] == "female"
    assert read_crema_d_demographics("ActorID,Age,Sex\n") == {}


def test_parse_iemocap_actor_gender_and_dialog_of_every_speaker():
    from mmder_hf.data.corpora import IEMOCAP_SESSIONS

    assert IEMOCAP_SESSIONS == (1, 2, 3, 4, 5)
    for session in range(1, 6):
        for lead in "FM":
            for speaker, actor in (("M", 2 * session - 1), ("F", 2 * session)):
                utt = f"Ses0{session}{lead}_impro05a_{speaker}012"
                assert parse_iemocap_utterance_id(utt) == {
                    "utterance_id": utt,
                    "dialog": f"Ses0{session}{lead}_impro05a",
                    "session": session,
                    "improvised": True,
                    "gender": {"F": "female", "M": "male"}[speaker],
                    "speaker": f"Ses0{session}{speaker}",
                    "actor": actor,
                    "turn": 12,
                }
    assert parse_iemocap_utterance_id("Ses05F_script03_2_M042")["dialog"] == "Ses05F_script03_2"
    for bad in ("Ses00F_impro01_F000", "Ses01X_impro01_F000", "Ses01F_impro01_F00", "Ses01F_rehearsal01_F000"):
        with pytest.raises(UnknownFileNameError):
            parse_iemocap_utterance_id(bad)


def test_parse_iemocap_evaluation_reads_every_summary_line():
    text = (
        "% [START_TIME - END_TIME] TURN_NAME EMOTION [V, A, D]\n\n"
        "[6.2901 - 8.2357]\tSes01F_impro01_F000\tneu\t[2.5000, 2.5000, 2.5000]\n"
        "C-E2:\tNeutral;\t()\n"
        "A-E3:\tval 3; act 2; dom  2;\t()\n\n"
        "[10 - 12.5]\tSes01F_impro01_M001\txxx\t[3.0000, 2.0000, 2.5000]\n"
    )
    assert parse_iemocap_evaluation(text) == [
        {"utterance_id": "Ses01F_impro01_F000", "start": 6.2901, "end": 8.2357, "label_code": "neu"},
        {"utterance_id": "Ses01F_impro01_M001", "start": 10.0, "end": 12.5, "label_code": "xxx"},
    ]
    assert parse_iemocap_evaluation("no summary here\n") == []


def test_label_sets_name_their_corpus_classes_and_mapping():
    from mmder_hf.data.corpora import DEFAULT_LABEL_SETS, LABEL_SETS

    eight = ("neutral", "calm", "happy", "sad", "angry", "fearful", "disgust", "surprised")
    expected = {
        ("ravdess", "8class"): eight,
        ("ravdess", "7class"): ("neutral", "happy", "sad", "angry", "fearful", "disgust", "surprised"),
        ("crema_d", "6class"): ("neutral", "happy", "sad", "angry", "fearful", "disgust"),
        ("iemocap", "4class"): ("neutral", "happy", "angry", "sad"),
    }
    for (corpus, name), names in expected.items():
        for spelling in (name, name[0], int(name[0])):
            label_set = get_label_set(corpus.upper(), spelling)
            assert (label_set.corpus, label_set.name, label_set.names) == (corpus, name, names)
        assert LABEL_SETS[corpus][name] is get_label_set(corpus, name)
    assert DEFAULT_LABEL_SETS == {"ravdess": "8class", "crema_d": "6class", "iemocap": "4class"}
    assert get_label_set("ravdess").name == "8class" and get_label_set("crema").name == "6class"
    assert all(get_label_set("ravdess", "8").map(e) == e for e in eight)
    assert {e: get_label_set("ravdess", "7").map(e) for e in eight} == {**{e: e for e in eight}, "calm": "neutral"}
    six = get_label_set("cremad")
    assert {code: six.map(e) for code, e in CREMA_D_CODES["emotion"].items()} == CREMA_D_CODES["emotion"]
    four = get_label_set("iemocap")
    raw = ["neutral", "happy", "excited", "angry", "sad", "frustrated", "fearful", "surprised", "other", "undecided"]
    assert [four.map(e) for e in raw] == ["neutral", "happy", "happy", "angry", "sad", None, None, None, None, None]
    with pytest.raises(ValueError, match="Unknown label set '8class' for crema_d"):
        get_label_set("crema_d", "8class")


def test_corpus_names_and_registry_records_are_fixed():
    import dataclasses

    from mmder_hf.data.corpora import normalize_corpus_name

    assert [normalize_corpus_name(n) for n in ("RAVDESS", " crema-d ", "CremaD", "crema", "IEMOCAP")] == [
        "ravdess",
        "crema_d",
        "crema_d",
        "crema_d",
        "iemocap",
    ]
    with pytest.raises(ValueError, match="Unknown corpus 'synthetic'"):
        normalize_corpus_name("synthetic")
    assert get_corpus_info("IEMOCAP").name == "iemocap" and get_corpus_info("ravdess").name == "ravdess"
    redistributable = {name: info.redistributable for name, info in CORPUS_INFO.items()}
    assert redistributable == {"ravdess": True, "crema_d": True, "iemocap": False, "synthetic": True}
    info = CORPUS_INFO["ravdess"]
    for record, attribute in ((info, "license"), (info.published, "backbone"), (info.label_sets[0], "names")):
        with pytest.raises(dataclasses.FrozenInstanceError):
            setattr(record, attribute, None)


def test_crema_d_fold_ranges_and_the_papers_published_numbers():
    from mmder_hf.data.corpora import CREMA_D_FOLD_RANGES

    assert CREMA_D_FOLD_RANGES == ((1001, 1018), (1019, 1036), (1037, 1054), (1055, 1072), (1073, 1091))
    # MultiMAE-DER paper, tables of results (UAR, WAR) in percent
    paper = {
        "ravdess": {
            "FSLF": (83.23, 83.61),
            "FFLS": (82.27, 83.56),
            "CFAS": (80.65, 81.39),
            "OFOS": (77.78, 78.61),
            "SFAS": (75.79, 76.94),
            "RFAS": (75.97, 75.44),
            "video": (None, 74.13),
            "audio": (None, 80.55),
        },
        "crema_d": {
            "FSLF": (79.12, 79.36),
            "FFLS": (78.59, 78.83),
            "CFAS": (78.24, 78.16),
            "OFOS": (76.88, 76.54),
            "SFAS": (75.73, 75.48),
            "RFAS": (74.62, 74.90),
            "video": (None, 77.83),
            "audio": (None, 78.45),
        },
        "iemocap": {
            "FSLF": (63.21, 63.73),
            "FFLS": (62.92, 63.43),
            "CFAS": (61.98, 62.25),
            "OFOS": (61.87, 61.12),
            "SFAS": (60.39, 60.17),
            "RFAS": (58.62, 59.98),
            "video": (None, 56.13),
            "audio": (None, 58.69),
        },
    }
    for corpus, results in paper.items():
        assert CORPUS_INFO[corpus].published.results == results, corpus
    assert [CORPUS_INFO[c].published.label_set for c in paper] == ["7class", "6class", "4class"]
    assert CORPUS_INFO["synthetic"].published is None


def test_label_sets():
    assert len(get_label_set("ravdess").names) == 8
    seven = get_label_set("ravdess", "7class")
    assert len(seven.names) == 7 and "calm" not in seven.names and seven.map("calm") == "neutral"
    assert get_label_set("CREMA-D").names == ("neutral", "happy", "sad", "angry", "fearful", "disgust")
    four = get_label_set("iemocap")
    assert four.names == ("neutral", "happy", "angry", "sad")
    assert four.map("excited") == "happy" and four.map("frustrated") is None
    with pytest.raises(ValueError):
        get_label_set("ravdess", "5class")


def _check_partition(folds, actors):
    tested = []
    for fold in folds:
        parts = [set(fold.train), set(fold.validation), set(fold.test)]
        assert not (parts[0] & parts[1] or parts[0] & parts[2] or parts[1] & parts[2])
        assert parts[0] | parts[1] | parts[2] == set(actors)
        assert fold.validation and fold.train
        tested += fold.test
    assert sorted(tested) == sorted(actors)  # every actor tested exactly once


def test_ravdess_folds():
    folds = ravdess_folds()
    assert len(folds) == 6
    _check_partition(folds, range(1, 25))
    for k, fold in enumerate(folds, 1):
        assert fold.test == tuple(range(4 * k - 3, 4 * k + 1))
        assert len(fold.validation) == 2 and {a % 2 for a in fold.validation} == {0, 1}  # one male, one female
        assert len(fold.train) == 18
    assert folds[5].validation == (1, 2)
    small = ravdess_folds(range(1, 9))
    assert len(small) == 2
    _check_partition(small, range(1, 9))
    with pytest.raises(ValueError):
        ravdess_folds(range(1, 5))


def test_crema_d_and_iemocap_folds():
    folds = crema_d_folds()
    assert len(folds) == 5
    _check_partition(folds, range(1001, 1092))
    assert folds[0].test == tuple(range(1001, 1019)) and folds[4].test == tuple(range(1073, 1092))
    assert folds[0].validation == (1019, 1020, 1021, 1022)
    folds = iemocap_folds()
    _check_partition(folds, range(1, 11))
    assert folds[2].test == (5, 6) and folds[2].validation == (7, 8)
    assert get_fold("iemocap", 5).validation == (1, 2)
    with pytest.raises(ValueError):
        get_fold("ravdess", 7)


FOLDS_DIR = Path(__file__).resolve().parents[1] / "src" / "mmder_hf" / "data" / "folds"  # the committed tables
FOLD_CORPORA = {"ravdess": range(1, 25), "crema_d": range(1001, 1092), "iemocap": range(1, 11)}


def _committed_json(corpus):
    return json.loads((FOLDS_DIR / f"{corpus}_folds.json").read_text())


def _committed_csv(corpus):
    """``{(fold, split): sorted actors}`` and the rows, read from the committed CSV file."""
    with open(FOLDS_DIR / f"{corpus}_folds.csv", newline="") as f:
        rows = list(csv.DictReader(f))
    table = {}
    for row in rows:
        table.setdefault((int(row["fold"]), row["split"]), []).append(int(row["actor"]))
    return {key: sorted(actors) for key, actors in table.items()}, rows


@pytest.mark.parametrize("corpus", list(FOLD_CORPORA))
def test_exported_folds_match_code(corpus):
    """The code's folds equal the committed JSON and CSV tables, read as files (never regenerated first)."""
    from mmder_hf.data.folds import get_folds

    folds = get_folds(corpus)
    committed = _committed_json(corpus)
    assert committed["corpus"] == corpus and committed["rule"] == folds[0].rule
    assert [f["fold"] for f in committed["folds"]] == [f.fold for f in folds] == list(range(1, len(folds) + 1))
    table, rows = _committed_csv(corpus)
    for standard, fold in zip(committed["folds"], folds):
        assert fold.corpus == standard["corpus"] == corpus and fold.rule == standard["rule"]
        for split in ("train", "validation", "test"):
            assert list(getattr(fold, split)) == standard[split], (corpus, fold.fold, split)
            assert sorted(getattr(fold, split)) == table[(fold.fold, split)], (corpus, fold.fold, split)
    assert len(rows) == len(folds) * len(FOLD_CORPORA[corpus])  # every actor once per fold
    assert {r["corpus"] for r in rows} == {corpus}
    if corpus == "iemocap":  # session column: actors 2s-1 and 2s are session s
        assert all(int(r["session"]) == (int(r["actor"]) + 1) // 2 for r in rows)
    else:
        assert "session" not in rows[0]


@pytest.mark.parametrize("corpus", list(FOLD_CORPORA))
def test_every_actor_is_tested_in_exactly_one_committed_fold(corpus):
    table, _ = _committed_csv(corpus)
    folds = sorted({fold for fold, _ in table})
    tested = [a for fold in folds for a in table[(fold, "test")]]
    assert sorted(tested) == list(FOLD_CORPORA[corpus])
    for fold in folds:
        splits = [set(table[(fold, s)]) for s in ("train", "validation", "test")]
        assert sum(len(s) for s in splits) == len(set().union(*splits)) == len(FOLD_CORPORA[corpus])


def test_export_writes_exactly_the_committed_files(tmp_path):
    from mmder_hf.data.folds import main

    out = tmp_path / "new" / "folds"  # a folder that does not exist yet
    written = export_folds(str(out))
    names = [f"{c}_folds.{ext}" for c in ("ravdess", "crema_d", "iemocap") for ext in ("json", "csv")]
    assert written == [str(out / name) for name in names]
    for name in names:
        assert (out / name).read_bytes() == (FOLDS_DIR / name).read_bytes(), name
    assert export_folds(str(tmp_path / "one"), ["iemocap"]) == [
        str(tmp_path / "one" / "iemocap_folds.json"),
        str(tmp_path / "one" / "iemocap_folds.csv"),
    ]
    main(["--output_dir", str(tmp_path / "cli")])
    assert sorted(p.name for p in (tmp_path / "cli").iterdir()) == sorted(names)
    assert (tmp_path / "cli" / "crema_d_folds.csv").read_bytes() == (FOLDS_DIR / "crema_d_folds.csv").read_bytes()


def test_standard_folds_follow_the_stated_protocol():
    """Expected folds computed here from the protocol sentence, for each corpus."""
    from mmder_hf.data.folds import get_folds

    for k, fold in enumerate(get_folds("ravdess"), 1):
        test = list(range(4 * k - 3, 4 * k + 1))
        validation = [4 * (k % 6) + 1, 4 * (k % 6) + 2]
        assert (fold.fold, list(fold.test), list(fold.validation)) == (k, test, validation)
        assert list(fold.train) == [a for a in range(1, 25) if a not in test + validation]
    ranges = [(1001, 1018), (1019, 1036), (1037, 1054), (1055, 1072), (1073, 1091)]
    folds = get_folds("CREMA-D")
    assert len(folds) == 5
    for k, (fold, (lo, hi)) in enumerate(zip(folds, ranges)):
        nxt = ranges[(k + 1) % 5][0]
        test, validation = list(range(lo, hi + 1)), list(range(nxt, nxt + 4))
        assert (fold.corpus, fold.fold, list(fold.test), list(fold.validation)) == ("crema_d", k + 1, test, validation)
        assert list(fold.train) == [a for a in range(1001, 1092) if a not in test + validation]
    folds = get_folds("iemocap")
    assert len(folds) == 5
    for k, fold in enumerate(folds, 1):
        v = k % 5 + 1
        assert (fold.corpus, fold.fold, fold.test, fold.validation) == (
            "iemocap",
            k,
            (2 * k - 1, 2 * k),
            (2 * v - 1, 2 * v),
        )
        assert fold.train == tuple(a for a in range(1, 11) if (a + 1) // 2 not in (k, v))


def test_fold_split_lookup():
    fold = get_fold("ravdess", 2)
    assert [fold.split_of(a) for a in (5, 8, 9, 10, 11, 1, 24)] == [
        "test", "test", "validation", "validation", "train", "train", "train"
    ]  # fmt: skip
    assert fold.split_of(25) is None and fold.split_of(0) is None
    assert fold.actors("val") == fold.actors("validation") == (9, 10)
    assert fold.actors("test") == (5, 6, 7, 8) and fold.actors("train") == fold.train


def test_folds_over_other_actor_sets():
    # a synthetic corpus larger than RAVDESS: blocks continue past 24
    folds = ravdess_folds(range(1, 29))
    assert [f.test for f in folds][-1] == (25, 26, 27, 28) and folds[-1].validation == (1, 2)
    assert folds[5].validation == (25, 26) and len(folds) == 7
    _check_partition(folds, range(1, 29))
    # a gap before the last actor: the last block still exists, and every actor is tested once
    folds = ravdess_folds([*range(1, 25), 29])
    assert [f.fold for f in folds] == [1, 2, 3, 4, 5, 6, 8] and folds[-1].test == (29,)
    assert folds[5].validation == (29,) and folds[-1].validation == (1, 2)
    _check_partition(folds, [*range(1, 25), 29])
    # exactly 5 actors is enough: fold 2 tests actor 5 and validates on 1, 2
    small = ravdess_folds([5, 4, 3, 2, 1, 1])
    assert [(f.fold, f.test, f.validation, f.train) for f in small] == [
        (1, (1, 2, 3, 4), (5,), ()),
        (2, (5,), (1, 2), (3, 4)),
    ]
    with pytest.raises(ValueError, match="at least 5 actors"):
        ravdess_folds([1, 2, 3, 4])
    # CREMA-D restricted to some actors: each range shrinks, validation = first 4 present of the next range
    present = [1001, 1002, 1019, 1020, 1037, 1038, 1055, 1056, 1073, 1076]
    folds = crema_d_folds(present)
    assert [(f.test, f.validation) for f in folds] == [
        ((1001, 1002), (1019, 1020)),
        ((1019, 1020), (1037, 1038)),
        ((1037, 1038), (1055, 1056)),
        ((1055, 1056), (1073, 1076)),
        ((1073, 1076), (1001, 1002)),
    ]
    assert folds[0].train == (1037, 1038, 1055, 1056, 1073, 1076)
    # IEMOCAP over three sessions: cyclic within them
    folds = iemocap_folds((3, 1, 2))
    assert [(f.fold, f.test, f.validation, f.train) for f in folds] == [
        (1, (1, 2), (3, 4), (5, 6)),
        (2, (3, 4), (5, 6), (1, 2)),
        (3, (5, 6), (1, 2), (3, 4)),
    ]


def test_get_fold_errors_name_the_folds():
    from mmder_hf.data.folds import get_folds

    assert get_fold("CREMA-D", "2").test == tuple(range(1019, 1037))
    assert get_fold("iemocap", 1, actors=[1, 2, 3]) == get_folds("iemocap")[0]  # IEMOCAP: whole sessions
    with pytest.raises(ValueError, match=r"ravdess has folds \[1, 2, 3, 4, 5, 6\], got fold=0"):
        get_fold("ravdess", 0)
    with pytest.raises(ValueError, match=r"iemocap has folds \[1, 2, 3, 4, 5\], got fold=6"):
        get_fold("iemocap", 6)
    with pytest.raises(ValueError, match=r"crema_d fold 5 has none of its test actors \[1073, 1074"):
        get_fold("crema_d", 5, range(1001, 1073))
    with pytest.raises(ValueError, match=r"crema_d has folds \[1, 2, 3, 4\], got fold=6"):
        get_fold("crema_d", 6, range(1001, 1073))
    with pytest.raises(ValueError, match="Unknown corpus"):
        get_fold("voxceleb", 1)


def test_missing_actors_per_split():
    from mmder_hf.data.folds import missing_actors

    assert missing_actors("ravdess", 1, range(1, 25)) == {}
    assert missing_actors("ravdess", 1, [a for a in range(1, 25) if a not in (2, 6, 20)]) == {
        "train": [20],
        "validation": [6],
        "test": [2],
    }
    assert missing_actors("iemocap", 3, [a for a in range(1, 11) if a != 1]) == {"train": [1]}


def test_fold_tables_in_markdown():
    from mmder_hf.data.folds import _ranges, fold_table_markdown

    lines = fold_table_markdown("ravdess").splitlines()
    assert lines[:3] == [
        "| fold | test actors | validation actors | train actors |",
        "|---|---|---|---|",
        "| 1 | 1-4 | 5-6 | 7-24 |",
    ]
    assert lines[-1] == "| 6 | 21-24 | 1-2 | 3-20 |" and len(lines) == 8
    assert fold_table_markdown("iemocap").splitlines()[3] == "| 2 | 3-4 | 5-6 | 1-2, 7-10 |"
    assert _ranges([12, 9, 10, 11, 7, 1, 2, 3, 4]) == "1-4, 7, 9-12"
    assert _ranges([5]) == "5" and _ranges([]) == ""


SRC = Path(__file__).resolve().parent.parent / "src" / "mmder_hf"


def test_registry_covers_every_corpus_and_alias():
    assert set(CORPUS_INFO) == {*CORPORA, "synthetic"}
    assert get_corpus_info("CREMA-D") is CORPUS_INFO["crema_d"]
    assert get_corpus_info(" Synthetic ") is CORPUS_INFO["synthetic"]
    with pytest.raises(ValueError):
        get_corpus_info("voxceleb")
    keys = {name: info.citation_key for name, info in CORPUS_INFO.items()}
    assert keys == {
        "ravdess": "livingstone2018ravdess",
        "crema_d": "cao2014cremad",
        "iemocap": "busso2008iemocap",
        "synthetic": None,
    }
    for corpus in CORPORA:
        info = CORPUS_INFO[corpus]
        assert "doi     = {10." in info.citation and info.homepage.startswith("https://")
        assert info.label_sets[0].corpus == corpus and get_label_set(corpus).name == info.default_label_set
    assert CORPUS_INFO["synthetic"].license == "apache-2.0" and not CORPUS_INFO["iemocap"].redistributable


@pytest.mark.parametrize("corpus", list(CORPUS_INFO))
def test_cards_and_builders_state_the_registry_facts(corpus, tmp_path):
    """One place: a model card, a published dataset card and a builder's DatasetInfo all show the registry's facts."""
    from mmder_hf.cards import render_model_card
    from mmder_hf.data.builders import BUILDERS
    from mmder_hf.data.publish import render_dataset_card

    info = CORPUS_INFO[corpus]
    names = list(info.label_sets[0].names)
    card = render_model_card(corpus, "me/m", {1: {"test_war": 0.5, "test_uar": 0.5}}, label_names=names)
    assert card.data.license == info.license  # random initialisation: the data's licence
    assert info.citation in card.text and info.license_name in card.text and info.protocol in card.text
    assert set(info.tags) <= set(card.data.tags) and card.data.eval_results[0].dataset_name == info.pretty_name
    if corpus == "synthetic":
        return  # generated data: no builder of its own (RAVDESS's reads it) and never published as such
    card = render_dataset_card(corpus, "me/x", names, {1: 2, 2: 3})
    assert card.data.license == info.license and card.data.pretty_name == info.dataset_pretty_name
    assert set(info.tags) <= set(card.data.tags)
    for fact in (info.citation, info.homepage, info.protocol, info.redistribution):
        assert fact in card.text
    assert ("NO redistribution" in card.text) is (not info.redistributable)
    builder = BUILDERS[corpus](cache_dir=str(tmp_path))
    got = (builder.info.description, builder.info.citation, builder.info.homepage, builder.info.license)
    assert got == (info.description, info.citation, info.homepage, info.license)
    assert builder.info.features["emotion"].names == names


def test_corpus_facts_are_written_nowhere_else():
    """Citation keys, DOIs, homepages and licence names live in data/corpora.py only (code and templates)."""
    facts = {}
    for info in CORPUS_INFO.values():
        doi = info.citation.split("doi     = {")[1].split("}")[0] if "doi" in info.citation else None
        for fact in (info.citation_key, doi, info.homepage, info.license_name, info.license_link):
            if fact:
                facts[fact] = info.name
    registry = SRC / "data" / "corpora.py"
    for path in sorted([*SRC.rglob("*.py"), *SRC.rglob("*.md")]):
        if path == registry:
            continue
        text = path.read_text(encoding="utf-8")
        found = [fact for fact in facts if fact in text]
        assert not found, f"{path.relative_to(SRC)} repeats {found}: read them from CORPUS_INFO"


def _imported_modules(path: Path, package: str):
    """Absolute names of every module ``path`` imports, at any depth (relative imports resolved)."""
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            yield from (alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            parts = package.split(".")
            base = ".".join(parts[: len(parts) - node.level + 1]) if node.level else ""
            module = ".".join(x for x in (base, node.module) if x)
            yield module
            yield from (f"{module}.{alias.name}" for alias in node.names)


def test_data_package_never_imports_cards():
    """cards may import data (the registry), never the reverse: data must work without the card code."""
    paths = sorted((SRC / "data").glob("*.py"))
    assert any(p.name == "publish.py" for p in paths)
    for path in paths:
        modules = _imported_modules(path, "mmder_hf.data")
        bad = [m for m in modules if m == "mmder_hf.cards" or m.startswith("mmder_hf.cards.")]
        assert not bad, f"data/{path.name} imports {bad}"


def test_a_corpus_too_small_for_its_folds_is_refused_clearly(tmp_path):
    from mmder_hf import load_emotion_dataset, make_synthetic_corpus
    from mmder_hf.data import get_fold

    small = dict(clips_per_actor=2, duration=0.5, fps=8, width=32, height=18, video_only_per_actor=0)
    corpus = make_synthetic_corpus(str(tmp_path / "five"), num_actors=5, num_workers=0, **small)
    with pytest.raises(ValueError, match=r"ravdess fold 1 leaves no actor for train \(test \[1, 2, 3, 4\]"):
        load_emotion_dataset("ravdess", source=corpus, fold=1, cache_dir=str(tmp_path / "hf"))
    two = load_emotion_dataset("ravdess", source=corpus, fold=2, cache_dir=str(tmp_path / "hf"))
    assert sorted(set(two["train"]["actor"])) == [3, 4]
    with pytest.raises(ValueError, match="crema_d fold 1 leaves no actor for train and validation"):
        get_fold("crema_d", 1, [1001, 1002])
    assert get_fold("ravdess", 1, range(1, 8)).train == (7,)


def test_missing_sources_say_what_is_missing(tmp_path):
    from mmder_hf import load_emotion_dataset

    with pytest.raises(FileNotFoundError, match="IEMOCAP release folder not found: '.*nowhere'"):
        load_emotion_dataset("iemocap", source=str(tmp_path / "nowhere"), cache_dir=str(tmp_path / "hf"))
    (tmp_path / "empty").mkdir()
    with pytest.raises(FileNotFoundError, match=r"No RAVDESS Video_Speech_Actor_NN\.zip archives or Actor_NN") as err:
        load_emotion_dataset("ravdess", source=str(tmp_path / "empty"), cache_dir=str(tmp_path / "hf"))
    assert "{" not in str(err.value)


def test_a_missing_actor_shrinks_its_own_fold_and_no_other():
    from mmder_hf.data.folds import get_fold, missing_actors

    folds_dir = Path(__file__).resolve().parents[1] / "src" / "mmder_hf" / "data" / "folds"
    table = json.loads((folds_dir / "ravdess_folds.json").read_text())["folds"]  # the exported standard table
    present = [a for a in range(1, 25) if a != 3]
    for standard in table:
        fold = get_fold("ravdess", standard["fold"], present)
        for split in ("train", "validation", "test"):
            assert list(getattr(fold, split)) == [a for a in standard[split] if a != 3], (standard["fold"], split)
    assert missing_actors("ravdess", 1, present) == {"test": [3]}
    assert missing_actors("ravdess", 2, present) == {"train": [3]}
    # a whole block missing: that fold is gone, the others keep their numbers and test actors
    without_block = [a for a in range(1, 25) if a not in (5, 6, 7, 8)]
    assert get_fold("ravdess", 3, without_block).test == (9, 10, 11, 12)
    with pytest.raises(ValueError, match=r"ravdess fold 2 has none of its test actors \[5, 6, 7, 8\]"):
        get_fold("ravdess", 2, without_block)
