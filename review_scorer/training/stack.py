"""Adapting by stacking: an n-gram model of the user's labels beside the network, and its guard.

After the fine-tuning guard (training/adapt.py) has chosen a network (the starting one or a
fine-tuned one), this tries a logistic regression on TF-IDF word 1-2 grams of the labels
(model/ngram_head.py) stacked on it, judged on the same cross-validation folds. On the
development files it beat fine-tuning alone from 100 labels on (benchmarks/adaptation_stack.py).
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from typing import Any

import numpy as np

STACK_C = 1.0  # inverse L2 strength of the stacker (two weights and a bias)


@dataclass
class StackChoice:
    """The guard's verdict on stacking an n-gram model of the labels on the chosen network.

    The n-gram model's out-of-fold logits come from the cross-validation folds; the stacker
    (a logistic regression on the network's logit and the n-gram logit, each label weighted to
    the file's class mix) is itself cross-fitted over the same folds, and the stack is kept only
    if, against the network it would sit on, it lowers the log loss without getting fewer
    labels right. `head` is the n-gram model fitted on all labels, with the stacker fitted on
    all out-of-fold logits (weights on the network's uncalibrated logit)."""

    used: bool
    accuracy: float  # weighted accuracy of the cross-fitted stack
    base_accuracy: float  # of the network it would sit on, as the guard judged it
    loss: float
    base_loss: float
    oof: np.ndarray = field(repr=False)  # cross-fitted stacked scores
    head: Any = field(default=None, repr=False)
    note: str | None = None  # why it was not tried

    def meta(self) -> dict[str, Any]:
        return {"used": self.used, "cv_accuracy": round(self.accuracy, 6),
                "network_cv_accuracy": round(self.base_accuracy, 6),
                "cv_log_loss": round(self.loss, 6), "network_cv_log_loss": round(self.base_loss, 6),
                "note": self.note,
                **({"ngram_model": self.head.meta()} if self.used and self.head is not None else {})}


def choose_stack(sequences, labels: np.ndarray, *, base_raw: np.ndarray, base_judged: np.ndarray,
                 base_loss: float, weights: np.ndarray, fold_of: np.ndarray, vocab_size: int,
                 min_per_class: int) -> StackChoice:
    """Try an n-gram model of the labels stacked on a network whose out-of-fold scores are
    base_raw (as the network gives them) and base_judged (as the guard judged them)."""
    from sklearn.linear_model import LogisticRegression

    from review_scorer.metrics import log_loss
    from review_scorer.model.ngram_head import NgramHead, _logit

    w = np.asarray(weights, dtype=np.float64)
    base_accuracy = float(np.average((base_judged >= 0.5) == labels, weights=w))

    def skipped(note: str) -> StackChoice:
        return StackChoice(False, base_accuracy, base_accuracy, base_loss, base_loss,
                           np.asarray(base_judged), note=note)

    folds = np.unique(fold_of)
    smaller = int(min(np.sum(labels == 0), np.sum(labels == 1)))
    if smaller < min_per_class:
        return skipped(f"{smaller} labels in the smaller class; an n-gram model of your labels "
                       f"is tried from {min_per_class} of each")
    if any(len(np.unique(labels[fold_of != f])) < 2 for f in folds):
        return skipped("a fold's other labels hold only one class")
    seqs = list(sequences)
    ngram = np.zeros(len(labels))
    for f in folds:
        train, held = np.flatnonzero(fold_of != f), np.flatnonzero(fold_of == f)
        head = NgramHead.fit([seqs[i] for i in train], labels[train], vocab_size=vocab_size)
        ngram[held] = head.ngram_logits([seqs[i] for i in held])
    x = np.c_[_logit(base_raw), ngram]
    stacked = np.zeros(len(labels))
    for f in folds:
        train, held = fold_of != f, fold_of == f
        fit = LogisticRegression(C=STACK_C).fit(x[train], labels[train], sample_weight=w[train])
        stacked[held] = fit.predict_proba(x[held])[:, 1]
    loss = log_loss(labels, stacked, weights=w)
    accuracy = float(np.average((stacked >= 0.5) == labels, weights=w))
    # Lower log loss (a proper score, so it cannot be bought with a shifted threshold) and no
    # fewer labels right. Weaker than fine-tuning's McNemar rule: the stack keeps the network's
    # scores as one of its two inputs and its own weights are three numbers fitted on held-out
    # logits, so it cannot forget what the network knew (benchmarks/adaptation_stack.py).
    used = bool(loss < base_loss and accuracy >= base_accuracy)
    head = None
    if used:
        fit = LogisticRegression(C=STACK_C).fit(x, labels, sample_weight=w)
        head = NgramHead.fit(seqs, labels, vocab_size=vocab_size)
        head.alpha, head.beta = float(fit.coef_[0, 0]), float(fit.coef_[0, 1])
        head.bias = float(fit.intercept_[0])
    return StackChoice(used, accuracy, base_accuracy, loss, base_loss, stacked, head)


def scoring_head(stack: StackChoice | None, calibration: dict):
    """The stack's n-gram head with its weights moved from the network's uncalibrated logit z
    to the calibrated one the saved model gives: zc = (z + shift) / temperature, so
    alpha * z + bias = alpha * temperature * zc + (bias - alpha * shift)."""
    if stack is None or not stack.used or stack.head is None:
        return None
    head = dataclasses.replace(stack.head)
    temperature = float(calibration.get("temperature", 1.0))
    shift = float(calibration.get("bias_shift", 0.0))
    head.alpha, head.bias = stack.head.alpha * temperature, stack.head.bias - stack.head.alpha * shift
    return head
