"""Parquet files: record batches streamed with pyarrow, every value turned to text."""

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
    return Source("parquet", _iter_blocks(path, parquet, columns, chunk_rows))


def _iter_blocks(path: Path, parquet: Any, columns: list[str],
                 chunk_rows: int) -> Generator[Block, None, None]:
    yielded = False
    try:
        for batch in parquet.iter_batches(batch_size=chunk_rows):
            # By position: to_pydict() would merge columns that share a name.
            values = [[cell_text(v) for v in column.to_pylist()] for column in batch.columns]
            frame = pd.DataFrame(dict(zip(columns, values, strict=True)), columns=columns,
                                 dtype=object)
            yielded = True
            yield Block(frame)
    except GeneratorExit:
        raise
    except Exception as exc:  # a damaged page surfaces here, after the schema read fine
        raise InputError(f"{path}: cannot read the Parquet data ({one_line(exc)})") from exc
    finally:
        parquet.close()
    if not yielded:
        yield Block(pd.DataFrame({c: pd.Series(dtype=object) for c in columns}))
