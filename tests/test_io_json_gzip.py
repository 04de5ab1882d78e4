"""JSON arrays, JSON Lines edge cases, gzipped text inputs and the NUL-byte rule."""

from __future__ import annotations

import csv
import gzip
import io
import json
from pathlib import Path

import pandas as pd
import pytest

from review_scorer.errors import InputError
from review_scorer.io import open_reviews
from review_scorer.io.predictions import PREDICTION_FORMATS, PredictionWriter


def _read(path: Path, **kwargs):
    review_file = open_reviews(path, **kwargs)
    chunks = list(review_file.chunks())
    return review_file, chunks, [t for c in chunks for t in c.texts], [
        int(r) for c in chunks for r in c.rows]


def _error(path: Path, **kwargs) -> str:
    with pytest.raises(InputError) as err:
        _read(path, **kwargs)
    message = str(err.value)
    assert str(path) in message and "\n" not in message
    return message


# ---- JSON arrays ------------------------------------------------------------------------------


def test_io_json_array_of_objects_reads_in_chunks_with_types_kept(tmp_path):
    records = [{"review": f"review {i}, fine", "stars": i % 5 + 1, "liked": i % 2 == 0,
                "price": 9.5, "tags": ["a", i]} for i in range(23)]
    path = tmp_path / "export.json"
    path.write_text(json.dumps(records, indent=2))  # pretty-printed: records span many lines
    review_file, chunks, texts, rows = _read(path, chunk_rows=5)
    assert review_file.info.format == "json" and len(chunks) == 5
    assert texts == [r["review"] for r in records] and rows == list(range(1, 24))
    values = pd.concat([c.values for c in chunks], ignore_index=True)
    assert values.to_dict("records") == records  # JSON types, lists included
    assert chunks[0].frame["liked"].tolist()[:2] == ["TRUE", "FALSE"]  # the text view
    assert chunks[0].frame["tags"].iloc[1] == '["a", 1]'


@pytest.mark.parametrize(("text", "expected"), [
    ('[{"review": "ok"},\n {"review": "fine"},\n]', "line 3: a ',' before the closing ']'"),
    ('[{"review": "ok"}\n {"review": "fine"}]', "line 2: expected ',' or ']'"),
    ('{"review": "ok"}', "must start with '['"),
    ('[{"review": "ok"},\n 5]', "line 2 holds a JSON int, not an object"),
    ('[{"review": "ok"},\n {"review": "cut', "line 2: not valid JSON"),
    ('[{"review": "ok"}] [', "text after the array's closing ']'"),
])
def test_io_json_array_errors_name_the_line(tmp_path, text, expected):
    path = tmp_path / "bad.json"
    path.write_text(text)
    assert expected in _error(path)


def test_io_json_array_larger_than_the_read_buffer_reads(tmp_path):
    long_review = "word " * 400_000  # one record of 2 MB, past the 1 MB read size
    path = tmp_path / "big.json"
    path.write_text(json.dumps([{"review": "short"}, {"review": long_review}, {"review": "end"}]))
    _, _, texts, rows = _read(path)
    assert texts == ["short", long_review, "end"] and rows == [1, 2, 3]


def test_io_empty_json_array_is_an_input_error_naming_the_file(tmp_path):
    path = tmp_path / "empty.json"
    path.write_text("[]")
    error = _error(path)  # what is wrong (no records), not a column to pass
    assert "empty.json: holds no records" in error and "--text-column" not in error


# ---- JSON Lines -------------------------------------------------------------------------------


@pytest.mark.parametrize("suffix", [".jsonl", ".json"])
def test_io_deeply_nested_json_is_one_line_error_naming_the_line(tmp_path, suffix):
    deep = "[" * 100_000 + "]" * 100_000
    lines = ['{"review": "fine"}', '{"review": "ok", "extra": ' + deep + "}"]
    path = tmp_path / f"deep{suffix}"
    path.write_text("\n".join(lines) + "\n" if suffix == ".jsonl" else
                    "[" + ",\n".join(lines) + "]")
    message = _error(path)
    assert "line 2 nests JSON objects or arrays deeper than can be read" in message


def test_io_jsonl_blank_key_becomes_column_n_like_other_blank_headers(tmp_path):
    path = tmp_path / "blank.jsonl"
    path.write_text('{"review": "fine film", "": "x", " ": 3}\n{"review": "bad", "": "y"}\n')
    review_file, chunks, _, _ = _read(path)
    assert review_file.info.columns == ("review", "column_2", "column_3")
    assert chunks[0].frame["column_2"].tolist() == ["x", "y"]
    assert chunks[0].frame["column_3"].tolist() == ["3", ""]


@pytest.mark.parametrize("fmt", PREDICTION_FORMATS)
def test_io_lone_surrogates_become_replacement_characters_and_every_output_writes(tmp_path, fmt):
    path = tmp_path / "emoji.jsonl"
    # Written escaped, as JSON allows: half an emoji in a value, a key and a nested list.
    path.write_text('{"review": "great \\ud83d film", "note\\udc00": ["\\ud83d"]}\n'
                    '{"review": "a whole one \\ud83d\\ude00 stays", "note\\udc00": []}\n')
    review_file, chunks, texts, _ = _read(path)
    assert texts == ["great \ufffd film", "a whole one \U0001f600 stays"]
    assert review_file.info.columns == ("review", "note\ufffd")
    # The value, the list item, and the key in each of the two records.
    assert any(n.startswith("4 string(s) (values or keys) held a lone surrogate")
               for n in review_file.notes)
    out = tmp_path / f"out.{fmt}"
    for frame in (chunks[0].frame, chunks[0].values):
        with PredictionWriter(out, fmt, overwrite=True) as writer:
            writer.write(frame)
            writer.commit()


# ---- gzip ---------------------------------------------------------------------------------------


def _gzip(path: Path, text: str) -> Path:
    with gzip.open(path, "wt", encoding="utf-8", newline="") as fh:
        fh.write(text)
    return path


def test_io_csv_gz_reads_like_the_plain_file(tmp_path):
    buffer = io.StringIO(newline="")
    rows = [("review", "stars")] + [(f"review {i}, with a comma\n\nand a paragraph", i % 5 + 1)
                                    for i in range(40)]
    csv.writer(buffer).writerows(rows)
    plain = tmp_path / "reviews.csv"
    plain.write_text(buffer.getvalue(), newline="")
    packed = _gzip(tmp_path / "reviews.csv.gz", buffer.getvalue())
    _, _, plain_texts, plain_rows = _read(plain, chunk_rows=7)
    info, _, texts, numbers = _read(packed, chunk_rows=7)
    assert texts == plain_texts and numbers == plain_rows == list(range(1, 41))
    assert info.info.format == "csv" and info.info.delimiter == ","


@pytest.mark.parametrize(("name", "text"), [
    ("reviews.tsv.gz", "review\tstars\na fine, film\t5\nbad\t1\n"),
    ("reviews.jsonl.gz", '{"review": "a fine, film", "stars": 5}\n{"review": "bad", "stars": 1}\n'),
    ("reviews.json.gz", '[{"review": "a fine, film", "stars": 5}, {"review": "bad", "stars": 1}]'),
])
def test_io_other_gzipped_text_formats_read(tmp_path, name, text):
    _, _, texts, rows = _read(_gzip(tmp_path / name, text))
    assert texts == ["a fine, film", "bad"] and rows == [1, 2]


@pytest.mark.parametrize("damage", ["truncated", "not_gzip"])
def test_io_damaged_gzip_is_one_line_error(tmp_path, damage):
    path = _gzip(tmp_path / "reviews.csv.gz", "review\n" + "".join(f"r {i}\n" for i in range(5000)))
    raw = path.read_bytes()
    path.write_bytes(raw[: len(raw) // 2] if damage == "truncated" else b"review\nplain text\n")
    assert "not a readable gzip file" in _error(path)


# ---- NUL bytes ----------------------------------------------------------------------------------


@pytest.mark.parametrize("at_line", [2, 4000])  # inside the first 64 KB, and far past it
def test_io_nul_byte_is_refused_wherever_it_is_and_the_line_is_named(tmp_path, at_line):
    lines = ["review,stars"] + [f"review number {i} is a fine one,4" for i in range(1, 5000)]
    lines[at_line - 1] = lines[at_line - 1].replace("fine", "fi\x00ne")
    path = tmp_path / "nul.csv"
    path.write_text("\n".join(lines) + "\n")
    assert path.stat().st_size > 2 * 64 * 1024 and len("\n".join(lines[:4000])) > 64 * 1024
    message = _error(path)
    assert f"line {at_line} holds a NUL byte" in message and "binary file" in message
