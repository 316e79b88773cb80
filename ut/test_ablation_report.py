"""Aggregation over seeds against NumPy, and the report built from it (table, JSON, bar chart)."""
import json
import math
import os

import numpy as np
import pytest
from PIL import Image

from mindclip.ablation.aggregate import aggregate
from mindclip.ablation.plan import RunSpec
from mindclip.ablation.report import write_reports
from mindclip.ablation.tables import AblationRow, AblationTable
from mindclip.viz import draw
from mindclip.viz.bars import BarPanel, plot_bars

METRICS = ["demo/zeroshot/acc1", "demo/retrieval/image_retrieval_recall@1"]
SEEDS = [0, 1, 2, 3]


def make_sweep(tmp_path):
    """4 rows x 4 seeds of made-up results: row b has a failed and a pending seed, row c failed at
    every seed, row d has one finished seed."""
    rows = [AblationRow("a", "base", {}, ()), AblationRow("b", "+ x", {}, ("x",)),
            AblationRow("c", "+ y", {}, ("y",), note="breaks"), AblationRow("d", "+ x + y", {}, ("x", "y"))]
    table = AblationTable("t", str(tmp_path / "t.yaml"), tuple(rows), title="Made-up table", components=("x", "y"))
    rng = np.random.default_rng(0)
    values = {(r.id, s): rng.uniform(0.1, 0.9, len(METRICS)) for r in rows for s in SEEDS}
    specs, results = [], []
    for row in rows:
        for seed in SEEDS:
            spec = RunSpec(row, seed, str(tmp_path / row.id / str(seed)), "r.yaml", (), "m", (), {})
            state = {"b": {1: "failed", 3: None}, "c": dict.fromkeys(SEEDS, "failed"),
                     "d": {0: "done"}}.get(row.id, {}).get(seed, "done" if row.id != "d" else None)
            if state == "done":
                record = {"status": "done", "metrics": dict(zip(METRICS, values[row.id, seed])),
                          "train": {"steps": 2, "final_loss": 1.5}, "seconds": {"train": 3.0}}
            elif state == "failed":
                record = {"status": "failed", "stage": "train", "exit_status": 2, "error": "error: no shards",
                          "log": "x.out", "train": None, "seconds": {}}
            else:
                record = None
            specs.append(spec)
            results.append(record)
    return table, specs, results, values


def test_aggregate_matches_numpy(tmp_path):
    table, specs, results, values = make_sweep(tmp_path)
    done_seeds = {"a": SEEDS, "b": [0, 2], "c": [], "d": [0]}

    rows = aggregate(table.rows, specs, results, METRICS)

    ref = {}
    for row in rows:
        seeds = done_seeds[row["id"]]
        assert row["seeds_done"] == seeds and row["done"] == len(seeds) and row["runs"] == 4
        for j, metric in enumerate(METRICS):
            x = np.array([values[row["id"], s][j] for s in seeds])
            stats = row["stats"][metric]
            assert stats["n"] == len(x) and row["values"][metric] == pytest.approx(list(x))
            if len(x) == 0:
                assert stats["mean"] is None and stats["std"] is None and stats["delta"] is None
                continue
            assert stats["mean"] == pytest.approx(np.mean(x))
            assert stats["std"] == (pytest.approx(np.std(x, ddof=1)) if len(x) > 1 else None)  # sample std
            if row["id"] == "a":
                ref[metric] = x
            first = ref[metric]
            assert stats["delta"] == pytest.approx(np.mean(x) - np.mean(first))
            se = math.sqrt(np.var(x, ddof=1) / len(x) + np.var(first, ddof=1) / len(first)) if len(x) > 1 else None
            assert stats["delta_se"] == (pytest.approx(se) if se is not None else None)
    b = rows[1]
    assert b["pending"] == [3] and [f["seed"] for f in b["failed"]] == [1]
    assert rows[2]["failed"][0] == {"seed": 0, "stage": "train", "exit_status": 2, "error": "error: no shards",
                                    "log": "x.out"}


def test_report_shows_every_row_failed_ones_included(tmp_path):
    table, specs, results, values = make_sweep(tmp_path)
    context = {"recipe": "r.yaml", "seeds": SEEDS, "common": {}, "user_overrides": [], "evals": ["--task zeroshot"],
               "launcher": "local", "command": "python tools/ablate.py ..."}

    paths = write_reports(str(tmp_path / "out"), table, specs, results, METRICS, context)

    lines = open(paths["md"], encoding="utf-8").read().splitlines()
    start = next(i for i, line in enumerate(lines) if line.startswith("| row |"))
    assert lines[start].split(" | ")[:4] == ["| row", "x", "y", "demo acc1"]
    end = lines.index("", start)  # the main table ends at the first blank line
    body = {line.split(" | ")[0][2:]: line.split(" | ") for line in lines[start + 2:end]}
    assert list(body) == ["base", "+ x", "+ y", "+ x + y"]
    a = np.array([values["a", s][0] for s in SEEDS])
    b = np.array([values["b", s][0] for s in (0, 2)])
    assert body["base"][1:5] == ["", "", f"{100 * a.mean():.1f} ± {100 * a.std(ddof=1):.1f}", ""]
    delta_se = 100 * math.sqrt(b.var(ddof=1) / 2 + a.var(ddof=1) / 4)
    assert body["+ x"][1:5] == ["✓", "", f"{100 * b.mean():.1f} ± {100 * b.std(ddof=1):.1f}",
                                f"{100 * (b.mean() - a.mean()):+.1f} ± {delta_se:.1f}"]
    assert body["+ x"][-1] == "2/4, 1 failed |"
    assert body["+ y"][3] == "failed" and body["+ y"][-1] == "0/4, 4 failed |"  # shown, not dropped
    assert body["+ x + y"][3] == f"{100 * values['d', 0][0]:.1f} (n=1)"
    assert sum(line.startswith("| + y | ") and "failed at train (exit 2)" in line for line in lines) == 4
    assert "## Failed runs" in lines and any("error: no shards" in line for line in lines)

    saved = json.load(open(paths["json"], encoding="utf-8"))
    assert [r["id"] for r in saved["rows"]] == ["a", "b", "c", "d"]
    assert saved["rows"][0]["stats"][METRICS[0]]["std"] == pytest.approx(a.std(ddof=1))
    assert [r["status"] for r in saved["runs"]].count("pending") == 4 and saved["std"].startswith("sample")
    assert Image.open(paths["png"]).size[0] > 300


def test_bar_chart_draws_means_and_error_bars_where_it_says():
    panel = BarPanel("acc", means=[20.0, 35.0, None], errors=[5.0, None, None], missing_labels=["", "", "failed"])
    figure, (geometry,) = plot_bars(["one", "two", "three"], [panel], columns=1, panel_size=(300, 200))
    colors = draw.palette(3)
    pixels = figure.load()
    axes = geometry.axes
    for i, (mean, color) in enumerate(zip([20.0, 35.0], colors)):
        x = int(geometry.centers[i] + geometry.half_width / 2)  # inside the bar, off its error bar
        _, top = axes.to_pixel(0, mean)
        assert pixels[x, int(top) + 3] == color and pixels[x, int(top) - 3] != color
    x = int(geometry.centers[0])
    _, high = axes.to_pixel(0, 25.0)
    _, low = axes.to_pixel(0, 15.0)
    assert pixels[x, int(high) + 1] == draw.INK and pixels[x, int(low) - 1] == draw.INK  # the error bar's span
    assert pixels[x, int(high) - 4] != draw.INK  # it ends at mean + std
    x3 = int(geometry.centers[2] + geometry.half_width / 2)
    _, zero = axes.to_pixel(0, 0.0)
    assert all(pixels[x3, y] != colors[2] for y in range(axes.box[1] + 1, int(zero)))  # no bar for a missing mean
    with pytest.raises(ValueError, match="has 2 means"):
        plot_bars(["one", "two", "three"], [BarPanel("acc", [1.0, 2.0], [0.0, 0.0])])
