"""Pictures of a pre-training run, for people to look at: the reconstructions of held-out clips (input / masked /
reconstructed, face and audio frames labelled) after every evaluation, and the loss curves."""

from __future__ import annotations

import os
from typing import Any, Optional

import datasets
import torch
from transformers import TrainerCallback

from ..data import MultiMAEDERDataCollator
from ..data.distributed import ExampleSplitStream
from ..models.multimae_der import MultiMAEDERConfig, MultiMAEDERForPreTraining
from ..models.multimae_der.modeling_multimae_der import patchify, unpatchify


# --------------------------------------------------------------------------------------------------- pictures
def _denormalise(clip: torch.Tensor, config: MultiMAEDERConfig) -> torch.Tensor:
    mean = torch.tensor(config.pixel_mean, dtype=clip.dtype).view(1, 1, -1, 1, 1)
    std = torch.tensor(config.pixel_deviation, dtype=clip.dtype).view(1, 1, -1, 1, 1)
    return (clip * std + mean).clamp(0, 1)


@torch.no_grad()
def reconstruct(model: MultiMAEDERForPreTraining, batch: dict) -> dict[str, torch.Tensor]:
    """``input``, ``masked`` (masked patches grey) and ``reconstruction`` (visible patches as given, masked ones as
    predicted) of the fused clips in ``batch``, as ``(batch, frames, 3, H, W)`` images in [0, 1], and the frames'
    modality codes. Predictions in normalised-patch space get each true patch's mean and spread back, as MAE's
    pictures do; a frame-difference target is added back to the tubelet's first frame."""
    was_training = model.training
    model.eval()
    config = model.config
    inputs = {k: v.to(model.device) for k, v in batch.items() if k in ("pixel_values", "audio_values")}
    out = model(**inputs)
    clip, codes = model.fuse(inputs.get("pixel_values"), inputs.get("audio_values"))
    model.train(was_training)
    clip, mask = clip.float().cpu(), out.bool_masked_pos.cpu()
    pixels = _denormalise(clip, config)
    patches = patchify(pixels, config.tubelet_size, config.patch_size)  # (B, N, ts*p*p, C)
    b, n, d, c = patches.shape
    predicted = out.logits.float().cpu().reshape(b, -1, d, c)
    if config.pretraining_target == "frame_difference":
        frames = predicted.reshape(b, predicted.shape[1], config.tubelet_size, -1, c)
        frames = torch.cat((frames[:, :, :1], frames[:, :, 1:] + frames[:, :, :1]), dim=2)
        predicted = frames.reshape(b, -1, d, c)
    if config.norm_pix_loss:
        true = patches[mask].reshape(b, -1, d, c)
        spread = true.var(dim=-2, unbiased=True, keepdim=True).sqrt() + 1e-6
        predicted = predicted * spread + true.mean(dim=-2, keepdim=True)
    full = patches.clone()
    full[mask] = predicted.reshape(-1, d, c)
    grey = patches.clone()
    grey[mask] = 0.5
    return {
        "input": pixels,
        "masked": unpatchify(grey.reshape(b, n, -1), config),
        "reconstruction": unpatchify(full.reshape(b, n, -1), config).clamp(0, 1),
        "modalities": codes.cpu(),
    }


def save_reconstruction_picture(model: MultiMAEDERForPreTraining, batch: dict, path: str, title: str = "") -> str:
    """A PNG a person can look at: for each clip, its fused frames as input / masked / reconstructed rows, every
    column labelled with what the frame shows (face frame, audio image, or both), so the video and the audio parts
    of the reconstruction can be judged apart."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    images = reconstruct(model, batch)
    clips, frames = images["input"].shape[:2]
    names = {0: "face", 1: "audio", 2: "mixed"}
    figure, axes = plt.subplots(3 * clips, frames, figsize=(1.3 * frames, 1.4 * 3 * clips), squeeze=False)
    for i in range(clips):
        for r, row in enumerate(("input", "masked", "reconstruction")):
            for f in range(frames):
                ax = axes[3 * i + r, f]
                ax.imshow(images[row][i, f].permute(1, 2, 0).numpy())
                ax.set_xticks([]), ax.set_yticks([])
                if r == 0:
                    ax.set_title(f"{names[int(images['modalities'][i, f])]} {f}", fontsize=7)
                if f == 0:
                    ax.set_ylabel(f"clip {i + 1}\n{row}", fontsize=7)
    figure.suptitle(title or "input / masked / reconstruction", fontsize=9)
    figure.tight_layout()
    os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)
    figure.savefig(path, dpi=100)
    plt.close(figure)
    return path


class ReconstructionPictureCallback(TrainerCallback):
    """After every evaluation, the main process draws the same held-out clips (:func:`save_reconstruction_picture`)
    into ``<output_dir>/reconstructions/step-<N>.png`` and ``<output_dir>/reconstructions.png`` (the latest)."""

    def __init__(self, batch: dict):
        self.batch = batch

    def on_evaluate(self, args, state, control, model=None, metrics=None, **kwargs):
        if not state.is_world_process_zero or model is None:
            return
        model = getattr(model, "module", model)
        loss = (metrics or {}).get("eval_loss")
        title = f"step {state.global_step}" + (f", held-out loss {loss:.3f}" if loss is not None else "")
        path = os.path.join(args.output_dir, "reconstructions", f"step-{state.global_step}.png")
        save_reconstruction_picture(model, self.batch, path, title)
        save_reconstruction_picture(model, self.batch, os.path.join(args.output_dir, "reconstructions.png"), title)


def save_loss_curve(log_history: list[dict], path: str, initial_eval_loss: Optional[float] = None) -> Optional[str]:
    """``loss_curve.png``: the training loss (and its face / audio parts) and the held-out loss against steps."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    series = {k: [] for k in ("loss", "loss_video", "loss_audio", "eval_loss")}
    for entry in log_history:
        for key in series:
            if key in entry:
                series[key].append((entry["step"], entry[key]))
    if initial_eval_loss is not None:
        series["eval_loss"].insert(0, (0, initial_eval_loss))
    if not any(series.values()):
        return None
    figure, ax = plt.subplots(figsize=(6, 3.5))
    labels = {"loss": "training", "loss_video": "training, face pixels", "loss_audio": "training, audio pixels"}
    labels["eval_loss"] = "held-out clips"
    for key, points in series.items():
        if points:
            style = "o-" if key == "eval_loss" else "-"
            ax.plot(*zip(*points), style, label=labels[key], linewidth=1.5 if key in ("loss", "eval_loss") else 0.8)
    ax.set_xlabel("step")
    ax.set_ylabel("reconstruction loss (MSE)")
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8)
    figure.tight_layout()
    figure.savefig(path, dpi=100)
    plt.close(figure)
    return path


def first_batch(dataset: Any, collator: MultiMAEDERDataCollator, count: int) -> Optional[dict]:
    """The first ``count`` clips of ``dataset``, collated (the clips of the reconstruction pictures)."""
    if dataset is None or count <= 0:
        return None
    rows = (
        list(dataset.take(count))
        if isinstance(dataset, (datasets.IterableDataset, ExampleSplitStream))
        else list(dataset.select(range(min(count, len(dataset)))))
    )
    return collator(rows) if rows else None


__all__ = [
    "ReconstructionPictureCallback",
    "first_batch",
    "reconstruct",
    "save_loss_curve",
    "save_reconstruction_picture",
]
