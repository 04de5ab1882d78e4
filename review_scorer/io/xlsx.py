"""Excel workbooks: size limits before parsing, the sheet, the header row, rows streamed in chunks."""

# openpyxl parses the XML, but the rows are driven here: the sheet's ``<dimension>`` element is
# never trusted (files in the wild carry stale ones), formula cells without a cached value are
# marked, and a damaged part becomes one InputError naming the file.

from __future__ import annotations

import contextlib
import itertools
import re
import warnings
import zipfile
from collections import Counter
from collections.abc import Generator, Iterator, Sequence
from pathlib import Path
from typing import Any, NamedTuple

import numpy as np
import pandas as pd

from review_scorer.errors import InputError
from review_scorer.io.columns import (
    COLUMN_NAMES,
    SPLIT_COLUMN_NAMES,
    is_number,
)
from review_scorer.io.common import (
    Block,
    Source,
    cell_text,
    column_list,
    human_bytes,
    norm_name,
    one_line,
    renamed_note,
    show,
    unique_names,
)
from review_scorer.io.labels import label_of
from review_scorer.io.line_shapes import NAME_PHRASE_WORDS, NAME_WORDS, reads_as_review

# What a workbook may expand to. A 1M-row workbook of IMDB-length reviews holds about 1.3 GB of
# shared-string XML and a few hundred MB of sheet XML, with at most a few million distinct
# strings; a "bomb" of millions of tiny strings packs 5M of them into 1.8 MB of zip.
MAX_XML_BYTES = 2_000_000_000  # uncompressed size of sharedStrings.xml, and of the sheet read
MAX_SHARED_STRINGS = 5_000_000  # distinct strings in sharedStrings.xml
MAX_PART_BYTES = 64_000_000  # uncompressed size of any other part parsed (styles, workbook, ...)
MAX_CELLS = 200_000_000  # rows x columns read from a sheet, blank rows included (the output size)
MAX_SHEET_ROWS = 1_048_576  # Excel's last row: a row numbered past it is not from a spreadsheet
_CHUNK_CELLS = 2_000_000  # rows x columns held in one chunk (a very wide sheet gets fewer rows)
_LOOKAHEAD = 30  # rows read ahead to find the header row
_SAVE_AS_CSV = "save it as CSV (or split it) and score that"


class EmptySheetError(InputError):
    """The sheet holds no values at all."""


class _TooManyStrings(Exception):
    pass


class _RowPastExcel(Exception):
    """A row numbered past the last row a spreadsheet program can hold."""

    def __init__(self, number: int):
        super().__init__(number)
        self.number = number


class _BadSharedString(Exception):
    """A cell refers to a shared string the workbook does not hold."""

    def __init__(self, cell: str | None, count: int):
        super().__init__(cell, count)
        self.cell, self.count = cell, count


def check_zip(path: Path) -> None:
    """Refuse a workbook whose XML parts expand past MAX_XML_BYTES (read from the zip directory)."""
    try:
        with zipfile.ZipFile(path) as archive:
            infos = archive.infolist()
    except Exception as exc:  # zipfile raises BadZipFile, NotImplementedError, ValueError, ...
        raise InputError(f"{path}: not a readable .xlsx workbook ({one_line(exc)}); save it again "
                         f"from Excel as .xlsx, or export it as CSV") from exc
    for info in infos:
        name = info.filename.lower()
        if (name.endswith("sharedstrings.xml") or "worksheets/" in name) and (
                info.file_size > MAX_XML_BYTES):
            raise InputError(
                f"{path}: {info.filename} expands to {human_bytes(info.file_size)} of XML; the "
                f"limit is {human_bytes(MAX_XML_BYTES)}; {_SAVE_AS_CSV}")


_DATA_TYPES = ("spreadsheetml.worksheet+xml", "spreadsheetml.sharedStrings+xml")


class _SizedArchive:
    """The workbook's zip, checking each member's uncompressed size before it is parsed.

    Worksheets and the shared strings (by their content type) may expand to MAX_XML_BYTES,
    every other part (styles, workbook, themes, properties, ...) to MAX_PART_BYTES. zipfile
    stops reading at the size the directory declares, so the check bounds what is parsed.
    """

    def __init__(self, archive: Any, path: Path):
        self._archive, self._path = archive, path
        self.data_parts: set[str] = set()

    def __getattr__(self, name: str) -> Any:
        return getattr(self._archive, name)

    def learn(self, package: Any) -> None:
        """Note the data parts named by [Content_Types].xml (openpyxl's Manifest)."""
        self.data_parts = {o.PartName.lstrip("/") for o in getattr(package, "Override", [])
                           if o.ContentType.endswith(_DATA_TYPES)}

    def _check(self, name: Any) -> None:
        info = name if isinstance(name, zipfile.ZipInfo) else self._archive.getinfo(name)
        limit = MAX_XML_BYTES if info.filename in self.data_parts else MAX_PART_BYTES
        if info.file_size > limit:
            raise InputError(
                f"{self._path}: {info.filename} expands to {human_bytes(info.file_size)} of XML; "
                f"the limit for that part is {human_bytes(limit)}; {_SAVE_AS_CSV}")

    def open(self, name: Any, *args: Any, **kwargs: Any) -> Any:
        self._check(name)
        return self._archive.open(name, *args, **kwargs)

    def read(self, name: Any, *args: Any, **kwargs: Any) -> bytes:
        self._check(name)
        return self._archive.read(name, *args, **kwargs)


def _read_strings(source: Any) -> list[str]:
    """Shared strings with a count limit, clearing parsed elements as it goes (flat memory)."""
    from openpyxl.cell.text import Text
    from openpyxl.xml.constants import SHEET_MAIN_NS
    from openpyxl.xml.functions import iterparse

    tag = f"{{{SHEET_MAIN_NS}}}si"
    strings: list[str] = []
    root = None
    for event, node in iterparse(source, events=("start", "end")):
        if root is None:
            root = node
        if event == "end" and node.tag == tag:
            strings.append(Text.from_tree(node).content.replace("x005F_", ""))
            if len(strings) > MAX_SHARED_STRINGS:
                raise _TooManyStrings()
            root.clear()  # drop the parsed <si> elements, not only their content
    return strings


def load_workbook(path: Path, handle: Any) -> Any:
    """A read-only, cached-values workbook from an open binary handle; InputError if damaged."""
    from openpyxl.reader.excel import ExcelReader

    class _Reader(ExcelReader):
        def __init__(self, *args: Any, **kwargs: Any):
            super().__init__(*args, **kwargs)
            self.archive = _SizedArchive(self.archive, path)

        def read_manifest(self) -> None:
            super().read_manifest()
            self.archive.learn(self.package)

        def read_strings(self) -> None:
            ct = self.package.find("application/vnd.openxmlformats-officedocument.spreadsheetml"
                                   ".sharedStrings+xml")
            if ct is not None:
                with self.archive.open(ct.PartName[1:]) as src:
                    self.shared_strings = _read_strings(src)

    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # openpyxl warns about styles and extensions
            reader = _Reader(handle, read_only=True, data_only=True, keep_links=False)
            reader.read()
    except InputError:
        raise
    except _TooManyStrings as exc:
        raise InputError(f"{path}: the workbook holds more than {MAX_SHARED_STRINGS:,} distinct "
                         f"strings; the limit is {MAX_SHARED_STRINGS:,}; {_SAVE_AS_CSV}") from exc
    except Exception as exc:  # openpyxl reports damage in many exception types
        raise InputError(
            f"{path}: not a readable .xlsx workbook ({one_line(exc)}); save it again from Excel "
            f"as .xlsx, or export it as CSV"
        ) from exc
    return reader.wb


def pick_sheet(path: Path, workbook: Any, sheet: str | None) -> tuple[Any, list[str]]:
    """(worksheet, notes): ``sheet`` by name, else the first visible worksheet."""
    sheets = list(workbook.worksheets)
    if not sheets:
        raise InputError(f"{path}: the workbook has no worksheets")
    if sheet is not None:
        for candidate in (lambda ws: ws.title == sheet,
                          lambda ws: ws.title.strip().lower() == sheet.strip().lower()):
            found = [ws for ws in sheets if candidate(ws)]
            if len(found) == 1:
                return found[0], []
        raise InputError(
            f"{path}: no sheet {sheet!r}; the sheets are: "
            f"{column_list([ws.title for ws in sheets])}; pass one of them with --sheet"
        )
    visible = [ws for ws in sheets if getattr(ws, "sheet_state", "visible") == "visible"]
    chosen = (visible or sheets)[0]
    notes = []
    if chosen is not sheets[0]:
        notes.append(f"read sheet '{chosen.title}', the first visible one (sheet "
                     f"'{sheets[0].title}' is hidden)")
    return chosen, notes


def open_xlsx(path: Path, chunk_rows: int, sheet: str | None, *,
              text_column: str | None = None) -> Source:
    """Open a workbook: checks and the sheet now, the header and rows lazily. ``text_column``
    (the --text-column name) makes a row among the first ones that holds it the header."""
    check_zip(path)
    try:
        handle = open(path, "rb")  # noqa: SIM115 - closed when the rows are done
    except OSError as exc:
        raise InputError(f"{path}: cannot read ({one_line(exc)})") from exc
    try:
        workbook = load_workbook(path, handle)
        worksheet, notes = pick_sheet(path, workbook, sheet)
    except BaseException:
        handle.close()
        raise
    others = () if sheet is not None else tuple(
        ws.title for ws in workbook.worksheets
        if ws is not worksheet and getattr(ws, "sheet_state", "visible") == "visible")
    source = Source("xlsx", iter(()), sheet=worksheet.title, notes=notes, other_sheets=others)
    # the header is found when the first block is read; a sheet without one says so on the
    # source then, so its label and rating columns are found by their content (as in CSV)
    source.blocks = _iter_blocks(path, workbook, worksheet, handle, chunk_rows, notes, text_column,
                                 source)
    return source


class _Row(NamedTuple):
    """One sheet row: its number, cell text (None when empty), formula and error cells."""

    number: int
    values: list
    formulas: list[int]  # columns holding a formula without a cached value
    errors: list[tuple[int, str]]  # (column, code) of cells holding an Excel error value


def _sheet_rows(workbook: Any, worksheet: Any) -> Iterator[_Row]:
    """Every row from 1 on, blank rows included; the <dimension> element is ignored. A cell
    holding an Excel error value (#N/A, #DIV/0!, ...) is read as empty and listed in errors."""
    from openpyxl.worksheet._reader import FORMULA_TAG, WorkSheetParser

    class _Parser(WorkSheetParser):
        def parse_cell(self, element: Any) -> dict:
            try:
                cell = super().parse_cell(element)
            except IndexError as exc:  # a shared-string index past the table
                raise _BadSharedString(element.get("r"), len(self.shared_strings)) from exc
            if cell["value"] is None and element.find(FORMULA_TAG) is not None:
                cell["data_type"] = "formula"
            elif element.get("t") == "e" and cell["value"] is not None:
                cell["data_type"] = "error"  # t="e" as stored, not a date openpyxl gave up on
            return cell

    with worksheet._get_source() as source:
        # The strings live on the read-only worksheet (the reader's table, handed to every
        # sheet); Workbook.shared_strings is a separate, always-empty table in read-only mode.
        parser = _Parser(source, worksheet._shared_strings, data_only=True, epoch=workbook.epoch,
                         date_formats=workbook._date_formats,
                         timedelta_formats=workbook._timedelta_formats)
        expected = 1
        for number, cells in parser.parse():
            if number > MAX_SHEET_ROWS:
                raise _RowPastExcel(number)
            for gap in range(expected, number):
                yield _Row(gap, [], [], [])
            expected = max(expected, number + 1)
            width = max((c["column"] for c in cells), default=0)
            values: list = [None] * width
            formulas, errors = [], []
            for cell in cells:
                column = cell["column"] - 1
                if cell["data_type"] == "error":
                    errors.append((column, str(cell["value"])))
                    continue
                values[column] = cell_text(cell["value"])
                if cell["data_type"] == "formula":
                    formulas.append(column)
            yield _Row(number, values, formulas, errors)


def _filled(values: Sequence[str | None]) -> int:
    return sum(1 for v in values if v not in (None, ""))


def _last_filled(values: Sequence[str | None]) -> int:
    for i in range(len(values) - 1, -1, -1):
        if values[i] not in (None, ""):
            return i + 1
    return 0


# ------------------------------------------------------------------------------ the header row

# Names a header cell is read as (compared after norm_name): the names the columns are found by,
# and other common ones. A value that is also a label ("positive", "like") is not a name.
_HEADER_NAMES = COLUMN_NAMES | frozenset(SPLIT_COLUMN_NAMES) | frozenset((
        "name", "author", "user", "username", "reviewer", "customer", "summary", "headline",
        "subject", "language", "country", "source", "url", "link", "email", "note", "notes",
        "status", "helpful", "votes", "pros", "cons", "reply", "response", "answer", "question",
        "reviewtitle", "version", "platform", "channel", "region", "verified",
    ))  # fmt: skip
_DATE_TEXT = re.compile(r"\d{4}-\d{1,2}-\d{1,2}(?:[ T][\d:.]+)?|\d{1,2}[/.-]\d{1,2}[/.-]\d{2,4}"
                        r"|\d{1,2}:\d{2}(?::\d{2}(?:\.\d+)?)?")
_TITLE_ROWS = 5  # non-blank rows (a title block) that may sit above the header
_HEADER_COLUMNS = 200  # columns compared to find the header (a very wide sheet stays fast)
_EVIDENCE = 2  # values a column needs below a row before its type or length says anything
_NAME, _LEAN = 2, 1  # a cell's vote: clearly (2) or leaning (1) header (+) or data (-)


class HeaderChoice(NamedTuple):
    """Where the records start: the header row's index in the rows looked at, or, when
    ``headerless``, the index of the first record (the sheet has no header row)."""

    index: int
    headerless: bool = False


def _kind(value: str) -> str:
    text = value.strip()
    if is_number(text):
        return "number"
    return "date" if _DATE_TEXT.fullmatch(text) else "text"


def _is_name(value: str) -> bool:
    return norm_name(value) in _HEADER_NAMES and label_of(value) is None


class _Body:
    """The filled cells of the rows below a candidate header, by column, to compare it with."""

    def __init__(self, rows: Sequence[_Row]):
        self.count = 0
        self.columns: dict[int, list[str]] = {}
        for row in rows:
            cells = [(c, v) for c, v in enumerate(row.values) if v is not None and v.strip()]
            self.count += bool(cells)
            for c, v in cells:
                self.columns.setdefault(c, []).append(v)
        self._stats: dict[int, tuple[str, float, set[str]]] = {}

    def core(self) -> set[int]:
        """Columns filled in at least half of the non-blank rows."""
        return {c for c, values in self.columns.items() if 2 * len(values) >= self.count}

    def _column(self, column: int) -> tuple[str, float, set[str]]:
        """(kind: number | date | text, median words, the values without case or spacing)."""
        if column not in self._stats:
            values = self.columns[column]
            kinds = [_kind(v) for v in values]
            kind = next((k for k in ("number", "date") if kinds.count(k) >= 0.8 * len(kinds)),
                        "text") if len(values) >= _EVIDENCE else "text"
            words = sorted(len(v.split()) for v in values)
            self._stats[column] = (kind, words[len(words) // 2] if len(values) >= _EVIDENCE else 0,
                                   {" ".join(v.split()).lower() for v in values})
        return self._stats[column]

    def vote(self, value: str, column: int) -> int:
        """How ``value`` reads above this column: + a column name, - one of its values, 0 unsure."""
        if _is_name(value):
            return _NAME
        if column not in self.columns:
            return 0
        below, median_words, seen = self._column(column)
        kind = _kind(value)
        if below != "text":  # "Rating" over numbers is a name; 5 over numbers is a rating
            return -_NAME if kind == below else _NAME if kind == "text" else 0
        if kind != "text":
            return 0
        if " ".join(value.split()).lower() in seen:  # "positive" again below: a value
            return -_NAME
        words = value.split()
        if len(words) <= NAME_PHRASE_WORDS and any(norm_name(w) in NAME_WORDS for w in words):
            return _LEAN
        if value.rstrip().endswith(("?", ":")) and len(words) <= 12:
            return _LEAN  # a survey question over its answers
        if reads_as_review(value, words_below=median_words) is not None:
            return -_LEAN  # a sentence ("Loved it.") over texts: a review, as in a CSV file
        if len(words) <= 3 and len(value) <= 30 and median_words >= 5:
            return _LEAN  # a short name over long texts
        if len(value) > 100 or (len(words) >= 6 and median_words >= 5):
            return -_LEAN  # a sentence over sentences: more like a review than a name
        return 0


def _votes(values: Sequence[str | None], body: _Body) -> list[tuple[int, int]]:
    """(column, vote) of each filled cell."""
    return [(c, body.vote(v, c)) for c, v in enumerate(values) if v is not None and v.strip()]


def _can_lead(votes: list[tuple[int, int]], above: Sequence[_Row], body: _Body) -> bool:
    """True when a row with these votes reads as a header under the rows ``above`` it.

    The row reads as names: one cell at least clearly, none as a value, and at least half of
    its cells over used columns. Every row above reads as a title: nothing in it clearly as
    data (a value seen below, a number over numbers); and if it holds a known column name, it
    is one cell ("Reviews") and every cell of this row reads as a name ("review, label"), so
    a record that happens to hold a name cannot displace the header above it.
    """
    used = [v for c, v in votes if c in body.columns]
    if (not any(v == _NAME for _, v in votes) or any(v < 0 for _, v in votes)
            or 2 * sum(v > 0 for v in used) < len(used)):
        return False
    clear = all(v > 0 for v in used)
    for row in above:
        if any(v == -_NAME for _, v in _votes(row.values, body)):
            return False
        if any(v and _is_name(v) for v in row.values) and (_filled(row.values) != 1 or not clear):
            return False
    return True


def find_header(rows: Sequence[_Row], *, text_column: str | None = None) -> HeaderChoice:
    """Where the records start in ``rows`` (the first rows of a sheet), the way a person would
    find it: the header row, or no header row at all.

    Each filled cell of a candidate row is compared with its column below: a known column name,
    or text over a column of numbers or dates, reads as a name; a value that recurs below, or a
    number over numbers, reads as data. The first non-blank row is the header when its cells
    read as names on balance. A lower row (within _TITLE_ROWS) is the header when it reads
    clearly as names and the rows above it (a title) do not read as data of the columns below.
    Of several, the one whose cells cover the columns the records fill wins, then the clearer,
    then the upper one, so a stray cell in one record never moves the header. When nothing
    reads as a header and the first row reads as data, the sheet has no header row; otherwise
    the first row is the header, as in CSV. ``text_column`` (a --text-column name) makes a row
    holding that name the header: the one found anyway, else the fullest, else the upper one.
    """
    filled = [i for i, row in enumerate(rows) if _filled(row.values)]
    if not filled:
        return HeaderChoice(0)
    found = _auto_header([row._replace(values=row.values[:_HEADER_COLUMNS]) for row in rows],
                         filled)
    if text_column:
        wanted = norm_name(text_column)
        named = [i for i in filled if any(
            v is not None and (v == text_column or norm_name(v) == wanted) for v in rows[i].values)]
        if named and (found.headerless or found.index not in named):
            return HeaderChoice(max(named, key=lambda i: (_filled(rows[i].values), -i)))
    return found


def _auto_header(rows: Sequence[_Row], filled: list[int]) -> HeaderChoice:
    best: tuple[float, bool, int, int] | None = None
    first_score = 0
    for k, i in enumerate(filled[: _TITLE_ROWS + 1]):
        body = _Body(rows[i + 1:])
        votes = _votes(rows[i].values, body)
        if k == 0:
            first_score = sum(v for _, v in votes)
            leads = first_score > 0
        else:
            leads = _can_lead(votes, [rows[j] for j in filled[:k]], body)
        if leads:  # rank: the columns its names cover, clear names, their number, upper
            core = body.core()
            named = {c for c, v in votes if v > 0}
            clear = sum(v == _NAME for _, v in votes)
            key = (len(core & named) / max(len(core), 1), clear > 0, clear, -i)
            best = key if best is None or key > best else best
    if best is not None:
        return HeaderChoice(-best[-1])
    return HeaderChoice(filled[0], headerless=first_score < 0)


def _damaged(path: Path, sheet: str, exc: BaseException) -> InputError:
    return InputError(f"{path}: cannot read sheet '{sheet}' ({type(exc).__name__}: "
                      f"{one_line(exc)}); the workbook may be damaged: save it again from Excel "
                      f"or export it as CSV")


def _iter_blocks(path: Path, workbook: Any, worksheet: Any, handle: Any, chunk_rows: int,
                 notes: list[str], text_column: str | None,
                 source: Source) -> Generator[Block, None, None]:
    """Blocks of one sheet, chunk_rows records each (fewer for very wide sheets); at least one
    block (maybe empty). Closes the workbook and the file when done."""
    sheet = worksheet.title
    try:
        rows = _sheet_rows(workbook, worksheet)
        ahead = [next((row for row in rows if _filled(row.values)), None)]  # past blank rows
        if ahead[0] is None:
            raise EmptySheetError(f"{path}: sheet '{sheet}' is empty; it needs a header row and "
                                  f"one review per row")
        ahead += itertools.islice(rows, _LOOKAHEAD)
        choice = find_header(ahead, text_column=text_column)
        source.headerless = choice.headerless
        start = choice.index + (not choice.headerless)
        header = [] if choice.headerless else ahead[choice.index].values
        data = itertools.chain(ahead[start:], rows)
        first = list(itertools.islice(data, chunk_rows))
        width = max([_last_filled(header)] + [_last_filled(row.values) for row in first])
        columns = unique_names(list(header[:width]) + [None] * (width - len(header)))
        _header_notes(sheet, ahead, choice, columns, notes)
        errors = _ErrorCells(sheet, columns)
        yield from _chunked(path, sheet, columns, itertools.chain(first, data),
                            max(1, min(chunk_rows, _CHUNK_CELLS // max(width, 1))), errors)
        notes.extend(errors.notes())
    except InputError:
        raise
    except _RowPastExcel as exc:
        raise InputError(
            f"{path}: sheet '{sheet}' has a row numbered {exc.number:,}, past the last row a "
            f"spreadsheet holds ({MAX_SHEET_ROWS:,}); the file was not written by a spreadsheet "
            f"program or is damaged: save it again from Excel or export it as CSV") from exc
    except _BadSharedString as exc:
        raise InputError(
            f"{path}: sheet '{sheet}' cell {exc.cell or '?'} refers to a shared string the "
            f"workbook does not hold (it has {exc.count:,}); the workbook is damaged: save it "
            f"again from Excel or export it as CSV") from exc
    except Exception as exc:  # damage shows as zip, zlib, XML (SyntaxError), index, value errors
        raise _damaged(path, sheet, exc) from exc
    finally:
        with contextlib.suppress(Exception):
            workbook.close()
        handle.close()


def _header_notes(sheet: str, rows: Sequence[_Row], choice: HeaderChoice, columns: list[str],
                  notes: list[str]) -> None:
    first = rows[choice.index]
    if choice.headerless:  # its label and rating columns are then found by content (columns.py)
        notes.append(
            f"sheet '{sheet}': no header row: sheet row {first.number} reads as a record, not "
            f"column names ({_shown(first.values)}), so every row from it on is a record and "
            f"the columns are named {column_list(columns[:6])}{', ...' if len(columns) > 6 else ''}"
            "; add a header row (e.g. review, label) to name them")
        return
    skipped = [v for row in rows[: choice.index] for v in row.values if v not in (None, "")]
    if first.number != 1:
        above = ("rows above it are blank" if not skipped else
                 f"rows above it are blank or a title, skipped: {_shown(skipped)}")
        notes.append(f"sheet '{sheet}': the header is sheet row {first.number} ({above}); row "
                     f"numbers count records after the header")
    header = first.values
    notes.extend(renamed_note(header, columns, f"sheet '{sheet}': "))
    blank = [c for i, c in enumerate(columns) if i >= len(header) or header[i] in (None, "")]
    if blank:
        labels = [c for c in blank if _holds_labels(rows[choice.index + 1:], columns.index(c))]
        notes.append(f"sheet '{sheet}': values under blank header cells kept as columns "
                     f"{', '.join(repr(c) for c in blank)}" + "".join(
                         f" ({c!r} holds labels: pass --label-column {c} to use them)"
                         for c in labels[:1]))


def _shown(values: Sequence[str | None], most: int = 4) -> str:
    filled = [v for v in values if v not in (None, "")]
    return ", ".join(show(v, 40) for v in filled[:most]) + (", ..." if len(filled) > most else "")


def _holds_labels(rows: Sequence[_Row], column: int) -> bool:
    """True when every filled cell of ``column`` in ``rows`` is a label (positive, 0, yes...)."""
    cells = [r.values[column] for r in rows if column < len(r.values) and r.values[column]]
    return bool(cells) and all(label_of(v) is not None for v in cells)


class _ErrorCells:
    """Cells holding an Excel error value (#N/A, #DIV/0!, ...) in the records, for one note."""

    def __init__(self, sheet: str, columns: list[str]):
        self.sheet, self.columns = sheet, columns
        self.codes: Counter[str] = Counter()
        self.where: Counter[str] = Counter()
        self.first = ""

    def add(self, record: int, row: _Row) -> None:
        from openpyxl.utils import get_column_letter

        for column, code in row.errors:
            name = (repr(self.columns[column]) if column < len(self.columns)
                    else f"column {get_column_letter(column + 1)}")
            self.codes[code] += 1
            self.where[name] += 1
            self.first = self.first or f"row {record} (sheet row {row.number}) in {name}"

    def notes(self) -> list[str]:
        count = sum(self.codes.values())
        if not count:
            return []
        codes = ", ".join(f"{code} x{n}" if n > 1 else code for code, n in self.codes.items())
        return [f"sheet '{self.sheet}': {count} cell{'s' if count != 1 else ''} "
                f"{'hold' if count != 1 else 'holds'} an Excel error value ({codes}) in "
                f"{', '.join(self.where)}, the first at {self.first}; read as empty cells (a "
                f"review with one is not scored: 'empty text'); fix the formula in Excel, or "
                f"clear the cell"]


class _Batcher:
    """Rows gathered into blocks of ``chunk_rows``, with the formula cells of each block."""

    def __init__(self, columns: list[str], chunk_rows: int):
        self.columns, self.chunk_rows = columns, chunk_rows
        self.rows: list[list] = []
        self.formulas: list[tuple[int, int]] = []
        self.yielded = False
        self.added = 0  # rows added so far (records, blank ones included)

    def add(self, values: list, formula_cols: Sequence[int] = ()) -> Block | None:
        """Add one row; a full block when this row completes one."""
        width = len(self.columns)
        self.added += 1
        self.formulas.extend((len(self.rows), c) for c in formula_cols if c < width)
        self.rows.append(list(values[:width]) + [None] * (width - len(values)))
        if len(self.rows) < self.chunk_rows:
            return None
        block = _block(self.rows, self.columns, self.formulas, len(self.rows))
        self.rows, self.formulas, self.yielded = [], [], True
        return block

    def last(self) -> Block | None:
        if self.rows or not self.yielded:
            return _block(self.rows, self.columns, self.formulas, len(self.rows))
        return None


def _chunked(path: Path, sheet: str, columns: list[str], rows: Iterator[_Row], chunk_rows: int,
             errors: _ErrorCells) -> Generator[Block, None, None]:
    """Rows padded to the header's width, in blocks; blank rows kept unless they end the sheet.

    A blank row costs the sheet's width in the cell budget like any other (it becomes that
    many empty cells in every output), and blank rows go into blocks one at a time, so a
    sheet of far-apart row numbers cannot build one huge block. A row whose only cells hold
    error values is a record (of empty cells), not a blank row.
    """
    from openpyxl.utils import get_column_letter

    width = len(columns)
    batch = _Batcher(columns, chunk_rows)
    pending_blank = 0
    cells = 0
    for row in rows:
        values = row.values
        if not _filled(values) and not row.formulas and not row.errors:
            pending_blank += 1  # kept only if a non-blank row follows
            continue
        if len(values) > width and _filled(values[width:]):
            extra = width + next(i for i, v in enumerate(values[width:]) if v not in (None, ""))
            raise InputError(
                f"{path}: sheet '{sheet}' row {row.number} has a value in column "
                f"{get_column_letter(extra + 1)}, right of the last column the first rows use; "
                f"give that column a header or clear the cell")
        cells += (pending_blank + 1) * max(width, 1)
        if cells > MAX_CELLS:
            raise InputError(f"{path}: sheet '{sheet}' holds more than {MAX_CELLS:,} cells "
                             f"(rows x columns, blank rows included); the limit is "
                             f"{MAX_CELLS:,}; {_SAVE_AS_CSV}")
        for _ in range(pending_blank):
            if (block := batch.add([])) is not None:
                yield block
        pending_blank = 0
        errors.add(batch.added + 1, row)
        if (block := batch.add(values, row.formulas)) is not None:
            yield block
    if (block := batch.last()) is not None:
        yield block


def _block(rows: list[list], columns: list[str], formulas: list[tuple[int, int]],
           n: int) -> Block:
    frame = pd.DataFrame(rows, columns=columns, dtype=object)
    mask = None
    inside = [(r, c) for r, c in formulas if r < n]
    if inside:
        mask = np.zeros((len(rows), len(columns)), dtype=bool)
        for r, c in inside:
            mask[r, c] = True
    return Block(frame, mask)
