"""Architecture presets (YAML files in `model_configs/`) and the model factory.

    create_model("lightclip_resnet18")
    create_model("tiny_swin", **{"text.layers": 8})          # dotted override
    create_model("tiny_swin", text={"vocab_size": 49409})    # nested override
    create_model("lightclip_mobilenetv2", checkpoint="runs/x/last.ckpt")
"""
import dataclasses
import os
from typing import Any, Dict, Optional

from mindclip.config import ConfigError, from_dict, read_yaml, set_dotted, to_dict
from mindclip.models.clip_image_towers import CLIP_TOWER_TYPES, build_clip_tower, tower_options
from mindclip.tokenizer import VOCAB_SIZE

TOKEN_TABLE = "text.token_embedding"  # the checkpoint entry that fixes text.vocab_size
CONFIG_DIR = os.path.join(os.path.dirname(os.path.abspath(__file__)), "model_configs")


@dataclasses.dataclass
class ImageConfig:
    backbone: str  # mindcv: resnet18 | mobilenet_v2 | swin_nano; CLIP's own: modified_resnet | vit
    image_size: int = 224
    window_size: Optional[int] = None  # swin_nano only (default 7)
    drop_path_rate: Optional[float] = None  # swin_nano only (default 0.0)
    tower: Optional[Dict[str, Any]] = None  # modified_resnet / vit only: see clip_image_towers.py

    def validate(self):
        from mindclip.models.backbones import BACKBONES

        if self.backbone not in BACKBONES + CLIP_TOWER_TYPES:
            raise ValueError(f"backbone {self.backbone!r} is unknown; known: {', '.join(BACKBONES + CLIP_TOWER_TYPES)}")
        if self.backbone != "swin_nano" and (self.window_size is not None or self.drop_path_rate is not None):
            raise ValueError(f"window_size / drop_path_rate apply only to swin_nano, not to {self.backbone!r}")
        if self.backbone not in CLIP_TOWER_TYPES and self.tower is not None:
            raise ValueError(f"tower applies only to {' / '.join(CLIP_TOWER_TYPES)}, not to {self.backbone!r}")


@dataclasses.dataclass
class TextConfig:
    context_length: int = 77
    vocab_size: int = VOCAB_SIZE  # 49408; MASK_ID + 1 = 49409 when MLM adds [MASK]
    width: int = 512
    heads: int = 8
    layers: int = 8  # a multiple of 4: the tower is split into 4 equal stages
    act: str = "gelu"  # gelu (exact) | quick_gelu
    mlp_ratio: float = 4.0

    def validate(self):
        if self.act not in ("gelu", "quick_gelu"):
            raise ValueError(f"act must be 'gelu' or 'quick_gelu', got {self.act!r}")
        if self.layers < 4 or self.layers % 4:
            raise ValueError(f"layers must be a positive multiple of 4, got {self.layers}")
        if self.width % self.heads:
            raise ValueError(f"width {self.width} is not divisible by heads {self.heads}")


@dataclasses.dataclass
class ModelConfig:
    image: ImageConfig
    text: TextConfig
    embed_dim: int = 512


def list_models():
    """Names of the presets in `model_configs/`, sorted."""
    return sorted(f[:-5] for f in os.listdir(CONFIG_DIR) if f.endswith(".yaml"))


def preset_path(name):
    """Path of preset `name`; an unknown name is refused with the list of known ones."""
    path = os.path.join(CONFIG_DIR, f"{name}.yaml")
    if not os.path.isfile(path):
        raise ValueError(f"unknown model {name!r}; known models: {', '.join(list_models())}")
    return path


def get_model_config(name, **overrides):
    """The preset `name` with `overrides` applied (dotted keys or nested dicts), strictly checked.

    An unknown key or a value of the wrong type raises ConfigError naming the key and the preset.
    """
    path = preset_path(name)
    data = read_yaml(path)
    _check(data, f"model preset {name!r} ({path})")
    for key, value in overrides.items():
        source = f"model preset {name!r}: override {key}={value!r}"
        for dotted, leaf in _flatten({key: value}):
            set_dotted(data, dotted, leaf, source=source)
        _check(data, source)
    return _check(data, f"model preset {name!r}")


def _check(data, source):
    """ModelConfig from a mapping, with the CLIP towers' `image.tower` options checked as well."""
    config = from_dict(ModelConfig, data, source)
    if config.image.backbone in CLIP_TOWER_TYPES:
        tower_options(config.image.backbone, config.image.tower, source)
    return config


def _flatten(tree, prefix=""):
    """{"text": {"layers": 4}} -> [("text.layers", 4)]; a leaf is anything that is not a dict."""
    for key, value in tree.items():
        if isinstance(value, dict):
            yield from _flatten(value, f"{prefix}{key}.")
        else:
            yield prefix + key, value


def build_model(config):
    """A randomly initialised CLIP from a ModelConfig (mindcv backbone + pool + projection, or a CLIP tower)."""
    from mindclip.models.clip import CLIP
    from mindclip.models.mindcv_tower import MindcvImageTower
    from mindclip.models.text import TextTransformer

    image, text = config.image, config.text
    if image.backbone in CLIP_TOWER_TYPES:
        visual = build_clip_tower(image.backbone, config.embed_dim, image.image_size, image.tower)
    else:
        visual = MindcvImageTower(image.backbone, config.embed_dim, image.image_size, image.window_size,
                            image.drop_path_rate)
    text_tower = TextTransformer(text.context_length, text.vocab_size, text.width, text.heads, text.layers,
                                 config.embed_dim, text.act, text.mlp_ratio)
    return CLIP(visual, text_tower)


def create_model(name, checkpoint=None, **overrides):
    """Build preset `name` (see `list_models()`), optionally loading `checkpoint`.

    Args:
        name: a preset name.
        checkpoint: a model or training checkpoint (see `weights.save_weights`); only its CLIP part
            is loaded, strictly (missing, unexpected and mis-shaped weights are listed in the error).
            The text token table takes the checkpoint's row count unless an override sets it: a
            LightCLIP run with MLM saves 49409 rows (the [MASK] id), which inference never uses.
            A corrupt file (CRC32 mismatch), weights holding NaN or Inf, or weights that do not fit
            raise CheckpointError (a ValueError) naming the file; a missing one FileNotFoundError.
        **overrides: dotted keys (`**{"text.layers": 4}`) or nested dicts (`text={"layers": 4}`).

    Returns:
        CLIP, with the resolved ModelConfig as `model.config`.
    """
    state = None
    if checkpoint is not None:
        from mindclip.models.weights import read_checkpoint

        state = read_checkpoint(checkpoint)
        table = state.get(TOKEN_TABLE)
        sets_vocab = any(key == "text.vocab_size" for key, _ in _flatten(overrides))
        if table is not None and getattr(table, "ndim", 0) == 2 and not sets_vocab:
            overrides = dict(overrides, **{"text.vocab_size": int(table.shape[0])})
    config = get_model_config(name, **overrides)
    model = build_model(config)
    model.config = config
    if state is not None:
        from mindclip.models.integrity import CheckpointError
        from mindclip.models.weights import load_weights

        try:
            load_weights(model, state, source=checkpoint)
        except CheckpointError:
            raise
        except ValueError as e:
            raise CheckpointError(f"{checkpoint}: {e}") from None
    return model


def model_config_dict(config):
    """ModelConfig -> plain dict (to save beside a checkpoint)."""
    return to_dict(config)


__all__ = ["ImageConfig", "TextConfig", "ModelConfig", "ConfigError", "list_models", "get_model_config",
           "build_model", "create_model", "model_config_dict", "CONFIG_DIR"]
