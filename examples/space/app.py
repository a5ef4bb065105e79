"""MultiMAE-DER demo Space: upload or record a video, see its emotions (and, for long videos, their timeline) and
what the model saw (the face frames, cropped around the tracked face when the model's processor crops faces, and the
audio pictures); or go live: camera and microphone streamed from the browser, scored window by window on a moving
timeline.

The app needs only transformers + torch + torchcodec + gradio: the model folder/repo ships its own code (model,
processor, pipeline and live windows), loaded with ``trust_remote_code=True``.

Configuration (command line or environment variables):
    --model / MMDER_MODEL          model folder or Hub id (required: no checkpoint is published yet)
    --window / MMDER_WINDOW        timeline window in seconds (default 3), uploads and live
    --stride / MMDER_STRIDE        seconds between windows (default 1), uploads and live
    --long-video / MMDER_LONG_VIDEO_S   videos longer than this get a timeline automatically (default 8)
    --host, --port                 where to serve (gradio's GRADIO_SERVER_NAME / GRADIO_SERVER_PORT also work)
A public Space must survive its visitors; each limit answers with one message naming it:
    --max-file-size / MMDER_MAX_FILE_SIZE   largest upload, e.g. 50MB, 800kb or bytes (default 50MB); refused while
                                   uploading, before the file reaches the queue
    --max-duration / MMDER_MAX_DURATION_S   longest video in seconds, read from the container header before anything
                                   is decoded (default 120); refused before the request joins the queue
    --max-live / MMDER_MAX_LIVE_S  longest live session in seconds (default 60)
    --live-fps / MMDER_LIVE_FPS    camera frames per second sent by the browser in the live tab (default 10)
    --queue-size / MMDER_QUEUE_SIZE     requests that may wait; more are refused at once with "Queue is full"
                                   (default 16)
    --concurrency / MMDER_CONCURRENCY   uploads analysed at once, and live sessions at once (default 1)
"""

from __future__ import annotations

import argparse
import math
import os
import re
import threading
import time
from typing import TYPE_CHECKING, Any, Callable, Optional

import numpy as np


if TYPE_CHECKING:
    import gradio as gr
    import pandas as pd


#: Windows shown on the live timeline (the most recent ones).
LIVE_TIMELINE_WINDOWS = 30
#: Windows listed in the live tab's raw output (the most recent ones; ``windows_made`` counts them all).
LIVE_RAW_WINDOWS = 10
#: Seconds of microphone audio per chunk sent by the browser in the live tab.
MICROPHONE_CHUNK_S = 0.5
FILE_SIZE_UNITS = {"": 1, "b": 1, "kb": 1000, "mb": 1000**2, "gb": 1000**3}


def setting(kind: Callable[[str], Any], flag: str, variable: str, expected: str) -> Callable[[str], Any]:
    """An argparse type that names both the flag and its environment variable when a value is wrong (a Space sets
    them in its settings, where argparse's own message would only name the flag)."""

    def convert(text: str) -> Any:
        try:
            value = kind(text)
        except ValueError:
            value = None
        if value is None:
            raise argparse.ArgumentTypeError(f"expected {expected} (set by {flag} or {variable}), got {text!r}")
        return value

    return convert


def positive_seconds(text: str) -> Optional[float]:
    value = float(text)
    return value if value > 0 and math.isfinite(value) else None


def positive_int(text: str) -> Optional[int]:
    value = int(text)
    return value if value > 0 else None


def file_size(text: str) -> Optional[int]:
    """Bytes from ``50MB``, ``800kb``, ``1.5gb`` or a plain number of bytes (units are powers of 1000, as gradio's)."""
    match = re.fullmatch(r"\s*(\d+(?:\.\d+)?)\s*([kmg]?b)?\s*", text.lower())
    if not match or float(match.group(1)) <= 0:
        return None
    return int(float(match.group(1)) * FILE_SIZE_UNITS[match.group(2) or ""])


def parse_args(argv=None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description="MultiMAE-DER emotion recognition demo")
    env = os.environ.get

    def add(flag: str, variable: str, default: str, kind, expected: str, help: str) -> None:
        parser.add_argument(
            flag, default=env(variable, default), type=setting(kind, flag, variable, expected), help=help
        )

    parser.add_argument(
        "--model",
        default=env("MMDER_MODEL"),
        help="model folder or Hub id saved by mmder-hf (or set MMDER_MODEL)",
    )
    seconds = "seconds > 0"
    add("--window", "MMDER_WINDOW", "3", positive_seconds, seconds, "timeline window in seconds")
    add("--stride", "MMDER_STRIDE", "1", positive_seconds, seconds, "seconds between timeline windows")
    add("--long-video", "MMDER_LONG_VIDEO_S", "8", positive_seconds, seconds, "longer videos get a timeline")
    add(
        "--max-file-size",
        "MMDER_MAX_FILE_SIZE",
        "50MB",
        file_size,
        "a size such as 50MB, 800kb or bytes",
        "largest upload",
    )
    add("--max-duration", "MMDER_MAX_DURATION_S", "120", positive_seconds, seconds, "longest video (seconds)")
    add("--max-live", "MMDER_MAX_LIVE_S", "60", positive_seconds, seconds, "longest live session (seconds)")
    add("--live-fps", "MMDER_LIVE_FPS", "10", positive_seconds, "frames per second > 0", "live camera frame rate")
    add("--queue-size", "MMDER_QUEUE_SIZE", "16", positive_int, "a whole number > 0", "requests that may wait")
    add("--concurrency", "MMDER_CONCURRENCY", "1", positive_int, "a whole number > 0", "requests run at once")
    parser.add_argument("--host", default=env("GRADIO_SERVER_NAME", "0.0.0.0"))
    parser.add_argument("--port", type=int, default=int(env("GRADIO_SERVER_PORT", 7860)))
    args = parser.parse_args(argv)
    if not args.model:
        parser.error(
            "no model given: pass --model <folder or Hub id> (a model saved by examples/finetune.py, e.g. "
            "runs/demo/fslf) or set MMDER_MODEL; in a Space, set MMDER_MODEL in its settings"
        )
    return args


def header_duration(path: str) -> Optional[float]:
    """The longest stream's duration in seconds as the container header states it (nothing is decoded), or ``None``
    when no stream states one (or the file cannot be opened: the pipeline then reports it)."""
    from torchcodec.decoders import AudioDecoder, VideoDecoder

    durations = []
    for decoder in (lambda: VideoDecoder(path, seek_mode="approximate"), lambda: AudioDecoder(path)):
        try:
            durations.append(decoder().metadata.duration_seconds_from_header)
        except Exception:  # noqa: BLE001 - no such stream, or not media at all: the pipeline says which
            continue
    durations = [float(d) for d in durations if d is not None and math.isfinite(d)]
    return max(durations) if durations else None


def duration_problem(path: str, limit: float) -> str:
    """The message refusing a video longer than ``limit`` seconds (``""`` when it may be analysed)."""
    duration = header_duration(path)
    if duration is None or duration <= limit:
        return ""
    return (
        f"{os.path.basename(path)} lasts {duration:.1f} s; this Space takes videos up to {limit:g} s "
        "(MMDER_MAX_DURATION_S): upload a shorter clip"
    )


def model_view(processor, video: str) -> tuple[list, list]:
    """What the model reads from ``video``: ``[(image, caption)]`` of its face frames then its audio pictures (8-bit,
    before normalisation), and the face boxes (``[x0, y0, x1, y1]`` or ``None`` per frame; empty without face
    cropping)."""
    seen = processor(videos=video, do_rescale=False, do_normalize=False)
    images = []
    for key, name in (("pixel_values", "face frame"), ("audio_values", "audio picture")):
        if key in seen:
            for k, image in enumerate(seen[key][0]):
                images.append((image.permute(1, 2, 0).numpy().astype("uint8"), f"{name} {k + 1}"))
    boxes = []
    if "face_boxes" in seen:
        boxes = [None if box[0] != box[0] else [round(float(v), 1) for v in box] for box in seen["face_boxes"][0]]
    return images, boxes


def training_data_warning(model: str, config) -> str:
    """The warning for a model trained on the built-in synthetic corpus (``config.training_data``), else ``""``: its
    scores look like emotions but it has only seen moving shapes and tones, so a visitor must see that first."""
    if getattr(config, "training_data", None) != "synthetic":
        return ""
    return (
        f"{model}: trained on the built-in synthetic corpus; it recognises synthetic clips only, not real faces and "
        "voices"
    )


def score_bars(scores: dict) -> pd.DataFrame:
    import pandas as pd

    return pd.DataFrame({"emotion": list(scores), "score": list(scores.values())})


def timeline_curve(windows: list, labels: list) -> pd.DataFrame:
    """One row per window and label, at the window's middle: the LinePlot's data."""
    import pandas as pd

    rows = [
        {"time (s)": (w["start"] + w["end"]) / 2, "emotion": label, "probability": w["scores"][label]}
        for w in windows
        for label in labels
    ]
    return pd.DataFrame(rows, columns=["time (s)", "emotion", "probability"])


class LiveSession:
    """One visitor's live session: the model's live windows fed by the camera and microphone streams, which gradio
    runs as two events that may call in at the same time (hence the lock). Times are the server's clock since the
    first chunk; audio chunks are contiguous from where the first one began."""

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.reset()

    def __deepcopy__(self, memo: dict) -> LiveSession:
        return LiveSession()  # gradio copies a State's value for each visitor: a fresh session, with its own lock

    def reset(self) -> None:
        """A new session in the same object: the two streams hold it, so it is emptied rather than replaced."""
        self.windows = None  # the pipeline's LiveWindows, made at the first chunk
        self.started = 0.0
        self.frames = 0
        self.frame_size: Optional[list] = None
        self.audio_s = 0.0
        self.entries: list = []
        self.stopped = ""  # why the session no longer takes chunks
        self.stopped_at: Optional[float] = None
        self.shown = 0.0  # session time the view was last sent by the camera's stream

    def elapsed(self) -> float:
        """Seconds since the first chunk (until the session stopped)."""
        if self.windows is None:
            return 0.0
        return (self.stopped_at or time.monotonic()) - self.started

    def stop(self, why: str) -> None:
        """End of stream: the windows the stream has reached become ready; later chunks are ignored."""
        self.windows.finish()
        self.stopped, self.stopped_at = why, time.monotonic()

    def summary(self) -> dict:
        return {
            "status": self.stopped or ("live" if self.windows is not None else "waiting for the camera/microphone"),
            "session_s": round(self.elapsed(), 2),
            "frames_received": self.frames,
            "frame_size": self.frame_size,
            "audio_s_received": round(self.audio_s, 2),
            "windows_made": len(self.entries),
            "windows": [
                {k: w[k] for k in ("start", "end", "label", "score", "scores")}
                for w in self.entries[-LIVE_RAW_WINDOWS:]
            ],
        }


def build_demo(args: argparse.Namespace) -> gr.Blocks:
    # Imported here, not at the top: a wrong setting is answered before the seconds these imports take.
    import gradio as gr
    from transformers import pipeline

    pipe = pipeline(model=args.model, trust_remote_code=True)
    labels = [pipe.model.config.id2label[i] for i in range(pipe.model.config.num_labels)]
    warning = training_data_warning(args.model, pipe.model.config)

    def check_upload(video: str, timeline_mode: str) -> list:
        """Runs before the request joins the queue: an over-long video is refused at once, whoever is being served."""
        problem = duration_problem(video, args.max_duration) if video else ""
        return [gr.validate(not problem, problem), gr.validate(True, "")]

    def analyze(video: str, timeline_mode: str):
        if not video:
            raise gr.Error("Upload or record a video first.")
        try:
            predictions = pipe(video, top_k=len(labels))
            duration = header_duration(video) or 0.0
            want_timeline = timeline_mode == "always" or (timeline_mode == "auto" and duration > args.long_video)
            timeline = pipe(video, window=args.window, stride=args.stride, batch_size=8) if want_timeline else []
            seen, face_boxes = model_view(pipe.processor, video)
        except ValueError as error:  # MediaError: the message names the file and the problem
            raise gr.Error(str(error).replace(str(video), os.path.basename(str(video))))
        bars = score_bars({p["label"]: p["score"] for p in predictions})
        summary = {
            "duration_s": round(duration, 3),
            "predictions": predictions,
            "timeline": [{k: w[k] for k in ("start", "end", "label", "score")} for w in timeline],
            "face_crop": bool(getattr(pipe.processor, "face_crop", False)),
            "face_boxes": face_boxes,
        }
        if warning:
            summary["warning"] = warning
        return bars, gr.update(value=timeline_curve(timeline, labels), visible=bool(timeline)), seen, summary

    live_limit = (
        f"Live session stopped at this Space's {args.max_live:g} s limit (MMDER_MAX_LIVE_S): stop the camera and "
        "the microphone, then start them again for a new session"
    )

    def live_view(session: LiveSession) -> tuple:
        latest = session.entries[-1]["scores"] if session.entries else dict.fromkeys(labels, 0.0)
        recent = session.entries[-LIVE_TIMELINE_WINDOWS:]
        return score_bars(latest), timeline_curve(recent, labels), session.summary()

    def classify(session: LiveSession) -> bool:
        ready = session.windows.ready()
        if ready:
            session.entries.extend(pipe.classify_windows(ready))
        return bool(ready)

    def live_step(session: LiveSession, add: Callable[[], None]) -> bool:
        """Starts the session at its first chunk, feeds it (unless it is over), classifies the windows it completed
        and says whether the view changed. The caller holds the lock."""
        if session.stopped:
            return False
        if session.windows is None:
            if not hasattr(pipe, "live"):
                session.stopped = "this model's code predates live windows: save the model again with mmder-hf"
                return True
            try:
                session.windows = pipe.live(window=args.window, stride=args.stride)
            except ValueError as error:  # e.g. a processor that samples frames by index, not by time
                session.stopped = f"this model cannot score a live stream: {error}"
                return True
            session.started = time.monotonic()
        over = session.elapsed() >= args.max_live
        if over:
            session.stop(live_limit)
        else:
            add()
        return classify(session) or over

    def on_frame(frame: Optional[np.ndarray], session: LiveSession) -> tuple:
        if frame is None:
            return gr.skip(), gr.skip(), gr.skip()
        with session.lock:

            def add() -> None:
                session.windows.add_frames(np.array(frame[None]), [session.elapsed()])  # a copy: gradio's is read-only
                session.frames += 1
                session.frame_size = list(frame.shape[:2])

            changed = live_step(session, add)
            # New windows at once; else once a second, so that frames are seen arriving before the microphone starts.
            if changed or session.elapsed() - session.shown >= 1.0:
                session.shown = session.elapsed()
                return live_view(session)
            return gr.skip(), gr.skip(), gr.skip()

    def on_audio(chunk: Optional[tuple], session: LiveSession) -> tuple:
        if chunk is None:
            return gr.skip(), gr.skip(), gr.skip()
        rate, data = chunk
        samples = data.astype(np.float32) / 32768.0 if data.dtype.kind == "i" else data.astype(np.float32)
        if samples.ndim == 2:  # (samples, channels)
            samples = samples.mean(axis=1)
        with session.lock:

            def add() -> None:
                # The chunk ends now; later chunks follow it without a gap.
                start = max(0.0, session.elapsed() - len(samples) / rate) if session.audio_s == 0 else None
                session.windows.add_audio(samples, rate, start=start)
                session.audio_s += len(samples) / rate

            live_step(session, add)
            return live_view(session)

    def on_start(session: LiveSession) -> None:
        with session.lock:
            session.reset()

    def on_stop(session: LiveSession) -> tuple:
        with session.lock:
            if session.windows is not None and not session.stopped:
                session.stop("stopped")
                classify(session)
            return live_view(session)

    limits = (
        f"Uploads up to {args.max_file_size / 1e6:g} MB and {args.max_duration:g} s; live sessions up to "
        f"{args.max_live:g} s."
    )
    with gr.Blocks(title="MultiMAE-DER: emotions in video") as demo:
        gr.Markdown(
            "# MultiMAE-DER: audio-visual emotion recognition\n"
            "One VideoMAE encoder reads face frames and audio MFCC pictures fused into one clip. Long videos also get "
            f"an emotion timeline ({args.window:g} s windows every {args.stride:g} s). {limits}"
        )
        if warning:
            gr.Markdown(f"> ⚠️ **{warning}.**", elem_id="training-data-warning")
        with gr.Tab("Upload a video"):
            with gr.Row():
                with gr.Column():
                    video = gr.Video(sources=["upload", "webcam"], label="Video", include_audio=True)
                    timeline_mode = gr.Radio(["auto", "always", "never"], value="auto", label="Timeline")
                    button = gr.Button("Recognize emotions", variant="primary")
                with gr.Column():
                    bars = gr.BarPlot(x="emotion", y="score", y_lim=[0, 1], label="Emotion scores", sort="-y")
                    curve = gr.LinePlot(
                        x="time (s)", y="probability", color="emotion", y_lim=[0, 1], label="Timeline", visible=False
                    )
                    seen = gr.Gallery(
                        label="What the model saw: face frames, then audio pictures", columns=8, height=260
                    )
                    details = gr.JSON(label="Raw output")
        with gr.Tab("Live", elem_id="live-tab"):
            gr.Markdown(
                "Start the camera, then the microphone: every "
                f"{args.stride:g} s the last {args.window:g} s are scored. Sessions stop after {args.max_live:g} s."
            )
            session = gr.State(LiveSession())
            with gr.Row():
                with gr.Column():
                    camera = gr.Image(sources=["webcam"], streaming=True, label="Camera", elem_id="live-camera")
                    microphone = gr.Audio(
                        sources=["microphone"], streaming=True, label="Microphone", elem_id="live-microphone"
                    )
                with gr.Column():
                    live_bars = gr.BarPlot(
                        x="emotion", y="score", y_lim=[0, 1], label="Latest window", elem_id="live-scores"
                    )
                    live_curve = gr.LinePlot(
                        x="time (s)",
                        y="probability",
                        color="emotion",
                        y_lim=[0, 1],
                        label=f"Timeline (last {LIVE_TIMELINE_WINDOWS} windows)",
                        elem_id="live-timeline",
                    )
                    live_details = gr.JSON(label="Live output", elem_id="live-output", open=True)
        outputs = [bars, curve, seen, details]
        button.click(
            analyze, inputs=[video, timeline_mode], outputs=outputs, api_name="predict", validator=check_upload
        )
        live_outputs = [live_bars, live_curve, live_details]
        # Each stream holds one of the --concurrency slots for the session; time_limit frees it a second after the
        # session's own limit (which answers with its message first).
        time_limit = math.ceil(args.max_live) + 1
        camera.stream(
            on_frame,
            [camera, session],
            live_outputs,
            stream_every=1 / args.live_fps,
            time_limit=time_limit,
            show_progress="hidden",
            api_visibility="private",
        )
        microphone.stream(
            on_audio,
            [microphone, session],
            live_outputs,
            stream_every=MICROPHONE_CHUNK_S,
            time_limit=time_limit,
            show_progress="hidden",
            api_visibility="private",
        )
        microphone.start_recording(on_start, [session], None, queue=False, api_visibility="private")
        microphone.stop_recording(on_stop, [session], live_outputs, queue=False, api_visibility="private")
    return demo


if __name__ == "__main__":
    arguments = parse_args()
    demo = build_demo(arguments)
    demo.queue(max_size=arguments.queue_size, default_concurrency_limit=arguments.concurrency)
    demo.launch(server_name=arguments.host, server_port=arguments.port, max_file_size=arguments.max_file_size)
