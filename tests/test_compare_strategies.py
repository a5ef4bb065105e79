"""examples/compare_strategies.py: the paper's grid (here 2 models x 2 folds on a synthetic corpus), resumed, pushed
to a patched HfApi; and the comparison table against the paper's published numbers with protocol labels."""

import json
import os

import pytest
from test_finetune import finetune_args, run

from mmder_hf.cards.comparison import comparison_table, render_comparison_card, summarize_grid
from mmder_hf.data.corpora import CORPUS_INFO


@pytest.fixture(scope="module")
def corpus(tmp_path_factory):
    """8 actors x 8 clips: 2 folds of 4 test actors; each fold trains on 2 actors and validates on 2."""
    from mmder_hf.data import make_synthetic_corpus

    return make_synthetic_corpus(
        str(tmp_path_factory.mktemp("corpus")), num_actors=8, clips_per_actor=8, num_workers=0
    )


@pytest.mark.slow
def test_grid_of_two_models_and_two_folds_resumes_and_pushes(corpus, tmp_path):
    out, cache = tmp_path / "grid", tmp_path / "cache"
    env = {"MMDER_TEST_SCRIPT": "compare_strategies"}
    common = [
        *finetune_args(corpus, cache, out, "--num_train_epochs", "1", "--save_strategy", "no"),
        "--eval_strategy",
        "no",
        "--strategies",
        "FSLF,audio",
    ]
    first = run([*common, "--folds", "1"], tmp_path, env=env)  # an interrupted grid: fold 2 not run yet
    assert first.returncode == 0, first.stderr[-4000:]
    partial = json.loads((out / "grid_results.json").read_text())
    assert partial["folds"] == [1] and sorted(partial["models"]) == ["FSLF", "audio"]
    stamps = {m: (out / m / "fold_1" / "all_results.json").stat().st_mtime_ns for m in ("FSLF", "audio")}

    second = run([*common, "--push_to_hub", "--hub_model_id", "me/grid"], tmp_path, env=env)
    assert second.returncode == 0, second.stderr[-4000:]
    for model, stamp in stamps.items():  # finished runs are skipped, not trained again
        assert (out / model / "fold_1" / "all_results.json").stat().st_mtime_ns == stamp, model
    summary = json.loads((out / "grid_results.json").read_text())
    assert summary["folds"] == [1, 2]
    for model in ("FSLF", "audio"):
        runs = {k: json.loads((out / model / f"fold_{k}" / "all_results.json").read_text()) for k in (1, 2)}
        entry = summary["models"][model]
        for k in (1, 2):
            assert entry["folds"][str(k)]["test_war"] == runs[k]["test_war"]
            assert entry["folds"][str(k)]["test_uar"] == runs[k]["test_uar"]
        assert entry["mean_test_war"] == pytest.approx((runs[1]["test_war"] + runs[2]["test_war"]) / 2)
        assert entry["std_test_war"] == pytest.approx(abs(runs[1]["test_war"] - runs[2]["test_war"]) / 2)
        assert entry["paper"] is None and entry["missing_folds"] == []  # the paper has no synthetic corpus
        fslf = json.loads((out / "FSLF" / "fold_1" / "run_args.json").read_text())["settings"]
        assert fslf["model.fusion_strategy"] == "FSLF"
        for k in (1, 2):  # a model of the synthetic corpus says so, in its config and near the top of its card
            fold = out / model / f"fold_{k}"
            assert json.loads((fold / "config.json").read_text())["training_data"] == "synthetic"
            top = (fold / "README.md").read_text().split("## Results")[0]
            assert "it recognises synthetic clips only, not real faces and voices" in " ".join(top.split())
    table = (out / "grid_results.md").read_text()
    fslf_row = next(line for line in table.splitlines() if line.startswith("| FSLF |"))
    runs = {k: json.loads((out / "FSLF" / f"fold_{k}" / "all_results.json").read_text()) for k in (1, 2)}
    assert f"{runs[2]['test_war'] * 100:.2f} / {runs[2]['test_uar'] * 100:.2f}" in fslf_row
    assert "ours: 2-fold CV" in table and "publishes no numbers" in table
    assert (out / "grid_folds.png").read_bytes()[:4] == b"\x89PNG"

    uploads = sorted(p.name for p in (tmp_path / "uploads").iterdir())
    assert uploads[-1].endswith("-me__grid-root")
    summary_repo = tmp_path / "uploads" / uploads[-1]
    assert {"README.md", "grid_results.json", "grid_results.md", "grid_folds.png"} <= set(os.listdir(summary_repo))
    assert not {"FSLF", "audio"} & set(os.listdir(summary_repo))  # each model lives in its own repos
    card = (summary_repo / "README.md").read_text()
    assert "me/grid-fslf" in card and "me/grid-audio" in card and "strategy-comparison" in card
    for model in ("fslf", "audio"):
        assert any(u.endswith(f"-me__grid-{model}-root") for u in uploads), model  # the model's CV card
        fold2 = [u for u in uploads if f"-me__grid-{model}-fold2-" in u]  # trained in the pushing run
        assert fold2 and (tmp_path / "uploads" / fold2[-1] / "model.safetensors").is_file(), model
        pushed = json.loads((tmp_path / "uploads" / fold2[-1] / "config.json").read_text())
        assert pushed["training_data"] == "synthetic", model

    other = run([*common, "--learning_rate", "1e-3"], tmp_path, env=env)  # never mixes settings
    assert other.returncode != 0 and "was run with other settings" in other.stderr


def test_table_puts_the_papers_numbers_beside_ours_with_both_protocols():
    folds = {1: {"test_war": 0.8, "test_uar": 0.7}, 2: {"test_war": 0.6, "test_uar": 0.5}}
    summary = summarize_grid({"FFLS": folds, "video": {1: folds[1]}}, "ravdess", "8class")
    assert summary["models"]["FFLS"]["mean_test_war"] == pytest.approx(0.7)
    assert summary["models"]["FFLS"]["std_test_war"] == pytest.approx(0.1)
    assert summary["models"]["video"]["missing_folds"] == [2]
    table = comparison_table(summary)
    header, _, ffls, video = table.splitlines()[:4]
    assert "WAR (ours: 2-fold CV, 8class)" in header
    assert "WAR (paper: one 1080 / 360 train / test split, not cross-validation, 7class)" in header
    assert ffls == "| FFLS | 80.00 / 70.00 | 60.00 / 50.00 | 70.00 ± 10.00 | 60.00 ± 10.00 | 83.56 | 82.27 |"
    assert video == "| video | 80.00 / 70.00 | - | 80.00 | 70.00 | 74.13 | - |"  # one finished fold: no ± 0.00
    assert "Not finished yet: video folds 2." in table
    card = str(render_comparison_card(summary, "me/grid", base_model="MCG-NJU/videomae-base", recipe="paper"))
    assert "license: cc-by-nc-sa-4.0" in card and "| FFLS |" in card


def test_model_cards_quote_the_paper_for_their_own_strategy_and_protocol():
    from mmder_hf.cards.cards import paper_reference

    text = paper_reference("crema_d", "CFAS")
    assert "78.16 WAR / 78.24 UAR (CFAS, 6class)" in text and "one undocumented split" in text
    assert "74.13 WAR (video, 7class)" in paper_reference("ravdess", "video")
    assert paper_reference("synthetic", "FSLF") == ""
    # every published table has the paper's 8 models
    for info in CORPUS_INFO.values():
        assert info.published is None or sorted(info.published.results) == sorted(
            ["FSLF", "FFLS", "CFAS", "OFOS", "SFAS", "RFAS", "video", "audio"]
        )


@pytest.mark.slow
def test_grid_under_two_processes_trains_each_model_on_disjoint_halves_and_pushes_once(corpus, tmp_path):
    import sys

    from test_finetune import EXAMPLES, RUNNER

    runner = tmp_path / "runner.py"
    runner.write_text(RUNNER)
    launcher = (
        sys.executable,
        "-m",
        "accelerate.commands.launch",
        "--config_file",
        str(EXAMPLES / "accelerate_configs" / "cpu_2proc.yaml"),
        "--main_process_port",
        "29733",
        str(runner),
    )
    seen, out = tmp_path / "seen", tmp_path / "grid"
    seen.mkdir()
    args = finetune_args(corpus, tmp_path / "cache", out, "--num_train_epochs", "1", "--save_strategy", "no")
    args += ["--use_cpu", "true", "--per_device_train_batch_size", "4", "--eval_strategy", "no"]
    args += ["--strategies", "FSLF,video", "--folds", "1", "--push_to_hub", "--hub_model_id", "me/grid"]
    env = {"GLOO_SOCKET_IFNAME": "lo", "MMDER_TEST_SEEN": str(seen), "MMDER_TEST_SCRIPT": "compare_strategies"}
    result = run(args, tmp_path, launcher=launcher, env=env)
    assert result.returncode == 0, result.stderr[-6000:]
    summary = json.loads((out / "grid_results.json").read_text())
    assert sorted(summary["models"]) == ["FSLF", "video"] and summary["folds"] == [1]
    uploads = sorted(p.name for p in (tmp_path / "uploads").iterdir())
    assert uploads[-1].endswith("-me__grid-root") and all("-rank0-" in name for name in uploads), uploads
    # fold 1 trains on actors 7-8 (16 clips): per model, each rank saw 8 of them and the two halves are disjoint
    lines = {r: (seen / f"rank{r}.jsonl").read_text().splitlines() for r in (0, 1)}
    assert len(lines[0]) == len(lines[1]) == 4  # 2 models x 2 steps of 4 clips
    for model in range(2):
        a = [c for line in lines[0][2 * model : 2 * model + 2] for c in json.loads(line)["clips"]]
        b = [c for line in lines[1][2 * model : 2 * model + 2] for c in json.loads(line)["clips"]]
        assert len(a) == len(b) == 8 and not set(a) & set(b), model
