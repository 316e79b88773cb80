"""Embedding maps: PCA and NumPy t-SNE against independent references, class handling, drawing."""
import numpy as np
import pytest

from mindclip.viz import draw, embedding


def _clusters(n_per=20, dim=40, k=3, spread=0.3, seed=0):
    """`k` Gaussian clusters far apart in `dim` dimensions: (features (k*n_per, dim), labels)."""
    rng = np.random.default_rng(seed)
    centres = rng.normal(size=(k, dim)) * 3.0
    features = np.concatenate([c + spread * rng.normal(size=(n_per, dim)) for c in centres])
    return features, np.repeat(np.arange(k), n_per)


def _separated(coords, labels):
    """Every point is nearer its own class centroid than any other, and the clusters do not overlap."""
    centroids = np.stack([coords[labels == c].mean(axis=0) for c in np.unique(labels)])
    nearest = np.linalg.norm(coords[:, None] - centroids[None], axis=-1).argmin(axis=1)
    radius = max(np.linalg.norm(coords[labels == c] - centroids[c], axis=1).max() for c in np.unique(labels))
    gaps = [np.linalg.norm(a - b) for i, a in enumerate(centroids) for b in centroids[i + 1:]]
    return (nearest == labels).all() and min(gaps) > 2 * radius


def test_pca_matches_the_covariance_eigenvectors():
    x = np.random.default_rng(1).normal(size=(50, 6)) @ np.diag([5, 3, 1, 0.5, 0.2, 0.1])
    coords, explained = embedding.pca(x, 2)
    values, vectors = np.linalg.eigh(np.cov(x, rowvar=False))  # ascending
    reference = (x - x.mean(axis=0)) @ vectors[:, ::-1][:, :2]
    np.testing.assert_allclose(np.abs(coords), np.abs(reference), atol=1e-9)
    np.testing.assert_allclose(explained, values[::-1][:2] / values.sum(), rtol=1e-9)
    flipped, _ = embedding.pca(-x, 2)  # the sign convention follows the loadings, not the data
    np.testing.assert_allclose(flipped, -coords, atol=1e-9)


def test_pca_separates_separable_clusters():
    features, labels = _clusters()
    coords, _ = embedding.pca(features, 2)
    assert _separated(coords, labels)


def test_conditional_probabilities_reach_the_perplexity():
    x = np.random.default_rng(2).normal(size=(40, 5))
    p = embedding.conditional_probabilities(embedding.squared_distances(x), perplexity=7.0)
    np.testing.assert_allclose(p.sum(axis=1), 1.0, atol=1e-12)
    assert np.all(np.diag(p) == 0)
    entropy = -(p * np.log(np.where(p > 0, p, 1))).sum(axis=1)
    np.testing.assert_allclose(np.exp(entropy), 7.0, rtol=1e-3)


def test_tsne_gradient_matches_finite_differences():
    rng = np.random.default_rng(3)
    p = embedding.joint_probabilities(rng.normal(size=(12, 4)), perplexity=3.0)
    y = rng.normal(size=(12, 2))
    _, gradient = embedding.kl_and_gradient(p, y)
    numeric = np.zeros_like(y)
    for index in np.ndindex(*y.shape):
        step = np.zeros_like(y)
        step[index] = 1e-6
        numeric[index] = (embedding.kl_and_gradient(p, y + step)[0] - embedding.kl_and_gradient(p, y - step)[0]) / 2e-6
    np.testing.assert_allclose(gradient, numeric, rtol=1e-4, atol=1e-7)


def test_tsne_separates_clusters_and_is_deterministic():
    features, labels = _clusters(n_per=15, k=4, seed=4)
    coords = embedding.tsne(features, perplexity=8.0, iterations=600)
    assert coords.shape == (60, 2) and _separated(coords, labels)
    np.testing.assert_array_equal(coords, embedding.tsne(features, perplexity=8.0, iterations=600))
    with pytest.raises(ValueError, match="perplexity"):
        embedding.tsne(features[:6], perplexity=30.0)


def test_labels_and_class_names_are_checked():
    names = ["cat", "dog", "fox"]
    with pytest.raises(ValueError, match="item 2 has label 3, but there are only 3 class names"):
        embedding.check_labels(np.array([0, 1, 3]), names)
    with pytest.raises(ValueError, match=r"unknown class names \['wolf'\]"):
        embedding.select_classes(np.array([0, 1, 2]), names, ["dog", "wolf"])
    np.testing.assert_array_equal(embedding.select_classes(np.array([0, 1, 2, 1]), names, ["dog"]), [1, 3])
    kept = embedding.limit_per_class(np.array([0] * 5 + [1] * 2), 3)
    assert sorted(np.bincount(np.array([0] * 5 + [1] * 2)[kept])) == [2, 3]


def test_render_puts_each_point_where_its_coordinates_say():
    coords = np.array([[0.0, 0.0], [1.0, 2.0], [-1.0, 1.0]])
    figure, (axes,) = embedding.render_embedding([("test", coords)], np.array([0, 1, 2]), ["a", "b", "c"])
    pixels = np.asarray(figure)
    colors = [style[0] for style in embedding.class_styles(3)]
    for point, color in zip(coords, colors):
        x, y = (int(round(float(v))) for v in axes.to_pixel(*point))
        assert tuple(pixels[y, x]) == color
    with pytest.raises(ValueError, match="label 5"):
        embedding.render_embedding([("test", coords)], np.array([0, 1, 5]), ["a", "b", "c"])


def test_heat_scale_and_ticks():
    colors = draw.heat_colors(np.linspace(0, 1, 50), 0, 1).astype(float)
    luminance = colors @ [0.299, 0.587, 0.114]
    assert np.all(np.diff(luminance) > 0)  # brighter means more similar
    assert tuple(draw.heat_colors(-5, 0, 1)) == tuple(draw.HEAT_ANCHORS[0])
    np.testing.assert_allclose(draw.nice_ticks(0.0, 1.0), [0.0, 0.2, 0.4, 0.6, 0.8, 1.0])
    np.testing.assert_allclose(draw.nice_ticks(3, 117, 5), [20, 40, 60, 80, 100])
    np.testing.assert_allclose(draw.nice_ticks(-0.013, 0.021, 4), [-0.01, 0.0, 0.01, 0.02])
