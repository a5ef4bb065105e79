"""Private dependency internals we still rely on, each pinned to the installed version of its library.

Each coupling lives in one small function of ours (named in the test). When a dependency is upgraded these tests fail
on purpose: check that the private thing still behaves as asserted (or that a public API now covers it), update the
function, then the pinned version here.
"""

from __future__ import annotations

import pytest


def _pinned(module, expected: str, where: str) -> None:
    version = module.__version__.split("+")[0]
    assert version == expected, (
        f"{module.__name__} is {version}, these pins were checked against {expected}: re-check {where} against the "
        f"new version (or move it to a public API), then update the pinned version in {__name__}"
    )


# ------------------------------------------------------------------------------------------------------------------
# torchcodec: truncation.scanned_container_metadata


def test_torchcodec_scanned_container_metadata_is_still_private(make_clip):
    """After ``seek_mode="exact"``'s packet scan the decoder knows where each stream ends; torchcodec 0.17 gives that
    only through ``torchcodec._core.get_container_metadata(decoder._decoder)``."""
    import torchcodec
    from torchcodec.decoders import VideoDecoder, get_container_metadata

    from mmder_hf.models.multimae_der import truncation

    where = "mmder_hf.models.multimae_der.truncation.scanned_container_metadata"
    _pinned(torchcodec, "0.17.0", where)
    # A Matroska file whose audio (1 s) stops before its video (2 s): the header declares no stream durations.
    path = make_clip("pin_short_audio_mkv", audio_duration=1.0, container="mkv")
    decoder = VideoDecoder(str(path), seek_mode="exact")
    info = truncation.scanned_container_metadata(decoder)
    audio = [stream for stream in info.streams if stream.media_type == "audio"]
    assert len(audio) == 1 and audio[0].duration_seconds_from_header is None
    end = audio[0].begin_stream_seconds + audio[0].duration_seconds
    assert end == pytest.approx(1.0, abs=0.05), f"{where}: the scanned audio stream no longer tells its end"
    assert info.duration_seconds_from_header == pytest.approx(2.0, abs=0.05)
    # Still nothing public gives it: the public call reads the header, without the scan's fields.
    public = [stream for stream in get_container_metadata(str(path)).streams if stream.media_type == "audio"]
    assert getattr(public[0], "duration_seconds", None) is None, (
        f"torchcodec's public get_container_metadata now reports scanned stream durations: {where} may use it"
    )


# ------------------------------------------------------------------------------------------------------------------
# datasets: loading._streaming_source


def test_datasets_streaming_source_is_still_private(tmp_path):
    """A streaming split's builder config and transforms are reachable only through ``IterableDataset._ex_iterable``
    in datasets 5.2: its public ``info`` is the same whatever the builder's config."""
    import datasets

    from mmder_hf.data import loading

    where = "mmder_hf.data.loading._streaming_source"
    _pinned(datasets, "5.2.0", where)

    class Config(datasets.BuilderConfig):
        def __init__(self, source: str = "", **kwargs):
            super().__init__(**kwargs)
            self.source = source

    class Builder(datasets.GeneratorBasedBuilder):
        BUILDER_CONFIG_CLASS = Config

        def _info(self):
            return datasets.DatasetInfo(features=datasets.Features({"n": datasets.Value("int64")}))

        def _split_generators(self, dl_manager):
            return [datasets.SplitGenerator(name="train", gen_kwargs={})]

        def _generate_examples(self):
            yield from ((i, {"n": i}) for i in range(3))

    streams = [
        Builder(cache_dir=str(tmp_path), source=source).as_streaming_dataset(split="train") for source in ("a", "b")
    ]
    assert streams[0].info.config_name == streams[1].info.config_name  # nothing public tells them apart
    sources = [loading._streaming_source(stream) for stream in streams]
    assert [chain for chain, _ in sources] == [["ExamplesIterable"]] * 2, f"{where}: the example iterables changed"
    assert all(config is not None for _, config in sources), f"{where}: the builder is no longer found"
    assert [config[0] for _, config in sources] == ["Builder"] * 2, f"{where}: the builder is no longer found"
    assert [dict(config[1])["source"] for _, config in sources] == ["'a'", "'b'"], f"{where}: its config changed"
    chain, _ = loading._streaming_source(streams[0].skip(1).take(1))
    assert chain == ["TakeExamplesIterable", "SkipExamplesIterable", "ExamplesIterable"], f"{where}: transforms"
