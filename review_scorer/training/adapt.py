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
from dataclasses import dataclass, field
from typing import Any

import numpy as np

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

    def meta(self, start_name: str) -> dict[str, Any]:
        return {"start_model": start_name, "labels": self.labels, "per_class": self.per_class,
                "folds": self.folds, "epochs": self.epochs,
                "schedule": dataclasses.asdict(self.schedule or Schedule()),
                "start_metrics": self.start_metrics, "adapted_metrics": self.adapted_metrics,
                "epoch_loss": self.epoch_loss, "epoch_accuracy": self.epoch_accuracy,
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


def _trainable_copy(start, config, schedule: Schedule):
    """A float32, trainable network with the starting model's weights."""
    from review_scorer.model.network import build_model, compile_classifier

    network = build_model(config, len(start.vocab), name="adapted")
    network.set_weights([np.asarray(w, dtype=np.float32) for w in start.keras_model.get_weights()])
    compile_classifier(network, config.replace(learning_rate=schedule.learning_rate, ema_momentum=0.0),
                       encoder_multiplier=schedule.lower_layers_share)
    return network


def _scores(network, sequences) -> np.ndarray:
    from review_scorer.text.batching import length_bucketed_batches, pad_batch

    lengths = np.array([len(s) for s in sequences])
    out = np.empty(len(sequences), dtype=np.float64)
    for batch in length_bucketed_batches(lengths, 256):
        out[batch] = np.asarray(network(pad_batch([sequences[i] for i in batch]),
                                        training=False)).reshape(-1)
    return out


def _fold_curve(start, config, schedule, sequences, labels, train_idx, held_idx,
                seed) -> list[np.ndarray]:
    """Held-out scores after 0..max_epochs epochs of fine-tuning on train_idx."""
    import keras

    from review_scorer.training.train import _dataset

    keras.utils.set_random_seed(seed)
    network = _trainable_copy(start, config, schedule)
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


def _logits(p: np.ndarray) -> np.ndarray:
    p = np.clip(np.asarray(p, dtype=np.float64), 1e-6, 1 - 1e-6)
    return np.log(p) - np.log1p(-p)


def _mean_logit(network, sequences) -> float:
    return float(np.mean(_logits(_scores(network, sequences))))


def _shifted(p: np.ndarray, shift: float) -> np.ndarray:
    return p if shift == 0.0 else 1.0 / (1.0 + np.exp(-(_logits(p) + shift)))


def keep_start_prior(network, start_logit: float, sequences) -> float:
    """Move the output layer's bias so the network's mean logit over `sequences` is
    start_logit again; returns the shift applied."""
    shift = start_logit - _mean_logit(network, sequences)
    head = network.get_layer("sentiment")
    kernel, bias = head.get_weights()
    head.set_weights([kernel, bias + np.float32(shift)])
    return shift


def _metrics(labels: np.ndarray, scores: np.ndarray) -> dict[str, Any]:
    from review_scorer.metrics import binary_metrics, log_loss

    return binary_metrics(labels, scores, threshold=0.5, loss=log_loss(labels, scores))


def cross_validate(start, config, schedule, sequences, labels, *, seed: int, progress=None):
    """Out-of-fold scores [epochs + 1, n] for every epoch count, and the folds used."""
    n = len(labels)
    k = folds_for(n)
    order = np.random.default_rng(seed).permutation(n)
    fold_of = np.empty(n, dtype=np.int64)
    for cls in (0, 1):  # stratified: each class dealt round-robin over the folds
        members = order[labels[order] == cls]
        fold_of[members] = np.arange(len(members)) % k
    oof = np.zeros((schedule.max_epochs + 1, n))
    for fold in range(k):
        held, train = np.flatnonzero(fold_of == fold), np.flatnonzero(fold_of != fold)
        if progress is not None:
            progress(f"fold {fold + 1} of {k}: fine-tuning on {len(train):,} labels, "
                     f"scoring {len(held):,}")
        for epoch, scores in enumerate(_fold_curve(start, config, schedule, sequences, labels,
                                                   train, held, seed + fold)):
            oof[epoch, held] = scores
    return oof, k


def adapt(start, texts: list[str], labels: np.ndarray, *, seed: int = 1337, progress=None,
          schedule: Schedule | None = None) -> AdaptationResult:
    """Cross-validate fine-tuning of `start` (a SentimentModel) on texts/labels, then fine-tune
    on all of them for the chosen number of epochs (zero: keep the starting weights)."""
    from review_scorer.metrics import log_loss

    started = time.perf_counter()
    labels = np.asarray(labels, dtype=np.int64)
    sequences = start.encode(texts)
    keep = np.array([len(s) > 0 for s in sequences])
    sequences = [s for s, k in zip(sequences, keep) if k]
    labels = labels[keep]
    per_class = {"negative": int((labels == 0).sum()), "positive": int((labels == 1).sum())}
    config = start.config.replace(ensemble_size=1)
    schedule = schedule or Schedule()
    oof, k = cross_validate(start, config, schedule, sequences, labels, seed=seed,
                            progress=progress)
    losses = [float(log_loss(labels, row)) for row in oof]
    accuracies = [float(np.mean((row >= 0.5) == labels)) for row in oof]
    # The guard: an epoch count is a candidate only if, on the same held-out labels, it is right
    # more often than the starting model beyond what chance explains (one-sided McNemar test),
    # and its log loss is lower; among candidates the lowest log loss wins.
    candidates = [e for e in range(1, schedule.max_epochs + 1)
                  if clearly_better(oof[0], oof[e], labels) and losses[e] < losses[0]]
    epochs = min(candidates, key=lambda e: losses[e]) if candidates else 0
    weights = None
    if epochs:
        import keras

        from review_scorer.training.train import _dataset

        if progress is not None:
            progress(f"fine-tuning on all {len(labels):,} labels for {epochs} epoch(s)")
        keras.utils.set_random_seed(seed)
        network = _trainable_copy(start, config, schedule)
        start_logit = _mean_logit(network, sequences) if schedule.keep_prior else None
        data = _dataset(sequences, labels.astype(np.float32), schedule.batch_size, seed=seed)
        network.fit(data.repeat(), epochs=epochs, steps_per_epoch=schedule.steps(len(labels)),
                    verbose=0, shuffle=False)
        if start_logit is not None:
            keep_start_prior(network, start_logit, sequences)
        weights = network.get_weights()
    start_m, adapted_m = _metrics(labels, oof[0]), _metrics(labels, oof[epochs])
    verdict, advice = _verdict(per_class, epochs, start_m, adapted_m, max(accuracies[1:]))
    return AdaptationResult(k, len(labels), per_class, epochs, start_m, adapted_m, losses,
                            accuracies, time.perf_counter() - started, verdict, advice, weights,
                            oof[epochs], labels, schedule)


GUARD_Z = 1.645  # one-sided 5%


def clearly_better(before: np.ndarray, after: np.ndarray, labels: np.ndarray) -> bool:
    """True when `after` fixes more held-out labels than it breaks, beyond chance: McNemar's
    test on the discordant pairs, (fixed - broken) > GUARD_Z * sqrt(fixed + broken)."""
    right_before, right_after = (before >= 0.5) == labels, (after >= 0.5) == labels
    fixed = int(np.sum(right_after & ~right_before))
    broken = int(np.sum(right_before & ~right_after))
    return fixed - broken > GUARD_Z * np.sqrt(fixed + broken)


def _verdict(per_class: dict[str, int], epochs: int, start: dict, adapted: dict,
             adapted_best: float = 0.0):
    smaller = min(per_class.values())
    gain = adapted["accuracy"] - start["accuracy"]
    if epochs == 0:
        verdict = (f"fine-tuning did not clearly beat the starting model on your labels "
                   f"(cross-validated accuracy {start['accuracy']:.1%}, best adapted "
                   f"{max(adapted_best, start['accuracy']):.1%}); the saved model keeps the "
                   "starting model's weights, recalibrated on your labels")
    else:
        verdict = (f"adapted: cross-validated accuracy {adapted['accuracy']:.1%} against "
                   f"{start['accuracy']:.1%} for the starting model ({gain:+.1%})")
    advice = None
    if smaller < FEW_LABELS_PER_CLASS:
        advice = (f"only {smaller} labels in the smaller class: label at least "
                  f"{FEW_LABELS_PER_CLASS} reviews of each class for a dependable adaptation")
    elif epochs == 0:
        advice = ("label more reviews (a few hundred of each class), or score with the starting "
                  "model as it is")
    return verdict, advice


def adapted_model(start, result: AdaptationResult, *, name: str):
    """The SentimentModel to save: the fine-tuned (or starting) weights, exported for scoring."""
    from review_scorer.model.calibration import calibration_meta
    from review_scorer.model.network import build_model, export_model
    from review_scorer.model.sentiment import SentimentModel

    config = start.config.replace(ensemble_size=1)
    network = build_model(config, len(start.vocab), name="adapted")
    source = result.weights if result.weights is not None else start.keras_model.get_weights()
    network.set_weights([np.asarray(w, dtype=np.float32) for w in source])
    # Calibrate on the chosen epoch's out-of-fold scores: held-out scores of the same recipe.
    uncalibrated = np.asarray(result.oof_scores, dtype=np.float64)
    model = SentimentModel(export_model(network), start.vocab, config, name=name)
    model.meta = {"calibration": {**calibration_meta(uncalibrated, result.oof_labels),
                                  "fitted_on": "out-of-fold scores on the user's labels"}}
    return model


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
    reviews = load_labeled(data_source, text_column=text_column, label_column=label_column)
    check_labeled_words(data_source, reviews.texts, reviews.labels)
    counts = np.bincount(np.asarray(reviews.labels, dtype=np.int64), minlength=2)
    if counts.min() < 4:
        raise InputError(f"{data_source}: {counts.min()} review(s) in the smaller class; "
                         "fine-tuning needs at least 4 of each (better 50 or more)")
    result = adapt(start, list(reviews.texts), reviews.labels, seed=seed, progress=progress)
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
        if not np.any(has_words & (labels == label)):
            raise InputError(f"no {name} review in {source} has any words, so the model cannot "
                             "be adapted to or measured on that class; add labeled reviews with text")


def _adaptation_meta(model, start, reviews, result: AdaptationResult, device: str) -> dict:
    import datetime as _dt
    import platform

    import keras
    import tensorflow as tf

    from review_scorer import __version__

    start_name = start.name
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
        "versions": {"review_scorer": __version__, "tensorflow": tf.__version__,
                     "keras": keras.__version__, "python": platform.python_version(),
                     "numpy": np.__version__},
    }
