"""A measured lead for adapting to a few labels: the shipped network frozen, stacked with an
n-gram model of the user's own labels, against fine-tuning the network (adaptation.py).

Same draws as benchmarks/adaptation.py (balanced_draw: N/2 labels a class; the rest of the file
is the test set) on each development file. On the N labels:

- an n-gram logistic regression (TF-IDF on word 1-2 grams, sublinear tf, C=4: adaptation.py's
  TF-IDF+LR baseline) gives out-of-fold logits by 5-fold cross-fitting;
- a stacker, a logistic regression on [the shipped model's logit, the n-gram logit], is fitted
  on those out-of-fold logits, each label weighted to the file's class mix as the product's
  guard estimates it from the unlabeled rest (review_scorer.training.adapt.estimate_mix);
- the n-gram model refitted on all N labels and the stacker then score the rest of the file.

Two n-gram vocabularies are measured: the file's own words ("stack"), and only the words the
shipped model knows, others dropped ("stack, model words"), which is what an n-gram path inside
the network, reading the network's word ids, could see. "stack, guarded" keeps the shipped
model (refitted to the class mix, as the product's guard does) unless nested cross-validation on
the labels finds the stack at least as accurate there.

Nothing here is trained on IMDB or changes the model; it measures what a wide, per-file n-gram
path beside the frozen network would give, before anyone builds one.

    python benchmarks/adaptation_stack.py [--sizes 50 100 200 500 1000] [--seeds 3] [--write-results]

Runs of the same draws from benchmarks/adaptation.jsonl (the fine-tuned network, made with the
same model) are tabled beside it.
"""

from __future__ import annotations

import argparse
import itertools
import json
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
sys.path.insert(0, str(Path(__file__).resolve().parent))
HERE = Path(__file__).resolve().parent
LOG = HERE / "adaptation_stack.jsonl"
FOLDS = 5


def _logit(p: np.ndarray) -> np.ndarray:
    p = np.clip(np.asarray(p, dtype=np.float64), 1e-6, 1 - 1e-6)
    return np.log(p / (1 - p))


def ngram_model(analyzer=None):
    from sklearn.feature_extraction.text import TfidfVectorizer
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import make_pipeline

    vec = (TfidfVectorizer(ngram_range=(1, 2), sublinear_tf=True) if analyzer is None
           else TfidfVectorizer(analyzer=analyzer, sublinear_tf=True))
    return make_pipeline(vec, LogisticRegression(C=4.0, max_iter=2000))


def cross_fitted(texts: np.ndarray, labels: np.ndarray, seed: int, analyzer) -> np.ndarray:
    """Out-of-fold n-gram logits of the labeled texts."""
    from sklearn.model_selection import StratifiedKFold

    out = np.zeros(len(texts))
    folds = StratifiedKFold(min(FOLDS, int(np.bincount(labels).min())), shuffle=True,
                            random_state=seed)
    for train, held in folds.split(texts, labels):
        out[held] = ngram_model(analyzer).fit(texts[train], labels[train]).decision_function(
            texts[held])
    return out


def stacked(start_logits, labels, texts, weights, seed, analyzer, rest_texts, rest_logits):
    """Fit the n-gram model and the stacker on the labels; the stack's logits on the rest."""
    from sklearn.linear_model import LogisticRegression

    oof = cross_fitted(texts, labels, seed, analyzer)
    stacker = LogisticRegression(C=1.0).fit(np.c_[start_logits, oof], labels, sample_weight=weights)
    ngrams = ngram_model(analyzer).fit(texts, labels).decision_function(rest_texts)
    return stacker.decision_function(np.c_[rest_logits, ngrams])


def refit_start(start_logits, labels, weights, rest_logits):
    """The shipped model refitted to the file's class mix (what the guard falls back to)."""
    from sklearn.linear_model import LogisticRegression

    fit = LogisticRegression(C=1e4).fit(start_logits.reshape(-1, 1), labels, sample_weight=weights)
    return fit.decision_function(rest_logits.reshape(-1, 1))


def nested_guard(start_logits, labels, texts, weights, seed, analyzer) -> tuple[float, float]:
    """Weighted out-of-fold accuracy of (the refitted shipped model, the stack) on the labels."""
    from sklearn.model_selection import StratifiedKFold

    start_out, stack_out = np.zeros(len(labels)), np.zeros(len(labels))
    folds = StratifiedKFold(min(FOLDS, int(np.bincount(labels).min())), shuffle=True,
                            random_state=seed + 100)
    for train, held in folds.split(texts, labels):
        start_out[held] = refit_start(start_logits[train], labels[train], weights[train],
                                      start_logits[held])
        stack_out[held] = stacked(start_logits[train], labels[train], texts[train],
                                  weights[train], seed, analyzer, texts[held], start_logits[held])

    def acc(z):
        return float(np.sum(weights * ((z >= 0) == labels)) / np.sum(weights))

    return acc(start_out), acc(stack_out)


def one_run(name, texts, labels, shipped, vader, size, seed, model_words) -> dict:
    from adaptation import balanced_draw

    from review_scorer.training.adapt import estimate_mix

    picked, rest = balanced_draw(labels, size, seed)
    started = time.perf_counter()
    y, z = labels[picked], _logit(shipped[picked])
    mix = estimate_mix(shipped[picked], y, shipped[rest])
    weights = mix.weights(y)
    prior_free = {}
    for key, analyzer in (("stack", None), ("stack_model_words", model_words)):
        prior_free[key] = stacked(z, y, texts[picked], weights, seed, analyzer, texts[rest],
                                  _logit(shipped[rest]))
    start_cv, stack_cv = nested_guard(z, y, texts[picked], weights, seed, None)
    refit = refit_start(z, y, weights, _logit(shipped[rest]))
    guarded = prior_free["stack"] if stack_cv >= start_cv else refit
    seconds = time.perf_counter() - started

    def acc(scores_or_logits, is_logit=True):
        called = scores_or_logits >= (0.0 if is_logit else 0.5)
        return float(np.mean(called == labels[rest]))

    return {"file": name, "size": size, "seed": seed, "seconds": round(seconds, 1),
            "shipped": acc(shipped[rest], False), "vader": acc(vader[rest], False),
            "shipped_refit": acc(refit), "stack": acc(prior_free["stack"]),
            "stack_model_words": acc(prior_free["stack_model_words"]),
            "stack_guarded": acc(guarded), "guard_cv": [start_cv, stack_cv],
            "mix_estimate": mix.positive, "mix_true": float(np.mean(labels[rest] == 1))}


def write_results(created: str) -> None:
    from _results import markdown_table, write_section

    runs = [r for r in map(json.loads, LOG.read_text().splitlines())
            if r.get("model_created") == created]
    tuned = {(r["file"], r["size"], r["seed"]): r["adapted"]
             for r in map(json.loads, (HERE / "adaptation.jsonl").read_text().splitlines())
             if r.get("model_created") == created and r.get("unlabeled") and "mix_se" in r
             and "stack_used" not in r  # fine-tuning alone, before adapt tried the stack
             and r["schedule"] == json.loads(json.dumps(_default_schedule()))}
    rows = []
    for file, size in sorted({(r["file"], r["size"]) for r in runs}):
        sel = [r for r in runs if (r["file"], r["size"]) == (file, size)]

        def med(key, sel=sel):
            return f"{100 * np.median([r[key] for r in sel]):.1f}"

        fine = [tuned[(file, size, r["seed"])] for r in sel if (file, size, r["seed"]) in tuned]
        best_base = np.median([max(r["shipped"], r["vader"]) for r in sel])
        rows.append([file, size, len(sel), med("shipped"), med("vader"),
                     f"{100 * np.median(fine):.1f}" if fine else "—",
                     med("stack"), med("stack_model_words"), med("stack_guarded"),
                     f"{100 * (np.median([r['stack_guarded'] for r in sel]) - best_base):+.1f}",
                     f"{100 * min(r['stack_guarded'] - r['shipped'] for r in sel):+.1f}",
                     f"{np.median([r['seconds'] for r in sel]):.1f} s"])
    table = markdown_table(["file", "labels", "seeds", "shipped", "VADER",
                            "fine-tuned (adaptation.py)", "stack", "stack, model words",
                            "stack, guarded", "guarded - best of shipped/VADER (medians)",
                            "worst seed: guarded - shipped", "time"], rows)
    write_section("adaptation_stack",
                  "## Adapting by stacking: the shipped network frozen, plus an n-gram model of "
                  "the N labels (accuracy %, medians over seeds, tested on the rest of each "
                  "file; not built into the product)\n\n"
                  "Same draws as the adaptation section. \"fine-tuned\" is that section's adapted "
                  "model on the same draws. The stack's n-gram model is TF-IDF on word 1-2 grams "
                  "+ logistic regression, cross-fitted on the labels; the stacker weighs its "
                  "logit against the shipped model's at the file's estimated class mix. "
                  "\"model words\": n-grams of only the words in the shipped model's vocabulary. "
                  "\"guarded\": the stack only where nested cross-validation on the labels finds "
                  "it at least as accurate as the shipped model refitted to the class mix.\n\n"
                  f"{table}")
    print(table)


def _default_schedule() -> dict:
    from review_scorer.training.adapt import Schedule

    return Schedule().__dict__


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", type=int, nargs="+", default=[50, 100, 200, 500, 1000])
    parser.add_argument("--seeds", type=int, default=3)
    parser.add_argument("--files", nargs="+", default=None)
    parser.add_argument("--model-dir", default=None)
    parser.add_argument("--write-results", action="store_true")
    args = parser.parse_args(argv)
    from _devfiles import DEV_FILES, load_dev
    from behaviour_suite import vader_scores

    from review_scorer.model.sentiment import SentimentModel
    from review_scorer.text.cleaning import clean_text

    model = SentimentModel.load(args.model_dir)
    vocab = model.vocab

    def model_words(text: str) -> list[str]:
        ids = [str(i) for i in vocab.encode(clean_text(text)) if i > 1]  # 0 pad, 1 unknown
        return ids + [f"{a}_{b}" for a, b in itertools.pairwise(ids)]

    created = model.meta.get("created_at")
    for name in args.files or DEV_FILES:
        texts, labels = load_dev(name)
        shipped, vader = np.asarray(model.predict(texts)), np.asarray(vader_scores(texts))
        texts = np.array(texts, dtype=object)
        for size in args.sizes:
            for seed in range(args.seeds):
                record = one_run(name, texts, labels, shipped, vader, size, seed, model_words)
                record["model_created"] = created
                print(json.dumps(record), flush=True)
                with LOG.open("a", encoding="utf-8") as log:
                    log.write(json.dumps(record) + "\n")
    if args.write_results:
        write_results(created)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
