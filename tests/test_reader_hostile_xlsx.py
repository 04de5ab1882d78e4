"""Hostile workbooks for the Excel reader's header finder and error cells: each layout once lost
reviews (a blank header cell, a stray comment cell, a two-cell title, no header row) or scored
Excel error values (#N/A, #DIV/0!) as review text."""

from __future__ import annotations

import datetime as dt
import random
from pathlib import Path

import pandas as pd
import pytest
from click.testing import CliRunner

from review_scorer.io.xlsx import open_xlsx
from tests.conftest import read_reviews

openpyxl = pytest.importorskip("openpyxl")
xlsxwriter = pytest.importorskip("xlsxwriter")

ERRORS = ["#DIV/0!", "#N/A", "#VALUE!", "#REF!", "#NAME?", "#NUM!", "#NULL!"]
LONG = ["The food was cold and the waiter never came back to our table",
        "Loved every minute of the stay, the staff were wonderful",
        "Terrible experience, I will not be coming back here again",
        "Decent value for the price but the room was small",
        "Absolutely fantastic, would recommend it to all my friends",
        "Broke after two days of light use, very disappointed"]


def _with_openpyxl(path: Path, rows: list[list[object]]) -> Path:
    """As a script writes it: inline strings; an error string becomes an error cell (t="e")."""
    workbook = openpyxl.Workbook()
    for row in rows:
        workbook.active.append(row)
    workbook.save(path)
    return path


def _with_xlsxwriter(path: Path, rows: list[list[object]]) -> Path:
    """As Excel and LibreOffice write it: shared strings, typed numbers and dates, and a formula
    with its cached error value where the sheet shows #N/A."""
    workbook = xlsxwriter.Workbook(path)
    sheet = workbook.add_worksheet("Reviews")
    date = workbook.add_format({"num_format": "yyyy-mm-dd"})
    for r, row in enumerate(rows):
        for c, value in enumerate(row):
            if value is None:
                continue
            if value in ERRORS:
                sheet.write_formula(r, c, "=NA()" if value == "#N/A" else "=1/0", None, value)
            elif isinstance(value, str):
                sheet.write_string(r, c, value)
            elif isinstance(value, dt.datetime):
                sheet.write_datetime(r, c, value, date)
            else:
                sheet.write_number(r, c, value)
    workbook.close()
    return path


WRITERS = {"openpyxl": _with_openpyxl, "xlsxwriter": _with_xlsxwriter}


@pytest.fixture(params=sorted(WRITERS))
def write(request, tmp_path):
    def save(name: str, rows: list[list[object]]) -> Path:
        return WRITERS[request.param](tmp_path / name, rows)
    return save


def _read(path: Path, **kwargs):
    review_file, chunks, texts, rows = read_reviews(path, **kwargs)
    frame = pd.concat([c.frame for c in chunks], ignore_index=True)
    return review_file.info, review_file.notes, texts, rows, frame


# ---- 1. a blank header cell ------------------------------------------------------------------


def test_xlsx_blank_header_cell_keeps_the_header_row(write):
    reviews = [["Loved it", "positive"], ["Awful service", "negative"], ["Great value", "positive"],
               ["Cold food", "negative"]]
    info, notes, texts, rows, frame = _read(write("blank_b1.xlsx", [["review"], *reviews]))
    assert info.columns == ("review", "column_2") and info.text_column == "review"
    assert texts == [r[0] for r in reviews] and rows == [1, 2, 3, 4]
    assert frame["column_2"].tolist() == [r[1] for r in reviews]
    note = next(n for n in notes if "blank header cells kept as columns 'column_2'" in n)
    assert "pass --label-column column_2" in note  # it holds labels
    assert not any("header is sheet row" in n for n in notes)


# ---- 2. one stray cell in one record ---------------------------------------------------------


def test_xlsx_stray_cell_in_one_record_does_not_move_the_header(write):
    reviews = ["Loved the coffee", "Cold food, rude waiter", "Fantastic, will return",
               "Not worth the money", "Great value", "Slow delivery"]
    rows = [["review"]] + [[text] for text in reviews]
    rows[5].append("follow up")
    info, _, texts, numbers, frame = _read(write("onecol.xlsx", rows))
    assert info.columns == ("review", "column_2") and info.text_column == "review"
    assert texts == reviews and numbers == list(range(1, 7))
    assert frame["column_2"].tolist() == ["", "", "", "", "follow up", ""]


# ---- 3. titles above the header --------------------------------------------------------------


@pytest.mark.parametrize("title", [[["Export", "2024-05-01"], []],
                                   [["Acme Corp"], ["Quarterly feedback report"], []],
                                   [["Reviews"]],
                                   [["Export", dt.datetime(2024, 5, 1)]]])
def test_xlsx_title_rows_above_the_header_are_skipped_and_named(write, title):
    data = [["great", "positive"], ["awful", "negative"], ["fine", "positive"]]
    info, notes, texts, rows, _ = _read(write("titled.xlsx", [*title, ["review", "label"], *data]))
    assert info.columns == ("review", "label") and info.label_column == "label"
    assert texts == ["great", "awful", "fine"] and rows == [1, 2, 3]
    note = next(n for n in notes if "header is sheet row" in n)
    assert f"sheet row {len(title) + 1}" in note and "skipped" in note
    assert all(repr(cell) in note for row in title for cell in row if isinstance(cell, str))


def test_xlsx_title_over_an_id_column_and_a_blank_header_cell(write):
    rows = [["Customer feedback, March"], [], ["id", "review", None, "stars"]]
    rows += [[i, LONG[i], None if i % 2 else "call back", i % 5 + 1] for i in range(6)]
    info, notes, texts, numbers, _ = _read(write("feedback.xlsx", rows))
    assert info.columns == ("id", "review", "column_3", "stars")
    assert texts == LONG and numbers == list(range(1, 7))
    assert any("sheet row 3" in n and "'Customer feedback, March'" in n for n in notes)


# ---- 4. no header row at all -----------------------------------------------------------------


def test_xlsx_sheet_without_a_header_row_keeps_every_row(write):
    data = [["Great product, loved it", "positive"], ["Terrible, broke in a day", "negative"],
            ["Not bad at all", "positive"], ["Awful service, never again", "negative"],
            ["Wonderful staff and food", "positive"]]
    info, notes, texts, rows, _ = _read(write("noheader.xlsx", data))
    assert info.columns == ("column_1", "column_2") and info.text_column == "column_1"
    assert texts == [r[0] for r in data] and rows == [1, 2, 3, 4, 5]
    note = next(n for n in notes if "no header row" in n)
    assert "sheet row 1" in note and "'Great product, loved it'" in note
    assert "add a header row" in note
    # without a header, the labels are found by their content, as in a headerless CSV
    assert info.label_column == "column_2"
    assert any("label column 'column_2' found by its content" in n for n in notes)
    labeled, _, _, _, _ = _read(write("noheader2.xlsx", data), label_column="column_2")
    assert labeled.label_column == "column_2"


@pytest.mark.parametrize(("first", "is_review"), [
    ("Loved it.", True), ("Not worth the money!", True), ("Would not buy this kettle ever again", True),
    ("Great product", False), ("Comments:", False), ("How was your stay?", False),
    ("Review", False),
    # Six words over long lines are a review, and a short phrase with a column-name word a name,
    # in both readers (they used to differ on these two).
    ("Would not buy this kettle again", True), ("Customer review.", False),
])
def test_xlsx_one_column_sheet_reads_its_first_row_as_a_delimited_file_does(write, tmp_path,
                                                                            first, is_review):
    """A one-column sheet whose first row is a short sentence starts with a review, not a
    header: the same rule (line_shapes.reads_as_review) as a one-column CSV file, so the same
    reviews come out of the same column saved either way."""
    below = LONG[:5]
    info, _, texts, rows, _ = _read(write("one.xlsx", [[first], *[[t] for t in below]]))
    csv_path = tmp_path / "one.csv"
    csv_path.write_text("\n".join([first, *below]) + "\n", encoding="utf-8")
    csv_info, _, csv_texts, _, _ = _read(csv_path)
    assert texts == csv_texts and info.columns == csv_info.columns
    if is_review:
        assert texts == [first, *below] and rows == [1, 2, 3, 4, 5, 6]
        assert info.columns == ("column_1",)
    else:
        assert texts == below and info.columns == (first,)


@pytest.mark.parametrize("kinds", [["long"], ["long", "stars"], ["id", "long", "date"]])
def test_xlsx_sheet_of_records_without_labels_is_read_without_a_header(write, kinds):
    def cell(kind, i):
        return {"long": LONG[i % 6], "stars": i % 5 + 1, "id": 100 + i,
                "date": dt.datetime(2024, 1, 1) + dt.timedelta(days=i)}[kind]
    data = [[cell(kind, i) for kind in kinds] for i in range(8)]
    info, notes, texts, rows, _ = _read(write("plain.xlsx", data))
    assert len(rows) == 8 and texts == [LONG[i % 6] for i in range(8)]
    assert info.columns == tuple(f"column_{i + 1}" for i in range(len(kinds)))
    assert any("no header row" in n for n in notes)


HEADERS = [
    (["review", "label"], ["long", "label"]),
    (["Review Text", "Rating"], ["long", "stars"]),
    (["text", "sentiment"], ["short", "label"]),
    (["Title", "Review", "Stars"], ["short", "long", "stars"]),
    (["id", "review", "stars", "date", "note"], ["id", "long", "stars", "date", "sparse"]),
    (["Comentario", "Puntuación"], ["long", "stars"]),
    (["Customer Review", "Date of stay"], ["long", "date"]),
    (["What did you think of your stay?", "Respondent"], ["long", "id"]),
    (["Feedback"], ["long"]),
    (["Comments"], ["short"]),
    (["review", "label"], ["long", "halflabel"]),
]


def _records(kinds: list[str], n: int, rng: random.Random) -> list[list[object]]:
    short = ["Great", "Bad", "Loved it", "Meh", "Too slow", "Nice staff", "Cold food", "OK"]
    make = {"long": lambda i: rng.choice(LONG), "short": lambda i: rng.choice(short),
            "label": lambda i: rng.choice(["positive", "negative"]),
            "halflabel": lambda i: rng.choice(["positive", "negative", None, None]),
            "stars": lambda i: rng.randint(1, 5), "id": lambda i: 1000 + i,
            "date": lambda i: dt.datetime(2024, 1, 1) + dt.timedelta(days=i),
            "sparse": lambda i: "follow up" if i == 2 else None}
    return [[make[kind](i) for kind in kinds] for i in range(n)]


@pytest.mark.parametrize(("header", "kinds"), HEADERS, ids=[", ".join(h) for h, _ in HEADERS])
def test_xlsx_ordinary_headers_are_never_read_as_data(write, header, kinds):
    rng = random.Random(7)
    for n in (3, 12):
        for title in ([], [["Customer reviews, March"], []]):
            data = _records(kinds, n, rng)
            info, notes, _, rows, _ = _read(write("ordinary.xlsx", [*title, header, *data]))
            assert info.columns == tuple(header), (title, n)
            assert rows == list(range(1, n + 1)), (title, n)
            assert not any("no header row" in note for note in notes)


def test_xlsx_seeded_layouts_never_lose_a_record(tmp_path):
    """Titles, headers (or none), blank cells and stray cells in random layouts: every record
    is read, in order; at most the title and header rows are added as records."""
    rng = random.Random(2024)
    titles = [[], [["Customer reviews, March"]], [["Export", "2024-05-01"], []], [["Reviews"]],
              [["Acme Corp"], ["Quarterly feedback report"], []]]
    for n in range(60):
        header, kinds = rng.choice(HEADERS)
        title = rng.choice(titles)
        data = _records(kinds, rng.randint(2, 20), rng)
        for row in data:
            if rng.random() < 0.1:
                row.append("stray note")
        text_at = kinds.index("long") if "long" in kinds else kinds.index("short")
        layout = title + ([header] if rng.random() < 0.8 else []) + data
        path = WRITERS[rng.choice(sorted(WRITERS))](tmp_path / f"layout{n}.xlsx", layout)
        try:
            _, _, _, _, frame = _read(path)
        except Exception as exc:  # only a file with no text column to guess may be refused
            assert "review text" in str(exc), (layout, exc)
            continue
        cells = frame.iloc[:, text_at].tolist()
        wanted = [row[text_at] for row in data]
        assert len(frame) - len(data) <= len(title) + 1, (layout, len(frame))
        assert cells[len(cells) - len(wanted):] == wanted, layout


# ---- the --text-column name makes its row the header -----------------------------------------


def test_xlsx_text_column_name_picks_the_header_row(tmp_path):
    path = _with_openpyxl(tmp_path / "named.xlsx",
                          [["Reviews"], ["review"]] + [[text] for text in LONG])
    source = open_xlsx(path, 100, None)  # two name-like one-cell rows: the upper is taken
    assert list(next(source.blocks).frame.columns) == ["Reviews"]
    source.blocks.close()
    source = open_xlsx(path, 100, None, text_column="Review")
    block = next(source.blocks)
    assert list(block.frame.columns) == ["review"] and block.frame["review"].tolist() == LONG
    assert any("header is sheet row 2" in n and "'Reviews'" in n for n in source.notes)
    source.blocks.close()


# ---- 5. Excel error values -------------------------------------------------------------------


def test_xlsx_error_cells_are_read_as_empty_with_a_note(write):
    rows = [["id", "review", "label"]]
    rows += [[i, ERRORS[i] if i < len(ERRORS) else LONG[i - len(ERRORS)], "positive"]
             for i in range(len(ERRORS) + 2)]
    rows[3][2] = "#N/A"  # a label cell too
    info, notes, texts, numbers, frame = _read(write("errors.xlsx", rows))
    assert info.text_column == "review" and numbers == list(range(1, len(ERRORS) + 3))
    assert texts == [None] * len(ERRORS) + LONG[:2]
    assert frame["label"].tolist()[2] == "" and frame["id"].tolist() == [str(i) for i in range(9)]
    note = next(n for n in notes if "Excel error value" in n)
    assert "8 cells hold" in note and "'review', 'label'" in note
    assert "the first at row 1 (sheet row 2) in 'review'" in note
    assert all(code in note for code in ERRORS) and "#N/A x2" in note


def test_xlsx_row_of_error_cells_at_the_end_is_kept(write):
    _, notes, texts, rows, _ = _read(write("last.xlsx", [["review"], ["fine film"], ["#N/A"]]))
    assert texts == ["fine film", None] and rows == [1, 2]
    assert any("1 cell holds an Excel error value (#N/A)" in n for n in notes)


# ---- the same files through the command line -------------------------------------------------


def _score(path: Path, model_dir: Path, out: Path, *args: str):
    from review_scorer.cli import cli

    result = CliRunner().invoke(cli, ["score", str(path), "--model-dir", str(model_dir),
                                      "--out-dir", str(out), *args], catch_exceptions=False)
    predictions = out / f"{path.stem}.predictions.csv"
    frame = pd.read_csv(predictions, dtype=str, keep_default_na=False) if predictions.exists() else None
    return result, frame


def test_xlsx_hostile_layouts_score_every_review_from_the_command_line(trained_model, tmp_path):
    model = trained_model.model_dir
    blank = _with_xlsxwriter(tmp_path / "blank_b1.xlsx", [["review"], ["Loved it", "positive"],
                                                          ["Awful service", "negative"]])
    result, frame = _score(blank, model, tmp_path / "out1")
    assert result.exit_code == 0, result.output
    assert "2 rows" in result.output and "text column: 'review'" in result.output
    assert frame["review"].tolist() == ["Loved it", "Awful service"]

    titled = _with_xlsxwriter(tmp_path / "title2.xlsx", [["Export", "2024-05-01"], [],
                                                         ["review", "label"], ["great", "positive"],
                                                         ["awful", "negative"]])
    result, frame = _score(titled, model, tmp_path / "out2", "--text-column", "review")
    assert result.exit_code == 0, result.output
    assert "note: sheet 'Reviews': the header is sheet row 3" in result.output
    assert frame["review"].tolist() == ["great", "awful"]

    errors = _with_xlsxwriter(tmp_path / "errors.xlsx", [["review", "label"], ["great", "positive"],
                                                         ["#DIV/0!", "negative"], ["awful", "negative"]])
    result, frame = _score(errors, model, tmp_path / "out3")
    assert result.exit_code == 0, result.output
    assert frame["status"].tolist() == ["ok", "empty text", "ok"]
    assert frame["label"].tolist() == ["positive", "negative", "negative"]
    assert "note: sheet 'Reviews': 1 cell holds an Excel error value (#DIV/0!)" in result.output


def test_xlsx_sheet_without_a_header_from_the_command_line(trained_model, tmp_path):
    path = _with_openpyxl(tmp_path / "noheader.xlsx",
                          [["Great product, loved it", "positive"], ["Terrible, broke in a day", "negative"],
                           ["Not bad at all", "positive"], ["Awful service, never again", "negative"]])
    result, frame = _score(path, trained_model.model_dir, tmp_path / "out")
    assert result.exit_code == 0, result.output
    assert "4 rows" in result.output and "no header row" in result.output
    assert frame["column_1"].tolist()[0] == "Great product, loved it" and len(frame) == 4
    assert "accuracy" in result.output  # the labels in column_2 were found and used


def test_xlsx_text_column_option_picks_the_header_row_from_the_command_line(trained_model, tmp_path):
    path = _with_openpyxl(tmp_path / "named.xlsx", [["Reviews"], ["review"]] + [[t] for t in LONG])
    result, frame = _score(path, trained_model.model_dir, tmp_path / "out", "--text-column", "review")
    assert result.exit_code == 0, result.output
    assert "text column: 'review'" in result.output and "header is sheet row 2" in result.output
    assert frame["review"].tolist() == LONG
