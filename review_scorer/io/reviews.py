"""Review files for scoring: open any supported format, find the columns, stream ReviewChunks."""

from __future__ import annotations

import os
from collections.abc import Generator, Iterator
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd

from review_scorer.errors import InputError
from review_scorer.io.columns import ColumnError, ColumnRequest, ColumnRoles, detect_columns
from review_scorer.io.common import (
    JSON_SUFFIXES,
    JSONL_SUFFIXES,
    PARQUET_SUFFIXES,
    REVIEW_SUFFIXES,
    SUPPORTED_FORMATS,
    XLSX_SUFFIXES,
    Block,
    Source,
    column_list,
    one_line,
)
from review_scorer.io.delimited import decode_head, detect_encoding, open_delimited, read_head
from review_scorer.io.jsonl import looks_like_jsonl, open_jsonl
from review_scorer.io.labels import parse_labels, parse_ratings, rating_labels
from review_scorer.io.parquet import open_parquet
from review_scorer.io.xlsx import EmptySheetError, open_xlsx

_SHOW_ROWS = 5  # row numbers listed in a note


@dataclass(frozen=True)
class ReviewFileInfo:
    """What open_reviews found out about a review file, and the decisions it made."""

    path: Path
    format: str  # "csv" | "xlsx" | "jsonl" | "json" | "parquet"
    delimiter: str | None  # csv only
    encoding: str | None  # "utf-8", "utf-8-sig", "utf-16", "utf-16-le", "utf-32", "cp1252", ...
    encoding_fallback: bool  # True when the file was not valid UTF-8 and was read as cp1252/latin-1
    sheet: str | None  # the sheet read (xlsx only)
    columns: tuple[str, ...]  # header names in file order, every one distinct
    text_column: str
    label_column: str | None
    id_column: str | None
    text_column_guessed: bool  # chosen by content, not by name
    rating_column: str | None = None
    rating_scale: int | None = None  # 5 or 10
    label_from_rating: bool = False  # labels come from the star ratings
    date_column: str | None = None
    group_column: str | None = None
    # Decisions and findings, one line each. Those found while reading rows (unknown labels,
    # formulas without values) are added when chunks() has been read to the end.
    notes: list[str] = field(default_factory=list)


@dataclass
class ReviewChunk:
    """A run of consecutive records of a review file."""

    frame: pd.DataFrame  # every original column, values as str ("" for empty cells), file order
    rows: np.ndarray  # int64, 1-based record number: the first record after the header is 1
    texts: list[str | None]  # the text column; None for a missing cell ("" stays "")
    labels: np.ndarray | None  # int8 1/0, -1 empty, unknown or neutral; None without labels
    ratings: np.ndarray | None = None  # float64 star ratings, NaN when missing; None without
    formula: np.ndarray | None = None  # bool: the text cell is a formula with no saved value
    neutral: np.ndarray | None = None  # bool: a middle star rating (label -1)
    unknown_label: np.ndarray | None = None  # bool: the label cell holds something else
    # The original columns with the types the file stores (JSON numbers/booleans/null/lists,
    # Parquet column types; None for a missing cell), for outputs that can keep them. None for
    # formats whose cells are all text (CSV, XLSX).
    values: pd.DataFrame | None = None

    def __len__(self) -> int:
        return len(self.rows)


class _Tally:
    """Rows with a finding, counted across chunks, for one note at the end."""

    def __init__(self) -> None:
        self.count = 0
        self.rows: list[int] = []

    def add(self, mask: np.ndarray | None, rows: np.ndarray) -> None:
        if mask is None or not mask.any():
            return
        self.count += int(mask.sum())
        if len(self.rows) < _SHOW_ROWS:
            self.rows += [int(r) for r in rows[mask][: _SHOW_ROWS - len(self.rows)]]

    def counted(self, noun: str) -> str:
        return f"{self.count} {noun}{'s' if self.count != 1 else ''}"

    def rows_hold(self) -> str:
        return f"{self.counted('row')} {'hold' if self.count != 1 else 'holds'}"

    def shown(self) -> str:
        more = ", ..." if self.count > len(self.rows) else ""
        return f"row{'s' if self.count > 1 else ''} {', '.join(map(str, self.rows))}{more}"


class ReviewFile:
    """An opened review file: ``info`` now, its records in order through ``chunks()`` (once).

    Use it as a context manager (or call ``close()``) to release the file if you stop early.
    """

    def __init__(self, info: ReviewFileInfo, roles: ColumnRoles, first: Block,
                 rest: Generator[Block, None, None]):
        self.info = info
        self._roles = roles
        self._first: Block | None = first
        self._rest = rest
        self._tallies = {name: _Tally() for name in ("unknown", "neutral", "formula", "rating")}

    @property
    def notes(self) -> list[str]:
        """The info's notes (complete once chunks() has been read to the end)."""
        return self.info.notes

    def chunks(self) -> Iterator[ReviewChunk]:
        """Yield every record, in file order, in chunks. The file is read once.

        Raises InputError for a malformed record, naming the row. A label or rating cell that
        holds something else never fails the file: the row gets label -1 and a note counts it.
        """
        if self._first is None:
            raise RuntimeError("chunks() reads the file once; call open_reviews again")
        first, self._first = self._first, None
        return self._iter_chunks(first)

    def _iter_chunks(self, first: Block) -> Iterator[ReviewChunk]:
        start = 1
        try:
            for block in _chain(first, self._rest):
                if block.frame.empty:
                    continue
                rows = np.arange(start, start + len(block.frame), dtype=np.int64)
                start += len(block.frame)
                yield self._chunk(block, rows)
        finally:
            self._rest.close()
        self._add_notes()

    def _chunk(self, block: Block, rows: np.ndarray) -> ReviewChunk:
        info, roles = self.info, self._roles
        raw = block.frame
        texts = [v if isinstance(v, str) else None for v in raw[info.text_column].tolist()]
        frame = raw
        if any(pd.api.types.is_object_dtype(d) for d in raw.dtypes):  # None -> ""
            frame = raw.fillna("").astype(str)
        chunk = ReviewChunk(frame=frame.reset_index(drop=True), rows=rows, texts=texts,
                            labels=None, formula=np.zeros(len(rows), dtype=bool))
        if block.values is not None:
            chunk.values = block.values.reset_index(drop=True)
        if block.formula is not None:
            chunk.formula = block.formula[:, info.columns.index(info.text_column)].copy()
        if info.rating_column is not None:
            chunk.ratings = parse_ratings(raw[info.rating_column].tolist())
            filled = frame[info.rating_column].str.strip().to_numpy() != ""
            scale = info.rating_scale or 10
            with np.errstate(invalid="ignore"):
                bad = filled & ~((chunk.ratings >= 0) & (chunk.ratings <= scale))
            chunk.ratings[bad] = np.nan
            self._tallies["rating"].add(bad, rows)
        if info.label_column is not None:
            chunk.labels, chunk.unknown_label = parse_labels(raw[info.label_column].tolist())
        elif roles.label_from_rating and chunk.ratings is not None:
            chunk.labels, chunk.neutral = rating_labels(chunk.ratings, info.rating_scale or 5)
        self._tallies["unknown"].add(chunk.unknown_label, rows)
        self._tallies["neutral"].add(chunk.neutral, rows)
        self._tallies["formula"].add(chunk.formula, rows)
        return chunk

    def _add_notes(self) -> None:
        info, tally = self.info, self._tallies
        if tally["unknown"].count:
            info.notes.append(
                f"label column '{info.label_column}': {tally['unknown'].rows_hold()} values "
                f"that are not labels ({tally['unknown'].shown()}): scored, left out of accuracy")
        if tally["rating"].count:
            info.notes.append(
                f"rating column '{info.rating_column}': {tally['rating'].rows_hold()} values "
                f"that are not ratings out of {info.rating_scale} ({tally['rating'].shown()})")
        if tally["neutral"].count:
            info.notes.append(
                f"{tally['neutral'].counted('row')} with a middle rating in '{info.rating_column}' "
                f"({tally['neutral'].shown()}): neutral, scored, left out of accuracy")
        if tally["formula"].count:
            info.notes.append(
                f"text column '{info.text_column}': {tally['formula'].counted('cell')} "
                f"holding a formula with no saved result ({tally['formula'].shown()}); the program "
                f"that wrote the workbook did not compute them: open and save it in Excel, or "
                f"export it as CSV")

    def close(self) -> None:
        """Release the underlying file (only needed when chunks() was not read to the end)."""
        self._first = None
        self._rest.close()

    def __enter__(self) -> ReviewFile:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def _chain(first: Block, rest: Generator[Block, None, None]) -> Iterator[Block]:
    yield first
    yield from rest


def open_reviews(
    path: str | os.PathLike[str],
    *,
    text_column: str | None = None,
    label_column: str | None = None,
    id_column: str | None = None,
    rating_column: str | None = None,
    date_column: str | None = None,
    group_column: str | None = None,
    sheet: str | None = None,
    chunk_rows: int = 5000,
) -> ReviewFile:
    """Open a review file (CSV/TSV/TXT, XLSX, JSONL, JSON or Parquet; text formats may be
    gzipped) for scoring; work out its layout.

    Encoding (BOMs, UTF-16 without a BOM, UTF-8, else cp1252/latin-1 with ``encoding_fallback``;
    UTF-8 with a few bad bytes stays UTF-8, those bytes read as U+FFFD), delimiter (or Excel's
    ``sep=`` line) and, for workbooks, the sheet (the first visible one) are detected, and so is
    the header row: title lines above it are skipped, and a first row that reads as data (a
    label or number like the values under it) makes the file headerless, its columns
    ``column_1``, ... Each column option takes a name, None to detect the column, or
    "" to turn detection off. Roles are decided once, from the header and the first chunk, and
    every decision is a line in ``info.notes``. Rows are read lazily, ``chunk_rows`` at a time;
    every record is kept, in order, including empty ones (only all-empty rows at the very end
    are dropped).

    Raises InputError for a missing, empty, binary, corrupt, oversized or unsupported file, an
    unknown column or sheet name, or when no column looks like review text.
    """
    request = ColumnRequest(text=text_column, label=label_column, id=id_column,
                            rating=rating_column, date=date_column, group=group_column)
    return open_review_file(Path(path), request, sheet=sheet, chunk_rows=chunk_rows)


def open_review_file(path: Path, request: ColumnRequest, *, sheet: str | None = None,
                     chunk_rows: int = 5000, strict_labels: bool = False) -> ReviewFile:
    """open_reviews with a ColumnRequest; ``strict_labels`` uses a label column found by name
    whatever it holds (training data, where every label must then be valid)."""
    if chunk_rows < 1:
        raise ValueError("chunk_rows must be at least 1")
    source = open_source(path, sheet=sheet, chunk_rows=chunk_rows, text_column=request.text)
    try:
        first, roles = _first_and_roles(path, source, request, strict_labels)
    except (EmptySheetError, ColumnError) as exc:
        if not source.other_sheets:
            raise
        source, first, roles = _other_sheet(path, source, request, strict_labels, chunk_rows, exc)
    else:
        if roles.text_guessed and source.other_sheets:
            source, first, roles = _other_sheet(path, source, request, strict_labels, chunk_rows,
                                                None, (source, first, roles))
    columns = tuple(str(c) for c in first.frame.columns)
    info = ReviewFileInfo(
        path=path, format=source.fmt, delimiter=source.delimiter, encoding=source.encoding,
        encoding_fallback=source.encoding_fallback, sheet=source.sheet, columns=columns,
        text_column=roles.text, label_column=roles.label, id_column=roles.id,
        text_column_guessed=roles.text_guessed, rating_column=roles.rating,
        rating_scale=roles.rating_scale, label_from_rating=roles.label_from_rating,
        date_column=roles.date, group_column=roles.group, notes=source.notes,
    )
    # The same list: a reader adds notes while rows stream (keys first seen late, ...).
    info.notes.extend(roles.notes)
    return ReviewFile(info, roles, first, source.blocks)


def _first_and_roles(path: Path, source: Source, request: ColumnRequest,
                     strict_labels: bool) -> tuple[Block, ColumnRoles]:
    """The first block and the columns' roles; the source is closed if either fails."""
    try:
        first = next(source.blocks)
        return first, detect_columns(path, first.frame, request, strict_labels=strict_labels,
                                     headerless=source.headerless)
    except BaseException:
        source.blocks.close()
        raise


def _other_sheet(path: Path, source: Source, request: ColumnRequest, strict_labels: bool,
                 chunk_rows: int, failure: InputError | None,
                 fallback: tuple[Source, Block, ColumnRoles] | None = None,
                 ) -> tuple[Source, Block, ColumnRoles]:
    """A workbook whose first visible sheet has no review column (``failure``) or only one
    guessed by content (``fallback``): the first other visible sheet whose review column is
    found by name (or, after a failure, at all) is read instead, with a note. With none, the
    failure names the sheets and --sheet."""
    first_sheet, names = source.sheet, source.other_sheets
    guessed: tuple[Source, Block, ColumnRoles] | None = None
    for name in names:
        try:
            other = open_source(path, sheet=name, chunk_rows=chunk_rows, text_column=request.text)
            block, roles = _first_and_roles(path, other, request, strict_labels)
        except InputError:
            continue
        if not roles.text_guessed:
            found = (other, block, roles)
            break
        if failure is None or guessed is not None:
            other.blocks.close()
        else:
            guessed = (other, block, roles)
    else:
        found = guessed or fallback
        if found is None:
            raise InputError(f"{failure} (in sheet '{first_sheet}'; the other sheets, "
                             f"{column_list(list(names))}, were tried too: pass --sheet NAME to "
                             f"read one of them)") from failure
    if guessed is not None and found is not guessed:
        guessed[0].blocks.close()
    if found is fallback:
        return found
    if fallback is not None:
        fallback[0].blocks.close()
    reason = ("is empty" if isinstance(failure, EmptySheetError) else "has no review column"
              if failure is not None else "has no column named like review text")
    found[0].notes.insert(0, f"read sheet '{found[0].sheet}': the first sheet, '{first_sheet}', "
                             f"{reason} (pass --sheet NAME to choose another)")
    return found


def file_suffix(path: Path) -> str:
    """The lowercased suffix, with ".gz" kept on the suffix it compresses (".csv.gz"); a name
    that is only a suffix (".csv") counts as that suffix."""
    name = path.name.lower()
    suffixes = [s.lower() for s in path.suffixes]
    if len(suffixes) >= 2 and suffixes[-1] == ".gz" and name.endswith(REVIEW_SUFFIXES):
        return suffixes[-2] + ".gz"
    suffix = path.suffix.lower()
    if not suffix and path.name.startswith(".") and path.name.count(".") == 1:
        return name
    return suffix


def open_source(path: Path, *, sheet: str | None, chunk_rows: int,
                text_column: str | None = None) -> Source:
    """Check the path and open it with the reader its format needs."""
    suffix = _checked_suffix(path)
    if sheet is not None and suffix not in XLSX_SUFFIXES:
        raise InputError(f"{path}: --sheet only applies to Excel files (.xlsx, .xlsm)")
    if suffix in XLSX_SUFFIXES:
        return open_xlsx(path, chunk_rows, sheet, text_column=text_column or None)
    if suffix in PARQUET_SUFFIXES:
        return open_parquet(path, chunk_rows)
    plain = suffix.removesuffix(".gz")
    head, complete = read_head(path)
    encoding = detect_encoding(path, head)
    name, fallback = encoding.name, encoding.fallback
    if plain in JSON_SUFFIXES:
        source = open_jsonl(path, chunk_rows, name, fallback, array=True)
    elif plain in JSONL_SUFFIXES or (
            plain == ".txt" and looks_like_jsonl(decode_head(head, name, complete))):
        source = open_jsonl(path, chunk_rows, name, fallback)
    else:
        source = open_delimited(path, chunk_rows, head, complete, name, fallback, suffix=plain)
    if encoding.note:
        source.notes.insert(0, encoding.note)
    return source


def _checked_suffix(path: Path) -> str:
    if not path.exists():
        raise InputError(f"{path}: file not found; check the path")
    if path.is_dir():
        raise InputError(f"{path} is a folder; pass a {SUPPORTED_FORMATS} file")
    if not path.is_file():
        raise InputError(f"{path} is not a regular file (a pipe, socket or device); save the "
                         f"reviews to a file and pass that")
    suffix = file_suffix(path)
    if suffix == ".xls":
        raise InputError(
            f"{path}: old-style .xls workbooks are not supported; save it as .xlsx or CSV in Excel"
        )
    if suffix not in REVIEW_SUFFIXES:
        shown = f"'{suffix}' files are" if suffix else "files without an extension are"
        raise InputError(f"{path}: {shown} not supported; use {SUPPORTED_FORMATS}")
    try:
        size = path.stat().st_size
    except OSError as exc:
        raise InputError(f"{path}: cannot read ({one_line(exc)})") from exc
    if size == 0:
        raise InputError(f"{path} is empty (0 bytes); it needs a header row and one review per row")
    return suffix
