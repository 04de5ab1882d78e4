"""run_training: labeled reviews in, a validated model directory (and its report) out."""

from __future__ import annotations

import datetime as _dt
import logging
import platform
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from review_scorer import __version__
from review_scorer.config import TrainConfig
from review_scorer.model.artifacts import REPORT_FILE, check_target
from review_scorer.text.batching import length_bucketed_batches, pad_batch
from review_scorer.text.cleaning import clean_text
from review_scorer.text.vocabulary import Vocabulary, encode_cleaned
from review_scorer.training.finetune import with_encoder
from review_scorer.training.splits import Splits, make_splits
from review_scorer.training.teachers import SoftTargets

if TYPE_CHECKING:
    from review_scorer.io import LabeledReviews

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
    model: Any = None  # the trained SentimentModel
    # For a model adapted to a user's labels (review_scorer.training.adapt): the starting and the adapted
    # model's cross-validated numbers on the same held-out labels, the verdict and any advice.
    adaptation: dict[str, Any] | None = None
    notes: list[str] = field(default_factory=list)  # e.g. the rows of the file left out


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


@dataclass
class PreparedData:
    """Labeled reviews turned into what the network reads, per split."""

    vocab: Vocabulary
    labels: np.ndarray
    fit: tuple[list[np.ndarray], np.ndarray]  # (id sequences, their row indices)
    validation: tuple[list[np.ndarray], np.ndarray]
    test: tuple[list[np.ndarray], np.ndarray]
    embedding_weights: np.ndarray | None
    embedding_meta: dict[str, Any]
    # Teacher-labeled reviews trained on beside the fit part: (id sequences, float targets).
    extra: tuple[list[np.ndarray], np.ndarray] | None = None
    distillation: dict[str, Any] | None = None
    # Teacher-labeled texts validated on beside the validation slice (early stopping only).
    validation_extra: tuple[list[np.ndarray], np.ndarray] | None = None

    def validation_examples(self) -> tuple[list[np.ndarray], np.ndarray]:
        """What early stopping watches: the validation slice's labels, then any teacher-labeled
        validation texts. Reported validation metrics use the slice alone (evaluate)."""
        seqs, idx = self.validation
        targets = self.labels[idx].astype(np.float32)
        if self.validation_extra is None:
            return seqs, targets
        return seqs + self.validation_extra[0], np.concatenate([targets, self.validation_extra[1]])

    def fit_examples(self) -> tuple[list[np.ndarray], np.ndarray]:
        """The training sequences and their (float) targets: the fit part, then any extra."""
        seqs, idx = self.fit
        targets = self.labels[idx].astype(np.float32)
        if self.extra is None:
            return seqs, targets
        return seqs + self.extra[0], np.concatenate([targets, self.extra[1]])


@dataclass
class FittedMembers:
    model: Any  # the exported keras.Model (one member, or the averaged ensemble)
    history: dict[str, Any]
    seconds: float
    device: str
    encoder_meta: dict[str, Any] | None = None  # the pretrained encoder the members started from


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
    download_progress=None,
    epoch_progress=None,
    write_report: bool = True,
    name: str | None = None,
    encoder=None,
    soft_targets: SoftTargets | None = None,
    stage_progress=None,
    report_paths: bool = False,
) -> TrainResult:
    """Train, evaluate on the test split, and save the model directory atomically.

    Stages: load the data, split it, prepare the text, fit the members, evaluate, save.
    data_source is anything load_labeled reads, or already loaded LabeledReviews.
    epoch_progress, if given, is called with a dict after every epoch (stage, member, epoch,
    logs, seconds); nothing here prints. encoder (a pretrained encoder directory or Encoder)
    starts every member from its weights and vocabulary; None trains from scratch.
    soft_targets adds teacher-labeled reviews to the training steps (distillation); without
    them, config.teacher builds them (review_scorer.training.teachers). stage_progress, if given, is
    called with a one-line description as each long stage starts.
    The report names the model folder and the data by their names only, unless report_paths.
    """
    from review_scorer.model.native_logs import quiet_tensorflow

    model_dir = check_target(model_dir, overwrite=overwrite)
    quiet_tensorflow()
    encoder, config = with_encoder(encoder, config)
    reviews = _load_reviews(data_source, text_column=text_column, label_column=label_column,
                            cache_dir=cache_dir, download_progress=download_progress)
    splits = make_splits(reviews, config, limit=limit)
    data = _prepare_stage(reviews, splits, config, encoder, soft_targets, stage_progress)
    fitted = fit_members(config, data, epoch_progress=epoch_progress, encoder=encoder)
    model, validation_metrics = _evaluated_model(fitted, data, config, name=name or model_dir.name,
                                                 reviews=reviews, splits=splits, limit=limit)
    report_html = _report_html(model, model_dir, report_paths) if write_report else None
    model.save(model_dir, overwrite=overwrite, report_html=report_html)
    model.path = model_dir
    log.info("saved model to %s", model_dir)
    return TrainResult(
        model_dir=model_dir, config=config, history=model.history,
        best_epoch=model.meta["best_epoch"], epochs_run=model.meta["epochs_run"],
        test_metrics=model.metrics, sizes=splits.sizes(), train_seconds=fitted.seconds,
        device=fitted.device, data_source=reviews.source, validation_metrics=validation_metrics,
        report_path=model_dir / REPORT_FILE if report_html is not None else None, model=model,
        notes=[n for n in [reviews.left_out_note()] if n],
    )


def _prepare_stage(reviews, splits: Splits, config: TrainConfig, encoder,
                   soft_targets: SoftTargets | None, stage_progress) -> PreparedData:
    """The distillation stage (config.teacher's targets, unless given) and the encoding stage;
    the two share one CleanedTexts, so each text is cleaned once."""
    clean = CleanedTexts()
    skipped = None
    if soft_targets is None and config.teacher != "none":
        soft_targets, skipped = _teacher_targets(reviews, splits, config, clean, stage_progress)
    if stage_progress is not None:
        stage_progress("cleaning and encoding the text, learning the starting word vectors")
    data = prepare_data(reviews, splits, config, vocab=encoder.vocab if encoder else None,
                        soft_targets=soft_targets, clean=clean)
    if skipped:
        data.distillation = {"skipped": skipped}
    return data


def _evaluated_model(fitted: FittedMembers, data: PreparedData, config: TrainConfig, *,
                     name: str, reviews, splits: Splits, limit: int | None):
    """(the fitted network as a calibrated SentimentModel with its test metrics and training
    meta, the validation metrics)."""
    from review_scorer.model.sentiment import SentimentModel

    model = SentimentModel(fitted.model, data.vocab, config, history=fitted.history, name=name,
                           lexicon=lexicon_term(data, config), clauses=clause_rules(data, config))
    model.meta = {"calibration": fit_calibration(model, data)}
    validation_metrics, model.metrics = evaluate(model, data)
    model.meta = {**training_meta(model, reviews=reviews, splits=splits, data=data, fitted=fitted,
                                  limit=limit, validation_metrics=validation_metrics),
                  "calibration": model.meta["calibration"]}
    return model, validation_metrics


def lexicon_term(data: PreparedData, config: TrainConfig):
    """The recipe's last stage: the lexicon term added to the network's logit (model/lexicon.py),
    its rating weight fitted on the fit part's reviews that state a rating, with the n-gram term
    for long reviews fitted on the fit part (model/ngram_term.py); None when both weights are 0."""
    if not config.lexicon_weight and not config.ngram_weight:
        return None
    from review_scorer.model.lexicon import LexiconTerm, fit_rating_weight
    from review_scorer.model.ngram_term import NgramTerm

    term = LexiconTerm.for_vocabulary(data.vocab.tokens, config.lexicon_weight)
    seqs, idx = data.fit
    if config.lexicon_weight:
        term.rating_weight, _ = fit_rating_weight(seqs, data.labels[idx], term.ratings)
    if config.ngram_weight:
        term.ngrams = NgramTerm.fit(seqs, data.labels[idx], vocab_size=len(data.vocab.tokens),
                                    weight=config.ngram_weight, min_words=config.ngram_min_words,
                                    seed=config.seed)
    return term


def clause_rules(data: PreparedData, config: TrainConfig):
    """The clause rules for short reviews (model/clauses.py, applied before the lexicon term);
    None when config.clause_rules is off."""
    if not config.clause_rules:
        return None
    from review_scorer.model.clauses import ClauseRules

    return ClauseRules.for_vocabulary(data.vocab.tokens)


class CleanedTexts(dict):
    """clean_text of each text, computed once and remembered (called like clean_text)."""

    def __call__(self, text: str) -> str:
        cleaned = self.get(text)
        if cleaned is None:
            cleaned = self[text] = clean_text(text)
        return cleaned


def _teacher_targets(reviews, splits: Splits, config: TrainConfig, clean, progress):
    """The distillation stage: config.teacher's SoftTargets, or (None, why it was skipped)."""
    from review_scorer.training.teachers import distillation_targets

    soft_targets, skipped = distillation_targets(reviews, splits, config, clean=clean,
                                                 progress=progress)
    if skipped:
        log.info("%s", skipped)
    return soft_targets, skipped


def _report_html(model, model_dir: Path, report_paths: bool) -> str:
    from review_scorer.report.model_section import build_train_report
    from review_scorer.report.render import build_report_html

    return build_report_html(build_train_report(model, path=model_dir, full_paths=report_paths))


def _load_reviews(data_source, *, text_column, label_column, cache_dir, download_progress):
    from review_scorer.io import LabeledReviews, load_labeled

    if isinstance(data_source, LabeledReviews):
        return data_source
    return load_labeled(data_source, text_column=text_column, label_column=label_column,
                        cache_dir=cache_dir, progress=download_progress)


def prepare_data(reviews, splits: Splits, config: TrainConfig, *,
                 vocab: Vocabulary | None = None,
                 soft_targets: SoftTargets | None = None,
                 clean: CleanedTexts | None = None) -> PreparedData:
    """Clean the texts once, build the vocabulary from the fit part (unless given: a pretrained
    encoder's), encode every split and any teacher-labeled extra reviews, and learn the starting
    word vectors (training + unlabeled reviews only, never validation/test). `clean` holds texts
    an earlier stage (the teacher) already cleaned."""
    clean = CleanedTexts() if clean is None else clean
    texts = reviews.texts
    labels = np.asarray(reviews.labels, dtype=np.int8)
    cleaned = {i: clean(texts[i]) for i in np.concatenate([splits.fit, splits.validation,
                                                           splits.test])}
    check_words(reviews.source, labels, splits, cleaned)
    if vocab is None:
        vocab = Vocabulary.build((cleaned[i] for i in splits.fit), max_size=config.vocab_size,
                                 min_count=config.min_count)

    def encode_kept(cleaned_texts, targets: np.ndarray) -> tuple[list[np.ndarray], np.ndarray]:
        # A review with no words has nothing for the LSTM to read: leave it out of training
        # and evaluation (scoring reports such rows as "no words").
        seqs = [encode_cleaned(c, vocab, max_len=config.max_len, truncating=config.truncating)
                for c in cleaned_texts]
        keep = np.array([len(s) > 0 for s in seqs], dtype=bool)
        return [s for s, k in zip(seqs, keep) if k], targets[keep]

    def encode(idx: np.ndarray) -> tuple[list[np.ndarray], np.ndarray]:
        return encode_kept((cleaned[i] for i in idx), idx)

    weights, meta = None, {"method": config.embedding_init}
    if config.embedding_init == "svd":
        weights, meta = _svd_embeddings(config, vocab, [cleaned[i] for i in splits.fit],
                                        [clean(t) for t in reviews.unlabeled])
    extra = None
    if soft_targets is not None:
        extra = encode_kept(map(clean, soft_targets.texts), soft_targets.targets)
    data = PreparedData(vocab, labels, encode(splits.fit), encode(splits.validation),
                        encode(splits.test), weights, meta, extra,
                        soft_targets.meta() if soft_targets is not None else None)
    if soft_targets is not None and soft_targets.validation_texts:
        data.validation_extra = encode_kept(map(clean, soft_targets.validation_texts),
                                            soft_targets.validation_targets)
    return data


def check_words(source: str, labels: np.ndarray, splits: Splits, cleaned: dict) -> None:
    """InputError, before any training, when no review has a word left after cleaning, or a
    split has no usable review of one class (reviews without words are left out, so training
    or evaluating would run on nothing)."""
    from review_scorer.errors import InputError

    if not any(cleaned.values()):
        raise InputError(f"no review in {source} has any words (nothing is left once markup "
                         "and punctuation are removed); check the text column")
    for part, idx in (("training", splits.fit), ("validation", splits.validation),
                      ("test", splits.test)):
        usable = np.fromiter((bool(cleaned[i]) for i in idx), dtype=bool, count=len(idx))
        for label, name in ((1, "positive"), (0, "negative")):
            if not np.any(usable & (labels[idx] == label)):
                raise InputError(f"no {name} review of the {part} split in {source} has any "
                                 "words, so the classifier cannot learn or be measured on that "
                                 "class; add labeled reviews with text")


def _svd_embeddings(config: TrainConfig, vocab: Vocabulary, fit_cleaned: list[str],
                    unlabeled_cleaned: list[str]):
    from review_scorer.training.embeddings import ppmi_svd_embeddings

    started = time.perf_counter()
    corpus = [vocab.encode(c) for c in fit_cleaned]
    corpus += [vocab.encode(c) for c in unlabeled_cleaned]
    weights = ppmi_svd_embeddings(corpus, len(vocab), config.embedding_dim,
                                  window=config.svd_window, seed=config.seed)
    meta = {"method": "ppmi_svd", "reviews": len(corpus), "unlabeled_reviews": len(unlabeled_cleaned),
            "seconds": round(time.perf_counter() - started, 2)}
    return weights, meta


def _epoch_reporter(progress, *, stage: str, member: int, members: int, epochs: int):
    """A Keras callback that hands each finished epoch to the caller's progress function."""
    import keras

    class EpochReporter(keras.callbacks.Callback):
        def on_epoch_begin(self, epoch, logs=None):
            self.started = time.perf_counter()

        def on_epoch_end(self, epoch, logs=None):
            progress({"stage": stage, "member": member, "members": members, "epoch": epoch + 1,
                      "epochs": epochs, "logs": {k: float(v) for k, v in (logs or {}).items()},
                      "seconds": time.perf_counter() - self.started})

    return EpochReporter()


def averaging_for_data_size(config: TrainConfig, n_fit: int) -> TrainConfig:
    """The config with weight averaging no longer than about one epoch of steps.

    An average over ~1/(1 - momentum) steps (100 at 0.99) barely leaves the random start when an
    epoch is a few batches (a user's few hundred labels): such a network scored exactly 50% at
    100 labels. So the momentum is capped at 1 - 1/steps_per_epoch (0 turns averaging off).
    """
    steps = max(1, -(-n_fit // config.batch_size))
    cap = 1.0 - 1.0 / steps
    if config.ema_momentum <= cap:
        return config
    return config.replace(ema_momentum=cap if cap >= 0.5 else 0.0)


def fit_members(config: TrainConfig, data: PreparedData, *, epoch_progress=None,
                encoder=None) -> FittedMembers:
    """Train config.ensemble_size networks with their own seeds; export one scoring model.

    With a pretrained encoder every member starts from its weights (finetune.fit_member).
    """
    import tensorflow as tf

    from review_scorer.model.network import average_members, export_model
    from review_scorer.training.finetune import encoder_meta

    tf.config.experimental.enable_op_determinism()
    device = describe_device()
    started = time.perf_counter()
    members, histories = [], []
    fit_config = averaging_for_data_size(config, len(data.fit_examples()[0]))
    for member in range(config.ensemble_size):
        model, history = _fit_one(fit_config, data, member, epoch_progress, encoder)
        members.append(model)
        histories.append(history)
    model = export_model(members[0] if len(members) == 1 else average_members(members))
    # The report's curves show the first member; every member's history is kept.
    history = dict(histories[0])
    if len(histories) > 1:
        history["members"] = histories
    return FittedMembers(model, history, time.perf_counter() - started, device,
                         encoder_meta(encoder, config))


def _fit_one(config: TrainConfig, data: PreparedData, member: int, epoch_progress, encoder):
    import keras

    from review_scorer.model.network import build_model
    from review_scorer.training.finetune import fit_member

    # Each member has its own seed: initial weights, dropout and batch order differ.
    seed = config.seed + 1000 * member
    keras.utils.set_random_seed(seed)
    model = build_model(config, len(data.vocab), data.embedding_weights,
                        name=f"member_{member + 1}" if config.ensemble_size > 1 else None)
    callbacks = []
    if epoch_progress is not None:
        callbacks.append(_epoch_reporter(epoch_progress, stage="fit", member=member + 1,
                                        members=config.ensemble_size, epochs=config.epochs))
    (fit_seqs, fit_targets), (val_seqs, val_targets) = data.fit_examples(), data.validation_examples()
    # EMA swap + early stopping on val_loss (restoring the best weights), and with an encoder
    # the head-first then all-layers schedule: finetune.fit_member. The dataset reshuffles
    # itself each epoch, within length buckets.
    history = fit_member(
        model, _dataset(fit_seqs, fit_targets, config.batch_size, seed=seed),
        _dataset(val_seqs, val_targets, 256, seed=None), config,
        encoder=encoder, extra_callbacks=callbacks,
    )
    return model, history


def fit_calibration(model, data: PreparedData) -> dict[str, Any]:
    """The temperature that calibrates the model's probabilities on the validation slice."""
    from review_scorer.model.calibration import calibration_meta

    seqs, idx = data.validation
    return calibration_meta(model.predict_ids(seqs), data.labels[idx])


def evaluate(model, data: PreparedData) -> tuple[dict[str, Any], dict[str, Any]]:
    """(validation metrics, test metrics) of the saved model itself (for an ensemble: of the
    averaged members). Presets are compared by validation; the test set is only reported."""
    from review_scorer.metrics import binary_metrics, log_loss
    from review_scorer.model.calibration import expected_calibration_error

    out = []
    for seqs, idx in (data.validation, data.test):
        scores = model.predict_ids(seqs)
        y = data.labels[idx]
        metrics = binary_metrics(y, scores, threshold=0.5, loss=log_loss(y, scores))
        metrics["ece"] = expected_calibration_error(scores, y)
        out.append(metrics)
    return out[0], out[1]


def training_meta(model, *, reviews, splits: Splits, data: PreparedData, fitted: FittedMembers,
                  limit: int | None, validation_metrics: dict) -> dict[str, Any]:
    """Everything meta.json records about how the model was made."""
    import keras
    import tensorflow as tf

    from review_scorer.scoring.domain import unknown_rate_meta

    return {
        "name": model.name,
        "created_at": _dt.datetime.now().astimezone().isoformat(timespec="seconds"),
        "data_source": reviews.source,
        "data_fingerprint": reviews.fingerprint,
        "limit": limit,
        "embedding_init": data.embedding_meta,
        "pretrained_encoder": fitted.encoder_meta,
        "distillation": None if data.distillation is None else {
            **data.distillation, "labeled_reviews": len(data.fit[0])},
        "validation_split": splits.validation_kind,
        "validation_metrics": validation_metrics,
        "seed": model.config.seed,
        "sizes": splits.sizes(),
        "epochs_run": len(fitted.history["loss"]),
        "ensemble_size": model.config.ensemble_size,
        "best_epoch": int(np.argmin(fitted.history["val_loss"])) + 1,
        "train_seconds": round(fitted.seconds, 2),
        "device": fitted.device,
        # held-out reviews' unknown-word rate: what the out-of-domain check compares files with
        "unknown_word_rate": unknown_rate_meta(data.validation[0],
                                               "the reviews the model was trained on"),
        "lexicon_term": None if model.lexicon is None else model.lexicon.meta(),
        "clause_rules": None if model.clauses is None else model.clauses.meta(),
        "versions": {
            "review_scorer": __version__, "tensorflow": tf.__version__,
            "keras": keras.__version__, "python": platform.python_version(),
            "numpy": np.__version__,
        },
    }
