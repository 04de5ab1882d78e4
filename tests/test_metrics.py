"""Tests for review_scorer.metrics against scikit-learn and brute-force references."""

from __future__ import annotations

import itertools
import json
import math

import numpy as np
import pytest
from sklearn import metrics as skm

from review_scorer.metrics import (
    HighlightTracker,
    StreamingMetrics,
    binary_metrics,
    confusion_matrix,
    log_loss,
    roc_auc,
    score_histogram,
)


@pytest.fixture
def rng() -> np.random.Generator:
    return np.random.default_rng(20240611)


def _random_case(rng: np.random.Generator, n: int = 300, *, decimals: int | None = None):
    labels = rng.integers(0, 2, size=n)
    # scores that lean towards the true label, so the metrics are not trivial
    scores = np.clip(rng.normal(0.35 + 0.3 * labels, 0.25), 0.0, 1.0)
    if decimals is not None:
        scores = np.round(scores, decimals)
    return labels, scores


def test_metrics_confusion_matrix_matches_sklearn(rng):
    labels, scores = _random_case(rng)
    preds = (scores >= 0.5).astype(int)
    ours = confusion_matrix(labels, preds)
    assert ours.dtype == np.int64
    assert ours.shape == (2, 2)
    np.testing.assert_array_equal(ours, skm.confusion_matrix(labels, preds, labels=[0, 1]))


@pytest.mark.parametrize("decimals", [None, 1, 2])
def test_metrics_roc_auc_matches_sklearn_with_ties(rng, decimals):
    labels, scores = _random_case(rng, decimals=decimals)
    if decimals == 1:
        assert len(np.unique(scores)) < 15  # heavy ties really happen
    assert roc_auc(labels, scores) == pytest.approx(skm.roc_auc_score(labels, scores), abs=1e-12)


def test_metrics_roc_auc_all_tied_is_one_half():
    assert roc_auc([0, 1, 0, 1], [0.7, 0.7, 0.7, 0.7]) == pytest.approx(0.5)


def test_metrics_roc_auc_single_class_is_none():
    assert roc_auc([1, 1, 1], [0.2, 0.5, 0.9]) is None
    assert roc_auc([0, 0], [0.2, 0.5]) is None
    assert binary_metrics([1, 1], [0.9, 0.1])["roc_auc"] is None


@pytest.mark.parametrize("threshold", [0.5, 0.3, 0.8])
def test_metrics_binary_metrics_match_sklearn(rng, threshold):
    labels, scores = _random_case(rng)
    preds = (scores >= threshold).astype(int)
    result = binary_metrics(labels, scores, threshold=threshold)
    assert result["n"] == len(labels)
    assert result["threshold"] == threshold
    assert result["accuracy"] == pytest.approx(skm.accuracy_score(labels, preds))
    assert result["precision"] == pytest.approx(skm.precision_score(labels, preds))
    assert result["recall"] == pytest.approx(skm.recall_score(labels, preds))
    assert result["f1"] == pytest.approx(skm.f1_score(labels, preds))
    assert result["roc_auc"] == pytest.approx(skm.roc_auc_score(labels, scores))
    clipped = np.clip(scores, 1e-7, 1 - 1e-7)
    assert result["loss"] == pytest.approx(skm.log_loss(labels, clipped), rel=1e-9)
    assert result["confusion"] == skm.confusion_matrix(labels, preds, labels=[0, 1]).tolist()


def test_metrics_binary_metrics_is_plain_json(rng):
    labels, scores = _random_case(rng, n=40)
    result = binary_metrics(labels, scores.astype(np.float32))
    assert set(result) == {
        "n", "accuracy", "precision", "recall", "f1", "roc_auc", "loss", "threshold", "confusion",
    }
    assert type(result["n"]) is int
    for key in ("accuracy", "precision", "recall", "f1", "roc_auc", "loss", "threshold"):
        assert type(result[key]) is float, key
    assert all(type(v) is int for row in result["confusion"] for v in row)
    assert json.loads(json.dumps(result, allow_nan=False)) == result


def test_metrics_all_wrong_predictions():
    result = binary_metrics([1, 1, 0, 0], [0.1, 0.2, 0.8, 0.9])
    assert result["accuracy"] == 0.0
    assert result["confusion"] == [[0, 2], [2, 0]]
    assert result["precision"] == 0.0
    assert result["recall"] == 0.0
    assert result["f1"] == 0.0
    assert result["roc_auc"] == 0.0


def test_metrics_no_positive_predictions_give_zero_not_nan():
    result = binary_metrics([1, 0, 1, 0], [0.1, 0.2, 0.3, 0.4])
    assert result["confusion"] == [[2, 0], [2, 0]]
    for key in ("precision", "recall", "f1"):
        assert result[key] == 0.0
        assert not math.isnan(result[key])
    # no positives at all in the labels: recall is undefined too
    assert binary_metrics([0, 0], [0.9, 0.1])["recall"] == 0.0


def test_metrics_threshold_boundary_counts_as_positive():
    result = binary_metrics([1, 0], [0.5, 0.49999], threshold=0.5)
    assert result["confusion"] == [[1, 0], [0, 1]]


def test_metrics_log_loss_matches_sklearn_and_clips(rng):
    labels, scores = _random_case(rng)
    scores = np.clip(scores, 0.01, 0.99)
    assert log_loss(labels, scores) == pytest.approx(skm.log_loss(labels, scores), rel=1e-9)
    # a certain, wrong score costs -log(eps) instead of infinity
    assert log_loss([1], [0.0]) == pytest.approx(-math.log(1e-7))
    assert log_loss([0], [1.0]) == pytest.approx(-math.log(1e-7), rel=1e-6)
    assert log_loss([1], [0.0], eps=1e-3) == pytest.approx(-math.log(1e-3))


def test_metrics_given_loss_is_reported_as_is():
    assert binary_metrics([1, 0], [0.9, 0.1], loss=1.25)["loss"] == 1.25


def test_metrics_reject_bad_input():
    with pytest.raises(ValueError, match="only 0 and 1"):
        binary_metrics([0, 2], [0.1, 0.2])
    with pytest.raises(ValueError, match="length mismatch"):
        binary_metrics([0, 1, 1], [0.1, 0.2])
    with pytest.raises(ValueError, match="NaN"):
        binary_metrics([0, 1], [0.1, float("nan")])
    with pytest.raises(ValueError):
        binary_metrics([], [])


def test_metrics_histogram_edges_and_counts(rng):
    scores = np.concatenate([rng.random(500), [0.0, 1.0, 1.0, 0.5]])
    hist = score_histogram(scores)
    assert len(hist["edges"]) == 21
    assert len(hist["counts"]) == 20
    assert hist["edges"][0] == 0.0
    assert hist["edges"][-1] == 1.0
    assert hist["edges"][1] == pytest.approx(0.05)
    expected, _ = np.histogram(scores, bins=20, range=(0.0, 1.0))
    assert hist["counts"] == expected.tolist()
    assert sum(hist["counts"]) == len(scores)
    assert all(type(c) is int for c in hist["counts"])


def test_metrics_histogram_extremes_land_in_end_bins():
    hist = score_histogram([1.0, 1.0, 0.0], bins=4)
    assert hist["counts"] == [1, 0, 0, 2]
    assert hist["edges"] == [0.0, 0.25, 0.5, 0.75, 1.0]
    assert score_histogram([0.5], bins=2)["counts"] == [0, 1]  # a bin holds its left edge


def _chunks(rng: np.random.Generator, sizes: list[int]):
    """Chunks with unknown labels (-1) and unscored rows (NaN score, mask False)."""
    chunks = []
    for size in sizes:
        labels = rng.integers(-1, 2, size=size).astype(np.int8)
        scores = rng.random(size).astype(np.float32)
        mask = rng.random(size) > 0.2
        scores[~mask] = np.nan
        chunks.append((labels, scores, mask))
    return chunks


def test_metrics_streaming_equals_concatenated(rng):
    chunks = _chunks(rng, [37, 1, 0, 120, 64])
    streaming = StreamingMetrics(threshold=0.4)
    for labels, scores, mask in chunks:
        streaming.update(labels, scores, mask)
    labels = np.concatenate([c[0] for c in chunks])
    scores = np.concatenate([c[1] for c in chunks])
    mask = np.concatenate([c[2] for c in chunks])
    keep = mask & (labels >= 0)
    expected = binary_metrics(labels[keep], scores[keep], threshold=0.4)
    result = streaming.result()
    assert {k: result[k] for k in expected} == expected
    assert result["neutral"] == 0
    from review_scorer.model.calibration import expected_calibration_error, reliability_bins

    assert result["ece"] == pytest.approx(expected_calibration_error(scores[keep], labels[keep]))
    assert [b["n"] for b in result["reliability"]] == [
        b["n"] for b in reliability_bins(scores[keep], labels[keep])]
    assert result["n"] == int(keep.sum())
    assert result["threshold"] == 0.4
    assert streaming.n_rows == len(labels)
    assert streaming.n_scored == int(mask.sum())
    assert streaming.n_positive == int((scores[mask] >= np.float32(0.4)).sum())
    assert streaming.n_negative == streaming.n_scored - streaming.n_positive
    hist, plain = streaming.histogram(), score_histogram(scores[mask])
    assert (hist["edges"], hist["counts"]) == (plain["edges"], plain["counts"])
    # each bin's positive rows: the decisions, so a bin across the threshold holds both sides
    decided = scores[mask][scores[mask] >= np.float32(0.4)]
    assert hist["positive_counts"] == score_histogram(decided)["counts"]
    assert sum(hist["positive_counts"]) == streaming.n_positive
    # asking again gives the same answer; another threshold is recomputed
    assert streaming.result() == result
    assert streaming.result(0.7)["confusion"] == binary_metrics(
        labels[keep], scores[keep], threshold=0.7
    )["confusion"]


def test_metrics_streaming_without_labels_returns_none():
    streaming = StreamingMetrics()
    assert streaming.result() is None
    scores = np.array([0.97, 0.1, np.nan], dtype=np.float32)
    streaming.update(np.full(3, -1, dtype=np.int8), scores, np.array([True, True, False]))
    assert streaming.result() is None
    assert streaming.n_scored == 2
    assert streaming.n_positive == 1
    assert streaming.histogram()["counts"][-1] == 1


def test_metrics_streaming_rejects_mismatched_chunk():
    with pytest.raises(ValueError, match="length mismatch"):
        StreamingMetrics().update(np.zeros(3, np.int8), np.zeros(2), np.ones(3, bool))


def _brute_force_highlights(rows, scores, k):
    order_pos = sorted(range(len(rows)), key=lambda i: (-scores[i], rows[i]))
    order_neg = sorted(range(len(rows)), key=lambda i: (scores[i], rows[i]))
    order_unc = sorted(range(len(rows)), key=lambda i: (abs(scores[i] - 0.5), rows[i]))
    return {
        "positive": [rows[i] for i in order_pos[:k] if scores[i] >= 0.5],
        "negative": [rows[i] for i in order_neg[:k] if scores[i] < 0.5],
        "uncertain": [rows[i] for i in order_unc[:k]],
    }


def _feed(tracker, rows, scores, texts, cuts):
    bounds = [0, *cuts, len(rows)]
    for start, stop in itertools.pairwise(bounds):
        tracker.update(rows[start:stop], scores[start:stop], texts[start:stop])


def test_metrics_highlights_match_brute_force(rng):
    n = 200
    rows = np.arange(n, dtype=np.int64) + 2
    scores = np.round(rng.random(n), 2)  # two decimals: plenty of ties
    texts = [f"review {r}" for r in rows]
    tracker = HighlightTracker(k=5)
    _feed(tracker, rows, scores, texts, [13, 14, 90, 150])
    result = tracker.result()
    expected = _brute_force_highlights(rows.tolist(), scores.tolist(), 5)
    for name in ("positive", "negative", "uncertain"):
        assert [r["row"] for r in result[name]] == expected[name], name
    top = result["positive"][0]
    assert top["text"] == f"review {top['row']}"
    assert top["score"] == pytest.approx(scores.max())


def test_metrics_highlights_ties_are_deterministic_across_chunkings():
    rows = np.arange(30, dtype=np.int64)
    scores = np.array([0.9, 0.1, 0.5] * 10)
    texts = [str(r) for r in rows]
    results = []
    for cuts in ([], [1, 2, 3], [10, 20], [29]):
        tracker = HighlightTracker(k=4)
        _feed(tracker, rows, scores, texts, cuts)
        results.append(tracker.result())
    assert all(result == results[0] for result in results)
    assert [r["row"] for r in results[0]["positive"]] == [0, 3, 6, 9]
    assert [r["row"] for r in results[0]["negative"]] == [1, 4, 7, 10]
    assert [r["row"] for r in results[0]["uncertain"]] == [2, 5, 8, 11]


def test_metrics_highlights_row_fields_and_truncation():
    tracker = HighlightTracker(k=2, threshold=0.6)
    tracker.update(
        np.array([7, 8, 9]),
        np.array([0.55, 0.95, np.nan]),
        ["x" * 1500, "great", "never scored"],
        ids=np.array(["a7", None, "a9"], dtype=object),
        labels=np.array([1, -1, 0], dtype=np.int8),
    )
    result = tracker.result()
    (first,) = result["positive"]
    (second,) = result["negative"]  # 0.55 is below the 0.6 threshold: not a positive highlight
    assert first == {
        "row": 8, "id": None, "text": "great", "sentiment": "positive", "score": 0.95,
        "status": "ok", "label": None,
    }
    assert len(second["text"]) == 1000
    assert second["id"] == "a7"
    assert second["label"] == "positive"
    assert second["sentiment"] == "negative"  # 0.55 is below the 0.6 threshold
    assert all(row["row"] != 9 for rows in result.values() for row in rows)
    json.dumps(result)


def test_metrics_highlights_empty_and_small():
    tracker = HighlightTracker(k=5)
    assert tracker.result() == {"positive": [], "negative": [], "uncertain": []}
    tracker.update(np.array([1, 2]), np.array([0.2, 0.8]), ["a", "b"])
    result = tracker.result()
    assert [r["row"] for r in result["positive"]] == [2]
    assert [r["row"] for r in result["negative"]] == [1]


def test_metrics_highlights_keep_each_side_of_the_threshold():
    tracker = HighlightTracker(k=5, threshold=0.5)
    scores = np.array([0.9, 0.8, 0.7, 0.6, 0.55, 0.2], dtype=np.float32)
    rows = np.arange(1, 7)
    tracker.update(rows, scores, [f"t{i}" for i in rows], [None] * 6, np.full(6, -1, np.int8))
    result = tracker.result()
    assert [r["row"] for r in result["negative"]] == [6]
    assert all(r["score"] >= 0.5 for r in result["positive"])
    assert len(result["uncertain"]) == 5
