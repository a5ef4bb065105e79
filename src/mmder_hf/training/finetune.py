"""The pieces ``examples/finetune.py`` wires together: its arguments, data, model, processor, caches and card.

``examples/finetune.py`` reads as a linear ``main()`` (parse -> data -> model -> Trainer -> train / evaluate /
save_metrics -> card / push); everything it needs that is more than a line lives here, so that
``examples/cross_validate.py`` and ``examples/demo.py`` run exactly the same code.
"""

from __future__ import annotations

import json
import logging
import os
import sys
import time
from dataclasses import asdict, dataclass, field, fields
from typing import Any, Callable, Optional, Sequence

import datasets
import torch
import transformers
from transformers import HfArgumentParser, TrainingArguments

from ..cards import write_model_card
from ..cards.widget import widget_examples
from ..data import MultiMAEDERDataCollator, load_emotion_dataset, load_prefused_dataset, preprocess_to_cache
from ..data.corpora import get_corpus_info, normalize_corpus_name
from ..data.distributed import ExampleSplitStream, split_streams_by_example
from ..data.loading import DEFAULT_CACHE_DIR
from ..data.media_writing import write_row_clip
from ..data.synthetic import is_synthetic_source
from ..models.multimae_der import MultiMAEDERConfig, MultiMAEDERForVideoClassification, MultiMAEDERProcessor
from .feature_cache import can_cache_features, compute_pooled_features
from .recipes import MODEL_SIZES, RECIPES, RecipeArguments, parse_config_overrides, recipe_defaults
from .trainer import add_drop_path


logger = logging.getLogger(__name__)

#: What finetune.py does unless told otherwise: media columns reach the collator, nothing is reported anywhere,
#: and a run trains, then reports validation and test metrics (``--do_predict False``... to skip).
RUN_DEFAULTS = {
    "remove_unused_columns": False,
    "report_to": "none",
    "do_train": True,
    "do_eval": True,
    "do_predict": True,
}


#: Config fields that flags of finetune.py / pretrain.py set, whose unset value (``None``) means "the checkpoint's"
#: (:func:`fill_checkpoint_defaults`): the layout and the pre-training objective the weights learned with.
FROM_CHECKPOINT = (
    "fusion_strategy",
    "mask_type",
    "mask_ratio_video",
    "mask_ratio_audio",
    "pretraining_target",
    "norm_pix_loss",
)


@dataclass
class ModelArguments:
    """Which backbone to start from and how the model fuses the modalities."""

    model_name_or_path: Optional[str] = field(
        default=None,
        metadata={
            "help": "A VideoMAE checkpoint (Hub id such as MCG-NJU/videomae-base or a folder; pre-training or "
            "classification), a MultiMAE-DER checkpoint, or nothing for a randomly initialised model of "
            "--model_size."
        },
    )
    model_size: str = field(
        default="small",
        metadata={"help": "Random model when no checkpoint is given.", "choices": list(MODEL_SIZES)},
    )
    config_overrides: Optional[str] = field(
        default=None,
        metadata={
            "help": "Config fields to change, e.g. 'hidden_size=128,num_hidden_layers=4,hidden_dropout_prob=0.1'."
        },
    )
    fusion_strategy: Optional[str] = field(
        default=None,
        metadata={
            "help": "FSLF, FFLS, OFOS, RFAS, CFAS, SFAS; the baselines 'video' / 'audio'; or 'prefused'. Default: "
            "a MultiMAE-DER checkpoint's strategy, else FSLF.",
        },
    )
    num_frames: Optional[int] = field(
        default=None, metadata={"help": "Length of the fused clip (default: the checkpoint's or --model_size's)."}
    )
    image_size: Optional[int] = field(
        default=None, metadata={"help": "Frame side in pixels (default: the checkpoint's or --model_size's)."}
    )
    attn_implementation: Optional[str] = field(
        default=None, metadata={"help": "'sdpa' (default), 'eager', 'flex_attention' or 'flash_attention_2'."}
    )
    trust_remote_code: bool = field(default=False, metadata={"help": "Allow code from the checkpoint repository."})
    model_revision: str = field(default="main", metadata={"help": "Checkpoint revision (branch, tag or commit)."})
    torch_num_threads: Optional[int] = field(
        default=None,
        metadata={
            "help": "CPU threads for torch. Default: 1 when a tiny/small random model trains on the CPU (its "
            "matrices are so small that threads cost more than they give, ~15x on a busy 2-core machine) and "
            "OMP_NUM_THREADS is unset; otherwise torch's default."
        },
    )


@dataclass
class DataArguments:
    """Which corpus, fold and labels, and how clips become model inputs."""

    dataset_name: str = field(
        default="ravdess", metadata={"help": "Corpus: ravdess, crema_d or iemocap.", "aliases": ["--corpus"]}
    )
    dataset_source: Optional[str] = field(
        default=None,
        metadata={
            "help": "Local folder of the distributed files, a Hub dataset id holding them, or a corpus published "
            "with dataset_scripts/publish_<corpus>.py. Nothing (RAVDESS only): the built-in synthetic corpus."
        },
    )
    fold: int = field(
        default=1, metadata={"help": "Subject-independent fold (RAVDESS 1-6, CREMA-D 1-5, IEMOCAP 1-5)."}
    )
    label_set: Optional[str] = field(
        default=None, metadata={"help": "RAVDESS 8class (default) or 7class; CREMA-D 6class; IEMOCAP 4class."}
    )
    prefused_layout: str = field(
        default="FSLF",
        metadata={"help": "With --fusion_strategy prefused: which of the authors' RAVDESS_<LAYOUT>.zip to read."},
    )
    audio_representation: Optional[str] = field(
        default=None,
        metadata={
            "help": "Audio pictures: 'mfcc' (the paper) or 'log-mel'. Default: a MultiMAE-DER checkpoint's "
            "processor setting, else mfcc.",
            "choices": ["mfcc", "log-mel"],
        },
    )
    frame_sampling: Optional[str] = field(
        default=None,
        metadata={
            "help": "'aligned' (frames at the audio windows' centres) or 'original'. Default: a MultiMAE-DER "
            "checkpoint's processor setting, else aligned.",
            "choices": ["aligned", "original"],
        },
    )
    streaming: bool = field(
        default=False, metadata={"help": "Stream the corpus (needs --max_steps); decodes on the fly."}
    )
    preprocess_cache: bool = field(
        default=True,
        metadata={
            "help": "Preprocess every clip once into an Arrow cache reused by later epochs and runs (map-style)."
        },
    )
    preprocessing_num_workers: Optional[int] = field(
        default=None, metadata={"help": "Processes for the preprocessing."}
    )
    cache_dir: Optional[str] = field(
        default=None, metadata={"help": "Cache for datasets, the synthetic corpus and preprocessed clips."}
    )
    face_crop: Optional[bool] = field(
        default=None,
        metadata={
            "help": "Crop every frame to the clip's tracked main face (the [faces] extra; saved in the processor). "
            "The finetune recipe turns it on; otherwise a MultiMAE-DER checkpoint's processor setting, else whole "
            "frames. Never on the synthetic corpus.",
            "nargs": "?",
            "const": True,
        },
    )
    face_margin: Optional[float] = field(
        default=None,
        metadata={
            "help": "Space around the face box on each side, as a fraction of its larger side (default: the "
            "checkpoint's processor setting, else 0.25)."
        },
    )
    max_train_samples: Optional[int] = field(default=None, metadata={"help": "Keep only this many training clips."})
    max_eval_samples: Optional[int] = field(
        default=None, metadata={"help": "Keep only this many validation/test clips."}
    )


def parse_with_recipe(
    types: tuple, recipe_type: type, defaults_of: Callable[[str], dict], argv: Optional[Sequence[str]] = None
) -> tuple:
    """Parse ``types`` from flags or one JSON file; the ``recipe`` field of ``recipe_type`` picks the defaults.

    ``defaults_of(recipe)`` maps a recipe name to its defaults; every flag or key given overrides them. One parser
    for ``examples/finetune.py`` and ``examples/pretrain.py``, so the two read their arguments the same way.
    """
    argv = list(sys.argv[1:] if argv is None else argv)
    parser = HfArgumentParser(types)
    known = {f.name for dataclass_type in types for f in fields(dataclass_type)}
    if len(argv) == 1 and argv[0].endswith(".json"):
        with open(argv[0]) as f:
            given = json.load(f)
        defaults = defaults_of(given.get("recipe", "quick"))
        parsed = parser.parse_dict({**{k: v for k, v in defaults.items() if k in known}, **given})
    else:
        recipe, _ = HfArgumentParser(recipe_type).parse_known_args(argv)
        parser.set_defaults(**{k: v for k, v in defaults_of(recipe.recipe).items() if k in known})
        parsed = parser.parse_args_into_dataclasses(args=argv)
    fill_checkpoint_defaults(parsed)
    return tuple(parsed)


def fill_checkpoint_defaults(parsed: Sequence[Any]) -> None:
    """Give every :data:`FROM_CHECKPOINT` field left unset a MultiMAE-DER checkpoint's config value (a folder or a Hub
    id), else the config's default.

    So that a model trained further keeps what its weights learned with (a CFAS layout, a masking ratio, a
    frame-difference target) unless a flag says otherwise. A VideoMAE checkpoint's config has none of these.
    """
    model_args = next((args for args in parsed if isinstance(args, ModelArguments)), None)
    saved = {}
    if model_args is not None and model_args.model_name_or_path is not None:
        try:
            saved, _ = MultiMAEDERConfig.get_config_dict(
                model_args.model_name_or_path, revision=model_args.model_revision
            )
        except OSError:  # nothing to read there: loading the model names the problem
            saved = {}
    if saved.get("model_type") != MultiMAEDERConfig.model_type:
        saved = {}
    defaults = MultiMAEDERConfig().to_dict()
    for args in parsed:
        for f in fields(args):
            if f.name in FROM_CHECKPOINT and getattr(args, f.name) is None:
                setattr(args, f.name, saved.get(f.name, defaults[f.name]))


def parse_args(argv: Optional[Sequence[str]] = None) -> tuple:
    """``(ModelArguments, DataArguments, RecipeArguments, TrainingArguments)`` from flags or one JSON file.

    The recipe named by ``--recipe`` (or the file's ``"recipe"``; default ``quick``) gives the defaults, and every
    flag or key given overrides them.
    """
    types = (ModelArguments, DataArguments, RecipeArguments, TrainingArguments)
    return parse_with_recipe(types, RecipeArguments, lambda name: {**RUN_DEFAULTS, **recipe_defaults(name)}, argv)


def setup_run(model_args: ModelArguments, training_args: TrainingArguments) -> None:
    """Logging at the process's level, each rank reading its own clips, and the CPU thread count."""
    logging.basicConfig(
        format="%(asctime)s - %(levelname)s - %(name)s - %(message)s",
        datefmt="%H:%M:%S",
        handlers=[logging.StreamHandler(sys.stdout)],
    )
    log_level = training_args.get_process_log_level()
    for name in (__name__, "mmder_hf", "__main__"):
        logging.getLogger(name).setLevel(log_level)
    datasets.utils.logging.set_verbosity(log_level)
    transformers.utils.logging.set_verbosity(log_level)
    # Each rank reads its own clips (split_for_rank): accelerate must not decode on rank 0 and broadcast.
    training_args.accelerator_config.dispatch_batches = False
    if training_args.device.type == "cpu":
        training_args.dataloader_pin_memory = False  # nothing to pin for (and a warning every epoch)
    threads = model_args.torch_num_threads
    if threads is None and "OMP_NUM_THREADS" not in os.environ and training_args.device.type == "cpu":
        threads = 1 if model_args.model_name_or_path is None and model_args.model_size in ("tiny", "small") else None
    if threads:
        torch.set_num_threads(threads)


def end_process_group() -> None:
    """Destroy the default process group, if one is up, before the interpreter exits.

    A gloo group left to interpreter finalisation can abort the process after a finished run (SIGABRT, "terminate
    called without an active exception": its worker threads still hold tensors when Python is torn down), losing the
    exit code, the card and the push. Every script calls this once, after its last collective.
    """
    if torch.distributed.is_available() and torch.distributed.is_initialized():
        torch.distributed.destroy_process_group()


def load_data(data_args: DataArguments, model_args: ModelArguments, training_args: TrainingArguments) -> Any:
    """The fold's train / validation / test splits (the authors' pre-fused zips for ``prefused``), trimmed."""
    with training_args.main_process_first(desc="loading the corpus"):
        if model_args.fusion_strategy.lower() == "prefused":
            raw = load_prefused_dataset(
                data_args.dataset_source,
                strategy=data_args.prefused_layout,
                streaming=data_args.streaming,
                cache_dir=data_args.cache_dir,
            )
        else:
            raw = load_emotion_dataset(
                data_args.dataset_name,
                source=data_args.dataset_source,
                fold=data_args.fold,
                label_set=data_args.label_set,
                streaming=data_args.streaming,
                cache_dir=data_args.cache_dir,
            )
    for split, limit in (
        ("train", data_args.max_train_samples),
        ("validation", data_args.max_eval_samples),
        ("test", data_args.max_eval_samples),
    ):
        if limit is not None and split in raw:
            raw[split] = (
                raw[split].take(limit)
                if data_args.streaming
                else raw[split].select(range(min(limit, len(raw[split]))))
            )
    return raw


def build_model(
    model_args: ModelArguments, recipe_args: RecipeArguments, label_names: list[str]
) -> MultiMAEDERForVideoClassification:
    """A random model of ``--model_size`` or a checkpoint, with the recipe's frozen backbone and drop path."""
    labels = {"id2label": dict(enumerate(label_names)), "label2id": {name: i for i, name in enumerate(label_names)}}
    overrides = parse_config_overrides(model_args.config_overrides, known=MultiMAEDERConfig().to_dict())
    for key in ("num_frames", "image_size"):
        if getattr(model_args, key) is not None:
            overrides[key] = getattr(model_args, key)
    kwargs = {"attn_implementation": model_args.attn_implementation} if model_args.attn_implementation else {}
    if model_args.model_name_or_path is None:
        config = MultiMAEDERConfig(
            **{**MODEL_SIZES[model_args.model_size], **overrides}, fusion_strategy=model_args.fusion_strategy, **labels
        )
        if model_args.attn_implementation:
            config._attn_implementation = model_args.attn_implementation
        model = MultiMAEDERForVideoClassification(config)
    else:
        # VideoMAE checkpoints (pre-training or classification) and MultiMAE-DER checkpoints both load here: the
        # encoder and head keep VideoMAE's parameter names; a head of another size is re-initialised.
        model = MultiMAEDERForVideoClassification.from_pretrained(
            model_args.model_name_or_path,
            fusion_strategy=model_args.fusion_strategy,
            revision=model_args.model_revision,
            trust_remote_code=model_args.trust_remote_code,
            ignore_mismatched_sizes=True,
            **labels,
            **overrides,
            **kwargs,
        )
    if recipe_args.freeze_backbone:
        model.freeze_backbone()
    add_drop_path(model, recipe_args.drop_path_rate)
    return model


def checkpoint_processor_settings(source: Optional[str], revision: Optional[str] = None) -> dict[str, Any]:
    """The saved settings of a MultiMAE-DER checkpoint's processor (a folder or a Hub id), else ``{}``.

    A VideoMAE checkpoint's image processor is not read: its settings (resizing, crops, ImageNet std) describe
    VideoMAE's inputs, not MultiMAE-DER's, and a local copy must give the same processor as its Hub id.
    """
    if source is None:
        return {}
    try:
        saved, _ = MultiMAEDERProcessor.get_feature_extractor_dict(source, revision=revision)
    except OSError:  # no preprocessor_config.json there
        return {}
    return saved if saved.get("feature_extractor_type") == MultiMAEDERProcessor.__name__ else {}


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


def prepare_datasets(
    raw: Any,
    model: MultiMAEDERForVideoClassification,
    processor: MultiMAEDERProcessor,
    data_args: DataArguments,
    recipe_args: RecipeArguments,
    training_args: TrainingArguments,
) -> tuple[dict, Any, bool]:
    """The splits the `Trainer` reads, its collator, and whether the frozen-backbone feature cache is used.

    Map-style corpora are preprocessed once into the 8-bit cache (``--preprocess_cache``); with a frozen encoder
    and no augmentation, the encoder then runs once per clip and the head trains on the features.

    Under several processes each split is given to the `Trainer` whole: its accelerate data loader gives each rank
    its part (a map-style split by indices; a streaming split by example, batch by batch, through
    :class:`~mmder_hf.data.distributed.ExampleSplitStream`, so that uneven shards never give ranks different step
    counts), and the collator decodes only those. Splitting it here as well
    (:func:`~mmder_hf.data.split_for_rank`) would shard it twice and lose data.
    """
    streaming = data_args.streaming
    if streaming and training_args.max_steps <= 0:
        raise ValueError("--streaming needs --max_steps (an iterable dataset has no length)")
    collator = MultiMAEDERDataCollator(processor)
    data = raw
    report_rank_split(raw["train"], training_args)
    if data_args.preprocess_cache and not streaming:
        cache_root = os.path.join(data_args.cache_dir or DEFAULT_CACHE_DIR, "preprocessed")
        config = model.config
        unused = ["actor"] + [
            c
            for c, n in (("pixel_values", config.num_video_frames), ("audio_values", config.num_audio_frames))
            if not n
        ]
        with training_args.main_process_first(desc="preprocessing"):
            data = preprocess_to_cache(raw, processor, cache_root, num_proc=data_args.preprocessing_num_workers)
        data = datasets.DatasetDict(
            {k: v.remove_columns([c for c in unused if c in v.column_names]) for k, v in data.items()}
        )
    use_cache = can_cache_features(model, recipe_args)
    if use_cache:
        logger.info("Frozen backbone and no augmentation: encoding every clip once, then training the head")
        model.to(training_args.device)
        encode = dict(
            data_collator=collator, batch_size=training_args.per_device_eval_batch_size, device=training_args.device
        )
        data = {
            split: compute_pooled_features(model, ds, desc=f"encoder features ({split})", **encode)
            for split, ds in data.items()
        }
        collator = transformers.default_data_collator
    if streaming:  # by example with even batches, never by shard (see mmder_hf.data.distributed)
        sizes = {"train": training_args.per_device_train_batch_size, None: training_args.per_device_eval_batch_size}
        data = split_streams_by_example(data, sizes, training_args.world_size, training_args.process_index)
    return data, collator, use_cache


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


def report_rank_split(train: Any, training_args: TrainingArguments) -> Optional[str]:
    """Say how the training split is shared among processes, and how many clips repeat to fill the last batch.

    accelerate completes the last batch of an epoch from the start of the split so that every rank takes the same
    number of full batches: those clips are seen twice in that epoch. Returns the message (also logged).
    """
    world = training_args.world_size
    if world <= 1:
        return None
    per_step = training_args.per_device_train_batch_size * world
    uneven = False
    if isinstance(train, (datasets.IterableDataset, ExampleSplitStream)):
        uneven = True
        message = (
            f"The training stream ({train.n_shards} shard(s)) is split by example among {world} processes, so that "
            f"every process takes the same steps: each reads the whole stream and keeps its own part of each batch of "
            f"{per_step}; the last batch of each pass is completed from the first (how many: logged after each pass)"
        )
    else:
        repeated = -len(train) % per_step
        message = f"{len(train)} training clips shared among {world} processes"
        if repeated:
            uneven = True
            message += f"; {repeated} clip(s) repeat in each epoch to complete the last batch of {per_step}"
    if training_args.process_index == 0:
        (logger.warning if uneven else logger.info)(message)
    return message


def corpus_for_card(data_args: DataArguments) -> str:
    """The card template of a run: the corpus, or ``synthetic`` for the built-in synthetic corpus."""
    corpus = normalize_corpus_name(data_args.dataset_name)
    source = data_args.dataset_source
    synthetic = is_synthetic_source(source)
    return "synthetic" if corpus == "ravdess" and synthetic else corpus


def hyperparameters(training_args: TrainingArguments, recipe_args: RecipeArguments) -> dict:
    """The settings a model card shows."""
    world = max(training_args.world_size, 1)
    return {
        "recipe": recipe_args.recipe,
        "frozen backbone": recipe_args.freeze_backbone,
        "optimizer": training_args.optim,
        "learning rate": training_args.learning_rate,
        "lr schedule": f"{training_args.lr_scheduler_type}, warmup {training_args.warmup_steps}",
        "weight decay": training_args.weight_decay,
        "layer-wise lr decay": recipe_args.layer_decay,
        "drop path": recipe_args.drop_path_rate,
        "label smoothing": training_args.label_smoothing_factor,
        "mixup alpha": recipe_args.mixup_alpha,
        "face flips": recipe_args.flip,
        "batch size (total)": training_args.per_device_train_batch_size
        * training_args.gradient_accumulation_steps
        * world,
        "epochs": training_args.num_train_epochs
        if training_args.max_steps <= 0
        else f"{training_args.max_steps} steps",
        "seed": training_args.seed,
        "precision": "bf16" if training_args.bf16 else "fp16" if training_args.fp16 else "fp32",
    }


@dataclass
class CardWriter:
    """Writes a run's model card (also the `Trainer`'s hook before each push); ``widget`` is filled after testing."""

    model_args: ModelArguments
    data_args: DataArguments
    recipe_args: RecipeArguments
    training_args: TrainingArguments
    config: MultiMAEDERConfig
    widget: list = field(default_factory=list)
    #: ``split -> (clips, actors)`` of the data the run used, stated in the card (see :func:`split_sizes`).
    splits: dict = field(default_factory=dict)

    def __call__(self, output_dir: str) -> None:
        args = self.training_args
        write_model_card(
            output_dir,
            corpus_for_card(self.data_args),
            config=self.config,
            fold=self.data_args.fold,
            model_id=args.hub_model_id or os.path.basename(os.path.abspath(args.output_dir)),
            base_model=self.model_args.model_name_or_path,
            dataset_id=self.data_args.dataset_source,
            label_set=self.data_args.label_set,
            recipe=self.recipe_args.recipe,
            recipe_description=RECIPES[self.recipe_args.recipe].description,
            hyperparameters=hyperparameters(args, self.recipe_args),
            widget=self.widget,
            splits=self.splits,
        )


def fold_shortfall(data_args: DataArguments, splits: dict) -> dict[str, list[int]]:
    """``split -> actor ids`` of the standard fold that this run's data lacked (a missing or corrupt archive)."""
    corpus = corpus_for_card(data_args)
    if corpus == "synthetic" or data_args.fold is None or not splits:
        return {}
    from ..data.folds import missing_actors

    return missing_actors(corpus, data_args.fold, [a for _, actors in splits.values() for a in actors])


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
    recipe_args: RecipeArguments,
    training_args: TrainingArguments,
) -> dict[str, Any]:
    """Everything of a run that changes its results (corpus, source, fold, labels, strategy, backbone, processor
    settings, recipe, optimisation, seed, total batch size), as ``"group.field" -> value``; saved in run_args.json."""
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


def refuse_other_settings(output_dir: str, settings: dict[str, Any]) -> None:
    """Raise when ``output_dir`` holds a run made with other ``settings`` (resuming it would mix two runs)."""
    differences = settings_differences(output_dir, settings)
    if differences:
        raise ValueError(
            f"{output_dir} holds a run with other settings ({describe_differences(differences)}): "
            "use another --output_dir, or remove that folder to start again"
        )


def save_run_args(
    output_dir: str, argv: Optional[Sequence[str]], all_args: Sequence[Any], started: float, **extra
) -> str:
    """``run_args.json``: the command, every argument, wall time and versions, beside the model."""
    names = ("model", "data", "recipe", "training")
    record = {"argv": list(sys.argv if argv is None else argv)}
    record.update(
        {name: args.to_dict() if hasattr(args, "to_dict") else asdict(args) for name, args in zip(names, all_args)}
    )
    record["settings"] = result_settings(*all_args)
    record.update(wall_time_s=round(time.time() - started, 1), **extra)
    record["versions"] = {"torch": torch.__version__, "transformers": transformers.__version__}
    path = os.path.join(output_dir, "run_args.json")
    with open(path, "w") as f:
        json.dump(record, f, indent=1, default=str)
    return path


def widget_examples_from_split(
    split: datasets.Dataset,
    output_dir: str,
    hub_model_id: Optional[str],
    corpus: str,
    audio_sample_rate: int = 16000,
    count: int = 2,
) -> list:
    """Write ``count`` test clips of different emotions next to the card and precompute the model's outputs on them.

    Each clip is exactly what the model read from its row (:func:`~mmder_hf.data.media_writing.write_row_clip`:
    the row's time range with its audio in one file), so the card shows the model's output on the clip it shows.
    The clips go to ``<output_dir>/examples/`` (pushed with the model) and the card's ``widget`` entries point at
    their Hub URLs (or at the relative path when no ``--hub_model_id`` is given). A corpus whose licence forbids
    redistribution (IEMOCAP) gets no examples: they would be pushed with the model.
    """
    info = get_corpus_info(corpus)
    if not info.redistributable:
        logger.info("No widget examples: the %s licence forbids redistributing its clips", info.pretty_name)
        return []
    media = [c for c in ("video", "audio") if c in split.column_names]
    raw = split.cast_column("video", datasets.Video(decode=False))
    if "audio" in media:
        raw = raw.cast_column("audio", datasets.Audio(decode=False))
    names = split.features["emotion"].names
    examples, seen = [], set()
    os.makedirs(os.path.join(output_dir, "examples"), exist_ok=True)
    for row in raw:
        if row["emotion"] in seen:
            continue
        seen.add(row["emotion"])
        stem = os.path.splitext(os.path.basename(row["video"].get("path") or "clip"))[0]
        name = f"{names[row['emotion']]}_{stem}.mp4"
        target = write_row_clip(row, os.path.join(output_dir, "examples", name), audio_sample_rate)
        src = f"examples/{name}"
        if hub_model_id:
            src = f"https://huggingface.co/{hub_model_id}/resolve/main/{src}"
        examples.append({"path": target, "src": src, "example_title": f"{names[row['emotion']]} (test clip)"})
        if len(examples) == count:
            break
    return widget_examples(output_dir, examples, top_k=3)


__all__ = [
    "CardWriter",
    "DataArguments",
    "ModelArguments",
    "build_model",
    "build_processor",
    "corpus_for_card",
    "describe_differences",
    "end_process_group",
    "finished_training",
    "fold_shortfall",
    "load_trained_weights",
    "reuse_or_start_run",
    "hyperparameters",
    "load_data",
    "parse_args",
    "prepare_datasets",
    "report_rank_split",
    "result_settings",
    "save_run_args",
    "settings_differences",
    "setup_run",
    "split_sizes",
    "widget_examples_from_split",
]
