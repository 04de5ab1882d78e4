"""Tests for insights.py: timeline buckets, groups with Wilson intervals, ratings, merging."""

from __future__ import annotations

import math
import pickle
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from review_scorer.metrics import DecisionRule
from review_scorer.report import insights
from review_scorer.report.insights import (
    FileInsights,
    choose_date_format,
    choose_granularity,
    rating_classes,
    wilson_interval,
)
from review_scorer.scoring.kernel import ScoredChunk

SHOP = Path(__file__).resolve().parent.parent / "sample_data" / "shop_reviews.csv"


def make_chunk(frame: pd.DataFrame, scores, *, first_row: int = 1, ratings_column: str | None = None):
    scores = np.asarray(scores, dtype=np.float32)
    status = np.where(np.isfinite(scores), "ok", "empty text").astype(object)
    ratings = None
    if ratings_column:
        ratings = pd.to_numeric(frame[ratings_column], errors="coerce").to_numpy(np.float64)
    return ScoredChunk(
        frame=frame.reset_index(drop=True),
        rows=np.arange(first_row, first_row + len(frame), dtype=np.int64),
        texts=list(frame["text"]) if "text" in frame else [""] * len(frame),
        labels=None,
        ratings=ratings,
        status=status,
        scores=scores,
        positive=DecisionRule(0.5).positive(scores) & (status == "ok"),
    )


def shop_frame_and_scores() -> tuple[pd.DataFrame, np.ndarray]:
    """The hand-written shop sample, with scores that follow the stars plus a fixed wobble."""
    frame = pd.read_csv(SHOP, dtype=str, keep_default_na=False)
    stars = frame["stars"].astype(float).to_numpy()
    wobble = np.random.default_rng(7).uniform(-0.15, 0.15, len(frame))
    scores = np.clip((stars - 1) / 4 + wobble, 0, 1)
    scores[::11] = np.nan  # some rows not scored
    return frame, scores


# ---------------------------------------------------------------- Wilson interval


def test_insights_wilson_interval_matches_scipy_and_hand_value():
    stats = pytest.importorskip("scipy.stats")
    for k, n in ((7, 20), (0, 10), (10, 10), (1, 3), (481, 1000)):
        low, high = wilson_interval(k, n)
        ref = stats.binomtest(k, n).proportion_ci(method="wilson")
        assert low == pytest.approx(ref.low, abs=1e-9) and high == pytest.approx(ref.high, abs=1e-9)
    # Worked by hand: p = 0.5, n = 100 -> centre 0.5, half-width 0.0960.
    low, high = wilson_interval(50, 100)
    assert (round(low, 4), round(high, 4)) == (0.4038, 0.5962)


def test_insights_wilson_interval_of_nothing_is_nan():
    assert all(math.isnan(v) for v in wilson_interval(0, 0))


# ---------------------------------------------------------------- dates and buckets


@pytest.mark.parametrize(
    ("span", "expected"),
    [(0, "day"), (31, "day"), (32, "week"), (183, "week"), (184, "month"), (4000, "month"), (6000, "year")],
)
def test_insights_granularity_follows_the_span(span, expected):
    assert choose_granularity(span) == expected


def _dated(dates: list[str], scores=None) -> dict:
    frame = pd.DataFrame({"date": dates, "text": ["x"] * len(dates)})
    scores = np.full(len(dates), 0.8) if scores is None else scores
    acc = FileInsights(date_column="date")
    acc.update(make_chunk(frame, scores))
    return acc.context()["timeline"]


def test_insights_timeline_buckets_per_day_week_month():
    days = pd.date_range("2025-01-01", periods=20, freq="D").strftime("%Y-%m-%d").tolist()
    timeline = _dated(days)
    assert timeline["granularity"] == "day" and len(timeline["buckets"]) == 20
    weeks = pd.date_range("2025-01-06", periods=90, freq="D").strftime("%Y-%m-%d").tolist()
    timeline = _dated(weeks)
    assert timeline["granularity"] == "week"
    assert [b["start"] for b in timeline["buckets"]][:2] == ["2025-01-06", "2025-01-13"]  # Mondays
    assert sum(b["reviews"] for b in timeline["buckets"]) == 90
    months = pd.date_range("2024-01-15", periods=400, freq="D").strftime("%Y-%m-%d").tolist()
    timeline = _dated(months)
    assert timeline["granularity"] == "month"
    assert timeline["buckets"][0]["label"] == "Jan 2024" and timeline["buckets"][0]["reviews"] == 17


def test_insights_timeline_counts_shares_and_keeps_gaps():
    dates = ["2025-03-01", "2025-03-01", "2025-03-01", "2025-03-04"]
    timeline = _dated(dates, scores=np.array([0.9, 0.2, np.nan, 0.6]))
    buckets = {b["start"]: b for b in timeline["buckets"]}
    first = buckets["2025-03-01"]
    assert (first["reviews"], first["scored"], first["positive"]) == (3, 2, 1)
    assert first["positive_share"] == 0.5 and first["mean_score"] == pytest.approx(0.55)
    assert buckets["2025-03-02"]["reviews"] == 0 and buckets["2025-03-02"]["positive_share"] is None
    assert len(buckets) == 4


def test_insights_unreadable_dates_are_counted_listed_and_never_drop_a_row():
    dates = ["2025-02-01", "soon", "", "2025-02-03", "31/02/2025", None, "2025-02-09", "???"]
    timeline = _dated(dates)
    assert timeline["unreadable"] == 3 and timeline["missing"] == 2 and timeline["dated"] == 3
    assert timeline["dated"] + timeline["unreadable"] + timeline["missing"] == len(dates)
    assert [e["row"] for e in timeline["unreadable_examples"]] == [2, 5, 8]
    assert timeline["unreadable_examples"][0]["value"] == "soon"


def test_insights_a_date_far_from_all_the_others_is_left_out_of_the_plot_and_named():
    # A year typo (0224 for 2024) among a month of dates: the axis used to span 1,800 years.
    dates = [f"2024-03-{d:02d}" for d in range(1, 29)] * 3 + ["0224-03-01"]
    timeline = _dated(dates)
    assert timeline["far"] == 1 and timeline["far_examples"] == ["0224-03-01"]
    assert timeline["first"] == "2024-03-01" and timeline["last"] == "2024-03-28"
    assert timeline["granularity"] == "day" and len(timeline["buckets"]) == 28
    assert timeline["dated"] + timeline["far"] == len(dates)
    # A few rows with impossible-looking extremes around real ones.
    extreme = _dated(["2024-05-01", "2024-05-02", "2024-05-03", "2024-05-04", "0001-01-01", "9999-12-31"])
    assert extreme["far"] == 2 and len(extreme["buckets"]) == 4
    # Years of real reviews, most of them recent, are all kept (as on the fine-food file).
    spread = [f"{y}-06-01" for y in range(2000, 2011)] + ["2011-06-01"] * 30 + ["2012-06-01"] * 30
    kept = _dated(spread)
    assert kept["far"] == 0 and kept["first"] == "2000-06-01" and kept["last"] == "2012-06-01"


def test_insights_day_first_is_decided_once_for_the_whole_file():
    # 25/04 can only be day-first, so 03/04 is the 3rd of April too, not the 4th of March.
    timeline = _dated(["03/04/2025", "25/04/2025", "10/04/2025"])
    assert timeline["date_format"] == "%d/%m/%Y" and not timeline["day_month_ambiguous"]
    assert timeline["first"] == "2025-04-03" and timeline["last"] == "2025-04-25"
    # Nothing above 12: read month-first, and the context says it was a guess.
    timeline = _dated(["03/04/2025", "05/04/2025"])
    assert timeline["date_format"] == "%m/%d/%Y" and timeline["day_month_ambiguous"]
    assert timeline["first"] == "2025-03-04"


def test_insights_dates_with_time_zones_become_naive_utc():
    timeline = _dated(["2025-05-01T23:30:00+00:00", "2025-05-02T01:30:00+02:00", "2025-05-02"])
    assert timeline["date_format"] == "ISO8601"
    counts = {b["start"]: b["reviews"] for b in timeline["buckets"]}
    assert counts == {"2025-05-01": 2, "2025-05-02": 1}


def test_insights_choose_date_format_prefers_what_reads_most():
    fmt, count = choose_date_format(["Mar 3, 2025", "Apr 11, 2025", "nope"])
    assert fmt == "%b %d, %Y" and count == 2
    assert choose_date_format([]) == (None, 0)
    assert choose_date_format(["x", "y"]) == (None, 0)


# ---------------------------------------------------------------- groups


def test_insights_groups_shares_intervals_and_none_group():
    frame = pd.DataFrame({"product": ["a", "a", "b", "", "a", None], "text": ["t"] * 6})
    acc = FileInsights(group_column="product")
    acc.update(make_chunk(frame, [0.9, 0.1, 0.8, 0.3, np.nan, 0.7]))
    groups = acc.context()["groups"]
    by_name = {g["name"]: g for g in groups["items"]}
    assert set(by_name) == {"a", "b", "(none)"} and by_name["(none)"]["missing"]
    a = by_name["a"]
    assert (a["reviews"], a["scored"], a["positive"]) == (3, 2, 1)
    assert (a["ci_low"], a["ci_high"]) == pytest.approx(wilson_interval(1, 2))
    assert by_name["(none)"]["reviews"] == 2
    assert groups["items"][0]["name"] == "a"  # most reviews first


def test_insights_groups_beyond_the_cap_merge_into_other():
    names = [f"shop {i:03d}" for i in range(250) for _ in range(1 + (i < 10))]
    frame = pd.DataFrame({"product": names, "text": ["t"] * len(names)})
    acc = FileInsights(group_column="product")
    acc.update(make_chunk(frame, np.linspace(0, 1, len(names))))
    groups = acc.context()["groups"]
    assert groups["total_groups"] == 250 and groups["shown"] == 200 and groups["other_groups"] == 50
    other = groups["items"][-1]
    assert other["other"] and other["name"] == "(other 50 groups)" and other["reviews"] == 50
    assert sum(g["reviews"] for g in groups["items"]) == len(names)
    assert all(g["reviews"] == 2 for g in groups["items"][:10])


def test_insights_groups_tracking_is_bounded(monkeypatch):
    monkeypatch.setattr(insights, "MAX_GROUPS_TRACKED", 5)
    frame = pd.DataFrame({"product": [f"g{i}" for i in range(8)], "text": ["t"] * 8})
    acc = FileInsights(group_column="product")
    acc.update(make_chunk(frame, np.full(8, 0.6)))
    groups = acc.context()["groups"]
    assert groups["capped"] and len(acc.groups.groups) == 5
    assert sum(g["reviews"] for g in groups["items"]) == 8


# ---------------------------------------------------------------- ratings


def test_insights_rating_classes_for_both_scales():
    five = rating_classes(np.array([1, 2, 2.5, 3, 3.5, 4, 5, np.nan]), 5)
    assert five.tolist() == [0, 0, -1, -1, -1, 1, 1, -1]
    ten = rating_classes(np.array([1, 4, 5, 6, 7, 10]), 10)
    assert ten.tolist() == [0, 0, -1, -1, 1, 1]


def test_insights_ratings_counts_neutral_agreement_and_disagreements():
    frame = pd.DataFrame(
        {
            "id": [f"r{i}" for i in range(8)],
            "stars": ["5", "5", "5", "3", "1", "1", "", "4"],
            "text": ["good", "awful A", "awful B", "meh", "lovely", "bad", "?", "fine"],
        }
    )
    scores = [0.9, 0.05, 0.3, 0.5, 0.95, 0.1, 0.5, 0.8]
    acc = FileInsights(rating_column="stars", rating_scale=5, id_column="id")
    acc.update(make_chunk(frame, scores, ratings_column="stars"))
    ratings = acc.context()["ratings"]
    assert (ratings["positive"], ratings["negative"], ratings["neutral"]) == (4, 2, 1)
    assert ratings["missing"] == 1
    assert ratings["compared"] == 6 and ratings["agreement"] == pytest.approx(3 / 6)
    assert [d["text"] for d in ratings["high_rating_negative"]] == ["awful A", "awful B"]
    assert ratings["high_rating_negative"][0]["id"] == "r1"
    assert [d["row"] for d in ratings["low_rating_positive"]] == [5]
    five = next(v for v in ratings["values"] if v["rating"] == 5)
    assert five["reviews"] == 3 and five["mean_score"] == pytest.approx((0.9 + 0.05 + 0.3) / 3)
    assert five["q1"] <= five["median"] <= five["q3"]
    assert abs(five["median"] - 0.3) < 0.002


# ---------------------------------------------------------------- streaming and merging


def _shop_insights(frame: pd.DataFrame, scores: np.ndarray, pieces: list[slice]) -> FileInsights:
    acc = FileInsights("date", "product", "stars", 5, 0.5, id_column="review_id")
    for piece in pieces:
        part = make_chunk(
            frame.iloc[piece], scores[piece], first_row=piece.start + 1, ratings_column="stars"
        )
        acc.update(part)
    return acc


def test_insights_merge_of_halves_equals_one_pass():
    frame, scores = shop_frame_and_scores()
    n = len(frame)
    one_pass = _shop_insights(frame, scores, [slice(0, 25), slice(25, n)]).context()
    first = _shop_insights(frame, scores, [slice(0, 40)])
    second = _shop_insights(frame, scores, [slice(40, 61), slice(61, n)])
    merged = pickle.loads(pickle.dumps(first)).merge(pickle.loads(pickle.dumps(second)))
    assert merged.context() == one_pass


def test_insights_merge_refuses_different_parts():
    with pytest.raises(ValueError, match="timeline"):
        FileInsights(date_column="d").merge(FileInsights(group_column="g"))


def test_insights_on_the_shop_sample_file():
    frame, scores = shop_frame_and_scores()
    stars = frame["stars"].astype(int).to_numpy()
    # Scores that follow the stars (the wobble never crosses 0.5), except for five reviews the
    # model reads against their stars: these, and only these, are the disagreements.
    five = np.flatnonzero((stars == 5) & np.isfinite(scores))[:3]
    one = np.flatnonzero((stars == 1) & np.isfinite(scores))[:2]
    scores[five] = [0.12, 0.04, 0.3]
    scores[one] = [0.91, 0.7]
    context = _shop_insights(frame, scores, [slice(0, len(frame))]).context()
    timeline, groups, ratings = context["timeline"], context["groups"], context["ratings"]
    assert timeline["granularity"] == "week" and timeline["unreadable"] >= 2
    assert timeline["dated"] + timeline["unreadable"] + timeline["missing"] == len(frame)
    assert 4 <= len(groups["items"]) <= 6 and sum(g["reviews"] for g in groups["items"]) == len(frame)
    worst = min(groups["items"], key=lambda g: g["positive_share"])
    assert worst["name"] == "Nimbus Earbuds"
    assert sum(v["reviews"] for v in ratings["values"]) == len(frame)
    # Strongest disagreement first: the lowest-scored five-star review, the highest-scored one-star.
    high = ratings["high_rating_negative"]
    assert [d["row"] for d in high] == [five[1] + 1, five[0] + 1, five[2] + 1]
    assert [d["score"] for d in high] == pytest.approx([0.04, 0.12, 0.3])
    low = ratings["low_rating_positive"]
    assert [d["row"] for d in low] == [one[0] + 1, one[1] + 1]
    for item in high + low:
        i = item["row"] - 1
        assert item["id"] == frame["review_id"][i] and item["text"] == frame["text"][i]
        assert item["rating"] == stars[i]
        assert item["sentiment"] == ("negative" if item in high else "positive")
    assert ratings["agreement"] == pytest.approx((ratings["compared"] - 5) / ratings["compared"])


def test_insights_a_column_without_dates_stops_being_sampled(monkeypatch):
    calls = []
    real = insights.choose_date_format
    monkeypatch.setattr(insights, "choose_date_format", lambda s: calls.append(len(s)) or real(s))
    acc = FileInsights(date_column="date")
    frame = pd.DataFrame({"date": ["not a date"] * 400, "text": ["t"] * 400})
    for start in range(0, 8000, 400):
        acc.update(make_chunk(frame, np.full(400, 0.5), first_row=start + 1))
    assert calls == [400] * math.ceil(insights.DATE_SAMPLE_LIMIT / 400)  # then no more tries
    timeline = acc.context()["timeline"]
    assert timeline["unreadable"] == 8000 and timeline["buckets"] == []
