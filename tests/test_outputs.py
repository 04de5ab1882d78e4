"""Tests for review_scorer.io.publish: atomic writes, output folders and prediction writers."""

from __future__ import annotations

import json
import math
import os
import tempfile
import zipfile
from pathlib import Path

import numpy as np
import openpyxl
import pandas as pd
import pytest

from review_scorer.errors import OutputError
from review_scorer.io import predictions as outputs
from review_scorer.io.predictions import PREDICTION_SUFFIX, PredictionWriter, format_from_name
from review_scorer.io.publish import atomic_write_bytes, ensure_output_dir

TRICKY_TEXTS = [
    'She said "wow", then left.',
    "line one\nline two",
    "windows\r\nline end",
    "old mac\rline end",
    "commas, everywhere, here",
    "ünïcödé — naïve café ☃ 😀",
    "",
    "  padded  ",
    "=1+1",
]


@pytest.fixture
def chunks() -> list[pd.DataFrame]:
    """Three prediction chunks with awkward text, a missing score and a missing id."""
    rows = list(range(2, 2 + len(TRICKY_TEXTS)))
    frame = pd.DataFrame(
        {
            "row": np.array(rows, dtype=np.int64),
            "id": [f"r{r}" for r in rows[:-1]] + [None],
            "text": TRICKY_TEXTS,
            "sentiment": ["positive", "negative"] * 4 + [""],
            "score": [0.91, 0.12, 0.5, 1.0, 0.0, 0.3333333333333333, 0.77, 0.25, np.nan],
            "status": ["ok"] * 8 + ["empty text"],
        }
    )
    return [frame.iloc[:4], frame.iloc[4:5], frame.iloc[5:]]


def _leftovers(directory: Path) -> list[str]:
    return sorted(p.name for p in directory.iterdir() if p.name.endswith(".tmp"))


def _assert_one_line(error: pytest.ExceptionInfo) -> None:
    assert "\n" not in str(error.value)


# --- atomic writes -------------------------------------------------------------------------


def test_outputs_atomic_write_text_writes_and_leaves_no_temp(tmp_path):
    target = tmp_path / "report.html"
    assert atomic_write_bytes(target, "héllo\r\nworld".encode()) == target
    assert target.read_bytes() == "héllo\r\nworld".encode()
    assert _leftovers(tmp_path) == []


def test_outputs_atomic_write_uses_normal_permissions(tmp_path):
    old = os.umask(0o022)
    try:
        atomic_write_bytes(tmp_path / "a.bin", b"x")
    finally:
        os.umask(old)
    assert (tmp_path / "a.bin").stat().st_mode & 0o777 == 0o644


def test_outputs_atomic_write_refuses_existing(tmp_path):
    target = tmp_path / "out.txt"
    target.write_bytes(b"original")
    with pytest.raises(OutputError, match="already exists; pass --overwrite") as error:
        atomic_write_bytes(target, b"new")
    assert str(target) in str(error.value)
    _assert_one_line(error)
    assert target.read_bytes() == b"original"
    assert _leftovers(tmp_path) == []


def test_outputs_atomic_write_overwrite_replaces(tmp_path):
    target = tmp_path / "out.txt"
    target.write_bytes(b"original")
    atomic_write_bytes(target, b"new", overwrite=True)
    assert target.read_bytes() == b"new"
    assert _leftovers(tmp_path) == []


def test_outputs_atomic_write_parent_is_a_file(tmp_path):
    blocker = tmp_path / "not_a_dir"
    blocker.write_text("x")
    with pytest.raises(OutputError, match="not a directory") as error:
        atomic_write_bytes(blocker / "out.txt", b"data")
    assert str(blocker) in str(error.value)
    _assert_one_line(error)


def test_outputs_atomic_write_missing_parent(tmp_path):
    missing = tmp_path / "missing"
    with pytest.raises(OutputError, match="does not exist") as error:
        atomic_write_bytes(missing / "out.txt", b"data")
    assert str(missing) in str(error.value)


def test_outputs_atomic_write_target_is_directory(tmp_path):
    with pytest.raises(OutputError, match="is a directory"):
        atomic_write_bytes(tmp_path, b"data", overwrite=True)


@pytest.mark.parametrize("failure", [KeyboardInterrupt, OSError])
def test_outputs_atomic_write_failure_removes_temp(tmp_path, monkeypatch, failure):
    target = tmp_path / "out.txt"
    target.write_bytes(b"original")

    def broken_fsync(fd):
        raise failure(28, "No space left on device")

    monkeypatch.setattr(outputs.os, "fsync", broken_fsync)
    expected = KeyboardInterrupt if failure is KeyboardInterrupt else OutputError
    with pytest.raises(expected):
        atomic_write_bytes(target, b"new", overwrite=True)
    assert target.read_bytes() == b"original"
    assert _leftovers(tmp_path) == []


def test_outputs_atomic_write_never_clobbers_a_file_created_meanwhile(tmp_path, monkeypatch):
    target = tmp_path / "out.txt"
    real_fsync = os.fsync

    def racing_fsync(fd):
        real_fsync(fd)
        if not target.exists():
            target.write_bytes(b"someone else")

    monkeypatch.setattr(outputs.os, "fsync", racing_fsync)
    with pytest.raises(OutputError, match="already exists"):
        atomic_write_bytes(target, b"mine")
    assert target.read_bytes() == b"someone else"
    assert _leftovers(tmp_path) == []


# --- output folders ------------------------------------------------------------------------


def test_outputs_ensure_output_dir_creates_parents(tmp_path):
    target = tmp_path / "a" / "b" / "c"
    assert ensure_output_dir(target) == target
    assert target.is_dir()
    assert list(target.iterdir()) == []  # the write probe is gone
    assert ensure_output_dir(target) == target  # existing folder is fine


def test_outputs_ensure_output_dir_rejects_file_and_path_under_file(tmp_path):
    blocker = tmp_path / "file.txt"
    blocker.write_text("x")
    with pytest.raises(OutputError, match="not a directory") as error:
        ensure_output_dir(blocker)
    _assert_one_line(error)
    with pytest.raises(OutputError, match="cannot create output folder") as error:
        ensure_output_dir(blocker / "sub")
    assert str(blocker / "sub") in str(error.value)


# --- formats -------------------------------------------------------------------------------


def test_outputs_format_from_name():
    assert format_from_name("CSV") == "csv"
    assert format_from_name(".jsonl") == "jsonl"
    assert format_from_name("out.predictions.xlsx") == "xlsx"
    assert PREDICTION_SUFFIX == {
        "csv": ".predictions.csv",
        "jsonl": ".predictions.jsonl",
        "xlsx": ".predictions.xlsx",
        "parquet": ".predictions.parquet",
    }
    assert format_from_name("x.predictions.parquet") == "parquet"
    with pytest.raises(OutputError, match="use one of csv, jsonl, xlsx, parquet"):
        format_from_name("feather")


def test_outputs_parquet_predictions_round_trip(tmp_path):
    import pyarrow.parquet as pq

    target = tmp_path / "p.predictions.parquet"
    first = pd.DataFrame({"review": ["great", "=1+1"], "row": [1, 2], "score": [0.9, float("nan")]})
    second = pd.DataFrame({"review": ["dull"], "row": [3], "score": [0.1]})
    with PredictionWriter(target, "parquet") as writer:
        writer.write(first)
        writer.write(second)
        assert not target.exists()  # only the temp file exists until commit
        writer.commit()
    back = pq.read_table(target).to_pandas()
    assert back["review"].tolist() == ["great", "=1+1", "dull"] and back["row"].tolist() == [1, 2, 3]
    assert back["score"].isna().tolist() == [False, True, False]
    assert sorted(p.name for p in tmp_path.iterdir()) == ["p.predictions.parquet"]


# --- prediction writers --------------------------------------------------------------------


def _write_all(path: Path, fmt: str, chunks: list[pd.DataFrame], **kwargs) -> PredictionWriter:
    with PredictionWriter(path, fmt, **kwargs) as writer:
        for chunk in chunks:
            writer.write(chunk)
        writer.commit()
    return writer


def test_outputs_csv_round_trips(tmp_path, chunks):
    path = tmp_path / "reviews.predictions.csv"
    writer = _write_all(path, "csv", chunks)
    assert writer.rows_written == len(TRICKY_TEXTS)
    assert writer.committed
    raw = path.read_bytes()
    assert not raw.startswith(b"\xef\xbb\xbf")  # no BOM
    back = pd.read_csv(path, dtype=str, keep_default_na=False)
    expected = pd.concat(chunks)
    assert list(back.columns) == list(expected.columns)
    assert back["text"].tolist() == TRICKY_TEXTS  # raw: "=1+1" stays as it is
    assert back["row"].tolist() == [str(r) for r in expected["row"]]
    assert back["id"].tolist()[-1] == ""
    scores = [float(s) if s else math.nan for s in back["score"]]
    np.testing.assert_array_equal(scores, expected["score"].to_numpy())
    assert raw.count(b"row,id,text") == 1  # header once
    assert _leftovers(tmp_path) == []


def test_outputs_jsonl_round_trips(tmp_path, chunks):
    path = tmp_path / "reviews.predictions.jsonl"
    writer = _write_all(path, "jsonl", chunks)
    lines = path.read_text(encoding="utf-8").splitlines()
    assert len(lines) == writer.rows_written == len(TRICKY_TEXTS)
    assert "😀" in path.read_text(encoding="utf-8")  # ensure_ascii=False
    records = [json.loads(line) for line in lines]
    assert [list(r) for r in records] == [list(chunks[0].columns)] * len(records)
    assert [r["text"] for r in records] == TRICKY_TEXTS
    assert [r["row"] for r in records] == list(range(2, 2 + len(TRICKY_TEXTS)))
    assert all(type(r["row"]) is int for r in records)
    assert records[0]["score"] == 0.91
    assert records[5]["score"] == 0.3333333333333333  # full precision
    assert records[-1]["score"] is None  # NaN -> null
    assert records[-1]["id"] is None


def test_outputs_jsonl_converts_numpy_and_pandas_values(tmp_path):
    frame = pd.DataFrame(
        {
            "flag": np.array([True, False]),
            "small": np.array([1, 2], dtype=np.int8),
            "f32": np.array([0.5, np.inf], dtype=np.float32),
            "nullable": pd.array([1, None], dtype="Int64"),
            "when": pd.to_datetime(["2024-01-02", None]),
        }
    )
    path = tmp_path / "x.jsonl"
    _write_all(path, "jsonl", [frame])
    records = [json.loads(line) for line in path.read_text().splitlines()]
    assert records[0] == {
        "flag": True, "small": 1, "f32": 0.5, "nullable": 1, "when": "2024-01-02T00:00:00",
    }
    assert records[1] == {"flag": False, "small": 2, "f32": None, "nullable": None, "when": None}


def test_outputs_xlsx_round_trips_with_numbers_numeric(tmp_path, chunks):
    path = tmp_path / "reviews.predictions.xlsx"
    writer = _write_all(path, "xlsx", chunks)
    assert writer.rows_written == len(TRICKY_TEXTS)
    sheet = openpyxl.load_workbook(path).active
    rows = list(sheet.iter_rows(values_only=True))
    assert list(rows[0]) == list(chunks[0].columns)
    assert sheet["A1"].font.bold
    body = rows[1:]
    assert len(body) == len(TRICKY_TEXTS)
    assert [r[0] for r in body] == list(range(2, 2 + len(TRICKY_TEXTS)))
    assert all(isinstance(r[0], int) for r in body)
    assert all(isinstance(r[4], (int, float)) for r in body[:-1])
    assert body[-1][4] is None  # NaN score -> empty cell
    assert sheet.cell(row=2, column=5).data_type == "n"
    # pandas reads it back as the same frame (text, ids and numbers)
    back = pd.read_excel(path, keep_default_na=False, na_values=[])
    expected = pd.concat(chunks).reset_index(drop=True)
    assert back["row"].tolist() == expected["row"].tolist()
    assert back["sentiment"].tolist() == expected["sentiment"].tolist()
    assert back["score"].iloc[:-1].tolist() == pytest.approx(expected["score"].iloc[:-1].tolist())


def test_outputs_xlsx_keeps_text_exactly(tmp_path, chunks):
    path = tmp_path / "p.xlsx"
    _write_all(path, "xlsx", chunks)
    sheet = openpyxl.load_workbook(path).active
    texts = [row[0] or "" for row in sheet.iter_rows(min_row=2, min_col=3, max_col=3,
                                                      values_only=True)]
    # XML turns every CR / CRLF line break into LF; everything else survives exactly
    assert texts == [t.replace("\r\n", "\n").replace("\r", "\n") for t in TRICKY_TEXTS]
    assert "old mac\nline end" in texts


@pytest.mark.parametrize(
    "text", ["=1+1", "+SUM(A1)", "-2+3", "@cmd", "\t=1+1", "\r=1", "#N/A", "=HYPERLINK(\"x\")"]
)
def test_outputs_xlsx_neutralises_formulas(tmp_path, text):
    path = tmp_path / "f.xlsx"
    frame = pd.DataFrame({"text": [text, "normal text"], "score": [-0.5, 0.25]})
    writer = _write_all(path, "xlsx", [frame])
    assert writer.neutralised_cells == 1
    sheet = openpyxl.load_workbook(path).active
    risky, normal = sheet["A2"], sheet["A3"]
    assert risky.value == text.replace("\r", "\n")  # data unchanged (XML stores CR as LF) ...
    assert risky.data_type == "s"  # ... but stored as text, not a formula or an error
    assert risky.quotePrefix  # and Excel keeps it text even when the cell is edited
    assert normal.value == "normal text"
    assert not normal.quotePrefix
    assert sheet["B2"].value == -0.5 and sheet["B2"].data_type == "n"  # numbers untouched
    xml = zipfile.ZipFile(path).read("xl/worksheets/sheet1.xml")
    assert b"<f>" not in xml and b"<f " not in xml


def test_outputs_xlsx_negative_number_strings_stay_text(tmp_path):
    path = tmp_path / "n.xlsx"
    _write_all(path, "xlsx", [pd.DataFrame({"id": ["-0.5", "007"]})])
    sheet = openpyxl.load_workbook(path).active
    assert [sheet["A2"].value, sheet["A3"].value] == ["-0.5", "007"]
    assert sheet["A2"].data_type == sheet["A3"].data_type == "s"


def test_outputs_xlsx_strips_illegal_control_characters(tmp_path):
    path = tmp_path / "c.xlsx"
    frame = pd.DataFrame({"text": ["bell\x07 and\x00 null\x1b", "tab\tnew\nline", "fine"]})
    writer = _write_all(path, "xlsx", [frame])
    sheet = openpyxl.load_workbook(path).active
    assert sheet["A2"].value == "bell and null"
    assert sheet["A3"].value == "tab\tnew\nline"  # tab and newline are allowed
    assert writer.cleaned_cells == 1
    assert any("control characters removed from 1 cell" in note for note in writer.notes)


def test_outputs_xlsx_truncates_long_cells_and_notes_it(tmp_path):
    path = tmp_path / "long.xlsx"
    limit = outputs.XLSX_CELL_CHARS
    frame = pd.DataFrame({"text": ["fine", "a" * (limit + 10), "b" * limit, "😀" * limit]})
    writer = _write_all(path, "xlsx", [frame])
    assert writer.truncated_cells == 2
    assert writer.notes == [  # the note names the first cut row, and how to keep the whole text
        f"long.xlsx: 2 cell(s) cut to {limit:,} characters, the most one Excel cell holds (the "
        "first in data row 2); --format csv, jsonl or parquet keeps the whole text"
    ]
    sheet = openpyxl.load_workbook(path).active
    assert sheet["A2"].value == "fine"
    assert sheet["A3"].value == "a" * limit
    assert sheet["A4"].value == "b" * limit  # exactly at the limit: untouched
    # emoji take two UTF-16 units each, as Excel counts them; no half pair is left at the end
    assert sheet["A5"].value == "😀" * (limit // 2)
    assert outputs._truncate_for_xlsx("a" + "😀" * limit) == "a" + "😀" * (limit // 2)


def test_outputs_csv_and_jsonl_have_no_notes(tmp_path):
    writer = _write_all(tmp_path / "a.csv", "csv", [pd.DataFrame({"t": ["x" * 40_000]})])
    assert writer.notes == []


@pytest.mark.parametrize("fmt", ["csv", "jsonl", "xlsx"])
@pytest.mark.parametrize("failure", [RuntimeError, KeyboardInterrupt])
def test_outputs_writer_failure_keeps_existing_target(tmp_path, chunks, fmt, failure):
    path = tmp_path / f"reviews{PREDICTION_SUFFIX[fmt]}"
    path.write_bytes(b"previous results")
    with pytest.raises(failure), PredictionWriter(path, fmt, overwrite=True) as writer:
        writer.write(chunks[0])
        writer.write(chunks[1])
        raise failure("stopped halfway")
    assert path.read_bytes() == b"previous results"
    assert _leftovers(tmp_path) == []
    assert not writer.committed


@pytest.mark.parametrize("fmt", ["csv", "jsonl", "xlsx"])
def test_outputs_writer_without_commit_leaves_nothing(tmp_path, chunks, fmt):
    path = tmp_path / f"out.{fmt}"
    with PredictionWriter(path, fmt) as writer:
        writer.write(chunks[0])
        assert _leftovers(tmp_path)  # work happens in a hidden temp file
    assert not path.exists()
    assert list(tmp_path.iterdir()) == []


def test_outputs_xlsx_abort_removes_openpyxl_buffer(tmp_path, chunks, monkeypatch):
    scratch = tmp_path / "scratch"
    scratch.mkdir()
    monkeypatch.setattr(tempfile, "tempdir", str(scratch))
    out = tmp_path / "out"
    out.mkdir()
    with PredictionWriter(out / "p.xlsx", "xlsx") as writer:
        writer.write(chunks[0])
        assert list(scratch.iterdir())  # openpyxl buffers rows here
    assert list(scratch.iterdir()) == []
    assert list(out.iterdir()) == []


@pytest.mark.parametrize("fmt", ["csv", "jsonl", "xlsx"])
def test_outputs_writer_refuses_existing_target_at_construction(tmp_path, fmt):
    path = tmp_path / f"out.{fmt}"
    path.write_bytes(b"keep me")
    with pytest.raises(OutputError, match="already exists; pass --overwrite") as error:
        PredictionWriter(path, fmt)
    _assert_one_line(error)
    assert path.read_bytes() == b"keep me"
    assert _leftovers(tmp_path) == []


def test_outputs_writer_overwrite_replaces_on_commit(tmp_path, chunks):
    path = tmp_path / "out.csv"
    path.write_bytes(b"old")
    with PredictionWriter(path, "csv", overwrite=True) as writer:
        writer.write(chunks[0])
        assert path.read_bytes() == b"old"  # untouched until commit
        writer.commit()
    assert pd.read_csv(path).shape == (len(chunks[0]), chunks[0].shape[1])


def test_outputs_writer_bad_directory_fails_at_construction(tmp_path):
    blocker = tmp_path / "file"
    blocker.write_text("x")
    with pytest.raises(OutputError, match="not a directory"):
        PredictionWriter(blocker / "out.csv", "csv")


def test_outputs_writer_aligns_reordered_columns_and_rejects_others(tmp_path, chunks):
    path = tmp_path / "out.jsonl"
    with PredictionWriter(path, "jsonl") as writer:
        writer.write(chunks[0])
        writer.write(chunks[1][list(reversed(chunks[1].columns))])
        with pytest.raises(ValueError, match="differ from the first chunk"):
            writer.write(chunks[2].drop(columns=["status"]))
        writer.commit()
    records = [json.loads(line) for line in path.read_text().splitlines()]
    assert all(list(r) == list(chunks[0].columns) for r in records)
    assert records[4]["text"] == chunks[1]["text"].iloc[0]


def test_outputs_writer_rejects_use_after_commit(tmp_path, chunks):
    writer = _write_all(tmp_path / "o.csv", "csv", chunks[:1])
    with pytest.raises(ValueError, match="already committed"):
        writer.write(chunks[1])
    with pytest.raises(ValueError, match="already committed"):
        writer.commit()


def test_outputs_writer_with_header_only(tmp_path, chunks):
    path = tmp_path / "empty.csv"
    writer = _write_all(path, "csv", [chunks[0].iloc[:0]])
    assert writer.rows_written == 0
    assert path.read_text().splitlines() == [",".join(chunks[0].columns)]


# ---- types kept in JSONL and Parquet, top_words as a list (issue 20, item 18) ----------------


def _sink_output(tmp_path, source, fmt):
    """Predictions written by score.PredictionSink for `source` (scores made up: no model)."""
    from review_scorer.io import open_reviews
    from review_scorer.metrics import DecisionRule
    from review_scorer.scoring.kernel import scored_chunk
    from review_scorer.scoring.score import PredictionSink, ScoreOptions

    review_file = open_reviews(source)
    options = ScoreOptions(fmt=fmt, overwrite=True)
    target = tmp_path / f"out.{fmt}"
    sink = PredictionSink(target, review_file.info.columns, options)
    with sink:
        for chunk in review_file.chunks():
            n = len(chunk)
            scored = scored_chunk(chunk, np.array(["ok"] * n, dtype=object),
                                  np.linspace(0.1, 0.9, n).astype(np.float32),
                                  DecisionRule(options.threshold))
            sink.write(scored)
        temp = sink.finish()
        temp.replace(target)
    return target


JSON_RECORDS = [
    {"review": "Loved it", "Liked": 1, "stars": 4.5, "verified": True, "tags": ["a", "b"],
     "meta": {"source": "app"}, "note": None},
    {"review": "Hated it", "Liked": 0, "stars": 1.0, "verified": False, "tags": [],
     "meta": {"source": "web"}, "note": "late"},
]


@pytest.mark.parametrize("suffix", [".jsonl", ".json"])
def test_outputs_jsonl_keeps_the_json_input_types(tmp_path, suffix):
    source = tmp_path / f"in{suffix}"
    source.write_text("\n".join(json.dumps(r) for r in JSON_RECORDS) if suffix == ".jsonl"
                      else json.dumps(JSON_RECORDS))
    lines = _sink_output(tmp_path, source, "jsonl").read_text().splitlines()
    back = [json.loads(line) for line in lines]
    for record, original in zip(back, JSON_RECORDS, strict=True):
        assert {k: record[k] for k in original} == original  # 1 stays 1, not "1"
        assert record["row"] in (1, 2) and isinstance(record["score"], float)


def test_outputs_parquet_keeps_parquet_input_types(tmp_path):
    import datetime as dt

    import pyarrow as pa
    import pyarrow.parquet as pq

    table = pa.table({"review": ["Loved it", "Hated it"], "Liked": pa.array([1, 0], pa.int8()),
                      "stars": [4.5, None], "day": [dt.date(2024, 1, 2), dt.date(2024, 1, 3)],
                      "tags": [["a"], []]})
    source = tmp_path / "in.parquet"
    pq.write_table(table, source)
    back = pq.read_table(_sink_output(tmp_path, source, "parquet"))
    for field in table.schema:
        assert back.schema.field(field.name).type == field.type
    assert back.column("Liked").to_pylist() == [1, 0]
    assert back.column("tags").to_pylist() == [["a"], []]
    assert back.schema.field("review").type == pa.string()  # not large_string


def test_outputs_parquet_from_json_types_numbers_and_keeps_mixed_columns_as_text(tmp_path):
    import pyarrow as pa
    import pyarrow.parquet as pq

    records = [{"review": "ok", "Liked": 1, "code": 7}, {"review": "bad", "Liked": 0, "code": "x"}]
    source = tmp_path / "in.jsonl"
    source.write_text("\n".join(json.dumps(r) for r in records))
    back = pq.read_table(_sink_output(tmp_path, source, "parquet"))
    assert back.schema.field("Liked").type == pa.int64()
    assert back.column("code").to_pylist() == ["7", "x"]  # numbers and text in one key: text


def test_outputs_csv_input_stays_text_in_jsonl(tmp_path):
    source = tmp_path / "in.csv"
    source.write_text("review,Liked\nLoved it,1\n")
    record = json.loads(_sink_output(tmp_path, source, "jsonl").read_text())
    assert record["Liked"] == "1"  # CSV holds text: nothing to keep


def test_outputs_top_words_is_a_list_in_jsonl_and_parquet_and_text_elsewhere(tmp_path):
    import pyarrow.parquet as pq

    from review_scorer.io.predictions import word_weights

    frame = pd.DataFrame({"review": ["great, not dull", "meh"], "row": [1, 2],
                          "top_words": ["great +0.41; dull -0.33", ""]})
    expected = [[{"word": "great", "weight": 0.41}, {"word": "dull", "weight": -0.33}], []]
    assert [word_weights(v) for v in frame["top_words"]] == expected
    paths = {}
    for fmt in outputs.PREDICTION_FORMATS:
        paths[fmt] = tmp_path / f"tw.{fmt}"
        _write_all(paths[fmt], fmt, [frame])
    assert [json.loads(x)["top_words"] for x in paths["jsonl"].read_text().splitlines()] == expected
    assert pq.read_table(paths["parquet"]).column("top_words").to_pylist() == expected
    assert pd.read_csv(paths["csv"], keep_default_na=False)["top_words"].tolist() == [
        "great +0.41; dull -0.33", ""]
