"""The cards of what this project publishes, rendered from fixed inputs into ``model_cards/<repo>/README.md``.

``model_cards/inputs.json`` names each published repository, what it is (a classifier of one corpus, the pre-trained
encoder, the strategy comparison), its settings and the one documented command that trains it. This module renders
each card with the same builder the training scripts use, so a change of a template or of a corpus fact shows up as a
reviewed diff of ``model_cards/``; ``--check`` renders them again and fails on any difference (a test runs it).
Until a repository has real results, its card says plainly that no checkpoint has been trained yet and gives the
command; it carries no model-index.

    python -m mmder_hf.cards.publish_cards              # (re)write model_cards/*/README.md
    python -m mmder_hf.cards.publish_cards --check      # exit 1 and print the diff when a card differs
"""

from __future__ import annotations

import argparse
import dataclasses
import difflib
import json
import shlex
import sys
from pathlib import Path
from typing import Any, Optional, Sequence, Union

from huggingface_hub import ModelCard

from ..data.corpora import get_corpus_info, get_label_set
from ..user_errors import UserError


INPUTS_FILE = "inputs.json"
#: Which setting of an inputs entry each flag of its command states (the command must agree with the entry).
COMMAND_FLAGS = {
    "--dataset_name": "dataset_name",
    "--dataset_source": "dataset_source",
    "--fold": "fold",
    "--label_set": "label_set",
    "--fusion_strategy": "fusion_strategy",
    "--model_name_or_path": "base_model",
    "--recipe": "recipe",
    "--output_dir": "output_dir",
    "--strategies": "models",
}


def command_flags(command: str) -> dict[str, Any]:
    """``--flag value`` pairs of a shell command (``True`` for a flag without a value), line continuations joined."""
    tokens = shlex.split(command.replace("\\\n", " "))
    flags: dict[str, Any] = {}
    for i, token in enumerate(tokens):
        if token.startswith("--"):
            value = tokens[i + 1] if i + 1 < len(tokens) and not tokens[i + 1].startswith("--") else True
            flags[token] = value
    return flags


def _defaults(kind: str) -> dict[str, Any]:
    """The scripts' own defaults of the settings a command may leave out (``None``: no fixed default)."""
    from ..training.arguments import DataArguments, ModelArguments, PretrainingArguments, RecipeArguments

    recipe = PretrainingArguments if kind == "pretraining" else RecipeArguments
    found = {f.name: f.default for cls in (ModelArguments, DataArguments, recipe) for f in dataclasses.fields(cls)}
    return {"dataset_name": found["dataset_name"], "fold": found["fold"], "recipe": found["recipe"]}


def _pretraining_default(name: str) -> Any:
    from ..training.arguments import PretrainingArguments

    return next(f.default for f in dataclasses.fields(PretrainingArguments) if f.name == name)


def check_command(entry: dict, owner: str, where: str) -> dict[str, Any]:
    """The entry's command flags, after checking that they say what the entry says (one clear line otherwise)."""
    flags = command_flags(entry["command"])
    defaults = _defaults(entry["kind"])
    for flag, key in COMMAND_FLAGS.items():
        if key not in entry:
            continue
        stated = flags.get(flag, defaults.get(key))
        expected = ",".join(entry[key]) if isinstance(entry[key], list) else entry[key]
        if stated is not None and str(stated) != str(expected):
            raise UserError(f"{where}: {key} is {expected!r} but the command gives {flag} {stated!r}; make them agree")
    hub_id = flags.get("--hub_model_id")
    if hub_id is not None and hub_id != f"{owner}/{entry['repo']}":
        raise UserError(f"{where}: the command pushes to {hub_id!r}, not to {owner}/{entry['repo']}; make them agree")
    return flags


def command_note(entry: dict, owner: str, flags: dict) -> str:
    """Where the documented command writes the model, and how it is published."""
    repo = f"{owner}/{entry['repo']}"
    if entry["kind"] == "comparison":
        note = f"It cross-validates every model in `{entry['output_dir']}/<model>` and writes this card there"
    else:
        note = f"It writes the model, its processor and this card to `{entry['output_dir']}`"
    if "--push_to_hub" in flags and entry["kind"] == "comparison":
        where = f"model `m` as `{repo}-<m>` and its fold `k` as `{repo}-<m>-fold<k>`"
        return note + f"; it publishes it as `{repo}`, {where}."
    if "--push_to_hub" in flags:
        return note + f", and publishes them as `{repo}`."
    return note + f"; with `--push_to_hub --hub_model_id {repo}` it publishes them too."


def _config(entry: dict, label_names: Optional[Sequence[str]] = None) -> Any:
    from ..models.multimae_der import MultiMAEDERConfig

    names = list(label_names or [])
    labels = {"id2label": dict(enumerate(names)), "label2id": {n: i for i, n in enumerate(names)}} if names else {}
    return MultiMAEDERConfig(fusion_strategy=entry.get("fusion_strategy") or "FSLF", **entry["config"], **labels)


def render_entry(entry: dict, owner: str, where: str = INPUTS_FILE) -> ModelCard:
    """The card of one inputs entry, rendered by the card builder with no results (none exist yet)."""
    from . import render_model_card
    from .cards import render_pretraining_card
    from .comparison import render_comparison_card, summarize_grid

    flags = check_command(entry, owner, where)
    repo_id = f"{owner}/{entry['repo']}"
    command = entry["command"]
    note = command_note(entry, owner, flags)
    if entry["kind"] == "classifier":
        from ..data.folds import get_fold
        from ..training.recipes import RECIPES

        corpus = get_corpus_info(entry["dataset_name"]).name
        label_set = get_label_set(corpus, entry.get("label_set"))
        fold = get_fold(corpus, entry["fold"])
        return render_model_card(
            corpus,
            repo_id,
            {},
            config=_config(entry, label_set.names),
            base_model=entry.get("base_model"),
            dataset_id=entry.get("dataset_source"),
            label_set=label_set.name,
            recipe=entry["recipe"],
            recipe_description=RECIPES[entry["recipe"]].description,
            fold=entry["fold"],
            splits={split: (None, list(getattr(fold, split))) for split in ("train", "validation", "test")},
            training_command=command,
            training_command_note=note,
        )
    if entry["kind"] == "pretraining":
        from ..training.pretraining import describe_masks, describe_target

        config = _config(entry)
        return render_pretraining_card(
            config,
            repo_id,
            entry["data_description"],
            "every clip found but the held-out ones",
            _pretraining_default("validation_clips"),
            describe_masks(config),
            describe_target(config),
            dataset_id=entry.get("dataset_source"),
            base_model=entry.get("base_model"),
            training_command=command,
            training_command_note=note,
        )
    if entry["kind"] == "comparison":
        from ..training.grid import model_repo

        corpus = get_corpus_info(entry["dataset_name"]).name
        from ..data.folds import get_folds

        summary = summarize_grid({model: {} for model in entry["models"]}, corpus, entry.get("label_set"))
        planned = len(get_folds(corpus))  # what the command runs (no --folds: every fold of the corpus)
        protocol = get_corpus_info(corpus).protocol
        summary["protocol"] = f"{planned}-fold subject-independent cross-validation ({protocol})"
        return render_comparison_card(
            summary,
            repo_id,
            model_repos={model: model_repo(repo_id, model) for model in entry["models"]},
            base_model=entry.get("base_model"),
            dataset_id=entry.get("dataset_source"),
            recipe=entry["recipe"],
            command=command,
            chart_file=None,
            training_command_note=note,
        )
    raise UserError(f"{where}: kind {entry['kind']!r} unknown; expected classifier, pretraining or comparison")


def render_cards(folder: Union[str, Path]) -> dict[Path, str]:
    """``README.md`` path -> text of every card ``<folder>/inputs.json`` lists."""
    folder = Path(folder)
    path = folder / INPUTS_FILE
    if not path.is_file():
        raise UserError(f"{path}: no such file; run from the repository root or pass --model_cards_dir")
    inputs = json.loads(path.read_text(encoding="utf-8"))
    cards = {}
    for number, entry in enumerate(inputs["cards"], 1):
        where = f"{path} (card {number}, {entry.get('repo')})"
        cards[folder / entry["repo"] / "README.md"] = str(render_entry(entry, inputs["hub_owner"], where))
    return cards


def differences(folder: Union[str, Path]) -> list[str]:
    """Unified diffs between the committed cards and what the inputs render now (``[]``: up to date)."""
    diffs = []
    for path, text in render_cards(folder).items():
        committed = path.read_text(encoding="utf-8") if path.is_file() else ""
        if committed != text:
            lines = difflib.unified_diff(
                committed.splitlines(True), text.splitlines(True), f"{path} (committed)", f"{path} (rendered)"
            )
            diffs.append("".join(lines))
    return diffs


def main(argv: Optional[Sequence[str]] = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--model_cards_dir", default="model_cards", help="folder holding inputs.json")
    parser.add_argument("--check", action="store_true", help="write nothing; exit 1 if a card differs")
    args = parser.parse_args(argv)
    if args.check:
        diffs = differences(args.model_cards_dir)
        sys.stdout.write("".join(diffs))
        if diffs:
            print(f"{len(diffs)} card(s) differ from their inputs: run python -m mmder_hf.cards.publish_cards")
        return 1 if diffs else 0
    for path, text in render_cards(args.model_cards_dir).items():
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text, encoding="utf-8")
        print(path)
    return 0


__all__ = ["check_command", "command_flags", "differences", "render_cards", "render_entry"]


if __name__ == "__main__":
    from ..user_errors import script_errors

    with script_errors():
        sys.exit(main())
