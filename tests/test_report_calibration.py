"""Calibration in the reports (reliability diagrams, ECE) and the model named wherever it scores."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest

from review_scorer.model.calibration import expected_calibration_error, reliability_bins
from review_scorer.report import plots


def test_report_calibration_diagram_svg_describes_every_filled_bin():
    rng = np.random.default_rng(1)
    scores = rng.random(400)
    labels = (rng.random(400) < scores).astype(int)
    bins = reliability_bins(scores, labels)
    svg = plots.reliability_diagram_svg(bins, "This file", ece=0.0421)
    assert svg.startswith("<svg") and 'role="img"' in svg
    assert "ECE 0.042" in svg and "400 labelled reviews" in svg
    for b in bins:
        assert f"{b['low']:.1f}-{b['high']:.1f}: {b['n']:,} reviews" in svg
    # an empty table draws nothing rather than an empty frame
    assert plots.reliability_diagram_svg(reliability_bins(np.array([]), np.array([])), "x") is None


def test_report_calibration_training_stores_and_shows_validation_bins(trained_model):
    meta = json.loads((trained_model.model_dir / "meta.json").read_text(encoding="utf-8"))
    calibration = meta["calibration"]
    bins = calibration["validation_bins"]
    assert len(bins) == 10 and sum(b["n"] for b in bins) == calibration["n"]
    html = (trained_model.model_dir / "report.html").read_text(encoding="utf-8")
    assert 'id="model-calibration"' in html and "Reliability diagram, Validation" in html
    assert f"{calibration['validation_ece_before']:.3f}" in html
    assert f"{calibration['validation_ece_after']:.3f}" in html


def test_report_calibration_of_a_labelled_file(trained_model, tmp_path):
    from review_scorer.scoring.score import score_files

    rng = np.random.default_rng(2)
    words = ["great", "awful", "wonderful", "boring", "brilliant", "dull", "fun", "waste"]
    texts = [" ".join(rng.choice(words, size=8)) for _ in range(120)]
    labels = rng.choice(["pos", "neg"], size=120)
    pd.DataFrame({"review": texts, "label": labels}).to_csv(tmp_path / "l.csv", index=False)
    (f,) = score_files([str(tmp_path / "l.csv")], model_dir=trained_model.model_dir,
                       out_dir=tmp_path / "o", chunk_rows=25).files
    assert f.ok, f.error
    out = pd.read_csv(f.predictions_path)
    y = (out["label"] == "pos").to_numpy().astype(int)
    # the file's ECE, from bin sums accumulated chunk by chunk, equals one pass over its rows
    assert f.metrics["ece"] == pytest.approx(expected_calibration_error(out["score"], y), abs=1e-5)
    assert [b["n"] for b in f.metrics["reliability"]] == [
        b["n"] for b in reliability_bins(out["score"].to_numpy(), y)]
    html = f.report_path.read_text(encoding="utf-8")
    assert 'id="file-reliability"' in html and "Reliability diagram, This file" in html
    assert "ECE (calibration)" in html  # the metrics table compares it with the test set's


def test_report_calibration_unlabelled_file_has_no_file_diagram(trained_model, tmp_path):
    from review_scorer.scoring.score import score_files

    pd.DataFrame({"review": ["great fun", "awful waste"] * 5}).to_csv(tmp_path / "u.csv", index=False)
    (f,) = score_files([str(tmp_path / "u.csv")], model_dir=trained_model.model_dir,
                       out_dir=tmp_path / "o").files
    assert f.metrics is None
    assert 'id="file-reliability"' not in f.report_path.read_text(encoding="utf-8")


def test_report_names_the_adapted_model_and_its_start(model_dir_copy, tmp_path):
    from click.testing import CliRunner

    from review_scorer.cli import cli

    meta_path = model_dir_copy / "meta.json"
    meta = json.loads(meta_path.read_text(encoding="utf-8"))
    meta.update(name="shop-lstm", adaptation={"start_model": "imdb-lstm"})
    meta_path.write_text(json.dumps(meta), encoding="utf-8")
    pd.DataFrame({"review": ["great fun", "awful waste"]}).to_csv(tmp_path / "r.csv", index=False)
    args = ["score", str(tmp_path / "r.csv"), "--model-dir", str(model_dir_copy)]
    runner = CliRunner()
    plain = runner.invoke(cli, [*args, "--out-dir", str(tmp_path / "a")])
    assert plain.exit_code == 0, plain.output
    assert plain.output.splitlines()[0].startswith("model: shop-lstm (adapted from imdb-lstm) (")
    as_json = runner.invoke(cli, [*args, "--out-dir", str(tmp_path / "b"), "--json"])
    model = json.loads(as_json.output)["model"]
    assert (model["name"], model["adapted_from"]) == ("shop-lstm", "imdb-lstm")
    html = (tmp_path / "a" / "r.html").read_text(encoding="utf-8")
    assert 'id="header-model">model shop-lstm (adapted from imdb-lstm)' in html
    assert 'id="summary-model">shop-lstm (adapted from imdb-lstm)' in html
