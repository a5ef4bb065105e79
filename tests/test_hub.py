"""Model cards (templates, licences, model-index, updates) and the push helper, offline."""

import shutil
import types

import pytest
import yaml
from huggingface_hub import HfApi, ModelCard

from mmder_hf import MultiMAEDERConfig
from mmder_hf.cards import (
    BEGIN_MARKER,
    END_MARKER,
    model_license,
    push_folder,
    render_model_card,
    results_table,
    template_path,
    update_model_card,
    write_model_card,
)
from mmder_hf.data.corpora import CORPUS_INFO


LABELS = ["neutral", "happy", "sad", "angry"]


def config(strategy="FSLF"):
    return MultiMAEDERConfig(
        fusion_strategy=strategy,
        image_size=32,
        patch_size=16,
        num_frames=8,
        hidden_size=32,
        num_hidden_layers=2,
        num_attention_heads=2,
        intermediate_size=64,
        id2label=dict(enumerate(LABELS)),
        label2id={n: i for i, n in enumerate(LABELS)},
    )


def metadata(card: ModelCard) -> dict:
    return yaml.safe_load(str(card).split("---")[1])


@pytest.mark.parametrize(
    "corpus, base_model, expected",
    [
        ("ravdess", None, "cc-by-nc-sa-4.0"),
        ("ravdess", "MCG-NJU/videomae-large-finetuned-kinetics", "cc-by-nc-sa-4.0"),
        ("crema_d", None, "odbl"),
        ("crema_d", "MCG-NJU/videomae-base", "cc-by-nc-4.0"),
        ("iemocap", None, "other"),
        ("synthetic", None, "apache-2.0"),
        ("synthetic", "MCG-NJU/videomae-base", "cc-by-nc-4.0"),
    ],
)
def test_licence_respects_data_and_backbone(corpus, base_model, expected):
    meta = model_license(corpus, base_model)
    assert meta["license"] == expected
    if expected == "other":
        assert meta["license_name"] and meta["license_link"]


@pytest.mark.parametrize("corpus", list(CORPUS_INFO))
def test_every_corpus_template_renders_a_complete_card(corpus):
    folds = {1: {"test_war": 0.8, "test_uar": 0.75}, 2: {"test_war": 0.7, "test_uar": 0.65}}
    card = render_model_card(
        corpus,
        "me/multimae-der-x",
        folds,
        config=config(),
        base_model="MCG-NJU/videomae-base",
        dataset_id="me/x-av",
        recipe="paper",
        hyperparameters={"learning rate": 0.01},
    )
    meta = metadata(card)
    assert meta["library_name"] == "transformers" and meta["pipeline_tag"] == "video-classification"
    assert meta["base_model"] == "MCG-NJU/videomae-base" and meta["datasets"] == ["me/x-av"]
    assert "multimae-der" in meta["tags"] and "fusion-fslf" in meta["tags"]
    results = meta["model-index"][0]["results"]
    configs = [r["dataset"]["config"] for r in results]
    assert configs == ["fold1", "fold2", "mean-of-2-folds"]
    values = {(r["dataset"]["config"], m["type"]): m["value"] for r in results for m in r["metrics"]}
    assert values[("mean-of-2-folds", "war")] == pytest.approx(0.75) and values[("fold2", "uar")] == 0.65
    text = card.text
    for needed in (
        "## How to use",
        "from_pretrained",
        "pipeline(",
        "## Training and evaluation protocol",
        "## Limitations",
        "## Bias",
        "## Citation",
        "xiang2024multimaeder",
        "75.00 ± 5.00",
    ):
        assert needed in text, needed
    if corpus != "synthetic":
        assert CORPUS_INFO[corpus].citation.split("{")[1].split(",")[0] in text  # dataset citation key
    assert "{{" not in text and "{%" not in text


def test_single_fold_card_and_local_dataset_paths(tmp_path):
    metrics = {"test_war": 1.0, "test_uar": 1.0, "eval_war": 0.9, "eval_uar": 0.8}
    card = render_model_card(
        "synthetic",
        "demo",
        {1: metrics},
        config=config(),
        dataset_id=str(tmp_path),
        confusion_matrix_file="confusion_matrix.png",
    )
    meta = metadata(card)
    assert meta["license"] == "apache-2.0" and "datasets" not in meta and "base_model" not in meta
    assert "| test (fold 1) | 100.00 | 100.00 |" in card.text and "| validation | 90.00 | 80.00 |" in card.text
    assert "![Confusion matrix" in card.text


def test_templates_dir_override(tmp_path):
    packaged = template_path("ravdess").read_text(encoding="utf-8")
    (tmp_path / "ravdess.md").write_text(packaged.replace("## Limitations", "## Limitations (custom)"))
    card = render_model_card("ravdess", "m", {1: {"test_war": 0.5, "test_uar": 0.4}}, templates_dir=tmp_path)
    assert "## Limitations (custom)" in card.text and "livingstone2018ravdess" in card.text
    assert "(custom)" not in render_model_card("ravdess", "m", {1: {"test_war": 0.5, "test_uar": 0.4}}).text
    with pytest.raises(FileNotFoundError):
        template_path("crema_d", tmp_path)


def test_update_keeps_user_text_and_tags(tmp_path):
    path = tmp_path / "README.md"
    path.write_text("---\nlicense: mit\ntags:\n- mine\n---\n# My notes\n\nKeep this.\n")
    first = render_model_card("ravdess", "m", {1: {"test_war": 0.5, "test_uar": 0.4}}, config=config())
    update_model_card(path, first)
    text = path.read_text()
    assert "Keep this." in text and BEGIN_MARKER in text and "- mine" in text and "cc-by-nc-sa-4.0" in text
    second = render_model_card("ravdess", "m", {1: {"test_war": 0.9, "test_uar": 0.8}}, config=config())
    update_model_card(path, second)
    text = path.read_text()
    assert text.count(BEGIN_MARKER) == 1 and text.count(END_MARKER) == 1
    assert "90.00" in text and "50.00" not in text and "Keep this." in text and "- mine" in text


def test_write_model_card_from_saved_metrics(tmp_path):
    config().save_pretrained(tmp_path)
    (tmp_path / "all_results.json").write_text('{"eval_war": 0.5, "eval_uar": 0.5, "test_war": 0.25, "test_uar": 0.3}')
    path = write_model_card(tmp_path, "crema_d", model_id="me/multimae-der-crema-d", fold=3)
    card = ModelCard.load(path)
    assert card.data.eval_results[0].dataset_config == "fold3" and card.data.eval_results[0].metric_value == 0.25
    assert "CREMA-D" in card.text and "ODbL" in card.text


def test_results_table():
    table = results_table({1: {"test_war": 0.5, "test_uar": 0.25}, 2: {"test_war": 1.0, "test_uar": 0.75}})
    assert "| 1 | 50.00 | 25.00 |" in table and "**75.00 ± 25.00**" in table and "**50.00 ± 25.00**" in table


def test_push_folder_uploads_without_checkpoints(tmp_path, monkeypatch):
    (tmp_path / "model").mkdir()
    (tmp_path / "model" / "config.json").write_text("{}")
    calls = {}

    def create_repo(self, repo_id, **kwargs):
        calls["create"] = repo_id
        return types.SimpleNamespace(repo_id=repo_id)

    def upload_folder(self, *, repo_id, folder_path, ignore_patterns=None, **kwargs):
        calls["upload"] = (repo_id, ignore_patterns)
        shutil.copytree(folder_path, tmp_path / "uploaded")

    monkeypatch.setattr(HfApi, "create_repo", create_repo)
    monkeypatch.setattr(HfApi, "upload_folder", upload_folder)
    push_folder(tmp_path / "model", "me/x")
    assert calls["create"] == "me/x" and "checkpoint-*" in calls["upload"][1]
    assert (tmp_path / "uploaded" / "config.json").is_file()
