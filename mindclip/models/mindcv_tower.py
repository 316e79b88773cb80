"""The mindcv image tower: a mindcv backbone with 4 stage taps, average pooling of the last stage, linear projection.

CLIP's own image towers (ModifiedResNet, ViT) are built by `clip_image_towers.py`.
"""
from mindspore import nn
from mindspore.common.initializer import Normal

from mindclip.models.backbones import create_backbone


class MindcvImageTower(nn.Cell):
    """Backbone + global average pool of stage 4 + `proj` Dense(C4 -> embed_dim, no bias).

    Args:
        backbone: `resnet18`, `mobilenet_v2` or `swin_nano` (see `backbones.create_backbone`).
        embed_dim: size of the joint embedding.
        image_size: input resolution (square); Swin's token grids depend on it.
        window_size, drop_path_rate: Swin only.
    """

    def __init__(self, backbone, embed_dim=512, image_size=224, window_size=None, drop_path_rate=None):
        super().__init__()
        self.backbone = create_backbone(backbone, image_size, window_size, drop_path_rate)
        self.stage_channels = tuple(self.backbone.stage_channels)
        self.image_size = image_size
        self.embed_dim = embed_dim
        width = self.stage_channels[3]
        self.proj = nn.Dense(width, embed_dim, weight_init=Normal(width ** -0.5), has_bias=False)

    def forward_stages(self, images):
        """images (B, 3, H, W) -> 4 maps (B, C_i, H_i, W_i)."""
        return self.backbone(images)

    def pool(self, last_stage):
        """(B, C4, H4, W4) -> (B, E): mean over the grid, then the projection."""
        return self.proj(last_stage.mean(axis=(2, 3)))

    def construct(self, images):
        stages = self.forward_stages(images)
        return self.pool(stages[3])  # (B, E)


ImageTower = MindcvImageTower  # the former name, kept importable
