"""LoRA fine-tuning through peft: low-rank adapters on the encoder's attention, the head (``fc_norm`` +
``classifier``) trained fully, and a result that loads without peft.

* :class:`LoraArguments`: ``--lora_r`` (0 or unset: off), ``--lora_alpha``, ``--lora_dropout``,
  ``--lora_target_modules``; `~mmder_hf.training.arguments.RecipeArguments` inherits them, so that every script that
  fine-tunes (finetune, cross-validation, the grid) takes them and records them with the run's settings.
* :func:`check_lora_arguments`: the flags' mistakes as one line, before any data is built.
* :func:`apply_lora`: the model wrapped in peft's ``PeftModel``; only the adapters and the head train.
* :func:`save_merged_and_adapter`: the run's result, twice: the adapters merged into a plain checkpoint (with its
  code files, loadable with ``trust_remote_code=True`` and no peft) and the adapter alone in ``adapter/``
  (``PeftModel.from_pretrained(base_model, "<output_dir>/adapter")``).
"""

from __future__ import annotations

import copy
import logging
import os
from dataclasses import dataclass, field
from typing import Any, Optional

from torch import nn

from ..user_errors import UserError, did_you_mean


logger = logging.getLogger(__name__)

#: Where the adapter goes in a run's folder (the merged model is at its root).
ADAPTER_FOLDER = "adapter"

#: The head, trained fully beside the adapters (peft's ``modules_to_save``).
HEAD_MODULES = ["fc_norm", "classifier"]

#: ``--lora_target_modules`` and ``--lora_dropout`` when not given.
DEFAULT_TARGETS, DEFAULT_DROPOUT = "query,value", 0.1

#: What ``pip`` installs for LoRA.
INSTALL_HINT = 'pip install -e ".[lora]"'


@dataclass
class LoraArguments:
    """Low-rank adapters (LoRA, through peft) on the encoder instead of training all of it."""

    lora_r: Optional[int] = field(
        default=None,
        metadata={
            "help": "LoRA rank: train rank-r adapters on --lora_target_modules and the head (fc_norm + classifier) "
            "instead of the whole encoder (0 or unset: off). Needs peft (the [lora] extra)."
        },
    )
    lora_alpha: Optional[float] = field(
        default=None, metadata={"help": "LoRA scaling numerator: updates are scaled by alpha / r (default 2 x r)."}
    )
    # Unset (None) unless given: a run without LoRA records no LoRA setting, as runs saved before these flags did.
    lora_dropout: Optional[float] = field(
        default=None, metadata={"help": "Dropout on the LoRA branch's input (default 0.1)."}
    )
    lora_target_modules: Optional[str] = field(
        default=None,
        metadata={
            "help": "Comma-separated names of the encoder's Linear layers that get adapters (default query,value)."
        },
    )

    @property
    def uses_lora(self) -> bool:
        """Whether LoRA is on (``--lora_r`` above 0)."""
        return bool(self.lora_r)

    def target_list(self) -> list[str]:
        """``--lora_target_modules`` as a list of names (default ``query``, ``value``)."""
        names = DEFAULT_TARGETS if self.lora_target_modules is None else self.lora_target_modules
        return [name.strip() for name in names.split(",") if name.strip()]

    def dropout(self) -> float:
        """``--lora_dropout``, or 0.1 when it is not given."""
        return DEFAULT_DROPOUT if self.lora_dropout is None else float(self.lora_dropout)

    def scaling_alpha(self) -> float:
        """``--lora_alpha``, or twice the rank when it is not given."""
        return float(self.lora_alpha) if self.lora_alpha is not None else 2.0 * self.lora_r


def check_lora_arguments(args: Any, training_args: Optional[Any] = None) -> None:
    """Refuse LoRA flags that cannot mean anything, as one line naming the flag: a negative rank, another LoRA flag
    without a rank, a dropout outside [0, 1), a non-positive alpha, no target module, a frozen encoder (a linear
    probe: nothing for adapters to adapt, and the feature cache would skip the encoder altogether), FSDP or DeepSpeed
    (sharded weights; the merged save needs them whole), or peft missing."""
    if args.lora_r is not None and args.lora_r < 0:
        raise UserError(f"--lora_r: expected a rank of 1 or more (0: no LoRA), got {args.lora_r}")
    if not args.uses_lora:
        names = ("lora_alpha", "lora_dropout", "lora_target_modules")
        given = [f"--{name}" for name in names if getattr(args, name) is not None]
        if given:
            raise UserError(f"{', '.join(given)} without --lora_r: give the LoRA rank (e.g. --lora_r 8) to use LoRA")
        return
    if not 0 <= args.dropout() < 1:
        raise UserError(f"--lora_dropout: expected a probability in [0, 1), got {args.lora_dropout}")
    if args.lora_alpha is not None and args.lora_alpha <= 0:
        raise UserError(f"--lora_alpha: expected a positive number, got {args.lora_alpha}")
    if not args.target_list():
        raise UserError("--lora_target_modules: expected comma-separated Linear layer names such as query,value")
    if getattr(args, "freeze_backbone", False):
        raise UserError(
            "--lora_r with a frozen encoder (--freeze_backbone, which --recipe paper sets) makes no sense: a linear "
            "probe trains the head on cached encoder features, which adapters would change; pass --freeze_backbone "
            "false (or another --recipe) to train adapters, or drop --lora_r for the linear probe"
        )
    if training_args is not None and (training_args.fsdp or training_args.deepspeed):
        raise UserError(
            "--lora_r with --fsdp or --deepspeed is not supported: the merged model is saved from the whole model "
            "in one process; train LoRA with DDP (accelerate launch --multi_gpu / torchrun), whose copies are whole"
        )
    require_peft()


def require_peft() -> Any:
    """The ``peft`` module, or one line saying how to install it."""
    try:
        import peft
    except ImportError:
        raise UserError(f"--lora_r needs peft, which is not installed: {INSTALL_HINT}", status=1) from None
    return peft


def count_parameters(model: nn.Module) -> tuple[int, int]:
    """``(trainable, total)`` parameters of ``model``; a PeftModel's frozen copy of its head is not counted in the
    total (it is the head the run started from, replaced by the trained copy)."""
    trainable = total = 0
    for name, param in model.named_parameters():
        trainable += param.numel() if param.requires_grad else 0
        total += 0 if ".original_module." in f".{name}." else param.numel()
    return trainable, total


def describe_parameters(trainable: int, total: int) -> str:
    """``"N of M (x.xx%)"``."""
    return f"{trainable:,} of {total:,} ({100 * trainable / max(total, 1):.2f}%)"


def linear_module_names(model: nn.Module) -> list[str]:
    """The last name part of every ``nn.Linear`` in the encoder: what ``--lora_target_modules`` can name."""
    encoder = getattr(model, "videomae", model)
    linear = [name for name, module in encoder.named_modules() if isinstance(module, nn.Linear)]
    return sorted({name.rsplit(".", 1)[-1] for name in linear})


def apply_lora(model: nn.Module, lora_args: LoraArguments) -> nn.Module:
    """``model`` wrapped in a ``PeftModel`` with rank-``lora_r`` adapters on ``--lora_target_modules`` of the encoder
    and its head (:data:`HEAD_MODULES`) trained fully; every other weight is frozen. Logs the trainable count.

    The adapters' second matrix starts at zero, so the wrapped model computes exactly what ``model`` computed.
    """
    peft = require_peft()
    known = linear_module_names(model)
    for name in lora_args.target_list():
        if name not in known:
            raise UserError(
                f"--lora_target_modules: the encoder has no Linear layer named {name!r}{did_you_mean(name, known)}; "
                f"it has {', '.join(known)}"
            )
    targets = "|".join(lora_args.target_list())
    config = peft.LoraConfig(
        r=lora_args.lora_r,
        lora_alpha=lora_args.scaling_alpha(),
        lora_dropout=lora_args.dropout(),
        # the encoder's layers only (a head Linear of the same name would be adapted too)
        target_modules=rf"videomae\..*\.({targets})",
        modules_to_save=list(HEAD_MODULES),
    )
    wrapped = peft.get_peft_model(model, config)
    logger.info(
        "LoRA r=%s, alpha=%s on %s: trainable parameters: %s",
        lora_args.lora_r,
        config.lora_alpha,
        ", ".join(lora_args.target_list()),
        describe_parameters(*count_parameters(wrapped)),
    )
    return wrapped


def push_at_the_end_only(training_args: Any) -> None:
    """A LoRA run pushes its result only (``--hub_strategy end``): a checkpoint holds the adapter at its root, and the
    `Trainer`'s push of a checkpoint would copy it to the repository's root, where it would stay beside the merged
    model after the final push (an upload deletes nothing) and make transformers load the adapter on top of it."""
    from transformers.trainer_utils import HubStrategy

    if training_args.push_to_hub and training_args.hub_strategy != HubStrategy.END:
        logger.info("LoRA: the model is pushed when the run ends, not at every checkpoint (--hub_strategy end)")
        training_args.hub_strategy = HubStrategy.END


def lora_card_rows(lora_args: LoraArguments, model: nn.Module) -> dict[str, str]:
    """The rows the model card's hyperparameter table gets for a LoRA run: the adapters' settings and the trainable
    parameter count (empty without LoRA)."""
    if not lora_args.uses_lora:
        return {}
    settings = (
        f"r {lora_args.lora_r}, alpha {lora_args.scaling_alpha():g}, dropout {lora_args.dropout():g}, on "
        f"{', '.join(lora_args.target_list())}; head trained fully; adapters merged (adapter alone in "
        f"{ADAPTER_FOLDER}/)"
    )
    return {"LoRA": settings, "trainable parameters": describe_parameters(*count_parameters(model))}


def is_lora_model(model: Any) -> bool:
    """Whether ``model`` is a peft ``PeftModel`` (without importing peft when it is not installed)."""
    return any(cls.__name__ == "PeftModel" and cls.__module__.startswith("peft") for cls in type(model).__mro__)


def save_merged_and_adapter(model: Any, output_dir: str) -> None:
    """Save a LoRA run's result in ``output_dir``: the adapters merged into the model (``merge_and_unload`` on a copy,
    saved by the model's own ``save_pretrained``: config, weights and code files, loadable without peft) and the
    adapter alone in ``output_dir/adapter`` (``adapter_config.json`` + ``adapter_model.safetensors``).

    ``model`` keeps its adapters, so evaluation after saving runs on the same weights. Adapter files that the
    `Trainer` copied to the folder's root (an intermediate push) are removed: at the root, transformers would load the
    folder as an adapter and need peft.
    """
    adapter_dir = os.path.join(output_dir, ADAPTER_FOLDER)
    model.save_pretrained(adapter_dir)
    readme = os.path.join(adapter_dir, "README.md")
    if os.path.isfile(readme):  # peft's template card: the folder's own card describes the run
        os.remove(readme)
    merged = copy.deepcopy(model).merge_and_unload()
    merged.save_pretrained(output_dir)
    for name in ("adapter_config.json", "adapter_model.safetensors", "adapter_model.bin"):
        path = os.path.join(output_dir, name)
        if os.path.isfile(path):
            os.remove(path)
    logger.info("Saved the merged model to %s and the adapter alone to %s", output_dir, adapter_dir)


__all__ = [
    "ADAPTER_FOLDER",
    "HEAD_MODULES",
    "LoraArguments",
    "apply_lora",
    "check_lora_arguments",
    "count_parameters",
    "describe_parameters",
    "is_lora_model",
    "linear_module_names",
    "lora_card_rows",
    "push_at_the_end_only",
    "require_peft",
    "save_merged_and_adapter",
]
