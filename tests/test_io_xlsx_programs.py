"""Workbooks written the way spreadsheet programs write them (shared strings, rich text, styles)."""

from __future__ import annotations

import datetime as dt
import zipfile
from pathlib import Path

import pytest

from review_scorer.errors import InputError
from review_scorer.io import open_reviews

xlsxwriter = pytest.importorskip("xlsxwriter")


def _read(path: Path, **kwargs):
    review_file = open_reviews(path, **kwargs)
    chunks = list(review_file.chunks())
    rows = [row for chunk in chunks for row in chunk.frame.to_dict("records")]
    return review_file.info, review_file.notes, rows, [t for c in chunks for t in c.texts]


def _feedback_workbook(path: Path) -> Path:
    """A title row, a header, then text (plain and rich), numbers, dates and empty cells."""
    workbook = xlsxwriter.Workbook(path)
    bold = workbook.add_format({"bold": True})
    italic = workbook.add_format({"italic": True})
    date = workbook.add_format({"num_format": "yyyy-mm-dd"})
    sheet = workbook.add_worksheet("Reviews")
    sheet.write_string(0, 0, "Customer feedback, March", bold)
    sheet.write_row(2, 0, ["id", "review", "stars", "date", "note"], bold)
    sheet.write_number(3, 0, 1)
    sheet.write_string(3, 1, "Loved it, will come back")
    sheet.write_number(3, 2, 4.5)
    sheet.write_datetime(3, 3, dt.datetime(2024, 3, 5), date)
    sheet.write_string(3, 4, "Loved it, will come back")  # the same shared string twice
    sheet.write_number(4, 0, 2)
    sheet.write_rich_string(4, 1, "The food was ", bold, "awful", " and ", italic, "cold")
    sheet.write_number(4, 2, 1)
    sheet.write_datetime(4, 3, dt.datetime(2024, 3, 6), date)
    sheet.write_number(5, 0, 3)  # an empty review, an empty rating, no note
    sheet.write_datetime(5, 3, dt.datetime(2024, 3, 7), date)
    sheet.write_number(6, 0, 4)
    sheet.write_string(6, 1, "Fine")
    sheet.write_number(6, 2, 3)
    workbook.close()
    return path


def test_io_xlsxwriter_workbook_with_shared_and_rich_strings_reads_every_cell(tmp_path):
    path = _feedback_workbook(tmp_path / "feedback.xlsx")
    with zipfile.ZipFile(path) as archive:
        assert "xl/sharedStrings.xml" in archive.namelist()  # the case that used to fail
    info, notes, rows, texts = _read(path)
    assert info.sheet == "Reviews" and info.text_column == "review"
    assert info.columns == ("id", "review", "stars", "date", "note")
    assert texts == ["Loved it, will come back", "The food was awful and cold", None, "Fine"]
    assert [r["id"] for r in rows] == ["1", "2", "3", "4"]
    assert [r["stars"] for r in rows] == ["4.5", "1", "", "3"]
    assert [r["date"] for r in rows] == ["2024-03-05", "2024-03-06", "2024-03-07", ""]
    assert [r["note"] for r in rows] == ["Loved it, will come back", "", "", ""]
    assert any("header is sheet row 3" in n for n in notes)


def test_io_xlsxwriter_workbook_in_chunks_keeps_row_numbers(tmp_path):
    path = tmp_path / "many.xlsx"
    workbook = xlsxwriter.Workbook(path)
    sheet = workbook.add_worksheet()
    sheet.write_row(0, 0, ["review", "label"])
    for i in range(1, 60):
        sheet.write_row(i, 0, [f"review number {i % 7}", "pos" if i % 2 else "neg"])
    workbook.close()
    review_file = open_reviews(path, chunk_rows=8)
    chunks = list(review_file.chunks())
    assert [int(r) for c in chunks for r in c.rows] == list(range(1, 60))
    assert [t for c in chunks for t in c.texts][-1] == f"review number {59 % 7}"
    assert review_file.info.label_column == "label"


def test_io_sample_workbook_is_written_with_shared_strings_and_reads_like_the_csv():
    sample = Path(__file__).resolve().parents[1] / "sample_data"
    with zipfile.ZipFile(sample / "reviews.xlsx") as archive:
        assert "xl/sharedStrings.xml" in archive.namelist()
    _, _, _, xlsx_texts = _read(sample / "reviews.xlsx")
    _, _, _, csv_texts = _read(sample / "reviews.csv")
    assert xlsx_texts == [t or None for t in csv_texts]


def _sheets(path: Path, sheets: list[tuple[str, list[list[object]]]]) -> Path:
    workbook = xlsxwriter.Workbook(path)
    for title, rows in sheets:
        sheet = workbook.add_worksheet(title)
        for r, row in enumerate(rows):
            sheet.write_row(r, 0, row)
    workbook.close()
    return path


NOTES = ("Notes", [["Read me"], ["Exported from the survey tool on Monday; one row per answer."]])
REVIEWS = ("Reviews", [["id", "review"], [1, "great film"], [2, "bad film"]])
NUMBERS = ("Numbers", [["a", "b"], [1, 2], [3, 4]])


@pytest.mark.parametrize(("first", "why"), [
    (NOTES, "has no column named like review text"),  # one wordy column: a guess, not a name
    (NUMBERS, "has no review column"),
    (("Cover", []), "is empty"),
])
def test_io_xlsx_first_sheet_without_reviews_reads_the_sheet_that_has_them(tmp_path, first, why):
    path = _sheets(tmp_path / "book.xlsx", [first, REVIEWS])
    info, notes, _, texts = _read(path)
    assert info.sheet == "Reviews" and texts == ["great film", "bad film"]
    assert f"read sheet 'Reviews': the first sheet, '{first[0]}', {why}" in notes[0]


def test_io_xlsx_given_text_column_is_looked_for_on_other_sheets(tmp_path):
    path = _sheets(tmp_path / "book.xlsx", [NUMBERS, REVIEWS])
    info, _, _, texts = _read(path, text_column="Review")
    assert info.sheet == "Reviews" and texts == ["great film", "bad film"]


def test_io_xlsx_no_sheet_with_reviews_names_the_sheets_and_sheet_option(tmp_path):
    path = _sheets(tmp_path / "book.xlsx", [NUMBERS, ("More", [["x", "y"], [5, 6]])])
    with pytest.raises(InputError) as err:
        _read(path)
    message = str(err.value)
    assert "in sheet 'Numbers'" in message and "'More'" in message and "--sheet NAME" in message
    assert "\n" not in message


def test_io_xlsx_first_sheet_with_a_review_column_is_kept_and_sheet_option_wins(tmp_path):
    path = _sheets(tmp_path / "book.xlsx", [REVIEWS, ("Other", [["review"], ["another one"]])])
    assert _read(path)[0].sheet == "Reviews"
    assert _read(path, sheet="Other")[3] == ["another one"]


def test_io_mistyped_column_name_gets_a_suggestion(tmp_path):
    path = tmp_path / "reviews.csv"
    path.write_text("review,sentiment\ngreat film,pos\n")
    with pytest.raises(InputError) as err:
        open_reviews(path, text_column="revew")
    assert str(err.value).endswith("did you mean 'review'?")
    with pytest.raises(InputError) as err:
        open_reviews(path, label_column="zzz")
    assert "did you mean" not in str(err.value)
