"""What a training run started from a checkpoint keeps: a MultiMAE-DER checkpoint's fusion strategy and processor
settings carry over unless a flag says otherwise, from a folder and from a Hub id alike; a VideoMAE checkpoint's
image processor is not read."""

import json
import os
import subprocess
import sys
import textwrap

import pytest

from mmder_hf import MultiMAEDERConfig, MultiMAEDERForVideoClassification, MultiMAEDERProcessor
from mmder_hf.training import MODEL_SIZES
from mmder_hf.training.arguments import RecipeArguments, parse_args, parse_pretraining_args
from mmder_hf.training.finetune import build_model
from mmder_hf.training.run import build_processor


CONFIG = MultiMAEDERConfig(image_size=32, num_frames=4)
#: Every one differs from the processor's default (mfcc, aligned, whole frames, margin 0.25, std 0.225).
TRAINED_WITH = dict(audio_representation="log-mel", frame_sampling="original", face_crop=True, face_margin=0.4)


def processor_for(source, *flags):
    model_args, data_args, _, _ = parse_args(["--output_dir", "x", "--dataset_source", "/data/ravdess", *flags])
    model_args.model_name_or_path = source
    return build_processor(model_args, data_args, CONFIG)


def settings(processor):
    return {k: getattr(processor, k) for k in (*TRAINED_WITH, "image_std")}


@pytest.fixture
def checkpoint(tmp_path):
    folder = tmp_path / "multimae-der-logmel-faces"
    MultiMAEDERProcessor(**TRAINED_WITH, image_std=[0.3, 0.3, 0.3]).save_pretrained(folder)
    return folder


def test_a_checkpoints_processor_settings_carry_over(checkpoint):
    assert settings(processor_for(str(checkpoint))) == {**TRAINED_WITH, "image_std": [0.3, 0.3, 0.3]}


def test_flags_given_override_the_checkpoints_settings(checkpoint):
    processor = processor_for(str(checkpoint), "--audio_representation", "mfcc", "--face_crop", "false")
    assert (processor.audio_representation, processor.face_crop) == ("mfcc", False)
    assert (processor.frame_sampling, processor.face_margin) == ("original", 0.4)  # the others stay
    assert processor_for(str(checkpoint), "--frame_sampling", "aligned").frame_sampling == "aligned"


def test_the_finetune_recipe_crops_faces_and_the_synthetic_corpus_never(checkpoint):
    assert processor_for(None, "--recipe", "finetune").face_crop is True
    assert processor_for(None, "--recipe", "paper").face_crop is False
    model_args, data_args, _, _ = parse_args(["--output_dir", "x"])  # the built-in synthetic corpus
    model_args.model_name_or_path = str(checkpoint)
    processor = build_processor(model_args, data_args, CONFIG)
    assert processor.face_crop is False and processor.audio_representation == "log-mel"


def test_face_crops_of_iemocap_dialogs_come_with_a_warning(caplog):
    import logging

    with caplog.at_level(logging.WARNING, logger="mmder_hf.training.run"):
        processor_for(None, "--recipe", "finetune", "--dataset_name", "iemocap")
    assert "need not be the speaker" in caplog.text
    caplog.clear()
    with caplog.at_level(logging.WARNING, logger="mmder_hf.training.run"):
        processor_for(None, "--recipe", "finetune", "--dataset_name", "iemocap", "--face_crop", "false")
        processor_for(None, "--recipe", "finetune", "--dataset_name", "ravdess")
    assert "speaker" not in caplog.text


def test_a_videomae_image_processor_is_not_read(tmp_path):
    folder = tmp_path / "videomae-base"
    folder.mkdir()
    videomae = {
        "image_processor_type": "VideoMAEImageProcessor",
        "image_mean": [0.485, 0.456, 0.406],
        "image_std": [0.229, 0.224, 0.225],
        "size": {"shortest_edge": 224},
        "crop_size": {"height": 224, "width": 224},
        "do_center_crop": True,
    }
    (folder / "preprocessor_config.json").write_text(json.dumps(videomae))
    processor = processor_for(str(folder))
    assert processor.to_dict() == processor_for(None).to_dict()
    assert processor.image_std == [0.225] * 3 and not hasattr(processor, "crop_size")


HUB_ID = textwrap.dedent(
    """
    import json, sys
    from mmder_hf import MultiMAEDERConfig
    from mmder_hf.training import parse_args
    from mmder_hf.training.run import build_processor
    model_args, data_args, _, _ = parse_args(["--output_dir", "x", "--dataset_source", "/data/ravdess"])
    model_args.model_name_or_path = sys.argv[1]
    processor = build_processor(model_args, data_args, MultiMAEDERConfig(image_size=32, num_frames=4))
    print(json.dumps({k: getattr(processor, k) for k in sys.argv[2:]}))
    """
)


def test_a_hub_checkpoint_gives_the_same_processor_as_its_folder(checkpoint, tmp_path):
    """The Hub id resolves through huggingface_hub's real offline cache (the layout a download leaves)."""
    commit = "0" * 40
    repo = tmp_path / "hub" / "models--someone--multimae-der-logmel-faces"
    (repo / "refs").mkdir(parents=True)
    (repo / "refs" / "main").write_text(commit)
    (repo / "snapshots" / commit).mkdir(parents=True)
    config = (checkpoint / "processor_config.json").read_text()
    (repo / "snapshots" / commit / "processor_config.json").write_text(config)
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "HF_HUB_CACHE": str(tmp_path / "hub")}
    done = subprocess.run(
        [sys.executable, "-c", HUB_ID, "someone/multimae-der-logmel-faces", *TRAINED_WITH],
        capture_output=True,
        text=True,
        env=env,
        timeout=300,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    assert json.loads(done.stdout.strip().splitlines()[-1]) == TRAINED_WITH


def test_a_checkpoints_fusion_strategy_carries_over_unless_a_flag_changes_it(tmp_path):
    folder = tmp_path / "multimae-der-cfas"
    config = MultiMAEDERConfig(fusion_strategy="CFAS", num_labels=3, **MODEL_SIZES["tiny"])
    MultiMAEDERForVideoClassification(config).save_pretrained(folder)
    MultiMAEDERProcessor(fusion_strategy="CFAS", num_frames=4, image_size=32).save_pretrained(folder)
    base = ["--output_dir", "x", "--model_name_or_path", str(folder)]
    model_args, data_args, _, _ = parse_args(base)
    assert model_args.fusion_strategy == "CFAS"
    assert parse_pretraining_args(base)[0].fusion_strategy == "CFAS"  # the same parser
    model = build_model(model_args, RecipeArguments(), ["a", "b", "c"])
    processor = build_processor(model_args, data_args, model.config)
    assert model.config.fusion_strategy == processor.fusion_strategy == "CFAS"
    assert parse_args([*base, "--fusion_strategy", "sfas"])[0].fusion_strategy == "sfas"
    assert parse_args(["--output_dir", "x"])[0].fusion_strategy == "FSLF"  # a new model


def test_a_videomae_checkpoint_starts_as_fslf(tmp_path):
    folder = tmp_path / "videomae"
    folder.mkdir()
    (folder / "config.json").write_text(json.dumps({"model_type": "videomae", "hidden_size": 32}))
    assert parse_args(["--output_dir", "x", "--model_name_or_path", str(folder)])[0].fusion_strategy == "FSLF"


def test_a_pretraining_checkpoints_objective_carries_over_unless_a_flag_changes_it(tmp_path):
    from mmder_hf.models.multimae_der import MultiMAEDERForPreTraining
    from mmder_hf.training.pretraining import build_pretraining_model
    from mmder_hf.training.recipes import DECODER_SIZES

    folder = tmp_path / "pretrained-ofos"
    trained = dict(
        fusion_strategy="OFOS",
        mask_type="random",
        mask_ratio_video=0.75,
        pretraining_target="frame_difference",
        norm_pix_loss=False,
    )
    config = MultiMAEDERConfig(**MODEL_SIZES["tiny"], **DECODER_SIZES["tiny"], **trained)
    MultiMAEDERForPreTraining(config).save_pretrained(folder)
    base = ["--output_dir", "x", "--model_name_or_path", str(folder)]
    model_args, _, pretrain_args, _ = parse_pretraining_args(base)
    model = build_pretraining_model(model_args, pretrain_args)
    assert {k: getattr(model.config, k) for k in trained} == trained
    model_args, _, pretrain_args, _ = parse_pretraining_args([*base, "--mask_ratio_video", "0.5", "--norm_pix_loss"])
    model = build_pretraining_model(model_args, pretrain_args)
    assert (model.config.mask_ratio_video, model.config.norm_pix_loss) == (0.5, True)
    assert (model.config.pretraining_target, model.config.fusion_strategy) == ("frame_difference", "OFOS")
    _, _, fresh, _ = parse_pretraining_args(["--output_dir", "x"])  # a new model: the config's defaults
    assert (fresh.mask_type, fresh.mask_ratio_video, fresh.mask_ratio_audio) == ("tube", 0.9, 0.8)
    assert (fresh.pretraining_target, fresh.norm_pix_loss) == ("pixels", True)
