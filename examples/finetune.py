#!/usr/bin/env python
"""Fine-tune MultiMAE-DER on an audio-visual emotion corpus with the 🤗 Trainer.

The built-in default (only ``--output_dir`` given) trains a small random model on the synthetic RAVDESS-format
corpus on a CPU in a minute or two:

    python examples/finetune.py --output_dir runs/demo

Every `TrainingArguments` flag works (``--bf16``, ``--push_to_hub``, ``--hub_model_id``, ``--eval_strategy``...), and
the same command runs under ``accelerate launch`` / ``torchrun`` on any number of processes. A recipe
(``--recipe paper|finetune|quick``) sets documented defaults that any flag overrides; see
``mmder_hf.training.RECIPES``. Arguments can also come from one JSON file: ``python examples/finetune.py args.json``.

LoRA (the ``[lora]`` extra, peft): ``--lora_r 8`` trains rank-8 adapters on the encoder's attention
(``--lora_target_modules``, default ``query,value``; ``--lora_alpha`` default 2 x r; ``--lora_dropout`` 0.1) and the
head (``fc_norm`` + ``classifier``), nothing else; start it from a trained checkpoint (``--model_name_or_path``). The
folder then holds the adapters merged into a plain model (loads without peft) and the adapter alone in ``adapter/``
(``PeftModel.from_pretrained(base_model, "<output_dir>/adapter")``); the card states the trainable parameters.

Writes to ``--output_dir``: the model with its code files (loadable with ``trust_remote_code=True``), the processor,
``train_results.json`` / ``eval_results.json`` / ``test_results.json`` / ``all_results.json`` (``eval_war``,
``eval_uar``, ``test_war``, ``test_uar``, per-class recall), ``confusion_matrix.png`` (+ ``.json``) on the test
split, ``README.md`` (the model card) and ``run_args.json``.
"""

from __future__ import annotations

from typing import Optional, Sequence

from mmder_hf.training import parse_args, run_finetuning
from mmder_hf.training.run import end_process_group, setup_run


def main(argv: Optional[Sequence[str]] = None) -> dict:
    model_args, data_args, recipe_args, training_args = parse_args(argv)
    setup_run(model_args, training_args)
    return run_finetuning(model_args, data_args, recipe_args, training_args, argv=argv)


if __name__ == "__main__":
    from mmder_hf.training.run import OtherSettingsError
    from mmder_hf.user_errors import script_errors

    try:
        with script_errors():  # a mistake of the user's: one line and its exit status, no traceback
            try:
                main()
            except OtherSettingsError as error:  # the folder holds another run (another --lora_r, learning rate...)
                raise SystemExit(f"finetune.py: error: {error}") from None
    finally:
        end_process_group()  # a process group left to interpreter exit can abort the process
