"""Synthetic batches for benchmarks and tests: random images, caption-shaped token rows, MLM columns.

NumPy only (no MindSpore), so that the PyTorch side of the benchmarks (mindclip/bench/) imports the
same recipe instead of a copy. Columns and order are the method's training batch
(`mindclip.data.BATCH_COLUMNS`): clip (image, tokens); lightclip (image, tokens, mlm_tokens, mlm_positions,
mlm_labels); pyramidclip (image_global, image_local, tokens, summary_tokens, roi, roi_count).

Caption lengths: "uniform" puts each caption's EOT at a uniform position in 5..length-2; "cc3m"
draws BPE counts from a log-normal with median 12 tokens and sigma 0.45 (about CC3M's captions:
~10 words at ~1.2 tokens per word), cut to fit. No caption set ships with mindclip and nothing is
downloaded, so this models lengths only.
"""
import numpy as np

from mindclip.data.masking import compact_mlm_labels, mask_tokens, mlm_max_predictions
from mindclip.data.validate import ROI_DIM
from mindclip.tokenizer import EOT_ID, SOT_ID

CC3M_MEDIAN_TOKENS, CC3M_SIGMA = 12, 0.45
LENGTH_MODELS = ("uniform", "cc3m")


def cc3m_token_counts(rng, size, context_length):
    """BPE ids per caption (SOT and EOT not counted) of `size` CC3M-like captions, 1..context_length-2."""
    counts = np.round(np.exp(rng.normal(np.log(CC3M_MEDIAN_TOKENS), CC3M_SIGMA, size)))
    return np.minimum(np.maximum(counts, 1), context_length - 2).astype(int)


def synthetic_tokens(rng, batch, length, lengths="uniform"):
    """(batch, length) int32 rows: SOT, random word ids, EOT, zero padding."""
    if lengths not in LENGTH_MODELS:
        raise ValueError(f"lengths must be one of {LENGTH_MODELS}, got {lengths!r}")
    if lengths == "cc3m":
        ends = cc3m_token_counts(rng, batch, length) + 1  # the EOT position
    else:
        ends = rng.integers(5, length - 1, batch)
    tokens = np.zeros((batch, length), np.int32)
    for i, end in enumerate(ends):
        tokens[i, 0] = SOT_ID
        tokens[i, 1:end] = rng.integers(1, SOT_ID - 1, end - 1)
        tokens[i, end] = EOT_ID
    return tokens


def synthetic_arrays(method, image_size, batch, length, rng, lengths="uniform", roi_max=10):
    """A dict column name -> array with the method's batch columns, in batch order."""
    images = rng.standard_normal((batch, 3, image_size, image_size)).astype(np.float32)
    tokens = synthetic_tokens(rng, batch, length, lengths)
    if method == "clip":
        return {"image": images, "tokens": tokens}
    if method == "lightclip":
        masked, labels = mask_tokens(tokens, rng)
        positions, labels_k = compact_mlm_labels(labels, mlm_max_predictions(length))
        return {"image": images, "tokens": tokens, "mlm_tokens": masked, "mlm_positions": positions,
                "mlm_labels": labels_k}
    if method == "pyramidclip":
        local = rng.standard_normal(images.shape).astype(np.float32)
        roi_count = rng.integers(0, roi_max + 1, batch).astype(np.int32)
        roi = rng.standard_normal((batch, roi_max, ROI_DIM)).astype(np.float32)
        roi *= (np.arange(roi_max)[None, :, None] < roi_count[:, None, None])  # padded rows are zeros
        return {"image_global": images, "image_local": local, "tokens": tokens,
                "summary_tokens": synthetic_tokens(rng, batch, length, lengths), "roi": roi, "roi_count": roi_count}
    raise ValueError(f"unknown method {method!r}")
