"""Zero-shot classification: a classifier from class names and prompt templates (open_clip style).

The weight of a class is the mean, over its prompts (every template filled with every name of the
class), of the normalised text embeddings, normalised again. Image embeddings (normalised) are
scored against these weights by dot product.
"""
from typing import Sequence

import numpy as np

from mindclip.eval.encode import as_encoders
from mindclip.eval.metrics import DEFAULT_CLASSIFICATION_KS, classification_metrics
from mindclip.eval.prompts import check_prompts


def class_prompts(classnames, templates):
    """All prompt texts and, for each, the index of its class (synonyms of a class share it)."""
    texts, owners = [], []
    for index, name in enumerate(classnames):
        for synonym in ([name] if isinstance(name, str) else name):
            texts.extend(template.format(synonym) for template in templates)
            owners.extend([index] * len(templates))
    return texts, np.asarray(owners, dtype=np.int64)


def average_class_embeddings(text_features, owners, num_classes):
    """(P, E) normalised prompt embeddings + (P,) class of each -> (E, C) renormalised class means."""
    sums = np.zeros((num_classes, text_features.shape[1]), dtype=np.float64)
    np.add.at(sums, owners, text_features)
    means = sums / np.bincount(owners, minlength=num_classes)[:, None]  # (C, E)
    return (means / np.linalg.norm(means, axis=1, keepdims=True)).T.astype(np.float32)  # (E, C)


def build_zero_shot_classifier(model, tokenizer, classnames: Sequence, templates: Sequence[str],
                               batch_size: int = 256, progress: bool = False) -> np.ndarray:
    """Zero-shot classifier weights (E, C) float32, one normalised column per class.

    Args:
        model: a CLIP model, or `ClipEncoders` built from one (reuses its compiled graphs).
        tokenizer: callable `tokenizer(texts, context_length) -> (N, L) int` (e.g. `mindclip.tokenize`).
        classnames: one name per class, or a list of synonyms whose prompts are all averaged.
        templates: strings with one `{}` where the class name goes.
        batch_size: texts per compiled call.
    """
    check_prompts(classnames, templates, source="build_zero_shot_classifier")
    texts, owners = class_prompts(classnames, templates)
    features = as_encoders(model, batch_size).encode_texts(texts, tokenizer, progress=progress)  # (P, E)
    return average_class_embeddings(features, owners, len(classnames))


def zero_shot_scores(image_features, classifier):
    """(N, E) image embeddings x (E, C) classifier -> (N, C) cosine scores."""
    return np.asarray(image_features, dtype=np.float32) @ classifier


def evaluate_zero_shot(model, tokenizer, dataset, classnames, templates, batch_size: int = 256,
                       ks=DEFAULT_CLASSIFICATION_KS, progress: bool = True, num_workers: int = 2) -> dict:
    """Zero-shot top-k accuracy and mean per-class recall of `model` on a `ClassificationSet`.

    Returns the dict of `metrics.classification_metrics` (`top1`, `top5`, `mean_per_class_recall`,
    `classes_evaluated`, `num_classes`, `num_samples`) plus `num_prompts`.
    """
    encoders = as_encoders(model, batch_size, num_workers)
    classifier = build_zero_shot_classifier(encoders, tokenizer, classnames, templates, progress=progress)
    if dataset.labels.size and dataset.labels.max() >= classifier.shape[1]:
        raise ValueError(f"{dataset.source}: label {dataset.labels.max()} but only {classifier.shape[1]} class names")
    image_features = encoders.encode_images(dataset.images, progress=progress)  # (N, E)
    result = classification_metrics(zero_shot_scores(image_features, classifier), dataset.labels, ks)
    result["num_prompts"] = len(class_prompts(classnames, templates)[0])
    return result
