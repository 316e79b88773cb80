"""Result files: one JSON per (model, dataset, task), and a plain-text table of several results.

File name: `<model tag>__<dataset>__<task>.json`, where the model tag is the model name, plus the
checkpoint's file stem when there is one (`tiny_resnet18@last`), with any character outside
`[A-Za-z0-9._@-]` replaced by `_`. Content:

    {"model": ..., "checkpoint": ... or null, "dataset": ..., "task": "zeroshot" | "retrieval",
     "metrics": {...}, "settings": {...every option that affects the numbers...},
     "mindclip_version": ..., "created": ISO time, "seconds": wall time of the evaluation}
"""
import datetime
import json
import os

from mindclip._io import write_json_atomic
import re

TASKS = ("zeroshot", "retrieval")


def _safe(text):
    return re.sub(r"[^A-Za-z0-9._@-]", "_", str(text))


def model_tag(model_name, checkpoint=None):
    """`name`, or `name@<checkpoint stem>` when a checkpoint is given."""
    if checkpoint is None:
        return _safe(model_name)
    return _safe(f"{model_name}@{os.path.splitext(os.path.basename(checkpoint))[0]}")


def result_path(output_dir, model_name, checkpoint, dataset, task):
    """Where the result of (model, checkpoint, dataset, task) is written."""
    if task not in TASKS:
        raise ValueError(f"unknown task {task!r}; expected one of {TASKS}")
    return os.path.join(output_dir, f"{model_tag(model_name, checkpoint)}__{_safe(dataset)}__{task}.json")


def make_result(model_name, checkpoint, dataset, task, metrics, settings, seconds):
    """The JSON-ready result record."""
    from mindclip import __version__

    return {"model": model_name, "checkpoint": checkpoint, "dataset": dataset, "task": task,
            "metrics": metrics, "settings": settings, "mindclip_version": __version__,
            "created": datetime.datetime.now().astimezone().isoformat(timespec="seconds"),
            "seconds": round(float(seconds), 3)}


def write_result(output_dir, result):
    """Write `result` (see `make_result`) atomically; return the file path."""
    path = result_path(output_dir, result["model"], result["checkpoint"], result["dataset"], result["task"])
    os.makedirs(output_dir, exist_ok=True)
    return write_json_atomic(path, result)


def read_result(path):
    """Load a result file written by `write_result`."""
    with open(path, encoding="utf-8") as f:
        return json.load(f)


TABLE_COLUMNS = {
    "zeroshot": ("top1", "top5", "mean_per_class_recall"),
    "retrieval": ("image_to_text_R@1", "image_to_text_R@5", "image_to_text_R@10",
                  "text_to_image_R@1", "text_to_image_R@5", "text_to_image_R@10"),
}


def format_table(results):
    """A fixed-width table (percentages) of result records, one line per record."""
    lines = []
    for task in TASKS:
        rows = [r for r in results if r["task"] == task]
        if not rows:
            continue
        columns = TABLE_COLUMNS[task]
        header = ["model", "dataset"] + [c.replace("image_to_text_", "i2t ").replace("text_to_image_", "t2i ")
                                         .replace("mean_per_class_recall", "mean/cls") for c in columns]
        body = [[model_tag(r["model"], r["checkpoint"]), r["dataset"]]
                + [f"{100 * r['metrics'][c]:.2f}" if c in r["metrics"] else "-" for c in columns] for r in rows]
        widths = [max(len(str(row[i])) for row in [header] + body) for i in range(len(header))]
        for row in [header] + body:
            lines.append("  ".join(str(cell).ljust(w) for cell, w in zip(row, widths)).rstrip())
        lines.append("")
    return "\n".join(lines).rstrip() + "\n"
