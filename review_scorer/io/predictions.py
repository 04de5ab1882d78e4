"""Streaming prediction files (CSV, JSONL, XLSX, Parquet) written safely, safe to open in Excel."""

from __future__ import annotations

import contextlib
import datetime as _dt
import json
import logging
import math
import os
import re
from pathlib import Path
from typing import IO, Any

import numpy as np
import pandas as pd

from review_scorer.errors import OutputError
from review_scorer.io.publish import (
    check_output_target,
    create_temp,
    directory_error,
    fsync_file,
    publish_temp,
    remove_quietly,
    write_error,
)

logger = logging.getLogger(__name__)

PREDICTION_FORMATS = ("csv", "jsonl", "xlsx", "parquet")
PREDICTION_SUFFIX = {
    "csv": ".predictions.csv",
    "jsonl": ".predictions.jsonl",
    "xlsx": ".predictions.xlsx",
    "parquet": ".predictions.parquet",
}
XLSX_MAX_COLUMNS = 16_384  # Excel's column limit (XFD)

XLSX_CELL_CHARS = 32_767  # Excel's limit for one cell, counted in UTF-16 code units
XLSX_MAX_DATA_ROWS = 1_048_575  # 1,048,576 sheet rows minus the header
# Leading characters that make a spreadsheet treat typed-in text as a formula (OWASP list).
FORMULA_TRIGGERS = ("=", "+", "-", "@", "\t", "\r")
# openpyxl's ILLEGAL_CHARACTERS_RE (C0 controls except tab, LF, CR) plus code points that
# cannot appear in XML at all: lone surrogates and the non-characters U+FFFE / U+FFFF.
_XLSX_ILLEGAL_RE = re.compile(r"[\000-\010\013\014\016-\037\ud800-\udfff\ufffe\uffff]")
# Strings openpyxl would store as error cells instead of text.
_XLSX_ERROR_CODES = frozenset(("#NULL!", "#DIV/0!", "#VALUE!", "#REF!", "#NAME?", "#NUM!", "#N/A"))
# The explanation column scoring adds (score.TOP_WORDS_COLUMN; input columns of that name are
# renamed before they get here): text in CSV/XLSX, a list of {word, weight} in JSONL/Parquet.
TOP_WORDS_COLUMN = "top_words"


def _top_words_type() -> Any:
    import pyarrow as pa

    return pa.list_(pa.struct([("word", pa.string()), ("weight", pa.float64())]))


def format_from_name(fmt: str) -> str:
    """Return the canonical prediction format ("csv", "jsonl", "xlsx") for a name or file name.

    Accepts "csv", "CSV", ".csv" or a path such as "out.predictions.csv".
    """
    name = str(fmt).strip().lower()
    for candidate in PREDICTION_FORMATS:
        if name in (candidate, "." + candidate) or name.endswith("." + candidate):
            return candidate
    raise OutputError(
        f"unknown prediction format '{fmt}'; use one of {', '.join(PREDICTION_FORMATS)}"
    )


def _check_xlsx_width(path: Path, columns: int) -> None:
    if columns > XLSX_MAX_COLUMNS:
        raise OutputError(
            f"{path}: the predictions have {columns:,} columns but an .xlsx sheet holds at most "
            f"{XLSX_MAX_COLUMNS:,}; use --format csv, jsonl or parquet"
        )


def _neutralise_formulas(frame: pd.DataFrame) -> pd.DataFrame:
    """Text a spreadsheet would run as a formula gets a leading apostrophe (--excel-safe-csv),
    in the header as in the cells."""
    out = frame.rename(columns=lambda c: "'" + c if isinstance(c, str)
                       and c.startswith(FORMULA_TRIGGERS) else c)
    for column in out.columns:
        if pd.api.types.is_object_dtype(out[column]) or pd.api.types.is_string_dtype(out[column]):
            values = out[column]
            risky = values.map(lambda v: isinstance(v, str) and v.startswith(FORMULA_TRIGGERS))
            if risky.any():
                out.loc[risky, column] = "'" + values[risky]
    return out


def _json_value(value: Any) -> Any:
    """Turn a cell value into something json.dumps writes faithfully (NaN and NA -> null);
    lists and objects (JSON or Parquet input) stay lists and objects."""
    if value is None or isinstance(value, (str, bool, int)):
        return value
    if isinstance(value, (list, tuple, dict)):
        return value  # nested items go through _json_default
    if isinstance(value, np.ndarray):
        return value.tolist()
    if isinstance(value, float):
        return value if math.isfinite(value) else None
    if isinstance(value, np.generic):
        return _json_value(value.item())
    if value is pd.NA or value is pd.NaT:
        return None
    if isinstance(value, (_dt.datetime, _dt.date, _dt.time)):
        return value.isoformat()
    if np.ndim(value) == 0 and pd.isna(value):
        return None
    return str(value)


def _json_default(value: Any) -> Any:
    """json.dumps's fallback for items inside lists and objects (numpy, dates, decimals)."""
    converted = _json_value(value)
    return converted if converted is not value else str(value)


def word_weights(text: Any) -> list[dict[str, Any]]:
    """A ``top_words`` cell ("great +0.41; boring -0.33") as [{"word", "weight"}, ...].

    Words never hold spaces or semicolons (explain.format_top_terms), so the text splits back
    exactly; JSONL and Parquet keep the list, CSV and XLSX the text.
    """
    if not isinstance(text, str) or not text.strip():
        return []
    pairs = []
    for entry in text.split("; "):
        word, _, weight = entry.rpartition(" ")
        pairs.append({"word": word, "weight": float(weight)})
    return pairs


def _utf16_length(text: str) -> int:
    return len(text.encode("utf-16-le")) // 2


def _truncate_for_xlsx(text: str) -> str:
    # Cut in UTF-16 code units, as Excel counts; "ignore" drops a pair split at the end.
    encoded = text.encode("utf-16-le")[: 2 * XLSX_CELL_CHARS]
    return encoded.decode("utf-16-le", errors="ignore")


def _arrow_column(path: Path, name: str, column: pd.Series, schema: Any, index: int) -> Any:
    """One column as an Arrow array: the type the input had where Arrow can hold it (Parquet
    types kept, JSON numbers/booleans/lists inferred), else text; later chunks take the first
    chunk's type. ``top_words`` becomes list<struct<word, weight>>."""
    import pyarrow as pa

    if name == TOP_WORDS_COLUMN:
        return pa.array(column.map(word_weights).tolist(), type=_top_words_type())
    if schema is not None:
        target = schema.field(index).type
        try:
            return pa.array(column, type=target, from_pandas=True)
        except (pa.ArrowException, TypeError, ValueError, OverflowError):
            if not pa.types.is_string(target):
                raise OutputError(
                    f"{path}: column '{name}' changes type part-way through the file, which a "
                    f"Parquet column cannot; use --format jsonl or csv") from None
            return pa.array(column.map(_cell_as_text), type=pa.string())
    try:
        array = pa.array(column, from_pandas=True)
    except (pa.ArrowException, TypeError, ValueError, OverflowError):
        array = None  # mixed types (a JSON key holding numbers and text): keep it as text
    if array is None or pa.types.is_null(array.type):
        return pa.array(column.map(_cell_as_text), type=pa.string())
    if pa.types.is_large_string(array.type):
        return array.cast(pa.string())
    return array


def _cell_as_text(value: Any) -> str | None:
    value = _json_value(value)
    if value is None or isinstance(value, str):
        return value
    if isinstance(value, bool):
        return "TRUE" if value else "FALSE"
    if isinstance(value, (list, dict)):
        return json.dumps(value, ensure_ascii=False, default=_json_default)
    return str(value)


class PredictionWriter:
    """Stream prediction chunks into a csv, jsonl or xlsx file that appears only on commit().

    Use it as a context manager: rows go to a hidden temp file beside `path`; `commit()` renames
    it into place. Leaving the block without commit, or through an exception (KeyboardInterrupt
    included), deletes the temp file and leaves any existing `path` untouched.

    - csv: UTF-8 without BOM, CRLF line ends, header once, minimal quoting; values are written
      raw so the file round-trips through pandas.read_csv(dtype=str, keep_default_na=False). Formula
      neutralising would change the data, so spreadsheet safety is the xlsx writer's job.
    - jsonl: one JSON object per line, UTF-8 (ensure_ascii=False), NaN/NA as null.
    - xlsx: streamed with openpyxl's write-only mode (its row buffer lives in the system temp
      folder until commit). Numbers stay numbers. Text that a spreadsheet would run as a
      formula (leading =, +, -, @, tab or CR) or read as an error code is stored as a text cell
      with Excel's quote prefix, so it shows exactly as written and is never evaluated;
      control characters XLSX cannot hold are removed and cells over 32,767 characters are
      cut. `notes` reports how many cells were changed. XML stores line breaks as LF, so a
      CR or CRLF inside a cell reads back as LF.

    Text that cannot be encoded as UTF-8 (lone surrogates) is replaced by "?" in csv/jsonl.
    """

    def __init__(
        self,
        path: str | os.PathLike,
        fmt: str,
        *,
        overwrite: bool = False,
        sheet_name: str = "predictions",
        excel_safe: bool = False,
        expected_columns: int | None = None,
    ) -> None:
        """Check the target and create the temp file now, so problems show before any work."""
        self.path = Path(path)
        self.fmt = format_from_name(fmt)
        self.overwrite = overwrite
        self.excel_safe = excel_safe
        if self.fmt == "xlsx" and expected_columns is not None:
            _check_xlsx_width(self.path, expected_columns)
        self._parquet: Any = None
        self.rows_written = 0
        self.columns: list[Any] | None = None
        self.truncated_cells = 0
        self.first_truncated: int | None = None  # the predictions row of the first cut cell
        self._xlsx_row = 0
        self.cleaned_cells = 0
        self.neutralised_cells = 0
        self._state = "open"
        self._handle: IO[str] | None = None
        self._workbook: Any = None
        self._sheet: Any = None
        check_output_target(self.path, overwrite)
        try:
            fd, self._temp = create_temp(self.path)
        except OSError as exc:
            raise directory_error(self.path, exc) from exc
        try:
            if self.fmt == "parquet":
                os.close(fd)
            elif self.fmt == "xlsx":
                os.close(fd)
                from openpyxl import Workbook  # imported here to keep the module cheap to load

                self._workbook = Workbook(write_only=True)
                self._sheet = self._workbook.create_sheet(sheet_name)
            else:
                self._handle = os.fdopen(fd, "w", encoding="utf-8", errors="replace", newline="")
        except BaseException:
            remove_quietly(self._temp)
            raise

    def __enter__(self) -> PredictionWriter:
        return self

    def __exit__(self, exc_type: Any, exc: Any, tb: Any) -> bool:
        if self._state == "open":
            self.abort()
        return False

    @property
    def committed(self) -> bool:
        """True once commit() has put the file in place."""
        return self._state == "committed"

    @property
    def notes(self) -> list[str]:
        """One-line notes about cells that had to be changed to fit the format (xlsx only)."""
        name = self.path.name
        notes = []
        if self.truncated_cells:
            notes.append(
                f"{name}: {self.truncated_cells} cell(s) cut to {XLSX_CELL_CHARS:,} characters, "
                "the most one Excel cell holds"
                + (f" (the first in data row {self.first_truncated:,})" if self.first_truncated else "")
                + "; --format csv, jsonl or parquet keeps the whole text"
            )
        if self.cleaned_cells:
            notes.append(
                f"{name}: control characters removed from {self.cleaned_cells} cell(s) "
                "because .xlsx cannot store them"
            )
        return notes

    def _require_open(self) -> None:
        if self._state != "open":
            raise ValueError(f"prediction writer for {self.path} is already {self._state}")

    def _align_columns(self, frame: pd.DataFrame) -> pd.DataFrame:
        columns = list(frame.columns)
        if self.columns is None:
            if len(set(columns)) != len(columns):
                raise ValueError(f"duplicate column names in predictions: {columns}")
            if self.fmt == "xlsx":
                _check_xlsx_width(self.path, len(columns))
            self.columns = columns
            return frame
        if columns == self.columns:
            return frame
        if set(columns) != set(self.columns) or len(columns) != len(self.columns):
            raise ValueError(
                f"chunk columns {columns} differ from the first chunk's {self.columns}"
            )
        return frame[self.columns]

    def write(self, frame: pd.DataFrame) -> None:
        """Append a chunk of rows; the first chunk fixes the columns and their order."""
        self._require_open()
        if not isinstance(frame, pd.DataFrame):
            raise TypeError(f"expected a pandas DataFrame, got {type(frame).__name__}")
        first = self.columns is None
        frame = self._align_columns(frame)
        if self.fmt == "xlsx" and self.rows_written + len(frame) > XLSX_MAX_DATA_ROWS:
            raise OutputError(
                f"{self.path}: an .xlsx sheet holds at most {XLSX_MAX_DATA_ROWS:,} rows; "
                "choose the csv or jsonl format for this file"
            )
        try:
            if self.fmt == "csv":
                self._write_csv(frame, first)
            elif self.fmt == "parquet":
                self._write_parquet(frame)
            elif self.fmt == "jsonl":
                self._write_jsonl(frame)
            else:
                self._write_xlsx(frame, first)
        except OSError as exc:
            self.abort()
            raise write_error(self.path, exc) from exc
        self.rows_written += len(frame)

    def _write_parquet(self, frame: pd.DataFrame) -> None:
        import pyarrow as pa
        import pyarrow.parquet as pq

        schema = self._parquet.schema if self._parquet is not None else None
        arrays = [_arrow_column(self.path, str(name), frame[name], schema, i)
                  for i, name in enumerate(frame.columns)]
        table = pa.Table.from_arrays(arrays, names=[str(c) for c in frame.columns])
        if self._parquet is None:
            self._parquet = pq.ParquetWriter(self._temp, table.schema)
        self._parquet.write_table(table)

    def _write_csv(self, frame: pd.DataFrame, first: bool) -> None:
        assert self._handle is not None
        if self.excel_safe:
            frame = _neutralise_formulas(frame)
        # CRLF (RFC 4180) because the csv module quotes a field only for characters of the line
        # terminator: with "\n" alone, a review holding a bare "\r" would go out unquoted.
        frame.to_csv(self._handle, header=first, index=False, lineterminator="\r\n")

    def _write_jsonl(self, frame: pd.DataFrame) -> None:
        assert self._handle is not None
        keys = [str(column) for column in frame.columns]
        if TOP_WORDS_COLUMN in frame.columns:
            frame = frame.assign(**{TOP_WORDS_COLUMN: frame[TOP_WORDS_COLUMN].map(word_weights)})
        lines = [
            json.dumps(
                {key: _json_value(value) for key, value in zip(keys, values, strict=True)},
                ensure_ascii=False,
                allow_nan=False,
                default=_json_default,
            )
            for values in frame.itertuples(index=False, name=None)
        ]
        if lines:
            self._handle.write("\n".join(lines) + "\n")

    def _write_xlsx(self, frame: pd.DataFrame, first: bool) -> None:
        from openpyxl.styles import Font

        if first:
            header = []
            for column in frame.columns:
                cell = self._text_cell(self._clean_xlsx_text(str(column)))
                cell.font = Font(bold=True)
                header.append(cell)
            self._sheet.append(header)
        for values in frame.itertuples(index=False, name=None):
            self._xlsx_row += 1
            self._sheet.append([self._xlsx_value(value) for value in values])

    def _text_cell(self, text: str, *, quote_prefix: bool = False) -> Any:
        from openpyxl.cell import WriteOnlyCell

        cell = WriteOnlyCell(self._sheet, value=text)
        # openpyxl turns "=..." into a formula and "#N/A" into an error; force plain text.
        cell.data_type = "s"
        if quote_prefix:
            cell.quotePrefix = True
        return cell

    def _clean_xlsx_text(self, text: str) -> str:
        cleaned = _XLSX_ILLEGAL_RE.sub("", text)
        if cleaned != text:
            self.cleaned_cells += 1
        if len(cleaned) * 2 > XLSX_CELL_CHARS and _utf16_length(cleaned) > XLSX_CELL_CHARS:
            cleaned = _truncate_for_xlsx(cleaned)
            self.truncated_cells += 1
            if self.first_truncated is None and self._xlsx_row:
                self.first_truncated = self._xlsx_row
        return cleaned

    def _xlsx_value(self, value: Any) -> Any:
        if value is None or isinstance(value, (bool, int)):
            return value
        if isinstance(value, float):
            return value if math.isfinite(value) else None
        if isinstance(value, str):
            text = self._clean_xlsx_text(value)
            if text.startswith(FORMULA_TRIGGERS) or text in _XLSX_ERROR_CODES:
                self.neutralised_cells += 1
                return self._text_cell(text, quote_prefix=True)
            return text
        if isinstance(value, np.generic):
            return self._xlsx_value(value.item())
        if value is pd.NA or value is pd.NaT:
            return None
        if isinstance(value, _dt.datetime):
            # Excel has no time zones: keep aware timestamps as ISO text
            return value.isoformat() if value.tzinfo is not None else value
        if isinstance(value, (_dt.date, _dt.time)):
            return value
        if np.ndim(value) == 0 and pd.isna(value):
            return None
        return self._xlsx_value(str(value))

    def finish(self) -> Path:
        """Complete and sync the temp file without publishing it; returns the temp path.

        The caller publishes it (outputs.publish_together) or calls abort().
        """
        self._require_open()
        try:
            if self._handle is not None:
                self._handle.flush()
                os.fsync(self._handle.fileno())
                self._handle.close()
                self._handle = None
            else:
                if self._parquet is not None:
                    self._parquet.close()
                    self._parquet = None
                elif self._workbook is not None:
                    self._workbook.save(self._temp)
                fsync_file(self._temp)
        except BaseException as exc:
            self.abort()
            if isinstance(exc, OSError):
                raise write_error(self.path, exc) from exc
            raise
        self._state = "finished"
        return self._temp

    def commit(self) -> Path:
        """Finish the file and move it onto `path`; returns the path. Call once."""
        temp = self.finish()
        try:
            publish_temp(temp, self.path, self.overwrite)
        except BaseException as exc:
            self.abort()
            if isinstance(exc, OSError):
                raise write_error(self.path, exc) from exc
            raise
        self._state = "committed"
        return self.path

    def abort(self) -> None:
        """Drop everything written so far: close and delete the temp file. Safe to repeat."""
        if self._state not in ("open", "finished"):
            return
        self._state = "aborted"
        if self._parquet is not None:
            with contextlib.suppress(Exception):
                self._parquet.close()
            self._parquet = None
        if self._handle is not None:
            with contextlib.suppress(OSError):
                self._handle.close()
            self._handle = None
        if self._sheet is not None:
            self._discard_sheet_buffer()
        remove_quietly(self._temp)

    def _discard_sheet_buffer(self) -> None:
        # openpyxl keeps streamed rows in its own temp file until save(); it deletes that only
        # at interpreter exit, so remove it now. These are private attributes: best effort.
        sheet = self._sheet
        try:
            rows = getattr(sheet, "_rows", None)
            if rows is not None:
                rows.close()
            writer = getattr(sheet, "_writer", None)
            if writer is not None:
                writer.close()
                if isinstance(writer.out, str):
                    writer.cleanup()
        except Exception as exc:  # cleanup must not hide the error that caused it
            logger.debug("could not discard openpyxl buffer: %s", exc)
