"""Gradient clipping of the train step (`optim.clip_grad_norm`) against a NumPy re-computation."""
import mindspore as ms
import numpy as np
import pytest
from mindspore import nn, ops

from mindclip.train.step import clip_by_global_norm


class Clip(nn.Cell):
    def __init__(self, max_norm):
        super().__init__()
        self.hyper_map = ops.HyperMap()
        self.max_norm = max_norm

    def construct(self, scalar, matrix):
        return clip_by_global_norm(self.hyper_map, (scalar, matrix), self.max_norm)


@pytest.mark.parametrize("max_norm", [0.5, 100.0])  # clipped, and left alone (norm below the limit)
def test_clip_by_global_norm_keeps_shapes_and_matches_numpy(max_norm):
    rng = np.random.default_rng(0)
    scalar, matrix = np.float32(1.5), rng.standard_normal((3, 4)).astype(np.float32)
    out = Clip(max_norm)(ms.Tensor(scalar), ms.Tensor(matrix))
    norm = np.sqrt(scalar ** 2 + (matrix.astype(np.float64) ** 2).sum())
    factor = min(1.0, max_norm / (norm + 1e-6))  # torch.nn.utils.clip_grad_norm_'s rule
    assert out[0].shape == () and out[1].shape == (3, 4)  # ops.clip_by_global_norm made the () a (1,)
    np.testing.assert_allclose(out[0].asnumpy(), scalar * factor, rtol=1e-6)
    np.testing.assert_allclose(out[1].asnumpy(), matrix * factor, rtol=1e-6)
    assert (factor < 1.0) == (max_norm == 0.5)
