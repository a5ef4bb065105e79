"""MultiMAE-DER: one VideoMAE encoder over a clip in which face frames and audio images are fused.

The model reuses transformers' VideoMAE encoder unchanged (same parameter names, so every VideoMAE checkpoint
loads into it) and adds the fusion step in front of it: the processor returns the video frames and the audio
images separately, and :func:`~mmder_hf.fuse` lays them out on the model's device inside ``forward``.
`MultiMAEDERForPreTraining` is VideoMAE's masked autoencoder over the fused clip, with a mask ratio per modality.
"""

from __future__ import annotations

import json
import math
import os
import shutil
from dataclasses import dataclass
from pathlib import Path
from typing import Optional

import torch
from torch import nn
from transformers.conversion_mapping import get_checkpoint_conversion_mapping, register_checkpoint_conversion_mapping
from transformers.modeling_outputs import BaseModelOutput, ImageClassifierOutput
from transformers.models.videomae.modeling_videomae import (
    VideoMAEDecoder,
    VideoMAEModel,
    VideoMAEPreTrainedModel,
    get_sinusoid_encoding_table,
)
from transformers.utils import ModelOutput
from transformers.utils.generic import can_return_tuple

from .configuration_multimae_der import MultiMAEDERConfig
from .fusion import fuse, reorder


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


#: ``requirements.txt`` of a saved folder: what a Hugging Face Inference Endpoint installs on top of its image before
#: it imports ``handler.py``. Every distribution the shipped files import outside ``try`` blocks (a test derives them
#: with ``ast``), with this project's version ranges: the toolkit's default image (transformers 4.51, torch 2.5,
#: huggingface_hub 0.30, no torchcodec) is older than this code needs; numpy, which it has, costs nothing to list.
#: And torchvision: not imported here, but transformers imports it whenever it is installed, and the image's build
#: is made for the image's torch: it must move with the torch installed here.
ENDPOINT_REQUIREMENTS = (
    "huggingface_hub>=1.0",
    "numpy>=1.26",
    "torch>=2.6",
    "torchaudio>=2.6",
    "torchcodec>=0.5",
    "torchvision>=0.21",
    "transformers>=5.0,<6",
)


def add_remote_code(save_directory: str | os.PathLike) -> list[str]:
    """Make a folder saved by ``save_pretrained`` load anywhere with ``trust_remote_code=True``, and serve as an
    Inference Endpoint.

    Copies every file of this folder but ``__init__.py`` (configuration, modeling, processors, fusion, audio
    features, media reading, faces, pipeline, and ``handler.py``, the endpoint's handler) to the folder's root,
    writes ``requirements.txt`` (:data:`ENDPOINT_REQUIREMENTS`, what an endpoint installs before loading the handler)
    and records in ``config.json`` the encoder under ``auto_map`` and the pipeline under ``custom_pipelines``, so that
    ``AutoModel``, ``AutoModelForVideoClassification``, ``AutoProcessor`` and
    ``pipeline(model=folder, trust_remote_code=True)`` all work without this package. Idempotent. Returns the files
    written (code files, then ``requirements.txt``).
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
    requirements = folder / "requirements.txt"
    requirements.write_text(
        "# Installed by Hugging Face Inference Endpoints before handler.py is loaded (see the model card)\n"
        + "".join(f"{line}\n" for line in ENDPOINT_REQUIREMENTS),
        encoding="utf-8",
    )
    written.append(requirements)
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


# ---------------------------------------------------------------------------------------------------------------
# Self-supervised pre-training

#: Modality codes of the frames (:func:`frame_modalities`) and tubelets (:func:`tubelet_modalities`) of a fused clip.
VIDEO, AUDIO, MIXED = 0, 1, 2


def frame_modalities(strategy: str, num_frames: int) -> list[int]:
    """What each frame of a fused clip shows: ``VIDEO`` (0), ``AUDIO`` (1) or ``MIXED`` (2, both at once).

    FSLF is ``S0..S7 F0..F7``, FFLS ``F0..F7 S0..S7``, OFOS ``F0 S0 F1 S1 ...``; RFAS starts from OFOS (the model
    permutes these codes with the frames); CFAS and SFAS put both modalities in every frame, and ``prefused``
    clips come without a record of their layout, so all their frames are ``MIXED``.
    """
    half = num_frames // 2
    if strategy == "FSLF":
        return [AUDIO] * half + [VIDEO] * half
    if strategy == "FFLS":
        return [VIDEO] * half + [AUDIO] * half
    if strategy in ("OFOS", "RFAS"):
        return [VIDEO, AUDIO] * half
    if strategy == "video":
        return [VIDEO] * num_frames
    if strategy == "audio":
        return [AUDIO] * num_frames
    return [MIXED] * num_frames  # CFAS, SFAS, prefused


def tubelet_modalities(config: MultiMAEDERConfig) -> list[int]:
    """The modality of each tubelet (``tubelet_size`` consecutive frames) of the fused clip.

    A tubelet is ``VIDEO`` or ``AUDIO`` when all its frames are, else ``MIXED``. FSLF and FFLS have pure tubelets
    when ``num_frames / 2`` is a multiple of ``tubelet_size`` (16 frames, tubelets of 2: 4 audio then 4 video
    tubelets); OFOS tubelets each hold one face frame and one audio image, and RFAS orders frames at random, so
    both count as ``MIXED``, as do CFAS, SFAS and ``prefused``.
    """
    frames = frame_modalities(config.fusion_strategy, config.num_frames)
    if config.fusion_strategy == "RFAS":
        frames = [MIXED] * len(frames)
    size = config.tubelet_size
    kinds = []
    for start in range(0, config.num_frames - size + 1, size):
        members = set(frames[start : start + size])
        kinds.append(members.pop() if len(members) == 1 else MIXED)
    return kinds


def _patches_per_frame(config: MultiMAEDERConfig) -> int:
    image = config.image_size if isinstance(config.image_size, (list, tuple)) else (config.image_size,) * 2
    patch = config.patch_size if isinstance(config.patch_size, (list, tuple)) else (config.patch_size,) * 2
    return (image[0] // patch[0]) * (image[1] // patch[1])


def _masked_count(ratio: float, total: int) -> int:
    # floor, as VideoMAE's masking generators (int(ratio * n)), without 0.29 * 100 = 28.999... becoming 28
    return min(total, math.floor(ratio * total + 1e-6))


def mask_ratios(config: MultiMAEDERConfig) -> dict[str, float]:
    """``{"video": ratio, "audio": ratio}`` for the modalities that have pure tubelets, ``{"mixed": ratio}`` too
    when some tubelets mix them (their ratio is ``mask_ratio_video``); what the model card and the logs report."""
    kinds = set(tubelet_modalities(config))
    ratios = {}
    if VIDEO in kinds:
        ratios["video"] = config.mask_ratio_video
    if AUDIO in kinds:
        ratios["audio"] = config.mask_ratio_audio
    if MIXED in kinds:
        ratios["mixed"] = config.mask_ratio_video
    return ratios


def draw_mask(
    config: MultiMAEDERConfig,
    batch_size: int,
    generator: Optional[torch.Generator] = None,
    device: Optional[torch.device] = None,
) -> torch.BoolTensor:
    """Draw ``bool_masked_pos`` for ``batch_size`` fused clips: ``True`` marks a masked tubelet.

    Tubelets are grouped by :func:`tubelet_modalities`; each group is masked with its own ratio
    (``mask_ratio_video`` for video and mixed tubelets, ``mask_ratio_audio`` for audio ones). With
    ``mask_type="tube"`` a group's tubelets all mask the same spatial patches (so a patch cannot be copied from the
    next frame), with ``"random"`` every tubelet of the group is drawn independently. Every clip masks the same number
    of tubelets, as VideoMAE's encoder requires. Drawn on the CPU from ``generator`` (the global RNG when ``None``).

    Returns:
        `torch.BoolTensor` of shape `(batch_size, (num_frames // tubelet_size) * patches_per_frame)`, in the
        encoder's token order (time, then rows, then columns).
    """
    per_frame = _patches_per_frame(config)
    kinds = tubelet_modalities(config)
    mask = torch.zeros(batch_size, len(kinds), per_frame, dtype=torch.bool)
    for kind in (VIDEO, AUDIO, MIXED):
        members = [t for t, k in enumerate(kinds) if k == kind]
        if not members:
            continue
        ratio = config.mask_ratio_audio if kind == AUDIO else config.mask_ratio_video
        drawn_over = per_frame if config.mask_type == "tube" else per_frame * len(members)
        count = _masked_count(ratio, drawn_over)
        chosen = torch.rand(batch_size, drawn_over, generator=generator).argsort(dim=1)[:, :count]
        group = torch.zeros(batch_size, drawn_over, dtype=torch.bool).scatter_(1, chosen, True)
        if config.mask_type == "tube":
            mask[:, members] = group[:, None, :].expand(-1, len(members), -1)
        else:
            mask[:, members] = group.view(batch_size, len(members), per_frame)
    mask = mask.view(batch_size, -1)
    if bool(mask.all()):
        raise ValueError("every tubelet is masked: lower mask_ratio_video / mask_ratio_audio")
    return mask if device is None else mask.to(device)


def patchify(clip: torch.Tensor, tubelet_size: int, patch_size: int) -> torch.Tensor:
    """``(batch, frames, channels, H, W)`` -> ``(batch, tubelets, tubelet_size * patch_size**2, channels)``.

    The tubelets come in the encoder's token order, each tubelet's pixels as VideoMAE's decoder predicts them
    (frame in the tubelet, row, column; channels last).
    """
    batch, frames, channels, height, width = clip.shape
    grid = clip.reshape(
        batch,
        frames // tubelet_size,
        tubelet_size,
        channels,
        height // patch_size,
        patch_size,
        width // patch_size,
        patch_size,
    )
    grid = grid.permute(0, 1, 4, 6, 2, 5, 7, 3)
    return grid.reshape(batch, -1, tubelet_size * patch_size * patch_size, channels)


def unpatchify(patches: torch.Tensor, config: MultiMAEDERConfig) -> torch.Tensor:
    """The inverse of :func:`patchify` (patches flattened or not): back to ``(batch, frames, channels, H, W)``."""
    size = config.image_size if isinstance(config.image_size, int) else config.image_size[0]
    patch, tubelet, channels = config.patch_size, config.tubelet_size, config.num_channels
    side = size // patch
    batch = patches.shape[0]
    grid = patches.reshape(batch, config.num_frames // tubelet, side, side, tubelet, patch, patch, channels)
    grid = grid.permute(0, 1, 4, 7, 2, 5, 3, 6)
    return grid.reshape(batch, config.num_frames, channels, side * patch, side * patch)


@dataclass
class MultiMAEDERForPreTrainingOutput(ModelOutput):
    r"""
    loss (`torch.FloatTensor` of shape `()`):
        Mean squared reconstruction error over the masked tubelets (as VideoMAEForPreTraining).
    logits (`torch.FloatTensor` of shape `(batch_size, num_masked, tubelet_size * patch_size ** 2 * num_channels)`):
        Reconstructions of the masked tubelets, in the order of ``bool_masked_pos`` (in target space: normalised per
        patch with ``norm_pix_loss``).
    loss_video (`torch.FloatTensor` of shape `()`, *optional*):
        The part of the error on face-frame pixels; ``None`` where no frame is pure video (CFAS, SFAS, prefused).
    loss_audio (`torch.FloatTensor` of shape `()`, *optional*):
        The part of the error on audio-image pixels; ``None`` where no frame is pure audio.
    bool_masked_pos (`torch.BoolTensor` of shape `(batch_size, sequence_length)`):
        The mask used: the one given, or the one drawn (:func:`draw_mask`).
    hidden_states, attentions:
        The encoder's, as in VideoMAEForPreTraining.
    """

    loss: Optional[torch.FloatTensor] = None
    logits: Optional[torch.FloatTensor] = None
    loss_video: Optional[torch.FloatTensor] = None
    loss_audio: Optional[torch.FloatTensor] = None
    bool_masked_pos: Optional[torch.BoolTensor] = None
    hidden_states: Optional[tuple[torch.FloatTensor, ...]] = None
    attentions: Optional[tuple[torch.FloatTensor, ...]] = None


class MultiMAEDERForPreTraining(MultiMAEDERPreTrainedModel):
    r"""
    MultiMAE-DER's encoder with VideoMAE's decoder, for self-supervised pre-training on fused audio-visual clips.

    The processor's face frames and audio images are fused as ``fusion_strategy`` says, a share of the clip's
    tubelets is masked (:func:`draw_mask`: tube or random masking, with a mask ratio per modality where tubelets
    are pure video or pure audio, as in FSLF and FFLS), the encoder reads the visible tubelets and the decoder
    reconstructs the masked ones. Parameter names are those of transformers' ``VideoMAEForPreTraining``
    (``videomae.*``, ``encoder_to_decoder``, ``mask_token``, ``decoder.*``), so a VideoMAE pre-training checkpoint
    such as ``MCG-NJU/videomae-base`` loads with every tensor, decoder included, and the encoder of a pre-training
    run loads into `MultiMAEDERForVideoClassification`.

    Targets (config ``pretraining_target``): the masked tubelets' pixels, normalised per patch and channel with
    ``norm_pix_loss`` (VideoMAE), or MAE-DFER's frame-difference target. The loss is reported for the face and
    the audio pixels apart (``loss_video``, ``loss_audio``).

    Example:

    ```python
    >>> import torch
    >>> from mmder_hf import MultiMAEDERConfig, MultiMAEDERForPreTraining
    >>> config = MultiMAEDERConfig(fusion_strategy="FSLF", image_size=32, patch_size=16, num_frames=4,
    ...     hidden_size=32, num_hidden_layers=2, num_attention_heads=2, intermediate_size=64,
    ...     decoder_hidden_size=32, decoder_num_hidden_layers=1, decoder_num_attention_heads=2,
    ...     decoder_intermediate_size=64, mask_ratio_video=0.75, mask_ratio_audio=0.5)
    >>> model = MultiMAEDERForPreTraining(config)
    >>> out = model(pixel_values=torch.randn(2, 2, 3, 32, 32), audio_values=torch.randn(2, 2, 3, 32, 32))
    >>> out.bool_masked_pos.sum(1).tolist(), list(out.logits.shape)  # 2 of 4 audio and 3 of 4 video tubelets
    ([5, 5], [2, 5, 1536])
    ```
    """

    def __init__(self, config: MultiMAEDERConfig):
        super().__init__(config)
        self.videomae = MultiMAEDERModel(config)
        self.encoder_to_decoder = nn.Linear(config.hidden_size, config.decoder_hidden_size, bias=False)
        self.mask_token = nn.Parameter(torch.zeros(1, 1, config.decoder_hidden_size))
        # a fixed sin-cos table, not a weight (as in VideoMAEForPreTraining)
        self.position_embeddings = get_sinusoid_encoding_table(
            self.videomae.embeddings.num_patches, config.decoder_hidden_size
        )
        self.decoder = VideoMAEDecoder(config)
        self.post_init()

    def fuse(
        self, pixel_values: Optional[torch.Tensor], audio_values: Optional[torch.Tensor]
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """The fused clip and what each of its frames shows: ``(clip, modalities)``, ``modalities`` a
        ``(batch, num_frames)`` tensor of :data:`VIDEO` / :data:`AUDIO` / :data:`MIXED` codes.

        The clip is exactly what `MultiMAEDERModel.fuse` gives (RFAS: fresh permutations in training, ``rfas_seed``
        in evaluation); RFAS permutes the codes with the frames.
        """
        config = self.config
        codes = torch.tensor(frame_modalities(config.fusion_strategy, config.num_frames))
        if config.fusion_strategy != "RFAS":
            clip = self.videomae.fuse(pixel_values, audio_values)
            return clip, codes.expand(clip.shape[0], -1)
        generator = None if self.training else torch.Generator().manual_seed(config.rfas_seed)
        interleaved = fuse(pixel_values, audio_values, "OFOS", num_frames=config.num_frames)
        batch = interleaved.shape[0]
        order = torch.rand(batch, config.num_frames, generator=generator).argsort(dim=1)  # as fusion.random_order
        return reorder(interleaved, order), reorder(codes.expand(batch, -1), order)

    def targets(self, clip: torch.Tensor) -> torch.Tensor:
        """What the decoder learns to predict for every tubelet: ``(batch, tokens, tubelet_size * patch**2 * C)``.

        The clip's normalisation (``pixel_mean`` / ``pixel_deviation``) is undone, then with ``norm_pix_loss`` each
        tubelet is normalised per channel (mean 0, std 1 over its pixels, as VideoMAE). With
        ``pretraining_target="frame_difference"`` (MAE-DFER) the first frame of each tubelet keeps that target
        and every later frame becomes its difference from the first.
        """
        config = self.config
        with torch.no_grad():
            shape = (1, 1, -1, 1, 1)
            mean = torch.as_tensor(config.pixel_mean, dtype=clip.dtype, device=clip.device).view(shape)
            std = torch.as_tensor(config.pixel_deviation, dtype=clip.dtype, device=clip.device).view(shape)
            patches = patchify(clip * std + mean, config.tubelet_size, config.patch_size)
            if config.norm_pix_loss:
                spread = patches.var(dim=-2, unbiased=True, keepdim=True).sqrt() + 1e-6
                patches = (patches - patches.mean(dim=-2, keepdim=True)) / spread
            batch, tokens = patches.shape[:2]
            if config.pretraining_target == "frame_difference":
                frames = patches.reshape(batch, tokens, config.tubelet_size, -1, patches.shape[-1])
                frames = torch.cat((frames[:, :, :1], frames[:, :, 1:] - frames[:, :, :1]), dim=2)
                patches = frames
            return patches.reshape(batch, tokens, -1)

    @can_return_tuple
    def forward(
        self,
        pixel_values: Optional[torch.Tensor] = None,
        audio_values: Optional[torch.Tensor] = None,
        bool_masked_pos: Optional[torch.BoolTensor] = None,
        **kwargs,
    ) -> MultiMAEDERForPreTrainingOutput:
        r"""
        pixel_values (`torch.FloatTensor` of shape `(batch_size, num_video_frames, num_channels, height, width)`):
            Video (face) frames, as returned by `MultiMAEDERProcessor`; the fused clip for ``prefused``.
        audio_values (`torch.FloatTensor` of shape `(batch_size, num_audio_frames, num_channels, height, width)`):
            Audio images, as returned by `MultiMAEDERProcessor`.
        bool_masked_pos (`torch.BoolTensor` of shape `(batch_size, sequence_length)`, *optional*):
            Masked tubelets of the fused clip (``True``: masked), the same number in every clip. Drawn with
            :func:`draw_mask` when not given: from the global RNG in training, from ``mask_seed`` in evaluation.
        """
        clip, frame_codes = self.fuse(pixel_values, audio_values)
        batch = clip.shape[0]
        if bool_masked_pos is None:
            generator = None if self.training else torch.Generator().manual_seed(self.config.mask_seed)
            bool_masked_pos = draw_mask(self.config, batch, generator)
        bool_masked_pos = bool_masked_pos.to(device=clip.device, dtype=torch.bool)
        counts = bool_masked_pos.sum(dim=1)
        if bool(counts.ne(counts[0]).any()) or int(counts[0]) == 0:
            raise ValueError("bool_masked_pos must mask the same, non-zero number of tubelets in every clip")

        kwargs["return_dict"] = True
        # the clip is fused already: run VideoMAE's own encoder forward on it
        outputs = VideoMAEModel.forward(self.videomae, clip, bool_masked_pos=bool_masked_pos, **kwargs)
        visible = self.encoder_to_decoder(outputs.last_hidden_state)
        channels = visible.shape[-1]
        positions = self.position_embeddings.expand(batch, -1, -1).type_as(visible)
        positions = positions.detach().to(device=visible.device, copy=True)
        visible_positions = positions[~bool_masked_pos].reshape(batch, -1, channels)
        masked_positions = positions[bool_masked_pos].reshape(batch, -1, channels)
        # visible tokens first, then a mask token per masked tubelet (VideoMAE does not unshuffle either)
        tokens = torch.cat([visible + visible_positions, self.mask_token + masked_positions], dim=1)
        logits = self.decoder(tokens, masked_positions.shape[1]).logits

        targets = self.targets(clip)
        labels = targets[bool_masked_pos].reshape(batch, -1, targets.shape[-1])
        errors = (logits.float() - labels.float()).square()
        loss = errors.mean()

        # Per modality: each masked tubelet's error split by the frame its pixels come from.
        size = self.config.tubelet_size
        per_frame = _patches_per_frame(self.config)
        codes = frame_codes.to(clip.device).view(batch, -1, 1, size).expand(-1, -1, per_frame, -1)
        codes = codes.reshape(batch, -1, size)[bool_masked_pos].reshape(batch, -1, size)
        frame_errors = errors.view(*errors.shape[:2], size, -1).mean(dim=-1)
        loss_video, loss_audio = (
            frame_errors[codes == code].mean() if bool((codes == code).any()) else None for code in (VIDEO, AUDIO)
        )
        return MultiMAEDERForPreTrainingOutput(
            loss=loss,
            logits=logits,
            loss_video=loss_video,
            loss_audio=loss_audio,
            bool_masked_pos=bool_masked_pos,
            hidden_states=outputs.hidden_states,
            attentions=outputs.attentions,
        )


__all__ = [
    "AUDIO",
    "MIXED",
    "TASK",
    "VIDEO",
    "MultiMAEDERForPreTraining",
    "MultiMAEDERForPreTrainingOutput",
    "MultiMAEDERForVideoClassification",
    "MultiMAEDERModel",
    "MultiMAEDERPreTrainedModel",
    "add_remote_code",
    "draw_mask",
    "frame_modalities",
    "mask_ratios",
    "patchify",
    "tubelet_modalities",
    "unpatchify",
]
