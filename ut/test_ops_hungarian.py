"""The Hungarian PyFunc op: optimal against brute force, equal to SciPy at real sizes, zero backward."""
import itertools

import numpy as np
import pytest
from scipy.optimize import linear_sum_assignment

import mindspore as ms
from mindspore import nn

from mindclip.ops import HUNGARIAN_MATCH, hungarian_match, match_tokens


class MatchCell(nn.Cell):
    """The op inside a compiled graph."""

    def construct(self, cost, text_valid):
        return hungarian_match(cost, text_valid)


@pytest.fixture(scope="module")
def match_cell():
    return MatchCell()


def brute_force_min_cost(cost, valid_columns):
    """Minimum total cost of a one-to-one matching of min(L1, n) pairs, by enumeration."""
    n_image, n_text = cost.shape[0], len(valid_columns)
    best = np.inf
    if n_text <= n_image:  # every valid text token gets a distinct image token
        for images in itertools.permutations(range(n_image), n_text):
            best = min(best, sum(cost[i, j] for i, j in zip(images, valid_columns)))
    else:  # every image token gets a distinct valid text token
        for texts in itertools.permutations(valid_columns, n_image):
            best = min(best, sum(cost[i, j] for i, j in zip(range(n_image), texts)))
    return best


def check_contract(cost, valid, image_index, matched):
    """Shape/dtype contract and a one-to-one matching of min(L1, n_valid) pairs on valid tokens."""
    batch, n_image, n_text = cost.shape
    assert image_index.shape == matched.shape == (batch, n_text)
    assert image_index.dtype == np.int32 and matched.dtype == np.float32
    assert np.all((image_index >= 0) & (image_index < n_image))
    for b in range(batch):
        pairs = np.flatnonzero(matched[b])
        assert set(pairs) <= set(np.flatnonzero(valid[b]))
        assert len(pairs) == min(n_image, int(valid[b].sum()))
        assert len(set(image_index[b, pairs])) == len(pairs)
        assert np.all(image_index[b, matched[b] == 0] == 0)


def matched_total(cost_b, index_b, matched_b):
    pairs = np.flatnonzero(matched_b)
    return cost_b[index_b[pairs], pairs].sum()


@pytest.mark.parametrize("n_image, valid_rows", [
    (3, [[0, 1, 1, 0], [1, 1, 1, 0], [1, 0, 1, 1], [0, 0, 0, 0]]),   # fewer words than image tokens
    (2, [[1, 1, 1, 0], [1, 1, 1, 1], [0, 1, 0, 1], [0, 0, 1, 0]]),   # more words than image tokens
])
def test_optimal_against_brute_force(match_cell, n_image, valid_rows):
    rng = np.random.default_rng(n_image)
    valid = np.array(valid_rows, dtype=np.int32)
    for _ in range(5):
        cost = rng.uniform(0, 2, size=(len(valid_rows), n_image, 4)).astype(np.float32)
        image_index, matched = (t.asnumpy() for t in match_cell(ms.Tensor(cost), ms.Tensor(valid)))
        check_contract(cost, valid, image_index, matched)
        for b in range(len(valid_rows)):
            columns = list(np.flatnonzero(valid[b]))
            want = brute_force_min_cost(cost[b], columns) if columns else 0.0
            np.testing.assert_allclose(matched_total(cost[b], image_index[b], matched[b]), want, rtol=1e-6)


@pytest.mark.parametrize("n_image, n_text", [(49, 77), (77, 49)])
def test_equals_scipy_at_real_sizes(match_cell, n_image, n_text):
    rng = np.random.default_rng(n_image)
    batch = 16
    cost = rng.uniform(0, 2, size=(batch, n_image, n_text)).astype(np.float32)
    lengths = rng.integers(1, n_text - 1, size=batch)  # words at 1..length (SOT at 0, EOT then pad)
    lengths[3] = 0  # a caption with no words
    lengths[5] = n_text - 2  # a caption that fills the context
    valid = (np.arange(n_text)[None, :] >= 1) & (np.arange(n_text)[None, :] <= lengths[:, None])
    valid = valid.astype(np.int32)
    image_index, matched = (t.asnumpy() for t in match_cell(ms.Tensor(cost), ms.Tensor(valid)))
    check_contract(cost, valid, image_index, matched)
    np.testing.assert_array_equal(matched[3], 0)
    for b in range(batch):
        columns = np.flatnonzero(valid[b])
        rows, picked = linear_sum_assignment(cost[b][:, columns]) if columns.size else ([], [])
        want = cost[b][rows, columns[picked]].sum() if columns.size else 0.0
        np.testing.assert_allclose(matched_total(cost[b], image_index[b], matched[b]), want, rtol=1e-5)
    np.testing.assert_array_equal(image_index, match_tokens(cost, valid)[0])


def test_accepts_bool_mask_and_half_cost(match_cell):
    cost = np.array([[[0.0, 1.0, 5.0], [1.0, 0.0, 5.0]]], dtype=np.float16)  # (1, 2, 3)
    valid = np.array([[True, True, False]])
    image_index, matched = (t.asnumpy() for t in match_cell(ms.Tensor(cost), ms.Tensor(valid)))
    np.testing.assert_array_equal(image_index, [[0, 1, 0]])
    np.testing.assert_array_equal(matched, [[1, 1, 0]])


class RawMatchCell(nn.Cell):
    """The primitive itself, without hungarian_match's stop_gradient: its own bprop is used."""

    def construct(self, cost, text_valid):
        image_index, matched = HUNGARIAN_MATCH(cost, text_valid)
        return matched * cost.sum()


def test_backward_is_zero():
    cost = ms.Tensor(np.random.default_rng(0).uniform(size=(2, 3, 4)).astype(np.float32))
    valid = ms.Tensor(np.ones((2, 4), np.int32))
    grad = ms.grad(RawMatchCell())(cost, valid).asnumpy()  # only the cost.sum() path: d/dcost = sum(matched)
    np.testing.assert_array_equal(grad, np.full((2, 3, 4), 6.0, np.float32))


def test_bad_shapes_are_refused():
    with pytest.raises(ValueError, match="cost must be"):
        match_tokens(np.zeros((2, 3, 4)), np.zeros((2, 3)))
