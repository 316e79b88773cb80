"""Header-and-rows text files (CSV, TSV) read one physical line per record, so that no row is lost.

A record is one line ending in ``\\n`` (a ``\\r\\n`` ending is accepted). Every line after the header
yields one record or one error; nothing is merged or cut:

- TSV (`quoted=False`, as CC3M's and img2dataset's TSVs are written): fields are split at every
  separator; a double quote is an ordinary character.
- CSV (`quoted=True`): RFC 4180 quoting within the line (``"a, b"``; ``""`` for a quote inside quotes), strict: a
  quote left open at the end of the line, or text after a closing quote, is an error for that
  line alone (with the `csv` module's file reading, an unclosed quote swallows every following
  row into one field). A quoted field therefore cannot hold a line break.
- A line with more or fewer fields than the header is an error (a separator inside a caption),
  never a silently cut or padded row. Empty lines are not records.

Undecodable bytes survive as surrogates (``errors="surrogateescape"``) for the caller to flag;
a UTF-8 byte-order mark before the header is dropped.
"""
import csv
import dataclasses
import os
from typing import List, Optional


class HeaderError(ValueError):
    """The first line does not name the columns a reader needs (or cannot be parsed)."""


@dataclasses.dataclass
class Record:
    """One physical line after the header: its fields by column name, or why it has none."""

    line: int  # 1-based line number in the file (the header is line 1)
    fields: Optional[dict] = None
    error: Optional[str] = None


def split_line(text: str, separator: str, quoted: bool) -> List[str]:
    """The fields of one line (without its line ending); ValueError for bad quoting."""
    if not quoted:
        return text.split(separator)
    try:
        rows = list(csv.reader([text], delimiter=separator, strict=True))
    except csv.Error as e:
        raise ValueError(f"bad CSV quoting ({e})") from None
    return rows[0] if rows else [""]


def _lines(f):
    """(line number, text without its line ending) of every line of an open text file."""
    for number, text in enumerate(f, 1):
        if text.endswith("\n"):
            text = text[:-2] if text.endswith("\r\n") else text[:-1]
        yield number, text


def read_header(path: str, separator: str, quoted: bool, wanted=()) -> List[str]:
    """The column names of `path`; `HeaderError` names the file when one of `wanted` is missing."""
    with open(path, encoding="utf-8-sig", errors="surrogateescape", newline="\n") as f:
        first = f.readline()
    return _check_header(path, first.rstrip("\r\n"), separator, quoted, wanted)


def _check_header(path, text, separator, quoted, wanted):
    try:
        header = split_line(text, separator, quoted)
    except ValueError as e:
        raise HeaderError(f"{path}:1: cannot read the header line: {e}") from None
    missing = [name for name in wanted if name not in header]
    if missing:
        raise HeaderError(f"{path}:1: the header {header[:6]} has no column {' or '.join(map(repr, missing))} "
                          f"(separator {separator!r}); the first line must name the columns")
    doubled = sorted({name for name in wanted if header.count(name) > 1})
    if doubled:
        raise HeaderError(f"{path}:1: the header names column(s) {doubled} more than once")
    return header


def read_records(path: str, separator: str, quoted: bool, wanted=()):
    """Yield a `Record` for every non-empty line after the header of `path` (see the module doc)."""
    if not os.path.isfile(path):
        raise FileNotFoundError(f"file not found: {path}")
    with open(path, encoding="utf-8-sig", errors="surrogateescape", newline="\n") as f:
        lines = _lines(f)
        _, first = next(lines, (1, ""))
        header = _check_header(path, first, separator, quoted, wanted)
        for number, text in lines:
            if not text:
                continue
            try:
                values = split_line(text, separator, quoted)
            except ValueError as e:
                yield Record(number, error=str(e))
                continue
            if len(values) != len(header):
                yield Record(number, error=f"{len(values)} fields where the header has {len(header)} "
                                          f"(a {separator!r} inside a field?)")
                continue
            yield Record(number, fields=dict(zip(header, values)))
