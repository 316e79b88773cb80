"""Checkpoints by relative name: round trips, training-checkpoint layout, clear errors."""
import numpy as np
import pytest
import mindspore as ms
from mindspore import nn

from mindclip.models import create_model, load_weights, named_weights, read_checkpoint, save_weights
from mindclip.models.lightclip import LightCLIPPretrain
from mindclip.tokenizer import EOT_ID, MASK_ID, SOT_ID, VOCAB_SIZE

NAME = "tiny_resnet18"


class Wrapper(nn.Cell):
    """Wrapping a cell changes every param.name's scope; relative names must not care."""

    def __init__(self, clip):
        super().__init__()
        self.inner = clip

    def construct(self, images, tokens):
        return self.inner(images, tokens)


def inputs(size=64, batch=3):
    rng = np.random.default_rng(0)
    images = rng.standard_normal((batch, 3, size, size)).astype(np.float32)
    tokens = np.zeros((batch, 77), np.int32)
    tokens[:, 0] = SOT_ID
    tokens[:, 1:5] = rng.integers(1, 49000, (batch, 4))
    tokens[np.arange(batch), [5, 4, 3]] = EOT_ID
    return ms.Tensor(images), ms.Tensor(tokens)


def perturb_batchnorm_statistics(model):
    """Non-default moving mean/variance, so that a round trip that drops them would be caught."""
    for name, param in model.parameters_and_names():
        if "moving_" in name:
            param.set_data(ms.Tensor(np.random.default_rng(1).uniform(0.5, 1.5, param.shape), ms.float32))


@pytest.fixture(scope="module")
def saved(tmp_path_factory):
    ms.set_seed(0)
    model = create_model(NAME)
    perturb_batchnorm_statistics(model)
    model.set_train(False)
    Wrapper(model)  # renames param.name scopes; the checkpoint must still use relative names
    path = str(tmp_path_factory.mktemp("ckpt") / "model.ckpt")
    save_weights(model, path)
    images, tokens = inputs()
    return {"model": model, "path": path, "outputs": [o.asnumpy() for o in model(images, tokens)]}


def test_round_trip_gives_identical_embeddings(saved):
    ms.set_seed(123)  # a different random init before loading
    loaded = create_model(NAME, checkpoint=saved["path"])
    loaded.set_train(False)
    for (name, ours), (_, theirs) in zip(saved["model"].parameters_and_names(), loaded.parameters_and_names()):
        np.testing.assert_array_equal(ours.asnumpy(), theirs.asnumpy(), err_msg=name)
    images, tokens = inputs()
    for before, after in zip(saved["outputs"], loaded(images, tokens)):
        np.testing.assert_array_equal(before, after.asnumpy())


def test_checkpoint_uses_relative_names_and_keeps_buffers(saved):
    state = read_checkpoint(saved["path"])
    names = {name for name, _ in saved["model"].parameters_and_names()}
    assert {k for k in state if not k.startswith("__")} == names
    assert "visual.proj.weight" in state and "logit_scale" in state and "text.token_embedding" in state
    assert any("moving_mean" in k for k in state)


def test_clip_loads_from_a_training_checkpoint(saved, tmp_path):
    model = saved["model"]
    mlm_clip = create_model(NAME, **{"text.vocab_size": MASK_ID + 1})
    pretrain = LightCLIPPretrain(mlm_clip)
    extra = {**named_weights(pretrain, "pretrain.", exclude=("clip.",)), "meta.step": 7, "step": 7,
             "optim.m.visual.proj.weight": np.zeros((32, 512), np.float32), "note": "text entry"}
    path = str(tmp_path / "train.ckpt")
    save_weights(model, path, extra=extra)
    fresh = create_model(NAME)
    missing, unexpected = load_weights(fresh, path)
    assert missing == [] and unexpected == []
    np.testing.assert_array_equal(fresh.visual.proj.weight.asnumpy(), model.visual.proj.weight.asnumpy())
    heads = LightCLIPPretrain(create_model(NAME, **{"text.vocab_size": MASK_ID + 1}))
    heads_only = {k: v for k, v in named_weights(heads).items() if not k.startswith("clip.")}
    state = read_checkpoint(path)
    for name, param in heads_only.items():  # the pretrain. namespace holds exactly the heads
        assert state["pretrain." + name].shape == param.shape
    assert state["step"] == 7 and state["note"] == "text entry"


def test_mismatches_are_listed(saved):
    other = create_model(NAME, **{"text.layers": 8, "embed_dim": 16})
    with pytest.raises(ValueError) as error:
        load_weights(other, saved["path"])
    message = str(error.value)
    assert "visual.proj.weight: checkpoint (32, 512) vs model (16, 512)" in message
    assert "missing 48: text.resblocks.4." in message
    assert saved["path"] in message


def test_unexpected_names_are_listed_and_strict_false_allows_them(saved):
    state = read_checkpoint(saved["path"])
    state["visual.extra_head.weight"] = np.zeros(3, np.float32)
    model = create_model(NAME)
    with pytest.raises(ValueError, match=r"unexpected 1: visual\.extra_head\.weight"):
        load_weights(model, state)
    missing, unexpected = load_weights(model, state, strict=False)
    assert missing == [] and unexpected == ["visual.extra_head.weight"]


def test_mlm_checkpoint_sets_the_vocabulary_and_a_mismatch_hints_at_it(saved, tmp_path):
    mlm_clip = create_model(NAME, **{"text.vocab_size": MASK_ID + 1})
    path = str(tmp_path / "mlm.ckpt")
    save_weights(mlm_clip, path)
    # create_model takes the row count of the checkpoint's token table (LightCLIP's [MASK] row)
    loaded = create_model(NAME, checkpoint=path)
    assert loaded.text.vocab_size == MASK_ID + 1 and loaded.config.text.vocab_size == MASK_ID + 1
    np.testing.assert_array_equal(loaded.text.token_embedding.asnumpy(), mlm_clip.text.token_embedding.asnumpy())
    # an explicit override wins, and a mismatch names the entry and the fix
    with pytest.raises(ValueError, match=r"text\.token_embedding: checkpoint \(49409, 64\) vs model \(49408, 64\).*"
                                         r"text\.vocab_size=49409"):
        create_model(NAME, checkpoint=path, **{"text.vocab_size": VOCAB_SIZE})
    with pytest.raises(ValueError, match=r"text\.vocab_size=49409"):
        load_weights(create_model(NAME), path)


def test_prefix_loads_a_sub_namespace(saved):
    state = {"pretrain." + k: v.asnumpy() for k, v in named_weights(saved["model"].visual.proj).items()}
    target = create_model(NAME).visual.proj
    load_weights(target, state, prefix="pretrain.")
    np.testing.assert_array_equal(target.weight.asnumpy(), saved["model"].visual.proj.weight.asnumpy())
