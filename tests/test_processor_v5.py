"""The processor as transformers v5 saves and loads processors: one nested ``processor_config.json`` holding a video
processor and an audio feature extractor, each loadable by its auto class, with and without this package; checkpoints
saved before (flat ``preprocessor_config.json``) load to the same inputs; transformers' own video-classification
pipeline serves a ``video``-strategy checkpoint with the video processor alone."""

import json
import os
import shutil
import subprocess
import sys
import textwrap
from pathlib import Path

import numpy as np
import pytest
import torch
from inference_helpers import run_without_mmder_hf, save_tiny_model

from mmder_hf import (
    MultiMAEDERFeatureExtractor,
    MultiMAEDERPipeline,
    MultiMAEDERProcessor,
    MultiMAEDERVideoProcessor,
)
from mmder_hf.models.multimae_der import TASK, saved_processor_settings


ASSETS = Path(__file__).parent / "assets"
CODE_FILES = {"processing_multimae_der.py", "video_processing_multimae_der.py", "feature_extraction_multimae_der.py"}


def test_saved_as_one_nested_processor_config(tmp_path):
    settings = dict(
        fusion_strategy="CFAS",  # CFAS reads num_frames of each modality
        num_frames=4,
        image_size=32,
        frame_sampling="original",
        face_margin=0.4,
        audio_representation="log-mel",
        audio_sample_rate=22050,
        image_std=(0.2, 0.3, 0.4),
    )
    MultiMAEDERProcessor(**settings).save_pretrained(tmp_path)
    assert not (tmp_path / "preprocessor_config.json").exists()
    assert not (tmp_path / "video_preprocessor_config.json").exists()
    assert CODE_FILES <= {p.name for p in tmp_path.glob("*.py")}
    saved = json.loads((tmp_path / "processor_config.json").read_text())
    assert saved["processor_class"] == "MultiMAEDERProcessor"
    assert (saved["fusion_strategy"], saved["num_frames"]) == ("CFAS", 4)
    assert saved["auto_map"]["AutoProcessor"] == "processing_multimae_der.MultiMAEDERProcessor"
    video, audio = saved["video_processor"], saved["feature_extractor"]
    assert video["video_processor_type"] == "MultiMAEDERVideoProcessor"
    assert video["auto_map"]["AutoVideoProcessor"] == "video_processing_multimae_der.MultiMAEDERVideoProcessor"
    assert (video["num_frames"], video["image_size"], video["frame_sampling"]) == (4, 32, "original")
    assert (video["face_margin"], video["image_std"]) == (0.4, [0.2, 0.3, 0.4])
    assert audio["feature_extractor_type"] == "MultiMAEDERFeatureExtractor"
    assert audio["auto_map"]["AutoFeatureExtractor"] == "feature_extraction_multimae_der.MultiMAEDERFeatureExtractor"
    assert (audio["num_audio_frames"], audio["image_size"], audio["sampling_rate"]) == (4, 32, 22050)
    assert (audio["audio_representation"], audio["image_std"]) == ("log-mel", [0.2, 0.3, 0.4])
    assert "audio_representation" not in video and "face_margin" not in audio  # each part holds its own settings
    flat = saved_processor_settings(tmp_path)
    assert {k: flat[k] for k in settings} == {**settings, "image_std": [0.2, 0.3, 0.4]}


def test_a_checkpoint_saved_before_gives_the_same_inputs_and_logits(tmp_path):
    """tests/assets/checkpoint_v0_1 holds the flat preprocessor_config.json of processors saved before, with the
    input sums and logits the code of that time computed: loaded directly, and saved again in the new format and
    loaded back, it gives those inputs bit for bit."""
    from transformers import AutoModelForVideoClassification, AutoProcessor

    old = ASSETS / "checkpoint_v0_1"
    reference = json.loads((ASSETS / "checkpoint_v0_1_reference.json").read_text())
    frames = (np.arange(10 * 24 * 40 * 3) % 251).astype(np.uint8).reshape(10, 24, 40, 3)
    wave = (0.4 * np.sin(2 * np.pi * 440 * np.arange(16000) / 16000)).astype(np.float32)
    loaded = MultiMAEDERProcessor.from_pretrained(old)
    assert loaded.to_dict() == AutoProcessor.from_pretrained(old).to_dict()
    inputs = loaded(videos=frames, audio=wave, sampling_rate=16000)
    assert float(inputs["pixel_values"].double().sum()) == reference["pixel_values_sum"]
    assert float(inputs["audio_values"].double().sum()) == reference["audio_values_sum"]
    model = AutoModelForVideoClassification.from_pretrained(old).eval()
    with torch.no_grad():
        logits = model(**inputs).logits
    torch.testing.assert_close(logits, torch.tensor(reference["logits_processor_inputs"]), rtol=0, atol=1e-6)

    resaved = tmp_path / "resaved"
    shutil.copytree(old, resaved)
    (resaved / "preprocessor_config.json").unlink()
    loaded.save_pretrained(resaved)
    reloaded = MultiMAEDERProcessor.from_pretrained(resaved)
    before = saved_processor_settings(old)
    assert {k: v for k, v in reloaded.to_dict().items() if k in before} == before
    again = reloaded(videos=frames, audio=wave, sampling_rate=16000)
    for key in ("pixel_values", "audio_values"):
        assert torch.equal(again[key], inputs[key]), key


AUTO_SCRIPT = textwrap.dedent(
    """
    import sys, torch
    from transformers import AutoFeatureExtractor, AutoProcessor
    folder, clip, out = sys.argv[1:4]
    processor = AutoProcessor.from_pretrained(folder, trust_remote_code=True)
    video_processor = processor.video_processor  # AutoVideoProcessor itself needs Pillow: see the stock pipeline test
    feature_extractor = AutoFeatureExtractor.from_pretrained(folder, trust_remote_code=True)
    parts = (processor, video_processor, feature_extractor)
    assert not any(type(p).__module__.startswith("mmder_hf") for p in parts), [type(p).__module__ for p in parts]
    torch.save(
        {
            "classes": [type(p).__name__ for p in parts],
            "processor": dict(processor(videos=clip)),
            "video": dict(video_processor(clip)),
            "audio": dict(feature_extractor(clip)),
        },
        out,
    )
    """
)


def test_auto_classes_load_a_saved_folder_with_and_without_the_package(tmp_path, synthetic_clip_path):
    """With the package: its registered classes. Without it (a fresh process that can import only the runtime
    packages): the folder's code files, giving the same tensors. transformers' AutoVideoProcessor refuses to run
    without Pillow, so there the video processor is the processor's part (AutoVideoProcessor is loaded without this
    package in the stock pipeline test)."""
    from transformers import AutoFeatureExtractor, AutoProcessor, AutoVideoProcessor

    folder = save_tiny_model(tmp_path / "model")  # FSLF: 2 frames and 2 audio pictures of 32 px
    clip = str(synthetic_clip_path)
    processor = AutoProcessor.from_pretrained(folder)
    video_processor = AutoVideoProcessor.from_pretrained(folder)
    feature_extractor = AutoFeatureExtractor.from_pretrained(folder)
    assert type(processor) is MultiMAEDERProcessor
    assert type(video_processor) is MultiMAEDERVideoProcessor
    assert type(feature_extractor) is MultiMAEDERFeatureExtractor
    expected = processor(videos=clip)
    assert expected["pixel_values"].shape == expected["audio_values"].shape == (1, 2, 3, 32, 32)
    # each part alone gives its modality of the whole processor's output
    assert torch.equal(video_processor(clip)["pixel_values"], expected["pixel_values"])
    assert torch.equal(feature_extractor(clip)["audio_values"], expected["audio_values"])

    out = tmp_path / "remote.pt"
    env = {"HF_MODULES_CACHE": str(tmp_path / "modules")}
    run_without_mmder_hf(AUTO_SCRIPT, folder, clip, out, env=env, cwd=tmp_path, timeout=240)
    remote = torch.load(out)
    assert remote["classes"] == ["MultiMAEDERProcessor", "MultiMAEDERVideoProcessor", "MultiMAEDERFeatureExtractor"]
    assert set(remote["processor"]) == {"pixel_values", "audio_values"}
    for key in ("pixel_values", "audio_values"):
        assert torch.equal(remote["processor"][key], expected[key]), key
    assert torch.equal(remote["video"]["pixel_values"], expected["pixel_values"])
    assert torch.equal(remote["audio"]["audio_values"], expected["audio_values"])


STOCK_PIPELINE_SCRIPT = textwrap.dedent(
    """
    import json, sys
    from transformers import pipeline
    from transformers import AutoVideoProcessor
    pipe = pipeline("video-classification", model=sys.argv[1], trust_remote_code=True, device="cpu")
    result = pipe(sys.argv[2], top_k=10)
    alone = AutoVideoProcessor.from_pretrained(sys.argv[1], trust_remote_code=True)
    assert type(alone) is type(pipe.video_processor)
    assert "mmder_hf" not in sys.modules  # the model's own code files, not this package
    classes = [type(pipe.video_processor).__name__, type(pipe.video_processor).__module__]
    print(json.dumps({"video_processor": classes, "result": result}))
    """
)


def test_the_stock_video_classification_pipeline_serves_a_video_checkpoint(tmp_path, synthetic_clip_path):
    """transformers' pipeline("video-classification") reads the clip with the checkpoint's video processor (asking
    for config.num_frames sampled frames, which is what the ``video`` strategy reads): the same scores as ours."""
    from transformers import pipeline

    folder = save_tiny_model(tmp_path / "model", strategy="video")
    clip = str(synthetic_clip_path)
    done = subprocess.run(
        [sys.executable, "-c", STOCK_PIPELINE_SCRIPT, str(folder), clip],
        capture_output=True,
        text=True,
        env={**os.environ, "HF_HUB_OFFLINE": "1", "HF_MODULES_CACHE": str(tmp_path / "modules")},
        cwd=tmp_path,
        timeout=240,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    stock = json.loads(done.stdout.strip().splitlines()[-1])
    name, module = stock["video_processor"]
    assert name == "MultiMAEDERVideoProcessor" and module.startswith("transformers_modules.")
    ours = pipeline(TASK, model=str(folder), pipeline_class=MultiMAEDERPipeline, device="cpu")(clip, top_k=10)
    assert len(ours) == 5
    assert [r["label"] for r in stock["result"]] == [r["label"] for r in ours]
    assert [r["score"] for r in stock["result"]] == pytest.approx([r["score"] for r in ours], abs=1e-6)


def test_face_crops_return_their_boxes(tmp_path):
    pytest.importorskip("cv2", reason="face cropping needs the [faces] extra")
    pytest.importorskip("skimage", reason="the face photographs come from scikit-image")
    from faces_media import face_frames, iou, write_face_clip

    frames, truth = face_frames(12, [lambda t: (200 + 10 * t, 80, 0.5)], height=360, width=640)
    clip = write_face_clip(tmp_path / "face.mp4", frames, fps=6)
    processor = MultiMAEDERProcessor(num_frames=8, image_size=32, face_crop=True)
    output = processor(videos=clip)
    assert set(output) == {"pixel_values", "audio_values", "face_boxes"}
    boxes = output["face_boxes"]
    assert boxes.shape == (1, 4, 4) and boxes.dtype == torch.float32
    # aligned sampling: frame k of 4 is the one played at (k + 1) / 5 of the 2 s clip, i.e. frames 2, 4, 7, 9
    shown = truth[[2, 4, 7, 9], 0]
    assert (iou(boxes[0].numpy().astype(np.float64), shown) > 0.6).all()
    alone = processor.video_processor(clip)
    assert torch.equal(alone["face_boxes"], boxes) and torch.equal(alone["pixel_values"], output["pixel_values"])


def test_the_trainer_trains_with_the_processor_as_processing_class(tmp_path):
    """transformers' Trainer reads the special tokens of any ProcessorMixin's tokenizer before training; a processor
    that reads no text must still train (and leave the model config as it was)."""
    from inference_helpers import tiny_classifier
    from transformers import Trainer, TrainingArguments

    model = tiny_classifier("FSLF")
    tokens = ("bos_token_id", "eos_token_id", "pad_token_id")
    before = {name: getattr(model.config, name, None) for name in tokens}
    processor = MultiMAEDERProcessor.from_model_config(model.config)
    g = torch.Generator().manual_seed(0)
    pictures = torch.randn(2, 2, 2, 3, 32, 32, generator=g)  # 2 clips of 2 frames and 2 audio pictures
    rows = [{"pixel_values": clip[0], "audio_values": clip[1], "labels": label} for label, clip in enumerate(pictures)]
    args = TrainingArguments(
        output_dir=str(tmp_path), max_steps=1, per_device_train_batch_size=2, use_cpu=True, save_strategy="no"
    )
    result = Trainer(model=model, args=args, train_dataset=rows, processing_class=processor).train()
    assert result.global_step == 1
    assert {name: getattr(model.config, name, None) for name in tokens} == before


def test_the_video_part_alone_defaults_to_what_the_default_processor_reads():
    """``MultiMAEDERVideoProcessor()`` (as ``AutoVideoProcessor`` builds it from defaults) samples the frames the
    default processor's video part samples: 8 of the 16 fused frames (FSLF)."""
    from mmder_hf import MultiMAEDERProcessor, MultiMAEDERVideoProcessor

    default = MultiMAEDERProcessor()
    alone = MultiMAEDERVideoProcessor()
    assert alone.num_frames == default.num_video_frames == default.video_processor.num_frames == 8
