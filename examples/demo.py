#!/usr/bin/env python
"""The main job, end to end on a CPU: synthetic corpus -> FSLF model and both single-modality baselines -> metrics,
model card, confusion matrix -> one prediction.

    python examples/demo.py --output_dir runs/demo

1. writes the synthetic RAVDESS-format corpus (24 actors x 16 clips; the emotion is a colour cue *and* a pitch cue,
   so video alone can explain at most 50 % of the labels and audio alone 25 %);
2. fine-tunes three small models as ``examples/finetune.py`` does (fold 1, recipe ``quick``), sharing one preprocessed
   cache: the fused model (``--fusion_strategy FSLF``, 4 face frames + 4 audio images) and the baselines that see
   exactly the same frames of one modality only (``video`` and ``audio``, 4 frames);
3. prints the three test WAR / UAR side by side and writes them to ``<output_dir>/comparison.json``;
4. predicts the emotion of one test clip with the fused model through the ``transformers`` pipeline.

Every flag of ``finetune.py`` works here too and applies to every run (e.g. ``--num_train_epochs 20``).
"""

from __future__ import annotations

import dataclasses
import json
import os
import sys
import time
import zipfile
from dataclasses import dataclass, field
from typing import Optional, Sequence

from transformers import TrainingArguments

from mmder_hf.training import RECIPES, DataArguments, ModelArguments, RecipeArguments, run_finetuning
from mmder_hf.training.arguments import parse_with_recipe
from mmder_hf.training.run import setup_run


RUNS = (("FSLF", 8), ("video", 4), ("audio", 4))
#: The demo's own defaults for the fine-tuning flags (any flag given comes after them, and wins).
DEFAULT_FLAGS = ["--output_dir", "runs/demo", "--disable_tqdm", "true", "--save_total_limit", "1"]


@dataclass
class DemoArguments:
    """The synthetic corpus the demo writes."""

    corpus_dir: Optional[str] = field(
        default=None, metadata={"help": "Where the synthetic corpus is written (default: the cache)."}
    )
    num_actors: int = field(default=24, metadata={"help": "Actors of the synthetic corpus."})
    clips_per_actor: int = field(default=16, metadata={"help": "Clips per actor of the synthetic corpus."})


def main(argv: Optional[Sequence[str]] = None) -> dict:
    argv = list(sys.argv[1:] if argv is None else argv)
    types = (DemoArguments, ModelArguments, DataArguments, RecipeArguments, TrainingArguments)
    demo_args, model_args, data_args, recipe_args, training_args = parse_with_recipe(
        types, RecipeArguments, RECIPES, [*DEFAULT_FLAGS, *argv]
    )
    started = time.time()
    setup_run(model_args, training_args)  # mmder_hf's lines at INFO, the libraries' at WARNING
    if "OMP_NUM_THREADS" not in os.environ:
        import torch

        torch.set_num_threads(1)  # tiny models: threads cost more than they give

    from mmder_hf.data import make_synthetic_corpus
    from mmder_hf.data.loading import default_synthetic_corpus

    size = {"num_actors": demo_args.num_actors, "clips_per_actor": demo_args.clips_per_actor}
    if demo_args.corpus_dir:
        corpus = make_synthetic_corpus(demo_args.corpus_dir, num_workers=2, **size)
    else:  # the folder (and so the preprocess cache) finetune.py and pretrain.py read without --dataset_source
        corpus = default_synthetic_corpus(data_args.cache_dir, **size)
    output_dir = training_args.output_dir
    data_args = dataclasses.replace(data_args, dataset_source=corpus)

    results = {}
    for strategy, num_frames in RUNS:
        out = os.path.join(output_dir, strategy.lower())
        metrics = run_finetuning(
            dataclasses.replace(model_args, fusion_strategy=strategy, num_frames=num_frames),
            data_args,
            recipe_args,
            dataclasses.replace(training_args, output_dir=out),
            argv=argv,
        )
        results[strategy] = {k: metrics.get(k) for k in ("test_war", "test_uar", "eval_war", "eval_uar")}
        results[strategy]["output_dir"] = out

    # ------------------------------------------------------------------------------------- one prediction
    clip = os.path.join(output_dir, "example_clip.mp4")
    with zipfile.ZipFile(os.path.join(corpus, "Video_Speech_Actor_01.zip")) as zf:  # actor 1 is in fold 1's test split
        member = next(n for n in sorted(zf.namelist()) if os.path.basename(n).startswith("01-01-05-"))  # angry
        with open(clip, "wb") as f:
            f.write(zf.read(member))
    from transformers import pipeline

    classifier = pipeline(model=results["FSLF"]["output_dir"], trust_remote_code=True)
    prediction = classifier(clip, top_k=3)

    wall = time.time() - started
    summary = {
        "results": results,
        "example_clip": clip,
        "true_label": "angry",
        "prediction": prediction,
        "wall_time_s": round(wall, 1),
    }
    with open(os.path.join(output_dir, "comparison.json"), "w") as f:
        json.dump(summary, f, indent=1)

    print("\nSynthetic corpus, fold 1 test split (video alone can reach at most ~50 % WAR, audio alone ~25 %):")
    print(f"{'model':<8} {'WAR':>7} {'UAR':>7}")
    for strategy, _ in RUNS:
        r = results[strategy]
        print(f"{strategy:<8} {r['test_war']:>7.3f} {r['test_uar']:>7.3f}")
    print(f"\nPrediction for {clip} (true: angry): " + ", ".join(f"{p['label']} {p['score']:.2f}" for p in prediction))
    print(
        f"Model card: {os.path.join(results['FSLF']['output_dir'], 'README.md')}; confusion matrix: "
        f"{os.path.join(results['FSLF']['output_dir'], 'confusion_matrix.png')}"
    )
    print(f"Total wall time: {wall:.0f} s")
    return summary


if __name__ == "__main__":
    from mmder_hf.user_errors import script_errors

    with script_errors():  # a mistake of the user's: one line and its exit status, no traceback
        main()
