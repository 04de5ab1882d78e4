"""Quoted fields that span lines: valid ones read, runaway quotes refused, whatever the columns."""

from __future__ import annotations

import csv
from pathlib import Path

import pandas as pd
import pytest

from review_scorer.errors import InputError
from review_scorer.io import open_reviews

PARAGRAPHS = [
    "Loved it, honestly.\n\nThe second act drags, but the ending's great.",
    "Two stars, maybe three.\nIt's fine, I guess.\n\n\nWouldn't rewatch, though.",
    "Short, sweet,\nand done.",
    'She said "wow", twice.\n\nMe, too.',
]
LABELS = ["pos", "neg", "pos", "neg"]


def _records(n: int) -> list[tuple[str, str, str]]:
    """(review, sentiment, product): every third review spans lines; no id column anywhere."""
    out = []
    for i in range(n):
        text = PARAGRAPHS[i % 4] if i % 3 == 0 else f"plain review number {i}, fine"
        out.append((text, LABELS[i % 4], ["mug", "lamp", "desk"][i % 3]))
    return out


def _read(path: Path, **kwargs):
    review_file = open_reviews(path, **kwargs)
    chunks = list(review_file.chunks())
    return ([t for c in chunks for t in c.texts], [int(r) for c in chunks for r in c.rows],
            [row for c in chunks for row in c.frame.to_dict("records")])


@pytest.mark.parametrize("line_end", ["\n", "\r\n"])
@pytest.mark.parametrize("columns", [("review", "sentiment"), ("product", "review"),
                                     ("sentiment", "review", "product")])
def test_io_multiline_csv_written_by_csv_writer_reads(tmp_path, line_end, columns):
    records = _records(60)
    path = tmp_path / "reviews.csv"
    with open(path, "w", newline="", encoding="utf-8") as fh:
        writer = csv.writer(fh, lineterminator=line_end)
        writer.writerow(columns)
        for text, label, product in records:
            row = {"review": text, "sentiment": label, "product": product}
            writer.writerow([row[c] for c in columns])
    texts, rows, frame_rows = _read(path, chunk_rows=16)
    assert texts == [r[0] for r in records]  # paragraph breaks, commas, quotes kept as written
    assert rows == list(range(1, 61))
    assert [r["sentiment"] for r in frame_rows if "sentiment" in r] in ([], [r[1] for r in records])


@pytest.mark.parametrize("line_end", ["\n", "\r\n"])
def test_io_multiline_csv_written_by_pandas_reads(tmp_path, line_end):
    records = _records(45)
    frame = pd.DataFrame(records, columns=["review", "sentiment", "product"])
    path = tmp_path / "export.csv"
    frame.to_csv(path, index=False, lineterminator=line_end)
    texts, rows, _ = _read(path, chunk_rows=10)
    # A CRLF file keeps CRLF inside its quoted fields: that is what the file holds.
    assert [t.replace("\r\n", "\n") for t in texts] == [r[0] for r in records]
    assert rows == list(range(1, 46))


def test_io_multiline_field_whose_lines_look_like_records_reads(tmp_path):
    # Each later line of the review splits at its comma into two short fields, like a record.
    path = tmp_path / "shapes.csv"
    review = "Good, ok\nBad, no\nMeh, so-so\nFine, yes"
    rows = [("plain words here", "pos")] * 25 + [(review, "neg")] + [("more words", "pos")] * 5
    with open(path, "w", newline="", encoding="utf-8") as fh:
        csv.writer(fh).writerows([("review", "sentiment"), *rows])
    texts, numbers, _ = _read(path)
    assert texts[25] == review and numbers == list(range(1, 32))


def _runaway(path: Path, line_end: str = "\n") -> Path:
    lines = ["review,sentiment"] + [f"review number {i} is fine,pos" for i in range(1, 25)]
    lines += ['"I liked it, mostly,neg'] + [f"review number {i},neg" for i in range(26, 30)]
    lines += ['A "quoted" gem,pos', "the end,pos"]
    path.write_bytes(line_end.join(lines).encode() + line_end.encode())
    return path


@pytest.mark.parametrize("line_end", ["\n", "\r\n"])
def test_io_runaway_quote_is_refused_without_an_id_column(tmp_path, line_end):
    path = _runaway(tmp_path / "runaway.csv", line_end)
    with pytest.raises(InputError) as err:
        _read(path, chunk_rows=8)
    message = str(err.value)
    assert "row 25 (line 26) opens a quote that is never closed" in message
    assert "swallows lines 27-31" in message and "\n" not in message


def test_io_quote_open_at_the_end_of_the_file_is_refused(tmp_path):
    path = tmp_path / "eof.csv"
    path.write_text("review,sentiment\nfine film,pos\n\"never closed, at all,neg\nmore,pos\n")
    with pytest.raises(InputError) as err:
        _read(path)
    assert str(path) in str(err.value) and "quote" in str(err.value).lower()


def test_io_megabyte_line_inside_a_quoted_field_reads(tmp_path):
    long_line = "word " * 210_000  # ~1 MB on one line: one field when the line is parsed alone
    review = f"First line.\n{long_line}\nLast line."
    rows = [("short review, fine", "pos")] * 30 + [(review, "neg"), ("after it", "pos")]
    path = tmp_path / "long.csv"
    with open(path, "w", newline="", encoding="utf-8") as fh:
        csv.writer(fh).writerows([("review", "sentiment"), *rows])
    texts, numbers, _ = _read(path)
    assert texts[30] == review and numbers == list(range(1, 33))
