"""Model cards, the strategy-comparison card and widget examples: every number they print and every metadata field,
against values computed by hand from the metrics given."""

from __future__ import annotations

import json
import struct

import numpy as np
import pytest
from huggingface_hub import ModelCard

from mmder_hf.cards import cards
from mmder_hf.cards.cards import (
    BEGIN_MARKER,
    END_MARKER,
    PUSH_IGNORE_PATTERNS,
    describe_preprocessing,
    describe_splits,
    eval_results,
    load_results,
    model_license,
    paper_reference,
    push_folder,
    render_model_card,
    results_table,
    update_model_card,
    write_model_card,
    write_pretraining_card,
)
from mmder_hf.cards.comparison import comparison_table, render_comparison_card, save_grid_chart, summarize_grid
from mmder_hf.models.multimae_der import MultiMAEDERConfig
from mmder_hf.training import MODEL_SIZES


LABELS = ["neutral", "calm", "happy", "sad", "angry", "fearful", "disgust"]
# Three folds; the hand-computed figures below come from these numbers only.
FOLDS = {
    1: {"test_war": 0.70, "test_uar": 0.65},
    2: {"test_war": 0.80, "test_uar": 0.60},
    3: {"test_war": 0.75, "test_uar": 0.72},
}
# WAR: mean 75, deviations -5, 5, 0 -> population variance 50/3, std 4.0825
# UAR: mean 197/3 = 65.6667, deviations -0.6667, -5.6667, 6.3333 -> variance 72.6667/3 = 24.2222, std 4.9216
MEAN_ROW = "| **mean ± std** | **75.00 ± 4.08** | **65.67 ± 4.92** |"


def tiny_config(strategy="FSLF"):
    return MultiMAEDERConfig(
        fusion_strategy=strategy,
        num_labels=len(LABELS),
        id2label=dict(enumerate(LABELS)),
        label2id={label: i for i, label in enumerate(LABELS)},
        **MODEL_SIZES["tiny"],
    )


# ------------------------------------------------------------------------------------------- results
def test_results_table_per_fold_and_mean_std():
    assert results_table(FOLDS).splitlines() == [
        "| fold | WAR (%) | UAR (%) |",
        "|---|---|---|",
        "| 1 | 70.00 | 65.00 |",
        "| 2 | 80.00 | 60.00 |",
        "| 3 | 75.00 | 72.00 |",
        MEAN_ROW,
    ]


def test_results_table_skips_unfinished_folds_and_needs_two_for_a_mean():
    table = results_table({2: FOLDS[2], 1: {"test_war": 0.7}, 3: {"test_war": float("nan"), "test_uar": 0.5}})
    assert table.splitlines()[2:] == ["| 1 | - | - |", "| 2 | 80.00 | 60.00 |", "| 3 | - | - |"]
    eval_prefix = results_table({1: {"eval_war": 0.5, "eval_uar": 0.25}}, prefix="eval")
    assert eval_prefix.splitlines()[2:] == ["| 1 | 50.00 | 25.00 |"]


def test_model_index_has_each_fold_and_the_means():
    results = eval_results(FOLDS, "org/ravdess", "RAVDESS")
    got = [(r.metric_type, r.dataset_config, r.metric_name, r.metric_value) for r in results]
    assert got == [
        ("war", "fold1", "WAR (fold 1)", 0.7),
        ("uar", "fold1", "UAR (fold 1)", 0.65),
        ("war", "fold2", "WAR (fold 2)", 0.8),
        ("uar", "fold2", "UAR (fold 2)", 0.6),
        ("war", "fold3", "WAR (fold 3)", 0.75),
        ("uar", "fold3", "UAR (fold 3)", 0.72),
        ("war", "mean-of-3-folds", "WAR (mean of 3 folds)", 0.75),
        ("uar", "mean-of-3-folds", "UAR (mean of 3 folds)", 0.6567),  # 197/3 %, rounded to 4 places
    ]
    assert {(r.task_type, r.dataset_type, r.dataset_name, r.dataset_split) for r in results} == {
        ("video-classification", "org/ravdess", "RAVDESS", "test")
    }
    assert len(eval_results({1: FOLDS[1]}, "ravdess", "RAVDESS")) == 2  # one fold: no mean entries


def test_cross_validation_card_numbers_and_metadata():
    card = render_model_card(
        "ravdess",
        "me/multimae-der-ravdess",
        FOLDS,
        config=tiny_config(),
        base_model="MCG-NJU/videomae-base",
        dataset_id="me/ravdess-av",
        label_set="7class",
        extra_tags=["ravdess", "my-tag"],
    )
    assert MEAN_ROW in card.text and "| 3 | 75.00 | 72.00 |" in card.text
    data = card.data.to_dict()
    assert data["license"] == "cc-by-nc-sa-4.0"
    assert data["library_name"] == "transformers" and data["pipeline_tag"] == "video-classification"
    assert data["tags"] == [
        "multimae-der",
        "videomae",
        "emotion-recognition",
        "audio-visual",
        "video-classification",
        "mmder-hf",
        "ravdess",
        "fusion-fslf",
        "my-tag",
        "custom_code",  # the Hub's "Use this model" snippet then passes trust_remote_code=True
    ]
    assert data["datasets"] == ["me/ravdess-av"] and data["base_model"] == "MCG-NJU/videomae-base"
    assert card.data.model_name == "multimae-der-ravdess" and data["metrics"] == ["war", "uar"]
    index = ModelCard(str(card)).data.eval_results  # the YAML a reader of the card gets
    means = {(r.metric_type, r.metric_value) for r in index if r.dataset_config == "mean-of-3-folds"}
    assert means == {("war", 0.75), ("uar", 0.6567)}
    assert {r.dataset_type for r in index} == {"me/ravdess-av"}
    assert "- **Classes**: " + ", ".join(LABELS) in card.text  # from the config's id2label, in index order
    assert "2 face\nframe(s) and 2 audio image(s) per 4-frame clip of 32 x 32 pixels" in card.text
    assert "83.61 WAR / 83.23 UAR (FSLF, 7class)" in card.text  # the paper's FSLF figures on RAVDESS


def test_single_fold_card_shows_the_test_and_validation_rows(tmp_path):
    results = {1: {"test_war": 0.5, "test_uar": 0.25, "eval_war": 0.625, "eval_uar": 0.375}}
    card = render_model_card("ravdess", "me/m", results, config=tiny_config(), dataset_id=str(tmp_path))
    assert "| validation | 62.50 | 37.50 |" in card.text
    assert "| test (fold 1) | 50.00 | 25.00 |" in card.text
    assert "mean ± std" not in card.text
    data = card.data.to_dict()
    assert "datasets" not in data or data["datasets"] is None  # a local folder is no dataset id
    assert {r.dataset_type for r in card.data.eval_results} == {"ravdess"}


def test_a_synthetic_corpus_card_says_near_the_top_that_it_knows_synthetic_clips_only():
    card = render_model_card("synthetic", "me/demo", {1: {"test_war": 0.9, "test_uar": 0.8}}, config=tiny_config())
    title, notice = card.text.split(BEGIN_MARKER)[1].strip().split("\n\n")[:2]
    assert title.startswith("# demo: MultiMAE-DER (FSLF)")
    assert " ".join(notice.replace(">", "").split()) == (
        "**Synthetic clips only.** This model was trained on the built-in synthetic corpus of mmder-hf (colour and "
        "pitch cues drawn by a program, not recordings of people): it recognises synthetic clips only, not real "
        'faces and voices. Its `config.json` says so (`"training_data": "synthetic"`).'
    )
    real = render_model_card("ravdess", "me/m", {1: {"test_war": 0.9, "test_uar": 0.8}}, config=tiny_config())
    assert "synthetic clips only" not in real.text


def test_label_names_given_win_over_the_config():
    card = render_model_card("ravdess", "me/m", FOLDS, config=tiny_config(), label_names=["a", "b"])
    assert "- **Classes**: a, b\n" in card.text
    no_config = render_model_card("ravdess", "me/m", FOLDS)
    assert "- **Classes**: \n" in no_config.text


def test_licence_notes():
    assert model_license("ravdess") == {
        "license": "cc-by-nc-sa-4.0",
        "note": "Trained on RAVDESS (CC BY-NC-SA 4.0), from a random initialisation: released under "
        "`cc-by-nc-sa-4.0`.",
    }
    crema = model_license("crema_d", "MCG-NJU/videomae-base")
    assert crema["license"] == "cc-by-nc-4.0"
    assert crema["note"].startswith("Trained on CREMA-D (Open Database License (ODbL) v1.0, contents under DbCL v1.0)")
    assert "from the backbone `MCG-NJU/videomae-base` (cc-by-nc-4.0): released under `cc-by-nc-4.0`." in crema["note"]


def test_paper_reference_quotes_the_strategy_and_protocol():
    assert paper_reference("ravdess", "RFAS") == (
        "For reference, the paper reports 75.44 WAR / 75.97 UAR (RFAS, 7class) on RAVDESS (one 1080 / 360 train / "
        "test split, not cross-validation) with VideoMAE ViT-L, frozen (linear probe); numbers from different "
        "protocols are not comparable."
    )
    assert paper_reference("ravdess", "video").startswith("For reference, the paper reports 74.13 WAR (video, 7class)")
    assert "83.61 WAR / 83.23 UAR (FSLF" in paper_reference("ravdess", None)
    assert paper_reference("synthetic", "FSLF") == ""


def test_describe_splits():
    splits = {"train": (432, [5, 6]), "validation": (None, [3, 4]), "test": (72, [1, 2])}
    assert describe_splits("crema_d", splits) == (
        "train: 432 clips of 2 actors (5, 6); validation: 2 actors (3, 4); test: 72 clips of 2 actors (1, 2)."
    )
    ravdess = describe_splits("ravdess", splits)
    assert ravdess.endswith(" here 2 of them validate, so the model trains on 18.")
    assert "HiCMAE" not in describe_splits("ravdess", {"train": (10, [1]), "test": (5, [2])})
    assert describe_splits("ravdess", None) == "" and describe_splits("ravdess", {}) == ""


def test_describe_preprocessing_from_settings():
    # defaults: FSLF, 16 frames (8 video + 8 audio), aligned sampling, MFCC, no face crop, 224 px
    text = describe_preprocessing(None)
    assert text.startswith(
        "8 video frame(s) sampled at the centres of the audio windows, resized to 224 x 224 (aspect ratio not kept, "
        "no face crop); audio downmixed to mono, resampled to 16000 Hz, peak-normalised, cut into 8 overlapping "
        "windows, each drawn as an MFCC picture (coefficients 1-13 of 40 mel filters"
    )
    strided = describe_preprocessing({"frame_sampling": "strided", "original_frame_stride": 3, "num_frames": 8})
    assert strided.startswith("4 video frame(s) sampled every 3th frame from the first")
    video = describe_preprocessing({"fusion_strategy": "video", "num_frames": 6})
    assert video.startswith("6 video frame(s) sampled evenly over the clip") and "audio" not in video


def test_card_reads_the_clip_layout_from_the_config_without_saved_settings():
    card = render_model_card("ravdess", "me/m", FOLDS, config=tiny_config())
    assert "2 video frame(s) sampled at the centres of the audio windows, resized to 32 x 32" in card.text


# ------------------------------------------------------------------------------------------- files
def test_update_replaces_only_our_block_and_merges_tags(tmp_path):
    path = tmp_path / "README.md"
    first = render_model_card("ravdess", "me/m", FOLDS, config=tiny_config())
    path.write_text(
        "---\ntags:\n- mine\nlanguage: en\n---\n# Notes\n\nbefore\n\n"
        f"{BEGIN_MARKER}\nold text\n{END_MARKER}\n\nafter\n"
    )
    update_model_card(path, first)
    saved = ModelCard.load(path)
    assert "before" in saved.text and "after" in saved.text and "old text" not in saved.text
    assert saved.text.index("before") < saved.text.index(MEAN_ROW) < saved.text.index("after")
    assert saved.data.tags[0] == "mine" and "fusion-fslf" in saved.data.tags
    assert saved.data.to_dict()["language"] == "en"  # kept: the new card has none


def test_update_appends_our_block_to_a_card_without_one(tmp_path):
    path = tmp_path / "README.md"
    path.write_text("---\nlicense: mit\n---\n# My own card\n\nwords   \n")
    update_model_card(path, render_model_card("ravdess", "me/m", FOLDS, config=tiny_config()))
    text = path.read_text()
    assert "# My own card\n\nwords\n\n" + BEGIN_MARKER in text and text.rstrip().endswith(END_MARKER)
    assert ModelCard.load(path).data.license == "cc-by-nc-sa-4.0"


def test_write_model_card_from_the_saved_run(tmp_path):
    (tmp_path / "all_results.json").write_text(json.dumps({"test_war": 0.5}))
    (tmp_path / "test_results.json").write_text(json.dumps({"test_war": 0.4, "test_uar": 0.3}))
    (tmp_path / "eval_results.json").write_text(json.dumps({"eval_war": 0.9, "eval_uar": 0.8}))
    assert load_results(tmp_path) == {"test_war": 0.5, "test_uar": 0.3, "eval_war": 0.9, "eval_uar": 0.8}
    tiny_config().save_pretrained(tmp_path)
    (tmp_path / "preprocessor_config.json").write_text(
        json.dumps({"processor_class": "MultiMAEDERProcessor", "fusion_strategy": "FSLF", "num_frames": 10})
    )
    (tmp_path / "confusion_matrix.png").write_bytes(b"png")
    path = write_model_card(tmp_path, "ravdess", model_id="me/run", fold=2)
    text = path.read_text()
    assert path == tmp_path / "README.md"
    assert "| test (fold 2) | 50.00 | 30.00 |" in text and "| validation | 90.00 | 80.00 |" in text
    assert "5 video frame(s) sampled" in text  # from the saved processor settings, not the config's 4 frames
    assert "![Confusion matrix on the test split](confusion_matrix.png)" in text


def test_pretraining_card_licence_and_metadata(tmp_path):
    config = tiny_config()
    (tmp_path / "backbone").mkdir()
    path = write_pretraining_card(
        tmp_path, config, "me/pre", "RAVDESS training actors", 100, 10, "mask", "target", corpus="ravdess",
        base_model="MCG-NJU/videomae-base",
    )  # fmt: skip
    data = ModelCard.load(path).data.to_dict()
    assert data["license"] == "cc-by-nc-sa-4.0" and data["base_model"] == "MCG-NJU/videomae-base"
    assert "fusion-fslf" in data["tags"] and "masked-autoencoder" in data["tags"]
    local = write_pretraining_card(
        tmp_path / "local",
        config,
        "me/pre",
        "videos",
        100,
        None,
        "mask",
        "target",
        base_model=str(tmp_path / "backbone"),
    )
    data = ModelCard.load(local).data.to_dict()
    assert data.get("base_model") is None and data["license"] == "unknown"  # the videos' licences: not ours to know
    assert "license_name" not in data and "license_link" not in data
    assert "The licences of the pre-training videos apply (the model card cannot know them)" in local.read_text()


def test_push_folder_creates_the_repo_and_leaves_checkpoints_out(tmp_path, monkeypatch):
    calls = []

    class FakeApi:
        def __init__(self, token=None):
            calls.append(("token", token))

        def create_repo(self, repo_id, **kwargs):
            calls.append(("create", repo_id, kwargs))
            return type("Url", (), {"repo_id": repo_id})()

        def upload_folder(self, **kwargs):
            calls.append(("upload", kwargs))
            return "done"

    monkeypatch.setattr(cards, "HfApi", FakeApi)
    assert push_folder(tmp_path, "me/m", token="t", ignore_patterns=["*.log"]) == "done"
    assert calls[0] == ("token", "t")
    assert calls[1] == ("create", "me/m", {"private": None, "exist_ok": True, "repo_type": "model"})
    upload = calls[2][1]
    assert upload["repo_id"] == "me/m" and upload["folder_path"] == str(tmp_path)
    assert upload["ignore_patterns"] == [
        "_*",
        "*/_*",
        "checkpoint-*",
        "*/checkpoint-*",
        "runs/*",
        "*.pt",
        "trainer_state.json.tmp",
        "*.log",
    ]
    assert PUSH_IGNORE_PATTERNS[-1] == "trainer_state.json.tmp"  # the constant itself is not extended


# ------------------------------------------------------------------------------------------- comparison
GRID = {
    "FSLF": {1: {"test_war": 0.70, "test_uar": 0.65}, 2: {"test_war": 0.80, "test_uar": 0.60}},
    "audio": {1: {"test_war": 0.50, "test_uar": 0.45}, 2: {"test_war": 0.55}},  # fold 2 unfinished
}


def test_summarize_grid_by_hand():
    summary = summarize_grid(GRID, "ravdess", "7class")
    fslf, audio = summary["models"]["FSLF"], summary["models"]["audio"]
    assert summary["folds"] == [1, 2] and summary["corpus_pretty"] == "RAVDESS"
    assert summary["protocol"].startswith("2-fold subject-independent cross-validation (6 subject-independent folds")
    assert (fslf["mean_test_war"], fslf["std_test_war"]) == pytest.approx((0.75, 0.05))
    assert (fslf["mean_test_uar"], fslf["std_test_uar"]) == pytest.approx((0.625, 0.025))
    assert fslf["missing_folds"] == [] and fslf["paper"] == {"uar": 83.23, "war": 83.61}
    assert audio["folds"] == {"1": {"test_war": 0.5, "test_uar": 0.45}} and audio["missing_folds"] == [2]
    assert (audio["mean_test_war"], audio["std_test_war"]) == pytest.approx((0.5, 0.0))
    assert audio["paper"] == {"uar": None, "war": 80.55}


def test_comparison_table_by_hand():
    table = comparison_table(summarize_grid(GRID, "ravdess", "7class"))
    ours = "ours: 2-fold CV, 7class"
    theirs = "paper: one 1080 / 360 train / test split, not cross-validation, 7class"
    lines = table.splitlines()
    assert lines[:4] == [
        f"| model | fold 1 WAR / UAR | fold 2 WAR / UAR | WAR ({ours}) | UAR ({ours}) "
        f"| WAR ({theirs}) | UAR ({theirs}) |",
        "|---|---|---|---|---|---|---|",
        "| FSLF | 70.00 / 65.00 | 80.00 / 60.00 | 75.00 ± 5.00 | 62.50 ± 2.50 | 83.61 | 83.23 |",
        "| audio | 50.00 / 45.00 | - | 50.00 | 45.00 | 80.55 | - |",  # one finished fold: its value, no ± 0.00
    ]
    assert lines[4] == ""
    assert lines[-1] == "Not finished yet: audio folds 2."
    assert "Numbers from different protocols are not comparable" in table


def test_a_one_fold_grid_shows_each_value_without_a_spread():
    one_fold = {"FSLF": {1: GRID["FSLF"][1]}, "audio": {1: GRID["audio"][1]}}
    table = comparison_table(summarize_grid(one_fold, "synthetic", None))
    lines = table.splitlines()
    assert lines[2:4] == ["| FSLF | 70.00 / 65.00 | 70.00 | 65.00 |", "| audio | 50.00 / 45.00 | 50.00 | 45.00 |"]
    assert "±" not in table and lines[5].endswith(", one fold, so no spread to show.")
    two_folds = comparison_table(summarize_grid(GRID, "synthetic", None)).splitlines()
    assert two_folds[5].endswith(", mean ± population std over the folds.")


def test_comparison_table_without_published_numbers():
    table = comparison_table(summarize_grid({"FSLF": GRID["FSLF"]}, "synthetic", None))
    lines = table.splitlines()
    assert lines[0] == (
        "| model | fold 1 WAR / UAR | fold 2 WAR / UAR | WAR (ours: 2-fold CV, default labels) | "
        "UAR (ours: 2-fold CV, default labels) |"
    )
    assert lines[2] == "| FSLF | 70.00 / 65.00 | 80.00 / 60.00 | 75.00 ± 5.00 | 62.50 ± 2.50 |"
    assert lines[-1] == "The paper publishes no numbers for this corpus."


def _png_size(path) -> tuple[int, int]:
    head = open(path, "rb").read(24)
    assert head[:8] == b"\x89PNG\r\n\x1a\n"
    return struct.unpack(">II", head[16:24])


def test_grid_chart_values(tmp_path, monkeypatch):
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    drawn = []
    subplots = plt.subplots
    monkeypatch.setattr(plt, "subplots", lambda *a, **k: drawn.append(subplots(*a, **k)) or drawn[-1])
    path = save_grid_chart(summarize_grid(GRID, "ravdess", "7class"), tmp_path / "grid.png")
    assert path == str(tmp_path / "grid.png")
    assert _png_size(path) == (670, 210)  # (2.5 + 1.4 x 3 columns, 1.2 + 0.45 x 2 models) in at 100 dpi
    fig, (war_ax, uar_ax) = drawn[0]
    assert fig.number not in plt.get_fignums()
    np.testing.assert_allclose(war_ax.get_images()[0].get_array().filled(np.nan), [[70, 80, 75], [50, np.nan, 50]])
    np.testing.assert_allclose(uar_ax.get_images()[0].get_array().filled(np.nan), [[65, 60, 62.5], [45, np.nan, 45]])
    assert (war_ax.get_title(), uar_ax.get_title()) == ("test WAR (%)", "test UAR (%)")
    for ax in (war_ax, uar_ax):
        assert [t.get_text() for t in ax.get_xticklabels()] == ["fold 1", "fold 2", "mean"]
        assert [t.get_text() for t in ax.get_yticklabels()] == ["FSLF", "audio"]
        image = ax.get_images()[0]
        assert (image.norm.vmin, image.norm.vmax) == (0, 100)
    cells = {(t.get_position(), t.get_text(), t.get_color()) for t in war_ax.texts}
    assert ((0.0, 0.0), "70.0", "black") in cells and ((1.0, 1.0), "-", "black") in cells
    assert ((0.0, 1.0), "50.0", "white") in cells  # below 60: white on the dark end of the map
    assert fig._suptitle.get_text() == "RAVDESS: 2-fold subject-independent cross-validation"


def test_comparison_card_metadata_and_sections(tmp_path):
    summary = summarize_grid(GRID, "ravdess", "7class")
    card = render_comparison_card(
        summary,
        "me/grid",
        model_repos={"FSLF": "me/grid-fslf"},
        base_model="MCG-NJU/videomae-base",
        dataset_id="me/ravdess-av",
        recipe="linear-probe",
        command=["python", "compare.py", "--folds", "1,2"],
    )
    data = card.data.to_dict()
    assert data["license"] == "cc-by-nc-sa-4.0" and data["library_name"] == "transformers"
    assert data["tags"] == [
        "multimae-der",
        "emotion-recognition",
        "audio-visual",
        "mmder-hf",
        "strategy-comparison",
        "ravdess",
    ]
    assert data["datasets"] == ["me/ravdess-av"] and data["base_model"] == "MCG-NJU/videomae-base"
    assert comparison_table(summary) in card.text
    assert "![Test WAR and UAR per model and fold](grid_folds.png)" in card.text
    assert "| FSLF | [me/grid-fslf](https://huggingface.co/me/grid-fslf) |" in card.text
    assert "```bash\npython compare.py --folds 1,2\n```" in card.text
    assert "(recipe `linear-probe`, backbone `MCG-NJU/videomae-base`)" in card.text
    assert card.text.strip().startswith(BEGIN_MARKER) and card.text.strip().endswith(END_MARKER)
    local = render_comparison_card(
        summary, "me/grid", base_model=str(tmp_path), dataset_id=str(tmp_path), chart_file=None
    )
    data = local.data.to_dict()
    assert data.get("datasets") is None and data.get("base_model") is None
    assert "grid_folds.png" not in local.text and "## Models" not in local.text and "## Reproduce" not in local.text
    assert "backbone `" + str(tmp_path) + "`" in local.text


# ------------------------------------------------------------------------------------------- widget
def test_widget_examples_are_the_pipelines_rounded_outputs(make_clip, tmp_path):
    from inference_helpers import tiny_classifier

    from mmder_hf.cards.widget import widget_examples
    from mmder_hf.models.multimae_der import MultiMAEDERPipeline

    clip = make_clip("widget_a", num_frames=20, fps=10.0, sample_rate=16000, channels=1)
    model = tiny_classifier("FSLF")
    pipe = MultiMAEDERPipeline(model=model, device=model.device)
    expected = pipe(str(clip), top_k=3)
    rounded = [{"label": p["label"], "score": round(p["score"], 2)} for p in expected]
    entries = widget_examples(
        model, [str(clip), {"path": clip, "src": "https://x/y.mp4", "example_title": "Hi"}], top_k=3, decimals=2
    )
    assert entries == [
        {"example_title": clip.stem, "src": clip.name, "output": rounded},
        {"example_title": "Hi", "src": "https://x/y.mp4", "output": rounded},
    ]
    assert widget_examples(pipe, [clip], top_k=2)[0]["output"] == [
        {"label": p["label"], "score": round(p["score"], 4)} for p in expected[:2]
    ]


def test_a_card_computing_its_examples_does_not_warn_as_a_user_run_would(make_clip, caplog):
    """The synthetic-corpus warning is for whoever runs the model; the card already says it, in its text."""
    import logging

    from inference_helpers import tiny_classifier

    from mmder_hf.cards.widget import widget_examples
    from mmder_hf.models.multimae_der import MultiMAEDERPipeline

    clip = make_clip("widget_a", num_frames=20, fps=10.0, sample_rate=16000, channels=1)
    model = tiny_classifier("FSLF")
    model.config.training_data = "synthetic"
    with caplog.at_level(logging.WARNING):
        widget_examples(model, [str(clip)], top_k=1)
    assert not [r for r in caplog.records if "synthetic" in r.getMessage()]
    with caplog.at_level(logging.WARNING):
        MultiMAEDERPipeline(model=model, device=model.device)
    assert len([r for r in caplog.records if "synthetic corpus" in r.getMessage()]) == 1


def test_card_lists_the_hyperparameters():
    card = render_model_card(
        "ravdess", "me/m", FOLDS, config=tiny_config(), hyperparameters={"learning_rate": 0.001, "epochs": 5}
    )
    assert "| setting | value |\n|---|---|\n| learning_rate | 0.001 |\n| epochs | 5 |" in card.text


def test_single_fold_card_checks_its_splits_against_that_standard_fold():
    # RAVDESS fold 1 tests on actors 1-4; this run's source had only 1 and 2 of them.
    splits = {"train": (40, [9, 10, 11]), "test": (20, [1, 2])}
    results = {1: {"test_war": 0.5, "test_uar": 0.5}}
    single = render_model_card("ravdess", "me/m", results, config=tiny_config(), splits=splits)
    assert "**Smaller than the standard fold 1**: the source lacked actors (" in single.text
    several = render_model_card("ravdess", "me/m", FOLDS, config=tiny_config(), splits=splits)
    assert "Smaller than the standard fold" not in several.text  # no one fold to compare with
    assert "train: 40 clips of 3 actors (9, 10, 11); test: 20 clips of 2 actors (1, 2)." in several.text


def test_lora_settings_appear_in_the_settings_table_and_tag_the_card():
    settings = {"recipe": "finetune", "LoRA r": 8, "LoRA target modules": ["query", "value"]}
    settings["trainable parameters"] = 12345
    card = render_model_card("ravdess", "me/m", FOLDS, config=tiny_config(), hyperparameters={**settings, "x": "a|b"})
    assert (
        "| setting | value |\n|---|---|\n| recipe | finetune |\n| LoRA r | 8 |\n"
        "| LoRA target modules | query, value |\n| trainable parameters | 12345 |\n"
        "| x | a\\|b |"  # a "|" of a value does not split its row
    ) in card.text
    assert "lora" in card.data.tags
    plain = render_model_card("ravdess", "me/m", FOLDS, config=tiny_config(), hyperparameters={"epochs": 5})
    assert "lora" not in plain.data.tags


def test_the_card_reads_a_processor_saved_with_nested_settings(tmp_path):
    """transformers v5 processors save one processor_config.json with each sub-processor's settings nested."""
    tiny_config().save_pretrained(tmp_path)
    nested = {
        "processor_class": "MultiMAEDERProcessor",
        "fusion_strategy": "FSLF",
        "num_frames": 10,
        "video_processor": {"frame_sampling": "original", "image_size": 32},
        "feature_extractor": {"sampling_rate": 44100, "audio_representation": "log-mel"},
    }
    (tmp_path / "processor_config.json").write_text(json.dumps(nested))
    text = write_model_card(tmp_path, "ravdess", model_id="me/run", fold=1, results=FOLDS[1]).read_text()
    # 10 frames, FSLF: 5 face frames, every 48 // 5 = 9th frame of the original; 5 audio windows at 44100 Hz
    assert "5 video frame(s) sampled every 9th frame from the first, resized to 32 x 32" in text
    assert "resampled to 44100 Hz, peak-normalised, cut into 5 overlapping windows, each drawn as a log-mel" in text


def test_updating_a_readme_whose_own_metadata_is_bad_warns_and_still_writes(tmp_path, caplog):
    """Our metadata is checked before writing; what the user's README keeps is theirs: a warning, not a failure."""
    import logging

    path = tmp_path / "README.md"
    path.write_text("---\ndatasets:\n- /data/ravdess\n---\n# My card\n")
    with caplog.at_level(logging.WARNING, logger="mmder_hf.cards.cards"):
        update_model_card(path, render_model_card("ravdess", "me/m", FOLDS, config=tiny_config()))
    warned = [r.getMessage() for r in caplog.records]
    problem = "datasets: '/data/ravdess' is not a Hub id (owner/name)"
    assert warned == [f"{path} keeps metadata the Hub may reject: {problem}"]
    assert ModelCard.load(path).data.datasets == ["/data/ravdess"] and "# My card" in path.read_text()
