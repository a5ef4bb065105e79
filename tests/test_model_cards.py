"""The committed cards of what the project publishes (``model_cards/``) and the offline checks of card metadata.

``model_cards/<repo>/README.md`` must be exactly what ``model_cards/inputs.json`` renders now, so that a change of a
template or of a corpus fact shows up as a reviewed diff; every card's metadata must pass the checks the Hub would
make, and the checks must catch each kind of bad field.
"""

from __future__ import annotations

import json
import math
import shutil
from pathlib import Path

import pytest
import yaml
from huggingface_hub import ModelCard, ModelCardData

from mmder_hf.cards import render_model_card, render_pretraining_card
from mmder_hf.cards.builder import build_card
from mmder_hf.cards.comparison import render_comparison_card, summarize_grid
from mmder_hf.cards.metadata import CardMetadataError, check_card_metadata, hub_dataset_id, validate_card_metadata
from mmder_hf.cards.publish_cards import differences, main, render_entry
from mmder_hf.models.multimae_der import MultiMAEDERConfig
from mmder_hf.user_errors import UserError


ROOT = Path(__file__).resolve().parents[1]
CARDS = ROOT / "model_cards"
INPUTS = json.loads((CARDS / "inputs.json").read_text())
TINY = dict(image_size=32, patch_size=16, num_frames=4, hidden_size=32, num_hidden_layers=2, num_attention_heads=2)


# ------------------------------------------------------------------------------------------- model_cards/
def test_committed_cards_are_what_their_inputs_render():
    assert differences(CARDS) == [], "run: .venv/bin/python -m mmder_hf.cards.publish_cards (then review the diff)"
    listed = {entry["repo"] for entry in INPUTS["cards"]}
    on_disk = {path.parent.name for path in CARDS.glob("*/README.md")}
    assert on_disk == listed  # no card left behind by an entry that was removed


def test_check_flags_a_card_edited_by_hand_and_writing_restores_it(tmp_path, capsys):
    folder = tmp_path / "model_cards"
    shutil.copytree(CARDS, folder)
    card = folder / "multimae-der-crema-d-fold1" / "README.md"
    card.write_text(card.read_text().replace("91 actors (ages 20-74)", "90 actors"))
    assert main(["--model_cards_dir", str(folder), "--check"]) == 1
    out = capsys.readouterr().out
    assert "\n-- CREMA-D holds 90 actors speaking" in out  # the committed line, then the rendered one
    assert "+- CREMA-D holds 91 actors (ages 20-74)" in out and "1 card(s) differ" in out
    assert main(["--model_cards_dir", str(folder)]) == 0
    assert main(["--model_cards_dir", str(folder), "--check"]) == 0
    assert card.read_text() == (CARDS / "multimae-der-crema-d-fold1" / "README.md").read_text()


@pytest.mark.parametrize("entry", INPUTS["cards"], ids=[e["repo"] for e in INPUTS["cards"]])
def test_each_card_says_no_checkpoint_exists_yet_and_gives_the_documented_command(entry):
    path = CARDS / entry["repo"] / "README.md"
    text = str(render_entry(entry, INPUTS["hub_owner"]))  # what the inputs give now (the committed file is the same)
    assert "on real data yet.**" in text  # "No checkpoint has been trained / pre-trained on real data yet."
    assert f"```bash\n{entry['command']}\n```" in text
    if entry.get("documented_in"):  # copied from the documentation, not made up
        assert entry["command"] in (ROOT / entry["documented_in"]).read_text()
    meta = yaml.safe_load(text.split("---\n")[1])
    assert "model-index" not in meta and "eval_results" not in meta  # no results are invented
    assert check_card_metadata(path, entry["kind"]) == [] and check_card_metadata(text, entry["kind"]) == []
    if entry["kind"] == "classifier":
        assert meta["pipeline_tag"] == "video-classification" and "custom_code" in meta["tags"]
        assert (
            "python -m mmder_hf.endpoint_server model --port 5000" in text
            and "handler.py" in text
            and "requirements.txt" in text
        )
        assert '"parameters": {"timeline":\ntrue, "window": 3.0, "stride": 1.0}' in text
    dataset = entry.get("dataset_source")
    assert meta.get("datasets") == ([dataset] if dataset and not dataset.startswith("/") else None)


def test_a_command_that_contradicts_its_entry_is_refused():
    entry = dict(next(e for e in INPUTS["cards"] if e["repo"] == "multimae-der-crema-d-fold1"))
    with pytest.raises(UserError, match=r"x\.json: fusion_strategy is 'FSLF' but the command gives --fusion_strategy"):
        render_entry({**entry, "fusion_strategy": "FSLF"}, "me", "x.json")
    with pytest.raises(UserError, match=r"fold is 2 but the command gives --fold 1"):
        render_entry({**entry, "fold": 2}, "me", "x.json")  # no --fold: the script's default, fold 1
    with pytest.raises(UserError, match=r"pushes to 'me/multimae-der-ravdess-fold1', not to other/"):
        ravdess = next(e for e in INPUTS["cards"] if e["repo"] == "multimae-der-ravdess-fold1")
        render_entry(ravdess, "other", "x.json")


# ------------------------------------------------------------------------------------------- metadata checks
def _classifier_card() -> str:
    labels = ["neutral", "happy", "sad", "angry"]
    config = MultiMAEDERConfig(id2label=dict(enumerate(labels)), label2id={n: i for i, n in enumerate(labels)}, **TINY)
    folds = {1: {"test_war": 0.5, "test_uar": 0.25}, 2: {"test_war": 0.75, "test_uar": 0.5}}
    card = render_model_card("ravdess", "me/m", folds, config=config, dataset_id="me/ravdess-av")
    return str(card)


def _edit(text: str, change) -> str:
    head, body = text.split("---\n", 2)[1:]
    meta = yaml.safe_load(head)
    change(meta)
    return f"---\n{yaml.safe_dump(meta, sort_keys=False)}---\n{body}"


def _set(key, value):
    return lambda meta: meta.__setitem__(key, value)


def _metric(value):
    return lambda meta: meta["model-index"][0]["results"][0]["metrics"][0].__setitem__("value", value)


BAD_FIELDS = [
    ("no licence", lambda meta: meta.pop("license"), "license: missing"),
    ("unknown licence id", _set("license", "cc-by-nc-sa"), "license: 'cc-by-nc-sa' is no licence id of the Hub"),
    ("other without link", _set("license", "other"), "license_name: None; license: other needs a lower-case id"),
    ("wrong pipeline tag", _set("pipeline_tag", "image-classification"), "pipeline_tag: 'image-classification'"),
    ("no pipeline tag", lambda meta: meta.pop("pipeline_tag"), "pipeline_tag: None, expected 'video-classification'"),
    ("no custom_code tag", lambda meta: meta["tags"].remove("custom_code"), "tags: no 'custom_code' tag"),
    ("NaN metric", _metric(math.nan), "value nan is not a finite number"),
    ("infinite metric", _metric(math.inf), "value inf is not a finite number"),
    ("text metric", _metric("high"), "value 'high' is not a finite number"),
    ("unknown metric type", lambda m: m["model-index"][0]["results"][0]["metrics"][0].update(type="f1"), "f1)"),
    ("local dataset", _set("datasets", ["/data/ravdess"]), "datasets: '/data/ravdess' is not a Hub id"),
    ("dataset without owner", _set("datasets", ["ravdess-av"]), "datasets: 'ravdess-av' is not a Hub id"),
    ("dataset with a space", _set("datasets", ["me/ravdess av"]), "datasets: 'me/ravdess av' is not a Hub id"),
    ("local base model", _set("base_model", "runs/pre..x"), "base_model: 'runs/pre..x' is not a Hub id"),
    ("unparsable model-index", lambda m: m["model-index"][0]["results"][0].pop("task"), "model-index: "),
]


def test_a_rendered_card_passes_every_check():
    assert check_card_metadata(_classifier_card()) == []


@pytest.mark.parametrize("change, expected", [c[1:] for c in BAD_FIELDS], ids=[c[0] for c in BAD_FIELDS])
def test_the_checks_catch_each_bad_field(change, expected):
    problems = check_card_metadata(_edit(_classifier_card(), change))
    assert len(problems) >= 1 and any(expected in problem for problem in problems), problems
    with pytest.raises(CardMetadataError, match="model card metadata \\(classifier\\)"):
        validate_card_metadata(_edit(_classifier_card(), change))


def test_other_licences_need_their_name_and_link():
    iemocap = str(render_model_card("iemocap", "me/m", {}))
    assert check_card_metadata(iemocap) == []  # license: other, with the release agreement's name and link
    problems = check_card_metadata(_edit(iemocap, lambda meta: meta.pop("license_link")))
    assert problems == ["license_link: None; license: other needs a URL or a file of the repo (LICENSE)"]


def test_what_each_kind_of_card_needs():
    card = _edit(_classifier_card(), lambda meta: meta.pop("pipeline_tag"))
    assert check_card_metadata(card, "pretraining") == []  # an autoencoder is no video classifier
    no_code = _edit(card, lambda meta: meta["tags"].remove("custom_code"))
    assert check_card_metadata(no_code, "comparison") == []  # a summary repo ships no code
    assert check_card_metadata(no_code, "pretraining") == ["tags: no 'custom_code' tag (the model loads with "
                                                           "trust_remote_code=True)"]  # fmt: skip


def test_the_builder_checks_before_anything_is_written(tmp_path):
    data = ModelCardData(license="mit", library_name="transformers", pipeline_tag="video-classification", tags=["x"])
    with pytest.raises(CardMetadataError, match="tags: no 'custom_code' tag"):
        build_card("classifier", data, "ravdess", model_id="me/m", num_folds=0, label_names=[])


# ------------------------------------------------------------------------------------------- one dataset-id rule
def test_every_card_applies_the_one_dataset_id_rule(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    (tmp_path / "runs").mkdir()
    config = MultiMAEDERConfig(**TINY)
    summary = summarize_grid({"FSLF": {1: {"test_war": 0.5, "test_uar": 0.5}}}, "ravdess", None)
    render = {
        "classifier": lambda d: render_model_card("ravdess", "me/m", {}, config=config, dataset_id=d),
        "pretraining": lambda d: render_pretraining_card(config, "me/p", "videos", 10, 2, "m", "t", dataset_id=d),
        "comparison": lambda d: render_comparison_card(summary, "me/g", dataset_id=d),
    }
    # a path into an existing folder that does not exist is a typo, not a Hub dataset; a folder, a URL neither
    for source, expected in [("me/ravdess-av", ["me/ravdess-av"]), ("runs/nope", None), (str(tmp_path), None),
                             ("https://example.com/x", None), ("runs", None)]:  # fmt: skip
        assert hub_dataset_id(source) == (expected[0] if expected else None), source
        for kind, make in render.items():
            assert make(source).data.to_dict().get("datasets") == expected, (kind, source)
