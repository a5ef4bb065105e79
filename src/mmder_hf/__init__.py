"""MultiMAE-DER for the Hugging Face ecosystem."""

from .configuration_multimae_der import MultiMAEDERConfig
from .fusion import FUSION_STRATEGIES, frames_per_modality, fuse

__version__ = "0.1.0"

__all__ = ["FUSION_STRATEGIES", "MultiMAEDERConfig", "frames_per_modality", "fuse"]
