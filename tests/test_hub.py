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


def fake_hub(monkeypatch, uploaded_root):
    """HfApi.create_repo / upload_folder offline. The upload selects files as huggingface_hub's does (every file under
    the folder, huggingface_hub's own ``filter_repo_objects`` with ``allow_patterns`` / ``ignore_patterns`` and its
    default ignores, ``path_in_repo`` prefixed after filtering) and copies them to ``uploaded_root``."""
    import inspect
    from pathlib import Path

    from offline_hub import files_to_upload

    calls = {"create": [], "upload": []}
    real_upload_folder = inspect.signature(HfApi.upload_folder)

    def create_repo(self, repo_id, **kwargs):
        calls["create"].append(repo_id)
        return types.SimpleNamespace(repo_id=repo_id)

    def upload_folder(self, **kwargs):
        call = real_upload_folder.bind(self, **kwargs).arguments  # push_folder must call the real signature
        folder = Path(call["folder_path"]).expanduser().resolve()
        selected = files_to_upload(folder, call.get("allow_patterns"), call.get("ignore_patterns"))
        prefix = f"{call['path_in_repo'].strip('/')}/" if call.get("path_in_repo") else ""
        uploaded = []
        for relpath in selected:
            target = uploaded_root / call["repo_id"] / (prefix + relpath)
            target.parent.mkdir(parents=True, exist_ok=True)
            shutil.copyfile(folder / relpath, target)
            uploaded.append(prefix + relpath)
        calls["upload"].append({**call, "uploaded": uploaded})
        return f"https://huggingface.co/{call['repo_id']}/tree/main"

    monkeypatch.setattr(HfApi, "create_repo", create_repo)
    monkeypatch.setattr(HfApi, "upload_folder", upload_folder)
    return calls


def test_fake_upload_filters_like_huggingface_hub(tmp_path, monkeypatch):
    for name in ("a.json", "sub/b.json", "sub/deep/c.png", "sub/deep/d.json", ".git/HEAD", "x.pt"):
        (tmp_path / "f" / name).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / "f" / name).write_text(name)
    calls = fake_hub(monkeypatch, tmp_path / "hub")
    HfApi().upload_folder(repo_id="me/x", folder_path=tmp_path / "f", ignore_patterns=["sub/*.json"])
    # fnmatch: "*" crosses "/" ("sub/*.json" matches "sub/deep/d.json" too); ".git" is always left out.
    assert calls["upload"][0]["uploaded"] == ["a.json", "sub/deep/c.png", "x.pt"]
    HfApi().upload_folder(repo_id="me/x", folder_path=tmp_path / "f", allow_patterns="*.png", path_in_repo="p")
    assert calls["upload"][1]["uploaded"] == ["p/sub/deep/c.png"]


def test_offline_hub_of_the_end_to_end_runs_uploads_what_a_real_push_sends(tmp_path, monkeypatch):
    """tests/offline_hub.py (the runners' Hub) selects by path as huggingface_hub does: `runs/` logs, private files,
    checkpoints and `.git` stay local, also below the top level, which basename matching would let through."""
    from offline_hub import patch_hf_api

    for attr in ("create_repo", "upload_folder", "create_commit", "preupload_lfs_files", "upload_file", "model_info"):
        monkeypatch.setattr(HfApi, attr, getattr(HfApi, attr))  # patch_hf_api replaces them: restored afterwards
    folder = tmp_path / "run"
    names = ["config.json", "README.md", "runs/Dec03/events.out", "_private.json", "checkpoint-4/model.safetensors"]
    names += ["fold_1/_note.txt", "fold_1/eval.json", ".git/HEAD", "optimizer.pt"]
    for name in names:
        (folder / name).parent.mkdir(parents=True, exist_ok=True)
        (folder / name).write_text(name)
    patch_hf_api(str(tmp_path / "uploads"))
    push_folder(folder, "me/x")
    (upload,) = (tmp_path / "uploads").iterdir()
    assert upload.name == "000-rank0-me__x-root"
    sent = sorted(p.relative_to(upload).as_posix() for p in upload.glob("**/*") if p.is_file())
    assert sent == ["README.md", "config.json", "fold_1/eval.json"]
    with pytest.raises(RuntimeError, match="unexpected Hub call"):
        HfApi().upload_file(path_or_fileobj=b"x", path_in_repo="x", repo_id="me/x")


def write_training_folder(folder):
    """What a training run leaves in its output folder: the model to push and everything that must stay local."""
    from mmder_hf import MultiMAEDERForVideoClassification, MultiMAEDERProcessor

    model = MultiMAEDERForVideoClassification(config())
    model.save_pretrained(folder)
    MultiMAEDERProcessor.from_model_config(model.config).save_pretrained(folder)
    (folder / "README.md").write_text("---\nlicense: apache-2.0\nlibrary_name: transformers\n---\n# Model\n")
    files = {
        # pushed: metrics, figures, run records
        "all_results.json": "{}",
        "eval_results.json": "{}",
        "test_results.json": "{}",
        "train_results.json": "{}",
        "trainer_state.json": "{}",
        "run_args.json": "{}",
        "confusion_matrix.png": b"\x89PNG\r\n\x1a\n",
        "confusion_matrix.json": "{}",
        "figures/timeline.png": b"\x89PNG\r\n\x1a\n",
        "training_args.bin": b"\0",
        # left out
        "checkpoint-4/model.safetensors": b"\0",
        "checkpoint-4/config.json": "{}",
        "checkpoint-4/optimizer.pt": b"\0",
        "checkpoint-4/rng_state.pth": b"\0",
        "checkpoint-8/trainer_state.json": "{}",
        "checkpoint-8/scheduler.pt": b"\0",
        "fold_1/checkpoint-2/model.safetensors": b"\0",
        "runs/Jan01_00-00-00_host/events.out.tfevents.1.host.0": b"\0",
        "_run_state.json": "{}",
        "_feature_cache/part-0.arrow": b"\0",
        "figures/_draft.png": b"\x89PNG\r\n\x1a\n",
        "swa_weights.pt": b"\0",
        "trainer_state.json.tmp": "{",
        ".git/HEAD": "ref: refs/heads/main",
    }
    for name, content in files.items():
        path = folder / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(content) if isinstance(content, bytes) else path.write_text(content)


def test_push_folder_uploads_the_model_and_leaves_checkpoints_and_private_files_out(tmp_path, monkeypatch):
    import os

    folder = tmp_path / "run"
    write_training_folder(folder)
    code = {name for name in os.listdir(folder) if name.endswith(".py")}
    assert {"modeling_multimae_der.py", "processing_multimae_der.py", "pipeline.py", "media.py"} <= code
    calls = fake_hub(monkeypatch, tmp_path / "hub")
    push_folder(folder, "me/x", commit_message="test push")
    assert calls["create"] == ["me/x"]
    (upload,) = calls["upload"]
    assert upload["repo_id"] == "me/x" and upload["commit_message"] == "test push"
    expected = {
        "config.json",
        "model.safetensors",
        "processor_config.json",
        "README.md",
        *code,
        "requirements.txt",  # what an Inference Endpoint installs before loading handler.py
        "all_results.json",
        "eval_results.json",
        "test_results.json",
        "train_results.json",
        "trainer_state.json",
        "run_args.json",
        "confusion_matrix.png",
        "confusion_matrix.json",
        "figures/timeline.png",
        "training_args.bin",
    }
    assert len(upload["uploaded"]) == len(set(upload["uploaded"]))
    assert set(upload["uploaded"]) == expected
    hub = tmp_path / "hub" / "me" / "x"
    assert (hub / "model.safetensors").read_bytes() == (folder / "model.safetensors").read_bytes()
    # The caller's patterns come on top (cross_validate.py pushes its aggregate without the fold folders).
    push_folder(folder, "me/cv", ignore_patterns=["fold_*", "*.json"], path_in_repo="aggregate")
    kept = {
        "model.safetensors",
        "README.md",
        *code,
        "requirements.txt",
        "confusion_matrix.png",
        "figures/timeline.png",
        "training_args.bin",
    }
    assert set(calls["upload"][1]["uploaded"]) == {f"aggregate/{name}" for name in kept}


def test_card_describes_the_inputs_from_the_saved_processor(tmp_path):
    from inference_helpers import tiny_classifier

    from mmder_hf import MultiMAEDERProcessor
    from mmder_hf.cards import write_model_card

    model = tiny_classifier("FSLF")
    model.save_pretrained(tmp_path)
    settings = dict(audio_representation="log-mel", audio_sample_rate=44100, frame_sampling="original")
    MultiMAEDERProcessor.from_model_config(model.config, **settings).save_pretrained(tmp_path)
    results = {"test_war": 0.5, "test_uar": 0.4}
    text = write_model_card(tmp_path, "ravdess", model_id="me/m", fold=1, results=results).read_text()
    assert "log-mel picture (128 Kaldi mel bins" in text and "resampled to 44100 Hz" in text
    assert "2 video frame(s) sampled every 24th frame from the first, resized to 32 x 32" in text
    assert "MFCC" not in text and "2 overlapping windows" in text  # nowhere, the introduction included
    assert "audio pictures (log-mel images of overlapping audio windows)" in text
    MultiMAEDERProcessor.from_model_config(model.config).save_pretrained(tmp_path)  # the defaults: the paper's MFCC
    text = write_model_card(tmp_path, "ravdess", model_id="me/m", fold=1, results=results).read_text()
    assert "MFCC picture (coefficients 1-13 of 40 mel filters" in text and "16000 Hz" in text
    assert "sampled at the centres of the audio windows" in text and "log-mel" not in text
    assert "audio pictures (MFCC images of overlapping audio windows)" in text


def test_an_iemocap_card_says_whether_the_dialog_videos_were_face_cropped(tmp_path):
    from inference_helpers import tiny_classifier

    from mmder_hf import MultiMAEDERProcessor
    from mmder_hf.cards import write_model_card

    model = tiny_classifier("FSLF")
    model.save_pretrained(tmp_path)
    results = {"test_war": 0.5, "test_uar": 0.4}
    MultiMAEDERProcessor.from_model_config(model.config).save_pretrained(tmp_path)
    text = write_model_card(tmp_path, "iemocap", model_id="me/m", fold=1, results=results).read_text()
    assert "No face crop: the dialog videos show both actors side by side." in text
    MultiMAEDERProcessor.from_model_config(model.config, face_crop=True).save_pretrained(tmp_path)
    text = write_model_card(tmp_path, "iemocap", model_id="me/m", fold=1, results=results).read_text()
    assert "No face crop" not in text and "which need not be the speaker" in text
    assert "cropped to a square around the clip's tracked main face" in text


def test_card_states_the_split_sizes_and_how_peers_split():
    from mmder_hf.cards import render_model_card

    splits = {"train": (432, list(range(7, 25))), "validation": (48, [5, 6]), "test": (96, [1, 2, 3, 4])}
    text = str(render_model_card("ravdess", "me/m", {1: {"test_war": 0.5, "test_uar": 0.5}}, fold=1, splits=splits))
    assert "train: 432 clips of 18 actors (7, 8," in text and "validation: 48 clips of 2 actors (5, 6)" in text
    assert "test: 96 clips of 4 actors (1, 2, 3, 4)" in text and "train on 20 actors per fold" in text
    crema = {"train": (10, [1001]), "validation": (2, [1019]), "test": (3, [1037])}
    text = str(render_model_card("crema_d", "me/m", {1: {"test_war": 0.5, "test_uar": 0.5}}, fold=1, splits=crema))
    assert "train: 10 clips of 1 actors (1001)" in text and "20 actors" not in text


def test_model_index_names_the_dataset_that_was_read_or_just_the_corpus(tmp_path):
    from mmder_hf.cards import render_model_card

    results = {1: {"test_war": 0.5, "test_uar": 0.5}}
    hub = render_model_card("crema_d", "me/m", results, fold=1, dataset_id="me/crema-d-av").data.to_dict()
    assert hub["datasets"] == ["me/crema-d-av"]
    assert {r["dataset"]["type"] for r in hub["model-index"][0]["results"]} == {"me/crema-d-av"}
    local = render_model_card("crema_d", "me/m", results, fold=1, dataset_id=str(tmp_path)).data.to_dict()
    assert "datasets" not in local or not local["datasets"]
    assert {r["dataset"]["type"] for r in local["model-index"][0]["results"]} == {"crema_d"}


def test_the_7class_card_says_the_calm_merge_is_inferred():
    from mmder_hf.cards import render_model_card

    results = {1: {"test_war": 0.5, "test_uar": 0.5}}
    text = str(render_model_card("ravdess", "me/m", results, fold=1, label_set="7class"))
    assert "calm merged into neutral, as inferred from the paper's class counts; the authors do not say" in text
    assert "inferred" not in str(render_model_card("ravdess", "me/m", results, fold=1, label_set="8class"))


def test_card_notes_a_fold_smaller_than_the_standard_one():
    from mmder_hf.cards import render_model_card

    splits = {"train": (400, list(range(7, 25))), "validation": (48, [5, 6]), "test": (72, [1, 2, 4])}
    text = str(render_model_card("ravdess", "me/m", {1: {"test_war": 0.5, "test_uar": 0.5}}, fold=1, splits=splits))
    assert "**Smaller than the standard fold 1**: the source lacked actors (test 3)." in text
    full = {**splits, "test": (96, [1, 2, 3, 4])}
    assert "Smaller" not in str(render_model_card("ravdess", "me/m", {1: {}}, fold=1, splits=full))
