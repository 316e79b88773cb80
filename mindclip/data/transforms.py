"""Image transforms (MindSpore C++ ops) for training and evaluation.

- ``eval_transform``: resize the shorter side to `image_size` (bicubic), center crop, normalise
  with CLIP's mean/std, HWC -> CHW. Also the whole of the ``none`` training recipe.
- ``simclr_transform``: the MoCo v2 / SimCLR recipe: random resized crop (scale `crop_scale`,
  ratio 3/4..4/3, bilinear as torchvision's default), colour jitter (brightness, contrast,
  saturation 0.4, hue 0.1) with p = 0.8, grayscale with p = 0.2, Gaussian blur with p = 0.5
  (sigma drawn from {0.1, 0.5, 1.0, 1.5, 2.0}, kernel about a tenth of the image, odd),
  horizontal flip with p = 0.5 (`hflip`),
  then normalise and CHW.

`preprocess_image(pil_image, image_size)` runs the exact ops of ``eval_transform`` on one PIL
image, so evaluation and export give the numbers the pipeline gives.
"""
import numpy as np
import mindspore.dataset.transforms as T
import mindspore.dataset.vision as V

from mindclip.data.images import pil_to_rgb_array

CLIP_MEAN = (0.48145466, 0.4578275, 0.40821073)
CLIP_STD = (0.26862954, 0.26130258, 0.27577711)
BLUR_SIGMAS = (0.1, 0.5, 1.0, 1.5, 2.0)
AUGMENT_RECIPES = ("none", "simclr")


def normalize_ops():
    """uint8 HWC -> float32 CHW, (x / 255 - mean) / std."""
    return [V.Normalize(mean=[255 * m for m in CLIP_MEAN], std=[255 * s for s in CLIP_STD], is_hwc=True),
            V.HWC2CHW()]


def eval_transform(image_size):
    """Ops after decoding for evaluation and the ``none`` recipe (decoded HWC uint8 in)."""
    return [V.Resize(image_size, V.Inter.BICUBIC), V.CenterCrop(image_size)] + normalize_ops()


def simclr_transform(image_size, crop_scale=(0.2, 1.0), hflip=True, decode=False):
    """Ops for the MoCo v2 / SimCLR recipe (see module doc) on decoded images, or on encoded bytes
    with `decode=True` (the crop is then fused with decoding: `RandomCropDecodeResize`)."""
    kernel = max(3, (image_size // 10) | 1)  # odd, about 10 % of the image side
    grayscale = [V.ConvertColor(V.ConvertMode.COLOR_RGB2GRAY), V.ConvertColor(V.ConvertMode.COLOR_GRAY2RGB)]
    crop = V.RandomCropDecodeResize if decode else V.RandomResizedCrop
    ops = [
        crop(image_size, scale=tuple(crop_scale), ratio=(3 / 4, 4 / 3), interpolation=V.Inter.BILINEAR),
        T.RandomApply([V.RandomColorAdjust(0.4, 0.4, 0.4, 0.1)], prob=0.8),
        T.RandomApply(grayscale, prob=0.2),
        T.RandomApply([T.RandomChoice([V.GaussianBlur(kernel, s) for s in BLUR_SIGMAS])], prob=0.5),
    ]
    if hflip:
        ops.append(V.RandomHorizontalFlip(0.5))
    return ops + normalize_ops()


def train_transform(recipe, image_size, crop_scale=(0.2, 1.0), hflip=True, decode=False):
    """Ops for training recipe `recipe` ("none" or "simclr"); `decode=True`: they start from bytes."""
    if recipe == "none":
        return ([V.Decode()] if decode else []) + eval_transform(image_size)
    if recipe == "simclr":
        return simclr_transform(image_size, crop_scale, hflip, decode)
    raise ValueError(f"unknown augment recipe {recipe!r}; expected one of {AUGMENT_RECIPES}")


def preprocess_image(pil_image, image_size):
    """One PIL image -> (3, image_size, image_size) float32, exactly the pipeline's eval numbers."""
    image = pil_to_rgb_array(pil_image)
    for op in eval_transform(image_size):
        image = op(image)
    return np.ascontiguousarray(image, dtype=np.float32)
