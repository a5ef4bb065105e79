"""The benchmark scripts' own arithmetic: FLOP counts, peak lookup, paired ratios, and the GPU script end to end
on CPU (the figures themselves are measured by ``python benchmarks/run.py``, not by tests)."""

import json
import os
import subprocess
import sys

import pytest
import torch
from torch.utils.flop_counter import FlopCounterMode

from mmder_hf import MultiMAEDERConfig, MultiMAEDERForVideoClassification


BENCHMARKS = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "benchmarks")
sys.path.insert(0, BENCHMARKS)

import bench_gpu  # noqa: E402
import common  # noqa: E402


def _counted_flops(model, video, audio, labels, training):
    with FlopCounterMode(display=False) as counter:
        out = model(pixel_values=video, audio_values=audio, labels=labels)
        if training:
            out.loss.backward()
    return counter.get_total_flops()


def test_model_flops_match_torch_flop_counter():
    # eager attention: its matmuls are plain bmm, which FlopCounterMode counts on CPU too
    config = MultiMAEDERConfig(
        fusion_strategy="FSLF",
        num_frames=8,
        image_size=48,
        num_labels=8,
        attn_implementation="eager",
        **bench_gpu.SIZES["tiny"],
    )
    model = MultiMAEDERForVideoClassification(config)
    batch = 3
    video, audio = torch.randn(batch, 4, 3, 48, 48), torch.randn(batch, 4, 3, 48, 48)
    labels = torch.tensor([0, 1, 2])
    forward = _counted_flops(model, video, audio, labels, training=False) / batch
    assert bench_gpu.model_flops_per_clip(config, training=False) == pytest.approx(forward, rel=1e-6)
    training = _counted_flops(model, video, audio, labels, training=True) / batch
    assert bench_gpu.model_flops_per_clip(config, training=True) == pytest.approx(training, rel=1e-6)


def test_peak_lookup_by_device_name():
    assert bench_gpu.peak_tflops_for("NVIDIA H100 80GB HBM3") == 989.4
    assert bench_gpu.peak_tflops_for("NVIDIA H100 PCIe") == 756.0
    assert bench_gpu.peak_tflops_for("NVIDIA H100 NVL") == 835.0
    assert bench_gpu.peak_tflops_for("NVIDIA H200") == 989.4
    assert bench_gpu.peak_tflops_for("NVIDIA A100-SXM4-80GB") == 312.0
    assert bench_gpu.peak_tflops_for("Some Future GPU") is None


def test_paired_ratio_cancels_a_slow_spell():
    # the machine is twice as slow during the second half: both contenders slow down together
    samples = {"a": [1.1, 1.1, 2.2, 2.2, 2.2], "b": [1.0, 1.0, 2.0, 2.0, 2.0]}
    assert common.paired_ratio(samples, "a", "b") == pytest.approx(1.1)
    # while a ratio of medians would be thrown off when the spell hits the contenders unevenly
    uneven = {"a": [1.1, 2.2, 2.2, 1.1, 1.1], "b": [1.0, 1.0, 2.0, 2.0, 2.0]}
    assert common.paired_ratio(uneven, "a", "b") == pytest.approx(1.1)


def test_interleaved_samples_runs_every_contender_in_abba_order():
    calls = []
    samples = common.interleaved_samples(
        {"a": lambda: calls.append("a"), "b": lambda: calls.append("b")}, repeats=4, warmup=1
    )
    assert calls == ["a", "b"] + ["a", "b", "b", "a", "a", "b", "b", "a"]
    assert {k: len(v) for k, v in samples.items()} == {"a": 4, "b": 4}


@pytest.mark.skipif(torch.cuda.is_available(), reason="checks the no-GPU path")
def test_run_py_records_the_gpu_benchmark_as_skipped_without_cuda():
    import run

    assert "skipped" in run.run_one("gpu", quick=True)


@pytest.mark.slow
def test_bench_gpu_runs_on_cpu_and_reports_consistent_figures(tmp_path):
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "PYTHONPATH": BENCHMARKS}
    done = subprocess.run(
        [
            sys.executable,
            os.path.join(BENCHMARKS, "bench_gpu.py"),
            "--device",
            "cpu",
            "--quick",
            "--peak_tflops",
            "0.5",
        ],
        capture_output=True,
        text=True,
        env=env,
        cwd=tmp_path,
        timeout=600,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    result = json.loads(done.stdout.strip().splitlines()[-1])
    assert result["benchmark"] == "gpu" and result["device"] == "cpu" and result["peak_bf16_tflops"] == 0.5
    tiny = result["models"]["tiny"]
    assert tiny["config"]["tokens"] == 8 * (32 // 16) ** 2
    for phase in ("train", "inference"):
        figures = tiny[phase]
        assert figures["clips_per_s"] == pytest.approx(tiny["config"]["batch"] / figures["step_s"])
        assert figures["achieved_tflops"] == pytest.approx(figures["model_tflops_per_clip"] * figures["clips_per_s"])
        assert figures["mfu"] == pytest.approx(figures["achieved_tflops"] / 0.5)
    assert 2 * tiny["inference"]["model_tflops_per_clip"] < tiny["train"]["model_tflops_per_clip"]
    assert tiny["train"]["model_tflops_per_clip"] < 3 * tiny["inference"]["model_tflops_per_clip"]
    rates = result["pipeline_clips_per_s_per_core"]
    assert rates["preprocessed_cache"] > rates["on_the_fly_720p"] > 0
    need = result["pipeline_keeps_up"]["tiny_train"]
    assert need["cores_needed_on_the_fly_720p"] == pytest.approx(
        tiny["train"]["clips_per_s"] / rates["on_the_fly_720p"]
    )
    assert need["keeps_up_on_the_fly_720p"] == (need["cores_needed_on_the_fly_720p"] <= result["cpu_cores"])
