"""Excel workbooks: size limits before parsing, the sheet, the header row, rows streamed in chunks."""

# openpyxl parses the XML, but the rows are driven here: the sheet's ``<dimension>`` element is
# never trusted (files in the wild carry stale ones), formula cells without a cached value are
# marked, and a damaged part becomes one InputError naming the file.

from __future__ import annotations

import contextlib
import itertools
import warnings
import zipfile
from collections.abc import Generator, Iterator, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from review_scorer.errors import InputError
from review_scorer.io.common import (
    Block,
    Source,
    cell_text,
    column_list,
    human_bytes,
    one_line,
    unique_names,
)

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


def open_xlsx(path: Path, chunk_rows: int, sheet: str | None) -> Source:
    """Open a workbook: checks and the sheet now, the header and rows lazily."""
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
    blocks = _iter_blocks(path, workbook, worksheet, handle, chunk_rows, notes)
    others = () if sheet is not None else tuple(
        ws.title for ws in workbook.worksheets
        if ws is not worksheet and getattr(ws, "sheet_state", "visible") == "visible")
    return Source("xlsx", blocks, sheet=worksheet.title, notes=notes, other_sheets=others)


def _sheet_rows(workbook: Any, worksheet: Any) -> Iterator[tuple[int, list, list[int]]]:
    """(sheet row number, cell values, columns holding a formula without a cached value) for
    every row from 1 on, blank rows included; the <dimension> element is ignored."""
    from openpyxl.worksheet._reader import FORMULA_TAG, WorkSheetParser

    class _Parser(WorkSheetParser):
        def parse_cell(self, element: Any) -> dict:
            try:
                cell = super().parse_cell(element)
            except IndexError as exc:  # a shared-string index past the table
                raise _BadSharedString(element.get("r"), len(self.shared_strings)) from exc
            if cell["value"] is None and element.find(FORMULA_TAG) is not None:
                cell["data_type"] = "formula"
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
                yield gap, [], []
            expected = max(expected, number + 1)
            width = max((c["column"] for c in cells), default=0)
            values: list = [None] * width
            formulas = []
            for cell in cells:
                values[cell["column"] - 1] = cell["value"]
                if cell["data_type"] == "formula":
                    formulas.append(cell["column"] - 1)
            yield number, [cell_text(v) for v in values], formulas


def _filled(values: Sequence[str | None]) -> int:
    return sum(1 for v in values if v not in (None, ""))


def _last_filled(values: Sequence[str | None]) -> int:
    for i in range(len(values) - 1, -1, -1):
        if values[i] not in (None, ""):
            return i + 1
    return 0


def _is_label(value: str) -> bool:
    text = value.strip()
    if not text or len(text) > 40 or len(text.split()) > 5:
        return False
    try:
        float(text)
    except ValueError:
        return True
    return False


def _looks_like_header(values: Sequence[str | None]) -> bool:
    filled = [v.strip() for v in values if v not in (None, "")]
    return bool(filled) and len(set(filled)) == len(filled) and (
        sum(_is_label(v) for v in filled) * 2 > len(filled))


def find_header(rows: Sequence[tuple[int, list, list[int]]]) -> int | None:
    """Index into ``rows`` of the header row, the way a person would find it.

    Blank rows are skipped, and so are title rows: a leading run of rows with one filled cell
    each, followed by a row of several short, distinct, mostly non-numeric labels (the header).
    Otherwise the first non-blank row is the header, as in CSV. Rows are never skipped past a
    row that holds more than one value, so no data is dropped above a wrongly found header.
    """
    candidates = [i for i, (_, values, _) in enumerate(rows) if _filled(values)]
    if not candidates:
        return None
    for i in candidates:
        if _filled(rows[i][1]) >= 2:
            if i != candidates[0] and _looks_like_header(rows[i][1]):
                return i
            break
    return candidates[0]


def _damaged(path: Path, sheet: str, exc: BaseException) -> InputError:
    return InputError(f"{path}: cannot read sheet '{sheet}' ({type(exc).__name__}: "
                      f"{one_line(exc)}); the workbook may be damaged: save it again from Excel "
                      f"or export it as CSV")


def _iter_blocks(path: Path, workbook: Any, worksheet: Any, handle: Any, chunk_rows: int,
                 notes: list[str]) -> Generator[Block, None, None]:
    """Blocks of one sheet, chunk_rows records each (fewer for very wide sheets); at least one
    block (maybe empty). Closes the workbook and the file when done."""
    sheet = worksheet.title
    try:
        rows = _sheet_rows(workbook, worksheet)
        ahead = [next((item for item in rows if _filled(item[1])), None)]  # past blank rows
        if ahead[0] is None:
            raise EmptySheetError(f"{path}: sheet '{sheet}' is empty; it needs a header row and "
                                  f"one review per row")
        ahead += itertools.islice(rows, _LOOKAHEAD)
        index = find_header(ahead) or 0
        header_row, header, _ = ahead[index]
        data = itertools.chain(ahead[index + 1:], rows)
        first = list(itertools.islice(data, chunk_rows))
        width = max([_last_filled(header)] + [_last_filled(v) for _, v, _ in first])
        columns = unique_names(list(header[:width]) + [None] * (width - len(header)))
        _header_notes(sheet, header_row, header, columns, notes)
        yield from _chunked(path, sheet, columns, itertools.chain(first, data),
                            max(1, min(chunk_rows, _CHUNK_CELLS // max(width, 1))))
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


def _header_notes(sheet: str, header_row: int, header: list, columns: list[str],
                  notes: list[str]) -> None:
    if header_row != 1:
        notes.append(f"sheet '{sheet}': the header is sheet row {header_row} (rows above it are "
                     f"blank or a title); row numbers count records after the header")
    blank = [c for i, c in enumerate(columns) if i >= len(header) or header[i] in (None, "")]
    if blank:
        notes.append(f"sheet '{sheet}': values under blank header cells kept as columns "
                     f"{', '.join(repr(c) for c in blank)}")


class _Batcher:
    """Rows gathered into blocks of ``chunk_rows``, with the formula cells of each block."""

    def __init__(self, columns: list[str], chunk_rows: int):
        self.columns, self.chunk_rows = columns, chunk_rows
        self.rows: list[list] = []
        self.formulas: list[tuple[int, int]] = []
        self.yielded = False

    def add(self, values: list, formula_cols: Sequence[int] = ()) -> Block | None:
        """Add one row; a full block when this row completes one."""
        width = len(self.columns)
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


def _chunked(path: Path, sheet: str, columns: list[str], rows: Iterator[tuple[int, list, list]],
             chunk_rows: int) -> Generator[Block, None, None]:
    """Rows padded to the header's width, in blocks; blank rows kept unless they end the sheet.

    A blank row costs the sheet's width in the cell budget like any other (it becomes that
    many empty cells in every output), and blank rows go into blocks one at a time, so a
    sheet of far-apart row numbers cannot build one huge block.
    """
    from openpyxl.utils import get_column_letter

    width = len(columns)
    batch = _Batcher(columns, chunk_rows)
    pending_blank = 0
    cells = 0
    for sheet_row, values, formula_cols in rows:
        if not _filled(values) and not formula_cols:
            pending_blank += 1  # kept only if a non-blank row follows
            continue
        if len(values) > width and _filled(values[width:]):
            extra = width + next(i for i, v in enumerate(values[width:]) if v not in (None, ""))
            raise InputError(
                f"{path}: sheet '{sheet}' row {sheet_row} has a value in column "
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
        if (block := batch.add(values, formula_cols)) is not None:
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
