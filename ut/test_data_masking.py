"""MLM masking and EDA-style text augmentation, checked against brute-force counts."""
import json

import numpy as np
import pytest

from mindclip.data import TextAugmenter, compact_mlm_labels, load_synonyms, mask_tokens, mlm_max_predictions
from mindclip.data.masking import num_masked
from mindclip.data.text_augment import DEFAULT_SYNONYMS_FILE, delete_words, swap_words
from mindclip.tokenizer import EOT_ID, MASK_ID, PAD_ID, SOT_ID

SPECIAL = (PAD_ID, SOT_ID, EOT_ID)


def _rows(rng, n_rows, length=77):
    """Token rows [SOT, words..., EOT, 0...] with 0 to 75 words, one row without words."""
    rows = np.zeros((n_rows, length), np.int32)
    for row in range(n_rows):
        n_words = 0 if row == 0 else int(rng.integers(1, length - 1))
        rows[row, :n_words + 2] = [SOT_ID] + list(rng.integers(1, SOT_ID, n_words)) + [EOT_ID]
    return rows


def test_mask_tokens_chooses_the_exact_count_of_words_only():
    rng = np.random.default_rng(0)
    tokens = _rows(rng, 200)
    masked, labels = mask_tokens(tokens, np.random.default_rng(1))
    assert masked.dtype == labels.dtype == np.int32 and masked.shape == labels.shape == tokens.shape
    for ids, out, lab in zip(tokens, masked, labels):
        n_words = sum(t not in SPECIAL for t in ids)
        chosen = np.flatnonzero(lab != -100)
        assert len(chosen) == (0 if n_words == 0 else max(1, int(np.floor(0.15 * n_words + 0.5))))
        assert all(ids[p] not in SPECIAL for p in chosen)
        np.testing.assert_array_equal(lab[chosen], ids[chosen])
        keep = np.setdiff1d(np.arange(len(ids)), chosen)
        np.testing.assert_array_equal(out[keep], ids[keep])
    assert masked[0].tolist() == tokens[0].tolist() and (labels[0] == -100).all()


def test_mask_tokens_replacement_proportions_and_ids():
    rng = np.random.default_rng(2)
    tokens = _rows(rng, 3000)[1:]
    masked, labels = mask_tokens(tokens, np.random.default_rng(3))
    chosen = labels != -100
    outcome = masked[chosen]
    original = tokens[chosen]
    n = chosen.sum()
    is_mask = outcome == MASK_ID
    kept = outcome == original
    replaced = ~is_mask & ~kept
    assert n > 15000
    assert abs(is_mask.mean() - 0.8) < 0.015
    assert abs((kept.mean()) - 0.1) < 0.015  # a random id equal to the original is counted as kept (p ~ 2e-5)
    assert abs(replaced.mean() - 0.1) < 0.015
    assert outcome[replaced].min() >= 1 and outcome[replaced].max() < SOT_ID


def test_mask_tokens_is_deterministic_and_accepts_one_row():
    tokens = _rows(np.random.default_rng(4), 5)
    a = mask_tokens(tokens, np.random.default_rng(9), mask_prob=0.3, mask_id=7)
    b = mask_tokens(tokens, np.random.default_rng(9), mask_prob=0.3, mask_id=7)
    np.testing.assert_array_equal(a[0], b[0])
    np.testing.assert_array_equal(a[1], b[1])
    masked, labels = mask_tokens(tokens[3], np.random.default_rng(9))
    assert masked.shape == labels.shape == (77,)


def test_mlm_max_predictions_is_the_brute_force_maximum():
    for length, prob in [(77, 0.15), (16, 0.15), (77, 0.4), (3, 0.15), (8, 0.01)]:
        brute = max(max(1, num_masked(n, prob)) for n in range(0, length - 1))
        assert mlm_max_predictions(length, prob) == brute
    assert mlm_max_predictions(77) == 11


def test_compact_mlm_labels_round_trips():
    tokens = _rows(np.random.default_rng(5), 50)
    _, labels = mask_tokens(tokens, np.random.default_rng(6))
    k = mlm_max_predictions(77)
    positions, labels_k = compact_mlm_labels(labels, k)
    assert positions.shape == labels_k.shape == (50, k) and positions.dtype == labels_k.dtype == np.int32
    rebuilt = np.full_like(labels, -100)
    for row in range(50):
        valid = labels_k[row] != -100
        assert (np.diff(positions[row][valid]) > 0).all() and (positions[row][~valid] == 0).all()
        rebuilt[row, positions[row][valid]] = labels_k[row][valid]
    np.testing.assert_array_equal(rebuilt, labels)
    one_positions, one_labels = compact_mlm_labels(labels[7], k)
    np.testing.assert_array_equal(one_positions, positions[7])
    with pytest.raises(ValueError, match="more than K"):
        compact_mlm_labels(labels, 0)


def test_default_synonym_table_and_user_files(tmp_path):
    table = load_synonyms()
    assert len(table) >= 300 and all(table.values())
    assert "large" in table["big"]
    tsv = tmp_path / "syn.tsv"
    tsv.write_text("# comment\nDog\tpuppy, hound\n", encoding="utf-8")
    assert load_synonyms(str(tsv)) == {"dog": ("puppy", "hound")}
    js = tmp_path / "syn.json"
    js.write_text(json.dumps({"cat": ["kitten"]}), encoding="utf-8")
    assert load_synonyms(str(js)) == {"cat": ("kitten",)}
    bad = tmp_path / "bad.tsv"
    bad.write_text("dog puppy\n", encoding="utf-8")
    with pytest.raises(ValueError, match="bad.tsv:1"):
        load_synonyms(str(bad))
    assert DEFAULT_SYNONYMS_FILE.endswith("synonyms.tsv")


def test_text_augmenter_operations():
    synonyms = {"dog": ("hound",), "red": ("crimson", "scarlet")}
    always = TextAugmenter(synonyms, synonym_prob=1.0)
    assert always("A red dog, running.", np.random.default_rng(0)) in {
        "A crimson hound, running.", "A scarlet hound, running."}
    words = "one two three four five six seven eight".split()
    swapped = swap_words(words, 3, np.random.default_rng(1))
    assert sorted(swapped) == sorted(words) and swapped != words
    kept = delete_words(words, 0.5, np.random.default_rng(2))
    assert 0 < len(kept) < len(words) and [w for w in words if w in kept] == kept
    assert len(delete_words(words, 1.0, np.random.default_rng(3))) == 1
    off = TextAugmenter(synonyms)
    assert not off.enabled and off("a red dog", np.random.default_rng(0)) == "a red dog"
    full = TextAugmenter(synonyms, 0.5, 0.2, 0.2)
    caption = "a red dog sits on a red mat near the old red door"
    outputs = [full(caption, np.random.default_rng(seed)) for seed in range(20)]
    assert outputs == [full(caption, np.random.default_rng(seed)) for seed in range(20)]
    assert len(set(outputs)) > 10
