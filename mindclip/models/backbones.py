"""Image backbones from mindcv with four stage taps. The only module of mindclip that imports mindcv.

Every backbone is a Cell with `stage_channels` (4 ints) whose construct(images (B, 3, H, W)) returns
4 feature maps (B, C_i, H_i, W_i). Weights are always randomly initialised (no download).
"""
from mindspore import nn
from mindcv.models import create_model as create_mindcv_model
from mindcv.models.swintransformer import SwinTransformer

# name -> (mindcv model name, out_indices, stage channels)
MINDCV_FEATURE_MODELS = {
    "resnet18": ("resnet18", (1, 2, 3, 4), (64, 128, 256, 512)),
    "mobilenet_v2": ("mobilenet_v2_100", (3, 6, 13, 17), (24, 32, 96, 320)),
}
SWIN_NANO = {"embed_dim": 48, "depths": (2, 2, 6, 2), "num_heads": (3, 6, 12, 24), "patch_size": 4}
BACKBONES = tuple(MINDCV_FEATURE_MODELS) + ("swin_nano",)


class MindcvFeatureBackbone(nn.Cell):
    """A mindcv CNN built with `features_only=True`: the classifier is never built."""

    def __init__(self, name):
        super().__init__()
        mindcv_name, out_indices, channels = MINDCV_FEATURE_MODELS[name]
        self.net = create_mindcv_model(mindcv_name, pretrained=False, features_only=True,
                                       out_indices=list(out_indices))
        self.stage_channels = channels

    def construct(self, images):
        s1, s2, s3, s4 = self.net(images)  # (B, C_i, H/2^(i+1), W/2^(i+1)), i = 1..4
        return s1, s2, s3, s4


class SwinBackbone(nn.Cell):
    """Swin-Nano (embed 48, depths 2-2-6-2) with stage taps after each stage's blocks.

    mindcv's `BasicLayer` ends with the patch merging of the next stage; the tap is taken before
    it, so the maps are (48, 96, 192, 384) channels at strides 4, 8, 16, 32, like timm's features.
    The last tap goes through Swin's final LayerNorm (the one its classifier uses), so that every
    parameter is used. `image_size / 4 / 2^i` must be divisible by `window_size` at every stage
    where it is larger than the window (mindcv shrinks the window to the grid when it is not).
    """

    def __init__(self, image_size=224, window_size=7, drop_path_rate=0.0):
        super().__init__()
        check_swin_resolution(image_size, window_size)
        self.swin = SwinTransformer(image_size=image_size, num_classes=0, window_size=window_size,
                                    drop_path_rate=drop_path_rate, **SWIN_NANO)
        self.grid = [image_size // SWIN_NANO["patch_size"] // 2 ** i for i in range(4)]
        self.stage_channels = tuple(SWIN_NANO["embed_dim"] * 2 ** i for i in range(4))

    def _to_map(self, tokens, stage):
        batch, _, channels = tokens.shape
        side = self.grid[stage]
        return tokens.transpose(0, 2, 1).reshape(batch, channels, side, side)  # (B, C, H, W)

    def construct(self, images):
        x = self.swin.pos_drop(self.swin.patch_embed(images))  # (B, H/4 * W/4, 48)
        maps = ()
        for i in range(4):
            layer = self.swin.layers[i]
            for block in layer.blocks:
                x = block(x)
            if i == 3:
                maps = maps + (self._to_map(self.swin.norm(x), i),)
            else:
                maps = maps + (self._to_map(x, i),)
                x = layer.downsample(x)  # (B, H_i/2 * W_i/2, 2C)
        return maps


def check_swin_resolution(image_size, window_size):
    """Refuse image sizes whose Swin token grids cannot be split into windows."""
    patch = SWIN_NANO["patch_size"]
    if image_size % (patch * 8):
        raise ValueError(f"swin_nano needs image_size divisible by {patch * 8} (patch 4, 3 merges); "
                         f"got {image_size}")
    grids = [image_size // patch // 2 ** i for i in range(4)]
    for stage, side in enumerate(grids):
        if side > window_size and side % window_size:
            raise ValueError(f"swin_nano: stage {stage + 1} grid {side}x{side} (image_size {image_size}) "
                             f"is not divisible by window_size {window_size}; e.g. 224 or 112 with "
                             f"window 7, 64 or 128 with window 4")


def create_backbone(name, image_size=224, window_size=None, drop_path_rate=None):
    """Build a backbone by name: `resnet18`, `mobilenet_v2` or `swin_nano`.

    `window_size` (default 7) and `drop_path_rate` (default 0.0) exist only for swin_nano; giving
    them for a CNN is an error rather than being ignored. CNNs accept any image size (>= 32).
    """
    if name in MINDCV_FEATURE_MODELS:
        if window_size is not None or drop_path_rate is not None:
            raise ValueError(f"window_size / drop_path_rate apply only to swin_nano, not to {name!r}")
        return MindcvFeatureBackbone(name)
    if name == "swin_nano":
        return SwinBackbone(image_size, 7 if window_size is None else window_size,
                            0.0 if drop_path_rate is None else drop_path_rate)
    raise ValueError(f"unknown image backbone {name!r}; known: {', '.join(BACKBONES)}")


def mindcv_blocks():
    """The residual block classes of the mindcv backbones: the units of activation recompute."""
    from mindcv.models.mobilenetv2 import InvertedResidual
    from mindcv.models.resnet import BasicBlock, Bottleneck
    from mindcv.models.swintransformer import SwinTransformerBlock

    return InvertedResidual, BasicBlock, Bottleneck, SwinTransformerBlock
