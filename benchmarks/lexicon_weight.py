"""Choose the lexicon term's weight (model/lexicon.py) on validation data.

For one trained network (its lexicon term, if any, taken off), each weight on the grid is
applied as training applies it: the lexicon score times the weight, plus the stated-rating
score times its weight (fitted on the IMDB fit part's reviews that state a rating, as training
fits it), added to the network's logit, then a temperature fitted on IMDB's movie-disjoint
validation slice. The network alone (no term at all) is the first row. Each weight is then
measured on that slice, on the three development files (../shared/data/reviews-dev) and on the
behavioural suite (benchmarks/behaviour_suite.py), with weight 0 (the network alone) and VADER
as the baselines in the same run. The IMDB test set is not read.

The weight chosen is the one with the highest mean accuracy over the four validation sets (IMDB
validation and the three development files); the suite is reported, not used to choose.

    python benchmarks/lexicon_weight.py --model-dir review_scorer/default_model --write-results
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
sys.path.insert(0, str(Path(__file__).resolve().parent))

GRID = (0.0, 0.25, 0.5, 0.75, 1.0, 1.25, 1.5, 2.0)
CHOOSING = ("imdb validation", "airline_tweets", "clothing_reviews", "fine_food_reviews")


def _sets() -> tuple[dict[str, tuple[list[str], np.ndarray]], tuple[list[str], np.ndarray]]:
    """(the validation sets, the IMDB fit part's texts and labels)."""
    from _devfiles import DEV_FILES, load_dev
    from behaviour_suite import build_suite
    from teacher_stack import imdb_parts

    reviews, splits = imdb_parts()
    labels = np.asarray(reviews.labels)
    fit = ([reviews.texts[i] for i in splits.fit], labels[splits.fit])
    out = {"imdb validation": ([reviews.texts[i] for i in splits.validation], labels[splits.validation])}
    for name in DEV_FILES:
        out[name] = load_dev(name)
    cases = build_suite()
    out["behaviour suite"] = ([c.text for c in cases], np.array([c.label for c in cases]))
    return out, fit


def _features(model, term, texts: list[str]) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(the network's raw logits, the lexicon score, the rating score) of each text; texts
    without a word get logit 0 (the scorer leaves them unscored; here they count as a coin)."""
    from review_scorer.model.calibration import finite_logits

    seqs = model.encode(texts)
    has = np.array([len(s) > 0 for s in seqs])
    kept = [s for s in seqs if len(s)]
    z, lex, rating = np.zeros(len(texts)), np.zeros(len(texts)), np.zeros(len(texts))
    z[has] = finite_logits(np.asarray(model.predict_ids(kept), dtype=np.float64))
    lex[has] = term.logits(kept)
    rating[has] = term.rating_scores(kept)
    return z, lex, rating


def measure(model_dir: str) -> tuple[list[list[object]], float, dict]:
    from behaviour_suite import vader_scores
    from sklearn.metrics import roc_auc_score

    from review_scorer.model.calibration import fit_temperature
    from review_scorer.model.lexicon import LexiconTerm, fit_rating_weight
    from review_scorer.model.sentiment import SentimentModel

    model = SentimentModel.load(model_dir)
    model.meta = {**model.meta, "calibration": None}  # raw network probabilities
    model.lexicon = None
    model.ngram_head = None
    sets, (fit_texts, fit_labels) = _sets()
    term = LexiconTerm.for_vocabulary(model.vocab.tokens, 1.0)
    rating_weight, rated = fit_rating_weight(model.encode(fit_texts), fit_labels, term.ratings)
    feats = {name: _features(model, term, texts) for name, (texts, _) in sets.items()}
    z_val, l_val, r_val = feats["imdb validation"]
    y_val = sets["imdb validation"][1]
    rows, accuracy = [], {}
    for weight in (None, *GRID):  # None: the network alone, without the rating term either
        rho = 0.0 if weight is None else rating_weight
        w = weight or 0.0
        t = fit_temperature(1 / (1 + np.exp(-(z_val + w * l_val + rho * r_val))), y_val)
        cells = []
        for name, (_, y) in sets.items():
            z, lex, rating = feats[name]
            logit = (z + w * lex + rho * rating) / t
            accuracy[weight, name] = 100 * float(np.mean((logit > 0) == y))
            cells.append(f"{accuracy[weight, name]:.1f}% / {roc_auc_score(y, logit):.3f}")
        mean = float(np.mean([accuracy[weight, n] for n in CHOOSING]))
        label = "network alone" if weight is None else f"{weight:g} (rating {rho:.2f})"
        rows.append([label, f"{t:.3f}", *cells, f"{mean:.2f}%"])
    vader = []
    for texts, y in sets.values():
        v = np.asarray(vader_scores(texts), dtype=np.float64)
        vader.append(f"{100 * np.mean((v >= 0.5) == y):.1f}% / {roc_auc_score(y, v):.3f}")
    rows.append(["VADER", "", *vader, ""])
    best = max(GRID, key=lambda w: np.mean([accuracy[w, n] for n in CHOOSING]))
    sizes = {name: len(y) for name, (_, y) in sets.items()}
    return rows, best, sizes, (rating_weight, rated, len(fit_texts))


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model-dir", default="review_scorer/default_model")
    parser.add_argument("--write-results", action="store_true")
    args = parser.parse_args(argv)
    from _results import markdown_table, model_label, write_section

    started = time.perf_counter()
    rows, best, sizes, (rating_weight, rated, fit) = measure(args.model_dir)
    header = ["lexicon weight", "temperature", *[f"{n} ({k:,}) acc / AUC" for n, k in sizes.items()],
              "mean acc of the four validation sets"]
    table = markdown_table(header, rows)
    print(table)
    print(f"rating weight {rating_weight:.3f} from {rated:,} of {fit:,} fit reviews; "
          f"chosen lexicon weight: {best:g} ({time.perf_counter() - started:.0f} s)")
    if args.write_results:
        body = (f"## Lexicon term weight (network of {model_label(args.model_dir)}; validation data "
                "only)\n\n" + table + "\n\n"
                f"Rating term weight {rating_weight:.3f}, fitted on the {rated:,} of the IMDB fit "
                f"part's {fit:,} reviews that state a rating (\"7/10\", \"four stars\"). "
                f"Chosen lexicon weight: **{best:g}** (highest mean accuracy over IMDB validation "
                "and the three development files; the suite is not used to choose). Each weight's "
                "temperature is fitted on IMDB validation, as training does. The IMDB test set is "
                "not read.")
        write_section("lexicon_weight", body)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
