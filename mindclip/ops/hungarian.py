"""Optimal one-to-one token matching (Hungarian algorithm) as a host-side op inside the graph.

`match_tokens` (mindclip/ops/matching.py) is the NumPy/SciPy matcher; `HUNGARIAN_MATCH` wraps it as a MindSpore
`ops.Custom(..., func_type="pyfunc")` primitive so that a jitted graph-mode train step can call it.
A pyfunc Custom op is pinned to the CPU (`primitive_target="CPU"`): on Ascend the graph is split and
this node runs on the host (see docs/lightclip.md, "Hungarian matching on the host").

Output contract of `hungarian_match(cost, text_valid)` and `match_tokens(cost, text_valid)`:

- inputs: `cost` (B, L1, L2) float32, the cost of pairing image token i with text token j (it is
  read, never differentiated: the op's backward is zero); `text_valid` (B, L2) int32 (or bool for
  `match_tokens`), non-zero where text position j is a word that may be matched.
- `image_index` (B, L2) int32: for each text position j, the image token i matched to it;
  0 where j is unmatched (so it is always a valid index for `ops.gather_elements`).
- `matched` (B, L2) float32: 1.0 where text position j is matched, else 0.0.
- Per sample, the matching is the minimum-cost one-to-one assignment between the L1 image tokens
  and the n valid text tokens (`scipy.optimize.linear_sum_assignment`); it has min(L1, n) pairs.
  When n > L1 some valid text tokens stay unmatched; invalid text tokens are never matched; a
  sample with no valid text token has no pair.
"""
import time

import mindspore as ms
from mindspore import ops

from mindclip.ops.matching import match_tokens


class MatchTimer:
    """Host seconds spent in the matcher while `enabled`: off by default; the train benchmark reads it."""

    def __init__(self):
        self.enabled, self.seconds, self.calls = False, 0.0, 0

    def reset(self):
        self.seconds, self.calls = 0.0, 0


MATCH_TIMER = MatchTimer()


def _match_tokens_pyfunc(cost, text_valid):
    """The host kernel: MindSpore hands NumPy arrays in and takes NumPy arrays back."""
    if not MATCH_TIMER.enabled:
        return match_tokens(cost, text_valid)
    start = time.perf_counter()
    out = match_tokens(cost, text_valid)
    MATCH_TIMER.seconds += time.perf_counter() - start
    MATCH_TIMER.calls += 1
    return out


def _infer_shape(cost_shape, valid_shape):
    return valid_shape, valid_shape


def _infer_dtype(cost_dtype, valid_dtype):
    return ms.int32, ms.float32


def _zero_bprop(cost, text_valid, out, dout):
    """The matching is piecewise constant in the cost: no gradient flows through it."""
    return ops.zeros_like(cost), ops.zeros_like(text_valid)


HUNGARIAN_MATCH = ops.Custom(_match_tokens_pyfunc, out_shape=_infer_shape, out_dtype=_infer_dtype,
                             func_type="pyfunc", bprop=_zero_bprop)


def hungarian_match(cost, text_valid):
    """Graph-mode Hungarian matching: (cost (B,L1,L2) f32, text_valid (B,L2)) -> (image_index, matched).

    Usable inside `@ms.jit` / `Cell.construct`. The cost is detached here; `text_valid` may be bool
    or any integer type. See the module docstring for the output contract.
    """
    cost = ops.stop_gradient(cost.astype(ms.float32))
    text_valid = ops.stop_gradient(text_valid.astype(ms.int32))
    return HUNGARIAN_MATCH(cost, text_valid)
