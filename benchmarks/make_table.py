"""Render the README's benchmark tables (markdown) from one results JSON written by run.py.

    python benchmarks/make_table.py benchmarks/results/quick-cpu.json [--output table.md]

Every number in the output is read from the JSON; the command, machine and versions that produced it are printed
under the tables. A benchmark the run skipped or that failed shows as such; the GPU rows read "not measured" until
a run on a CUDA machine provides them.
"""

from __future__ import annotations

import argparse
import json
from typing import Optional


# label -> (benchmark, what is compared, how to find its two medians in that benchmark's result)
HEADLINES = {
    "preprocess_vs_decode": (
        "preprocess",
        "processor (clip file -> FSLF inputs) / bare decode of every video and audio frame",
        lambda r: (r["median_s"], "processor", "bare_decode"),
    ),
    "preprocess_vs_original": (
        "preprocess",
        "re-created original audio step / our whole preprocessing",
        lambda r: (r["median_s"], "original_audio", "processor"),
    ),
    "face_crop_on_vs_decode": (
        "face_crop",
        "processor with face cropping / bare decode",
        lambda r: (r["median_s"], "face_crop_on", "bare_decode"),
    ),
    "timeline_vs_decode": (
        "timeline",
        "timeline inputs of a 1-minute 720p video (3 s windows every 1 s, one decode pass) / bare decode",
        lambda r: (r["runs"]["1min"]["timing"]["median_s"], "engine", "bare_decode"),
    ),
    "timeline_speedup_over_per_window": (
        "timeline",
        "the same inputs window by window through seeking decoders / one decode pass",
        lambda r: (r["runs"]["1min"]["timing"]["median_s"], "per_window", "engine"),
    ),
    "startup_import_s": (
        "startup",
        "`import mmder_hf`, fresh process (seconds)",
        lambda r: (r["median_s"], "import mmder_hf", "python -c pass"),
    ),
    "startup_help_s": (
        "startup",
        "`mmder --help`, fresh process (seconds)",
        lambda r: (r["median_s"], "mmder --help", "python -c pass"),
    ),
    "startup_usage_error_s": (
        "startup",
        "`mmder predict` without arguments (usage error, exit 2), fresh process (seconds)",
        lambda r: (r["median_s"], "mmder predict (usage error)", "python -c pass"),
    ),
    "fusion_overhead": (
        "fusion_overhead",
        "training step, worst strategy / VideoMAE on the fused clip",
        lambda r: (
            r["timing"]["train_step"][r["fusion_overhead_worst_strategy"]]["median_s"],
            r["fusion_overhead_worst_strategy"],
            "videomae",
        ),
    ),
    "feature_cache_speedup": (
        "feature_cache",
        "paper recipe naive / with the feature cache",
        lambda r: (r["median_s"], "naive", "fast_path"),
    ),
}
GPU_ROWS = (
    ("gpu_vit-b_train_clips_per_s", "ViT-B training clips/s (bf16, 1568 tokens)"),
    ("gpu_vit-b_train_mfu", "ViT-B training MFU"),
    ("gpu_vit-b_inference_clips_per_s", "ViT-B inference clips/s (bf16, 1568 tokens)"),
    ("gpu_vit-l_train_clips_per_s", "ViT-L training clips/s (bf16, 1568 tokens)"),
    ("gpu_vit-l_train_mfu", "ViT-L training MFU"),
    ("gpu_vit-l_inference_clips_per_s", "ViT-L inference clips/s (bf16, 1568 tokens)"),
)


def _ratio(value: float) -> str:
    return f"{value:.3f}" if abs(value - 1) < 0.1 else f"{value:.2f}"


def _seconds(value: float) -> str:
    return f"{value:.3g} s"


def _mib(value: float) -> str:
    return f"{value:.0f} MiB"


def _status(result: Optional[dict]) -> Optional[str]:
    """Why a benchmark has no figures ("not run", "skipped: ...", "failed"), or None when it has."""
    if result is None:
        return "not run"
    if "skipped" in result:
        return f"skipped: {result['skipped']}"
    if "error" in result:
        return "failed"
    return None


def headline_table(record: dict) -> list[str]:
    summary, results = record["summary"], record["results"]
    lines = ["| figure | what is compared | ratio | medians | target | met |", "|---|---|---|---|---|---|"]
    for label, target in summary["targets"].items():
        benchmark, what, find = HEADLINES.get(label, (None, label, None))
        bound = f"{target['op']} {target['bound']:g}"
        result = results.get(benchmark)
        status = _status(result)
        if status or label not in summary:
            lines.append(f"| `{label}` | {what} | {status or 'not reported'} | | {bound} | |")
            continue
        try:
            medians, numerator, denominator = find(result)
            pair = f"{numerator} {_seconds(medians[numerator])} / {denominator} {_seconds(medians[denominator])}"
        except (KeyError, TypeError):
            pair = ""
        met = "pass" if summary["targets_met"][label] else "**fail**"
        value = _seconds(summary[label]) if label.endswith("_s") else _ratio(summary[label])
        lines.append(f"| `{label}` | {what} | **{value}** | {pair} | {bound} | {met} |")
    gpu = results.get("gpu")
    for key, what in GPU_ROWS:
        value = summary.get(key)
        if value is None:
            lines.append(f"| `{key}` | {what} | not measured | | | |")
        else:
            lines.append(f"| `{key}` | {what} | {value:.3g} | | | |")
    if not any(key in summary for key, _ in GPU_ROWS):
        lines += ["", f"GPU rows: not measured ({_status(gpu) or 'not reported'})."]
    return lines


def details_table(record: dict) -> list[str]:
    results = record["results"]
    rows = []
    pre = results.get("preprocess", {})
    if "median_s" in pre:
        m = pre["median_s"]
        settings = pre.get("original_settings", {})
        rows.append(
            (
                "our processor with the original's audio settings "
                f"({settings.get('audio_sample_rate', '?')} Hz, {settings.get('hop_length_ms', '?')} ms hop)",
                f"{_seconds(m['processor_original_settings'])}: settings account for "
                f"{_ratio(pre['settings_gain'])}x, implementation for {_ratio(pre['implementation_gain'])}x "
                f"of the {_ratio(pre['preprocess_vs_original'])}x",
            )
        )
        rows.append(
            (
                "torchcodec decoding every frame to RGB + all audio / bare decode",
                f"{_ratio(pre['torchcodec_rgb_decode_vs_bare_decode'])}x "
                f"({_seconds(m['torchcodec_rgb_decode'])} vs {_seconds(m['bare_decode'])})",
            )
        )
        memory = pre.get("peak_memory_per_variant", {})
        if memory and all("peak_rss_mib" in v for v in memory.values()):
            text = ", ".join(f"{name} {_mib(v['peak_rss_mib'])}" for name, v in memory.items())
            rows.append(("preprocessing peak process memory (fresh process per variant)", text))
    face = results.get("face_crop", {})
    if "face_crop_off_vs_decode" in face:
        rows.append(("processor without face cropping / bare decode", _ratio(face["face_crop_off_vs_decode"])))
    fusion = results.get("fusion_overhead", {})
    if "fusion_overhead_train" in fusion:
        memory = fusion.get("peak_memory_per_variant", {})
        for strategy, value in fusion["fusion_overhead_train"].items():
            text = f"training step {_ratio(value)}x, inference {_ratio(fusion['fusion_overhead_forward'][strategy])}x"
            if "peak_rss_mib" in memory.get(strategy, {}):
                text += f", peak memory {_mib(memory[strategy]['peak_rss_mib'])}"
            rows.append((f"{strategy} / VideoMAE on the fused clip", text))
        if "peak_rss_mib" in memory.get("videomae", {}):
            rows.append(("VideoMAE training step, peak memory", _mib(memory["videomae"]["peak_rss_mib"])))
        rows.append(("eager / sdpa attention (FSLF training step)", f"{_ratio(fusion['eager_vs_sdpa'])}x"))
        checkpointed = memory.get("FSLF_checkpointed", {})
        text = f"{_ratio(fusion['activation_checkpointing_time_ratio'])}x the step time"
        if "peak_rss_mib" in checkpointed and "peak_rss_mib" in memory.get("FSLF", {}):
            text += (
                f", peak memory {_mib(checkpointed['peak_rss_mib'])} vs {_mib(memory['FSLF']['peak_rss_mib'])} "
                f"({_mib(checkpointed['variant_extra_mib'])} vs {_mib(memory['FSLF']['variant_extra_mib'])} "
                "above setup)"
            )
        rows.append(("activation checkpointing (FSLF training step)", text))
    cache = results.get("feature_cache", {})
    if "max_head_weight_difference" in cache:
        difference = f"{cache['max_head_weight_difference']:g}"
        rows.append(("feature cache: largest head-weight difference, naive vs cached", difference))
    loader = results.get("dataloader", {})
    if "clips_per_s" in loader:
        text = ", ".join(f"{name} {value:.3g}" for name, value in loader["clips_per_s"].items())
        rows.append(("DataLoader clips/s (one pass over the training split)", text))
        sizes = loader.get("cache_bytes", {})
        if "uint8" in sizes and "float32" in sizes:
            rows.append(("8-bit vs float32 cache on disk", f"{sizes['float32'] / sizes['uint8']:.2f}x smaller"))
    onnx = results.get("onnx", {})
    if "ratio_onnxruntime_over_torch" in onnx:
        rows.append(
            (
                f"onnxruntime / torch CPU latency ({onnx['size']}, {onnx['tokens']} tokens, "
                f"batch {onnx['batch_size']})",
                f"{_ratio(onnx['ratio_onnxruntime_over_torch'])}x ({_seconds(onnx['onnxruntime_median_s'])} vs "
                f"{_seconds(onnx['torch_median_s'])}); logits agree within {onnx['max_abs_logit_diff']:.1g}",
            )
        )
    for name, result in results.items():
        status = _status(result)
        if status and name not in ("gpu",):
            rows.append((f"`{name}` benchmark", status))
    lines = ["| measurement | result |", "|---|---|"]
    lines += [f"| {what} | {text} |" for what, text in rows]
    return lines


def provenance(record: dict) -> list[str]:
    m, v = record["machine"], record["versions"]
    cpu = f"{m['cpu']}, {m.get('cpus_usable', m['cpu_count'])} of {m['cpu_count']} cores usable"
    if m.get("gpu"):
        cpu += f", {m['gpu']}"
    installed = ", ".join(f"{name} {version}" for name, version in v.items() if version)
    return [
        f"Command: `{record['command']}` ({record['started_utc']} to {record['finished_utc']}).",
        f"Machine: {cpu}; {m.get('platform', '')}.",
        f"Versions: {installed}.",
    ]


def render(record: dict) -> str:
    return "\n".join([*headline_table(record), "", *details_table(record), "", *provenance(record)]) + "\n"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("results", help="a results JSON written by run.py")
    parser.add_argument("--output", help="write the markdown here instead of printing it")
    args = parser.parse_args()
    with open(args.results) as handle:
        text = render(json.load(handle))
    if args.output:
        with open(args.output, "w") as handle:
            handle.write(text)
    else:
        print(text, end="")


if __name__ == "__main__":
    main()
