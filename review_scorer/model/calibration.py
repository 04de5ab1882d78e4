"""Calibrated probabilities: a temperature fitted on validation data, ECE and reliability bins.

A network trained with dropout, weight averaging and soft targets ranks reviews well but its
probabilities are often too sure or too timid. Temperature scaling (Guo et al. 2017, "On
Calibration of Modern Neural Networks") divides the logit by one number T fitted to minimise the
log loss on held-out data: the decision at 0.5 and the ranking are unchanged, only the
confidence moves. The temperature is stored in meta.json and applied wherever the model scores.
"""

from __future__ import annotations

import numpy as np

ECE_BINS = 10
TEMPERATURE_RANGE = (0.05, 20.0)


def logits(probabilities: np.ndarray) -> np.ndarray:
    """log(p / (1 - p)) in float64, +-inf at exactly 1 and 0."""
    p = np.asarray(probabilities, dtype=np.float64)
    with np.errstate(divide="ignore"):
        return np.log(p) - np.log1p(-p)


def apply_temperature(probabilities: np.ndarray, temperature: float) -> np.ndarray:
    """sigmoid(logit(p) / T), in the input's dtype (float32 stays float32); NaN stays NaN."""
    p = np.asarray(probabilities)
    if temperature == 1.0:
        return p
    z = logits(p) / temperature
    with np.errstate(over="ignore"):
        out = 1.0 / (1.0 + np.exp(-z))
    return out.astype(p.dtype if p.dtype.kind == "f" else np.float64)


def _log_loss(z: np.ndarray, y: np.ndarray) -> float:
    # log(1 + exp(-z)) for positives, log(1 + exp(z)) for negatives, computed stably.
    signed = np.where(y == 1, z, -z)
    return float(np.mean(np.logaddexp(0.0, -signed)))


def fit_temperature(probabilities: np.ndarray, labels: np.ndarray) -> float:
    """The T in TEMPERATURE_RANGE that minimises the log loss of sigmoid(logit(p) / T).

    A golden-section search over log T (the loss is convex in 1/T, so unimodal in log T).
    Rows with a NaN score are ignored; with fewer than two classes T stays 1.
    """
    p = np.asarray(probabilities, dtype=np.float64)
    y = np.asarray(labels)
    keep = ~np.isnan(p)
    p, y = p[keep], y[keep]
    if len(np.unique(y)) < 2:
        return 1.0
    z = np.clip(logits(p), -40.0, 40.0)
    lo, hi = np.log(TEMPERATURE_RANGE[0]), np.log(TEMPERATURE_RANGE[1])
    ratio = (np.sqrt(5.0) - 1.0) / 2.0
    a, b = hi - ratio * (hi - lo), lo + ratio * (hi - lo)
    fa, fb = _log_loss(z / np.exp(a), y), _log_loss(z / np.exp(b), y)
    for _ in range(80):
        if fa < fb:
            hi, b, fb = b, a, fa
            a = hi - ratio * (hi - lo)
            fa = _log_loss(z / np.exp(a), y)
        else:
            lo, a, fa = a, b, fb
            b = lo + ratio * (hi - lo)
            fb = _log_loss(z / np.exp(b), y)
    return float(np.exp((lo + hi) / 2.0))


def reliability_bins(probabilities: np.ndarray, labels: np.ndarray,
                     bins: int = ECE_BINS) -> list[dict]:
    """Per equal-width bin of predicted probability: count, mean prediction, share positive."""
    p = np.asarray(probabilities, dtype=np.float64)
    y = np.asarray(labels, dtype=np.float64)
    keep = ~np.isnan(p)
    p, y = p[keep], y[keep]
    index = np.minimum((p * bins).astype(np.int64), bins - 1)
    out = []
    for b in range(bins):
        mask = index == b
        n = int(mask.sum())
        out.append({"low": b / bins, "high": (b + 1) / bins, "n": n,
                    "mean_score": float(p[mask].mean()) if n else None,
                    "positive_share": float(y[mask].mean()) if n else None})
    return out


def expected_calibration_error(probabilities: np.ndarray, labels: np.ndarray,
                               bins: int = ECE_BINS) -> float | None:
    """ECE: the count-weighted mean |share positive - mean prediction| over equal-width bins."""
    table = reliability_bins(probabilities, labels, bins)
    total = sum(row["n"] for row in table)
    if not total:
        return None
    return float(sum(row["n"] * abs(row["positive_share"] - row["mean_score"])
                     for row in table if row["n"]) / total)


def calibration_meta(validation_scores: np.ndarray, validation_labels: np.ndarray) -> dict:
    """Fit the temperature on validation and record what it did there (meta.json)."""
    temperature = fit_temperature(validation_scores, validation_labels)
    calibrated = apply_temperature(np.asarray(validation_scores, dtype=np.float64), temperature)
    return {
        "method": "temperature", "temperature": round(temperature, 6), "fitted_on": "validation",
        "n": int(np.sum(~np.isnan(np.asarray(validation_scores, dtype=np.float64)))),
        "validation_ece_before": expected_calibration_error(validation_scores, validation_labels),
        "validation_ece_after": expected_calibration_error(calibrated, validation_labels),
    }
