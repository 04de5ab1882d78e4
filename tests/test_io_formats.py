"""JSON Lines and Parquet review files, streamed in chunks, for scoring and for training."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from review_scorer.errors import InputError
from review_scorer.io import load_labeled, open_reviews

RECORDS = [
    {"id": 1, "review": "A lovely film, truly", "sentiment": "pos", "stars": 5},
    {"id": 2, "review": "Dull, slow and long", "sentiment": "neg", "stars": 1},
    {"id": 3, "review": None, "sentiment": "pos", "stars": 4.5},
    {"id": 4, "review": "Line one\nline two", "sentiment": "neg", "stars": None},
    {"id": 5, "review": "", "sentiment": "", "stars": 3, "extra": {"a": [1, 2]}},
]


def read_all(path: Path, **kwargs):
    review_file = open_reviews(path, **kwargs)
    chunks = list(review_file.chunks())
    return review_file, chunks


@pytest.mark.parametrize("suffix", [".jsonl", ".ndjson"])
def test_io_jsonl_streams_records_in_chunks(tmp_path, suffix):
    path = tmp_path / f"reviews{suffix}"
    path.write_text("\n".join(json.dumps(r, ensure_ascii=False) for r in RECORDS[:4]) + "\n\n"
                    + json.dumps(RECORDS[4]) + "\n")
    review_file, chunks = read_all(path, chunk_rows=2)
    info = review_file.info
    # every key is a column, also one that only the last record holds
    assert info.format == "jsonl" and info.columns == ("id", "review", "sentiment", "stars", "extra")
    assert [len(c) for c in chunks] == [2, 2, 1]
    assert [int(r) for c in chunks for r in c.rows] == [1, 2, 3, 4, 5]
    texts = [t for c in chunks for t in c.texts]
    assert texts == ["A lovely film, truly", "Dull, slow and long", None, "Line one\nline two", ""]
    assert chunks[0].frame["id"].tolist() == ["1", "2"]  # numbers as text, like CSV cells
    assert chunks[1].frame["stars"].tolist() == ["4.5", ""]
    assert [int(v) for c in chunks for v in c.labels] == [1, 0, 1, 0, -1]
    assert info.rating_column == "stars" and info.rating_scale == 5
    assert chunks[2].frame["extra"].tolist() == ['{"a": [1, 2]}']  # kept, as JSON text
    assert chunks[0].frame["extra"].tolist() == ["", ""]


@pytest.mark.parametrize(("content", "pattern"), [
    ('{"review": "ok"}\n{"review": "broken\n', r"line 2 is not valid JSON"),
    ('{"review": "ok"}\n["a", "list"]\n', r"line 2 holds a JSON list, not an object"),
])
def test_io_jsonl_bad_line_is_named(tmp_path, content, pattern):
    path = tmp_path / "bad.jsonl"
    path.write_text(content)
    with pytest.raises(InputError, match=pattern) as err:
        list(open_reviews(path, chunk_rows=1).chunks())
    assert "bad.jsonl" in str(err.value) and "\n" not in str(err.value)


def test_io_parquet_streams_batches_and_turns_values_to_text(tmp_path):
    table = pa.table({
        "id": pa.array([1, 2, 3, 4, 5], pa.int64()),
        "review": ["A lovely film, truly", "Dull, slow and long", None, "Line one\nline two", ""],
        "stars": pa.array([5.0, 1.0, 4.5, None, 3.0]),
        "liked": pa.array([True, False, True, False, None]),
    })
    path = tmp_path / "reviews.parquet"
    pq.write_table(table, path, row_group_size=2)
    review_file, chunks = read_all(path, chunk_rows=2)
    info = review_file.info
    assert info.format == "parquet" and info.columns == ("id", "review", "stars", "liked")
    assert [len(c) for c in chunks] == [2, 2, 1]
    assert [t for c in chunks for t in c.texts] == [
        "A lovely film, truly", "Dull, slow and long", None, "Line one\nline two", ""]
    assert [v for c in chunks for v in c.frame["id"].tolist()] == ["1", "2", "3", "4", "5"]
    assert [v for c in chunks for v in c.frame["liked"].tolist()] == [
        "TRUE", "FALSE", "TRUE", "FALSE", ""]
    assert info.label_column == "liked" and info.rating_column == "stars"
    assert [int(v) for c in chunks for v in c.labels] == [1, 0, 1, 0, -1]
    ratings = np.concatenate([c.ratings for c in chunks])
    assert np.allclose(ratings, [5, 1, 4.5, np.nan, 3], equal_nan=True)


def test_io_damaged_parquet_is_an_input_error(tmp_path):
    path = tmp_path / "bad.parquet"
    path.write_bytes(b"PAR1 this is not parquet at all PAR1")
    with pytest.raises(InputError, match=r"bad\.parquet: not a readable Parquet file"):
        open_reviews(path)


def test_io_labeled_jsonl_and_parquet_train_the_same_rows(tmp_path):
    rows = [("a lovely film", "pos"), ("a dull film", "neg"), ("", "pos"), ("great fun", "1")]
    jsonl = tmp_path / "train.jsonl"
    jsonl.write_text("".join(json.dumps({"text": t, "label": lab}) + "\n" for t, lab in rows))
    parquet = tmp_path / "train.parquet"
    pq.write_table(pa.table({"text": [t for t, _ in rows], "label": [lab for _, lab in rows]}),
                   parquet)
    from_jsonl, from_parquet = load_labeled(jsonl), load_labeled(parquet)
    assert from_jsonl.texts == ["a lovely film", "a dull film", "great fun"]
    assert from_jsonl.labels.tolist() == [1, 0, 1] and from_jsonl.skipped_empty == 1
    assert from_parquet.fingerprint == from_jsonl.fingerprint


def test_io_jsonl_a_key_that_first_appears_late_is_a_column_with_every_value(tmp_path, trained_model):
    """A shop's export where only recent reviews have an owner's reply: the key first appears
    long after the first chunk, and its values reach the predictions file."""
    from click.testing import CliRunner

    from review_scorer.cli import cli

    records = [{"review": f"a fine film number {i}"} for i in range(1, 13)]
    for r in records[9:]:
        r["owner_reply"] = f"thanks for review {r['review'][-2:].strip()}"
    path = tmp_path / "shop.jsonl"
    path.write_text("\n".join(json.dumps(r) for r in records) + "\n")
    review_file, chunks = read_all(path, chunk_rows=4)
    assert review_file.info.columns == ("review", "owner_reply")
    replies = [v for c in chunks for v in c.frame["owner_reply"].tolist()]
    assert replies == [""] * 9 + ["thanks for review 10", "thanks for review 11", "thanks for review 12"]
    assert not any("left out" in n for n in review_file.notes)

    run = CliRunner().invoke(cli, ["score", str(path), "--model-dir", str(trained_model.model_dir),
                                   "--out-dir", str(tmp_path / "out"), "--no-report"])
    assert run.exit_code == 0, run.output
    import pandas as pd

    out = pd.read_csv(tmp_path / "out" / "shop.predictions.csv", keep_default_na=False)
    assert out["owner_reply"].tolist()[9:] == replies[9:] and len(out) == 12


@pytest.mark.parametrize(("name", "content", "said"), [
    ("empty.json", "[]", "holds no records"),
    ("blank.jsonl", "\n\n", "holds no records"),
    ("keyless.json", "[{}, {}]", "holds 2 record(s), none with a key"),
])
def test_io_json_without_any_record_says_so(tmp_path, name, content, said):
    path = tmp_path / name
    path.write_text(content)
    with pytest.raises(InputError) as err:
        list(open_reviews(path, chunk_rows=10).chunks())
    message = str(err.value)
    assert said in message and name in message and "--text-column" not in message
