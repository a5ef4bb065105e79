"""A built wheel carries everything the library reads at run time: card templates, fold tables, the metric."""

import os
import shutil
import subprocess
import sys
import zipfile

import pytest


ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


@pytest.mark.slow
def test_wheel_ships_card_templates_folds_and_metric_and_renders_a_card(tmp_path):
    source = tmp_path / "source"
    source.mkdir()
    for name in ("pyproject.toml", "README.md", "LICENSE"):
        shutil.copy(os.path.join(ROOT, name), source / name)
    for folder in ("src",):
        shutil.copytree(os.path.join(ROOT, folder), source / folder, ignore=shutil.ignore_patterns("__pycache__"))
    wheels = tmp_path / "wheels"
    subprocess.run(
        [
            sys.executable,
            "-m",
            "pip",
            "wheel",
            str(source),
            "--no-deps",
            "--no-build-isolation",
            "-q",
            "-w",
            str(wheels),
        ],
        check=True,
        capture_output=True,
        cwd=source,
    )
    (wheel,) = wheels.glob("mmder_hf-*.whl")
    names = set(zipfile.ZipFile(wheel).namelist())
    for template in ("model_card", "pretraining", "comparison", "dataset_card"):
        assert f"mmder_hf/cards/templates/{template}.md" in names
    for corpus in ("ravdess", "crema_d", "iemocap"):
        assert f"mmder_hf/data/folds/{corpus}_folds.json" in names
    assert "mmder_hf/training/war_uar/war_uar.py" in names
    assert any(name.endswith("licenses/LICENSE") for name in names)

    target = tmp_path / "site"
    subprocess.run(
        [sys.executable, "-m", "pip", "install", "--no-deps", "-q", "--target", str(target), str(wheel)],
        check=True,
        capture_output=True,
    )
    script = (
        "import importlib.resources, mmder_hf, mmder_hf.cards as hub\n"
        "assert mmder_hf.__file__.startswith(sys.argv[1]), mmder_hf.__file__\n"
        "templates = importlib.resources.files('mmder_hf.cards') / 'templates'\n"
        "assert str(templates).startswith(sys.argv[1]) and (templates / 'dataset_card.md').is_file()\n"
        "card = hub.render_model_card('ravdess', 'org/m', {1: {'test_war': 0.5, 'test_uar': 0.25}})\n"
        "print('WAR' in str(card))\n"
    )
    env = {**os.environ, "PYTHONPATH": str(target), "HF_HUB_OFFLINE": "1"}
    done = subprocess.run(
        [sys.executable, "-c", "import sys\n" + script, str(target)],
        capture_output=True,
        text=True,
        env=env,
        cwd=tmp_path,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    assert done.stdout.split()[-1] == "True"
