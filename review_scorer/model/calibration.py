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
# Below this many held-out scores a fitted temperature would follow noise: the model keeps T = 1.
MIN_CALIBRATION_ROWS = 50


def logits(probabilities: np.ndarray) -> np.ndarray:
    """log(p / (1 - p)) in float64, +-inf at exactly 1 and 0."""
    p = np.asarray(probabilities, dtype=np.float64)
    with np.errstate(divide="ignore"):
        return np.log(p) - np.log1p(-p)


def finite_logits(probabilities: np.ndarray) -> np.ndarray:
    """logits of the probabilities clipped to [1e-6, 1 - 1e-6]: finite for every score."""
    return logits(np.clip(np.asarray(probabilities, dtype=np.float64), 1e-6, 1 - 1e-6))


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


def reliability_sums(probabilities: np.ndarray, labels: np.ndarray,
                     bins: int = ECE_BINS) -> np.ndarray:
    """[count, score sum, positive labels] per equal-width bin (a 3 x bins float64 array).

    Sums add up, so chunks and partitions accumulate them apart and merge by addition.
    """
    p = np.asarray(probabilities, dtype=np.float64).reshape(-1)
    y = np.asarray(labels, dtype=np.float64).reshape(-1)
    keep = ~np.isnan(p)
    p, y = p[keep], y[keep]
    index = np.clip((p * bins).astype(np.int64), 0, bins - 1)
    return np.stack([np.bincount(index, minlength=bins).astype(np.float64),
                     np.bincount(index, weights=p, minlength=bins),
                     np.bincount(index, weights=y, minlength=bins)])


def bins_from_sums(counts: np.ndarray, score_sums: np.ndarray, positive_sums: np.ndarray) -> list[dict]:
    """The reliability table of reliability_sums' three rows."""
    bins = len(counts)
    out = []
    for b in range(bins):
        n = int(counts[b])
        out.append({"low": b / bins, "high": (b + 1) / bins, "n": n,
                    "mean_score": float(score_sums[b] / n) if n else None,
                    "positive_share": float(positive_sums[b] / n) if n else None})
    return out


def ece_of_bins(table: list[dict]) -> float | None:
    """ECE of a reliability table: the count-weighted mean |share positive - mean prediction|."""
    total = sum(row["n"] for row in table)
    if not total:
        return None
    return float(sum(row["n"] * abs(row["positive_share"] - row["mean_score"])
                     for row in table if row["n"]) / total)


def reliability_bins(probabilities: np.ndarray, labels: np.ndarray,
                     bins: int = ECE_BINS) -> list[dict]:
    """Per equal-width bin of predicted probability: count, mean prediction, share positive."""
    return bins_from_sums(*reliability_sums(probabilities, labels, bins))


def expected_calibration_error(probabilities: np.ndarray, labels: np.ndarray,
                               bins: int = ECE_BINS) -> float | None:
    """ECE: the count-weighted mean |share positive - mean prediction| over equal-width bins."""
    return ece_of_bins(reliability_bins(probabilities, labels, bins))


def calibration_meta(validation_scores: np.ndarray, validation_labels: np.ndarray) -> dict:
    """Fit the temperature on validation and record what it did there (meta.json); with fewer
    than MIN_CALIBRATION_ROWS held-out scores the temperature stays 1 and the reason is noted."""
    n = int(np.sum(~np.isnan(np.asarray(validation_scores, dtype=np.float64))))
    if n < MIN_CALIBRATION_ROWS:
        ece = expected_calibration_error(validation_scores, validation_labels)
        return {"method": "none", "temperature": 1.0, "n": n,
                "reason": f"{n} held-out scores; calibrating needs {MIN_CALIBRATION_ROWS}",
                "validation_ece_before": ece, "validation_ece_after": ece,
                "validation_bins": reliability_bins(validation_scores, validation_labels)}
    temperature = fit_temperature(validation_scores, validation_labels)
    calibrated = apply_temperature(np.asarray(validation_scores, dtype=np.float64), temperature)
    return {
        "method": "temperature", "temperature": round(temperature, 6), "fitted_on": "validation",
        "n": n,
        "validation_ece_before": expected_calibration_error(validation_scores, validation_labels),
        "validation_ece_after": expected_calibration_error(calibrated, validation_labels),
        # the reliability diagram of the training report: the calibrated scores on validation
        "validation_bins": reliability_bins(calibrated, validation_labels),
    }
