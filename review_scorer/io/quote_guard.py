"""The guard against a quote that is opened and never closed, fusing later records into one field;
and the test for tab-separated files whose quotes are text, not quoting."""

# pandas (like every lenient CSV reader) reads ``4,"I liked it,neg`` to the next quote character
# anywhere in the file and keeps going, so the records in between vanish into one field without
# an error. A valid multi-line review looks the same to it. The two differ in the raw text: a
# field that really ends closes its quote right before a delimiter or the end of the line, while
# a runaway quote "closes" at whatever quote character comes next: the opening quote of a later
# field or one inside a review, followed by text. Suspects (fields whose later lines parse as
# records of the file's shape) are re-read from the file and parsed strictly to tell them apart.

from __future__ import annotations

import contextlib
import csv
import io
import re
import sys
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import IO

import numpy as np
import pandas as pd

from review_scorer.errors import InputError
from review_scorer.io.columns import LABEL_SETS
from review_scorer.io.common import open_text, show

# The csv module refuses fields over 131,072 characters by default; pandas' C reader (which reads
# the file) has no such limit, so the guard and the sniffing take what the csv module can hold.
CSV_FIELD_LIMIT = min(sys.maxsize, 2**31 - 1)
_INT = re.compile(r"^[+-]?\d+$")
_SHORT = 24  # a column whose values are all this short is a code/label, not free text


@contextlib.contextmanager
def unlimited_fields() -> Iterator[None]:
    """csv readers inside the block accept fields as long as the file's own reader does."""
    old = csv.field_size_limit(CSV_FIELD_LIMIT)
    try:
        yield
    finally:
        csv.field_size_limit(old)


class RawLines:
    """The file's physical lines (ended by LF) on demand, moving forward only."""

    def __init__(self, path: Path, encoding: str):
        self.path, self.encoding = path, encoding
        self._fh: IO[str] | None = None
        self._consumed = 0  # lines read so far

    def get(self, first: int, last: int) -> str | None:
        """Lines first..last (1-based, line ends kept), or None once the file has passed them."""
        if first <= self._consumed:
            return None
        if self._fh is None:
            self._fh = open_text(self.path, self.encoding, newline="\n")
        while self._consumed < first - 1:
            if not self._fh.readline():
                return None
            self._consumed += 1
        lines = []
        while self._consumed < last:
            line = self._fh.readline()
            if not line:
                return None
            lines.append(line)
            self._consumed += 1
        return "".join(lines)

    def close(self) -> None:
        if self._fh is not None:
            self._fh.close()
            self._fh = None


def closes_cleanly(raw: str, delimiter: str, cell: str) -> bool | None:
    """True when ``raw`` is one record whose quotes all close before a delimiter or a line end,
    False when a quote "closes" in the middle of a field (a runaway quote), None when ``raw``
    is not the record that holds ``cell`` (line counts disagree: then nothing can be said)."""
    with unlimited_fields():
        try:
            loose = list(csv.reader(io.StringIO(raw, newline=""), delimiter=delimiter))
        except csv.Error:
            return None
        if len(loose) != 1 or cell not in loose[0]:
            return None
        try:
            list(csv.reader(io.StringIO(raw, newline=""), delimiter=delimiter, strict=True))
        except csv.Error:
            return False
    return True


class SwallowGuard:
    """Finds a quote that was opened and closed far later, fusing records into one field.

    A field with line breaks is a suspect when most of its later lines parse, on their own, as
    whole records of the file's shape (the same number of fields; numbers, whole numbers or
    short codes where the other records have them). A suspect is re-read from the file: a
    runaway quote when its record does not parse strictly. The line count per record is kept
    so that the message names the lines a user sees in an editor.
    """

    def __init__(self, path: Path, delimiter: str, width: int, first_line: int, encoding: str):
        self.path = path
        self.delimiter = delimiter
        self.width = width
        self.next_line = first_line
        self.next_row = 1
        self.sample: pd.DataFrame | None = None
        self.raw = RawLines(path, encoding)

    def close(self) -> None:
        self.raw.close()

    def check(self, frame: pd.DataFrame) -> None:
        """Raise InputError for a swallowing field in ``frame``; advance the line count."""
        breaks = np.zeros(len(frame), dtype=np.int64)
        suspect_columns = []
        for position, values in enumerate(_column_values(frame)):
            if "\n" in "".join(values):
                breaks += np.fromiter((v.count("\n") for v in values), np.int64, len(values))
                suspect_columns.append(position)
        if suspect_columns and self.width > 1:
            self._examine(frame, breaks, suspect_columns)
        elif len(frame):
            self.sample = frame.iloc[:50]  # clean records, to learn the shape of the next chunk
        self.next_line += int(len(frame) + breaks.sum())
        self.next_row += len(frame)

    def _kinds(self, frame: pd.DataFrame, breaks: np.ndarray) -> tuple[list[str | None],
                                                                        list[frozenset | None]]:
        """Each column's kind and label set (positive/negative/neutral, ...) in clean records."""
        clean = frame.iloc[np.flatnonzero(breaks == 0)[:200]]  # a sample is enough for the shape
        if len(clean) < 20 and self.sample is not None:
            clean = pd.concat([self.sample, clean])
        if len(clean) < 2:
            return [None] * self.width, [None] * self.width
        values = [clean.iloc[:, i].tolist() for i in range(self.width)]
        return [_kind(v) for v in values], [_label_set(v) for v in values]

    def _examine(self, frame: pd.DataFrame, breaks: np.ndarray, columns: list[int]) -> None:
        kinds, labels = self._kinds(frame, breaks)
        starts = self.next_line + np.concatenate(([0], np.cumsum(1 + breaks)[:-1]))
        for i in np.flatnonzero(breaks):
            first, last = int(starts[i]), int(starts[i] + breaks[i])
            for c in columns:
                cell = frame.iat[int(i), c]
                if "\n" not in cell or not self._shaped(cell.split("\n")[1:], kinds):
                    continue
                verdict = closes_cleanly(self.raw.get(first, last) or "", self.delimiter, cell)
                if verdict is False or (verdict is None and any(kinds)):
                    raise InputError(
                        f"{self.path}: row {self.next_row + int(i)} (line {first}) opens a quote "
                        f"that is never closed: it swallows lines {first + 1}-{last}; fix the "
                        f"quote (a quote inside a field is written twice: \"\")"
                    )
                if verdict and self._records_inside(cell, c, kinds, labels):
                    raise InputError(
                        f"{self.path}: row {self.next_row + int(i)} (line {first}) opens a quote "
                        f"that closes only on line {last}, so lines {first}-{last} read as one "
                        f"field, yet {_each(first, last - 1)} ends like a whole record (e.g. "
                        f"{show(cell.split(chr(10))[0], 50)}); fix the stray quote (a quote "
                        f"inside a field is written twice: \"\")"
                    )
                break  # the record is read once, whichever of its fields raised the suspicion

    def _records_inside(self, cell: str, column: int, kinds: list[str | None],
                        labels: list[frozenset | None]) -> bool:
        """True when a field that closes cleanly is still a runaway quote: its first line
        completes its record and every later line but the last is a whole record, each with a
        label exactly where the file's records have one (``"Best buy,positive`` ...
        ``Too small for my 27",negative``).

        A review's own lines do not pass: after a comma, prose has a space and words, not a
        bare ``negative`` (of the label column's own set) line after line. A file without a
        label column is not judged this way.
        """
        lines = [line.rstrip("\r") for line in cell.split("\n")]
        head = self._fields(lines[0])
        if head is None or len(head) != self.width - column:
            return False
        evidence = _exact(head[1:], kinds[column + 1:], labels[column + 1:])
        if evidence is None:
            return False
        for line in lines[1:-1]:
            fields = self._fields(line)
            if fields is None or len(fields) != self.width or not _exact(fields, kinds, labels):
                return False
            evidence += 1
        return evidence >= 2  # one such line can be a review's own; two in a row are not

    def _fields(self, line: str) -> list[str] | None:
        with unlimited_fields():
            try:
                return next(csv.reader([line], delimiter=self.delimiter), [])
            except csv.Error:
                return None

    def _shaped(self, lines: Sequence[str], kinds: list[str | None]) -> bool:
        shaped = 0
        with unlimited_fields():
            for line in lines:
                try:
                    fields = next(csv.reader([line.rstrip("\r")], delimiter=self.delimiter), [])
                except csv.Error:  # a lone CR inside the line: not a record of the file's shape
                    continue
                if len(fields) == self.width and all(
                        _fits(v, k) for v, k in zip(fields, kinds, strict=True)):
                    shaped += 1
        return shaped >= 1 and shaped * 2 >= len(lines)


def _column_values(frame: pd.DataFrame) -> list[list[str]]:
    """Each column's cells as a list; a wide frame goes through one array (a column at a time
    costs a Series each, slow for thousands of columns)."""
    if frame.shape[1] > 50:
        return frame.to_numpy(dtype=object).T.tolist()
    return [frame.iloc[:, i].tolist() for i in range(frame.shape[1])]


def _kind(values: Sequence[str]) -> str | None:
    """'int', 'num' or 'short' when every filled value is one; None for free text."""
    filled = [v.strip() for v in values if v.strip()]
    if not filled:
        return None
    if all(_INT.match(v) for v in filled):
        return "int"
    if all(_is_float(v) for v in filled):
        return "num"
    if all(len(v) <= _SHORT for v in filled):
        return "short"
    return None


def _each(first: int, last: int) -> str:
    return f"line {first}" if first == last else f"each of lines {first}-{last}"


def _label_set(values: Sequence[str]) -> frozenset | None:
    """The label set a column's values all come from (``pos``/``neg`` -> pos, neg, neu), or None."""
    filled = {v.strip().lower() for v in values if v.strip()}
    return next((frozenset(s) for s in LABEL_SETS if filled and filled <= s), None)


def _exact(fields: Sequence[str], kinds: Sequence[str | None],
           labels: Sequence[frozenset | None]) -> int | None:
    """None when a field is not what its column holds (a label of its set, written bare; a
    number; a short code) or starts with a space as prose after a comma does; else 1 when a
    label was among them, 0 when none. Numbers are no evidence: a review may list "Battery,5"
    line after line; hardly "Battery,negative"."""
    found = 0
    for value, kind, label in zip(fields, kinds, labels, strict=True):
        if not value.strip():
            continue
        if value[0].isspace():  # "No, great value": prose, where a record has "no,Great value"
            return None
        if label is not None:
            if value != value.strip() or value.lower() not in label:
                return None
            found = 1
        elif not _fits(value, kind):
            return None
    return found


def _is_float(value: str) -> bool:
    try:
        float(value)
    except ValueError:
        return False
    return True


def _fits(value: str, kind: str | None) -> bool:
    value = value.strip()
    if not value or kind is None:
        return True
    if kind == "int":
        return bool(_INT.match(value))
    if kind == "num":
        return _is_float(value)
    return len(value) <= _SHORT


# A field that opens with a quote closed before the field ends: '"Best" pizza in town'.
_MISQUOTED = re.compile(r'^"(?:[^"]|"")*"(?!")(?=.)', re.S)


def literal_quotes(sample: str, delimiter: str) -> bool:
    """Whether a tab-separated file's quotes are its text's, not quoting.

    Programs that write TSV by joining fields with tabs leave a review's quotes as they are, and
    a review that opens with one ('"Best" pizza in town') reads, under CSV quoting, as the field
    'Best pizza in town': its quotes vanish without a sign. A field like that in the sample, and
    no quoted field with doubled quotes inside (a CSV writer's sign), means the quotes are text.
    A CSV writer never leaves a field like '"Best" pizza', so in such a file a quote that opens
    a field and never closes is text too. Other delimiters keep CSV quoting: there a field
    holding the delimiter must be quoted.
    """
    if delimiter != "\t":
        return False
    misquoted = False
    for line in sample.split("\n"):
        for cell in line.rstrip("\r").split("\t"):
            if not cell.startswith('"'):
                continue
            if _MISQUOTED.match(cell):
                misquoted = True
            elif len(cell) > 2 and cell.endswith('"') and '""' in cell[1:-1]:
                return False  # a CSV writer's quoting: a quoted field with its quotes doubled
    return misquoted
