"""Conversion of raw image-text pairs into MindRecord shards: orchestration, report, summary.

`convert(samples, out_dir, prefix)` validates every sample (decoding its image, in `workers`
processes), writes the good ones with `ShardWriter`, lists the bad ones in
``OUT/PREFIX-report.tsv`` (where, reason, detail), writes ``OUT/PREFIX-summary.json`` and ends
with one summary line. One bad sample never stops it.
"""
import dataclasses
import functools
import glob
import json
import multiprocessing
import os
import shutil
import sys
import time
from typing import Dict, List

from mindclip.data.images import SKIP_REASONS
from mindclip.data.sources import SourceOptions, check_inputs, read_samples
from mindclip.data.validate import RecordOptions, validate_sample
from mindclip.data.writer import SHARD_SUFFIX, ShardWriter, record_schema


@dataclasses.dataclass
class ConversionSummary:
    """What a conversion did; `line()` is the summary it prints."""

    written: int = 0
    skipped: Dict[str, int] = dataclasses.field(default_factory=lambda: {r: 0 for r in SKIP_REASONS})
    shards: List[str] = dataclasses.field(default_factory=list)
    bytes: int = 0
    report: str = ""

    @property
    def total_skipped(self):
        return sum(self.skipped.values())

    def line(self):
        reasons = ", ".join(f"{reason} {n}" for reason, n in self.skipped.items() if n)
        skipped = f"skipped {self.total_skipped}" + (f" ({reasons})" if reasons else "")
        return f"written {self.written}, {skipped}, shards {len(self.shards)}, bytes {self.bytes}"

    def to_dict(self):
        return {"written": self.written, "skipped": dict(self.skipped), "shards": list(self.shards),
                "bytes": self.bytes, "report": self.report}


class _Progress:
    """A line on stderr every `every_s` seconds: pairs read, written, skipped, rate."""

    def __init__(self, every_s, stream=None):
        self.every_s, self.stream = every_s, stream
        self.start = self.last = time.monotonic()

    def update(self, summary):
        now = time.monotonic()
        if self.every_s is None or now - self.last < self.every_s:
            return
        self.last = now
        done = summary.written + summary.total_skipped
        rate = done / max(now - self.start, 1e-9)
        print(f"[convert] {done} pairs: {summary.written} written, {summary.total_skipped} skipped, "
              f"{rate:.0f} pairs/s", file=self.stream or sys.stderr, flush=True)


def _validated(samples, record_options, workers):
    """`validate_sample` over `samples`, in order, in `workers` processes (1: in this one)."""
    check = functools.partial(validate_sample, options=record_options)
    if workers <= 1:
        yield from map(check, samples)
        return
    with multiprocessing.get_context("spawn").Pool(workers) as pool:
        yield from pool.imap(check, samples, chunksize=8)


class ExistingShardsError(FileExistsError):
    """The output folder already holds shards of this prefix and overwriting was not asked for."""

    def __init__(self, out_dir, prefix, existing):
        super().__init__(f"{out_dir} already holds {len(existing)} '{prefix}' shard files (e.g. {existing[0]}); "
                         f"choose another prefix or convert with overwrite=True")
        self.out_dir, self.prefix, self.existing = out_dir, prefix, existing


def _existing_shards(out_dir, prefix, overwrite):
    """The PREFIX shard files already in `out_dir`; refused unless `overwrite`."""
    existing = sorted(glob.glob(os.path.join(out_dir, f"{prefix}-*{SHARD_SUFFIX}*")))
    if existing and not overwrite:
        raise ExistingShardsError(out_dir, prefix, existing)
    return existing


def _publish(staged_shards, out_dir, replaced):
    """Replace the earlier shards by the staged ones (index first: a visible shard is complete)."""
    for path in replaced:
        os.remove(path)
    published = []
    for staged in staged_shards:
        final = os.path.join(out_dir, os.path.basename(staged))
        os.replace(staged + ".db", final + ".db")
        os.replace(staged, final)
        published.append(final)
    return published


def convert(samples, out_dir, prefix="train", record_options=RecordOptions(), shard_samples=10000,
            shard_bytes=1 << 30, workers=1, progress_every_s=10.0, overwrite=False, log=print):
    """Validate and write `samples` (an iterable of `RawSample`); return a `ConversionSummary`.

    Shards are ``OUT/PREFIX-00000.mindrecord`` (+ ``.db``); ids run 0..written-1 in input order.
    They are written to a staging folder and published only when the whole conversion succeeded:
    a conversion that fails (or is killed) leaves `out_dir` as it was, earlier shards included
    (with `overwrite`, they are replaced only then). `progress_every_s=None` silences progress;
    `log=None` silences the summary line.
    """
    os.makedirs(out_dir, exist_ok=True)
    replaced = _existing_shards(out_dir, prefix, overwrite)
    summary = ConversionSummary(report=os.path.join(out_dir, f"{prefix}-report.tsv"))
    staging = os.path.join(out_dir, f".{prefix}.staging")
    shutil.rmtree(staging, ignore_errors=True)  # left by a killed conversion
    os.makedirs(staging)
    partial_report = os.path.join(staging, os.path.basename(summary.report))
    schema = record_schema(record_options.with_summary, record_options.with_roi)
    try:
        writer = _write_shards(samples, staging, prefix, schema, record_options, shard_samples, shard_bytes,
                               workers, progress_every_s, partial_report, summary)
        summary.shards, summary.bytes = _publish(writer.shards, out_dir, replaced), writer.bytes
        os.replace(partial_report, summary.report)
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    with open(os.path.join(out_dir, f"{prefix}-summary.json"), "w", encoding="utf-8") as f:
        json.dump(dict(summary.to_dict(), schema=sorted(schema)), f, indent=1)
    if log:
        log(summary.line())
    return summary


def _write_shards(samples, staging, prefix, schema, record_options, shard_samples, shard_bytes, workers,
                  progress_every_s, report_path, summary):
    """Validate `samples` and write their records to shards in `staging`, the skips to the report."""
    progress = _Progress(progress_every_s)
    with open(report_path, "w", encoding="utf-8") as report, \
            ShardWriter(staging, prefix, schema, shard_samples, shard_bytes) as writer:
        report.write("where\treason\tdetail\n")
        for records, skips in _validated(samples, record_options, workers):
            for record in records:
                writer.write(record)
            for where, reason, detail in skips:
                summary.skipped[reason] += 1
                report.write(f"{_tsv_field(where)}\t{reason}\t{_tsv_field(detail)}\n")
            summary.written = writer.written
            progress.update(summary)
    return writer


def _tsv_field(text):
    """One report field: no tabs or newlines, undecodable bytes shown as escapes."""
    text = str(text).encode("utf-8", "backslashreplace").decode("utf-8")
    return text.replace("\t", " ").replace("\n", " ").replace("\r", " ")


def convert_files(inputs, out_dir, prefix="train", fmt=None, source_options=SourceOptions(), **kwargs):
    """Read `inputs` (paths, globs, `{000..009}` ranges) in format `fmt` and `convert` them.

    Every input is checked first (`check_inputs`: it exists, its format is known, a CSV/TSV header
    names the columns), so a bad second file raises `InputError` before any shard is written.
    """
    paths = check_inputs(inputs, fmt, source_options)
    return convert(read_samples(paths, fmt, source_options, expand=False), out_dir, prefix, **kwargs)
