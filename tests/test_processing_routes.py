"""A clip given as a file and as decoded arrays gives the same inputs when the arrays hold the same samples.

The file route reads the audio over the video stream's time span (an AAC track usually runs a few ms past the last
frame, padding its last packet); decoded arrays are taken as they are, frames and waveform spanning the same time.
"""

from pathlib import Path

import numpy as np
import torch

from mmder_hf import MultiMAEDERProcessor
from mmder_hf.data.media_writing import write_clip


def test_file_and_decoded_arrays_agree_on_the_same_samples(tmp_path):
    from torchcodec.decoders import AudioDecoder, VideoDecoder

    frames = np.random.default_rng(0).integers(0, 255, (45, 36, 64, 3)).astype(np.uint8)
    rate = 48000
    t = np.arange(3 * rate) / rate
    wave = np.stack([0.4 * np.sin(2 * np.pi * (300 + 900 * t) * t), 0.3 * np.sin(2 * np.pi * 500 * t)])
    path = write_clip(tmp_path / "clip.mp4", frames, 15, audio=wave.astype(np.float32), sample_rate=rate)
    processor = MultiMAEDERProcessor(image_size=32, num_frames=8)
    from_file = processor(videos=path)

    video, audio = VideoDecoder(path), AudioDecoder(path)
    samples = audio.get_all_samples()
    assert samples.data.shape[1] > 3 * rate  # the AAC track runs past the video's 3 s
    span = video.metadata.end_stream_seconds - video.metadata.begin_stream_seconds
    decoded = video[:].data.permute(0, 2, 3, 1).numpy()
    same_span = samples.data[:, : round(span * samples.sample_rate)].numpy()
    from_arrays = processor(videos=decoded, audio=same_span, sampling_rate=samples.sample_rate)
    for key in ("pixel_values", "audio_values"):
        assert torch.equal(from_file[key], from_arrays[key]), key
    # the whole track (8 ms longer) is a different input: its windows start and end elsewhere
    longer = processor(videos=decoded, audio=samples.data.numpy(), sampling_rate=samples.sample_rate)
    assert torch.equal(longer["pixel_values"], from_file["pixel_values"])
    assert not torch.equal(longer["audio_values"], from_file["audio_values"])


def test_audio_baseline_is_served_the_samples_the_cache_trained_it_on(make_clip, tmp_path):
    """Training reads a clip through the preprocess cache, which decodes frames and audio together (the audio over
    the video stream's span); serving the ``audio`` baseline reads the file's audio alone. Both must read the same
    samples even when the audio track outlasts the video (here by 0.6 s)."""
    import datasets
    from torchcodec.decoders import AudioDecoder, VideoDecoder

    from mmder_hf.data import MultiMAEDERDataCollator, preprocess_to_cache

    path = str(make_clip("audio_outlasts_video", num_frames=50, fps=25, audio_duration=2.6))
    video_end = VideoDecoder(path).metadata.end_stream_seconds
    assert video_end == 2.0 and AudioDecoder(path).metadata.duration_seconds > 2.5
    processor = MultiMAEDERProcessor(fusion_strategy="audio", num_frames=2, image_size=32)
    dataset = datasets.DatasetDict({"test": datasets.Dataset.from_dict({"video": [path], "emotion": [0]})})
    cached = preprocess_to_cache(dataset, processor, str(tmp_path / "cache"), batch_size=1)
    trained = MultiMAEDERDataCollator(processor)([cached["test"][0]])["audio_values"]
    served = processor(videos=path)["audio_values"]
    assert served.shape == (1, 2, 3, 32, 32)
    assert torch.equal(trained, served)
    for other in (processor(audio=path), processor(videos=Path(path).read_bytes())):  # other ways to give it
        assert torch.equal(other["audio_values"], served)
    # what both read: the samples played during the video's 2 s, not the whole 2.6 s track
    samples = AudioDecoder(path).get_samples_played_in_range(0.0, video_end)
    span = processor(audio=samples.data.numpy(), sampling_rate=samples.sample_rate)["audio_values"]
    assert torch.equal(span, served)
    whole = AudioDecoder(path).get_all_samples()
    longer = processor(audio=whole.data.numpy(), sampling_rate=whole.sample_rate)["audio_values"]
    assert not torch.equal(longer, served)
