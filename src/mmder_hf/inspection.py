"""What the model reads from a clip, drawn: the sampled source frames with the tracked face box and the square that
was cropped, the face frames as the model gets them, and the audio pictures (``mmder inspect``, the Space)."""

from __future__ import annotations

import logging
import os
from pathlib import Path
from typing import Any, Optional, Union

import numpy as np


logger = logging.getLogger(__name__)


def model_inputs(source: Any, processor: Any) -> dict:
    """The processor's 8-bit inputs for ``source`` and the source frames they come from, from ONE decode of it.

    Returns:
        `dict` with ``frames`` (`(T, H, W, 3)` uint8 sampled source frames, as displayed), ``video`` (`(T, S, S, 3)`
        uint8 face frames), ``audio`` (`(A, S, S, 3)` uint8 audio pictures), ``face_boxes`` (`(T, 4)` float, NaN where
        no face was found, or `None` without face cropping) and ``crop_boxes`` (`(T, 4)` int squares cut from the
        frames, or `None`).
    """
    from .models.multimae_der.faces import fill_track, square_crop_boxes

    # One decode serves the drawing and the model's inputs: the processor's own parts, as its call chains them.
    video_part, audio_part = processor.video_processor, processor.feature_extractor
    n_video, n_audio = processor.num_video_frames, processor.num_audio_frames
    clip = video_part.read_clip(source, n_video, audio_sample_rate=processor.audio_sample_rate if n_audio else None)
    empty = np.zeros((0, processor.image_size, processor.image_size, 3), np.uint8)
    frames, video, audio, boxes, crops = empty, empty, empty, None, None
    if n_video:
        frames = clip.frames.permute(0, 2, 3, 1).numpy()
        images, boxes = video_part.frames_to_images(clip.frames, clip.name)
        video = images.permute(0, 2, 3, 1).numpy().astype(np.uint8)
        boxes = None if boxes is None else boxes.numpy()
    if n_audio:
        audio = audio_part.waveform_to_images(clip.waveform, n_audio).permute(0, 2, 3, 1).numpy().astype(np.uint8)
    if boxes is not None and not np.isnan(boxes[:, 0]).all():
        crops = square_crop_boxes(fill_track(boxes.astype(np.float64)), processor.face_margin, *frames.shape[1:3])

    return {"frames": frames, "video": video, "audio": audio, "face_boxes": boxes, "crop_boxes": crops}


def plot_model_inputs(
    source: Any,
    processor: Any,
    path: Optional[Union[str, os.PathLike]] = None,
    title: Optional[str] = None,
    dpi: int = 100,
) -> Any:
    """Draw :func:`model_inputs`: source frames with the face box (green) and the crop (yellow, dashed; the whole
    frame when no face was found), then the face frames, then the audio pictures, one column per sampled frame.

    Returns:
        The matplotlib ``Figure`` when ``path`` is `None`, else the `Path` written (PNG by extension).
    """
    from matplotlib.figure import Figure
    from matplotlib.patches import Rectangle

    inputs = model_inputs(source, processor)
    frames, boxes, crops = inputs["frames"], inputs["face_boxes"], inputs["crop_boxes"]
    columns = max(len(frames), len(inputs["audio"]))
    rows = [("source frames", frames), ("face frames (model input)", inputs["video"])]
    rows.append(("audio pictures (model input)", inputs["audio"]))
    rows = [row for row in rows if len(row[1])]
    aspect = frames.shape[1] / frames.shape[2] if len(frames) else 1.0
    heights = [aspect if images is frames else 1.0 for _, images in rows]
    figure = Figure(figsize=(1.6 * columns, 1.6 * sum(heights) + 0.6))
    grid = figure.add_gridspec(len(rows), columns, height_ratios=heights, hspace=0.25, wspace=0.05)
    for r, (label, images) in enumerate(rows):
        for c in range(columns):
            axis = figure.add_subplot(grid[r, c])
            axis.set_xticks([])
            axis.set_yticks([])
            if c == 0:
                axis.set_ylabel(label, fontsize=7)
            if c >= len(images):
                axis.axis("off")
                continue
            axis.imshow(images[c])
            if images is frames and boxes is not None:
                if crops is not None:
                    x0, y0, x1, y1 = crops[c]
                    axis.add_patch(Rectangle((x0, y0), x1 - x0, y1 - y0, fill=False, ec="yellow", ls="--", lw=1))
                if not np.isnan(boxes[c, 0]):
                    x0, y0, x1, y1 = boxes[c]
                    axis.add_patch(Rectangle((x0, y0), x1 - x0, y1 - y0, fill=False, ec="lime", lw=1.2))
                else:
                    axis.set_title("no face", fontsize=7)
    name = title if title is not None else ""
    if boxes is not None:
        found = int((~np.isnan(boxes[:, 0])).sum())
        name += f"  (face found in {found} of {len(boxes)} frames)"
    else:
        name += "  (whole frames: face_crop is off)"
    figure.suptitle(name.strip(), fontsize=9)
    if path is None:
        return figure
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    figure.savefig(path, dpi=dpi, bbox_inches="tight")
    return path


__all__ = ["model_inputs", "plot_model_inputs"]
