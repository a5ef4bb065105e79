"""``mmder predict`` decodes the next batch of files while the model runs the current one.

Decoding a clip (torchcodec, face crops, audio pictures) and the forward pass both release the GIL, so one
background thread is enough to hide most of the decoding behind the model. The pipeline itself is unchanged: its
``preprocess`` hands over a file's already computed items (or re-raises the error its decoding raised, the same
exception object), so collation, the forward pass, post-processing, the scores and every error message are exactly
those of a plain ``pipe(paths)``. At most one batch is decoded ahead (bounded memory).
"""

from __future__ import annotations

import threading
from collections import deque
from concurrent.futures import Future, ThreadPoolExecutor
from typing import Any, Iterator, Sequence

from .models.multimae_der.pipeline import MultiMAEDERPipeline


class PrefetchingPipeline(MultiMAEDERPipeline):
    """A :class:`MultiMAEDERPipeline` whose ``preprocess`` of a file queued with :meth:`prefetch` is done ahead.

    Files not queued (and windowed calls) are preprocessed as usual. One lock keeps the processor to one thread at a
    time (the face detector is not shared across threads).
    """

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="mmder-decode")
        self._ahead: dict[str, deque] = {}
        self._processor_lock = threading.Lock()

    def _decode(self, path: str) -> list[dict]:
        with self._processor_lock:
            return list(super().preprocess(path))

    def prefetch(self, paths: Sequence[str]) -> list[Future]:
        """Start decoding ``paths`` in the background, in order; returns their futures (for :meth:`discard`)."""
        futures = []
        for path in paths:
            future = self._executor.submit(self._decode, path)
            self._ahead.setdefault(path, deque()).append(future)
            futures.append(future)
        return futures

    def discard(self, paths: Sequence[str], futures: Sequence[Future]) -> None:
        """Forget what was decoded for a batch and not used (a failed batch is run again one file at a time)."""
        for path, future in zip(paths, futures):
            queue = self._ahead.get(path)
            if queue and future in queue:
                queue.remove(future)
            if not queue:
                self._ahead.pop(path, None)

    def preprocess(self, inputs: Any, **kwargs: Any) -> Iterator[dict]:
        queue = self._ahead.get(inputs) if isinstance(inputs, str) and not kwargs else None
        if queue:
            future = queue.popleft()
            if not queue:
                del self._ahead[inputs]
            yield from future.result()  # re-raises the decoding's own exception
            return
        with self._processor_lock:
            items = list(super().preprocess(inputs, **kwargs))
        yield from items

    def close(self) -> None:
        """Stop the decoding thread (pending decodes are cancelled)."""
        self._executor.shutdown(wait=True, cancel_futures=True)
        self._ahead.clear()


__all__ = ["PrefetchingPipeline"]
