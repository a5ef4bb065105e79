"""The run layer both scripts share (``mmder_hf.training.run``), the argument groups of cross-validation and the
grid, the rooms of ``training/`` and the root API: exact values, computed here by hand."""

import ast
import json
import re
import sys
from pathlib import Path

import datasets
import pytest
from transformers import TrainingArguments

import mmder_hf
from mmder_hf.models.multimae_der import MultiMAEDERConfig
from mmder_hf.training import MODEL_SIZES
from mmder_hf.training.arguments import (
    CrossValidationArguments,
    DataArguments,
    GridArguments,
    ModelArguments,
    PretrainingArguments,
    RecipeArguments,
)
from mmder_hf.training.run import (
    OtherSettingsError,
    drop_unused_columns,
    hyperparameters,
    refuse_other_settings,
    result_settings,
    save_run_args,
    trim_splits,
)


ROOT = Path(__file__).resolve().parents[1]
SRC = ROOT / "src" / "mmder_hf"


def training_args(tmp_path, **kwargs):
    return TrainingArguments(output_dir=str(tmp_path), report_to="none", use_cpu=True, **kwargs)


def test_one_hyperparameter_table_for_both_kinds_of_run(tmp_path):
    args = training_args(
        tmp_path,
        learning_rate=6.25e-5,
        lr_scheduler_type="cosine",
        warmup_steps=0.05,
        weight_decay=0.05,
        per_device_train_batch_size=4,
        gradient_accumulation_steps=3,
        num_train_epochs=7,
        seed=11,
        label_smoothing_factor=0.1,
        adam_beta2=0.95,
        optim="adamw_torch",
    )
    recipe = RecipeArguments(recipe="finetune", layer_decay=0.75, drop_path_rate=0.1, mixup_alpha=0.8, flip=True)
    assert hyperparameters(args, recipe) == {
        "recipe": "finetune",
        "frozen backbone": False,
        "optimizer": "adamw_torch (betas 0.9, 0.95)",  # the enum's value, not OptimizerNames.ADAMW_TORCH
        "learning rate": 6.25e-5,
        "lr schedule": "cosine, warmup 0.05",
        "weight decay": 0.05,
        "layer-wise lr decay": 0.75,
        "drop path": 0.1,
        "label smoothing": 0.1,
        "mixup alpha": 0.8,
        "face flips": True,
        "batch size (total)": 12,  # 4 per device x 3 accumulated x 1 process
        "epochs": 7,
        "processes": 1,
        "seed": 11,
        "precision": "fp32",
    }
    steps = training_args(tmp_path, max_steps=40, lr_scheduler_type="constant", seed=3)
    assert hyperparameters(steps, PretrainingArguments(recipe="mae_dfer")) == {
        "recipe": "mae_dfer",
        "optimizer": f"{steps.optim.value} (betas 0.9, 0.999)",
        "learning rate": 5e-5,
        "lr schedule": "constant, warmup 0",
        "weight decay": 0.0,
        "batch size (total)": 8,
        "epochs": "40 steps",
        "processes": 1,
        "seed": 3,
        "precision": "fp32",
    }


def test_one_run_record_names_each_argument_group(tmp_path):
    model, data = ModelArguments(fusion_strategy="CFAS"), DataArguments(fold=2)
    args = training_args(tmp_path, learning_rate=3e-3, seed=5)
    for run_args, group in (
        (RecipeArguments(), "recipe"),
        (PretrainingArguments(mask_ratio_video=0.75), "pretraining"),
    ):
        path = save_run_args(str(tmp_path), ["x.py", "--fold", "2"], (model, data, run_args, args), 0.0, extra=1)
        record = json.loads(Path(path).read_text())
        assert set(record) == {"argv", "model", "data", group, "training", "settings", "wall_time_s", "extra"} | {
            "versions"
        }
        assert record["argv"] == ["x.py", "--fold", "2"] and record["extra"] == 1
        assert record[group]["recipe"] == "quick" and record["model"]["fusion_strategy"] == "CFAS"
        settings = record["settings"]
        assert settings == result_settings(model, data, run_args, args)
        assert settings["data.fold"] == 2 and settings["training.learning_rate"] == 3e-3
        assert settings["training.total_train_batch_size"] == 8 and "data.cache_dir" not in settings
        if group == "pretraining":  # the run's own arguments are the "recipe" group of the settings
            assert settings["recipe.mask_ratio_video"] == 0.75
        # the same settings are accepted; one changed is refused, naming it
        refuse_other_settings(str(tmp_path), settings)
        with pytest.raises(OtherSettingsError, match=r"seed: 5 there, 6 now"):
            refuse_other_settings(str(tmp_path), {**settings, "training.seed": 6})
    assert issubclass(OtherSettingsError, ValueError)


def test_trimming_keeps_the_first_clips_of_each_split():
    splits = {name: datasets.Dataset.from_dict({"i": list(range(10))}) for name in ("train", "validation", "test")}
    trimmed = trim_splits(dict(splits), DataArguments(max_train_samples=3, max_eval_samples=20))
    assert trimmed["train"]["i"] == [0, 1, 2]
    assert trimmed["validation"]["i"] == list(range(10)) and trimmed["test"]["i"] == list(range(10))
    streamed = {name: ds.to_iterable_dataset() for name, ds in splits.items()}
    trimmed = trim_splits(streamed, DataArguments(streaming=True, max_eval_samples=2))
    assert [r["i"] for r in trimmed["test"]] == [0, 1] and len(list(trimmed["train"])) == 10


def test_unused_input_columns_are_dropped_per_strategy():
    ds = datasets.Dataset.from_dict({"pixel_values": [1], "audio_values": [2], "actor": [3], "labels": [0]})
    for strategy, kept in (
        ("FSLF", {"pixel_values", "audio_values", "labels"}),
        ("audio", {"audio_values", "labels"}),
        ("video", {"pixel_values", "labels"}),
    ):
        config = MultiMAEDERConfig(**MODEL_SIZES["tiny"], fusion_strategy=strategy)
        assert set(drop_unused_columns(ds, config, also=["actor"]).column_names) == kept, strategy
    assert set(drop_unused_columns(ds, MultiMAEDERConfig(**MODEL_SIZES["tiny"])).column_names) == set(ds.column_names)


def test_folds_and_grid_models_are_read_and_checked():
    assert (
        CrossValidationArguments(folds="3,1").fold_list() == [3, 1] and CrossValidationArguments().fold_list() is None
    )
    with pytest.raises(ValueError, match=r"^--folds: expected comma-separated fold numbers such as 1,2,3, got 'a'"):
        CrossValidationArguments(folds="a").fold_list()
    assert GridArguments(strategies="fslf, Audio").model_list() == ["FSLF", "audio"]
    assert GridArguments().model_list() == ["FSLF", "FFLS", "CFAS", "OFOS", "SFAS", "RFAS", "video", "audio"]
    with pytest.raises(ValueError, match=r"^--strategies: unknown FSFL; expected some of FSLF, "):
        GridArguments(strategies="FSLF,FSFL").model_list()


# ---------------------------------------------------------------------------------------------- the rooms
def _definitions(name: str) -> list[str]:
    found = []
    for path in sorted(SRC.rglob("*.py")):
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, (ast.FunctionDef, ast.ClassDef)) and node.name == name:
                found.append(path.relative_to(SRC).as_posix())
    return found


def test_the_run_record_the_hyperparameter_table_and_the_card_hook_are_defined_once():
    assert _definitions("save_run_args") == ["training/run.py"]
    assert _definitions("result_settings") == ["training/run.py"]
    assert _definitions("hyperparameters") == ["training/run.py"]
    assert _definitions("create_model_card") == ["training/trainers.py"]


def test_training_rooms_are_small_and_pretraining_does_not_import_finetune():
    sizes = {p.name: len(p.read_text().splitlines()) for p in (SRC / "training").glob("*.py")}
    assert {"arguments.py", "recipes.py", "run.py", "trainers.py", "pictures.py", "lora.py"} <= set(sizes)
    assert max(sizes.values()) <= 500, sizes
    for name in ("pretraining.py", "pretraining_data.py", "pictures.py"):
        imported = [
            node.module
            for node in ast.walk(ast.parse((SRC / "training" / name).read_text()))
            if isinstance(node, ast.ImportFrom)
        ]
        assert "finetune" not in imported, name


#: Private names of our dependencies the code once reached into: each replaced by public API.
PRIVATE = {
    r"torchcodec\._core|from torchcodec import _core": "torchcodec's private core (use torchcodec.decoders)",
    r"\._ex_iterable": "datasets' IterableDataset internals",
    r"_parse_dataclass_field": "HfArgumentParser's private method",
    r"PipelineChunkIterator|PipelinePackIterator": "transformers' pipeline iterators (ChunkPipeline internals)",
    r"all_gather_object": "torch.distributed beside accelerate (use accelerate.utils.gather_object)",
    r"(?<!self)\.(even_batches|num_processes|process_index)\s*=(?!=)": "writes to accelerate's sampler shards",
    r"args\[3\]": "a Trainer method's positional argument read by index",
}


#: Where no public API does the job, the private access lives in one function, pinned by tests/test_dependency_pins.py.
PINNED = {
    "models/multimae_der/truncation.py": "scanned_container_metadata",
    "data/loading.py": "_streaming_source",
}


def _enclosing_functions(tree: ast.AST) -> dict[int, str]:
    """line -> name of the outermost function holding it."""
    where = {}
    for node in tree.body if hasattr(tree, "body") else []:
        if isinstance(node, (ast.FunctionDef, ast.ClassDef)):
            for line in range(node.lineno, node.end_lineno + 1):
                where[line] = node.name
    return where


def test_no_private_internals_of_dependencies():
    found = []
    for path in sorted(SRC.rglob("*.py")):
        text, name = path.read_text(), path.relative_to(SRC).as_posix()
        functions = _enclosing_functions(ast.parse(text))
        for number, line in enumerate(text.splitlines(), 1):
            for pattern, what in PRIVATE.items():
                pinned = name in PINNED and functions.get(number) == PINNED[name]
                if re.search(pattern, line) and not pinned:
                    found.append(f"{name}:{number}: {what}")
    assert not found, "\n".join(found)
    pins = (ROOT / "tests" / "test_dependency_pins.py").read_text()
    for function in PINNED.values():
        assert function in pins, function


def test_the_root_api_exports_what_a_user_calls():
    assert set(mmder_hf.__all__) == {
        "FUSION_STRATEGIES",
        "MediaError",
        "MultiMAEDERConfig",
        "MultiMAEDERDataCollator",
        "MultiMAEDERForPreTraining",
        "MultiMAEDERForVideoClassification",
        "MultiMAEDERModel",
        "MultiMAEDERPipeline",
        "MultiMAEDERPreTrainedModel",
        "MultiMAEDERProcessor",
        "MultiMAEDERVideoProcessor",
        "MultiMAEDERFeatureExtractor",
        "fuse",
        "get_fold",
        "get_folds",
        "load_emotion_dataset",
        "load_prefused_dataset",
        "make_synthetic_corpus",
        "preprocess_to_cache",
    }
    assert all(hasattr(mmder_hf, name) for name in mmder_hf.__all__)
    for helper in ("write_clip", "TASK", "add_remote_code", "split_for_rank"):
        assert not hasattr(mmder_hf, helper), helper
    # still importable from their own modules
    from mmder_hf.data.loading import split_for_rank  # noqa: F401
    from mmder_hf.data.media_writing import write_clip  # noqa: F401
    from mmder_hf.models.multimae_der import TASK, add_remote_code  # noqa: F401


@pytest.mark.parametrize(
    "script, flags",
    [
        ("finetune", ["--recipe", "--learning_rate", "--dataset_name", "--freeze_backbone"]),
        ("pretrain", ["--recipe", "--mask_type", "--learning_rate", "--dataset_source"]),
        ("cross_validate", ["--folds", "--rerun_mismatched", "--learning_rate", "--recipe"]),
        ("compare_strategies", ["--strategies", "--folds", "--push_to_hub", "--recipe"]),
    ],
)
def test_help_lists_every_flag_of_the_script(script, flags, example_main, capsys):
    with pytest.raises(SystemExit) as done:
        example_main(script, ["--help"])
    assert done.value.code == 0
    printed = capsys.readouterr().out
    assert printed.startswith(f"usage: {script}.py") or printed.startswith("usage: ")
    for flag in flags:
        assert f"  {flag} " in printed or f"  {flag}," in printed, flag


def test_the_attention_flag_reaches_a_random_model_of_either_kind(tmp_path):
    from mmder_hf.training import parse_args, parse_pretraining_args
    from mmder_hf.training.finetune import build_model
    from mmder_hf.training.pretraining import build_pretraining_model

    flags = ["--output_dir", str(tmp_path), "--model_size", "tiny", "--attn_implementation", "eager"]
    model_args, _, recipe_args, _ = parse_args(flags)
    assert build_model(model_args, recipe_args, ["a", "b"]).config._attn_implementation == "eager"
    model_args, _, pretrain_args, _ = parse_pretraining_args(flags)
    assert build_pretraining_model(model_args, pretrain_args).config._attn_implementation == "eager"
    model_args, _, pretrain_args, _ = parse_pretraining_args(flags[:-2])
    assert build_pretraining_model(model_args, pretrain_args).config._attn_implementation == "sdpa"


def test_the_process_group_is_ended_and_every_distributed_script_ends_it(free_port):
    import torch.distributed as dist

    from mmder_hf.training.run import end_process_group

    dist.init_process_group("gloo", init_method=f"tcp://127.0.0.1:{free_port}", rank=0, world_size=1)
    assert dist.is_initialized()
    end_process_group()
    assert not dist.is_initialized()
    end_process_group()  # nothing up: nothing to do
    for script in ("finetune", "pretrain", "cross_validate", "compare_strategies"):
        tree = ast.parse((ROOT / "examples" / f"{script}.py").read_text())
        main_block = next(n for n in tree.body if isinstance(n, ast.If) and "__main__" in ast.unparse(n.test))
        tries = [n for n in ast.walk(main_block) if isinstance(n, ast.Try)]
        assert any("end_process_group()" in ast.unparse(stmt) for t in tries for stmt in t.finalbody), script


def test_setup_run_sets_the_package_level_and_leaves_its_modules_to_inherit_it(tmp_path):
    import logging

    import torch

    from mmder_hf.training.run import setup_run

    names = ("mmder_hf", "__main__", "mmder_hf.training.run", "mmder_hf.training.finetune")
    before, threads = {name: logging.getLogger(name).level for name in names}, torch.get_num_threads()
    try:
        setup_run(ModelArguments(), training_args(tmp_path, log_level="error"))
        assert logging.getLogger("mmder_hf").level == logging.ERROR
        # a module's own level would outlive whoever resets the package's (a test, a notebook, a second run)
        assert logging.getLogger("mmder_hf.training.run").level == logging.NOTSET
        assert logging.getLogger("mmder_hf.training.finetune").level == logging.NOTSET
    finally:
        for name, level in before.items():
            logging.getLogger(name).setLevel(level)
        torch.set_num_threads(threads)


@pytest.mark.parametrize(
    "script, flag, line",
    [
        ("finetune", "--learnig_rate", "unrecognized arguments: --learnig_rate 1 (did you mean --learning_rate?)"),
        (
            "pretrain",
            "--mask_ration_video",
            "unrecognized arguments: --mask_ration_video 1 (did you mean --mask_ratio_video?)",
        ),
        ("cross_validate", "--fold_list", "unrecognized arguments: --fold_list 1 (did you mean --folds?)"),
        ("compare_strategies", "--zzzz", "unrecognized arguments: --zzzz 1"),
    ],
)
def test_an_unknown_flag_is_one_line_with_the_closest_one(script, flag, line, example_main, capsys, tmp_path):
    with pytest.raises(SystemExit) as done:
        example_main(script, ["--output_dir", str(tmp_path), flag, "1"])
    assert done.value.code == 2
    captured = capsys.readouterr()
    assert captured.err.splitlines() == [f"{Path(sys.argv[0]).name}: error: {line}; see --help"]


def test_an_unknown_key_of_a_json_file_is_one_line_naming_the_file(example_main, capsys, tmp_path):
    path = tmp_path / "args.json"
    path.write_text(json.dumps({"output_dir": str(tmp_path), "learnig_rate": 0.1, "zzz": 1}))
    with pytest.raises(SystemExit) as done:
        example_main("finetune", [str(path)])
    assert done.value.code == 2
    expected = f"error: {path}: unknown key(s) learnig_rate, zzz (did you mean learning_rate?)"
    assert capsys.readouterr().err.splitlines() == [f"{Path(sys.argv[0]).name}: {expected}"]


def test_a_finished_run_is_reused_with_its_weights_and_an_unfinished_one_is_started(tmp_path):
    import torch

    from mmder_hf.models.multimae_der import MultiMAEDERForVideoClassification, MultiMAEDERProcessor
    from mmder_hf.training.run import finished_training, reuse_or_start_run, settings_differences, split_sizes

    config = MultiMAEDERConfig(**MODEL_SIZES["tiny"])
    torch.manual_seed(0)
    model, trained = MultiMAEDERForVideoClassification(config), MultiMAEDERForVideoClassification(config)
    args = training_args(tmp_path, num_train_epochs=3)
    assert settings_differences(str(tmp_path), {"training.seed": 1}) == {}  # nothing saved there yet
    # nothing there: the folder is started with the model and the processor
    assert reuse_or_start_run(model, MultiMAEDERProcessor(), args) is None
    assert {"config.json", "model.safetensors", "processor_config.json"} <= {p.name for p in tmp_path.iterdir()}
    # a state without train results (killed before the end) is not finished
    (tmp_path / "trainer_state.json").write_text(json.dumps({"global_step": 6, "num_train_epochs": 3, "max_steps": 6}))
    assert finished_training(str(tmp_path), args) is None
    (tmp_path / "train_results.json").write_text(json.dumps({"train_loss": 0.5}))
    assert finished_training(str(tmp_path), training_args(tmp_path, num_train_epochs=4)) is None  # other epochs
    assert finished_training(str(tmp_path), training_args(tmp_path, max_steps=10)) is None  # 6 of 10 steps
    assert finished_training(str(tmp_path), training_args(tmp_path, max_steps=6)) == {"train_loss": 0.5}
    # finished: its saved weights are loaded, exactly, and nothing is written over
    trained.save_pretrained(str(tmp_path))
    assert reuse_or_start_run(model, MultiMAEDERProcessor(), args) == {"train_loss": 0.5}
    for (name, a), b in zip(model.state_dict().items(), trained.state_dict().values()):
        assert torch.equal(a, b), name
    # the clips and actors of each map-style split with actors, nothing for the others
    ds = datasets.Dataset.from_dict({"actor": [3, 1, 3], "x": [0, 0, 0]})
    sizes = split_sizes({"train": ds, "stream": ds.to_iterable_dataset(), "plain": ds.remove_columns("actor")})
    assert sizes == {"train": (3, [1, 3])}
