"""Rows of an emotion dataset -> model inputs, with the processor running inside DataLoader workers.

Use the collator as ``DataLoader(collate_fn=...)`` / ``Trainer(data_collator=...)``: decoding and audio
images then happen in the workers, in parallel, and the main process only receives tensors. Rows already
preprocessed (``pixel_values`` / ``audio_values`` present, e.g. from
:func:`~mmder_hf.data.preprocess_to_cache`) are only stacked, and rescaled and normalised when they hold
8-bit images.
"""

from __future__ import annotations

import logging
from typing import Any, Optional

import torch

from ..models.multimae_der.media import encoded_media


logger = logging.getLogger(__name__)


def _encoded_source(obj: Any) -> Any:
    """What a value points at: a path / bytes, or the ``{"path", "bytes"}`` a datasets decoder remembers."""
    encoded = encoded_media(obj)
    if encoded is not None:
        return encoded.get("path"), len(encoded.get("bytes") or b"")
    if isinstance(obj, dict):
        return obj.get("path"), len(obj.get("bytes") or b"")
    if isinstance(obj, (str, bytes)):
        return obj
    return object()  # unknown: never equal to anything


def media_source(value: Any) -> Any:
    """A Video/Audio cell as the processor accepts it (decoders, paths and bytes pass through)."""
    if isinstance(value, dict):
        return value.get("bytes") if value.get("bytes") is not None else value.get("path")
    return value


class MultiMAEDERDataCollator:
    """Collate dataset rows into ``pixel_values`` / ``audio_values`` / ``labels`` with a MultiMAE-DER processor.

    Args:
        processor (`MultiMAEDERProcessor`):
            called as ``processor(videos=[...], audio=[...], clip_start=..., clip_end=..., return_tensors="pt")``.
        video_column (`str`, defaults to `"video"`), audio_column (`str`, defaults to `"audio"`):
            media columns. The audio column is passed only when it points at a different file than the video
            (RAVDESS rows point both at the same mp4, whose audio track the processor reads once).
        label_column (`str`, defaults to `"emotion"`):
            class index column, returned as ``labels`` (int64). Missing -> no labels.
        start_column (`str`, defaults to `"start"`), end_column (`str`, defaults to `"end"`):
            optional segment times in seconds (IEMOCAP rows point at the dialog video).
        audio_start_column (`str`, defaults to `"audio_start"`):
            optional time in the video at which a separate audio file begins (IEMOCAP: the utterance wav begins at
            the utterance's start); passed to the processor as ``audio_start``.
        processor_kwargs (`dict`, *optional*):
            more arguments of every processor call (the preprocess cache asks for unnormalised 8-bit images).
        return_face_boxes (`bool`, defaults to `False`):
            also return the processor's ``face_boxes`` (with face cropping); off for training, where the model reads
            only the crops; the preprocess cache keeps them for its no-face report.

    Example:

    ```python
    >>> from torch.utils.data import DataLoader
    >>> collator = MultiMAEDERDataCollator(processor)  # doctest: +SKIP
    >>> loader = DataLoader(ds["train"], batch_size=8, collate_fn=collator, num_workers=2)  # doctest: +SKIP
    ```
    """

    def __init__(
        self,
        processor: Any,
        video_column: str = "video",
        audio_column: Optional[str] = "audio",
        label_column: Optional[str] = "emotion",
        start_column: str = "start",
        end_column: str = "end",
        audio_start_column: str = "audio_start",
        processor_kwargs: Optional[dict] = None,
        return_face_boxes: bool = False,
    ) -> None:
        self.processor = processor
        self.video_column = video_column
        self.audio_column = audio_column
        self.label_column = label_column
        self.start_column = start_column
        self.end_column = end_column
        self.audio_start_column = audio_start_column
        self.processor_kwargs = dict(processor_kwargs or {})
        self.return_face_boxes = return_face_boxes

    def __call__(self, rows: list[dict]) -> dict[str, torch.Tensor]:
        if not rows:
            raise ValueError("empty batch")
        first = rows[0]
        if "pixel_values" in first or "audio_values" in first:
            batch = {}
            for key in ("pixel_values", "audio_values"):
                if key in first:
                    stacked = torch.stack([torch.as_tensor(r[key]) for r in rows])
                    if not stacked.is_floating_point():  # 8-bit clips from the preprocess cache: normalise here
                        stacked = self.processor.rescale_and_normalize(stacked)
                    batch[key] = stacked
        else:
            batch = dict(self.processor(**self._processor_inputs(rows), **self.processor_kwargs, return_tensors="pt"))
            if not self.return_face_boxes:
                batch.pop("face_boxes", None)
        label_key = "labels" if "labels" in first else self.label_column
        if label_key and label_key in first:
            batch["labels"] = torch.as_tensor([int(r[label_key]) for r in rows], dtype=torch.long)
        return batch

    def _processor_inputs(self, rows: list[dict]) -> dict:
        videos = [media_source(r[self.video_column]) for r in rows] if self.video_column in rows[0] else None
        inputs: dict[str, Any] = {}
        if videos is not None:
            inputs["videos"] = videos
        if self.audio_column and self.audio_column in rows[0]:
            audio = [r[self.audio_column] for r in rows]
            separate = videos is None or any(
                _encoded_source(a) != _encoded_source(r[self.video_column]) for a, r in zip(audio, rows)
            )
            if separate:
                inputs["audio"] = [media_source(a) for a in audio]
                if self.audio_start_column in rows[0]:
                    inputs["audio_start"] = [float(r[self.audio_start_column]) for r in rows]
        if self.start_column in rows[0] and self.end_column in rows[0]:
            inputs["clip_start"] = [float(r[self.start_column]) for r in rows]
            inputs["clip_end"] = [float(r[self.end_column]) for r in rows]
        return inputs

    def as_transform(self):
        """A function for ``Dataset.with_transform`` / ``set_transform``: a batch dict of lists -> tensors."""

        def transform(batch: dict) -> dict:
            rows = [dict(zip(batch, values)) for values in zip(*batch.values())]
            return self(rows)

        return transform


__all__ = ["MultiMAEDERDataCollator", "media_source"]
