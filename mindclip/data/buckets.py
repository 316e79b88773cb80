"""Exact text-length bucketing: cut a batch's token rows to the smallest bucket that holds them.

The text tower is causal and pooled at EOT; the token loss only reads word positions and MLM only
the masked ones. So every position after the batch's last non-pad token can be dropped without
changing any output, loss or gradient (docs/performance.md proves it and ut/test_buckets.py
checks it). A batch is cut to the smallest of a few fixed lengths so that the train step compiles
one graph per bucket, once, instead of one per batch.

Pure numpy: the dataset pipeline calls `TrimToBucket` on batched columns.
"""
import numpy as np

from mindclip.data.masking import mlm_max_predictions

DEFAULT_BUCKETS = (16, 32, 48)
MIN_BUCKET = 2  # SOT + EOT


def resolve_buckets(buckets, context_length):
    """The sorted bucket lengths in use: those below `context_length`, then `context_length`.

    An empty `buckets` turns bucketing off (every batch keeps `context_length` positions).
    Lengths >= context_length are dropped (the context length is always the last bucket).
    """
    for length in buckets:
        if int(length) != length or length < MIN_BUCKET:
            raise ValueError(f"text_buckets: {length!r} is not a length >= {MIN_BUCKET}")
    return tuple(sorted({int(b) for b in buckets if b < context_length})) + (int(context_length),)


def used_length(*token_arrays):
    """Positions up to and including the last non-pad (non-zero) id of any row of any array."""
    last = 0
    for tokens in token_arrays:
        tokens = np.asarray(tokens)
        nonzero = tokens.reshape(-1, tokens.shape[-1]) != 0  # (B, L)
        rows = nonzero.any(axis=-1)  # (B,) rows that are not all padding
        if rows.any():
            ends = tokens.shape[-1] - np.argmax(nonzero[:, ::-1], axis=-1)  # (B,) last non-pad + 1
            last = max(last, int(ends[rows].max()))
    return last


def bucket_length(buckets, *token_arrays):
    """The smallest bucket that holds every row's last non-pad token (the last bucket at most)."""
    needed = used_length(*token_arrays)
    for length in buckets:
        if length >= needed:
            return length
    raise ValueError(f"a token row uses {needed} positions, more than the largest bucket {buckets[-1]}")


class TrimToBucket:
    """Dataset map over a batch's text columns (`TEXT_COLUMNS[method]`): cut them to the batch's bucket length.

    lightclip columns are (tokens, mlm_tokens, mlm_positions, mlm_labels): the token rows are cut
    to length Lb and the MLM slots to K(Lb) = `mlm_max_predictions(Lb, mask_prob)` (a caption of
    Lb positions never has more masked words; its slots are filled first, the rest is padding).
    Other methods' text columns are all token rows (tokens, and summary_tokens for pyramidclip),
    cut to one common length.
    """

    def __init__(self, buckets, method, mask_prob=0.15):
        self.buckets = tuple(buckets)
        self.method = method
        self.mask_prob = mask_prob

    def __call__(self, *columns):
        if self.method == "lightclip":
            tokens, mlm_tokens, positions, labels = columns
            length = bucket_length(self.buckets, tokens, mlm_tokens)
            slots = min(positions.shape[-1], mlm_max_predictions(length, self.mask_prob))
            if (labels[:, slots:] != -100).any():
                raise ValueError(f"MLM labels beyond slot {slots} in a batch cut to {length} positions")
            return tokens[:, :length], mlm_tokens[:, :length], positions[:, :slots], labels[:, :slots]
        length = bucket_length(self.buckets, *columns)
        return tuple(c[:, :length] for c in columns)
