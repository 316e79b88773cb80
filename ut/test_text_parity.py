"""The text tower against open_clip's TextTransformer (golden weights and outputs, both activations).

`ut/data/text_tower_golden.npz` is written by `ut/data/make_goldens.py` (open_clip, torch CPU):
per activation prefix (`gelu/`, `quick_gelu/`) the tower's state dict, `tokens` (6, 77), `pooled`
(6, 32) and `final_tokens` (6, 77, 64) = the ln_final outputs. Config: vocab 1000, context 77,
width 64, heads 4, layers 4, embed 32.
"""
import os

import numpy as np
import pytest
import mindspore as ms
from mindspore import nn

from mindclip.models.text import TextTransformer, load_open_clip_text_state

GOLDEN = os.path.join(os.path.dirname(os.path.abspath(__file__)), "data", "text_tower_golden.npz")
TOLERANCE = 1e-4


class TowerOutputs(nn.Cell):
    """(final tokens after ln_final, pooled + projected) in one graph."""

    def __init__(self, tower):
        super().__init__()
        self.tower = tower

    def construct(self, tokens):
        final, _ = self.tower.forward_tokens(tokens)  # (B, L, W)
        return final, self.tower.pool(final, tokens)  # (B, E)


def load_golden(prefix):
    with np.load(GOLDEN) as data:
        return {k[len(prefix) + 1:]: data[k] for k in data.files if k.startswith(prefix + "/")}


@pytest.mark.parametrize("act", ["gelu", "quick_gelu"])
def test_text_tower_matches_open_clip(act):
    golden = load_golden(act)
    tower = TextTransformer(context_length=77, vocab_size=1000, width=64, heads=4, layers=4, embed_dim=32, act=act)
    load_open_clip_text_state(tower, golden)
    final, pooled = TowerOutputs(tower)(ms.Tensor(golden["tokens"]))
    final_diff = np.abs(final.asnumpy() - golden["final_tokens"]).max()
    pooled_diff = np.abs(pooled.asnumpy() - golden["pooled"]).max()
    assert final_diff <= TOLERANCE, f"{act}: final tokens differ by {final_diff}"
    assert pooled_diff <= TOLERANCE, f"{act}: pooled features differ by {pooled_diff}"


def test_open_clip_loader_names_missing_and_mis_shaped_weights():
    golden = load_golden("gelu")
    del golden["ln_final.bias"]
    tower = TextTransformer(context_length=77, vocab_size=999, width=64, heads=4, layers=4, embed_dim=32)
    with pytest.raises(ValueError, match=r"ln_final\.bias.*token_embedding\.weight: \(1000, 64\) vs \(999, 64\)"):
        load_open_clip_text_state(tower, golden)
