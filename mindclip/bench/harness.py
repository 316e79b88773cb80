"""What every benchmark shares, NumPy only so that the PyTorch side imports it too: `BenchError`, the
timer (with a host sync: MindSpore launches asynchronously), peak memory, JSON lines, the batch a
benchmark feeds (`BatchSpec`: synthetic or an .npz file) and the names of a train step's pieces."""
import collections
import dataclasses
import json
import os
import resource
import statistics
import time
from typing import Optional

import numpy as np

from mindclip._io import append_json_line
from mindclip.data.columns import BATCH_COLUMNS, CAPTION_TOKENS
from mindclip.data.synthetic import synthetic_arrays

PROGRESS = 0.7  # the step's training-progress input: LightCLIP's importance-aware regime (r2 = 0.66)


class BenchError(ValueError):
    """A benchmark cannot run as asked (the message names the file, key or value)."""


def host_sync(output):
    """Wait for every Tensor in `output` (nested tuples/lists too): MindSpore launches asynchronously."""
    if hasattr(output, "asnumpy"):
        output.asnumpy()
    elif isinstance(output, (tuple, list)):
        for leaf in output:
            host_sync(leaf)
    return output


Timing = collections.namedtuple("Timing", "first_s median_s min_s cpu_median_s")


def time_calls(call, steps, warmup=0, sync=host_sync):
    """Time `call()`: the first call (compile + run), `warmup` untimed calls, then `steps` timed calls.

    Each call is followed by `sync(output)` inside its timing. CPU seconds are the process's (all
    threads): they hardly move when other processes share the cores, wall seconds do.
    """
    start = time.perf_counter()
    sync(call())
    first = time.perf_counter() - start
    for _ in range(warmup):
        sync(call())
    walls, cpus = [], []
    for _ in range(steps):
        wall, cpu = time.perf_counter(), time.process_time()
        sync(call())
        walls.append(time.perf_counter() - wall)
        cpus.append(time.process_time() - cpu)
    return Timing(first, statistics.median(walls), min(walls), statistics.median(cpus))


def peak_rss_gib():
    """The peak resident memory of this process so far (ru_maxrss), GiB."""
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2 ** 20


def emit(result, json_path):
    """Print `result` as one JSON line and append it to `json_path` (if any); returns it."""
    print(json.dumps(result), flush=True)
    append_json_line(json_path, result)
    return result


@dataclasses.dataclass(frozen=True)
class BatchSpec:
    """The batch a train-step benchmark feeds: the synthetic recipe (`mindclip.data.synthetic`: `batch`
    rows of `text_length` tokens, caption `lengths` uniform or cc3m, `seed`), or the file `npz`."""

    batch: int = 32
    text_length: int = 77
    lengths: str = "uniform"
    seed: int = 0
    npz: Optional[str] = None

    def synthetic(self, method, image_size, rng=None):
        """{column: array} of one synthetic batch in the method's order (`rng`: a batch after another)."""
        rng = np.random.default_rng(self.seed) if rng is None else rng
        return synthetic_arrays(method, image_size, self.batch, self.text_length, rng, self.lengths)

    def from_npz(self, method):
        """({column: array} of the .npz batch, the spec with its batch size and text length)."""
        columns = BATCH_COLUMNS[method]
        arrays = dict(zip(columns, load_npz_batch(self.npz, columns)))
        batch, text_length = arrays[CAPTION_TOKENS].shape
        return arrays, dataclasses.replace(self, batch=int(batch), text_length=int(text_length))


def load_npz_batch(path, columns):
    """The arrays `columns` (in that order) of an .npz batch (e.g. written by the side-by-side)."""
    if not os.path.isfile(path):
        raise BenchError(f"batch file {path}: no such file")
    with np.load(path) as data:
        missing = [c for c in columns if c not in data.files]
        if missing:
            raise BenchError(f"batch file {path}: no array {missing[0]!r} (a batch of this method has "
                             f"{list(columns)})")
        return [data[c] for c in columns]


STEP_PIECES = {  # each forward + backward as its own graph unless said otherwise, on fixed inputs
    "image_tower": "the image tower to the pooled, projected features",
    "text_tower": "the text tower (token table included) to the EOT-pooled features",
    "token_table": "only the token lookup and its (vocab x width) table gradient",
    "text_no_table": "the text tower with a frozen token table (the difference is the table gradient)",
    "inst_loss": "the contrastive parts (soft targets) on fixed features",
    "token_loss": "token alignment with the host Hungarian op on fixed tokens [lightclip, token_weight > 0]",
    "mlm_branch": "masked-text pass, fusion, both MLM heads and their losses [lightclip, mlm_weight > 0]",
    "optimizer": "AdamW over every trainable weight, forward only",
}


def select_pieces(text, available):
    """"all" (those of `available`, in STEP_PIECES order) or a comma-separated list, each of `available`."""
    if text == "all":
        return [name for name in STEP_PIECES if name in available]
    names = [name.strip() for name in text.split(",") if name.strip()]
    for name in names:
        if name not in STEP_PIECES:
            raise BenchError(f"unknown step piece {name!r}; choose from all, {', '.join(STEP_PIECES)}")
        if name not in available:
            raise BenchError(f"step piece {name!r} is not part of this step ({STEP_PIECES[name]})")
    return names
