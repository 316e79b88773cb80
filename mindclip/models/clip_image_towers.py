"""Build CLIP's own image towers (ModifiedResNet, ViT) from a preset's `image` section.

A preset selects them with `image.backbone: modified_resnet | vit` and sizes them in `image.tower`:

    image:
      backbone: vit
      image_size: 224
      tower: {patch_size: 32, width: 768, layers: 12, heads: 12, act: quick_gelu, f1_layers: 9, leff: false}

The `tower` keys are checked strictly against the dataclasses below; an unknown key or a wrong
type raises ConfigError naming the key and the preset.
"""
import dataclasses
from typing import Optional, Tuple

from mindclip.config import ConfigError, from_dict


@dataclasses.dataclass
class ModifiedResNetOptions:
    layers: Tuple[int, int, int, int] = (3, 4, 6, 3)
    width: int = 64
    heads: Optional[int] = None  # default 32 * width // 64, as in CLIP

    def validate(self):
        if self.width % 2 or self.width < 2:
            raise ValueError(f"width must be a positive even number, got {self.width}")
        if min(self.layers) < 1:
            raise ValueError(f"layers must all be >= 1, got {self.layers}")


@dataclasses.dataclass
class VitOptions:
    patch_size: int = 32
    width: int = 768
    layers: int = 12
    heads: int = 12
    mlp_ratio: float = 4.0
    act: str = "gelu"  # gelu | quick_gelu (OpenAI weights)
    f1_layers: Optional[int] = None  # PyramidCLIP's Ls; default 3/4 of the layers (9 of 12)
    leff: bool = False  # LeFF in the f1 blocks (PyramidCLIP)

    def validate(self):
        if self.act not in ("gelu", "quick_gelu"):
            raise ValueError(f"act must be 'gelu' or 'quick_gelu', got {self.act!r}")
        if self.width % self.heads:
            raise ValueError(f"width {self.width} is not divisible by heads {self.heads}")
        if self.f1_layers is not None and not 0 <= self.f1_layers <= self.layers:
            raise ValueError(f"f1_layers={self.f1_layers} must be between 0 and layers={self.layers}")


TOWER_OPTIONS = {"modified_resnet": ModifiedResNetOptions, "vit": VitOptions}
CLIP_TOWER_TYPES = tuple(TOWER_OPTIONS)


def tower_options(backbone, tower=None, source="model preset"):
    """The checked options dataclass for `backbone` from the `image.tower` mapping (None = defaults)."""
    if backbone not in TOWER_OPTIONS:
        raise ConfigError(f"{source}: image.backbone {backbone!r} is not a CLIP tower ({', '.join(CLIP_TOWER_TYPES)})")
    return from_dict(TOWER_OPTIONS[backbone], dict(tower or {}), source, prefix="image.tower.")


def build_clip_tower(backbone, embed_dim, image_size, tower=None, source="model preset"):
    """A randomly initialised ModifiedResNet or VisionTransformer.

    Args:
        backbone: `modified_resnet` or `vit`.
        embed_dim: size of the joint embedding (the tower's output).
        image_size: square input side (a multiple of 32 for the ResNet, of patch_size for the ViT).
        tower: the preset's `image.tower` mapping (see ModifiedResNetOptions / VitOptions).
        source: named in error messages (e.g. the preset's file).
    """
    options = tower_options(backbone, tower, source)
    if backbone == "modified_resnet":
        from mindclip.models.modified_resnet import ModifiedResNet

        heads = options.heads or options.width * 32 // 64
        return ModifiedResNet(options.layers, options.width, heads, embed_dim, image_size)
    from mindclip.models.vit import VisionTransformer

    return VisionTransformer(image_size, options.patch_size, options.width, options.layers, options.heads,
                             embed_dim, options.act, options.mlp_ratio, options.f1_layers, options.leff)


__all__ = ["ModifiedResNetOptions", "VitOptions", "CLIP_TOWER_TYPES", "tower_options", "build_clip_tower"]
