"""Measure the distillation teachers before any student is trained (validation data only).

The NB-LR on whole reviews and the NB-LR on review pieces (both on the IMDB fit part), VADER, and
the two length-aware mixes of review_scorer.training.teachers ("nb_lexicon", the shipped recipe's
teacher; "nb_pieces_lexicon", with the piece-level NB-LR) are scored on the movie-disjoint IMDB
validation slice, the three development files and the behavioural suite.
The student can only learn what its teacher knows, so this chooses the teacher cheaply.

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
    from review_scorer.training.teachers import LengthMixTeacher, lexicon_scores

    started = time.perf_counter()
    reviews, splits = imdb_parts()
    fit = splits.fit
    texts = [reviews.texts[i] for i in fit]
    labels = np.asarray(reviews.labels)[fit]
    teacher = LengthMixTeacher.fit(texts, labels, clean=clean_text, seed=1337, pieces=True)
    shipped = LengthMixTeacher(teacher.nb)  # the same review-level NB-LR, without the pieces
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
        nb, piece = teacher.nb.logits(c), teacher.piece_nb.logits(c)
        compound = lexicon_scores(t)
        vader = compound - 0.05  # VADER's own rule: compound >= 0.05 is positive
        # The mixes score VADER again: simple, and only seconds.
        row = [name, len(t)]
        # Every score here is positive from 0 on (logits, or VADER's shifted compound).
        for s in (nb, piece, vader, shipped.logits(t, c), teacher.logits(t, c)):
            row.append(f"{np.mean((s >= 0) == y):.1%} / {roc_auc_score(y, s):.3f}")
        rows.append(row)
        print(row, flush=True)
    table = markdown_table(["set", "n", "NB-LR reviews acc / AUC", "NB-LR pieces acc / AUC",
                            "VADER acc / AUC", "nb_lexicon (shipped) acc / AUC",
                            "nb_pieces_lexicon acc / AUC"],
                           rows)
    print(table)
    if args.write_results:
        write_section("teacher_stack", "## Distillation teachers (validation data only)\n\n" + table
                      + f"\n\nnb_lexicon (the shipped recipe's teacher): {shipped.describe()}. "
                      f"nb_pieces_lexicon (tried, not shipped): {teacher.describe()}.")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
