"""One decision rule (issue 19): a score exactly at the threshold is positive in every place.

The model gives float32 scores. A review whose float32 score is 0.7 sits a hair below 0.7 in
float64, so a section that compared in float64 called it negative while the predictions called
it positive; the histogram's description counted whole bins by their midpoints. These tests
score a file whose scores sit exactly on (and just below) the threshold and read the decision
back from the predictions, the counts, the metrics, the histogram, the timeline, the groups,
the ratings and the highlights.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from review_scorer.metrics import DecisionRule, StreamingMetrics

F32 = np.float32


def _below(value: float) -> np.float32:
    """The largest float32 below float32(value)."""
    return np.nextafter(F32(value), F32(0))


# text -> (score, label, stars, date, product). Texts name the rows; the fake model reads them.
ROWS = {
    "at seventy": (F32(0.7), "negative", 1, "2025-01-06", "Kettle"),
    "under seventy": (_below(0.7), "positive", 5, "2025-01-06", "Kettle"),
    "at seventy three": (F32(0.73), "negative", 2, "2025-01-07", "Lamp"),
    "under seventy three": (_below(0.73), "positive", 4, "2025-01-13", "Lamp"),
    "clearly good": (F32(0.95), "positive", 5, "2025-01-13", "Kettle"),
    "clearly bad": (F32(0.05), "negative", 1, "2025-01-14", "Lamp"),
}


def test_decision_rule_compares_in_float32():
    rule = DecisionRule(0.7)
    scores = np.array([F32(0.7), _below(0.7), F32(0.9), np.nan], dtype=np.float32)
    assert rule.positive(scores).tolist() == [True, False, True, False]
    # float64 comparison is what went wrong: float32(0.7) is below the float64 0.7
    assert not float(F32(0.7)) >= 0.7
    assert rule.positive(scores, [True, True, False, True]).tolist() == [True, False, False, False]


def test_streaming_metrics_use_the_decisions_they_are_given():
    scores = np.array([0.2, 0.8, 0.6], dtype=np.float32)
    labels = np.array([0, 1, 1], dtype=np.int8)
    given = np.array([True, False, True])  # deliberately not what the scores say
    streaming = StreamingMetrics(threshold=0.5)
    streaming.update(labels, scores, np.ones(3, bool), given)
    assert streaming.n_positive == 2
    assert streaming.result()["confusion"] == [[0, 1], [1, 1]]
    assert sum(streaming.histogram()["positive_counts"]) == 2


@pytest.fixture
def fixed_scores(monkeypatch):
    """The model scores each text of ROWS with its float32 score."""
    from review_scorer.model import sentiment

    def stream(self, items, texts_of, **kw):
        for item in items:
            texts = list(texts_of(item))
            status = np.array(["ok"] * len(texts), dtype=object)
            yield item, status, np.array([ROWS[t][0] for t in texts], dtype=np.float32)

    monkeypatch.setattr(sentiment.SentimentModel, "predict_stream", stream)


def _write_file(path) -> pd.DataFrame:
    frame = pd.DataFrame(
        [{"review_id": f"S{i}", "date": date, "product": product, "stars": stars, "label": label,
          "text": text}
         for i, (text, (_, label, stars, date, product)) in enumerate(ROWS.items(), 1)]
    )
    frame.to_csv(path, index=False)
    return frame


def _score_and_capture(src, out_dir, threshold, monkeypatch) -> tuple:
    from review_scorer.scoring import score as score_module

    captured = []
    real = score_module.publish_report
    monkeypatch.setattr(score_module, "publish_report",
                        lambda r, *a, **kw: (captured.append(r), real(r, *a, **kw))[1])
    result = score_module.score_files(
        [str(src)], out_dir=out_dir, threshold=threshold, chunk_rows=4, max_report_rows=0,
        text_column="text", label_column="label", id_column="review_id", rating_column="stars",
        date_column="date", group_column="product",
    )
    (f,) = result.files
    assert f.ok, f.error
    (report,) = captured
    return f, report


EXPECTED_POSITIVE = {
    0.7: {"at seventy", "at seventy three", "under seventy three", "clearly good"},
    0.73: {"at seventy three", "clearly good"},
}


@pytest.mark.parametrize("threshold", sorted(EXPECTED_POSITIVE))
def test_report_threshold_decision_is_the_same_in_every_section(threshold, fixed_scores,
                                                                tmp_path, monkeypatch):
    from review_scorer.report.render import build_report_html

    frame = _write_file(tmp_path / "edge.csv")
    f, context = _score_and_capture(tmp_path / "edge.csv", tmp_path / "out", threshold, monkeypatch)
    scores = np.array([ROWS[t][0] for t in frame["text"]], dtype=np.float32)
    positive = scores >= F32(threshold)
    # A score exactly at the threshold is positive, the float32 just below it negative.
    expected_positive = EXPECTED_POSITIVE[threshold]
    assert set(frame["text"][positive]) == expected_positive
    n_pos = int(positive.sum())

    out = pd.read_csv(f.predictions_path, dtype=str, keep_default_na=False)
    assert (out["sentiment"] == "positive").tolist() == positive.tolist()
    assert f.positive == n_pos and context.summary.positive == n_pos

    labels = (frame["label"] == "positive").to_numpy()
    tp, fp = int((positive & labels).sum()), int((positive & ~labels).sum())
    fn, tn = int((~positive & labels).sum()), int((~positive & ~labels).sum())
    assert context.file_metrics["confusion"] == [[tn, fp], [fn, tp]]

    assert sum(context.score_histogram["positive_counts"]) == n_pos
    caption = f"{len(frame) - n_pos:,} below and {n_pos:,} at or above the threshold {threshold:.2f}"
    assert caption in build_report_html(context)

    buckets = context.timeline["buckets"]
    assert sum(b["positive"] for b in buckets) == n_pos
    for name, group in frame.groupby("product"):
        item = next(g for g in context.groups["items"] if g["name"] == name)
        assert item["positive"] == int(positive[group.index].sum())

    ratings = context.ratings
    stars = frame["stars"].to_numpy()
    texts = frame["text"].to_numpy()
    assert {d["text"] for d in ratings["low_rating_positive"]} == set(texts[positive & (stars <= 2)])
    assert {d["text"] for d in ratings["high_rating_negative"]} == set(texts[~positive & (stars >= 4)])
    agree = (positive == (stars >= 4))[(stars >= 4) | (stars <= 2)]
    assert ratings["agreement"] == pytest.approx(agree.mean())
    for value in ratings["values"]:
        same = stars == value["rating"]
        assert value["positive_share"] == pytest.approx(positive[same].mean())

    highlights = context.highlights
    assert {r["text"] for r in highlights["positive"]} == set(frame["text"][positive])
    assert {r["text"] for r in highlights["negative"]} == set(frame["text"][~positive])
    for row in highlights["uncertain"]:
        assert row["sentiment"] == ("positive" if row["text"] in expected_positive else "negative")
