"""Rebuild sample_data/reviews.xlsx from sample_data/reviews.csv (same rows, byte-reproducible).

Run from anywhere: python sample_data/make_xlsx.py
"""

from __future__ import annotations

import csv
import datetime as dt
import io
import re
import zipfile
from pathlib import Path

import openpyxl

HERE = Path(__file__).resolve().parent
FIXED_TIME = dt.datetime(2024, 1, 1)


def build(csv_path: Path = HERE / "reviews.csv", xlsx_path: Path = HERE / "reviews.xlsx") -> Path:
    """Write the workbook: sheet "reviews" with the CSV's rows (ids as numbers), sheet "about"."""
    with open(csv_path, newline="", encoding="utf-8") as fh:
        rows = list(csv.reader(fh))
    workbook = openpyxl.Workbook()
    sheet = workbook.active
    sheet.title = "reviews"
    sheet.append(rows[0])
    for row_id, review, sentiment in rows[1:]:
        # An empty review stays an empty cell, as it would in a workbook typed by hand.
        sheet.append([int(row_id), review or None, sentiment])
    sheet.column_dimensions["B"].width = 100
    about = workbook.create_sheet("about")
    about.append(["note"])
    about.append(["Sample movie reviews written for review-scorer; same rows as reviews.csv."])
    workbook.properties.creator = "review-scorer"
    workbook.properties.created = FIXED_TIME
    workbook.properties.modified = FIXED_TIME

    buffer = io.BytesIO()
    workbook.save(buffer)
    # openpyxl stamps the save time into the zip entries and core.xml: pin both so that
    # rebuilding gives the same bytes.
    stamp = FIXED_TIME.strftime("%Y-%m-%dT%H:%M:%SZ")
    with zipfile.ZipFile(buffer) as src, zipfile.ZipFile(xlsx_path, "w") as dst:
        for item in src.infolist():
            data = src.read(item.filename)
            if item.filename == "docProps/core.xml":
                data = re.sub(rb"(<dcterms:(?:created|modified)[^>]*>)[^<]*", rb"\g<1>" +
                              stamp.encode(), data)
            info = zipfile.ZipInfo(item.filename, date_time=FIXED_TIME.timetuple()[:6])
            info.compress_type = zipfile.ZIP_DEFLATED
            dst.writestr(info, data)
    return xlsx_path


if __name__ == "__main__":
    print(build())
