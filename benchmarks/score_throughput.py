"""Scoring throughput and peak memory: the streamed score_files path vs a plain notebook-style predict.

    python benchmarks/score_throughput.py --data ../shared/data/aclImdb_v1.tar.gz \
        [--model-dir DIR] [--rows 100000] [--big-rows 1000000] [--repeats 3] [--device cpu]

The input files (columns id,review) are the IMDB test reviews in a fixed shuffled order, cycled to
the wanted row count, written to a temporary folder outside the repository (deleted at the end
unless --keep). Plan for about 1.3 KB per row twice over (input + predictions): roughly 3 GB of
free disk for --big-rows 1000000.

Every measurement runs in a fresh child process (this script with --child METHOD), so the peak
resident memory it reports belongs to that method alone. The parent never loads the dataset or
TensorFlow while measuring: on Linux a child's ru_maxrss also counts its parent's peak at the
moment of exec, so a bulky parent would hide the children's real numbers.

Methods:
- streamed: review_scorer.scoring.score.score_files (chunked reading, length-bucketed batches fed through
  tf.data with prefetch, predictions streamed to disk). Its seconds are the product's own
  per-file timer (FileResult.seconds: opening the file -> predictions file committed); device
  selection and model loading happen before that timer starts and are reported as load seconds.
- plain: pandas.read_csv of the whole file, SentimentModel.encode with the model's vocabulary,
  every review right-padded to max_len, ONE model.predict(batch_size=256) over the full matrix,
  DataFrame.to_csv. Its seconds run from read_csv to the written CSV; loading the model is timed
  apart. A review with no known word left is given one out-of-vocabulary id so the matrix stays
  rectangular; the agreement check skips those rows (score_files does not score them).
"""

from __future__ import annotations

import argparse
import csv
import itertools
import json
import os
import resource
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))
from benchmarks._results import markdown_table, model_label, write_section  # noqa: E402

# A child measuring an older version of the code (--baseline-ref) imports review_scorer from there.
if os.environ.get("REVIEW_SCORER_SRC"):
    sys.path.insert(0, os.environ["REVIEW_SCORER_SRC"])

SCRIPT = Path(__file__).resolve()
PLAIN_BATCH_SIZE = 256
AGREEMENT_TOLERANCE = 1e-4
SHUFFLE_SEED = 20240601


def fail(message: str) -> None:
    """Stop with one line on stderr (the parent's way to report a problem)."""
    print(f"score_throughput: {message}", file=sys.stderr)
    sys.exit(2)


# --------------------------------------------------------------------------------------------
# Child processes: each prints exactly one JSON line on stdout
# --------------------------------------------------------------------------------------------


def _peak_rss() -> dict:
    """ru_maxrss (KiB on Linux) and, as a cross-check, this process's own VmHWM, both in MiB."""
    peak = {"peak_rss_mib": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1)}
    try:
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith("VmHWM:"):
                peak["hwm_mib"] = round(int(line.split()[1]) / 1024, 1)
    except (OSError, ValueError, IndexError):
        pass
    return peak


def _write_reviews(path: Path, texts: list[str], rows: int) -> int:
    """Write `rows` rows of id,review, cycling through texts, one row at a time; return bytes."""
    with open(path, "w", encoding="utf-8", newline="") as fh:
        writer = csv.writer(fh, lineterminator="\n")
        writer.writerow(("id", "review"))
        cycled = itertools.islice(itertools.cycle(texts), rows)
        writer.writerows((i, text) for i, text in enumerate(cycled, start=1))
    return path.stat().st_size


def child_build(args: argparse.Namespace) -> dict:
    """Load the IMDB test texts and write the benchmark input file(s)."""
    import numpy as np

    from review_scorer.errors import ReviewScorerError
    from review_scorer.io import load_labeled

    try:
        reviews = load_labeled(args.data)
        texts = [t for t, split in zip(reviews.texts, reviews.splits) if split == "test"]
    except ReviewScorerError as exc:
        fail(str(exc))
    if not texts:
        fail(f"{args.data}: no test reviews found; pass the aclImdb archive or folder to --data")
    # A fixed shuffle mixes positive and negative reviews even when fewer rows than texts are taken.
    order = np.random.default_rng(SHUFFLE_SEED).permutation(len(texts))
    texts = [texts[i] for i in order]
    info = {"texts": len(texts), "mean_chars": round(sum(map(len, texts)) / len(texts)),
            "bytes": _write_reviews(Path(args.input), texts, args.rows)}
    if args.big_input:
        info["big_bytes"] = _write_reviews(Path(args.big_input), texts, args.big_rows)
    return info


def _tensorflow_facts(tf) -> dict:
    return {"tf_version": tf.__version__, "gpus_seen": len(tf.config.list_physical_devices("GPU"))}


def child_streamed(args: argparse.Namespace) -> dict:
    """The product's path: score_files with the report turned off."""
    import tensorflow as tf  # imported before any timer, as in the plain child

    try:
        from review_scorer.scoring.score import score_files
    except ImportError:  # --baseline-ref: the package before it was grouped into sub-packages
        from review_scorer.score import score_files

    started = time.perf_counter()
    result = score_files([args.input], model_dir=args.model_dir, out_dir=args.out_dir,
                         report=False, device=args.device)
    wall = time.perf_counter() - started
    file = result.files[0]
    if not file.ok:
        fail(file.error or f"{args.input}: scoring failed")
    return {"rows": file.rows, "scored": file.scored, "seconds": file.seconds,
            "load_seconds": wall - file.seconds, "device": result.device,
            "predictions": str(file.predictions_path), **_tensorflow_facts(tf)}


def child_plain(args: argparse.Namespace) -> dict:
    """What a notebook does: everything in memory, padded to max_len, one predict call."""
    import numpy as np
    import pandas as pd
    import tensorflow as tf

    gpus = tf.config.list_physical_devices("GPU")
    if args.device == "cpu" and gpus:
        tf.config.set_visible_devices([], "GPU")  # before any op, so TensorFlow never uses them
        gpus = []
    if args.device == "gpu" and not gpus:
        fail("--device gpu: TensorFlow sees no GPU on this machine; use --device auto or cpu")

    from review_scorer import SentimentModel
    from review_scorer.text.batching import pad_batch
    from review_scorer.text.vocabulary import OOV_ID

    started = time.perf_counter()
    model = SentimentModel.load(args.model_dir)
    load_seconds = time.perf_counter() - started
    config = model.config

    started = time.perf_counter()
    frame = pd.read_csv(args.input)
    texts = frame["review"].fillna("").astype(str).tolist()
    seqs = model.encode(texts)
    placeholder = np.array([OOV_ID], dtype=np.int32)
    empty = [i for i, s in enumerate(seqs) if len(s) == 0]
    for i in empty:
        seqs[i] = placeholder
    x = pad_batch(seqs, length=config.max_len)
    scores = model.keras_model.predict(x, batch_size=PLAIN_BATCH_SIZE, verbose=0).reshape(-1)
    frame["sentiment"] = np.where(scores >= 0.5, "positive", "negative")
    frame["score"] = scores
    out = Path(args.out_dir)
    out.mkdir(parents=True, exist_ok=True)
    predictions = out / (Path(args.input).stem + ".plain.csv")
    frame.to_csv(predictions, index=False)
    seconds = time.perf_counter() - started
    return {"rows": len(frame), "scored": len(frame) - len(empty), "seconds": seconds,
            "load_seconds": load_seconds, "device": "GPU" if gpus else "CPU",
            "placeholder_rows": len(empty), "padded_shape": list(x.shape),
            "predictions": str(predictions), **_tensorflow_facts(tf)}


def run_child(args: argparse.Namespace) -> None:
    handlers = {"build": child_build, "streamed": child_streamed, "plain": child_plain}
    info = handlers[args.child](args)
    info.update(method=args.child, **_peak_rss())
    if "seconds" in info:
        info["rows_per_second"] = info["rows"] / info["seconds"] if info["seconds"] > 0 else None
    print(json.dumps(info), flush=True)


# --------------------------------------------------------------------------------------------
# Parent
# --------------------------------------------------------------------------------------------


def spawn(method: str, extra: list[str], src: Path | None = None) -> dict:
    """Run one child and return its JSON line; stop with its last error line when it fails."""
    env = dict(os.environ)
    env.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    env.pop("REVIEW_SCORER_SRC", None)
    if src is not None:
        env["REVIEW_SCORER_SRC"] = str(src)
    proc = subprocess.run([sys.executable, str(SCRIPT), "--child", method, *extra], env=env,
                          capture_output=True, text=True, cwd=REPO)
    lines = [line for line in proc.stdout.splitlines() if line.startswith("{")]
    if proc.returncode != 0 or not lines:
        errors = [line for line in proc.stderr.splitlines() if line.strip()]
        ours = [line for line in errors if line.startswith("score_throughput: ")]
        if ours:
            print(ours[-1], file=sys.stderr)
            sys.exit(2)
        last = errors[-1] if errors else f"exit status {proc.returncode}"
        fail(f"the {method} child failed: {last}")
    return json.loads(lines[-1])


def measure(method: str, csv_path: Path, out_dir: Path, args: argparse.Namespace,
            src: Path | None = None, model_dir: Path | None = None) -> dict:
    run = spawn(method, ["--input", str(csv_path), "--out-dir", str(out_dir),
                         "--model-dir", str(model_dir or args.model_dir), "--device", args.device],
                src)
    hwm = run.get("hwm_mib")
    if hwm and run["peak_rss_mib"] > hwm * 1.05:
        print(f"  warning: {method}: ru_maxrss {run['peak_rss_mib']} MiB exceeds the child's own "
              f"VmHWM {hwm} MiB (the parent's peak leaked in); trust VmHWM", file=sys.stderr)
    print(f"  {method:8s} {run['rows']:>9,} rows  {run['seconds']:8.2f} s  "
          f"{run['rows_per_second']:>9,.0f} rows/s  peak RSS {run['peak_rss_mib']:,.0f} MiB  "
          f"(load {run['load_seconds']:.1f} s)", flush=True)
    return run


def agreement(streamed_csv: Path, plain_csv: Path) -> dict:
    """Max |score difference| over the rows score_files scored; both files are read in chunks."""
    import numpy as np
    import pandas as pd

    chunk = 20000
    left = pd.read_csv(streamed_csv, usecols=["id", "score", "status"], chunksize=chunk)
    right = pd.read_csv(plain_csv, usecols=["id", "score"], chunksize=chunk)
    worst, compared, rows, problem = 0.0, 0, 0, None
    for a, b in itertools.zip_longest(left, right):
        if a is None or b is None or len(a) != len(b):
            problem = "the two predictions files have different row counts"
            break
        if not np.array_equal(a["id"].to_numpy(), b["id"].to_numpy()):
            problem = f"ids differ near row {rows + 1}"
            break
        ok = (a["status"] == "ok").to_numpy()
        if ok.any():
            diff = np.abs(a["score"].to_numpy(dtype=float)[ok] - b["score"].to_numpy(dtype=float)[ok])
            worst = max(worst, float(diff.max()))
        compared += int(ok.sum())
        rows += len(a)
    passed = problem is None and compared > 0 and worst < AGREEMENT_TOLERANCE
    return {"max_abs_diff": worst, "compared": compared, "rows": rows, "passed": passed,
            "problem": problem}


def _inside(path: Path, folder: Path) -> bool:
    try:
        path.resolve().relative_to(folder.resolve())
        return True
    except ValueError:
        return False


def resolve_model(model_dir: Path | None) -> Path:
    from review_scorer.errors import ReviewScorerError
    from review_scorer.model.artifacts import read_meta, resolve_model_dir

    try:
        path = resolve_model_dir(model_dir).resolve()
        read_meta(path)  # a quick check, without TensorFlow, so a bad path fails in one line
    except ReviewScorerError as exc:
        if model_dir is None:
            fail("no trained model found (the shipped default model is not there yet); "
                 "pass --model-dir DIR with a directory made by 'review-scorer train'")
        fail(f"{exc}")
    return path


def _mib(value: float) -> str:
    return f"{value:,.0f}"


def _seconds(runs: list[dict]) -> str:
    return ", ".join(f"{r['seconds']:.2f}" for r in runs)


def export_ref(ref: str, into: Path) -> Path:
    """The package as it was at git ref `ref`, unpacked under `into` (for --baseline-ref)."""
    into.mkdir(parents=True)
    archive = subprocess.run(["git", "-C", str(REPO), "archive", "--format=tar", ref],
                             capture_output=True, check=False)
    if archive.returncode != 0:
        fail(f"--baseline-ref {ref}: {archive.stderr.decode(errors='replace').strip()}")
    subprocess.run(["tar", "-x", "-C", str(into)], input=archive.stdout, check=True)
    return into


def baseline_lines(args, streamed, baseline) -> list[str]:
    if not baseline:
        return []
    now = statistics.median(r["rows_per_second"] for r in streamed)
    then = statistics.median(r["rows_per_second"] for r in baseline)
    return [f"Same run, the code at `{args.baseline_ref}` (the streamed path before the change): "
            f"median {then:,.0f} rows/s (per run: {_seconds(baseline)} s), peak RSS "
            f"{_mib(max(r['peak_rss_mib'] for r in baseline))} MiB; current / baseline throughput "
            f"**{now / then:.2f}×**. Runs interleaved current, plain, baseline."]


def models_report(args, build, streamed, baseline) -> str:
    """The table of a --skip-plain run: this model and code against the baseline's, same run."""
    now = statistics.median(r["rows_per_second"] for r in streamed)
    then = statistics.median(r["rows_per_second"] for r in baseline)
    rows = [[label, f"`{model}`", len(runs), f"{statistics.median(r['seconds'] for r in runs):.2f}",
             f"{statistics.median(r['rows_per_second'] for r in runs):,.0f}",
             _mib(max(r["peak_rss_mib"] for r in runs)), _seconds(runs)]
            for label, model, runs in (
                (f"baseline: code at `{args.baseline_ref or 'HEAD'}`", args.baseline_model_dir,
                 baseline),
                ("current code", args.model_dir, streamed))]
    table = markdown_table(["code", "model dir", "runs", "median seconds", "median rows/s",
                            "peak RSS (MiB, max)", "seconds per run"], rows)
    device = streamed[0]["device"]
    if streamed[0]["gpus_seen"] == 0:
        device += " (no GPU was available in this session)"
    fast_now = max(r["rows_per_second"] for r in streamed)
    fast_then = max(r["rows_per_second"] for r in baseline)
    lines = [f"Current / baseline median throughput: **{now / then:.2f}×**; fastest run against "
             f"fastest run: {fast_now / fast_then:.2f}× ({fast_now:,.0f} against {fast_then:,.0f} "
             "rows/s). Run times on this machine fall into two modes about 2x apart for the "
             "same code, so with few runs the medians can land in different modes.",
             f"Both through score_files (the product's streamed path, report off), {args.rows:,} "
             f"rows of IMDB test reviews (mean {build['mean_chars']:,} characters) cycled, batches "
             f"of 256, runs interleaved baseline then current, one fresh process each. Device: "
             f"{device}, --device {args.device}. TensorFlow {streamed[0]['tf_version']}.",
             f"Models: baseline {model_label(args.baseline_model_dir)}; current "
             f"{model_label(args.model_dir)}."]
    title = f"## Scoring throughput: shipped model before and after ({args.rows:,} rows)"
    return title + "\n\n" + table + "\n\n" + "\n".join(f"- {line}" for line in lines)


def report(args, build, streamed, plain, checks, big, baseline=()) -> str:
    med = {name: (statistics.median(r["seconds"] for r in runs),
                  statistics.median(r["rows_per_second"] for r in runs),
                  max(r["peak_rss_mib"] for r in runs))
           for name, runs in (("streamed", streamed), ("plain", plain))}
    ratio = med["streamed"][1] / med["plain"][1]
    worst = max(c["max_abs_diff"] for c in checks)
    compared = min(c["compared"] for c in checks)
    all_passed = all(c["passed"] for c in checks)
    verdict = "pass" if all_passed else "FAIL"
    check_text = (f"{verdict}: max abs diff {worst:.1e} over {compared:,} rows, "
                  f"{len(checks)}/{len(checks)} pairs" if all_passed else
                  f"{verdict}: {sum(c['passed'] for c in checks)}/{len(checks)} pairs agree "
                  f"(max abs diff {worst:.1e})")
    first_plain = plain[0]
    max_len = first_plain["padded_shape"][1]
    header = ["method", "rows", "runs", "median seconds", "median rows/s", "peak RSS (MiB, max)",
              "model load (s, median)", "same scores as plain"]
    table_rows = [
        ["streamed: score_files (chunks, length buckets, tf.data prefetch)", f"{args.rows:,}",
         len(streamed), f"{med['streamed'][0]:.2f}", f"{med['streamed'][1]:,.0f}",
         _mib(med["streamed"][2]), f"{statistics.median(r['load_seconds'] for r in streamed):.1f}",
         check_text],
        [f"plain: read_csv + pad all to {max_len} + one predict", f"{args.rows:,}", len(plain),
         f"{med['plain'][0]:.2f}", f"{med['plain'][1]:,.0f}", _mib(med["plain"][2]),
         f"{statistics.median(r['load_seconds'] for r in plain):.1f}", "—"],
    ]
    if big:
        table_rows.append(
            ["streamed, big file", f"{args.big_rows:,}", 1, f"{big['seconds']:.2f}",
             f"{big['rows_per_second']:,.0f}", _mib(big["peak_rss_mib"]),
             f"{big['load_seconds']:.1f}", "not run: the plain way needs the whole padded matrix "
             "in memory"])
    table = markdown_table(header, table_rows)

    device = streamed[0]["device"]
    if streamed[0]["gpus_seen"] == 0:
        device += " (no GPU was available in this session)"
    lines = [
        f"Streamed / plain median throughput: **{ratio:.2f}×** (target ≥ 2×: "
        f"{'met' if ratio >= 2 else 'not met'}).",
    ]
    if big:
        small_peak = med["streamed"][2]
        growth = big["peak_rss_mib"] - small_peak
        lines.append(
            f"Streamed peak RSS: {_mib(small_peak)} MiB at {args.rows:,} rows, "
            f"{_mib(big['peak_rss_mib'])} MiB at {args.big_rows:,} rows "
            f"({growth:+,.0f} MiB, {big['peak_rss_mib'] / small_peak:.2f}× for "
            f"{args.big_rows / args.rows:.0f}× the rows; target: flat)."
        )
    else:
        lines.append("The big-file run was skipped (--big-rows 0).")
    placeholders = max(r.get("placeholder_rows", 0) for r in plain)
    lines += [
        f"Device: {device}, --device {args.device}. TensorFlow {streamed[0]['tf_version']}. "
        f"Model: {model_label(args.model_dir)} (max_len {max_len}).",
        f"Input: the {build['texts']:,} IMDB test reviews (mean {build['mean_chars']:,} characters), "
        "shuffled once with a fixed seed and cycled to the row count; columns id,review.",
        "Seconds exclude model loading (timed apart, last column): streamed = score_files' own "
        "per-file timer, from opening the file to the committed predictions CSV (report off); "
        "plain = read_csv through to_csv. Both use batches of 256. Peak RSS is the child "
        "process's ru_maxrss (one fresh process per run, TensorFlow runtime included). "
        f"Runs interleaved streamed/plain; per-run seconds: streamed {_seconds(streamed)}; "
        f"plain {_seconds(plain)}.",
        "The agreement check compares the two predictions files of each pair row by row (same ids, "
        f"|score difference| < {AGREEMENT_TOLERANCE:g}) on the rows score_files scored; in the plain "
        f"run, reviews with no known word get one out-of-vocabulary id instead ({placeholders:,} "
        "such rows) and are left out of the comparison.",
        *baseline_lines(args, streamed, baseline),
    ]
    title = f"## Scoring throughput: streamed score_files vs plain predict ({args.rows:,} rows)"
    return title + "\n\n" + table + "\n\n" + "\n".join(f"- {line}" for line in lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", default="../shared/data/aclImdb_v1.tar.gz",
                        help="aclImdb archive or folder; its test reviews fill the input files")
    parser.add_argument("--model-dir", type=Path, help="default: the shipped model")
    parser.add_argument("--rows", type=int, default=100_000)
    parser.add_argument("--big-rows", type=int, default=1_000_000, help="0 skips the big run")
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--device", choices=("auto", "cpu", "gpu"), default="cpu")
    parser.add_argument("--workdir", type=Path, help="where the temporary folder goes (default: "
                        "the system temp folder; never inside the repository)")
    parser.add_argument("--keep", action="store_true", help="keep the temporary folder")
    parser.add_argument("--baseline-ref", metavar="GIT_REF",
                        help="also measure the streamed path of the code at this git ref, "
                             "interleaved in the same run (before/after a change)")
    parser.add_argument("--baseline-model-dir", type=Path,
                        help="the model the baseline runs score (default: --model-dir)")
    parser.add_argument("--skip-plain", action="store_true",
                        help="measure only current vs baseline (needs --baseline-ref or "
                             "--baseline-model-dir); no plain runs, no big file")
    parser.add_argument("--section", default="score_throughput",
                        help="the RESULTS.md section to write")
    parser.add_argument("--no-results", action="store_true",
                        help="print the table without updating RESULTS.md")
    # Child-only options.
    parser.add_argument("--child", choices=("build", "streamed", "plain"), help=argparse.SUPPRESS)
    parser.add_argument("--input", help=argparse.SUPPRESS)
    parser.add_argument("--big-input", help=argparse.SUPPRESS)
    parser.add_argument("--out-dir", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        run_child(args)
        return

    if args.rows < 1 or args.repeats < 1 or args.big_rows < 0:
        fail("--rows and --repeats must be at least 1 and --big-rows at least 0")
    args.model_dir = resolve_model(args.model_dir)
    if args.skip_plain and not (args.baseline_ref or args.baseline_model_dir):
        fail("--skip-plain compares against a baseline: give --baseline-ref or --baseline-model-dir")
    if args.skip_plain:
        args.big_rows = 0
    args.baseline_model_dir = (resolve_model(args.baseline_model_dir) if args.baseline_model_dir
                               else args.model_dir)
    base = args.workdir or Path(tempfile.gettempdir())
    if _inside(base, REPO):
        fail(f"{base} is inside the repository; pass a --workdir outside {REPO}")
    base.mkdir(parents=True, exist_ok=True)
    work = Path(tempfile.mkdtemp(prefix="score-throughput-", dir=base))
    try:
        small = work / f"reviews-{args.rows}.csv"
        big_csv = work / f"reviews-{args.big_rows}.csv" if args.big_rows else None
        print(f"writing inputs under {work} ...", flush=True)
        extra = ["--data", str(args.data), "--input", str(small), "--rows", str(args.rows)]
        if big_csv:
            extra += ["--big-input", str(big_csv), "--big-rows", str(args.big_rows)]
        build = spawn("build", extra)
        print(f"  {args.rows:,} rows ({build['bytes'] / 1e6:,.0f} MB)"
              + (f", {args.big_rows:,} rows ({build['big_bytes'] / 1e6:,.0f} MB)" if big_csv else ""),
              flush=True)

        baseline_src = export_ref(args.baseline_ref, work / "baseline-src") if args.baseline_ref else None
        streamed, plain, checks, baseline = [], [], [], []
        for i in range(1, args.repeats + 1):
            print(f"pair {i}/{args.repeats}:", flush=True)
            out_s, out_p = work / f"out-streamed-{i}", work / f"out-plain-{i}"
            if args.skip_plain:
                baseline.append(measure("streamed", small, work / f"out-baseline-{i}", args,
                                        baseline_src, args.baseline_model_dir))
                streamed.append(measure("streamed", small, out_s, args))
                shutil.rmtree(work / f"out-baseline-{i}", ignore_errors=True)
                shutil.rmtree(out_s, ignore_errors=True)
                continue
            streamed.append(measure("streamed", small, out_s, args))
            plain.append(measure("plain", small, out_p, args))
            check = agreement(Path(streamed[-1]["predictions"]), Path(plain[-1]["predictions"]))
            checks.append(check)
            if baseline_src is not None:
                baseline.append(measure("streamed", small, work / f"out-baseline-{i}", args,
                                        baseline_src, args.baseline_model_dir))
            state = "ok" if check["passed"] else "FAILED" + (f" ({check['problem']})"
                                                            if check["problem"] else "")
            print(f"  agreement: max |streamed - plain| = {check['max_abs_diff']:.2e} over "
                  f"{check['compared']:,} of {check['rows']:,} rows: {state}", flush=True)
            if not args.keep:
                shutil.rmtree(out_s, ignore_errors=True)
                shutil.rmtree(out_p, ignore_errors=True)

        big = None
        if big_csv:
            print("big file (streamed only):", flush=True)
            big = measure("streamed", big_csv, work / "out-streamed-big", args)
            if big["rows"] != args.big_rows:
                fail(f"the big run scored {big['rows']:,} rows, expected {args.big_rows:,}")

        body = (models_report(args, build, streamed, baseline) if args.skip_plain
                else report(args, build, streamed, plain, checks, big, baseline))
        # After the runs, only so that the machine line names the TensorFlow version.
        os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
        import tensorflow  # noqa: F401

        if not args.no_results:
            write_section(args.section, body)
        print()
        print(body)
        if not all(c["passed"] for c in checks):
            sys.exit(1)
    finally:
        if args.keep:
            print(f"kept {work}")
        else:
            shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
