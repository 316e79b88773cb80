"""pyramid_loss / PyramidLoss against NumPy: four label-smoothed symmetric InfoNCE losses."""
import numpy as np

import mindspore as ms

from mindclip.losses import PyramidLoss, pyramid_loss


def smoothed_infonce(image, text, scale, alpha):
    """Symmetric cross-entropy with targets 1-alpha on the diagonal, alpha/(n-1) elsewhere."""
    logits = scale * image.astype(np.float64) @ text.astype(np.float64).T
    n = len(logits)
    targets = np.where(np.eye(n, dtype=bool), 1 - alpha, alpha / (n - 1))

    def cross_entropy(x):
        x = x - x.max(1, keepdims=True)
        return -(targets * (x - np.log(np.exp(x).sum(1, keepdims=True)))).sum(1).mean()

    return (cross_entropy(logits) + cross_entropy(logits.T)) / 2


def unit_rows(x):
    return (x / np.linalg.norm(x, axis=1, keepdims=True)).astype(np.float32)


RNG = np.random.default_rng(4)
V_G, V_L, V_R, T_T, T_S = (unit_rows(RNG.normal(size=(6, 10))) for _ in range(5))


def reference_parts(alpha, scale=20.0):
    pairs = [(V_G, T_S), (V_L, T_T), (V_R, T_S), (V_R, T_T)]
    return [smoothed_infonce(v, t, scale, alpha) for v, t in pairs]


def test_function_matches_numpy():
    total, parts = pyramid_loss(*(ms.Tensor(x) for x in (V_G, V_L, V_R, T_T, T_S)), ms.Tensor(20.0))
    want = reference_parts(0.2)
    np.testing.assert_allclose([p.asnumpy() for p in parts], want, rtol=1e-5)
    np.testing.assert_allclose(total.asnumpy(), 0.25 * sum(want), rtol=1e-5)


def test_cell_in_graph_matches_numpy():
    """The compiled Cell (world of one), with another alpha and fp16 inputs computed in fp32."""
    loss = PyramidLoss(alpha=0.1)
    total, parts = loss(*(ms.Tensor(x, ms.float16) for x in (V_G, V_L, V_R, T_T, T_S)), ms.Tensor(20.0))
    halves = [x.astype(np.float16) for x in (V_G, V_L, V_R, T_T, T_S)]
    pairs = [(halves[0], halves[4]), (halves[1], halves[3]), (halves[2], halves[4]), (halves[2], halves[3])]
    want = [smoothed_infonce(v, t, 20.0, 0.1) for v, t in pairs]
    assert total.dtype == ms.float32
    np.testing.assert_allclose([p.asnumpy() for p in parts], want, rtol=1e-5)
    np.testing.assert_allclose(total.asnumpy(), 0.25 * sum(want), rtol=1e-5)
