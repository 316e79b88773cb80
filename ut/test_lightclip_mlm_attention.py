"""`loss.mlm_attention`: what the masked-text pass of LightCLIPPretrain may see.

One batch holds four versions of a caption whose word 3 is `[MASK]`: the original, a word to the
right of the mask changed, a word to the left changed, and a padding position after the EOT
changed. The MLM logits at the masked position must follow the right-hand word only with
bidirectional attention, follow the left-hand word in both modes, and ignore the padding.
"""
import numpy as np
import pytest
import mindspore as ms

from mindclip.config import ConfigError
from mindclip.models import create_model
from mindclip.models.lightclip import LightCLIPPretrain
from mindclip.tokenizer import EOT_ID as EOT
from mindclip.tokenizer import MASK_ID as MASK
from mindclip.tokenizer import SOT_ID as SOT

NAME = "tiny_resnet18"
LENGTH, MASKED, RIGHT, LEFT, PAD = 16, 3, 6, 1, 12  # EOT at 9, padding from 10
ORIGINAL, RIGHT_CHANGED, LEFT_CHANGED, PAD_CHANGED = range(4)


def make_batch():
    rng = np.random.default_rng(0)
    caption = np.zeros(LENGTH, np.int32)
    caption[0], caption[1:9], caption[9] = SOT, rng.integers(1, 49000, 8), EOT
    tokens = np.stack([caption] * 4)
    tokens[RIGHT_CHANGED, RIGHT] = (caption[RIGHT] + 777) % 49000 + 1
    tokens[LEFT_CHANGED, LEFT] = (caption[LEFT] + 777) % 49000 + 1
    tokens[PAD_CHANGED, PAD] = 1234  # a word id where the padding is
    mlm_tokens = tokens.copy()
    mlm_tokens[:, MASKED] = MASK
    positions = np.full((4, 1), MASKED, np.int32)
    images = np.stack([rng.standard_normal((3, 64, 64)).astype(np.float32)] * 4)  # one image for all rows
    return [ms.Tensor(x) for x in (images, tokens, mlm_tokens, positions)]


def masked_outputs(mlm_attention):
    """(text logits (4, V), fuse logits (4, V), caption-pass text tokens (4, L, E)) of one graph-mode call."""
    ms.set_seed(0)
    net = LightCLIPPretrain(create_model(NAME, **{"text.vocab_size": MASK + 1}), mlm_attention=mlm_attention)
    net.set_train(True)  # in eval mode MindSpore merges identical ResNet passes (see test_lightclip_model.py)
    outputs = net(*make_batch())
    return outputs[5].asnumpy()[:, 0], outputs[6].asnumpy()[:, 0], outputs[4].asnumpy()


@pytest.fixture(scope="module")
def causal():
    return masked_outputs("causal")


@pytest.fixture(scope="module")
def bidirectional():
    return masked_outputs("bidirectional")


def changed(logits, row):
    return float(np.abs(logits[row] - logits[ORIGINAL]).max())


def test_causal_mask_ignores_words_right_of_the_mask(causal):
    for logits in causal[:2]:  # the text head and the fusion head
        assert changed(logits, RIGHT_CHANGED) < 1e-6
        assert changed(logits, PAD_CHANGED) < 1e-6
        assert changed(logits, LEFT_CHANGED) > 1e-3  # the left context does reach the prediction


def test_bidirectional_mask_reads_words_right_of_the_mask(bidirectional):
    for logits in bidirectional[:2]:
        assert changed(logits, RIGHT_CHANGED) > 1e-3
        assert changed(logits, LEFT_CHANGED) > 1e-3
        assert changed(logits, PAD_CHANGED) < 1e-6  # keys after the EOT are masked out


def test_caption_pass_stays_causal_with_bidirectional_mlm(bidirectional):
    text_tokens = bidirectional[2]  # (4, L, E): the caption pass, every position
    before = np.abs(text_tokens[RIGHT_CHANGED, :RIGHT] - text_tokens[ORIGINAL, :RIGHT]).max()
    after = np.abs(text_tokens[RIGHT_CHANGED, RIGHT:] - text_tokens[ORIGINAL, RIGHT:]).max()
    assert before < 1e-6 < 1e-3 < after


def test_config_key_reaches_the_network():
    from mindclip.train.config import load_run_config
    from mindclip.train.networks import build_objective

    overrides = ["method=lightclip", f"model.name={NAME}", "loss.mlm_weight=0.1", "loss.mlm_attention=bidirectional"]
    cfg = load_run_config(None, overrides)
    assert load_run_config(None).loss.mlm_attention == "causal"  # the default
    _, objective = build_objective(cfg)
    assert objective.model.mlm_attention == "bidirectional" and objective.model.mlm_bidirectional
    with pytest.raises(ConfigError, match="mlm_attention must be causal or bidirectional, got 'both'"):
        load_run_config(None, ["loss.mlm_attention=both"])
    with pytest.raises(ValueError, match="mlm_attention must be one of causal, bidirectional"):
        LightCLIPPretrain(create_model(NAME), mlm=False, mlm_attention="full")
