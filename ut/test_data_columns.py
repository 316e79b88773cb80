"""mindclip.data.BATCH_COLUMNS is what create_dataset yields, for every method, on real shards."""
import mindspore.dataset as ds
import numpy as np
import pytest

import mindclip
from mindclip.data import (BATCH_COLUMNS, METHODS, TEXT_COLUMNS, caption_tokens_index, create_dataset, list_shards,
                           make_demo_data)
from mindclip.data.pipeline import DataConfig
from mindclip.data.synthetic import synthetic_arrays


@pytest.fixture(scope="module")
def pyramid_demo(tmp_path_factory):
    """Demo shards with summaries and ROI rows (the session's tiny_demo has neither)."""
    folder = str(tmp_path_factory.mktemp("pyramid_demo"))
    make_demo_data(folder, n_train=16, n_val=4, image_size=32, seed=0, pyramid=True, log=None)
    return folder


def _captions(shards):
    """id -> caption, read straight from the MindRecord files."""
    rows = ds.MindDataset(shards, columns_list=["id", "caption"], shuffle=False).create_dict_iterator(output_numpy=True)
    return {int(row["id"]): str(row["caption"].item()) for row in rows}


def _check_columns(batch, captions, size):
    """Each named column holds what its name says (an independent reading of the batch)."""
    tokens = batch["tokens"]
    expected = mindclip.tokenize([captions[int(i)] for i in batch["id"]])
    np.testing.assert_array_equal(tokens, expected[:, :tokens.shape[1]])  # the captions, cut to the bucket
    assert not expected[:, tokens.shape[1]:].any()
    for name in ("image", "image_global", "image_local"):
        if name in batch:
            assert batch[name].shape == (len(tokens), 3, size, size) and batch[name].dtype == np.float32
    if "mlm_positions" in batch:
        chosen = batch["mlm_labels"] != -100
        picked = np.take_along_axis(tokens, batch["mlm_positions"], axis=1)
        np.testing.assert_array_equal(batch["mlm_labels"][chosen], picked[chosen])
        masked = np.take_along_axis(batch["mlm_tokens"], batch["mlm_positions"], axis=1)
        assert (masked[chosen] == mindclip.tokenizer.MASK_ID).mean() > 0.5
    if "summary_tokens" in batch:
        assert (batch["summary_tokens"][:, 0] == mindclip.tokenizer.SOT_ID).all()
    if "roi" in batch:
        assert batch["roi"].dtype == np.float32 and batch["roi"].shape[2] == 2052
        assert batch["roi_count"].shape == (len(tokens),) and batch["roi_count"].dtype == np.int32


@pytest.mark.parametrize("method", METHODS)
def test_create_dataset_yields_the_batch_columns_in_order(method, tiny_demo, pyramid_demo):
    folder = pyramid_demo if method == "pyramidclip" else tiny_demo
    shards = f"{folder}/mindrecord/train-*.mindrecord"
    cfg = DataConfig(train_shards=shards, batch_size=8, image_size=32, augment="none", num_workers=1, method=method)
    assert create_dataset(cfg).get_col_names() == list(BATCH_COLUMNS[method])
    batch = next(create_dataset(cfg, return_ids=True).create_tuple_iterator(num_epochs=1, output_numpy=True))
    assert len(batch) == len(BATCH_COLUMNS[method]) + 1  # the id column comes last
    named = dict(zip(BATCH_COLUMNS[method] + ("id",), batch))
    np.testing.assert_array_equal(batch[caption_tokens_index(method)], named["tokens"])
    _check_columns(named, _captions(list_shards(shards)), cfg.image_size)


def test_batch_columns_start_with_the_images_and_hold_the_text_columns():
    for method in METHODS:
        columns = BATCH_COLUMNS[method]
        assert len(set(columns)) == len(columns)
        assert columns[caption_tokens_index(method)] == "tokens" == TEXT_COLUMNS[method][0]
        start = columns.index("tokens")
        assert columns[start:start + len(TEXT_COLUMNS[method])] == TEXT_COLUMNS[method]
    assert [caption_tokens_index(m) for m in METHODS] == [1, 1, 2]
    with pytest.raises(ValueError, match="'simclr' is not one of clip, lightclip, pyramidclip"):
        caption_tokens_index("simclr")


@pytest.mark.parametrize("method", METHODS)
def test_synthetic_batches_have_the_batch_columns(method):
    arrays = synthetic_arrays(method, 32, 4, 16, np.random.default_rng(0))
    assert tuple(arrays) == BATCH_COLUMNS[method]
    caption = arrays["tokens"]
    assert (caption[:, 0] == mindclip.tokenizer.SOT_ID).all() and (caption.max(1) == mindclip.tokenizer.EOT_ID).all()
