"""Data under several processes, so that every rank takes the same steps: streams split by example, batch by batch
(:class:`ExampleSplitStream`), and map-style shards that each rank builds and reads on its own
(:class:`RankShardBatchSampler`, pre-training).

accelerate splits a `datasets.IterableDataset` that has at least one shard per process BY SHARD. That does not even
out the examples per rank: 3 actor archives over 2 processes give 16 and 8 clips, a RAVDESS fold's 18 training
actors over 4 or 8 GPUs 300/300/240/240 or 180/180/120x6, and unequal clips per shard (bad data skipped, CREMA-D,
published shards) do the same even when the count divides. The ranks then take different numbers of steps and
their collectives drift apart (gloo: "Received data size doesn't match expected size").

Wrapped in :class:`ExampleSplitStream`, a stream is a plain torch `IterableDataset` to accelerate, which then uses
its `IterableDatasetShard`: every rank reads the stream in the same order, keeps its own slice of each global batch
(``per_device_batch_size x world_size`` examples), and the last global batch of a pass is completed with examples
from the first. Every rank therefore takes the same number of steps, and every example is read by exactly one rank
per pass, except the padding of the last batch, which is logged at the end of each pass. Each rank reads (but does
not decode: the collator does) the whole stream.
"""

from __future__ import annotations

import logging
import math
from typing import Any, Iterator

import torch


logger = logging.getLogger(__name__)


class ExampleSplitStream(torch.utils.data.IterableDataset):
    """A `datasets.IterableDataset` that accelerate splits by example with even batches (see the module docstring).

    Args:
        dataset (`datasets.IterableDataset`): the whole stream (NOT already split per rank).
        name (`str`): the split's name, for the log.
        per_device_batch_size (`int`): the batch size of each process.
        world_size (`int`): the number of processes.
        process_index (`int`): this process's rank; rank 0 logs the padding of each pass.
    """

    def __init__(self, dataset: Any, name: str, per_device_batch_size: int, world_size: int, process_index: int):
        self.dataset = dataset
        self.name = name
        self.global_batch_size = per_device_batch_size * world_size
        self.world_size = world_size
        self.process_index = process_index
        self._reported = False

    @property
    def n_shards(self) -> int:
        return self.dataset.n_shards

    def take(self, n: int) -> Any:
        """The stream's first ``n`` examples (a `datasets.IterableDataset`, not split)."""
        return self.dataset.take(n)

    def set_epoch(self, epoch: int) -> None:
        """Forwarded to the stream, so that a shuffled stream reshuffles the same way on every rank."""
        self.dataset.set_epoch(epoch)

    def padding(self, examples: int) -> int:
        """The examples repeated to complete the last global batch of a pass over ``examples``."""
        return -examples % self.global_batch_size

    def __iter__(self) -> Iterator[Any]:
        count = 0
        for example in self.dataset:
            count += 1
            yield example
        repeated = self.padding(count)
        info = torch.utils.data.get_worker_info()
        if self.process_index == 0 and (info is None or info.id == 0):
            where = "" if info is None else f" (DataLoader worker 0 of {info.num_workers})"
            # said once as a warning (the padding is read twice in each pass), then at the info level
            log = logger.info if self._reported else logger.warning
            self._reported = True
            log(
                "The %s stream gave %d examples in this pass%s, split by example among %d processes; %d repeat from "
                "the first batch to complete the last batch of %d",
                self.name,
                count,
                where,
                self.world_size,
                repeated,
                self.global_batch_size,
            )


def split_streams_by_example(splits: dict, per_device_batch_sizes: dict, world_size: int, process_index: int) -> dict:
    """``splits`` with every streaming split wrapped in :class:`ExampleSplitStream` when ``world_size > 1``.

    ``per_device_batch_sizes`` maps a split name to its batch size (the training batch for ``train``, the evaluation
    batch for the others: key ``None``). Map-style splits are returned unchanged (accelerate's sampler evens them).
    """
    import datasets

    if world_size <= 1:
        return dict(splits)
    out = {}
    for name, ds in splits.items():
        if isinstance(ds, datasets.IterableDataset):
            size = per_device_batch_sizes.get(name, per_device_batch_sizes.get(None))
            ds = ExampleSplitStream(ds, name, size, world_size, process_index)
        out[name] = ds
    return out


class RankShardSampler:
    """One process's own contiguous shard in a fresh random order every epoch (``set_epoch``), completed to
    ``ceil(total / world_size)`` indices: a rank whose shard is one clip shorter repeats its first clip once."""

    def __init__(self, num_examples: int, total: int, world_size: int, seed: int):
        self.num_examples, self.seed = num_examples, seed
        self.per_rank = math.ceil(total / world_size)
        if not 0 < num_examples <= self.per_rank:
            raise ValueError(f"a shard of {num_examples} clips cannot be one of {world_size} shards of {total}")
        self.epoch = 0

    def set_epoch(self, epoch: int) -> None:
        self.epoch = epoch

    def __iter__(self):
        generator = torch.Generator().manual_seed(self.seed * 100_003 + self.epoch)
        order = torch.randperm(self.num_examples, generator=generator).tolist()
        return iter(order + order[: self.per_rank - self.num_examples])

    def __len__(self) -> int:
        return self.per_rank


class RankShardBatchSampler:
    """Batches of :class:`RankShardSampler`: every rank yields the same number of batches, as distributed training
    needs. Every clip is read exactly once per epoch when ``world_size`` divides ``total``, and at most one clip per
    rank twice otherwise. ``set_epoch`` reshuffles (accelerate's loader and the `Trainer` call it every epoch)."""

    def __init__(self, num_examples: int, total: int, world_size: int, batch_size: int, seed: int, drop_last=False):
        self.sampler = RankShardSampler(num_examples, total, world_size, seed)
        self.batch_size, self.drop_last = batch_size, drop_last

    def set_epoch(self, epoch: int) -> None:
        self.sampler.set_epoch(epoch)

    def __iter__(self):
        order = list(self.sampler)
        for start in range(0, len(order), self.batch_size):
            batch = order[start : start + self.batch_size]
            if len(batch) == self.batch_size or not self.drop_last:
                yield batch

    def __len__(self) -> int:
        full, rest = divmod(len(self.sampler), self.batch_size)
        return full + int(bool(rest) and not self.drop_last)


__all__ = ["ExampleSplitStream", "RankShardBatchSampler", "RankShardSampler", "split_streams_by_example"]
