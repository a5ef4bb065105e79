"""What our code now takes from dependencies' public APIs, where it relies on more than their names."""

from __future__ import annotations

import math

import torch


# ------------------------------------------------------------------------------------------------------------------
# transformers: MultiMAEDERPipeline batches through ChunkPipeline's own iterator and feature-extractor collation


def test_pipeline_batches_are_plain_concatenations(make_clip):
    """ChunkPipeline's collation pads variable-length tensors; every clip or window here has fixed shapes and a
    batch dim of 1, so a batch must be their exact concatenation (NaN boxes kept), the metadata lists."""
    from inference_helpers import tiny_classifier

    from mmder_hf import MultiMAEDERPipeline, MultiMAEDERProcessor

    model = tiny_classifier()
    processor = MultiMAEDERProcessor.from_model_config(model.config, audio_sample_rate=16000)
    pipe = MultiMAEDERPipeline(model=model, processor=processor, device="cpu")
    clip = make_clip("public_api_batches", num_frames=40, fps=10.0, sample_rate=16000, channels=1)  # 4 s
    items = list(pipe.preprocess(str(clip), window=1.0, stride=1.0))
    assert len(items) == 4
    for index, item in enumerate(items):  # what face_crop adds: one box per frame, NaN where no face was found
        item["face_boxes"] = torch.full((1, 2, 4), math.nan) if index % 2 else torch.rand(1, 2, 4)

    collate = pipe.get_iterator([str(clip)], 0, len(items), {}, {}, {}).loader.loader.collate_fn
    batch = collate(items)
    assert set(batch) == set(items[0])
    for key, value in items[0].items():
        values = [item[key] for item in items]
        if isinstance(value, torch.Tensor):
            expected = torch.cat(values, dim=0)
            assert batch[key].dtype == expected.dtype, key
            torch.testing.assert_close(batch[key], expected, rtol=0, atol=0, equal_nan=True, msg=key)
        else:
            assert batch[key] == values, key
