"""Pre-training throughput: MultiMAEDERForPreTraining training steps and the data pipeline, in clips/s.

* Model: a full AdamW training step (forward with masks drawn by the model, backward, optimizer step) of the ViT-B
  masked autoencoder at 16 x 224 x 224 (FSLF, tube masks 0.9 video / 0.8 audio, VideoMAE's 4-layer decoder), and of
  the small CPU model; warm-up steps, then the median of timed steps. Reported per process and per CPU thread.
* Data: one process with one thread turning synthetic talking-face clips (128 x 72, 2 s, with audio) into the
  model's 16 x 224 x 224 inputs (decoding in a DataLoader worker does exactly this), and reading the same clips from
  the preprocess-once cache.

Prints one JSON object as its last stdout line. ``--quick``: fewer timed steps and clips. ``--device cuda`` times the
model steps on a GPU (bf16 autocast) instead.
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import tempfile
import time

import torch


sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from common import emit  # noqa: E402


def _model(size: str, device: str):
    from mmder_hf import MultiMAEDERConfig, MultiMAEDERForPreTraining
    from mmder_hf.training import MODEL_SIZES
    from mmder_hf.training.recipes import DECODER_SIZES

    config = MultiMAEDERConfig(fusion_strategy="FSLF", **MODEL_SIZES[size], **DECODER_SIZES[size])
    return MultiMAEDERForPreTraining(config).to(device).train()


def time_training_steps(size: str, batch: int, steps: int, warmup: int, device: str) -> dict:
    """Median seconds of a full training step, and clips/s."""
    model = _model(size, device)
    config = model.config
    optimizer = torch.optim.AdamW(model.parameters(), lr=1e-4, betas=(0.9, 0.95), weight_decay=0.05)
    shape = (batch, config.num_frames // 2, 3, config.image_size, config.image_size)
    g = torch.Generator().manual_seed(0)
    inputs = {"pixel_values": torch.randn(shape, generator=g), "audio_values": torch.randn(shape, generator=g)}
    inputs = {k: v.to(device) for k, v in inputs.items()}
    if device == "cuda":
        autocast = torch.autocast("cuda", dtype=torch.bfloat16)
    else:
        autocast = torch.autocast("cpu", enabled=False)

    def step():
        with autocast:
            loss = model(**inputs).loss
        loss.backward()
        optimizer.step()
        optimizer.zero_grad(set_to_none=True)
        if device == "cuda":
            torch.cuda.synchronize()

    for _ in range(warmup):
        step()
    samples = []
    for _ in range(steps):
        start = time.perf_counter()
        step()
        samples.append(time.perf_counter() - start)
    median = statistics.median(samples)
    threads = torch.get_num_threads()
    return {
        "model_size": size,
        "frames_x_pixels": f"{config.num_frames}x{config.image_size}x{config.image_size}",
        "batch": batch,
        "device": device,
        "torch_threads": threads,
        "step_median_s": round(median, 4),
        "step_samples_s": [round(s, 4) for s in samples],
        "clips_per_s": round(batch / median, 3),
        "clips_per_s_per_thread": round(batch / median / threads, 4) if device == "cpu" else None,
    }


def time_data_pipeline(clips: int) -> dict:
    """Clips/s of one single-threaded process: decoding + MFCC pictures + resizing, and cache reads."""
    from mmder_hf import MultiMAEDERDataCollator, MultiMAEDERProcessor, load_emotion_dataset, preprocess_to_cache
    from mmder_hf.data import make_synthetic_corpus

    torch.set_num_threads(1)
    with tempfile.TemporaryDirectory() as tmp:
        actors = max(5, -(-clips // 16) + 4)  # fold 1 trains on actors 7.. (at least `clips` clips)
        corpus = make_synthetic_corpus(os.path.join(tmp, "corpus"), num_actors=actors + 2, clips_per_actor=16)
        train = load_emotion_dataset("ravdess", source=corpus, fold=1, cache_dir=os.path.join(tmp, "hf"))["train"]
        train = train.select(range(min(clips, len(train))))
        processor = MultiMAEDERProcessor(fusion_strategy="FSLF", num_frames=16, image_size=224)
        collator = MultiMAEDERDataCollator(processor, label_column=None)
        rows = list(train)
        collator(rows[:2])  # warm-up
        start = time.perf_counter()
        for i in range(0, len(rows), 4):
            collator(rows[i : i + 4])
        decode_rate = len(rows) / (time.perf_counter() - start)
        cached = preprocess_to_cache(
            {"train": train}, processor, os.path.join(tmp, "cache"), label_column=None, keep_columns=()
        )["train"]
        start = time.perf_counter()
        for i in range(0, len(cached), 4):
            collator([cached[j] for j in range(i, min(i + 4, len(cached)))])
        cache_rate = len(cached) / (time.perf_counter() - start)
    return {
        "clips": len(rows),
        "source_clip": "synthetic 128x72, 2 s, 15 fps, 16 kHz mono AAC",
        "decode_clips_per_s_one_core": round(decode_rate, 2),
        "cache_read_clips_per_s_one_core": round(cache_rate, 1),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--quick", action="store_true", help="fewer timed steps and clips")
    parser.add_argument("--device", default="cpu", choices=["cpu", "cuda"])
    parser.add_argument("--skip_base", action="store_true", help="only the small model")
    args = parser.parse_args()
    steps = 3 if args.quick else 7
    result = {"benchmark": "pretrain", "model": {}}
    if not args.skip_base:
        batch = 2 if args.device == "cpu" else 16
        result["model"]["base"] = time_training_steps("base", batch, steps, warmup=1, device=args.device)
    result["model"]["small"] = time_training_steps("small", 16, steps * 3, warmup=2, device=args.device)
    result["data"] = time_data_pipeline(16 if args.quick else 48)
    emit(result)


if __name__ == "__main__":
    main()
