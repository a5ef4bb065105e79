#!/usr/bin/env python
"""The main job, end to end on a CPU: synthetic corpus -> FSLF model and both single-modality baselines -> metrics,
model card, confusion matrix -> one prediction.

    python examples/demo.py --output_dir runs/demo

1. writes the synthetic RAVDESS-format corpus (24 actors x 16 clips; the emotion is a colour cue *and* a pitch cue,
   so video alone can explain at most 50 % of the labels and audio alone 25 %);
2. fine-tunes three small models with ``examples/finetune.py`` (fold 1, recipe ``quick``), sharing one preprocessed
   cache: the fused model (``--fusion_strategy FSLF``, 4 face frames + 4 audio images) and the baselines that see
   exactly the same frames of one modality only (``video`` and ``audio``, 4 frames);
3. prints the three test WAR / UAR side by side and writes them to ``<output_dir>/comparison.json``;
4. predicts the emotion of one test clip with the fused model through the ``transformers`` pipeline.

Any other flag is passed to every ``finetune.py`` run (e.g. ``--num_train_epochs 20``).
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import time
import zipfile
from typing import Optional, Sequence

import finetune  # examples/finetune.py, beside this script (the script's folder is on sys.path)


RUNS = (("FSLF", 8), ("video", 4), ("audio", 4))


def parse_args(argv: Optional[Sequence[str]] = None):
    parser = argparse.ArgumentParser(
        description=__doc__.split("\n\n")[0], formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--output_dir", default="runs/demo", help="One sub-folder per model, plus comparison.json.")
    parser.add_argument(
        "--corpus_dir", default=None, help="Where the synthetic corpus is written (default: the cache)."
    )
    parser.add_argument(
        "--cache_dir", default=None, help="datasets / preprocessing cache (default ~/.cache/mmder_hf)."
    )
    parser.add_argument("--num_actors", type=int, default=24)
    parser.add_argument("--clips_per_actor", type=int, default=16)
    return parser.parse_known_args(argv)


def main(argv: Optional[Sequence[str]] = None) -> dict:
    args, extra = parse_args(argv)
    started = time.time()
    logging.basicConfig(
        level=logging.INFO, format="%(asctime)s - %(levelname)s - %(name)s - %(message)s", datefmt="%H:%M:%S"
    )
    if "OMP_NUM_THREADS" not in os.environ:
        import torch

        torch.set_num_threads(1)  # tiny models: threads cost more than they give

    from mmder_hf.data import make_synthetic_corpus
    from mmder_hf.data.loading import DEFAULT_CACHE_DIR

    cache_dir = args.cache_dir or DEFAULT_CACHE_DIR
    corpus = args.corpus_dir or os.path.join(cache_dir, f"synthetic_ravdess_{args.num_actors}x{args.clips_per_actor}")
    make_synthetic_corpus(corpus, num_actors=args.num_actors, clips_per_actor=args.clips_per_actor, num_workers=2)

    results = {}
    for strategy, num_frames in RUNS:
        out = os.path.join(args.output_dir, strategy.lower())
        run_argv = [
            "--output_dir",
            out,
            "--dataset_source",
            corpus,
            "--cache_dir",
            cache_dir,
            "--fusion_strategy",
            strategy,
            "--num_frames",
            str(num_frames),
            "--disable_tqdm",
            "true",
            "--save_total_limit",
            "1",
            *extra,
        ]
        metrics = finetune.main(run_argv)
        results[strategy] = {k: metrics.get(k) for k in ("test_war", "test_uar", "eval_war", "eval_uar")}
        results[strategy]["output_dir"] = out

    # ------------------------------------------------------------------------------------- one prediction
    clip = os.path.join(args.output_dir, "example_clip.mp4")
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
    with open(os.path.join(args.output_dir, "comparison.json"), "w") as f:
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
    main()
