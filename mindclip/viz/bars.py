"""Bar charts with error bars: one panel per metric, one bar per group (e.g. the rows of an ablation).

    figure, panels = plot_bars(["CLIP", "+ soft labels"], [
        BarPanel("zero-shot top-1 (%)", means=[24.1, 25.0], errors=[1.2, 0.9]),
        BarPanel("image retrieval R@1 (%)", means=[5.3, None], errors=[0.4, None])])

Bars start at 0; each error bar spans mean - error .. mean + error with caps; a group whose mean is
None (e.g. every run failed) gets no bar and its word from `missing_labels` ("no value" by default). Groups are
numbered under the bars and named in the legend (names are too long for the x axis).
"""
import dataclasses
import math
from typing import List, Optional, Sequence

from PIL import Image

from mindclip.viz import draw


@dataclasses.dataclass
class BarPanel:
    title: str
    means: Sequence[Optional[float]]
    errors: Sequence[Optional[float]]  # half-length of each error bar; None or 0 = none drawn
    missing_labels: Optional[Sequence[str]] = None  # shown where a mean is None, per group


@dataclasses.dataclass
class BarGeometry:
    """Where a panel's bars were drawn (pixels), for tests and annotations."""
    axes: draw.Axes
    centers: List[float]  # x pixel of each group's bar centre
    half_width: float


def value_limits(panel: BarPanel):
    """(low, top): from 0 (or the lowest negative mean), up to room above the highest error bar. An
    error bar that reaches below the axis is cut at its edge."""
    finite = [(m, e or 0.0) for m, e in zip(panel.means, panel.errors) if m is not None and math.isfinite(m)]
    high = max((m + e for m, e in finite), default=1.0)
    low = min([m for m, _ in finite] + [0.0])
    return low, (high * 1.12 if high > 0 else 1.0)


def draw_bar_panel(image, box, panel: BarPanel, colors, title_size=12):
    """One panel of bars in `box` = (left, top, right, bottom); returns its BarGeometry."""
    count = len(panel.means)
    axes = draw.Axes(image, box, (0.0, float(count)), value_limits(panel))
    axes.frame(title=panel.title, ticks=False)
    left, top, right, bottom = axes.box
    for y in draw.nice_ticks(*axes.ylim):  # horizontal grid and labels only: x is categorical
        _, py = axes.to_pixel(0.0, y)
        axes.draw.line([(left + 1, py), (right - 1, py)], fill=draw.GRID)
        label = draw.format_tick(y)
        width, height = draw.text_size(label, 10)
        axes.draw.text((left - width - 4, py - height / 2), label, fill=draw.INK, font=draw.font(10))
    axes.draw.rectangle(axes.box, outline=draw.INK)
    slot = (right - left) / max(count, 1)
    half = slot * 0.32
    centers = []
    for i, (mean, error, color) in enumerate(zip(panel.means, panel.errors, colors)):
        center = left + slot * (i + 0.5)
        centers.append(center)
        number = str(i + 1)
        axes.draw.text((center - draw.text_size(number, 10)[0] / 2, bottom + 3), number, fill=draw.INK,
                       font=draw.font(10))
        if mean is None or not math.isfinite(mean):
            label = panel.missing_labels[i] if panel.missing_labels else "no value"
            _, zero = axes.to_pixel(0.0, 0.0)
            axes.draw.text((center - draw.text_size(label, 10)[0] / 2, zero - 14), label, fill=(200, 0, 0),
                           font=draw.font(10))
            continue
        _, y_mean = axes.to_pixel(0.0, mean)
        _, y_zero = axes.to_pixel(0.0, 0.0)
        axes.draw.rectangle([center - half, min(y_mean, y_zero), center + half, max(y_mean, y_zero)], fill=color)
        if error:
            _, y_low = axes.to_pixel(0.0, mean - error)
            _, y_high = axes.to_pixel(0.0, mean + error)
            y_low, y_high = min(float(y_low), bottom), max(float(y_high), top)
            cap = half * 0.45
            axes.draw.line([(center, y_low), (center, y_high)], fill=draw.INK, width=2)
            axes.draw.line([(center - cap, y_low), (center + cap, y_low)], fill=draw.INK, width=2)
            axes.draw.line([(center - cap, y_high), (center + cap, y_high)], fill=draw.INK, width=2)
    return BarGeometry(axes, centers, half)


def plot_bars(groups: Sequence[str], panels: Sequence[BarPanel], columns=2, panel_size=(330, 210), note=None):
    """A figure of bar panels sharing the groups; returns (PIL image, [BarGeometry per panel]).

    `note`: one line of text under the legend (e.g. what the error bars are). Pillow's built-in font
    has no arrows or other symbols outside Latin-1: write "->"."""
    if not panels or not groups:
        raise ValueError("plot_bars: no panels or no groups")
    for panel in panels:
        if len(panel.means) != len(groups) or len(panel.errors) != len(groups):
            raise ValueError(f"plot_bars: panel {panel.title!r} has {len(panel.means)} means and "
                             f"{len(panel.errors)} errors for {len(groups)} groups")
    colors = draw.palette(len(groups))
    entries = [(f"{i + 1}  {name}", color, "square") for i, (name, color) in enumerate(zip(groups, colors))]
    legend_columns = min(len(entries), 2)
    legend_w, legend_h = draw.legend_size([e[0] for e in entries], columns=legend_columns)
    note_h = 16 if note else 0
    width, height = panel_size
    margin_left, margin_top, margin_bottom = 52, 24, 22
    cell_w, cell_h = width + margin_left + 14, height + margin_top + margin_bottom
    columns = max(1, min(columns, len(panels)))
    rows = math.ceil(len(panels) / columns)
    top0 = legend_h + note_h + 18
    figure = Image.new("RGB", (max(columns * cell_w + 10, legend_w + 24), top0 + rows * cell_h + 6), draw.BACKGROUND)
    draw.draw_legend(figure, (12, 8), entries, columns=legend_columns)
    if note:
        figure_draw = draw.Axes(figure, (0, 0, 1, 1), (0, 1), (0, 1)).draw
        figure_draw.text((12, legend_h + 12), note, fill=draw.INK, font=draw.font(10))
    geometry = []
    for i, panel in enumerate(panels):
        left = 10 + (i % columns) * cell_w + margin_left
        top = top0 + (i // columns) * cell_h + margin_top
        geometry.append(draw_bar_panel(figure, (left, top, left + width, top + height), panel, colors))
    return figure, geometry
