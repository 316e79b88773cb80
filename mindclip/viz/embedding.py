"""Embedding maps (LightCLIP, Fig. 4): image embeddings of a labelled set projected to 2-D.

- `pca`: centre, SVD, the leading components (sign fixed so that each component's largest
  loading is positive: the same data always gives the same picture).
- `tsne`: exact t-SNE (van der Maaten & Hinton, 2008) in NumPy: Gaussian conditional
  probabilities at a given perplexity (bisection on the precision of every row at once),
  symmetrised joint P, Student-t Q, gradient descent with momentum 0.5 then 0.8, per-parameter
  gains, early exaggeration 12 for the first 250 iterations, PCA initialisation scaled to a
  standard deviation of 1e-4, learning rate max(N / 48, 50). Memory and time are O(N^2): meant for
  up to a few thousand points (`MAX_TSNE_POINTS`).
Embeddings are compared by squared Euclidean distance; for unit vectors that is 2 - 2 cos.
"""
from typing import Sequence

import numpy as np
from PIL import Image, ImageDraw

from mindclip.viz import draw

MAX_TSNE_POINTS = 5000
EARLY_EXAGGERATION = 12.0
EXAGGERATION_ITERATIONS = 250


# ----------------------------------------------------------------------------- projections
def pca(features, dims=2):
    """(N, D) -> ((N, dims) coordinates, (dims,) fraction of the variance each component explains)."""
    x = np.asarray(features, np.float64)
    if x.ndim != 2 or len(x) < 2:
        raise ValueError(f"pca needs an (N, D) array with N >= 2, got shape {x.shape}")
    x = x - x.mean(axis=0)
    _, singular, components = np.linalg.svd(x, full_matrices=False)  # components (K, D)
    components = components[:dims]
    signs = np.sign(components[np.arange(len(components)), np.abs(components).argmax(axis=1)])
    components = components * signs[:, None]
    total = (singular ** 2).sum()
    explained = (singular[:dims] ** 2) / total if total > 0 else np.zeros(len(components))
    return x @ components.T, explained


def squared_distances(x):
    """(N, D) -> (N, N) squared Euclidean distances, exact zeros on the diagonal."""
    sq = (x * x).sum(axis=1)
    d = np.maximum(sq[:, None] + sq[None, :] - 2.0 * x @ x.T, 0.0)
    np.fill_diagonal(d, 0.0)
    return d


def conditional_probabilities(distances, perplexity, tol=1e-5, max_steps=100):
    """Row-stochastic P(j | i) of Gaussian kernels whose entropy is log(perplexity) in every row.

    Bisection on each row's precision beta (all rows at once). distances: (N, N) squared distances.
    """
    n = len(distances)
    if not 1.0 <= perplexity < n:
        raise ValueError(f"perplexity must be in [1, N) = [1, {n}), got {perplexity}")
    target = np.log(perplexity)
    d = distances - np.where(np.eye(n, dtype=bool), np.inf, distances).min(axis=1, keepdims=True)  # stability
    low, high = np.zeros(n), np.full(n, np.inf)
    beta = np.ones(n)
    for _ in range(max_steps):
        p = np.exp(-d * beta[:, None])
        np.fill_diagonal(p, 0.0)
        total = p.sum(axis=1)
        entropy = np.log(total) + beta * (d * p).sum(axis=1) / total
        too_flat = entropy > target  # raise beta
        if np.all(np.abs(entropy - target) < tol):
            break
        low = np.where(too_flat, beta, low)
        high = np.where(too_flat, high, beta)
        beta = np.where(np.isinf(high), beta * 2.0, (low + high) / 2.0)
    return p / total[:, None]


def joint_probabilities(features, perplexity):
    """Symmetric P = (P(j|i) + P(i|j)) / 2N of t-SNE, (N, N), summing to 1."""
    x = np.asarray(features, np.float64)
    conditional = conditional_probabilities(squared_distances(x), perplexity)
    p = (conditional + conditional.T) / (2.0 * len(x))
    return np.maximum(p, 1e-12)


def _student_kernel(y):
    """(N, N) Student-t kernel 1 / (1 + |y_i - y_j|^2), zero on the diagonal."""
    kernel = 1.0 / (1.0 + squared_distances(y))
    np.fill_diagonal(kernel, 0.0)
    return kernel


def tsne_gradient(p, y):
    """Gradient of KL(P || Q) with respect to the map points y (N, dims)."""
    kernel = _student_kernel(y)
    weights = (p - np.maximum(kernel / kernel.sum(), 1e-12)) * kernel  # (N, N), zero diagonal
    return 4.0 * (weights.sum(axis=1)[:, None] * y - weights @ y)


def kl_and_gradient(p, y):
    """KL(P || Q) of the t-SNE objective (off-diagonal terms) and its gradient with respect to y."""
    kernel = _student_kernel(y)
    q = np.maximum(kernel / kernel.sum(), 1e-12)
    off = ~np.eye(len(y), dtype=bool)
    return float((p[off] * np.log(p[off] / q[off])).sum()), tsne_gradient(p, y)


def tsne(features, dims=2, perplexity=30.0, iterations=750, seed=0):
    """(N, D) -> (N, dims) t-SNE coordinates (module docstring); deterministic for a given seed."""
    x = np.asarray(features, np.float64)
    n = len(x)
    if x.ndim != 2 or n < 4:
        raise ValueError(f"tsne needs an (N, D) array with N >= 4, got shape {x.shape}")
    if n > MAX_TSNE_POINTS:
        raise ValueError(f"tsne is exact (O(N^2) memory): {n} points is more than {MAX_TSNE_POINTS}; "
                         f"subsample (e.g. --max-per-class) or use PCA")
    p = joint_probabilities(x, perplexity)
    y, _ = pca(x, dims)
    y = y / max(y[:, 0].std(), 1e-12) * 1e-4
    y = y + np.random.default_rng(seed).normal(0, 1e-8, y.shape)  # breaks exact ties
    learning_rate = max(n / EARLY_EXAGGERATION / 4.0, 50.0)
    velocity, gains = np.zeros_like(y), np.ones_like(y)
    exaggerated = p * EARLY_EXAGGERATION
    for step in range(iterations):
        early = step < EXAGGERATION_ITERATIONS
        gradient = tsne_gradient(exaggerated if early else p, y)
        momentum = 0.5 if early else 0.8
        gains = np.where(np.sign(gradient) != np.sign(velocity), gains + 0.2, gains * 0.8).clip(0.01)
        velocity = momentum * velocity - learning_rate * gains * gradient
        y = y + velocity
        y = y - y.mean(axis=0)
    return y


# ----------------------------------------------------------------------------- labels
def check_labels(labels, classnames, source="labels"):
    """Refuse labels that have no class name, naming the first offender."""
    labels = np.asarray(labels)
    bad = np.flatnonzero((labels < 0) | (labels >= len(classnames)))
    if bad.size:
        raise ValueError(f"{source}: item {bad[0]} has label {labels[bad[0]]}, but there are only "
                         f"{len(classnames)} class names (0..{len(classnames) - 1})")


def select_classes(labels, classnames, wanted: Sequence[str]):
    """Indices of the items whose class is in `wanted` (names); an unknown name is refused."""
    index = {name: i for i, name in enumerate(classnames)}
    unknown = [name for name in wanted if name not in index]
    if unknown:
        raise ValueError(f"unknown class names {unknown}; known: {', '.join(classnames[:40])}"
                         + (" ..." if len(classnames) > 40 else ""))
    keep = {index[name] for name in wanted}
    return np.flatnonzero(np.isin(labels, sorted(keep)))


def limit_per_class(labels, max_per_class, seed=0):
    """Indices keeping at most `max_per_class` items of every class (a seeded random choice), sorted."""
    rng = np.random.default_rng(seed)
    keep = []
    for label in np.unique(labels):
        members = np.flatnonzero(labels == label)
        keep.extend(rng.choice(members, size=min(max_per_class, len(members)), replace=False))
    return np.sort(np.asarray(keep, np.int64))


# ----------------------------------------------------------------------------- drawing
def class_styles(n):
    """(colour, marker) of each of `n` classes: 10 colours with circles, beyond that colours x markers."""
    colors = draw.palette(n)
    if n <= len(draw.BASE_COLORS):
        return [(c, "circle") for c in colors]
    return [(c, draw.MARKERS[i % len(draw.MARKERS)]) for i, c in enumerate(colors)]


def render_embedding(projections, labels, classnames, title="", panel_size=420, seed=0):
    """Scatter plots of one or more 2-D projections side by side, coloured by class, with a legend.

    Args:
        projections: [(panel title, (N, 2) coordinates)].
        labels: (N,) class index of every point; `classnames` the names (legend order).
    Returns (PIL image, [Axes]); only the classes present appear in the legend.
    """
    labels = np.asarray(labels)
    check_labels(labels, classnames)
    styles = class_styles(len(classnames))
    present = [int(c) for c in np.unique(labels)]
    order = np.random.default_rng(seed).permutation(len(labels))  # no class is hidden under another
    entries = [(classnames[c], *styles[c]) for c in present]
    legend_columns = 1 if len(entries) <= 20 else 2
    legend_w, legend_h = draw.legend_size([e[0] for e in entries], legend_columns)
    panel_w = panel_size + 70
    width = len(projections) * panel_w + legend_w + 30
    figure = Image.new("RGB", (width, max(panel_size + 90, legend_h + 60)), draw.BACKGROUND)
    if title:
        ImageDraw.Draw(figure).text((12, 6), title, fill=draw.INK, font=draw.font(13))
    all_axes = []
    for i, (name, coords) in enumerate(projections):
        coords = np.asarray(coords, np.float64)
        left, top = 60 + i * panel_w, 50
        box = (left, top, left + panel_size, top + panel_size)
        xlim, ylim = _square_limits(coords)
        axes = draw.Axes(figure, box, xlim, ylim)
        axes.frame(title=name)
        for j in order:
            color, shape = styles[labels[j]]
            axes.marker(*[float(v) for v in axes.to_pixel(coords[j, 0], coords[j, 1])], color, shape, 3)
        all_axes.append(axes)
    draw.draw_legend(figure, (len(projections) * panel_w + 20, 50), entries, legend_columns)
    return figure, all_axes


def _square_limits(coords):
    """Equal data ranges on both axes (distances read the same in x and y), centred on the data."""
    low, high = coords.min(axis=0), coords.max(axis=0)
    centre, half = (low + high) / 2, max(float((high - low).max()) / 2 * 1.08, 1e-9)
    return (centre[0] - half, centre[0] + half), (centre[1] - half, centre[1] + half)
