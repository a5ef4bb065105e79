"""The frozen-backbone fast path: the encoder runs once per clip and the head trains on the cached features.

With a frozen encoder (:meth:`~mmder_hf.MultiMAEDERForVideoClassification.freeze_backbone`) and no augmentation,
every epoch would compute the same encoder features. :func:`compute_pooled_features` computes them once; the
`Trainer` then feeds them to the model as ``features=`` (its ``forward`` skips the encoder and runs only the head,
the same code as the full forward), so it still saves, checkpoints, resumes and pushes the full model.
"""

from __future__ import annotations

from typing import Callable, Optional

import torch
from accelerate import PartialState
from accelerate.utils import gather_object
from torch import nn

from .arguments import RecipeArguments


def can_cache_features(model: nn.Module, recipe_args: RecipeArguments) -> bool:
    """Whether the head can train on cached encoder features with exactly the plain loop's result.

    Needs a frozen encoder (``freeze_backbone()``: eval mode, so no dropout or drop path), inputs that are
    never augmented, a deterministic fusion (RFAS draws permutations per batch position, so its features
    depend on how clips are batched), and no LoRA adapters (``--lora_r``: they change the encoder as it trains).
    """
    return (
        recipe_args.use_feature_cache
        and not recipe_args.uses_lora
        and not any(p.requires_grad for p in model.videomae.parameters())
        and not recipe_args.augments
        and model.config.fusion_strategy != "RFAS"
    )


def compute_pooled_features(
    model: nn.Module,
    dataset,
    data_collator: Callable,
    batch_size: int = 32,
    num_workers: int = 0,
    device: Optional[torch.device] = None,
    desc: str = "encoder features",
):
    """Run the encoder once over ``dataset`` and return a `datasets.Dataset` with ``features`` and ``labels``.

    ``features`` are :meth:`MultiMAEDERForVideoClassification.pooled_features` (mean-pooled tokens before
    ``fc_norm``), in float32, in the dataset's order. In a multi-process run (accelerate's ``PartialState``, as the
    `Trainer` sets it up) each process encodes every ``num_processes``-th clip and the pieces are gathered
    (``accelerate.utils.gather_object``), so each clip is encoded once in all.
    """
    import datasets
    from torch.utils.data import DataLoader, Subset
    from tqdm.auto import tqdm

    device = device or next(model.parameters()).device
    state = PartialState()
    rank, world_size = state.process_index, state.num_processes
    indices = None
    if world_size > 1 and hasattr(dataset, "__len__"):
        indices = list(range(rank, len(dataset), world_size))
        dataset = Subset(dataset, indices)
    loader = DataLoader(
        dataset, batch_size=batch_size, shuffle=False, collate_fn=data_collator, num_workers=num_workers
    )
    was_training = model.training
    model.eval()
    features, labels = [], []
    with torch.inference_mode():
        for batch in tqdm(loader, desc=desc, disable=None if rank == 0 else True):  # a bar on a terminal only
            labels.append(torch.as_tensor(batch["labels"]).cpu())
            inputs = {k: batch[k].to(device) for k in ("pixel_values", "audio_values") if batch.get(k) is not None}
            features.append(model.pooled_features(**inputs).float().cpu())
    model.train(was_training)
    features = torch.cat(features) if features else torch.empty(0, model.config.hidden_size)
    labels = torch.cat(labels) if labels else torch.empty(0, dtype=torch.long)
    if indices is not None:
        gathered = gather_object([(indices, features, labels)])  # one (indices, features, labels) per process
        order = torch.tensor([i for part in gathered for i in part[0]])
        features = torch.cat([part[1] for part in gathered])[order.argsort()]
        labels = torch.cat([part[2] for part in gathered])[order.argsort()]
    return datasets.Dataset.from_dict({"features": features.numpy(), "labels": labels.numpy()}).with_format("torch")


__all__ = ["can_cache_features", "compute_pooled_features"]
