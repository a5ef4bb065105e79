"""What the flags ask, checked before any data is built or model made: a value outside its choices (with the
closest one), a fold the corpus lacks, a checkpoint folder that is not there, a ``--config_overrides`` key the config
lacks, ``--push_to_hub`` without a Hub to push to.

:func:`check_arguments` runs at the end of every script's parsing
(:func:`~mmder_hf.training.arguments.parse_with_recipe`); each mistake is a
:class:`~mmder_hf.user_errors.UserError`, one line from the scripts. A data source is checked where it is read
(:func:`~mmder_hf.data.sources.list_source`), still before any clip is decoded: parsing alone may name a folder of
another machine.
"""

from __future__ import annotations

import os
from dataclasses import fields, is_dataclass
from typing import Any, Optional, Sequence

from transformers import TrainingArguments

from ..data.corpora import CORPORA, LABEL_SETS, get_label_set, normalize_corpus_name
from ..models.multimae_der import FUSION_STRATEGIES, MultiMAEDERConfig
from ..user_errors import INPUT_STATUS, UserError, check_choice, did_you_mean, locate
from .arguments import (
    CrossValidationArguments,
    DataArguments,
    GridArguments,
    ModelArguments,
    PretrainingArguments,
    RecipeArguments,
)
from .lora import check_lora_arguments


def choice_fields(types: Sequence[type]) -> dict[str, tuple[str, list[str]]]:
    """``spelling -> (--flag, choices)`` of every field of ``types`` with fixed choices, under each spelling the
    parser takes (``--model_size``, ``--model-size``, aliases)."""
    found = {}
    for dataclass_type in types:
        for f in fields(dataclass_type):
            if f.metadata.get("choices"):
                flag = f"--{f.name}"
                for name in (flag, flag.replace("_", "-"), *f.metadata.get("aliases", ())):
                    found[name] = (flag, list(f.metadata["choices"]))
    return found


def spell_choices(types: Sequence[type], argv: Sequence[str]) -> list[str]:
    """``argv`` with the value of every flag of fixed choices spelled as its choice (any case is taken), checked
    before argparse sees it: a typo is one line with the closest choice (:func:`~mmder_hf.user_errors.check_choice`),
    not argparse's usage and "invalid choice"."""
    known = choice_fields(types)
    out = list(argv)
    for i, arg in enumerate(out):
        name, equals, value = arg.partition("=")
        if name not in known:
            continue
        flag, choices = known[name]
        if equals:
            out[i] = f"{name}={check_choice(flag, value, choices)}"
        elif i + 1 < len(out) and not out[i + 1].startswith("--"):
            out[i + 1] = check_choice(flag, out[i + 1], choices)
    return out


#: ``--dataset_name`` of a folder (or Hub dataset) of unlabelled videos: pre-training only.
VIDEOS = "videos"


#: What a cross-validation or a grid pushed without ``--hub_model_id`` is told.
CROSS_VALIDATION_NEEDS_HUB_ID = "--push_to_hub needs --hub_model_id (the aggregate repo; fold k goes to <id>-fold<k>)"
GRID_NEEDS_HUB_ID = "--push_to_hub needs --hub_model_id (the summary repo; models go to <id>-<model>)"


def _find(parsed: Sequence[Any], kind: type) -> Any:
    return next((args for args in parsed if isinstance(args, kind)), None)


def check_arguments(parsed: Sequence[Any]) -> None:
    """Refuse what the parsed flags cannot mean, before any data is built or model made: a value outside its
    choices (with the closest one), a fold the corpus lacks, a checkpoint folder that is not there, a
    ``--config_overrides`` key the config lacks, ``--push_to_hub`` without a Hub to push to.

    A data source is checked where it is read (:func:`~mmder_hf.data.sources.list_source`), which is still before
    any clip is decoded: parsing alone may name a folder of another machine. Values of fixed choices given in any
    case are set to their choice's spelling.

    Raises:
        `~mmder_hf.user_errors.UserError`: the first mistake, as one line naming the flag.
    """
    for args in parsed:
        if isinstance(args, TrainingArguments) or not is_dataclass(args):
            continue
        for f in fields(args):  # a JSON file's values (argv's are spelled before argparse: spell_choices)
            value = getattr(args, f.name)
            if f.metadata.get("choices") and value is not None:
                setattr(args, f.name, check_choice(f"--{f.name}", value, f.metadata["choices"]))
    model_args, data_args = _find(parsed, ModelArguments), _find(parsed, DataArguments)
    if model_args is not None:
        check_model_arguments(model_args)
    if data_args is not None:
        strategy = model_args.fusion_strategy if model_args is not None else None
        check_data_arguments(data_args, pretraining=_find(parsed, PretrainingArguments) is not None, strategy=strategy)
    recipe_args, training_args = _find(parsed, RecipeArguments), _find(parsed, TrainingArguments)
    if recipe_args is not None:
        check_lora_arguments(recipe_args, training_args)
    grid, cv = _find(parsed, GridArguments), _find(parsed, CrossValidationArguments)
    if grid is not None:
        grid.model_list()
    if cv is not None and data_args is not None:
        check_folds(cv, data_args)
    if training_args is not None and training_args.push_to_hub:
        if cv is not None and not training_args.hub_model_id:
            raise UserError(GRID_NEEDS_HUB_ID if grid is not None else CROSS_VALIDATION_NEEDS_HUB_ID)
        check_hub_access(training_args)


def check_model_arguments(model_args: ModelArguments) -> None:
    """``--fusion_strategy`` among the strategies (any case), ``--model_name_or_path`` a folder that exists or a Hub
    id (:func:`~mmder_hf.user_errors.locate`), ``--config_overrides`` keys of the config."""
    if model_args.fusion_strategy is not None:
        check_choice("--fusion_strategy", model_args.fusion_strategy, FUSION_STRATEGIES)
    if model_args.model_name_or_path is not None:
        locate("--model_name_or_path", model_args.model_name_or_path)
    if model_args.config_overrides:
        from .run import parse_config_overrides  # run.py builds on this module

        try:
            parse_config_overrides(model_args.config_overrides, known=MultiMAEDERConfig().to_dict())
        except ValueError as error:
            raise UserError(str(error)) from None


def check_data_arguments(data_args: DataArguments, pretraining: bool, strategy: Optional[str] = None) -> None:
    """``--dataset_name`` a corpus (or ``videos`` when pre-training), ``--label_set`` one of the corpus's and
    ``--fold`` one of its folds (the synthetic corpus's for the built-in one)."""
    name = data_args.dataset_name
    if name.lower() == VIDEOS:
        if not pretraining:
            raise UserError(
                "--dataset_name videos: fine-tuning needs a labelled corpus (ravdess, crema_d or iemocap); a folder "
                "of unlabelled videos pre-trains with pretrain.py --dataset_name videos"
            )
        if data_args.dataset_source is None:
            raise UserError("--dataset_name videos needs --dataset_source: a folder of videos or a Hub dataset id")
        return
    try:
        corpus = normalize_corpus_name(name)
    except ValueError:
        choices = [*CORPORA, VIDEOS] if pretraining else list(CORPORA)
        expected = f"expected one of {', '.join(choices)}{did_you_mean(name, choices)}"
        raise UserError(f"--dataset_name: unknown {name!r}; {expected}") from None
    if (strategy or "").lower() == "prefused":  # the authors' pre-fused zips: their own splits
        return
    if data_args.label_set is not None:
        try:
            get_label_set(corpus, data_args.label_set)
        except ValueError:
            data_args.label_set = check_choice("--label_set", data_args.label_set, LABEL_SETS[corpus])
    folds, what = corpus_folds(corpus, data_args.dataset_source)
    if data_args.fold not in folds:
        raise UserError(f"--fold {data_args.fold}: {what} has folds {span(folds)}")


def corpus_folds(corpus: str, source: Optional[str]) -> tuple[list[int], str]:
    """The folds a run on ``corpus`` read from ``source`` has, and the name to give it in a message."""
    from ..data.folds import available_folds
    from ..data.synthetic import is_synthetic_source

    synthetic = corpus == "ravdess" and is_synthetic_source(source)
    return available_folds(corpus, source), "the synthetic corpus" if synthetic else corpus


def span(numbers: Sequence[int]) -> str:
    """``1-6`` for consecutive numbers, else ``1, 3, 4``."""
    numbers = sorted(numbers)
    if numbers and numbers == list(range(numbers[0], numbers[-1] + 1)) and len(numbers) > 2:
        return f"{numbers[0]}-{numbers[-1]}"
    return ", ".join(map(str, numbers))


def check_folds(cv_args: CrossValidationArguments, data_args: DataArguments) -> None:
    """Every fold of ``--folds`` is one of the corpus's: refused before the first fold trains."""
    wanted = cv_args.fold_list()
    if not wanted or data_args.dataset_name.lower() == VIDEOS:
        return
    folds, what = corpus_folds(normalize_corpus_name(data_args.dataset_name), data_args.dataset_source)
    unknown = [k for k in wanted if k not in folds]
    if unknown:
        missing = ", ".join(map(str, unknown))
        raise UserError(f"--folds {cv_args.folds}: {what} has folds {span(folds)} (no fold {missing})")


def check_hub_access(training_args: TrainingArguments) -> None:
    """Make sure ``--push_to_hub`` can push, before any data is built: the repo the `Trainer` would create first is
    created now (``exist_ok``), so that no network, offline mode or a missing login is one line here rather than a
    traceback after training.

    Raises:
        `~mmder_hf.user_errors.UserError` (exit status 1): naming the Hub's address and what to do.
    """
    from huggingface_hub import HfApi
    from huggingface_hub.errors import HfHubHTTPError, HFValidationError, LocalTokenNotFoundError, OfflineModeIsEnabled

    api = HfApi(token=training_args.hub_token)
    repo = training_args.hub_model_id or os.path.basename(os.path.abspath(training_args.output_dir))
    drop = "or drop --push_to_hub"
    try:
        api.create_repo(repo, private=training_args.hub_private_repo, exist_ok=True)
    except OfflineModeIsEnabled:
        message = f"--push_to_hub: offline mode is on (HF_HUB_OFFLINE=1): unset HF_HUB_OFFLINE to push, {drop}"
        raise UserError(message, status=INPUT_STATUS) from None
    except HFValidationError as error:
        raise UserError(f"--hub_model_id {repo}: not a Hub repo id ({error})") from None
    except (LocalTokenNotFoundError, HfHubHTTPError) as error:
        code = getattr(getattr(error, "response", None), "status_code", None)
        if isinstance(error, LocalTokenNotFoundError) or code in (401, 403):
            message = (
                f"--push_to_hub: the Hub at {api.endpoint} does not let this user create or write {repo} (not "
                f"logged in, or a token without write access): run `huggingface-cli login` or set HF_TOKEN, {drop}"
            )
        else:
            message = f"--push_to_hub: the Hub at {api.endpoint} refused to create {repo} (HTTP {code}): {drop}"
        raise UserError(message, status=INPUT_STATUS) from None
    except Exception as error:  # the HTTP client's own connection and timeout errors
        message = f"--push_to_hub: cannot reach the Hub at {api.endpoint} ({error}): check the network {drop}"
        raise UserError(message, status=INPUT_STATUS) from None


__all__ = [
    "CROSS_VALIDATION_NEEDS_HUB_ID",
    "GRID_NEEDS_HUB_ID",
    "VIDEOS",
    "check_arguments",
    "check_data_arguments",
    "check_folds",
    "check_hub_access",
    "check_model_arguments",
    "choice_fields",
    "corpus_folds",
    "span",
    "spell_choices",
]
