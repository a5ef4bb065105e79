"""A clip given as a file and as decoded arrays gives the same inputs when the arrays hold the same samples.

The file route reads the audio over the video stream's time span (an AAC track usually runs a few ms past the last
frame, padding its last packet); decoded arrays are taken as they are, frames and waveform spanning the same time.
"""

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
