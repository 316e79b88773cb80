"""Classification and retrieval metrics on host NumPy arrays.

Every metric is built on one quantity, the rank of the ground truth in a row of scores:

    rank = number of wrong candidates whose score is >= the best correct candidate's score

so rank 0 means "first". **Ties count against the ground truth** (pessimistic): a wrong candidate
that scores exactly as high as the right one is ranked ahead of it. This makes the result
independent of the order of the candidates, and a degenerate model that gives every candidate the
same score gets 0 % rather than a lucky "first index wins" accuracy. Ties between two *correct*
candidates (two captions of the same image) never hurt: only the best correct score matters.

- top-k accuracy / recall@k: fraction of rows with rank < k.
- mean rank: mean of rank + 1 (1 = first place), as usually reported for retrieval.
- mean per-class recall: the top-1 hit rate of each class, averaged over the classes that have at
  least one sample; classes without samples are excluded (their recall is undefined), and the
  number of classes that were counted is reported beside it.

CLIP_benchmark's names are reported beside ours (`clip_benchmark_keys`), so results compare with
its published tables without renaming: zero-shot `acc1`, `acc5` (= `top1`, `top5`; `acc5` only with
5 or more classes, where CLIP_benchmark writes NaN) and `mean_per_class_recall` (the same name);
retrieval `image_retrieval_recall@k` = our `text_to_image_R@k` (a caption is the query, images are
retrieved) and `text_retrieval_recall@k` = our `image_to_text_R@k` (an image is the query; a hit
when any of its captions is in the top k). This is CLIP_benchmark's `zeroshot_retrieval.py`, where
`scores = texts_emb @ images_emb.t()` and image retrieval ranks the rows of `scores`. Values can
differ from CLIP_benchmark's only on exact score ties (it takes `topk`'s order; ours are pessimistic).
"""
import numpy as np

DEFAULT_CLASSIFICATION_KS = (1, 5)
DEFAULT_RETRIEVAL_KS = (1, 5, 10)
# CLIP_benchmark's key -> ours (module doc); "@k" keys are listed per k by `clip_benchmark_keys`
CLIP_BENCHMARK_CLASSIFICATION = {"acc1": "top1", "acc5": "top5"}
CLIP_BENCHMARK_RETRIEVAL = {"image_retrieval_recall@{k}": "text_to_image_R@{k}",
                            "text_retrieval_recall@{k}": "image_to_text_R@{k}"}


def ground_truth_ranks(scores, positive):
    """Pessimistic rank of the best correct candidate in each row.

    Args:
        scores: (N, C) float array, higher is better.
        positive: (N, C) bool array, True where the candidate is correct for that row.

    Returns:
        (N,) int64 array: for each row, how many wrong candidates score >= its best correct one.
    """
    scores = np.asarray(scores)
    positive = np.asarray(positive, dtype=bool)
    if scores.ndim != 2 or scores.shape != positive.shape:
        raise ValueError(f"scores {scores.shape} and positive {positive.shape} must be equal (N, C) shapes")
    missing = np.flatnonzero(~positive.any(axis=1))
    if missing.size:
        raise ValueError(f"rows {missing[:10].tolist()} have no correct candidate")
    best = np.where(positive, scores, -np.inf).max(axis=1)  # (N,)
    return ((scores >= best[:, None]) & ~positive).sum(axis=1).astype(np.int64)


def label_ranks(scores, labels):
    """`ground_truth_ranks` for single-label classification: `labels` (N,) ints index the columns."""
    scores = np.asarray(scores)
    labels = np.asarray(labels, dtype=np.int64)
    if labels.shape != scores.shape[:1]:
        raise ValueError(f"labels {labels.shape} do not match scores {scores.shape}")
    if labels.size and (labels.min() < 0 or labels.max() >= scores.shape[1]):
        raise ValueError(f"labels must lie in [0, {scores.shape[1]}), got [{labels.min()}, {labels.max()}]")
    positive = np.zeros(scores.shape, dtype=bool)
    positive[np.arange(len(labels)), labels] = True
    return ground_truth_ranks(scores, positive)


def recall_at_k(ranks, ks):
    """{k: fraction of ranks < k} for each k (top-k accuracy for classification)."""
    ranks = np.asarray(ranks)
    if ranks.size == 0:
        raise ValueError("no samples to score")
    return {int(k): float(np.mean(ranks < k)) for k in ks}


def mean_rank(ranks):
    """Mean 1-based rank of the ground truth (1.0 = always first)."""
    ranks = np.asarray(ranks)
    if ranks.size == 0:
        raise ValueError("no samples to score")
    return float(np.mean(ranks + 1))


def mean_per_class_recall(ranks, labels, num_classes):
    """Top-1 recall of each class averaged over the classes that have samples.

    Returns:
        (mean recall, number of classes with at least one sample). Classes without samples are
        left out of the mean; the second value says how many were counted.
    """
    labels = np.asarray(labels, dtype=np.int64)
    hits = np.bincount(labels, weights=(np.asarray(ranks) == 0), minlength=num_classes)
    counts = np.bincount(labels, minlength=num_classes)
    present = counts > 0
    if not present.any():
        raise ValueError("no samples to score")
    return float(np.mean(hits[present] / counts[present])), int(present.sum())


def classification_metrics(scores, labels, ks=DEFAULT_CLASSIFICATION_KS):
    """Top-k accuracies and mean per-class recall from (N, C) scores and (N,) labels.

    Returns a dict: `top{k}` for each k, `mean_per_class_recall`, `classes_evaluated` (classes
    with samples), `num_classes` and `num_samples`, and CLIP_benchmark's `acc1`, `acc5`.
    """
    scores = np.asarray(scores)
    ranks = label_ranks(scores, labels)
    num_classes = scores.shape[1]
    per_class, evaluated = mean_per_class_recall(ranks, labels, num_classes)
    out = {f"top{k}": acc for k, acc in recall_at_k(ranks, [k for k in ks if k <= num_classes]).items()}
    out.update(mean_per_class_recall=per_class, classes_evaluated=evaluated,
               num_classes=int(num_classes), num_samples=int(len(ranks)))
    out.update(clip_benchmark_keys(out))
    return out


def retrieval_ranks(image_features, text_features, text_image_ids, chunk_size=1024):
    """Pessimistic ranks for image->text and text->image retrieval, computed in row chunks.

    Args:
        image_features: (I, E) float array (normalised: scores are dot products).
        text_features: (T, E) float array.
        text_image_ids: (T,) int array, the image each text describes.
        chunk_size: rows of the similarity matrix held in memory at once.

    Returns:
        (image_ranks (I,), text_ranks (T,)): for an image, the rank of its best caption among all
        texts; for a text, the rank of its image among all images.
    """
    image_features = np.asarray(image_features, dtype=np.float32)
    text_features = np.asarray(text_features, dtype=np.float32)
    ids = np.asarray(text_image_ids, dtype=np.int64)
    num_images = len(image_features)
    if ids.shape != (len(text_features),):
        raise ValueError(f"text_image_ids {ids.shape} must have one entry per text ({len(text_features)})")
    if ids.size and (ids.min() < 0 or ids.max() >= num_images):
        raise ValueError(f"text_image_ids must lie in [0, {num_images}), got [{ids.min()}, {ids.max()}]")
    image_ranks = np.empty(num_images, dtype=np.int64)
    for start in range(0, num_images, chunk_size):
        rows = np.arange(start, min(start + chunk_size, num_images))
        scores = image_features[rows] @ text_features.T  # (c, T)
        image_ranks[rows] = ground_truth_ranks(scores, ids[None, :] == rows[:, None])
    text_ranks = np.empty(len(ids), dtype=np.int64)
    for start in range(0, len(ids), chunk_size):
        rows = np.arange(start, min(start + chunk_size, len(ids)))
        scores = text_features[rows] @ image_features.T  # (c, I)
        text_ranks[rows] = label_ranks(scores, ids[rows])
    return image_ranks, text_ranks


def retrieval_metrics(image_features, text_features, text_image_ids, ks=DEFAULT_RETRIEVAL_KS, chunk_size=1024):
    """Image->text and text->image recall@k and mean rank.

    An image->text query is a hit at k when any of the image's captions is among the top k texts.
    Returns a dict with `image_to_text_R@{k}`, `text_to_image_R@{k}`, `image_to_text_mean_rank`,
    `text_to_image_mean_rank`, `rsum` (sum of all recalls, in %), `num_images`, `num_texts`, and
    CLIP_benchmark's `image_retrieval_recall@{k}` (text->image) and `text_retrieval_recall@{k}` (image->text).
    """
    image_ranks, text_ranks = retrieval_ranks(image_features, text_features, text_image_ids, chunk_size)
    out = {}
    for name, ranks in (("image_to_text", image_ranks), ("text_to_image", text_ranks)):
        for k, recall in recall_at_k(ranks, ks).items():
            out[f"{name}_R@{k}"] = recall
        out[f"{name}_mean_rank"] = mean_rank(ranks)
    out["rsum"] = 100.0 * sum(v for key, v in out.items() if "_R@" in key)
    out.update(num_images=int(len(image_ranks)), num_texts=int(len(text_ranks)))
    out.update(clip_benchmark_keys(out, ks))
    return out


def clip_benchmark_keys(metrics, ks=DEFAULT_RETRIEVAL_KS):
    """CLIP_benchmark's names for the metrics in `metrics` (module doc): a new dict, ours untouched."""
    names = dict(CLIP_BENCHMARK_CLASSIFICATION)
    for theirs, ours in CLIP_BENCHMARK_RETRIEVAL.items():
        names.update({theirs.format(k=k): ours.format(k=k) for k in ks})
    return {theirs: metrics[ours] for theirs, ours in names.items() if ours in metrics}
