"""Out-of-domain signal: unknown-word rate, mean confidence and share near 0.5, IMDB vs other domains.

Scores a sample of the IMDB test reviews and the three development files with the shipped model
(or --model-dir) and measures, with review_scorer.scoring.domain.DomainSignal (the counter `score`
keeps), each signal over the whole file and over many random samples of --sample-size reviews
(a small file's view). The table shows the spread (5th / 50th / 95th percentile, min / max)
per source; the threshold is chosen between IMDB's largest sample and the development files.
The test reviews' labels are not read.

    python benchmarks/domain_shift.py [--imdb 5000] [--sample-size 200] [--write-results]
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
sys.path.insert(0, str(Path(__file__).resolve().parent))

SIGNALS = ("unknown_rate", "mean_confidence", "near_half_share")


def imdb_test_texts(n: int, seed: int) -> list[str]:
    from _devfiles import IMDB_ARCHIVE

    from review_scorer.io import load_labeled

    reviews = load_labeled(str(IMDB_ARCHIVE))
    test = np.flatnonzero(reviews.splits == "test")
    picked = np.random.default_rng(seed).choice(test, size=min(n, test.size), replace=False)
    return [reviews.texts[i] for i in np.sort(picked)]


def per_review(model, texts: list[str]):
    """Per scored review: (words, unknown words, score), via the model's own text path."""
    from review_scorer.scoring.domain import count_words

    prepared = model.prepare(texts)
    counts = np.array([count_words([s]) for s in prepared.sequences], dtype=np.int64)
    return counts[:, 0], counts[:, 1], model.predict_ids(prepared.sequences).astype(np.float64)


def signal_of(words, unknown, scores, index) -> dict:
    from review_scorer.scoring.domain import DomainSignal

    signal = DomainSignal()
    signal.update(scores[index], np.ones(len(index), bool), words=int(words[index].sum()),
                  unknown_words=int(unknown[index].sum()))
    return {name: getattr(signal, name) for name in SIGNALS}


def measure(model, texts, *, sample_size: int, samples: int, seed: int) -> dict:
    words, unknown, scores = per_review(model, texts)
    whole = signal_of(words, unknown, scores, np.arange(len(scores)))
    rng = np.random.default_rng(seed)
    drawn = [signal_of(words, unknown, scores, rng.choice(len(scores), sample_size, replace=False))
             for _ in range(samples)]
    spread = {name: np.array([d[name] for d in drawn]) for name in SIGNALS}
    return {"n": len(scores), "whole": whole, "spread": spread}


def row(name: str, result: dict, signal: str) -> list[str]:
    pct = signal != "mean_confidence"
    fmt = (lambda v: f"{100 * v:.1f}%") if pct else (lambda v: f"{v:.3f}")
    s = result["spread"][signal]
    q = np.percentile(s, [5, 50, 95])
    return [name, f"{result['n']:,}", fmt(result["whole"][signal]), " / ".join(fmt(v) for v in q),
            f"{fmt(s.min())} – {fmt(s.max())}"]


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model-dir", default=None)
    parser.add_argument("--imdb", type=int, default=5000, help="IMDB test reviews sampled")
    parser.add_argument("--sample-size", type=int, default=200)
    parser.add_argument("--samples", type=int, default=500)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--write-results", action="store_true")
    args = parser.parse_args(argv)
    from _devfiles import DEV_FILES, load_dev
    from _results import markdown_table, write_section

    from review_scorer.model.sentiment import SentimentModel
    from review_scorer.scoring.domain import UNKNOWN_WORD_RATE_LIMIT

    model = SentimentModel.load(args.model_dir)
    sets = {"IMDB test": imdb_test_texts(args.imdb, args.seed)}
    sets.update({name: load_dev(name, keep_neutral=True)[0] for name in DEV_FILES})
    results = {name: measure(model, texts, sample_size=args.sample_size, samples=args.samples,
                             seed=args.seed) for name, texts in sets.items()}
    header = ["source", "reviews", "whole file",
              f"samples of {args.sample_size}: p5 / p50 / p95", "min – max"]
    tables = []
    for signal in SIGNALS:
        table = markdown_table(header, [row(n, r, signal) for n, r in results.items()])
        tables.append(f"### {signal.replace('_', ' ')}\n\n{table}")
        print(signal, "\n", table, "\n", flush=True)
    limit = UNKNOWN_WORD_RATE_LIMIT
    flagged = markdown_table(
        ["source", "whole file flagged", f"samples of {args.sample_size} flagged"],
        [[name, "yes" if r["whole"]["unknown_rate"] > limit else "no",
          f"{np.mean(r['spread']['unknown_rate'] > limit):.1%}"] for name, r in results.items()])
    imdb_max = results["IMDB test"]["spread"]["unknown_rate"].max()
    other_min = min(results[n]["spread"]["unknown_rate"].min() for n in DEV_FILES)
    verdict = (f"Chosen: the unknown-word rate, limit {limit:.0%} "
               f"(review_scorer/scoring/domain.py UNKNOWN_WORD_RATE_LIMIT). It separates the sources best: "
               f"the largest IMDB sample reads {imdb_max:.1%}, the smallest sample of a "
               f"development file {other_min:.1%}; confidence and the share near 0.5 overlap more. "
               f"The limit sits above IMDB with a margin (a false alarm on the model's own kind "
               f"of text costs trust), so the airline tweets and fine-food reviews, where "
               f"accuracy drops most, are always flagged and the clothing reviews, the mildest "
               f"shift, mostly.\n\n{flagged}")
    print(verdict)
    if args.write_results:
        write_section("domain_shift", f"## Out-of-domain signal ({model.name}, IMDB test "
                      f"reviews vs the development files)\n\n" + "\n\n".join(tables)
                      + f"\n\n{verdict}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
