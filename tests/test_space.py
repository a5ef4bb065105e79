"""The demo Space (examples/space/app.py), headless: served on 127.0.0.1 WITHOUT mmder_hf, driven by gradio_client."""

from __future__ import annotations

import ast
import contextlib
import io
import os
import re
import shutil
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest


pytest.importorskip("gradio")
pytest.importorskip("gradio_client")

from inference_helpers import BLOCK_MMDER_HF, LABELS, save_tiny_model, write_photo  # noqa: E402
from space_browser import (  # noqa: E402
    CAMERA_FPS,
    CAMERA_HEIGHT,
    CAMERA_WIDTH,
    launch_chromium,
    read_json_component,
    require_browser,
    wait_for,
    write_speech_wav,
    write_y4m,
)


APP = Path(__file__).resolve().parents[1] / "examples" / "space" / "app.py"
README = APP.with_name("README.md")
SYNTHETIC_WARNING = (
    "trained on the built-in synthetic corpus; it recognises synthetic clips only, not real faces and voices"
)
START_TIMEOUT_S = 150
#: The served app's limits (small, so that tests can cross them with small files).
MAX_FILE_SIZE = 300_000
MAX_DURATION_S = 10
QUEUE_SIZE = 2
MAX_LIVE_S = 8
#: A request for a file named ``slow_visitor*`` is held this long before the pipeline runs: a visitor being served
#: while others arrive (the tiny model answers in a fraction of a second). Only the test's server process has it.
SLOW_VISITOR_S = 8
SLOW_VISITOR = f"""
import os, time, transformers
_call = transformers.Pipeline.__call__
def _slow_visitor_call(self, inputs, *args, **kwargs):
    if isinstance(inputs, str) and os.path.basename(inputs).startswith("slow_visitor"):
        time.sleep({SLOW_VISITOR_S})
    return _call(self, inputs, *args, **kwargs)
transformers.Pipeline.__call__ = _slow_visitor_call
"""


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@pytest.fixture(scope="module")
def space(tmp_path_factory):
    # Trained on the synthetic corpus, as the demo model of the quick start: the app must say so.
    model_dir = save_tiny_model(tmp_path_factory.mktemp("space_model"), training_data="synthetic")
    port = free_port()
    log = tmp_path_factory.mktemp("space_log") / "app.log"
    env = {
        **os.environ,
        "HF_HUB_OFFLINE": "1",
        "GRADIO_ANALYTICS_ENABLED": "False",
        "PYTHONPATH": "",
        "MMDER_MODEL": str(model_dir),
        "MMDER_LONG_VIDEO_S": "4",
        "MMDER_MAX_FILE_SIZE": f"{MAX_FILE_SIZE // 1000}kb",
        "MMDER_MAX_DURATION_S": str(MAX_DURATION_S),
        "MMDER_QUEUE_SIZE": str(QUEUE_SIZE),
        "MMDER_CONCURRENCY": "1",
        "MMDER_MAX_LIVE_S": str(MAX_LIVE_S),
    }
    # The Space must work from the model folder's own code: mmder_hf is blocked in the server process.
    script = (
        BLOCK_MMDER_HF
        + SLOW_VISITOR
        + f"import runpy, sys; sys.argv = [{str(APP)!r}, '--host', '127.0.0.1', '--port', '{port}']; "
        + f"runpy.run_path({str(APP)!r}, run_name='__main__')"
    )
    with log.open("w") as handle:
        process = subprocess.Popen([sys.executable, "-c", script], env=env, stdout=handle, stderr=subprocess.STDOUT)
    url = f"http://127.0.0.1:{port}/"
    try:
        deadline = time.monotonic() + START_TIMEOUT_S
        while True:
            if process.poll() is not None:
                pytest.fail(f"the app exited with {process.returncode}:\n{log.read_text()[-3000:]}")
            try:
                urllib.request.urlopen(url, timeout=2)
                break
            except OSError:
                if time.monotonic() > deadline:
                    pytest.fail(f"the app did not start in {START_TIMEOUT_S} s:\n{log.read_text()[-3000:]}")
                time.sleep(1)
        yield url, model_dir
    finally:
        process.terminate()
        try:
            process.wait(timeout=20)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(timeout=20)


@pytest.mark.slow
def test_uploaded_clips_give_scores_and_a_timeline(space, make_clip, tmp_path):
    from gradio_client import Client, handle_file
    from gradio_client.exceptions import AppError

    url, model_dir = space
    client = Client(url, verbose=False)
    short = make_clip("space_short", num_frames=20, fps=10.0, sample_rate=16000, channels=1)  # 2 s
    long = make_clip("space_long", num_frames=60, fps=10.0, sample_rate=16000, channels=1)  # 6 s > MMDER_LONG_VIDEO_S

    bars, curve, seen, details = client.predict(handle_file(str(short)), "auto", api_name="/predict")
    assert len(seen) == 4  # the tiny FSLF model reads 2 face frames and 2 audio pictures
    assert [item["caption"] for item in seen] == ["face frame 1", "face frame 2", "audio picture 1", "audio picture 2"]
    assert details["face_crop"] is False and details["face_boxes"] == []
    assert details["warning"] == f"{model_dir}: {SYNTHETIC_WARNING}"
    assert sorted(p["label"] for p in details["predictions"]) == sorted(LABELS)
    assert abs(sum(p["score"] for p in details["predictions"]) - 1) < 1e-4
    assert {row[0] for row in bars["data"]} == set(LABELS) and bars["columns"] == ["emotion", "score"]
    assert details["timeline"] == [] and curve.get("visible") is False

    _, curve, _, details = client.predict(handle_file(str(long)), "auto", api_name="/predict")
    assert [(w["start"], w["end"]) for w in details["timeline"]] == [(0.0, 3.0), (1.0, 4.0), (2.0, 5.0), (3.0, 6.0)]
    assert curve["visible"] is True and len(curve["value"]["data"]) == 4 * len(LABELS)

    garbage = tmp_path / "garbage.mp4"
    garbage.write_bytes(b"not a video" * 50)
    with pytest.raises(AppError, match="cannot be opened as media"):
        client.predict(handle_file(str(garbage)), "never", api_name="/predict")
    photo = write_photo(tmp_path / "photo.png")
    with pytest.raises(AppError, match=r"photo\.png: a still image, not a video"):
        client.predict(handle_file(str(photo)), "never", api_name="/predict")


def app_config(url: str) -> dict:
    """The running app's gradio config: its components and its API endpoints."""
    import json

    with urllib.request.urlopen(url + "config", timeout=30) as response:
        return json.load(response)


@pytest.mark.slow
def test_a_synthetic_model_is_warned_about_on_the_page(space):
    url, model_dir = space
    markdown = [c["props"]["value"] for c in app_config(url)["components"] if c["type"] == "markdown"]
    assert [text for text in markdown if "synthetic" in text] == [f"> ⚠️ **{model_dir}: {SYNTHETIC_WARNING}.**"]


def readme_client_snippet() -> str:
    """The README's Python block that calls the app with gradio_client."""
    blocks = re.findall(r"```python\n(.*?)```", README.read_text(), flags=re.S)
    (snippet,) = [block for block in blocks if "client.predict(" in block]
    return snippet


def unpacked_names(snippet: str) -> list:
    """The names the snippet unpacks the result of ``client.predict(...)`` into."""
    (assignment,) = [
        node
        for node in ast.walk(ast.parse(snippet))
        if isinstance(node, ast.Assign) and "client.predict" in ast.unparse(node.value)
    ]
    target = assignment.targets[0]
    return [ast.unparse(t) for t in target.elts] if isinstance(target, ast.Tuple) else [ast.unparse(target)]


def test_the_readme_client_unpacks_as_many_values_as_predict_returns():
    """Without running the app (importing gradio takes seconds): the outputs wired to /predict and the values the
    handler returns, read from app.py, against the names the README's snippet unpacks."""
    tree = ast.parse(APP.read_text())
    (click,) = [
        node
        for node in ast.walk(tree)
        if isinstance(node, ast.Call)
        and ast.unparse(node.func).endswith(".click")
        and any(k.arg == "api_name" and ast.literal_eval(k.value) == "predict" for k in node.keywords)
    ]
    outputs = next(k.value for k in click.keywords if k.arg == "outputs")
    if isinstance(outputs, ast.Name):  # outputs = [...] assigned just before
        (outputs,) = [
            node.value
            for node in ast.walk(tree)
            if isinstance(node, ast.Assign) and ast.unparse(node.targets[0]) == outputs.id
        ]
    handler = ast.unparse(click.args[0])
    (function,) = [node for node in ast.walk(tree) if isinstance(node, ast.FunctionDef) and node.name == handler]
    returned = [node.value for node in ast.walk(function) if isinstance(node, ast.Return) and node.value is not None]
    assert {len(value.elts) for value in returned} == {len(outputs.elts)}
    assert len(unpacked_names(readme_client_snippet())) == len(outputs.elts)


@pytest.mark.slow
def test_the_readme_client_snippet_runs_against_the_app(space, make_clip, tmp_path, monkeypatch):
    """The README's snippet, run as written (only the app's address differs), from a folder holding its clip."""
    url, _ = space
    snippet = readme_client_snippet()
    assert 'Client("http://127.0.0.1:7860/")' in snippet
    (clip,) = re.findall(r'handle_file\("([^"]+)"\)', snippet)
    (tmp_path / clip).parent.mkdir(parents=True, exist_ok=True)
    shutil.copyfile(make_clip("space_short", num_frames=20, fps=10.0, sample_rate=16000, channels=1), tmp_path / clip)
    monkeypatch.chdir(tmp_path)
    namespace = {}
    printed = io.StringIO()
    with contextlib.redirect_stdout(printed):
        exec(compile(snippet.replace("http://127.0.0.1:7860/", url), str(README), "exec"), namespace)
    (predict,) = [d for d in app_config(url)["dependencies"] if d.get("api_name") == "predict"]
    assert len(predict["outputs"]) == len(unpacked_names(snippet))
    predictions = ast.literal_eval(printed.getvalue().strip().splitlines()[-1])  # after the client's "Loaded as API"
    assert sorted(p["label"] for p in predictions) == sorted(LABELS)
    assert namespace["details"]["predictions"] == predictions


def test_the_warning_is_for_synthetic_training_data_only():
    """app.training_data_warning, compiled alone (importing the app would import gradio)."""
    from types import SimpleNamespace

    tree = ast.parse(APP.read_text())
    (function,) = [n for n in tree.body if isinstance(n, ast.FunctionDef) and n.name == "training_data_warning"]
    namespace = {}
    exec(compile(ast.Module(body=[function], type_ignores=[]), str(APP), "exec"), namespace)
    warning = namespace["training_data_warning"]
    assert (
        warning("runs/demo/fslf", SimpleNamespace(training_data="synthetic")) == f"runs/demo/fslf: {SYNTHETIC_WARNING}"
    )
    for other in (None, "ravdess", "crema_d"):
        assert warning("runs/x", SimpleNamespace(training_data=other)) == ""
    assert warning("runs/x", SimpleNamespace()) == ""  # a config from before training_data


def test_without_a_model_the_app_says_how_to_pass_one():
    env = {k: v for k, v in os.environ.items() if k != "MMDER_MODEL"}
    done = subprocess.run([sys.executable, str(APP)], capture_output=True, text=True, env=env, timeout=120)
    assert done.returncode == 2 and "pass --model <folder or Hub id>" in done.stderr and "MMDER_MODEL" in done.stderr


def load_app():
    """examples/space/app.py as a module (it imports gradio and transformers only when it builds the demo)."""
    import importlib.util

    spec = importlib.util.spec_from_file_location("space_app", APP)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_limits_are_set_by_flag_or_variable_and_a_wrong_one_is_named(monkeypatch, capsys):
    app = load_app()
    args = app.parse_args(["--model", "m"])
    assert (args.max_file_size, args.max_duration, args.max_live, args.queue_size, args.concurrency) == (
        50_000_000,
        120.0,
        60.0,
        16,
        1,
    )
    args = app.parse_args(["--model", "m", "--max-file-size", "800kb", "--max-duration", "30", "--queue-size", "4"])
    assert (args.max_file_size, args.max_duration, args.queue_size) == (800_000, 30.0, 4)
    monkeypatch.setenv("MMDER_MAX_FILE_SIZE", "1.5MB")
    monkeypatch.setenv("MMDER_MAX_LIVE_S", "45")
    monkeypatch.setenv("MMDER_CONCURRENCY", "3")
    args = app.parse_args(["--model", "m"])
    assert (args.max_file_size, args.max_live, args.concurrency) == (1_500_000, 45.0, 3)
    assert app.parse_args(["--model", "m", "--max-live", "20"]).max_live == 20.0  # the flag wins
    for variable, flag, value in (
        ("MMDER_MAX_DURATION_S", "--max-duration", "two minutes"),
        ("MMDER_MAX_FILE_SIZE", "--max-file-size", "5zb"),
        ("MMDER_QUEUE_SIZE", "--queue-size", "0"),
        ("MMDER_MAX_LIVE_S", "--max-live", "-1"),
    ):
        monkeypatch.setenv(variable, value)
        with pytest.raises(SystemExit) as exit_info:
            app.parse_args(["--model", "m"])
        monkeypatch.delenv(variable)
        assert exit_info.value.code == 2
        (line,) = [line for line in capsys.readouterr().err.splitlines() if "error:" in line]
        assert f"argument {flag}: expected " in line and f"(set by {flag} or {variable}), got {value!r}" in line


def upload_raw(url: str, path: Path):
    """POST ``path`` to the app's upload route as a browser does (gradio_client refuses an over-size file itself,
    before sending it)."""
    import httpx

    with path.open("rb") as handle:
        return httpx.post(url + "gradio_api/upload", files={"files": (path.name, handle)}, timeout=60)


@pytest.mark.slow
def test_a_busy_space_refuses_over_limit_files_and_a_full_queue_at_once(space, make_clip, tmp_path):
    """While one visitor is served (a request held SLOW_VISITOR_S by the test's server), over-long and over-size
    files and requests beyond the queue's size are refused straight away, and the served visitor and the queued ones
    still get their results."""
    from gradio_client import Client, handle_file
    from gradio_client.exceptions import ValidationError
    from gradio_client.utils import QueueError, Status

    url, _ = space
    short = make_clip("space_short", num_frames=20, fps=10.0, sample_rate=16000, channels=1)  # 2 s
    too_long = make_clip("space_12s", num_frames=36, fps=3.0, sample_rate=16000, channels=1)  # 12 s > 10 s
    slow = tmp_path / "slow_visitor.mp4"
    shutil.copyfile(short, slow)
    too_big = tmp_path / "too_big.mp4"
    too_big.write_bytes(os.urandom(MAX_FILE_SIZE + 1000))
    assert short.stat().st_size < MAX_FILE_SIZE and too_long.stat().st_size < MAX_FILE_SIZE

    # The results' gallery files are not fetched: the same clip's pictures have the same cached path on the server,
    # rewritten by each request while another visitor's client may be reading them (gradio's file cache).
    served = Client(url, verbose=False, download_files=False).submit(
        handle_file(str(slow)), "never", api_name="/predict"
    )
    deadline = time.monotonic() + 60
    while served.status().code != Status.PROCESSING:
        assert time.monotonic() < deadline, served.status()
        time.sleep(0.1)
    visitor = Client(url, verbose=False, download_files=False)
    refusals = {}

    started = time.monotonic()
    with pytest.raises(ValidationError) as refused:
        visitor.predict(handle_file(str(too_long)), "never", api_name="/predict")
    refusals["over-long"] = time.monotonic() - started
    assert str(refused.value).endswith(
        "space_12s.mp4 lasts 12.0 s; this Space takes videos up to 10 s (MMDER_MAX_DURATION_S): upload a shorter clip"
    )
    assert not served.done()

    started = time.monotonic()
    response = upload_raw(url, too_big)
    refusals["over-size (HTTP upload)"] = time.monotonic() - started
    assert response.status_code == 413
    assert response.text == f"File size exceeded maximum allowed size of {MAX_FILE_SIZE} bytes."
    with pytest.raises(ValueError, match=f"too_big.mp4 exceeds the maximum file size of {MAX_FILE_SIZE} bytes"):
        visitor.predict(handle_file(str(too_big)), "never", api_name="/predict")  # the client reads the limit
    assert not served.done()

    queued = [visitor.submit(handle_file(str(short)), "never", api_name="/predict") for _ in range(QUEUE_SIZE)]
    for job in queued:
        while job.status().code not in (Status.IN_QUEUE, Status.PROCESSING, Status.FINISHED):
            time.sleep(0.05)
    started = time.monotonic()
    with pytest.raises(QueueError, match="Queue is full"):
        visitor.submit(handle_file(str(short)), "never", api_name="/predict").result(timeout=60)
    refusals["beyond the queue"] = time.monotonic() - started
    assert not served.done()
    print("refused after (s):", {k: round(v, 3) for k, v in refusals.items()})

    _, _, _, details = served.result(timeout=120)
    assert details["duration_s"] == 2.0
    assert sorted(p["label"] for p in details["predictions"]) == sorted(LABELS)
    assert abs(sum(p["score"] for p in details["predictions"]) - 1) < 1e-4
    for job in queued:  # the same clip under another name: the same scores
        assert job.result(timeout=120)[3]["predictions"] == details["predictions"]


@pytest.mark.slow
def test_the_live_tab_scores_a_real_browser_s_camera_and_microphone(space, tmp_path):
    """Chromium's fake camera and microphone play a y4m and a wav; the live tab receives them (frames of the y4m's
    size, seconds of audio, both growing), shows window after window at the stride with the model's labels, stops
    the session at MMDER_MAX_LIVE_S with its message, and starts a new one when the camera and microphone restart."""
    require_browser()
    from playwright.sync_api import sync_playwright

    url, _ = space
    video = write_y4m(tmp_path / "clip.y4m")
    audio = write_speech_wav(tmp_path / "speech.wav")
    seen = []

    def live_output():
        value = read_json_component(page, "live-output")
        if value and (not seen or value != seen[-1]):
            seen.append(value)
        return value

    with sync_playwright() as playwright:
        browser = launch_chromium(playwright, video, audio)
        try:
            page = browser.new_page(viewport={"width": 1280, "height": 1100})
            page.goto(url)
            page.get_by_role("tab", name="Live").click()
            camera = page.locator("#live-camera")
            camera.get_by_role("button", name="Click to Access Webcam").click()
            camera.get_by_role("button", name="capture photo").click()  # streaming: this starts the stream
            # The microphone once frames arrive: the camera alone reaches the server (and is shown) before it.
            wait_for(lambda: (live_output() or {}).get("frames_received"), 60, "the camera's first frames")
            clicked = len(seen)
            page.locator("#live-microphone").get_by_role("button", name="Record").click()
            final = wait_for(
                lambda: (lambda v: v if v and v["status"].startswith("Live session stopped") else None)(live_output()),
                MAX_LIVE_S + 60,
                "the session's limit",
            )
            first = seen[clicked:]
            page.wait_for_timeout(1500)  # the plots redraw
            page.screenshot(path=str(tmp_path / "live_tab.png"), full_page=True)
            plots = {
                name: page.locator(f"#{name} canvas, #{name} svg").count() for name in ("live-scores", "live-timeline")
            }
            # As the message says: stop both, start both again, and a new session runs.
            microphone = page.locator("#live-microphone")
            camera.get_by_role("button", name="capture photo").click()  # the camera's Stop
            microphone.get_by_role("button", name="Stop").click()
            with page.expect_response(lambda r: "/queue/join" in r.url, timeout=60_000):  # the camera's stream
                camera.get_by_role("button", name="capture photo").click()
            microphone.get_by_role("button", name="Record").click()
            again = wait_for(
                lambda: (lambda v: v if v and v["status"] == "live" and v["windows_made"] else None)(live_output()),
                60,
                "a window of the new session",
            )
        finally:
            browser.close()
    print(f"live tab: {len(seen)} distinct outputs; screenshot {tmp_path / 'live_tab.png'}")

    assert final["status"] == (
        f"Live session stopped at this Space's {MAX_LIVE_S} s limit (MMDER_MAX_LIVE_S): stop the camera and the "
        "microphone, then start them again for a new session"
    )
    assert MAX_LIVE_S <= final["session_s"] < MAX_LIVE_S + 2
    # What arrived came from the fake devices: frames of the y4m's size, audio seconds, both growing with time.
    assert final["frame_size"] == [CAMERA_HEIGHT, CAMERA_WIDTH]
    # The session began when the microphone started (the camera's frames before it were dropped). The two streams'
    # outputs may arrive out of order: order them by the session time they were made at.
    session = sorted((v for v in first if v["audio_s_received"] > 0), key=lambda v: v["session_s"])
    frames = [v["frames_received"] for v in session]
    sound = [v["audio_s_received"] for v in session]
    assert frames == sorted(frames) and sound == sorted(sound) and len(set(sound)) >= 4
    assert final["frames_received"] >= 3 * CAMERA_FPS and final["audio_s_received"] >= 3
    # Windows one after another at the stride, each a distribution over the model's labels.
    windows = final["windows"]
    assert final["windows_made"] == len(windows) >= 4
    assert [w["start"] for w in windows] == [windows[0]["start"] + k * 1.0 for k in range(len(windows))]
    assert all(w["end"] - w["start"] == 3.0 for w in windows) and windows[-1]["end"] <= final["session_s"] + 0.5
    for window in windows:
        assert sorted(window["scores"]) == sorted(LABELS)
        assert abs(sum(window["scores"].values()) - 1) < 1e-4
        assert window["label"] == max(window["scores"], key=window["scores"].get)
        assert window["score"] == window["scores"][window["label"]]
    counts = [v["windows_made"] for v in session]
    assert counts == sorted(counts) and len(set(counts)) >= 3  # the scores and timeline updated as windows came
    assert plots["live-scores"] > 0 and plots["live-timeline"] > 0
    assert again["session_s"] < MAX_LIVE_S and again["windows"][0]["start"] == 0.0


def test_without_chromium_the_browser_test_skips_here_and_fails_in_ci(monkeypatch, tmp_path):
    import space_browser

    monkeypatch.setattr(space_browser, "CHROMIUM", tmp_path / "chromium")
    monkeypatch.delenv(space_browser.REQUIRE_BROWSER, raising=False)
    with pytest.raises(pytest.skip.Exception, match="needs .*chromium .*bash scripts/setup.sh --dev installs them"):
        space_browser.require_browser()
    monkeypatch.setenv(space_browser.REQUIRE_BROWSER, "1")
    with pytest.raises(pytest.fail.Exception, match="MMDER_REQUIRE_BROWSER is set but the browser test needs"):
        space_browser.require_browser()
    assert "export MMDER_REQUIRE_BROWSER=1" in (APP.parents[2] / ".ci" / "run").read_text()


def test_the_space_readme_and_docstring_list_every_setting_the_app_reads(monkeypatch, capsys):
    """Each (variable, flag) row of the Space README and each line of app.py's docstring is a setting the app reads:
    a wrong value in that variable is named with that flag."""
    app = load_app()
    readme = set(re.findall(r"^\| `(MMDER_\w+)` \| `(--[\w-]+)` \|", README.read_text(), flags=re.M))
    docstring = {(v, f) for f, v in re.findall(r"^\s+(--[\w-]+) / (MMDER_\w+)", app.__doc__, flags=re.M)}
    assert readme == docstring and len(readme) == 10
    for variable, flag in sorted(readme - {("MMDER_MODEL", "--model")}):
        monkeypatch.setenv(variable, "nonsense")
        with pytest.raises(SystemExit):
            app.parse_args(["--model", "m"])
        monkeypatch.delenv(variable)
        assert f"argument {flag}: expected " in capsys.readouterr().err
