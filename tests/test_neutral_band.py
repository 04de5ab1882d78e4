"""--neutral-band (issue 18): scores in [LOW, HIGH) are neutral in every output and report section.

A fake network gives each named text an exact float32 score, so rows sit exactly on the band's
edges: a score at exactly LOW is neutral, one at exactly HIGH is not.
"""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest

from review_scorer.metrics import DecisionRule, StreamingMetrics, parse_neutral_band, sentiment_names

F32 = np.float32
BAND = (0.35, 0.65)

# text -> (score, label). The expected decision at threshold 0.5 with BAND is in the name.
ROWS = {
    "neutral at low edge": (F32(0.35), "positive"),
    "negative just below low": (np.nextafter(F32(0.35), F32(0)), "negative"),
    "positive at high edge": (F32(0.65), "positive"),
    "neutral just below high": (np.nextafter(F32(0.65), F32(0)), "negative"),
    "neutral in the middle": (F32(0.5), "negative"),
    "positive clearly": (F32(0.95), "positive"),
    "negative clearly": (F32(0.05), "negative"),
    "negative wrongly": (F32(0.1), "positive"),
}
EXPECTED = {text: text.split()[0] for text in ROWS}


def test_neutral_band_rule_low_edge_is_neutral_high_edge_is_not():
    rule = DecisionRule(0.5, BAND)
    scores = np.array([ROWS[t][0] for t in ROWS] + [np.nan], dtype=np.float32)
    scored = np.isfinite(scores)
    names = sentiment_names(rule.positive(scores, scored), scored, rule.neutral(scores, scored))
    assert names.tolist() == [*EXPECTED.values(), ""]
    # without a band nothing is neutral, and the threshold alone decides
    plain = DecisionRule(0.5)
    assert not plain.neutral(scores).any()
    assert plain.positive(scores).tolist() == [bool(s >= F32(0.5)) for s in scores]


@pytest.mark.parametrize("text", ["0.65,0.35", "0.5", "a,b", "-0.1,0.5", "0.2,1.5", "0.4,0.4", "nan,1"])
def test_neutral_band_parse_rejects_bad_bands(text):
    with pytest.raises(ValueError, match="LOW"):
        parse_neutral_band(text)


def test_neutral_band_parse_accepts_the_full_range():
    assert parse_neutral_band(" 0 , 1 ") == (0.0, 1.0)
    assert parse_neutral_band("0.35,0.65") == BAND


def test_neutral_band_streaming_metrics_leave_neutral_rows_out_and_merge():
    scores = np.array([ROWS[t][0] for t in ROWS], dtype=np.float32)
    labels = np.array([ROWS[t][1] == "positive" for t in ROWS], dtype=np.int8)
    decided = np.array([EXPECTED[t] != "neutral" for t in ROWS])
    whole = StreamingMetrics(0.5, neutral_band=BAND)
    whole.update(labels, scores, np.ones(len(scores), bool))
    halves = [StreamingMetrics(0.5, neutral_band=BAND) for _ in range(2)]
    halves[0].update(labels[:3], scores[:3], np.ones(3, bool))
    halves[1].update(labels[3:], scores[3:], np.ones(len(scores) - 3, bool))
    merged = halves[0].merge(halves[1])
    for acc in (whole, merged):
        result = acc.result()
        assert result["n"] == int(decided.sum()) and result["neutral"] == int((~decided).sum())
        positive = scores[decided] >= F32(0.5)
        assert result["accuracy"] == pytest.approx(np.mean(positive == labels[decided].astype(bool)))
        assert acc.n_neutral == 3 and acc.n_negative == 3 and acc.n_positive == 2
        assert sum(acc.histogram()["neutral_counts"]) == 3
        # calibration judges the probabilities of every labelled row, neutral ones included
        assert sum(b["n"] for b in result["reliability"]) == len(scores)
    with pytest.raises(ValueError, match="decision rules"):
        StreamingMetrics(0.5).merge(StreamingMetrics(0.5, neutral_band=BAND))


@pytest.fixture
def fixed_scores(monkeypatch):
    """The network scores each text of ROWS with its float32 score (words: 3 known per row)."""
    from review_scorer.model import sentiment

    def stream(self, items, texts_of, **kw):
        for item in items:
            texts = list(texts_of(item))
            status = np.array(["ok"] * len(texts), dtype=object)
            yield item, status, np.array([ROWS[t][0] for t in texts], dtype=np.float32), (3 * len(texts), 0)

    monkeypatch.setattr(sentiment.SentimentModel, "predict_stream", stream)


def _write(path):
    frame = pd.DataFrame([{"id": f"r{i}", "text": t, "label": label}
                          for i, (t, (_, label)) in enumerate(ROWS.items(), 1)])
    frame.to_csv(path, index=False)
    return frame


def _read(path, fmt):
    if fmt == "csv":
        return pd.read_csv(path, dtype=str, keep_default_na=False)
    if fmt == "xlsx":
        return pd.read_excel(path, dtype=str, keep_default_na=False)
    if fmt == "jsonl":
        return pd.read_json(path, lines=True, dtype=False)
    return pd.read_parquet(path)


def _score(src, out_dir, trained_model, monkeypatch, **kw):
    from review_scorer.scoring import score as score_module

    captured = []
    real = score_module.publish_report
    monkeypatch.setattr(score_module, "publish_report",
                        lambda r, *a, **kw: (captured.append(r), real(r, *a, **kw))[1])
    result = score_module.score_files([str(src)], model_dir=trained_model.model_dir, out_dir=out_dir,
                                      chunk_rows=3, max_report_rows=0, text_column="text",
                                      label_column="label", **kw)
    (f,) = result.files
    assert f.ok, f.error
    (report,) = captured
    return result, f, report


@pytest.mark.parametrize("fmt", ["csv", "xlsx", "jsonl", "parquet"])
def test_neutral_band_in_every_output_format(fmt, fixed_scores, trained_model, tmp_path, monkeypatch):
    frame = _write(tmp_path / "edge.csv")
    result, f, _ = _score(tmp_path / "edge.csv", tmp_path / "out", trained_model, monkeypatch,
                          neutral_band=BAND, fmt=fmt)
    out = _read(f.predictions_path, fmt)
    assert out["sentiment"].tolist() == [EXPECTED[t] for t in frame["text"]]
    assert (f.positive, f.negative, f.neutral) == (2, 3, 3)
    summary = result.to_dict()
    assert summary["neutral"] == 3 and summary["neutral_share"] == pytest.approx(3 / 8)
    assert summary["neutral_band"] == list(BAND) and summary["files"][0]["neutral"] == 3
    assert f.metrics["n"] == 5 and f.metrics["neutral"] == 3


def test_neutral_band_in_the_report(fixed_scores, trained_model, tmp_path, monkeypatch):
    frame = _write(tmp_path / "edge.csv")
    _, f, context = _score(tmp_path / "edge.csv", tmp_path / "out", trained_model, monkeypatch,
                           neutral_band=BAND)
    neutral = {t for t in frame["text"] if EXPECTED[t] == "neutral"}
    assert context.summary.neutral == 3 and context.summary.neutral_band == tuple(BAND)
    assert sum(context.score_histogram["neutral_counts"]) == 3
    highlights = context.highlights
    assert {r["text"] for r in highlights["positive"]} == {"positive at high edge", "positive clearly"}
    assert not neutral & {r["text"] for r in highlights["negative"]}
    assert {r["sentiment"] for r in highlights["uncertain"] if r["text"] in neutral} <= {"neutral"}
    html = f.report_path.read_text(encoding="utf-8")
    assert 'id="summary-neutral"' in html and "37.5%" in html  # 3 of 8 scored reviews
    assert "scores in [0.35, 0.65) are neutral" in html  # the histogram's description
    assert "3 called neutral left out" in html  # the headline's n
    assert '<option value="neutral">' in html


def test_neutral_band_report_table_marks_neutral_rows():
    from review_scorer.report.rows_view import _rows_payload

    rows = [{"row": 1, "id": None, "text": "meh", "sentiment": "neutral", "score": 0.5,
             "status": "ok", "label": "positive"}]
    payload, _ = _rows_payload(rows)
    assert payload["rows"][0][3] == 2  # report.js shows code 2 as "neutral", never a miss


def test_neutral_band_cli_validates_and_counts(trained_model, tmp_path):
    from click.testing import CliRunner

    from review_scorer.cli import cli

    src = tmp_path / "r.csv"
    texts = ["great fun film", "awful dull waste", "fine I guess", "--- ..."]  # the last: no words
    pd.DataFrame({"text": texts}).to_csv(src, index=False)
    runner = CliRunner()
    bad = runner.invoke(cli, ["score", str(src), "--model-dir", str(trained_model.model_dir),
                              "--out-dir", str(tmp_path / "o"), "--neutral-band", "0.7,0.3"])
    assert bad.exit_code == 2
    assert bad.output.strip().count("\n") == 0 and "--neutral-band" in bad.output
    ok = runner.invoke(cli, ["score", str(src), "--model-dir", str(trained_model.model_dir),
                             "--out-dir", str(tmp_path / "o"), "--neutral-band", "0,1", "--json"])
    assert ok.exit_code == 0, ok.output
    summary = json.loads(ok.output)
    # the band [0, 1) holds every score below 1: every scored review is neutral
    assert summary["neutral"] == summary["scored"] == 3 and summary["neutral_band"] == [0.0, 1.0]
    out = pd.read_csv(summary["files"][0]["predictions"], dtype=str, keep_default_na=False)
    assert out["sentiment"].tolist() == ["neutral"] * 3 + [""]


def test_neutral_band_predict_frame(trained_model):
    from review_scorer import SentimentModel

    model = SentimentModel.load(trained_model.model_dir)
    frame = pd.DataFrame({"body": ["great fun film", "awful dull waste", None]})
    scores = model.predict(frame["body"].tolist())
    low = float(scores[0])  # a band starting exactly at the first review's score
    out = model.predict_frame(frame, "body", neutral_band=(low, min(1.0, low + 1e-3)))
    assert out.loc[0, "sentiment"] == "neutral" and out.loc[2, "sentiment"] == ""
    assert model.predict_frame(frame, "body").loc[0, "sentiment"] in ("positive", "negative")


def test_neutral_band_ray_parts_decide_as_the_local_engine():
    from review_scorer.io.reviews import ReviewChunk
    from review_scorer.scoring.engines import inputs, parts
    from review_scorer.scoring.kernel import prediction_frame, scored_chunk

    texts = list(ROWS)
    scores = np.array([ROWS[t][0] for t in texts], dtype=np.float32)
    frame = pd.DataFrame({"review": texts})
    read = ReviewChunk(frame, np.arange(1, len(texts) + 1), texts, np.ones(len(texts), np.int8))
    settings = parts.WriteSettings("unused", "parquet", 0.5, 0, 0, neutral_band=BAND)
    # as the ray stages do it: the model actor scores with the kernel, the writer writes and sums
    chunk = scored_chunk(read, np.array(["ok"] * len(texts), dtype=object), scores,
                         settings.rule, words=(40, 10))
    part = inputs.PartChunk("in.csv", {}, (None,) * 5, scored=chunk)
    out = prediction_frame(part.scored, part.rename, source=part.source)
    assert out["sentiment"].tolist() == [EXPECTED[t] for t in texts]
    summary = parts.summarise_chunk(0, part, settings)
    assert (summary.counts.positive, summary.counts.neutral) == (2, 3)
    assert summary.summaries.streaming.result()["neutral"] == 3
    assert summary.summaries.domain.unknown_words == 10 and summary.summaries.domain.words == 40
