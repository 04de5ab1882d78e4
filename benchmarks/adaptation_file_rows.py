"""How adapting uses the rows of a user's file that carry no label: the class mix they imply, and
what they teach the n-gram model of the labels (training/class_mix.py, training/stack.py).

Same draws as benchmarks/adaptation.py (balanced_draw: N/2 labels a class; the rest of the file
is the test set, and a seeded sample of up to 5,000 of its texts, without labels, are the rows
a user leaves unlabeled) on each development file, with the shipped model. Nothing here is
fine-tuned; it isolates the two uses of the unlabeled rows, measured in one run:

1. **The class mix.** The share of positive reviews the adapter assumes, against the true share
   of the rest of the file: adjusted classify-and-count (Forman 2008; the estimator before EM,
   rebuilt here from the starting model's calls and its rates on the labels, drawn toward the
   labels' share by its delta-method standard error, as it was) against EM (Saerens et al. 2002;
   estimate_mix now). Mean absolute error over the seeds.
2. **The n-gram model's training data.** The stack of the network's logit, an n-gram model and
   the lexicon score (training/stack.py, each input cross-fitted over the same folds, the stacker
   weighted to the EM mix), always kept here so its accuracy on the rest of the file is seen:
   with the n-gram model of the labels alone, and with the file's confidently scored rows beside
   them at several confidence thresholds |p - 0.5| and total weights (in multiples of the
   labels') and L2 strengths of the n-gram regression. The product's setting is
   stack.PSEUDO_CONFIDENCE / PSEUDO_WEIGHT with the regression's C chosen per file among
   stack.FILE_ROWS_CS by cross-validation on the labels.

    python benchmarks/adaptation_file_rows.py [--sizes 100 200 500 1000] [--seeds 3] [--write-results]

Validation data only (the development files); the IMDB test set is not read.
"""

from __future__ import annotations

import argparse
import itertools
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
sys.path.insert(0, str(Path(__file__).resolve().parent))

# (confidence, weight, C of the n-gram regression; "cv": chosen among stack.FILE_ROWS_CS by the
# stack's cross-fitted log loss, as the product does); None: the labels alone
SETTINGS = [None, (0.3, 1.0, 4.0), (0.3, 3.0, 4.0), (0.0, 3.0, 4.0), (0.3, 10.0, 4.0),
            (0.3, 3.0, 16.0), (0.3, 3.0, "cv")]


def _name(setting) -> str:
    if setting is None:
        return "labels alone"
    return f"+ file rows, p within {0.5 - setting[0]:.1f} of 0 or 1, x{setting[1]:g}, C {setting[2]}"


def adjusted_count(start: np.ndarray, labels: np.ndarray, unlabeled: np.ndarray) -> float:
    """The estimator adapting used before EM, as it was: (q - FPR) / (TPR - FPR), drawn toward
    the labels' share by its delta-method standard error."""
    called = start >= 0.5
    tpr, fpr = float(np.mean(called[labels == 1])), float(np.mean(called[labels == 0]))
    q, n = float(np.mean(unlabeled >= 0.5)), len(unlabeled)
    raw = float(np.clip((q - fpr) / (tpr - fpr), 0.02, 0.98))
    n_pos, n_neg = int(np.sum(labels == 1)), int(np.sum(labels == 0))
    se = float(np.sqrt(raw ** 2 * tpr * (1 - tpr) / n_pos + (1 - raw) ** 2 * fpr * (1 - fpr) / n_neg
                       + q * (1 - q) / n) / (tpr - fpr))
    share = float(np.mean(labels == 1))
    return share if abs(raw - share) <= se else raw - np.sign(raw - share) * se


def stack_accuracy(seqs, labels, w, fold_of, rest_seqs, rest_labels, z, rest_z, lexicon,
                   file_rows, c) -> float:
    """Accuracy on the rest of the file of the stack [network logit, n-gram logit, lexicon]."""
    from sklearn.linear_model import LogisticRegression

    from review_scorer.model.ngram_head import lexicon_scores
    from review_scorer.training import stack

    vocab_size = lexicon[0].shape[0]
    if c == "cv":
        ngram, c = stack._ngram_input(seqs, labels, w, fold_of, vocab_size, file_rows, z)
    else:
        ngram = stack._ngram_oof(seqs, labels, w, fold_of, vocab_size, file_rows,
                                 None if c is None else (c,))[0]
    head = stack._fit_ngram(seqs, labels, w, np.arange(len(labels)), vocab_size, file_rows,
                            None if c is None else (c,))[0][0]
    x = np.c_[z, ngram, lexicon_scores(seqs, lexicon[0], lexicon[1])]
    rest_x = np.c_[rest_z, head.ngram_logits(rest_seqs), lexicon_scores(rest_seqs, lexicon[0], lexicon[1])]
    fit = LogisticRegression(C=stack.STACK_C).fit(x, labels, sample_weight=w)
    return float(np.mean((fit.decision_function(rest_x) >= 0) == rest_labels))


def one_draw(name, seqs_all, labels_all, scores_all, size, seed, lexicon) -> dict:
    from adaptation import balanced_draw

    from review_scorer.model.calibration import finite_logits
    from review_scorer.training import stack
    from review_scorer.training.adapt import MAX_UNLABELED_SCORED, folds_for, stratified_folds
    from review_scorer.training.class_mix import estimate_mix

    picked, rest = balanced_draw(labels_all, size, seed)
    has_words = ~np.isnan(scores_all)  # reviews with no known word are left out of both sides
    picked, rest = picked[has_words[picked]], rest[has_words[rest]]
    labels, rest_labels = labels_all[picked], labels_all[rest]
    sample = rest
    if len(rest) > MAX_UNLABELED_SCORED:  # as training/adapt._file_rows samples them
        chosen = np.random.default_rng(seed).choice(len(rest), MAX_UNLABELED_SCORED, replace=False)
        sample = rest[np.sort(chosen)]
    start, unlabeled = scores_all[picked], scores_all[sample]
    mix = estimate_mix(start, labels, unlabeled)
    true = float(np.mean(rest_labels))
    run = {"file": name, "size": size, "seed": seed, "true_mix": true,
           "em": mix.positive, "adjusted_count": adjusted_count(start, labels, unlabeled)}
    w = mix.weights(labels)
    fold_of = stratified_folds(labels, folds_for(len(labels)), seed)
    seqs = [seqs_all[i] for i in picked]
    rest_seqs = [seqs_all[i] for i in rest]
    z, rest_z = finite_logits(start), finite_logits(scores_all[rest])
    rows = stack.FileRows([seqs_all[i] for i in sample], unlabeled, start)
    saved = stack.PSEUDO_CONFIDENCE, stack.PSEUDO_WEIGHT
    try:
        for setting in SETTINGS:
            if setting is not None:
                stack.PSEUDO_CONFIDENCE, stack.PSEUDO_WEIGHT = setting[:2]
            run[_name(setting)] = stack_accuracy(
                seqs, labels, w, fold_of, rest_seqs, rest_labels, z, rest_z, lexicon,
                None if setting is None else rows, None if setting is None else setting[2])
    finally:
        stack.PSEUDO_CONFIDENCE, stack.PSEUDO_WEIGHT = saved
    run["shipped"] = float(np.mean((scores_all[rest] >= 0.5) == rest_labels))
    return run


def tables(runs: list[dict]) -> str:
    from _results import markdown_table

    from review_scorer.training import stack

    keys = sorted({(r["file"], r["size"]) for r in runs})
    mix_rows, acc_rows = [], []
    for file, size in keys:
        sel = [r for r in runs if (r["file"], r["size"]) == (file, size)]
        err = {k: np.mean([abs(r[k] - r["true_mix"]) for r in sel]) for k in ("adjusted_count", "em")}
        mix_rows.append([file, size, len(sel), f"{np.median([r['true_mix'] for r in sel]):.3f}",
                         f"{err['adjusted_count']:.3f}", f"{err['em']:.3f}"])
        med = [100 * np.median([r[_name(s)] for r in sel]) for s in SETTINGS]
        acc_rows.append([file, size, f"{100 * np.median([r['shipped'] for r in sel]):.1f}",
                         *(f"{m:.2f}" for m in med), f"{med[-1] - med[0]:+.2f}"])
    product = (stack.PSEUDO_CONFIDENCE, stack.PSEUDO_WEIGHT, "cv")
    header = ["file", "labels", "shipped"] + [_name(s) + (" (product)" if s == product else "")
                                               for s in SETTINGS] + ["product - labels alone"]
    return ("Class mix assumed, mean absolute error against the rest of the file:\n\n"
            + markdown_table(["file", "labels", "seeds", "true share", "adjusted count (before)",
                              "EM (now)"], mix_rows)
            + "\n\nStack accuracy on the rest of the file (%, medians), by the n-gram model's "
              "training data:\n\n" + markdown_table(header, acc_rows))


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--sizes", type=int, nargs="+", default=[100, 200, 500, 1000])
    parser.add_argument("--seeds", type=int, default=3)
    parser.add_argument("--files", nargs="+", default=None)
    parser.add_argument("--write-results", action="store_true")
    args = parser.parse_args(argv)

    from _devfiles import DEV_FILES, load_dev
    from _results import command, machine, write_section

    from review_scorer.model.lexicon import lexicon_arrays
    from review_scorer.model.sentiment import SentimentModel

    model = SentimentModel.load()
    lexicon = lexicon_arrays(model.vocab.tokens)
    runs, started = [], time.perf_counter()
    for name in args.files or DEV_FILES:
        texts, labels = load_dev(name)
        seqs = model.encode(texts)
        keep = np.flatnonzero([len(s) > 0 for s in seqs])
        scores = np.full(len(seqs), np.nan)
        scores[keep] = model.predict_ids([seqs[i] for i in keep])
        for size, seed in itertools.product(args.sizes, range(args.seeds)):
            runs.append(one_draw(name, seqs, labels, scores, size, seed, lexicon))
            print({k: (round(v, 4) if isinstance(v, float) else v) for k, v in runs[-1].items()},
                  flush=True)
    body = tables(runs)
    print(body)
    if args.write_results:
        write_section("adaptation_file_rows", (
            "## Adapting: the file's unlabeled rows, for the class mix and in the n-gram model\n\n"
            f"`{command()}` ({time.perf_counter() - started:.0f} s; {machine()}; "
            f"{time.strftime('%Y-%m-%d')}; model {model.meta.get('created_at')}). Balanced draws "
            "as benchmarks/adaptation.py's, the shipped network frozen, the stack always kept; "
            "development files only.\n\n" + body))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
