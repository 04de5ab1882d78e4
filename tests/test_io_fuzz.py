"""Seeded fuzzing of the review readers: malformed CSV and XLSX files either fail with one clear
line naming the file, or yield exactly the records a strict parser counts, never fewer."""

from __future__ import annotations

import codecs
import csv
import io
import random
import re
import zipfile
from pathlib import Path

import openpyxl
import pytest

from review_scorer.errors import InputError
from review_scorer.io import open_reviews

WORDS = ["good", "bad", "film", "plot", "acting", "loved", "hated", "it", "was", "the", "and",
         "très", "naïve", "ok", "5", "3.5", "yes", "no"]
NAMES = ["id", "review", "text", "label", "sentiment", "stars", "", "review", "date", "store"]


def _cell(rng: random.Random) -> str:
    words = rng.choices(WORDS, k=rng.randint(0, 8))
    text = " ".join(words)
    roll = rng.random()
    if roll < 0.1:
        text += ", with a comma"
    elif roll < 0.15:
        text += '\nsecond line'
    elif roll < 0.2:
        text = f'she said "{text}"'
    return text


def _csv_text(rng: random.Random) -> str:
    width = rng.randint(1, 4)
    header = rng.sample(NAMES, width)
    if "review" not in header and rng.random() < 0.7:
        header[0] = "review"
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator=rng.choice(["\n", "\r\n"]))
    writer.writerow(header)
    for _ in range(rng.randint(0, 25)):
        writer.writerow([_cell(rng) for _ in range(width)])
    return buffer.getvalue()


def _mutate_text(rng: random.Random, text: str) -> str:
    for _ in range(rng.randint(1, 3)):
        at = rng.randint(0, len(text))
        kind = rng.choice(["quote", "unquote", "nul", "semicolon", "ragged", "newline", "blank",
                           "truncate", "cr", "sep"])
        if kind == "quote":
            text = text[:at] + '"' + text[at:]
        elif kind == "unquote" and '"' in text:
            i = rng.choice([m.start() for m in re.finditer('"', text)])
            text = text[:i] + text[i + 1:]
        elif kind == "nul":
            text = text[:at] + "\x00" + text[at:]
        elif kind == "semicolon":
            text = text.replace(",", ";", rng.randint(1, 5))
        elif kind == "ragged":
            text = text[:at] + "," + text[at:]
        elif kind == "newline":
            text = text[:at] + "\n" + text[at:]
        elif kind == "blank":
            text = text + "\n" * rng.randint(1, 3) if rng.random() < 0.5 else "\n" + text
        elif kind == "truncate":
            text = text[:at]
        elif kind == "cr":
            text = text[:at] + "\r" + text[at:]
        elif kind == "sep":
            text = "sep=,\n" + text
    return text


def _encode(rng: random.Random, text: str) -> bytes:
    choice = rng.random()
    if choice < 0.1:
        return codecs.BOM_UTF8 + text.encode("utf-8")
    if choice < 0.15:
        return text.encode("utf-16")
    if choice < 0.18:
        return text.encode("utf-16-le")
    if choice < 0.2:
        return text.encode("utf-32")
    return text.encode("utf-8")


def _strict_count(raw: bytes, encoding: str, delimiter: str) -> int | None:
    """Records after the header under Python's csv module (strict; lenient if strict fails), with
    the blank lines before the header and the all-empty records at the end left out."""
    text = codecs.decode(raw, encoding).lstrip("\ufeff")
    if re.match(r"(?i)sep=.\r?\n", text):
        text = text.split("\n", 1)[1]
    records = None
    for strict in (True, False):
        try:
            records = list(csv.reader(io.StringIO(text, newline=""), delimiter=delimiter,
                                      strict=strict))
            break
        except csv.Error:
            continue
    if records is None:
        return None
    while records and not any(f.strip() for f in records[0]):
        records.pop(0)
    while records and not any(records[-1]):
        records.pop()
    return max(len(records) - 1, 0)


def _read(path: Path) -> tuple[object, int] | str:
    """(info, rows yielded) or the InputError message."""
    try:
        review_file = open_reviews(path, chunk_rows=7)
        return review_file.info, sum(len(c) for c in review_file.chunks())
    except InputError as exc:
        return str(exc)


def _assert_error(message: str, path: Path) -> None:
    assert str(path) in message and "\n" not in message, message


@pytest.mark.parametrize("seed", range(6))
def test_io_fuzz_csv(tmp_path, seed):
    rng = random.Random(seed)
    outcomes = {"error": 0, "read": 0}
    for n in range(50):
        path = tmp_path / f"f{seed}_{n}.csv"
        raw = _encode(rng, _mutate_text(rng, _csv_text(rng)))
        path.write_bytes(raw)
        result = _read(path)
        if isinstance(result, str):
            _assert_error(result, path)
            outcomes["error"] += 1
            continue
        info, rows = result
        expected = _strict_count(raw, info.encoding, info.delimiter)
        assert expected is not None and rows == expected, (path, raw[:300], rows, expected)
        outcomes["read"] += 1
    assert outcomes["read"] > 5 and outcomes["error"] > 0  # the generator covers both sides


def _xlsx_rows(rng: random.Random) -> list[list[object]]:
    width = rng.randint(1, 4)
    header: list[object] = rng.sample(NAMES, width)
    rows: list[list[object]] = []
    if rng.random() < 0.2:
        rows += [["Reviews export"], []]
    rows.append(header)
    for i in range(rng.randint(0, 25)):
        if rng.random() < 0.1:
            rows.append([])
            continue
        row: list[object] = [_cell(rng) or None for _ in range(width)]
        if rng.random() < 0.2:
            row[rng.randrange(width)] = rng.choice([i, 4.5, True, f"=A{i + 2}&\"x\""])
        rows.append(row)
    return rows


def _mutate_xlsx(rng: random.Random, path: Path) -> None:
    kind = rng.choice(["none", "none", "dimension", "truncate_xml", "truncate_zip", "flip",
                       "shared"])
    if kind == "none":
        return
    if kind == "truncate_zip":
        raw = path.read_bytes()
        path.write_bytes(raw[: rng.randint(0, len(raw))])
        return
    if kind == "flip":
        raw = bytearray(path.read_bytes())
        for _ in range(rng.randint(1, 20)):
            raw[rng.randrange(len(raw))] = rng.randrange(256)
        path.write_bytes(bytes(raw))
        return
    with zipfile.ZipFile(path) as src:
        items = [(i.filename, src.read(i.filename)) for i in src.infolist()]
    with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as dst:
        for name, data in items:
            if name == "xl/worksheets/sheet1.xml":
                if kind == "dimension":
                    data = re.sub(rb'<dimension ref="[^"]*"', rb'<dimension ref="A1:B2"', data)
                elif kind == "truncate_xml":
                    data = data[: rng.randint(0, len(data))]
                else:
                    data = re.sub(rb't="inlineStr"><is><t>[^<]*</t></is>', b't="s"><v>7</v>',
                                  data, count=1)
            dst.writestr(name, data)


def _strict_xlsx_count(path: Path, sheet: str, notes: list[str]) -> int | None:
    try:
        workbook = openpyxl.load_workbook(path, data_only=False)  # every cell, no dimension trust
    except Exception:
        return None
    ws = workbook[sheet]
    filled = [r for r, row in enumerate(ws.iter_rows(values_only=True), 1)
              if any(v not in (None, "") for v in row)]
    header = next((int(m.group(1)) for n in notes if (m := re.search(r"header is sheet row (\d+)", n))),
                  filled[0] if filled else 1)
    above = [r for r in filled if r < header]
    for r in above:  # only titles may sit above the header
        assert sum(v not in (None, "") for v in next(ws.iter_rows(min_row=r, max_row=r,
                                                                  values_only=True))) == 1
    return max(filled[-1] - header, 0) if filled else 0


@pytest.mark.parametrize("seed", range(3))
def test_io_fuzz_xlsx(tmp_path, seed):
    rng = random.Random(100 + seed)
    for n in range(40):
        path = tmp_path / f"w{seed}_{n}.xlsx"
        workbook = openpyxl.Workbook()
        for row in _xlsx_rows(rng):
            workbook.active.append(row)
        workbook.save(path)
        _mutate_xlsx(rng, path)
        result = _read(path)
        if isinstance(result, str):
            _assert_error(result, path)
            continue
        info, rows = result
        expected = _strict_xlsx_count(path, info.sheet, info.notes)
        if expected is not None:
            assert rows == expected, (path, rows, expected)
