"""Scoring speed on CPU: the fast LSTM forward pass (review_scorer.model.fast_lstm) vs the Keras call.

    python benchmarks/fast_lstm.py [--data ../shared/data/aclImdb_v1.tar.gz] [--n 10000]
        [--rounds 5] [--model-dir DIR] [--batch-size 256] [--write-results]

Both inference functions are built in one process from the same loaded model (the Keras one
with REVIEW_SCORER_FAST_LSTM=0 set while it is built), then SentimentModel.predict_ids scores
the same N IMDB test reviews with each, alternating, for --rounds rounds (which path goes first
alternates too). The reviews are encoded once before timing, so only the network is timed:
length-bucketed batches, padding, the forward pass. The test split is read only for texts to
time; nothing here measures accuracy. Reported: seconds per round (wall and this process's CPU
time, the steadier of the two on a shared machine), medians, rows/s, the ratio of medians and
the largest score difference between the paths.
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))
from benchmarks._results import markdown_table, model_label, write_section  # noqa: E402

SHUFFLE_SEED = 20240601  # the order score_throughput.py uses
WARMUP_ROWS = 512
PATHS = ("keras", "fast")


def load_texts(data: str, n: int) -> list[str]:
    """The first n IMDB test reviews in a fixed shuffled order (positive and negative mixed)."""
    import numpy as np

    from review_scorer.errors import ReviewScorerError
    from review_scorer.io import load_labeled

    try:
        reviews = load_labeled(data)
    except ReviewScorerError as exc:
        sys.exit(f"fast_lstm: {exc}")
    texts = [t for t, split in zip(reviews.texts, reviews.splits) if split == "test"]
    if not texts:
        sys.exit(f"fast_lstm: {data}: no test reviews; pass the aclImdb archive or folder to --data")
    order = np.random.default_rng(SHUFFLE_SEED).permutation(len(texts))[:n]
    return [texts[i] for i in order]


def build_models(model_dir: Path | None):
    """One loaded model and two SentimentModels on its network: Keras path, fast path."""
    from review_scorer.model.artifacts import packaged_model_dir
    from review_scorer.model.fast_lstm import FAST_LSTM_ENV
    from review_scorer.model.sentiment import SentimentModel, select_device

    select_device("cpu")
    loaded = SentimentModel.load(model_dir or packaged_model_dir())
    models = {}
    for name in PATHS:
        os.environ[FAST_LSTM_ENV] = "1" if name == "fast" else "0"
        models[name] = SentimentModel(loaded.keras_model, loaded.vocab, loaded.config,
                                      meta=loaded.meta, path=loaded.path, lexicon=loaded.lexicon,
                                      clauses=loaded.clauses)
        if models[name].infer.fast != (name == "fast"):
            sys.exit(f"fast_lstm: the {name} path could not be built for this model")
    os.environ.pop(FAST_LSTM_ENV, None)
    return loaded, models


def time_rounds(models: dict, sequences: list, rounds: int, batch_size: int) -> dict:
    """Per path: wall and CPU seconds of each round, and the last round's scores."""
    for model in models.values():  # trace outside the timed rounds
        model.predict_ids(sequences[:WARMUP_ROWS], batch_size=batch_size)
    out = {name: {"wall": [], "cpu": [], "scores": None} for name in PATHS}
    for number in range(rounds):
        order = PATHS if number % 2 == 0 else PATHS[::-1]
        for name in order:
            wall, cpu = time.perf_counter(), time.process_time()
            scores = models[name].predict_ids(sequences, batch_size=batch_size)
            out[name]["wall"].append(time.perf_counter() - wall)
            out[name]["cpu"].append(time.process_time() - cpu)
            out[name]["scores"] = scores
            print(f"round {number + 1}: {name}: {out[name]['wall'][-1]:.2f} s wall, "
                  f"{out[name]['cpu'][-1]:.2f} s CPU", flush=True)
    return out


def report(args, loaded, sequences: list, timings: dict) -> str:
    import numpy as np

    rows = len(sequences)
    tokens = sum(len(s) for s in sequences)
    medians = {name: {kind: statistics.median(timings[name][kind]) for kind in ("wall", "cpu")}
               for name in PATHS}
    table = markdown_table(
        ["path", "median wall s", "rows/s", "median CPU s", "wall per round (s)"],
        [[name, f"{medians[name]['wall']:.2f}", f"{rows / medians[name]['wall']:,.0f}",
          f"{medians[name]['cpu']:.2f}", ", ".join(f"{x:.2f}" for x in timings[name]["wall"])]
         for name in PATHS])
    paired = [k / f for k, f in zip(timings["keras"]["wall"], timings["fast"]["wall"])]
    diff = float(np.max(np.abs(timings["fast"]["scores"] - timings["keras"]["scores"])))
    lines = [
        f"{rows:,} IMDB test reviews ({tokens / rows:.0f} tokens on average after truncation), "
        f"model {model_label(loaded.path)}, CPU, batches of {args.batch_size}, "
        f"{args.rounds} rounds alternating the paths in one process; reviews encoded before timing.",
        f"Fast path speed-up, ratio of medians: **{medians['keras']['wall'] / medians['fast']['wall']:.2f}x**"
        f" wall, {medians['keras']['cpu'] / medians['fast']['cpu']:.2f}x CPU time; per round "
        + ", ".join(f"{r:.2f}x" for r in paired) + ".",
        f"Largest score difference between the paths: {diff:.1e} (tolerance 1e-5).",
    ]
    title = f"## Fast CPU LSTM path vs Keras ({rows:,} reviews)"
    return title + "\n\n" + table + "\n\n" + "\n".join(f"- {line}" for line in lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", default="../shared/data/aclImdb_v1.tar.gz")
    parser.add_argument("--n", type=int, default=10000, help="reviews to score per round")
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--batch-size", type=int, default=256)
    parser.add_argument("--model-dir", type=Path, help="default: the shipped model")
    parser.add_argument("--write-results", action="store_true",
                        help="write the table into benchmarks/RESULTS.md (section fast_lstm)")
    args = parser.parse_args()
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    texts = load_texts(args.data, args.n)
    loaded, models = build_models(args.model_dir)
    sequences = [s for s in loaded.encode(texts) if len(s)]
    timings = time_rounds(models, sequences, args.rounds, args.batch_size)
    body = report(args, loaded, sequences, timings)
    if args.write_results:
        write_section("fast_lstm", body)
    print(body)


if __name__ == "__main__":
    main()
