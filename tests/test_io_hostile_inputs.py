"""Hostile and awkward input files (issue 9): each once lost rows, crashed or misread."""

from __future__ import annotations

import codecs
import os
import re
import zipfile
from pathlib import Path

import numpy as np
import openpyxl
import pandas as pd
import pytest

from review_scorer.errors import InputError
from review_scorer.io import open_reviews
from review_scorer.io import xlsx as xlsx_reader

REVIEWS = ["Great film, loved it", "Awful plot and worse acting", "Loved the cast",
           "Not for me at all", "Bad acting all round", "A fine score and lovely sets",
           "Far too long and slow", "A gem of a film", "Dull from start to end", "Superb, see it"]


def read_all(path: Path, **kwargs):
    review_file = open_reviews(path, **kwargs)
    chunks = list(review_file.chunks())
    texts = [t for c in chunks for t in c.texts]
    rows = [int(r) for c in chunks for r in c.rows]
    return review_file, chunks, texts, rows


def write_xlsx(path: Path, rows: list[list[object]], *, title: str = "reviews",
               hidden_first: list[list[object]] | None = None) -> Path:
    workbook = openpyxl.Workbook()
    sheet = workbook.active
    if hidden_first is not None:
        sheet.title = "hidden"
        for row in hidden_first:
            sheet.append(row)
        sheet.sheet_state = "hidden"
        sheet = workbook.create_sheet(title)
    else:
        sheet.title = title
    for row in rows:
        sheet.append(row)
    workbook.save(path)
    return path


def patch_zip(path: Path, member: str, edit) -> Path:
    """Rewrite one member of a zip (an xlsx) through ``edit(bytes) -> bytes``."""
    with zipfile.ZipFile(path) as src:
        items = [(info, src.read(info.filename)) for info in src.infolist()]
    with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as dst:
        for info, data in items:
            dst.writestr(info.filename, edit(data) if info.filename == member else data)
    return path


def one_line_error(path: Path, **kwargs) -> str:
    with pytest.raises(InputError) as err:
        read_all(path, **kwargs)
    message = str(err.value)
    assert str(path) in message and "\n" not in message
    return message


# ---- 1. an unbalanced quote swallowing records ---------------------------------------------


def _ten_records(path: Path, row4: str) -> Path:
    lines = ["id,review,sentiment"]
    for i, text in enumerate(REVIEWS, 1):
        label = "pos" if i % 2 else "neg"
        if i == 4:
            lines.append(row4)
        elif i == 8:
            lines.append(f'{i},A "quoted" gem,{label}')
        else:
            lines.append(f"{i},{text.replace(',', '')},{label}")
    path.write_text("\n".join(lines) + "\n")
    return path


def test_io_unbalanced_quote_that_swallows_records_names_row_and_lines(tmp_path):
    path = _ten_records(tmp_path / "reviews.csv", '4,"I liked it, mostly,neg')
    message = one_line_error(path, chunk_rows=3)
    assert "row 4 (line 5) opens a quote that is never closed" in message
    assert "swallows lines 6-9" in message and "fix the quote" in message


def test_io_unbalanced_quote_found_in_a_later_chunk(tmp_path):
    path = tmp_path / "late.csv"
    good = "".join(f"{i},review number {i} is fine,pos\n" for i in range(1, 41))
    bad = '41,"this one never closes,neg\n' + "".join(
        f"{i},review number {i},neg\n" for i in range(42, 46)) + '46,a "word",pos\n47,end,pos\n'
    path.write_text("id,review,sentiment\n" + good + bad)
    assert "row 41 (line 42)" in one_line_error(path, chunk_rows=10)


def test_io_genuine_multiline_quoted_reviews_still_read(tmp_path):
    path = _ten_records(tmp_path / "ok.csv", '4,"I liked it, mostly.\nSecond paragraph, also fine.\n'
                                             '3 stars, would watch again",neg')
    path.write_text(path.read_text().replace('A "quoted" gem', 'A ""quoted"" gem'))
    _, _chunks, texts, rows = read_all(path, chunk_rows=3)
    assert rows == list(range(1, 11)) and texts[3].count("\n") == 2
    assert texts[7] == 'A ""quoted"" gem'  # an unquoted field keeps its quotes as written


# ---- 2. a stale <dimension> in the sheet XML ------------------------------------------------


@pytest.mark.parametrize("ref", ["A1:C4", "A1"])
def test_io_xlsx_stale_dimension_still_reads_every_row_and_column(tmp_path, ref):
    rows = [["id", "review", "sentiment"]] + [
        [i, text, "pos" if i % 2 else "neg"] for i, text in enumerate(REVIEWS, 1)]
    path = write_xlsx(tmp_path / "stale.xlsx", rows)
    patch_zip(path, "xl/worksheets/sheet1.xml",
              lambda xml: re.sub(rb'<dimension ref="[^"]*"\s*/>', f'<dimension ref="{ref}"/>'.encode(),
                                 xml))
    assert f'<dimension ref="{ref}"/>'.encode() in zipfile.ZipFile(path).read(
        "xl/worksheets/sheet1.xml")
    review_file, _chunks, texts, rows_read = read_all(path)
    assert review_file.info.columns == ("id", "review", "sentiment")
    assert review_file.info.text_column == "review" and review_file.info.label_column == "sentiment"
    assert texts == REVIEWS and rows_read == list(range(1, 11))


# ---- 3. title rows and blank header cells ----------------------------------------------------


def test_io_xlsx_title_rows_above_the_header_are_skipped(tmp_path):
    rows = [["Customer reviews, March"], [], ["review", "label", "store"]]
    rows += [[text, "pos" if i % 2 else "neg", f"store {i % 3}"] for i, text in enumerate(REVIEWS)]
    path = write_xlsx(tmp_path / "titled.xlsx", rows)
    review_file, _chunks, texts, rows_read = read_all(path)
    info = review_file.info
    assert info.columns == ("review", "label", "store")
    assert (info.text_column, info.label_column) == ("review", "label")
    assert texts == REVIEWS and "review" not in texts  # the header is never scored
    assert rows_read == list(range(1, 11))
    assert any("sheet row 3" in note for note in info.notes)


def test_io_xlsx_cells_under_a_blank_header_cell_are_kept(tmp_path):
    rows = [["id", "review", None, "sentiment"]]
    rows += [[i, text, f"note {i}", "pos"] for i, text in enumerate(REVIEWS[:3], 1)]
    rows[2].append("stray")  # a value right of the last header cell, in the first rows
    path = write_xlsx(tmp_path / "blank.xlsx", rows)
    review_file, chunks, _texts, _ = read_all(path)
    info = review_file.info
    assert info.columns == ("id", "review", "column_3", "sentiment", "column_5")
    assert chunks[0].frame["column_3"].tolist() == ["note 1", "note 2", "note 3"]
    assert chunks[0].frame["column_5"].tolist() == ["", "stray", ""]
    assert any("column_3" in n and "blank header" in n for n in info.notes)
    # The same layout as CSV gets the same names.
    csv_path = tmp_path / "blank.csv"
    csv_path.write_text("id,review,,sentiment\n1,a good film,note,pos\n")
    assert open_reviews(csv_path).info.columns == ("id", "review", "column_3", "sentiment")


@pytest.mark.parametrize("kind", ["csv", "xlsx"])
def test_io_columns_named_alike_are_kept_apart_and_named_in_a_note(tmp_path, kind):
    """Two columns called 'review' (a pasted-in column): both kept, the second renamed, the
    first read as the text, and a note says so, in both readers."""
    rows = [["review", "stars", "review"]] + [[text, 5, f"reply {i}"] for i, text in enumerate(REVIEWS)]
    if kind == "csv":
        path = tmp_path / "alike.csv"
        path.write_text(pd.DataFrame(rows[1:]).to_csv(header=rows[0], index=False))
    else:
        path = write_xlsx(tmp_path / "alike.xlsx", rows)
    review_file, chunks, texts, _rows = read_all(path)
    info = review_file.info
    assert info.columns == ("review", "stars", "review.1") and info.text_column == "review"
    assert texts == REVIEWS
    assert chunks[0].frame["review.1"].tolist()[:2] == ["reply 0", "reply 1"]
    note = [n for n in info.notes if "named alike" in n]
    assert len(note) == 1 and "'review' (column 3) as 'review.1'" in note[0]
    plain = tmp_path / f"plain.{kind}"
    if kind == "csv":
        plain.write_text("review,stars\na good film,5\n")
    else:
        write_xlsx(plain, [["review", "stars"], ["a good film", 5]])
    assert not any("named alike" in n for n in read_all(plain)[0].info.notes)


def test_io_xlsx_value_right_of_the_columns_after_the_first_chunk_is_an_error(tmp_path):
    rows = [["id", "review"]] + [[i, f"review number {i}"] for i in range(1, 9)]
    rows[7].append("surprise")
    path = write_xlsx(tmp_path / "wide.xlsx", rows)
    message = one_line_error(path, chunk_rows=3)
    assert "row 8" in message and "column C" in message


def test_io_xlsx_hidden_first_sheet_reads_first_visible_one(tmp_path):
    path = write_xlsx(tmp_path / "hidden.xlsx", [["review"], ["the visible one"]],
                      hidden_first=[["review"], ["secret draft"]])
    review_file, _, texts, _ = read_all(path)
    assert review_file.info.sheet == "reviews" and texts == ["the visible one"]
    assert any("'hidden' is hidden" in note for note in review_file.info.notes)
    _, _, texts, _ = read_all(path, sheet="hidden")  # still readable when asked by name
    assert texts == ["secret draft"]


# ---- 7. formulas without cached values --------------------------------------------------------


def test_io_xlsx_formula_text_cells_without_values_are_flagged(tmp_path):
    rows = [["id", "first", "second", "review"]]
    rows += [[i, f"part {i}", "more", f'=B{i + 1}&" "&C{i + 1}'] for i in range(1, 4)]
    rows.append([4, "x", "y", "typed by hand, a real review"])
    path = write_xlsx(tmp_path / "formulas.xlsx", rows)  # openpyxl saves no cached results
    review_file, chunks, texts, _ = read_all(path)
    assert texts == [None, None, None, "typed by hand, a real review"]
    assert chunks[0].formula.tolist() == [True, True, True, False]
    notes = " ".join(review_file.notes)
    assert "'review': 3 cells holding a formula with no saved result (rows 1, 2, 3)" in notes
    # A cached value (as Excel saves it) is read as the value, not flagged.
    patch_zip(path, "xl/worksheets/sheet1.xml", lambda xml: re.sub(
        rb'<c r="D2"([^>]*)><f>(.*?)</f><v\s*/>', rb'<c r="D2"\1 t="str"><f>\2</f><v>cached</v>',
        xml))
    review_file, chunks, texts, _ = read_all(path)
    assert chunks[0].formula.tolist() == [False, True, True, False] and texts[0] == "cached"


# ---- 8. a column named like review text holding numbers ----------------------------------------


def test_io_review_named_column_with_numbers_is_not_the_text(tmp_path):
    counts = tmp_path / "counts.csv"
    counts.write_text("product,reviews,comment\n" + "".join(
        f"lamp {i % 2},{i * 3},{text.replace(',', '')}\n" for i, text in enumerate(REVIEWS)))
    review_file, _, texts, _ = read_all(counts)
    assert review_file.info.text_column == "comment" and texts[0] == "Great film loved it"
    assert any("'reviews' is named like review text but holds numbers" in n
               for n in review_file.notes)
    stars = tmp_path / "stars.csv"
    stars.write_text("id,title,text,Review\n" + "".join(
        f"{i},Title {i},{text.replace(',', '')},{1 + i % 5}\n" for i, text in enumerate(REVIEWS)))
    assert open_reviews(stars).info.text_column == "text"


# ---- 10. UTF-32 and BOM-less UTF-16 ---------------------------------------------------------


@pytest.mark.parametrize(("codec", "bom", "expected"), [
    ("utf-32-le", codecs.BOM_UTF32_LE, "utf-32"), ("utf-32-be", codecs.BOM_UTF32_BE, "utf-32"),
    ("utf-16-le", codecs.BOM_UTF16_LE, "utf-16"), ("utf-16-le", b"", "utf-16-le"),
    ("utf-16-be", b"", "utf-16-be"),
])
def test_io_utf32_and_bomless_utf16_are_read(tmp_path, codec, bom, expected):
    path = tmp_path / "wide.csv"
    path.write_bytes(bom + "review,stars\ncafé crème, très bien,4\nnaïve plot,2\n"
                     .replace("café crème, très bien", '"café crème, très bien"').encode(codec))
    review_file, _, texts, rows = read_all(path)
    assert review_file.info.encoding == expected
    assert texts == ["café crème, très bien", "naïve plot"] and rows == [1, 2]
    assert review_file.info.columns == ("review", "stars")


def test_io_nul_bytes_that_are_not_utf16_are_still_binary(tmp_path):
    path = tmp_path / "bin.csv"
    path.write_bytes(bytes(range(256)) * 4)
    assert "binary file" in one_line_error(path)


# ---- 11. header only -------------------------------------------------------------------------


@pytest.mark.parametrize("name", ["header.csv", "header.xlsx"])
def test_io_header_only_file_gives_columns_and_no_rows(tmp_path, name):
    path = tmp_path / name
    if name.endswith(".xlsx"):
        write_xlsx(path, [["id", "review", "sentiment"]])
    else:
        path.write_text("id,review,sentiment\r\n")
    review_file, chunks, _, _ = read_all(path)
    assert review_file.info.columns == ("id", "review", "sentiment") and chunks == []


# ---- 12. an auto-detected label column ---------------------------------------------------------


def test_io_auto_label_column_with_a_neutral_value_is_used_per_row(tmp_path):
    path = tmp_path / "neutral.csv"
    labels = ["pos", "neg", "neutral", "pos", "neg", "pos", "neg", "pos", "pos", "neg"]
    path.write_text("review,sentiment\n" + "".join(
        f"{t.replace(',', '')},{lab}\n" for t, lab in zip(REVIEWS, labels)))
    review_file, chunks, _, _ = read_all(path, chunk_rows=4)
    assert review_file.info.label_column == "sentiment"
    got = [int(v) for c in chunks for v in c.labels]
    assert got == [1, 0, -1, 1, 0, 1, 0, 1, 1, 0]
    notes = review_file.notes
    assert "label column 'sentiment' found by its name" in notes
    assert ("label column 'sentiment': 1 row holds values that are not labels (row 3): scored, "
            "left out of accuracy") in notes


def test_io_unknown_labels_after_the_first_chunk_never_fail_the_file(tmp_path):
    path = tmp_path / "late.csv"
    rows = [f"review {i},{'pos' if i % 2 else 'neg'}" for i in range(1, 5501)]
    rows += [f"review {i},mixed" for i in range(5501, 5508)]
    path.write_text("text,label\n" + "\n".join(rows) + "\n")
    review_file, chunks, _, _ = read_all(path)
    labels = np.concatenate([c.labels for c in chunks])
    assert len(labels) == 5507 and (labels[5500:] == -1).all()
    assert ("label column 'label': 7 rows hold values that are not labels (rows 5501, 5502, "
            "5503, 5504, 5505, ...): scored, left out of accuracy") in review_file.notes


def test_io_given_label_column_with_unknown_values_is_per_row(tmp_path):
    path = tmp_path / "given.csv"
    path.write_text("review,verdict\ngood film,pos\nodd one,maybe\nbad film,neg\n")
    _review_file, chunks, _, _ = read_all(path, label_column="verdict")
    assert chunks[0].labels.tolist() == [1, -1, 0]
    assert chunks[0].unknown_label.tolist() == [False, True, False]


def test_io_label_detection_can_be_turned_off(tmp_path):
    path = tmp_path / "off.csv"
    path.write_text("review,label\ngood film,pos\nbad film,neg\n")
    review_file, chunks, _, _ = read_all(path, label_column="")
    assert review_file.info.label_column is None and chunks[0].labels is None


def test_io_label_column_mostly_other_values_is_not_used_and_says_why(tmp_path):
    path = tmp_path / "cls.csv"
    path.write_text("class,review\nA,fine film\nB,bad film\nC,so-so film\n")
    review_file, chunks, _, _ = read_all(path)
    assert review_file.info.label_column is None and chunks[0].labels is None
    assert any("'class' is named like a label column but holds other values" in n
               for n in review_file.notes)


# ---- 13. inputs that used to crash -----------------------------------------------------------------


def test_io_duplicate_and_colliding_column_names_are_made_unique(tmp_path):
    path = tmp_path / "dup.csv"
    path.write_text("row,row_original,review,review,review.1\n1,2,first text,second,third\n")
    info = open_reviews(path).info
    assert info.columns == ("row", "row_original", "review", "review.2", "review.1")
    assert len(set(info.columns)) == len(info.columns)


def test_io_xlsx_bad_shared_string_index_is_an_input_error(tmp_path):
    import xlsxwriter

    path = tmp_path / "ss.xlsx"
    workbook = xlsxwriter.Workbook(path)  # shared strings, as spreadsheet programs write them
    sheet = workbook.add_worksheet("reviews")
    for r, text in enumerate(["review", "a fine film", "a bad film"]):
        sheet.write_string(r, 0, text)
    workbook.close()
    assert read_all(path)[2] == ["a fine film", "a bad film"]  # the references are fine as written
    # Point the last cell past the three-entry table.
    patch_zip(path, "xl/worksheets/sheet1.xml", lambda xml: re.sub(
        rb'(<c r="A3" t="s"><v>)2(</v>)', rb"\g<1>99\g<2>", xml))
    message = one_line_error(path)
    assert "sheet 'reviews' cell A3 refers to a shared string" in message
    assert "it has 3" in message and "damaged" in message


def test_io_xlsx_truncated_sheet_xml_is_an_input_error(tmp_path):
    path = write_xlsx(tmp_path / "cut.xlsx", [["review"]] + [[f"review {i}"] for i in range(50)])
    patch_zip(path, "xl/worksheets/sheet1.xml", lambda xml: xml[: len(xml) // 2])
    assert "may be damaged" in one_line_error(path)


@pytest.mark.parametrize("damage", ["truncated", "flipped"])
def test_io_xlsx_corrupt_zip_is_an_input_error(tmp_path, damage):
    path = write_xlsx(tmp_path / "zip.xlsx", [["review"]] + [[f"review {i}"] for i in range(300)])
    raw = bytearray(path.read_bytes())
    if damage == "truncated":
        raw = raw[: len(raw) * 2 // 3]
    else:
        start = raw.find(b"xl/worksheets/sheet1.xml") + 40
        raw[start:start + 64] = bytes(64)
    path.write_bytes(bytes(raw))
    one_line_error(path)


# ---- 17. a shared-strings bomb ------------------------------------------------------------------


def _shared_strings_workbook(path: Path, count: int) -> Path:
    write_xlsx(path, [["review"], ["x"]])
    body = b"".join(b"<si><t>%d</t></si>" % i for i in range(count))
    table = (b'<?xml version="1.0" encoding="UTF-8"?><sst xmlns="http://schemas.openxmlformats.org'
             b'/spreadsheetml/2006/main" count="%d" uniqueCount="%d">' % (count, count) + body
             + b"</sst>")
    with zipfile.ZipFile(path, "a", zipfile.ZIP_DEFLATED) as archive:
        archive.writestr("xl/sharedStrings.xml", table)
    patch_zip(path, "[Content_Types].xml", lambda xml: xml.replace(b"</Types>", (
        b'<Override PartName="/xl/sharedStrings.xml" ContentType="application/vnd.openxmlformats-'
        b'officedocument.spreadsheetml.sharedStrings+xml"/></Types>')))
    return path


def test_io_xlsx_shared_strings_past_the_limit_are_refused(tmp_path, monkeypatch):
    monkeypatch.setattr(xlsx_reader, "MAX_SHARED_STRINGS", 1000)
    path = _shared_strings_workbook(tmp_path / "bomb.xlsx", 1500)
    message = one_line_error(path)
    assert "more than 1,000 distinct strings" in message and "save it as CSV" in message
    ok = _shared_strings_workbook(tmp_path / "fine.xlsx", 900)
    assert read_all(ok)[2] == ["x"]


def test_io_xlsx_xml_expanding_past_the_limit_is_refused_before_parsing(tmp_path, monkeypatch):
    monkeypatch.setattr(xlsx_reader, "MAX_XML_BYTES", 10_000)
    path = _shared_strings_workbook(tmp_path / "big.xlsx", 2000)
    message = one_line_error(path)
    assert "xl/sharedStrings.xml expands to" in message and "the limit is 10.0 KB" in message


def test_io_xlsx_limits_admit_a_million_row_workbook():
    # 1M IMDB-length reviews (about 1.3 kB each) and a few text columns fit under the limits.
    assert xlsx_reader.MAX_XML_BYTES >= 1_000_000 * 1_300 * 1.2
    assert xlsx_reader.MAX_SHARED_STRINGS >= 3 * 1_000_000
    assert xlsx_reader.MAX_CELLS >= 1_000_000 * 20


# ---- smaller ones ------------------------------------------------------------------------------


def test_io_fifo_is_not_called_empty(tmp_path):
    path = tmp_path / "pipe.csv"
    os.mkfifo(path)
    message = one_line_error(path)
    assert "not a regular file" in message and "empty" not in message


def test_io_name_that_is_only_a_suffix(tmp_path):
    path = tmp_path / ".csv"
    path.write_text("review\na fine film\n")
    assert read_all(path)[2] == ["a fine film"]


def test_io_sheet_option_for_a_non_excel_file_is_refused(tmp_path):
    path = tmp_path / "r.csv"
    path.write_text("review\na fine film\n")
    assert "--sheet only applies to Excel files" in one_line_error(path, sheet="Sheet1")


def test_io_excel_sep_line_sets_the_delimiter(tmp_path):
    path = tmp_path / "excel.csv"
    path.write_text("sep=;\nid;review;sentiment\n1;Good, very good;pos\n2;Bad, so bad;neg\n")
    review_file, chunks, texts, rows = read_all(path)
    assert review_file.info.delimiter == ";" and review_file.info.columns == (
        "id", "review", "sentiment")
    assert texts == ["Good, very good", "Bad, so bad"] and rows == [1, 2]
    assert chunks[0].labels.tolist() == [1, 0]


def test_io_jsonl_saved_as_txt_is_read_as_jsonl(tmp_path):
    path = tmp_path / "export.txt"
    path.write_text('{"id": 1, "review": "good, really good", "label": "pos"}\n'
                    '{"id": 2, "review": "bad", "label": "neg"}\n')
    review_file, chunks, texts, _ = read_all(path)
    assert review_file.info.format == "jsonl" and texts == ["good, really good", "bad"]
    assert chunks[0].labels.tolist() == [1, 0]


def test_io_xlsx_header_far_below_blank_rows(tmp_path):
    path = write_xlsx(tmp_path / "low.xlsx", [[]] * 60 + [["review", "label"], ["fine film", "pos"]])
    review_file, _, texts, rows = read_all(path)
    assert texts == ["fine film"] and rows == [1]
    assert any("sheet row 61" in n for n in review_file.notes)
    empty = write_xlsx(tmp_path / "empty.xlsx", [[]] * 5)
    assert "is empty" in one_line_error(empty)
