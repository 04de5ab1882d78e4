"""Delimited text (CSV/TSV/TXT): encoding, delimiter, header, and records streamed in chunks."""

from __future__ import annotations

import codecs
import csv
import io
import logging
import re
import warnings
from collections.abc import Generator, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from review_scorer.errors import InputError
from review_scorer.io.common import SUPPORTED_FORMATS, Block, Source, one_line, unique_names

log = logging.getLogger(__name__)

_DELIMITERS = (",", ";", "\t", "|")
SNIFF_BYTES = 64 * 1024
_SCAN_BYTES = 1 << 20
_SEP_LINE = re.compile(r"^sep=(.)\r?\n", re.IGNORECASE)
_INT = re.compile(r"^[+-]?\d+$")
_SHORT = 24  # a column whose values are all this short is a code/label, not free text


def read_head(path: Path, size: int = SNIFF_BYTES) -> tuple[bytes, bool]:
    """The first ``size`` bytes of a file and whether that is all of it."""
    try:
        with open(path, "rb") as fh:
            head = fh.read(size)
            complete = not fh.read(1)
    except OSError as exc:
        raise InputError(f"{path}: cannot read ({one_line(exc)})") from exc
    return head, complete


def detect_encoding(path: Path, head: bytes) -> tuple[str, bool]:
    """(encoding, fallback): BOMs first (UTF-32 before UTF-16: the UTF-32LE BOM starts with the
    UTF-16LE one), UTF-16 without a BOM by its NUL bytes, else UTF-8, cp1252 or latin-1."""
    if head.startswith((codecs.BOM_UTF32_LE, codecs.BOM_UTF32_BE)):
        return "utf-32", False
    if head.startswith((codecs.BOM_UTF16_LE, codecs.BOM_UTF16_BE)):
        return "utf-16", False
    if head.startswith(codecs.BOM_UTF8):
        return "utf-8-sig", False
    if b"\x00" in head:
        utf16 = _utf16_without_bom(head)
        if utf16 and decodes(path, utf16):
            return utf16, False
        hint = (" (it looks like an Excel workbook: give it the .xlsx extension)"
                if head.startswith(b"PK\x03\x04") else "")
        raise InputError(f"{path}: this is a binary file, not delimited text{hint}; pass a "
                         f"{SUPPORTED_FORMATS} file")
    if decodes(path, "utf-8"):
        return "utf-8", False
    encoding = "cp1252" if decodes(path, "cp1252") else "latin-1"
    log.info("%s is not valid UTF-8; reading it as %s", path, encoding)
    return encoding, True


def _utf16_without_bom(head: bytes) -> str | None:
    """utf-16-le/-be when every other byte is NUL (mostly ASCII text saved as UTF-16)."""
    pairs = len(head) // 2
    if pairs < 2:
        return None
    even = head[0 : 2 * pairs : 2].count(0) / pairs
    odd = head[1 : 2 * pairs : 2].count(0) / pairs
    if odd >= 0.5 and even < 0.05:
        return "utf-16-le"
    if even >= 0.5 and odd < 0.05:
        return "utf-16-be"
    return None


def decodes(path: Path, encoding: str) -> bool:
    """True when the whole file decodes in ``encoding`` (read in blocks; memory stays flat)."""
    decoder = codecs.getincrementaldecoder(encoding)()
    try:
        with open(path, "rb") as fh:
            while block := fh.read(_SCAN_BYTES):
                decoder.decode(block)
            decoder.decode(b"", final=True)
    except UnicodeDecodeError:
        return False
    return True


def decode_head(head: bytes, encoding: str, complete: bool) -> str:
    """The sniffed bytes as text, without a BOM."""
    text = codecs.getincrementaldecoder(encoding)(errors="replace").decode(head, final=complete)
    return text.lstrip("\ufeff")


def choose_delimiter(sample: str, complete: bool) -> str:
    """The delimiter under which the header has several fields and the rows agree with it.

    Parsing the sample with each candidate (quotes respected, so multi-line fields are fine) is
    more reliable here than csv.Sniffer, which works line by line and is thrown off by long reviews.
    """
    best: tuple[tuple[bool, float, int], str] | None = None
    for delimiter in _DELIMITERS:
        try:
            records = list(csv.reader(io.StringIO(sample, newline=""), delimiter=delimiter,
                                      quotechar='"', doublequote=True, strict=False))
        except csv.Error:
            continue
        if not complete and len(records) > 1:
            records = records[:-1]  # the sample may end inside the last record
        records = [r for r in records if r]
        if not records:
            continue
        width = len(records[0])
        body = records[1:]
        agree = sum(len(r) == width for r in body) / len(body) if body else 1.0
        # A delimiter that splits the header wins (a malformed row then fails loudly instead of
        # the file being read as one column); among those, the one the rows agree with.
        key = (width > 1, agree, width)
        if best is None or key > best[0]:
            best = (key, delimiter)
    return best[1] if best else ","


class _HeaderPastSample(Exception):
    """The header record runs past the sniffed bytes (thousands of columns): read more."""


@dataclass
class _Layout:
    delimiter: str
    skip_lines: int  # lines before the header: Excel's sep= line and blank lines
    header_lines: int  # physical lines the header record spans
    columns: list[str]
    notes: list[str]


def _layout(path: Path, sample: str, complete: bool, suffix: str) -> _Layout:
    """Delimiter (Excel's ``sep=`` line, the suffix, or sniffed), lines before the header, names."""
    notes: list[str] = []
    skip = 0
    sep = _SEP_LINE.match(sample)
    if sep:
        delimiter, skip = sep.group(1), 1
        sample = sample[sep.end():]
        notes.append(f"delimiter {delimiter!r} from the file's first line 'sep={delimiter}'")
    elif suffix in (".tsv", ".tab"):
        delimiter = "\t"
    else:
        delimiter = choose_delimiter(sample, complete)
    stream = io.StringIO(sample, newline="")
    reader = csv.reader(stream, delimiter=delimiter, quotechar='"', strict=False)
    header: list[str] = []
    try:
        for record in reader:
            if any(field.strip() for field in record):
                header = record
                break
    except csv.Error as exc:
        raise InputError(f"{path}: cannot read the header row ({one_line(exc)})") from exc
    if not header:
        raise InputError(f"{path}: no header row; the first line must name the columns")
    if not complete and stream.tell() >= len(sample):
        raise _HeaderPastSample()
    header_lines = reader.line_num
    blank = header_lines - 1 - sum(f.count("\n") for f in header)
    skip += max(blank, 0)
    columns = unique_names(header)
    if any(not h.strip() for h in header):
        notes.append("blank header cells named " + ", ".join(
            repr(c) for c, h in zip(columns, header) if not h.strip()))
    return _Layout(delimiter, skip, header_lines - max(blank, 0), columns, notes)


def open_delimited(path: Path, chunk_rows: int, head: bytes, complete: bool,
                   encoding: str, fallback: bool) -> Source:
    """Open delimited text whose encoding is known: layout now, records lazily."""
    size = len(head)
    while True:
        try:
            layout = _layout(path, decode_head(head, encoding, complete), complete,
                             path.suffix.lower())
            break
        except _HeaderPastSample:
            size *= 16
            head, complete = read_head(path, size)
    blocks = _iter_frames(path, layout, encoding, chunk_rows)
    return Source("csv", blocks, delimiter=layout.delimiter, encoding=encoding,
                  encoding_fallback=fallback, notes=layout.notes)


def _read_csv(path: Path, layout: _Layout, encoding: str, chunk_rows: int):
    try:
        with warnings.catch_warnings():
            # A row longer than the header would otherwise lose its extra fields silently.
            warnings.simplefilter("error", pd.errors.ParserWarning)
            return pd.read_csv(
                path, sep=layout.delimiter, encoding=encoding, header=0, names=layout.columns,
                skiprows=layout.skip_lines, dtype=str, keep_default_na=False, na_filter=False,
                skip_blank_lines=False, index_col=False, quotechar='"', doublequote=True,
                engine="c", chunksize=chunk_rows,
            )
    except pd.errors.EmptyDataError as exc:
        raise InputError(f"{path}: no header row; the first line must name the columns") from exc
    except (pd.errors.ParserError, pd.errors.ParserWarning, ValueError, csv.Error,
            UnicodeError) as exc:
        raise malformed(path, exc) from exc


def _iter_frames(path: Path, layout: _Layout, encoding: str,
                 chunk_rows: int) -> Generator[Block, None, None]:
    """Blocks of str cells, chunk_rows records each; at least one block (maybe empty)."""
    reader = _read_csv(path, layout, encoding, chunk_rows)
    guard = _SwallowGuard(path, layout)
    pending: pd.DataFrame | None = None  # all-empty rows, kept only if a record follows
    yielded = False
    with reader:
        while True:
            try:
                with warnings.catch_warnings():
                    warnings.simplefilter("error", pd.errors.ParserWarning)
                    frame = next(reader)
            except StopIteration:
                break
            except (pd.errors.ParserError, pd.errors.ParserWarning, ValueError, csv.Error,
                    UnicodeError) as exc:
                raise malformed(path, exc) from exc
            guard.check(frame)
            if pending is not None and len(pending):
                frame = pd.concat([pending, frame], ignore_index=True)
            keep = _records_end(frame)
            pending = frame.iloc[keep:]
            if keep:
                yielded = True
                yield Block(frame.iloc[:keep])
    if not yielded:
        yield Block(pd.DataFrame({c: pd.Series(dtype=object) for c in layout.columns}))


def malformed(path: Path, exc: BaseException) -> InputError:
    """A parser failure as one line naming the file."""
    reason = one_line(exc).replace("Error tokenizing data. C error: ", "")
    if "Length of header" in reason:
        reason = "a row has more fields than the header"
    return InputError(
        f"{path}: malformed delimited text ({reason}); check the quoting and the number of "
        f"fields on that line"
    )


def _records_end(frame: pd.DataFrame) -> int:
    """The number of rows up to the last one with a filled cell (blank lines after it may be
    the end of the file)."""
    if frame.empty:
        return 0
    if any(value != "" for value in frame.iloc[-1].tolist()):
        return len(frame)  # the usual case: no blank lines at the end of this chunk
    filled = (frame.to_numpy() != "").any(axis=1)
    nonempty = np.flatnonzero(filled)
    return int(nonempty[-1]) + 1 if len(nonempty) else 0


class _SwallowGuard:
    """Finds a quote that was opened and closed far later, fusing records into one field.

    A field with line breaks is suspicious only when most of its later lines parse, on their
    own, as whole records of the file's shape: the same number of fields, and numbers, whole
    numbers or short codes where the other records have them. A real multi-line review rarely
    does that, so it still reads. Only fields holding a line break are examined, and the line
    count per record is kept so that the message can name the lines a user sees in an editor.
    """

    def __init__(self, path: Path, layout: _Layout):
        self.path = path
        self.delimiter = layout.delimiter
        self.width = len(layout.columns)
        self.next_line = layout.skip_lines + layout.header_lines + 1
        self.next_row = 1
        self.sample: pd.DataFrame | None = None

    def check(self, frame: pd.DataFrame) -> None:
        """Raise InputError for a swallowing field in ``frame``; advance the line count."""
        breaks = np.zeros(len(frame), dtype=np.int64)
        suspect_columns = []
        for position, values in enumerate(_column_values(frame)):
            if "\n" in "".join(values):
                breaks += np.fromiter((v.count("\n") for v in values), np.int64, len(values))
                suspect_columns.append(position)
        if suspect_columns and self.width > 1:
            self._examine(frame, breaks, suspect_columns)
        elif len(frame):
            self.sample = frame.iloc[:50]  # clean records, to learn the shape of the next chunk
        self.next_line += int(len(frame) + breaks.sum())
        self.next_row += len(frame)

    def _examine(self, frame: pd.DataFrame, breaks: np.ndarray, columns: list[int]) -> None:
        clean = frame.iloc[np.flatnonzero(breaks == 0)[:200]]  # a sample is enough for the shape
        if len(clean) < 20 and self.sample is not None:
            clean = pd.concat([self.sample, clean])
        if len(clean) < 2:
            return
        kinds = [_kind(clean.iloc[:, i].tolist()) for i in range(self.width)]
        if not any(kinds):
            return
        starts = self.next_line + np.concatenate(([0], np.cumsum(1 + breaks)[:-1]))
        for i in np.flatnonzero(breaks):
            for c in columns:
                cell = frame.iat[int(i), c]
                if "\n" in cell and self._swallows(cell.split("\n")[1:], kinds):
                    first, last = int(starts[i]), int(starts[i] + breaks[i])
                    raise InputError(
                        f"{self.path}: row {self.next_row + int(i)} (line {first}) opens a quote "
                        f"that is never closed: it swallows lines {first + 1}-{last}; fix the "
                        f"quote (a quote inside a field is written twice: \"\")"
                    )

    def _swallows(self, lines: Sequence[str], kinds: list[str | None]) -> bool:
        shaped = 0
        for line in lines:
            fields = next(csv.reader([line.rstrip("\r")], delimiter=self.delimiter), [])
            if len(fields) == self.width and all(
                    _fits(v, k) for v, k in zip(fields, kinds, strict=True)):
                shaped += 1
        return shaped >= 1 and shaped * 2 >= len(lines)


def _column_values(frame: pd.DataFrame) -> list[list[str]]:
    """Each column's cells as a list; a wide frame goes through one array (a column at a time
    costs a Series each, slow for thousands of columns)."""
    if frame.shape[1] > 50:
        return frame.to_numpy(dtype=object).T.tolist()
    return [frame.iloc[:, i].tolist() for i in range(frame.shape[1])]


def _kind(values: Sequence[str]) -> str | None:
    """'int', 'num' or 'short' when every filled value is one; None for free text."""
    filled = [v.strip() for v in values if v.strip()]
    if not filled:
        return None
    if all(_INT.match(v) for v in filled):
        return "int"
    if all(_is_float(v) for v in filled):
        return "num"
    if all(len(v) <= _SHORT for v in filled):
        return "short"
    return None


def _is_float(value: str) -> bool:
    try:
        float(value)
    except ValueError:
        return False
    return True


def _fits(value: str, kind: str | None) -> bool:
    value = value.strip()
    if not value or kind is None:
        return True
    if kind == "int":
        return bool(_INT.match(value))
    if kind == "num":
        return _is_float(value)
    return len(value) <= _SHORT
