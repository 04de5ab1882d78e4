"""Safe output writing: atomic files, output folders and streaming prediction files."""

from __future__ import annotations

import contextlib
import datetime as _dt
import json
import logging
import math
import os
import re
import secrets
from pathlib import Path
from typing import IO, Any

import numpy as np
import pandas as pd

from review_scorer.errors import OutputError

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
_TEMP_ATTEMPTS = 20
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


def _exists_error(path: Path) -> OutputError:
    return OutputError(f"{path} already exists; pass --overwrite to replace it")


def _parent_of(path: Path) -> Path:
    return path.parent if str(path.parent) else Path(".")


def _directory_error(path: Path, exc: OSError) -> OutputError:
    """Explain why no file could be created next to `path`, naming the directory."""
    parent = _parent_of(path)
    if isinstance(exc, FileNotFoundError):
        reason = f"directory {parent} does not exist; create it or choose another output folder"
    elif isinstance(exc, NotADirectoryError):
        reason = f"{parent} is not a directory; choose another output folder"
    elif isinstance(exc, PermissionError):
        reason = f"no permission to write in directory {parent}; choose another output folder"
    else:
        reason = f"directory {parent}: {exc.strerror or exc}; choose another output folder"
    return OutputError(f"cannot write {path}: {reason}")


def _write_error(path: Path, exc: OSError) -> OutputError:
    detail = exc.strerror or str(exc) or type(exc).__name__
    return OutputError(f"cannot write {path}: {detail}; check free space and permissions")


def check_output_target(path: Path, overwrite: bool) -> None:
    """Refuse, before any work, an output path that is a folder or exists without overwrite."""
    if path.is_dir():
        raise OutputError(f"{path} is a directory; move it away or choose another --out-dir")
    if not overwrite and (path.exists() or path.is_symlink()):
        raise _exists_error(path)


_check_target = check_output_target


def _create_temp(path: Path) -> tuple[int, Path]:
    """Create an empty hidden temp file beside `path`; return its descriptor and path.

    os.open with mode 0o666 lets the umask decide the final permissions, as for any new file
    (tempfile.mkstemp would leave the published file readable by its owner only).
    """
    parent = _parent_of(path)
    flags = os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_BINARY", 0)
    for _ in range(_TEMP_ATTEMPTS):
        candidate = parent / f".{path.name}.{secrets.token_hex(4)}.tmp"
        try:
            return os.open(candidate, flags, 0o666), candidate
        except FileExistsError:
            continue
    raise FileExistsError(f"could not find a free temporary name in {parent}")


def _remove_quietly(path: Path | None) -> None:
    if path is None:
        return
    try:
        os.unlink(path)
    except FileNotFoundError:
        pass
    except OSError as exc:  # best effort: the original error matters more
        logger.warning("could not remove temporary file %s: %s", path, exc)


def _fsync_directory(directory: Path) -> None:
    # Makes the rename itself durable; not possible on every platform, so best effort.
    try:
        fd = os.open(directory, os.O_RDONLY)
    except OSError:
        return
    try:
        with contextlib.suppress(OSError):
            os.fsync(fd)
    finally:
        os.close(fd)


def _publish(temp: Path, path: Path, overwrite: bool) -> None:
    """Move the finished temp file onto `path`, refusing to clobber it unless `overwrite`."""
    if overwrite:
        os.replace(temp, path)
    else:
        # A hard link fails if the target appeared since the start, so a file that someone
        # else created meanwhile is never replaced silently.
        try:
            os.link(temp, path)
        except FileExistsError:
            raise _exists_error(path) from None
        except OSError:
            # Filesystems without hard links: check, then rename.
            if path.exists() or path.is_symlink():
                raise _exists_error(path) from None
            os.replace(temp, path)
        else:
            os.unlink(temp)
    _fsync_directory(_parent_of(path))


def write_temp_beside(path: Path, data: bytes) -> Path:
    """Write data, synced, to a new hidden temp file in path's folder; return the temp path.

    The caller publishes it (publish_together) or removes it.
    """
    try:
        fd, temp = _create_temp(path)
    except OSError as exc:
        raise _directory_error(path, exc) from exc
    try:
        with os.fdopen(fd, "wb") as handle:
            handle.write(data)
            handle.flush()
            os.fsync(handle.fileno())
    except BaseException as exc:
        _remove_quietly(temp)
        if isinstance(exc, OSError):
            raise _write_error(path, exc) from exc
        raise
    return temp


def publish_together(pairs: list[tuple[Path, Path]], *, overwrite: bool) -> None:
    """Move finished temp files onto their targets as one step: all of them, or none.

    Existing targets (with overwrite) are first set aside under hidden names; if any move fails,
    or the run is interrupted meanwhile, the new files are removed and the old ones put back,
    so a failed run never loses what was there before. Temp files left unpublished are removed.
    """
    published: list[tuple[Path, Path | None]] = []  # (target, its previous file set aside)
    current: list[Path | None] = [None]  # the backup of the target being published right now
    try:
        for temp, target in pairs:
            check_output_target(target, overwrite)
            if overwrite and (target.exists() or target.is_symlink()):
                current[0] = _set_aside(target)
            try:
                _publish(temp, target, overwrite=False)
            except BaseException:
                if current[0] is not None and not (target.exists() or target.is_symlink()):
                    os.rename(current[0], target)
                current[0] = None
                raise
            published.append((target, current[0]))
            current[0] = None
    except BaseException as exc:
        for target, backup in reversed(published):
            _restore(target, backup)
        for temp, _ in pairs:
            _remove_quietly(temp)
        if isinstance(exc, OSError):
            raise _write_error(pairs[len(published)][1], exc) from exc
        raise
    for _, backup in published:
        _remove_quietly(backup)


def _set_aside(target: Path) -> Path:
    parent = _parent_of(target)
    for _ in range(_TEMP_ATTEMPTS):
        backup = parent / f".{target.name}.{secrets.token_hex(4)}.old"
        if not (backup.exists() or backup.is_symlink()):
            os.rename(target, backup)
            return backup
    raise FileExistsError(f"could not find a free backup name in {parent}")


def _restore(target: Path, backup: Path | None) -> None:
    """Undo one publish step: remove the new file and put the old one back."""
    with contextlib.suppress(OSError):
        os.unlink(target)
    if backup is not None:
        with contextlib.suppress(OSError):
            os.rename(backup, target)


def atomic_write_bytes(path: str | os.PathLike, data: bytes, *, overwrite: bool = False) -> Path:
    """Write `data` to `path` through a temp file in the same folder, then rename it into place.

    Readers see either the old file or the complete new one. Raises OutputError when the file
    exists and `overwrite` is false, or when the folder is missing or unwritable. The temp file
    is removed on any failure, KeyboardInterrupt included. Returns the path written.
    """
    target = Path(path)
    check_output_target(target, overwrite)
    temp = write_temp_beside(target, data)
    try:
        _publish(temp, target, overwrite)  # one file: os.replace swaps it atomically
    except BaseException as exc:
        _remove_quietly(temp)
        if isinstance(exc, OSError):
            raise _write_error(target, exc) from exc
        raise
    return target


def ensure_output_dir(path: str | os.PathLike) -> Path:
    """Create the output folder (with parents) if needed and check that files can be made in it.

    Raises OutputError when it cannot be created, is not a folder, or is not writable.
    """
    directory = Path(path)
    if directory.is_symlink() and not directory.exists():
        raise OutputError(f"{directory} is a symbolic link to a missing folder "
                          f"({os.readlink(directory)}); fix the link or choose another output folder")
    if directory.exists() and not directory.is_dir():
        raise OutputError(
            f"{directory} exists and is not a directory; choose another output folder"
        )
    try:
        directory.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        detail = exc.strerror or str(exc)
        raise OutputError(
            f"cannot create output folder {directory}: {detail}; choose another output folder"
        ) from exc
    try:
        fd, probe = _create_temp(directory / "write-check")
    except OSError as exc:
        detail = exc.strerror or str(exc)
        raise OutputError(
            f"output folder {directory} is not writable ({detail}); choose another output folder"
        ) from exc
    os.close(fd)
    _remove_quietly(probe)
    return directory


def _fsync_file(path: Path) -> None:
    fd = os.open(path, os.O_RDWR)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def _check_xlsx_width(path: Path, columns: int) -> None:
    if columns > XLSX_MAX_COLUMNS:
        raise OutputError(
            f"{path}: the predictions have {columns:,} columns but an .xlsx sheet holds at most "
            f"{XLSX_MAX_COLUMNS:,}; use --format csv, jsonl or parquet"
        )


def _neutralise_formulas(frame: pd.DataFrame) -> pd.DataFrame:
    """Text a spreadsheet would run as a formula gets a leading apostrophe (--excel-safe-csv)."""
    out = frame.copy()
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
        self.cleaned_cells = 0
        self.neutralised_cells = 0
        self._state = "open"
        self._handle: IO[str] | None = None
        self._workbook: Any = None
        self._sheet: Any = None
        _check_target(self.path, overwrite)
        try:
            fd, self._temp = _create_temp(self.path)
        except OSError as exc:
            raise _directory_error(self.path, exc) from exc
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
            _remove_quietly(self._temp)
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
            raise _write_error(self.path, exc) from exc
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
                _fsync_file(self._temp)
        except BaseException as exc:
            self.abort()
            if isinstance(exc, OSError):
                raise _write_error(self.path, exc) from exc
            raise
        self._state = "finished"
        return self._temp

    def commit(self) -> Path:
        """Finish the file and move it onto `path`; returns the path. Call once."""
        temp = self.finish()
        try:
            _publish(temp, self.path, self.overwrite)
        except BaseException as exc:
            self.abort()
            if isinstance(exc, OSError):
                raise _write_error(self.path, exc) from exc
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
        _remove_quietly(self._temp)

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
