"""``mmder live SOURCE``: emotions of a camera and microphone, a stream or a file, window by window as it plays.

Three parts run side by side:

- a reader thread per input (PyAV, FFmpeg's demuxers and devices: a file, an ``http(s)`` / ``rtsp`` / ``udp`` /
  ``tcp`` URL, a ``v4l2`` / ``avfoundation`` / ``dshow`` camera, an ``alsa`` / ``pulse`` microphone...) decodes
  frames and audio, puts them on the stream's timeline (seconds from the input's start) and pushes them into the
  model's :class:`~mmder_hf.models.multimae_der.live.LiveWindows`, which hands out each window's inputs once the
  stream has passed its end. ``--realtime`` paces a file by its presentation times, as a camera delivers frames.
  An input whose format only the ``ffmpeg`` program has (PyAV's FFmpeg lacks ``v4l2`` and ``pulse``), or any input
  with ``--through-ffmpeg``, is decoded by an ``ffmpeg`` child process and read from its pipe (live_ffmpeg.py);
- a bounded hand-off (:class:`WindowHandoff`) between the readers and the model: when the model is slower than the
  stream, the OLDEST waiting window is dropped and counted. Live output is about now: the newest window is the one
  worth showing, and dropping the oldest keeps the latency (and the memory) bounded instead of growing without end.
  A file read without ``--realtime`` has no clock to keep up with: the reader waits for the model instead, and no
  window is skipped;
- the model (this thread) takes every waiting window as one batch, prints each entry with its latency (the wall
  time from the moment the stream passed the window's end to the result), appends it to ``--csv`` / ``--jsonl``
  (flushed at once) and redraws ``--plot`` every few seconds.

The run ends at the end of the stream, after ``--duration`` seconds of it, or on Ctrl-C, with a summary line
(windows, skipped, median / maximum latency) on stderr.
"""

from __future__ import annotations

import collections
import csv
import json
import math
import os
import statistics
import sys
import threading
import time
from dataclasses import dataclass, field
from typing import Any, Callable, Optional, TextIO

from .cli import check_output_path
from .cli_arguments import PROG, LiveArguments
from .live_ffmpeg import LiveError, check_format, open_through_ffmpeg


#: Seconds between two redraws of ``--plot`` (drawing takes a few tenths of a second).
PLOT_INTERVAL = 5.0
#: URL schemes read as network streams (anything else without ``--format`` is a file).
STREAM_PREFIXES = ("http://", "https://", "rtsp://", "rtsps://", "rtmp://", "udp://", "tcp://", "srt://", "rtp://")
#: Seconds one stream (video or audio) may lag the other before the session stops (its windows would stay open).
STALL_SECONDS = 10.0
#: Containers FFmpeg opens for single pictures.
_IMAGE_FORMATS = ("image2", "png_pipe", "jpeg_pipe", "webp_pipe", "bmp_pipe", "gif", "tiff_pipe")


# ----------------------------------------------------------------------------------------------------------------
# The hand-off between the stream and the model


@dataclass
class WaitingWindow:
    """A complete window waiting for the model, with the moment (``time.monotonic()``) the stream passed its end."""

    start: float
    end: float
    inputs: dict
    ready_at: float


class WindowHandoff:
    """At most ``bound`` windows wait for the model. ``put`` drops the oldest waiting window when full (a live
    stream), or waits for room (``block=True``: a file read as fast as the model goes); ``take`` returns all the
    waiting windows at once (the model's next batch).

    Attributes:
        skipped (`int`): windows dropped. max_waiting (`int`): the most windows that ever waited at once.
    """

    def __init__(self, bound: int):
        self.bound = bound
        self.skipped = 0
        self.max_waiting = 0
        self._waiting: collections.deque = collections.deque()
        self._closed = False
        self._changed = threading.Condition()

    def put(self, item: WaitingWindow, block: bool = False, stop: Optional[threading.Event] = None) -> None:
        with self._changed:
            if block:
                while len(self._waiting) >= self.bound and not (stop is not None and stop.is_set()):
                    self._changed.wait(0.1)
            if len(self._waiting) >= self.bound:
                self._waiting.popleft()
                self.skipped += 1
            self._waiting.append(item)
            self.max_waiting = max(self.max_waiting, len(self._waiting))
            self._changed.notify_all()

    def take(self, timeout: float) -> Optional[list]:
        """The waiting windows (oldest first); ``[]`` after ``timeout`` seconds without any; ``None`` once closed
        and empty."""
        with self._changed:
            if not self._waiting and not self._closed:
                self._changed.wait(timeout)
            if not self._waiting:
                return None if self._closed else []
            items = list(self._waiting)
            self._waiting.clear()
            self._changed.notify_all()
            return items

    def close(self) -> None:
        with self._changed:
            self._closed = True
            self._changed.notify_all()


# ----------------------------------------------------------------------------------------------------------------
# Sources


@dataclass
class Source:
    """One FFmpeg input: what to open, how, and which of its streams to read."""

    url: str
    format: Optional[str] = None
    options: dict = field(default_factory=dict)
    video: bool = False
    audio: bool = False
    container: Any = None
    through_ffmpeg: bool = False  # read through the ffmpeg program (live_ffmpeg.py), not PyAV's own FFmpeg
    child: Any = None  # that program's process (live_ffmpeg.FfmpegChild)

    @property
    def is_file(self) -> bool:
        return self.format is None and not self.url.startswith(STREAM_PREFIXES)

    def close(self) -> None:
        """Close the container, then stop and reap the ``ffmpeg`` child feeding it (if any)."""
        if self.container is not None:
            self.container.close()
        if self.child is not None:
            self.child.close()


def _options(values: list) -> dict:
    return dict(value.split("=", 1) for value in values)


def _av_reason(error: BaseException) -> str:
    """PyAV's error as a short reason, without the file name it repeats."""
    import av

    if isinstance(error, av.error.FileNotFoundError):
        return "not found"
    if isinstance(error, av.error.ConnectionRefusedError):
        return "connection refused (is the stream being served?)"
    if isinstance(error, (av.error.InvalidDataError,)):
        return "not a video, audio stream or device FFmpeg can read"
    if isinstance(error, (TimeoutError, av.error.ExitError)) or "timed out" in str(error).lower():
        return "no answer (timed out)"
    message = getattr(error, "strerror", None) or str(error)
    return str(message).strip().splitlines()[0] if str(message).strip() else type(error).__name__


def open_source(source: Source, flag: str, timeout: float) -> Any:
    """Open ``source`` with PyAV; a :class:`LiveError` naming it (and the flag that gave it) when it cannot be."""
    import av

    name = source.url if flag == "SOURCE" else f"{flag} {source.url}"
    if source.is_file:
        if not os.path.exists(source.url):
            raise LiveError(f"{name}: file not found (for a device, give its --format; for a stream, its URL)")
        if os.path.isdir(source.url):
            raise LiveError(f"{name}: a folder, not a video file")
    check_format(source, flag)
    if source.through_ffmpeg:
        return open_through_ffmpeg(source, name, timeout)
    try:
        container = av.open(
            source.url, format=source.format, options=source.options, timeout=None if source.is_file else timeout
        )
    except (av.error.FFmpegError, OSError, ValueError) as error:
        raise LiveError(f"{name}: cannot be opened: {_av_reason(error)}") from error
    if container.format.name in _IMAGE_FORMATS or container.format.name.endswith("_pipe"):
        container.close()
        raise LiveError(f"{name}: a still image, not a video, a stream or a device")
    return container


def _check_streams(sources: list, need_video: bool, need_audio: bool, what: str) -> None:
    """Each needed stream is there: one line naming the input otherwise."""
    main = sources[0]
    if need_video and not main.container.streams.video:
        raise LiveError(f"{main.url}: no video stream; the model reads {what}")
    audio_source = sources[1] if len(sources) > 1 else main
    if need_audio and not audio_source.container.streams.audio:
        hint = "" if len(sources) > 1 else " (give a microphone with --audio)"
        raise LiveError(f"{audio_source.url}: no audio stream; the model reads {what}{hint}")
    main.video = need_video
    audio_source.audio = need_audio


def _audio_samples(frame: Any) -> Any:
    """A decoded audio frame -> mono float32 samples (the mean of its channels, integers scaled to [-1, 1])."""
    import numpy as np

    data = frame.to_ndarray()
    channels = len(frame.layout.channels)
    if not frame.format.is_planar:  # packed: (1, samples * channels), interleaved
        data = data.reshape(-1, channels).T
    if data.dtype.kind in "iu":
        scale = float(np.iinfo(data.dtype).max) + 1.0
        data = data.astype(np.float32) / scale
    return np.asarray(data, dtype=np.float32).mean(axis=0) if channels > 1 else np.asarray(data[0], np.float32)


def _origin(container: Any, video: bool) -> Optional[float]:
    """Stream time 0 of an input: its video stream's start when it is read (where a file's timeline starts: an
    MPEG-TS audio track may start earlier, with the encoder's priming samples), else the container's start
    (``None``: the first frame's time)."""
    stream = container.streams.video[0] if video else None
    if stream is not None and stream.start_time is not None:
        return float(stream.start_time * stream.time_base)
    return container.start_time / 1e6 if container.start_time is not None else None


# ----------------------------------------------------------------------------------------------------------------
# The readers


class StreamSession:
    """The readers' shared state: the windows engine (behind a lock), the hand-off, the stop signal, the outcome."""

    def __init__(self, engine: Any, handoff: WindowHandoff, live: bool, realtime: bool, duration: Optional[float]):
        self.engine, self.handoff = engine, handoff
        self.live, self.realtime, self.duration = live, realtime, duration
        self.reason = "end of stream"
        self.lock = threading.Lock()
        self.stop = threading.Event()  # the readers stop (an input ended, Ctrl-C, an error)
        self.abort = threading.Event()  # the model stopped taking windows (Ctrl-C, an error): nothing waits for it
        self.error: Optional[str] = None
        self.windows_completed = 0
        self.reached: dict = {}  # stream time reached by the video / audio pushed so far
        counts = {"video": engine.num_video_frames, "audio": engine.num_audio_frames}
        self.needed = {kind for kind, count in counts.items() if count > 0}
        self.sources: dict = {}
        self._running = 0

    def push(self, kind: str, time_: float, add: Callable[[], None]) -> None:
        """Add frames or audio (``add``) reaching stream time ``time_``, then hand the windows now complete to the
        model. A stream that stops while the other goes on would hold every window open (and its frames): after
        :data:`STALL_SECONDS` the session stops, naming the silent input."""
        with self.lock:
            add()
            self.reached[kind] = time_
            self._hand_over(self.engine.ready())
            if len(self.reached) == len(self.needed) == 2 and self.error is None:
                kind_behind = min(self.reached, key=self.reached.get)
                ahead = max(self.reached.values())
                if ahead - self.reached[kind_behind] > STALL_SECONDS:
                    name = self.sources[kind_behind].url
                    self.error = (
                        f"{name}: its {kind_behind} stopped at {self.reached[kind_behind]:.1f} s while the stream "
                        f"went on to {ahead:.1f} s; the model reads both (is the device still delivering?)"
                    )
                    self.stop.set()

    def _hand_over(self, windows: list) -> None:
        now = time.monotonic()
        for start, end, inputs in windows:
            self.windows_completed += 1
            # a file read at full speed waits for the model; a live stream drops the oldest waiting window
            self.handoff.put(WaitingWindow(start, end, inputs, now), block=not self.live, stop=self.abort)

    def run(self, sources: list) -> list:
        self.sources = {kind: source for source in sources for kind in ("video", "audio") if getattr(source, kind)}
        threads = [threading.Thread(target=self._read, args=(source,), daemon=True) for source in sources]
        self._running = len(threads)
        for thread in threads:
            thread.start()
        return threads

    def _read(self, source: Source) -> None:
        reached_duration = False
        try:
            reached_duration = self._demux(source)
            if source.child is not None and not reached_duration and not self.stop.is_set():
                failure = source.child.failure(source.url)  # the program ended: on its own error?
                if failure is not None:
                    self.error = f"{source.url}: the stream failed: {failure}"
        except Exception as error:  # noqa: BLE001 - a stream that breaks is one line, not a traceback
            if not self.stop.is_set():
                self.error = f"{source.url}: the stream failed: {_av_reason(error)}"
        finally:
            if not reached_duration:  # an input ending ends the session (the other would wait for it forever)
                self.stop.set()
            with self.lock:
                self._running -= 1
                if self._running == 0:
                    if self.error is None:
                        self.engine.finish()
                        self._hand_over(self.engine.ready())
                    self.handoff.close()
            source.close()

    def _demux(self, source: Source) -> bool:
        """Read ``source`` until it ends, the session stops (``False``) or ``--duration`` is reached (``True``)."""
        import numpy as np

        container = source.container
        streams = [*container.streams.video[:1]] if source.video else []
        streams += [*container.streams.audio[:1]] if source.audio else []
        for stream in streams:
            stream.thread_type = "AUTO"
        origin = _origin(container, source.video)
        wall = first = None
        finished: set = set()
        for packet in container.demux(*streams):
            for frame in packet.decode():
                if self.stop.is_set():
                    return False
                if frame.time is None:
                    continue
                origin = frame.time if origin is None else origin
                time_ = frame.time - origin
                if self.duration is not None and time_ >= self.duration:
                    # each stream is read up to --duration (a stream's packets may come late, as MPEG-TS audio)
                    finished.add(packet.stream.index)
                    if len(finished) == len(streams):
                        self.reason = f"--duration {self.duration:g} s"
                        return True
                    continue
                if self.realtime:  # released at its presentation time, as a camera delivers it
                    if wall is None:
                        wall, first = time.monotonic(), time_
                    delay = wall + (time_ - first) - time.monotonic()
                    if delay > 0 and self.stop.wait(delay):
                        return False
                if packet.stream.type == "video":
                    image = frame.to_ndarray(format="rgb24")
                    if frame.rotation:  # a phone's portrait clip: turned as displayed, as the processor reads it
                        image = np.ascontiguousarray(np.rot90(image, k=round(frame.rotation / 90) % 4))
                    self.push("video", time_, lambda: self.engine.add_frames(image[None], [time_]))
                else:
                    samples = _audio_samples(frame)
                    if self.duration is not None:  # the stream stops at --duration, to the sample
                        samples = samples[: max(0, round((self.duration - time_) * frame.sample_rate))]
                    reach = time_ + len(samples) / frame.sample_rate
                    self.push("audio", reach, lambda: self.engine.add_audio(samples, frame.sample_rate, time_))
        return False


# ----------------------------------------------------------------------------------------------------------------
# Output


class Outputs:
    """Where each window goes: stdout (text or JSON lines), ``--csv`` and ``--jsonl`` (flushed per window),
    ``--plot`` (redrawn at most every :data:`PLOT_INTERVAL` seconds and at the end)."""

    def __init__(self, args: LiveArguments, title: str):
        self.args, self.title = args, title
        self.entries: list = []
        self._csv_file: Optional[TextIO] = None
        self._csv: Any = None
        self._jsonl: Optional[TextIO] = None
        self._plotted_at = -math.inf
        self._plotted = 0
        try:
            if args.csv:
                self._csv_file = open(args.csv, "w", newline="", encoding="utf-8")  # noqa: SIM115 - kept open
                self._csv = csv.writer(self._csv_file)
            if args.jsonl:
                self._jsonl = open(args.jsonl, "w", encoding="utf-8")  # noqa: SIM115 - kept open
        except OSError as error:
            self.close()
            raise LiveError(f"cannot write the outputs: {error}") from error

    def add(self, entry: dict, latency: float) -> None:
        entry = {**entry, "latency": round(latency, 4)}
        self.entries.append(entry)
        if self.args.json:
            print(json.dumps(entry), flush=True)
        else:
            line = f"{entry['start']:8.2f} - {entry['end']:8.2f} s  {entry['label']:<12} {entry['score']:.3f}"
            print(f"{line}  latency {latency:.3f} s", flush=True)
        if self._csv is not None:
            from .timeline import timeline_csv_header, timeline_csv_row

            labels, faces = list(entry["scores"]), "face_boxes" in entry
            if len(self.entries) == 1:
                self._csv.writerow([*timeline_csv_header(labels, faces), "latency"])
            self._csv.writerow([*timeline_csv_row(entry, labels, faces), f"{latency:.4f}"])
            self._csv_file.flush()
        if self._jsonl is not None:
            self._jsonl.write(json.dumps(entry) + "\n")
            self._jsonl.flush()

    def plot(self, final: bool = False) -> None:
        if not self.args.plot or not self.entries or len(self.entries) == self._plotted:
            return
        if not final and time.monotonic() - self._plotted_at < PLOT_INTERVAL:
            return
        from .timeline import plot_timeline

        plot_timeline(self.entries, self.args.plot, title=self.title)
        self._plotted_at, self._plotted = time.monotonic(), len(self.entries)

    def close(self) -> None:
        for handle in (self._csv_file, self._jsonl):
            if handle is not None:
                handle.close()


def summary(completed: int, handoff: WindowHandoff, latencies: list, stopped: str) -> str:
    """The last line: windows classified, skipped (and why), latency median / max, how the run ended."""
    done = len(latencies)
    text = f"{done} window{'s' if done != 1 else ''} classified"
    if handoff.skipped:
        text += f"; skipped {handoff.skipped} of {completed} windows: the model is slower than the stream"
        text += f" (at most {handoff.max_waiting} waiting)"
    if latencies:
        text += f"; latency median {statistics.median(latencies):.3f} s, max {max(latencies):.3f} s"
    return f"{text} ({stopped})"


# ----------------------------------------------------------------------------------------------------------------
# The command


def run_live(args: LiveArguments, url: str, load_pipeline: Callable[[], Any]) -> int:
    """``mmder live``: returns the exit status (0; 1 when the source failed)."""
    for option, path in (("--csv", args.csv), ("--jsonl", args.jsonl), ("--plot", args.plot)):
        check_output_path(option, path, LiveError)
    sources = [Source(url, args.format, _options(args.option), through_ffmpeg=args.through_ffmpeg)]
    if args.audio is not None:
        audio = Source(args.audio, args.audio_format, _options(args.audio_option), through_ffmpeg=args.through_ffmpeg)
        sources.append(audio)
    for source, flag in zip(sources, ("SOURCE", "--audio")):  # mistakes found before the model is loaded
        check_format(source, flag)
        if source.is_file and not os.path.exists(source.url):
            open_source(source, flag, args.timeout)
    pipe = load_pipeline()
    processor = pipe.processor
    need_video, need_audio = processor.num_video_frames > 0, processor.num_audio_frames > 0
    what = "face frames and audio" if need_video and need_audio else "face frames only" if need_video else "audio only"
    try:
        for source, flag in zip(sources, ("SOURCE", "--audio")):
            source.container = open_source(source, flag, args.timeout)
        _check_streams(sources, need_video, need_audio, what)
        engine = pipe.live(window=args.window, stride=args.stride)
    except (LiveError, ValueError) as error:
        for source in sources:
            source.close()
        if isinstance(error, LiveError):
            raise
        raise LiveError(f"--model {args.model}: {error}") from error  # e.g. frames not sampled by time
    engine.name = url
    # a device, a network stream or a paced file runs on the stream's clock: windows are skipped when the model lags;
    # a file on disk (whatever its --format) read at full speed has no clock to keep up with
    live = args.realtime or not all(os.path.isfile(source.url) for source in sources)
    handoff = WindowHandoff(args.max_waiting)
    session = StreamSession(engine, handoff, live=live, realtime=args.realtime, duration=args.duration)
    outputs = Outputs(args, title=f"{os.path.basename(url.rstrip('/')) or url} (live)")
    latencies: list = []
    stopped, warned = None, False
    threads = session.run(sources)
    try:
        while True:
            batch = handoff.take(timeout=0.5)
            if batch is None:
                break
            if not batch:
                continue
            entries = pipe.classify_windows([(w.start, w.end, w.inputs) for w in batch])
            now = time.monotonic()
            for waiting, entry in zip(batch, entries):
                latencies.append(now - waiting.ready_at)
                outputs.add(entry, now - waiting.ready_at)
            if handoff.skipped and not warned:
                print(f"{PROG}: warning: the model is slower than the stream: skipping windows", file=sys.stderr)
                warned = True
            outputs.plot()
    except KeyboardInterrupt:
        stopped = "stopped by Ctrl-C"
    finally:
        session.abort.set()
        session.stop.set()
        for thread in threads:
            thread.join(timeout=2.0)
        for source in sources:  # a reader still waiting on a silent ffmpeg child gets its end of stream, and ends
            if source.child is not None:
                source.child.stop()
        for thread in threads:
            thread.join(timeout=2.0)
        outputs.plot(final=True)
        outputs.close()
    stopped = stopped or session.reason
    print(f"{PROG} live: " + summary(session.windows_completed, handoff, latencies, stopped), file=sys.stderr)
    for written in (args.csv, args.jsonl, args.plot):
        if written and os.path.exists(written):
            print(f"wrote {written}", file=sys.stderr)
    if session.error is not None:
        raise LiveError(session.error)
    return 0


__all__ = [
    "LiveError",
    "Outputs",
    "Source",
    "StreamSession",
    "WindowHandoff",
    "check_format",
    "open_source",
    "run_live",
    "summary",
]
