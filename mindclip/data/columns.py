"""The columns of a training batch, per method, in batch order: their one definition.

`create_dataset` yields exactly `BATCH_COLUMNS[method]` (plus `id` when asked), the objectives take
them as arguments in this order, and the trainer and benchmarks find the caption tokens with
`caption_tokens_index`. Shapes and dtypes: docs/architecture.md, "Batches". Pure Python.
"""

METHODS = ("clip", "lightclip", "pyramidclip")

IMAGE_COLUMNS = {"clip": ("image",), "lightclip": ("image",), "pyramidclip": ("image_global", "image_local")}
"""The image views of a batch: (B, 3, H, W) float32 each."""

TEXT_COLUMNS = {
    "clip": ("tokens",),
    "lightclip": ("tokens", "mlm_tokens", "mlm_positions", "mlm_labels"),
    "pyramidclip": ("tokens", "summary_tokens"),
}
"""The text columns, made from the caption (and summary) and cut together to the batch's length bucket."""

ROI_COLUMNS = {"clip": (), "lightclip": (), "pyramidclip": ("roi", "roi_count")}
"""PyramidCLIP's region features (B, M, 2052) float32 and their count (B,) int32."""

BATCH_COLUMNS = {method: IMAGE_COLUMNS[method] + TEXT_COLUMNS[method] + ROI_COLUMNS[method] for method in METHODS}
"""method -> the names of a training batch's columns, in batch order."""

CAPTION_TOKENS = "tokens"
"""The caption's token rows (B, L) int32: the column whose length L is the batch's text bucket."""


def caption_tokens_index(method):
    """Position of the caption tokens in a batch of `method` (1 for clip and lightclip, 2 for pyramidclip)."""
    if method not in BATCH_COLUMNS:
        raise ValueError(f"method {method!r} is not one of {', '.join(METHODS)}")
    return BATCH_COLUMNS[method].index(CAPTION_TOKENS)
