"""Sharded MindRecord writing: atomic shards, sequential sample ids, a report of skipped samples.

A shard is written under ``OUT/.partial-PREFIX/`` and moved into ``OUT/`` only once it is committed, index
file first, so a shard visible in OUT is always complete. MindRecord stores a shard's own file name
inside it, so the temporary file already has its final name (only the directory changes).
"""
import os
import shutil

from mindspore.mindrecord import FileWriter

SHARD_SUFFIX = ".mindrecord"
PAGE_SIZE = 8 << 20  # MindRecord's default 32 MB pages (and 16 MB header) make tiny shards 48 MB files
HEADER_SIZE = 1 << 20
MAX_SAMPLE_BYTES = 6 << 20  # a sample must fit in one page


def record_schema(with_summary=False, with_roi=False):
    """MindRecord schema of a converted shard (see docs/data.md, "Shard layout")."""
    schema = {
        "id": {"type": "int64"},  # 0..N-1 over the whole conversion, in write order
        "key": {"type": "string"},  # where the pair came from (file:line, tar:key)
        "image": {"type": "bytes"},  # JPEG or PNG bytes that decode to RGB
        "caption": {"type": "string"},
    }
    if with_summary:
        schema["summary"] = {"type": "string"}
    if with_roi:
        schema["roi"] = {"type": "float32", "shape": [-1]}  # (max(m, 1) * 2052,): m rows, zeros if m = 0
        schema["roi_count"] = {"type": "int32"}  # m
    return schema


def shard_name(prefix, index):
    return f"{prefix}-{index:05d}{SHARD_SUFFIX}"


class ShardWriter:
    """Write records into shards of at most `shard_samples` samples and about `shard_bytes` bytes.

    Use as a context manager; on an exception the shard being written is removed, and shards
    already completed stay.
    """

    def __init__(self, out_dir, prefix, schema, shard_samples=10000, shard_bytes=1 << 30,
                 flush_every=256):
        self.out_dir, self.prefix, self.schema = out_dir, prefix, schema
        self.shard_samples, self.shard_bytes, self.flush_every = shard_samples, shard_bytes, flush_every
        self.partial_dir = os.path.join(out_dir, f".partial-{prefix}")  # per prefix: conversions may share OUT
        self.shards = []  # final paths of completed shards
        self.written = 0  # records written (the next id)
        self.bytes = 0  # bytes of completed shards (data + index files)
        self._writer, self._buffer, self._in_shard, self._shard_payload = None, [], 0, 0

    def __enter__(self):
        os.makedirs(self.partial_dir, exist_ok=True)
        return self

    def __exit__(self, exc_type, exc, tb):
        if exc_type is None:
            self._close_shard()
        else:
            self._abandon_shard()
        shutil.rmtree(self.partial_dir, ignore_errors=True)
        return False

    def write(self, record):
        """Add one record (without id); returns the id it was given."""
        if self._writer is None:
            self._open_shard()
        record_id = self.written
        self._buffer.append(dict(record, id=record_id))
        self.written += 1
        self._in_shard += 1
        self._shard_payload += len(record["image"])
        if len(self._buffer) >= self.flush_every:
            self._flush()
        if self._in_shard >= self.shard_samples or self._shard_payload >= self.shard_bytes:
            self._close_shard()
        return record_id

    def _partial_path(self):
        return os.path.join(self.partial_dir, shard_name(self.prefix, len(self.shards)))

    def _open_shard(self):
        self._writer = FileWriter(self._partial_path(), shard_num=1, overwrite=True)
        self._writer.set_page_size(PAGE_SIZE)
        self._writer.set_header_size(HEADER_SIZE)
        self._writer.add_schema(self.schema, "mindclip image-text pairs")
        self._in_shard, self._shard_payload = 0, 0

    def _flush(self):
        if self._buffer:
            self._writer.write_raw_data(self._buffer)
            self._buffer = []

    def _close_shard(self):
        if self._writer is None:
            return
        self._flush()
        self._writer.commit()
        self._writer = None
        partial = self._partial_path()
        final = os.path.join(self.out_dir, os.path.basename(partial))
        os.replace(partial + ".db", final + ".db")  # index first: a visible shard is complete
        os.replace(partial, final)
        self.bytes += os.path.getsize(final) + os.path.getsize(final + ".db")
        self.shards.append(final)

    def _abandon_shard(self):
        self._writer, self._buffer = None, []
        partial = self._partial_path()
        for path in (partial, partial + ".db"):
            if os.path.exists(path):
                os.remove(path)

