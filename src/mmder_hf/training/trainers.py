"""The two `Trainer` subclasses, with one model-card hook: :class:`MultiMAEDERTrainer` (fine-tuning, with what a
recipe asks of it: layer-wise lr decay, drop path, mixup, flips) and :class:`MultiMAEDERPreTrainer` (the masked
autoencoder: the loss per modality, each rank reading its own shard)."""

from __future__ import annotations

import logging
import math
import os
from functools import partial
from typing import Any, Callable, Optional, Sequence

import numpy as np
import torch
import torch.nn.functional as F
from accelerate.data_loader import prepare_data_loader
from torch import nn
from torch.utils.data import DataLoader
from transformers import PrinterCallback, ProgressCallback, Trainer
from transformers.trainer_utils import seed_worker

from ..data.distributed import RankShardBatchSampler
from .arguments import RecipeArguments
from .lora import is_lora_model, save_merged_and_adapter


logger = logging.getLogger(__name__)


def layer_id(name: str, num_layers: int) -> int:
    """Depth of parameter ``name`` for layer-wise lr decay: embeddings 0, encoder layer i -> i + 1, head L + 1."""
    if ".embeddings." in f".{name}":
        return 0
    marker = "encoder.layer."
    if marker in name:
        return int(name.split(marker, 1)[1].split(".", 1)[0]) + 1
    return num_layers + 1


def layer_decay_parameter_groups(
    model: nn.Module, learning_rate: float, weight_decay: float, layer_decay: float, decay_parameters: Sequence[str]
) -> list[dict]:
    """AdamW parameter groups with layer-wise lr decay (BEiT / MAE-DFER style) and the usual no-decay split.

    Group ``(depth, decay)`` gets ``lr = learning_rate * layer_decay ** (L + 1 - depth)``; biases and norms get no
    weight decay (``decay_parameters`` lists those that do, as `Trainer.get_decay_parameter_names` returns them).
    """
    num_layers = model.config.num_hidden_layers
    decay_parameters = set(decay_parameters)
    groups: dict[tuple[int, bool], dict] = {}
    for name, param in model.named_parameters():
        if not param.requires_grad:
            continue
        depth = layer_id(name, num_layers)
        decays = name in decay_parameters
        key = (depth, decays)
        if key not in groups:
            groups[key] = {
                "params": [],
                "names": [],
                "weight_decay": weight_decay if decays else 0.0,
                "lr": learning_rate * layer_decay ** (num_layers + 1 - depth),
            }
        groups[key]["params"].append(param)
        groups[key]["names"].append(name)
    return [groups[key] for key in sorted(groups)]


def _drop_path(x: torch.Tensor, rate: float) -> torch.Tensor:
    keep = 1.0 - rate
    mask = x.new_empty((x.shape[0],) + (1,) * (x.ndim - 1)).bernoulli_(keep)
    return x * mask / keep


def add_drop_path(model: nn.Module, drop_path_rate: float) -> list:
    """Add stochastic depth to every encoder layer (rate growing linearly to ``drop_path_rate``), with hooks.

    transformers' VideoMAE has no drop path; the hooks drop the attention branch and the MLP branch of each
    residual block per sample while the module is training, as timm's ``DropPath`` does. Returns the handles.
    """
    handles = []
    if drop_path_rate <= 0:
        return handles
    layers = model.videomae.encoder.layer
    rates = np.linspace(0, drop_path_rate, len(layers)).tolist()
    for layer, rate in zip(layers, rates):
        if rate <= 0:
            continue

        def attention_hook(module, args, output, rate=rate):
            return _drop_path(output, rate) if module.training else output

        def mlp_hook(module, args, output, rate=rate):
            # VideoMAEOutput adds its residual (args[1]) itself: drop only the branch.
            if not module.training:
                return output
            residual = args[1]
            return residual + _drop_path(output - residual, rate)

        handles.append(layer.attention.register_forward_hook(attention_hook))
        handles.append(layer.output.register_forward_hook(mlp_hook))
    return handles


class SoftTargetCrossEntropy:
    """Cross-entropy against hard (class index) or soft (``(batch, num_labels)`` probability) labels, for
    `Trainer`'s ``compute_loss_func``: summed over the batch and divided by ``num_items_in_batch`` when the `Trainer`
    gives it (training), else averaged. Label smoothing mixes each target with the uniform distribution.

    Cross-entropy is linear in the target, so mixup's ``lam * CE(y_a) + (1 - lam) * CE(y_b)`` equals this loss on
    the soft label ``lam * onehot(y_a) + (1 - lam) * onehot(y_b)``.
    """

    def __init__(self, label_smoothing: float = 0.0):
        self.label_smoothing = float(label_smoothing)

    def __call__(self, outputs, labels: torch.Tensor, num_items_in_batch=None) -> torch.Tensor:
        logits = (outputs["logits"] if isinstance(outputs, dict) else outputs[0]).float()
        if not labels.is_floating_point():
            labels = F.one_hot(labels, logits.shape[-1]).float()
        if self.label_smoothing > 0:
            labels = (1 - self.label_smoothing) * labels + self.label_smoothing / logits.shape[-1]
        loss = -(labels.to(logits.device) * logits.log_softmax(-1)).sum()
        if num_items_in_batch is None:
            return loss / logits.shape[0]
        return loss / num_items_in_batch


class CardHookMixin:
    """The model-card hook of both trainers: ``card_writer`` (called with the output folder) replaces `Trainer`'s own
    card writer, which ``push_to_hub`` calls before uploading, so that the pushed README is this project's card."""

    def __init__(self, *args, card_writer: Optional[Callable[[str], Any]] = None, **kwargs):
        self.card_writer = card_writer
        super().__init__(*args, **kwargs)

    def create_model_card(self, **kwargs):
        if self.card_writer is None:
            return super().create_model_card(**kwargs)
        if self.is_world_process_zero():
            self.card_writer(self.args.output_dir)


def _loss(values: dict, prefix: str) -> Optional[str]:
    if f"{prefix}loss" not in values:
        return None
    parts = [f"{m} {values[f'{prefix}loss_{m}']:.4g}" for m in ("video", "audio") if f"{prefix}loss_{m}" in values]
    return f"loss {values[f'{prefix}loss']:.4g}" + (f" ({', '.join(parts)})" if parts else "")


def summarize_metrics(split: str, metrics: dict) -> str:
    """``test: WAR 0.812, UAR 0.800, loss 0.52``: the figures of a split a reader looks for first."""
    short = {k.removeprefix(f"{split}_"): v for k, v in metrics.items()}
    said = [f"{name.upper()} {short[name]:.3f}" for name in ("war", "uar") if name in short]
    said += [loss] if (loss := _loss(short, "")) else []
    if "samples" in short:
        said.append(f"{short['samples']} clips")
    if split == "train" and isinstance(short.get("runtime"), (int, float)):
        said.append(f"{short['runtime']:.1f} s")
    return f"{split}: {', '.join(said)}"


def summarize_progress(state: Any, logs: dict) -> str:
    """``epoch 3/15 (step 54/270): loss 0.926; eval WAR 1.000, UAR 1.000, loss 0.712`` from the latest logs."""
    epoch = (
        f"epoch {round(state.epoch or 0, 2):g}/{state.num_train_epochs:g} (step {state.global_step}/{state.max_steps})"
    )
    said = [loss] if (loss := _loss(logs, "")) else []
    evaluated = [f"{name.upper()} {logs[f'eval_{name}']:.3f}" for name in ("war", "uar") if f"eval_{name}" in logs]
    evaluated += [loss] if (loss := _loss(logs, "eval_")) else []
    said += [f"eval {', '.join(evaluated)}"] if evaluated else []
    return f"{epoch}: {'; '.join(said)}"


class ProgressLines(ProgressCallback):
    """A line of the latest losses and metrics at most about ``lines`` times a training run, instead of the
    `Trainer`'s dict of every log (printed at every logging step, or written under the bar); with ``bars``, the
    progress bars too. Every log stays in ``trainer_state.json`` (``log_history``) and goes to ``--report_to``."""

    def __init__(self, bars: bool, lines: int = 5):
        super().__init__()
        self.bars, self.lines = bars, lines
        self.training, self.latest, self.last_said = False, {}, None

    def on_train_begin(self, args, state, control, **kwargs):
        self.training, self.latest, self.last_said = True, {}, None
        if self.bars:
            super().on_train_begin(args, state, control, **kwargs)

    def on_step_end(self, args, state, control, **kwargs):
        if self.bars:
            super().on_step_end(args, state, control, **kwargs)

    def on_prediction_step(self, args, state, control, eval_dataloader=None, **kwargs):
        if self.bars:
            super().on_prediction_step(args, state, control, eval_dataloader=eval_dataloader, **kwargs)

    def on_evaluate(self, args, state, control, **kwargs):
        if self.bars:
            super().on_evaluate(args, state, control, **kwargs)

    def on_predict(self, args, state, control, **kwargs):
        if self.bars:
            super().on_predict(args, state, control, **kwargs)

    def on_train_end(self, args, state, control, **kwargs):
        self.training = False
        if self.bars:
            super().on_train_end(args, state, control, **kwargs)

    def on_log(self, args, state, control, logs=None, **kwargs):
        # during training only (the metrics of a whole split are said by log_metrics), never the closing summary
        if not (self.training and state.is_world_process_zero and logs) or "train_runtime" in logs:
            return
        self.latest.update({k: v for k, v in logs.items() if isinstance(v, (int, float))})
        if control.should_evaluate and not any(k.startswith("eval_") for k in logs):
            return  # the training loss of a step whose evaluation comes next: one line for both
        every = max(1, math.ceil(state.max_steps / self.lines))
        if self.last_said is None or state.global_step >= min(self.last_said + every, state.max_steps):
            line = summarize_progress(state, self.latest)
            if self.training_bar is not None:
                from tqdm.contrib.logging import logging_redirect_tqdm

                with logging_redirect_tqdm():  # above the bar, not through it
                    logger.info(line)
            else:
                logger.info(line)
            self.last_said = state.global_step
        self.latest = {}


class ReadableLogsMixin:
    """What both trainers print: :class:`ProgressLines` instead of the `Trainer`'s dict of every log, and one line
    per split (:func:`summarize_metrics`) instead of its table of every metric, which ``{split}_results.json``
    holds (the table is still printed at ``--log_level debug``)."""

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        printer, bar = self.pop_callback(PrinterCallback), self.pop_callback(ProgressCallback)
        if printer is not None or bar is not None:
            self.add_callback(ProgressLines(bars=bar is not None))

    def log_metrics(self, split: str, metrics: dict) -> None:
        if logger.isEnabledFor(logging.DEBUG):
            return super().log_metrics(split, metrics)
        if self.is_world_process_zero():
            saved = os.path.join(self.args.output_dir, f"{split}_results.json")
            logger.info("%s (every metric: %s)", summarize_metrics(split, metrics), saved)


class MultiMAEDERTrainer(CardHookMixin, ReadableLogsMixin, Trainer):
    """`Trainer` with layer-wise lr decay, mixup and face flips, and a model-card hook.

    Mixup gives soft labels, so the loss is then :class:`SoftTargetCrossEntropy` (as `Trainer`'s
    ``compute_loss_func``: the `Trainer` keeps its own normalisation across batches, accumulation and devices).

    Args:
        recipe_args (:class:`RecipeArguments`, *optional*): ``layer_decay``, ``mixup_alpha`` and ``flip`` are used.
        card_writer (`Callable[[str], Any]`, *optional*): writes the model card (:class:`CardHookMixin`).
        All other arguments are `Trainer`'s.
    """

    def __init__(self, *args, recipe_args: Optional[RecipeArguments] = None, **kwargs):
        self.recipe_args = recipe_args or RecipeArguments()
        super().__init__(*args, **kwargs)
        if self.recipe_args.mixup_alpha > 0 and self.compute_loss_func is None:
            # Mixed clips have soft labels; Trainer's label smoother takes class indices only.
            self.compute_loss_func = SoftTargetCrossEntropy(self.args.label_smoothing_factor)

    def create_optimizer(self, model=None):
        if self.optimizer is None and self.recipe_args.layer_decay != 1.0:
            opt_model = self.model if model is None else model
            optimizer_cls, optimizer_kwargs = self.get_optimizer_cls_and_kwargs(self.args, opt_model)
            optimizer_kwargs.pop("lr", None)
            groups = layer_decay_parameter_groups(
                opt_model,
                self.args.learning_rate,
                self.args.weight_decay,
                self.recipe_args.layer_decay,
                self.get_decay_parameter_names(opt_model),
            )
            for group in groups:
                group.pop("names")
            self.optimizer = optimizer_cls(groups, **optimizer_kwargs)
            return self.optimizer
        return super().create_optimizer(model)

    def save_model(self, output_dir: Optional[str] = None, _internal_call: bool = False) -> None:
        """As `Trainer.save_model`; a LoRA run's final save (to ``--output_dir``, not a checkpoint) writes the merged
        model there and the adapter in ``adapter/`` (:func:`~mmder_hf.training.lora.save_merged_and_adapter`)."""
        target = output_dir or self.args.output_dir
        if not is_lora_model(self.model) or os.path.abspath(target) != os.path.abspath(self.args.output_dir):
            return super().save_model(output_dir, _internal_call)
        if self.args.should_save:
            save_merged_and_adapter(self.model, target)
            if self.processing_class is not None:
                self.processing_class.save_pretrained(target)
        if self.args.push_to_hub and not _internal_call:
            self.push_to_hub(commit_message="Model save", revision=self.args.hub_revision)

    def _augment(self, inputs: dict) -> dict:
        """Random face flips, and mixup of the clips with soft labels (the mixture of the two one-hot targets)."""
        inputs = dict(inputs)
        if self.recipe_args.flip and inputs.get("pixel_values") is not None:
            video = inputs["pixel_values"]
            flip = torch.rand(video.shape[0], device=video.device) < 0.5
            inputs["pixel_values"] = torch.where(flip.view(-1, 1, 1, 1, 1), video.flip(-1), video)
        if self.recipe_args.mixup_alpha > 0:
            labels = inputs["labels"]
            lam = float(np.random.beta(self.recipe_args.mixup_alpha, self.recipe_args.mixup_alpha))
            perm = torch.randperm(labels.shape[0], device=labels.device)
            for key in ("pixel_values", "audio_values"):
                if inputs.get(key) is not None:
                    inputs[key] = lam * inputs[key] + (1 - lam) * inputs[key][perm]
            one_hot = F.one_hot(labels, self.model.config.num_labels).float()
            inputs["labels"] = lam * one_hot + (1 - lam) * one_hot[perm]
        return inputs

    def compute_loss(self, model, inputs, return_outputs=False, num_items_in_batch=None):
        if model.training and self.recipe_args.augments and "labels" in inputs:
            inputs = self._augment(inputs)
        return super().compute_loss(
            model, inputs, return_outputs=return_outputs, num_items_in_batch=num_items_in_batch
        )


# ---------------------------------------------------------------------------------------------------- trainer
class MultiMAEDERPreTrainer(CardHookMixin, ReadableLogsMixin, Trainer):
    """`Trainer` for `MultiMAEDERForPreTraining`: logs ``loss_video`` / ``loss_audio`` beside the loss (training
    logs and ``eval_*`` metrics), reads each rank's own shard when ``rank_sharded_total`` is given, and writes this
    project's model card (``card_writer``) before pushes."""

    def __init__(self, *args, rank_sharded_total: Optional[int] = None, **kwargs):
        self.rank_sharded_total = rank_sharded_total
        self._modality_sums = {"train": {}, "eval": {}}
        super().__init__(*args, **kwargs)

    def _record(self, phase: str, outputs: Any, weight: int) -> None:
        sums = self._modality_sums[phase]
        for name in ("loss_video", "loss_audio"):
            value = outputs.get(name)
            if value is not None:
                total, count = sums.get(name, (0.0, 0))
                sums[name] = (total + float(value.detach()) * weight, count + weight)

    def compute_loss(self, model, inputs, return_outputs=False, num_items_in_batch=None):
        outputs = model(**inputs)
        if model.training:
            self._record("train", outputs, 1)
        return (outputs["loss"], outputs) if return_outputs else outputs["loss"]

    def prediction_step(self, model, inputs, prediction_loss_only, ignore_keys=None):
        inputs = self._prepare_inputs(inputs)
        with torch.no_grad():
            outputs = model(**inputs)
        batch = next(v for v in inputs.values() if isinstance(v, torch.Tensor)).shape[0]
        self._record("eval", outputs, batch)
        return outputs["loss"].detach(), None, None

    def _mean_across_ranks(self, sums: dict) -> dict:
        means = {}
        for name, (total, count) in sorted(sums.items()):
            pair = torch.tensor([total, float(count)], device=self.args.device, dtype=torch.float64)
            pair = self.accelerator.reduce(pair, reduction="sum")  # itself in a single process
            if pair[1] > 0:
                means[name] = float(pair[0] / pair[1])
        sums.clear()
        return means

    def evaluate(self, *args, **kwargs):
        """The `Trainer`'s evaluation, on a fork of the random state, so that it leaves the training stream (masks,
        shuffles) untouched: iterating a DataLoader draws from the global generator. The `Trainer` saves a
        checkpoint's random state before the end-of-epoch evaluation of the same step, so without this a resumed
        run would draw other masks than an uninterrupted one."""
        devices = [self.args.device] if self.args.device.type == "cuda" else []
        with torch.random.fork_rng(devices=devices):
            return super().evaluate(*args, **kwargs)

    def evaluation_loop(
        self,
        dataloader: DataLoader,
        description: str,
        prediction_loss_only: Optional[bool] = None,
        ignore_keys: Optional[list[str]] = None,
        metric_key_prefix: str = "eval",
    ):
        self._modality_sums["eval"].clear()
        output = super().evaluation_loop(
            dataloader,
            description,
            prediction_loss_only=prediction_loss_only,
            ignore_keys=ignore_keys,
            metric_key_prefix=metric_key_prefix,
        )
        for name, value in self._mean_across_ranks(self._modality_sums["eval"]).items():
            output.metrics[f"{metric_key_prefix}_{name}"] = value
        return output

    def log(self, logs: dict, *args, **kwargs) -> None:
        if "loss" in logs:  # a training log: add the modality parts since the last one
            logs.update(self._mean_across_ranks(self._modality_sums["train"]))
        super().log(logs, *args, **kwargs)

    def get_train_dataloader(self) -> DataLoader:
        if self.rank_sharded_total is None:
            return super().get_train_dataloader()
        args = self.args
        sampler = RankShardBatchSampler(
            len(self.train_dataset),
            self.rank_sharded_total,
            args.world_size,
            self._train_batch_size,
            args.data_seed if args.data_seed is not None else args.seed,
            drop_last=args.dataloader_drop_last,
        )
        loader = DataLoader(
            self.train_dataset,
            batch_sampler=sampler,
            collate_fn=self.data_collator,
            num_workers=args.dataloader_num_workers,
            pin_memory=args.dataloader_pin_memory,
            persistent_workers=args.dataloader_persistent_workers and args.dataloader_num_workers > 0,
            prefetch_factor=args.dataloader_prefetch_factor if args.dataloader_num_workers > 0 else None,
            worker_init_fn=partial(seed_worker, num_workers=args.dataloader_num_workers, rank=args.process_index),
        )
        # The batches are this rank's already: prepared as for one process (num_processes=1), so that accelerate places
        # them on the device and reshuffles them every epoch (set_epoch) without splitting them among the ranks again
        # or completing a short last batch with clips from the start.
        return prepare_data_loader(
            loader,
            device=args.device,
            num_processes=1,
            put_on_device=True,
            non_blocking=self.accelerator.dataloader_config.non_blocking,
        )


__all__ = [
    "CardHookMixin",
    "MultiMAEDERPreTrainer",
    "MultiMAEDERTrainer",
    "ProgressLines",
    "ReadableLogsMixin",
    "SoftTargetCrossEntropy",
    "add_drop_path",
    "layer_decay_parameter_groups",
    "layer_id",
    "summarize_metrics",
    "summarize_progress",
]
