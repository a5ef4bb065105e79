"""Inference Endpoints: a saved folder's handler.py served over HTTP as an endpoint serves it, and the folder's
requirements.txt, checked against what the shipped code imports."""

from __future__ import annotations

import ast
import base64
import functools
import http.server
import json
import os
import socket
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.request
from importlib import metadata
from pathlib import Path

import pytest
from inference_helpers import (
    _RUNTIME_ONLY_PRELUDE,
    NOT_RUNTIME,
    _canonical,
    _top_level_names,
    runtime_closure,
    save_tiny_model,
    write_photo,
)
from packaging.requirements import Requirement

import mmder_hf
from mmder_hf.models.multimae_der.modeling_multimae_der import ENDPOINT_REQUIREMENTS
from mmder_hf.models.multimae_der.pipeline import sliding_windows


ROOT = Path(__file__).resolve().parents[1]
SHIPPED = ROOT / "src" / "mmder_hf" / "models" / "multimae_der"
#: Distributions requirements.txt lists although the shipped code does not import them, and why:
#: transformers imports torchvision whenever it is installed, and the endpoint image's build would not load beside
#: the torch that requirements.txt upgrades.
COMPANIONS = {"torchvision"}


# ------------------------------------------------------------------------------------------------------------------
# requirements.txt


def imported_distributions(folder: Path) -> set[str]:
    """Canonical names of the distributions that the ``.py`` files of ``folder`` import outside ``try`` blocks
    (optional imports sit in ``try`` blocks), read with ``ast``; the standard library and the files themselves
    left out."""

    def walk(node, in_try):
        for child in ast.iter_child_nodes(node):
            if not in_try and isinstance(child, ast.Import):
                yield from (alias.name for alias in child.names)
            elif not in_try and isinstance(child, ast.ImportFrom) and child.level == 0:
                yield child.module
            yield from walk(child, in_try or isinstance(child, ast.Try))

    own = {path.stem for path in folder.glob("*.py")}
    tops = {name.split(".")[0] for path in folder.glob("*.py") for name in walk(ast.parse(path.read_text()), False)}
    tops -= own | set(sys.stdlib_module_names) | {"__future__"}
    providers = metadata.packages_distributions()
    missing = sorted(top for top in tops if top not in providers)
    assert not missing, f"no installed distribution provides {missing}"
    return {_canonical(dist) for top in tops for dist in providers[top]}


def requirement_lines(folder: Path) -> list[str]:
    lines = (folder / "requirements.txt").read_text().splitlines()
    return [line for line in lines if line.strip() and not line.startswith("#")]


@pytest.fixture(scope="module")
def model_dir(tmp_path_factory) -> Path:
    return save_tiny_model(tmp_path_factory.mktemp("endpoint") / "model")


def test_a_saved_folder_holds_the_handler_and_its_requirements(model_dir):
    assert (model_dir / "handler.py").read_bytes() == (SHIPPED / "handler.py").read_bytes()
    requirements = [Requirement(line) for line in requirement_lines(model_dir)]
    names = {_canonical(requirement.name) for requirement in requirements}
    # exactly what the saved code imports (derived from the folder's own files), plus the documented companions
    assert names == imported_distributions(model_dir) | COMPANIONS
    # with this project's own version ranges (pyproject.toml's dependencies), so that the two cannot drift apart
    declared = {
        _canonical(req.name): req.specifier
        for req in map(Requirement, metadata.requires("mmder-hf"))
        if req.marker is None
    }
    assert {_canonical(req.name): req.specifier for req in requirements} == {name: declared[name] for name in names}
    assert requirement_lines(model_dir) == list(ENDPOINT_REQUIREMENTS)


def test_the_import_scan_sees_imports_in_functions_and_skips_optional_ones(tmp_path):
    (tmp_path / "modeling_x.py").write_text(
        "import os\nfrom . import fusion\nimport fusion\n\n\ndef f():\n"
        "    from torchcodec.decoders import VideoDecoder\n"
        "    try:\n        import cv2\n    except ImportError:\n        pass\n"
    )
    (tmp_path / "fusion.py").write_text("import numpy as np\n")
    assert imported_distributions(tmp_path) == {"torchcodec", "numpy"}


def test_the_handler_also_imports_as_part_of_the_package_and_reads_requests_as_documented():
    """Tools that import every module of the package import handler.py too (it is top-level on an endpoint)."""
    from mmder_hf.models.multimae_der.handler import read_inputs, read_parameters

    assert read_parameters(None) == read_parameters({}) == {}
    assert read_parameters({"timeline": True}) == {"window": 3.0, "stride": 1.5}
    assert read_parameters({"timeline": True, "window": 2}) == {"window": 2.0, "stride": 1.0}  # stride: window / 2
    assert read_parameters({"timeline": True, "window": 2, "stride": 0.5}) == {"window": 2.0, "stride": 0.5}
    assert read_parameters({"top_k": 2, "timeline": False}) == {"top_k": 2}
    data = bytes(range(256))
    encoded = base64.b64encode(data).decode()
    assert read_inputs(encoded) == read_inputs(f"data:video/mp4;base64,{encoded}") == data
    assert read_inputs(encoded[:50] + "\n" + encoded[50:]) == data  # wrapped base64 (``base64`` without -w0)
    assert read_inputs(" https://example.org/a.mp4 ") == "https://example.org/a.mp4"
    with pytest.raises(ValueError, match=r'^"top_k" does not apply to a timeline'):
        read_parameters({"timeline": True, "top_k": 2})
    with pytest.raises(ValueError, match=r'^"window" must be seconds > 0, got 0$'):
        read_parameters({"timeline": True, "window": 0})
    with pytest.raises(ValueError, match=r'^"timeline" must be true or false, got \'yes\'$'):
        read_parameters({"timeline": "yes"})
    with pytest.raises(ValueError, match=r'^"parameters" must be a JSON object'):
        read_parameters([3])
    # a file name whose letters alone would decode as base64: refused as what it is, not decoded into junk bytes
    with pytest.raises(ValueError, match=r"^\"inputs\" is neither base64 nor an http\(s\) URL \('clip_1.mp4'\)"):
        read_inputs("clip_1.mp4")


# ------------------------------------------------------------------------------------------------------------------
# The endpoint, served from the saved folder in a process where only requirements.txt's packages (and the web server's)
# can be imported: not mmder_hf.
#
# hf-endpoints-emulator 0.1.1 (its last release) no longer starts: it passes ``on_startup`` to ``Starlette``, which
# Starlette 1.0 removed. So the server is ``mmder_hf/endpoint_server.py``, which does what the Inference Toolkit's
# ``webservice_starlette`` does with a custom handler, run BY PATH (it imports only the standard library, Starlette and
# uvicorn), as the README's local try runs it.
SERVER = ("starlette", "uvicorn")
SERVER_FILE = Path(mmder_hf.__file__).parent / "endpoint_server.py"
SERVE = """
import runpy
sys.argv = [SERVER_FILE, FOLDER, "--port", PORT]
runpy.run_path(SERVER_FILE, run_name="__main__")
"""


def endpoint_prelude(requirements: list[str]) -> str:
    """The runtime-only prelude of ``run_without_mmder_hf``, allowing what ``requirements`` name and the web server
    needs, with everything they require: what an endpoint's image holds after installing requirements.txt."""
    allowed = runtime_closure((*(Requirement(line).name for line in requirements), *SERVER))
    allowed_names, hidden_names, hidden_dists = set(), set(), set()
    for dist in metadata.distributions():
        name = _canonical(dist.metadata["Name"])
        (allowed_names if name in allowed else hidden_names).update(_top_level_names(dist))
        if name not in allowed:
            hidden_dists.add(name)
    not_runtime = {module: dist for module, dist in NOT_RUNTIME.items() if _canonical(dist) not in allowed}
    hidden = (hidden_names - allowed_names - set(sys.stdlib_module_names)) | set(not_runtime)
    return _RUNTIME_ONLY_PRELUDE.format(hidden=hidden, hidden_dists=hidden_dists, not_runtime=not_runtime)


def free_local_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(scope="module")
def endpoint(model_dir, tmp_path_factory):
    """``http://127.0.0.1:<port>`` of the saved folder's ``handler.py`` served as an endpoint serves it (a real
    process that cannot import ``mmder_hf``)."""
    work = tmp_path_factory.mktemp("endpoint_server")
    port = free_local_port()
    settings = f"SERVER_FILE, FOLDER, PORT = {str(SERVER_FILE)!r}, {str(model_dir)!r}, {str(port)!r}\n"
    code = endpoint_prelude(requirement_lines(model_dir)) + settings + SERVE
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "PYTHONPATH": "", "HF_MODULES_CACHE": str(work / "modules")}
    log = (work / "server.log").open("w")
    server = subprocess.Popen(
        [sys.executable, "-c", code],
        stdout=log,
        stderr=subprocess.STDOUT,
        env=env,
        cwd=work,
    )
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 240
        while True:
            assert server.poll() is None, (work / "server.log").read_text()[-3000:]
            assert time.monotonic() < deadline, (work / "server.log").read_text()[-3000:]
            try:
                with urllib.request.urlopen(url + "/health", timeout=5) as response:
                    if response.read() == b"Ok":
                        break
            except OSError:
                time.sleep(0.2)
        yield url
    finally:
        server.terminate()
        try:
            server.wait(timeout=15)
        except subprocess.TimeoutExpired:
            server.kill()
            server.wait()
        log.close()


@pytest.fixture(scope="module")
def file_server(media_dir):
    """``http://127.0.0.1:<port>/`` serving the session's media folder (the URL inputs)."""
    handler = functools.partial(http.server.SimpleHTTPRequestHandler, directory=str(media_dir))
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}"
    server.shutdown()
    server.server_close()


def post(url: str, body: dict) -> tuple[int, object]:
    """POST ``body`` as JSON, as a client of an endpoint does: ``(HTTP status, decoded JSON answer)``."""
    request = urllib.request.Request(
        url, data=json.dumps(body).encode(), headers={"Content-Type": "application/json"}, method="POST"
    )
    try:
        with urllib.request.urlopen(request, timeout=120) as response:
            return response.status, json.loads(response.read())
    except urllib.error.HTTPError as error:
        return error.code, json.loads(error.read())


@pytest.fixture(scope="module")
def local_pipe(model_dir):
    """The same folder's pipeline in this process: what the endpoint must answer."""
    from transformers import AutoModelForVideoClassification

    from mmder_hf import MultiMAEDERPipeline

    return MultiMAEDERPipeline(model=AutoModelForVideoClassification.from_pretrained(model_dir), device="cpu")


def assert_same_predictions(served: list, local: list) -> None:
    assert [p["label"] for p in served] == [p["label"] for p in local]
    assert [p["score"] for p in served] == pytest.approx([p["score"] for p in local], abs=1e-6)


def test_the_endpoint_answers_requests_like_the_pipeline_and_bad_ones_with_400(
    endpoint, file_server, local_pipe, make_clip, media_dir, tmp_path, subtests
):
    """One server for every request (starting it costs seconds): each check is a subtest."""
    clip = make_clip("endpoint_clip", num_frames=30, fps=10.0, sample_rate=16000, channels=1)  # 3.0 s
    data = clip.read_bytes()
    encoded = base64.b64encode(data).decode()

    with subtests.test("a clip as base64, top_k"):
        status, served = post(endpoint, {"inputs": encoded, "parameters": {"top_k": 3}})
        assert status == 200, served
        assert len(served) == 3
        assert_same_predictions(served, local_pipe(data, top_k=3))
        scores = [p["score"] for p in served]
        assert scores == sorted(scores, reverse=True) and sum(scores) <= 1 + 1e-6

    with subtests.test("no parameters: the pipeline's defaults"):
        status, served = post(endpoint, {"inputs": encoded})
        assert status == 200, served
        assert_same_predictions(served, local_pipe(data))

    with subtests.test("a timeline"):
        status, served = post(
            endpoint, {"inputs": encoded, "parameters": {"timeline": True, "window": 1.0, "stride": 0.75}}
        )
        assert status == 200, served
        expected = sliding_windows(0.0, 30 / 10.0, 1.0, 0.75)
        assert expected == [(0.0, 1.0), (0.75, 1.75), (1.5, 2.5), (2.0, 3.0)]  # the tail window ends at the clip's end
        assert [(w["start"], w["end"]) for w in served] == expected
        local = local_pipe(data, window=1.0, stride=0.75)
        assert [w["label"] for w in served] == [w["label"] for w in local]
        for window, mine in zip(served, local):
            assert window["scores"] == pytest.approx(mine["scores"], abs=1e-6)
            assert window["score"] == max(window["scores"].values())

    with subtests.test("a timeline with the default window and stride"):
        status, served = post(endpoint, {"inputs": encoded, "parameters": {"timeline": True}})
        assert status == 200, served
        assert [(w["start"], w["end"]) for w in served] == sliding_windows(0.0, 3.0, 3.0, 1.5) == [(0.0, 3.0)]

    with subtests.test("a URL"):
        status, served = post(endpoint, {"inputs": f"{file_server}/{clip.name}", "parameters": {"top_k": 2}})
        assert status == 200, served
        assert_same_predictions(served, local_pipe(str(clip), top_k=2))

    broken = data[: len(data) // 3]
    photo = write_photo(tmp_path / "photo.png").read_bytes()
    closed = free_local_port()
    bad = {
        "a corrupt file": (
            {"inputs": base64.b64encode(broken).decode()},
            f'"inputs" ({len(broken)} bytes decoded): cannot be opened as media (not a media file, unsupported '
            "format, or truncated/corrupt): ",
        ),
        "a still image": (
            {"inputs": base64.b64encode(photo).decode()},
            f'"inputs" ({len(photo)} bytes decoded): a still image, not a video (MultiMAE-DER reads a video with '
            "its audio track)",
        ),
        "a path instead of the file": (
            {"inputs": "clip.mp4"},
            "\"inputs\" is neither base64 nor an http(s) URL ('clip.mp4'): send the video file's bytes "
            "base64-encoded, or a URL the endpoint can download",
        ),
        "a URL that answers 404": (
            {"inputs": f"{file_server}/missing.mp4"},
            f"{file_server}/missing.mp4: could not be downloaded: HTTP Error 404: File not found",
        ),
        "an unreachable URL": (
            {"inputs": f"http://127.0.0.1:{closed}/clip.mp4"},
            f"http://127.0.0.1:{closed}/clip.mp4: could not be downloaded: <urlopen error [Errno 111] ",
        ),
        "no inputs": ({"parameters": {"top_k": 3}}, 'the body needs an "inputs" key, received: {"parameters"'),
        "instances but no inputs (the handler's own check)": (
            {"instances": [encoded]},
            'the request needs "inputs": the video file as base64, or an http(s) URL',
        ),
        "a misspelt parameter": (
            {"inputs": encoded, "parameters": {"topk": 3}},
            'unknown parameter "topk" (did you mean "top_k"?); expected some of top_k, timeline, window, stride',
        ),
        "a parameter of the wrong type": (
            {"inputs": encoded, "parameters": {"top_k": "3"}},
            "\"top_k\" must be a whole number >= 1, got '3'",
        ),
        "a window without timeline": (
            {"inputs": encoded, "parameters": {"window": 2.0}},
            '"window" and "stride" set a timeline: add "timeline": true',
        ),
        "inputs that are not a string": (
            {"inputs": [1, 2]},
            '"inputs" must be a string (the video file as base64, or an http(s) URL), got list',
        ),
    }
    for case, (body, message) in bad.items():
        with subtests.test(case):
            status, answer = post(endpoint, body)
            assert status == 400, (status, answer)
            assert set(answer) == {"error"} and "\n" not in answer["error"], answer
            assert answer["error"].startswith(message), answer["error"]

    with subtests.test("still serving after the bad requests"):
        status, served = post(endpoint, {"inputs": encoded, "parameters": {"top_k": 1}})
        assert status == 200 and [p["label"] for p in served] == [local_pipe(data, top_k=1)[0]["label"]], served
