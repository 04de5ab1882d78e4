"""Pretrain the encoder as forward and backward language models on unlabeled reviews, resumably."""

from __future__ import annotations

import datetime as _dt
import json
import math
import os
import platform
import shutil
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from review_scorer import __version__
from review_scorer.config import PretrainConfig
from review_scorer.errors import ConfigError, InputError
from review_scorer.model.encoder import CHECKPOINT_DIR, check_encoder_target, save_encoder_dir
from review_scorer.text.cleaning import clean_text
from review_scorer.text.vocabulary import PAD_ID, Vocabulary

# Between two reviews of the concatenated corpus the padding id stands as an end-of-review token:
# clean_text can never produce it, and the classifier masks it, so the vocabulary stays the
# classifier's own.
SEPARATOR_ID = PAD_ID
CHECKPOINT_FORMAT = 1
WARMUP_STEPS = 200
FINAL_LR_SHARE = 0.1  # the learning rate decays linearly to this share of its peak
EVAL_TOKENS = 200_000  # at most this many tokens per perplexity measurement
# The per-epoch measurements are too few to show how training went (one point for a one-epoch
# run), so the history also keeps a trace: the mean training loss over each stretch of about
# 1/TRACE_POINTS_PER_EPOCH of an epoch, with the tokens seen when the stretch ended. The loss is
# the one optimised (a sampled softmax's when config.softmax is "sampled").
TRACE_POINTS_PER_EPOCH = 50
TRACE_TOKENS = "trace_tokens"
TRACE_LOSS = "trace_loss"


@dataclass(frozen=True)
class PretrainProgress:
    """One progress report: where training is, how fast, and the estimated time left."""

    stage: str  # "reading", "training", "evaluating", "saving"
    epoch: int = 0  # 1-based epoch in progress
    epochs: int = 0
    step: int = 0  # steps done in this epoch
    steps: int = 0  # steps per epoch
    tokens_per_s: float | None = None
    eta_s: float | None = None
    loss: float | None = None  # running training loss (sampled softmax when sampled)


@dataclass(frozen=True)
class PretrainResult:
    encoder_dir: Path
    config: PretrainConfig
    history: dict[str, list[float]]
    corpus: dict[str, Any]
    tokens_seen: int
    epochs_done: float
    train_seconds: float
    tokens_per_s: float
    device: str
    resumed_from_step: int  # global step the run resumed from (0: started fresh)
    completed: bool  # False when stopped by the time limit (the checkpoint is kept)


@dataclass
class Corpus:
    """The pretraining token streams (reviews joined by SEPARATOR_ID) and their description."""

    vocab: Vocabulary
    train: np.ndarray
    heldout: np.ndarray
    description: dict[str, Any]
    counts: np.ndarray = field(default_factory=lambda: np.zeros(0))  # token frequencies (train)


@dataclass
class _State:
    epoch: int = 0  # completed epochs
    step: int = 0  # completed steps of the current epoch
    tokens: int = 0
    seconds: float = 0.0
    history: dict[str, list[float]] = field(default_factory=dict)
    # The trace point being collected (kept in checkpoints, so a resumed run's trace is the same).
    trace_sum: float = 0.0
    trace_steps: int = 0


# --------------------------------------------------------------------------------------------
# Text in
# --------------------------------------------------------------------------------------------

def load_pretraining_texts(
    source: str | os.PathLike[str], *, config: PretrainConfig, text_column: str | None = None,
    cache_dir: str | os.PathLike[str] | None = None, download_progress=None,
) -> tuple[list[str], dict[str, Any]]:
    """The review texts to pretrain on, and a description of what was (and was not) used.

    An aclImdb source ("imdb", a URL, a folder or an archive) gives its train and unsup reviews
    minus the classifier's validation slice (same holdout_split, seed and fraction as training),
    never the test reviews. Any other file is read whole through open_reviews (its text column).
    """
    path = Path(source) if not str(source).lower().startswith(("http:", "https:")) else None
    is_file = path is not None and path.is_file() and not path.name.lower().endswith(
        (".tar.gz", ".tgz", ".tar"))
    if is_file:
        from review_scorer.io import open_reviews

        with open_reviews(path, text_column=text_column) as reviews:
            texts = [t for chunk in reviews.chunks() for t in chunk.texts if t and t.strip()]
            column = reviews.info.text_column
        return texts, {"source": str(path), "text_column": column, "reviews": len(texts),
                       "excluded": "nothing (a plain review file has no validation slice)"}
    from review_scorer.io import load_labeled
    from review_scorer.training.splits import holdout_split

    reviews = load_labeled(source, cache_dir=cache_dir, progress=download_progress)
    splits = np.asarray(reviews.splits).astype(str)
    train_idx = np.flatnonzero(splits == "train")
    fit_idx, val_idx, kind = holdout_split(reviews, train_idx, config.validation_fraction,
                                           config.seed)
    texts = [reviews.texts[i] for i in fit_idx] + list(reviews.unlabeled)
    return texts, {
        "source": reviews.source, "labeled_reviews": len(fit_idx),
        "unlabeled_reviews": len(reviews.unlabeled), "reviews": len(texts),
        "excluded": (f"the test split ({int((splits == 'test').sum())} reviews) and the "
                     f"classifier's {kind} validation slice ({len(val_idx)} reviews, seed "
                     f"{config.seed}, fraction {config.validation_fraction})"),
    }


def build_corpus(texts: list[str], config: PretrainConfig, description: dict[str, Any], *,
                 vocab: Vocabulary | None = None) -> Corpus:
    """Clean, hold out a seeded share of reviews, build the vocabulary (unless given: the one of
    the encoder pretraining continues from), join into token streams."""
    cleaned = [c for c in map(clean_text, texts) if c]
    if len(cleaned) < 2:
        raise InputError(f"{description.get('source')}: only {len(cleaned)} review(s) with words; "
                         "pretraining needs at least 2 (one is held out)")
    order = np.random.default_rng([config.seed, 11]).permutation(len(cleaned))
    n_held = min(len(cleaned) - 1, max(1, round(len(cleaned) * config.heldout_fraction)))
    held, kept = np.sort(order[:n_held]), np.sort(order[n_held:])
    if vocab is None:
        vocab = Vocabulary.build((cleaned[i] for i in kept), max_size=config.vocab_size,
                                 min_count=config.min_count)

    def stream(idx: np.ndarray) -> np.ndarray:
        sep = np.array([SEPARATOR_ID], dtype=np.int32)
        parts = [p for i in idx for p in (vocab.encode(cleaned[i]), sep)]
        return np.concatenate(parts).astype(np.int32)

    train, heldout = stream(kept), stream(held)
    counts = np.bincount(train, minlength=len(vocab)).astype(np.int64)
    description = {**description, "reviews_used": len(kept), "heldout_reviews": len(held),
                   "tokens": len(train), "heldout_tokens": len(heldout),
                   "vocab_size": len(vocab),
                   "unknown_share": round(float(counts[1]) / max(1, len(train)), 4)}
    return Corpus(vocab, train, heldout, description, counts)


def windows(stream: np.ndarray, bptt: int) -> np.ndarray:
    """Start offsets of the non-overlapping bptt+1 token windows of a stream."""
    n = (len(stream) - 1) // bptt
    return np.arange(n, dtype=np.int64) * bptt


def gather_windows(stream: np.ndarray, starts: np.ndarray, bptt: int) -> np.ndarray:
    """An int32 [len(starts), bptt + 1] batch of windows (input and next-token target share it)."""
    return stream[starts[:, None] + np.arange(bptt + 1)[None, :]].astype(np.int32)


def window_order(n_windows: int, seed: int, epoch: int) -> np.ndarray:
    """The window order of one epoch: a pure function of (seed, epoch), so a resumed run replays
    exactly the batches it had not yet trained on."""
    return np.random.default_rng([seed, 23, epoch]).permutation(n_windows)


# --------------------------------------------------------------------------------------------
# The network
# --------------------------------------------------------------------------------------------

def build_language_model(config: PretrainConfig, vocab_size: int, counts: np.ndarray | None = None):
    """A forward and a backward LSTM language model over one shared embedding.

    The two LSTMs have exactly the shapes of the classifier's Bidirectional forward_layer and
    backward_layer (the backward one reads the window reversed, as go_backwards does), so their
    weights copy straight in. No mask and no padding inside windows: cuDNN-eligible on GPU.
    """
    import keras
    from keras import layers

    class BiLanguageModel(keras.Model):
        def __init__(self):
            super().__init__(name="bidirectional_lm")
            self.embedding = layers.Embedding(vocab_size, config.embedding_dim, name="embedding")
            self.forward_lstm = layers.LSTM(config.lstm_units, return_sequences=True,
                                            name="forward_lstm")
            self.backward_lstm = layers.LSTM(config.lstm_units, return_sequences=True,
                                             name="backward_lstm")
            if config.softmax == "sampled":
                self.softmax_weights = self.add_weight(
                    shape=(vocab_size, config.lstm_units), name="softmax_weights",
                    initializer=keras.initializers.RandomNormal(
                        stddev=config.lstm_units ** -0.5, seed=config.seed))
            self.softmax_bias = self.add_weight(shape=(vocab_size,), initializer="zeros",
                                                name="softmax_bias")

        def call(self, x, training=False):
            return _hidden_states(self, x, config, training)

    lm = BiLanguageModel()
    lm(np.zeros((1, 3), dtype=np.int32))  # create every weight
    if counts is not None and len(counts) == vocab_size:
        # Start the output bias at the log unigram frequencies: the first steps then learn
        # context, not word frequencies.
        lm.softmax_bias.assign(np.log((counts + 1.0) / (counts.sum() + vocab_size)).astype("float32"))
    return lm


def _hidden_states(lm, x, config: PretrainConfig, training, seed=None):
    """(forward states, forward targets, backward states, backward targets) of a window batch."""
    import tensorflow as tf

    e = lm.embedding(x)
    hf = lm.forward_lstm(e[:, :-1])
    hb = lm.backward_lstm(tf.reverse(e[:, 1:], [1]))
    if training and config.dropout > 0 and seed is not None:
        # Stateless dropout keyed by the step: a resumed run draws the same masks.
        hf = tf.nn.experimental.stateless_dropout(hf, config.dropout, seed=seed)
        hb = tf.nn.experimental.stateless_dropout(hb, config.dropout,
                                                  seed=seed + tf.constant([0, 1], tf.int64))
    return hf, x[:, 1:], hb, tf.reverse(x[:, :-1], [1])


def _output_weights(lm, config: PretrainConfig):
    return lm.softmax_weights if config.softmax == "sampled" else lm.embedding.embeddings


def _sampled_loss(lm, config: PretrainConfig, h, targets, seed):
    """Sampled softmax loss with log-uniform candidates drawn statelessly from seed."""
    import tensorflow as tf

    vocab_size = int(lm.softmax_bias.shape[0])
    num = min(config.num_sampled, vocab_size - 1)
    labels = tf.reshape(tf.cast(targets, tf.int64), [-1, 1])
    # Log-uniform (Zipf-like) sampler over the frequency-sorted vocabulary:
    # P(k) = log((k + 2) / (k + 1)) / log(V + 1); drawn by inverting its CDF.
    log_range = math.log(vocab_size + 1.0)
    u = tf.random.stateless_uniform([num], seed=seed, dtype=tf.float64)
    sampled = tf.clip_by_value(tf.cast(tf.floor(tf.exp(u * log_range)), tf.int64) - 1, 0,
                               vocab_size - 1)

    def expected(ids):
        k = tf.cast(ids, tf.float64)
        return tf.cast(num * (tf.math.log((k + 2.0) / (k + 1.0)) / log_range), tf.float32)

    loss = tf.nn.sampled_softmax_loss(
        weights=tf.convert_to_tensor(_output_weights(lm, config)),
        biases=tf.convert_to_tensor(lm.softmax_bias), labels=labels,
        inputs=tf.reshape(h, [-1, config.lstm_units]), num_sampled=num, num_classes=vocab_size,
        sampled_values=(sampled, expected(labels), expected(sampled)),
        remove_accidental_hits=True)
    return tf.reduce_mean(loss)


def _full_loss_sum(lm, config: PretrainConfig, h, targets):
    """Summed full-softmax cross-entropy (nats) over every token of h."""
    import tensorflow as tf

    logits = tf.matmul(tf.reshape(h, [-1, config.lstm_units]),
                       tf.convert_to_tensor(_output_weights(lm, config)), transpose_b=True)
    logits += tf.convert_to_tensor(lm.softmax_bias)
    return tf.reduce_sum(tf.nn.sparse_softmax_cross_entropy_with_logits(
        labels=tf.reshape(targets, [-1]), logits=logits))


def make_step_functions(lm, optimizer, config: PretrainConfig):
    """(train_step(batch, seed) -> loss, eval_step(batch) -> summed loss) as tf.functions."""
    import tensorflow as tf

    def loss_of(hf, tf_, hb, tb, seed):
        if config.softmax == "sampled":
            return 0.5 * (_sampled_loss(lm, config, hf, tf_, seed)
                          + _sampled_loss(lm, config, hb, tb, seed + tf.constant([0, 2], tf.int64)))
        count = tf.cast(tf.size(tf_) + tf.size(tb), tf.float32)
        return (_full_loss_sum(lm, config, hf, tf_) + _full_loss_sum(lm, config, hb, tb)) / count

    @tf.function(reduce_retracing=True)
    def train_step(batch, seed):
        with tf.GradientTape() as tape:
            loss = loss_of(*_hidden_states(lm, batch, config, True, seed), seed)
        grads = tape.gradient(loss, lm.trainable_variables)
        optimizer.apply(grads, lm.trainable_variables)
        return loss

    @tf.function(reduce_retracing=True)
    def eval_step(batch):
        hf, tf_, hb, tb = _hidden_states(lm, batch, config, False)
        return _full_loss_sum(lm, config, hf, tf_) + _full_loss_sum(lm, config, hb, tb)

    return train_step, eval_step


def _starting_encoder(init_from, config: PretrainConfig):
    if init_from is None:
        return None
    from review_scorer.model.encoder import load_encoder_dir

    start = load_encoder_dir(init_from)
    differ = [k for k in ("embedding_dim", "lstm_units", "softmax")
              if getattr(start.config, k) != getattr(config, k)]
    if differ:
        raise ConfigError(f"{init_from}: the encoder has other {', '.join(differ)} than these "
                          "settings; continue it with the same network shape")
    return start


def set_language_model_weights(lm, config: PretrainConfig, weights: dict[str, np.ndarray]) -> None:
    """Load encoder-directory weights (encoder_weights' names) into a language model."""
    lm.embedding.embeddings.assign(weights["embedding"])
    for direction, layer in (("forward", lm.forward_lstm), ("backward", lm.backward_lstm)):
        for part in ("kernel", "recurrent_kernel", "bias"):
            getattr(layer.cell, part).assign(weights[f"{direction}/{part}"])
    if config.softmax == "sampled":
        lm.softmax_weights.assign(weights["softmax/weights"])
    lm.softmax_bias.assign(weights["softmax/bias"])


def encoder_weights(lm, config: PretrainConfig) -> dict[str, np.ndarray]:
    """The LM's weights under the encoder directory's names (see encoder.weight_shapes)."""
    out = {"embedding": np.asarray(lm.embedding.embeddings.numpy())}
    for direction, layer in (("forward", lm.forward_lstm), ("backward", lm.backward_lstm)):
        cell = layer.cell
        out[f"{direction}/kernel"] = cell.kernel.numpy()
        out[f"{direction}/recurrent_kernel"] = cell.recurrent_kernel.numpy()
        out[f"{direction}/bias"] = cell.bias.numpy()
    if config.softmax == "sampled":
        out["softmax/weights"] = lm.softmax_weights.numpy()
    out["softmax/bias"] = lm.softmax_bias.numpy()
    return out


# --------------------------------------------------------------------------------------------
# Checkpoints: <output>/.checkpoint/{corpus.npz, vocab.txt, corpus.json, state/}
# --------------------------------------------------------------------------------------------

def _settings_key(config: PretrainConfig, source: str, start=None) -> dict[str, Any]:
    return {"config": config.to_dict(), "source": source, "format": CHECKPOINT_FORMAT,
            "init_from": None if start is None else start.meta["files"]}


def save_corpus_checkpoint(ckpt: Path, corpus: Corpus, key: dict[str, Any]) -> None:
    """Store the encoded corpus once, so a resumed run does not read and clean the text again."""
    ckpt.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(dir=ckpt, prefix=".corpus.tmp-"))
    np.savez(tmp / "corpus.npz", train=corpus.train, heldout=corpus.heldout, counts=corpus.counts)
    corpus.vocab.save(tmp / "vocab.txt")
    (tmp / "corpus.json").write_text(json.dumps({**key, "description": corpus.description}),
                                     encoding="utf-8")
    for name in ("corpus.npz", "vocab.txt", "corpus.json"):  # corpus.json last: it marks "done"
        os.replace(tmp / name, ckpt / name)
    shutil.rmtree(tmp, ignore_errors=True)


def load_corpus_checkpoint(ckpt: Path, key: dict[str, Any]) -> Corpus | None:
    """The checkpointed corpus, None when there is none; ConfigError when its settings differ."""
    marker = ckpt / "corpus.json"
    if not marker.is_file():
        return None
    saved = json.loads(marker.read_text(encoding="utf-8"))
    if {k: saved.get(k) for k in key} != key:
        changed = sorted(k for k in key["config"] if saved.get("config", {}).get(k)
                         != key["config"][k])
        what = f"settings {', '.join(changed)}" if changed else "data source"
        raise ConfigError(
            f"{ckpt.parent}: holds an unfinished pretraining run with a different {what}; run "
            f"the same command to resume it, or delete {ckpt} to start over"
        )
    with np.load(ckpt / "corpus.npz", allow_pickle=False) as arrays:
        train, heldout, counts = arrays["train"], arrays["heldout"], arrays["counts"]
    vocab = Vocabulary.load(ckpt / "vocab.txt")
    return Corpus(vocab, train, heldout, saved["description"], counts)


def save_state_checkpoint(ckpt: Path, lm, optimizer, state: _State) -> None:
    """Weights, optimizer slots and the data position, swapped in atomically."""
    tmp = Path(tempfile.mkdtemp(dir=ckpt, prefix=".state.tmp-"))
    try:
        np.savez(tmp / "weights.npz", *[np.asarray(v.numpy()) for v in lm.weights])
        np.savez(tmp / "optimizer.npz", *[np.asarray(v.numpy()) for v in optimizer.variables])
        (tmp / "state.json").write_text(json.dumps(
            {"epoch": state.epoch, "step": state.step, "tokens": state.tokens,
             "seconds": state.seconds, "history": state.history,
             "trace_sum": state.trace_sum, "trace_steps": state.trace_steps}), encoding="utf-8")
        final, old = ckpt / "state", ckpt / ".state.old"
        shutil.rmtree(old, ignore_errors=True)
        if final.exists():
            os.replace(final, old)
        os.replace(tmp, final)
        shutil.rmtree(old, ignore_errors=True)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise


def load_state_checkpoint(ckpt: Path, lm, optimizer) -> _State | None:
    """Restore weights and optimizer from the newest complete state; None when there is none."""
    for folder in (ckpt / "state", ckpt / ".state.old"):
        if (folder / "state.json").is_file():
            break
    else:
        return None
    saved = json.loads((folder / "state.json").read_text(encoding="utf-8"))
    optimizer.build(lm.trainable_variables)
    for path, variables in ((folder / "weights.npz", lm.weights),
                            (folder / "optimizer.npz", optimizer.variables)):
        with np.load(path, allow_pickle=False) as arrays:
            values = [arrays[f"arr_{i}"] for i in range(len(arrays.files))]
        if len(values) != len(variables):
            raise ConfigError(f"{path}: checkpoint does not fit this network; delete {ckpt} "
                              "to start over")
        for variable, value in zip(variables, values):
            variable.assign(value)
    # Checkpoints written before the trace existed have no trace sums: start from zero.
    return _State(saved["epoch"], saved["step"], saved["tokens"], saved["seconds"],
                  saved["history"], float(saved.get("trace_sum", 0.0)),
                  int(saved.get("trace_steps", 0)))


# --------------------------------------------------------------------------------------------
# Training
# --------------------------------------------------------------------------------------------

def learning_rate_at(config: PretrainConfig, global_step: int, total_steps: int) -> float:
    """Slanted triangle (Howard & Ruder 2018): a short linear warm-up, then a linear decay."""
    warm = min(WARMUP_STEPS, max(1, total_steps // 10))
    if global_step < warm:
        return config.learning_rate * (global_step + 1) / warm
    done = min(1.0, (global_step - warm) / max(1, total_steps - warm))
    return config.learning_rate * (1.0 - (1.0 - FINAL_LR_SHARE) * done)


def evaluate_stream(eval_step, stream: np.ndarray, bptt: int, *, max_tokens: int = EVAL_TOKENS,
                    batch_size: int = 64) -> float:
    """Mean full-softmax cross-entropy (nats per token, both directions) over evenly spread
    windows of a stream, at most max_tokens of them."""
    bptt = max(1, min(bptt, len(stream) - 1))
    starts = windows(stream, bptt)
    keep = max(1, max_tokens // bptt)
    if len(starts) > keep:
        starts = starts[np.linspace(0, len(starts) - 1, keep).astype(np.int64)]
    total = 0.0
    for i in range(0, len(starts), batch_size):
        total += float(eval_step(gather_windows(stream, starts[i:i + batch_size], bptt)))
    return total / (2 * len(starts) * bptt)


def _end_epoch(state: _State, eval_step, corpus: Corpus, config: PretrainConfig,
               epoch_seconds: float, epoch_tokens: int) -> None:
    train_loss = evaluate_stream(eval_step, corpus.train, config.bptt, max_tokens=EVAL_TOKENS // 2)
    heldout_loss = evaluate_stream(eval_step, corpus.heldout, config.bptt)
    for key, value in (("loss", train_loss), ("perplexity", math.exp(min(train_loss, 50))),
                       ("heldout_loss", heldout_loss),
                       ("heldout_perplexity", math.exp(min(heldout_loss, 50))),
                       ("tokens_per_s", epoch_tokens / max(epoch_seconds, 1e-9))):
        state.history.setdefault(key, []).append(round(float(value), 4))
    # Where each epoch's measurements sit on the trace's axis.
    state.history.setdefault("tokens_seen", []).append(int(state.tokens))


def _add_to_trace(state: _State, loss: float, every: int, steps: int) -> None:
    """Fold one step's loss into the trace; every `every` steps, and at the end of the epoch,
    append the mean loss since the last point and the tokens seen so far."""
    state.trace_sum += loss
    state.trace_steps += 1
    if state.step % every and state.step < steps:
        return
    state.history.setdefault(TRACE_TOKENS, []).append(int(state.tokens))
    state.history.setdefault(TRACE_LOSS, []).append(
        round(state.trace_sum / state.trace_steps, 4))
    state.trace_sum, state.trace_steps = 0.0, 0


def _train_loop(lm, optimizer, corpus: Corpus, config: PretrainConfig, state: _State, ckpt: Path,
                *, report: Callable[[PretrainProgress], None], deadline: float | None) -> bool:
    """Train from state to the last epoch; False when the deadline stopped it first."""
    import tensorflow as tf

    train_step, eval_step = make_step_functions(lm, optimizer, config)
    starts = windows(corpus.train, config.bptt)
    steps = len(starts) // config.batch_size
    total_steps, batch_tokens = steps * config.epochs, config.batch_size * config.bptt
    trace_every = max(1, steps // TRACE_POINTS_PER_EPOCH)
    started = last_ckpt = tick = time.perf_counter()
    session_tokens, running = 0, None
    while state.epoch < config.epochs:
        order = window_order(len(starts), config.seed, state.epoch)
        epoch_started, epoch_tokens = time.perf_counter(), 0
        while state.step < steps:
            global_step = state.epoch * steps + state.step
            optimizer.learning_rate.assign(learning_rate_at(config, global_step, total_steps))
            idx = order[state.step * config.batch_size:(state.step + 1) * config.batch_size]
            loss = float(train_step(gather_windows(corpus.train, starts[idx], config.bptt),
                                    tf.constant([config.seed, global_step], tf.int64)))
            if not math.isfinite(loss):
                raise FloatingPointError(f"the language model loss became {loss} at step "
                                         f"{global_step}; lower learning_rate")
            running = loss if running is None else 0.98 * running + 0.02 * loss
            state.step += 1
            state.tokens += batch_tokens
            session_tokens += batch_tokens
            epoch_tokens += batch_tokens
            # Before any checkpoint or report: an interruption keeps this step in the trace.
            _add_to_trace(state, loss, trace_every, steps)
            now = time.perf_counter()
            state.seconds, tick = state.seconds + now - tick, now
            if now - last_ckpt >= config.checkpoint_minutes * 60:
                save_state_checkpoint(ckpt, lm, optimizer, state)
                last_ckpt = time.perf_counter()
            rate = session_tokens / max(now - started, 1e-9)
            report(PretrainProgress("training", state.epoch + 1, config.epochs, state.step, steps,
                                    rate, (total_steps - global_step - 1) * batch_tokens / rate,
                                    running))
            if deadline is not None and now >= deadline:
                save_state_checkpoint(ckpt, lm, optimizer, state)
                return False
        report(PretrainProgress("evaluating", state.epoch + 1, config.epochs, steps, steps))
        _end_epoch(state, eval_step, corpus, config, time.perf_counter() - epoch_started,
                   epoch_tokens)
        state.epoch, state.step = state.epoch + 1, 0
        save_state_checkpoint(ckpt, lm, optimizer, state)
        last_ckpt = tick = time.perf_counter()
    return True


def _prepare_corpus(config: PretrainConfig, source, ckpt: Path, key: dict[str, Any], *,
                    text_column, cache_dir, download_progress, report, start=None) -> Corpus:
    corpus = load_corpus_checkpoint(ckpt, key) if ckpt.is_dir() else None
    if corpus is not None:
        return corpus
    report(PretrainProgress("reading"))
    texts, description = load_pretraining_texts(source, config=config, text_column=text_column,
                                                cache_dir=cache_dir,
                                                download_progress=download_progress)
    corpus = build_corpus(texts, config, description,
                          vocab=start.vocab if start is not None else None)
    del texts
    need = config.batch_size * config.bptt + 1
    if len(corpus.train) < need:
        raise InputError(
            f"{description.get('source')}: {len(corpus.train)} tokens of text to pretrain on; "
            f"one batch needs {need} (batch_size x bptt + 1): give more text or lower them"
        )
    save_corpus_checkpoint(ckpt, corpus, key)
    return corpus


def run_pretraining(
    config: PretrainConfig,
    *,
    source: str | os.PathLike[str],
    output_dir: str | os.PathLike[str],
    text_column: str | None = None,
    overwrite: bool = False,
    cache_dir: str | os.PathLike[str] | None = None,
    progress: Callable[[PretrainProgress], None] | None = None,
    download_progress=None,
    time_limit_s: float | None = None,
    name: str | None = None,
    init_from: str | os.PathLike[str] | None = None,
) -> PretrainResult:
    """Pretrain the encoder and save it as an encoder directory at output_dir.

    Checkpoints go to output_dir/.checkpoint every epoch, every config.checkpoint_minutes and on
    Ctrl-C; the same call again resumes from there (ConfigError if the settings changed). With
    time_limit_s the run stops after that many seconds of this call and still saves an encoder,
    marked incomplete, keeping the checkpoint so the same call can continue it.
    init_from, an encoder directory, starts the language models from its weights and keeps its
    vocabulary (more epochs, or adapting the shipped encoder to a user's own reviews).
    """
    output_dir = Path(output_dir)
    ckpt = output_dir / CHECKPOINT_DIR
    start = _starting_encoder(init_from, config)
    key = _settings_key(config, str(source), start)
    report = progress or (lambda _event: None)
    if not (ckpt / "corpus.json").is_file():
        check_encoder_target(output_dir, overwrite=overwrite)
    corpus = _prepare_corpus(config, source, ckpt, key, text_column=text_column,
                             cache_dir=cache_dir, download_progress=download_progress,
                             report=report, start=start)
    lm, optimizer, state = _start_training(config, corpus, ckpt, start)
    steps = len(windows(corpus.train, config.bptt)) // config.batch_size
    resumed_from = state.epoch * steps + state.step
    deadline = time.perf_counter() + time_limit_s if time_limit_s else None
    try:
        completed = _train_loop(lm, optimizer, corpus, config, state, ckpt, report=report,
                                deadline=deadline)
    except KeyboardInterrupt:
        save_state_checkpoint(ckpt, lm, optimizer, state)
        raise
    report(PretrainProgress("saving", state.epoch, config.epochs))
    epochs_done = state.epoch + state.step / max(1, steps)
    meta = _encoder_meta(config, corpus, state, name or output_dir.name, epochs_done,
                         completed, start)
    device = meta["device"]
    save_encoder_dir(output_dir, weights=encoder_weights(lm, config), vocab=corpus.vocab,
                     config=config, history=state.history, meta=meta, overwrite=True,
                     keep_checkpoint=not completed)
    return PretrainResult(
        encoder_dir=output_dir, config=config, history=state.history, corpus=corpus.description,
        tokens_seen=state.tokens, epochs_done=epochs_done, train_seconds=state.seconds,
        tokens_per_s=state.tokens / max(state.seconds, 1e-9), device=device,
        resumed_from_step=resumed_from, completed=completed,
    )


def _start_training(config: PretrainConfig, corpus: Corpus, ckpt: Path, start):
    """(language model, optimizer, state): fresh, from the starting encoder, or restored from
    the checkpoint."""
    import keras

    keras.utils.set_random_seed(config.seed)
    lm = build_language_model(config, len(corpus.vocab), corpus.counts)
    if start is not None:
        set_language_model_weights(lm, config, start.weights)
    optimizer = keras.optimizers.Adam(learning_rate=config.learning_rate,
                                      global_clipnorm=config.clipnorm or None)
    state = load_state_checkpoint(ckpt, lm, optimizer) or _State()
    return lm, optimizer, state


def _encoder_meta(config: PretrainConfig, corpus: Corpus, state: _State, name: str,
                  epochs_done: float, completed: bool, start) -> dict[str, Any]:
    import keras
    import tensorflow as tf

    from review_scorer.training.train import describe_device

    history = state.history
    started_from = None if start is None else {
        k: v for k, v in start.summary().items() if k not in ("config", "history")}
    return {
        "name": name,
        "created_at": _dt.datetime.now().astimezone().isoformat(timespec="seconds"),
        "corpus": corpus.description,
        "tokens": len(corpus.train),
        "tokens_seen": int(state.tokens),
        "epochs": round(epochs_done, 3),
        "completed": completed,
        "train_seconds": round(state.seconds, 1),
        "tokens_per_second": round(state.tokens / max(state.seconds, 1e-9), 1),
        "heldout_perplexity": (history.get("heldout_perplexity") or [None])[-1],
        "softmax": config.softmax,
        "initialized_from": started_from,
        "device": describe_device(),
        "versions": {"review_scorer": __version__, "tensorflow": tf.__version__,
                     "keras": keras.__version__, "python": platform.python_version(),
                     "numpy": np.__version__},
    }
