"""IEMOCAP from the release folder, through the real builder, collator and processor.

Rows point at the dialog video with the utterance's times in it, and at the utterance's own wav, which begins at
that utterance's start: the frames must come from the dialog at those times, the audio from the whole utterance wav.
"""

import numpy as np
import pytest
import torch

from mmder_hf import MultiMAEDERDataCollator, MultiMAEDERProcessor, load_emotion_dataset
from mmder_hf.data.media_writing import write_clip


LABELS = ("neu", "hap", "ang", "sad")
FREQUENCIES = (300.0, 700.0, 1500.0, 3100.0)


@pytest.fixture(scope="module")
def release(tmp_path_factory):
    """5 sessions, one 4 s dialog each with 4 one-second utterances; utterance i: colour step i, its own tone."""
    import wave

    root = tmp_path_factory.mktemp("iemocap_release") / "IEMOCAP_full_release"
    rate = 16000
    for s in range(1, 6):
        dialog = f"Ses0{s}F_script01"
        base = root / f"Session{s}"
        for folder in ("dialog/avi/DivX", "dialog/EmoEvaluation", f"sentences/wav/{dialog}"):
            (base / folder).mkdir(parents=True)
        frames = np.stack([np.full((32, 48, 3), 50 * (i + 1), dtype=np.uint8) for i in range(4) for _ in range(10)])
        write_clip(base / "dialog" / "avi" / "DivX" / f"{dialog}.avi", frames, 10)  # 4 s at 10 fps
        lines = ["% [START_TIME - END_TIME] TURN_NAME EMOTION [V, A, D]", ""]
        for i, label in enumerate(LABELS):
            utt = f"{dialog}_{'FM'[i % 2]}{i:03d}"
            lines += [f"[{i:.4f} - {i + 1:.4f}]\t{utt}\t{label}\t[2.5000, 2.5000, 2.5000]", ""]
            t = np.arange(rate) / rate
            pcm = (0.4 * np.sin(2 * np.pi * FREQUENCIES[i] * t) * 32767).astype("<i2")
            with wave.open(str(base / "sentences" / "wav" / dialog / f"{utt}.wav"), "wb") as out:
                out.setnchannels(1), out.setsampwidth(2), out.setframerate(rate)
                out.writeframes(pcm.tobytes())
        (base / "dialog" / "EmoEvaluation" / f"{dialog}.txt").write_text("\n".join(lines))
    return root


def test_release_rows_give_the_dialog_frames_and_the_whole_utterance_audio(release, tmp_path):
    ds = load_emotion_dataset("iemocap", source=str(release), fold=3, cache_dir=str(tmp_path / "hf"))
    test = ds["test"].sort("start")
    assert len(test) == 4 and [row["start"] for row in test] == [0.0, 1.0, 2.0, 3.0]
    processor = MultiMAEDERProcessor(image_size=32, num_frames=4)  # FSLF: 2 frames + 2 audio images
    batch = MultiMAEDERDataCollator(processor)([test[i] for i in range(4)])  # the real path: no stand-in
    assert batch["pixel_values"].shape == (4, 2, 3, 32, 32) and batch["audio_values"].shape == (4, 2, 3, 32, 32)
    wav_dir = release / "Session3" / "sentences" / "wav" / "Ses03F_script01"
    dialog = str(release / "Session3" / "dialog" / "avi" / "DivX" / "Ses03F_script01.avi")
    for i, row in enumerate(test):
        # audio: exactly the pictures of the whole utterance wav (nothing shifted, nothing cut)
        alone = MultiMAEDERProcessor(image_size=32, num_frames=2, fusion_strategy="audio")
        expected_audio = alone(audio=str(wav_dir / f"{row['utterance_id']}.wav"))["audio_values"][0]
        assert torch.equal(batch["audio_values"][i], expected_audio), row["utterance_id"]
        # video: the dialog's frames at the utterance's times (colour step i)
        only_video = MultiMAEDERProcessor(image_size=32, num_frames=2, fusion_strategy="video")
        expected_video = only_video(videos=dialog, clip_start=row["start"], clip_end=row["end"])["pixel_values"][0]
        assert torch.equal(batch["pixel_values"][i], expected_video), row["utterance_id"]
    # each utterance's own tone: the four audio pictures differ from each other
    flat = batch["audio_values"].flatten(1)
    assert all(not torch.equal(flat[i], flat[j]) for i in range(4) for j in range(i + 1, 4))
