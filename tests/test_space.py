"""The demo Space (examples/space/app.py), headless: served on 127.0.0.1 WITHOUT mmder_hf, driven by gradio_client."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest


pytest.importorskip("gradio")
pytest.importorskip("gradio_client")

from inference_helpers import BLOCK_MMDER_HF, LABELS, save_tiny_model  # noqa: E402


APP = Path(__file__).resolve().parents[1] / "examples" / "space" / "app.py"
START_TIMEOUT_S = 150


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@pytest.fixture(scope="module")
def space(tmp_path_factory):
    model_dir = save_tiny_model(tmp_path_factory.mktemp("space_model"))
    port = free_port()
    log = tmp_path_factory.mktemp("space_log") / "app.log"
    env = {
        **os.environ,
        "HF_HUB_OFFLINE": "1",
        "GRADIO_ANALYTICS_ENABLED": "False",
        "PYTHONPATH": "",
        "MMDER_MODEL": str(model_dir),
        "MMDER_LONG_VIDEO_S": "4",
    }
    # The Space must work from the model folder's own code: mmder_hf is blocked in the server process.
    script = (
        BLOCK_MMDER_HF
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
        yield url
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

    client = Client(space, verbose=False)
    short = make_clip("space_short", num_frames=20, fps=10.0, sample_rate=16000, channels=1)  # 2 s
    long = make_clip("space_long", num_frames=60, fps=10.0, sample_rate=16000, channels=1)  # 6 s > MMDER_LONG_VIDEO_S

    bars, curve, seen, details = client.predict(handle_file(str(short)), "auto", api_name="/predict")
    assert len(seen) == 4  # the tiny FSLF model reads 2 face frames and 2 audio pictures
    assert [item["caption"] for item in seen] == ["face frame 1", "face frame 2", "audio picture 1", "audio picture 2"]
    assert details["face_crop"] is False and details["face_boxes"] == []
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


def test_without_a_model_the_app_says_how_to_pass_one():
    env = {k: v for k, v in os.environ.items() if k != "MMDER_MODEL"}
    done = subprocess.run([sys.executable, str(APP)], capture_output=True, text=True, env=env, timeout=120)
    assert done.returncode == 2 and "pass --model <folder or Hub id>" in done.stderr and "MMDER_MODEL" in done.stderr
