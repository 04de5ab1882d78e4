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
from dataclasses import dataclass, field, replace
from pathlib import Path

import numpy as np
import pandas as pd

from review_scorer.errors import InputError
from review_scorer.io.columns import data_in_header
from review_scorer.io.common import (
    SUPPORTED_FORMATS,
    Block,
    Source,
    column_list,
    is_gzip,
    one_line,
    open_binary,
    open_text,
    renamed_note,
    show,
    unique_names,
)
from review_scorer.io.line_shapes import (
    DELIMITERS,
    filled,
    may_be_title,
    names_like,
    prose_split_lines,
    reads_as_review,
    split_prose,
    title_text,
)
from review_scorer.io.quote_guard import SwallowGuard, literal_quotes, unlimited_fields

log = logging.getLogger(__name__)

SNIFF_BYTES = 64 * 1024
_SCAN_BYTES = 1 << 20
_SEP_LINE = re.compile(r"^sep=(.)\r?\n", re.IGNORECASE)
_LOOKAHEAD = 200  # records under the header read from the sample to judge it
_TITLE_LINES = 10  # title lines skipped above a header, at most


def read_head(path: Path, size: int = SNIFF_BYTES) -> tuple[bytes, bool]:
    """The first ``size`` bytes of a file and whether that is all of it."""
    try:
        with open_binary(path) as fh:
            head = fh.read(size)
            complete = not fh.read(1)
    except (OSError, EOFError, zlib.error) as exc:
        raise _unreadable(path, exc) from exc
    return head, complete


@dataclass(frozen=True)
class TextEncoding:
    """How a text file is decoded, and the note that says why when it is not plain UTF-8."""

    name: str  # a Python codec name
    fallback: bool = False  # not UTF-8: read as cp1252 or latin-1
    note: str | None = None


def detect_encoding(path: Path, head: bytes) -> TextEncoding:
    """BOMs first (UTF-32 before UTF-16: the UTF-32LE BOM starts with the UTF-16LE one), UTF-16
    without a BOM by its NUL bytes, else UTF-8, else cp1252 or latin-1 (``fallback``).

    A file that is UTF-8 but for a few bad bytes (a damaged line, one field pasted from another
    program) stays UTF-8: its bad bytes read as U+FFFD and the note names their lines. Decoding
    it all as cp1252 would garble every accented letter of the good lines instead. Only a file
    whose non-ASCII bytes are mostly not UTF-8 is read as cp1252.

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
        return TextEncoding(wide)
    scan = _scan_utf8(path)
    _refuse_nul(path, head, scan.nul_line)
    bom = head.startswith(codecs.BOM_UTF8)
    name = "utf-8-sig" if bom else "utf-8"
    if not scan.bad:
        return TextEncoding(name)
    if bom or scan.good >= scan.spots:
        return TextEncoding(name, note=(
            f"{_counted(scan.bad, 'byte')} that {'is' if scan.bad == 1 else 'are'} not UTF-8 "
            f"({_lines(scan)}) read as \ufffd (U+FFFD); the rest of the file is UTF-8 and read "
            f"as such: fix {'that line' if len(scan.bad_lines) == 1 else 'those lines'} in the "
            f"file if the text there matters"))
    encoding = "cp1252" if decodes(path, "cp1252") else "latin-1"
    log.info("%s is not valid UTF-8; reading it as %s", path, encoding)
    return TextEncoding(encoding, True, f"not valid UTF-8 ({_counted(scan.bad, 'byte')} that "
                                        f"are not, on {_lines(scan)}): read as {encoding}")


@dataclass
class _Utf8Scan:
    nul_line: int | None = None  # the line of the first NUL character
    bad: int = 0  # bytes that are not UTF-8
    spots: int = 0  # runs of such bytes (a truncated character is one)
    bad_lines: list[int] = field(default_factory=list)  # the first few lines that hold them
    more_lines: bool = False  # bad bytes on more lines than bad_lines holds
    good: int = 0  # characters past ASCII that are valid UTF-8


# Under the surrogateescape error handler each byte that is not UTF-8 decodes to one character
# U+DC80-U+DCFF, which valid UTF-8 never yields: they count and locate the bad bytes exactly,
# whatever the file's own text holds (U+FFFD included).
_ESCAPED = re.compile("[\udc80-\udcff]+")
_SURROGATE = re.compile("[\ud800-\udfff]")
_SHOW_LINES = 5
_PLAINLY_NOT = 10_000  # runs of bad bytes


def _scan_utf8(path: Path) -> _Utf8Scan:
    """NUL line, bytes that are not UTF-8 (with their first lines), and valid non-ASCII
    characters, in one pass of blocks (a character split between blocks is decoded whole)."""
    decoder = codecs.getincrementaldecoder("utf-8")(errors="surrogateescape")
    scan, lines = _Utf8Scan(), 1
    try:
        with open_binary(path) as fh:
            while True:
                block = fh.read(_SCAN_BYTES)
                text = decoder.decode(block, final=not block)
                nul = text.find("\x00")
                if nul >= 0:
                    scan.nul_line = lines + text.count("\n", 0, nul)
                    return scan
                if not text.isascii():
                    _count_bad(scan, text, lines)
                lines += text.count("\n")
                if not block:
                    return scan
    except (OSError, EOFError, zlib.error) as exc:
        raise _unreadable(path, exc) from exc


def _count_bad(scan: _Utf8Scan, text: str, lines: int) -> None:
    """Add one decoded block's characters past ASCII, bad bytes and their lines to ``scan``."""
    wide = len(text) - len(text.encode("ascii", "ignore"))
    try:
        text.encode("utf-8")  # fails only on an escaped byte (the usual case passes, fast)
    except UnicodeEncodeError:
        pass
    else:
        scan.good += wide
        return
    # An escaped byte is one byte under surrogateescape and none under ignore.
    bad = len(text.encode("utf-8", "surrogateescape")) - len(text.encode("utf-8", "ignore"))
    scan.good += wide - bad
    scan.bad += bad
    # Runs are counted exactly until the file is plainly not UTF-8 (searching for them is the
    # slow part of a cp1252 file's scan); then each bad byte counts as one.
    plainly = scan.spots >= _PLAINLY_NOT and scan.good * 10 < scan.spots
    scan.spots += bad if plainly else len(_ESCAPED.findall(text))
    if scan.more_lines:
        return
    position, line = 0, lines
    for match in _ESCAPED.finditer(text):
        line += text.count("\n", position, match.start())
        position = match.start()
        if scan.bad_lines and scan.bad_lines[-1] == line:
            continue
        if len(scan.bad_lines) == _SHOW_LINES:
            scan.more_lines = True
            return
        scan.bad_lines.append(line)


def _counted(n: int, noun: str) -> str:
    return f"{n:,} {noun}{'' if n == 1 else 's'}"


def _lines(scan: _Utf8Scan) -> str:
    shown = ", ".join(str(n) for n in scan.bad_lines) + (", ..." if scan.more_lines else "")
    return f"line{'s' if len(scan.bad_lines) > 1 else ''} {shown}"


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


def choose_delimiter(sample: str, complete: bool) -> tuple[str, list[str]]:
    """(the delimiter under which the header has several fields and the rows agree with it, the
    delimiters passed over because they only split prose).

    Parsing the sample with each candidate (quotes respected, so multi-line fields are fine) is
    more reliable here than csv.Sniffer, which works line by line and is thrown off by long reviews.
    Title lines above the header (see _header_after_titles) are not the header. A delimiter
    that only splits prose (line_shapes.prose_split_lines: a review per line, with a space after
    each comma) is not the file's: one absent from it then reads each line as one field.
    """
    best: tuple[tuple[bool, float, int], str] | None = None
    prose: list[str] = []
    for delimiter in DELIMITERS:
        records, error = _sample_records(sample, delimiter)
        if error is not None:
            continue
        if not complete and len(records) > 1:
            records = records[:-1]  # the sample may end inside the last record
        index, _ = _header_index(records, delimiter)
        if index is None:
            continue
        if prose_split_lines([r.fields for r in records[index:]]):
            prose.append(delimiter)  # it splits one review per line, not columns
            continue
        width = len(records[index].fields)
        body = [r.fields for r in records[index + 1:] if r.fields]
        agree = sum(len(r) == width for r in body) / len(body) if body else 1.0
        # A delimiter that splits the header wins (a malformed row then fails loudly instead of
        # the file being read as one column); among those, the one the rows agree with.
        key = (width > 1, agree, width)
        if best is None or key > best[0]:
            best = (key, delimiter)
    return (best[1] if best else ","), prose


@dataclass
class _Record:
    fields: list[str]
    end: int  # the physical line (1-based, in the sample) the record ends on


def _sample_records(sample: str, delimiter: str, literal_quotes: bool = False
                    ) -> tuple[list[_Record], csv.Error | None]:
    """The sample's records, read as leniently as the file's reader, up to a csv error."""
    reader = csv.reader(io.StringIO(sample, newline=""), delimiter=delimiter, quotechar='"',
                        doublequote=True, strict=False,
                        quoting=csv.QUOTE_NONE if literal_quotes else csv.QUOTE_MINIMAL)
    records: list[_Record] = []
    try:
        with unlimited_fields():
            for fields in reader:
                records.append(_Record(fields, reader.line_num))
    except csv.Error as exc:
        return records, exc
    return records, None


def _header_index(records: list[_Record], delimiter: str) -> tuple[int | None, bool]:
    """(index of the header record or None, whether title lines sit above it)."""
    first = next((i for i, r in enumerate(records) if filled(r.fields)), None)
    if first is None:
        return None, False
    titled = _header_after_titles(records, first, delimiter)
    return (first, False) if titled is None else (titled, True)


def _header_after_titles(records: list[_Record], first: int, delimiter: str) -> int | None:
    """The index of a header below title lines, as the Excel reader finds one below title rows,
    or None.

    Title lines are a leading run of lines with one filled field each (an export's name and
    date; blank lines between them). They are skipped when the first record with several
    fields looks like column names (short, distinct, not data: see columns.data_in_header) and
    most records under it have its number of fields. Nothing is skipped when a would-be title
    may be a header: a column name (``review``, a one-column file), names split by another
    delimiter (``review;date``), or an Excel ``sep=`` line out of place; nor above "names"
    that read like prose (a space after each delimiter: a one-column file's reviews).
    """
    titles, i = 0, first
    while i < len(records) and (filled(records[i].fields) <= 1 or split_prose(records[i].fields)):
        title = title_text(records[i].fields, delimiter)
        if title:
            if not may_be_title(title, delimiter):
                return None
            titles += 1
            if titles > _TITLE_LINES:
                return None
        i += 1
    if i >= len(records) or i == first:
        return None
    header = records[i].fields
    rows = [r.fields for r in records[i + 1:i + 1 + _LOOKAHEAD] if filled(r.fields)]
    if not rows or not names_like(header) or data_in_header(header, rows):
        return None
    # Most records, not all: a ragged one is then an error naming it, not a one-column read.
    same = sum(len(r) == len(header) for r in rows)
    return i if same * 2 > len(rows) else None


class _HeaderPastSample(Exception):
    """The header record, or the first records under it, run past the sniffed bytes (thousands
    of columns, a very long first review): read more."""


@dataclass
class _Layout:
    delimiter: str
    skip_lines: int  # lines before the header: Excel's sep= line, blank lines and title lines
    header_lines: int  # physical lines the header record spans (0 without a header)
    columns: list[str]
    notes: list[str]
    has_header: bool = True
    literal_quotes: bool = False  # quotes are the text's (quote_guard.literal_quotes), not quoting


def _layout(path: Path, sample: str, complete: bool, suffix: str) -> _Layout:
    """Delimiter (Excel's ``sep=`` line, the suffix, or sniffed), lines before the header, names."""
    notes: list[str] = []
    skip = 0
    prose_delimiters: list[str] = []
    sep = _SEP_LINE.match(sample)
    if sep:
        delimiter, skip = sep.group(1), 1
        sample = sample[sep.end():]
        notes.append(f"delimiter {delimiter!r} from the file's first line 'sep={delimiter}'")
    elif suffix in (".tsv", ".tab"):
        delimiter = "\t"
    else:
        delimiter, prose_delimiters = choose_delimiter(sample, complete)
    literal = literal_quotes(sample, delimiter)
    records, error = _sample_records(sample, delimiter, literal)
    if literal:
        notes.append("quotes are read as part of the text: a field opens with a quote that "
                     "closes before the field ends, as tab-separated files without quoting have")
    if not complete and records:
        records.pop()  # the sample may end inside its last record
        if sum(1 for r in records if filled(r.fields)) < 3 and len(sample) < _SCAN_BYTES:
            raise _HeaderPastSample()  # a title, a header and a record at least, to judge them
    index, titled = _header_index(records, delimiter)
    if index is None:
        if error is not None:
            raise InputError(f"{path}: cannot read the header row ({one_line(error)})")
        if not complete:
            raise _HeaderPastSample()
        raise InputError(f"{path}: no header row; the first line must name the columns")
    header = records[index].fields
    before = records[index - 1].end if index else 0
    rows = [r.fields for r in records[index + 1:index + 1 + _LOOKAHEAD] if filled(r.fields)]
    if len(header) == 1:
        _refuse_quoted_lines(path, sample, records[index:], skip)
    prose = _prose_note(prose_delimiters) if len(header) == 1 else []
    if len(header) > 1:
        data = data_in_header(header, rows)
    elif titled:
        data = None
    else:  # the lines' median length, as the Excel reader weighs a sheet's first row
        below = sorted(len(r[0].split()) for r in rows)
        data = reads_as_review(header[0], prose=bool(prose),
                               words_below=below[len(below) // 2] if below else 0)
    notes.extend(prose)
    skip += before
    if titled:
        titles = [t for r in records[:index] if (t := title_text(r.fields, delimiter))]
        notes.append(f"the header is line {skip + 1} (lines above it are blank or a title, "
                     f"skipped: {', '.join(show(t, 40) for t in titles)}); row numbers count "
                     f"records after the header")
    if data is not None:
        return replace(_headerless(delimiter, skip, header, data, notes), literal_quotes=literal)
    columns = unique_names(header)
    notes.extend(renamed_note(header, columns))
    if any(not h.strip() for h in header):
        notes.append("blank header cells named " + ", ".join(
            repr(c) for c, h in zip(columns, header) if not h.strip()))
    return _Layout(delimiter, skip, records[index].end - before, columns, notes,
                   literal_quotes=literal)


def _prose_note(prose_delimiters: list[str]) -> list[str]:
    """The note of a one-column read chosen because the delimiters in the lines split prose."""
    return [f"each line is read as one review: the {d!r} characters in its lines are part of the "
            f"text (prose, with a space after each), not a delimiter; quote the reviews (or add "
            f"a header row naming the columns) if the file has columns" for d in prose_delimiters[:1]]


def _headerless(delimiter: str, skip: int, first: list[str], why: str,
                notes: list[str]) -> _Layout:
    """The layout of a file whose first record is data: every record a row, columns numbered."""
    columns = unique_names([None] * len(first))  # a wider record is an error, as with a header
    notes.append(f"no header row: line {skip + 1} reads as a record, not column names ({why}), "
                 f"so every line is a record, from line {skip + 1} on, and the columns are named "
                 f"{column_list(columns)}; add a header row (e.g. review,label) to name them")
    return _Layout(delimiter, skip, 0, columns, notes, has_header=False)


def _refuse_quoted_lines(path: Path, sample: str, records: list[_Record], skip: int) -> None:
    """Refuse a file whose every line is one quoted field holding the delimiter.

    ``"review,label"`` / ``"The food was cold,positive"``: a broken exporter quoted each whole
    line, so the file reads as one column of text such as "The food was cold,positive" and a
    label would be scored as part of the review. Unquoting the lines and reading them again
    would mean guessing what that exporter did with quote characters inside reviews (doubled
    or not), and a wrong guess corrupts text with no sign; the fix on the user's side is one
    search and replace or a new export. So the file is refused with exactly that advice.
    """
    rows = [r for r in records if filled(r.fields)]
    if len(rows) < 2 or any(len(r.fields) != 1 or "\n" in r.fields[0] or "\r" in r.fields[0]
                            for r in rows):
        return
    lines = io.StringIO(sample, newline="").readlines()
    raw = [lines[r.end - 1].strip() for r in rows if r.end <= len(lines)]
    if len(raw) != len(rows) or not all(len(x) > 1 and x[0] == x[-1] == '"' for x in raw):
        return
    for delimiter in DELIMITERS:
        with unlimited_fields():
            inner = [next(csv.reader([r.fields[0]], delimiter=delimiter), []) for r in rows]
        if len({len(f) for f in inner}) == 1 and len(inner[0]) > 1 and names_like(inner[0]):
            raise InputError(
                f"{path}: every line is one quoted field that holds the delimiter {delimiter!r} "
                f"(line {skip + rows[0].end}: {show(raw[0])}): the program that wrote it quoted "
                f"each whole line, so its columns cannot be told apart; remove the quote at the "
                f"start and end of every line (or export the file again as plain CSV)")


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
                  encoding_fallback=fallback, notes=layout.notes,
                  headerless=not layout.has_header)


def _read_csv(path: Path, layout: _Layout, encoding: str, chunk_rows: int):
    try:
        with warnings.catch_warnings():
            # A row longer than the header would otherwise lose its extra fields silently.
            warnings.simplefilter("error", pd.errors.ParserWarning)
            return pd.read_csv(
                path, sep=layout.delimiter, encoding=encoding,
                # Bytes that are not UTF-8 in a file read as UTF-8 were counted, and their lines
                # named in a note, by detect_encoding; wider encodings stay strict.
                encoding_errors="replace" if encoding.startswith("utf-8") else "strict",
                header=0 if layout.has_header else None, names=layout.columns,
                skiprows=layout.skip_lines, dtype=str, keep_default_na=False, na_filter=False,
                skip_blank_lines=False, index_col=False, quotechar='"', doublequote=True,
                quoting=csv.QUOTE_NONE if layout.literal_quotes else csv.QUOTE_MINIMAL,
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
    if isinstance(exc, UnicodeDecodeError) and encoding is not None:
        # Only UTF-16/32 decode strictly (detect_encoding counted UTF-8's bad bytes).
        line = _undecodable_line(path, encoding)
        where = f"line {line} is" if line is not None else "some bytes are"
        return InputError(f"{path}: {where} not valid {encoding} text ({exc.reason}); the file "
                          f"is damaged: save it again from the program that made it (as UTF-8)")
    if layout is not None and encoding is not None:
        if "Length of header" in reason or re.search(r"Expected \d+ fields", reason):
            found = _first_record(path, layout, encoding, lambda f: len(f) > len(layout.columns))
            if found is not None and not layout.has_header:
                row, line, fields = found
                return InputError(
                    f"{path}: row {row} (line {line}) has {len(fields)} fields but the lines "
                    f"above it have {len(layout.columns)} (the file has no header row); quote "
                    f"fields that hold the delimiter {layout.delimiter!r}")
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


def _undecodable_line(path: Path, encoding: str) -> int | None:
    """The line of the first UTF-16/32 sequence that does not decode: a lone surrogate (which
    surrogatepass lets through as one) or a sequence cut off at the end of the file."""
    decoder = codecs.getincrementaldecoder(encoding)(errors="surrogatepass")
    lines = 1
    try:
        with open_binary(path) as fh:
            while True:
                block = fh.read(_SCAN_BYTES)
                try:
                    text = decoder.decode(block, final=not block)
                except UnicodeDecodeError:
                    return lines
                lone = _SURROGATE.search(text)
                if lone:
                    return lines + text.count("\n", 0, lone.start())
                lines += text.count("\n")
                if not block:
                    return None
    except (OSError, EOFError, zlib.error):
        return None


def _records(path: Path, layout: _Layout, encoding: str) -> Iterator[tuple[int, int, list[str]]]:
    """(row, first line, fields) of every record after the header, read with the csv module."""
    with open_text(path, encoding, newline="") as fh, unlimited_fields():
        for _ in range(layout.skip_lines):
            fh.readline()
        reader = csv.reader(fh, delimiter=layout.delimiter, quotechar='"', doublequote=True,
                            quoting=csv.QUOTE_NONE if layout.literal_quotes else csv.QUOTE_MINIMAL)
        if layout.has_header and next(reader, None) is None:
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
