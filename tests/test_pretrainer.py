"""The pre-training `Trainer` in one process: the per-modality losses it logs and reports are the means of what the
model returned (recorded here by a forward hook, weighted by hand), and a rank's own shard is read once per epoch in
a fresh order. The same trainer under two gloo processes: tests/test_pretraining_run.py (slow)."""

import math

import pytest
import torch
from transformers import TrainingArguments

from mmder_hf.models.multimae_der import MultiMAEDERConfig, MultiMAEDERForPreTraining
from mmder_hf.training import MODEL_SIZES, MultiMAEDERPreTrainer
from mmder_hf.training.recipes import DECODER_SIZES


class Clips(torch.utils.data.Dataset):
    """``count`` random fused-clip inputs, each with its index (``clip``) so that a test can tell them apart."""

    def __init__(self, config: MultiMAEDERConfig, count: int, seed: int = 0):
        generator = torch.Generator().manual_seed(seed)
        size = (3, config.image_size, config.image_size)
        self.rows = [
            {
                "pixel_values": torch.rand((config.num_video_frames, *size), generator=generator),
                "audio_values": torch.rand((config.num_audio_frames, *size), generator=generator),
            }
            for _ in range(count)
        ]

    def __len__(self):
        return len(self.rows)

    def __getitem__(self, index):
        return self.rows[index]


def collate(rows):
    return {key: torch.stack([row[key] for row in rows]) for key in rows[0]}


@pytest.fixture
def model():
    torch.manual_seed(0)
    config = MultiMAEDERConfig(**MODEL_SIZES["tiny"], **DECODER_SIZES["tiny"], fusion_strategy="FSLF")
    return MultiMAEDERForPreTraining(config)


def recorder(model):
    """Every forward's (batch size, loss_video, loss_audio, training?), as the model returned them."""
    seen = []

    def hook(module, args, kwargs, output):
        batch = kwargs["pixel_values"].shape[0]
        seen.append((batch, float(output.loss_video.detach()), float(output.loss_audio.detach()), module.training))

    model.register_forward_hook(hook, with_kwargs=True)
    return seen


def arguments(tmp_path, **kwargs):
    return TrainingArguments(
        output_dir=str(tmp_path),
        report_to="none",
        use_cpu=True,
        remove_unused_columns=False,
        disable_tqdm=True,
        save_strategy="no",
        **kwargs,
    )


def test_held_out_losses_per_modality_are_clip_weighted_means(model, tmp_path):
    seen = recorder(model)
    args = arguments(tmp_path, per_device_eval_batch_size=2)
    trainer = MultiMAEDERPreTrainer(model=model, args=args, data_collator=collate)
    metrics = trainer.evaluate(Clips(model.config, 5), metric_key_prefix="init")  # batches of 2, 2 and 1 clips
    assert [batch for batch, *_ in seen] == [2, 2, 1]
    for position, name in ((1, "loss_video"), (2, "loss_audio")):
        expected = sum(row[0] * row[position] for row in seen) / 5
        plain = sum(row[position] for row in seen) / 3  # what an unweighted mean of the batches would say
        assert metrics[f"init_{name}"] == pytest.approx(expected, rel=1e-9)
        assert abs(expected - plain) > 1e-6  # the weighting is visible in this data
    assert not any(f"eval_{name}" in metrics for name in ("loss_video", "loss_audio"))
    seen.clear()
    again = trainer.evaluate(Clips(model.config, 3))  # the default prefix; sums restart at every evaluation
    assert [batch for batch, *_ in seen] == [2, 1]
    assert again["eval_loss_video"] == pytest.approx(sum(r[0] * r[1] for r in seen) / 3, rel=1e-9)


def test_training_logs_hold_the_mean_modality_losses_since_the_last_log(model, tmp_path):
    seen = recorder(model)
    args = arguments(
        tmp_path,
        per_device_train_batch_size=2,
        max_steps=4,
        logging_steps=2,
        learning_rate=1e-3,
        lr_scheduler_type="constant",
    )
    trainer = MultiMAEDERPreTrainer(
        model=model, args=args, train_dataset=Clips(model.config, 8), data_collator=collate
    )
    trainer.train()
    steps = [row for row in seen if row[3]]
    assert len(steps) == 4
    logs = [entry for entry in trainer.state.log_history if "loss" in entry]
    assert [entry["step"] for entry in logs] == [2, 4]
    for entry, pair in zip(logs, (steps[:2], steps[2:])):
        assert entry["loss_video"] == pytest.approx((pair[0][1] + pair[1][1]) / 2, rel=1e-6)
        assert entry["loss_audio"] == pytest.approx((pair[0][2] + pair[1][2]) / 2, rel=1e-6)


def test_a_rank_shard_is_read_once_per_epoch_in_a_fresh_order(model, tmp_path):
    clips = Clips(model.config, 7)
    args = arguments(tmp_path, per_device_train_batch_size=3, seed=5)
    trainer = MultiMAEDERPreTrainer(
        model=model, args=args, train_dataset=clips, data_collator=collate, rank_sharded_total=len(clips)
    )
    loader = trainer.get_train_dataloader()
    assert len(loader) == math.ceil(7 / 3)
    fingerprints = [float(row["pixel_values"].sum()) for row in clips.rows]
    orders = []
    for epoch in range(2):
        loader.set_epoch(epoch)
        sizes, order = [], []
        for batch in loader:
            sizes.append(batch["pixel_values"].shape[0])
            order += [fingerprints.index(float(clip.sum())) for clip in batch["pixel_values"]]
        assert sizes == [3, 3, 1]  # the last batch is short, not completed from the start
        assert sorted(order) == list(range(7)), order  # every clip once
        orders.append(order)
    assert orders[0] != orders[1]
    # the order is the sampler's own: a seeded permutation per epoch
    for epoch, order in enumerate(orders):
        generator = torch.Generator().manual_seed(5 * 100_003 + epoch)
        assert order == torch.randperm(7, generator=generator).tolist()
