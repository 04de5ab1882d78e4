"""Label and star-rating values: what counts as positive, negative, neutral or not a label."""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np
import pandas as pd

LABEL_HINT = "pos/neg, positive/negative, 1/0, true/false, yes/no, like/dislike"
_LABEL_VALUES = {
    "pos": 1, "positive": 1, "1": 1, "true": 1, "yes": 1, "y": 1, "t": 1, "like": 1, "liked": 1,
    "thumbs up": 1, "thumbsup": 1, "thumbs-up": 1, "recommended": 1, "recommend": 1,
    "good": 1, "👍": 1,
    "neg": 0, "negative": 0, "0": 0, "false": 0, "no": 0, "n": 0, "f": 0, "dislike": 0,
    "disliked": 0, "thumbs down": 0, "thumbsdown": 0, "thumbs-down": 0,
    "not recommended": 0, "bad": 0, "👎": 0,
    "": -1,
}  # fmt: skip


def label_of(value: object) -> int | None:
    """1 positive, 0 negative, -1 empty, or None when the value is not a label."""
    if value is None:
        return -1
    key = " ".join(str(value).split()).lower()
    label = _LABEL_VALUES.get(key)
    if label is not None:
        return label
    key = key.replace("\ufe0f", "")  # emoji presentation selector after 👍/👎
    label = _LABEL_VALUES.get(key)
    if label is not None:
        return label
    try:
        number = float(key)
    except ValueError:
        return None
    if number in (0.0, 1.0):
        return int(number)
    return None


def label_share(values: Sequence[object]) -> float:
    """The share of non-empty values that are labels (1.0 when every value is empty)."""
    filled = [v for v in values if v is not None and str(v).strip()]
    if not filled:
        return 1.0
    return sum(label_of(v) is not None for v in filled) / len(filled)


def parse_labels(values: Sequence[object]) -> tuple[np.ndarray, np.ndarray]:
    """(labels int8 1/0/-1, unknown bool): a value that is not a label gives -1 and unknown."""
    labels = np.empty(len(values), dtype=np.int8)
    unknown = np.zeros(len(values), dtype=bool)
    for i, value in enumerate(values):
        label = label_of(value)
        if label is None:
            labels[i], unknown[i] = -1, True
        else:
            labels[i] = label
    return labels, unknown


def number_of(value: object) -> float:
    """A cell as a float (NaN when empty or not a number)."""
    if value is None:
        return math.nan
    text = str(value).strip()
    if not text:
        return math.nan
    try:
        number = float(text)
    except ValueError:
        return math.nan
    return number if math.isfinite(number) else math.nan


def parse_ratings(values: Sequence[object]) -> np.ndarray:
    """Star ratings as float64, NaN where a cell is empty or not a number."""
    series = pd.Series(list(values), dtype=object).map(
        lambda v: v.strip() if isinstance(v, str) else v)
    numbers = np.array(pd.to_numeric(series, errors="coerce"), dtype=np.float64)
    numbers[~np.isfinite(numbers)] = np.nan
    return numbers


def looks_like_ratings(values: Sequence[object]) -> int | None:
    """The rating scale (5 or 10) when the values are star ratings, else None.

    Star ratings are numbers from 0 to 10 in steps of a half, most cells filled, and at least one
    above 1 (a 0-1 column is a probability or a label, not a rating). The scale comes from the
    largest value: up to 5 means out of 5, more means out of 10.
    """
    filled = [v for v in values if v is not None and str(v).strip()]
    if not filled:
        return None
    numbers = parse_ratings(filled)
    valid = numbers[~np.isnan(numbers)]
    if len(valid) < 0.9 * len(filled) or not len(valid):
        return None
    if valid.min() < 0 or valid.max() > 10 or valid.max() <= 1:
        return None
    if not np.all(np.isclose(valid * 2, np.round(valid * 2))):
        return None
    return 5 if valid.max() <= 5 else 10


def rating_labels(ratings: np.ndarray, scale: int) -> tuple[np.ndarray, np.ndarray]:
    """(labels, neutral) from ratings: >= 4/5 or >= 7/10 positive, <= 2/5 or <= 4/10 negative,
    the middle neutral (label -1, neutral True); a missing or out-of-scale rating is -1, not
    neutral."""
    high, low = (4.0, 2.0) if scale == 5 else (7.0, 4.0)
    labels = np.full(len(ratings), -1, dtype=np.int8)
    with np.errstate(invalid="ignore"):
        valid = ~np.isnan(ratings) & (ratings >= 0) & (ratings <= scale)
        labels[valid & (ratings >= high)] = 1
        labels[valid & (ratings <= low)] = 0
        neutral = valid & (ratings > low) & (ratings < high)
    return labels, neutral
