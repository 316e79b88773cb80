"""Training curves from the JSON-lines logs `OUTPUT_DIR/train_log.jsonl` (mindclip/train/logger.py).

One panel per series against the step: the total loss, every loss part (the union over the runs:
a CLIP run simply has no `token` curve), the learning rate, `logit_scale` (the log holds
exp(logit_scale), the multiplier of the logits) and images/s. A part that is exactly 0 at every
step of a run is a disabled loss (weight 0, e.g. MLM off) and gets no line. Runs are overlaid, one colour each,
with a legend. A resumed run appends to its log, so a step can appear twice: the last record of a
step wins. Steps whose loss was not finite (`finite: false`, skipped by the train step) are left out
of the lines and counted in the legend.
"""
import dataclasses
import json
import math
import os
from typing import Dict, List

import numpy as np
from PIL import Image

from mindclip.viz import draw

REQUIRED_KEYS = ("step", "loss", "parts", "lr", "logit_scale", "images_per_s")
SERIES_TITLES = {"loss": "loss (weighted total)", "lr": "learning rate", "logit_scale": "logit scale (exp)",
                 "images_per_s": "images / s"}


@dataclasses.dataclass
class RunLog:
    """One run's log as arrays over its steps (sorted, one record per step)."""
    label: str
    path: str
    steps: np.ndarray  # (N,) int64
    series: Dict[str, np.ndarray]  # name -> (N,) float64; "part:<name>" for loss parts; NaN where absent
    skipped: int  # records with finite == false


def read_log(path):
    """The records of a JSON-lines training log, checked; errors name the file and line."""
    if not os.path.isfile(path):
        raise FileNotFoundError(f"training log not found: {path}")
    records = []
    with open(path, encoding="utf-8") as f:
        for number, line in enumerate(f, 1):
            if not line.strip():
                continue
            try:
                record = json.loads(line)
            except json.JSONDecodeError as e:
                raise ValueError(f"{path}:{number}: not a JSON object ({e.msg})") from None
            if not isinstance(record, dict):
                raise ValueError(f"{path}:{number}: expected a JSON object, got {type(record).__name__}")
            if "eval" in record or "event" in record:
                continue  # held-out evaluation and bookkeeping (resume) records: not a step
            missing = [k for k in REQUIRED_KEYS if k not in record]
            if missing:
                raise ValueError(f"{path}:{number}: record lacks {missing} (a train_log.jsonl record has "
                                 f"{', '.join(REQUIRED_KEYS)})")
            if not isinstance(record["parts"], dict):
                raise ValueError(f"{path}:{number}: 'parts' must be an object of loss parts")
            records.append(record)
    if not records:
        raise ValueError(f"{path}: empty training log (no records): has the run logged a step yet?")
    return records


def _number(value):
    return float("nan") if value is None else float(value)


def load_run(path, label=None):
    """RunLog of one log file (`path` may also be the run's output folder)."""
    if os.path.isdir(path):
        path = os.path.join(path, "train_log.jsonl")
    by_step = {}
    for record in read_log(path):
        by_step[int(record["step"])] = record  # a resumed run repeats steps: keep the last
    steps = sorted(by_step)
    records = [by_step[s] for s in steps]
    part_names = list(dict.fromkeys(name for r in records for name in r["parts"]))
    series = {"loss": [], **{f"part:{n}": [] for n in part_names}, "lr": [], "logit_scale": [], "images_per_s": []}
    for record in records:
        ok = record.get("finite", True)
        for name, values in series.items():
            value = record["parts"].get(name[5:]) if name.startswith("part:") else record[name]
            is_loss = name == "loss" or name.startswith("part:")
            values.append(_number(value) if ok or not is_loss else float("nan"))
    for name in part_names:  # a disabled part (weight 0) is logged as 0.0 at every step: no panel
        if np.all(np.asarray(series[f"part:{name}"]) == 0.0):
            del series[f"part:{name}"]
    skipped = sum(1 for r in records if not r.get("finite", True))
    label = label or os.path.basename(os.path.dirname(os.path.abspath(path))) or path
    return RunLog(label, path, np.asarray(steps, np.int64), {k: np.asarray(v, np.float64) for k, v in series.items()},
                  skipped)


def series_names(runs):
    """Panel order: loss, the parts (first-seen order over the runs), lr, logit_scale, images/s."""
    parts = list(dict.fromkeys(n for run in runs for n in run.series if n.startswith("part:")))
    return ["loss"] + parts + ["lr", "logit_scale", "images_per_s"]


def title_of(name):
    return f"loss part: {name[5:]}" if name.startswith("part:") else SERIES_TITLES.get(name, name)


def plot_runs(runs: List[RunLog], columns=3, panel_size=(340, 210)):
    """One figure with a panel per series, runs overlaid; returns (PIL image, {series: Axes})."""
    if not runs:
        raise ValueError("plot_runs: no runs")
    names = series_names(runs)
    colors = draw.palette(len(runs))
    width, height = panel_size
    margin_left, margin_top, margin_bottom = 62, 26, 40
    cell_w, cell_h = width + margin_left + 12, height + margin_top + margin_bottom
    columns = max(1, min(columns, len(names)))
    rows = math.ceil(len(names) / columns)
    entries = [(f"{run.label}" + (f" ({run.skipped} non-finite steps)" if run.skipped else ""), color, None)
               for run, color in zip(runs, colors)]
    legend_w, legend_h = draw.legend_size([e[0] for e in entries], columns=min(len(entries), 3))
    figure = Image.new("RGB", (max(columns * cell_w + 10, legend_w + 20), rows * cell_h + legend_h + 20),
                       draw.BACKGROUND)
    draw.draw_legend(figure, (12, 8), entries, columns=min(len(entries), 3))
    axes_by_name = {}
    for i, name in enumerate(names):
        left = 10 + (i % columns) * cell_w + margin_left
        top = legend_h + 20 + (i // columns) * cell_h + margin_top
        axes_by_name[name] = _panel(figure, (left, top, left + width, top + height), name, runs, colors)
    return figure, axes_by_name


def _panel(figure, box, name, runs, colors):
    present = [(run, color) for run, color in zip(runs, colors) if name in run.series]
    steps = np.concatenate([run.steps for run, _ in present])
    values = np.concatenate([run.series[name] for run, _ in present])
    axes = draw.Axes(figure, box, (float(steps.min()), float(steps.max())), draw.padded_limits(values))
    axes.frame(title=title_of(name), xlabel="step")
    for run, color in present:
        axes.line(run.steps, run.series[name], color)
    return axes
