"""Parquet files: record batches streamed with pyarrow, as text and with their column types."""

from __future__ import annotations

from collections.abc import Generator
from pathlib import Path
from typing import Any

import pandas as pd

from review_scorer.errors import InputError
from review_scorer.io.common import Block, Source, cell_text, one_line, unique_names


def open_parquet(path: Path, chunk_rows: int) -> Source:
    """Open a Parquet file: its schema now, its rows lazily."""
    try:
        import pyarrow.parquet as pq

        parquet = pq.ParquetFile(path)
    except ImportError as exc:
        raise InputError(f"{path}: reading Parquet needs pyarrow; pip install pyarrow") from exc
    except Exception as exc:  # pyarrow raises ArrowInvalid, OSError, ... for a damaged file
        raise InputError(f"{path}: not a readable Parquet file ({one_line(exc)})") from exc
    columns = unique_names(parquet.schema_arrow.names)
    notes: list[str] = []
    return Source("parquet", _iter_blocks(path, parquet, columns, chunk_rows, notes), notes=notes)


def _iter_blocks(path: Path, parquet: Any, columns: list[str], chunk_rows: int,
                 notes: list[str]) -> Generator[Block, None, None]:
    yielded = False
    counts = [0]
    try:
        for batch in parquet.iter_batches(batch_size=chunk_rows):
            # By position: to_pydict() would merge columns that share a name.
            texts = [_column_text(column, counts) for column in batch.columns]
            frame = pd.DataFrame(dict(zip(columns, texts, strict=True)), columns=columns,
                                 dtype=object)
            values = pd.DataFrame(
                {name: _typed(column, text)
                 for name, column, text in zip(columns, batch.columns, texts, strict=True)},
                columns=columns)
            yielded = True
            yield Block(frame, values=values)
    except GeneratorExit:
        raise
    except Exception as exc:  # a damaged page surfaces here, after the schema read fine
        raise InputError(f"{path}: cannot read the Parquet data ({one_line(exc)})") from exc
    finally:
        parquet.close()
    if counts[0]:
        notes.append(f"{counts[0]} text cell(s) held bytes that are not UTF-8; each such byte "
                     f"became U+FFFD (\ufffd)")
    if not yielded:
        yield Block(pd.DataFrame({c: pd.Series(dtype=object) for c in columns}))


def _column_text(column: Any, counts: list[int]) -> list[str | None]:
    """A column's cells as text; a string cell that is not valid UTF-8 (Parquet does not
    check) is decoded with U+FFFD for each bad byte, and counted."""
    try:
        return [cell_text(v) for v in column.to_pylist()]
    except UnicodeDecodeError:
        import pyarrow as pa

        raw = column.view(pa.large_binary() if pa.types.is_large_string(column.type)
                          else pa.binary()).to_pylist()
        return [None if value is None else _decode(value, counts) for value in raw]


def _decode(value: bytes, counts: list[int]) -> str:
    try:
        return value.decode("utf-8")
    except UnicodeDecodeError:
        counts[0] += 1
        return value.decode("utf-8", errors="replace")


def _typed(column: Any, text: list[str | None]) -> pd.Series:
    """The column with its Parquet type, for outputs that keep types; a string column that is
    not valid UTF-8 is its (repaired) text."""
    import pyarrow as pa

    if pa.types.is_string(column.type) or pa.types.is_large_string(column.type):
        try:
            column.validate(full=True)
        except pa.ArrowInvalid:
            return pd.Series(text, dtype=object)
    return pd.Series(pd.arrays.ArrowExtensionArray(column))
