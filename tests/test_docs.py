"""Every command of README.md and examples/README.md, run as written after the README's setup.

The commands run in document order in one folder that holds the repository's programs (``.venv``, ``examples``,
``scripts``, ``benchmarks``, ``dataset_scripts``), so that their relative paths (``runs/demo`` ...) are the documented
ones, with ``HOME`` there too (the synthetic corpus is made fresh, as on a new machine). What each kind of command
must show:

- on the built-in synthetic corpus (or on what an earlier command wrote): exit status 0, and what the docs promise of
  its output;
- needing what a CPU test machine lacks (a corpus under ``/data/``, a GPU): run as written, it ends with exit status
  1 or 2 and ONE line naming what is missing, never a traceback;
- the setup and test commands are CI's own (``.ci/run``); an extra to install must exist; a benchmark measurement is
  not re-run (it takes ten minutes): its committed JSON must hold that command, and the README's tables must be
  exactly what ``make_table.py`` prints from it.
"""

from __future__ import annotations

import ast
import contextlib
import io
import json
import os
import re
import runpy
import shlex
import shutil
import subprocess
import sys
from datetime import datetime
from importlib.metadata import PackageNotFoundError, metadata, requires, version
from pathlib import Path

import pytest
from packaging.requirements import Requirement


REPO = Path(__file__).resolve().parents[1]
DOCS = ("README.md", "examples/README.md")
SETUP = "bash scripts/setup.sh"


def documented_commands() -> list[tuple[str, int, str]]:
    """``(doc, line, command)`` for every command of the ``bash`` blocks, continuation lines joined, comments cut."""
    commands = []
    for doc in DOCS:
        inside, pending, start = False, "", 0
        for number, line in enumerate((REPO / doc).read_text().splitlines(), 1):
            if line.startswith("```"):
                inside = line.strip() == "```bash"
                continue
            if not inside:
                continue
            text = re.sub(r"\s+#\s.*$", "", line).rstrip()
            if not pending and (not text.strip() or text.lstrip().startswith("#")):
                continue
            if not pending:
                start = number
            if text.endswith("\\"):
                pending += text[:-1].rstrip() + " "
                continue
            commands.append((doc, start, re.sub(r"\s+", " ", pending + text.strip()).strip()))
            pending = ""
    return commands


def kind(command: str) -> str:
    """What a command needs, and so what it must show here (see the module docstring)."""
    if " -m pytest tests" in command:
        return "tests"
    if command.startswith(SETUP):
        return "setup"
    if re.search(r"\bpip install\b", command):
        return "install"
    if " auth login" in command:
        return "login"
    if command.startswith(".venv/bin/hf "):
        return "hub"  # a Hub command (upload, deploy): this machine has no Hub, its flags are checked
    if " ".join(shlex.split(command)[1:]) in MEASURED:
        return "measurement"
    if "/data/" in command or re.search(r"(?<![\w/.])(me|MCG-NJU)/", command):
        return "needs-data"  # a corpus, a Hub dataset or a Hub checkpoint this machine does not have
    if "bench_gpu.py" in command and "--device cpu" not in command:
        return "needs-gpu"
    if command.endswith(" &"):
        return "serves"  # a server the next commands talk to
    if command == "kill %1":
        return "stops"  # the server started above
    return "runs"


#: The commands whose measurements are committed (``benchmarks/results/*.json`` record their command line).
MEASURED = {
    " ".join(json.loads(path.read_text())["command"].split()[1:])
    for path in (REPO / "benchmarks/results").glob("*.json")
}
COMMANDS = documented_commands()


def test_the_docs_have_commands_of_every_kind():
    """The parser finds the documented commands (a broken parser would make every other test here vacuous)."""
    kinds = {kind(command) for _, _, command in COMMANDS}
    assert kinds == {
        "setup",
        "tests",
        "install",
        "login",
        "hub",
        "measurement",
        "needs-data",
        "needs-gpu",
        "runs",
        "serves",
        "stops",
    }
    first = COMMANDS[0]
    assert first[:2] == ("README.md", 18)
    assert first[2] == "bash scripts/setup.sh && .venv/bin/python examples/demo.py --output_dir runs/demo"
    fold3 = ".venv/bin/python examples/finetune.py --output_dir runs/ravdess-fold3"
    joined = [c for _, _, c in COMMANDS if c.startswith(fold3)]
    assert joined == [
        f"{fold3} --dataset_name ravdess --dataset_source /data/ravdess --fold 3 --label_set 7class --recipe paper "
        "--model_name_or_path MCG-NJU/videomae-large-finetuned-kinetics --bf16"
    ]


def test_every_program_is_the_environment_s_own():
    """A command that starts with a bare ``python`` / ``mmder`` / ``accelerate`` fails after the documented setup."""
    for doc, line, command in COMMANDS:
        words = shlex.split(command)
        while words and re.fullmatch(r"[A-Z_]+=\S*", words[0]):  # VAR=value prefixes
            words = words[1:]
        program = words[0]
        shell = ("bash", "until", "printf", "curl", "kill")  # bash's own words, and curl to talk to a local server
        assert program in shell or program.startswith(".venv/bin/"), f"{doc}:{line}: {command}"
        if program.startswith(".venv/bin/"):
            assert (REPO / program).exists(), f"{doc}:{line}: {program} is not installed by the setup"


def test_setup_and_test_commands_are_ci_s():
    """CI sets up as the README says and runs exactly the README's test command."""
    ci = [line for line in (REPO / ".ci/run").read_text().splitlines() if line and not line.startswith("#")]
    setups = [c for _, _, c in COMMANDS if c.startswith(SETUP)]
    assert {c.split(" && ")[0] for c in setups} == {SETUP, f"{SETUP} --dev"}
    assert f"{SETUP} --dev" in ci
    tests = [c for _, _, c in COMMANDS if kind(c) == "tests"]
    assert tests == ["bash scripts/setup.sh --dev && HF_HUB_OFFLINE=1 .venv/bin/python -m pytest tests -n 2"]
    assert ci[-1] == tests[0].split(" && ")[1]


def test_every_documented_extra_exists_and_is_installed():
    """Each ``pip install -e ".[X]"`` of the docs names an extra of the installed package, and the dev setup has it."""
    extras = metadata("mmder-hf").get_all("Provides-Extra")
    installs = [c for _, _, c in COMMANDS if kind(c) == "install"]
    assert installs
    for command in installs:
        (target,) = [w for w in shlex.split(command) if w.startswith(".[")]
        name = target[2:-1]
        assert name in extras, f"{command}: no extra {name!r} in pyproject.toml"
        wanted = [Requirement(r) for r in requires("mmder-hf")]
        wanted = [r for r in wanted if r.marker is not None and r.marker.evaluate({"extra": name})]
        assert wanted
        for requirement in wanted:
            try:
                installed = version(requirement.name)
            except PackageNotFoundError:
                pytest.fail(f"{command}: {requirement.name} is not installed by the dev setup")
            assert requirement.specifier.contains(installed, prereleases=True)


def test_login_command_exists():
    (command,) = [c for _, _, c in COMMANDS if kind(c) == "login"]
    program, *args = shlex.split(command)
    result = subprocess.run([str(REPO / program), *args, "--help"], capture_output=True, text=True, timeout=60)
    assert result.returncode == 0 and "token" in result.stdout.lower()


def test_benchmark_tables_are_the_committed_measurement():
    """The README's benchmark tables are make_table.py's output for the committed JSON of the documented command."""
    readme = (REPO / "README.md").read_text()
    measurements = [c for _, _, c in COMMANDS if kind(c) == "measurement"]
    assert measurements == [
        ".venv/bin/python benchmarks/run.py --quick --output benchmarks/results/quick-cpu.json",
        ".venv/bin/python benchmarks/bench_gpu.py --device cpu --sizes vit-l --dtype float32 --batch 1 --repeats 3",
        ".venv/bin/python benchmarks/bench_lora.py --output benchmarks/results/lora-vit-s-cpu.json",
        ".venv/bin/python benchmarks/bench_timeline.py --output benchmarks/results/timeline-cpu.json",
        ".venv/bin/python benchmarks/bench_startup.py --repeats 10 --output benchmarks/results/startup-cpu.json",
    ]
    recorded = json.loads((REPO / "benchmarks/results/quick-cpu.json").read_text())
    took = datetime.fromisoformat(recorded["finished_utc"]) - datetime.fromisoformat(recorded["started_utc"])
    assert f"of the first command (about {took.total_seconds() / 60:.0f} minutes on 2 cores)" in readme
    (table_command,) = [c for _, _, c in COMMANDS if "make_table.py" in c]
    program, *args = shlex.split(table_command)
    printed = subprocess.run([str(REPO / program), *args], cwd=REPO, capture_output=True, text=True, timeout=120)
    assert printed.returncode == 0, printed.stderr
    for block in printed.stdout.strip().split("\n\n"):
        assert block.strip() in readme, f"README's benchmark text differs from make_table.py's:\n{block[:300]}"


def test_lora_table_is_the_committed_measurement():
    """Every figure of the README's LoRA table is the committed JSON's, rounded as printed."""
    readme = (REPO / "README.md").read_text()
    lora = json.loads((REPO / "benchmarks/results/lora-vit-s-cpu.json").read_text())
    full, adapters = lora["parameters"]["full"], lora["parameters"]["lora"]
    seconds, memory = lora["median_s"], lora["peak_memory_per_variant"]
    rows = [
        f"| trainable parameters | {full['trainable']:,} | {adapters['trainable']:,} of {adapters['total']:,} "
        f"({adapters['trainable_share']:.2%}) | {adapters['trainable'] / full['trainable']:.2g} |",
        f"| training step (median) | {seconds['full']:.2f} s | {seconds['lora']:.2f} s | "
        f"{lora['step_time_lora_over_full']:.2f} |",
        f"| training memory (peak RSS growth) | {memory['full']['training_extra_mib']:.0f} MiB | "
        f"{memory['lora']['training_extra_mib']:.0f} MiB | {lora['training_memory_lora_over_full']:.2f} |",
    ]
    for row in rows:
        assert row in readme, row
    assert lora["config"]["hidden_size"] == 384 and lora["tokens_per_clip"] == 196 and lora["lora"]["r"] == 8


def test_startup_table_is_the_committed_measurement():
    """Every start-up time of the README is the committed JSON's median, rounded as printed."""
    readme = (REPO / "README.md").read_text()
    median = json.loads((REPO / "benchmarks/results/startup-cpu.json").read_text())["median_s"]
    rows = {
        "`import mmder_hf`": f"{median['import mmder_hf']:.3f}",
        "`mmder --help`": f"{median['mmder --help']:.3f}",
        "`mmder --version`": f"{median['mmder --version']:.3f}",
        "`mmder predict` (a usage error, exit status 2)": f"{median['mmder predict (usage error)']:.3f}",
        "`python -c pass` (the interpreter alone)": f"{median['python -c pass']:.3f}",
        "`import transformers` (itself lazy)": f"{median['import transformers']:.2f}",
        "`import torch`": f"{median['import torch']:.2f}",
    }
    for command, seconds in rows.items():
        assert f"| {command} | {seconds} s |" in readme, (command, seconds)


def test_timeline_table_is_the_committed_measurement():
    """The README's timeline ratios and memory are the committed JSON's, rounded as printed."""
    readme = (REPO / "README.md").read_text()
    runs = json.loads((REPO / "benchmarks/results/timeline-cpu.json").read_text())["runs"]
    one, ten = runs["1min"], runs["10min"]
    memory = {name: run["peak_memory_per_variant"]["engine"]["peak_rss_mib"] for name, run in runs.items()}
    assert (
        f"| 1 minute (58 windows) | {one['engine_vs_decode']:.2f} | {one['per_window_vs_decode']:.2f} | "
        f"{memory['1min']:.0f} MiB |" in readme
    )
    assert (
        f"| 10 minutes (598 windows) | {ten['engine_vs_decode']:.2f} | not run | {memory['10min']:.0f} MiB |" in readme
    )
    assert f"The engine is {one['engine_speedup_over_per_window']:.2f}x faster than reading window by window" in readme


def test_hub_commands_exist_with_their_flags():
    """The Hub commands (upload, deploy) cannot run here: each subcommand exists and takes every flag written."""
    commands = [c for _, _, c in COMMANDS if kind(c) == "hub"]
    assert len(commands) >= 2
    for command in commands:
        program, *words = shlex.split(command)
        subcommand = []
        for word in words:
            if not re.fullmatch(r"[a-z]+", word):
                break
            subcommand.append(word)
        result = subprocess.run(
            [str(REPO / program), *subcommand, "--help"], capture_output=True, text=True, timeout=60
        )
        assert result.returncode == 0, (command, result.stderr)
        for flag in (w.split("=")[0] for w in words if w.startswith("--")):
            assert re.search(rf"{re.escape(flag)}\b", result.stdout), (command, flag)


@pytest.fixture(scope="module")
def sandbox(tmp_path_factory) -> Path:
    """A folder laid out as the repository root after the setup, with its own HOME (fresh caches)."""
    root = tmp_path_factory.mktemp("docs")
    for name in (".venv", "examples", "scripts", "benchmarks", "dataset_scripts"):
        (root / name).symlink_to(REPO / name)
    shutil.copytree(REPO / "model_cards", root / "model_cards")  # re-rendered in place by a documented command
    (root / "home").mkdir()
    return root


def sandbox_env(root: Path) -> dict:
    return {**os.environ, "HOME": str(root / "home"), "HF_HUB_OFFLINE": "1", "PYTHONUNBUFFERED": "1"}


def run_as_written(command: str, root: Path, timeout: int = 600) -> subprocess.CompletedProcess:
    """The command through bash, as a user types it (the setup before ``&&`` is CI's, already done)."""
    if command.startswith(SETUP):
        command = command.split(" && ", 1)[1]
    return subprocess.run(
        ["bash", "-c", command], cwd=root, env=sandbox_env(root), capture_output=True, text=True, timeout=timeout
    )


def script_in_command(command: str) -> tuple[Path, list[str]]:
    """The Python script a command runs (also under ``accelerate launch`` / ``torchrun``) and its own arguments."""
    words = shlex.split(command)
    index = next(i for i, w in enumerate(words) if w.endswith(".py"))
    return Path(words[index]), words[index + 1 :]


@pytest.mark.parametrize(
    "command", [c for _, _, c in COMMANDS if kind(c) == "needs-data"], ids=lambda c: script_in_command(c)[0].name
)
def test_commands_that_need_a_corpus_say_which_in_one_line(command, sandbox, monkeypatch):
    """Run as written (the script's ``__main__``, in this process: the same arguments, without ~9 s of imports),
    they stop before any work with one line naming the missing folder (or the Hub, when they would push)."""
    import logging

    import torch

    script, args = script_in_command(command)
    words = shlex.split(command)
    if words[0].endswith(("accelerate", "torchrun")):
        config = words[words.index("--config_file") + 1] if "--config_file" in words else None
        assert config is None or (REPO / config).is_file(), f"{command}: no {config}"
    status, err = run_main_as_written(command, sandbox, monkeypatch)
    assert status in (1, 2), err
    errors = [line for line in err.splitlines() if ": error: " in line]
    assert len(errors) == 1 and "Traceback" not in err, err
    missing = [w for w in args if w.startswith("/data/")]
    named = any(path in errors[0] for path in missing) or "Hub" in errors[0] or "--push_to_hub" in errors[0]
    assert named or ("--bf16" in args and "GPU" in errors[0].upper()), errors[0]


def run_main_as_written(command: str, root: Path, monkeypatch) -> tuple[int, str]:
    """The script's ``__main__`` with the command's arguments, in this process (the same code path as the shell's,
    without ~9 s of imports): its exit status and stderr."""
    import logging

    import torch

    script, args = script_in_command(command)
    monkeypatch.chdir(root)
    monkeypatch.setenv("HOME", str(root / "home"))
    monkeypatch.setattr(sys, "argv", [str(script), *args])
    monkeypatch.syspath_prepend(str(REPO / script.parent))
    threads, levels = torch.get_num_threads(), {n: logging.getLogger(n).level for n in ("mmder_hf", "__main__")}
    err = io.StringIO()
    try:
        with pytest.raises(SystemExit) as exit_, contextlib.redirect_stderr(err):
            runpy.run_path(str(REPO / script), run_name="__main__")
    finally:
        torch.set_num_threads(threads)
        for name, level in levels.items():
            logging.getLogger(name).setLevel(level)
    return exit_.value.code, err.getvalue()


def test_gpu_commands_say_there_is_no_gpu(sandbox, monkeypatch):
    import torch

    if torch.cuda.is_available():
        pytest.skip("a CUDA device is visible: the GPU benchmark would run")
    commands = [c for _, _, c in COMMANDS if kind(c) == "needs-gpu"]
    assert commands
    for command in commands:
        status, err = run_main_as_written(command, sandbox, monkeypatch)
        assert status == 2, err
        lines = [line for line in err.splitlines() if "error:" in line]
        assert len(lines) == 1 and "no CUDA device" in lines[0] and "Traceback" not in err


@pytest.mark.slow
def test_commands_on_the_synthetic_corpus_run_to_the_end(sandbox):
    """Each runs once, in document order (later commands use what earlier ones wrote), and shows what the docs say."""
    seen, servers = [], []
    try:
        for doc, line, command in COMMANDS:
            if kind(command) == "serves":  # in the background, as the shell's `&`; stopped by the "kill %1" below
                log = (sandbox / f"server-{line}.log").open("w")
                servers.append(
                    subprocess.Popen(
                        ["bash", "-c", command[: -len(" &")]],
                        cwd=sandbox,
                        env=sandbox_env(sandbox),
                        stdout=log,
                        stderr=subprocess.STDOUT,
                    )
                )
            elif kind(command) == "stops":
                assert servers and servers[-1].poll() is None, f"{doc}:{line}: the server stopped by itself"
                servers.pop().terminate()
            if kind(command) in ("runs", "setup") and command not in seen:
                seen.append(command)
                run_documented(doc, line, command, sandbox)
    finally:
        for server in servers:
            server.kill()
    assert not servers and len(seen) >= 10, seen


def run_documented(doc: str, line: int, command: str, sandbox: Path) -> None:
    """One command through bash: exit status 0, no traceback, and what the docs promise of its output."""
    result = run_as_written(command, sandbox)
    output = result.stdout + result.stderr
    assert result.returncode == 0, f"{doc}:{line}: {command}\n{output[-3000:]}"
    assert "Traceback" not in output, f"{doc}:{line}: {command}\n{output[-3000:]}"
    check_output(command, output, sandbox)


def check_output(command: str, output: str, root: Path) -> None:
    """What the docs promise of each command's output."""
    if "examples/demo.py" in command:
        lines = output.splitlines()
        header = lines.index("model        WAR     UAR")
        table = [line.split() for line in lines[header + 1 : header + 4]]
        assert [row[0] for row in table] == ["FSLF", "video", "audio"]
        fslf, video, audio = (float(row[1]) for row in table)
        assert fslf > 0.9 and video <= 0.55 and audio <= 0.35  # the corpus's ceilings for one modality
        # the output the docs show is this run's (the demo is seeded): header, table and prediction line as printed
        shown = (REPO / "examples/README.md").read_text().split("and prints:\n\n```\n", 1)[1].split("```", 1)[0]
        shown = [line for line in shown.splitlines() if line.strip()]
        starts = ("Synthetic corpus, fold 1", "model ", "FSLF ", "video ", "audio ", "Prediction for ")
        printed = [line for line in lines if line.startswith(starts)]
        assert printed == shown, (printed, shown)
        wall = float(re.search(r"Total wall time: (\d+) s", output).group(1))
        assert wall < 120  # "under two minutes on 2 CPU cores, the corpus included"
        for model in ("fslf", "video", "audio"):
            for name in ("config.json", "all_results.json", "confusion_matrix.png", "README.md", "run_args.json"):
                assert (root / "runs/demo" / model / name).is_file(), (model, name)
        assert json.loads((root / "runs/demo/fslf/config.json").read_text())["training_data"] == "synthetic"
    elif "mmder predict" in command and "runs/synthetic-lora" in command:  # every example clip of the LoRA run
        clips = sorted((root / "runs/synthetic-lora/examples").glob("*.mp4"))
        assert clips and all(re.search(rf"{clip.name}: \w+ \d\.\d+", output) for clip in clips), output
    elif "mmder predict" in command:
        assert re.search(r"runs/demo/example_clip\.mp4: \w+ \d\.\d+", output), output
        assert output.count("trained on the built-in synthetic corpus") == 1, output  # the model's warning, once
        if "--csv predictions.csv" in command:  # a folder: one row per video found in it, none failed
            import csv

            from mmder_hf.cli import VIDEO_EXTENSIONS

            found = (root / "runs/demo").rglob("*")
            videos = sorted(str(p.relative_to(root)) for p in found if p.name.lower().endswith(VIDEO_EXTENSIONS))
            with open(root / "predictions.csv", newline="") as handle:
                rows = list(csv.DictReader(handle))
            assert videos and [row["file"] for row in rows] == videos, (rows, videos)
            assert all(row["label"] and not row["error"] for row in rows), rows
    elif "mmder timeline" in command:
        assert (root / "timeline.png").is_file() and (root / "timeline.csv").is_file()
    elif "mmder inspect" in command:
        assert (root / "inputs.png").is_file()
    elif "mmder export" in command:
        assert (root / "model.onnx").is_file()
    elif command.startswith("curl -s http://localhost:5000 "):  # the endpoint's answer: top 3, best first
        answer = json.loads(output)
        labels = json.loads((root / "runs/demo/fslf/config.json").read_text())["id2label"].values()
        assert len(answer) == 3 and {a["label"] for a in answer} <= set(labels), answer
        assert [a["score"] for a in answer] == sorted((a["score"] for a in answer), reverse=True), answer
    elif "mmder_hf.cards.publish_cards" in command:
        assert (root / "model_cards/multimae-der-ravdess-fold1/README.md").is_file()
        assert not [line for line in output.splitlines() if line.startswith(("---", "+++"))], output
    elif "--lora_r" in command:
        out = root / "runs/synthetic-lora"
        assert re.search(r"trainable parameters: [\d,]+ of [\d,]+ \(\d+\.\d+%\)", output), output[-2000:]
        assert (out / "adapter/adapter_config.json").is_file() and (out / "model.safetensors").is_file()
    elif "examples/finetune.py" in command:
        out = root / shlex.split(command)[shlex.split(command).index("--output_dir") + 1]
        assert json.loads((out / "all_results.json").read_text())["test_war"] >= 0
    elif "examples/pretrain.py" in command:
        assert (root / "runs/pretrained/loss_curve.png").is_file()
    elif "examples/cross_validate.py" in command:
        results = json.loads((root / "runs/cv-synthetic/cv_results.json").read_text())
        assert sorted(int(k) for k in results["folds"]) == [1, 2]
    elif "examples/compare_strategies.py" in command:
        assert (root / "runs/grid-synthetic/grid_results.md").is_file()


def test_data_rates_and_the_estimates_made_from_them_are_the_committed_measurement():
    """One measured rate per fact (``vit-l-cpu.json``), and every estimate in the README computed from it."""
    readme = " ".join((REPO / "README.md").read_text().split())  # lines joined as the page shows them
    rates = json.loads((REPO / "benchmarks/results/vit-l-cpu.json").read_text())["pipeline_clips_per_s_per_core"]
    decode, cache = rates["on_the_fly_720p"], rates["preprocessed_cache"]
    assert f"**{decode:.1f} clips/s** for on-the-fly" in readme and f"**{cache:.0f} clips/s** read from" in readme
    assert f"N / {decode:.1f} cores decoding on the fly, or N / {cache:.0f} reading the cache" in readme
    minutes = [f"{1440 / decode / 60:.1f}", f"{7438 / decode / 60:.0f}", f"{5531 / decode / 60:.0f}"]
    assert "(RAVDESS 1440, CREMA-D 7438, IEMOCAP 5531)" in readme
    assert "| {} core-min | {} core-min | {} core-min |".format(*minutes) in readme
    assert f"takes at most {1_092_009 / decode / 3600:.0f} core-hours" in readme
    assert f"about N / {cache:.0f} cores reading the cache" in readme
    for stale in ("108 clips/s", "160-190", "3.7 clips/s", "about 200 clips/s"):
        assert stale not in readme


@pytest.mark.parametrize("script", sorted(p.name for p in (REPO / "benchmarks").glob("*.py") if p.name != "common.py"))
def test_benchmark_help_keeps_the_script_s_text_as_written(script, monkeypatch, capsys):
    """``--help`` shows the docstring's lines as they are written, not folded into one paragraph."""
    path = REPO / "benchmarks" / script
    source = path.read_text()
    if "argparse" not in source:
        pytest.skip(f"{script} takes no arguments")
    monkeypatch.setattr(sys, "argv", [str(path), "--help"])
    monkeypatch.syspath_prepend(str(path.parent))
    with pytest.raises(SystemExit) as exit_:
        runpy.run_path(str(path), run_name="__main__")
    assert exit_.value.code == 0
    shown = capsys.readouterr().out.splitlines()
    docstring = ast.get_docstring(ast.parse(source)).splitlines()
    written = [line for line in docstring[1:] if line.strip()][:3]
    assert written and all(line in shown for line in written), (written, shown[:12])


def folder_bytes(path: Path) -> int:
    return sum(f.stat().st_size for f in path.rglob("*") if f.is_file() and not f.is_symlink())


def test_environment_size_is_what_the_readme_says():
    """ "about 7 GB with --dev, of which about 4 GB of CUDA libraries": measured on the environment the setup made."""
    import torch

    readme = " ".join((REPO / "README.md").read_text().split())
    assert "(about 7 GB with `--dev`, of which PyPI's torch build for Linux x86-64 brings about 4 GB of CUDA" in readme
    if torch.version.cuda is None:
        pytest.skip("a CPU-only torch build: no CUDA libraries to measure")
    site = Path(torch.__file__).parents[1]
    cuda = sum(folder_bytes(site / name) for name in ("nvidia", "triton") if (site / name).is_dir()) / 1e9
    total = folder_bytes(REPO / ".venv") / 1e9
    assert 3.0 <= cuda < 5.0 and 6.0 <= total < 8.0, (cuda, total)


@pytest.mark.parametrize(
    "argv",
    [
        ["mmder_hf.data.synthetic"],
        ["dataset_scripts/publish_ravdess.py"],
        ["dataset_scripts/publish_crema_d.py"],
        ["dataset_scripts/publish_iemocap.py"],
    ],
    ids=lambda argv: Path(argv[0]).name,
)
def test_every_option_of_the_data_commands_says_what_it_does(argv, monkeypatch, capsys):
    """``--help`` gives each option a word of help (and a RAVDESS-only default is not described for other corpora)."""
    import importlib

    monkeypatch.setattr(sys, "argv", [argv[0], "--help"])
    with pytest.raises(SystemExit) as exit_:
        if argv[0].endswith(".py"):
            runpy.run_path(str(REPO / argv[0]), run_name="__main__")
        else:
            importlib.import_module(argv[0]).main(["--help"])
    assert exit_.value.code == 0
    text = capsys.readouterr().out
    options = text[text.index("options:") :]
    entries = re.split(r"\n  (?=-)", options)[1:]
    assert len(entries) >= 5
    for entry in entries:
        name = entry.split()[0].rstrip(",")
        if name == "-h":
            continue
        described = re.sub(r"^\S+(?: [A-Z_]+)?", "", entry.strip()).strip()
        assert described, f"{argv[0]}: {name} has no help"
    if "publish_" in argv[0] and "ravdess" not in argv[0]:
        assert "synthetic" not in text
