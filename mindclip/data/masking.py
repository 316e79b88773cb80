"""BERT-style masking of token rows for LightCLIP's masked language modelling.

Words are the ids that are not pad (0), SOT (49406) or EOT (49407). Per caption exactly
``max(1, floor(mask_prob * n_words + 0.5))`` word positions are chosen (none when the caption has
no word); each chosen position becomes ``[MASK]`` with probability 0.8, a random word id in
1..49405 with probability 0.1, and stays with probability 0.1.
"""
import math

import numpy as np

from mindclip.tokenizer import EOT_ID, MASK_ID, PAD_ID, SOT_ID

IGNORE_LABEL = -100
_RANDOM_ID_LOW, _RANDOM_ID_HIGH = 1, SOT_ID - 1  # inclusive range of replacement ids (never special)


def num_masked(n_words, mask_prob=0.15):
    """How many positions a caption of `n_words` words gets (0 when it has none)."""
    if n_words <= 0:
        return 0
    return min(n_words, max(1, math.floor(mask_prob * n_words + 0.5)))


def mlm_max_predictions(context_length, mask_prob=0.15):
    """K: the most positions any caption of `context_length` tokens can get (>= 1)."""
    return max(1, num_masked(context_length - 2, mask_prob))


def mask_tokens(tokens, rng, mask_prob=0.15, mask_id=MASK_ID):
    """Mask token rows; returns `(masked, labels)`, int32, the shape of `tokens` ((N, L) or (L,)).

    `labels` holds the original id at the chosen positions and -100 elsewhere. `rng` is a
    `numpy.random.Generator`; the result is a function of the tokens and the generator's state.
    """
    tokens = np.asarray(tokens, dtype=np.int32)
    rows = tokens.reshape(1, -1) if tokens.ndim == 1 else tokens
    if rows.ndim != 2:
        raise ValueError(f"mask_tokens expects tokens of shape (N, L) or (L,), got {tokens.shape}")
    masked, labels = rows.copy(), np.full_like(rows, IGNORE_LABEL)
    for row, ids in enumerate(rows):
        words = np.flatnonzero((ids != PAD_ID) & (ids != SOT_ID) & (ids != EOT_ID))
        chosen = rng.choice(words, size=num_masked(len(words), mask_prob), replace=False)
        if chosen.size == 0:
            continue
        labels[row, chosen] = ids[chosen]
        action = rng.random(chosen.size)
        random_ids = rng.integers(_RANDOM_ID_LOW, _RANDOM_ID_HIGH + 1, size=chosen.size)
        masked[row, chosen] = np.where(action < 0.8, mask_id, np.where(action < 0.9, random_ids, ids[chosen]))
    return masked.reshape(tokens.shape), labels.reshape(tokens.shape)


def compact_mlm_labels(labels, k):
    """(N, L) labels -> `(positions (N, K), labels_k (N, K))` int32 of the chosen positions.

    Positions are ascending and padded with 0; `labels_k` is padded with -100. A (L,) input gives
    (K,) outputs. More than `k` chosen positions in a row is an error.
    """
    labels = np.asarray(labels)
    rows = labels.reshape(1, -1) if labels.ndim == 1 else labels
    positions = np.zeros((rows.shape[0], k), dtype=np.int32)
    labels_k = np.full((rows.shape[0], k), IGNORE_LABEL, dtype=np.int32)
    for row, ids in enumerate(rows):
        chosen = np.flatnonzero(ids != IGNORE_LABEL)
        if chosen.size > k:
            raise ValueError(f"row {row} has {chosen.size} masked positions, more than K={k}")
        positions[row, :chosen.size] = chosen
        labels_k[row, :chosen.size] = ids[chosen]
    if labels.ndim == 1:
        return positions[0], labels_k[0]
    return positions, labels_k
