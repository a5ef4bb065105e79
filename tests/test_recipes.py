"""Training recipes, recipe arguments, model / decoder sizes and config overrides, against the documented values.

Fast (no model is built): each value a recipe sets is compared with the protocol it documents (the MultiMAE-DER
paper's linear probe, MAE-DFER's fine-tuning, the CPU-sized quick run) and with VideoMAE's published sizes.
"""

import dataclasses

import pytest

from mmder_hf.training.arguments import RecipeArguments
from mmder_hf.training.recipes import DECODER_SIZES, MODEL_SIZES, RECIPES, Recipe, recipe_defaults
from mmder_hf.training.run import parse_config_overrides


COMMON = {
    "weight_decay": 0.05,
    "per_device_train_batch_size": 16,
    "optim": "adamw_torch",
    "save_strategy": "epoch",
    "save_total_limit": 2,
    "logging_strategy": "epoch",
}
EXPECTED = {
    # the paper's linear probe: frozen encoder, constant lr 1e-2, 100 epochs, no augmentation, no evaluation
    "paper": {
        **COMMON,
        "learning_rate": 0.01,
        "per_device_eval_batch_size": 16,
        "num_train_epochs": 100,
        "lr_scheduler_type": "constant",
        "warmup_steps": 0,
        "label_smoothing_factor": 0.0,
        "eval_strategy": "no",
        "freeze_backbone": True,
        "layer_decay": 1.0,
        "drop_path_rate": 0.0,
        "mixup_alpha": 0.0,
        "flip": False,
        "recipe": "paper",
    },
    # MAE-DFER fine-tuning: lr 1e-3 x 16 / 256, layer decay 0.75, drop path 0.1, smoothing 0.1, 5% warmup, flips
    "finetune": {
        **COMMON,
        "learning_rate": 6.25e-5,  # = 1e-3 * 16 / 256
        "per_device_eval_batch_size": 16,
        "num_train_epochs": 100,
        "lr_scheduler_type": "cosine",
        "warmup_steps": 0.05,
        "label_smoothing_factor": 0.1,
        "eval_strategy": "epoch",
        "freeze_backbone": False,
        "layer_decay": 0.75,
        "drop_path_rate": 0.1,
        "mixup_alpha": 0.0,
        "flip": True,
        "face_crop": True,
        "recipe": "finetune",
    },
    # the quick CPU run: lr 1e-3, 15 epochs, eval batch 32, 5% warmup then cosine, nothing frozen or augmented
    "quick": {
        **COMMON,
        "learning_rate": 0.001,
        "per_device_eval_batch_size": 32,
        "num_train_epochs": 15,
        "lr_scheduler_type": "cosine",
        "warmup_steps": 0.05,
        "label_smoothing_factor": 0.0,
        "eval_strategy": "epoch",
        "freeze_backbone": False,
        "layer_decay": 1.0,
        "drop_path_rate": 0.0,
        "mixup_alpha": 0.0,
        "flip": False,
        "recipe": "quick",
    },
}


@pytest.mark.parametrize("name", list(EXPECTED))
def test_each_recipe_sets_exactly_its_documented_values(name):
    got = recipe_defaults(name)
    assert got == EXPECTED[name]
    assert got["recipe"] == name and RECIPES[name].name == name
    for key in ("freeze_backbone", "flip"):
        assert type(got[key]) is bool
    recipe = RECIPES[name]
    assert set(recipe.recipe) == {"freeze_backbone", "layer_decay", "drop_path_rate", "mixup_alpha", "flip"}
    assert recipe.data == ({"face_crop": True} if name == "finetune" else {})


def test_recipe_names_descriptions_and_errors():
    assert list(RECIPES) == ["paper", "finetune", "quick"]
    assert "1e-2" in RECIPES["paper"].description and "6.25e-5" in RECIPES["finetune"].description
    with pytest.raises(ValueError, match=r"Unknown recipe 'fast'; expected one of \['paper', 'finetune', 'quick'\]"):
        recipe_defaults("fast")
    with pytest.raises(dataclasses.FrozenInstanceError):
        RECIPES["paper"].name = "x"
    assert Recipe("r", "d").training == {} and Recipe("r", "d").data == {}


def test_recipe_arguments_defaults_choices_and_augments():
    args = RecipeArguments()
    assert (args.recipe, args.freeze_backbone, args.layer_decay, args.drop_path_rate) == ("quick", False, 1.0, 0.0)
    assert (args.mixup_alpha, args.flip, args.use_feature_cache, args.augments) == (0.0, False, True, False)
    assert RecipeArguments(flip=True).augments is True
    assert RecipeArguments(mixup_alpha=0.2).augments is True
    assert RecipeArguments(mixup_alpha=0.0, flip=False, freeze_backbone=True).augments is False
    with pytest.raises(ValueError, match="Unknown recipe 'slow'"):
        RecipeArguments(recipe="slow")
    meta = {f.name: f.metadata for f in dataclasses.fields(RecipeArguments)}
    assert meta["recipe"]["choices"] == ["paper", "finetune", "quick"]
    help_text = meta["recipe"]["help"]
    for recipe in RECIPES.values():  # every description, with argparse's % escaped
        assert f"'{recipe.name}': {recipe.description.replace('%', '%%')}" in help_text
    assert "5%%" in help_text and "5% " not in help_text


def test_recipe_defaults_parse_through_hf_argument_parser():
    from transformers import HfArgumentParser

    (args,) = HfArgumentParser(RecipeArguments).parse_args_into_dataclasses(["--recipe", "paper", "--flip", "true"])
    assert (args.recipe, args.flip, args.augments) == ("paper", True, True)


def test_model_sizes_are_videomae_sizes():
    layout = ("image_size", "patch_size", "num_frames", "hidden_size", "num_hidden_layers", "num_attention_heads")
    expected = {
        "tiny": (32, 16, 4, 32, 2, 2, 64),
        "small": (32, 16, 8, 64, 2, 4, 128),
        "base": (224, 16, 16, 768, 12, 12, 3072),  # VideoMAE ViT-B
        "large": (224, 16, 16, 1024, 24, 16, 4096),  # VideoMAE ViT-L
    }
    assert list(MODEL_SIZES) == list(expected)
    for name, values in expected.items():
        assert MODEL_SIZES[name] == dict(zip((*layout, "intermediate_size"), values)), name
    decoder = {"tiny": (32, 1, 2, 64), "small": (64, 1, 4, 128), "base": (384, 4, 6, 1536), "large": (512, 4, 8, 2048)}
    keys = ("decoder_hidden_size", "decoder_num_hidden_layers", "decoder_num_attention_heads")
    assert list(DECODER_SIZES) == list(decoder)
    for name, values in decoder.items():
        assert DECODER_SIZES[name] == dict(zip((*keys, "decoder_intermediate_size"), values)), name


def test_config_overrides_parse_json_values_and_refuse_typos():
    got = parse_config_overrides("hidden_size=128, num_hidden_layers=4,hidden_act=gelu,use_mean_pooling=true,x=0.5")
    assert got == {
        "hidden_size": 128,
        "num_hidden_layers": 4,
        "hidden_act": "gelu",
        "use_mean_pooling": True,
        "x": 0.5,
    }
    assert type(got["hidden_size"]) is int
    assert parse_config_overrides("a=[1]") == {"a": [1]} and parse_config_overrides("b= text ") == {"b": "text"}
    assert (
        parse_config_overrides(None) == {} and parse_config_overrides("") == {} and parse_config_overrides(",,") == {}
    )
    assert parse_config_overrides("k=v=w") == {"k": "v=w"}
    assert parse_config_overrides("hidden_size=8", known=["hidden_size"]) == {"hidden_size": 8}
    for bad in ("hidden_size", "=3", " =3"):
        with pytest.raises(ValueError, match="is not key=value"):
            parse_config_overrides(bad)
    with pytest.raises(ValueError, match=r"'hiden_size' is not a MultiMAEDERConfig field; did you mean hidden_size\?"):
        parse_config_overrides("hiden_size=3", known=["hidden_size", "num_frames"])
    with pytest.raises(ValueError, match=r"'zzz' is not a MultiMAEDERConfig field$"):
        parse_config_overrides("zzz=3", known=["hidden_size"])


PRETRAINING_COMMON = {
    "adam_beta2": 0.95,
    "weight_decay": 0.05,
    "lr_scheduler_type": "cosine",
    "warmup_steps": 0.05,
    "eval_strategy": "epoch",
    "save_strategy": "epoch",
    "save_total_limit": 2,
}
PRETRAINING_EXPECTED = {
    # MAE-DFER on VoxCeleb2: AdamW (0.9, 0.95), lr 3e-4 at a total batch of 64, weight decay 0.05, 100 epochs,
    # 5% warm-up then cosine
    "mae_dfer": {
        **PRETRAINING_COMMON,
        "learning_rate": 3e-4,
        "per_device_train_batch_size": 32,
        "per_device_eval_batch_size": 32,
        "num_train_epochs": 100,
        "logging_strategy": "steps",
        "logging_steps": 50,
    },
    "quick": {
        **PRETRAINING_COMMON,
        "learning_rate": 2e-3,
        "per_device_train_batch_size": 16,
        "per_device_eval_batch_size": 32,
        "num_train_epochs": 60,
        "logging_strategy": "epoch",
    },
}


@pytest.mark.parametrize("name", list(PRETRAINING_EXPECTED))
def test_each_pretraining_recipe_sets_exactly_its_documented_values(name):
    from mmder_hf.training.recipes import PRETRAINING_RECIPES

    recipe = PRETRAINING_RECIPES[name]
    assert (recipe.name, recipe.kind, recipe.recipe, recipe.data) == (name, "pretrain", {}, {})
    assert recipe.training == PRETRAINING_EXPECTED[name]
    run = {"remove_unused_columns": False, "report_to": "none", "do_train": True, "do_eval": True}
    assert recipe.defaults() == {**run, **PRETRAINING_EXPECTED[name], "recipe": name}  # no test split to predict


def test_a_finetuning_recipe_also_predicts_the_test_split_and_unknown_names_are_one_line():
    from mmder_hf.training.recipes import PRETRAINING_RECIPES, get_recipe

    run = {"remove_unused_columns": False, "report_to": "none", "do_train": True, "do_eval": True, "do_predict": True}
    assert RECIPES["paper"].defaults() == {**run, **recipe_defaults("paper")}
    with pytest.raises(
        ValueError, match=r"^Unknown pre-training recipe 'fast'; expected one of \['mae_dfer', 'quick'\]$"
    ):
        get_recipe("fast", PRETRAINING_RECIPES)
    assert get_recipe("quick", PRETRAINING_RECIPES) is PRETRAINING_RECIPES["quick"]
