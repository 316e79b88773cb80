"""Decode-check images at conversion time and normalise what is stored.

Every image is fully decoded once while converting, so that training never meets a file it cannot
read. What is stored is what MindSpore's `vision.Decode` reads back as the RGB pixels PIL gives
for `image.convert("RGB")` (open_clip's convention: an alpha channel is dropped, grayscale and
palette images are expanded):

- a baseline or progressive RGB JPEG is stored as its original bytes (no re-encoding loss);
- anything else (PNG, grayscale or CMYK JPEG, WebP, GIF, BMP, ...) is converted to RGB and
  re-encoded losslessly as PNG.
"""
import io
import warnings

import numpy as np
from PIL import Image, ImageFile, UnidentifiedImageError

# A truncated file must fail, not decode into a half-grey picture.
ImageFile.LOAD_TRUNCATED_IMAGES = False


class BadSample(Exception):
    """A sample that conversion skips; `reason` is one of `SKIP_REASONS`."""

    def __init__(self, reason, detail=""):
        super().__init__(f"{reason}: {detail}" if detail else reason)
        self.reason = reason
        self.detail = detail


# Every reason a sample can be skipped for, in the order the summary line lists them.
SKIP_REASONS = (
    "bad_record",  # a line/row/member that could not be parsed (bad JSON, missing column)
    "missing_file",  # the image (or ROI) file named by the record does not exist
    "unreadable_image",  # not an image, corrupt or truncated
    "image_too_large",  # more than 6 MiB stored (a MindRecord page holds one sample)
    "empty_caption",  # caption missing or only whitespace
    "caption_not_utf8",  # caption bytes are not valid UTF-8
    "bad_roi",  # ROI array not (m, 2052) finite float
)


def read_file_bytes(path):
    """Bytes of `path`; a missing or unreadable file becomes `BadSample("missing_file")`."""
    try:
        with open(path, "rb") as f:
            return f.read()
    except OSError as e:
        raise BadSample("missing_file", f"{path}: {e.strerror or e}") from None


def decode_rgb(data):
    """Fully decode image bytes with PIL into an RGB `PIL.Image` (raises `BadSample`)."""
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("error", Image.DecompressionBombWarning)
            image = Image.open(io.BytesIO(data))
            image.load()  # decodes every pixel: truncation and corruption show up here
            fmt, mode = image.format, image.mode
            rgb = image.convert("RGB")
    except (UnidentifiedImageError, OSError, SyntaxError, ValueError, Image.DecompressionBombError,
            Image.DecompressionBombWarning) as e:
        raise BadSample("unreadable_image", str(e) or type(e).__name__) from None
    rgb.info["source_format"] = fmt
    rgb.info["source_mode"] = mode
    return rgb


def checked_image_bytes(data):
    """Validate image bytes; return `(stored_bytes, width, height)` as described in the module doc."""
    rgb = decode_rgb(data)
    if rgb.info["source_format"] == "JPEG" and rgb.info["source_mode"] == "RGB":
        return data, rgb.width, rgb.height
    buffer = io.BytesIO()
    rgb.save(buffer, format="PNG", compress_level=1)
    return buffer.getvalue(), rgb.width, rgb.height


def pil_to_rgb_array(image):
    """`PIL.Image` -> (H, W, 3) uint8 RGB array (alpha dropped, grayscale expanded)."""
    return np.asarray(image.convert("RGB"), dtype=np.uint8)
