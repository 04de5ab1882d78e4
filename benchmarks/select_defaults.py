"""Choose the default preset by held-out accuracy inside the IMDB *train* split (never the test set).

Each candidate trains on 72% of the official train split, early-stops on 8%, and is scored on a
held-out 20% of train; both held-out parts are whole movies (aclImdb's urls files), as the test
set's movies are disjoint from train's. Results accumulate in benchmarks/select_defaults.jsonl
so candidates can be run one at a time; the table of all of them goes to RESULTS.md.

    python benchmarks/select_defaults.py --data ../shared/data/aclImdb_v1.tar.gz default last_pooling
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
from benchmarks._results import markdown_table, write_section

CANDIDATES: dict[str, dict] = {
    "default": {},
    "last_pooling": {"pooling": "last"},
    "unidirectional": {"bidirectional": False},
    "max_len_256": {"max_len": 256},
    "max_len_600": {"max_len": 600},
    "truncate_pre": {"truncating": "pre"},
    "embedding_128": {"embedding_dim": 128},
    "vocab_30k": {"vocab_size": 30000},
    "lstm_32": {"lstm_units": 32},
    "no_dense": {"dense_units": 0},
}
LOG = Path(__file__).resolve().parent / "select_defaults.jsonl"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("names", nargs="*", help=f"candidates to run: {', '.join(CANDIDATES)}")
    parser.add_argument("--data", default="../shared/data/aclImdb_v1.tar.gz")
    parser.add_argument("--table-only", action="store_true", help="only rewrite the table")
    args = parser.parse_args()

    if not args.table_only:
        from review_scorer.config import TrainConfig
        from review_scorer.io import load_labeled
        from review_scorer.training.train import run_training

        train_only = load_labeled(args.data).split("train")
        for name in args.names:
            config = TrainConfig().replace(**CANDIDATES[name])
            with tempfile.TemporaryDirectory() as tmp:
                started = time.perf_counter()
                result = run_training(config, data_source=train_only, model_dir=Path(tmp) / "m",
                                      verbose=2, write_report=False)
                wall = time.perf_counter() - started
            row = {
                "name": name, "overrides": CANDIDATES[name],
                "heldout_accuracy": result.test_metrics["accuracy"],
                "heldout_loss": result.test_metrics["loss"],
                "best_val_loss": min(result.history["val_loss"]),
                "best_val_accuracy": result.history["val_accuracy"][result.best_epoch - 1],
                "epochs_run": result.epochs_run, "best_epoch": result.best_epoch,
                "seconds_per_epoch": result.train_seconds / result.epochs_run,
                "wall_seconds": wall,
            }
            print(json.dumps(row), flush=True)
            with LOG.open("a", encoding="utf-8") as fh:
                fh.write(json.dumps(row) + "\n")

    rows = [json.loads(line) for line in LOG.read_text(encoding="utf-8").splitlines() if line.strip()]
    table = markdown_table(
        ["candidate", "overrides", "held-out acc (5k of train)", "held-out loss", "best val acc",
         "epochs (best)", "s/epoch"],
        [[r["name"], json.dumps(r["overrides"]) if r["overrides"] else "—",
          f"{r['heldout_accuracy']:.2%}", f"{r['heldout_loss']:.4f}", f"{r['best_val_accuracy']:.2%}",
          f"{r['epochs_run']} ({r['best_epoch']})", f"{r['seconds_per_epoch']:.0f}"] for r in rows],
    )
    write_section("select_defaults", "## Choosing the default preset (IMDB train split only)\n\n"
                  "Train on ~18k of the 25k training reviews, early-stop on ~2k, score a held-out "
                  "~5k slice of train; both held-out parts are whole movies, disjoint from the "
                  "training movies. The official test set is not used to choose.\n\n" + table)
    print(table)


if __name__ == "__main__":
    main()
