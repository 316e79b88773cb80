"""mindclip models: CLIP, its image and text towers, presets, checkpoints and LightCLIP pre-training heads.

    from mindclip.models import create_model, list_models
    model = create_model("tiny_mobilenetv2")
    image_features = model.encode_image(images)      # (B, E), normalised
"""
from mindclip.models.clip import CLIP, ImageEncoder, TextEncoder
from mindclip.models.mindcv_tower import ImageTower, MindcvImageTower
from mindclip.models.lightclip import LightCLIPPretrain
from mindclip.models.registry import (ImageConfig, ModelConfig, TextConfig, build_model, create_model,
                                      get_model_config, list_models, model_config_dict)
from mindclip.models.text import TextTransformer, load_open_clip_text_state
from mindclip.models.weights import load_weights, named_weights, read_checkpoint, save_weights

__all__ = ["CLIP", "ImageEncoder", "TextEncoder", "MindcvImageTower", "ImageTower", "TextTransformer", "LightCLIPPretrain",
           "ImageConfig", "TextConfig", "ModelConfig", "create_model", "list_models", "get_model_config",
           "build_model", "model_config_dict", "load_open_clip_text_state", "save_weights", "load_weights",
           "named_weights", "read_checkpoint"]
