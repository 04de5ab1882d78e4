"""Choose the n-gram term's weight and length gate (model/ngram_term.py) on validation data.

For one trained model (its clause rules and lexicon term kept, any n-gram term taken off), the
NB-weighted regression on word 1-3 grams is fitted on the IMDB fit part's ids, as training fits
it. Each (weight, min_words) on the grid adds weight times its logit to the logits of reviews
with at least min_words known words, before a temperature fitted on IMDB's movie-disjoint
validation slice, as training does. Each setting is measured on that slice, on the three
development files (../shared/data/reviews-dev) and on the behavioural suite; weight 0 (the model
without the term) and the n-gram regression alone are the baselines in the same run. The IMDB
test set is not read.

The setting chosen has the highest mean accuracy over the four validation sets (IMDB validation
and the three development files); the suite is reported, not used to choose.

    python benchmarks/ngram_term.py --model-dir review_scorer/default_model --write-results
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
sys.path.insert(0, str(Path(__file__).resolve().parent))

WEIGHTS = (0.25, 0.5, 0.75, 1.0, 1.5)
MIN_WORDS = (0, 20, 40, 60, 100)
CHOOSING = ("imdb validation", "airline_tweets", "clothing_reviews", "fine_food_reviews")


def _logits(model, texts: list[str]) -> tuple[np.ndarray, list[np.ndarray], np.ndarray]:
    """(the model's logits before the temperature, with clause rules and lexicon term; the ids;
    known words per text). Texts without a word get logit 0 (a coin)."""
    from review_scorer.model.calibration import finite_logits

    seqs = model.encode(texts)
    has = np.array([len(s) > 0 for s in seqs])
    z = np.zeros(len(texts))
    z[has] = finite_logits(np.asarray(model.predict_ids([s for s in seqs if len(s)]), np.float64))
    words = np.array([int(np.sum(np.asarray(s) >= 2)) for s in seqs])
    return z, seqs, words


def measure(model_dir: str):
    from behaviour_suite import vader_scores
    from lexicon_weight import _sets
    from sklearn.metrics import roc_auc_score

    from review_scorer.model.calibration import fit_temperature
    from review_scorer.model.ngram_term import NgramTerm
    from review_scorer.model.sentiment import SentimentModel

    model = SentimentModel.load(model_dir)
    model.meta = {**model.meta, "calibration": None}  # logits before the temperature
    if model.lexicon is not None:
        model.lexicon.ngrams = None
    sets, (fit_texts, fit_labels) = _sets()
    term = NgramTerm.fit(model.encode(fit_texts), fit_labels, vocab_size=len(model.vocab.tokens),
                         weight=1.0, min_words=0, seed=model.config.seed)
    feats = {}
    for name, (texts, _) in sets.items():
        z, seqs, words = _logits(model, texts)
        nb = np.zeros(len(texts))
        has = words > 0
        nb[has] = term.logits([s for s, h in zip(seqs, has) if h])
        feats[name] = (z, nb, words)
    z_val, nb_val, words_val = feats["imdb validation"]
    y_val = sets["imdb validation"][1]
    rows, accuracy = [], {}
    settings = [(0.0, 0), *[(w, m) for m in MIN_WORDS for w in WEIGHTS], ("alone", 0)]
    for weight, min_words in settings:
        def total(z, nb, words, weight=weight, min_words=min_words):
            if weight == "alone":
                return nb
            return z + weight * nb * (words >= min_words)
        t = fit_temperature(1 / (1 + np.exp(-total(z_val, nb_val, words_val))), y_val)
        cells = []
        for name, (_, y) in sets.items():
            logit = total(*feats[name]) / t
            accuracy[weight, min_words, name] = 100 * float(np.mean((logit > 0) == y))
            cells.append(f"{accuracy[weight, min_words, name]:.2f}% / {roc_auc_score(y, logit):.3f}")
        mean = float(np.mean([accuracy[weight, min_words, n] for n in CHOOSING]))
        label = ("n-gram regression alone" if weight == "alone" else
                 "model without the term" if weight == 0.0 else f"{weight:g} from {min_words} words")
        rows.append([label, f"{t:.3f}", *cells, f"{mean:.3f}%"])
    vader = []
    for texts, y in sets.values():
        v = np.asarray(vader_scores(texts), dtype=np.float64)
        vader.append(f"{100 * np.mean((v >= 0.5) == y):.1f}% / {roc_auc_score(y, v):.3f}")
    rows.append(["VADER", "", *vader, ""])
    candidates = settings[:-1]
    best = max(candidates, key=lambda s: np.mean([accuracy[s[0], s[1], n] for n in CHOOSING]))
    sizes = {name: len(y) for name, (_, y) in sets.items()}
    return rows, best, sizes, len(term.keys), len(fit_texts)


def _ids(index: dict[str, int], cleaned: list[str], max_len: int | None) -> list[np.ndarray]:
    from review_scorer.text.vocabulary import OOV_ID, truncate

    out = []
    for text in cleaned:
        ids = np.fromiter((index.get(w, OOV_ID) for w in text.split()), dtype=np.int32)
        out.append(truncate(ids, max_len, "head_tail") if max_len else ids)
    return out


def measure_variants(model_dir: str):
    """Other partners for the network, each fitted as training fits the term (C, min_df, pruning)
    and added with weight w from 40 known words: the shipped term (the model's vocabulary, the
    network's head+tail ids), the same over whole reviews, and over a vocabulary of its own
    (every word in at least two fit reviews, whole reviews); then the shipped term with a second,
    larger weight from 200 known words."""
    from collections import Counter

    from lexicon_weight import _sets

    from review_scorer.model.calibration import fit_temperature
    from review_scorer.model.ngram_term import MIN_DF, NgramTerm
    from review_scorer.model.sentiment import SentimentModel
    from review_scorer.text.cleaning import clean_text

    model = SentimentModel.load(model_dir)
    model.meta = {**model.meta, "calibration": None}
    if model.lexicon is not None:
        model.lexicon.ngrams = None
    sets, (fit_texts, fit_labels) = _sets()
    names = list(CHOOSING)
    cleaned = {n: [clean_text(t) for t in sets[n][0]] for n in names}
    fit_cleaned = [clean_text(t) for t in fit_texts]
    base = {n: _logits(model, sets[n][0]) for n in names}  # (z, ids, known words)
    df = Counter(w for t in fit_cleaned for w in set(t.split()))
    own = {w: i + 2 for i, w in enumerate(sorted((w for w, c in df.items() if c >= MIN_DF),
                                                 key=lambda w: (-df[w], w)))}
    model_index = {t: i for i, t in enumerate(model.vocab.tokens)}
    partners = {"shipped: model vocabulary, head+tail 600 ids": (model_index, model.config.max_len),
                "model vocabulary, whole reviews": (model_index, None),
                f"own vocabulary ({len(own):,} words), whole reviews": (own, None)}
    rows = []

    def row(label, total):
        t = fit_temperature(1 / (1 + np.exp(-total["imdb validation"])), sets["imdb validation"][1])
        acc = [100 * float(np.mean((total[n] > 0) == sets[n][1])) for n in names]
        rows.append([label, f"{t:.3f}", *[f"{a:.2f}%" for a in acc], f"{np.mean(acc):.3f}%"])

    row("model without the term", {n: base[n][0] for n in names})
    nb_shipped = None
    for label, (index, max_len) in partners.items():
        term = NgramTerm.fit(_ids(index, fit_cleaned, max_len), fit_labels,
                             vocab_size=max(index.values()) + 1, weight=1.0, min_words=0,
                             seed=model.config.seed)
        nb = {n: term.logits(_ids(index, cleaned[n], max_len)) for n in names}
        nb_shipped = nb_shipped or nb
        for w in (0.5, 0.75, 1.0):
            row(f"{label}; {w:g} from 40 words",
                {n: base[n][0] + w * nb[n] * (base[n][2] >= 40) for n in names})
    for high in (1.0, 1.5):
        row(f"shipped; 0.5 from 40 words, {high:g} from 200",
            {n: base[n][0] + np.where(base[n][2] >= 200, high, 0.5 * (base[n][2] >= 40))
             * nb_shipped[n] for n in names})
    return rows, {n: len(sets[n][1]) for n in names}


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model-dir", default="review_scorer/default_model")
    parser.add_argument("--write-results", action="store_true")
    parser.add_argument("--variants", action="store_true",
                        help="compare other n-gram partners (vocabulary, whole reviews, a second "
                             "weight for long reviews) instead of the weight grid")
    args = parser.parse_args(argv)
    from _results import markdown_table, model_label, write_section

    if args.variants:
        return _variants(args, markdown_table, model_label, write_section)

    started = time.perf_counter()
    rows, (weight, min_words), sizes, ngrams, fit = measure(args.model_dir)
    header = ["n-gram term", "temperature", *[f"{n} ({k:,}) acc / AUC" for n, k in sizes.items()],
              "mean acc of the four validation sets"]
    table = markdown_table(header, rows)
    print(table)
    print(f"{ngrams:,} n-grams from {fit:,} fit reviews; chosen: weight {weight:g} from "
          f"{min_words} known words ({time.perf_counter() - started:.0f} s)")
    if args.write_results:
        body = (f"## N-gram term for long reviews (model of {model_label(args.model_dir)}; "
                "validation data only)\n\n" + table + "\n\n"
                f"The NB-weighted regression on word 1-3 grams holds {ngrams:,} n-grams, fitted on "
                f"the IMDB fit part's {fit:,} reviews. Chosen: **weight {weight:g} from "
                f"{min_words} known words** (highest mean accuracy over IMDB validation and the "
                "three development files; the suite is not used to choose). Each setting's "
                "temperature is fitted on IMDB validation, as training does. The IMDB test set is "
                "not read.")
        write_section("ngram_term", body)
    return 0


def _variants(args, markdown_table, model_label, write_section) -> int:
    started = time.perf_counter()
    rows, sizes = measure_variants(args.model_dir)
    table = markdown_table(["partner of the network", "temperature",
                            *[f"{n} ({k:,}) acc" for n, k in sizes.items()],
                            "mean acc of the four validation sets"], rows)
    print(table)
    print(f"({time.perf_counter() - started:.0f} s)")
    if args.write_results:
        write_section("ngram_term_variants", (
            f"## N-gram term: other partners (model of {model_label(args.model_dir)}; "
            "validation data only)\n\n" + table + "\n\nEach partner is an NB-weighted "
            "regression on word 1-3 grams fitted on the IMDB fit part as training fits the "
            "shipped term, added to the network's logit (clause rules and lexicon term kept) of "
            "reviews with at least 40 known words; each row's temperature is fitted on IMDB "
            "validation. The IMDB test set is not read."))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
