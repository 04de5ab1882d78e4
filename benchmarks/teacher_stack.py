"""Measure the distillation teachers before any student is trained (validation data only).

The NB-LR (IMDB fit part), VADER, and the length-aware mix of both (review_scorer.training.teachers,
the shipped recipe's teacher) are scored on the movie-disjoint IMDB validation slice, the three
development files and the behavioural suite. The student can only learn what its teacher knows,
so this chooses the teacher cheaply.

    python benchmarks/teacher_stack.py [--write-results]
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
sys.path.insert(0, str(Path(__file__).resolve().parent))


def imdb_parts():
    from _devfiles import IMDB_ARCHIVE

    from review_scorer.config import TrainConfig
    from review_scorer.io import load_labeled
    from review_scorer.training.splits import make_splits

    reviews = load_labeled(str(IMDB_ARCHIVE))
    splits = make_splits(reviews, TrainConfig())
    return reviews, splits


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--write-results", action="store_true")
    args = parser.parse_args(argv)
    from _devfiles import DEV_FILES, load_dev
    from _results import markdown_table, write_section
    from behaviour_suite import build_suite
    from sklearn.metrics import roc_auc_score

    from review_scorer.text.cleaning import clean_text
    from review_scorer.training.teachers import LengthMixTeacher, NBLogistic, lexicon_scores

    started = time.perf_counter()
    reviews, splits = imdb_parts()
    fit = splits.fit
    texts = [reviews.texts[i] for i in fit]
    cleaned = [clean_text(t) for t in texts]
    labels = np.asarray(reviews.labels)[fit]
    teacher = LengthMixTeacher(NBLogistic().fit(cleaned, labels))
    print("teacher fitted in", round(time.perf_counter() - started), "s", flush=True)
    sets = {"imdb validation": ([reviews.texts[i] for i in splits.validation],
                                np.asarray(reviews.labels)[splits.validation])}
    for name in DEV_FILES:
        sets[name] = load_dev(name)
    suite = build_suite()
    sets["behaviour suite"] = ([c.text for c in suite], np.array([c.label for c in suite]))
    rows = []
    for name, (t, y) in sets.items():
        c = [clean_text(x) for x in t]
        nb = 1 / (1 + np.exp(-teacher.nb.logits(c)))
        vader = (lexicon_scores(t) + 1) / 2 - 0.025
        stack = teacher.predict(t, c)  # scores VADER again: simple, and only seconds
        row = [name, len(t)]
        for s in (nb, vader, stack):
            row.append(f"{np.mean((s >= 0.5) == y):.1%} / {roc_auc_score(y, s):.3f}")
        rows.append(row)
        print(row, flush=True)
    table = markdown_table(["set", "n", "NB-LR acc / AUC", "VADER acc / AUC", "length mix acc / AUC"], rows)
    print(table)
    if args.write_results:
        write_section("teacher_stack", "## Distillation teachers (validation data only)\n\n" + table
                      + f"\n\nLength mix: {teacher.describe()}.")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
