"""Mean, standard deviation and delta to the first row, over the seeds of each row.

- mean: over the runs of the row that finished (`status: done`); failed runs are counted and
  listed, never averaged in.
- std: the **sample** standard deviation (NumPy `ddof=1`, the n - 1 estimator) over those runs; it
  is undefined (None) with fewer than 2 runs.
- delta: the row's mean minus the first row's mean (0 for the first row itself).
- delta_se: the standard error of that difference of two independent means,
  sqrt(s_row^2 / n_row + s_first^2 / n_first) (None unless both rows have 2 or more runs).

Values stay fractions as in the result files (0.25 = 25 %); the report formats them.
"""
import math
from typing import Dict, List, Optional, Sequence

import numpy as np


def seed_statistics(values: Sequence[float]) -> Dict[str, Optional[float]]:
    """{"n", "mean", "std"} of one row's values (sample std; None where undefined)."""
    values = np.asarray(values, np.float64)
    n = int(values.size)
    return {"n": n, "mean": float(values.mean()) if n else None,
            "std": float(values.std(ddof=1)) if n > 1 else None}


def difference(row: Dict, first: Dict) -> Dict[str, Optional[float]]:
    """{"delta", "delta_se"} of a row's statistics against the first row's."""
    if row["mean"] is None or first["mean"] is None:
        return {"delta": None, "delta_se": None}
    se = None
    if row["std"] is not None and first["std"] is not None:
        se = math.sqrt(row["std"] ** 2 / row["n"] + first["std"] ** 2 / first["n"])
    return {"delta": row["mean"] - first["mean"], "delta_se": se}


def metric_names(results: Sequence[Optional[dict]]) -> List[str]:
    """Every metric found in a finished run, in first-seen order."""
    names = {}
    for record in results:
        if record and record.get("status") == "done":
            names.update(dict.fromkeys(record["metrics"]))
    return list(names)


def aggregate(rows, specs, results, metrics=None):
    """Per-row statistics of a sweep.

    Args:
        rows: the table's rows in order (the first is the reference of the deltas).
        specs: the RunSpecs of the sweep; results: their result records (None = not finished).
        metrics: metric keys to summarise (default: all found).

    Returns a list, one dict per row: id, name, components, runs (planned), done, failed (list of
    {seed, stage, exit_status, error, log}), pending (seeds not finished), values ({metric: [per
    done run, seed order]}), seeds_done, and stats ({metric: {n, mean, std, delta, delta_se}}).
    """
    metrics = list(metrics) if metrics is not None else metric_names(results)
    out = []
    for row in rows:
        mine = [(spec, record) for spec, record in zip(specs, results) if spec.row.id == row.id]
        done = [(spec, record) for spec, record in mine if record and record["status"] == "done"]
        entry = {"id": row.id, "name": row.name, "components": list(row.components), "note": row.note,
                 "runs": len(mine), "done": len(done), "seeds_done": [spec.seed for spec, _ in done],
                 "pending": [spec.seed for spec, record in mine if record is None],
                 "failed": [{"seed": spec.seed, "stage": record["stage"], "exit_status": record["exit_status"],
                             "error": record["error"], "log": record["log"]}
                            for spec, record in mine if record and record["status"] == "failed"],
                 "values": {m: [record["metrics"][m] for _, record in done if m in record["metrics"]]
                            for m in metrics}}
        entry["stats"] = {m: seed_statistics(entry["values"][m]) for m in metrics}
        out.append(entry)
    if out:
        first = out[0]["stats"]
        for entry in out:
            for m in metrics:
                entry["stats"][m].update(difference(entry["stats"][m], first[m]))
    return out
