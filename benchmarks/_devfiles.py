"""The development review files from other domains (../shared/data/reviews-dev), as binary tasks.

Ratings 1-2 are negative, 4-5 positive, 3 left out; tweets: neutral left out (their README).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

DEV_DIR = Path(__file__).resolve().parents[2] / "shared" / "data" / "reviews-dev"
IMDB_ARCHIVE = Path(__file__).resolve().parents[2] / "shared" / "data" / "aclImdb_v1.tar.gz"


def load_dev(name: str, *, keep_neutral: bool = False):
    """(texts, labels) of one development file; label -1 marks a neutral tweet if kept."""
    import pandas as pd

    if name == "airline_tweets":
        frame = pd.read_csv(DEV_DIR / "airline_tweets.csv")
        label = frame["airline_sentiment"].map({"positive": 1, "negative": 0, "neutral": -1})
        text = frame["text"]
    elif name == "clothing_reviews":
        frame = pd.read_csv(DEV_DIR / "clothing_reviews.csv")
        frame = frame[frame["Review Text"].notna()]
        label = frame["Rating"].map({1: 0, 2: 0, 3: -1, 4: 1, 5: 1})
        text = frame["Review Text"]
    elif name == "fine_food_reviews":
        frame = pd.read_csv(DEV_DIR / "fine_food_reviews.csv")
        label = frame["Score"].map({1: 0, 2: 0, 3: -1, 4: 1, 5: 1})
        text = frame["Text"]
    else:
        raise ValueError(name)
    label = label.to_numpy()
    keep = label >= (-1 if keep_neutral else 0)
    return [str(t) for t in text.to_numpy()[keep]], label[keep].astype(np.int64)


DEV_FILES = ("airline_tweets", "clothing_reviews", "fine_food_reviews")
