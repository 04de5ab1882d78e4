"""Malformed files through the real `review-scorer score` process: each file either fails with one
line naming it, or its predictions keep exactly the records a strict parser counts."""

from __future__ import annotations

import json
import random
import subprocess
import sys

import openpyxl
import pandas as pd
import pytest

from tests.conftest import REPO
from tests.test_io_fuzz import (
    _csv_text,
    _encode,
    _mutate_text,
    _mutate_xlsx,
    _read,
    _strict_count,
    _strict_xlsx_count,
    _xlsx_rows,
)


def _make_files(folder, rng):
    files = []
    for n in range(200):
        path = folder / f"c{n}.csv"
        path.write_bytes(_encode(rng, _mutate_text(rng, _csv_text(rng))))
        files.append(path)
    for n in range(60):
        path = folder / f"w{n}.xlsx"
        book = openpyxl.Workbook()
        for row in _xlsx_rows(rng):
            book.active.append(row)
        book.save(path)
        _mutate_xlsx(rng, path)
        files.append(path)
    return files


def _expected_rows(path) -> int | None:
    """What a strict parser counts (None: no strict answer, e.g. a workbook openpyxl refuses)."""
    result = _read(path)
    if isinstance(result, str):
        return None
    info, _, header = result
    if path.suffix == ".csv":
        return _strict_count(path.read_bytes(), info.encoding, info.delimiter, header)
    return _strict_xlsx_count(path, info.sheet, info.notes)


@pytest.mark.slow
def test_score_fuzz_every_file_fails_clearly_or_keeps_every_record(trained_model, tmp_path):
    inputs = tmp_path / "in"
    inputs.mkdir()
    files = _make_files(inputs, random.Random(2024))
    proc = subprocess.run(
        [sys.executable, "-m", "review_scorer", "score", *map(str, files), "--model-dir",
         str(trained_model.model_dir), "--out-dir", str(tmp_path / "out"), "--no-report", "--json"],
        capture_output=True, text=True, cwd=REPO, timeout=900)
    assert proc.returncode in (0, 2), proc.stderr[-2000:]
    assert "Traceback" not in proc.stderr
    summary = json.loads(proc.stdout)
    errors = [line for line in proc.stderr.splitlines() if line.startswith("error: ")]
    assert len(summary["files"]) == len(files)
    failed = [f for f in summary["files"] if not f["ok"]]
    assert len(errors) == len(failed) and (proc.returncode == 2) == bool(failed)
    kept = 0
    for path, f in zip(files, summary["files"]):
        assert f["file"] == str(path)
        if not f["ok"]:
            assert f["error"].startswith(str(path)) and "\n" not in f["error"], f["error"]
            continue
        rows = len(pd.read_csv(f["predictions"], dtype=str, keep_default_na=False))
        assert rows == f["rows"]
        expected = _expected_rows(path)
        if expected is not None:
            assert rows == expected, (path, rows, expected)
            kept += 1
    assert kept > 50 and len(failed) > 10  # both outcomes are exercised
