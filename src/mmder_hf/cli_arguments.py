"""The ``mmder`` command's arguments: one dataclass of options per sub-command, and the parser built from it.

Each sub-command's options come from the fields of a dataclass (with ``HfArgumentParser``'s field metadata: ``help``,
``metavar``, ``choices``, ``aliases``); every option is spelled with dashes (``--top-k``) and also accepted with
underscores (``--top_k``). An argument mistake is a usage error, as argparse reports it: the usage line, one
``mmder <command>: error: ...`` line naming the argument and exit status 2, before any model is loaded.
"""

from __future__ import annotations

import argparse
import dataclasses
import math
import types
from dataclasses import dataclass, field
from typing import Any, Optional, Sequence, Union, get_args, get_origin, get_type_hints

from .timeline import DEFAULT_STRIDE, DEFAULT_WINDOW
from .user_errors import closest


PROG = "mmder"


@dataclass
class ModelArguments:
    """Shared by every sub-command."""

    model: str = field(
        metadata={
            "help": "Model folder or Hub id (saved by this project's save_pretrained/push_to_hub).",
            "metavar": "ID_OR_DIR",
        }
    )
    device: Optional[str] = field(
        default=None,
        metadata={
            "help": "'cpu', 'cuda', 'cuda:1' (or 1)...; the first GPU if there is one, else the CPU.",
            "metavar": "DEVICE",
        },
    )
    trust_remote_code: bool = field(
        default=False, metadata={"help": "Run the model's own code from its folder/repo instead of mmder_hf's."}
    )
    quiet: bool = field(default=False, metadata={"help": "No progress bar."})

    def __post_init__(self):
        if self.device is not None:
            _check_device(self.device)


@dataclass
class PredictArguments(ModelArguments):
    top_k: int = field(default=5, metadata={"help": "Number of emotions to show per file.", "metavar": "K"})
    batch_size: int = field(
        default=1, metadata={"help": "Files per forward pass (the same scores as one at a time).", "metavar": "N"}
    )
    csv: Optional[str] = field(
        default=None,
        metadata={
            "help": "Also write one row per file here: file, label, score (the top emotion), every emotion's score, "
            "error (empty unless the file failed).",
            "metavar": "CSV",
        },
    )
    json: bool = field(
        default=False,
        metadata={"help": "Print a JSON list on stdout: {file, predictions} per file, {file, error} if it failed."},
    )

    def __post_init__(self):
        super().__post_init__()
        _check_at_least("--top-k", self.top_k, 1)
        _check_at_least("--batch-size", self.batch_size, 1)


@dataclass
class TimelineArguments(ModelArguments):
    window: float = field(default=DEFAULT_WINDOW, metadata={"help": "Window length in seconds.", "metavar": "S"})
    stride: float = field(default=DEFAULT_STRIDE, metadata={"help": "Seconds between window starts.", "metavar": "S"})
    batch_size: int = field(default=8, metadata={"help": "Windows per forward pass.", "metavar": "N"})
    plot: Optional[str] = field(
        default=None, metadata={"help": "Save a PNG plot of the timeline here.", "metavar": "PNG"}
    )
    csv: Optional[str] = field(default=None, metadata={"help": "Save the timeline as CSV here.", "metavar": "CSV"})
    json: bool = field(default=False, metadata={"help": "Print the timeline as JSON on stdout."})

    def __post_init__(self):
        super().__post_init__()
        _check_seconds("--window", self.window)
        _check_seconds("--stride", self.stride)
        _check_at_least("--batch-size", self.batch_size, 1)


@dataclass
class LiveArguments(ModelArguments):
    window: float = field(default=DEFAULT_WINDOW, metadata={"help": "Window length in seconds.", "metavar": "S"})
    stride: float = field(default=DEFAULT_STRIDE, metadata={"help": "Seconds between window starts.", "metavar": "S"})
    format: Optional[str] = field(
        default=None,
        metadata={
            "help": "FFmpeg input format of SOURCE: a device (v4l2, avfoundation, dshow, alsa, pulse, lavfi...) or a "
            "container (mpegts...); default: guessed from SOURCE.",
            "metavar": "FMT",
        },
    )
    option: list[str] = field(
        default_factory=list,
        metadata={
            "help": "An FFmpeg input option of SOURCE (repeatable): --option video_size=640x480 --option "
            "framerate=30.",
            "metavar": "KEY=VALUE",
        },
    )
    audio: Optional[str] = field(
        default=None,
        metadata={
            "help": "A second input for the sound (a microphone beside a camera: --audio hw:0 --audio-format alsa); "
            "default: SOURCE's own audio.",
            "metavar": "AUDIO_SOURCE",
        },
    )
    audio_format: Optional[str] = field(
        default=None, metadata={"help": "FFmpeg input format of --audio (alsa, pulse...).", "metavar": "FMT"}
    )
    audio_option: list[str] = field(
        default_factory=list,
        metadata={"help": "An FFmpeg input option of --audio (repeatable).", "metavar": "KEY=VALUE"},
    )
    through_ffmpeg: bool = field(
        default=False,
        metadata={
            "help": "Read SOURCE (and --audio) through the ffmpeg program on PATH instead of PyAV's own FFmpeg, for "
            "a codec or protocol only that program has. Automatic for a --format only it has (v4l2, pulse: PyAV's "
            "FFmpeg lacks most capture devices)."
        },
    )
    realtime: bool = field(
        default=False,
        metadata={
            "help": "Play a file (or a generated lavfi source) at its real rate, as a camera delivers it; without "
            "it a file is read as fast as the model keeps up and no window is skipped."
        },
    )
    duration: Optional[float] = field(
        default=None, metadata={"help": "Stop after this many seconds of the stream.", "metavar": "S"}
    )
    max_waiting: int = field(
        default=2,
        metadata={
            "help": "Windows waiting for the model at most: when the model is slower than the stream, the oldest "
            "waiting window is skipped (and counted).",
            "metavar": "N",
        },
    )
    timeout: float = field(
        default=10.0,
        metadata={"help": "Seconds to wait for a network stream to open or to send data.", "metavar": "S"},
    )
    plot: Optional[str] = field(
        default=None,
        metadata={"help": "Keep a PNG plot of the timeline here (redrawn every few seconds).", "metavar": "PNG"},
    )
    csv: Optional[str] = field(
        default=None, metadata={"help": "Write each window as a CSV row here, as it completes.", "metavar": "CSV"}
    )
    jsonl: Optional[str] = field(
        default=None,
        metadata={"help": "Write each window as one JSON object per line here, as it completes.", "metavar": "JSONL"},
    )
    json: bool = field(default=False, metadata={"help": "Print each window as one JSON object per line on stdout."})

    def __post_init__(self):
        super().__post_init__()
        _check_seconds("--window", self.window)
        _check_seconds("--stride", self.stride)
        _check_seconds("--timeout", self.timeout)
        if self.duration is not None:
            _check_seconds("--duration", self.duration)
        _check_at_least("--max-waiting", self.max_waiting, 1)
        for option, values in (("--option", self.option), ("--audio-option", self.audio_option)):
            for value in values:
                if "=" not in value or value.startswith("="):
                    raise OptionError(option, f"expected KEY=VALUE, got {value!r}")
        if (self.audio_format or self.audio_option) and self.audio is None:
            raise OptionError("--audio-format" if self.audio_format else "--audio-option", "needs --audio")


@dataclass
class ExportArguments(ModelArguments):
    format: str = field(default="onnx", metadata={"help": "Export format (only 'onnx').", "choices": ["onnx"]})
    opset_version: Optional[int] = field(
        default=None,
        metadata={"help": "ONNX opset (exporter default if unset).", "aliases": ["--opset"], "metavar": "N"},
    )
    legacy_exporter: bool = field(
        default=False, metadata={"help": "Use the TorchScript exporter instead of the dynamo one (not for CFAS)."}
    )
    verify: bool = field(default=True, metadata={"help": "Compare onnxruntime and torch logits on random inputs."})

    def __post_init__(self):
        super().__post_init__()
        if self.opset_version is not None:
            _check_at_least("--opset-version", self.opset_version, 1)


@dataclass
class InspectArguments:
    out: str = field(metadata={"help": "Where to draw the model's inputs (PNG).", "metavar": "PNG"})
    model: Optional[str] = field(
        default=None,
        metadata={
            "help": "Draw what this model reads (its saved processor); default: a 224 px, 16-frame FSLF processor.",
            "metavar": "ID_OR_DIR",
        },
    )
    face_crop: Optional[bool] = field(
        default=None,
        metadata={
            "help": "Crop the faces (needs the faces extra) or not; default: as the model's processor, else off.",
            "metavar": "BOOL",
        },
    )
    trust_remote_code: bool = field(default=False, metadata={"help": "Load the model's own processor code."})


class OptionError(ValueError):
    """A bad option value, reported as a usage error (``mmder predict: error: argument --top-k: ...``, exit 2)."""

    def __init__(self, option: str, message: str):
        super().__init__(f"argument {option}: {message}")
        self.option, self.message = option, message


def string_to_bool(value: Union[str, bool]) -> bool:
    """``HfArgumentParser``'s spelling of booleans (yes/no, true/false, t/f, y/n, 1/0), without importing
    transformers (0.6 s) just to parse ``mmder``'s options."""
    if isinstance(value, bool):
        return value
    if value.lower() in ("yes", "true", "t", "y", "1"):
        return True
    if value.lower() in ("no", "false", "f", "n", "0"):
        return False
    raise argparse.ArgumentTypeError(
        f"Truthy value expected: got {value} but expected one of yes/no, true/false, t/f, y/n, 1/0 (case insensitive)."
    )


def _check_at_least(option: str, value: int, minimum: int) -> None:
    if value < minimum:
        raise OptionError(option, f"must be at least {minimum}, got {value}")


def _check_seconds(option: str, value: float) -> None:
    if not (math.isfinite(value) and value > 0):
        raise OptionError(option, f"must be a positive number of seconds, got {value:g}")


def _check_device(device: str) -> None:
    import torch

    if device.isdigit():  # a GPU index, as pipeline(device=0)
        return
    try:
        torch.device(device)
    except (RuntimeError, ValueError) as error:
        raise OptionError("--device", f"invalid device {device!r} (e.g. 'cpu', 'cuda', 'cuda:1')") from error


COMMANDS = {
    "predict": (PredictArguments, "Top emotions of one or more videos."),
    "timeline": (TimelineArguments, "Emotion timeline of a long video (sliding windows), as text/JSON/CSV/PNG."),
    "live": (LiveArguments, "Emotions of a camera + microphone or a stream, window by window as it plays."),
    "export": (ExportArguments, "Export the classifier to ONNX."),
    "inspect": (InspectArguments, "Draw what the model reads from a clip: face boxes, face frames, audio pictures."),
}


class _HelpFormatter(argparse.RawDescriptionHelpFormatter, argparse.ArgumentDefaultsHelpFormatter):
    """``--top-k, --top_k K`` (each option once, its metavar once); defaults only where there is one to show."""

    def _format_action_invocation(self, action: argparse.Action) -> str:
        if not action.option_strings or action.nargs == 0:
            return super()._format_action_invocation(action)
        metavar = self._format_args(action, self._get_default_metavar_for_optional(action))
        return f"{', '.join(action.option_strings)} {metavar}"

    def _get_help_string(self, action: argparse.Action) -> str:
        if action.required or action.nargs == 0 or action.default is None:
            return action.help or ""
        return super()._get_help_string(action)


def _add_dataclass_options(parser: argparse.ArgumentParser, dataclass_type: type) -> None:
    """One option per field of ``dataclass_type``, its metadata passed on to argparse (``aliases`` as more names).

    Built here rather than by ``HfArgumentParser``, whose options put underscores first (``--top_k, --top-k``) and
    whose booleans take an optional value (``--json clip.mp4`` would read ``clip.mp4`` as the value): here each option
    is listed once, dashes first (``--top-k, --top_k``), and a ``bool`` is a flag (``--json``; ``--no-verify`` for one
    that is on by default). An ``Optional[bool]`` without a default takes a value (``--face-crop false``).
    """
    hints = get_type_hints(dataclass_type)
    for spec in dataclasses.fields(dataclass_type):
        if not spec.init:
            continue
        kwargs: dict[str, Any] = dict(spec.metadata)
        aliases = kwargs.pop("aliases", [])
        names = [f"--{spec.name}", f"--{spec.name.replace('_', '-')}"]
        names += [aliases] if isinstance(aliases, str) else list(aliases)
        names = sorted(dict.fromkeys(names), key=lambda name: "_" in name)  # no duplicates, dashes first
        kind, optional = hints[spec.name], False
        if get_origin(kind) in (Union, types.UnionType) and type(None) in get_args(kind):
            kind, optional = next(arg for arg in get_args(kind) if arg is not type(None)), True
        default = spec.default if spec.default is not dataclasses.MISSING else None
        if kind is bool and not (optional and default is None):  # a flag
            help_ = kwargs.get("help") or ""
            if default is True:
                help_ += " (on unless --no-" + names[0].removeprefix("--") + ")"
            parser.add_argument(*names, action="store_true", default=bool(default), help=help_)
            if default is True:
                parser.add_argument(
                    f"--no-{names[0].removeprefix('--')}",
                    f"--no_{spec.name}",
                    action="store_false",
                    dest=spec.name,
                    help=f"Turn {names[0]} off.",
                )
            continue
        if get_origin(kind) is list:  # a repeatable option: --option a=1 --option b=2
            kind = get_args(kind)[0]
            kwargs["action"] = "append"
        kwargs["type"] = string_to_bool if kind is bool else kind
        if spec.default is not dataclasses.MISSING:
            kwargs["default"] = spec.default
        elif spec.default_factory is not dataclasses.MISSING:
            kwargs["default"] = spec.default_factory()
            if kwargs.get("action") == "append":
                kwargs["default"] = None  # argparse appends to the default list itself: given fresh in the dataclass
        else:
            kwargs["required"] = True
        parser.add_argument(*names, **kwargs)


class _Parser(argparse.ArgumentParser):
    """The parser of one sub-command: its dataclass's options (:func:`_add_dataclass_options`), then its files."""

    def __init__(self, dataclass_type: type, **kwargs):
        super().__init__(formatter_class=_HelpFormatter, **kwargs)
        self.dataclass_type = dataclass_type
        _add_dataclass_options(self, dataclass_type)

    def argument_name(self, option: str) -> str:
        """``--top-k/--top_k``: how argparse names an option in its own errors (``invalid int value``)."""
        for action in self._actions:
            if option in action.option_strings:
                return "/".join(action.option_strings)
        return option

    def unrecognized(self, strings: Sequence[str]) -> str:
        message = f"unrecognized arguments: {' '.join(strings)}"
        spelling = {name: action.option_strings[0] for action in self._actions for name in action.option_strings}
        for string in strings:
            if string.startswith("--"):
                close = closest(string.split("=")[0], spelling)
                if close:
                    return f"{message} (did you mean {spelling[close]}?)"
        return message


LIVE_EXAMPLES = """examples:
  a file played at its real rate, as a camera delivers it:
    mmder live clip.mp4 --realtime --model MODEL
  a stream (http, https, rtsp, udp, tcp...):
    mmder live rtsp://192.168.1.20:8554/cam --model MODEL
  Linux camera + microphone (or --audio default --audio-format pulse; v4l2 and pulse are read through the ffmpeg
  program, PyAV's own FFmpeg lacks them):
    mmder live /dev/video0 --format v4l2 --option video_size=640x480 --audio hw:0 --audio-format alsa --model MODEL
  macOS camera + microphone (one input):
    mmder live "0:0" --format avfoundation --option framerate=30 --model MODEL
  Windows camera + microphone (one input):
    mmder live "video=Integrated Camera:audio=Microphone Array" --format dshow --model MODEL

Each window is printed as it completes, with its latency (from the moment the stream passed the window's end to its
result); when the model is slower than the stream, windows are skipped and counted. Ctrl-C stops, with the summary."""


def _build_parser(command: str) -> _Parser:
    dataclass_type, description = COMMANDS[command]
    parser = _Parser(dataclass_type, prog=f"{PROG} {command}", description=description)
    if command == "predict":
        parser.add_argument(
            "files",
            nargs="+",
            metavar="FILE",
            help="Video files, http(s) URLs, folders (their videos, recursively) or @LIST (a text file: one path or "
            "URL per line).",
        )
    elif command == "live":
        parser.add_argument(
            "file",
            metavar="SOURCE",
            help="A video file, a stream URL (http, https, rtsp, udp, tcp...) or a device (with --format).",
        )
        parser.add_argument("more_files", nargs="*", help=argparse.SUPPRESS)
        parser.epilog = LIVE_EXAMPLES
    elif command in ("timeline", "inspect"):
        help_ = "A (long) video file or http(s) URL." if command == "timeline" else "A video file."
        parser.add_argument("file", metavar="FILE", help=help_)
        parser.add_argument("more_files", nargs="*", help=argparse.SUPPRESS)  # to say "one file", not "unrecognized"
    else:
        parser.add_argument("output", metavar="OUT", help="Output file, e.g. model.onnx.")
    return parser


def parse_arguments(command: str, argv: Sequence[str]):
    """``(options dataclass, positional namespace)`` of ``mmder <command> argv``; `SystemExit` (2) with argparse's
    usage line and one error line on any argument mistake, before anything is loaded."""
    parser = _build_parser(command)
    # Options and files in any order (``mmder predict a.mp4 --top-k 3 b.mp4``); no ``mmder.args`` file is read.
    namespace, remaining = parser.parse_known_intermixed_args(list(argv))
    if remaining:
        parser.error(parser.unrecognized(remaining))
    if command in ("timeline", "inspect", "live"):
        more_files = namespace.__dict__.pop("more_files")
        if more_files:
            files = [namespace.file, *more_files]
            parser.error(f"argument FILE: one file at a time, got {len(files)}: {' '.join(files)}")
    positional = {name: getattr(namespace, name) for name in ("files", "file", "output") if hasattr(namespace, name)}
    values = {k: v for k, v in vars(namespace).items() if k not in positional}
    values = {k: v for k, v in values.items() if v is not None or k not in ("option", "audio_option")}
    try:
        args = parser.dataclass_type(**values)
    except OptionError as error:
        parser.error(f"argument {parser.argument_name(error.option)}: {error.message}")
    return args, argparse.Namespace(**positional)


def usage() -> str:
    """The ``mmder`` usage: the commands, ``--version`` and where each command's options are listed."""
    lines = [f"usage: {PROG} {{{','.join(COMMANDS)}}} ...", "", "MultiMAE-DER audio-visual emotion recognition.", ""]
    lines += [f"  {name:<9} {help_}" for name, (_, help_) in COMMANDS.items()]
    lines += ["", f"  {'--version':<9} Print the installed version and exit."]
    lines += ["", f"Run '{PROG} COMMAND --help' for a command's options."]
    return "\n".join(lines)


__all__ = [
    "COMMANDS",
    "PROG",
    "ExportArguments",
    "InspectArguments",
    "LiveArguments",
    "ModelArguments",
    "OptionError",
    "PredictArguments",
    "TimelineArguments",
    "parse_arguments",
    "usage",
]
