"""MultiMAE-DER demo Space: upload or record a video, see its emotions (and, for long videos, their timeline) and
what the model saw (the face frames, cropped around the tracked face when the model's processor crops faces, and the
audio pictures).

The app needs only transformers + torch + torchcodec + gradio: the model folder/repo ships its own code (model,
processor and pipeline), loaded with ``trust_remote_code=True``.

Configuration (command line or environment variables):
    --model / MMDER_MODEL          model folder or Hub id (required: no checkpoint is published yet)
    --window / MMDER_WINDOW        timeline window in seconds (default 3)
    --stride / MMDER_STRIDE        seconds between windows (default 1)
    --long-video / MMDER_LONG_VIDEO_S   videos longer than this get a timeline automatically (default 8)
    --host, --port                 where to serve (gradio's GRADIO_SERVER_NAME / GRADIO_SERVER_PORT also work)
"""

from __future__ import annotations

import argparse
import os

import gradio as gr
import pandas as pd
from transformers import pipeline


def parse_args(argv=None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description="MultiMAE-DER emotion recognition demo")
    parser.add_argument(
        "--model",
        default=os.environ.get("MMDER_MODEL"),
        help="model folder or Hub id saved by mmder-hf (or set MMDER_MODEL)",
    )
    parser.add_argument("--window", type=float, default=float(os.environ.get("MMDER_WINDOW", 3.0)))
    parser.add_argument("--stride", type=float, default=float(os.environ.get("MMDER_STRIDE", 1.0)))
    parser.add_argument("--long-video", type=float, default=float(os.environ.get("MMDER_LONG_VIDEO_S", 8.0)))
    parser.add_argument("--host", default=os.environ.get("GRADIO_SERVER_NAME", "0.0.0.0"))
    parser.add_argument("--port", type=int, default=int(os.environ.get("GRADIO_SERVER_PORT", 7860)))
    args = parser.parse_args(argv)
    if not args.model:
        parser.error(
            "no model given: pass --model <folder or Hub id> (a model saved by examples/finetune.py, e.g. "
            "runs/demo/fslf) or set MMDER_MODEL; in a Space, set MMDER_MODEL in its settings"
        )
    return args


def video_duration(path: str) -> float:
    """Duration in seconds from the container header (nothing is decoded)."""
    from torchcodec.decoders import VideoDecoder

    try:
        return float(VideoDecoder(path, seek_mode="approximate").metadata.duration_seconds or 0.0)
    except Exception:  # noqa: BLE001 - an unreadable file is reported by the pipeline itself
        return 0.0


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


def build_demo(args: argparse.Namespace) -> gr.Blocks:
    pipe = pipeline(model=args.model, trust_remote_code=True)
    labels = [pipe.model.config.id2label[i] for i in range(pipe.model.config.num_labels)]
    warning = training_data_warning(args.model, pipe.model.config)

    def analyze(video: str, timeline_mode: str):
        if not video:
            raise gr.Error("Upload or record a video first.")
        try:
            predictions = pipe(video, top_k=len(labels))
            duration = video_duration(video)
            want_timeline = timeline_mode == "always" or (timeline_mode == "auto" and duration > args.long_video)
            timeline = pipe(video, window=args.window, stride=args.stride, batch_size=8) if want_timeline else []
            seen, face_boxes = model_view(pipe.processor, video)
        except ValueError as error:  # MediaError: the message names the file and the problem
            raise gr.Error(str(error).replace(str(video), os.path.basename(str(video))))
        bars = pd.DataFrame({"emotion": [p["label"] for p in predictions], "score": [p["score"] for p in predictions]})
        rows = [
            {"time (s)": (w["start"] + w["end"]) / 2, "emotion": label, "probability": w["scores"][label]}
            for w in timeline
            for label in labels
        ]
        curve = pd.DataFrame(rows, columns=["time (s)", "emotion", "probability"])
        summary = {
            "duration_s": round(duration, 3),
            "predictions": predictions,
            "timeline": [{k: w[k] for k in ("start", "end", "label", "score")} for w in timeline],
            "face_crop": bool(getattr(pipe.processor, "face_crop", False)),
            "face_boxes": face_boxes,
        }
        if warning:
            summary["warning"] = warning
        return bars, gr.update(value=curve, visible=bool(timeline)), seen, summary

    with gr.Blocks(title="MultiMAE-DER: emotions in video") as demo:
        gr.Markdown(
            "# MultiMAE-DER: audio-visual emotion recognition\n"
            "Upload or record a video with a face and speech. One VideoMAE encoder reads face frames and audio "
            "MFCC pictures fused into one clip. Long videos also get an emotion timeline "
            f"({args.window:g} s windows every {args.stride:g} s)."
        )
        if warning:
            gr.Markdown(f"> ⚠️ **{warning}.**", elem_id="training-data-warning")
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
                seen = gr.Gallery(label="What the model saw: face frames, then audio pictures", columns=8, height=260)
                details = gr.JSON(label="Raw output")
        outputs = [bars, curve, seen, details]
        button.click(analyze, inputs=[video, timeline_mode], outputs=outputs, api_name="predict")
    return demo


if __name__ == "__main__":
    arguments = parse_args()
    build_demo(arguments).queue(max_size=16).launch(server_name=arguments.host, server_port=arguments.port)
