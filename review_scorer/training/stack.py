"""Adapting by stacking: an n-gram model of the user's labels beside the network, and its guard.

After the fine-tuning guard (training/adapt.py) has chosen a network (the starting one or a
fine-tuned one), this tries a logistic regression on TF-IDF word 1-2 grams of the labels
(model/ngram_head.py) stacked on it, judged on the same cross-validation folds. On the
development files it beat fine-tuning alone from 100 labels on (benchmarks/adaptation_stack.py).

The stacker is tried with and without a third input, a lexicon score: VADER's valence lexicon
(vaderSentiment, MIT; Hutto & Gilbert 2014) mapped onto the model's vocabulary
(model/ngram_head.py). The inputs with the lower cross-fitted log loss are kept. In
benchmarks/adaptation.py (RESULTS.md sections adaptation and adaptation_before_lexicon, the same
draws) it lifted fine food from 89.3% to 90.1% at 200 labels and from 88.9% to 89.7% at 100, and
was chosen in all 11 fine-food runs that kept the stack, each of them better for it (+0.1 to
+3.0 points). On clothing and tweets it was chosen in 3 of 11 and 5 of 10 such runs, which moved
by -0.6 to +0.2 points.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from typing import Any

import numpy as np

STACK_C = 1.0  # inverse L2 strength of the stacker (two or three weights and a bias)
# Rows of the file without a label, which the starting network scores confidently once it is
# calibrated on the labels (|p - 0.5| >= PSEUDO_CONFIDENCE), join the n-gram model's training
# data with the network's call as their label and PSEUDO_WEIGHT times the labels' total weight
# between them; fewer than MIN_PSEUDO such rows are not used. Chosen on the development files at
# 200 labels (benchmarks/adaptation_file_rows.py, RESULTS.md section adaptation_file_rows).
PSEUDO_CONFIDENCE = 0.3
PSEUDO_WEIGHT = 3.0
MIN_PSEUDO = 100
# With the file's rows the n-gram regression learns from thousands of reviews, not a few hundred,
# and may need less L2 than NGRAM_C: its inverse strength is the one of these whose stack on the
# network has the lower cross-fitted log loss on the labels (at 200 labels the weaker L2 was
# chosen in all three clothing draws, +0.3 points there, and in one of three tweet draws).
FILE_ROWS_CS = (4.0, 16.0)


@dataclass
class FileRows:
    """The file's rows without a label (a seeded sample of them) and the starting model's scores,
    on them and on the labeled reviews, for the n-gram model's network-labelled examples.

    Self-training in the manner of co-training (Blum & Mitchell 1998): the network's confident
    calls on the user's own file teach the n-gram model the file's words (sizes, fabrics, flavours)
    that a few hundred labels never show, while the labels keep it honest. The network's
    calibration is refitted on each fold's training labels, so no held-out label shapes its own
    n-gram logit."""

    sequences: list
    scores: np.ndarray  # the starting model's scores on the unlabeled rows
    labeled_scores: np.ndarray  # and on the labeled reviews (in the order of the labels)

    def examples(self, rows: np.ndarray, labels: np.ndarray,
                 weights: np.ndarray) -> tuple[list, np.ndarray, np.ndarray]:
        """(sequences, network's labels, weights) of the confidently scored unlabeled rows, with
        the network calibrated on the labeled `rows`; empty when fewer than MIN_PSEUDO."""
        from review_scorer.training.class_mix import _platt, fit_platt

        ab = fit_platt(self.labeled_scores[rows], labels[rows], weights[rows])
        p = _platt(self.scores, ab)
        sure = np.flatnonzero(np.abs(p - 0.5) >= PSEUDO_CONFIDENCE)
        if len(sure) < MIN_PSEUDO:
            return [], np.zeros(0, np.int64), np.zeros(0)
        each = PSEUDO_WEIGHT * float(np.sum(weights[rows])) / len(sure)
        return ([self.sequences[i] for i in sure], (p[sure] >= 0.5).astype(np.int64),
                np.full(len(sure), each))


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
    note: str | None = None  # why it was not tried, or not kept without a comparison to show
    lexicon: bool = False  # whether the stacker's inputs include the lexicon score
    lexicon_loss: float | None = None  # cross-fitted log loss with the lexicon (None: not tried)
    ngram_only_loss: float | None = None  # and without it
    # labels alone: it got more labels right, but only by recalling fewer of one class
    traded: bool = False
    file_rows: int = 0  # unlabeled rows of the file in the final n-gram model's training data
    ngram_c: float | None = None  # the n-gram regression's inverse L2 strength, when chosen

    def meta(self) -> dict[str, Any]:
        return {"used": self.used, "cv_accuracy": round(self.accuracy, 6),
                "network_cv_accuracy": round(self.base_accuracy, 6),
                "cv_log_loss": round(self.loss, 6), "network_cv_log_loss": round(self.base_loss, 6),
                "note": self.note, "lexicon": self.lexicon, "traded_classes": self.traded,
                "cv_log_loss_with_lexicon": _rounded(self.lexicon_loss),
                "cv_log_loss_without_lexicon": _rounded(self.ngram_only_loss),
                "file_rows_in_ngram_model": self.file_rows, "ngram_c": self.ngram_c,
                **({"ngram_model": self.head.meta()} if self.used and self.head is not None else {})}


def _rounded(value: float | None) -> float | None:
    return None if value is None else round(value, 6)


def _cross_fitted(x: np.ndarray, labels: np.ndarray, w: np.ndarray, fold_of: np.ndarray) -> np.ndarray:
    """Each label's stacked score from a stacker fitted on the other folds."""
    from sklearn.linear_model import LogisticRegression

    stacked = np.zeros(len(labels))
    for f in np.unique(fold_of):
        train, held = fold_of != f, fold_of == f
        fit = LogisticRegression(C=STACK_C).fit(x[train], labels[train], sample_weight=w[train])
        stacked[held] = fit.predict_proba(x[held])[:, 1]
    return stacked


def _lexicon_input(seqs, lexicon) -> np.ndarray | None:
    """The labeled reviews' lexicon scores; None without a lexicon, or when it knows none of
    their words (a column of zeros would tell the stacker nothing)."""
    from review_scorer.model.ngram_head import lexicon_scores

    if lexicon is None:
        return None
    valence, negator, _ = lexicon
    scores = lexicon_scores(seqs, valence, negator)
    return scores if np.any(scores != 0) else None


def _no_trade(base: np.ndarray, stacked: np.ndarray, labels: np.ndarray,
              fold_of: np.ndarray) -> tuple[np.ndarray | None, float | None]:
    """Labels alone (the file's class mix unknown): (the stacked scores with each fold's decision
    bias moved by the no-trade shift fitted on the other folds, the shift fitted on all labels).
    Either is None when the labels allow no shift at which the stack recalls as many positive
    and as many negative labels as the network it sits on."""
    from review_scorer.training.class_mix import _platt, dominance_shift

    judged = np.empty(len(labels))
    for f in np.unique(fold_of):
        held = fold_of == f
        shift = dominance_shift(base[~held], stacked[~held], labels[~held])
        if shift is None:
            return None, None
        judged[held] = _platt(stacked[held], (1.0, shift))
    return judged, dominance_shift(base, stacked, labels)


def _fit_ngram(seqs: list, labels: np.ndarray, w: np.ndarray, rows: np.ndarray, vocab_size: int,
               file_rows: FileRows | None, cs: tuple[float, ...] | None = None):
    """The n-gram model of the labeled `rows`: unweighted on the labels alone (NGRAM_C), or,
    with the file's rows, weighted to the file's mix beside the network-labelled rows, one model
    per C in `cs` (default FILE_ROWS_CS) from one TF-IDF matrix. Returns (the models, how many
    unlabeled rows they learnt from)."""
    from review_scorer.model.ngram_head import NgramHead

    train = [seqs[i] for i in rows]
    if file_rows is None:
        return [NgramHead.fit(train, labels[rows], vocab_size=vocab_size)], 0
    extra, extra_labels, extra_w = file_rows.examples(rows, labels, w)
    return NgramHead.fit_each_c(train + extra, np.r_[labels[rows], extra_labels],
                                vocab_size=vocab_size, weights=np.r_[w[rows], extra_w],
                                cs=cs or FILE_ROWS_CS), len(extra)


def _ngram_oof(seqs: list, labels: np.ndarray, w: np.ndarray, fold_of: np.ndarray, vocab_size: int,
               file_rows: FileRows | None = None,
               cs: tuple[float, ...] | None = None) -> list[np.ndarray]:
    """Each label's n-gram logit from the n-gram model fitted on the other folds: one array, or,
    with the file's rows, one per C in `cs` (default FILE_ROWS_CS)."""
    ngram: list[np.ndarray] = []
    for f in np.unique(fold_of):
        train, held = np.flatnonzero(fold_of != f), np.flatnonzero(fold_of == f)
        heads, _ = _fit_ngram(seqs, labels, w, train, vocab_size, file_rows, cs)
        ngram = ngram or [np.zeros(len(labels)) for _ in heads]
        for out, head in zip(ngram, heads):
            out[held] = head.ngram_logits([seqs[i] for i in held])
    return ngram


def _ngram_input(seqs: list, labels: np.ndarray, w: np.ndarray, fold_of: np.ndarray,
                 vocab_size: int, file_rows: FileRows | None,
                 network_logit: np.ndarray) -> tuple[np.ndarray, float | None]:
    """(each label's out-of-fold n-gram logit, the regression's C: None for NGRAM_C). With the
    file's rows, C is the one of FILE_ROWS_CS whose cross-fitted stack on the network has the
    lower log loss."""
    from review_scorer.metrics import log_loss

    candidates = _ngram_oof(seqs, labels, w, fold_of, vocab_size, file_rows)
    if file_rows is None:
        return candidates[0], None
    losses = [log_loss(labels, _cross_fitted(np.c_[network_logit, ngram], labels, w, fold_of),
                       weights=w) for ngram in candidates]
    best = int(np.argmin(losses))
    return candidates[best], FILE_ROWS_CS[best]


def _final_head(seqs: list, labels: np.ndarray, w: np.ndarray, x: np.ndarray, vocab_size: int,
                lexicon, shift: float, file_rows: FileRows | None, c: float | None):
    """The n-gram model fitted on all labels (and the file's rows), with the stacker fitted on
    all out-of-fold inputs x (the lexicon's weight third when `lexicon` is given) and its bias
    moved by `shift`; and how many of the file's rows the n-gram model learnt from."""
    from sklearn.linear_model import LogisticRegression

    fit = LogisticRegression(C=STACK_C).fit(x, labels, sample_weight=w)
    heads, used_rows = _fit_ngram(seqs, labels, w, np.arange(len(labels)), vocab_size, file_rows,
                                  None if c is None else (c,))
    head = heads[0]
    head.alpha, head.beta = float(fit.coef_[0, 0]), float(fit.coef_[0, 1])
    head.bias = float(fit.intercept_[0]) + shift
    if lexicon is not None:
        head.gamma = float(fit.coef_[0, 2])
        head.valence, head.negator, head.lexicon_source = lexicon
    return head, used_rows


def _with_lexicon(x: np.ndarray, lexicon_scores: np.ndarray | None, labels: np.ndarray,
                  w: np.ndarray, fold_of: np.ndarray):
    """The stacker's inputs x, with the lexicon score as a third when that lowers the cross-fitted
    log loss: (inputs, cross-fitted scores, their loss, the loss without the lexicon, the loss
    with it or None when there is none to try)."""
    from review_scorer.metrics import log_loss

    stacked = _cross_fitted(x, labels, w, fold_of)
    loss = ngram_only_loss = log_loss(labels, stacked, weights=w)
    lexicon_loss = None
    if lexicon_scores is not None:  # it needs no fitting, so it is the same in every fold
        x3 = np.c_[x, lexicon_scores]
        stacked3 = _cross_fitted(x3, labels, w, fold_of)
        lexicon_loss = log_loss(labels, stacked3, weights=w)
        if lexicon_loss < loss:
            x, stacked, loss = x3, stacked3, lexicon_loss
    return x, stacked, loss, ngram_only_loss, lexicon_loss


def choose_stack(sequences, labels: np.ndarray, *, base_raw: np.ndarray, base_judged: np.ndarray,
                 base_loss: float, weights: np.ndarray, fold_of: np.ndarray, vocab_size: int,
                 min_per_class: int, lexicon: tuple[np.ndarray, np.ndarray, str] | None = None,
                 mix_known: bool = True, file_rows: FileRows | None = None) -> StackChoice:
    """Try an n-gram model of the labels stacked on a network whose out-of-fold scores are
    base_raw (as the network gives them) and base_judged (as the guard judged them); with
    `lexicon` (lexicon_arrays), also with the lexicon score as the stacker's third input.

    mix_known=False (labels alone): balanced labels say nothing about the file's mix, and a stack
    fitted to them can buy its gain with errors on a file mostly of one class (clothing, 100
    labels: -9.4 points). So its decision bias moves to where it recalls as many positive and
    negative labels as the network (cross-fitted), or it is not kept (`traded` if it won anyway).

    file_rows (given only when the file's mix was estimated from them): the file's unlabeled rows,
    whose confident network calls join the n-gram model's training data (FileRows)."""
    from review_scorer.metrics import log_loss
    from review_scorer.model.ngram_head import _logit

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
    ngram, ngram_c = _ngram_input(seqs, labels, w, fold_of, vocab_size, file_rows, _logit(base_raw))
    x, stacked, loss, ngram_only_loss, lexicon_loss = _with_lexicon(
        np.c_[_logit(base_raw), ngram], _lexicon_input(seqs, lexicon), labels, w, fold_of)
    with_lexicon = x.shape[1] == 3
    shift, allowed = 0.0, True
    if not mix_known:
        judged, shift = _no_trade(np.asarray(base_judged), stacked, labels, fold_of)
        allowed = judged is not None and shift is not None  # else no shift keeps both classes
        if allowed:
            stacked, loss = judged, log_loss(labels, judged, weights=w)
    accuracy = float(np.average((stacked >= 0.5) == labels, weights=w))
    # Lower log loss (a proper score: no shifted threshold can buy it) and no fewer labels right.
    # Weaker than fine-tuning's McNemar rule: the network's scores stay an input and the stacker
    # is 3-4 numbers fitted on held-out logits, so nothing the network knew is forgotten.
    used = bool(allowed and loss < base_loss and accuracy >= base_accuracy)
    note = None if allowed else ("with labels alone, no decision threshold let it recall as many "
                                 "positive and as many negative labels as the network does")
    head, used_rows = (_final_head(seqs, labels, w, x, vocab_size,
                                   lexicon if with_lexicon else None, shift, file_rows, ngram_c)
                       if used else (None, 0))
    return StackChoice(used, accuracy, base_accuracy, loss, base_loss, stacked, head, note=note,
                       lexicon=with_lexicon, lexicon_loss=lexicon_loss,
                       ngram_only_loss=ngram_only_loss,
                       traded=not allowed and accuracy > base_accuracy, file_rows=used_rows,
                       ngram_c=ngram_c)


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
