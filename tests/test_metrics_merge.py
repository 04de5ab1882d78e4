"""Partition accumulators: merged partitions give exactly what one pass over every row gives."""

from __future__ import annotations

import pickle

import numpy as np
import pytest

from review_scorer.metrics import HighlightTracker, RowSample, StreamingMetrics, sample_priorities


def _rows(n: int, seed: int):
    rng = np.random.default_rng(seed)
    scores = rng.random(n).astype(np.float32)
    scores[::7] = 0.5  # ties on purpose
    labels = rng.integers(-1, 2, n).astype(np.int8)
    scored = rng.random(n) > 0.1
    return np.arange(1, n + 1, dtype=np.int64), scores, labels, scored


def test_streaming_metrics_merge_equals_one_pass_and_survives_pickle():
    _, scores, labels, scored = _rows(3000, 1)
    whole = StreamingMetrics(threshold=0.4)
    whole.update(labels, scores, scored)
    parts = []
    for part in np.array_split(np.arange(3000), 7):
        acc = StreamingMetrics(threshold=0.4)
        acc.update(labels[part], scores[part], scored[part])
        parts.append(pickle.loads(pickle.dumps(acc)))
    merged = StreamingMetrics(threshold=0.4)
    for acc in reversed(parts):  # order of arrival must not matter
        merged.merge(acc)
    assert (merged.n_rows, merged.n_scored, merged.n_positive) == (
        whole.n_rows, whole.n_scored, whole.n_positive)
    assert merged.histogram() == whole.histogram()
    a, b = merged.result(), whole.result()
    assert a["confusion"] == b["confusion"] and a["n"] == b["n"]
    assert a["roc_auc"] == pytest.approx(b["roc_auc"], abs=1e-12)


def test_streaming_metrics_merge_refuses_another_threshold():
    with pytest.raises(ValueError):
        StreamingMetrics(threshold=0.5).merge(StreamingMetrics(threshold=0.6))


def _feed(tracker, rows, scores, texts, source, rank):
    tracker.update(rows, scores, texts, labels=np.ones(len(rows), np.int8), source=source,
                   source_rank=rank)


def test_highlight_tracker_merge_equals_one_pass_across_sources_with_equal_rows_and_scores():
    rows, scores, _, _ = _rows(400, 2)
    texts = [f"text {i}" for i in range(400)]
    whole = HighlightTracker(k=5)
    for rank, source in enumerate(("a.csv", "b.csv")):
        # two sources with identical rows and scores: only the source rank breaks the ties
        _feed(whole, rows, scores, texts, source, rank)
    parts = []
    for rank, source in enumerate(("a.csv", "b.csv")):
        for part in np.array_split(np.arange(400), 3):
            t = HighlightTracker(k=5)
            _feed(t, rows[part], scores[part], [texts[i] for i in part], source, rank)
            parts.append(pickle.loads(pickle.dumps(t)))
    merged = HighlightTracker(k=5)
    for t in parts[::-1]:
        merged.merge(t)
    assert merged.result() == whole.result()
    uncertain = whole.result()["uncertain"]
    assert [r["source_file"] for r in uncertain[:2]] == ["a.csv", "a.csv"]
    assert all(r["score"] == 0.5 for r in uncertain)


def test_highlight_tracker_without_source_keeps_the_plain_row_dicts():
    t = HighlightTracker(k=2)
    t.update([1, 2], [0.9, 0.1], ["good", "bad"])
    assert "source_file" not in t.result()["positive"][0]


def test_row_sample_is_seeded_bounded_and_independent_of_partitioning():
    whole = RowSample(50, seed=7)
    for rank in range(3):
        whole.update(np.arange(1, 1001), source_rank=rank)
    merged = RowSample(50, seed=7)
    for rank in (2, 0, 1):
        for part in np.array_split(np.arange(1, 1001), 9):
            s = RowSample(50, seed=7)
            s.update(part, source_rank=rank, labels=np.zeros(len(part), np.int8))
            merged.merge(pickle.loads(pickle.dumps(s)))
    assert len(merged) == 50 and merged.n_seen == 3000
    assert [r[:2] for r in merged.rows()] == [r[:2] for r in whole.rows()]
    assert merged.rows() == sorted(merged.rows())
    other = RowSample(50, seed=8)
    for rank in range(3):
        other.update(np.arange(1, 1001), source_rank=rank)
    assert other.rows() != whole.rows()
    # every source is represented roughly in proportion (a uniform sample, not the first rows)
    ranks = [r[0] for r in whole.rows()]
    assert all(5 <= ranks.count(rank) <= 30 for rank in range(3))
    assert max(r[1] for r in whole.rows()) > 500


def test_sample_priorities_are_stable_values():
    first = sample_priorities(0, 0, [1, 2, 3])
    assert first.dtype == np.uint64 and len(set(first.tolist())) == 3
    assert np.array_equal(first, sample_priorities(0, 0, [1, 2, 3]))
    assert not np.array_equal(first, sample_priorities(0, 1, [1, 2, 3]))
