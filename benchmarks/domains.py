"""Accuracy and ROC AUC on review files from other domains: the model(s) against VADER, TF-IDF+LR
and NB-LR, all in one run.

The development files (../shared/data/reviews-dev: airline tweets, clothing and fine-food
reviews, binary as their README says) are scored by each model directory given (default: the
shipped one), by VADER (compound >= 0.05 is positive), and by TF-IDF + LR and NB-weighted LR on
word 1-3 grams, both trained on the 25k IMDB training reviews. --imdb-test adds the 25k IMDB test
reviews as a row; that reads the test set, and the read is counted in domains.jsonl.

    python benchmarks/domains.py [--model-dir DIR ...] [--imdb-test] [--write-results]
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
sys.path.insert(0, str(Path(__file__).resolve().parent))
LOG = Path(__file__).resolve().parent / "domains.jsonl"


def linear_baselines(imdb_archive: Path):
    """TF-IDF+LR and NB-LR fitted on the IMDB training reviews: name -> scorer(texts)."""
    from sklearn.feature_extraction.text import TfidfVectorizer
    from sklearn.linear_model import LogisticRegression

    from review_scorer.io import load_labeled
    from review_scorer.text.cleaning import clean_text
    from review_scorer.training.teachers import NBLogistic

    reviews = load_labeled(str(imdb_archive))
    train = np.flatnonzero(reviews.splits == "train")
    cleaned = [clean_text(reviews.texts[i]) for i in train]
    y = np.asarray(reviews.labels)[train]
    tfidf = TfidfVectorizer(ngram_range=(1, 2), min_df=2, sublinear_tf=True, token_pattern=r"\S+")
    lr = LogisticRegression(C=4.0, max_iter=2000).fit(tfidf.fit_transform(cleaned), y)
    nb = NBLogistic().fit(cleaned, y)
    test = np.flatnonzero(reviews.splits == "test")
    return ({"TF-IDF+LR": lambda t: lr.predict_proba(tfidf.transform([clean_text(x) for x in t]))[:, 1],
             "NB-LR": lambda t: 1 / (1 + np.exp(-nb.logits([clean_text(x) for x in t])))},
            ([reviews.texts[i] for i in test], np.asarray(reviews.labels)[test]))


def cell(scores: np.ndarray, labels: np.ndarray) -> str:
    from sklearn.metrics import roc_auc_score

    ok = ~np.isnan(scores)
    s = np.where(ok, scores, 0.5)  # a review with no words counts as undecided, never dropped
    return f"{np.mean((s >= 0.5) == labels):.1%} / {roc_auc_score(labels, s):.3f}"


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model-dir", action="append", default=None)
    parser.add_argument("--imdb-test", action="store_true", help="add the IMDB test set (a read)")
    parser.add_argument("--write-results", action="store_true")
    args = parser.parse_args(argv)
    from _devfiles import DEV_FILES, IMDB_ARCHIVE, load_dev
    from _results import markdown_table, write_section
    from behaviour_suite import vader_scores

    from review_scorer.model.sentiment import SentimentModel

    scorers = {}
    for directory in args.model_dir or [None]:
        model = SentimentModel.load(directory)
        made = str(model.meta.get("created_at", ""))[:16].replace("T", " ")  # two a day happen
        label = "shipped model" if directory is None else f"{model.name} of {made}"
        scorers[label] = model.predict
    scorers["VADER"] = lambda t: vader_scores(list(t))
    baselines, imdb_test = linear_baselines(IMDB_ARCHIVE)
    scorers.update(baselines)
    sets = {name: load_dev(name) for name in DEV_FILES}
    if args.imdb_test:
        sets = {"IMDB test": imdb_test, **sets}
    rows, record = [], {"date": time.strftime("%Y-%m-%d %H:%M"), "test_read": args.imdb_test,
                        "models": list(scorers), "cells": {}}
    for name, (texts, labels) in sets.items():
        row = [name, f"{len(texts):,}"]
        for scorer in scorers.values():
            row.append(cell(np.asarray(scorer(texts), dtype=np.float64), labels))
        rows.append(row)
        record["cells"][name] = row[2:]
        print(row, flush=True)
    table = markdown_table(["file", "n", *[f"{m} acc / AUC" for m in scorers]], rows)
    print(table)
    with LOG.open("a", encoding="utf-8") as log:
        log.write(json.dumps(record) + "\n")
    if args.write_results:
        reads = sum(1 for line in LOG.read_text().splitlines() if json.loads(line).get("test_read"))
        write_section("domains", "## Other domains: accuracy / ROC AUC (threshold 0.5)\n\n" + table
                      + f"\n\nIMDB test-set reads by this benchmark so far: {reads}.")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
