"""Streaming, mergeable per-file statistics for the report: sentiment over time, by group, by rating."""

from __future__ import annotations

import math
import warnings
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd

from review_scorer.model.sentiment import STATUS_OK
from review_scorer.report.data import GroupItem, Groups, Insights, Ratings, Timeline

Z_95 = 1.959963984540054  # two-sided 95% normal quantile
MAX_GROUPS_SHOWN = 200
# Past this many distinct values a column is not a grouping; further values share one bucket so
# memory stays bounded whatever column someone passes.
MAX_GROUPS_TRACKED = 50_000
NONE_GROUP = "(none)"
UNREADABLE_EXAMPLES = 5
DISAGREEMENTS_K = 5
SCORE_BINS = 1000  # per-rating score histogram: quartiles to within 0.0005, exact counts
DATE_SAMPLE = 500
DATE_SAMPLE_LIMIT = 5 * DATE_SAMPLE
MAX_RATING_VALUES = 41  # 0, 0.5, ..., 10 and the integers: more distinct values is not a rating
# Span (days) up to which each bucket size is used; longer spans get years.
GRANULARITY_LIMITS = (("day", 31), ("week", 183), ("month", 366 * 15))
# Dates this far from the median date (in median absolute deviations, and at least FAR_MIN_DAYS)
# are kept out of the plot and named: one typo such as 0224 among 2024 dates stretched the axis
# over 1,800 years (and a report of a few rows to megabytes), hiding every real point.
FAR_MADS = 20
FAR_MIN_DAYS = 5 * 366
FAR_EXAMPLES = 3

# Explicit formats tried on a sample of the file's dates; the best one is used for the whole file,
# so "03/04/2025" means the same day on row 2 and row 20,000. Month-first comes before day-first:
# when every sampled day is <= 12 the file is read month-first (pandas' own default), and the
# context says so.
_BASE_FORMATS = (
    "%Y-%m-%d",
    "%Y/%m/%d",
    "%Y.%m.%d",
    "%m/%d/%Y",
    "%d/%m/%Y",
    "%m-%d-%Y",
    "%d-%m-%Y",
    "%d.%m.%Y",
    "%m/%d/%y",
    "%d/%m/%y",
    "%d %b %Y",
    "%d %B %Y",
    "%b %d %Y",
    "%B %d %Y",
    "%b %d, %Y",
    "%B %d, %Y",
)
_TIME_SUFFIXES = ("", " %H:%M", " %H:%M:%S", "T%H:%M:%S")
DATE_FORMATS = tuple(base + suffix for base in _BASE_FORMATS for suffix in _TIME_SUFFIXES)
ISO_FORMAT = "ISO8601"


def wilson_interval(successes: int, n: int, z: float = Z_95) -> tuple[float, float]:
    """Wilson score interval for a binomial proportion (Wilson 1927); (nan, nan) when n is 0."""
    if n <= 0:
        return math.nan, math.nan
    p = successes / n
    denom = 1 + z * z / n
    centre = (p + z * z / (2 * n)) / denom
    half = z * math.sqrt(p * (1 - p) / n + z * z / (4 * n * n)) / denom
    return max(0.0, centre - half), min(1.0, centre + half)


def _share(part: float, whole: float) -> float | None:
    return part / whole if whole else None


def _column_strings(frame: pd.DataFrame, column: str) -> pd.Series:
    """A column as stripped strings, missing values as ''."""
    values = frame[column] if column in frame.columns else pd.Series([""] * len(frame))
    return values.astype(object).where(values.notna(), "").astype(str).str.strip()


def _scored_positive(chunk: Any) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Per row: scored (bool), positive (bool) and the score with 0 where not scored.

    "positive" is the chunk's own decision (scoring.kernel.ScoredChunk.positive), so these
    sections count exactly the rows the predictions call positive.
    """
    scores = np.asarray(chunk.scores, dtype=np.float64)
    status = np.asarray(chunk.status, dtype=object)
    scored = np.isfinite(scores) & (status == STATUS_OK)
    safe = np.where(scored, scores, 0.0)
    return scored, scored & np.asarray(chunk.positive, dtype=bool), safe


def _neutral(chunk: Any) -> np.ndarray:
    """Per row: the chunk's neutral decision (scoring.kernel.ScoredChunk.neutral)."""
    return np.asarray(chunk.neutral, dtype=bool)


# ---------------------------------------------------------------- dates


def _to_naive(parsed: pd.Series) -> pd.Series:
    """Timezone-aware times become naive UTC so every row sits on one clock."""
    if isinstance(parsed.dtype, pd.DatetimeTZDtype):
        return parsed.dt.tz_convert(None)
    return parsed


def _parse_with(values: pd.Series, fmt: str) -> pd.Series:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        parsed = pd.to_datetime(values, format=fmt, errors="coerce", utc=True)
    return _to_naive(parsed)


def choose_date_format(samples: list[str]) -> tuple[str | None, int]:
    """The format that reads the most sample values, and how many it read (None, 0 if none)."""
    if not samples:
        return None, 0
    values = pd.Series(samples, dtype=object)
    best, best_count = None, 0
    for fmt in (ISO_FORMAT, *DATE_FORMATS):
        count = int(_parse_with(values, fmt).notna().sum())
        if count > best_count:
            best, best_count = fmt, count
        if best_count == len(samples):
            break
    return best, best_count


def _ambiguous_day_month(fmt: str | None, samples: list[str]) -> bool:
    """True when the chosen month-first format would also read every sample day-first."""
    if not fmt or "%m" not in fmt or "%d" not in fmt or fmt.index("%m") > fmt.index("%d"):
        return False
    swapped = fmt.replace("%m", "\0").replace("%d", "%m").replace("\0", "%d")
    values = pd.Series(samples, dtype=object)
    return bool(_parse_with(values, swapped).notna().sum() >= _parse_with(values, fmt).notna().sum())


def _bucket_start(day: np.datetime64, granularity: str) -> np.datetime64:
    if granularity == "week":
        # ISO weeks start on Monday; 1970-01-01 was a Thursday.
        offset = (int(day.astype(np.int64)) + 3) % 7
        return day - np.timedelta64(offset, "D")
    if granularity == "month":
        return day.astype("datetime64[M]").astype("datetime64[D]")
    if granularity == "year":
        return day.astype("datetime64[Y]").astype("datetime64[D]")
    return day


def _next_bucket(start: np.datetime64, granularity: str) -> np.datetime64:
    if granularity == "week":
        return start + np.timedelta64(7, "D")
    if granularity == "month":
        return (start.astype("datetime64[M]") + 1).astype("datetime64[D]")
    if granularity == "year":
        return (start.astype("datetime64[Y]") + 1).astype("datetime64[D]")
    return start + np.timedelta64(1, "D")


def _weighted_median(values: np.ndarray, weights: np.ndarray) -> float:
    order = np.argsort(values, kind="stable")
    cumulative = np.cumsum(np.asarray(weights, dtype=np.float64)[order])
    return float(np.asarray(values)[order][np.searchsorted(cumulative, cumulative[-1] / 2.0)])


def choose_granularity(span_days: int) -> str:
    """Bucket size for a span of dates: day up to a month, week up to ~6 months, then month/year."""
    for name, limit in GRANULARITY_LIMITS:
        if span_days <= limit:
            return name
    return "year"


def _bucket_label(start: np.datetime64, granularity: str) -> str:
    ts = pd.Timestamp(start)
    if granularity == "month":
        return ts.strftime("%b %Y")
    if granularity == "year":
        return ts.strftime("%Y")
    return ts.strftime("%Y-%m-%d")  # a day, or the Monday that starts a week


@dataclass
class TimelineAccumulator:
    """Reviews, scored, positive and score sum per calendar day; buckets are chosen at the end."""

    column: str
    threshold: float = 0.5
    date_format: str | None = None
    format_count: int = 0
    ambiguous: bool = False
    sampled: int = 0
    days: dict[int, np.ndarray] = field(default_factory=dict)
    missing: int = 0
    unreadable: int = 0
    unreadable_examples: list[dict] = field(default_factory=list)

    def _parse(self, values: pd.Series) -> pd.Series:
        filled = values[values != ""]
        # A column with no readable date stops being sampled after a while: trying every format
        # on every chunk of a large file would cost more than scoring it.
        if self.date_format is None and len(filled) and self.sampled < DATE_SAMPLE_LIMIT:
            samples = filled.iloc[:DATE_SAMPLE].tolist()
            self.sampled += len(samples)
            fmt, count = choose_date_format(samples)
            if fmt is not None:
                self.date_format, self.format_count = fmt, count
                self.ambiguous = _ambiguous_day_month(fmt, samples)
        if self.date_format is None:
            return pd.Series(pd.NaT, index=values.index, dtype="datetime64[ns]")
        return _parse_with(values.where(values != "", None), self.date_format)

    def update(self, chunk: Any) -> None:
        """Add one scored chunk."""
        raw = chunk.frame[self.column] if self.column in chunk.frame.columns else None
        if raw is not None and pd.api.types.is_datetime64_any_dtype(raw.dtype):
            parsed = _to_naive(pd.Series(raw.to_numpy(), index=raw.index))
            values = raw.astype(str)
        else:
            values = _column_strings(chunk.frame, self.column)
            parsed = self._parse(values)
        empty = (values == "").to_numpy() | (values == "NaT").to_numpy()
        bad = parsed.isna().to_numpy() & ~empty
        self.missing += int(empty.sum())
        self.unreadable += int(bad.sum())
        rows = np.asarray(chunk.rows)
        for i in np.flatnonzero(bad)[: max(0, UNREADABLE_EXAMPLES - len(self.unreadable_examples))]:
            self.unreadable_examples.append({"row": int(rows[i]), "value": str(values.iloc[i])[:80]})
        ok = parsed.notna().to_numpy()
        if not ok.any():
            return
        scored, positive, safe = _scored_positive(chunk)
        days = parsed.to_numpy()[ok].astype("datetime64[D]").astype(np.int64)
        table = (
            pd.DataFrame({"day": days, "n": 1, "scored": scored[ok], "pos": positive[ok], "sum": safe[ok]})
            .groupby("day", sort=False)
            .sum()
        )
        for day, n, s, p, total in table.itertuples():
            acc = self.days.setdefault(int(day), np.zeros(4))
            acc += (n, s, p, total)

    def merge(self, other: TimelineAccumulator) -> None:
        """Fold another accumulator (e.g. another partition of the same file) into this one."""
        for day, acc in other.days.items():
            self.days.setdefault(day, np.zeros(4))
            self.days[day] = self.days[day] + acc
        self.missing += other.missing
        self.unreadable += other.unreadable
        examples = sorted(self.unreadable_examples + other.unreadable_examples, key=lambda e: e["row"])
        self.unreadable_examples = examples[:UNREADABLE_EXAMPLES]
        if self.date_format is None:
            self.date_format, self.format_count = other.date_format, other.format_count
            self.ambiguous = other.ambiguous

    def _far_days(self) -> list[int]:
        """The days far from the rest (FAR_MADS median absolute deviations from the median date,
        weighted by reviews, and at least FAR_MIN_DAYS): left out of the plot and named."""
        keys = np.array(sorted(self.days), dtype=np.int64)
        weights = np.array([self.days[int(k)][0] for k in keys])
        median = _weighted_median(keys, weights)
        spread = _weighted_median(np.abs(keys - median), weights)
        limit = max(FAR_MADS * spread, FAR_MIN_DAYS)
        return [int(k) for k in keys if abs(k - median) > limit]

    def context(self) -> Timeline:
        """Plain data for the report: buckets over the span, plus what could not be read."""
        buckets: list[dict] = []
        granularity = None
        first = last = None
        far = self._far_days() if self.days else []
        if self.days:
            keys = sorted(set(self.days) - set(far))
            first, last = np.datetime64(keys[0], "D"), np.datetime64(keys[-1], "D")
            granularity = choose_granularity(keys[-1] - keys[0])
            totals: dict[np.datetime64, np.ndarray] = {}
            for key in keys:
                start = _bucket_start(np.datetime64(key, "D"), granularity)
                totals[start] = totals.get(start, np.zeros(4)) + self.days[key]
            start = _bucket_start(first, granularity)
            # Empty buckets stay in, so a gap in the data shows as a gap rather than a slope.
            while start <= last:
                n, scored, positive, total = totals.get(start, np.zeros(4))
                buckets.append(
                    {
                        "start": str(start),
                        "label": _bucket_label(start, granularity),
                        "reviews": int(n),
                        "scored": int(scored),
                        "positive": int(positive),
                        "positive_share": _share(positive, scored),
                        "mean_score": _share(total, scored),
                    }
                )
                start = _next_bucket(start, granularity)
        return {
            "column": self.column,
            "granularity": granularity,
            "date_format": self.date_format,
            "day_month_ambiguous": self.ambiguous,
            "first": None if first is None else str(first),
            "last": None if last is None else str(last),
            "dated": int(sum(acc[0] for day, acc in self.days.items() if day not in far)),
            "far": int(sum(self.days[day][0] for day in far)),
            "far_examples": [str(np.datetime64(day, "D")) for day in far[:FAR_EXAMPLES]],
            "missing": self.missing,
            "unreadable": self.unreadable,
            "unreadable_examples": list(self.unreadable_examples),
            "buckets": buckets,
        }


# ---------------------------------------------------------------- groups


@dataclass
class GroupAccumulator:
    """Reviews, scored, positive and score sum per value of a grouping column."""

    column: str
    threshold: float = 0.5
    groups: dict[str, np.ndarray] = field(default_factory=dict)
    overflow: np.ndarray = field(default_factory=lambda: np.zeros(4))
    overflow_rows: int = 0

    def _add(self, name: str, values: np.ndarray) -> None:
        acc = self.groups.get(name)
        if acc is not None:
            acc += values
        elif len(self.groups) < MAX_GROUPS_TRACKED:
            self.groups[name] = np.array(values, dtype=np.float64)
        else:
            self.overflow = self.overflow + values
            self.overflow_rows += int(values[0])

    def update(self, chunk: Any) -> None:
        """Add one scored chunk."""
        names = _column_strings(chunk.frame, self.column).to_numpy()
        scored, positive, safe = _scored_positive(chunk)
        table = (
            pd.DataFrame({"g": names, "n": 1, "scored": scored, "pos": positive, "sum": safe})
            .groupby("g", sort=False)
            .sum()
        )
        for name, n, s, p, total in table.itertuples():
            self._add(str(name), np.array((n, s, p, total), dtype=np.float64))

    def merge(self, other: GroupAccumulator) -> None:
        """Fold another accumulator into this one."""
        for name, acc in other.groups.items():
            self._add(name, acc)
        self.overflow = self.overflow + other.overflow
        self.overflow_rows += other.overflow_rows

    def context(self, max_shown: int = MAX_GROUPS_SHOWN) -> Groups:
        """Per-group rows (most reviews first), the long tail merged into one "other" row."""
        ordered = sorted(self.groups.items(), key=lambda kv: (-kv[1][0], kv[0]))
        shown, rest = ordered[:max_shown], ordered[max_shown:]
        items = [_group_item(name or NONE_GROUP, acc, missing=not name) for name, acc in shown]
        other_count = len(rest) + (1 if self.overflow_rows else 0)
        if rest or self.overflow_rows:
            acc = sum((a for _, a in rest), self.overflow.copy())
            label = f"(other {len(rest):,}{'+' if self.overflow_rows else ''} groups)"
            items.append(_group_item(label, acc, other=True))
        return {
            "column": self.column,
            "total_groups": len(self.groups) + (1 if self.overflow_rows else 0),
            "shown": len(shown),
            "other_groups": len(rest) if other_count else 0,
            "capped": bool(self.overflow_rows),
            "items": items,
        }


def _group_item(name: str, acc: np.ndarray, *, missing: bool = False, other: bool = False
                ) -> GroupItem:
    n, scored, positive, total = (float(v) for v in acc)
    low, high = wilson_interval(int(positive), int(scored))
    return {
        "name": name,
        "missing": missing,
        "other": other,
        "reviews": int(n),
        "scored": int(scored),
        "positive": int(positive),
        "positive_share": _share(positive, scored),
        "ci_low": None if math.isnan(low) else low,
        "ci_high": None if math.isnan(high) else high,
        "mean_score": _share(total, scored),
    }


# ---------------------------------------------------------------- ratings


def rating_classes(ratings: np.ndarray, scale: int) -> np.ndarray:
    """Per rating: 1 positive, 0 negative, -1 neutral or missing (>= 4 / <= 2 of 5, >= 7 / <= 4 of 10)."""
    high, low = (7, 4) if scale == 10 else (4, 2)
    out = np.full(len(ratings), -1, dtype=np.int8)
    with np.errstate(invalid="ignore"):
        out[ratings >= high] = 1
        out[ratings <= low] = 0
    return out


def _quantile_from_hist(hist: np.ndarray, q: float) -> float | None:
    total = int(hist.sum())
    if total == 0:
        return None
    cumulative = np.cumsum(hist)
    index = int(np.searchsorted(cumulative, q * total, side="left"))
    return (min(index, len(hist) - 1) + 0.5) / len(hist)


def _row_spans(chunk: Any, i: int) -> list | None:
    """A row's highlight spans, made from its word attribution when the chunk was explained."""
    if chunk.attributions is None or chunk.attributions[i] is None:
        return None
    from review_scorer.explain.drivers import row_spans

    return row_spans(chunk.attributions[i]) or None


def _top(items: list[dict], k: int, *, highest: bool) -> list[dict]:
    sign = -1 if highest else 1
    return sorted(items, key=lambda d: (sign * d["score"], d["row"]))[:k]


@dataclass
class RatingAccumulator:
    """Counts and score distribution per star value, agreement, and the strongest disagreements."""

    column: str
    scale: int = 5
    threshold: float = 0.5
    id_column: str | None = None
    k: int = DISAGREEMENTS_K
    values: dict[float, np.ndarray] = field(default_factory=dict)
    hists: dict[float, np.ndarray] = field(default_factory=dict)
    missing: int = 0
    other_values: int = 0
    agree: int = 0
    compared: int = 0
    high_rating_negative: list[dict] = field(default_factory=list)
    low_rating_positive: list[dict] = field(default_factory=list)

    def _ratings(self, chunk: Any) -> np.ndarray:
        ratings = chunk.ratings
        if ratings is None:
            raw = _column_strings(chunk.frame, self.column)
            ratings = pd.to_numeric(raw, errors="coerce").to_numpy(dtype=np.float64)
        return np.asarray(ratings, dtype=np.float64)

    def update(self, chunk: Any) -> None:
        """Add one scored chunk."""
        ratings = self._ratings(chunk)
        scored, positive, safe = _scored_positive(chunk)
        present = np.isfinite(ratings)
        self.missing += int((~present).sum())
        keys = np.round(np.where(present, ratings, 0.0), 2)
        bins = np.minimum((safe * SCORE_BINS).astype(np.int64), SCORE_BINS - 1)
        for key in np.unique(keys[present]):
            mask = present & (keys == key)
            self._add_value(
                float(key),
                np.array(
                    (mask.sum(), (mask & scored).sum(), (mask & positive).sum(), safe[mask & scored].sum()),
                    dtype=np.float64,
                ),
                np.bincount(bins[mask & scored], minlength=SCORE_BINS),
            )
        classes = rating_classes(ratings, self.scale)
        # Reviews the model called neutral (--neutral-band) neither agree nor disagree with a
        # rating: left out, as a middle rating is.
        neutral = _neutral(chunk)
        judged = scored & ~neutral & (classes >= 0)
        self.compared += int(judged.sum())
        self.agree += int((judged & (positive == (classes == 1))).sum())
        self._collect_disagreements(chunk, ratings, classes, scored & ~positive & ~neutral,
                                    positive, safe)

    def _add_value(self, key: float, counts: np.ndarray, hist: np.ndarray) -> None:
        if key not in self.values and len(self.values) >= MAX_RATING_VALUES:
            self.other_values += int(counts[0])
            return
        self.values[key] = self.values.get(key, np.zeros(4)) + counts
        self.hists[key] = self.hists.get(key, np.zeros(SCORE_BINS, dtype=np.int64)) + hist

    def _collect_disagreements(self, chunk, ratings, classes, negative, positive, safe) -> None:
        """The k strongest disagreements so far: high ratings the model called negative, low
        ratings it called positive (its decisions, not the scores compared again)."""
        wrong_high = np.flatnonzero(negative & (classes == 1))
        wrong_low = np.flatnonzero(positive & (classes == 0))
        for indices, name, highest, sentiment in (
            (wrong_high, "high_rating_negative", False, "negative"),
            (wrong_low, "low_rating_positive", True, "positive"),
        ):
            order = np.argsort(-safe[indices] if highest else safe[indices], kind="stable")
            picked = [self._item(chunk, int(i), ratings, safe, sentiment)
                      for i in indices[order][: self.k]]
            setattr(self, name, _top(getattr(self, name) + picked, self.k, highest=highest))

    def _item(self, chunk: Any, i: int, ratings: np.ndarray, safe: np.ndarray,
              sentiment: str) -> dict:
        ident = None
        if self.id_column and self.id_column in chunk.frame.columns:
            value = chunk.frame[self.id_column].iloc[i]
            ident = None if pd.isna(value) else str(value)
        return {
            "row": int(chunk.rows[i]),
            "id": ident,
            "text": chunk.texts[i] or "",
            "rating": float(ratings[i]),
            "score": float(safe[i]),
            "sentiment": sentiment,
            "spans": _row_spans(chunk, i),
        }

    def merge(self, other: RatingAccumulator) -> None:
        """Fold another accumulator into this one."""
        for key in other.values:
            self._add_value(key, other.values[key], other.hists[key])
        self.missing += other.missing
        self.other_values += other.other_values
        self.agree += other.agree
        self.compared += other.compared
        self.high_rating_negative = _top(
            self.high_rating_negative + other.high_rating_negative, self.k, highest=False
        )
        self.low_rating_positive = _top(
            self.low_rating_positive + other.low_rating_positive, self.k, highest=True
        )

    def context(self) -> Ratings:
        """Plain data for the report: per-value rows, neutral count, agreement, disagreements."""
        per_value = []
        counts = {1: 0, 0: 0, -1: 0}
        for key in sorted(self.values):
            n, scored, positive, total = (float(v) for v in self.values[key])
            hist = self.hists[key]
            side = int(rating_classes(np.array([key]), self.scale)[0])
            counts[side] += int(n)
            per_value.append(
                {
                    "rating": key,
                    "label": f"{key:g}",
                    "side": {1: "positive", 0: "negative", -1: "neutral"}[side],
                    "reviews": int(n),
                    "scored": int(scored),
                    "positive_share": _share(positive, scored),
                    "mean_score": _share(total, scored),
                    "q1": _quantile_from_hist(hist, 0.25),
                    "median": _quantile_from_hist(hist, 0.5),
                    "q3": _quantile_from_hist(hist, 0.75),
                }
            )
        return {
            "column": self.column,
            "scale": self.scale,
            "values": per_value,
            "positive": counts[1],
            "negative": counts[0],
            "neutral": counts[-1],
            "missing": self.missing,
            "other_values": self.other_values,
            "compared": self.compared,
            "agreement": _share(self.agree, self.compared),
            "high_rating_negative": [dict(d) for d in self.high_rating_negative],
            "low_rating_positive": [dict(d) for d in self.low_rating_positive],
        }


# ---------------------------------------------------------------- one per file


class FileInsights:
    """The time, group and rating statistics of one review file, fed chunk by chunk.

    Each part exists only when its column is known; ``context()`` gives the report's
    "timeline", "groups" and "ratings" keys (None for a missing part). Picklable and mergeable,
    so partitions scored apart (the Ray engine) combine into the same numbers as one pass.
    """

    def __init__(
        self,
        date_column: str | None = None,
        group_column: str | None = None,
        rating_column: str | None = None,
        rating_scale: int | None = None,
        threshold: float = 0.5,
        *,
        id_column: str | None = None,
    ):
        self.timeline = TimelineAccumulator(date_column, threshold) if date_column else None
        self.groups = GroupAccumulator(group_column, threshold) if group_column else None
        self.ratings = (
            RatingAccumulator(rating_column, int(rating_scale or 5), threshold, id_column)
            if rating_column
            else None
        )

    def _parts(self) -> tuple:
        return ("timeline", "groups", "ratings")

    def update(self, chunk: Any) -> None:
        """Add one scored chunk (needs frame, rows, texts, status, scores; ratings if any)."""
        for name in self._parts():
            part = getattr(self, name)
            if part is not None:
                part.update(chunk)

    def merge(self, other: FileInsights) -> FileInsights:
        """Fold another FileInsights of the same file and columns into this one; returns self."""
        for name in self._parts():
            mine, theirs = getattr(self, name), getattr(other, name)
            if (mine is None) != (theirs is None):
                raise ValueError(f"cannot merge insights: only one side has a {name} part")
            if mine is not None:
                mine.merge(theirs)
        return self

    def context(self) -> Insights:
        """{"timeline": ..., "groups": ..., "ratings": ...}, each a dict or None."""
        return {
            name: None if getattr(self, name) is None else getattr(self, name).context()
            for name in self._parts()
        }
