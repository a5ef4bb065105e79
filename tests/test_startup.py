"""Start-up: ``import mmder_hf`` and the ``mmder`` command's help, version and usage errors import nothing heavy,
and the import still registers the model with transformers' auto classes. Each check runs in a fresh process (the
test process has long imported everything); timing belongs to ``benchmarks/bench_startup.py``."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest
from inference_helpers import save_tiny_model


HEAVY = ("torch", "datasets", "av", "matplotlib", "cv2", "torchcodec", "transformers.modeling_utils")

# Prints which HEAVY modules the process holds after running its setup lines.
REPORT = "import json, sys; print(json.dumps([m for m in {heavy!r} if m in sys.modules]))"


def _heavy_modules_after(code: str, heavy=HEAVY) -> list:
    script = f"{code}\n{REPORT.format(heavy=heavy)}"
    completed = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=120)
    assert completed.returncode == 0, completed.stderr
    return json.loads(completed.stdout.strip().splitlines()[-1])


def test_importing_the_package_imports_nothing_heavy():
    assert _heavy_modules_after("import mmder_hf") == []
    # every public name is still there (imported when used)
    assert _heavy_modules_after("import mmder_hf\nassert set(mmder_hf.__all__) <= set(dir(mmder_hf))") == []


# The console script's code path: the argv, ``mmder_hf.cli`` run as __main__, its exit status kept.
COMMAND = """
import contextlib, io, runpy, sys
sys.argv = {argv!r}
with contextlib.redirect_stdout(io.StringIO()), contextlib.redirect_stderr(io.StringIO()):
    try:
        runpy.run_module("mmder_hf.cli", run_name="__main__")
    except SystemExit as exit_:
        status = exit_.code
assert status == {status}, status
"""


@pytest.mark.parametrize(
    "argv, status",
    [
        (["mmder", "--help"], 0),
        (["mmder", "--version"], 0),
        (["mmder", "predict", "--help"], 0),
        (["mmder", "predict"], 2),  # no file, no --model: a usage error
        (["mmder", "timeline", "a.mp4", "b.mp4", "--model", "m"], 2),
        (["mmder", "predikt"], 2),
    ],
)
def test_help_version_and_usage_errors_import_no_model_code(argv, status):
    heavy = (*HEAVY, "transformers")
    assert _heavy_modules_after(COMMAND.format(argv=argv, status=status), heavy) == []


# After a bare ``import mmder_hf``, transformers' own entry points know the model, without trust_remote_code, and
# the pipeline registry knows the task (``pipeline(model=folder)`` itself asks for trust_remote_code because the
# saved config names its custom pipeline; that was so before too).
REGISTERED = """
import sys
import mmder_hf
from transformers import AutoConfig, AutoModelForVideoClassification, AutoProcessor
from transformers.pipelines import PIPELINE_REGISTRY

folder = sys.argv[1]
assert type(AutoConfig.for_model("multimae_der")).__name__ == "MultiMAEDERConfig"
model = AutoModelForVideoClassification.from_pretrained(folder)
processor = AutoProcessor.from_pretrained(folder)
task = PIPELINE_REGISTRY.check_task("audio-visual-emotion-recognition")[1]["impl"]
print(type(model).__module__, type(model).__name__)
print(type(processor).__module__, type(processor).__name__)
print(task.__module__, task.__name__)
"""


def test_importing_the_package_registers_the_auto_classes_and_the_pipeline(tmp_path):
    folder = save_tiny_model(tmp_path / "model")
    completed = subprocess.run(
        [sys.executable, "-c", REGISTERED, str(folder)], capture_output=True, text=True, timeout=300
    )
    assert completed.returncode == 0, completed.stderr[-2000:]
    assert completed.stdout.splitlines() == [
        "mmder_hf.models.multimae_der.modeling_multimae_der MultiMAEDERForVideoClassification",
        "mmder_hf.models.multimae_der.processing_multimae_der MultiMAEDERProcessor",
        "mmder_hf.models.multimae_der.pipeline MultiMAEDERPipeline",
    ]


@pytest.mark.parametrize(
    "package", ["mmder_hf", "mmder_hf.data", "mmder_hf.training", "mmder_hf.cards", "mmder_hf.models.multimae_der"]
)
def test_every_public_name_of_a_lazy_package_resolves(package):
    """The lazy packages list their names by hand: each one must come from where it says, with nothing left out."""
    import importlib

    module = importlib.import_module(package)
    for name in module.__all__:
        assert getattr(module, name) is not None, name
        assert name in dir(module), name
    if package == "mmder_hf.cards":  # the card names are cards.__all__
        from mmder_hf.cards import cards

        assert set(module.__all__) - set(module._METADATA_NAMES) == set(cards.__all__)
    with pytest.raises(AttributeError):
        module.no_such_name  # noqa: B018


def test_the_corpora_module_imports_no_data_loaders():
    assert _heavy_modules_after("import mmder_hf.data.corpora") == []
