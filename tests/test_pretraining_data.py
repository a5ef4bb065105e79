"""Pre-training data and pieces: a folder of videos, a corpus fold without its test actors, per-rank shards,
reconstruction pictures, and the encoder of a run reaching finetune.py's model builder."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from inference_helpers import TINY

from mmder_hf import MultiMAEDERConfig, MultiMAEDERForPreTraining, MultiMAEDERProcessor
from mmder_hf.data.distributed import RankShardBatchSampler
from mmder_hf.data.folds import get_fold
from mmder_hf.data.media_writing import write_clip
from mmder_hf.training import RecipeArguments
from mmder_hf.training.arguments import DataArguments, ModelArguments, PretrainingArguments
from mmder_hf.training.finetune import build_model
from mmder_hf.training.pictures import first_batch, reconstruct, save_reconstruction_picture
from mmder_hf.training.pretraining_data import find_videos, load_pretraining_data, prepare_pretraining_data


DECODER = dict(
    decoder_hidden_size=16, decoder_num_hidden_layers=1, decoder_num_attention_heads=2, decoder_intermediate_size=32
)


def training_args(tmp_path, **kwargs):
    from transformers import TrainingArguments

    return TrainingArguments(output_dir=str(tmp_path / "out"), use_cpu=True, report_to="none", seed=3, **kwargs)


@pytest.fixture(scope="module")
def video_folder(tmp_path_factory):
    """20 short clips with audio in a nested layout (plus a non-video file), as a folder of talking-face videos."""
    root = tmp_path_factory.mktemp("videos")
    rng = np.random.default_rng(0)
    for i in range(20):
        folder = root / f"speaker{i % 3}" / ("session_a" if i % 2 else "session_b")
        folder.mkdir(parents=True, exist_ok=True)
        frames = rng.integers(0, 255, (12, 36, 48, 3), dtype=np.uint8)
        audio = (0.3 * np.sin(np.arange(8000) * (0.05 + 0.01 * i))).astype(np.float32)[None]
        write_clip(folder / f"clip{i:02d}.{'mkv' if i == 7 else 'mp4'}", frames, 12.0, audio, 16000)
    (root / "notes.txt").write_text("not a video")
    return root


def test_a_folder_of_videos_is_found_recursively_and_split(video_folder, tmp_path):
    paths = find_videos(str(video_folder))
    assert len(paths) == 20 and sum(p.endswith(".mkv") for p in paths) == 1
    data = load_pretraining_data(
        DataArguments(dataset_name="videos", dataset_source=str(video_folder)),
        PretrainingArguments(validation_clips=5),
        training_args(tmp_path),
    )
    train, held = data.splits["train"], data.splits["validation"]
    assert (len(train), len(held)) == (18, 2)  # at most a tenth is held out
    assert sorted(list(train["video"]) + list(held["video"])) == paths
    assert "20 video files" in data.description and data.corpus is None

    # The collator decodes the paths (frames and audio track) into the model's inputs; no labels.
    config = MultiMAEDERConfig(**TINY, **DECODER)
    processor = MultiMAEDERProcessor.from_model_config(config)
    prepared = prepare_pretraining_data(
        data,
        MultiMAEDERForPreTraining(config),
        processor,
        DataArguments(preprocess_cache=False),
        training_args(tmp_path),
    )
    batch = first_batch(prepared.train, prepared.collator, 3)
    assert set(batch) == {"pixel_values", "audio_values"}
    assert batch["pixel_values"].shape == (3, 2, 3, 32, 32) and batch["audio_values"].std() > 0.1


def test_a_corpus_fold_gives_its_training_actors_and_never_its_test_actors(tmp_path):
    from mmder_hf.data import make_synthetic_corpus

    corpus = make_synthetic_corpus(str(tmp_path / "corpus"), num_actors=10, clips_per_actor=4, num_workers=0)
    data = load_pretraining_data(
        DataArguments(dataset_source=corpus, fold=2, cache_dir=str(tmp_path / "cache")),
        PretrainingArguments(),
        training_args(tmp_path),
    )
    fold = get_fold("ravdess", 2, actors=range(1, 11))
    assert set(data.splits) == {"train", "validation"}
    seen = {int(a) for split in data.splits.values() for a in split["actor"]}
    assert seen and not seen & set(fold.actors("test"))
    assert {int(a) for a in data.splits["train"]["actor"]} == set(fold.actors("train"))
    assert "test actors (5, 6, 7, 8) were never read" in data.description


def test_preprocess_cache_of_unlabelled_clips(video_folder, tmp_path):
    data = load_pretraining_data(
        DataArguments(dataset_name="videos", dataset_source=str(video_folder)),
        PretrainingArguments(validation_clips=0),
        training_args(tmp_path),
    )
    config = MultiMAEDERConfig(**TINY, **DECODER)
    processor = MultiMAEDERProcessor.from_model_config(config)
    model = MultiMAEDERForPreTraining(config)
    cached = prepare_pretraining_data(
        data, model, processor, DataArguments(cache_dir=str(tmp_path / "c")), training_args(tmp_path)
    )
    assert "labels" not in cached.train.column_names and len(cached.train) == 20
    decoded = prepare_pretraining_data(
        data, model, processor, DataArguments(preprocess_cache=False), training_args(tmp_path)
    )
    a, b = first_batch(cached.train, cached.collator, 4), first_batch(decoded.train, decoded.collator, 4)
    for key in ("pixel_values", "audio_values"):  # the cache gives the processor's own tensors
        assert torch.equal(a[key], b[key]), key


def test_rank_shard_batch_sampler_equal_steps_every_clip_once():
    # 9 clips for 2 ranks: shards of 5 and 4; the short one repeats one clip so that both take 2 batches of 3
    long, short = RankShardBatchSampler(5, 9, 2, 3, seed=1), RankShardBatchSampler(4, 9, 2, 3, seed=1)
    assert len(long) == len(short) == 2
    for epoch in range(2):
        long.set_epoch(epoch), short.set_epoch(epoch)
        first = [i for batch in long for i in batch]
        second = [i for batch in short for i in batch]
        assert sorted(first) == list(range(5))
        assert sorted(set(second)) == list(range(4)) and len(second) == 5
    long.set_epoch(0)
    order0 = [i for batch in long for i in batch]
    long.set_epoch(1)
    assert order0 != [i for batch in long for i in batch]  # reshuffled every epoch
    even = RankShardBatchSampler(4, 8, 2, 3, seed=0)
    assert sorted(i for batch in even for i in batch) == list(range(4))  # divisible: no repeat at all


def test_rank_shard_batch_sampler_edges():
    one = RankShardBatchSampler(1, 2, 2, 4, seed=0)  # a rank whose shard is a single clip
    assert list(one) == [[0]] and len(one) == 1
    dropping = RankShardBatchSampler(5, 5, 1, 2, seed=3, drop_last=True)  # 5 clips in batches of 2: 2 full ones
    batches = list(dropping)
    assert len(dropping) == 2 and [len(batch) for batch in batches] == [2, 2]
    assert len(set(i for batch in batches for i in batch)) == 4
    fresh = RankShardBatchSampler(5, 5, 1, 5, seed=2)  # before any set_epoch: epoch 0's seeded order
    assert next(iter(fresh)) == torch.randperm(5, generator=torch.Generator().manual_seed(2 * 100_003)).tolist()
    for clips in (0, 6):  # a shard must hold between 1 and ceil(9 / 2) = 5 clips
        with pytest.raises(ValueError, match=f"^a shard of {clips} clips cannot be one of 2 shards of 9$"):
            RankShardBatchSampler(clips, 9, 2, 3, seed=0)


def test_reconstruction_picture_shows_visible_patches_and_predictions(tmp_path):
    torch.manual_seed(0)
    config = MultiMAEDERConfig(fusion_strategy="FFLS", **TINY, **DECODER, mask_ratio_video=0.5, mask_ratio_audio=0.5)
    model = MultiMAEDERForPreTraining(config).eval()
    g = torch.Generator().manual_seed(0)
    batch = {"pixel_values": torch.randn(2, 2, 3, 32, 32, generator=g), "audio_values": torch.randn(2, 2, 3, 32, 32)}
    images = reconstruct(model, batch)
    mask = model(**batch).bool_masked_pos.view(2, 2, 2, 2)  # (clip, tubelet, patch row, patch column)
    pixel_mask = mask.repeat_interleave(2, 1).repeat_interleave(16, 2).repeat_interleave(16, 3)[:, :, None]
    pixel_mask = pixel_mask.expand_as(images["input"])
    visible = ~pixel_mask
    assert torch.equal(images["reconstruction"][visible], images["input"][visible].clamp(0, 1))
    assert (images["reconstruction"][pixel_mask] - images["input"][pixel_mask]).abs().mean() > 1e-3
    assert torch.all(images["masked"][pixel_mask] == 0.5)
    assert images["modalities"][0].tolist() == [0, 0, 1, 1]  # FFLS: face frames, then audio images
    path = save_reconstruction_picture(model, batch, str(tmp_path / "r.png"), "test")
    from PIL import Image

    with Image.open(path) as picture:
        assert picture.size[0] > 300 and picture.size[1] > 300


def test_the_encoder_of_a_pretraining_run_reaches_finetune_build_model(tmp_path):
    torch.manual_seed(0)
    model = MultiMAEDERForPreTraining(MultiMAEDERConfig(fusion_strategy="OFOS", **TINY, **DECODER))
    with torch.no_grad():
        for param in model.parameters():
            param.add_(torch.randn_like(param) * 0.1 + 0.01)
    model.save_pretrained(tmp_path / "pretrained")
    classifier = build_model(
        ModelArguments(model_name_or_path=str(tmp_path / "pretrained"), fusion_strategy="OFOS"),
        RecipeArguments(),
        ["a", "b", "c"],
    )
    got = classifier.state_dict()
    for key, tensor in model.state_dict().items():
        if key.startswith("videomae."):
            assert torch.equal(got[key], tensor), key
    assert classifier.classifier.out_features == 3


def test_a_hub_dataset_of_videos_streams_every_clip_into_training_and_evaluation(tmp_path, monkeypatch):
    """A Hub dataset repo as the Hub serves one (Parquet shards under ``data/`` with a `Video` column); only the Hub
    id is mapped to its local copy: datasets' own streaming loader, pretrain's data, the Trainer and the collator
    run as they do on the Hub. Every training clip is read exactly once in one pass, every validation clip once."""
    import datasets
    from transformers import TrainingArguments

    from mmder_hf.training.arguments import parse_pretraining_args
    from mmder_hf.training.pretraining import build_pretraining_model
    from mmder_hf.training.run import build_processor
    from mmder_hf.training.trainers import MultiMAEDERPreTrainer

    repo = tmp_path / "someone--talking-faces"
    (repo / "data").mkdir(parents=True)
    rng = np.random.default_rng(1)
    features = datasets.Features({"clip": datasets.Video(), "name": datasets.Value("string")})
    shards = {"train-00000-of-00002": 3, "train-00001-of-00002": 3, "validation-00000-of-00001": 2}
    for shard, count in shards.items():
        rows = {"clip": [], "name": []}
        for i in range(count):
            name = names(shard, count)[i]
            path = tmp_path / name
            frames = rng.integers(0, 255, (8, 32, 32, 3), dtype=np.uint8)
            write_clip(path, frames, 8.0, 0.2 * rng.standard_normal((1, 8000)), 16000)
            rows["clip"].append({"bytes": path.read_bytes(), "path": name})
            rows["name"].append(name)
            path.unlink()  # only the Parquet files hold the clips
        datasets.Dataset.from_dict(rows, features=features).to_parquet(str(repo / "data" / f"{shard}.parquet"))

    real_load_dataset, asked = datasets.load_dataset, []

    def from_the_local_copy(path, *args, **kwargs):
        asked.append((path, kwargs.get("streaming")))
        return real_load_dataset(str(repo) if path == "someone/talking-faces" else path, *args, **kwargs)

    monkeypatch.setattr(datasets, "load_dataset", from_the_local_copy)
    argv = ["--output_dir", str(tmp_path / "out"), "--dataset_name", "videos", "--dataset_source"]
    argv += ["someone/talking-faces", "--video_column", "clip", "--streaming", "true", "--max_steps", "3"]
    argv += ["--per_device_train_batch_size", "2", "--per_device_eval_batch_size", "2", "--model_size", "tiny"]
    argv += ["--use_cpu", "true", "--save_strategy", "no", "--eval_strategy", "no", "--dataloader_pin_memory", "false"]
    model_args, data_args, pretrain_args, args = parse_pretraining_args(argv)
    assert isinstance(args, TrainingArguments)
    data = load_pretraining_data(data_args, pretrain_args, args)
    assert asked == [("someone/talking-faces", True)]
    assert isinstance(data.splits["train"], datasets.IterableDataset) and data.train_clips == "streamed"
    assert data.dataset_id == "someone/talking-faces" and "`validation` split" in data.description
    model = build_pretraining_model(model_args, pretrain_args)
    processor = build_processor(model_args, data_args, model.config)
    prepared = prepare_pretraining_data(data, model, processor, data_args, args)
    assert prepared.rank_sharded_total is None  # a stream: accelerate shares its shards among ranks

    seen, shapes = [], []

    def recording(rows):
        seen.extend(row["name"] for row in rows)
        batch = prepared.collator(rows)
        shapes.append({k: tuple(v.shape) for k, v in batch.items()})
        return batch

    trainer = MultiMAEDERPreTrainer(
        model=model,
        args=args,
        train_dataset=prepared.train,
        eval_dataset=prepared.validation,
        data_collator=recording,
        processing_class=processor,
    )
    result = trainer.train()
    assert trainer.state.global_step == 3 and result.training_loss > 0
    train_names = [n for shard, count in shards.items() if shard.startswith("train") for n in names(shard, count)]
    assert sorted(seen) == sorted(train_names) and len(set(seen)) == 6  # every training clip, once
    assert shapes and all(s == {"pixel_values": (2, 2, 3, 32, 32), "audio_values": (2, 2, 3, 32, 32)} for s in shapes)

    seen.clear()
    metrics = trainer.evaluate()
    assert sorted(seen) == sorted(names("validation-00000-of-00001", 2))
    assert metrics["eval_loss"] > 0 and metrics["eval_loss_video"] > 0 and metrics["eval_loss_audio"] > 0


def names(shard: str, count: int) -> list[str]:
    return [f"{shard.split('-')[0]}_{shard.split('-')[1]}_{i}.mp4" for i in range(count)]


def test_pretrain_takes_the_face_crop_flag_into_its_processor(tmp_path):
    from mmder_hf.models.multimae_der import MultiMAEDERConfig
    from mmder_hf.training.arguments import parse_pretraining_args
    from mmder_hf.training.run import build_processor

    config = MultiMAEDERConfig(image_size=32, num_frames=4)
    argv = ["--output_dir", str(tmp_path), "--dataset_name", "videos", "--dataset_source", str(tmp_path)]
    model_args, data_args, _, _ = parse_pretraining_args([*argv, "--face_crop", "true", "--face_margin", "0.4"])
    processor = build_processor(model_args, data_args, config)
    assert processor.face_crop is True and processor.face_margin == 0.4
    model_args, data_args, _, _ = parse_pretraining_args(argv)
    assert build_processor(model_args, data_args, config).face_crop is False  # off unless asked


def test_a_folder_with_broken_files_keeps_going_and_names_them(tmp_path, caplog):
    import logging

    root = tmp_path / "videos"
    (root / "a").mkdir(parents=True)
    rng = np.random.default_rng(1)
    frames = rng.integers(0, 255, (12, 36, 48, 3), dtype=np.uint8)
    audio = (0.3 * np.sin(np.arange(8000) * 0.05)).astype(np.float32)[None]
    for i in range(3):
        write_clip(root / "a" / f"good{i}.mp4", frames, 12.0, audio, 16000)
    write_clip(root / "a" / "silent.mp4", frames, 12.0)  # no audio track
    (root / "a" / "broken.mp4").write_bytes(b"\x00\x00\x00\x18ftypmp42" + bytes(200))  # not a playable file
    args = DataArguments(dataset_name="videos", dataset_source=str(root))
    with caplog.at_level(logging.WARNING):
        data = load_pretraining_data(args, PretrainingArguments(validation_clips=0), training_args(tmp_path), "FSLF")
    kept = sorted(p.rsplit("/", 1)[-1] for p in data.splits["train"]["video"])
    assert kept == ["good0.mp4", "good1.mp4", "good2.mp4"]
    assert "2 unusable file(s) were skipped" in data.description and "no audio track: 1" in data.description
    warning = "\n".join(r.getMessage() for r in caplog.records)
    assert "a/silent.mp4" in warning and "a/broken.mp4" in warning
    # the video baseline reads no audio: the silent clip is usable there
    data = load_pretraining_data(args, PretrainingArguments(validation_clips=0), training_args(tmp_path), "video")
    assert len(data.splits["train"]) == 4
