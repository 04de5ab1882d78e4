"""JSON Lines and JSON arrays of objects, streamed in chunks, values keeping their JSON types."""

# Every key of any record is a column (a first pass over the file collects them, so a key that
# first appears late is not lost); each value keeps its JSON type beside its text.

from __future__ import annotations

import json
import re
from collections.abc import Generator, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Any

import pandas as pd

from review_scorer.errors import InputError
from review_scorer.io.common import Block, Source, cell_text, one_line, open_text, unique_names

_READ_CHARS = 1 << 20  # characters read at a time from a JSON array
_MAX_RECORD_CHARS = 256 << 20  # one object of a JSON array larger than this is refused
_LONE_ESCAPE = re.compile(r"\\u[dD][89a-fA-F]")  # a \uD800-\uDFFF escape (maybe half a pair)
_SURROGATE = re.compile(r"[\ud800-\udfff]")
_CHECK_DEPTH_FROM = 200  # brackets in a record from which its depth is checked
_TOO_DEEP = ("nests JSON objects or arrays deeper than can be read; flatten that record, or "
             "store the nested part as a string")


def looks_like_jsonl(sample: str) -> bool:
    """True when the first non-blank character is '{' (JSON Lines saved under another name)."""
    stripped = sample.lstrip("\ufeff \t\r\n")
    return stripped.startswith("{")


@dataclass
class _Counts:
    """Cells whose text held lone surrogates (\\ud83d without its pair), replaced by U+FFFD."""

    surrogates: int = 0


def open_jsonl(path: Path, chunk_rows: int, encoding: str, fallback: bool, *,
               array: bool = False) -> Source:
    """Open JSON Lines (or, with ``array``, one JSON array of objects) whose encoding is known;
    records are read lazily."""
    notes: list[str] = []

    def records() -> Iterator[tuple[int, dict, bool]]:
        return _array_records(path, encoding) if array else _line_records(path, encoding)

    return Source("json" if array else "jsonl", _iter_blocks(path, records, chunk_rows, notes),
                  encoding=encoding, encoding_fallback=fallback, notes=notes)


def _decoded(path: Path, where: str, text: str) -> Any:
    """One JSON value; InputError naming ``where`` (a line) when it is invalid or too deep."""
    try:
        value = json.loads(text)
    except RecursionError as exc:
        raise InputError(f"{path}: {where} {_TOO_DEEP}") from exc
    except ValueError as exc:
        raise InputError(f"{path}: {where} is not valid JSON ({one_line(exc)}); each record "
                         f"must be one JSON object") from exc
    return _writable(path, where, text, value)


def _writable(path: Path, where: str, text: str, value: Any) -> Any:
    """``value``, once sure a deeply nested one can also be written back as JSON text."""
    if text.count("[") + text.count("{") > _CHECK_DEPTH_FROM:
        try:
            json.dumps(value)
        except RecursionError as exc:
            raise InputError(f"{path}: {where} {_TOO_DEEP}") from exc
    return value


def _object(path: Path, where: str, record: Any) -> dict:
    if not isinstance(record, dict):
        raise InputError(f"{path}: {where} holds a JSON {type(record).__name__}, not an object; "
                         f"each record must be one object such as {{\"review\": \"...\"}}")
    return record


def _line_records(path: Path, encoding: str) -> Iterator[tuple[int, dict, bool]]:
    """(line number, object, may hold lone surrogates) for every non-blank line."""
    try:
        with open_text(path, encoding, newline="") as fh:
            for number, line in enumerate(fh, 1):
                if not line.strip():
                    continue
                where = f"line {number}"
                record = _object(path, where, _decoded(path, where, line))
                yield number, record, bool(_LONE_ESCAPE.search(line))
    except (OSError, EOFError, UnicodeError) as exc:
        raise InputError(f"{path}: cannot read ({one_line(exc)})") from exc


def _array_records(path: Path, encoding: str) -> Iterator[tuple[int, dict, bool]]:
    """(line number, object, may hold lone surrogates) for every element of a top-level JSON
    array, parsed one element at a time so memory holds one record, not the file."""
    try:
        with open_text(path, encoding, newline="") as fh:
            yield from _ArrayReader(path, fh).records()
    except (OSError, EOFError, UnicodeError) as exc:
        raise InputError(f"{path}: cannot read ({one_line(exc)})") from exc


class _ArrayReader:
    """A forward-only tokenizer for ``[ {...}, {...} ]`` that keeps only the unread text."""

    def __init__(self, path: Path, fh: IO[str]):
        self.path, self.fh = path, fh
        self.buffer, self.pos, self.eof = "", 0, False
        self.line = 1  # the line of buffer[pos]
        self.decoder = json.JSONDecoder()

    def _fill(self, size: int = _READ_CHARS) -> bool:
        """Drop the text already read and append up to ``size`` characters; False at the end."""
        if self.eof:
            return False
        self.buffer, self.pos = self.buffer[self.pos:], 0
        more = self.fh.read(size)
        self.eof = not more
        self.buffer += more
        return bool(more)

    def _next_char(self) -> str:
        """The next character that is not white space (consumed), or "" at the end."""
        while True:
            while self.pos < len(self.buffer) and self.buffer[self.pos] in " \t\r\n\ufeff":
                self.line += self.buffer[self.pos] == "\n"
                self.pos += 1
            if self.pos < len(self.buffer):
                self.pos += 1
                return self.buffer[self.pos - 1]
            if not self._fill():
                return ""

    def _fail(self, what: str) -> InputError:
        return InputError(f"{self.path}: line {self.line}: {what}; the file must hold one JSON "
                          f"array of objects")

    def records(self) -> Iterator[tuple[int, dict, bool]]:
        if self._next_char() != "[":
            raise InputError(f"{self.path}: not a JSON array of objects (it must start with '['); "
                             f"for one object per line use the .jsonl extension")
        char = self._next_char()
        while char != "]":
            self.pos -= 1  # give the value's first character back
            yield self._value()
            char = self._next_char()
            if char == ",":
                char = self._next_char()
                if char == "]":
                    raise self._fail("a ',' before the closing ']' (not valid JSON)")
            elif char != "]":
                raise self._fail("expected ',' or ']' between the array's objects")
        if self._next_char():
            raise self._fail("text after the array's closing ']'")

    def _value(self) -> tuple[int, dict, bool]:
        size = _READ_CHARS
        while True:
            try:
                value, end = self.decoder.raw_decode(self.buffer, self.pos)
            except RecursionError as exc:
                raise InputError(f"{self.path}: line {self.line} {_TOO_DEEP}") from exc
            except ValueError as exc:
                # Maybe only cut off by the end of the buffer: read more (doubling) and retry.
                if len(self.buffer) - self.pos > _MAX_RECORD_CHARS or not self._fill(size):
                    raise self._fail(f"not valid JSON ({one_line(exc)})") from exc
                size *= 2
                continue
            text, line = self.buffer[self.pos:end], self.line
            self.pos, self.line = end, line + text.count("\n")
            where = f"line {line}"
            return line, _object(self.path, where, _writable(self.path, where, text, value)), \
                bool(_LONE_ESCAPE.search(text))


def _iter_blocks(path: Path, records, chunk_rows: int,
                 notes: list[str]) -> Generator[Block, None, None]:
    """Blocks of chunk_rows records over every key any record holds. `records()` starts a pass
    over the file: the first pass only collects the keys (and finds a broken record before any
    output is written), the second reads the records into blocks."""
    counts = _Counts()
    seen: dict[str, None] = {}
    total = 0
    for _, record, suspect in records():
        total += 1
        for key in (_clean(record, _Counts()) if suspect else record):
            seen.setdefault(key, None)
    if not seen:  # nothing to read a review from: say so, not "cannot tell which column"
        what = "no records" if not total else f"{total:,} record(s), none with a key"
        raise InputError(f"{path}: holds {what}; each record must be one JSON object such as "
                         f"{{\"review\": \"...\"}}")
    keys = list(seen)
    columns = unique_names(keys)
    batch: list[dict] = []
    yielded = False
    for _, record, suspect in records():
        batch.append(_clean(record, counts) if suspect else record)
        if len(batch) >= chunk_rows:
            yield _block(batch, keys, columns)
            batch, yielded = [], True
    if batch or not yielded:
        yield _block(batch, keys, columns)
    if counts.surrogates:
        notes.append(f"{counts.surrogates} string(s) (values or keys) held a lone surrogate "
                     f"escape (such as \\ud83d, half of an emoji); each became U+FFFD (\ufffd)")


def _clean(value: Any, counts: _Counts) -> Any:
    """``value`` with every lone surrogate in its strings (keys too) replaced by U+FFFD."""
    if isinstance(value, str):
        cleaned, n = _SURROGATE.subn("\ufffd", value)
        counts.surrogates += bool(n)
        return cleaned
    if isinstance(value, dict):
        return {_clean(k, counts): _clean(v, counts) for k, v in value.items()}
    if isinstance(value, list):
        return [_clean(v, counts) for v in value]
    return value


def _cell(value: object) -> str | None:
    if isinstance(value, dict | list):
        return json.dumps(value, ensure_ascii=False)
    return cell_text(value)


def _block(records: list[dict], keys: list[str], columns: list[str]) -> Block:
    values = [[r.get(k) for k in keys] for r in records]
    text = [[_cell(v) for v in row] for row in values]
    return Block(pd.DataFrame(text, columns=columns, dtype=object),
                 values=pd.DataFrame(values, columns=columns, dtype=object))
