"""Learning curve: fine-tuned from the encoder vs from scratch vs TF-IDF + LR, with few labels.

For each number of labels (seeded stratified samples of the IMDB train split, several seeds) the
three models train on the same sample and are tested on the same test reviews (the full 25k test
set unless --test-limit). The two networks early-stop on a movie-disjoint slice carved from the
sample itself (validation_fraction), as `review-scorer train --data my_labeled.csv` would.
Medians per size go to a table in RESULTS.md (--write-results) and a plot in benchmarks/.

    python benchmarks/learning_curve.py --data ../shared/data/aclImdb_v1.tar.gz \
        --encoder review_scorer/default_encoder --sizes 100 300 1000 3000 --seeds 3 --write-results
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
from benchmarks._results import markdown_table, write_section
from benchmarks.train_accuracy import tfidf_baseline

HERE = Path(__file__).resolve().parent
LOG = HERE / "learning_curve.jsonl"
PLOT = HERE / "learning_curve.svg"
METHODS = ("fine-tuned from the encoder", "from scratch", "TF-IDF + LR")
# Few labels: one network, more epochs (early stopping decides), a larger validation share, and
# no weight averaging: with 100 labels an epoch is 2 batches, and an EMA of momentum 0.99 over a
# few dozen steps stays next to the random start (a first try scored exactly 50% from scratch).
SMALL_DATA = {"ensemble_size": 1, "epochs": 20, "patience": 3, "validation_fraction": 0.2,
              "ema_momentum": 0.0}


def sample(reviews, size: int, seed: int, test_limit: int | None):
    """The labeled sample (as the train split) plus the test reviews, as one LabeledReviews."""
    from review_scorer.training.splits import stratified_sample

    labels = np.asarray(reviews.labels)
    train = np.flatnonzero(reviews.splits == "train")
    test = np.flatnonzero(reviews.splits == "test")
    picked = train[stratified_sample(labels[train], size, seed)]
    if test_limit is not None:  # the same test reviews for every size and seed
        test = test[stratified_sample(labels[test], test_limit, 12345)]
    from review_scorer.io import LabeledReviews

    index = np.concatenate([picked, test])
    return LabeledReviews.from_lists(
        [reviews.texts[i] for i in index], labels[index], reviews.splits[index],
        source=f"{reviews.source} ({size} labels, seed {seed})", unlabeled=reviews.unlabeled,
        groups=None if reviews.groups is None else reviews.groups[index])


def network_accuracy(subset, config, encoder) -> tuple[float, float]:
    """(test accuracy, seconds) of one network trained on the subset's train split."""
    from review_scorer.training.train import run_training

    started = time.perf_counter()
    with tempfile.TemporaryDirectory(prefix="learning-curve-") as tmp:
        result = run_training(config, data_source=subset, model_dir=Path(tmp) / "model",
                              write_report=False, encoder=encoder)
    return float(result.test_metrics["accuracy"]), time.perf_counter() - started


def run_point(reviews, size: int, seed: int, args, encoder, base_config) -> list[dict]:
    subset = sample(reviews, size, seed, args.test_limit)
    config = base_config.replace(seed=base_config.seed + seed)
    rows = []
    for method in METHODS:
        if method == METHODS[0] and encoder is None:
            continue
        if method == METHODS[2]:
            out = tfidf_baseline(subset)
            accuracy, seconds = float(out["metrics"]["accuracy"]), out["seconds"]
        else:
            accuracy, seconds = network_accuracy(
                subset, config, encoder if method == METHODS[0] else None)
        rows.append({"size": size, "seed": seed, "method": method, "test_accuracy": accuracy,
                     "seconds": round(seconds, 1), "test_reviews": int((subset.splits == "test").sum()),
                     "encoder": str(encoder.path) if encoder is not None else None})
        print("RESULT", json.dumps(rows[-1]), flush=True)
    return rows


def medians(rows: list[dict]) -> dict[tuple[int, str], float]:
    groups: dict[tuple[int, str], list[float]] = {}
    for row in rows:
        groups.setdefault((row["size"], row["method"]), []).append(row["test_accuracy"])
    return {key: statistics.median(values) for key, values in groups.items()}


def plot(table: dict[tuple[int, str], float], sizes: list[int], path: Path) -> None:
    """Median test accuracy against the number of labels (log scale), one line per method."""
    from matplotlib.figure import Figure

    figure = Figure(figsize=(6.4, 4.0))
    axes = figure.subplots()
    for method in METHODS:
        points = [(s, table[(s, method)]) for s in sizes if (s, method) in table]
        if points:
            axes.plot([p[0] for p in points], [100 * p[1] for p in points], marker="o", label=method)
    axes.set_xscale("log")
    axes.set_xticks(sizes, [str(s) for s in sizes])
    axes.set_xlabel("labeled training reviews")
    axes.set_ylabel("test accuracy (%), median over seeds")
    axes.grid(True, alpha=0.3)
    axes.legend()
    figure.tight_layout()
    figure.savefig(path, format="svg")


def write_results(rows: list[dict], sizes: list[int], args) -> None:
    table = medians(rows)
    methods = [m for m in METHODS if any(r["method"] == m for r in rows)]
    body = [[f"{s:,}"] + [f"{100 * table[(s, m)]:.2f}%" if (s, m) in table else "—"
                           for m in methods] for s in sizes]
    test_reviews = rows[0]["test_reviews"] if rows else 0
    write_section("learning_curve", (
        "## Learning curve: few labels, fine-tuned vs from scratch vs TF-IDF + LR\n\n"
        + markdown_table(["labels", *methods], body)
        + f"\n\nMedian test accuracy over {args.seeds} seeded stratified samples per size, "
        f"{test_reviews:,} test reviews. Networks: {json.dumps(SMALL_DATA)} over the default "
        f"preset; encoder {args.encoder}. Plot: `benchmarks/{PLOT.name}`.\n"))
    plot(table, sizes, PLOT)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", default="../shared/data/aclImdb_v1.tar.gz")
    parser.add_argument("--encoder", type=Path, help="encoder directory (default: none: no "
                                                       "fine-tuned line)")
    parser.add_argument("--sizes", type=int, nargs="+", default=[100, 300, 1000, 3000])
    parser.add_argument("--seeds", type=int, default=3)
    parser.add_argument("--test-limit", type=int, help="test on a fixed stratified sample")
    parser.add_argument("--set", default="{}", help="JSON TrainConfig overrides (tiny tries)")
    parser.add_argument("--write-results", action="store_true")
    args = parser.parse_args()
    from review_scorer.config import TrainConfig
    from review_scorer.io import load_labeled
    from review_scorer.model.encoder import load_encoder_dir

    base_config = TrainConfig().replace(**{**SMALL_DATA, **json.loads(args.set)})
    encoder = load_encoder_dir(args.encoder) if args.encoder else None
    reviews = load_labeled(args.data)
    rows = []
    for size in args.sizes:
        for seed in range(args.seeds):
            rows.extend(run_point(reviews, size, seed, args, encoder, base_config))
            with LOG.open("a", encoding="utf-8") as fh:
                for row in rows[-len(METHODS):]:
                    fh.write(json.dumps(row) + "\n")
    for (size, method), value in sorted(medians(rows).items()):
        print(f"{size:>6} {method:<30} {100 * value:.2f}%")
    if args.write_results:
        write_results(rows, args.sizes, args)


if __name__ == "__main__":
    main()
