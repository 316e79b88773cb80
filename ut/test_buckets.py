"""Exact text-length bucketing: the bucket choice, the pipeline's cut, and the exactness of the
cut batch against the full-length one (embeddings, every loss part, every gradient)."""
import mindspore as ms
import numpy as np
import pytest
from mindspore import ops

from mindclip.config import load_config
from mindclip.data import create_dataset
from mindclip.data.buckets import TrimToBucket, bucket_length, resolve_buckets, used_length
from mindclip.data.masking import compact_mlm_labels, mask_tokens, mlm_max_predictions
from mindclip.tokenizer import EOT_ID, SOT_ID
from mindclip.train.batch_losses import BatchLoss
from mindclip.train.config import RunConfig
from mindclip.train.networks import build_objective


def rows_with_ends(ends, length=77):
    """Token rows whose last non-pad token sits at position end - 1 (SOT, words, EOT)."""
    tokens = np.zeros((len(ends), length), np.int32)
    for i, end in enumerate(ends):
        if end:
            tokens[i, 0] = SOT_ID
            tokens[i, 1:end - 1] = 320 + i
            tokens[i, end - 1] = EOT_ID
    return tokens


def test_resolve_buckets_sorts_drops_long_ones_and_ends_at_the_context_length():
    assert resolve_buckets((48, 16, 32), 77) == (16, 32, 48, 77)
    assert resolve_buckets((16, 32, 48), 32) == (16, 32)
    assert resolve_buckets((), 77) == (77,)
    with pytest.raises(ValueError, match="text_buckets"):
        resolve_buckets((1, 16), 77)


def test_bucket_is_the_smallest_that_holds_every_row_brute_force():
    rng = np.random.default_rng(0)
    buckets = (16, 32, 48, 77)
    for _ in range(200):
        ends = rng.integers(0, 78, size=int(rng.integers(1, 6)))
        tokens = rows_with_ends(ends)
        needed = max([0] + [int(np.flatnonzero(r).max()) + 1 for r in tokens if r.any()])
        assert used_length(tokens) == needed
        assert bucket_length(buckets, tokens) == min(b for b in buckets if b >= needed)


def test_all_padding_rows_need_no_position():
    assert used_length(np.zeros((3, 77), np.int32)) == 0
    assert bucket_length((16, 77), np.zeros((3, 77), np.int32)) == 16


def test_lightclip_columns_are_cut_to_the_bucket_and_their_mlm_slots():
    rng = np.random.default_rng(1)
    tokens = rows_with_ends([5, 14, 9, 2])
    masked, labels = mask_tokens(tokens, rng)
    k = mlm_max_predictions(77)
    positions, labels_k = compact_mlm_labels(labels, k)
    out = TrimToBucket((16, 32, 77), "lightclip")(tokens, masked, positions, labels_k)
    k16 = mlm_max_predictions(16)
    assert [a.shape for a in out] == [(4, 16), (4, 16), (4, k16), (4, k16)]
    np.testing.assert_array_equal(out[0], tokens[:, :16])
    np.testing.assert_array_equal(out[1], masked[:, :16])
    np.testing.assert_array_equal(out[2], positions[:, :k16])
    assert (labels_k[:, k16:] == -100).all() and (labels_k != -100).sum() == (out[3] != -100).sum()


def test_pyramid_columns_share_one_length():
    tokens, summaries = rows_with_ends([5, 6]), rows_with_ends([20, 3])
    a, b = TrimToBucket((16, 32, 77), "pyramidclip")(tokens, summaries)
    assert a.shape == b.shape == (2, 32)


def data_config(tiny_demo, **changes):
    from mindclip.data import DataConfig

    base = dict(train_shards=f"{tiny_demo}/mindrecord/train-*.mindrecord", batch_size=8, image_size=64,
                augment="none", num_workers=1, method="lightclip")
    return DataConfig(**{**base, **changes})


def test_pipeline_batches_are_the_full_batches_cut_to_their_bucket(tiny_demo):
    cut = data_config(tiny_demo, text_buckets=(8, 16, 32))
    full = data_config(tiny_demo, text_buckets=())
    pairs = zip(create_dataset(cut).create_tuple_iterator(output_numpy=True, num_epochs=1),
                create_dataset(full).create_tuple_iterator(output_numpy=True, num_epochs=1))
    lengths = []
    for small, big in pairs:
        length = small[1].shape[1]
        lengths.append(length)
        assert length == bucket_length((8, 16, 32, 77), big[1])
        np.testing.assert_array_equal(small[0], big[0])
        np.testing.assert_array_equal(small[1], big[1][:, :length])
        assert not big[1][:, length:].any() and not big[2][:, length:].any()
        k = small[3].shape[1]
        assert k == mlm_max_predictions(length)
        np.testing.assert_array_equal(small[3], big[3][:, :k])
        assert (big[4][:, k:] == -100).all()
    assert lengths and set(lengths) <= {8, 16, 32, 77}


# ---------------------------------------------------------------- exactness of the train objective
@pytest.fixture(scope="module")
def lightclip_full_and_cut(tiny_demo):
    overrides = [f"data.train_shards={tiny_demo}/mindrecord/train-*.mindrecord", "data.batch_size=8",
                 "data.image_size=64", "data.augment=none", "data.num_workers=1", "data.text_buckets=[]",
                 "model.name=tiny_swin", "method=lightclip"]  # the paper's loss weights by default
    cfg = load_config(RunConfig, None, overrides, base={})
    full = next(create_dataset(cfg.data).create_tuple_iterator(output_numpy=True, num_epochs=1))
    cut = (full[0],) + TrimToBucket((16, 32, 48, 77), "lightclip")(*full[1:])
    assert full[1].shape[1] == 77 and cut[1].shape[1] <= 32  # demo captions are short
    ms.set_seed(0)
    clip, objective = build_objective(cfg)
    objective.model.set_train(True)
    return clip, objective, [ms.Tensor(a) for a in full], [ms.Tensor(a) for a in cut]


class _LossAndGrads(ms.nn.Cell):
    def __init__(self, objective):
        super().__init__()
        self.loss = BatchLoss(objective)
        self.weights = ms.ParameterTuple(objective.trainable_params())
        self.grad = ops.GradOperation(get_by_list=True, sens_param=True)

    def construct(self, progress, *batch):
        loss, parts = self.loss(progress, *batch)
        sens = (ops.ones_like(loss), ops.zeros_like(parts))
        return loss, parts, self.grad(self.loss, self.weights)(progress, *batch, sens)


def test_cut_batch_gives_the_same_loss_parts_and_gradients(lightclip_full_and_cut):
    clip, objective, full, cut = lightclip_full_and_cut
    run = _LossAndGrads(objective)
    progress = ms.Tensor(0.8, ms.float32)
    loss_a, parts_a, grads_a = run(progress, *full)
    loss_b, parts_b, grads_b = run(progress, *cut)
    parts_a, parts_b = parts_a.asnumpy(), parts_b.asnumpy()
    assert np.all(parts_a > 0.01), parts_a  # every part is live
    np.testing.assert_allclose(parts_b, parts_a, rtol=0, atol=1e-5)
    assert abs(float(loss_b.asnumpy()) - float(loss_a.asnumpy())) <= 1e-5
    names = [p.name for p in run.weights]
    worst = max(float(np.abs(a.asnumpy() - b.asnumpy()).max()) for a, b in zip(grads_a, grads_b))
    assert worst <= 1e-5, worst
    live = sum(float(np.abs(g.asnumpy()).max()) > 0 for g in grads_a)
    assert live > 0.9 * len(names)  # the comparison covers real gradients, not zeros


def test_cut_batch_gives_the_same_text_embeddings(lightclip_full_and_cut):
    clip, _, full, cut = lightclip_full_and_cut
    from mindclip.models.clip import TextEncoder

    encoder = TextEncoder(clip)
    a, b = encoder(full[1]).asnumpy(), encoder(cut[1]).asnumpy()
    np.testing.assert_allclose(b, a, rtol=0, atol=1e-6)
