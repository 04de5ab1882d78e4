"""Adapt a trained model to a user's own few hundred labels, and never silently make it worse.

The starting model (the shipped one, or --from-model) keeps its vocabulary; its network is
fine-tuned on the user's labels with a low learning rate, the layers below the head at a
fraction of it (discriminative rates, Howard & Ruder 2018), for a few epochs. How many epochs,
zero included, is chosen by k-fold cross-validation on the user's labels: every fold starts from
the starting model, is fine-tuned on the other folds and scored on its own after each epoch, so
the starting model (epoch 0) and every adapted candidate are measured on exactly the same
held-out labels, and each label is held out once (no single lucky split). The final model is
fine-tuned on all labels for the chosen number of epochs; when no epoch beats the starting
model, the result is the starting model itself, recalibrated, and the verdict says so. The
out-of-fold scores of the chosen epoch also fit the final model's temperature.
"""

from __future__ import annotations

import dataclasses
import logging
import time
import weakref
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from review_scorer.model.calibration import finite_logits as _logits
from review_scorer.model.lexicon import lexicon_arrays
from review_scorer.training.class_mix import (  # noqa: F401 (the class mix's names, re-exported)
    MIN_SEPARATION_FOR_MIX,
    MIN_UNLABELED_FOR_MIX,
    MIX_METHOD,
    MIX_RANGE,
    SHIFT_LIMIT,
    ClassMix,
    _platt,
    dominance_shift,
    estimate_mix,
    fit_platt,
)
from review_scorer.training.stack import FileRows, StackChoice, choose_stack, scoring_head

log = logging.getLogger(__name__)

MAX_EPOCHS = 6
FINE_TUNE_LR = 1e-3
LOWER_LAYERS_LR_SHARE = 0.3
FEW_LABELS_PER_CLASS = 50
BATCH_SIZE = 16


@dataclass
class AdaptationResult:
    """What cross-validation measured, and the final model's weights."""

    folds: int
    labels: int
    per_class: dict[str, int]
    epochs: int  # chosen; 0 means the starting model's weights were kept
    start_metrics: dict[str, Any]
    adapted_metrics: dict[str, Any]
    epoch_loss: list[float]  # mean out-of-fold log loss after 0..MAX_EPOCHS epochs
    epoch_accuracy: list[float]
    seconds: float
    verdict: str
    advice: str | None
    weights: list[np.ndarray] | None = None
    # The chosen epoch's out-of-fold scores and their labels (they fit the temperature).
    oof_scores: np.ndarray | None = field(default=None, repr=False)
    oof_labels: np.ndarray | None = field(default=None, repr=False)
    schedule: Schedule | None = None
    mix: ClassMix | None = None
    # per candidate (0 = the starting weights): out-of-fold recall on positive and on negative labels
    class_recalls: list[tuple[float, float]] | None = field(default=None, repr=False)
    # (a, b): the final model's scores are sigmoid(a * logit + b), refitted to the file's mix
    platt: tuple[float, float] | None = None
    stack: StackChoice | None = None  # the n-gram model of the labels, tried on the same folds
    without_words: int = 0  # labeled texts left out because they hold no word at all

    def meta(self, start_name: str) -> dict[str, Any]:
        return {"start_model": start_name, "labels": self.labels, "per_class": self.per_class,
                "folds": self.folds, "epochs": self.epochs,
                "class_mix": self.mix.meta() if self.mix is not None else None,
                "mix_refit": None if self.platt is None else {"a": round(self.platt[0], 6),
                                                              "b": round(self.platt[1], 6)},
                "schedule": dataclasses.asdict(self.schedule or Schedule()),
                "start_metrics": self.start_metrics, "adapted_metrics": self.adapted_metrics,
                "epoch_loss": self.epoch_loss, "epoch_accuracy": self.epoch_accuracy,
                "ngram_stack": self.stack.meta() if self.stack is not None else None,
                "seconds": round(self.seconds, 1), "verdict": self.verdict, "advice": self.advice}


def folds_for(n: int) -> int:
    """5 folds below 500 labels (a stable estimate), 3 above (time), never more than n/4."""
    return max(2, min(5 if n < 500 else 3, n // 4))


@dataclass(frozen=True)
class Schedule:
    """How fine-tuning runs: epochs tried, learning rate, the lower layers' share of it, batch."""

    max_epochs: int = MAX_EPOCHS
    learning_rate: float = FINE_TUNE_LR
    lower_layers_share: float = LOWER_LAYERS_LR_SHARE
    batch_size: int = BATCH_SIZE
    # A round ("epoch" in the curves) is one pass over the labels, but at least this many
    # steps: with 50 labels a pass is 3 steps, too few for the learning rate to move anything.
    min_steps: int = 25
    # Keep the starting model's view of how common each class is: after fine-tuning, the output
    # bias moves so that the mean logit over the user's texts is the starting model's again. A
    # hand-picked (often balanced) set of labels says little about the class mix of the file to
    # score; what fine-tuning should learn is which reviews are which.
    keep_prior: bool = True

    def steps(self, n: int) -> int:
        return max(self.min_steps, -(-n // self.batch_size))


def adaptation_config(start):
    """The starting model's config as fine-tuning uses it: one network, no adversarial pass and
    no entropy term (model/adversarial.py), which the schedule was not chosen with (the pass
    doubles the time)."""
    return start.config.replace(ensemble_size=1, adversarial_eps=0.0, entropy_weight=0.0)


def _trainable_copy(start, config, schedule: Schedule):
    """A float32, trainable network with the starting model's weights."""
    from review_scorer.model.network import build_model, compile_classifier

    network = build_model(config, len(start.vocab), name="adapted")
    network.set_weights([np.asarray(w, dtype=np.float32) for w in start.keras_model.get_weights()])
    if getattr(start, "lexicon", None) is not None or getattr(start, "clauses", None) is not None:
        _START_TERMS[network] = (getattr(start, "lexicon", None), getattr(start, "clauses", None))
    compile_classifier(network, config.replace(learning_rate=schedule.learning_rate, ema_momentum=0.0),
                       encoder_multiplier=schedule.lower_layers_share)
    return network


_REUSED: weakref.WeakKeyDictionary = weakref.WeakKeyDictionary()  # start -> {key: (network, state)}


def _fresh_copy(start, config, schedule: Schedule):
    """What _trainable_copy would return now (call keras.utils.set_random_seed first), made by
    resetting one network kept per starting model, config and schedule: the start's weights,
    the dropout seeds a new copy would draw, a new optimizer's state. Keras traces a network's
    training step on its first fit, and retracing it for every fold's new copy took most of a
    small adaptation's time. The caller uses the network until its next call."""
    copy = _trainable_copy(start, config, schedule)  # cheap: built and compiled, never traced
    kept = _REUSED.setdefault(start, {})
    key = (config, schedule)
    if key not in kept:
        copy.optimizer.build(copy.trainable_variables)
        kept[key] = (copy, [np.array(v) for v in copy.optimizer.variables])
        return copy
    network, optimizer_start = kept[key]
    for target, value in zip(network.variables, copy.variables, strict=True):
        target.assign(value)  # weights and dropout seed states
    for target, value in zip(network.optimizer.variables, optimizer_start, strict=True):
        target.assign(value)
    return network


_TRACED: weakref.WeakKeyDictionary = weakref.WeakKeyDictionary()  # network -> its traced scorer
# network -> the starting model's (lexicon term, clause rules) (model/lexicon.py, model/clauses.py):
# the adapted model keeps both, so every candidate, the starting weights included, is judged with
# its short reviews' clauses composed and the term added to its logit.
_START_TERMS: weakref.WeakKeyDictionary = weakref.WeakKeyDictionary()


def _scores(network, sequences) -> np.ndarray:
    """The network's scores, through its traced inference function (network.compile_inference:
    the fast CPU path, or traced Keras), made once per network. Both read the weights as they
    are at each call, so a network being fine-tuned is scored as it stands. Calling the Keras
    model eagerly instead took 60% of a 1,000-label adaptation (117 of 191 s, fine food)."""
    from review_scorer.model.network import compile_inference
    from review_scorer.text.batching import length_bucketed_batches, pad_batch

    if network not in _TRACED:
        _TRACED[network] = compile_inference(network)
    infer = _TRACED[network]

    def raw(seqs) -> np.ndarray:
        lengths = np.array([len(s) for s in seqs])
        out = np.empty(len(seqs), dtype=np.float64)
        for batch in length_bucketed_batches(lengths, 256):
            out[batch] = np.asarray(infer(pad_batch([seqs[i] for i in batch]))).reshape(-1)
        return out

    out = raw(sequences)
    lexicon, clauses = _START_TERMS.get(network, (None, None))
    if clauses is not None:
        out = clauses.compose(out, sequences, raw).astype(np.float64)
    return out if lexicon is None else lexicon.apply(out, sequences).astype(np.float64)


def _fold_curve(start, config, schedule, sequences, labels, train_idx, held_idx,
                seed) -> list[np.ndarray]:
    """Held-out scores after 0..max_epochs epochs of fine-tuning on train_idx."""
    import keras

    from review_scorer.training.train import _dataset

    keras.utils.set_random_seed(seed)
    network = _fresh_copy(start, config, schedule)
    held = [sequences[i] for i in held_idx]
    curve = [_scores(network, held)]
    train = [sequences[i] for i in train_idx]
    start_logit = _mean_logit(network, train) if schedule.keep_prior else None
    data = _dataset(train, labels[train_idx].astype(np.float32),
                    schedule.batch_size, seed=seed).repeat()
    for _ in range(schedule.max_epochs):
        network.fit(data, epochs=1, steps_per_epoch=schedule.steps(len(train_idx)), verbose=0,
                    shuffle=False)
        shift = 0.0 if start_logit is None else start_logit - _mean_logit(network, train)
        curve.append(_shifted(_scores(network, held), shift))
    return curve


def _mean_logit(network, sequences) -> float:
    return float(np.mean(_logits(_scores(network, sequences))))


def _shifted(p: np.ndarray, shift: float) -> np.ndarray:
    return p if shift == 0.0 else 1.0 / (1.0 + np.exp(-(_logits(p) + shift)))


def keep_start_prior(network, start_logit: float, sequences) -> float:
    """Move the output layer's bias so the network's mean logit over `sequences` is
    start_logit again; returns the shift applied."""
    shift = start_logit - _mean_logit(network, sequences)
    _shift_output_bias(network, shift)
    return shift


def _metrics(labels: np.ndarray, scores: np.ndarray,
             weights: np.ndarray | None = None) -> dict[str, Any]:
    """Metrics on the labels as they are; with class-mix weights, also the accuracy the file's
    estimated mix implies ("mix_accuracy")."""
    from review_scorer.metrics import binary_metrics, log_loss

    out = binary_metrics(labels, scores, threshold=0.5, loss=log_loss(labels, scores))
    if weights is not None and not np.allclose(weights, 1.0):
        out["mix_accuracy"] = float(np.average((np.asarray(scores) >= 0.5) == labels, weights=weights))
    return out


def cross_validate(start, config, schedule, sequences, labels, *, seed: int, progress=None):
    """Out-of-fold scores [epochs + 1, n] for every epoch count, the number of folds, and each
    label's fold."""
    k = folds_for(len(labels))
    fold_of = stratified_folds(labels, k, seed)
    oof = np.zeros((schedule.max_epochs + 1, len(labels)))
    for fold in range(k):
        held, train = np.flatnonzero(fold_of == fold), np.flatnonzero(fold_of != fold)
        if progress is not None:
            progress(f"fold {fold + 1} of {k}: fine-tuning on {len(train):,} labels, "
                     f"scoring {len(held):,}")
        for epoch, scores in enumerate(_fold_curve(start, config, schedule, sequences, labels,
                                                   train, held, seed + fold)):
            oof[epoch, held] = scores
    return oof, k, fold_of


def stratified_folds(labels: np.ndarray, k: int, seed: int) -> np.ndarray:
    """Each label's fold, 0..k-1: each class dealt round-robin over the folds in a seeded order."""
    order = np.random.default_rng(seed).permutation(len(labels))
    fold_of = np.empty(len(labels), dtype=np.int64)
    for cls in (0, 1):
        members = order[labels[order] == cls]
        fold_of[members] = np.arange(len(members)) % k
    return fold_of


def adapt(start, texts: list[str], labels: np.ndarray, *, seed: int = 1337, progress=None,
          schedule: Schedule | None = None, unlabeled: list[str] | None = None) -> AdaptationResult:
    """Cross-validate fine-tuning of `start` (a SentimentModel) on texts/labels, then fine-tune
    on all of them for the chosen number of epochs (zero: keep the starting weights).

    `unlabeled`: reviews of the same file without a label. They are never trained on; they only
    tell the guard and the final model how common each class is in the file (ClassMix)."""
    started = time.perf_counter()
    labels = np.asarray(labels, dtype=np.int64)
    sequences = start.encode(texts)
    keep = np.array([len(s) > 0 for s in sequences])
    sequences = [s for s, k in zip(sequences, keep) if k]
    labels = labels[keep]
    per_class = {"negative": int((labels == 0).sum()), "positive": int((labels == 1).sum())}
    config = adaptation_config(start)
    schedule = schedule or Schedule()
    oof, k, fold_of = cross_validate(start, config, schedule, sequences, labels, seed=seed,
                                     progress=progress)
    file_rows = _file_rows(start, unlabeled, sequences, seed)
    mix = estimate_mix(oof[0] if file_rows is None else file_rows.labeled_scores, labels,
                       None if file_rows is None else file_rows.scores)
    choice = choose_epochs(oof, labels, mix, schedule.max_epochs, folds=fold_of)
    weights = None
    if choice.epochs:
        weights = _fine_tune_all(start, config, schedule, sequences, labels, choice.epochs,
                                 seed=seed, progress=progress)
    start_m = _metrics(labels, oof[0], choice.weights)
    adapted_m = _metrics(labels, oof[0] if choice.chosen is None else choice.scores[choice.chosen],
                         choice.weights)
    if progress is not None:
        progress("trying an n-gram model of your labels beside the network, on the same folds")
    stack = choose_stack(
        sequences, labels, base_raw=oof[choice.epochs],
        base_judged=oof[0] if choice.chosen is None else choice.judged[choice.chosen],
        base_loss=choice.start_loss if choice.chosen is None else choice.losses[choice.chosen],
        weights=choice.weights, fold_of=fold_of, vocab_size=len(start.vocab),
        min_per_class=FEW_LABELS_PER_CLASS, lexicon=lexicon_arrays(start.vocab.tokens),
        mix_known=mix.known, file_rows=file_rows if mix.method == MIX_METHOD else None)
    if stack.used:
        adapted_m = _metrics(labels, stack.oof, choice.weights)
    verdict, advice = _verdict(per_class, choice.chosen, choice.epochs, start_m, adapted_m,
                               max(choice.accuracies[1:]), mix, stack, traded=_traded(choice, mix, stack))
    return AdaptationResult(k, len(labels), per_class, choice.epochs, start_m, adapted_m,
                            choice.losses, choice.accuracies, time.perf_counter() - started,
                            verdict, advice, weights, oof[choice.epochs], labels, schedule,
                            mix=mix, platt=None if choice.chosen is None else choice.platt[choice.chosen],
                            class_recalls=[_recalls(labels, row) for row in [oof[0], *choice.scores[1:]]],
                            stack=stack, without_words=int(np.sum(~keep)))


def _traded(choice: EpochChoice, mix: ClassMix, stack: StackChoice | None) -> bool:
    """With labels alone: whether a fine-tuned candidate or the n-gram stack got more labels
    right than the starting model but was refused for recalling fewer reviews of one class."""
    if mix.known:
        return False
    refused = [e for e in range(1, len(choice.platt)) if choice.platt[e] is None]
    return (any(choice.accuracies[e] > choice.accuracies[0] for e in refused)
            or bool(stack is not None and stack.traded))


def _recalls(labels: np.ndarray, scores: np.ndarray) -> tuple[float, float]:
    called = np.asarray(scores) >= 0.5
    return float(np.mean(called[labels == 1])), float(np.mean(~called[labels == 0]))


MAX_UNLABELED_SCORED = 5000  # a random sample of this many estimates the mix within about 1 point


def _file_rows(start, unlabeled: list[str] | None, labeled_sequences: list,
               seed: int) -> FileRows | None:
    """The starting model's scores on (a seeded sample of) the unlabeled reviews and on the
    labeled ones, both as the model gives them (calibrated, so on one scale), with the unlabeled
    reviews' word ids; None without unlabeled reviews that hold a known word."""
    if not unlabeled:
        return None
    texts = list(unlabeled)
    if len(texts) > MAX_UNLABELED_SCORED:
        picked = np.random.default_rng(seed).choice(len(texts), MAX_UNLABELED_SCORED, replace=False)
        texts = [texts[i] for i in np.sort(picked)]
    sequences = start.encode(texts)
    rows = [i for i, s in enumerate(sequences) if len(s)]
    if not rows:
        return None
    scores = np.asarray(start.predict_ids([sequences[i] for i in rows]), dtype=np.float64)
    labeled = np.asarray(start.predict_ids(labeled_sequences), dtype=np.float64)
    return FileRows([sequences[i] for i in rows], scores, labeled)


@dataclass
class EpochChoice:
    """The guard's decision over candidates 0..max_epochs (0 = the starting weights)."""

    chosen: int | None  # index into scores; None: the starting model unchanged
    epochs: int  # fine-tuning epochs of the chosen candidate (0 when none or the recalibrated start)
    scores: list[np.ndarray]  # out-of-fold scores per candidate, as the final model would give them
    platt: list[tuple[float, float] | None]  # per candidate: (a, b) refitted to the class mix
    losses: list[float]  # weighted log loss per candidate
    accuracies: list[float]  # weighted accuracy per candidate
    weights: np.ndarray
    # the cross-fitted scores each candidate was judged by, and the starting model's log loss
    judged: list[np.ndarray] | None = None
    start_loss: float | None = None


def choose_epochs(oof: np.ndarray, labels: np.ndarray, mix: ClassMix, max_epochs: int,
                  folds: np.ndarray | None = None) -> EpochChoice:
    """The guard. A candidate counts only if, on the same held-out labels, it is right more often
    than the starting model beyond what chance explains (a one-sided McNemar test) and its log
    loss is lower; among those the lowest log loss wins.

    With the file's class mix estimated from its unlabeled reviews, the labels are weighted to
    that mix and every candidate (the starting weights included) is refitted to it:
    sigmoid(a * logit + b), by weighted logistic regression on its out-of-fold scores.

    With labels alone the file's mix is unknown, so a candidate may not buy its gain on one class
    with losses on the other: its decision bias is moved to the middle of the range where it
    recalls at least as many positive AND as many negative labels as the starting model (then it
    is no worse at any class mix); a candidate with no such range is not kept.

    Either adjustment is fitted to the labels it is then judged on, which flatters it with few
    labels; so the guard judges cross-fitted scores (each fold adjusted by a fit on the other
    folds, `folds`), and the saved model gets the fit on all labels."""
    w = mix.weights(labels)
    folds = stratified_folds(labels, max(2, min(5, len(labels) // 4)), 0) if folds is None else folds
    platt: list[tuple[float, float] | None] = [None] * (max_epochs + 1)
    scores = [np.asarray(row, dtype=np.float64) for row in oof]
    judged = list(scores)
    first = 0 if mix.known else 1
    for e in range(first, max_epochs + 1):
        fit = _mix_fitter(mix, oof[0], oof[e], labels, w)
        platt[e] = fit(np.ones(len(labels), dtype=bool))
        if platt[e] is None:
            continue
        scores[e] = _platt(oof[e], platt[e])
        judged[e] = _cross_fitted(oof[e], folds, fit)
    from review_scorer.metrics import log_loss

    losses = [log_loss(labels, row, weights=w) for row in judged]
    if mix.known:  # the baseline: the starting model as it is, after its own temperature
        from review_scorer.model.calibration import apply_temperature, fit_temperature

        start_loss = log_loss(labels, apply_temperature(oof[0], fit_temperature(oof[0], labels)), weights=w)
    else:
        start_loss = losses[0]
    accuracies = [float(np.average((row >= 0.5) == labels, weights=w)) for row in judged]
    candidates = [e for e in range(first, max_epochs + 1)
                  if (mix.known or platt[e] is not None)
                  and clearly_better(oof[0], judged[e], labels, w) and losses[e] < start_loss]
    chosen = min(candidates, key=lambda e: losses[e]) if candidates else None
    return EpochChoice(chosen, chosen or 0, scores, platt, losses, accuracies, w, judged, start_loss)


def _mix_fitter(mix: ClassMix, start: np.ndarray, candidate: np.ndarray, labels: np.ndarray,
                w: np.ndarray):
    """fit(rows) -> (a, b) for the candidate, fitted on those rows only (None: no such fit)."""
    def fit(rows: np.ndarray) -> tuple[float, float] | None:
        if mix.known:
            return fit_platt(candidate[rows], labels[rows], w[rows])
        shift = dominance_shift(start[rows], candidate[rows], labels[rows])
        return None if shift is None else (1.0, shift)
    return fit


def _cross_fitted(candidate: np.ndarray, folds: np.ndarray, fit) -> np.ndarray:
    """The candidate's scores with each fold adjusted by the fit on the other folds (a fold whose
    fit fails keeps the candidate's own scores)."""
    out = np.asarray(candidate, dtype=np.float64).copy()
    for fold in np.unique(folds):
        held = folds == fold
        ab = fit(~held)
        if ab is not None:
            out[held] = _platt(candidate[held], ab)
    return out


def _fine_tune_all(start, config, schedule, sequences, labels, epochs, *, seed, progress):
    import keras

    from review_scorer.training.train import _dataset

    if progress is not None:
        progress(f"fine-tuning on all {len(labels):,} labels for {epochs} epoch(s)")
    keras.utils.set_random_seed(seed)
    network = _fresh_copy(start, config, schedule)
    start_logit = _mean_logit(network, sequences) if schedule.keep_prior else None
    data = _dataset(sequences, labels.astype(np.float32), schedule.batch_size, seed=seed)
    network.fit(data.repeat(), epochs=epochs, steps_per_epoch=schedule.steps(len(labels)),
                verbose=0, shuffle=False)
    if start_logit is not None:
        keep_start_prior(network, start_logit, sequences)
    return network.get_weights()


GUARD_Z = 1.645  # one-sided 5%


def clearly_better(before: np.ndarray, after: np.ndarray, labels: np.ndarray,
                   weights: np.ndarray | None = None) -> bool:
    """True when `after` fixes more held-out labels than it breaks, beyond chance: McNemar's
    test on the discordant pairs, (fixed - broken) > GUARD_Z * sqrt(fixed + broken), with each
    label counted at its weight (the sum of squared weights in the square root)."""
    w = np.ones(len(labels)) if weights is None else np.asarray(weights, dtype=np.float64)
    right_before, right_after = (before >= 0.5) == labels, (after >= 0.5) == labels
    fixed, broken = right_after & ~right_before, right_before & ~right_after
    net = float(w[fixed].sum() - w[broken].sum())
    return net > GUARD_Z * np.sqrt(float(np.sum(w[fixed | broken] ** 2)))


def _verdict(per_class: dict[str, int], chosen: int | None, epochs: int, start: dict,
             adapted: dict, adapted_best: float = 0.0, mix: ClassMix | None = None,
             stack: StackChoice | None = None, traded: bool = False):
    smaller = min(per_class.values())
    key = "mix_accuracy" if "mix_accuracy" in start else "accuracy"
    measured = ("cross-validated accuracy" if key == "accuracy" else
                f"cross-validated accuracy at your file's estimated mix ({mix.positive:.0%} positive)")
    gain = adapted[key] - start[key]
    if stack is not None and stack.used:
        network = ("the starting network" if chosen is None or epochs == 0 else
                   f"the network fine-tuned for {epochs} epoch(s)")
        inputs = " and a sentiment lexicon" if stack.lexicon else ""
        rows = (f" (and of {stack.file_rows:,} rows of your file the network scored confidently)"
                if stack.file_rows else "")
        verdict = (f"adapted: an n-gram model of your labels{rows}{inputs} stacked on {network}: {measured} "
                   f"{adapted[key]:.1%} against {start[key]:.1%} for the starting model "
                   f"({gain:+.1%})")
    elif chosen is None:
        verdict = (f"fine-tuning did not clearly beat the starting model on your labels "
                   f"({measured} {start[key]:.1%}, best adapted "
                   f"{max(adapted_best, start[key]):.1%}); the saved model keeps the "
                   "starting model's weights, recalibrated on your labels")
    elif epochs == 0:
        verdict = (f"recalibrated to your file's class mix without fine-tuning: {measured} "
                   f"{adapted[key]:.1%} against {start[key]:.1%} for the starting model ({gain:+.1%})")
    else:
        verdict = (f"adapted: {measured} {adapted[key]:.1%} against "
                   f"{start[key]:.1%} for the starting model ({gain:+.1%})")
    kept = chosen is not None or (stack is not None and stack.used)
    if stack is not None and not stack.used and stack.note is None:
        verdict += (f"; an n-gram model of your labels beside the network did not help either "
                     f"({stack.accuracy:.1%} against {stack.base_accuracy:.1%}, cross-validated)")
    if traded and not kept:
        verdict += ("; with labels alone, what got more of them right did so only by recalling "
                    "fewer reviews of one class than the starting model, which loses accuracy on "
                    "a file that is mostly that class, so it was not kept")
    return verdict, _advice(smaller, kept, traded, mix)


def _advice(smaller: int, kept: bool, traded: bool, mix: ClassMix | None) -> str | None:
    """What to do next, after the verdict (None when nothing needs saying)."""
    if smaller < FEW_LABELS_PER_CLASS:
        return (f"only {smaller} labels in the smaller class: label at least "
                f"{FEW_LABELS_PER_CLASS} reviews of each class for a dependable adaptation")
    if traded and not kept:
        return ("add the file's other reviews to the training file with an empty label: they "
                "are not trained on, but they show how common each class is, so the adapter "
                "can judge at your file's mix; or label more reviews")
    if not kept:
        return ("label more reviews (a few hundred of each class), or score with the starting "
                "model as it is")
    return mix.note if mix is not None and mix.note else None


def adapted_model(start, result: AdaptationResult, *, name: str):
    """The SentimentModel to save: the fine-tuned (or starting) weights, exported for scoring."""
    from review_scorer.model.calibration import calibration_meta
    from review_scorer.model.network import build_model, export_model
    from review_scorer.model.sentiment import SentimentModel

    config = adaptation_config(start)
    network = build_model(config, len(start.vocab), name="adapted")
    source = result.weights if result.weights is not None else start.keras_model.get_weights()
    network.set_weights([np.asarray(w, dtype=np.float32) for w in source])
    uncalibrated = np.asarray(result.oof_scores, dtype=np.float64)
    if result.platt is not None and result.mix is not None and result.mix.known:
        calibration = _fold_platt(network, result, uncalibrated)
    elif result.platt is not None:  # labels alone: the dominance shift, then a temperature
        _shift_output_bias(network, result.platt[1])
        calibration = {**calibration_meta(_platt(uncalibrated, result.platt), result.oof_labels),
                       "bias_shift": round(result.platt[1], 6),
                       "fitted_on": "out-of-fold scores on the user's labels"}
    else:
        # Calibrate on the chosen epoch's out-of-fold scores: held-out scores of the same recipe.
        calibration = {**calibration_meta(uncalibrated, result.oof_labels),
                       "fitted_on": "out-of-fold scores on the user's labels"}
    model = SentimentModel(export_model(network), start.vocab, config, name=name,
                           ngram_head=scoring_head(result.stack, calibration),
                           lexicon=getattr(start, "lexicon", None),
                           clauses=getattr(start, "clauses", None))
    model.meta = {"calibration": calibration}
    return model


def _shift_output_bias(network, shift: float) -> None:
    head = network.get_layer("sentiment")
    kernel, bias = head.get_weights()
    head.set_weights([kernel, bias + np.float32(shift)])


def _fold_platt(network, result: AdaptationResult, uncalibrated: np.ndarray) -> dict:
    """sigmoid(a * z + b) = sigmoid((z + b / a) / (1 / a)): b / a goes into the output bias and
    1 / a becomes the temperature, so scoring needs nothing new."""
    from review_scorer.model.calibration import expected_calibration_error, reliability_bins

    a, b = result.platt
    _shift_output_bias(network, b / a)
    labels = result.oof_labels
    refit = _platt(uncalibrated, result.platt)
    return {"method": "temperature and class mix", "temperature": round(1.0 / a, 6),
            "bias_shift": round(b / a, 6), "n": len(labels),
            "fitted_on": "out-of-fold scores on the user's labels, weighted to the file's "
                         f"estimated class mix ({result.mix.positive:.0%} positive)",
            "validation_ece_before": expected_calibration_error(uncalibrated, labels),
            "validation_ece_after": expected_calibration_error(refit, labels),
            "validation_bins": reliability_bins(refit, labels)}


def run_adaptation(*, data_source: str, model_dir, start_dir=None, overwrite: bool = False,
                   text_column: str | None = None, label_column: str | None = None,
                   seed: int = 1337, progress=None, write_report: bool = True, name: str | None = None,
                   report_paths: bool = False):
    """`train --data FILE`: adapt the starting model to FILE's labels and save a model directory.

    Returns a train.TrainResult whose test metrics are the adapted model's cross-validated ones
    and whose `adaptation` holds both models' numbers on the same held-out labels.
    """
    from pathlib import Path

    from review_scorer.errors import InputError
    from review_scorer.io import load_labeled
    from review_scorer.model.artifacts import REPORT_FILE, check_target
    from review_scorer.model.sentiment import SentimentModel
    from review_scorer.training.train import TrainResult, describe_device

    model_dir = check_target(model_dir, overwrite=overwrite)
    start = SentimentModel.load(start_dir)
    reviews = load_labeled(data_source, text_column=text_column, label_column=label_column,
                           keep_unlabeled=True)
    check_labeled_words(data_source, reviews.texts, reviews.labels)
    counts = np.bincount(np.asarray(reviews.labels, dtype=np.int64), minlength=2)
    if counts.min() < 4:
        raise InputError(f"{data_source}: {counts.min()} review(s) in the smaller class; "
                         "fine-tuning needs at least 4 of each (better 50 or more)")
    if reviews.unlabeled and progress is not None:
        progress(f"{len(reviews.unlabeled):,} rows without a label: used only to estimate how "
                 "common each class is in the file")
    result = adapt(start, list(reviews.texts), reviews.labels, seed=seed, progress=progress,
                   unlabeled=list(reviews.unlabeled))
    model = adapted_model(start, result, name=name or Path(model_dir).name)
    # Rounds 1..N of fine-tuning; round 0, the starting model, is in meta["adaptation"].
    model.history = {"val_loss": result.epoch_loss[1:], "val_accuracy": result.epoch_accuracy[1:]}
    model.metrics = {**result.adapted_metrics, "kind": "cross-validated on the training file"}
    model.meta = {**_adaptation_meta(model, start, reviews, result, describe_device()),
                  "calibration": model.meta["calibration"]}
    report_html = None
    if write_report:
        from review_scorer.report.model_section import build_train_report
        from review_scorer.report.render import build_report_html

        report_html = build_report_html(build_train_report(model, path=model_dir,
                                                           full_paths=report_paths))
    model.save(model_dir, overwrite=overwrite, report_html=report_html)
    model.path = model_dir
    sizes = {"train": result.labels, "validation": 0, "test": 0}
    return TrainResult(
        model_dir=model_dir, config=model.config, history=model.history, best_epoch=result.epochs,
        epochs_run=result.epochs, test_metrics=model.metrics, sizes=sizes,
        train_seconds=result.seconds, device=model.meta["device"],
        validation_metrics=result.start_metrics, data_source=reviews.source,
        report_path=model_dir / REPORT_FILE if report_html is not None else None, model=model,
        adaptation=model.meta["adaptation"],
        notes=[n for n in [reviews.left_out_note(result.without_words)] if n],
    )


def check_labeled_words(source, texts, labels) -> None:
    """InputError, before any fine-tuning, when no review (or none of one class) has a word left
    after cleaning: there would be nothing to adapt to or to measure."""
    from review_scorer.errors import InputError
    from review_scorer.text.cleaning import clean_text

    has_words = np.array([bool(clean_text(t)) for t in texts], dtype=bool)
    if not has_words.any():
        raise InputError(f"no review in {source} has any words (nothing is left once markup and "
                         "punctuation are removed); check the text column")
    labels = np.asarray(labels)
    for label, name in ((1, "positive"), (0, "negative")):
        if not np.any(labels == label):
            raise InputError(f"{source} has no {name} labels, so the model cannot be adapted to or "
                             f"measured on that class; label some {name} reviews too (at least 50 "
                             "of each class)")
        if not np.any(has_words & (labels == label)):
            raise InputError(f"no {name} review in {source} has any words, so the model cannot "
                             "be adapted to or measured on that class; add labeled reviews with text")


def _adaptation_meta(model, start, reviews, result: AdaptationResult, device: str) -> dict:
    import datetime as _dt
    import platform

    import keras
    import tensorflow as tf

    from review_scorer import __version__
    from review_scorer.scoring.domain import unknown_rate_meta

    start_name = start.name
    # the file's own unknown-word rate, so scoring a file like it does not call it out of domain
    own = unknown_rate_meta(start.encode(list(reviews.texts) + list(reviews.unlabeled or [])),
                            "the reviews the model was adapted to")
    return {
        "name": model.name,
        "created_at": _dt.datetime.now().astimezone().isoformat(timespec="seconds"),
        "data_source": reviews.source, "data_fingerprint": reviews.fingerprint, "limit": None,
        "embedding_init": {"method": "starting model", "model": start_name},
        "pretrained_encoder": None, "distillation": None,
        "adaptation": result.meta(start_name),
        "validation_split": f"{result.folds}-fold cross-validation on the training file",
        "validation_metrics": result.adapted_metrics, "seed": model.config.seed,
        "sizes": {"train": result.labels, "validation": 0, "test": 0},
        "epochs_run": result.epochs, "ensemble_size": 1, "best_epoch": result.epochs or None,
        "train_seconds": round(result.seconds, 2), "device": device,
        "unknown_word_rate": own,
        "lexicon_term": None if model.lexicon is None else model.lexicon.meta(),  # the start's
        "clause_rules": None if model.clauses is None else model.clauses.meta(),  # the start's
        "versions": {"review_scorer": __version__, "tensorflow": tf.__version__,
                     "keras": keras.__version__, "python": platform.python_version(),
                     "numpy": np.__version__},
    }
