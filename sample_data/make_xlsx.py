"""Rebuild sample_data/reviews.xlsx from sample_data/reviews.csv (same rows, byte-reproducible).

The workbook is written with XlsxWriter, the way Excel and LibreOffice write one: text goes to
the shared-string table, ids are numbers, the header is bold. Run from anywhere:
python sample_data/make_xlsx.py (needs the dev extra: pip install -e .[dev]).
"""

from __future__ import annotations

import csv
import datetime as dt
from pathlib import Path

import xlsxwriter

HERE = Path(__file__).resolve().parent
FIXED_TIME = dt.datetime(2024, 1, 1)


def build(csv_path: Path = HERE / "reviews.csv", xlsx_path: Path = HERE / "reviews.xlsx") -> Path:
    """Write the workbook: sheet "reviews" with the CSV's rows (ids as numbers), sheet "about"."""
    with open(csv_path, newline="", encoding="utf-8") as fh:
        rows = list(csv.reader(fh))
    # strings_to_numbers etc. stay off: every text cell is written as the text it is.
    workbook = xlsxwriter.Workbook(xlsx_path, {"strings_to_formulas": False,
                                               "strings_to_urls": False})
    # Pinned creation time: XlsxWriter stamps it into docProps/core.xml and the zip entries.
    workbook.set_properties({"author": "review-scorer", "created": FIXED_TIME})
    bold = workbook.add_format({"bold": True})
    wrap = workbook.add_format({"text_wrap": True, "valign": "top"})
    sheet = workbook.add_worksheet("reviews")
    sheet.write_row(0, 0, rows[0], bold)
    sheet.set_column(1, 1, 100, wrap)
    for r, (row_id, review, sentiment) in enumerate(rows[1:], 1):
        sheet.write_number(r, 0, int(row_id))
        if review:  # an empty review stays an empty cell, as it would in a workbook typed by hand
            sheet.write_string(r, 1, review)
        sheet.write_string(r, 2, sentiment)
    about = workbook.add_worksheet("about")
    about.write_string(0, 0, "note", bold)
    about.write_string(1, 0, "Sample movie reviews written for review-scorer; same rows as "
                             "reviews.csv.")
    workbook.close()
    return xlsx_path


if __name__ == "__main__":
    print(build())
