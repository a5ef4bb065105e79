"""The life of a run, the same for fine-tuning and pre-training: set up, refuse / reuse / resume, build the processor
and the config, trim and tidy the splits, and record what was run.

* :func:`setup_run` / :func:`end_process_group`: logging, threads and the process group, at start and at exit.
* :func:`result_settings` / :func:`refuse_other_settings` / :func:`save_run_args`: the one record of a run's
  settings (``run_args.json``), and the refusal to mix two runs in one folder.
* :func:`reuse_or_start_run` / :func:`train_and_save`: a finished run is reused, never trained again; otherwise the
  folder is started, and training resumes from its last checkpoint.
* :func:`hyperparameters`: the one table of settings a model card shows.
* :func:`build_processor`, :func:`config_overrides`: what both scripts build from the flags and the checkpoint.
* :func:`trim_splits`, :func:`drop_unused_columns`, :func:`split_sizes`: the splits a run reads.
"""

from __future__ import annotations

import difflib
import json
import logging
import os
import sys
import time
from dataclasses import asdict
from typing import Any, Iterable, Optional, Sequence, Union

import datasets
import torch
import transformers
from transformers import TrainingArguments

from ..data.corpora import get_corpus_info
from ..data.synthetic import is_synthetic_source
from ..models.multimae_der import MultiMAEDERConfig, MultiMAEDERProcessor, saved_processor_settings
from .arguments import DataArguments, ModelArguments, PretrainingArguments, RecipeArguments


logger = logging.getLogger(__name__)


def setup_run(model_args: ModelArguments, training_args: TrainingArguments) -> None:
    """Logging a user can read, each rank reading its own clips, and the CPU thread count.

    mmder_hf says what it does at INFO on the main process (the recipe, the data, the caches, where the model went)
    while datasets and transformers stay at WARNING: ``--log_level`` / ``--log_level_replica``, when given, set
    both. Progress bars (the `Trainer`'s, datasets') are drawn on a terminal only: redirected to a file, their redraws
    would be most of the log.
    """
    logging.basicConfig(
        format="%(asctime)s - %(levelname)s - %(name)s - %(message)s",
        datefmt="%H:%M:%S",
        handlers=[logging.StreamHandler(sys.stdout)],
    )
    library_level = training_args.get_process_log_level()  # "passive": the libraries' own level (WARNING)
    own_level = logging.INFO if training_args.should_log and training_args.log_level == "passive" else library_level
    for name in ("mmder_hf", "__main__"):  # every module of the package logs under "mmder_hf"
        logging.getLogger(name).setLevel(own_level)
    datasets.utils.logging.set_verbosity(library_level)
    transformers.utils.logging.set_verbosity(library_level)
    transformers.utils.logging.disable_progress_bar()  # a bar per checkpoint written or loaded: not the run's
    if not on_terminal():
        training_args.disable_tqdm = True
        datasets.disable_progress_bars()
    if training_args.output_dir == DEFAULT_OUTPUT_DIR:
        logger.info("No --output_dir: writing to %s/", DEFAULT_OUTPUT_DIR)
    # Each rank reads its own clips (split_for_rank): accelerate must not decode on rank 0 and broadcast.
    training_args.accelerator_config.dispatch_batches = False
    if training_args.device.type == "cpu":
        training_args.dataloader_pin_memory = False  # nothing to pin for (and a warning every epoch)
    threads = model_args.torch_num_threads
    if threads is None and "OMP_NUM_THREADS" not in os.environ and training_args.device.type == "cpu":
        threads = 1 if model_args.model_name_or_path is None and model_args.model_size in ("tiny", "small") else None
    if threads:
        torch.set_num_threads(threads)


#: Where `TrainingArguments` writes when no ``--output_dir`` is given.
DEFAULT_OUTPUT_DIR = "trainer_output"


def on_terminal() -> bool:
    """Whether both output streams are terminals: only there is a redrawn progress bar one line, not hundreds."""
    return all(stream is not None and stream.isatty() for stream in (sys.stdout, sys.stderr))


def end_process_group() -> None:
    """Destroy the default process group, if one is up, before the interpreter exits.

    A gloo group left to interpreter finalisation can abort the process after a finished run (SIGABRT, "terminate
    called without an active exception": its worker threads still hold tensors when Python is torn down), losing the
    exit code, the card and the push. Every script calls this once, after its last collective.
    """
    if torch.distributed.is_available() and torch.distributed.is_initialized():
        torch.distributed.destroy_process_group()


def parse_config_overrides(overrides: Optional[str], known: Optional[Iterable[str]] = None) -> dict[str, Any]:
    """``"hidden_size=128,num_hidden_layers=4,hidden_act=gelu"`` -> ``{"hidden_size": 128, ...}`` (JSON values).

    Raises:
        `ValueError`: an item without ``=``, or a key outside ``known`` (a typo would otherwise add a junk config
        field silently); the message names the key and the closest known ones.
    """
    out: dict[str, Any] = {}
    known = set(known) if known is not None else None
    for item in filter(None, (overrides or "").split(",")):
        key, sep, value = item.partition("=")
        key = key.strip()
        if not sep or not key:
            raise ValueError(f"--config_overrides: {item!r} is not key=value")
        if known is not None and key not in known:
            close = difflib.get_close_matches(key, sorted(known), n=3)
            hint = f"; did you mean {', '.join(close)}?" if close else ""
            raise ValueError(f"--config_overrides: {key!r} is not a MultiMAEDERConfig field{hint}")
        try:
            out[key] = json.loads(value)
        except json.JSONDecodeError:
            out[key] = value.strip()
    return out


def config_overrides(model_args: ModelArguments) -> dict[str, Any]:
    """The config fields the flags set: ``--config_overrides`` (checked against the config's fields), ``--num_frames``
    and ``--image_size``."""
    overrides = parse_config_overrides(model_args.config_overrides, known=MultiMAEDERConfig().to_dict())
    for key in ("num_frames", "image_size"):
        if getattr(model_args, key) is not None:
            overrides[key] = getattr(model_args, key)
    return overrides


def trim_splits(splits: dict, data_args: DataArguments) -> dict:
    """``splits`` with ``--max_train_samples`` training clips and ``--max_eval_samples`` validation / test clips at
    most (the first ones; ``take`` on a stream)."""
    limits = {"train": data_args.max_train_samples, "validation": data_args.max_eval_samples}
    limits["test"] = data_args.max_eval_samples
    for split, limit in limits.items():
        if limit is not None and split in splits:
            ds = splits[split]
            splits[split] = ds.take(limit) if data_args.streaming else ds.select(range(min(limit, len(ds))))
    return splits


def drop_unused_columns(ds: datasets.Dataset, config: MultiMAEDERConfig, also: Sequence[str] = ()) -> datasets.Dataset:
    """``ds`` without the input columns the model never reads (the face frames of the ``audio`` baseline, the audio
    pictures of ``video``), nor the columns ``also`` names: less to read from the cache every epoch."""
    unused = list(also) + [
        c for c, n in (("pixel_values", config.num_video_frames), ("audio_values", config.num_audio_frames)) if not n
    ]
    return ds.remove_columns([c for c in unused if c in ds.column_names])


def train_and_save(
    trainer: transformers.Trainer, training_args: TrainingArguments, last_checkpoint: Optional[str], clips: Any
) -> dict:
    """Train (resumed from ``--resume_from_checkpoint``, else the folder's last checkpoint), then save the model, the
    train metrics (``train_samples``: ``clips``) and the `Trainer`'s state. Returns the train metrics."""
    if last_checkpoint is not None and training_args.resume_from_checkpoint is None:
        logger.warning("Resuming from %s", last_checkpoint)
    train_result = trainer.train(resume_from_checkpoint=training_args.resume_from_checkpoint or last_checkpoint)
    trainer.save_model()
    metrics = train_result.metrics
    metrics["train_samples"] = clips
    trainer.log_metrics("train", metrics)
    trainer.save_metrics("train", metrics)
    trainer.save_state()
    return metrics


def _value(setting: Any) -> Any:
    return getattr(setting, "value", setting)  # an enum's value (cosine), not its name (SchedulerType.COSINE)


def hyperparameters(training_args: TrainingArguments, run_args: Union[RecipeArguments, PretrainingArguments]) -> dict:
    """The settings a model card shows, for both kinds of run (a fine-tuning run adds its recipe's choices)."""
    world = max(training_args.world_size, 1)
    finetuning = isinstance(run_args, RecipeArguments)
    rows: dict[str, Any] = {"recipe": run_args.recipe}
    if finetuning:
        rows["frozen backbone"] = run_args.freeze_backbone
    betas = f"betas {training_args.adam_beta1}, {training_args.adam_beta2}"
    rows.update(
        {
            "optimizer": f"{_value(training_args.optim)} ({betas})",
            "learning rate": training_args.learning_rate,
            "lr schedule": f"{_value(training_args.lr_scheduler_type)}, warmup {training_args.warmup_steps}",
            "weight decay": training_args.weight_decay,
        }
    )
    if finetuning:
        rows.update(
            {
                "layer-wise lr decay": run_args.layer_decay,
                "drop path": run_args.drop_path_rate,
                "label smoothing": training_args.label_smoothing_factor,
                "mixup alpha": run_args.mixup_alpha,
                "face flips": run_args.flip,
            }
        )
    total = training_args.per_device_train_batch_size * training_args.gradient_accumulation_steps * world
    epochs = training_args.num_train_epochs if training_args.max_steps <= 0 else f"{training_args.max_steps} steps"
    rows.update({"batch size (total)": total, "epochs": epochs, "processes": world, "seed": training_args.seed})
    rows["precision"] = "bf16" if training_args.bf16 else "fp16" if training_args.fp16 else "fp32"
    return rows


def checkpoint_processor_settings(source: Optional[str], revision: Optional[str] = None) -> dict[str, Any]:
    """The saved settings of a MultiMAE-DER checkpoint's processor (a folder or a Hub id), else ``{}``.

    A VideoMAE checkpoint's image processor is not read: its settings (resizing, crops, ImageNet std) describe
    VideoMAE's inputs, not MultiMAE-DER's, and a local copy must give the same processor as its Hub id.
    """
    if source is None:
        return {}
    try:  # processor_config.json, or the flat preprocessor_config.json of checkpoints saved before
        return saved_processor_settings(source, revision=revision)
    except OSError:  # no processor saved there
        return {}


#: Processor settings that data flags set; a flag left unset (``None``) keeps the checkpoint's setting.
PROCESSOR_FLAGS = ("audio_representation", "frame_sampling", "face_crop", "face_margin")


def build_processor(
    model_args: ModelArguments, data_args: DataArguments, config: MultiMAEDERConfig
) -> MultiMAEDERProcessor:
    """The checkpoint's processor when it has one (else the defaults), matched to ``config`` and the data flags.

    Each processor flag left unset keeps the checkpoint's setting, so a model trained further sees the inputs it
    was trained on (log-mel pictures stay log-mel, face crops stay face crops); a flag given changes it.
    """
    settings = checkpoint_processor_settings(model_args.model_name_or_path, model_args.model_revision)
    settings.update({k: getattr(data_args, k) for k in PROCESSOR_FLAGS if getattr(data_args, k) is not None})
    settings.update(fusion_strategy=config.fusion_strategy, num_frames=config.num_frames, image_size=config.image_size)
    if settings.get("face_crop") and is_synthetic_source(data_args.dataset_source):
        logger.info("The synthetic corpus shows no faces: face cropping is off")
        settings["face_crop"] = False
    if settings.get("face_crop"):
        try:
            note = get_corpus_info(data_args.dataset_name).face_crop_note
        except ValueError:  # not a corpus: pre-training on a folder of videos
            note = None
        if note:
            logger.warning("%s: %s (--face_crop false keeps whole frames)", data_args.dataset_name, note)
    return MultiMAEDERProcessor(**settings)


def finished_training(output_dir: str, training_args: TrainingArguments) -> Optional[dict]:
    """The saved train metrics when ``output_dir`` holds a finished training run of these settings, else ``None``.

    Resuming such a run would train no step and overwrite its train metrics with a loss of 0.
    """
    state_path, results_path = (os.path.join(output_dir, n) for n in ("trainer_state.json", "train_results.json"))
    if not (os.path.isfile(state_path) and os.path.isfile(results_path)):
        return None
    with open(state_path) as f:
        state = json.load(f)
    if training_args.max_steps > 0:
        done = state.get("global_step", 0) >= training_args.max_steps
    else:
        done = state.get("num_train_epochs") == training_args.num_train_epochs and state.get("global_step", 0) >= (
            state.get("max_steps") or 0
        )
    if not done:
        return None
    with open(results_path) as f:
        return json.load(f)


def load_trained_weights(model: torch.nn.Module, output_dir: str) -> None:
    """Load the weights a finished run saved in ``output_dir`` (one file or shards) into ``model``, exactly."""
    index = os.path.join(output_dir, "model.safetensors.index.json")
    if os.path.isfile(index):
        from transformers.trainer_utils import load_sharded_checkpoint

        load_sharded_checkpoint(model, output_dir, strict=True)
        return
    from safetensors.torch import load_file

    model.load_state_dict(load_file(os.path.join(output_dir, "model.safetensors")), strict=True)


def reuse_or_start_run(
    model: torch.nn.Module, processor: Any, training_args: TrainingArguments, kind: str = "training"
) -> Optional[dict]:
    """Start ``training_args.output_dir``, or reuse the finished run it holds: the train metrics, else ``None``.

    A finished run of these settings has its weights loaded into ``model`` and is never overwritten; otherwise the
    folder receives the model (with its code files) and the processor from the start, so that every checkpoint the
    `Trainer` pushes loads with trust_remote_code.
    """
    output_dir = training_args.output_dir
    finished = finished_training(output_dir, training_args)
    if finished is not None:
        logger.warning("%s holds a finished %s run with these settings: not training it again", output_dir, kind)
        load_trained_weights(model, output_dir)
    elif training_args.should_save:
        model.save_pretrained(output_dir)
        processor.save_pretrained(output_dir)
    return finished


def split_sizes(raw: Any) -> dict[str, tuple[Optional[int], list[int]]]:
    """``split -> (number of clips, sorted actor ids)`` of map-style splits (``None`` clips for streaming ones)."""
    sizes = {}
    for split, ds in raw.items():
        if isinstance(ds, datasets.Dataset) and "actor" in ds.column_names:
            sizes[split] = (len(ds), sorted({int(a) for a in ds["actor"]}))
    return sizes


#: `TrainingArguments` fields that change what a run learns (the others: logging, saving, the Hub, paths).
RESULT_TRAINING_FIELDS = (
    "learning_rate",
    "weight_decay",
    "per_device_train_batch_size",
    "gradient_accumulation_steps",
    "num_train_epochs",
    "max_steps",
    "lr_scheduler_type",
    "lr_scheduler_kwargs",
    "warmup_steps",
    "optim",
    "adam_beta1",
    "adam_beta2",
    "adam_epsilon",
    "max_grad_norm",
    "label_smoothing_factor",
    "seed",
    "data_seed",
    "bf16",
    "fp16",
)


#: Fields of the other argument groups that change nothing in the results (``reconstruction_clips``: pre-training's
#: pictures only).
_NOT_RESULT_FIELDS = {
    "cache_dir",
    "preprocessing_num_workers",
    "torch_num_threads",
    "trust_remote_code",
    "reconstruction_clips",
}


def result_settings(
    model_args: ModelArguments,
    data_args: DataArguments,
    recipe_args: Union[RecipeArguments, PretrainingArguments],
    training_args: TrainingArguments,
) -> dict[str, Any]:
    """Everything of a run that changes its results (corpus, source, fold, labels, strategy, backbone, processor
    settings, recipe, masking, optimisation, seed, total batch size), as ``"group.field" -> value``; saved in
    run_args.json. The run's own arguments (fine-tuning or pre-training) are the ``recipe`` group."""
    settings = {}
    for group, args in (("model", model_args), ("data", data_args), ("recipe", recipe_args)):
        settings.update({f"{group}.{k}": v for k, v in asdict(args).items() if k not in _NOT_RESULT_FIELDS})
    saved = training_args.to_dict()
    settings.update({f"training.{k}": saved.get(k) for k in RESULT_TRAINING_FIELDS})
    total = training_args.per_device_train_batch_size * training_args.gradient_accumulation_steps
    settings["training.total_train_batch_size"] = total * max(training_args.world_size, 1)
    return json.loads(json.dumps(settings, default=str))  # as run_args.json stores them


def settings_differences(output_dir: str, settings: dict[str, Any]) -> dict[str, tuple]:
    """``field -> (saved, now)`` for every result setting in which the run saved in ``output_dir`` differs."""
    path = os.path.join(output_dir, "run_args.json")
    if not os.path.isfile(path):
        return {}
    with open(path) as f:
        saved = json.load(f).get("settings")
    if saved is None:  # written before settings were recorded: nothing to compare with
        return {}
    return {k: (saved.get(k), v) for k, v in settings.items() if saved.get(k) != v}


def describe_differences(differences: dict[str, tuple]) -> str:
    """``learning_rate: 0.01 there, 0.001 now; ...`` for messages."""
    return "; ".join(f"{k.split('.', 1)[1]}: {a!r} there, {b!r} now" for k, (a, b) in sorted(differences.items()))


class OtherSettingsError(ValueError):
    """A folder holds a run made with other settings: resuming or reusing it would mix two runs."""


def refuse_other_settings(output_dir: str, settings: dict[str, Any]) -> None:
    """Raise `OtherSettingsError` when ``output_dir`` holds a run made with other ``settings``."""
    differences = settings_differences(output_dir, settings)
    if differences:
        raise OtherSettingsError(
            f"{output_dir} holds a run with other settings ({describe_differences(differences)}): "
            "use another --output_dir, or remove that folder to start again"
        )


#: The name each argument group has in ``run_args.json``.
RECORD_NAMES = {
    ModelArguments: "model",
    DataArguments: "data",
    RecipeArguments: "recipe",
    PretrainingArguments: "pretraining",
    TrainingArguments: "training",
}


def save_run_args(
    output_dir: str, argv: Optional[Sequence[str]], all_args: Sequence[Any], started: float, **extra
) -> str:
    """``run_args.json``: the command, every argument, the settings that change the results (compared by a later run
    in the same folder: :func:`settings_differences`), wall time and versions, beside the model.

    ``all_args`` is ``(ModelArguments, DataArguments, RecipeArguments or PretrainingArguments, TrainingArguments)``.
    """
    record: dict[str, Any] = {"argv": list(sys.argv if argv is None else argv)}
    for args in all_args:
        name = next(name for kind, name in RECORD_NAMES.items() if isinstance(args, kind))
        record[name] = args.to_dict() if hasattr(args, "to_dict") else asdict(args)
    record["settings"] = result_settings(*all_args)
    record.update(wall_time_s=round(time.time() - started, 1), **extra)
    record["versions"] = {"torch": torch.__version__, "transformers": transformers.__version__}
    path = os.path.join(output_dir, "run_args.json")
    with open(path, "w") as f:
        json.dump(record, f, indent=1, default=str)
    return path


__all__ = [
    "OtherSettingsError",
    "PROCESSOR_FLAGS",
    "RESULT_TRAINING_FIELDS",
    "build_processor",
    "checkpoint_processor_settings",
    "config_overrides",
    "describe_differences",
    "drop_unused_columns",
    "end_process_group",
    "finished_training",
    "hyperparameters",
    "load_trained_weights",
    "on_terminal",
    "parse_config_overrides",
    "refuse_other_settings",
    "result_settings",
    "reuse_or_start_run",
    "save_run_args",
    "settings_differences",
    "setup_run",
    "split_sizes",
    "train_and_save",
    "trim_splits",
]
