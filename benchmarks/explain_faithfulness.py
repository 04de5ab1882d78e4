"""Word attribution methods on IMDB test reviews: faithfulness (deletion) and cost against scoring.

    python benchmarks/explain_faithfulness.py --data ../shared/data/aclImdb_v1.tar.gz \
        [--reviews 2000] [--methods pooling_delta,pooling,grad_input,integrated_gradients]

A seeded sample of IMDB test reviews (read only to REPORT how faithful the explanations are; no
choice here is fitted to them) is explained by the shipped model with each method.

Faithfulness, per method: delete each review's 3 tokens with the largest |weight| from the id
sequence the model read and re-score it; compare the mean |score change| with deleting 3 random
tokens (the same seeded draws for every method, averaged over --draws draws). "supporting" deletes
the 3 tokens that pushed hardest towards the predicted class instead (ERASER's comprehensiveness,
DeYoung et al., 2020). Reviews with fewer than 6 tokens are left out. Larger is more faithful.

Cost, in the same run: seconds for Explainer.explain over all the reviews (cleaning, attribution,
spans in the original text; it also returns the scores) against SentimentModel.predict over the
same texts. Rounds interleave scoring and each method, and the ratio is the median over --repeats
rounds of explain / score within a round (the machine is shared; a ratio within a round is what
survives other people's load). "report extras" adds what a report does with every attribution:
the top_words value, the highlight spans and the drivers.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))
from benchmarks._results import markdown_table, model_label, write_section  # noqa: E402

SECTION = "explain_faithfulness"
SAMPLE_SEED = 20261121
DELETE = 3


def load_sample(data: str, n: int) -> list[str]:
    """A seeded sample of n IMDB test reviews (positive and negative mixed)."""
    from review_scorer.io import load_labeled

    texts = load_labeled(data).split("test").texts
    order = np.random.default_rng(SAMPLE_SEED).permutation(len(texts))[:n]
    return [texts[i] for i in order]


def random_deletions(sequences, draws: int) -> list[list[np.ndarray]]:
    """For each draw, every sequence with DELETE random positions removed (seeded)."""
    rng = np.random.default_rng(SAMPLE_SEED + 1)
    return [[np.delete(s, rng.choice(len(s), DELETE, replace=False)) for s in sequences]
            for _ in range(draws)]


def deletion_effect(model, sequences, base, orders) -> float:
    """Mean |score change| after deleting the first DELETE positions of each order."""
    cut = [np.delete(s, order[:DELETE]) for s, order in zip(sequences, orders)]
    return float(np.mean(np.abs(model.predict_ids(cut) - base)))


def faithfulness(model, attributions, base, random_effect: float) -> dict:
    """Top-|weight| and supporting-direction deletion effects for one method's attributions."""
    sign = np.where(base >= 0.5, 1.0, -1.0)
    sequences = [a.ids for a in attributions]
    top = deletion_effect(model, sequences, base,
                          [np.argsort(-np.abs(a.weights), kind="stable") for a in attributions])
    support = deletion_effect(model, sequences, base,
                              [np.argsort(-s * a.weights, kind="stable") for s, a in zip(sign, attributions)])
    return {"top": top, "support": support, "ratio": top / random_effect,
            "support_ratio": support / random_effect}


def report_extras(attributions) -> float:
    """Seconds for the per-review report outputs and the drivers of a set of attributions."""
    from review_scorer.explain.drivers import DriverAccumulator, format_top_terms, row_spans

    start = time.perf_counter()
    drivers = DriverAccumulator()
    for a in attributions:
        format_top_terms(a)
        row_spans(a)
    drivers.update(attributions)
    drivers.result()
    return time.perf_counter() - start


def time_methods(model, explainers: dict, texts: list[str], repeats: int) -> tuple[dict, dict]:
    """Seconds per round for scoring and each method, and each method's attributions.

    Rounds interleave scoring with every method (and its report extras), so each ratio compares
    runs that saw the same machine load (the benchmark machine is shared); integrated gradients
    runs once, after them.
    """
    model.predict(texts[:64])
    for explainer in explainers.values():
        explainer.explain(texts[:64])  # traces the functions: warm-up, not timed
    seconds: dict[str, list[float]] = {"score": [], **{m: [] for m in explainers}}
    extras: dict[str, list[float]] = {m: [] for m in explainers}
    results: dict[str, list] = {}
    slow = [m for m in explainers if m == "integrated_gradients"]
    for _ in range(repeats):
        for name in ["score", *(m for m in explainers if m not in slow)]:
            start = time.perf_counter()
            out = model.predict(texts) if name == "score" else explainers[name].explain(texts)
            seconds[name].append(time.perf_counter() - start)
            results[name] = out
            if name != "score":
                extras[name].append(report_extras(out))
    for name in slow:
        start = time.perf_counter()
        results[name] = explainers[name].explain(texts)
        seconds[name] = [time.perf_counter() - start] * repeats
        extras[name] = [report_extras(results[name])] * repeats
    return seconds, extras, results


def measure(args) -> tuple[list[list], dict]:
    from review_scorer.explain.attribution import Explainer
    from review_scorer.model.artifacts import packaged_model_dir
    from review_scorer.model.sentiment import SentimentModel

    texts = load_sample(args.data, args.reviews)
    model = SentimentModel.load(packaged_model_dir())
    explainers = {m: Explainer(model, method=m, steps=args.ig_steps) for m in args.methods}
    seconds, extras, results = time_methods(model, explainers, texts, args.repeats)
    score_s = statistics.median(seconds["score"])
    first = results[args.methods[0]]
    keep = [i for i, a in enumerate(first) if a is not None and len(a.ids) >= 2 * DELETE]
    sequences = [first[i].ids for i in keep]
    base = model.predict_ids(sequences)
    random_effect = float(np.mean([np.mean(np.abs(model.predict_ids(draw) - base))
                                   for draw in random_deletions(sequences, args.draws)]))
    scores = np.array([a.score if a else np.nan for a in first])
    facts = {"reviews": len(texts), "score_s": score_s, "random": random_effect, "eligible": len(keep),
             "tokens": int(sum(len(s) for s in sequences)),
             "agreement": float(np.nanmax(np.abs(scores - results["score"]))),
             "rounds": {k: v for k, v in seconds.items() if k != "integrated_gradients"}}
    rows = []
    for method in args.methods:
        atts = results[method]
        f = faithfulness(model, [atts[i] for i in keep], base, random_effect)
        ratio = statistics.median(e / s for e, s in zip(seconds[method], seconds["score"]))
        with_extras = statistics.median((e + x) / s for e, x, s in
                                        zip(seconds[method], extras[method], seconds["score"]))
        name = f"{method} ({args.ig_steps} steps)" if method == "integrated_gradients" else method
        rows.append([name, f"{f['top']:.4f}", f"{f['ratio']:.2f}x", f"{f['support']:.4f}",
                     f"{f['support_ratio']:.2f}x", f"{statistics.median(seconds[method]):.1f}",
                     f"{ratio:.2f}x", f"{with_extras:.2f}x"])
        print(" | ".join(rows[-1]), flush=True)
    return rows, facts


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", default="../shared/data/aclImdb_v1.tar.gz")
    parser.add_argument("--reviews", type=int, default=2000)
    parser.add_argument("--methods", default="pooling_delta,pooling,grad_input,integrated_gradients",
                        type=lambda s: s.split(","))
    parser.add_argument("--ig-steps", type=int, default=16)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--draws", type=int, default=5)
    parser.add_argument("--no-write", action="store_true", help="print only; leave RESULTS.md alone")
    args = parser.parse_args()
    rows, facts = measure(args)
    header = ["method", "top-3 deleted: mean abs score change", "vs random", "supporting top-3",
              "vs random", "explain s", "explain / score", "with report extras / score"]
    from review_scorer.model.artifacts import packaged_model_dir

    label = model_label(packaged_model_dir(), with_path=False)
    body = (f"## Word attributions: faithfulness and cost ({label}, {facts['reviews']} IMDB test "
            f"reviews)\n\nIMDB test reviews are read here only to report faithfulness. Deleting 3 random "
            f"tokens moves the score by {facts['random']:.4f} on average ({args.draws} seeded draws, "
            f"{facts['eligible']} reviews with 6+ tokens, {facts['tokens']} tokens read in all). Scoring "
            f"the same texts with SentimentModel.predict takes {facts['score_s']:.1f} s (median of "
            f"{args.repeats} rounds); explanation scores agree with it within {facts['agreement']:.1e}, so a "
            f"run with explanations can take its scores from the explainer instead of scoring twice. "
            f"pooling_delta is the default method (review_scorer/explain/attribution.py says why).\n\n"
            + markdown_table(header, rows) + "\n\n- seconds per round (scoring and each method "
            "back to back, a shared 2-core machine): " + "; ".join(
                f"{name} " + ", ".join(f"{x:.1f}" for x in xs) for name, xs in facts["rounds"].items()))
    print(body)
    if not args.no_write:
        write_section(SECTION, body)


if __name__ == "__main__":
    main()
