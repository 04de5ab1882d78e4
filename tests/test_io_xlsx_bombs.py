"""Workbooks built to exhaust the reader: far-apart row numbers and XML parts that expand hugely."""

from __future__ import annotations

import re
import time
import zipfile
from pathlib import Path

import pytest

from review_scorer.errors import InputError
from review_scorer.io import open_reviews
from review_scorer.io import xlsx as xlsx_reader

xlsxwriter = pytest.importorskip("xlsxwriter")


def _workbook(path: Path, rows: dict[int, list[str]]) -> Path:
    """Rows by 0-based sheet row, written with shared strings as spreadsheet programs do."""
    workbook = xlsxwriter.Workbook(path)
    sheet = workbook.add_worksheet("reviews")
    for r, values in rows.items():
        sheet.write_row(r, 0, values)
    workbook.close()
    return path


def _rewrite(path: Path, member: str, edit) -> Path:
    with zipfile.ZipFile(path) as src:
        items = [(info.filename, src.read(info.filename)) for info in src.infolist()]
    assert member in dict(items), member
    with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as dst:
        for name, data in items:
            dst.writestr(name, edit(data) if name == member else data)
    return path


def _error(path: Path, **kwargs) -> str:
    with pytest.raises(InputError) as err:
        review_file = open_reviews(path, **kwargs)
        for _ in review_file.chunks():
            pass
    message = str(err.value)
    assert str(path) in message and "\n" not in message
    return message


@pytest.mark.parametrize("number", [1_048_577, 10_000_000])
def test_io_xlsx_row_numbered_past_excel_is_refused_at_once(tmp_path, number):
    path = _workbook(tmp_path / "bomb.xlsx", {0: ["review"], 1: ["fine"], 2: ["last"]})
    _rewrite(path, "xl/worksheets/sheet1.xml", lambda xml: xml.replace(
        b'<row r="3"', f'<row r="{number}"'.encode()).replace(b'r="A3"', f'r="A{number}"'.encode()))
    assert path.stat().st_size < 10_000
    started = time.perf_counter()
    message = _error(path)
    assert time.perf_counter() - started < 5
    assert f"row numbered {number:,}, past the last row a spreadsheet holds (1,048,576)" in message


def test_io_xlsx_far_apart_rows_come_in_bounded_blocks(tmp_path):
    path = _workbook(tmp_path / "gap.xlsx", {0: ["review"], 1: ["first"], 30_000: ["far below"]})
    review_file = open_reviews(path, chunk_rows=1000)
    sizes, texts = [], []
    for chunk in review_file.chunks():
        sizes.append(len(chunk))
        texts.extend(t for t in chunk.texts if t)
    assert max(sizes) <= 1000 and sum(sizes) == 30_000  # the blank rows are kept, in blocks
    assert texts == ["first", "far below"]


def test_io_xlsx_blank_rows_count_against_the_cell_budget(tmp_path, monkeypatch):
    monkeypatch.setattr(xlsx_reader, "MAX_CELLS", 10_000)
    # Three columns: 4,000 rows (nearly all blank) are 12,000 cells in every output.
    path = _workbook(tmp_path / "blank.xlsx", {0: ["review", "a", "b"], 1: ["first", "x", "y"],
                                               4_000: ["last", "x", "y"]})
    assert "blank rows included" in _error(path)
    filled = _workbook(tmp_path / "small.xlsx", {0: ["review", "a", "b"], 1: ["first", "x", "y"],
                                                 3_000: ["last", "x", "y"]})
    assert sum(len(c) for c in open_reviews(filled).chunks()) == 3_000


@pytest.mark.parametrize("member", ["xl/styles.xml", "xl/workbook.xml", "xl/theme/theme1.xml",
                                    "docProps/core.xml", "[Content_Types].xml",
                                    "xl/_rels/workbook.xml.rels"])
def test_io_xlsx_any_parsed_part_expanding_past_its_limit_is_refused(tmp_path, monkeypatch, member):
    monkeypatch.setattr(xlsx_reader, "MAX_PART_BYTES", 50_000)
    path = _workbook(tmp_path / "parts.xlsx", {0: ["review"], 1: ["fine"]})
    # A comment of spaces: valid XML, tiny compressed, large expanded (as a bomb is).
    _rewrite(path, member, lambda xml: re.sub(rb"(\?>)", b"\\1<!--" + b" " * 60_000 + b"-->",
                                              xml, count=1))
    assert f"{member} expands to" in _error(path)


def test_io_xlsx_sheet_and_strings_may_be_larger_than_other_parts(tmp_path, monkeypatch):
    monkeypatch.setattr(xlsx_reader, "MAX_PART_BYTES", 50_000)
    rows = {0: ["review"]} | {i: [f"review number {i}, a fine one"] for i in range(1, 3000)}
    path = _workbook(tmp_path / "big.xlsx", rows)
    with zipfile.ZipFile(path) as archive:
        assert archive.getinfo("xl/sharedStrings.xml").file_size > 50_000
        assert archive.getinfo("xl/worksheets/sheet1.xml").file_size > 50_000
    assert sum(len(c) for c in open_reviews(path).chunks()) == 2999
