"""Shared pieces of the input readers: suffixes, limits, cell text, header names, messages."""

from __future__ import annotations

import datetime as dt
import functools
import gzip
import io
import json
import math
import re
from collections.abc import Generator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO

import numpy as np
import pandas as pd

DELIMITED_SUFFIXES = (".csv", ".txt", ".tsv", ".tab")
XLSX_SUFFIXES = (".xlsx", ".xlsm")
JSONL_SUFFIXES = (".jsonl", ".ndjson")
JSON_SUFFIXES = (".json",)
PARQUET_SUFFIXES = (".parquet", ".pq")
# Text formats also read gzip-compressed (reviews.csv.gz), streamed like the plain file.
GZIP_SUFFIXES = tuple(s + ".gz" for s in DELIMITED_SUFFIXES + JSONL_SUFFIXES + JSON_SUFFIXES)
REVIEW_SUFFIXES = (DELIMITED_SUFFIXES + XLSX_SUFFIXES + JSONL_SUFFIXES + JSON_SUFFIXES
                   + PARQUET_SUFFIXES + GZIP_SUFFIXES)
ARCHIVE_SUFFIXES = (".tar.gz", ".tgz", ".tar")
SUPPORTED_FORMATS = (
    ".csv, .tsv, .tab, .txt (delimited text), .xlsx, .xlsm (Excel workbook), .jsonl, .ndjson "
    "(JSON Lines), .json (an array of objects), .parquet, or a text format gzipped (.csv.gz)"
)


@dataclass
class Block:
    """Consecutive records from a reader: str/None cells, plus where formulas had no value."""

    frame: pd.DataFrame  # object columns: str, or None for an empty/missing cell
    formula: np.ndarray | None = None  # bool (rows, columns): a formula cell with no cached value
    # The same cells with the types the file stores them in (JSON numbers, booleans, lists;
    # Parquet column types), for outputs that can keep them; None when every cell is text.
    values: pd.DataFrame | None = None


@dataclass
class Source:
    """An opened input: how it was read and its blocks of records (at least one, maybe empty)."""

    fmt: str  # "csv" | "xlsx" | "jsonl" | "parquet"
    blocks: Generator[Block, None, None]
    delimiter: str | None = None
    encoding: str | None = None
    encoding_fallback: bool = False
    sheet: str | None = None
    other_sheets: tuple[str, ...] = ()  # the workbook's other visible sheets, when none was asked
    notes: list[str] = field(default_factory=list)
    headerless: bool = False  # the first record is data: the columns are column_1, column_2, ...


def one_line(exc: BaseException) -> str:
    """An exception as one line of text."""
    text = str(exc) or type(exc).__name__
    return " ".join(text.split())


def show(value: object, limit: int = 60) -> str:
    """A cell value quoted for a message, shortened."""
    text = str(value)
    if len(text) > limit:
        text = text[: limit - 3] + "..."
    return repr(text)


def column_list(columns: Sequence[str]) -> str:
    """Column names for a message."""
    return ", ".join(repr(c) for c in columns) if columns else "none"


@functools.lru_cache(maxsize=65536)
def norm_name(name: object) -> str:
    """A column name without case, spaces, underscores, hyphens and dots (for matching)."""
    return re.sub(r"[\s_\-.]+", "", str(name)).lower()


def unique_names(names: Sequence[object]) -> list[str]:
    """Header names as text, every one distinct, decided left to right.

    A blank name becomes ``column_<n>`` (n is the 1-based position); a repeated one gets ``.1``,
    ``.2`` ... skipping any suffix that another header name already uses, so no rename can
    collide with a name further right.
    """
    texts = [cell_text(n) for n in names]
    bases = [t if t is not None and t.strip() else f"column_{i + 1}"
             for i, t in enumerate(texts)]
    taken = set(bases)
    out: list[str] = []
    used: set[str] = set()
    for base in bases:
        candidate, n = base, 0
        while candidate in used or (n and candidate in taken):
            n += 1
            candidate = f"{base}.{n}"
        used.add(candidate)
        out.append(candidate)
    return out


def renamed_note(header: Sequence[object], columns: Sequence[str], where: str = "") -> list[str]:
    """The note naming header cells that repeat a name to their left, and what they are read as
    (`columns` from unique_names(header)); [] when no name repeats."""
    renamed = [f"{text!r} (column {i + 1}) as {name!r}" for i, (text, name)
               in enumerate(zip(map(cell_text, header), columns))
               if text is not None and text.strip() and text != name]
    if not renamed:
        return []
    return [f"{where}columns named alike, kept apart: {', '.join(renamed[:4])}"
            f"{', ...' if len(renamed) > 4 else ''}; pass --text-column NAME (or "
            f"--label-column NAME) to choose one"]


def cell_text(value: object) -> str | None:
    """A spreadsheet/JSON/Parquet cell as the text a person would see (None when empty)."""
    if value is None:
        return None
    if isinstance(value, str):
        return value
    if isinstance(value, bool | np.bool_):
        return "TRUE" if value else "FALSE"
    if isinstance(value, float | np.floating):
        value = float(value)
        if math.isnan(value):
            return None
        if math.isfinite(value) and value.is_integer() and abs(value) < 1e15:
            return str(int(value))
        return repr(value)
    if isinstance(value, dt.datetime):
        return value.date().isoformat() if value.time() == dt.time() else value.isoformat(" ")
    if isinstance(value, dt.date | dt.time):
        return value.isoformat()
    if isinstance(value, bytes):
        return value.decode("utf-8", errors="replace")
    if isinstance(value, list | tuple | dict | np.ndarray):  # Parquet lists and structs
        return json.dumps(value.tolist() if isinstance(value, np.ndarray) else value,
                          ensure_ascii=False, default=str)
    return str(value)


def human_bytes(size: float) -> str:
    """1.2 GB style (decimal units, as file managers show)."""
    for unit in ("bytes", "KB", "MB", "GB"):
        if size < 1000 or unit == "GB":
            return f"{size:.0f} {unit}" if unit == "bytes" else f"{size:.1f} {unit}"
        size /= 1000
    return f"{size:.1f} GB"


def is_gzip(path: Path) -> bool:
    """True for a gzip-compressed input (``reviews.csv.gz``)."""
    return path.name.lower().endswith(".gz")


def open_binary(path: Path) -> IO[bytes]:
    """The file's bytes, decompressed when it is gzip."""
    return gzip.open(path, "rb") if is_gzip(path) else open(path, "rb")


def open_text(path: Path, encoding: str, *, newline: str | None = None) -> IO[str]:
    """The file as text in ``encoding`` (undecodable bytes become U+FFFD), decompressed if gzip."""
    return io.TextIOWrapper(open_binary(path), encoding=encoding, errors="replace",
                            newline=newline)
