"""ExampleSplitStream in one process: what accelerate is handed for a stream under several processes.

The multi-process behaviour (equal steps, every clip once per epoch) is trained end to end in test_streaming_ddp.py;
these checks are the fast part: what wraps, what is forwarded, the padding and what rank 0 says.
"""

import datasets
import torch
from accelerate.data_loader import IterableDatasetShard

from mmder_hf.data.distributed import ExampleSplitStream, split_streams_by_example


def _stream(n, shards=3):
    def rows(ids):  # a shard gets a list of id lists
        yield from ({"file": f"c{i}"} for part in ids for i in part)

    ids = list(range(n))
    return datasets.IterableDataset.from_generator(rows, gen_kwargs={"ids": [ids[k::shards] for k in range(shards)]})


def test_only_streams_are_wrapped_and_only_under_several_processes():
    stream, table = _stream(7), datasets.Dataset.from_dict({"file": ["a", "b"]})
    splits = {"train": stream, "validation": _stream(4), "test": table}
    assert split_streams_by_example(splits, {"train": 2, None: 5}, 1, 0) == splits  # one process: unchanged
    assert isinstance(split_streams_by_example(splits, {"train": 2, None: 5}, 2, 0)["train"], ExampleSplitStream)
    out = split_streams_by_example(splits, {"train": 2, None: 5}, 3, 1)
    assert out["test"] is table
    assert isinstance(out["train"], ExampleSplitStream) and out["train"].dataset is stream
    assert isinstance(out["train"], torch.utils.data.IterableDataset)
    assert not isinstance(out["train"], datasets.IterableDataset)  # so accelerate splits it by example
    assert (out["train"].global_batch_size, out["validation"].global_batch_size) == (6, 15)
    assert out["train"].name == "train" and out["train"].process_index == 1 and out["train"].n_shards == 3


def test_every_example_in_order_and_the_padding_of_the_last_batch():
    wrapped = ExampleSplitStream(_stream(7), "train", 2, 2, 0)
    assert [r["file"] for r in wrapped] == [r["file"] for r in _stream(7)]
    assert [wrapped.padding(n) for n in (1, 3, 4, 7, 8, 9)] == [3, 1, 0, 1, 0, 3]
    assert [r["file"] for r in wrapped.take(2)] == [r["file"] for r in _stream(7).take(2)]


def test_each_rank_keeps_its_slot_of_every_batch_with_equal_counts():
    per_rank = [
        [r["file"] for r in IterableDatasetShard(ExampleSplitStream(_stream(7), "train", 2, 2, k), 2, False, 2, k)]
        for k in (0, 1)
    ]
    assert [len(files) for files in per_rank] == [4, 4]  # 7 clips + 1 of padding in batches of 2 x 2
    assert sorted(set(per_rank[0] + per_rank[1])) == sorted(f"c{i}" for i in range(7))


def test_set_epoch_reaches_the_stream_so_shuffles_agree_on_every_rank():
    order = []
    for rank in (0, 1):
        wrapped = ExampleSplitStream(_stream(9).shuffle(seed=3, buffer_size=4), "train", 1, 2, rank)
        wrapped.set_epoch(5)
        order.append([r["file"] for r in wrapped])
    assert order[0] == order[1]
    reference = _stream(9).shuffle(seed=3, buffer_size=4)
    reference.set_epoch(5)
    assert order[0] == [r["file"] for r in reference]
    reference.set_epoch(0)
    assert order[0] != [r["file"] for r in reference]


def test_rank_0_warns_once_then_informs(caplog):
    wrapped = ExampleSplitStream(_stream(7), "validation", 3, 2, 0)
    with caplog.at_level("INFO", logger="mmder_hf.data.distributed"):
        list(wrapped)
        list(wrapped)
    said = [(r.levelname, r.getMessage()) for r in caplog.records]
    text = "The validation stream gave 7 examples in this pass, split by example among 2 processes; 5 repeat"
    assert [level for level, _ in said] == ["WARNING", "INFO"] and all(m.startswith(text) for _, m in said)
    caplog.clear()
    with caplog.at_level("INFO", logger="mmder_hf.data.distributed"):
        list(ExampleSplitStream(_stream(7), "validation", 3, 2, 1))
    assert not caplog.records  # only rank 0 speaks
