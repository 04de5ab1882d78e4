"""What the report's explanations cost end to end: scoring N IMDB reviews with the full report
(every listed row explained, drivers, highlights) and with --explain, against scoring them with
no report, interleaved in one run.

    python benchmarks/report_cost.py --data ../shared/data/aclImdb_v1.tar.gz [--rows 20000] [--repeats 3]

Each measurement is one fresh `review-scorer score` process; its seconds are the product's own
per-file timer (opening the file -> predictions and report published), so model loading and the
TensorFlow start are left out of every variant alike. The target (issue "The report answers why,
when and where"): the report with explanations takes at most 2x the time of scoring alone.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))
from benchmarks._results import markdown_table, model_label, write_section  # noqa: E402

VARIANTS = {
    "scores only (--no-report)": ["--no-report"],
    "report, listed rows explained (default)": [],
    "report + --explain (top_words for every row)": ["--explain"],
}


def build_input(data: str, rows: int, path: Path) -> None:
    """IMDB test reviews in the same fixed shuffled order as score_throughput.py."""
    subprocess.run([sys.executable, str(REPO / "benchmarks" / "score_throughput.py"), "--child",
                    "build", "--data", data, "--input", str(path), "--rows", str(rows)],
                   check=True, capture_output=True, cwd=REPO)


def run(variant: list[str], src: Path, out: Path, args) -> float:
    cmd = [sys.executable, "-m", "review_scorer", "score", str(src), "--out-dir", str(out),
           "--max-report-rows", str(args.rows), "--device", "cpu", "--json", *variant]
    if args.model_dir:
        cmd += ["--model-dir", str(args.model_dir)]
    proc = subprocess.run(cmd, capture_output=True, text=True, cwd=REPO,
                          env={**os.environ, "TF_CPP_MIN_LOG_LEVEL": "2"})
    if proc.returncode != 0:
        sys.exit(f"report_cost: {' '.join(variant) or 'default'} failed: {proc.stderr.strip()[-400:]}")
    (f,) = json.loads(proc.stdout)["files"]
    return float(f["seconds"])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", default="../shared/data/aclImdb_v1.tar.gz")
    parser.add_argument("--rows", type=int, default=20000)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--model-dir", type=Path, help="default: the shipped model")
    parser.add_argument("--no-results", action="store_true")
    parser.add_argument("--note", action="append", default=[],
                        help="a line added to the RESULTS.md section (what changed, what was seen)")
    args = parser.parse_args()
    work = Path(tempfile.mkdtemp(prefix="report-cost-"))
    try:
        src = work / f"reviews-{args.rows}.csv"
        build_input(args.data, args.rows, src)
        seconds: dict[str, list[float]] = {name: [] for name in VARIANTS}
        for i in range(args.repeats):
            for name, flags in VARIANTS.items():
                out = work / f"out-{i}-{len(seconds[name])}-{abs(hash(name))}"
                seconds[name].append(run(flags, src, out, args))
                shutil.rmtree(out, ignore_errors=True)
                print(f"round {i + 1}: {name}: {seconds[name][-1]:.1f} s", flush=True)
        body = report(args, seconds)
        if not args.no_results:
            write_section("report_cost", body)
        print(body)
    finally:
        shutil.rmtree(work, ignore_errors=True)


def report(args, seconds: dict[str, list[float]]) -> str:
    base = statistics.median(seconds[next(iter(VARIANTS))])
    rows = [[name, f"{statistics.median(s):.1f}", f"{args.rows / statistics.median(s):,.0f}",
             f"{statistics.median(s) / base:.2f}x", ", ".join(f"{x:.1f}" for x in s)]
            for name, s in seconds.items()]
    table = markdown_table(["variant", "median seconds", "rows/s", "vs scores only",
                            "per round (s)"], rows)
    worst = max(statistics.median(s) for s in seconds.values()) / base
    lines = [
        f"{args.rows:,} IMDB test reviews (the score_throughput input), model "
        f"{model_label(args.model_dir)}, CPU, batches of 256; the rounds interleave the "
        "variants. Seconds are the product's per-file timer (model loading excluded alike).",
        f"Target: the report with explanations within 2x of scoring alone: worst variant "
        f"**{worst:.2f}x** ({'met' if worst <= 2 else 'not met'}).",
        "Explained rows take their scores from the explainer (one pass through the network that "
        "yields both), so explaining does not add a second scoring pass.",
        *args.note,
    ]
    title = f"## Report cost: explanations and report vs scores only ({args.rows:,} rows)"
    return title + "\n\n" + table + "\n\n" + "\n".join(f"- {line}" for line in lines)


if __name__ == "__main__":
    main()
