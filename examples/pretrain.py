#!/usr/bin/env python
"""Pre-train the MultiMAE-DER encoder without labels: VideoMAE's masked autoencoder over fused audio-visual clips.

The built-in default (only ``--output_dir`` given) pre-trains a small random model on the training actors of fold 1
of the synthetic corpus, on a CPU in a few minutes:

    python examples/pretrain.py --output_dir runs/pretrained

A folder of talking-face videos (any layout, searched recursively), a Hub dataset (streamed), or a corpus's training
actors (``--dataset_name ravdess --dataset_source /data/RAVDESS --fold 3``: the fold's test actors are never read):

    python examples/pretrain.py --output_dir runs/pretrained --dataset_name videos --dataset_source /data/vox2 \\
        --model_name_or_path MCG-NJU/videomae-base --recipe mae_dfer --bf16

Every `TrainingArguments` flag works, and the same command runs under ``accelerate launch`` / ``torchrun`` on any
number of processes and nodes (each rank reads, and caches, only its own shard of the clips). Then fine-tune:

    python examples/finetune.py --output_dir runs/finetuned --model_name_or_path runs/pretrained

Writes to ``--output_dir``: the masked autoencoder with its code files (``AutoModelForPreTraining`` with
``trust_remote_code=True``), the processor, ``init_results.json`` / ``train_results.json`` / ``eval_results.json``
(``*_loss``, ``*_loss_video``, ``*_loss_audio``), ``loss_curve.png``, ``reconstructions.png`` (and
``reconstructions/step-<N>.png`` after every evaluation), ``README.md`` (the model card) and ``run_args.json``.
"""

from __future__ import annotations

from typing import Optional, Sequence

from mmder_hf.training import parse_pretraining_args, run_pretraining
from mmder_hf.training.run import end_process_group, setup_run


def main(argv: Optional[Sequence[str]] = None) -> dict:
    model_args, data_args, pretrain_args, training_args = parse_pretraining_args(argv)
    setup_run(model_args, training_args)
    return run_pretraining(model_args, data_args, pretrain_args, training_args, argv=argv)


if __name__ == "__main__":
    from mmder_hf.user_errors import script_errors

    try:
        with script_errors():  # a mistake of the user's: one line and its exit status, no traceback
            main()
    finally:
        end_process_group()  # a process group left to interpreter exit can abort the process
