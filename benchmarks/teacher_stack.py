"""Measure the distillation teachers before any student is trained (validation data only).

The NB-LR on whole reviews and the NB-LR on review pieces (both on the IMDB fit part), VADER, the
previous recipe's mix (whole-review NB-LR and VADER by length) and the length-aware mix of all three
(review_scorer.training.teachers, the shipped recipe's teacher) are scored on the
movie-disjoint IMDB validation slice, the three development files and the behavioural suite.
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


def previous_mix(nb_logits, compound, cleaned):
    """The teacher of the model shipped before: whole-review NB-LR and VADER, mixed by length."""
    long_share = np.clip(np.array([len(c.split()) for c in cleaned]) / 60, 0.0, 1.0)
    lexicon = np.arctanh(np.clip(compound, -0.995, 0.995))
    return ((0.5 + 0.5 * long_share) * np.clip(nb_logits, -15, 15)
            + 3.0 * (1.0 - 0.9 * long_share) * lexicon)


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
    teacher = LengthMixTeacher.fit(texts, labels, clean=clean_text, seed=1337)
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
        stack = teacher.logits(t, c)  # scores VADER again: simple, and only seconds
        row = [name, len(t)]
        # Every score here is positive from 0 on (logits, or VADER's shifted compound).
        for s in (nb, piece, vader, previous_mix(nb, compound, c), stack):
            row.append(f"{np.mean((s >= 0) == y):.1%} / {roc_auc_score(y, s):.3f}")
        rows.append(row)
        print(row, flush=True)
    table = markdown_table(["set", "n", "NB-LR reviews acc / AUC", "NB-LR pieces acc / AUC",
                            "VADER acc / AUC", "previous mix acc / AUC", "length mix acc / AUC"],
                           rows)
    print(table)
    if args.write_results:
        write_section("teacher_stack", "## Distillation teachers (validation data only)\n\n" + table
                      + f"\n\nLength mix (the shipped recipe's teacher): {teacher.describe()}. "
                      "Previous mix (the teacher of the model shipped before): the whole-review "
                      "NB-LR and the lexicon alone, the NB-LR leading from 60 words on and counting "
                      "half on a one-word text.")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
