"""run_training: labeled reviews in, a validated model directory (and its report) out."""

from __future__ import annotations

import datetime as _dt
import logging
import platform
import time
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from review_scorer import __version__
from review_scorer.artifacts import model_context
from review_scorer.config import TrainConfig
from review_scorer.errors import InputError
from review_scorer.text import (
    Vocabulary,
    clean_text,
    encode_cleaned,
    length_bucketed_batches,
    pad_batch,
)

if TYPE_CHECKING:
    from review_scorer.data import LabeledReviews

log = logging.getLogger(__name__)
POOL_BATCHES = 50  # batches per length-sorting pool when shuffling training data


@dataclass(frozen=True)
class TrainResult:
    model_dir: Path
    config: TrainConfig
    history: dict[str, list[float]]
    best_epoch: int
    epochs_run: int
    test_metrics: dict[str, Any]
    sizes: dict[str, int]
    train_seconds: float
    device: str
    validation_metrics: dict[str, Any]
    data_source: str
    report_path: Path | None


def stratified_split(labels: np.ndarray, fraction: float, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """Indices (kept, held_out): held_out takes `fraction` of each class, chosen by seed."""
    rng = np.random.default_rng(seed)
    held = []
    for cls in np.unique(labels):
        members = np.flatnonzero(labels == cls)
        k = round(len(members) * fraction)
        if len(members) > 1:
            k = min(max(k, 1), len(members) - 1)
        else:
            k = 0
        held.append(rng.choice(members, size=k, replace=False))
    held_out = np.sort(np.concatenate(held)) if held else np.array([], dtype=np.int64)
    kept = np.setdiff1d(np.arange(len(labels)), held_out)
    return kept, held_out


def grouped_split(
    labels: np.ndarray, groups: np.ndarray, fraction: float, seed: int, *, tries: int = 50
) -> tuple[np.ndarray, np.ndarray] | None:
    """Indices (kept, held_out) with whole groups (movies) held out, about `fraction` of rows.

    Whole movies are drawn in a seeded random order until the held-out part is large enough; a
    draw that leaves either side without both classes is redrawn. None when no draw works (for
    example a handful of one-sided movies): the caller falls back to a stratified split.
    """
    labels = np.asarray(labels)
    unique, inverse = np.unique(np.asarray(groups).astype(str), return_inverse=True)
    sizes = np.bincount(inverse, minlength=len(unique))
    target = max(1, round(len(labels) * fraction))
    rng = np.random.default_rng(seed)
    for _ in range(tries):
        order = rng.permutation(len(unique))
        take = order[: int(np.searchsorted(np.cumsum(sizes[order]), target)) + 1]
        held_mask = np.isin(inverse, take)
        held, kept = np.flatnonzero(held_mask), np.flatnonzero(~held_mask)
        if len(np.unique(labels[held])) == 2 and len(np.unique(labels[kept])) == 2:
            return kept, held
    return None


def holdout_split(reviews, idx: np.ndarray, fraction: float, seed: int):
    """(kept indices, held-out indices, kind) carved from idx.

    Movie-disjoint when the data says which movie each review is about (IMDB's test movies are
    disjoint from train's, so a held-out part sharing movies with training overstates accuracy
    and favours memorising names); otherwise a stratified random slice.
    """
    labels = np.asarray(reviews.labels)[idx]
    groups = reviews.groups
    split = None
    if groups is not None and all(groups[idx]):
        split = grouped_split(labels, groups[idx], fraction, seed)
    kind = "movie-disjoint" if split is not None else "stratified random"
    if split is None:
        split = stratified_split(labels, fraction, seed)
    return idx[split[0]], idx[split[1]], kind


def validation_split(reviews, train_idx: np.ndarray, config: TrainConfig):
    """(fit indices, validation indices, kind) carved from train_idx (see holdout_split)."""
    return holdout_split(reviews, train_idx, config.validation_fraction, config.seed)


def stratified_sample(labels: np.ndarray, size: int, seed: int) -> np.ndarray:
    """At most `size` indices keeping the class balance, in their original order."""
    if size >= len(labels):
        return np.arange(len(labels))
    _, picked = stratified_split(labels, size / len(labels), seed)
    return picked


def describe_device() -> str:
    import tensorflow as tf

    gpus = tf.config.list_logical_devices("GPU")
    if gpus:
        return f"GPU ({', '.join(g.name for g in gpus)})"
    return f"CPU ({platform.processor() or platform.machine()})"


def _dataset(sequences, labels, batch_size: int, *, seed: int | None):
    """tf.data over length-bucketed, per-batch padded batches; reshuffled every epoch when seeded."""
    import tensorflow as tf

    lengths = np.fromiter((len(s) for s in sequences), dtype=np.int64, count=len(sequences))
    labels = np.asarray(labels, dtype=np.float32)
    epoch = [0]

    def batches():
        rng = np.random.default_rng([seed, epoch[0]]) if seed is not None else None
        epoch[0] += 1
        for idx in length_bucketed_batches(lengths, batch_size, rng=rng, pool_batches=POOL_BATCHES):
            yield pad_batch([sequences[i] for i in idx]), labels[idx]

    spec = (tf.TensorSpec((None, None), tf.int32), tf.TensorSpec((None,), tf.float32))
    dataset = tf.data.Dataset.from_generator(batches, output_signature=spec)
    # Declaring the batch count lets Keras size its progress bar and skip the "ran out of data"
    # warning that generator datasets otherwise trigger after the first epoch.
    pool = batch_size * POOL_BATCHES
    n_batches = sum(-(-min(pool, len(lengths) - s) // batch_size) for s in range(0, len(lengths), pool))
    dataset = dataset.apply(tf.data.experimental.assert_cardinality(n_batches))
    return dataset.prefetch(2)


def run_training(
    config: TrainConfig,
    *,
    data_source: str | LabeledReviews,
    model_dir: str | Path,
    overwrite: bool = False,
    limit: int | None = None,
    cache_dir: str | Path | None = None,
    text_column: str | None = None,
    label_column: str | None = None,
    verbose: int = 2,
    download_progress=None,
    write_report: bool = True,
    name: str | None = None,
) -> TrainResult:
    """Train, evaluate on the test split, and save the model directory atomically.

    data_source is anything load_labeled reads, or already loaded LabeledReviews. Without a
    "test" split (a labeled CSV, or train-only data) a seeded stratified slice is held out.
    """
    from review_scorer.artifacts import check_target
    from review_scorer.data import LabeledReviews, load_labeled

    model_dir = check_target(model_dir, overwrite=overwrite)
    if isinstance(data_source, LabeledReviews):
        reviews = data_source
    else:
        reviews = load_labeled(
            data_source, text_column=text_column, label_column=label_column,
            cache_dir=cache_dir, progress=download_progress,
        )
    texts = list(reviews.texts)
    labels = np.asarray(reviews.labels, dtype=np.int8)
    splits = np.asarray(reviews.splits).astype(str)
    train_idx = np.flatnonzero(splits == "train")
    test_idx = np.flatnonzero(splits == "test")
    if len(test_idx) == 0:
        # No test split (a labeled file, or train-only data): hold out a seeded slice.
        train_idx, test_idx, _ = holdout_split(reviews, train_idx, config.test_fraction,
                                               config.seed + 1)
    if limit is not None:
        train_idx = train_idx[stratified_sample(labels[train_idx], limit, config.seed + 2)]
        test_idx = test_idx[stratified_sample(labels[test_idx], limit, config.seed + 3)]
    fit_idx, val_idx, validation_kind = validation_split(reviews, train_idx, config)
    for part, idx in (("training", fit_idx), ("validation", val_idx), ("test", test_idx)):
        if len(idx) == 0 or len(np.unique(labels[idx])) < 2:
            raise InputError(
                f"{reviews.source}: the {part} split needs reviews of both classes "
                f"(it has {len(idx)}); use more labeled data or a larger --limit"
            )

    cleaned = {i: clean_text(texts[i]) for i in np.concatenate([fit_idx, val_idx, test_idx])}
    vocab = Vocabulary.build((cleaned[i] for i in fit_idx), max_size=config.vocab_size,
                             min_count=config.min_count)

    def encode(idx: np.ndarray) -> tuple[list[np.ndarray], np.ndarray]:
        seqs = [encode_cleaned(cleaned[i], vocab, max_len=config.max_len,
                               truncating=config.truncating) for i in idx]
        # A review with no words has nothing for the LSTM to read: leave it out of training
        # and evaluation (scoring reports such rows as "no words").
        keep = np.array([len(s) > 0 for s in seqs], dtype=bool)
        return [s for s, k in zip(seqs, keep) if k], idx[keep]

    embedding_weights, embedding_meta = None, {"method": "random"}
    if config.embedding_init == "svd":
        from review_scorer.embeddings import ppmi_svd_embeddings

        svd_started = time.perf_counter()
        # Unsupervised: the training part's words plus any unlabeled reviews that came with the
        # data; never the validation or test texts.
        corpus = [vocab.encode(cleaned[i]) for i in fit_idx]
        corpus += [vocab.encode(clean_text(t)) for t in reviews.unlabeled]
        embedding_weights = ppmi_svd_embeddings(corpus, len(vocab), config.embedding_dim,
                                                window=config.svd_window, seed=config.seed)
        embedding_meta = {"method": "ppmi_svd", "reviews": len(corpus),
                          "unlabeled_reviews": len(reviews.unlabeled),
                          "seconds": round(time.perf_counter() - svd_started, 2)}
        del corpus

    fit_seqs, fit_idx = encode(fit_idx)
    val_seqs, val_idx = encode(val_idx)
    test_seqs, test_idx = encode(test_idx)

    import keras
    import tensorflow as tf

    from review_scorer.metrics import binary_metrics, log_loss
    from review_scorer.model import average_members, build_model, export_model, predict_sequences

    tf.config.experimental.enable_op_determinism()
    device = describe_device()
    started = time.perf_counter()
    members, histories = [], []
    for member in range(config.ensemble_size):
        # Each member has its own seed: initial weights, dropout and batch order differ.
        seed = config.seed + 1000 * member
        keras.utils.set_random_seed(seed)
        model = build_model(config, len(vocab), embedding_weights,
                            name=f"member_{member + 1}" if config.ensemble_size > 1 else None)
        callbacks = []
        if config.ema_momentum > 0:
            # Before EarlyStopping: validation and the saved "best weights" are the averaged ones.
            callbacks.append(keras.callbacks.SwapEMAWeights(swap_on_epoch=True))
        callbacks.append(keras.callbacks.EarlyStopping(
            monitor="val_loss", patience=config.patience, restore_best_weights=True
        ))
        fit = model.fit(
            _dataset(fit_seqs, labels[fit_idx], config.batch_size, seed=seed),
            validation_data=_dataset(val_seqs, labels[val_idx], 256, seed=None),
            epochs=config.epochs,
            callbacks=callbacks,
            shuffle=False,  # the dataset reshuffles itself each epoch, within length buckets
            verbose=verbose,
        )
        members.append(model)
        histories.append({k: [float(v) for v in vals] for k, vals in fit.history.items()})
    model = export_model(members[0] if len(members) == 1 else average_members(members))
    train_seconds = time.perf_counter() - started
    # The report's curves show the first member; every member's history is kept.
    history = dict(histories[0])
    if len(histories) > 1:
        history["members"] = histories
    best_epoch = int(np.argmin(history["val_loss"])) + 1

    # The saved model's own validation score (for an ensemble: of the averaged members), the
    # number to compare presets by; the test set is only reported.
    val_scores = predict_sequences(model, val_seqs)
    y_val = labels[val_idx]
    validation_metrics = binary_metrics(y_val, val_scores, loss=log_loss(y_val, val_scores))
    scores = predict_sequences(model, test_seqs)
    y_test = labels[test_idx]
    test_metrics = binary_metrics(y_test, scores, threshold=0.5, loss=log_loss(y_test, scores))
    sizes = {"train": len(fit_idx), "validation": len(val_idx), "test": len(test_idx)}
    meta = {
        "name": name or model_dir.name,
        "created_at": _dt.datetime.now().astimezone().isoformat(timespec="seconds"),
        "data_source": reviews.source,
        "data_fingerprint": reviews.fingerprint,
        "limit": limit,
        "embedding_init": embedding_meta,
        "validation_split": validation_kind,
        "validation_metrics": validation_metrics,
        "seed": config.seed,
        "sizes": sizes,
        "epochs_run": len(history["loss"]),
        "ensemble_size": config.ensemble_size,
        "best_epoch": best_epoch,
        "train_seconds": round(train_seconds, 2),
        "device": device,
        "versions": {
            "review_scorer": __version__,
            "tensorflow": tf.__version__,
            "keras": keras.__version__,
            "python": platform.python_version(),
            "numpy": np.__version__,
        },
    }
    report_html = None
    if write_report:
        from review_scorer.report import build_report_html

        report_html = build_report_html(training_report_context(
            name=meta["name"], path=str(model_dir), meta=meta, config=config,
            history=history, metrics=test_metrics,
        ))
    from review_scorer.artifacts import REPORT_FILE, save_model_dir

    save_model_dir(
        model_dir, model=model, vocab=vocab, config=config, history=history,
        metrics=test_metrics, meta=meta, report_html=report_html, overwrite=overwrite,
    )
    log.info("saved model to %s", model_dir)
    return TrainResult(
        model_dir=model_dir, config=config, history=history, best_epoch=best_epoch,
        epochs_run=len(history["loss"]), test_metrics=test_metrics, sizes=sizes,
        train_seconds=train_seconds, device=device, data_source=reviews.source,
        validation_metrics=validation_metrics,
        report_path=model_dir / REPORT_FILE if report_html is not None else None,
    )


def training_report_context(*, name: str, path: str, meta: dict, config: TrainConfig,
                            history: dict, metrics: dict | None) -> dict[str, Any]:
    return {
        "kind": "train",
        "title": f"{name} — training report",
        "generated_at": _dt.datetime.now().astimezone().isoformat(timespec="seconds"),
        "package_version": __version__,
        "model": model_context(name=name, path=path, meta=meta, config=config,
                               history=history, metrics=metrics),
    }
