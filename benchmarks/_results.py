"""Shared by the benchmark scripts: machine description and RESULTS.md section updates."""

from __future__ import annotations

import datetime as _dt
import json
import os
import platform
import re
import shlex
import sys
from pathlib import Path

RESULTS = Path(__file__).resolve().parent / "RESULTS.md"


def machine() -> str:
    """One line: CPU model, cores, memory, Python, TensorFlow when loaded."""
    cpu = platform.processor() or platform.machine()
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    mem = ""
    try:
        kb = int(Path("/proc/meminfo").read_text().split()[1])
        mem = f", {kb / 2**20:.0f} GiB RAM"
    except (OSError, ValueError, IndexError):
        pass
    tf = sys.modules.get("tensorflow")
    tf_part = f", TensorFlow {tf.__version__}" if tf else ""
    return f"{cpu}, {os.cpu_count()} cores{mem}, Python {platform.python_version()}{tf_part}"


def command() -> str:
    return "python " + " ".join(shlex.quote(a) for a in sys.argv)


def write_section(name: str, body: str) -> None:
    """Replace (or append) the section between this benchmark's markers in RESULTS.md."""
    begin, end = f"<!-- BEGIN {name} -->", f"<!-- END {name} -->"
    stamp = _dt.datetime.now().astimezone().isoformat(timespec="seconds")
    block = (f"{begin}\n{body.rstrip()}\n\n- machine: {machine()}\n- date: {stamp}\n"
             f"- command: `{command()}`\n{end}")
    text = RESULTS.read_text(encoding="utf-8") if RESULTS.exists() else "# Benchmark results\n"
    pattern = re.compile(re.escape(begin) + r".*?" + re.escape(end), re.S)
    if pattern.search(text):
        text = pattern.sub(lambda _: block, text)
    else:
        text = text.rstrip() + "\n\n" + block + "\n"
    RESULTS.write_text(text, encoding="utf-8")


def model_label(model_dir: str | Path | None = None, *, with_path: bool = True) -> str:
    """Which model a number is from: its name and training date from meta.json, and its folder.

    None means the model the product would use (review_scorer.model.artifacts.resolve_model_dir), so
    a section stays readable after the shipped model is replaced.
    """
    from review_scorer.model.artifacts import resolve_model_dir

    path = resolve_model_dir(model_dir)
    try:
        meta = json.loads((Path(path) / "meta.json").read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return f"`{path}`"
    created = str(meta.get("created_at", "date unknown"))[:10]
    name = f"{meta.get('name', Path(path).name)} (trained {created}"
    return f"{name}, `{path}`)" if with_path else f"{name})"


def markdown_table(header: list[str], rows: list[list[object]]) -> str:
    lines = ["| " + " | ".join(header) + " |", "|" + "|".join("---" for _ in header) + "|"]
    lines += ["| " + " | ".join(str(c) for c in row) + " |" for row in rows]
    return "\n".join(lines)


def logged_runs(log: Path) -> list[dict]:
    """The runs a benchmark appended to its JSON-lines log, oldest first."""
    return [json.loads(line) for line in log.read_text(encoding="utf-8").splitlines() if line]


def validation_cells(run: dict) -> list[str]:
    """A logged training run's table cells: accuracy per epoch, saved model's accuracy and loss."""
    return [" / ".join(f"{100 * v:.2f}" for v in run.get("val_acc", [])) or "—",
            f"{100 * run['final_val_acc']:.2f}%", run.get("final_val_loss", "—")]


def test_cell(run: dict) -> str:
    """Its test accuracy, or "not read": RESULTS.md says whether the test set was looked at."""
    return f"{100 * run['test_acc']:.2f}%" if "test_acc" in run else "not read"


def test_reads(runs: list[dict]) -> int:
    return sum(1 for run in runs if run.get("test_read"))
