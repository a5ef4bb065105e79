"""Live emotion recognition: the window engine (models/multimae_der/live.py) fed frames and audio as a stream delivers
them, and ``mmder live`` in real processes on a file played in real time, an HTTP stream served by FFmpeg, a model
slower than the stream, generated devices stopped by Ctrl-C, and bad sources.

Expected values are computed independently: each window's inputs are the processor's for the same decoded frames and
samples given as arrays (the processor's decoded-data route); window spans come from window / stride / duration.
"""

from __future__ import annotations

import json
import math
import os
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import numpy as np
import pytest
import torch
from inference_helpers import LABELS, TINY, assert_inputs_identical, save_tiny_model, write_photo

from mmder_hf.cli import main
from mmder_hf.live_cli import WaitingWindow, WindowHandoff
from mmder_hf.models.multimae_der.live import LiveWindows
from mmder_hf.models.multimae_der.processing_multimae_der import MultiMAEDERProcessor


sys.path.insert(0, str(Path(__file__).resolve().parent))
FPS = 10.0
MMDER = [sys.executable, "-m", "mmder_hf.cli"]
ENV = {**os.environ, "HF_HUB_OFFLINE": "1", "OMP_NUM_THREADS": "1"}


def _processor(strategy: str = "FSLF", **kwargs) -> MultiMAEDERProcessor:
    settings = dict(fusion_strategy=strategy, num_frames=8, image_size=32, audio_sample_rate=16000)
    return MultiMAEDERProcessor(**{**settings, **kwargs})


def decode(path) -> tuple[np.ndarray, list, list]:
    """Every frame (RGB) and its time, every audio chunk ``(mono samples, rate, time)``, in stream order (PyAV)."""
    import av

    frames, times, chunks = [], [], []
    with av.open(str(path)) as container:
        for frame in container.decode(*container.streams):
            if isinstance(frame, av.VideoFrame):
                frames.append(frame.to_ndarray(format="rgb24"))
                times.append(frame.time)
            else:
                chunks.append((frame.to_ndarray().mean(axis=0, dtype=np.float32), frame.sample_rate, frame.time))
    return np.stack(frames), times, chunks


def push(live: LiveWindows, frames, times, chunks, frames_per_push: int = 3) -> list:
    """Feed the stream in presentation order (frames a few at a time, audio chunk by chunk), then finish it.
    Returns ``(start, end, inputs, stream time when it came out)`` per window (``inf``: at ``finish``)."""
    out, a = [], 0
    for i in range(0, len(frames), frames_per_push):
        now = times[i]
        while a < len(chunks) and chunks[a][2] <= now:
            live.add_audio(*chunks[a])
            a += 1
            out += [(*w, chunks[a - 1][2]) for w in live.ready()]
        live.add_frames(frames[i : i + frames_per_push], times[i : i + frames_per_push])
        out += [(*w, times[i + len(frames[i : i + frames_per_push]) - 1]) for w in live.ready()]
    for chunk in chunks[a:]:
        live.add_audio(*chunk)
        out += [(*w, chunk[2]) for w in live.ready()]
    live.finish()
    return out + [(*w, math.inf) for w in live.ready()]


def expected_inputs(processor, frames, times, chunks, start: float, end: float):
    """The processor's inputs for the window's frames (those shown in [start, end)) and samples, given as arrays."""
    shown = [i for i, t in enumerate(times) if start - 1e-9 <= t < end - 1e-9]
    kwargs = {}
    if processor.num_video_frames:
        kwargs["videos"] = frames[shown]
    if processor.num_audio_frames:
        rate, first = chunks[0][1], chunks[0][2]
        waveform = np.concatenate([chunk[0] for chunk in chunks])
        begin = round((start - first) * rate)
        kwargs.update(audio=waveform[begin : begin + round((end - start) * rate)], sampling_rate=rate)
    return processor(**kwargs, return_tensors="pt")


# ---------------------------------------------------------------------------------------------------------------
# The engine


@pytest.fixture(scope="module")
def clip(make_clip) -> Path:
    """6 s at 10 fps (60 index-coded frames), 44.1 kHz stereo AAC: the audio is resampled to 16 kHz per window."""
    return make_clip("live_6s", num_frames=60, fps=FPS)


@pytest.mark.parametrize("strategy", ["FSLF", "audio", "video"])
def test_windows_equal_the_processors_clips_of_the_same_frames_and_samples(clip, strategy):
    # Equal to the bit, resampling included: the window's samples are resampled as one piece at their own rate, as
    # the processor resamples a waveform it is given.
    frames, times, chunks = decode(clip)
    processor = _processor(strategy)
    live = LiveWindows(processor, window=2.5, stride=1.0)
    got = push(live, frames, times, chunks)
    assert [(start, end) for start, end, _, _ in got] == [(s, s + 2.5) for s in (0.0, 1.0, 2.0, 3.0)]
    for start, end, inputs, _ in got:
        assert_inputs_identical(inputs, expected_inputs(processor, frames, times, chunks, start, end))
    if strategy == "audio":
        assert live.max_frames_held == 0  # frames are not even kept


@pytest.fixture(scope="module")
def face_clip(tmp_path_factory) -> str:
    """2.5 s at 10 fps, 1280 x 720: the main face is hidden in frames 9-14 while a smaller one stays in view."""
    pytest.importorskip("cv2")
    from faces_media import face_frames, write_face_clip

    main_face = lambda t: None if 9 <= t <= 14 else (60 + 12 * t, 200, 1.3)  # noqa: E731
    other = lambda t: (1100 - 14 * t, 380, 0.6)  # noqa: E731
    folder = tmp_path_factory.mktemp("live_faces")
    return write_face_clip(folder / "two_people.mp4", face_frames(25, [main_face, other])[0])


def test_face_crops_are_tracked_within_each_window_as_in_its_clip(face_clip):
    path = face_clip
    frames, times, chunks = decode(path)
    processor = _processor("FSLF", image_size=64, face_crop=True)
    got = push(LiveWindows(processor, window=1.2, stride=0.5), frames, times, chunks)
    assert [(round(s, 6), round(e, 6)) for s, e, _, _ in got] == [(0.0, 1.2), (0.5, 1.7), (1.0, 2.2)]
    hidden = 0
    for start, end, inputs, _ in got:
        assert_inputs_identical(inputs, expected_inputs(processor, frames, times, chunks, start, end))
        hidden += int(torch.isnan(inputs["face_boxes"][0, :, 0]).sum())
    assert hidden > 0  # some windows sample the frames where the main face is hidden


def _frame_value(pixels: torch.Tensor, processor) -> list[int]:
    """The flat grey value of each sampled frame, undoing the normalisation."""
    mean, std = processor.image_mean[0], processor.image_std[0]
    return [round((float(frame[0].mean()) * std + mean) * 255) for frame in pixels[0]]


def test_each_window_comes_out_as_the_stream_passes_its_end_and_the_last_at_the_end():
    processor = _processor("video", num_frames=4, image_size=8)
    live = LiveWindows(processor, window=3.0, stride=1.0)
    seen = []
    for k in range(60):  # frames at 0.0 .. 5.9 s, grey level k
        live.add_frames(np.full((1, 8, 8, 3), k, np.uint8), [k / FPS])
        seen += [(start, end, k / FPS) for start, end, _ in live.ready()]
    assert seen == [(0.0, 3.0, 3.0), (1.0, 4.0, 4.0), (2.0, 5.0, 5.0)]  # at the first frame at or after the end
    assert live.ready() == []
    live.finish()  # the last frame is shown until 6.0 s: the window ending there is complete
    assert [(start, end) for start, end, _ in live.ready()] == [(3.0, 6.0)]
    assert live.ready() == [] and live.windows_made == 4


def test_the_last_frame_is_shown_at_the_times_after_it_when_the_stream_ends():
    """Frames once a second: the last window samples a time after the stream's last frame, which shows it (as a
    decoder shows the last frame until the end of the stream)."""
    processor = _processor("video", num_frames=4, image_size=8)
    live = LiveWindows(processor, window=3.0, stride=1.0)
    for k in range(6):  # frames at 0 .. 5 s, grey level 10 k
        live.add_frames(np.full((1, 8, 8, 3), 10 * k, np.uint8), [float(k)])
    assert [(start, end) for start, end, _ in live.ready()] == [(0.0, 3.0), (1.0, 4.0), (2.0, 5.0)]
    live.finish()  # shown until 6 s: window [3, 6) samples 3.6, 4.2, 4.8 and 5.4 s
    (last,) = live.ready()
    assert last[:2] == (3.0, 6.0) and _frame_value(last[2]["pixel_values"], processor) == [30, 40, 40, 50]


def test_frames_before_the_first_and_across_a_gap_are_the_ones_shown_then():
    processor = _processor("video", num_frames=4, image_size=8)
    live = LiveWindows(processor, window=2.0, stride=2.0)
    times = [0.55, 0.65, 0.75, 2.3, 2.4, 4.2, 4.3]  # nothing before 0.55 s, nor between 0.75 and 2.3 or 2.4 and 4.2
    for value, time_ in enumerate(times):
        live.add_frames(np.full((1, 8, 8, 3), 10 * (value + 1), np.uint8), [time_])
    live.finish()
    windows = live.ready()
    assert [(start, end) for start, end, _ in windows] == [(0.0, 2.0), (2.0, 4.0)]
    # sampling times (k + 1) / 5 of each window; shown: the latest frame at or before, the first one before it
    expected = []
    for start in (0.0, 2.0):
        for k in range(4):
            t = start + (k + 1) / 5 * 2.0
            before = [i for i, frame_time in enumerate(times) if frame_time <= t + 1e-6]
            expected.append(10 * ((before[-1] if before else 0) + 1))
    assert _frame_value(windows[0][2]["pixel_values"], processor) == expected[:4] == [10, 30, 30, 30]
    assert _frame_value(windows[1][2]["pixel_values"], processor) == expected[4:] == [50, 50, 50, 50]


def test_audio_and_video_both_gate_a_window_and_gaps_in_the_audio_are_silence():
    processor = _processor("FSLF", num_frames=4, image_size=16)
    live = LiveWindows(processor, window=1.0, stride=1.0)
    live.add_frames(np.zeros((25, 16, 16, 3), np.uint8), np.arange(25) / FPS)  # video up to 2.4 s
    assert live.ready() == []  # no audio yet
    tone = (0.5 * np.sin(np.arange(8000) / 16000 * 2 * np.pi * 440)).astype(np.float32)
    live.add_audio(tone, 16000, start=0.0)  # audio up to 0.5 s
    assert live.ready() == []
    live.add_audio((tone * 32767).astype(np.int16), 16000, start=1.0)  # int16; 0.5 s of silence before it
    (window,) = live.ready()
    assert window[:2] == (0.0, 1.0)
    waveform = np.concatenate([tone, np.zeros(8000, np.float32)])
    expected = processor(videos=np.zeros((10, 16, 16, 3), np.uint8), audio=waveform, sampling_rate=16000)
    assert torch.equal(window[2]["audio_values"], expected["audio_values"])


def test_memory_stays_flat_over_a_long_stream():
    processor = _processor("FSLF", num_frames=8, image_size=16)
    window, stride = 3.0, 1.0
    live = LiveWindows(processor, window=window, stride=stride)
    made, chunk = 0, 1600  # 0.1 s of 16 kHz audio per frame
    audio_held = []
    for k in range(300):  # 30 s at 10 fps
        live.add_frames(np.full((1, 16, 16, 3), k % 256, np.uint8), [k / FPS])
        live.add_audio(np.zeros(chunk, np.float32), 16000, start=k / FPS)
        made += len(live.ready())
        audio_held.append(live.audio_seconds_held)
    assert made == 27  # windows ending at 3 .. 29 s (the last frame pushed is at 29.9 s; no finish)
    # sampled frames of the windows open at once (4 frames per video half, a new window every second) + the last
    bound = processor.num_video_frames * (math.ceil(window / stride) + 1) + 1
    assert 0 < live.max_frames_held <= bound
    assert max(audio_held) <= window + stride + chunk / 16000 + 1e-9


def test_bad_pushes_are_refused_with_the_reason():
    live = LiveWindows(_processor(), window=2.0, stride=1.0)
    with pytest.raises(ValueError, match="uint8"):
        live.add_frames(np.zeros((1, 8, 8, 3), np.float32), [0.0])
    with pytest.raises(ValueError, match="2 frames but 1 times"):
        live.add_frames(np.zeros((2, 8, 8, 3), np.uint8), [0.0])
    with pytest.raises(ValueError, match="window and stride"):
        LiveWindows(_processor(), window=0.0)
    with pytest.raises(ValueError, match="aligned"):
        LiveWindows(_processor(frame_sampling="original"))
    live.finish()
    with pytest.raises(RuntimeError, match="finished"):
        live.add_frames(np.zeros((1, 8, 8, 3), np.uint8), [0.0])


def test_the_pipeline_classifies_live_windows_as_its_timeline(clip, model_dir):
    from transformers import AutoModelForVideoClassification

    from mmder_hf.models.multimae_der import MultiMAEDERPipeline

    pipe = MultiMAEDERPipeline(model=AutoModelForVideoClassification.from_pretrained(model_dir))
    frames, times, chunks = decode(clip)
    live = pipe.live(window=2.0, stride=1.0)
    windows = [(start, end, inputs) for start, end, inputs, _ in push(live, frames, times, chunks)]
    entries = pipe.classify_windows(windows)
    assert [(e["start"], e["end"]) for e in entries] == [(float(s), s + 2.0) for s in range(5)]
    # the same windows of the same frames and samples, one at a time through the pipeline's own route
    for entry, (start, end, _) in zip(entries, windows):
        data = expected_inputs(pipe.processor, frames, times, chunks, start, end)
        with torch.no_grad():
            logits = pipe.model(pixel_values=data["pixel_values"], audio_values=data["audio_values"]).logits[0]
        probs = logits.softmax(-1)
        assert entry["label"] == LABELS[int(probs.argmax())]
        assert list(entry["scores"]) == LABELS
        assert np.allclose(list(entry["scores"].values()), probs.tolist(), atol=1e-6)
    assert pipe.classify_windows([]) == []


# ---------------------------------------------------------------------------------------------------------------
# The hand-off between the stream and the model


def test_the_handoff_keeps_at_most_its_bound_and_drops_the_oldest():
    handoff = WindowHandoff(2)
    for k in range(5):
        handoff.put(WaitingWindow(float(k), k + 3.0, {}, 0.0))
    assert handoff.skipped == 3 and handoff.max_waiting == 2
    assert [w.start for w in handoff.take(timeout=0.0)] == [3.0, 4.0]  # the newest two
    assert handoff.take(timeout=0.0) == []
    handoff.close()
    assert handoff.take(timeout=0.0) is None


# ---------------------------------------------------------------------------------------------------------------
# mmder live, in real processes


@pytest.fixture(scope="module")
def model_dir(tmp_path_factory) -> Path:
    return save_tiny_model(tmp_path_factory.mktemp("live_model"))


@pytest.fixture(scope="module")
def video_model_dir(tmp_path_factory) -> Path:
    return save_tiny_model(tmp_path_factory.mktemp("live_video_model"), strategy="video")


@pytest.fixture(scope="module")
def short_clip(make_clip) -> Path:
    """4 s at 10 fps, 16 kHz mono AAC."""
    return make_clip("live_4s", num_frames=40, fps=FPS, sample_rate=16000, channels=1)


def _windows_of(lines) -> list:
    return [(entry["start"], entry["end"]) for entry in lines]


def _summary(stderr: str) -> str:
    lines = [line for line in stderr.splitlines() if line.startswith("mmder live: ")]
    assert len(lines) == 1, stderr
    return lines[0]


def _timeline(model_dir: Path, path: Path, window: float, stride: float) -> list:
    from transformers import AutoModelForVideoClassification

    from mmder_hf.models.multimae_der import MultiMAEDERPipeline

    model = AutoModelForVideoClassification.from_pretrained(model_dir)
    return MultiMAEDERPipeline(model=model)(str(path), window=window, stride=stride)


def _same_scores(entries: list, timeline: list) -> None:
    """The timeline decodes with torchcodec, seeking per window; live reads with PyAV in one pass. The frames are the
    same (FFmpeg's decoder and RGB conversion); the AAC samples of a range differ by ~1e-5 with the decoder's
    state (media.read_clip_audio), which moves the probabilities by ~1e-7: compared within 1e-5."""
    by_span = {(w["start"], w["end"]): w for w in timeline}
    for entry in entries:
        reference = by_span[(entry["start"], entry["end"])]
        assert entry["label"] == reference["label"]
        assert np.allclose(list(entry["scores"].values()), list(reference["scores"].values()), atol=1e-5)


@pytest.mark.slow
def test_live_file_in_real_time_prints_writes_and_scores_as_the_timeline(model_dir, short_clip, tmp_path):
    jsonl, table = tmp_path / "live.jsonl", tmp_path / "live.csv"
    command = [*MMDER, "live", str(short_clip), "--realtime", "--model", str(model_dir), "--window", "2"]
    command += ["--stride", "1", "--jsonl", str(jsonl), "--csv", str(table), "--plot", str(tmp_path / "live.png")]
    began = time.monotonic()
    process = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=ENV)
    watchdog = threading.Timer(120, process.kill)  # never hang the suite on a process that does not end
    watchdog.start()
    arrivals = [(line, time.monotonic()) for line in process.stdout]  # each window's line as it is printed
    stderr = process.stderr.read()
    watchdog.cancel()
    assert process.wait(timeout=120) == 0, stderr
    elapsed = time.monotonic() - began
    assert "Traceback" not in stderr
    # windows [s, s + 2) every second while they fit in the 4 s clip
    expected = [(float(s), s + 2.0) for s in range(int((4.0 - 2.0) / 1.0) + 1)]
    printed = [line.split() for line, _ in arrivals]
    assert [(float(p[0]), float(p[2])) for p in printed] == expected
    assert all(p[4] in LABELS and p[6] == "latency" and float(p[7]) >= 0 for p in printed)
    entries = [json.loads(line) for line in jsonl.read_text().splitlines()]
    assert _windows_of(entries) == expected
    rows = table.read_text().splitlines()
    assert rows[0] == ",".join(["start", "end", "label", "score", *LABELS, "latency"])
    assert [tuple(map(float, row.split(",")[:2])) for row in rows[1:]] == expected
    assert (tmp_path / "live.png").read_bytes()[:4] == b"\x89PNG"
    summary = _summary(stderr)
    assert summary.startswith("mmder live: 3 windows classified; latency median ") and "skipped" not in summary
    # Paced: the stream passes the first window's end 2 s after the first frame, the last one's (the end of the
    # stream, after the frame at 3.9 s) 1.9 s later; each line is printed its latency after that moment.
    passed = [arrival - float(line.split()[7]) for line, arrival in arrivals]
    assert passed[-1] - passed[0] >= 1.5
    assert elapsed >= 3.9
    _same_scores(entries, _timeline(model_dir, short_clip, 2.0, 1.0))


def _listening(port: int) -> bool:
    """Whether a TCP socket listens on ``port`` (read from /proc: connecting would take ffmpeg's only client)."""
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        try:
            lines = Path(table).read_text().splitlines()[1:]
        except OSError:
            continue
        if any(line.split()[1].endswith(f":{port:04X}") and line.split()[3] == "0A" for line in lines):
            return True
    return False


@pytest.mark.slow
def test_live_reads_an_http_stream_served_by_ffmpeg(model_dir, short_clip, free_port):
    if not Path("/proc/net/tcp").exists():
        pytest.skip("needs /proc/net/tcp to see when ffmpeg listens")
    url = f"http://127.0.0.1:{free_port}"
    server = subprocess.Popen(
        ["ffmpeg", "-hide_banner", "-loglevel", "error", "-re", "-i", str(short_clip), "-c", "copy", "-f", "mpegts"]
        + ["-listen", "1", url],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
    )
    try:
        deadline = time.monotonic() + 20
        while not _listening(free_port) and time.monotonic() < deadline:
            time.sleep(0.05)
        assert _listening(free_port), "ffmpeg did not start listening"
        command = [*MMDER, "live", url, "--model", str(model_dir), "--window", "2", "--stride", "0.5", "--json"]
        command += ["--duration", "3.5"]  # of the 4 s clip: the windows that end by 3.5 s
        done = subprocess.run(command, capture_output=True, text=True, env=ENV, timeout=120)
    finally:
        server.kill()
        server.wait()
    assert done.returncode == 0, done.stderr
    entries = [json.loads(line) for line in done.stdout.splitlines()]
    # the last one ends at 3.5 s, where the stream's video passes 3.5 s before its audio does (MPEG-TS interleaving):
    # each stream is read up to --duration
    assert _windows_of(entries) == [(0.5 * k, 0.5 * k + 2.0) for k in range(int((3.5 - 2.0) / 0.5) + 1)]
    assert all(entry["latency"] >= 0 for entry in entries)
    assert _summary(done.stderr).endswith("(--duration 3.5 s)")
    # MPEG-TS keeps the AAC priming samples before the video's first frame: the stream's time 0 is that frame's
    _same_scores(entries, _timeline(model_dir, short_clip, 2.0, 0.5))


@pytest.mark.slow
def test_a_model_slower_than_the_stream_skips_windows_and_says_how_many(make_clip, tmp_path):
    from mmder_hf import MultiMAEDERConfig, MultiMAEDERForVideoClassification

    # ~0.4 s per window on one CPU thread (224 px, 16 frames, 6 layers) while the stream completes 10 windows a second
    size = {**TINY, "image_size": 224, "num_frames": 16, "hidden_size": 384, "num_hidden_layers": 6}
    config = MultiMAEDERConfig(
        num_labels=len(LABELS), id2label=dict(enumerate(LABELS)), **{**size, "intermediate_size": 1536}
    )
    folder = tmp_path / "slow"
    MultiMAEDERForVideoClassification(config).save_pretrained(folder)
    MultiMAEDERProcessor.from_model_config(config, audio_sample_rate=16000).save_pretrained(folder)
    clip_path = make_clip("live_2s", num_frames=20, fps=FPS, sample_rate=16000, channels=1)
    jsonl = tmp_path / "slow.jsonl"
    command = [*MMDER, "live", str(clip_path), "--realtime", "--model", str(folder), "--window", "1"]
    command += ["--stride", "0.1", "--max-waiting", "2", "--jsonl", str(jsonl), "--device", "cpu"]
    done = subprocess.run(command, capture_output=True, text=True, env=ENV, timeout=180)
    assert done.returncode == 0, done.stderr
    expected = [(round(0.1 * k, 6), round(0.1 * k + 1.0, 6)) for k in range(round((2.0 - 1.0) / 0.1) + 1)]
    entries = [json.loads(line) for line in jsonl.read_text().splitlines()]
    got = _windows_of(entries)
    assert got == [span for span in expected if span in got]  # a subset, in order
    printed = [(float(line.split()[0]), float(line.split()[2])) for line in done.stdout.splitlines()]
    assert printed == [(round(s, 2), round(e, 2)) for s, e in got]  # every window not skipped is printed
    summary = _summary(done.stderr)
    skipped = len(expected) - len(got)
    assert skipped > 0
    assert f"{len(got)} windows classified; skipped {skipped} of {len(expected)} windows: the model is slower " in (
        summary
    )
    assert int(summary.split("(at most ")[1].split()[0]) <= 2  # the hand-off never held more than its bound
    assert "the model is slower than the stream: skipping windows" in done.stderr


@pytest.mark.slow
def test_ctrl_c_stops_a_camera_and_microphone_with_the_summary(model_dir):
    # FFmpeg's generated devices stand in for a camera and a microphone: two inputs, paced as devices deliver them
    command = [*MMDER, "live", "testsrc2=size=64x48:rate=10", "--format", "lavfi", "--realtime"]
    command += ["--audio", "sine=frequency=440:sample_rate=16000", "--audio-format", "lavfi"]
    command += ["--model", str(model_dir), "--window", "1", "--stride", "0.5"]
    process = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=ENV)
    watchdog = threading.Timer(120, process.kill)  # never hang the suite on a process that prints nothing
    watchdog.start()
    try:
        first = process.stdout.readline()  # a window was classified: the loop runs
        process.send_signal(signal.SIGINT)
        rest, stderr = process.communicate(timeout=60)
    finally:
        watchdog.cancel()
        process.kill()
    assert process.returncode == 0, stderr
    assert first.split()[:3] == ["0.00", "-", "1.00"]
    assert "Traceback" not in stderr
    assert _summary(stderr).endswith("(stopped by Ctrl-C)")


# ---------------------------------------------------------------------------------------------------------------
# Bad sources: one line naming the source, a non-zero exit status


def test_bad_sources_give_one_line_naming_them(model_dir, tmp_path, capsys, free_port, audio_only_path):
    photo = write_photo(tmp_path / "face.png")
    cases = [
        ([str(tmp_path / "missing.mp4")], f"{tmp_path / 'missing.mp4'}: file not found"),
        ([str(tmp_path)], f"{tmp_path}: a folder, not a video file"),
        ([str(photo)], f"{photo}: a still image, not a video"),
        ([f"http://127.0.0.1:{free_port}/live"], f"http://127.0.0.1:{free_port}/live: cannot be opened: connection"),
        (["/dev/video9", "--format", "v4l3"], "--format v4l3: FFmpeg (as PyAV ships it) has no such input format"),
        ([str(audio_only_path)], f"{audio_only_path}: no video stream; the model reads face frames and audio"),
    ]
    for argv, message in cases:
        assert main(["live", *argv, "--model", str(model_dir)]) == 1, argv
        err = capsys.readouterr().err
        assert err.splitlines() == [err.splitlines()[0]] and err.startswith(f"mmder: error: {message}"), (argv, err)
    # option mistakes are usage errors (exit status 2) before anything is opened
    assert main(["live", "clip.mp4", "--model", str(model_dir), "--audio-format", "alsa"]) == 2
    assert "argument --audio-format/--audio_format: needs --audio" in capsys.readouterr().err
    assert main(["live", "clip.mp4", "--model", str(model_dir), "--option", "novalue"]) == 2
    assert "argument --option: expected KEY=VALUE, got 'novalue'" in capsys.readouterr().err


def test_ffmpeg_input_options_reach_the_demuxer_and_a_file_read_at_full_speed_skips_nothing(
    tmp_path, capsys, video_model_dir
):
    from conftest import indexed_frames

    # Raw RGB frames say nothing about themselves: FFmpeg reads them only with the options given on the command line.
    frames = indexed_frames(30, 48, 64)
    raw = tmp_path / "camera.rgb"
    raw.write_bytes(frames.tobytes())
    model_dir = video_model_dir
    options = ["--option", "video_size=64x48", "--option", "pixel_format=rgb24", "--option", "framerate=10"]
    argv = ["live", str(raw), "--format", "rawvideo", *options, "--model", str(model_dir), "--max-waiting", "1"]
    assert main([*argv, "--window", "1", "--stride", "0.5", "--json"]) == 0
    captured = capsys.readouterr()
    entries = [json.loads(line) for line in captured.out.splitlines()]
    assert _windows_of(entries) == [(0.5 * k, 0.5 * k + 1.0) for k in range(5)]  # none skipped: no clock to keep
    assert "skipped" not in _summary(captured.err)

    from transformers import AutoModelForVideoClassification

    model = AutoModelForVideoClassification.from_pretrained(model_dir)
    processor = MultiMAEDERProcessor.from_pretrained(model_dir)
    for entry in entries:
        shown = frames[round(entry["start"] * FPS) : round(entry["end"] * FPS)]
        with torch.no_grad():
            probs = model(**processor(videos=shown, return_tensors="pt")).logits[0].softmax(-1)
        assert np.allclose(list(entry["scores"].values()), probs.tolist(), atol=1e-6)


def test_a_phone_clip_is_read_as_displayed(tmp_path, capsys, video_model_dir):
    from faces_media import write_face_clip

    # Stored turned by -90 degrees with a display matrix turning it back (a portrait phone recording); the picture
    # is not symmetric, so a frame read as stored (or turned the wrong way) gives other scores.
    frames = np.zeros((20, 48, 64, 3), np.uint8)
    frames[:, :12, :20] = 255
    frames[:, 30:, 44:, 1] = 200
    frames[:, :, :, 2] = np.arange(20, dtype=np.uint8)[:, None, None] * 10
    path = write_face_clip(tmp_path / "portrait.mp4", frames, rotation=90)
    argv = ["live", path, "--model", str(video_model_dir), "--window", "1", "--stride", "0.5", "--json"]
    assert main(argv) == 0
    entries = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    assert _windows_of(entries) == [(0.0, 1.0), (0.5, 1.5), (1.0, 2.0)]
    _same_scores(entries, _timeline(video_model_dir, Path(path), 1.0, 0.5))


def test_a_stream_whose_audio_stops_while_its_video_goes_on_is_stopped_naming_it(make_clip, model_dir, capsys):
    # Every window would wait for the audio (holding its frames) as long as the video goes on: stopped, not held.
    path = make_clip("live_mute_after_1s", num_frames=70, fps=5.0, height=24, width=32, audio_duration=1.0)
    assert main(["live", str(path), "--model", str(model_dir), "--window", "1", "--stride", "1", "--json"]) == 1
    captured = capsys.readouterr()
    assert _windows_of([json.loads(line) for line in captured.out.splitlines()]) == [(0.0, 1.0)]
    error = captured.err.splitlines()[-1]
    assert error.startswith(f"mmder: error: {path}: its audio stopped at 1.0 s while the stream went on to 11.")
    assert "Traceback" not in captured.err


def test_an_audio_model_listens_to_a_sound_file_as_its_timeline_does(audio_only_path, tmp_path, capsys):
    model_dir = save_tiny_model(tmp_path / "audio_model", strategy="audio")
    argv = ["live", str(audio_only_path), "--model", str(model_dir), "--window", "1", "--stride", "0.5", "--json"]
    assert main(argv) == 0
    entries = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    assert _windows_of(entries) == [(0.0, 1.0), (0.5, 1.5), (1.0, 2.0)]  # the 2 s WAV file (22.05 kHz)
    _same_scores(entries, _timeline(model_dir, audio_only_path, 1.0, 0.5))


def test_face_cropping_pipelines_give_live_entries_with_the_timeline_s_face_boxes(face_clip, tmp_path):
    from transformers import AutoModelForVideoClassification

    from mmder_hf.models.multimae_der import MultiMAEDERPipeline

    model_dir = save_tiny_model(tmp_path / "faces_model", face_crop=True)
    pipe = MultiMAEDERPipeline(model=AutoModelForVideoClassification.from_pretrained(model_dir))
    live = pipe.live(window=1.2, stride=0.5)
    entries = pipe.classify_windows([window[:3] for window in push(live, *decode(face_clip))])
    timeline = pipe(face_clip, window=1.2, stride=0.5)
    assert [(e["start"], e["end"]) for e in entries] == [(w["start"], w["end"]) for w in timeline][: len(entries)]
    assert len(entries) == 3
    for entry, reference in zip(entries, timeline):
        assert entry["face_boxes"] == reference["face_boxes"]  # one box (or None) per sampled frame, as the timeline's
        assert np.allclose(list(entry["scores"].values()), list(reference["scores"].values()), atol=1e-5)
    boxes = [box for entry in entries for box in entry["face_boxes"]]
    assert any(box is None for box in boxes) and any(box is not None for box in boxes)  # the face hides, then returns


# ---------------------------------------------------------------------------------------------------------------
# Inputs read through the ffmpeg program (devices PyAV's FFmpeg lacks, --through-ffmpeg)


def _ffmpeg_children() -> dict:
    """``{pid: state}`` of this process's ``ffmpeg`` children (from /proc; a zombie, not yet reaped, is ``Z``)."""
    children = {}
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            text = stat.read_text()
        except OSError:
            continue  # it ended while being read
        name, rest = text[text.index("(") + 1 : text.rindex(")")], text[text.rindex(")") + 2 :].split()
        if name == "ffmpeg" and int(rest[1]) == os.getpid():
            children[int(stat.parent.name)] = rest[0]
    return children


def _needs_ffmpeg_program(*formats: str) -> None:
    from mmder_hf.live_ffmpeg import ffmpeg_input_formats

    if not Path("/proc/self/stat").exists():
        pytest.skip("needs /proc to see the ffmpeg children")
    missing = [name for name in formats if name not in ffmpeg_input_formats()]
    if missing:
        pytest.skip(f"the ffmpeg program on PATH lacks {missing}")


@pytest.mark.slow
def test_through_ffmpeg_reads_generated_devices_as_pyav_does_and_reaps_its_children(model_dir, capsys):
    _needs_ffmpeg_program("lavfi")
    import av
    from transformers import AutoModelForVideoClassification

    from mmder_hf.models.multimae_der import MultiMAEDERPipeline

    # a tone sliding in pitch, computed from its formula (the same in any FFmpeg version; lavfi's sine is not)
    camera, microphone = "testsrc2=size=64x48:rate=10", "aevalsrc=0.4*sin(2*PI*(300+200*t)*t):s=16000"
    assert _ffmpeg_children() == {}
    seen: set = set()
    running = threading.Event()
    running.set()

    def watch() -> None:  # the ffmpeg children while the command runs
        while running.is_set():
            seen.update(_ffmpeg_children())
            time.sleep(0.05)

    watcher = threading.Thread(target=watch, daemon=True)
    watcher.start()
    argv = ["live", camera, "--format", "lavfi", "--audio", microphone, "--audio-format", "lavfi", "--through-ffmpeg"]
    argv += ["--duration", "3", "--realtime", "--model", str(model_dir), "--window", "1", "--stride", "0.5"]
    try:
        status = main([*argv, "--json", "--max-waiting", "50"])
    finally:
        running.clear()
        watcher.join()
    captured = capsys.readouterr()
    assert status == 0, captured.err
    assert len(seen) == 2  # one ffmpeg program per input (camera, microphone) ...
    assert _ffmpeg_children() == {} and not any(Path(f"/proc/{pid}").exists() for pid in seen)  # ... both reaped
    entries = [json.loads(line) for line in captured.out.splitlines()]
    # windows [s, s + 1) every 0.5 s while they fit in the stream's first 3 s
    assert _windows_of(entries) == [(0.5 * k, 0.5 * k + 1.0) for k in range(int((3.0 - 1.0) / 0.5) + 1)]
    assert _summary(captured.err).endswith("(--duration 3 s)")

    # The same sources read by PyAV directly (frames before 3 s, samples up to 3 s), windowed by the engine
    with av.open(camera, format="lavfi") as container:
        frames, times = [], []
        for frame in container.decode(video=0):
            if frame.time >= 3.0:
                break
            frames.append(frame.to_ndarray(format="rgb24"))
            times.append(frame.time)
    with av.open(microphone, format="lavfi") as container:
        chunks = []
        for frame in container.decode(audio=0):
            if frame.time >= 3.0:
                break
            assert frame.format.name in ("dbl", "dblp") and len(frame.layout.channels) == 1  # doubles, mono
            samples = frame.to_ndarray()[0].astype(np.float32)
            chunks.append((samples[: round((3.0 - frame.time) * frame.sample_rate)], frame.sample_rate, frame.time))
    pipe = MultiMAEDERPipeline(model=AutoModelForVideoClassification.from_pretrained(model_dir))
    windows = [window[:3] for window in push(pipe.live(window=1.0, stride=0.5), np.stack(frames), times, chunks)]
    reference = pipe.classify_windows(windows)
    assert [(w["start"], w["end"]) for w in reference] == _windows_of(entries)
    # Frames and samples are equal (RGB from the same generator; the samples cast from double to float, by the
    # ffmpeg program or here): the same scores, up to float rounding in the model (1e-6).
    for entry, expected in zip(entries, reference):
        assert entry["label"] == expected["label"]
        assert np.allclose(list(entry["scores"].values()), list(expected["scores"].values()), atol=1e-6)


def test_through_ffmpeg_keeps_the_input_s_timestamps_of_an_mpegts_file(model_dir, short_clip, tmp_path, capsys):
    # MPEG-TS shifts the timestamps (by 1.4 s) and its audio starts before the video's first frame (the AAC priming
    # samples): the stream's time 0 is that frame's, the audio's offset to it as PyAV reads the file itself (the
    # ffmpeg program rebases each stream its own way unless told to keep the input's timestamps)
    _needs_ffmpeg_program("mpegts")
    ts = tmp_path / "clip.ts"
    subprocess.run(["ffmpeg", "-v", "error", "-i", str(short_clip), "-c", "copy", str(ts)], check=True, timeout=60)
    argv = ["live", str(ts), "--through-ffmpeg", "--model", str(model_dir), "--window", "2", "--stride", "1", "--json"]
    assert main(argv) == 0
    entries = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    assert _windows_of(entries) == [(0.0, 2.0), (1.0, 3.0), (2.0, 4.0)]
    _same_scores(entries, _timeline(model_dir, short_clip, 2.0, 1.0))
    assert _ffmpeg_children() == {}


def test_a_device_only_the_ffmpeg_program_has_is_read_through_it_and_its_error_is_one_line(model_dir, capsys):
    import av

    _needs_ffmpeg_program("v4l2")
    if "v4l2" in av.formats_available:
        pytest.skip("PyAV's FFmpeg has v4l2 itself")
    began = time.monotonic()
    status = main(["live", "/dev/video99", "--format", "v4l2", "--model", str(model_dir), "--timeout", "60"])
    elapsed = time.monotonic() - began
    err = capsys.readouterr().err
    assert status == 1
    assert err.splitlines() == [
        "mmder: error: /dev/video99: cannot be opened: No such file or directory (--format v4l2, read by the ffmpeg "
        "program)"
    ]
    assert elapsed < 30  # ffmpeg's own failure, not the --timeout watchdog
    assert _ffmpeg_children() == {}  # stopped and reaped


def test_an_input_the_ffmpeg_program_gets_no_answer_from_is_given_up_after_timeout(model_dir, capsys):
    import socket

    _needs_ffmpeg_program("mpegts")
    # A server that accepts the connection and sends nothing (a camera or stream that hangs): ffmpeg waits for it
    # without end; the child is killed after --timeout. Closed after 20 s, so that a missing watchdog fails, not hangs.
    server = socket.create_server(("127.0.0.1", 0))
    port = server.getsockname()[1]
    accepted: list = []
    threading.Thread(target=lambda: accepted.append(server.accept()[0]), daemon=True).start()
    closer = threading.Timer(20, lambda: [connection.close() for connection in accepted])
    closer.start()
    try:
        began = time.monotonic()
        argv = ["live", f"tcp://127.0.0.1:{port}", "--format", "mpegts", "--through-ffmpeg", "--timeout", "1"]
        status = main([*argv, "--model", str(model_dir)])
        elapsed = time.monotonic() - began
    finally:
        closer.cancel()
        for connection in accepted:
            connection.close()
        server.close()
    err = capsys.readouterr().err
    assert status == 1 and accepted  # it did connect
    assert err.splitlines() == [
        f"mmder: error: tcp://127.0.0.1:{port}: cannot be opened: no answer in 1 s (--timeout) (--format mpegts, "
        "read by the ffmpeg program)"
    ]
    assert elapsed < 15
    assert _ffmpeg_children() == {}


def test_a_format_neither_ffmpeg_has_gets_a_did_you_mean_over_both(model_dir, capsys):
    _needs_ffmpeg_program("v4l2", "pulse")
    for argv, message, close in (
        (
            ["/dev/video0", "--format", "v4l3"],
            "--format v4l3: FFmpeg (as PyAV ships it) has no such input format, ",
            "v4l2",
        ),
        (
            ["testsrc2", "--format", "lavfi", "--audio", "default", "--audio-format", "pulze"],
            "--audio-format pulze: FFmpeg (as PyAV ",
            "pulse",
        ),
    ):
        assert main(["live", *argv, "--model", str(model_dir)]) == 1
        err = capsys.readouterr().err
        assert len(err.splitlines()) == 1 and err.startswith(f"mmder: error: {message}"), err
        assert err.rstrip().endswith(f"nor has the ffmpeg program (did you mean {close}?)"), err


def test_the_ffmpeg_program_s_format_listings_are_read_in_both_layouts():
    from mmder_hf.live_ffmpeg import _demuxers

    # FFmpeg 5 (two flag columns) and FFmpeg 6+ (a third: d, a device); only demuxers (D) count
    old = " D. = Demuxing supported\n .E = Muxing supported\n --\n DE alsa            ALSA audio output\n"
    old += "  E sdl,sdl2        SDL2 output device\n D  lavfi           Libavfilter virtual input device\n"
    new = " D.. = Demuxing supported\n ..d = Is a device\n ---\n --\n D d video4linux2,v4l2 Video4Linux2 device\n"
    new += (
        " DEd pulse           Pulse audio output\n DE  nut             NUT\n  Ed sdl,sdl2        SDL2 output device\n"
    )
    assert _demuxers(old) == {"alsa", "lavfi"}
    assert _demuxers(new) == {"video4linux2", "v4l2", "pulse", "nut"}
