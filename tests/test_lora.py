"""LoRA fine-tuning (``--lora_r``) on the real path: examples/finetune.py on a synthetic corpus from a tiny saved
checkpoint. Exactly the adapters and the head train (counted independently, every other tensor unchanged), the merged
folder equals the adapter on its base and loads without peft, a resumed run ends with the same weights, two gloo
processes keep equal adapters, the feature cache and the flags' mistakes are refused, and the grid (hence
cross-validation) passes the flags to its runs."""

import json
import logging
import os
import shutil
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest
import torch
from fixtures_data import synthetic_ravdess_dir  # noqa: F401
from huggingface_hub import HfApi
from inference_helpers import run_without_mmder_hf
from offline_hub import patch_hf_api
from safetensors.torch import load_file

from mmder_hf import MultiMAEDERConfig, MultiMAEDERForVideoClassification
from mmder_hf.training import MODEL_SIZES, RecipeArguments, can_cache_features, parse_args
from mmder_hf.training.lora import apply_lora
from mmder_hf.user_errors import UserError


ROOT = Path(__file__).resolve().parents[1]
RANK, ALPHA, LABELS = 4, 8.0, 8  # --lora_r, its default alpha (2 x r), RAVDESS's 8 classes


@pytest.fixture(scope="module")
def base(tmp_path_factory) -> Path:
    """A tiny classifier checkpoint (random weights, 8 labels): what the LoRA runs start from."""
    torch.manual_seed(3)
    folder = tmp_path_factory.mktemp("base")
    MultiMAEDERForVideoClassification(MultiMAEDERConfig(**MODEL_SIZES["tiny"], num_labels=LABELS)).save_pretrained(
        folder
    )
    return folder


@pytest.fixture(scope="module")
def cache_dir(tmp_path_factory) -> Path:
    return tmp_path_factory.mktemp("cache")


def lora_args(corpus, cache_dir, base, output_dir, *extra) -> list:
    return [
        "--output_dir",
        output_dir,
        "--dataset_source",
        corpus,
        "--cache_dir",
        cache_dir,
        "--model_name_or_path",
        base,
        "--lora_r",
        RANK,
        "--max_train_samples",
        "8",
        "--max_eval_samples",
        "4",
        "--per_device_train_batch_size",
        "2",
        "--learning_rate",
        "1e-2",
        "--eval_strategy",
        "no",
        "--seed",
        "5",
        "--torch_num_threads",
        "1",
        *extra,
    ]


STEPS = ("--max_steps", "4", "--save_strategy", "steps", "--save_steps", "2")


@pytest.fixture(scope="module")
def lora_run(synthetic_ravdess_dir, cache_dir, base, tmp_path_factory) -> Path:  # noqa: F811
    """A 4-step LoRA run (checkpoints at steps 2 and 4)."""
    import importlib.util

    out = tmp_path_factory.mktemp("lora") / "run"
    spec = importlib.util.spec_from_file_location("example_finetune_lora", ROOT / "examples" / "finetune.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    threads, said = torch.get_num_threads(), []
    handler = logging.Handler()
    handler.emit = lambda record: said.append(record.getMessage())
    logging.getLogger("mmder_hf").addHandler(handler)
    push = ("--push_to_hub", "--hub_model_id", "me/lora")
    try:
        with pytest.MonkeyPatch.context() as patch:  # put HfApi back afterwards
            for name in ("create_repo", "upload_folder", "create_commit", "preupload_lfs_files", "upload_file"):
                patch.setattr(HfApi, name, getattr(HfApi, name))
            patch.setattr(HfApi, "model_info", HfApi.model_info)
            patch_hf_api(str(out.parent / "uploads"))  # each upload copied there; no network
            module.main([str(a) for a in lora_args(synthetic_ravdess_dir, cache_dir, base, out, *STEPS, *push)])
    finally:
        torch.set_num_threads(threads)
        logging.getLogger("mmder_hf").removeHandler(handler)
    (out.parent / "log.txt").write_text("\n".join(said))
    return out


def expected_trainable(config: MultiMAEDERConfig, r: int) -> int:
    """r x (in + out) for query and value of every layer, plus fc_norm (weight, bias) and the classifier."""
    hidden = config.hidden_size
    adapters = config.num_hidden_layers * 2 * r * (hidden + hidden)
    return adapters + 2 * hidden + hidden * config.num_labels + config.num_labels


def test_exactly_the_adapters_and_head_are_trainable_counted_in_the_log_record_and_card(lora_run, base):
    config = MultiMAEDERConfig.from_pretrained(base)
    trainable = expected_trainable(config, RANK)
    base_total = sum(t.numel() for t in load_file(base / "model.safetensors").values())
    total = base_total + config.num_hidden_layers * 2 * RANK * 2 * config.hidden_size
    share = f"{100 * trainable / total:.2f}%"
    said = (lora_run.parent / "log.txt").read_text()
    assert (
        f"LoRA r={RANK}, alpha={ALPHA} on query, value: trainable parameters: {trainable:,} of {total:,} ({share})"
        in said
    )
    record = json.loads((lora_run / "run_args.json").read_text())
    assert record["parameters"] == {"trainable": trainable, "total": total}
    assert record["settings"]["recipe.lora_r"] == RANK
    card = (lora_run / "README.md").read_text()
    assert f"| trainable parameters | {trainable:,} of {total:,} ({share}) |" in card
    assert f"| LoRA | r {RANK}, alpha {ALPHA:g}, dropout 0.1, on query, value;" in card
    adapter = load_file(lora_run / "adapter" / "adapter_model.safetensors")
    assert sum(t.numel() for t in adapter.values()) == trainable  # what was saved is what trained
    assert not (lora_run / "adapter_config.json").exists()  # at the root it would make the folder need peft


def test_only_the_merged_model_and_its_adapter_folder_are_pushed(lora_run):
    uploads = sorted((lora_run.parent / "uploads").iterdir())
    assert uploads and all("me__lora-root" in upload.name for upload in uploads), uploads
    for upload in uploads:  # no checkpoint push: it would leave the adapter at the repository's root
        assert (upload / "model.safetensors").is_file() and (upload / "adapter" / "adapter_config.json").is_file()
        assert not list(upload.glob("adapter_*")), upload


def test_frozen_tensors_are_unchanged_and_the_merged_weights_are_base_plus_the_trained_adapters(lora_run, base):
    start = load_file(base / "model.safetensors")
    merged = load_file(lora_run / "model.safetensors")
    adapter = {
        k.removeprefix("base_model.model."): v
        for k, v in load_file(lora_run / "adapter" / "adapter_model.safetensors").items()
    }
    assert set(merged) == set(start)
    adapted = 0
    for name, tensor in start.items():
        module = name.rsplit(".", 1)[0]
        if name.startswith(("fc_norm.", "classifier.")):  # trained fully: the adapter holds the trained head
            assert torch.equal(merged[name], adapter[name]) and not torch.equal(merged[name], tensor), name
        elif module.endswith((".query", ".value")) and name.endswith(".weight"):
            a, b = adapter[f"{module}.lora_A.weight"], adapter[f"{module}.lora_B.weight"]
            assert b.abs().max() > 0, name  # lora_B starts at zero: it trained
            assert torch.allclose(merged[name], tensor + (ALPHA / RANK) * b @ a, atol=1e-6), name
            adapted += 1
        else:
            assert torch.equal(merged[name], tensor), name  # frozen, tensor by tensor
    assert adapted == 2 * MODEL_SIZES["tiny"]["num_hidden_layers"]


def test_the_merged_folder_equals_the_adapter_on_its_base_and_loads_without_peft(lora_run, base, tmp_path):
    from peft import PeftModel

    merged = MultiMAEDERForVideoClassification.from_pretrained(lora_run).eval()
    adapted = PeftModel.from_pretrained(MultiMAEDERForVideoClassification.from_pretrained(base), lora_run / "adapter")
    config = merged.config
    torch.manual_seed(0)
    side = config.image_size
    inputs = {
        "pixel_values": torch.randn(3, config.num_video_frames, 3, side, side),
        "audio_values": torch.randn(3, config.num_audio_frames, 3, side, side),
    }
    torch.save(inputs, tmp_path / "inputs.pt")
    with torch.no_grad():
        expected = merged(**inputs).logits
        assert torch.allclose(adapted.eval()(**inputs).logits, expected, atol=1e-5)
        assert not torch.allclose(MultiMAEDERForVideoClassification.from_pretrained(base)(**inputs).logits, expected)
    script = textwrap.dedent(
        """
        import json, sys, torch
        from transformers import AutoModelForVideoClassification
        model = AutoModelForVideoClassification.from_pretrained(sys.argv[1], trust_remote_code=True).eval()
        assert type(model).__module__.startswith("transformers_modules"), type(model).__module__
        with torch.no_grad():
            print(json.dumps(model(**torch.load(sys.argv[2])).logits.tolist()))
        """
    )
    logits = json.loads(run_without_mmder_hf(script, lora_run, tmp_path / "inputs.pt").strip().splitlines()[-1])
    assert torch.allclose(torch.tensor(logits), expected, atol=1e-5)


def test_a_resumed_lora_run_ends_with_the_uninterrupted_runs_weights(
    lora_run,
    synthetic_ravdess_dir,
    cache_dir,
    base,
    tmp_path,
    example_main,  # noqa: F811
):
    resumed = tmp_path / "resumed"
    argv = lora_args(synthetic_ravdess_dir, cache_dir, base, resumed, *STEPS)
    example_main("finetune", [*argv, "--resume_from_checkpoint", lora_run / "checkpoint-2"])
    state = json.loads((resumed / "trainer_state.json").read_text())
    assert state["global_step"] == 4 and sorted(p.name for p in resumed.glob("checkpoint-*")) == ["checkpoint-4"]
    for name in ("model.safetensors", "adapter/adapter_model.safetensors"):
        straight, again = load_file(lora_run / name), load_file(resumed / name)
        assert set(straight) == set(again), name  # the same trainable set
        for key, tensor in straight.items():
            assert torch.allclose(again[key], tensor, atol=1e-6), (name, key)


def test_a_finished_lora_run_is_reused_as_it_is_and_other_lora_settings_are_refused(
    lora_run,
    synthetic_ravdess_dir,
    cache_dir,
    base,
    tmp_path,
    example_main,  # noqa: F811
):
    from mmder_hf.training.run import OtherSettingsError

    copy = tmp_path / "run"
    shutil.copytree(lora_run, copy)
    with pytest.raises(OtherSettingsError, match=r"holds a run with other settings \(lora_r: 4 there, 2 now\)"):
        example_main("finetune", [*lora_args(synthetic_ravdess_dir, cache_dir, base, copy, *STEPS), "--lora_r", "2"])
    weights = load_file(copy / "model.safetensors")
    before = json.loads((copy / "all_results.json").read_text())
    (copy / "all_results.json").unlink()  # written again by the evaluation of the reused run
    example_main("finetune", lora_args(synthetic_ravdess_dir, cache_dir, base, copy, *STEPS))  # the same command
    after = json.loads((copy / "all_results.json").read_text())
    for key in ("eval_loss", "test_loss", "test_war"):  # evaluated again, with the merged weights
        assert after[key] == pytest.approx(before[key], abs=1e-6), key
    assert all(torch.equal(t, load_file(copy / "model.safetensors")[k]) for k, t in weights.items())
    record = json.loads((copy / "run_args.json").read_text())
    assert record["parameters"] == json.loads((lora_run / "run_args.json").read_text())["parameters"]


def test_the_feature_cache_is_never_used_with_lora():
    config = MultiMAEDERConfig(**MODEL_SIZES["tiny"], num_labels=LABELS)
    probe = RecipeArguments(recipe="paper", freeze_backbone=True)
    model = MultiMAEDERForVideoClassification(config).freeze_backbone()
    assert can_cache_features(model, probe)
    lora = RecipeArguments(recipe="paper", freeze_backbone=True, lora_r=RANK)
    assert not can_cache_features(model, lora)  # the flags alone rule it out, before any adapter exists
    assert not can_cache_features(apply_lora(model, lora), lora)
    with pytest.raises(UserError, match=r"^--lora_r with a frozen encoder .*linear probe .*cached encoder features"):
        parse_args(["--recipe", "paper", "--lora_r", "4"])


@pytest.mark.parametrize(
    "argv, message",
    [
        (["--lora_r", "-1"], r"^--lora_r: expected a rank of 1 or more \(0: no LoRA\), got -1$"),
        (["--lora_r", "4", "--lora_dropout", "1"], r"^--lora_dropout: expected a probability in \[0, 1\), got 1.0$"),
        (["--lora_r", "4", "--lora_alpha", "0"], r"^--lora_alpha: expected a positive number, got 0.0$"),
        (["--lora_r", "4", "--lora_target_modules", " , "], r"^--lora_target_modules: expected comma-separated"),
        (["--lora_r", "4", "--freeze_backbone", "true"], r"^--lora_r with a frozen encoder"),
        (["--lora_r", "4", "--fsdp", "full_shard"], r"^--lora_r with --fsdp or --deepspeed is not supported"),
        (["--lora_dropout", "0", "--lora_alpha", "4"], r"^--lora_alpha, --lora_dropout without --lora_r: give the"),
    ],
)
def test_lora_flag_mistakes_are_one_line(argv, message):
    with pytest.raises(UserError, match=message):
        parse_args(argv)


def test_runs_without_lora_keep_the_settings_of_runs_saved_before_the_lora_flags(tmp_path):
    from mmder_hf.training.run import result_settings, settings_differences

    now = result_settings(*parse_args(["--output_dir", str(tmp_path)]))
    saved = {k: v for k, v in now.items() if "lora" not in k}  # run_args.json of a run saved before LoRA existed
    (tmp_path / "run_args.json").write_text(json.dumps({"settings": saved}))
    assert settings_differences(str(tmp_path), now) == {}  # reused or resumed, not refused
    lora = result_settings(*parse_args(["--output_dir", str(tmp_path), "--lora_r", "4"]))
    assert settings_differences(str(tmp_path), lora) == {"recipe.lora_r": (None, 4)}


def test_a_misspelt_target_module_and_a_missing_peft_are_one_line(monkeypatch):
    model = MultiMAEDERForVideoClassification(MultiMAEDERConfig(**MODEL_SIZES["tiny"], num_labels=LABELS))
    typo = RecipeArguments(lora_r=RANK, lora_target_modules="qurey,value")
    with pytest.raises(
        UserError,
        match=r"^--lora_target_modules: the encoder has no Linear layer named 'qurey' \(did "
        r"you mean query\?\); it has dense, key, query, value$",
    ):
        apply_lora(model, typo)
    monkeypatch.setitem(sys.modules, "peft", None)  # as if peft were not installed
    with pytest.raises(UserError, match=r'^--lora_r needs peft, which is not installed: pip install -e "\.\[lora\]"$'):
        parse_args(["--lora_r", "4"])


def test_the_grid_and_cross_validation_pass_the_lora_flags_to_every_run(
    synthetic_ravdess_dir,
    cache_dir,
    base,
    tmp_path,
    example_main,  # noqa: F811
):
    argv = lora_args(synthetic_ravdess_dir, cache_dir, base, tmp_path / "grid", "--max_steps", "1")
    example_main("compare_strategies", [*argv, "--strategies", "FSLF", "--folds", "1", "--lora_dropout", "0.2"])
    fold = tmp_path / "grid" / "FSLF" / "fold_1"
    settings = json.loads((fold / "run_args.json").read_text())["settings"]
    assert (settings["recipe.lora_r"], settings["recipe.lora_dropout"]) == (RANK, 0.2)
    adapter = json.loads((fold / "adapter" / "adapter_config.json").read_text())
    assert (adapter["r"], adapter["lora_dropout"]) == (RANK, 0.2)


DDP_RUNNER = textwrap.dedent(
    """
    import json, os, sys
    sys.path.insert(0, os.environ["MMDER_EXAMPLES"])
    from safetensors.torch import save_file
    from transformers import TrainerCallback
    import mmder_hf.training.finetune as finetune
    from mmder_hf.training.run import end_process_group

    RANK, SEEN = os.environ.get("RANK", "0"), os.environ["MMDER_TEST_SEEN"]

    class Dump(TrainerCallback):
        def on_train_end(self, args, state, control, model=None, **kwargs):
            trained = {n: p.detach().clone() for n, p in model.named_parameters() if p.requires_grad}
            save_file(trained, os.path.join(SEEN, f"rank{RANK}.safetensors"))

    class SpyTrainer(finetune.MultiMAEDERTrainer):
        def __init__(self, *args, **kwargs):
            super().__init__(*args, **kwargs)
            self.add_callback(Dump())

        def compute_loss(self, model, inputs, *args, **kwargs):
            if model.training:
                with open(os.path.join(SEEN, f"rank{RANK}.jsonl"), "a") as f:
                    f.write(json.dumps(inputs["pixel_values"].double().sum((1, 2, 3, 4)).tolist()) + "\\n")
            return super().compute_loss(model, inputs, *args, **kwargs)

    finetune.MultiMAEDERTrainer = SpyTrainer
    import finetune as script
    try:
        script.main(sys.argv[1:])
    finally:
        end_process_group()
    """
)


@pytest.mark.slow
def test_two_gloo_processes_train_equal_adapters_on_disjoint_halves(
    synthetic_ravdess_dir,
    cache_dir,
    base,
    tmp_path,
    free_port,  # noqa: F811
):
    runner, seen = tmp_path / "runner.py", tmp_path / "seen"
    runner.write_text(DDP_RUNNER)
    seen.mkdir()
    launcher = [sys.executable, "-m", "accelerate.commands.launch", "--config_file"]
    launcher += [ROOT / "examples" / "accelerate_configs" / "cpu_2proc.yaml", "--main_process_port", free_port, runner]
    argv = lora_args(synthetic_ravdess_dir, cache_dir, base, tmp_path / "ddp", "--max_steps", "2", "--use_cpu", "true")
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "OMP_NUM_THREADS": "1", "GLOO_SOCKET_IFNAME": "lo"}
    env.update(MMDER_EXAMPLES=str(ROOT / "examples"), MMDER_TEST_SEEN=str(seen))
    done = subprocess.run([*map(str, launcher), *map(str, argv)], capture_output=True, text=True, env=env, timeout=300)
    assert done.returncode == 0, done.stderr[-4000:]
    clips = {
        r: [s for line in (seen / f"rank{r}.jsonl").read_text().splitlines() for s in json.loads(line)] for r in (0, 1)
    }
    assert len(clips[0]) == len(clips[1]) == 4 and not {round(s, 2) for s in clips[0]} & {
        round(s, 2) for s in clips[1]
    }
    a, b = load_file(seen / "rank0.safetensors"), load_file(seen / "rank1.safetensors")
    assert (
        len(a) == len(b) == 4 * MODEL_SIZES["tiny"]["num_hidden_layers"] + 4
    )  # A and B of 2 modules per layer + head
    for name, tensor in a.items():
        assert torch.equal(tensor, b[name]), name
    assert any(name.endswith("lora_B.default.weight") and tensor.abs().max() > 0 for name, tensor in a.items())
    assert json.loads((tmp_path / "ddp" / "trainer_state.json").read_text())["global_step"] == 2
    assert (tmp_path / "ddp" / "adapter" / "adapter_model.safetensors").is_file()


def test_rank_zero_means_no_lora_and_only_a_pushing_run_is_set_to_push_at_the_end(caplog):
    """``--lora_r 0`` is the documented "off", not a mistake; a LoRA run that does not push keeps its hub strategy
    (and says nothing about pushing)."""
    from transformers import TrainingArguments
    from transformers.trainer_utils import HubStrategy

    from mmder_hf.training.lora import check_lora_arguments, push_at_the_end_only

    off = RecipeArguments(lora_r=0)
    check_lora_arguments(off)
    assert not off.uses_lora
    with caplog.at_level(logging.INFO, logger="mmder_hf.training.lora"):
        local = TrainingArguments(output_dir="unused", push_to_hub=False, hub_strategy="every_save")
        push_at_the_end_only(local)
        assert local.hub_strategy == HubStrategy.EVERY_SAVE and not caplog.records
        pushing = TrainingArguments(output_dir="unused", push_to_hub=True, hub_strategy="every_save")
        push_at_the_end_only(pushing)
    assert pushing.hub_strategy == HubStrategy.END
    assert [r.getMessage() for r in caplog.records] == [
        "LoRA: the model is pushed when the run ends, not at every checkpoint (--hub_strategy end)"
    ]
