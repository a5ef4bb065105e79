"""MultiMAE-DER: the files in this folder ship with every checkpoint.

They import only each other (relatively) and runtime dependencies (torch, transformers, numpy, torchcodec), so a
saved folder or Hub repo loads with ``trust_remote_code=True`` where this package is not installed.
"""

from typing import TYPE_CHECKING, Any


if TYPE_CHECKING:  # for type checkers and IDEs; at run time each name is imported when first used (PEP 562)
    from .configuration_multimae_der import MultiMAEDERConfig
    from .feature_extraction_multimae_der import MultiMAEDERFeatureExtractor
    from .fusion import FUSION_STRATEGIES, frames_per_modality, fuse
    from .media import MediaError, decode_clip
    from .modeling_multimae_der import (
        TASK,
        MultiMAEDERForPreTraining,
        MultiMAEDERForPreTrainingOutput,
        MultiMAEDERForVideoClassification,
        MultiMAEDERModel,
        MultiMAEDERPreTrainedModel,
        add_remote_code,
        draw_mask,
        mask_ratios,
    )
    from .pipeline import MultiMAEDERPipeline
    from .processing_multimae_der import MultiMAEDERProcessor, saved_processor_settings
    from .video_processing_multimae_der import MultiMAEDERVideoProcessor

#: The module of each public name: importing this package imports none of them (torch, transformers' modeling),
#: so ``mmder_hf.models.multimae_der.media`` or ``.fusion`` alone stay as light as they are.
_LAZY = {
    "MultiMAEDERConfig": ".configuration_multimae_der",
    "MultiMAEDERFeatureExtractor": ".feature_extraction_multimae_der",
    "FUSION_STRATEGIES": ".fusion",
    "frames_per_modality": ".fusion",
    "fuse": ".fusion",
    "MediaError": ".media",
    "decode_clip": ".media",
    **dict.fromkeys(
        (
            "TASK",
            "MultiMAEDERForPreTraining",
            "MultiMAEDERForPreTrainingOutput",
            "MultiMAEDERForVideoClassification",
            "MultiMAEDERModel",
            "MultiMAEDERPreTrainedModel",
            "add_remote_code",
            "draw_mask",
            "mask_ratios",
        ),
        ".modeling_multimae_der",
    ),
    "MultiMAEDERPipeline": ".pipeline",
    "MultiMAEDERProcessor": ".processing_multimae_der",
    "saved_processor_settings": ".processing_multimae_der",
    "MultiMAEDERVideoProcessor": ".video_processing_multimae_der",
}


def __getattr__(name: str) -> Any:
    """Import a public name's module on first use (PEP 562)."""
    module_name = _LAZY.get(name)
    if module_name is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    import importlib

    value = getattr(importlib.import_module(module_name, __name__), name)
    globals()[name] = value
    return value


def __dir__() -> list:
    return sorted({*globals(), *_LAZY})


def register() -> None:
    """Register MultiMAE-DER with transformers' auto classes and pipelines, and mark it for remote-code saving.

    After this, ``AutoConfig`` / ``AutoModel`` / ``AutoModelForVideoClassification`` /
    ``AutoModelForPreTraining`` / ``AutoProcessor`` / ``AutoVideoProcessor`` / ``AutoFeatureExtractor`` and
    ``pipeline("audio-visual-emotion-recognition", model=...)`` know the model, and ``save_pretrained`` writes the
    code files and ``auto_map`` that let anyone load a checkpoint without this package. Safe to call again.
    """
    from transformers import (
        AutoConfig,
        AutoFeatureExtractor,
        AutoModel,
        AutoModelForPreTraining,
        AutoModelForVideoClassification,
        AutoProcessor,
        AutoVideoProcessor,
    )
    from transformers.pipelines import PIPELINE_REGISTRY

    from .configuration_multimae_der import MultiMAEDERConfig
    from .feature_extraction_multimae_der import MultiMAEDERFeatureExtractor
    from .modeling_multimae_der import (
        TASK,
        MultiMAEDERForPreTraining,
        MultiMAEDERForVideoClassification,
        MultiMAEDERModel,
    )
    from .pipeline import MultiMAEDERPipeline
    from .processing_multimae_der import MultiMAEDERProcessor
    from .video_processing_multimae_der import MultiMAEDERVideoProcessor

    AutoConfig.register(MultiMAEDERConfig.model_type, MultiMAEDERConfig, exist_ok=True)
    AutoModel.register(MultiMAEDERConfig, MultiMAEDERModel, exist_ok=True)
    AutoModelForVideoClassification.register(MultiMAEDERConfig, MultiMAEDERForVideoClassification, exist_ok=True)
    AutoModelForPreTraining.register(MultiMAEDERConfig, MultiMAEDERForPreTraining, exist_ok=True)
    AutoProcessor.register(MultiMAEDERConfig, MultiMAEDERProcessor, exist_ok=True)
    AutoVideoProcessor.register(MultiMAEDERConfig, MultiMAEDERVideoProcessor, exist_ok=True)
    AutoFeatureExtractor.register(MultiMAEDERConfig, MultiMAEDERFeatureExtractor, exist_ok=True)
    MultiMAEDERConfig.register_for_auto_class()
    MultiMAEDERModel.register_for_auto_class("AutoModel")
    MultiMAEDERForVideoClassification.register_for_auto_class("AutoModelForVideoClassification")
    MultiMAEDERForPreTraining.register_for_auto_class("AutoModelForPreTraining")
    MultiMAEDERProcessor.register_for_auto_class("AutoProcessor")
    MultiMAEDERVideoProcessor.register_for_auto_class("AutoVideoProcessor")
    MultiMAEDERFeatureExtractor.register_for_auto_class("AutoFeatureExtractor")
    if PIPELINE_REGISTRY.supported_tasks.get(TASK, {}).get("impl") is not MultiMAEDERPipeline:
        PIPELINE_REGISTRY.register_pipeline(
            TASK,
            pipeline_class=MultiMAEDERPipeline,
            pt_model=AutoModelForVideoClassification,
            type="multimodal",
        )


__all__ = [
    "FUSION_STRATEGIES",
    "TASK",
    "MediaError",
    "MultiMAEDERConfig",
    "MultiMAEDERFeatureExtractor",
    "MultiMAEDERForPreTraining",
    "MultiMAEDERForPreTrainingOutput",
    "MultiMAEDERForVideoClassification",
    "MultiMAEDERModel",
    "MultiMAEDERPipeline",
    "MultiMAEDERPreTrainedModel",
    "MultiMAEDERProcessor",
    "MultiMAEDERVideoProcessor",
    "add_remote_code",
    "decode_clip",
    "draw_mask",
    "frames_per_modality",
    "fuse",
    "mask_ratios",
    "register",
    "saved_processor_settings",
]
