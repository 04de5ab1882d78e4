"""The neutral band on airline tweets: how many neutral tweets it catches, what it costs, and
accuracy on the tweets it still decides.

Scores ../shared/data/reviews-dev/airline_tweets.csv (text; airline_sentiment negative /
neutral / positive, human annotators) with the shipped model (or --model-dir) once, then for
each band reports the share of neutral, positive and negative tweets whose calibrated score
falls in [LOW, HIGH) (the band's catch and its cost), and the accuracy on the positive and
negative tweets the band leaves decided (threshold 0.5). Decisions go through
metrics.DecisionRule, the rule `score --neutral-band` uses.

    python benchmarks/neutral_band.py [--bands none,0.4-0.6,0.3-0.7,0.2-0.8] [--write-results]
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
sys.path.insert(0, str(Path(__file__).resolve().parent))

DEFAULT_BANDS = "none,0.45-0.55,0.4-0.6,0.35-0.65,0.3-0.7,0.2-0.8"


def parse_bands(text: str) -> list[tuple[float, float] | None]:
    return [None if b == "none" else tuple(float(v) for v in b.split("-"))  # type: ignore[misc]
            for b in text.split(",")]


def band_row(band, scores: np.ndarray, labels: np.ndarray) -> list[str]:
    """One table row: the band, shares of each true class inside it, accuracy on the decided."""
    from review_scorer.metrics import DECIDED_NEUTRAL, DECIDED_POSITIVE, DecisionRule

    decided = DecisionRule(0.5, band).decide(scores, ~np.isnan(scores))
    inside = decided == DECIDED_NEUTRAL
    binary = (labels >= 0) & ~inside & ~np.isnan(scores)
    correct = (decided[binary] == DECIDED_POSITIVE) == (labels[binary] == 1)
    shares = [f"{inside[labels == k].mean():.1%}" for k in (-1, 1, 0)]
    name = "none" if band is None else f"[{band[0]:g}, {band[1]:g})"
    return [name, *shares, f"{inside.mean():.1%}", f"{correct.mean():.1%}", f"{binary.sum():,}"]


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model-dir", default=None)
    parser.add_argument("--bands", default=DEFAULT_BANDS)
    parser.add_argument("--write-results", action="store_true")
    args = parser.parse_args(argv)
    from _devfiles import load_dev
    from _results import markdown_table, write_section

    from review_scorer.model.sentiment import SentimentModel

    model = SentimentModel.load(args.model_dir)
    texts, labels = load_dev("airline_tweets", keep_neutral=True)  # label -1: a neutral tweet
    scores = model.predict(texts).astype(np.float32)
    counts = {name: int((labels == k).sum()) for name, k in (("neutral", -1), ("positive", 1),
                                                             ("negative", 0))}
    header = ["band", "neutral tweets in band", "positive tweets in band",
              "negative tweets in band", "all tweets in band", "accuracy on decided pos/neg",
              "decided pos/neg tweets"]
    rows = [band_row(band, scores, labels) for band in parse_bands(args.bands)]
    table = markdown_table(header, rows)
    print(table)
    temperature = model.temperature
    if args.write_results:
        write_section("neutral_band", (
            f"## Neutral band on airline tweets ({model.name}, calibration temperature "
            f"{temperature:g}, threshold 0.5)\n\n"
            f"{len(texts):,} tweets: {counts['neutral']:,} neutral, {counts['positive']:,} "
            f"positive, {counts['negative']:,} negative (human annotators). A band's catch is "
            f"the share of neutral tweets inside it; its cost, the shares of positive and "
            f"negative tweets it stops deciding.\n\n{table}"))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
