"""Delimited text (CSV/TSV/TXT): encoding, delimiter, header, and records streamed in chunks."""

from __future__ import annotations

import codecs
import contextlib
import csv
import io
import logging
import re
import warnings
import zlib
from collections.abc import Callable, Generator, Iterator
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from review_scorer.errors import InputError
from review_scorer.io.common import (
    SUPPORTED_FORMATS,
    Block,
    Source,
    is_gzip,
    one_line,
    open_binary,
    open_text,
    unique_names,
)
from review_scorer.io.quote_guard import SwallowGuard, unlimited_fields

log = logging.getLogger(__name__)

_DELIMITERS = (",", ";", "\t", "|")
SNIFF_BYTES = 64 * 1024
_SCAN_BYTES = 1 << 20
_SEP_LINE = re.compile(r"^sep=(.)\r?\n", re.IGNORECASE)


def read_head(path: Path, size: int = SNIFF_BYTES) -> tuple[bytes, bool]:
    """The first ``size`` bytes of a file and whether that is all of it."""
    try:
        with open_binary(path) as fh:
            head = fh.read(size)
            complete = not fh.read(1)
    except (OSError, EOFError, zlib.error) as exc:
        raise _unreadable(path, exc) from exc
    return head, complete


def detect_encoding(path: Path, head: bytes) -> tuple[str, bool]:
    """(encoding, fallback): BOMs first (UTF-32 before UTF-16: the UTF-32LE BOM starts with the
    UTF-16LE one), UTF-16 without a BOM by its NUL bytes, else UTF-8, cp1252 or latin-1.

    A NUL character is refused wherever it sits (text never holds one): the file is binary or
    a damaged export. The message names its line."""
    wide = None
    if head.startswith((codecs.BOM_UTF32_LE, codecs.BOM_UTF32_BE)):
        wide = "utf-32"
    elif head.startswith((codecs.BOM_UTF16_LE, codecs.BOM_UTF16_BE)):
        wide = "utf-16"
    elif b"\x00" in head:
        utf16 = _utf16_without_bom(head)
        wide = utf16 if utf16 and decodes(path, utf16) else None
    if wide is not None:
        _refuse_nul(path, head, _nul_line_decoded(path, wide))
        return wide, False
    if head.startswith(codecs.BOM_UTF8):
        _refuse_nul(path, head, _scan(path)[0])
        return "utf-8-sig", False
    nul_line, utf8 = _scan(path)
    _refuse_nul(path, head, nul_line)
    if utf8:
        return "utf-8", False
    encoding = "cp1252" if decodes(path, "cp1252") else "latin-1"
    log.info("%s is not valid UTF-8; reading it as %s", path, encoding)
    return encoding, True


def _refuse_nul(path: Path, head: bytes, nul_line: int | None) -> None:
    if nul_line is None:
        return
    # The same rule wherever the byte sits (a NUL far into a file used to be read, one near the
    # start refused as binary).
    hint = (" (it looks like an Excel workbook: give it the .xlsx extension)"
            if head.startswith(b"PK\x03\x04") else "")
    raise InputError(f"{path}: line {nul_line} holds a NUL byte (\\x00), which text never "
                     f"does: this is a binary file or a damaged export, not delimited "
                     f"text{hint}; remove the NUL bytes or pass a {SUPPORTED_FORMATS} file")


def _nul_line_decoded(path: Path, encoding: str) -> int | None:
    """The line of the first NUL character of a UTF-16/32 file, or None."""
    lines = 1
    try:
        with open_text(path, encoding, newline="\n") as fh:
            while block := fh.read(_SCAN_BYTES):
                nul = block.find("\x00")
                if nul >= 0:
                    return lines + block.count("\n", 0, nul)
                lines += block.count("\n")
    except (OSError, EOFError, zlib.error) as exc:
        raise _unreadable(path, exc) from exc
    return None


def _scan(path: Path) -> tuple[int | None, bool]:
    """(line of the first NUL byte or None, whether the whole file is UTF-8), in one pass."""
    decoder = codecs.getincrementaldecoder("utf-8")()
    utf8, lines = True, 1
    try:
        with open_binary(path) as fh:
            while block := fh.read(_SCAN_BYTES):
                nul = block.find(b"\x00")
                if nul >= 0:
                    return lines + block.count(b"\n", 0, nul), utf8
                lines += block.count(b"\n")
                if utf8:
                    try:
                        decoder.decode(block)
                    except UnicodeDecodeError:
                        utf8 = False
            if utf8:
                decoder.decode(b"", final=True)
    except UnicodeDecodeError:
        utf8 = False
    except (OSError, EOFError, zlib.error) as exc:
        raise _unreadable(path, exc) from exc
    return None, utf8


def _unreadable(path: Path, exc: BaseException) -> InputError:
    if is_gzip(path):
        return InputError(f"{path}: not a readable gzip file ({one_line(exc)}); compress it "
                          f"again, or pass the uncompressed file")
    return InputError(f"{path}: cannot read ({one_line(exc)})")


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
        with open_binary(path) as fh:
            while block := fh.read(_SCAN_BYTES):
                decoder.decode(block)
            decoder.decode(b"", final=True)
    except UnicodeDecodeError:
        return False
    except (OSError, EOFError, zlib.error) as exc:
        raise _unreadable(path, exc) from exc
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
            with unlimited_fields():
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
        with unlimited_fields():
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
                   encoding: str, fallback: bool, *, suffix: str = ".csv") -> Source:
    """Open delimited text whose encoding is known: layout now, records lazily."""
    size = len(head)
    while True:
        try:
            layout = _layout(path, decode_head(head, encoding, complete), complete, suffix)
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
    except _PARSE_ERRORS as exc:
        raise malformed(path, exc, layout, encoding) from exc


def _iter_frames(path: Path, layout: _Layout, encoding: str,
                 chunk_rows: int) -> Generator[Block, None, None]:
    """Blocks of str cells, chunk_rows records each; at least one block (maybe empty)."""
    reader = _read_csv(path, layout, encoding, chunk_rows)
    guard = SwallowGuard(path, layout.delimiter, len(layout.columns),
                         layout.skip_lines + layout.header_lines + 1, encoding)
    pending: pd.DataFrame | None = None  # all-empty rows, kept only if a record follows
    yielded = False
    with reader, contextlib.closing(guard):
        while True:
            try:
                with warnings.catch_warnings():
                    warnings.simplefilter("error", pd.errors.ParserWarning)
                    frame = next(reader)
            except StopIteration:
                break
            except _PARSE_ERRORS as exc:
                raise malformed(path, exc, layout, encoding) from exc
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


_PARSE_ERRORS = (pd.errors.ParserError, pd.errors.ParserWarning, ValueError, csv.Error,
                 UnicodeError, OSError, EOFError, zlib.error)


def malformed(path: Path, exc: BaseException, layout: _Layout | None = None,
              encoding: str | None = None) -> InputError:
    """A parser failure as one line naming the file, and the row and line when they can be
    found (pandas counts records, not the lines an editor shows)."""
    reason = one_line(exc).replace("Error tokenizing data. C error: ", "")
    if is_gzip(path) and isinstance(exc, OSError | EOFError | zlib.error):
        return _unreadable(path, exc)
    if layout is not None and encoding is not None:
        if "Length of header" in reason or re.search(r"Expected \d+ fields", reason):
            found = _first_record(path, layout, encoding, lambda f: len(f) > len(layout.columns))
            if found is not None:
                row, line, fields = found
                return InputError(
                    f"{path}: row {row} (line {line}) has {len(fields)} fields but the header "
                    f"has {len(layout.columns)}; quote fields that hold the delimiter "
                    f"{layout.delimiter!r}, or give the extra column a header")
        if "EOF inside string" in reason:
            found = _last_record(path, layout, encoding)
            if found is not None:
                return InputError(
                    f"{path}: row {found[0]} (line {found[1]}) opens a quote that is never "
                    f"closed: the file ends inside it; fix the quote (a quote inside a field is "
                    f"written twice: \"\")")
    if "Length of header" in reason:
        reason = "a row has more fields than the header"
    return InputError(
        f"{path}: malformed delimited text ({reason}); check the quoting and the number of "
        f"fields on that line"
    )


def _records(path: Path, layout: _Layout, encoding: str) -> Iterator[tuple[int, int, list[str]]]:
    """(row, first line, fields) of every record after the header, read with the csv module."""
    with open_text(path, encoding, newline="") as fh, unlimited_fields():
        for _ in range(layout.skip_lines):
            fh.readline()
        reader = csv.reader(fh, delimiter=layout.delimiter, quotechar='"', doublequote=True)
        if next(reader, None) is None:
            return
        previous = reader.line_num
        for row, fields in enumerate(reader, 1):
            yield row, layout.skip_lines + previous + 1, fields
            previous = reader.line_num


def _first_record(path: Path, layout: _Layout, encoding: str,
                  test: Callable[[list[str]], bool]) -> tuple[int, int, list[str]] | None:
    try:
        return next((r for r in _records(path, layout, encoding) if test(r[2])), None)
    except (csv.Error, OSError, UnicodeError, EOFError, zlib.error):
        return None


def _last_record(path: Path, layout: _Layout, encoding: str) -> tuple[int, int, list[str]] | None:
    last = None
    try:
        for last in _records(path, layout, encoding):  # noqa: B007 - the last one is wanted
            pass
    except (csv.Error, OSError, UnicodeError, EOFError, zlib.error):
        return None
    return last


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
