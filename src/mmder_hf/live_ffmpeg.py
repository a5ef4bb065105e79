"""Inputs of ``mmder live`` read through the ``ffmpeg`` program, for what PyAV's own FFmpeg cannot open.

PyAV's wheels bundle an FFmpeg built without most capture devices (on Linux: no ``v4l2`` camera, no ``pulse``
microphone), while the system's ``ffmpeg`` program usually has them. Such an input is opened by an ``ffmpeg`` child
process that decodes it and writes raw frames (RGB) and raw samples (32-bit float) in NUT, a container that keeps
every frame's timestamp (``-copyts``: the input's own, as PyAV reads them directly), to a pipe that PyAV then reads
like any other input. Everything after the demuxer (the stream's clock, windows, pacing, skipping) is unchanged.

The child runs in its own process group, so that Ctrl-C reaches only ``mmder`` (which stops it), and it is stopped
and reaped whichever way the run ends. When it fails, the last line it printed (``/dev/video9: No such file or
directory``) is the reason given.
"""

from __future__ import annotations

import collections
import functools
import re
import shutil
import subprocess
import threading
from typing import Any, Optional

from .cli import CliError
from .user_errors import did_you_mean


class LiveError(CliError):
    """A problem with a source of ``mmder live``, reported as one line (exit status 1)."""


#: Seconds a child that failed is given to exit on its own, and its last error line to come.
EXIT_GRACE = 2.0


@functools.cache
def ffmpeg_input_formats() -> frozenset:
    """The input formats and devices of the ``ffmpeg`` program on PATH (empty without one); asked once."""
    program = shutil.which("ffmpeg")
    if program is None:
        return frozenset()
    names: set = set()
    for listing in ("-formats", "-devices"):
        try:
            text = subprocess.run(
                [program, "-hide_banner", listing], capture_output=True, text=True, timeout=20, check=False
            ).stdout
        except (OSError, subprocess.SubprocessError):
            continue
        names.update(_demuxers(text))
    return frozenset(names)


def _demuxers(listing: str) -> set:
    """The demuxer names of an ``ffmpeg -formats`` / ``-devices`` listing: after the ``--`` line, one format a line,
    its flags in fixed columns (``D`` demuxing, ``E`` muxing; from FFmpeg 6 a third, ``d``: a device), then its
    names (``" DE video4linux2,v4l2  Video4Linux2 output device"`` gives both names)."""
    names: set = set()
    lines = listing.splitlines()
    start = next((i + 1 for i, line in enumerate(lines) if line.strip() == "--"), len(lines))
    for line in lines[start:]:
        match = re.match(r" ([D ])([E ])([d ])? ?(\S+)", line)
        if match and match.group(1) == "D":
            names.update(name for name in match.group(4).split(",") if name)
    return names


class FfmpegChild:
    """An ``ffmpeg`` process decoding one input into NUT on its stdout; its stderr's last lines are kept."""

    def __init__(self, url: str, format: Optional[str], options: dict):
        command = [shutil.which("ffmpeg") or "ffmpeg", "-hide_banner", "-loglevel", "error", "-nostdin", "-copyts"]
        if format is not None:
            command += ["-f", format]
        for key, value in options.items():
            command += [f"-{key}", value]
        command += ["-i", url, "-map", "0:v:0?", "-map", "0:a:0?", "-c:v", "rawvideo", "-pix_fmt", "rgb24"]
        command += ["-c:a", "pcm_f32le", "-flush_packets", "1", "-f", "nut", "pipe:1"]
        self.command = command
        self.timed_out = False
        self._lines: collections.deque = collections.deque(maxlen=20)
        self._lock = threading.Lock()
        # its own process group: Ctrl-C in a terminal reaches mmder only, which stops the child itself
        self.process = subprocess.Popen(
            command, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.PIPE, start_new_session=True
        )
        # drained as it comes: a child blocked on a full stderr pipe would stop sending frames
        self._drain = threading.Thread(target=self._read_stderr, daemon=True)
        self._drain.start()

    def _read_stderr(self) -> None:
        for raw in self.process.stderr:
            line = raw.decode("utf-8", "replace").strip()
            if line:
                self._lines.append(line)

    def open(self, timeout: Optional[float]) -> Any:
        """PyAV's container of the child's output; the child is killed when its header has not come in ``timeout``
        seconds (a device or stream that does not answer)."""
        import av

        timer = None
        if timeout is not None:
            timer = threading.Timer(timeout, self._time_out)
            timer.daemon = True
            timer.start()
        try:
            return av.open(self.process.stdout, format="nut")
        finally:
            if timer is not None:
                timer.cancel()

    def _time_out(self) -> None:
        self.timed_out = True
        self.process.kill()

    def last_line(self, url: str) -> Optional[str]:
        """The child's last error line once it has exited (waiting for it a little), without the input's name it
        starts with; ``None`` when it is still running or printed nothing."""
        try:
            self.process.wait(timeout=EXIT_GRACE)
        except subprocess.TimeoutExpired:
            return None
        self._drain.join(timeout=EXIT_GRACE)
        if not self._lines:
            return None
        line = self._lines[-1]
        return line[len(url) + 2 :] if line.startswith(f"{url}: ") else line

    def failure(self, url: str) -> Optional[str]:
        """Why the child ended on its own with an error (its last line), else ``None``."""
        line = self.last_line(url)
        return line if self.process.returncode not in (None, 0) else None

    def stop(self) -> None:
        """Stop the child and reap it; safe from any thread, any number of times. Killed at once: it has nothing
        left to say to us, and a child blocked writing to a pipe no one reads would not answer a gentler signal."""
        with self._lock:
            if self.process.poll() is None:
                self.process.kill()
            self.process.wait()
        self._drain.join(timeout=EXIT_GRACE)

    def close(self) -> None:
        """Stop the child and close its pipe (once PyAV's container of it is closed: the reader's thread)."""
        self.stop()
        self.process.stdout.close()


def check_format(source: Any, flag: str) -> None:
    """Route ``source`` (a ``live_cli.Source``) through the ``ffmpeg`` program when its format is one only that program
    has (a ``v4l2`` camera, a ``pulse`` microphone); a :class:`LiveError` with "did you mean" over both lists when
    neither has it, or when ``--through-ffmpeg`` finds no such program. ``flag``: ``SOURCE`` or ``--audio``."""
    import av

    option = "--format" if flag == "SOURCE" else "--audio-format"
    program_formats = ffmpeg_input_formats()
    if source.through_ffmpeg:
        if not program_formats:
            raise LiveError("--through-ffmpeg: no ffmpeg program on PATH; install FFmpeg or leave the flag out")
        if source.format is not None and source.format not in program_formats:
            hint = did_you_mean(source.format, sorted(program_formats))
            raise LiveError(f"{option} {source.format}: the ffmpeg program has no such input format{hint}")
    elif source.format is not None and source.format not in av.formats_available:
        if source.format in program_formats:
            source.through_ffmpeg = True
            return
        hint = did_you_mean(source.format, sorted(set(av.formats_available) | program_formats))
        program = "nor has the ffmpeg program" if program_formats else "and no ffmpeg program is on PATH"
        raise LiveError(
            f"{option} {source.format}: FFmpeg (as PyAV ships it) has no such input format, {program}{hint}"
        )


def open_through_ffmpeg(source: Any, name: str, timeout: float) -> Any:
    """PyAV's container of an ``ffmpeg`` child decoding ``source`` (kept as ``source.child``); a :class:`LiveError`
    with the child's last error line when it cannot open the input. ``name``: the input as the user gave it."""
    import av

    why = f"--format {source.format}, read by the ffmpeg program" if source.format else "read by the ffmpeg program"
    try:
        source.child = FfmpegChild(source.url, source.format, source.options)
    except OSError as error:
        raise LiveError(f"{name}: cannot start the ffmpeg program: {error}") from error
    try:
        return source.child.open(None if source.is_file else timeout)
    except (av.error.FFmpegError, OSError, ValueError, EOFError) as error:
        child, source.child = source.child, None
        reason = None if child.timed_out else child.last_line(source.url)
        child.close()
        if child.timed_out:
            reason = f"no answer in {timeout:g} s (--timeout)"
        raise LiveError(
            f"{name}: cannot be opened: {reason or 'the ffmpeg program sent no stream'} ({why})"
        ) from error


__all__ = ["FfmpegChild", "LiveError", "check_format", "ffmpeg_input_formats", "open_through_ffmpeg"]
