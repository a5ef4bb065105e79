"""MultiMAE-DER: one VideoMAE encoder over a clip in which face frames and audio images are fused.

The model reuses transformers' VideoMAE encoder unchanged (same parameter names, so every VideoMAE checkpoint
loads into it) and adds the fusion step in front of it: the processor returns the video frames and the audio
images separately, and :func:`~mmder_hf.fuse` lays them out on the model's device inside ``forward``.
"""

from __future__ import annotations

import json
import os
import shutil
from pathlib import Path
from typing import Optional

import torch
from torch import nn
from transformers.conversion_mapping import get_checkpoint_conversion_mapping, register_checkpoint_conversion_mapping
from transformers.modeling_outputs import BaseModelOutput, ImageClassifierOutput
from transformers.models.videomae.modeling_videomae import VideoMAEModel, VideoMAEPreTrainedModel
from transformers.utils.generic import can_return_tuple

from .configuration_multimae_der import MultiMAEDERConfig
from .fusion import fuse


# transformers 5 renames VideoMAE's `q_bias` / `v_bias` checkpoint keys while loading (and back while saving),
# but registers the renaming for model_type "videomae" only. Without this line those tensors would be dropped
# silently when a VideoMAE checkpoint is loaded into MultiMAE-DER (they show up as "missing", nothing fails).
register_checkpoint_conversion_mapping(
    MultiMAEDERConfig.model_type, get_checkpoint_conversion_mapping("videomae"), overwrite=True
)


# Saved VideoMAE checkpoints keep the original key names of the query/value biases.
_SAVED_KEY_NAMES = (
    (".attention.attention.q_bias", ".attention.attention.query.bias"),
    (".attention.attention.v_bias", ".attention.attention.value.bias"),
)


def _module_key_names(state_dict):
    """Map saved checkpoint key names (``q_bias`` / ``v_bias``) to this module's parameter names."""
    renamed = type(state_dict)() if isinstance(state_dict, dict) else {}
    for key, value in state_dict.items():
        for saved, module in _SAVED_KEY_NAMES:
            if key.endswith(saved):
                key = key[: -len(saved)] + module
        renamed[key] = value
    return renamed


class MultiMAEDERPreTrainedModel(VideoMAEPreTrainedModel):
    """Shares VideoMAE's weight init and capabilities (sdpa, flex attention, checkpointing, device_map)."""

    config_class = MultiMAEDERConfig
    config: MultiMAEDERConfig
    base_model_prefix = "videomae"
    main_input_name = "pixel_values"

    def load_state_dict(self, state_dict, *args, **kwargs):
        """Also accept a saved checkpoint's raw tensors (``q_bias`` / ``v_bias`` key names).

        ``save_pretrained`` writes VideoMAE's query/value biases under their checkpoint names and ``from_pretrained``
        renames them back, but code that loads the raw file with ``load_state_dict`` (the `Trainer` resuming from a
        checkpoint, for one) does not: without this those biases would silently keep their old values.
        """
        return super().load_state_dict(_module_key_names(state_dict), *args, **kwargs)

    def save_pretrained(self, save_directory, *args, **kwargs):
        """Save as usual; with remote code on, the folder also loads anywhere (see :func:`add_remote_code`).

        This is the one save path of the project: plain saves, `Trainer` checkpoints and pushes all come here.
        """
        result = super().save_pretrained(save_directory, *args, **kwargs)
        if getattr(self, "_auto_class", None) is not None and kwargs.get("is_main_process", True):
            add_remote_code(save_directory)
        return result


#: The task under which the audio-visual pipeline is registered (transformers has no such task); model cards keep
#: the Hub's ``pipeline_tag: video-classification``.
TASK = "audio-visual-emotion-recognition"
_CODE_DIR = Path(__file__).resolve().parent


def add_remote_code(save_directory: str | os.PathLike) -> list[str]:
    """Make a folder saved by ``save_pretrained`` load anywhere with ``trust_remote_code=True``.

    Copies every file of this folder (the files that ship with checkpoints: configuration, modeling, processing,
    fusion, audio features, media reading, pipeline) and records in ``config.json`` the encoder under ``auto_map``
    and the pipeline under ``custom_pipelines``, so that ``AutoModel``, ``AutoModelForVideoClassification``,
    ``AutoProcessor`` and ``pipeline(model=folder, trust_remote_code=True)`` all work without this package.
    Idempotent. Returns the code files written.
    """
    folder = Path(save_directory)
    config_path = folder / "config.json"
    if not config_path.is_file():
        raise FileNotFoundError(f"{config_path} not found: save the model first")
    config = json.loads(config_path.read_text(encoding="utf-8"))
    modeling = Path(__file__).stem
    config["auto_map"] = {**(config.get("auto_map") or {}), "AutoModel": f"{modeling}.MultiMAEDERModel"}
    pipeline = {
        "impl": "pipeline.MultiMAEDERPipeline",
        "pt": ["AutoModelForVideoClassification"],
        "type": "multimodal",
    }
    config["custom_pipelines"] = {**(config.get("custom_pipelines") or {}), TASK: pipeline}
    config_path.write_text(json.dumps(config, indent=2, sort_keys=True) + "\n", encoding="utf-8")
    written = []
    for path in sorted(_CODE_DIR.glob("*.py")):
        if path.name != "__init__.py":
            written.append(shutil.copyfile(path, folder / path.name))
    return [os.fspath(path) for path in written]


class MultiMAEDERModel(MultiMAEDERPreTrainedModel, VideoMAEModel):
    r"""
    The VideoMAE encoder of MultiMAE-DER, with the fusion of video frames and audio images in front of it.

    Parameters keep VideoMAEModel's names (``embeddings.*``, ``encoder.*``), so any VideoMAE checkpoint loads.

    Example:

    ```python
    >>> import torch
    >>> from mmder_hf import MultiMAEDERConfig, MultiMAEDERModel
    >>> config = MultiMAEDERConfig(image_size=32, patch_size=16, num_frames=4, hidden_size=32,
    ...     num_hidden_layers=2, num_attention_heads=2, intermediate_size=64)
    >>> model = MultiMAEDERModel(config)
    >>> out = model(pixel_values=torch.randn(1, 2, 3, 32, 32), audio_values=torch.randn(1, 2, 3, 32, 32))
    >>> list(out.last_hidden_state.shape)
    [1, 8, 32]
    ```
    """

    def fuse(self, pixel_values: Optional[torch.Tensor], audio_values: Optional[torch.Tensor]) -> torch.Tensor:
        """Lay out the two modalities as the config's ``fusion_strategy`` says (see :func:`mmder_hf.fuse`)."""
        generator = None
        if self.config.fusion_strategy == "RFAS" and not self.training:
            # Evaluation must not depend on the global RNG: same batch, same permutations.
            generator = torch.Generator().manual_seed(self.config.rfas_seed)
        dtype = pixel_values.dtype if pixel_values is not None else None
        if self.config.fusion_strategy == "CFAS" and dtype in (torch.float16, torch.bfloat16):
            # torch's antialiased resize has no float16 / bfloat16 kernel on CPU: resize in float32, cast back.
            fused = fuse(pixel_values.float(), None if audio_values is None else audio_values.float(), "CFAS")
            return fused.to(dtype)
        return fuse(
            pixel_values,
            audio_values,
            self.config.fusion_strategy,
            num_frames=self.config.num_frames,
            generator=generator,
        )

    def forward(
        self,
        pixel_values: Optional[torch.Tensor] = None,
        audio_values: Optional[torch.Tensor] = None,
        bool_masked_pos: Optional[torch.BoolTensor] = None,
        **kwargs,
    ) -> BaseModelOutput:
        r"""
        pixel_values (`torch.FloatTensor` of shape `(batch_size, num_video_frames, num_channels, height, width)`):
            Video (face) frames; for ``fusion_strategy="prefused"`` the already fused clip. Not used by ``audio``.
        audio_values (`torch.FloatTensor` of shape `(batch_size, num_audio_frames, num_channels, height, width)`):
            Audio images (MFCC or log-mel pictures). Not used by ``video`` and ``prefused``.
        bool_masked_pos (`torch.BoolTensor` of shape `(batch_size, sequence_length)`, *optional*):
            Masked tubelets, as in VideoMAEModel.
        """
        clip = self.fuse(pixel_values, audio_values)
        return super().forward(clip, bool_masked_pos=bool_masked_pos, **kwargs)


class MultiMAEDERForVideoClassification(MultiMAEDERPreTrainedModel):
    r"""
    MultiMAE-DER with the paper's head: mean over tokens -> LayerNorm (``fc_norm``) -> Linear (``classifier``).

    The head and the encoder use the parameter names of transformers' ``VideoMAEForVideoClassification``, so a
    fine-tuned VideoMAE classifier (for example ``MCG-NJU/videomae-large-finetuned-kinetics``) transfers every
    backbone tensor; pass ``ignore_mismatched_sizes=True`` when ``num_labels`` differs.

    Example:

    ```python
    >>> import torch
    >>> from mmder_hf import MultiMAEDERConfig, MultiMAEDERForVideoClassification
    >>> config = MultiMAEDERConfig(fusion_strategy="FSLF", image_size=32, patch_size=16, num_frames=4,
    ...     hidden_size=32, num_hidden_layers=2, num_attention_heads=2, intermediate_size=64, num_labels=8)
    >>> model = MultiMAEDERForVideoClassification(config)
    >>> video, audio = torch.randn(2, 2, 3, 32, 32), torch.randn(2, 2, 3, 32, 32)
    >>> out = model(pixel_values=video, audio_values=audio, labels=torch.tensor([0, 3]))
    >>> list(out.logits.shape), out.loss.ndim
    ([2, 8], 0)
    ```
    """

    def __init__(self, config: MultiMAEDERConfig):
        super().__init__(config)
        self.num_labels = config.num_labels
        self.videomae = MultiMAEDERModel(config)
        self.fc_norm = nn.LayerNorm(config.hidden_size)
        self.classifier = nn.Linear(config.hidden_size, config.num_labels) if config.num_labels > 0 else nn.Identity()
        self._backbone_frozen = False
        self.post_init()

    def freeze_backbone(self) -> MultiMAEDERForVideoClassification:
        """Freeze the encoder (no gradients) and keep it in eval mode even when ``train()`` is called.

        A frozen encoder then behaves the same in training and evaluation (no dropout, no drop path, fixed RFAS
        permutations), as in the original Keras code where a non-trainable layer runs in inference mode. Only
        ``fc_norm`` and ``classifier`` train: the paper's linear probe.
        """
        self.videomae.requires_grad_(False)
        self._backbone_frozen = True
        return self.train(self.training)

    def train(self, mode: bool = True) -> MultiMAEDERForVideoClassification:
        super().train(mode)
        if self._backbone_frozen:
            self.videomae.eval()
        return self

    def pooled_features(
        self, pixel_values: Optional[torch.Tensor] = None, audio_values: Optional[torch.Tensor] = None, **kwargs
    ) -> torch.Tensor:
        """Mean-pooled encoder tokens, before ``fc_norm``: what a frozen-backbone linear probe trains on."""
        return self._encode(pixel_values, audio_values, **kwargs)[0]

    def _encode(self, pixel_values, audio_values, **kwargs) -> tuple[torch.Tensor, BaseModelOutput]:
        kwargs["return_dict"] = True  # the head reads fields; `forward` turns its own output into a tuple if asked
        outputs = self.videomae(pixel_values=pixel_values, audio_values=audio_values, **kwargs)
        return outputs.last_hidden_state.mean(1), outputs

    @can_return_tuple
    def forward(
        self,
        pixel_values: Optional[torch.Tensor] = None,
        audio_values: Optional[torch.Tensor] = None,
        labels: Optional[torch.LongTensor] = None,
        features: Optional[torch.Tensor] = None,
        **kwargs,
    ) -> ImageClassifierOutput:
        r"""
        pixel_values (`torch.FloatTensor` of shape `(batch_size, num_video_frames, num_channels, height, width)`):
            Video (face) frames, as returned by `MultiMAEDERProcessor`; the fused clip for ``prefused``.
        audio_values (`torch.FloatTensor` of shape `(batch_size, num_audio_frames, num_channels, height, width)`):
            Audio images, as returned by `MultiMAEDERProcessor`.
        labels (`torch.LongTensor` of shape `(batch_size,)`, *optional*):
            Emotion class indices; when given, the output holds the cross-entropy loss.
        features (`torch.FloatTensor` of shape `(batch_size, hidden_size)`, *optional*):
            Precomputed :meth:`pooled_features` instead of clips: the encoder is skipped and only the head runs
            (the frozen-backbone fast path trains on these).
        """
        hidden_states = attentions = None
        if features is None:
            features, outputs = self._encode(pixel_values, audio_values, **kwargs)
            hidden_states, attentions = outputs.hidden_states, outputs.attentions
        logits = self.classifier(self.fc_norm(features))
        loss = None
        if labels is not None:
            loss = self.loss_function(labels, logits, self.config, **kwargs)
        return ImageClassifierOutput(loss=loss, logits=logits, hidden_states=hidden_states, attentions=attentions)


__all__ = [
    "TASK",
    "MultiMAEDERForVideoClassification",
    "MultiMAEDERModel",
    "MultiMAEDERPreTrainedModel",
    "add_remote_code",
]
