"""The file's class mix, estimated from its unlabeled reviews, the Platt fit weighted to it, and
the no-trade shift used when the mix is unknown.

Split out of training/adapt.py: its guard judges fine-tuning at the file's estimated mix, and
the adapted model is calibrated to it. With balanced labels alone (no mix), both the fine-tuning
guard and the n-gram stack's (training/stack.py) move a candidate's decision bias with
dominance_shift, so it is no worse than the model it replaces on either class.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

from review_scorer.model.calibration import finite_logits as _logits

# The file's class mix is estimated from its unlabeled reviews only with at least this many of
# them, and only when the starting model separates the labeled classes this well (TPR - FPR).
MIN_UNLABELED_FOR_MIX = 100
MIN_SEPARATION_FOR_MIX = 0.2
MIX_RANGE = (0.02, 0.98)
MIX_METHOD = "EM"  # ClassMix.method when the unlabeled reviews gave the mix
EM_STEPS = 500
MIX_BOOTSTRAPS = 40
# Labels this far from balanced (with at least this many of them) are taken for a random sample
# of the file, so their share is its mix: a hand-picked set is balanced, or near it. A user who
# labels 200 random airline tweets gets about 150 negative and 50 positive ones.
SKEWED_LABELS = 0.1
MIN_LABELS_FOR_SHARE = 50


@dataclass(frozen=True)
class ClassMix:
    """The share of positive reviews that the guard and the final model assume.

    From balanced labels alone, the file's mix is unknown (a hand-picked, balanced sample says
    nothing about it), so every labeled review counts once and the no-trade rule applies. Labels
    far from balanced are most likely a random sample of the file, so their share is its mix
    ("labels sample": no weights, but candidates are judged and refitted at it, no no-trade
    rule). When the file also holds reviews without a label, their mix is estimated by EM
    (Saerens, Latinne & Decaestecker 2002): the starting model's scores calibrated on the labeled
    reviews (in this domain, so its calibration elsewhere does not matter), then the share that
    the unlabeled reviews' posteriors imply (_em_mix).

    It replaced adjusted classify-and-count (Forman 2008; (q - FPR) / (TPR - FPR) from the share q
    called positive): on the development files' draws at 200 labels, the mean error of the mix
    used fell from 0.111 to 0.053 on tweets, 0.062 to 0.042 on clothing and 0.042 to 0.031 on
    fine food (benchmarks/adaptation_file_rows.py, RESULTS.md section adaptation_file_rows).
    """

    positive: float  # assumed share of positive reviews in the file
    labels_positive: float  # share of positive reviews among the labels
    unlabeled: int = 0
    method: str = "labels"  # "labels" (unknown) | "labels sample" | MIX_METHOD ("EM")
    note: str | None = None  # why the unlabeled reviews were not used, when they were not
    raw: float | None = None  # the EM estimate before it is drawn toward the labels' share
    standard_error: float | None = None  # of the EM estimate (bootstrap)

    @property
    def known(self) -> bool:
        """Whether the file's mix is known: estimated from its unlabeled reviews, or the share of
        labels that are far from balanced, so most likely a random sample of it."""
        return self.method != "labels"

    def weights(self, labels: np.ndarray) -> np.ndarray:
        """Per-label weights (mean 1) that make the labels count as if drawn at this mix."""
        labels = np.asarray(labels)
        if not self.known:
            return np.ones(len(labels))
        w = np.where(labels == 1, self.positive / self.labels_positive,
                     (1.0 - self.positive) / (1.0 - self.labels_positive))
        return w / w.mean()

    def meta(self) -> dict[str, Any]:
        return {"positive": round(self.positive, 4), "labels_positive": round(self.labels_positive, 4),
                "unlabeled": self.unlabeled, "method": self.method, "note": self.note,
                "em_estimate": None if self.raw is None else round(self.raw, 4),
                "standard_error": None if self.standard_error is None else round(self.standard_error, 4)}


def estimate_mix(start_scores: np.ndarray, labels: np.ndarray,
                 unlabeled_scores: np.ndarray | None) -> ClassMix:
    """ClassMix from the starting model's scores on the labeled and the unlabeled reviews."""
    labels = np.asarray(labels)
    share = float(np.mean(labels == 1))
    n = 0 if unlabeled_scores is None else len(unlabeled_scores)
    if n == 0:
        return _from_labels(share, len(labels), 0, None)
    if n < MIN_UNLABELED_FOR_MIX:
        return _from_labels(share, len(labels), n, f"{n} unlabeled reviews; estimating the class "
                                                   f"mix needs {MIN_UNLABELED_FOR_MIX}")
    called = np.asarray(start_scores) >= 0.5
    tpr, fpr = float(np.mean(called[labels == 1])), float(np.mean(called[labels == 0]))
    if tpr - fpr < MIN_SEPARATION_FOR_MIX:
        return _from_labels(share, len(labels), n, (
            f"the starting model separates your labels too weakly (TPR {tpr:.2f}, FPR {fpr:.2f}) "
            "to estimate the class mix"))
    raw, se = _em_mix(np.asarray(start_scores), labels, np.asarray(unlabeled_scores))
    # Few labels fit the calibration loosely (25 a class with 50 labels). The mix used is the one
    # nearest the labels' own share that lies within one standard error of the estimate, so a
    # noisy estimate cannot push the model to the edge (all reviews one class).
    positive = share if abs(raw - share) <= se else raw - np.sign(raw - share) * se
    return ClassMix(float(positive), share, n, method=MIX_METHOD, raw=raw, standard_error=se)


def prior_by_em(posteriors: np.ndarray, fitted_share: float) -> float:
    """The share of positives in a set of reviews whose posteriors were calibrated where the share
    was fitted_share: the fixed point of Saerens, Latinne & Decaestecker's (2002) EM, which
    re-weights every posterior to the current guess of the share and averages them."""
    post = np.clip(np.asarray(posteriors, dtype=np.float64), 1e-6, 1 - 1e-6)
    up, down = post / fitted_share, (1.0 - post) / (1.0 - fitted_share)
    share = fitted_share
    for _ in range(EM_STEPS):
        updated = float(np.mean(share * up / (share * up + (1.0 - share) * down)))
        if abs(updated - share) < 1e-7:
            return updated
        share = updated
    return share


def _em_mix(start: np.ndarray, labels: np.ndarray, unlabeled: np.ndarray) -> tuple[float, float]:
    """(EM estimate of the unlabeled reviews' share of positives, its bootstrap standard error).

    The starting model's scores are calibrated on the labels by a Platt fit (so the posteriors
    hold at the labels' share), then prior_by_em moves that share to the one the unlabeled
    reviews' posteriors imply. The error comes from MIX_BOOTSTRAPS resamples of the labels (each
    class resampled within itself) and of the unlabeled scores, refitting both steps."""
    def estimate(lab_rows: np.ndarray, unl_rows: np.ndarray) -> float:
        y = labels[lab_rows]
        ab = fit_platt(start[lab_rows], y, np.ones(len(y)))
        return float(np.clip(prior_by_em(_platt(unlabeled[unl_rows], ab), float(np.mean(y))),
                             *MIX_RANGE))

    rng = np.random.default_rng(0)
    by_class = [np.flatnonzero(labels == c) for c in (0, 1)]
    raw = estimate(np.arange(len(labels)), np.arange(len(unlabeled)))
    draws = [estimate(np.concatenate([rng.choice(rows, len(rows)) for rows in by_class]),
                      rng.choice(len(unlabeled), len(unlabeled))) for _ in range(MIX_BOOTSTRAPS)]
    return raw, float(np.std(draws))


def _from_labels(share: float, count: int, unlabeled: int, why: str | None) -> ClassMix:
    """The mix when the unlabeled reviews cannot give it: the labels' own share, taken as the
    file's when they are far from balanced (a random sample of it), else unknown."""
    if count >= MIN_LABELS_FOR_SHARE and abs(share - 0.5) > SKEWED_LABELS:
        taken = (f"your labels are {share:.0%} positive, far from balanced, so they are taken for "
                 "a random sample of your file; if they were picked otherwise, add the file's "
                 "other reviews with an empty label")
        return ClassMix(share, share, unlabeled, method="labels sample",
                        note=taken if why is None else f"{why}; {taken}")
    return ClassMix(share, share, unlabeled, note=why)


def fit_platt(scores: np.ndarray, labels: np.ndarray, weights: np.ndarray) -> tuple[float, float]:
    """(a, b) minimising the weighted log loss of sigmoid(a * logit(p) + b); a stays positive."""
    from sklearn.linear_model import LogisticRegression

    z = np.clip(_logits(scores), -30.0, 30.0).reshape(-1, 1)
    fit = LogisticRegression(C=1e4, max_iter=1000).fit(z, labels, sample_weight=weights)
    return max(float(fit.coef_[0, 0]), 0.05), float(fit.intercept_[0])


def _platt(scores: np.ndarray, ab: tuple[float, float]) -> np.ndarray:
    a, b = ab
    return 1.0 / (1.0 + np.exp(-(a * np.clip(_logits(scores), -30.0, 30.0) + b)))


SHIFT_LIMIT = 4.0  # logits


def dominance_shift(start: np.ndarray, candidate: np.ndarray, labels: np.ndarray) -> float | None:
    """The logit shift b, middle of the range where sigmoid(logit(candidate) + b) recalls at least
    as many positive and as many negative labels as `start` does; None when no b does both."""
    called = np.asarray(start) >= 0.5
    z = np.clip(_logits(candidate), -30.0, 30.0)
    pos, neg = np.sort(z[labels == 1])[::-1], np.sort(z[labels == 0])
    need_pos, need_neg = int(np.sum(called[labels == 1])), int(np.sum(~called[labels == 0]))
    # z + b >= 0 for the need_pos highest positives; z + b < 0 for the need_neg lowest negatives
    low = -pos[need_pos - 1] if need_pos else -np.inf
    high = -neg[need_neg - 1] if need_neg else np.inf
    if not low < high:
        return None
    low, high = max(low, -SHIFT_LIMIT), min(high, SHIFT_LIMIT)
    if not low < high:
        return None
    return float((low + high) / 2.0)
