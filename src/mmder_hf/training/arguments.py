"""What a run is told: the argument dataclasses of every script and the one recipe-aware parser they share.

* `ModelArguments` / `DataArguments`: the backbone and the data, the same flags in every script.
* `RecipeArguments` (fine-tuning, with LoRA's flags) / `PretrainingArguments`: their ``recipe`` picks the defaults.
* `CrossValidationArguments` / `GridArguments`: which folds, and which models of the paper's grid.
* :func:`parse_args`, :func:`parse_pretraining_args`, :func:`parse_cross_validation_args`,
  :func:`parse_grid_args`: flags or one JSON file through ``HfArgumentParser``, with the recipe's defaults and the
  checkpoint's settings (:func:`fill_checkpoint_defaults`) filled in.
"""

from __future__ import annotations

import contextlib
import json
import sys
from dataclasses import dataclass, field, fields
from typing import Any, Iterator, Optional, Sequence

from transformers import HfArgumentParser, TrainingArguments

from ..data.corpora import PAPER_MODELS
from ..models.multimae_der import FUSION_STRATEGIES, MultiMAEDERConfig
from ..user_errors import UserError, check_choice, closest
from .lora import LoraArguments
from .recipes import MODEL_SIZES, PRETRAINING_RECIPES, RECIPES, Recipe, get_recipe


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


@dataclass
class RecipeArguments(LoraArguments):
    """Training choices beyond `TrainingArguments` (and LoRA's flags); a recipe sets their defaults, flags override."""

    recipe: str = field(
        default="quick",
        metadata={
            "help": "Preset of defaults that any flag overrides: "
            # argparse %-formats help texts: the descriptions' "5%" must reach it as "5%%"
            + "; ".join(f"'{r.name}': {r.description}" for r in RECIPES.values()).replace("%", "%%"),
            "choices": list(RECIPES),
        },
    )
    freeze_backbone: bool = field(
        default=False,
        metadata={"help": "Freeze the VideoMAE encoder (run in eval mode); train fc_norm + classifier only."},
    )
    layer_decay: float = field(
        default=1.0,
        metadata={"help": "Layer-wise lr decay: layer l of L gets lr * layer_decay ** (L + 1 - l) (1.0: off)."},
    )
    drop_path_rate: float = field(
        default=0.0, metadata={"help": "Stochastic depth: largest drop-path rate, linear over the encoder layers."}
    )
    mixup_alpha: float = field(
        default=0.0, metadata={"help": "Mixup of training clips with Beta(alpha, alpha) weights (0: off)."}
    )
    flip: bool = field(default=False, metadata={"help": "Random horizontal flips of the face frames while training."})
    use_feature_cache: bool = field(
        default=True,
        metadata={
            "help": "With a frozen backbone and no augmentation, compute the encoder features once and train the "
            "head on them (same result as the plain loop, much faster)."
        },
    )

    def __post_init__(self):
        get_recipe(self.recipe)

    @property
    def augments(self) -> bool:
        """Whether training inputs are randomly transformed (which rules out the feature cache)."""
        return self.mixup_alpha > 0 or self.flip


@dataclass
class PretrainingArguments:
    """Masking, target and unlabelled-data choices of a pre-training run."""

    recipe: str = field(
        default="quick",
        metadata={
            "help": "Defaults that any flag overrides: "
            + "; ".join(f"'{r.name}' ({r.description})" for r in PRETRAINING_RECIPES.values()).replace("%", "%%")
            + ".",
            "choices": list(PRETRAINING_RECIPES),
        },
    )
    mask_type: Optional[str] = field(
        default=None,
        metadata={
            "help": "'tube' (the same patches in every tubelet of a modality) or 'random'. Default, as for the "
            "masking and target flags below: a MultiMAE-DER checkpoint's setting, else tube.",
            "choices": ["tube", "random"],
        },
    )
    mask_ratio_video: Optional[float] = field(
        default=None,
        metadata={
            "help": "Masked share of the video tubelets, and of every tubelet that mixes the modalities "
            "(OFOS, RFAS, CFAS, SFAS: this one ratio). Default: the checkpoint's, else 0.9.",
        },
    )
    mask_ratio_audio: Optional[float] = field(
        default=None,
        metadata={
            "help": "Masked share of the pure audio tubelets (FSLF, FFLS, audio). Default: the checkpoint's, else 0.8."
        },
    )
    pretraining_target: Optional[str] = field(
        default=None,
        metadata={
            "help": "'pixels' (normalised per patch with --norm_pix_loss) or 'frame_difference' (MAE-DFER). Default: "
            "the checkpoint's, else pixels.",
            "choices": ["pixels", "frame_difference"],
        },
    )
    norm_pix_loss: Optional[bool] = field(
        default=None,
        metadata={
            "help": "Normalise each target patch (VideoMAE). Default: the checkpoint's, else true.",
            "nargs": "?",
            "const": True,
        },
    )
    video_column: str = field(
        default="video", metadata={"help": "Video column of a Hub dataset (--dataset_name videos)."}
    )
    validation_clips: int = field(
        default=64,
        metadata={"help": "Clips of a folder of videos held out for the validation loss (at most a tenth of them)."},
    )
    reconstruction_clips: int = field(
        default=2, metadata={"help": "Held-out clips drawn in the reconstruction picture after every evaluation."}
    )

    def __post_init__(self):
        get_recipe(self.recipe, PRETRAINING_RECIPES)


@dataclass
class CrossValidationArguments:
    """Which folds a cross-validation runs, and what it does with a fold run with other settings."""

    folds: Optional[str] = field(
        default=None, metadata={"help": "Comma-separated fold numbers (default: every fold of the corpus)."}
    )
    rerun_mismatched: bool = field(
        default=False,
        metadata={
            "help": "Train again a fold whose saved run used other settings (the old folder is kept beside it)."
        },
    )

    def fold_list(self) -> Optional[list[int]]:
        """``--folds`` as numbers (``None``: every fold)."""
        if not self.folds:
            return None
        try:
            return [int(k) for k in self.folds.split(",") if k.strip()]
        except ValueError:
            message = f"--folds: expected comma-separated fold numbers such as 1,2,3, got {self.folds!r}"
            raise UserError(message) from None


@dataclass
class GridArguments:
    """Which models the paper's grid compares."""

    strategies: str = field(
        default=",".join(PAPER_MODELS),
        metadata={
            "help": "Comma-separated models: fusion strategies and the baselines 'video' / 'audio' (default: the "
            "paper's)."
        },
    )

    def model_list(self) -> list[str]:
        """``--strategies`` as the models' own spellings (``fslf`` -> ``FSLF``), checked."""
        known = {s.lower(): s for s in (*FUSION_STRATEGIES, "video", "audio")}
        given = [s.strip() for s in self.strategies.split(",") if s.strip()]
        unknown = [s for s in given if s.lower() not in known]
        if unknown or not given:
            hints = [close for s in unknown if (close := closest(s, known.values()))]
            raise UserError(
                f"--strategies: unknown {', '.join(unknown) or 'nothing given'}; expected some of "
                f"{', '.join(known.values())}" + (f" (did you mean {', '.join(hints)}?)" if hints else "")
            )
        return [known[s.lower()] for s in given]


class OneLineParser(HfArgumentParser):
    """`HfArgumentParser` whose usage errors (``--fold abc``, a flag without its value) are one line and exit status
    2, not the usage of ~150 options."""

    def error(self, message: str):
        self.exit(2, f"{self.prog}: error: {message}; see --help\n")


@contextlib.contextmanager
def arguments_checked_by_their_classes() -> Iterator[None]:
    """A combination the argument classes themselves refuse (``TrainingArguments``: ``--bf16`` on a machine without a
    bf16 GPU, ``--load_best_model_at_end`` with mismatched steps...) as one line, not a traceback."""
    try:
        yield
    except UserError:
        raise
    except ValueError as error:
        message = " ".join(str(error).split())
        raise UserError(f"{message} (see --help)") from None


def parse_with_recipe(
    types: tuple, recipe_type: type, recipes: dict[str, Recipe], argv: Optional[Sequence[str]] = None
) -> tuple:
    """Parse ``types`` from flags or one JSON file; the ``recipe`` field of ``recipe_type`` picks the defaults.

    The recipe named (one of ``recipes``; default ``quick``) gives the defaults, and every flag or key given
    overrides them. One parser for every script, so that they all read their arguments the same way.

    Raises:
        `~mmder_hf.user_errors.UserError`: a flag's mistake, found before any data or model is made (the scripts
        print it as one line): :func:`~mmder_hf.training.checks.check_arguments`.
    """
    from .checks import check_arguments, spell_choices  # the checks read these dataclasses

    argv = list(sys.argv[1:] if argv is None else argv)
    parser = OneLineParser(types)
    known = {f.name for dataclass_type in types for f in fields(dataclass_type)}
    if len(argv) == 1 and argv[0].endswith(".json"):
        with open(argv[0]) as f:
            given = json.load(f)
        unknown = [key for key in given if key not in known]
        if unknown:  # one line naming the file, the keys and the closest ones
            hints = [close.removeprefix("--") for key in unknown if (close := closest_option(types, f"--{key}"))]
            hint = f" (did you mean {', '.join(hints)}?)" if hints else ""
            parser.exit(2, f"{parser.prog}: error: {argv[0]}: unknown key(s) {', '.join(unknown)}{hint}\n")
        if "recipe" in given:
            given["recipe"] = check_choice(f"{argv[0]}: recipe", given["recipe"], recipes)
        defaults = get_recipe(given.get("recipe", "quick"), recipes).defaults()
        with arguments_checked_by_their_classes():
            parsed = parser.parse_dict({**{k: v for k, v in defaults.items() if k in known}, **given})
    else:
        argv = spell_choices(types, argv)
        # the recipe first (its defaults go under the flags); --help is the full parser's
        recipe, _ = OneLineParser(recipe_type, add_help=False).parse_known_args(argv)
        parser.set_defaults(**{k: v for k, v in recipes[recipe.recipe].defaults().items() if k in known})
        with arguments_checked_by_their_classes():
            *parsed, rest = parser.parse_args_into_dataclasses(args=argv, return_remaining_strings=True)
        if rest:  # one line (not the usage of ~150 options) and argparse's usage-error status
            parser.exit(2, f"{parser.prog}: error: {unrecognized_arguments(types, rest)}; see --help\n")
    check_arguments(parsed)
    fill_checkpoint_defaults(parsed)
    return tuple(parsed)


def closest_option(types: Sequence[type], word: str) -> Optional[str]:
    """The option of the dataclasses ``types`` closest to ``word`` (``--learnig_rate`` -> ``--learning_rate``), or
    ``None`` when none is close."""
    names = {}
    for dataclass_type in types:
        for f in fields(dataclass_type):
            canonical = f"--{f.name}"
            for name in (canonical, canonical.replace("_", "-"), *f.metadata.get("aliases", ())):
                names.setdefault(name, canonical)
    close = closest(word.split("=")[0], names)
    return names[close] if close else None


def unrecognized_arguments(types: Sequence[type], strings: Sequence[str]) -> str:
    """``unrecognized arguments: --learnig_rate 1e-3 (did you mean --learning_rate?)``: the words no dataclass of
    ``types`` takes, and the closest option when one is close."""
    message = f"unrecognized arguments: {' '.join(strings)}"
    for string in strings:
        close = closest_option(types, string) if string.startswith("--") else None
        if close:
            return f"{message} (did you mean {close}?)"
    return message


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
    return parse_with_recipe(types, RecipeArguments, RECIPES, argv)


def parse_pretraining_args(argv: Optional[Sequence[str]] = None) -> tuple:
    """``(ModelArguments, DataArguments, PretrainingArguments, TrainingArguments)`` from flags or one JSON file.

    ``--recipe`` (default ``quick``) gives the `TrainingArguments` defaults; every flag overrides them.
    """
    types = (ModelArguments, DataArguments, PretrainingArguments, TrainingArguments)
    return parse_with_recipe(types, PretrainingArguments, PRETRAINING_RECIPES, argv)


def parse_cross_validation_args(argv: Optional[Sequence[str]] = None) -> tuple:
    """``(CrossValidationArguments, ModelArguments, DataArguments, RecipeArguments, TrainingArguments)``: the folds
    and the fine-tuning flags of each fold's run, from flags or one JSON file."""
    types = (CrossValidationArguments, ModelArguments, DataArguments, RecipeArguments, TrainingArguments)
    return parse_with_recipe(types, RecipeArguments, RECIPES, argv)


def parse_grid_args(argv: Optional[Sequence[str]] = None) -> tuple:
    """``(GridArguments, CrossValidationArguments, ModelArguments, DataArguments, RecipeArguments,
    TrainingArguments)``: the models of the grid, the folds, and every fine-tuning flag."""
    types = (
        GridArguments,
        CrossValidationArguments,
        ModelArguments,
        DataArguments,
        RecipeArguments,
        TrainingArguments,
    )
    return parse_with_recipe(types, RecipeArguments, RECIPES, argv)


__all__ = [
    "FROM_CHECKPOINT",
    "CrossValidationArguments",
    "DataArguments",
    "GridArguments",
    "ModelArguments",
    "PretrainingArguments",
    "RecipeArguments",
    "fill_checkpoint_defaults",
    "parse_args",
    "parse_cross_validation_args",
    "parse_grid_args",
    "parse_pretraining_args",
    "OneLineParser",
    "closest_option",
    "parse_with_recipe",
    "unrecognized_arguments",
]
