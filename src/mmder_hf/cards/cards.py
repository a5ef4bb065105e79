"""Model cards and Hub pushes for MultiMAE-DER models: the entry points the training scripts call.

Every card is made by the one builder (:mod:`mmder_hf.cards.builder`): ``templates/model_card.md`` for a classifier
of any corpus (one fold or a cross-validation), ``templates/pretraining.md`` for a pre-trained masked autoencoder,
``templates/comparison.md`` for a strategy comparison (:mod:`mmder_hf.cards.comparison`). What a card states about
the corpus (name, licence, protocol, population, bias, licence notice, citation, tags) is read from
:data:`mmder_hf.data.corpora.CORPUS_INFO`, so model cards, dataset cards and the builders cannot disagree. The YAML
metadata (licence, ``library_name``, ``pipeline_tag``, tags with ``custom_code``, datasets, ``base_model`` and a
``model-index`` with WAR and UAR per fold and their mean) is built with `ModelCardData` and `EvalResult` and checked
offline (:func:`mmder_hf.cards.metadata.check_card_metadata`) before it is written. An existing ``README.md`` is
updated, not overwritten: only the block between ``<!-- mmder-hf:card:begin -->`` and ``<!-- mmder-hf:card:end -->``
is replaced, and existing tags and datasets are kept.
"""

from __future__ import annotations

import json
import logging
import os
from pathlib import Path
from typing import Any, Optional, Sequence, Union

from huggingface_hub import HfApi, ModelCard

from ..data.corpora import get_corpus_info, get_label_set
from .builder import (
    BEGIN_MARKER,
    EMOTION_RECOGNITION_RISKS,
    END_MARKER,
    MODEL_CARDS_DIR,
    PAPER_CITATION,
    VIDEOMAE_CITATION,
    backbone_license,
    build_card,
    bullets,
    card_metadata,
    model_license,
    paragraph,
    quote,
    saved_processor_settings,
    template_path,
)
from .describe import (
    _finite,
    completed_processor_settings,
    describe_preprocessing,
    describe_splits,
    eval_results,
    hyperparameter_table,
    mean_std,
    paper_reference,
    results_table,
)
from .metadata import check_card_metadata, hub_dataset_id


logger = logging.getLogger(__name__)

#: Tags of every classifier card, before the corpus's, the strategy's and the caller's.
CLASSIFIER_TAGS = (
    "multimae-der",
    "videomae",
    "emotion-recognition",
    "audio-visual",
    "video-classification",
    "mmder-hf",
)
PRETRAINING_TAGS = ("multimae-der", "videomae", "masked-autoencoder", "self-supervised", "audio-visual", "mmder-hf")


def _label_set_note(corpus: str, label_set: Optional[str]) -> Optional[str]:
    """What the card adds after the label set's name (the synthetic corpus uses RAVDESS's label sets)."""
    if not label_set:
        return None
    try:
        return get_label_set("ravdess" if corpus == "synthetic" else corpus, label_set).card_note
    except ValueError:
        return None


def render_model_card(
    corpus: str,
    model_id: str,
    fold_results: dict[int, dict],
    config: Any = None,
    base_model: Optional[str] = None,
    dataset_id: Optional[str] = None,
    label_names: Optional[Sequence[str]] = None,
    recipe: Optional[str] = None,
    recipe_description: str = "",
    hyperparameters: Optional[dict] = None,
    fold: Optional[int] = None,
    label_set: Optional[str] = None,
    confusion_matrix_file: Optional[str] = None,
    extra_tags: Sequence[str] = (),
    templates_dir: Union[str, os.PathLike, None] = None,
    widget: Optional[list] = None,
    processor_settings: Optional[dict] = None,
    splits: Optional[dict] = None,
    training_command: Optional[str] = None,
    **template_kwargs,
) -> ModelCard:
    """Render the card of a model (one fold) or of a cross-validation (several folds) from the one model template.

    Args:
        corpus (`str`): ``ravdess``, ``crema_d``, ``iemocap`` or ``synthetic``; its registry entry says what the card
            states about the data.
        model_id (`str`): Hub id (``user/multimae-der-ravdess``) or name shown in the usage code.
        fold_results (`dict`): ``{fold: metrics}`` with ``test_war`` / ``test_uar`` (and ``eval_*``) as fractions;
            ``{}`` for a model not trained yet (the card says so and has no model-index).
        config (`MultiMAEDERConfig`, *optional*): the model's config: clip layout, backbone size, strategy and labels.
        base_model (`str`, *optional*): backbone the model was fine-tuned from (``None``: random initialisation).
        dataset_id (`str`, *optional*): what the run read; metadata ``datasets`` only if it is a Hub dataset id.
        recipe / recipe_description / hyperparameters: the training recipe and settings, shown in the card (any
            settings: LoRA's rank, target modules and trainable parameters appear as rows when the run has them).
        confusion_matrix_file (`str`, *optional*): file name of the confusion-matrix PNG in the repository.
        splits (`dict`, *optional*): ``split -> (clips, actor ids)`` of the data used, stated in the card.
        processor_settings (`dict`, *optional*): the saved processor's settings; the card's description of the
            inputs is rendered from them (defaults: the processor's defaults for ``config``).
        widget (`list[dict]`, *optional*): example clips with precomputed outputs
            (:func:`mmder_hf.cards.widget.widget_examples`); the hosted widget cannot run custom code, so they are
            shown as they are.
        training_command (`str`, *optional*): the command that trains this model, shown in the card.
        **template_kwargs: more variables for the template (``usage_model_id``, ``fold_repos``,
            ``training_command_note``...).
    """
    info = get_corpus_info(corpus)
    corpus = info.name
    licence = model_license(corpus, base_model)
    inputs = completed_processor_settings(processor_settings, config)
    if label_names is None and config is not None and getattr(config, "id2label", None):
        label_names = [config.id2label[i] for i in sorted(config.id2label)]
    strategy = getattr(config, "fusion_strategy", None)
    tags = [*CLASSIFIER_TAGS, *info.tags, *([f"fusion-{strategy.lower()}"] if strategy else []), *extra_tags]
    if any("lora" in str(key).lower() for key in hyperparameters or {}):
        tags.append("lora")
    dataset = hub_dataset_id(dataset_id)
    # the model-index names the Hub dataset the run read, or the corpus by name: never a made-up repo id
    data = card_metadata(
        "classifier",
        model_id.split("/")[-1],
        licence,
        tags,
        dataset_id=dataset,
        base_model=base_model,
        eval_results=eval_results(fold_results, dataset or corpus, info.pretty_name),
        widget=widget,
        metrics=["war", "uar"],
    )
    folds = sorted(fold_results)
    single = fold_results[folds[0]] if len(folds) == 1 else {}
    fold = fold if fold is not None else (folds[0] if len(folds) == 1 else None)
    face_crop = bool(inputs["face_crop"])
    licence_notice = info.card_licence_notice
    if licence_notice and base_model:
        licence_notice += " The backbone's licence also applies."
    context = {
        "model_id": model_id,
        "corpus": corpus,
        "corpus_pretty": info.pretty_name,
        "corpus_title": info.card_title or info.pretty_name,
        "corpus_notice": quote(info.card_notice) if info.card_notice else "",
        "trained_on": info.card_trained_on,
        "dataset_id": dataset,
        "data_bullet": bullets([f"**Data**: {info.card_data}" + (f", from `{dataset}`." if dataset else ".")]),
        "license": licence["license"],
        "license_note": licence["note"],
        "protocol": info.protocol,
        "fold": fold,
        "folds": folds,
        "num_folds": len(folds),
        "label_set": label_set,
        "label_set_note": _label_set_note(corpus, label_set),
        "label_names": list(label_names or []),
        "fusion_strategy": strategy,
        "num_frames": getattr(config, "num_frames", None),
        "image_size": getattr(config, "image_size", None),
        "hidden_size": getattr(config, "hidden_size", None),
        "num_hidden_layers": getattr(config, "num_hidden_layers", None),
        "num_video_frames": getattr(config, "num_video_frames", None),
        "num_audio_frames": getattr(config, "num_audio_frames", None),
        "base_model": base_model,
        "recipe": recipe,
        "recipe_description": recipe_description,
        "hyperparameters_table": hyperparameter_table(hyperparameters or {}),
        "results_table": results_table(fold_results) if fold_results else "",
        "test_war": _finite(single.get("test_war")),
        "test_uar": _finite(single.get("test_uar")),
        "eval_war": _finite(single.get("eval_war")),
        "eval_uar": _finite(single.get("eval_uar")),
        "confusion_matrix_file": confusion_matrix_file,
        "preprocessing": describe_preprocessing(inputs),
        "audio_pictures": "MFCC images" if inputs["audio_representation"] == "mfcc" else "log-mel images",
        "input_note": (info.face_crop_note if face_crop else info.no_face_crop_note) or "",
        "data_splits": describe_splits(corpus, splits, fold),
        "results_note": "\n\n".join(
            filter(None, [paper_reference(corpus, strategy), paragraph(info.card_results_note or "")])
        ),
        "training_command": training_command,
        "limitations": bullets(info.card_limitations),
        "bias": bullets([*info.card_bias, EMOTION_RECOGNITION_RISKS, *filter(None, [licence_notice])]),
        "dataset_citation": info.citation,
        **template_kwargs,
    }
    return build_card("classifier", data, corpus, templates_dir, **context)


def _merge_list(old: Any, new: Any) -> Optional[list]:
    def as_list(value: Any) -> list:
        return [value] if isinstance(value, str) else list(value or [])

    return list(dict.fromkeys(as_list(old) + as_list(new))) or None


def update_model_card(path: Union[str, os.PathLike], card: ModelCard) -> ModelCard:
    """Write ``card`` to ``path``; if a README is there, keep its own text and tags and replace only our block.

    The rendered text between :data:`BEGIN_MARKER` and :data:`END_MARKER` replaces the same block of the existing
    card (appended when the existing card has none); metadata is the new card's, with the union of both cards'
    ``tags`` and ``datasets``.
    """
    path = Path(path)
    if path.is_file():
        old = ModelCard.load(path)
        new_data = card.data.to_dict()
        for key in ("tags", "datasets"):
            merged = _merge_list(old.data.to_dict().get(key), new_data.get(key))
            if merged:
                setattr(card.data, key, merged)
        for key, value in old.data.to_dict().items():
            if key not in new_data or new_data[key] is None:
                setattr(card.data, key, value)
        block = _block(card.text)
        if BEGIN_MARKER in old.text and END_MARKER in old.text:
            head, rest = old.text.split(BEGIN_MARKER, 1)
            tail = rest.split(END_MARKER, 1)[1]
            text = head + block + tail
        else:
            text = old.text.rstrip() + "\n\n" + block + "\n"
        card = ModelCard(f"---\n{card.data.to_yaml()}\n---\n{text}")
        for problem in check_card_metadata(card, _kind(card)):  # ours were checked: these come from the README kept
            logger.warning("%s keeps metadata the Hub may reject: %s", path, problem)
    path.parent.mkdir(parents=True, exist_ok=True)
    card.save(path)
    return card


def _block(text: str) -> str:
    if BEGIN_MARKER in text and END_MARKER in text:
        return BEGIN_MARKER + text.split(BEGIN_MARKER, 1)[1].split(END_MARKER, 1)[0] + END_MARKER
    return f"{BEGIN_MARKER}\n{text.strip()}\n{END_MARKER}"


def load_results(output_dir: Union[str, os.PathLike]) -> dict:
    """The metrics `Trainer` saved in ``output_dir`` (``all_results.json``, else eval/test result files)."""
    output_dir = Path(output_dir)
    results: dict = {}
    for name in ("eval_results.json", "test_results.json", "all_results.json"):
        if (output_dir / name).is_file():
            results.update(json.loads((output_dir / name).read_text()))
    return results


def write_model_card(
    output_dir: Union[str, os.PathLike],
    corpus: str,
    model_id: Optional[str] = None,
    fold: Optional[int] = None,
    results: Optional[dict] = None,
    config: Any = None,
    **kwargs,
) -> Path:
    """Render and write (or update) ``output_dir/README.md`` for a single-fold run from its saved metrics."""
    output_dir = Path(output_dir)
    results = results if results is not None else load_results(output_dir)
    if config is None and (output_dir / "config.json").is_file():
        from ..models.multimae_der import MultiMAEDERConfig

        config = MultiMAEDERConfig.from_pretrained(output_dir)
    if "confusion_matrix_file" not in kwargs and (output_dir / "confusion_matrix.png").is_file():
        kwargs["confusion_matrix_file"] = "confusion_matrix.png"
    if "processor_settings" not in kwargs:
        kwargs["processor_settings"] = saved_processor_settings(output_dir)
    card = render_model_card(
        corpus, model_id or output_dir.resolve().name, {fold or 1: results}, config=config, fold=fold, **kwargs
    )
    path = output_dir / "README.md"
    update_model_card(path, card)
    logger.info("Model card written to %s", path)
    return path


def _kind(card: ModelCard) -> str:
    tags = card.data.tags or []
    return (
        "pretraining"
        if "masked-autoencoder" in tags
        else "comparison"
        if "strategy-comparison" in tags
        else ("classifier")
    )


def render_pretraining_card(
    config: Any,
    model_id: str,
    data_description: str,
    train_clips: Any,
    eval_clips: Optional[int],
    mask_description: str,
    target_description: str,
    corpus: Optional[str] = None,
    dataset_id: Optional[str] = None,
    base_model: Optional[str] = None,
    hyperparameters: Optional[dict] = None,
    losses: Optional[dict] = None,
    processor_settings: Optional[dict] = None,
    loss_curve_file: Optional[str] = None,
    reconstructions_file: Optional[str] = None,
    training_command: Optional[str] = None,
    **template_kwargs,
) -> ModelCard:
    """Render the card of a pre-trained masked autoencoder (``templates/pretraining.md``).

    ``corpus`` names the corpus whose training actors were read (its licence then applies); ``None`` for a folder of
    videos or a Hub dataset, whose licence the card cannot know (``license: unknown``). ``losses`` holds
    ``train_loss``, ``eval_loss``, their ``_video`` / ``_audio`` parts and ``initial_eval_loss``; none: the card says
    that no checkpoint has been pre-trained yet.
    """
    licence = model_license(corpus, base_model)
    tags = [*PRETRAINING_TAGS, f"fusion-{config.fusion_strategy.lower()}"]
    data = card_metadata("pretraining", model_id.split("/")[-1], licence, tags, dataset_id, base_model)
    settings = completed_processor_settings(processor_settings, config)
    losses = {k: _finite(v) for k, v in (losses or {}).items()}
    context = {
        "model_id": model_id,
        "license": licence["license"],
        "license_note": licence["note"],
        "base_model": base_model,
        "data_description": data_description,
        "train_clips": train_clips,
        "eval_clips": eval_clips,
        "mask_description": mask_description,
        "target_description": target_description,
        "preprocessing": describe_preprocessing(settings),
        "hyperparameters_table": hyperparameter_table(hyperparameters or {}),
        "fmt": lambda v: "" if v is None else f"{v:.4f}",
        "loss_curve_file": loss_curve_file,
        "reconstructions_file": reconstructions_file,
        "training_command": training_command,
        **{k: getattr(config, k) for k in ("fusion_strategy", "num_frames", "image_size", "hidden_size")},
        **{k: getattr(config, k) for k in ("num_hidden_layers", "decoder_hidden_size", "decoder_num_hidden_layers")},
        "num_video_frames": config.num_video_frames,
        "num_audio_frames": config.num_audio_frames,
        **{k: losses.get(k) for k in ("train_loss", "train_loss_video", "train_loss_audio", "initial_eval_loss")},
        **{k: losses.get(k) for k in ("eval_loss", "eval_loss_video", "eval_loss_audio")},
        **template_kwargs,
    }
    return build_card("pretraining", data, "pretraining", **context)


def write_pretraining_card(
    output_dir: Union[str, os.PathLike],
    config: Any,
    model_id: str,
    data_description: str,
    train_clips: Any,
    eval_clips: Optional[int],
    mask_description: str,
    target_description: str,
    corpus: Optional[str] = None,
    dataset_id: Optional[str] = None,
    base_model: Optional[str] = None,
    hyperparameters: Optional[dict] = None,
    losses: Optional[dict] = None,
    **template_kwargs,
) -> Path:
    """Render :func:`render_pretraining_card` into ``output_dir/README.md`` (updating an existing card), with the
    processor saved there and the pictures found there linked."""
    output_dir = Path(output_dir)
    card = render_pretraining_card(
        config,
        model_id,
        data_description,
        train_clips,
        eval_clips,
        mask_description,
        target_description,
        corpus=corpus,
        dataset_id=dataset_id,
        base_model=base_model,
        hyperparameters=hyperparameters,
        losses=losses,
        processor_settings=saved_processor_settings(output_dir),
        loss_curve_file="loss_curve.png" if (output_dir / "loss_curve.png").is_file() else None,
        reconstructions_file="reconstructions.png" if (output_dir / "reconstructions.png").is_file() else None,
        **template_kwargs,
    )
    path = output_dir / "README.md"
    update_model_card(path, card)
    logger.info("Pre-training model card written to %s", path)
    return path


# ------------------------------------------------------------------------------------------------- push
#: What `push_folder` leaves out, as ``upload_folder(ignore_patterns=...)``: fnmatch patterns on each file's path
#: relative to the folder, where ``*`` also matches ``/`` (huggingface_hub's ``filter_repo_objects``). Private files
#: and folders (``_*``) and Trainer checkpoints (``checkpoint-*``), at the top or deeper (a fold's ``checkpoint-8/``);
#: TensorBoard logs (``runs/``); ``.pt`` files (optimizer and scheduler states); a half-written trainer state.
PUSH_IGNORE_PATTERNS = ["_*", "*/_*", "checkpoint-*", "*/checkpoint-*", "runs/*", "*.pt", "trainer_state.json.tmp"]


def push_folder(
    folder: Union[str, os.PathLike],
    repo_id: str,
    commit_message: str = "Upload MultiMAE-DER model",
    private: Optional[bool] = None,
    token: Optional[str] = None,
    path_in_repo: Optional[str] = None,
    revision: Optional[str] = None,
    ignore_patterns: Sequence[str] = (),
):
    """Create ``repo_id`` if needed and upload ``folder`` (model, code files, processor, card, metrics, PNGs).

    Checkpoint folders and private files (``_*``) are left out, as `Trainer.push_to_hub` does, and so are TensorBoard
    ``runs/`` and ``.pt`` files (:data:`PUSH_IGNORE_PATTERNS`), plus ``ignore_patterns`` (same fnmatch semantics).
    """
    api = HfApi(token=token)
    repo_url = api.create_repo(repo_id, private=private, exist_ok=True, repo_type="model")
    return api.upload_folder(
        repo_id=repo_url.repo_id,
        folder_path=str(folder),
        path_in_repo=path_in_repo,
        commit_message=commit_message,
        ignore_patterns=PUSH_IGNORE_PATTERNS + list(ignore_patterns),
        revision=revision,
    )


__all__ = [
    "BEGIN_MARKER",
    "CLASSIFIER_TAGS",
    "END_MARKER",
    "MODEL_CARDS_DIR",
    "PAPER_CITATION",
    "PRETRAINING_TAGS",
    "PUSH_IGNORE_PATTERNS",
    "VIDEOMAE_CITATION",
    "backbone_license",
    "completed_processor_settings",
    "describe_preprocessing",
    "describe_splits",
    "eval_results",
    "load_results",
    "mean_std",
    "model_license",
    "paper_reference",
    "push_folder",
    "render_model_card",
    "render_pretraining_card",
    "results_table",
    "template_path",
    "update_model_card",
    "write_model_card",
    "write_pretraining_card",
]
