"""Metrics of mindclip.eval.metrics against brute-force sorting on fixed embeddings (with ties)."""
import numpy as np
import pytest

from mindclip.eval import metrics


def brute_rank(scores_row, positive_row):
    """Sort candidates by score, wrong ones first among equals (pessimistic), return the 0-based
    position of the first correct candidate."""
    order = sorted(range(len(scores_row)), key=lambda j: (-float(scores_row[j]), bool(positive_row[j])))
    return next(pos for pos, j in enumerate(order) if positive_row[j])


def quantised_embeddings(rng, n, dim, levels=3):
    """Unit-norm rows whose few distinct values make tied dot products common."""
    x = rng.integers(-levels, levels + 1, size=(n, dim)).astype(np.float32)
    x[np.all(x == 0, axis=1), 0] = 1.0
    return x / np.linalg.norm(x, axis=1, keepdims=True)


@pytest.fixture
def classification_case():
    rng = np.random.default_rng(0)
    num_classes, dim = 9, 4
    images = quantised_embeddings(rng, 60, dim, levels=1)
    classifier = quantised_embeddings(rng, num_classes, dim, levels=1).T  # (E, C)
    labels = rng.integers(0, num_classes - 1, size=60)  # the last class never occurs
    images[:3] = classifier[:, labels[:3]].T  # a few perfect matches
    return images @ classifier, labels, num_classes


def test_classification_metrics_match_brute_force(classification_case):
    scores, labels, num_classes = classification_case
    positive = np.eye(num_classes, dtype=bool)[labels]
    ranks = np.array([brute_rank(s, p) for s, p in zip(scores, positive)])
    assert any(len(set(np.round(row, 6))) < num_classes for row in scores), "the case must contain ties"

    got = metrics.classification_metrics(scores, labels, ks=(1, 5))

    assert got["top1"] == pytest.approx(np.mean(ranks < 1))
    assert got["top5"] == pytest.approx(np.mean(ranks < 5))
    recalls = [np.mean(ranks[labels == c] == 0) for c in range(num_classes) if np.any(labels == c)]
    assert got["classes_evaluated"] == num_classes - 1 == len(recalls)
    assert got["mean_per_class_recall"] == pytest.approx(np.mean(recalls))
    assert got["num_samples"] == len(labels) and got["num_classes"] == num_classes


def test_ties_count_against_the_ground_truth():
    scores = np.array([[0.5, 0.5, 0.1],   # label 1 tied with class 0: not top-1
                       [0.2, 0.9, 0.9],   # label 1 tied with class 2: not top-1
                       [0.3, 0.3, 0.3],   # everything tied: rank 2
                       [0.1, 0.2, 0.7]])  # clear win
    labels = np.array([1, 1, 0, 2])
    np.testing.assert_array_equal(metrics.label_ranks(scores, labels), [1, 1, 2, 0])
    got = metrics.classification_metrics(scores, labels, ks=(1, 2, 5))
    assert got["top1"] == 0.25 and got["top2"] == 0.75
    assert "top5" not in got  # k larger than the number of classes is not reported
    # classes 1 (0/2), 0 (0/1), 2 (1/1) -> mean 1/3
    assert got["mean_per_class_recall"] == pytest.approx(1 / 3)


def test_tied_correct_candidates_do_not_hurt():
    scores = np.array([[0.9, 0.9, 0.1], [0.4, 0.4, 0.4]])
    positive = np.array([[True, True, False], [True, True, False]])
    np.testing.assert_array_equal(metrics.ground_truth_ranks(scores, positive), [0, 1])


def test_empty_class_is_excluded_from_mean_per_class_recall():
    ranks = np.array([0, 1, 0, 0])
    labels = np.array([0, 0, 2, 2])  # class 1 and 3 have no samples
    mean, counted = metrics.mean_per_class_recall(ranks, labels, num_classes=4)
    assert counted == 2 and mean == pytest.approx((0.5 + 1.0) / 2)


@pytest.fixture
def retrieval_case():
    rng = np.random.default_rng(1)
    num_images, dim = 12, 4
    images = quantised_embeddings(rng, num_images, dim, levels=1)
    counts = np.full(num_images, 5)
    counts[3], counts[7] = 1, 7  # not every image has exactly five captions
    ids = np.repeat(np.arange(num_images), counts)
    texts = quantised_embeddings(rng, len(ids), dim, levels=1)
    texts[::4] = images[ids[::4]]  # some captions embed exactly like their image
    texts[5] = texts[0]  # identical captions of different images
    return images, texts, ids


def test_retrieval_metrics_match_brute_force(retrieval_case):
    images, texts, ids = retrieval_case
    sim = images @ texts.T  # (I, T)
    i2t = np.array([brute_rank(sim[i], ids == i) for i in range(len(images))])
    t2i = np.array([brute_rank(sim[:, t], np.arange(len(images)) == ids[t]) for t in range(len(ids))])

    for chunk_size in (1024, 5):
        got = metrics.retrieval_metrics(images, texts, ids, ks=(1, 5, 10), chunk_size=chunk_size)
        for k in (1, 5, 10):
            assert got[f"image_to_text_R@{k}"] == pytest.approx(np.mean(i2t < k))
            assert got[f"text_to_image_R@{k}"] == pytest.approx(np.mean(t2i < k))
        assert got["image_to_text_mean_rank"] == pytest.approx(np.mean(i2t + 1))
        assert got["text_to_image_mean_rank"] == pytest.approx(np.mean(t2i + 1))
        assert got["rsum"] == pytest.approx(100 * sum(np.mean(r < k) for r in (i2t, t2i) for k in (1, 5, 10)))
        assert (got["num_images"], got["num_texts"]) == (len(images), len(ids))
    assert 0 < np.mean(i2t < 1) < 1 and 0 < np.mean(t2i < 1) < 1, "the case must be neither trivial nor hopeless"


def test_image_without_caption_is_an_error():
    images = np.eye(3, dtype=np.float32)
    with pytest.raises(ValueError, match="no correct candidate"):
        metrics.retrieval_metrics(images, images[:2], np.array([0, 1]))


def test_bad_labels_are_refused():
    with pytest.raises(ValueError, match=r"labels must lie in \[0, 3\)"):
        metrics.classification_metrics(np.zeros((2, 3)), np.array([0, 3]))


def clip_benchmark_recall(scores, positive_pairs, k):
    """CLIP_benchmark's `recall_at_k(...) > 0` per query row, re-done in NumPy: rows are queries."""
    top = np.argsort(-scores, axis=1, kind="stable")[:, :k]
    return np.take_along_axis(positive_pairs, top, axis=1).any(axis=1).mean()


def test_clip_benchmark_retrieval_keys_follow_its_definition():
    rng = np.random.default_rng(2)
    images = rng.standard_normal((20, 8)).astype(np.float32)  # continuous: no ties
    ids = np.repeat(np.arange(20), 3)
    texts = images[ids] + 1.5 * rng.standard_normal((60, 8)).astype(np.float32)
    images /= np.linalg.norm(images, axis=1, keepdims=True)
    texts /= np.linalg.norm(texts, axis=1, keepdims=True)
    scores = texts @ images.T  # CLIP_benchmark: (nb texts, nb images)
    positive_pairs = ids[:, None] == np.arange(20)[None, :]

    got = metrics.retrieval_metrics(images, texts, ids)

    for k in (1, 5, 10):
        assert got[f"image_retrieval_recall@{k}"] == pytest.approx(clip_benchmark_recall(scores, positive_pairs, k))
        assert got[f"text_retrieval_recall@{k}"] == pytest.approx(clip_benchmark_recall(scores.T, positive_pairs.T, k))
        assert got[f"image_retrieval_recall@{k}"] == got[f"text_to_image_R@{k}"]  # the existing keys stay
        assert got[f"text_retrieval_recall@{k}"] == got[f"image_to_text_R@{k}"]
    assert any(got[f"image_retrieval_recall@{k}"] != got[f"text_retrieval_recall@{k}"] for k in (1, 5, 10)), \
        "the case must tell the directions apart"
    assert got["rsum"] == pytest.approx(100 * sum(got[f"{d}_R@{k}"] for d in ("image_to_text", "text_to_image")
                                                  for k in (1, 5, 10)))


def test_clip_benchmark_classification_keys_follow_its_definition():
    rng = np.random.default_rng(3)
    scores = rng.standard_normal((50, 7))
    labels = rng.integers(0, 6, size=50)  # class 6 has no sample
    scores[np.arange(50), labels] += 1.0
    pred = scores.argmax(axis=1)
    # sklearn's balanced_accuracy_score (CLIP_benchmark's mean_per_class_recall): classes with samples
    recall = [np.mean(pred[labels == c] == c) for c in np.unique(labels)]
    top5 = np.argsort(-scores, axis=1)[:, :5]

    got = metrics.classification_metrics(scores, labels)

    assert got["acc1"] == pytest.approx(np.mean(pred == labels)) == got["top1"]
    assert got["acc5"] == pytest.approx(np.mean((top5 == labels[:, None]).any(axis=1))) == got["top5"]
    assert got["mean_per_class_recall"] == pytest.approx(np.mean(recall))
    assert "acc5" not in metrics.classification_metrics(scores[:, :4], np.minimum(labels, 3))  # under 5 classes
