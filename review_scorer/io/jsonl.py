"""JSON Lines: one JSON object per line, streamed in chunks; the first chunk's keys are the columns."""

from __future__ import annotations

import json
from collections.abc import Generator
from pathlib import Path

import pandas as pd

from review_scorer.errors import InputError
from review_scorer.io.common import Block, Source, cell_text, one_line


def looks_like_jsonl(sample: str) -> bool:
    """True when the first non-blank character is '{' (JSON Lines saved under another name)."""
    stripped = sample.lstrip("\ufeff \t\r\n")
    return stripped.startswith("{")


def open_jsonl(path: Path, chunk_rows: int, encoding: str, fallback: bool) -> Source:
    """Open a JSON Lines file whose encoding is known; records are read lazily."""
    notes: list[str] = []
    return Source("jsonl", _iter_blocks(path, chunk_rows, encoding, notes), encoding=encoding,
                  encoding_fallback=fallback, notes=notes)


def _cell(value: object) -> str | None:
    if isinstance(value, dict | list):
        return json.dumps(value, ensure_ascii=False)
    return cell_text(value)


def _records(path: Path, encoding: str) -> Generator[tuple[int, dict], None, None]:
    """(line number, object) for every non-blank line."""
    try:
        with open(path, encoding=encoding, errors="strict", newline="") as fh:
            for number, line in enumerate(fh, 1):
                if not line.strip():
                    continue
                try:
                    record = json.loads(line)
                except ValueError as exc:
                    raise InputError(f"{path}: line {number} is not valid JSON ({one_line(exc)}); "
                                     f"each line must hold one JSON object") from exc
                if not isinstance(record, dict):
                    raise InputError(f"{path}: line {number} holds a JSON "
                                     f"{type(record).__name__}, not an object; each line must hold "
                                     f"one object such as {{\"review\": \"...\"}}")
                yield number, record
    except (OSError, UnicodeError) as exc:
        raise InputError(f"{path}: cannot read ({one_line(exc)})") from exc


def _iter_blocks(path: Path, chunk_rows: int, encoding: str,
                 notes: list[str]) -> Generator[Block, None, None]:
    """Blocks of chunk_rows records; keys first seen after the first chunk are reported once."""
    columns: list[str] | None = None
    known: set[str] = set()
    batch: list[dict] = []
    unseen: dict[str, int] = {}
    yielded = False
    for line, record in _records(path, encoding):
        if columns is not None:
            for key in record:
                if key not in known and key not in unseen:
                    unseen[key] = line
        batch.append(record)
        if len(batch) >= chunk_rows:
            if columns is None:
                columns = _columns(batch)
                known = set(columns)
            yield _block(batch, columns)
            batch, yielded = [], True
    if columns is None:
        columns = _columns(batch)
    if batch or not yielded:
        yield _block(batch, columns)
    if unseen:
        notes.append("keys that first appear after the first chunk are not columns and were "
                     "left out: " + ", ".join(f"'{k}' (line {n})" for k, n in unseen.items()))


def _columns(records: list[dict]) -> list[str]:
    columns: dict[str, None] = {}
    for record in records:
        for key in record:
            columns.setdefault(str(key), None)
    return list(columns)


def _block(records: list[dict], columns: list[str]) -> Block:
    rows = [[_cell(r.get(c)) for c in columns] for r in records]
    return Block(pd.DataFrame(rows, columns=columns, dtype=object))
