"""Cost of MultiMAE-DER's fusion, for every strategy: MultiMAEDERForVideoClassification vs transformers'
VideoMAEForVideoClassification of the same size on the same number of tokens, given the already-fused clip.

    python benchmarks/bench_fusion_overhead.py [--quick]

For each strategy (FSLF, FFLS, OFOS, RFAS, CFAS, SFAS) the model fuses its video frames and audio images itself
(concatenation in time, interleaving, a random order, CFAS's stack-and-resize, SFAS's sum), then runs the VideoMAE
encoder; the reference runs the same encoder on a clip of the fused shape. Each strategy is timed against the
reference after a warm-up, interleaved with it (ABBA: strategy, reference, reference, strategy, ...), one thread;
ratios are of medians (the median of per-round ratios is in the JSON beside them):

- training steps (forward, backward, AdamW step): ``fusion_overhead_train`` per strategy, their worst is
  ``fusion_overhead``;
- inference forwards (``torch.no_grad``): ``fusion_overhead_forward`` per strategy;
- FSLF with eager attention and with activation checkpointing, each against FSLF's plain training step.

Peak process memory of each variant's training step (VmHWM of a fresh process that built the model and inputs,
then ran two steps) is measured per variant, including FSLF with activation checkpointing.
"""

from __future__ import annotations

import argparse

import torch
from common import (
    PEAK_MEMORY_FLAG,
    compare,
    emit,
    paired_ratio,
    peak_memory_per_variant,
    ratio,
    report_peak_memory,
)
from transformers import VideoMAEConfig, VideoMAEForVideoClassification

from mmder_hf import MultiMAEDERConfig, MultiMAEDERForVideoClassification


STRATEGIES = ("FSLF", "FFLS", "OFOS", "RFAS", "CFAS", "SFAS")
EXTRAS = ("FSLF_eager", "FSLF_checkpointed")
MEMORY_VARIANTS = ("videomae", *STRATEGIES, "FSLF_checkpointed")


def model_size(quick: bool) -> dict:
    size = dict(
        image_size=64,
        patch_size=16,
        num_frames=8,
        hidden_size=192,
        num_hidden_layers=4,
        num_attention_heads=3,
        intermediate_size=768,
        num_labels=8,
    )
    if not quick:
        size.update(image_size=112, num_frames=16, num_hidden_layers=12)
    return size


class Setup:
    """The models, their optimizers and inputs; every model starts from the same weights."""

    def __init__(self, size: dict, batch: int, variants=("videomae", *STRATEGIES, *EXTRAS)):
        torch.manual_seed(0)
        self.size, self.batch = size, batch
        template = VideoMAEForVideoClassification(VideoMAEConfig(**size)).train()
        self.models, self.inputs = {}, {}
        frames, pixels = size["num_frames"], (3, size["image_size"], size["image_size"])
        self.labels = torch.randint(0, size["num_labels"], (batch,))
        for name in variants:
            if name == "videomae":
                model = template
                self.inputs[name] = {"pixel_values": torch.randn(batch, frames, *pixels)}
            else:
                strategy = name.split("_")[0]
                extra = {"attn_implementation": "eager"} if name.endswith("_eager") else {}
                config = MultiMAEDERConfig(fusion_strategy=strategy, **size, **extra)
                model = MultiMAEDERForVideoClassification(config).train()
                model.load_state_dict(template.state_dict())
                if name.endswith("_checkpointed"):
                    model.activation_checkpointing_enable()
                self.inputs[name] = {
                    "pixel_values": torch.randn(batch, config.num_video_frames, *pixels),
                    "audio_values": torch.randn(batch, config.num_audio_frames, *pixels),
                }
            self.models[name] = model
        self.optimizers = {name: torch.optim.AdamW(m.parameters(), lr=1e-4) for name, m in self.models.items()}

    def train_step(self, name: str):
        def step():
            self.optimizers[name].zero_grad(set_to_none=True)
            self.models[name](**self.inputs[name], labels=self.labels).loss.backward()
            self.optimizers[name].step()

        return step

    def forward(self, name: str):
        def run():
            with torch.no_grad():
                return self.models[name](**self.inputs[name]).logits

        return run


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--quick", action="store_true", help="small model, few repetitions")
    parser.add_argument(PEAK_MEMORY_FLAG, choices=MEMORY_VARIANTS, help="(internal) report one variant's peak memory")
    args = parser.parse_args()
    size = model_size(args.quick)
    batch, repeats = (4, 40) if args.quick else (8, 80)
    torch.set_num_threads(1)  # one core each: less noise from whatever else the machine runs

    if args.peak_memory_of:  # a child of peak_memory_per_variant: build only this variant
        setup = Setup(size, batch, variants=(args.peak_memory_of,))
        report_peak_memory(setup.train_step(args.peak_memory_of))
        return

    setup = Setup(size, batch)
    # One ABBA comparison per pair, so that each strategy alternates with the plain encoder step by step.
    pairs = {s: (s, "videomae") for s in STRATEGIES}
    pairs.update(FSLF_eager=("FSLF_eager", "FSLF"), FSLF_checkpointed=("FSLF_checkpointed", "FSLF"))
    train = {key: compare({n: setup.train_step(n) for n in pair}, repeats) for key, pair in pairs.items()}
    forward = {s: compare({n: setup.forward(n) for n in (s, "videomae")}, repeats) for s in STRATEGIES}
    per_strategy_train = {s: ratio(train[s], s, "videomae") for s in STRATEGIES}
    memory = peak_memory_per_variant(__file__, MEMORY_VARIANTS, ["--quick"] if args.quick else [])
    tokens = (size["num_frames"] // 2) * (size["image_size"] // size["patch_size"]) ** 2
    emit(
        {
            "benchmark": "fusion_overhead",
            "config": {**size, "batch": batch, "tokens": tokens},
            "timing": {"train_step": train, "forward": forward},
            "train_clips_per_s": {s: batch / train[s]["median_s"][s] for s in STRATEGIES},
            "fusion_overhead": max(per_strategy_train.values()),
            "fusion_overhead_worst_strategy": max(per_strategy_train, key=per_strategy_train.get),
            "fusion_overhead_train": per_strategy_train,
            "fusion_overhead_train_paired": {
                s: paired_ratio(train[s]["samples_s"], s, "videomae") for s in STRATEGIES
            },
            "fusion_overhead_forward": {s: ratio(forward[s], s, "videomae") for s in STRATEGIES},
            "eager_vs_sdpa": ratio(train["FSLF_eager"], "FSLF_eager", "FSLF"),
            "activation_checkpointing_time_ratio": ratio(train["FSLF_checkpointed"], "FSLF_checkpointed", "FSLF"),
            "peak_memory_per_variant": memory,
        }
    )


if __name__ == "__main__":
    main()
