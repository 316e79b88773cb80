"""The sweep's outputs: `ablation.json` (everything), `ablation.md` (the table, laid out like the
papers': check-mark columns, then mean ± std and the delta to the first row per metric) and
`ablation.png` (a bar chart with error bars, drawn with mindclip.viz.bars). All three are
rewritten atomically after every run, so they always show what has finished.
"""
import datetime
import os
from typing import Dict, List, Optional, Sequence

from mindclip._io import write_json_atomic
from mindclip.ablation.aggregate import aggregate

DEFAULT_METRICS = {"zeroshot": ("acc1", "acc5"),
                   "retrieval": ("image_retrieval_recall@1", "text_retrieval_recall@1",
                                 "image_retrieval_recall@5", "text_retrieval_recall@5")}
DIRECTIONS = {"image_retrieval": "text->image", "text_retrieval": "image->text"}
STD_RULE = "sample standard deviation over seeds (numpy ddof=1)"
DELTA_RULE = "row mean - first row mean; delta_se = sqrt(s^2/n + s0^2/n0)"


def report_metrics(evals, keys=None):
    """Metric ids ("<dataset>/<task>/<key>") shown in the table and chart: `keys` (CLIP_benchmark or
    mindclip metric names) for every evaluation, or the defaults per task."""
    chosen = []
    for e in evals:
        for key in (keys or DEFAULT_METRICS[e.task]):
            chosen.append(f"{e.dataset}/{e.task}/{key}")
    return chosen


def metric_title(metric):
    """"demo/retrieval/image_retrieval_recall@1" -> "demo image_retrieval_recall@1 (text->image)"."""
    dataset, _, key = metric.split("/", 2)
    direction = next((d for prefix, d in DIRECTIONS.items() if key.startswith(prefix)), None)
    return f"{dataset} {key}" + (f" ({direction})" if direction else "")


def percent(value, signed=False):
    return "–" if value is None else (f"{100 * value:+.1f}" if signed else f"{100 * value:.1f}")


def cell(stats, row):
    """'24.1 ± 1.2', '24.1 (n=1)', or why there is no value."""
    if stats["mean"] is None:
        return "failed" if row["failed"] and not row["pending"] else "pending"
    if stats["std"] is None:
        return f"{percent(stats['mean'])} (n={stats['n']})"
    return f"{percent(stats['mean'])} ± {percent(stats['std'])}"


def delta_cell(stats, is_first):
    if is_first or stats["delta"] is None:
        return ""
    if stats["delta_se"] is None:
        return percent(stats["delta"], signed=True)
    return f"{percent(stats['delta'], signed=True)} ± {percent(stats['delta_se'])}"


def markdown_table(table, rows, metrics):
    header = ["row"] + list(table.components) + [h for m in metrics for h in (metric_title(m), "Δ")] + ["runs"]
    align = ["---"] + [":-:"] * len(table.components) + ["--:"] * (2 * len(metrics)) + [":-:"]
    lines = ["| " + " | ".join(header) + " |", "| " + " | ".join(align) + " |"]
    for i, row in enumerate(rows):
        marks = ["✓" if c in row["components"] else "" for c in table.components]
        values = [v for m in metrics for v in (cell(row["stats"][m], row), delta_cell(row["stats"][m], i == 0))]
        runs = f"{row['done']}/{row['runs']}" + (f", {len(row['failed'])} failed" if row["failed"] else "")
        lines.append("| " + " | ".join([row["name"]] + marks + values + [runs]) + " |")
    return lines


def runs_table(specs, results, metrics):
    lines = ["| row | seed | status | " + " | ".join(metric_title(m) for m in metrics)
             + " | steps | final loss | seconds |", "| --- | --: | --- |" + " --: |" * (len(metrics) + 3)]
    for spec, record in zip(specs, results):
        status = "pending" if record is None else record["status"]
        if record and record["status"] == "failed":
            status = f"failed at {record['stage']} (exit {record['exit_status']})"
        done = record if record and record["status"] == "done" else None
        values = [percent(done["metrics"].get(m)) if done else "" for m in metrics]
        train = (record or {}).get("train") or {}
        loss = f"{train['final_loss']:.4f}" if train.get("final_loss") is not None else ""
        seconds = " + ".join(f"{v:.0f}" for v in ((record or {}).get("seconds") or {}).values())
        lines.append(f"| {spec.row.name} | {spec.seed} | {status} | " + " | ".join(values)
                     + f" | {train.get('steps', '')} | {loss} | {seconds} |")
    return lines


def markdown(table, specs, results, rows, metrics, context):
    out = [f"# {table.title or table.name}", ""]
    if table.source:
        out += [f"Source: {table.source}.", ""]
    out += [f"Table `{table.name}` ({table.path}); recipe `{context['recipe']}`; seeds "
            f"{', '.join(str(s) for s in context['seeds'])}; launcher {context['launcher']}.",
            f"Overrides of every row, later ones winning: table `common` {context['common'] or 'none'}; "
            f"command line {context['user_overrides'] or 'none'}; then the row's own. "
            f"Evaluations: {'; '.join(context['evals'])}.", "",
            f"Command: `{context['command']}`", "",
            "Values in %: mean ± sample standard deviation (n − 1) over the seeds that finished "
            "(`(n=1)`: one run, no deviation). Δ: the row's mean minus the first row's, ± the standard "
            "error of that difference, √(s²/n + s₀²/n₀). Runs: finished / planned.", ""]
    out += markdown_table(table, rows, metrics) + [""]
    notes = [f"- {row['name']}: {row['note']}" for row in rows if row["note"]]
    if notes:
        out += ["Notes:", ""] + notes + [""]
    failed = [(row, f) for row in rows for f in row["failed"]]
    if failed:
        out += ["## Failed runs", "", "| row | seed | stage | exit status | error | log |",
                "| --- | --: | --- | --: | --- | --- |"]
        out += [f"| {row['name']} | {f['seed']} | {f['stage']} | {f['exit_status']} | "
                f"{f['error'].replace('|', '/')} | {f['log']} |" for row, f in failed] + [""]
    out += ["## Every run", "", "Seconds: training + each evaluation, of the attempt that finished the run "
            "(a resumed run counts only its last attempt).", ""] + runs_table(specs, results, metrics)
    out += ["", "![ablation chart](ablation.png)", ""]
    return "\n".join(out)


def draw_chart(path, rows, metrics, title):
    from mindclip.viz.bars import BarPanel, plot_bars

    missing = ["pending" if r["pending"] else "failed" for r in rows]
    panels = [BarPanel(metric_title(m) + " (%)", [_scaled(r["stats"][m]["mean"]) for r in rows],
                       [_scaled(r["stats"][m]["std"]) for r in rows], missing) for m in metrics]
    figure, _ = plot_bars([r["name"] for r in rows], panels, columns=2,
                          note=f"{title}: mean over seeds (bars) +- sample standard deviation (error bars)")
    tmp = path + ".tmp.png"
    figure.save(tmp)
    os.replace(tmp, path)
    return path


def _scaled(value):
    return None if value is None else 100.0 * value


def write_reports(out_dir, table, specs, results, metrics, context) -> Dict[str, str]:
    """Write ablation.json, ablation.md and ablation.png into `out_dir`; return their paths.

    `context`: recipe, seeds, common, user_overrides, evals (labels), launcher, command (text).
    """
    rows_in_plan = [row for row in table.rows if any(spec.row.id == row.id for spec in specs)]
    rows = aggregate(rows_in_plan, specs, results)
    shown = [m for m in metrics if any(r["stats"].get(m, {}).get("n") for r in rows)] or list(metrics)
    for row in rows:  # metrics asked for but found in no run still get (empty) statistics
        for m in shown:
            row["stats"].setdefault(m, {"n": 0, "mean": None, "std": None, "delta": None, "delta_se": None})
    os.makedirs(out_dir, exist_ok=True)
    paths = {"json": os.path.join(out_dir, "ablation.json"), "md": os.path.join(out_dir, "ablation.md"),
             "png": os.path.join(out_dir, "ablation.png")}
    write_json_atomic(paths["json"], {
        "table": table.name, "title": table.title, "source": table.source, "table_path": table.path,
        **context, "std": STD_RULE, "delta": DELTA_RULE, "reported_metrics": shown,
        "created": datetime.datetime.now().astimezone().isoformat(timespec="seconds"),
        "rows": rows, "runs": [r if r is not None else {"status": "pending", "row": s.row.id, "seed": s.seed}
                               for s, r in zip(specs, results)]})
    tmp = paths["md"] + ".tmp"
    with open(tmp, "w", encoding="utf-8") as f:
        f.write(markdown(table, specs, results, rows, shown, context))
    os.replace(tmp, paths["md"])
    draw_chart(paths["png"], rows, shown, table.name)
    return paths
