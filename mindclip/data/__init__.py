"""Data: conversion to MindRecord, the training pipeline, demo data, MLM masking, text augmentation.

Modules (one concern each):
    sources        readers for every input format, yielding `RawSample`s
    delimited      CSV/TSV read one physical line per record
    images         decode-check of images; what bytes are stored
    validate       `RawSample` -> records or skip reasons
    writer         sharded MindRecord writing (atomic shards)
    convert        orchestration, report, summary line, progress
    transforms     image ops (eval / "none", MoCo v2 / SimCLR), `preprocess_image`
    columns        `BATCH_COLUMNS`: a training batch's columns per method, in order
    pipeline       `DataConfig`, `create_dataset`
    masking        MLM masking
    text_augment   EDA-style caption augmentation
    demo           synthetic captioned shapes

Names that need MindSpore are imported on first use, so that conversion workers and tokenizer-only
users do not pay for loading it.
"""
import importlib

from mindclip.data.columns import BATCH_COLUMNS, METHODS, TEXT_COLUMNS, caption_tokens_index
from mindclip.data.masking import compact_mlm_labels, mask_tokens, mlm_max_predictions
from mindclip.data.text_augment import TextAugmenter, load_synonyms

_LAZY = {
    "DataConfig": "pipeline",
    "create_dataset": "pipeline",
    "steps_per_epoch": "pipeline",
    "count_rows": "pipeline",
    "list_shards": "pipeline",
    "preprocess_image": "transforms",
    "CLIP_MEAN": "transforms",
    "CLIP_STD": "transforms",
    "convert": "convert",
    "convert_files": "convert",
    "ConversionSummary": "convert",
    "make_demo_data": "demo",
}


def __getattr__(name):
    if name in _LAZY:
        return getattr(importlib.import_module(f"mindclip.data.{_LAZY[name]}"), name)
    raise AttributeError(f"module 'mindclip.data' has no attribute {name!r}")


__all__ = ["BATCH_COLUMNS", "TEXT_COLUMNS", "METHODS", "caption_tokens_index", "mask_tokens", "mlm_max_predictions",
           "compact_mlm_labels", "TextAugmenter", "load_synonyms", *_LAZY]
