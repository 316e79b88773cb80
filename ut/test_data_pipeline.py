"""The MindRecord pipeline: batch columns per method, exact pixels, rank split, resume."""
import io
import os

import numpy as np
import pytest
from PIL import Image

import mindclip
from mindclip.data.convert import convert_files
from mindclip.data.masking import mlm_max_predictions, num_masked
from mindclip.data.pipeline import DataConfig, create_dataset, steps_per_epoch
from mindclip.data.sources import SourceOptions
from mindclip.data.transforms import CLIP_MEAN, CLIP_STD, preprocess_image
from mindclip.data.validate import RecordOptions
from mindclip.tokenizer import SOT_ID

N_IMAGES = 24
SIZE = 32


def _source_image(i):
    """32x32 for even i, 48x32 (W x H) for odd i."""
    rng = np.random.default_rng(100 + i)
    width = SIZE if i % 2 == 0 else 48
    return Image.fromarray((rng.random((SIZE, width, 3)) * 255).astype(np.uint8))


@pytest.fixture(scope="module")
def shards(tmp_path_factory):
    """Shards of N_IMAGES JPEG pairs with summaries and ROI arrays (0 to 14 rows)."""
    folder = str(tmp_path_factory.mktemp("pipeline"))
    lines = ["filepath\ttitle\tsummary\troi"]
    for i in range(N_IMAGES):
        _source_image(i).save(os.path.join(folder, f"{i}.jpg"), quality=90)
        roi = np.random.default_rng(i).normal(size=(i % 15, 2052)).astype(np.float32)
        np.save(os.path.join(folder, f"{i}.npy"), roi)
        lines.append(f"{i}.jpg\tcaption number {i} with a small red dog on a green lawn\tsummary {i}\t{i}.npy")
    with open(os.path.join(folder, "pairs.csv"), "w", encoding="utf-8") as f:
        f.write("\n".join(lines) + "\n")
    convert_files(os.path.join(folder, "pairs.csv"), os.path.join(folder, "out"),
                  source_options=SourceOptions(summary_key="summary", roi_key="roi"),
                  record_options=RecordOptions(with_summary=True, with_roi=True), shard_samples=10,
                  progress_every_s=None, log=None)
    return os.path.join(folder, "out", "train-*.mindrecord"), folder


def _config(shards, **overrides):
    return DataConfig(**dict(dict(train_shards=shards[0], val_shards=shards[0], batch_size=4, image_size=SIZE,
                                  augment="none", num_workers=1), **overrides))


def _batches(cfg, **kwargs):
    dataset = create_dataset(cfg, return_ids=True, **kwargs)
    return list(dataset.create_dict_iterator(num_epochs=1, output_numpy=True))


def _decoded_source(folder, i):
    with open(os.path.join(folder, f"{i}.jpg"), "rb") as f:
        return np.asarray(Image.open(io.BytesIO(f.read())).convert("RGB"))


def test_clip_batch_columns_and_none_recipe_gives_the_source_pixels(shards):
    batches = _batches(_config(shards))
    assert len(batches) == steps_per_epoch(N_IMAGES, 4) == 6
    mean, std = np.array(CLIP_MEAN).reshape(3, 1, 1), np.array(CLIP_STD).reshape(3, 1, 1)
    seen = []
    for batch in batches:
        assert list(batch) == ["image", "tokens", "id"]
        assert batch["image"].shape == (4, 3, SIZE, SIZE) and batch["image"].dtype == np.float32
        assert batch["tokens"].shape == (4, 16) and batch["tokens"].dtype == np.int32  # bucket 16 holds them
        for image, tokens, i in zip(batch["image"], batch["tokens"], batch["id"]):
            source = _decoded_source(shards[1], i)
            offset = (source.shape[1] - SIZE) // 2  # the 48-wide images lose 8 columns each side
            expected = source[:, offset:offset + SIZE].transpose(2, 0, 1)
            np.testing.assert_allclose(image, (expected / 255.0 - mean) / std, atol=2e-6)
            np.testing.assert_array_equal(np.rint((image * std + mean) * 255), expected)
            caption = f"caption number {i} with a small red dog on a green lawn"
            full = mindclip.tokenize([caption])[0]
            np.testing.assert_array_equal(tokens, full[:16])
            assert not full[16:].any()
            seen.append(int(i))
    assert sorted(seen) == list(range(N_IMAGES))


@pytest.mark.parametrize("image_size", [SIZE, 20])
def test_preprocess_image_equals_the_pipeline_eval_transform(shards, image_size):
    cfg = _config(shards, image_size=image_size, batch_size=5)
    batches = _batches(cfg, training=False)
    assert [len(b["id"]) for b in batches] == [5, 5, 5, 5, 4]  # eval keeps the last partial batch
    for batch in batches:
        for image, i in zip(batch["image"], batch["id"]):
            pil = Image.open(os.path.join(shards[1], f"{i}.jpg"))
            np.testing.assert_array_equal(preprocess_image(pil, image_size), image)


def test_lightclip_mlm_columns(shards):
    cfg = _config(shards, method="lightclip", text_buckets=())  # full rows (buckets: ut/test_buckets.py)
    k = mlm_max_predictions(77, 0.15)
    for batch in _batches(cfg):
        assert list(batch) == ["image", "tokens", "mlm_tokens", "mlm_positions", "mlm_labels", "id"]
        assert batch["mlm_tokens"].shape == (4, 77) and batch["mlm_positions"].shape == (4, k)
        assert batch["mlm_labels"].shape == (4, k)
        assert all(batch[c].dtype == np.int32 for c in ("mlm_tokens", "mlm_positions", "mlm_labels"))
        for tokens, masked, positions, labels in zip(batch["tokens"], batch["mlm_tokens"],
                                                     batch["mlm_positions"], batch["mlm_labels"]):
            n_words = int(np.sum((tokens > 0) & (tokens < SOT_ID)))
            chosen = positions[labels != -100]
            assert len(chosen) == num_masked(n_words)
            np.testing.assert_array_equal(labels[labels != -100], tokens[chosen])
            untouched = np.setdiff1d(np.arange(77), chosen)
            np.testing.assert_array_equal(masked[untouched], tokens[untouched])


def test_pyramidclip_views_summary_and_roi(shards):
    cfg = _config(shards, method="pyramidclip", augment="simclr", roi_max=10)
    for batch in _batches(cfg):
        assert list(batch) == ["image_global", "image_local", "tokens", "summary_tokens", "roi", "roi_count", "id"]
        assert batch["image_global"].shape == batch["image_local"].shape == (4, 3, SIZE, SIZE)
        assert batch["roi"].shape == (4, 10, 2052) and batch["roi"].dtype == np.float32
        assert batch["roi_count"].shape == (4,) and batch["roi_count"].dtype == np.int32
        for summary, roi, count, i in zip(batch["summary_tokens"], batch["roi"], batch["roi_count"], batch["id"]):
            length = batch["tokens"].shape[1]
            assert summary.shape == (length,)  # one bucket for the captions and the summaries
            np.testing.assert_array_equal(summary, mindclip.tokenize([f"summary {i}"])[0][:length])
            source = np.random.default_rng(i).normal(size=(i % 15, 2052)).astype(np.float32)
            assert count == min(i % 15, 10)
            np.testing.assert_array_equal(roi[:count], source[:count])
            assert not roi[count:].any()


@pytest.mark.parametrize("training", [True, False])
def test_two_ranks_read_disjoint_halves_covering_everything(shards, training):
    cfg = _config(shards, batch_size=3)
    ids = [np.concatenate([b["id"] for b in _batches(cfg, rank=r, world_size=2, training=training)])
           for r in range(2)]
    assert len(ids[0]) == len(ids[1]) == N_IMAGES // 2
    assert not set(ids[0]) & set(ids[1])
    assert sorted(np.concatenate(ids)) == list(range(N_IMAGES))


def test_resume_continues_the_epoch_exactly(shards):
    cfg = _config(shards, method="lightclip", text_swap_prob=0.3, text_delete_prob=0.3, text_synonym_prob=0.5,
                  seed=7)
    full = _batches(cfg, epoch=3)
    again = _batches(cfg, epoch=3)
    resumed = _batches(cfg, epoch=3, skip_batches=2)
    assert len(resumed) == len(full) - 2
    for a, b in zip(full, again):
        for column in a:
            np.testing.assert_array_equal(a[column], b[column])
    for a, b in zip(full[2:], resumed):
        for column in a:
            np.testing.assert_array_equal(a[column], b[column])
    other_epoch = np.concatenate([b["id"] for b in _batches(cfg, epoch=4)])
    assert not np.array_equal(other_epoch, np.concatenate([b["id"] for b in full]))
    plain = {int(i): t for b in _batches(_config(shards, seed=7), epoch=3) for i, t in zip(b["id"], b["tokens"])}
    augmented = {int(i): t for b in full for i, t in zip(b["id"], b["tokens"])}
    assert sum(not np.array_equal(plain[i], augmented[i]) for i in plain) >= N_IMAGES // 2
    with pytest.raises(ValueError, match="no batch left"):
        create_dataset(cfg, skip_batches=6)


def test_simclr_recipe_with_two_workers(shards):
    cfg = _config(shards, augment="simclr", num_workers=2, image_size=24)
    batches = _batches(cfg)
    assert len(batches) == 6
    images = np.concatenate([b["image"] for b in batches])
    assert images.shape == (N_IMAGES, 3, 24, 24) and np.isfinite(images).all()
    low = (0 - np.array(CLIP_MEAN)) / np.array(CLIP_STD)
    high = (1 - np.array(CLIP_MEAN)) / np.array(CLIP_STD)
    assert (images.min(axis=(0, 2, 3)) >= low - 1e-5).all() and (images.max(axis=(0, 2, 3)) <= high + 1e-5).all()


def test_data_config_refuses_bad_values():
    with pytest.raises(ValueError, match="^method: 'blip'"):
        DataConfig(method="blip")
    with pytest.raises(ValueError, match="^augment: 'randaugment'"):
        DataConfig(augment="randaugment")
    with pytest.raises(ValueError, match=r"^mask_prob must be in \[0, 1\], got 1.5"):
        DataConfig(mask_prob=1.5)
    with pytest.raises(FileNotFoundError, match="nothing-here"):
        create_dataset(DataConfig(train_shards="/nothing-here/*.mindrecord"))
