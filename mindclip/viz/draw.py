"""Pillow drawing primitives for the figures: fonts, colours, a heat-map colour scale, axes with
ticks, markers, legends and panel grids. Pixel geometry is exposed (`Axes.to_pixel`, the origins
returned by `tile`) so that tests can check where things were drawn.
"""
import functools
import math

import numpy as np
from PIL import Image, ImageDraw, ImageFont

BACKGROUND = (255, 255, 255)
INK = (30, 30, 30)
GRID = (225, 225, 225)
# Anchors of the heat-map scale (dark blue -> purple -> orange -> pale yellow), like "inferno".
HEAT_ANCHORS = np.array([(0, 0, 4), (40, 11, 84), (101, 21, 110), (159, 42, 99), (212, 72, 66),
                         (245, 125, 21), (250, 193, 39), (252, 255, 164)], np.float64)
# The first ten: matplotlib's "tab10"; further colours are spread around the hue circle.
BASE_COLORS = [(31, 119, 180), (255, 127, 14), (44, 160, 44), (214, 39, 40), (148, 103, 189),
               (140, 86, 75), (227, 119, 194), (127, 127, 127), (188, 189, 34), (23, 190, 207)]
MARKERS = ("circle", "square", "triangle", "diamond")


@functools.lru_cache(maxsize=None)
def font(size=12):
    """Pillow's built-in scalable font at `size` pixels."""
    return ImageFont.load_default(size=size)


def text_size(text, size=12):
    """(width, height) in pixels of `text` set in `font(size)`."""
    left, top, right, bottom = font(size).getbbox(text)
    return right - left, bottom


def heat_colors(values, vmin, vmax):
    """values (...) -> (..., 3) uint8 colours of the heat scale, `vmin` darkest, `vmax` brightest."""
    span = max(float(vmax) - float(vmin), 1e-12)
    t = np.clip((np.asarray(values, np.float64) - vmin) / span, 0.0, 1.0) * (len(HEAT_ANCHORS) - 1)
    low = np.minimum(np.floor(t).astype(np.int64), len(HEAT_ANCHORS) - 2)
    frac = (t - low)[..., None]
    colors = HEAT_ANCHORS[low] * (1 - frac) + HEAT_ANCHORS[low + 1] * frac
    return np.round(colors).astype(np.uint8)


def palette(n):
    """`n` distinct RGB colours: tab10 first, then hues spaced by the golden angle."""
    colors = list(BASE_COLORS[:n])
    for i in range(n - len(colors)):
        hue = (0.13 + i * 0.618034) % 1.0
        value = 0.85 if (i // 6) % 2 == 0 else 0.6
        colors.append(_hsv_to_rgb(hue, 0.75, value))
    return colors


def _hsv_to_rgb(h, s, v):
    i = int(h * 6) % 6
    f = h * 6 - int(h * 6)
    p, q, t = v * (1 - s), v * (1 - f * s), v * (1 - (1 - f) * s)
    r, g, b = [(v, t, p), (q, v, p), (p, v, t), (p, q, v), (t, p, v), (v, p, q)][i]
    return int(r * 255), int(g * 255), int(b * 255)


def nice_ticks(low, high, count=5):
    """Round tick values in [low, high] (steps of 1, 2, 2.5 or 5 times a power of ten), about `count`+1 of them."""
    if not (math.isfinite(low) and math.isfinite(high)) or high <= low:
        return [low]
    span = high - low
    power = 10 ** math.floor(math.log10(span / count))
    step = next(m * power for m in (1, 2, 2.5, 5, 10) if span / (m * power) <= count + 1)
    first = math.ceil(low / step - 1e-9) * step
    ticks = []
    value = first
    while value <= high + step * 1e-9:
        ticks.append(0.0 if abs(value) < step * 1e-9 else value)
        value = first + len(ticks) * step
    return ticks


def format_tick(value):
    """Short tick label, 4 significant digits: 0.0015 -> 0.0015, 2e-05 -> 2e-05, 2000 -> 2000."""
    return "0" if value == 0 else f"{value:.4g}"


def padded_limits(values, margin=0.05):
    """(low, high) of the finite `values`, widened by `margin` of the span (or by 1 if flat)."""
    finite = np.asarray(values, np.float64)
    finite = finite[np.isfinite(finite)]
    if finite.size == 0:
        return 0.0, 1.0
    low, high = float(finite.min()), float(finite.max())
    pad = (high - low) * margin if high > low else max(abs(low) * 0.1, 1e-3)
    return low - pad, high + pad


class Axes:
    """A plotting area inside `box` = (left, top, right, bottom) pixels of a Pillow image.

    Data coordinates map linearly: x from `xlim` to [left, right], y from `ylim` to [bottom, top].
    """

    def __init__(self, image, box, xlim, ylim):
        self.image = image
        self.draw = ImageDraw.Draw(image)
        self.box = tuple(int(v) for v in box)
        self.xlim = (float(xlim[0]), float(xlim[1]) if xlim[1] > xlim[0] else float(xlim[0]) + 1.0)
        self.ylim = (float(ylim[0]), float(ylim[1]) if ylim[1] > ylim[0] else float(ylim[0]) + 1.0)

    def to_pixel(self, x, y):
        """Data (x, y) (scalars or arrays) -> pixel (px, py) as floats."""
        left, top, right, bottom = self.box
        px = left + (np.asarray(x, np.float64) - self.xlim[0]) / (self.xlim[1] - self.xlim[0]) * (right - left)
        py = bottom - (np.asarray(y, np.float64) - self.ylim[0]) / (self.ylim[1] - self.ylim[0]) * (bottom - top)
        return px, py

    def frame(self, title=None, xlabel=None, ticks=True):
        """Grid lines, the box, tick labels on both axes, a title above and an x label below."""
        left, top, right, bottom = self.box
        if ticks:
            for x in nice_ticks(*self.xlim):
                px, _ = self.to_pixel(x, self.ylim[0])
                self.draw.line([(px, top), (px, bottom)], fill=GRID)
                label = format_tick(x)
                self.draw.text((px - text_size(label, 10)[0] / 2, bottom + 3), label, fill=INK, font=font(10))
            for y in nice_ticks(*self.ylim):
                _, py = self.to_pixel(self.xlim[0], y)
                self.draw.line([(left, py), (right, py)], fill=GRID)
                label = format_tick(y)
                width, height = text_size(label, 10)
                self.draw.text((left - width - 4, py - height / 2), label, fill=INK, font=font(10))
        self.draw.rectangle(self.box, outline=INK)
        if title:
            self.draw.text((left, top - 16), title, fill=INK, font=font(12))
        if xlabel:
            width, _ = text_size(xlabel, 11)
            self.draw.text(((left + right - width) / 2, bottom + 16), xlabel, fill=INK, font=font(11))

    def line(self, xs, ys, color, width=2):
        """A polyline through the finite points; a non-finite y breaks the line."""
        px, py = self.to_pixel(xs, ys)
        finite = np.isfinite(px) & np.isfinite(py)
        run = []
        for x, y, ok in zip(px, py, finite):
            if ok:
                run.append((float(x), float(y)))
            elif run:
                self._polyline(run, color, width)
                run = []
        self._polyline(run, color, width)

    def _polyline(self, points, color, width):
        if len(points) == 1:
            self.marker(*points[0], color, "circle", width + 1)
        elif points:
            self.draw.line(points, fill=color, width=width, joint="curve")

    def scatter(self, xs, ys, color, shape="circle", radius=3):
        px, py = self.to_pixel(xs, ys)
        for x, y in zip(px, py):
            self.marker(float(x), float(y), color, shape, radius)

    def marker(self, x, y, color, shape="circle", radius=3):
        draw_marker(self.draw, x, y, color, shape, radius)


def draw_marker(draw, x, y, color, shape="circle", radius=3):
    """A filled marker centred on pixel (x, y): circle, square, triangle or diamond."""
    r = radius
    if shape == "circle":
        draw.ellipse([x - r, y - r, x + r, y + r], fill=color)
    elif shape == "square":
        draw.rectangle([x - r, y - r, x + r, y + r], fill=color)
    elif shape == "triangle":
        draw.polygon([(x, y - r - 1), (x + r + 1, y + r), (x - r - 1, y + r)], fill=color)
    elif shape == "diamond":
        draw.polygon([(x, y - r - 1), (x + r + 1, y), (x, y + r + 1), (x - r - 1, y)], fill=color)
    else:
        raise ValueError(f"unknown marker {shape!r}; known: {', '.join(MARKERS)}")


def legend_size(labels, columns=1, size=11):
    """(width, height) in pixels of a legend of `labels` in `columns` columns."""
    rows = math.ceil(len(labels) / columns)
    column_width = max((text_size(label, size)[0] for label in labels), default=0) + 22
    return column_width * columns, rows * (size + 5)


def draw_legend(image, origin, entries, columns=1, size=11):
    """Entries (label, colour, marker or None for a line sample) in a grid from `origin` (top-left)."""
    draw = ImageDraw.Draw(image)
    column_width = legend_size([e[0] for e in entries], columns, size)[0] // max(columns, 1)
    rows = math.ceil(len(entries) / columns)
    for i, (label, color, shape) in enumerate(entries):
        x = origin[0] + (i // rows) * column_width
        y = origin[1] + (i % rows) * (size + 5)
        if shape is None:
            draw.line([(x, y + size / 2 + 1), (x + 14, y + size / 2 + 1)], fill=color, width=3)
        else:
            draw_marker(draw, x + 7, y + size / 2 + 1, color, shape, 4)
        draw.text((x + 19, y), label, fill=INK, font=font(size))


def draw_colorbar(image, box, vmin, vmax, label=None):
    """A horizontal heat-scale bar in `box` with tick labels under it."""
    left, top, right, bottom = (int(v) for v in box)
    ramp = heat_colors(np.linspace(vmin, vmax, right - left), vmin, vmax)  # (W, 3)
    image.paste(Image.fromarray(np.repeat(ramp[None], bottom - top, axis=0)), (left, top))
    axes = Axes(image, box, (vmin, vmax), (0, 1))
    axes.draw.rectangle(box, outline=INK)
    for value in nice_ticks(vmin, vmax, 5):
        px, _ = axes.to_pixel(value, 0)
        text = format_tick(value)
        axes.draw.line([(px, bottom), (px, bottom + 3)], fill=INK)
        axes.draw.text((px - text_size(text, 10)[0] / 2, bottom + 4), text, fill=INK, font=font(10))
    if label:
        axes.draw.text((right + 8, top), label, fill=INK, font=font(11))


def tile(panels, columns, pad=8, background=BACKGROUND):
    """Lay equally sized panels (PIL images) out in rows; returns (image, top-left origin of each)."""
    if not panels:
        raise ValueError("tile: no panels")
    width, height = panels[0].size
    columns = max(1, min(columns, len(panels)))
    rows = math.ceil(len(panels) / columns)
    canvas = Image.new("RGB", (columns * (width + pad) + pad, rows * (height + pad) + pad), background)
    origins = []
    for i, panel in enumerate(panels):
        origin = (pad + (i % columns) * (width + pad), pad + (i // columns) * (height + pad))
        canvas.paste(panel, origin)
        origins.append(origin)
    return canvas, origins


def stack_vertically(parts, background=BACKGROUND):
    """Images one under the other, left-aligned; returns (image, y offset of each part)."""
    width = max(p.size[0] for p in parts)
    canvas = Image.new("RGB", (width, sum(p.size[1] for p in parts)), background)
    offsets, y = [], 0
    for part in parts:
        canvas.paste(part, (0, y))
        offsets.append(y)
        y += part.size[1]
    return canvas, offsets
