"""The training/evaluation pipeline: MindRecord shards -> fixed-shape batches per method.

Order and resume guarantee. The order of an epoch is a function of (seed, epoch) only: a
permutation of all N rows (`numpy.random.default_rng([seed, epoch])`, or 0..N-1 when not
shuffling). Rank r of W takes every W-th row of it starting at r, cut to N // W rows when
training so that all ranks run the same number of steps, then to whole batches. Rows reach
`MindDataset` through a `SubsetSampler` in that order, so
``create_dataset(cfg, rank, W, epoch=e, skip_batches=s)`` yields exactly batches s, s+1, ... of
``create_dataset(cfg, rank, W, epoch=e)``: a resumed run neither repeats nor skips a pair.
Text augmentation and MLM masks use `numpy.random.default_rng([seed, epoch, id])` per pair and are
reproduced exactly too. Image augmentation uses MindSpore's random ops: it follows
`mindspore.dataset.config.set_seed` and is reproducible only with one worker.
"""
import dataclasses
import glob
import os
from typing import Tuple, Union

import numpy as np
import mindspore.dataset as ds
import mindspore.dataset.transforms as T
import mindspore.dataset.vision as V

from mindclip.data.buckets import DEFAULT_BUCKETS, TrimToBucket, resolve_buckets
from mindclip.data.columns import BATCH_COLUMNS, METHODS, ROI_COLUMNS, TEXT_COLUMNS
from mindclip.data.masking import compact_mlm_labels, mask_tokens, mlm_max_predictions
from mindclip.data.text_augment import TextAugmenter, load_synonyms
from mindclip.data.transforms import AUGMENT_RECIPES, eval_transform, train_transform
from mindclip.data.validate import ROI_DIM
from mindclip.data.writer import SHARD_SUFFIX


@dataclasses.dataclass(frozen=True)
class DataConfig:
    """Everything the pipeline needs; plain values so that it can live in a YAML run config."""

    train_shards: Union[str, Tuple[str, ...]] = ""
    """Training shards: a glob ("data/train-*.mindrecord"), several separated by commas, or a list."""
    val_shards: Union[str, Tuple[str, ...]] = ""
    """Validation shards, same forms (read with `training=False`)."""
    batch_size: int = 32
    """Batch size per rank."""
    image_size: int = 224
    """Side of the square images in a batch."""
    augment: str = "simclr"
    """Training image recipe: "none" (resize + center crop only) or "simclr" (MoCo v2 / SimCLR)."""
    crop_scale: Tuple[float, float] = (0.2, 1.0)
    """Area range of the random resized crop of the "simclr" recipe (clip and lightclip)."""
    hflip: bool = True
    """Random horizontal flip in the "simclr" recipe (turn off when captions say left/right)."""
    num_workers: int = 2
    """Parallel workers of each pipeline stage."""
    shuffle: bool = True
    """Shuffle the training rows (a new permutation per epoch)."""
    seed: int = 0
    """Seed of the row order, text augmentation and MLM masks."""
    context_length: int = 77
    """Token row length (the longest caption kept: longer ones are cut, as CLIP's tokenizer does)."""
    text_buckets: Tuple[int, ...] = DEFAULT_BUCKETS
    """Exact text-length buckets: each batch's token rows are cut to the smallest of these lengths
    (and context_length) that holds every row's last token; [] keeps context_length (mindclip/data/buckets.py)."""
    method: str = "clip"
    """"clip", "lightclip" or "pyramidclip": decides the batch columns (`mindclip.data.BATCH_COLUMNS`)."""
    mask_prob: float = 0.15
    """Fraction of word tokens chosen for MLM (lightclip)."""
    text_synonym_prob: float = 0.0
    """Probability that a word with synonyms is replaced by one (0 disables)."""
    text_swap_prob: float = 0.0
    """Random swaps per word: round(p * n_words) swaps of two words (0 disables)."""
    text_delete_prob: float = 0.0
    """Probability that a word is deleted, at least one word kept (0 disables)."""
    synonyms_file: str = ""
    """Synonym table, TSV or JSON (docs/data.md); empty: the table shipped in mindclip/data."""
    global_scale: Tuple[float, float] = (0.9, 1.0)
    """Crop area range of PyramidCLIP's global view."""
    local_scale: Tuple[float, float] = (0.5, 1.0)
    """Crop area range of PyramidCLIP's local view."""
    roi_max: int = 10
    """M: ROI rows per sample in a PyramidCLIP batch (more are cut, fewer padded with zeros)."""

    def __post_init__(self):
        # messages start with the field's name: a recipe's loader puts "FILE: data." before it
        if self.method not in METHODS:
            raise ValueError(f"method: {self.method!r} is not one of {', '.join(METHODS)}")
        if self.augment not in AUGMENT_RECIPES:
            raise ValueError(f"augment: {self.augment!r} is not one of {', '.join(AUGMENT_RECIPES)}")
        for name in ("batch_size", "image_size", "num_workers", "context_length", "roi_max"):
            if getattr(self, name) < 1:
                raise ValueError(f"{name} must be at least 1, got {getattr(self, name)}")
        for name in ("mask_prob", "text_synonym_prob", "text_swap_prob", "text_delete_prob"):
            if not 0.0 <= getattr(self, name) <= 1.0:
                raise ValueError(f"{name} must be in [0, 1], got {getattr(self, name)}")
        resolve_buckets(self.text_buckets, self.context_length)

    @property
    def buckets(self):
        """The text lengths a batch may have, ascending; the last is context_length."""
        return resolve_buckets(self.text_buckets, self.context_length)


def list_shards(spec):
    """Shard files of a glob, comma-separated globs or a list of globs; sorted per pattern."""
    patterns = spec.split(",") if isinstance(spec, str) else list(spec)
    files = []
    for pattern in (p.strip() for p in patterns if p.strip()):
        matches = sorted(glob.glob(pattern))
        matches = [m for m in matches if m.endswith(SHARD_SUFFIX)]
        if not matches:
            raise FileNotFoundError(f"no MindRecord shard matches {pattern!r}")
        files.extend(os.path.abspath(m) for m in matches)
    if not files:
        raise FileNotFoundError("no shards given (data.train_shards / data.val_shards is empty)")
    return files


def count_rows(files):
    """Number of pairs in the shards."""
    return ds.MindDataset(files, columns_list=["id"], shuffle=False).get_dataset_size()


def read_captions(spec):
    """Every caption (str) of the shards `spec` (as `list_shards`), in shard order."""
    reader = ds.MindDataset(list_shards(spec), columns_list=["caption"], shuffle=False)
    return [_as_str(row["caption"]) for row in reader.create_dict_iterator(output_numpy=True)]


def rank_rows(n_rows, rank, world_size, epoch, seed, shuffle, batch_size, drop_remainder):
    """Row indices rank `rank` reads in epoch `epoch`, in order (see the module doc)."""
    if not 0 <= rank < world_size:
        raise ValueError(f"rank {rank} is outside 0..{world_size - 1}")
    order = np.random.default_rng([seed, epoch]).permutation(n_rows) if shuffle else np.arange(n_rows)
    rows = order[rank::world_size]
    if drop_remainder:
        rows = rows[: n_rows // world_size]
        rows = rows[: len(rows) // batch_size * batch_size]
    return rows


def steps_per_epoch(n_rows, batch_size, world_size=1):
    """Training batches per rank per epoch."""
    return (n_rows // world_size) // batch_size


class _TextColumns:
    """Captions (and summaries) -> token columns; per-pair randomness from (seed, epoch, id)."""

    def __init__(self, cfg, epoch, training):
        from mindclip.tokenizer import default_tokenizer

        self.cfg, self.epoch, self.training = cfg, epoch, training
        self.tokenizer = default_tokenizer()
        self.augmenter = TextAugmenter(load_synonyms(cfg.synonyms_file or None), cfg.text_synonym_prob,
                                       cfg.text_swap_prob, cfg.text_delete_prob)
        self.mlm_k = mlm_max_predictions(cfg.context_length, cfg.mask_prob)

    def _tokens(self, text):
        return self.tokenizer(_as_str(text), self.cfg.context_length)[0]

    def __call__(self, sample_id, caption, summary=None):
        """-> the method's text columns, then `sample_id` unchanged."""
        return self.columns(int(sample_id), _as_str(caption), summary) + (sample_id,)

    def columns(self, sample_id, caption, summary=None):
        rng = np.random.default_rng([self.cfg.seed, self.epoch, sample_id])
        if self.training and self.augmenter.enabled:
            caption = self.augmenter(caption, rng)
        tokens = self._tokens(caption)
        if self.cfg.method == "lightclip":
            masked, labels = mask_tokens(tokens, rng, self.cfg.mask_prob)
            positions, labels_k = compact_mlm_labels(labels, self.mlm_k)
            return tokens, masked, positions, labels_k
        if self.cfg.method == "pyramidclip":
            return tokens, self._tokens(summary)
        return (tokens,)


def _as_str(value):
    value = value.item() if isinstance(value, np.ndarray) else value
    return value.decode("utf-8") if isinstance(value, bytes) else str(value)


def _pad_roi(roi_max):
    def pad(roi, count):
        count = min(int(count), roi_max)
        rows = np.asarray(roi, np.float32).reshape(-1)[: count * ROI_DIM].reshape(count, ROI_DIM)
        out = np.zeros((roi_max, ROI_DIM), np.float32)
        out[: len(rows)] = rows
        return out, np.int32(len(rows))
    return pad


def create_dataset(cfg, rank=0, world_size=1, epoch=0, skip_batches=0, training=True, shards=None,
                   return_ids=False):
    """Build the `mindspore.dataset` pipeline of one epoch for rank `rank` of `world_size`.

    Args:
        cfg: a `DataConfig`.
        epoch, skip_batches: which epoch, and how many of its batches to skip (resume).
        training: True: shuffle (cfg.shuffle), the cfg.augment recipe, text augmentation,
            drop_remainder. False: file order, eval transform, no text augmentation, last
            partial batch kept.
        shards: shard spec to read instead of cfg.train_shards (False) / cfg.val_shards.
        return_ids: append an `id (B,) int64` column (the pair's id in the shards).

    Returns a batched dataset with the columns `BATCH_COLUMNS[cfg.method]` (mindclip/data/columns.py);
    text columns are cut to the batch's length bucket (`cfg.buckets`, exact: mindclip/data/buckets.py).
    """
    files = list_shards(shards or (cfg.train_shards if training else cfg.val_shards))
    rows = rank_rows(count_rows(files), rank, world_size, epoch, cfg.seed, training and cfg.shuffle,
                     cfg.batch_size, drop_remainder=training)[skip_batches * cfg.batch_size:]
    if len(rows) == 0:
        raise ValueError(f"rank {rank}/{world_size}, epoch {epoch}: no batch left after skipping "
                         f"{skip_batches} batches of {cfg.batch_size} ({len(files)} shards)")
    pyramid = cfg.method == "pyramidclip"
    columns = ["id", "image", "caption"] + (["summary", "roi", "roi_count"] if pyramid else [])
    workers = cfg.num_workers
    dataset = ds.MindDataset(files, columns_list=columns, sampler=ds.SubsetSampler(rows.tolist()),
                             num_parallel_workers=workers)
    dataset = _map_images(dataset, cfg, training, workers)
    text_in = ["id", "caption"] + (["summary"] if pyramid else [])
    text = list(TEXT_COLUMNS[cfg.method])
    dataset = dataset.map(_TextColumns(cfg, epoch, training), input_columns=text_in,
                          output_columns=text + ["id"], num_parallel_workers=workers)
    if pyramid:
        roi = list(ROI_COLUMNS[cfg.method])
        dataset = dataset.map(_pad_roi(cfg.roi_max), input_columns=roi, output_columns=roi, num_parallel_workers=workers)
    dataset = dataset.project(list(BATCH_COLUMNS[cfg.method]) + (["id"] if return_ids else []))
    dataset = dataset.batch(cfg.batch_size, drop_remainder=training, num_parallel_workers=workers)
    if len(cfg.buckets) == 1:
        return dataset
    return dataset.map(TrimToBucket(cfg.buckets, cfg.method, cfg.mask_prob), input_columns=text,
                       output_columns=text, num_parallel_workers=workers)


def _map_images(dataset, cfg, training, workers):
    """Decode, then one view (clip, lightclip) or the global and local views (pyramidclip)."""
    def view(scale, decode=False):
        if not training:
            return ([V.Decode()] if decode else []) + eval_transform(cfg.image_size)
        return train_transform(cfg.augment, cfg.image_size, scale, cfg.hflip, decode)

    if cfg.method != "pyramidclip":
        return dataset.map(view(cfg.crop_scale, decode=True), input_columns=["image"], num_parallel_workers=workers)
    dataset = dataset.map([V.Decode(), T.Duplicate()], input_columns=["image"],
                          output_columns=["image_global", "image_local"], num_parallel_workers=workers)
    dataset = dataset.map(view(cfg.global_scale), input_columns=["image_global"], num_parallel_workers=workers)
    return dataset.map(view(cfg.local_scale), input_columns=["image_local"], num_parallel_workers=workers)
