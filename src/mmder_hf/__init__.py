"""MultiMAE-DER for the Hugging Face ecosystem: audio-visual emotion recognition with one VideoMAE encoder.

Importing the package registers the model with transformers' auto classes (``AutoConfig``, ``AutoModel``,
``AutoModelForVideoClassification``, ``AutoProcessor``) and marks the classes for ``register_for_auto_class``, so that
``save_pretrained`` writes the code files and ``auto_map`` that let anyone load a checkpoint with
``trust_remote_code=True`` without installing this package.
"""

from transformers import AutoConfig, AutoModel, AutoModelForVideoClassification

from .configuration_multimae_der import MultiMAEDERConfig
from .data import (
    MultiMAEDERDataCollator,
    get_fold,
    get_folds,
    load_emotion_dataset,
    load_prefused_dataset,
    make_synthetic_corpus,
    preprocess_to_cache,
    split_for_rank,
)
from .fusion import FUSION_STRATEGIES, frames_per_modality, fuse
from .modeling_multimae_der import MultiMAEDERForVideoClassification, MultiMAEDERModel, MultiMAEDERPreTrainedModel
from .pipeline import TASK, MultiMAEDERPipeline, add_pipeline_to_checkpoint, register_pipeline
from .processing_multimae_der import MultiMAEDERProcessor, register_auto_processor
from .video_io import MediaError, decode_clip, write_clip

__version__ = "0.1.0"

AutoConfig.register(MultiMAEDERConfig.model_type, MultiMAEDERConfig, exist_ok=True)
AutoModel.register(MultiMAEDERConfig, MultiMAEDERModel, exist_ok=True)
AutoModelForVideoClassification.register(MultiMAEDERConfig, MultiMAEDERForVideoClassification, exist_ok=True)
MultiMAEDERConfig.register_for_auto_class()
MultiMAEDERModel.register_for_auto_class("AutoModel")
MultiMAEDERForVideoClassification.register_for_auto_class("AutoModelForVideoClassification")
register_auto_processor()
MultiMAEDERProcessor.register_for_auto_class("AutoProcessor")
register_pipeline()

__all__ = [
    "FUSION_STRATEGIES",
    "MultiMAEDERDataCollator",
    "MultiMAEDERConfig",
    "MultiMAEDERForVideoClassification",
    "MultiMAEDERModel",
    "MultiMAEDERPreTrainedModel",
    "MultiMAEDERPipeline",
    "MultiMAEDERProcessor",
    "TASK",
    "add_pipeline_to_checkpoint",
    "MediaError",
    "decode_clip",
    "get_fold",
    "get_folds",
    "load_emotion_dataset",
    "load_prefused_dataset",
    "make_synthetic_corpus",
    "preprocess_to_cache",
    "split_for_rank",
    "write_clip",
    "frames_per_modality",
    "fuse",
]
