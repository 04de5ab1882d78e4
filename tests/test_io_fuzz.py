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
import xlsxwriter

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


def _mutate_text(rng: random.Random, text: str, kinds: list[str] | None = None) -> str:
    for _ in range(rng.randint(1, 3)):
        at = rng.randint(0, len(text))
        kind = rng.choice(["quote", "unquote", "nul", "semicolon", "ragged", "newline", "blank",
                           "truncate", "cr", "sep"])
        if kinds is not None:
            kinds.append(kind)
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


def _strict_count(raw: bytes, encoding: str, delimiter: str, header: bool = True) -> int | None:
    """Records after the header (all records when the reader found no header row) under Python's
    csv module (strict; lenient if strict fails), with the blank lines before the header and the
    all-empty records at the end left out."""
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
    return max(len(records) - header, 0)


def _read(path: Path) -> tuple[object, int, bool] | str:
    """(info, rows yielded, whether the first record was read as a header) or the InputError
    message. Whether it is a header is judged by tests of its own (test_reader_hostile_csv:
    a one-column file's first line that reads as a review); here the records are counted."""
    try:
        review_file = open_reviews(path, chunk_rows=7)
        rows = sum(len(c) for c in review_file.chunks())
        return review_file.info, rows, not any(n.startswith("no header row") for n in review_file.notes)
    except InputError as exc:
        return str(exc)


def _assert_error(message: str, path: Path) -> None:
    assert str(path) in message and "\n" not in message, message


def _still_valid(text: str, kinds: list[str]) -> bool:
    """True when the mutated text is still a well-formed CSV file a reader must accept: no NUL,
    the delimiter still ',', every quote closed before a delimiter or line end (the csv
    module's strict mode), no record wider than the header, and a header that still names a
    column 'review'. Only the mutations decide this, never the reader under test."""
    if "\x00" in text or "semicolon" in kinds:
        return False
    if re.match(r"(?i)sep=.\r?\n", text):
        text = text.split("\n", 1)[1]
    try:
        records = list(csv.reader(io.StringIO(text, newline=""), strict=True))
    except csv.Error:
        return False
    records = [r for r in records if any(f.strip() for f in r)] or [[]]
    header = records[0]
    return "review" in header and all(len(r) <= len(header) for r in records[1:])


@pytest.mark.parametrize("seed", range(6))
def test_io_fuzz_csv(tmp_path, seed):
    rng = random.Random(seed)
    outcomes = {"error": 0, "read": 0, "valid": 0}
    for n in range(50):
        path = tmp_path / f"f{seed}_{n}.csv"
        base, kinds = _csv_text(rng), []
        text = _mutate_text(rng, base, kinds)
        raw = _encode(rng, text)
        path.write_bytes(raw)
        if "review" in base.splitlines()[0].split(","):  # the file before mutation reads
            plain = tmp_path / f"plain{seed}_{n}.csv"
            plain.write_bytes(base.encode("utf-8"))
            assert not isinstance(result := _read(plain), str), (base[:300], result)
        valid = _still_valid(text, kinds)
        outcomes["valid"] += valid
        result = _read(path)
        if isinstance(result, str):
            assert not valid, (path, raw[:300], result)  # a valid file is never refused
            if "nul" in kinds and "\x00" in text:
                assert "NUL byte" in result  # wherever the byte landed
            _assert_error(result, path)
            outcomes["error"] += 1
            continue
        info, rows, header = result
        expected = _strict_count(raw, info.encoding, info.delimiter, header)
        assert expected is not None and rows == expected, (path, raw[:300], rows, expected)
        outcomes["read"] += 1
    # Both sides covered; reads are at least the files the mutations left valid.
    assert outcomes["read"] >= outcomes["valid"] >= 10 and outcomes["error"] > 0


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


def _mutate_xlsx(rng: random.Random, path: Path) -> str:
    kind = rng.choice(["none", "none", "dimension", "truncate_xml", "truncate_zip", "flip",
                       "shared"])
    if kind == "none":
        return kind
    if kind == "truncate_zip":
        raw = path.read_bytes()
        path.write_bytes(raw[: rng.randint(0, len(raw))])
        return kind
    if kind == "flip":
        raw = bytearray(path.read_bytes())
        for _ in range(rng.randint(1, 20)):
            raw[rng.randrange(len(raw))] = rng.randrange(256)
        path.write_bytes(bytes(raw))
        return kind
    def damage(name: str, data: bytes) -> bytes:
        if name != "xl/worksheets/sheet1.xml":
            return data
        if kind == "dimension":
            return re.sub(rb'<dimension ref="[^"]*"', rb'<dimension ref="A1:B2"', data)
        if kind == "truncate_xml":
            return data[: rng.randint(0, len(data))]
        # a text cell pointing past the shared-string table
        data = re.sub(rb't="inlineStr"><is><t>[^<]*</t></is>', b't="s"><v>99999</v>', data, count=1)
        return re.sub(rb'(t="s"[^>]*><v>)\d+(</v>)', rb"\g<1>99999\g<2>", data, count=1)

    _rewrite_zip(path, damage)
    return kind


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
    # A headerless sheet: its first filled row is a record too.
    headerless = any(re.search(rf"no header row: sheet row {header} reads as a record", n) for n in notes)
    return max(filled[-1] - header + headerless, 0) if filled else 0


def _save(rng: random.Random, path: Path, rows: list[list[object]]) -> None:
    """openpyxl (inline strings) or XlsxWriter (shared strings, as spreadsheet programs), with
    the save time taken out (_timeless), so a seed makes the same bytes on every run."""
    if rng.random() < 0.5:
        workbook = openpyxl.Workbook()
        for row in rows:
            workbook.active.append(row)
        workbook.save(path)
        _timeless(path)
        return
    _save_xlsxwriter(path, rows)
    _timeless(path)


_SAVE_TIME = re.compile(rb"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(?:\.\d+)?Z?")


def _timeless(path: Path) -> None:
    """The workbook with its zip entries' dates and docProps/core.xml's timestamps fixed: the
    mutations pick byte positions from the file's length and bytes, and a save time in them
    made a seed's damage differ from run to run (a rare mutation then read differently)."""
    _rewrite_zip(path, lambda name, data: _SAVE_TIME.sub(b"2024-05-01T00:00:00Z", data)
                 if name == "docProps/core.xml" else data)


def _rewrite_zip(path: Path, change) -> None:
    """The workbook's zip written again, each entry through change(name, data), with a fixed
    entry date (the current one would make the bytes differ from run to run)."""
    with zipfile.ZipFile(path) as src:
        items = [(i.filename, src.read(i.filename)) for i in src.infolist()]
    with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as dst:
        for name, data in items:
            dst.writestr(zipfile.ZipInfo(name, date_time=(2024, 5, 1, 0, 0, 0)), change(name, data),
                         compress_type=zipfile.ZIP_DEFLATED)


def _save_xlsxwriter(path: Path, rows: list[list[object]]) -> None:
    workbook = xlsxwriter.Workbook(path)
    sheet = workbook.add_worksheet()
    for r, row in enumerate(rows):
        for c, value in enumerate(row):
            if isinstance(value, str) and value.startswith("="):
                sheet.write_formula(r, c, value)  # no cached value, as openpyxl's
            elif value is not None:
                sheet.write(r, c, value)
    workbook.close()


@pytest.mark.parametrize("seed", range(3))
def test_io_fuzz_xlsx(tmp_path, seed):
    rng = random.Random(100 + seed)
    intact = 0
    for n in range(40):
        path = tmp_path / f"w{seed}_{n}.xlsx"
        _save(rng, path, _xlsx_rows(rng))
        kind = _mutate_xlsx(rng, path)
        result = _read(path)
        if isinstance(result, str):
            # Only damage may refuse a workbook, and a stale <dimension> is not damage (Excel
            # ignores it); a file whose header has no text column is refused for that alone.
            assert kind not in ("none", "dimension") or "review text" in result, (path, result)
            _assert_error(result, path)
            continue
        info, rows, _ = result
        intact += kind in ("none", "dimension")
        expected = _strict_xlsx_count(path, info.sheet, info.notes)
        if expected is not None:
            assert rows == expected, (path, rows, expected)
    assert intact >= 10  # undamaged workbooks were generated, and they read
