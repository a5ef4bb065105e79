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


def test_exported_folds_match_code(tmp_path):
    export_folds(str(tmp_path))
    committed = os.path.join(os.path.dirname(__file__), "..", "src", "mmder_hf", "data", "folds")
    for corpus in ("ravdess", "crema_d", "iemocap"):
        with open(tmp_path / f"{corpus}_folds.json") as f:
            fresh = json.load(f)
        with open(os.path.join(committed, f"{corpus}_folds.json")) as f:
            assert json.load(f) == fresh  # the committed tables are up to date
        with open(tmp_path / f"{corpus}_folds.csv") as f:
            rows = list(csv.DictReader(f))
        fold1 = get_fold(corpus, 1)
        assert sorted(int(r["actor"]) for r in rows if r["fold"] == "1" and r["split"] == "test") == list(fold1.test)


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
