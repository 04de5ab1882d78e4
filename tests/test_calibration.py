"""Temperature scaling, ECE and the calibrated scores a model gives."""

from __future__ import annotations

import numpy as np
import pytest

from review_scorer.model.calibration import (
    apply_temperature,
    calibration_meta,
    expected_calibration_error,
    fit_temperature,
    reliability_bins,
)


def _sigmoid(z):
    return 1.0 / (1.0 + np.exp(-z))


@pytest.mark.parametrize("true_temperature", [0.5, 1.0, 2.5])
def test_calibration_fit_temperature_recovers_known_scale(true_temperature):
    # Labels drawn from sigmoid(z); the network reports sigmoid(z * T), i.e. a logit T times too
    # large, so dividing by T is the calibration.
    rng = np.random.default_rng(0)
    z = rng.normal(0.0, 2.0, size=40000)
    labels = (rng.random(z.shape) < _sigmoid(z)).astype(int)
    reported = _sigmoid(z * true_temperature)
    fitted = fit_temperature(reported, labels)
    assert fitted == pytest.approx(true_temperature, rel=0.05)
    before = expected_calibration_error(reported, labels)
    after = expected_calibration_error(apply_temperature(reported, fitted), labels)
    assert after < 0.02
    if true_temperature != 1.0:
        assert before > 2 * after


def test_calibration_temperature_keeps_decisions_and_dtype():
    p = np.array([0.01, 0.3, 0.5, 0.7, 0.999, np.nan], dtype=np.float32)
    out = apply_temperature(p, 2.0)
    assert out.dtype == np.float32
    assert np.isnan(out[-1])
    assert np.array_equal(out[:-1] >= 0.5, p[:-1] >= 0.5)
    assert out[0] > p[0] and out[4] < p[4]  # less sure at both ends
    assert apply_temperature(p, 1.0) is p


def test_calibration_one_class_leaves_temperature_at_one():
    assert fit_temperature(np.array([0.2, 0.9]), np.array([1, 1])) == 1.0


def test_calibration_reliability_bins_and_ece_by_hand():
    p = np.array([0.05, 0.15, 0.95, 0.95])
    y = np.array([0, 1, 1, 0])
    bins = reliability_bins(p, y)
    assert [b["n"] for b in bins] == [1, 1, 0, 0, 0, 0, 0, 0, 0, 2]
    # |0 - 0.05| * 1 + |1 - 0.15| * 1 + |0.5 - 0.95| * 2, over 4 rows
    assert expected_calibration_error(p, y) == pytest.approx((0.05 + 0.85 + 0.9) / 4)


def test_calibration_meta_records_before_and_after():
    rng = np.random.default_rng(1)
    z = rng.normal(0.0, 2.0, size=5000)
    labels = (rng.random(z.shape) < _sigmoid(z)).astype(int)
    meta = calibration_meta(_sigmoid(3 * z), labels)
    assert meta["method"] == "temperature" and meta["n"] == 5000
    assert meta["validation_ece_after"] < meta["validation_ece_before"]


def test_calibration_model_applies_its_temperature(trained_model):
    """A model's predict and its explanations use the temperature in its meta.json."""
    from review_scorer.explain.attribution import Explainer
    from review_scorer.model.sentiment import SentimentModel

    model = SentimentModel.load(trained_model.model_dir)
    # The tiny model's validation slice is too small to calibrate on: it says so and keeps T = 1.
    assert model.meta["calibration"]["method"] == "none"
    assert model.temperature == 1.0
    texts = ["a wonderful film", "a dreadful film", "it was fine"]
    base = model.predict(texts)
    model.meta = {**model.meta, "calibration": {"method": "temperature", "temperature": 0.25}}
    sharper = model.predict(texts)
    np.testing.assert_allclose(sharper, apply_temperature(base, 0.25 / model_temperature(trained_model)),
                               rtol=1e-4, atol=1e-6)
    explained = Explainer(model).explain(texts)
    np.testing.assert_allclose([a.score for a in explained], sharper, rtol=1e-4, atol=1e-6)


def model_temperature(trained_model) -> float:
    return float(trained_model.model.meta["calibration"]["temperature"])


def test_calibration_too_few_rows_keep_temperature_one():
    meta = calibration_meta(np.array([0.9, 0.1, 0.8]), np.array([1, 0, 0]))
    assert meta["method"] == "none" and meta["temperature"] == 1.0 and "3 held-out" in meta["reason"]
