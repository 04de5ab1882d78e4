"""Word attributions: how much each word the model read pushed a review's score up or down."""

# Methods, chosen by measurement (benchmarks/explain_faithfulness.py; table in RESULTS.md):
#
# "pooling_delta", the default for this package's recurrent models: run the model up to the
# encoder outputs H (T steps x D channels) once, take the gradient g of the output logit with
# respect to the pooled vector (only the small dense head is differentiated), and hand g x pooled
# back to the tokens. A forward LSTM state is the sum of the changes each token made to it,
# h_t = sum over s <= t of (h_s - h_{s-1}) from a zero start (backwards: s >= t), so a channel's
# max at step t* is credited to the tokens that built it and the mean over n steps credits token
# s's change (n - s)/n times (forwards) or (s + 1)/n times (backwards). This follows the idea of
# Murdoch & Szlam (2017, "Automatic Rule Extraction from Long Short Term Memory Networks") of
# crediting each word with the change in state it causes. The weights add up exactly to
# g . pooled. Cost: one forward pass, the same work as scoring (whose scores it returns too), plus
# elementwise work on H and the head's backward pass. Measured on 2,000 IMDB test reviews with
# the shipped model (benchmarks/explain_faithfulness.py): deleting each review's top-3 words
# moved the score 9.4x as much as deleting 3 random ones (integrated gradients with 16 steps
# 8.1x, gradient x input 7.6x, "pooling" 8.8x), and explaining took 1.33x the time of scoring
# the same texts (spans in the original text included; gradient x input 3.6x, integrated
# gradients 50x). The previous 2-network model gave the same ranking (8.2x, 7.8x, 6.8x, 6.8x).
#
# "pooling": the same, but each step is credited with its own state (a channel's max goes to the
# step that won it, the mean spreads h_t / n): cheaper still, but a state carries everything read
# before it, so after "wonderful" every later word looks positive. Measured, not used.
#
# "grad_input": gradient x input on the embedding outputs. Works for any single-input token-id
# Keras model (the fallback when the architecture is not embedding -> RNN -> MaskedPooling ->
# dense), at the price of a backward pass through the recurrent layers (about 3x scoring).
#
# "integrated_gradients" (Sundararajan et al., 2017, "Axiomatic Attribution for Deep Networks"):
# gradients averaged along the straight path from all-zero embeddings to the review's embeddings,
# times the embeddings; `steps` forward+backward passes. A reference in the benchmark only.
#
# Weights are in logit units (log-odds of "positive"): comparable across reviews, positive pushes
# towards positive sentiment. For an ensemble that averages member probabilities the explained
# quantity is the logit of that average.

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from review_scorer.model.sentiment import DEFAULT_BATCH_SIZE
from review_scorer.model.spec import NetworkSpec, UnsupportedNetwork, embedding_layers, read_spec
from review_scorer.text.batching import length_bucketed_batches, pad_batch
from review_scorer.text.cleaning import clean_and_align
from review_scorer.text.vocabulary import truncate

METHODS = ("pooling_delta", "pooling", "grad_input", "integrated_gradients")


@dataclass
class Attribution:
    """One review's attribution: the tokens the model read (after truncation) and their weights.

    tokens: cleaned tokens in reading order; ids: their vocabulary ids (OOV_ID for unknown words);
    weights: float32 signed weights in logit units (positive pushes towards positive);
    starts/ends: character offsets of each token in the ORIGINAL review text, or None when the
    cleaned tokens could not be aligned with the text (then no span is offered rather than a
    wrong one); score: the model's probability of positive for the review.
    """

    score: float
    tokens: list[str]
    ids: np.ndarray
    weights: np.ndarray
    starts: np.ndarray | None
    ends: np.ndarray | None
    positions: np.ndarray  # index of each read token in the review's full token sequence

    @property
    def spans(self) -> list[tuple[int, int, float]]:
        """(start, end, weight) per read token, offsets into the original text; [] if unaligned."""
        if self.starts is None or self.ends is None:
            return []
        return [(int(s), int(e), float(w)) for s, e, w in zip(self.starts, self.ends, self.weights)]


# ------------------------------------------------------------------------------ model structure

# The hidden layers of the head are applied by hand (the output's sigmoid is left off), so only
# activations this module has checked pass.
_HIDDEN_ACTIVATIONS = ("relu", "linear", "tanh")


def pooled_networks(model) -> tuple[NetworkSpec, ...] | None:
    """The networks of a model's spec (model.spec.read_spec) when the pooling methods explain
    them: each pools its recurrent outputs with MaskedPooling and ends in Dense(1, sigmoid);
    None for any other model (the gradient methods still explain it)."""
    try:
        networks = read_spec(model).networks
    except UnsupportedNetwork:
        return None
    for network in networks:
        *hidden, output = network.head
        if not network.pooled or output.activation != "sigmoid" or any(
                dense.activation not in _HIDDEN_ACTIVATIONS for dense in hidden):
            return None
    return networks


# ------------------------------------------------------------------------------ TensorFlow parts


def _encode(network: NetworkSpec, x, mask):
    """Encoder outputs for embedded inputs x (float32), the mask passed explicitly."""
    for recurrent in network.recurrent:
        x = recurrent.layer(x, mask=mask, training=False)
    return x


def _member_logit(network: NetworkSpec, pooled):
    """The network's pre-sigmoid output for pooled features."""
    import tensorflow as tf

    from review_scorer.model.fast_lstm import apply_dense

    # The dense layers are applied by hand so the final sigmoid can be left off.
    x = pooled
    *hidden, output = network.head
    for dense in hidden:
        x = apply_dense(dense, x)
    return tf.reshape(apply_dense(output, x, activation=False), [-1])


def _joint_logit(logits):
    """Logit of the mean member probability (the Average ensemble's output), computed stably."""
    import tensorflow as tf

    if len(logits) == 1:
        return logits[0]
    z = tf.stack(logits, axis=0)
    log_p = tf.reduce_logsumexp(tf.math.log_sigmoid(z), axis=0)
    log_q = tf.reduce_logsumexp(tf.math.log_sigmoid(-z), axis=0)
    return log_p - log_q  # the log(n) of both means cancels


def _embed(network: NetworkSpec, ids):
    import tensorflow as tf

    return tf.cast(network.embedding.layer(ids), tf.float32)


def _max_credit(h, g_max, maskf):
    """Max half: each channel's g * max value goes to the time step that won that channel."""
    import tensorflow as tf

    from review_scorer.model.layers import padding_penalty

    masked = h + padding_penalty(maskf)
    winner = tf.argmax(masked, axis=1, output_type=tf.int32)  # (B, D)
    contrib = g_max * tf.reduce_max(masked, axis=1)
    batch, steps = tf.shape(h)[0], tf.shape(h)[1]
    segment = tf.range(batch)[:, None] * steps + winner
    flat = tf.math.unsorted_segment_sum(tf.reshape(contrib, [-1]), tf.reshape(segment, [-1]), batch * steps)
    return tf.reshape(flat, [batch, steps])


def _pooling_credit(h, g, maskf, mode):
    """Gradient x input at the pooling layer, spread back over the time steps (B, T)."""
    import tensorflow as tf

    width = tf.shape(h)[-1]
    w = tf.zeros(tf.shape(h)[:2], tf.float32)
    if mode in ("max", "max_mean"):
        w += _max_credit(h, g[:, :width], maskf)
    if mode in ("mean", "max_mean"):
        g_mean = g[:, width:] if mode == "max_mean" else g
        count = tf.maximum(tf.reduce_sum(maskf, axis=[1, 2]), 1.0)
        w += tf.einsum("btd,bd->bt", h, g_mean) * maskf[..., 0] / count[:, None]
    return w


def _delta_credit(h, g, maskf, mode, forward_width: int):
    """Pooling credit with every state split into the changes each token made to it.

    A forward state is h_t = sum over s <= t of (h_s - h_{s-1}) from a zero start (a backward
    one sums s >= t), so a channel's max at step t* is credited to the tokens that built it,
    and the mean over n steps credits token s's change (n - s)/n times forwards, (s + 1)/n times
    backwards. The credits still add up to g . pooled exactly.
    """
    import tensorflow as tf

    from review_scorer.model.layers import padding_penalty

    width = h.shape[-1]
    steps = tf.range(tf.shape(h)[1])
    at = tf.cast(steps, tf.float32)[None, :]
    count = tf.reduce_sum(maskf, axis=1)  # (B, 1)
    masked = h + padding_penalty(maskf) if mode != "mean" else None
    g_mean = g[:, width:] if mode == "max_mean" else g
    w = tf.zeros(tf.shape(h)[:2], tf.float32)
    for lo, hi, forward in ((0, forward_width, True), (forward_width, width, False)):
        if hi <= lo:
            continue
        if forward:  # the state before step 0 is zero; steps past the end never enter
            part = h[..., lo:hi]
            delta = part - tf.pad(part[:, :-1], [[0, 0], [1, 0], [0, 0]])
        else:  # padding must read as the zero state the backward pass starts from
            part = h[..., lo:hi] * maskf
            delta = part - tf.pad(part[:, 1:], [[0, 0], [0, 1], [0, 0]])
        if mode != "mean":
            winner = tf.argmax(masked[..., lo:hi], axis=1, output_type=tf.int32)[:, None, :]
            covered = steps[None, :, None] <= winner if forward else steps[None, :, None] >= winner
            w += tf.reduce_sum(delta * tf.where(covered, g[:, None, lo:hi], 0.0), axis=-1)
        if mode != "max":
            share = (count - at if forward else at + 1.0) / tf.maximum(count, 1.0)
            w += share * tf.einsum("btd,bd->bt", delta, g_mean[:, lo:hi])
    return w * maskf[..., 0]


def _fast_states(model, networks: tuple[NetworkSpec, ...]):
    """fast_lstm's recurrent outputs for these networks, when it is on (CPU, not switched off)
    and computes them (both read the model's one spec, so its networks are these); else None
    and the encoders run through Keras. The pooling methods need no gradient through the LSTM,
    only its outputs, so the fast forward pass serves them unchanged."""
    from review_scorer.model.fast_lstm import build_fast_states, fast_lstm_allowed

    if not fast_lstm_allowed():
        return None
    states = build_fast_states(model)
    if states is None or tuple(states.networks) != tuple(networks):  # the same objects
        return None
    return states


def _own_order_delta_credit(states, lengths, penalty, g_max, g_mean, max_value=None):
    """_delta_credit for one direction, on its time-major states [steps, batch, units] in its
    own reading order (a backward direction's rows reversed within their lengths). In that
    order both directions read alike: token r's change is h_r - h_(r-1) from a zero start, a
    channel's max at r* credits the changes r <= r*, and the mean credits change r (n - r)/n
    times. Returns [steps, batch] credits, in the same order, zero past each row's length.
    max_value: the pooled max [batch, units], when the caller has it.

    The sums over channels are taken before the differences, which saves passes over the
    states (the cost here is memory traffic): with S(r) = sum over channels of g h_r,
    sum g (h_r - h_(r-1)) = S(r) - S(r-1). For the max, A(r) = sum over channels with r <= r*
    of g h_r gives the covered changes as A(r) - A(r-1) + W(r-1), where W(r) is g times the
    max of the channels whose max is at r (they are covered at r but not at r + 1).
    """
    import tensorflow as tf

    count, rows = tf.shape(states)[0], tf.shape(states)[1]
    steps = tf.range(count)
    valid = tf.cast(steps[:, None] < lengths[None, :], tf.float32)  # [steps, batch]

    def previous(x):  # x(r - 1), zero at r = 0
        return tf.pad(x[:-1], [[1, 0], [0, 0]])

    credit = tf.zeros(tf.shape(valid), tf.float32)
    if g_max is not None:
        # [batch, units]; TensorFlow's CPU argmax is several times faster along the last axis
        # than along the first, even counting the transpose.
        winner = tf.argmax(tf.transpose(states + penalty, [1, 2, 0]), axis=-1, output_type=tf.int32)
        weighted = states * g_max[None]
        covered = tf.reduce_sum(tf.where(steps[:, None, None] <= winner[None], weighted, 0.0), axis=-1)
        if max_value is None:
            max_value = tf.reduce_max(states + penalty, axis=0)
        at_max = g_max * max_value  # [batch, units]: g h at each channel's winning step
        won = tf.math.unsorted_segment_sum(  # W, scattered to [steps * batch]
            tf.reshape(at_max, [-1]), tf.reshape(winner * rows + tf.range(rows)[:, None], [-1]),
            count * rows)
        credit += covered - previous(covered) + previous(tf.reshape(won, [count, rows]))
    if g_mean is not None:
        n = tf.cast(tf.maximum(lengths, 1), tf.float32)[None, :]
        share = (n - tf.cast(steps, tf.float32)[:, None]) / n
        summed = tf.einsum("tbu,bu->tb", states, g_mean)
        credit += share * (summed - previous(summed))
    return credit * valid


def _fast_delta_fn(members: tuple[NetworkSpec, ...], fast_states):
    """pooling_delta on fast_lstm's per-direction states: the same credits as _pooling_fn's
    (tests/test_fast_lstm.py), without building the text-order, batch-major copy of H."""
    import tensorflow as tf

    from review_scorer.model.fast_lstm import join_directions
    from review_scorer.model.layers import masked_pool

    @tf.function(input_signature=[tf.TensorSpec([None, None], tf.int32)], reduce_retracing=True,
                 autograph=False)
    def run(ids):
        batch, networks = fast_states.directions(ids)
        lengths, penalty = batch.lengths, batch.padding_penalty
        pooled = [[masked_pool(h, batch.weights, m.pooling, axis=0) for _, h in directions]
                  for m, directions in zip(members, networks)]
        with tf.GradientTape() as tape:
            tape.watch(pooled)
            logits = [_member_logit(m, join_directions(parts)) for m, parts in zip(members, pooled)]
            logit = _joint_logit(logits)
            total = tf.reduce_sum(logit)
        grads = tape.gradient(total, pooled)
        credit = None
        for directions, parts, part_grads in zip(networks, pooled, grads):
            for (backwards, h), p, g in zip(directions, parts, part_grads):
                w = _own_order_delta_credit(h, lengths, penalty, g.get("max"), g.get("mean"),
                                            p.get("max"))
                if backwards:  # back into text order
                    w = tf.reverse_sequence(w, lengths, seq_axis=0, batch_axis=1)
                credit = w if credit is None else credit + w
        return tf.sigmoid(logit), tf.transpose(credit)

    return run


def _pooling_fn(members: tuple[NetworkSpec, ...], *, delta: bool, fast_states=None):
    import tensorflow as tf

    from review_scorer.model.layers import pooled_features

    def credit(h, g, maskf, m):
        if delta:
            return _delta_credit(h, g, maskf, m.pooling, m.recurrent[-1].units)
        return _pooling_credit(h, g, maskf, m.pooling)

    @tf.function(input_signature=[tf.TensorSpec([None, None], tf.int32)], reduce_retracing=True,
                 autograph=False)  # plain Python control flow only: skip the costly conversion
    def run(ids):
        mask = tf.not_equal(ids, 0)
        maskf = tf.cast(mask, tf.float32)[..., None]
        hs = (fast_states(ids) if fast_states is not None
              else [_encode(m, _embed(m, ids), mask) for m in members])
        pooled = [pooled_features(h, maskf, m.pooling, axis=1) for h, m in zip(hs, members)]
        with tf.GradientTape() as tape:
            tape.watch(pooled)
            logit = _joint_logit([_member_logit(m, p) for m, p in zip(members, pooled)])
            total = tf.reduce_sum(logit)  # rows are independent: each row's gradient is its own
        grads = tape.gradient(total, pooled)
        w = tf.add_n([credit(h, g, maskf, m) for h, g, m in zip(hs, grads, members)])
        return tf.sigmoid(logit), w

    return run


def _embedding_gradient_fn(members: tuple[NetworkSpec, ...]):
    """(ids, alpha) -> (probability at alpha, grad(alpha * emb) . emb per step): grad x input at 1."""
    import tensorflow as tf

    from review_scorer.model.layers import pooled_features

    @tf.function(input_signature=[tf.TensorSpec([None, None], tf.int32), tf.TensorSpec([], tf.float32)],
                 reduce_retracing=True, autograph=False)
    def run(ids, alpha):
        mask = tf.not_equal(ids, 0)
        maskf = tf.cast(mask, tf.float32)[..., None]
        embs = [_embed(m, ids) for m in members]
        scaled = [alpha * e for e in embs]
        with tf.GradientTape() as tape:
            tape.watch(scaled)
            logits = [_member_logit(m, pooled_features(_encode(m, x, mask), maskf, m.pooling,
                                                       axis=1))
                      for m, x in zip(members, scaled)]
            logit = _joint_logit(logits)
            total = tf.reduce_sum(logit)
        grads = tape.gradient(total, scaled)
        w = tf.add_n([tf.reduce_sum(g * e, axis=-1) for g, e in zip(grads, embs)])
        return tf.sigmoid(logit), w * maskf[..., 0]

    return run


def _generic_gradient_fn(model):
    """Gradient x input on the embedding outputs of any single-input token-id model.

    The gradient of a gather with respect to the table arrives as IndexedSlices whose rows are
    the gradients at each looked-up position, in the order of the ids: exactly the gradient with
    respect to the embedding layer's output, without rebuilding the model.
    """
    import tensorflow as tf

    layers = embedding_layers(model)
    if not layers:
        raise ValueError("the model has no Embedding layer to attribute to")

    @tf.function(input_signature=[tf.TensorSpec([None, None], tf.int32)], reduce_retracing=True,
                 autograph=False)  # plain Python control flow only: skip the costly conversion
    def run(ids):
        flat = tf.reshape(ids, [-1])
        # The backend tf.Variable under each Keras variable is what the tape can watch.
        tables = [getattr(layer.embeddings, "value", layer.embeddings) for layer in layers]
        with tf.GradientTape() as tape:
            tape.watch(tables)
            prob = tf.reshape(tf.cast(model(ids, training=False), tf.float32), [-1])
            p = tf.clip_by_value(prob, 1e-7, 1.0 - 1e-7)
            total = tf.reduce_sum(tf.math.log(p) - tf.math.log1p(-p))
        grads = tape.gradient(total, tables)
        w = tf.zeros(tf.shape(flat), tf.float32)
        for table, g in zip(tables, grads):
            values = g.values if isinstance(g, tf.IndexedSlices) else tf.gather(g, flat)
            x = tf.cast(tf.gather(tf.convert_to_tensor(table), flat), tf.float32)
            w += tf.reduce_sum(tf.cast(values, tf.float32) * x, axis=-1)
        return prob, tf.reshape(w, tf.shape(ids)) * tf.cast(tf.not_equal(ids, 0), tf.float32)

    return run


# ------------------------------------------------------------------------------ the explainer


def _model_parts(model) -> tuple[Any, Any, Any]:
    """(keras model, vocabulary, config) of a SentimentModel or a loaded model-directory bundle."""
    keras_model = getattr(model, "keras_model", None)
    if keras_model is None:
        keras_model = model.model
    return keras_model, model.vocab, model.config


class Explainer:
    """Word attributions for a sentiment model (a SentimentModel or artifacts.ModelBundle).

    method "auto" picks "pooling_delta" when the model is this package's pooled recurrent
    classifier (or an average of them) and "grad_input" otherwise. `steps` is used by integrated gradients.
    """

    def __init__(self, model, *, method: str = "auto", batch_size: int = DEFAULT_BATCH_SIZE,
                 steps: int = 16):
        self.keras_model, self.vocab, self.config = _model_parts(model)
        # A SentimentModel knows its calibration; a bare bundle is scored uncalibrated.
        self.model = model if hasattr(model, "calibrate") else None
        self.members = pooled_networks(self.keras_model)
        if method == "auto":
            method = "pooling_delta" if self.members else "grad_input"
        if method not in METHODS:
            raise ValueError(f"unknown attribution method {method!r}; choose one of {METHODS}")
        if method != "grad_input" and not self.members:
            raise ValueError(f"method {method!r} needs an embedding -> RNN -> MaskedPooling model")
        self.method, self.batch_size, self.steps = method, batch_size, steps
        self.fast = None  # fast_lstm's states function, when the pooling methods can use it
        if method in ("pooling", "pooling_delta"):
            self.fast = _fast_states(self.keras_model, self.members)
            if self.fast is not None and method == "pooling_delta":
                self._run = _fast_delta_fn(self.members, self.fast)
            else:
                self._run = _pooling_fn(self.members, delta=method == "pooling_delta",
                                        fast_states=self.fast)
        elif self.members:
            self._run = _embedding_gradient_fn(self.members)
        else:
            self._run = _generic_gradient_fn(self.keras_model)

    def _batch(self, ids: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Probabilities (B,) and weights (B, T) for one right-padded batch."""
        if self.method in ("pooling", "pooling_delta") or not self.members:
            prob, w = self._run(ids)
            return prob.numpy(), w.numpy()
        if self.method == "grad_input":
            prob, w = self._run(ids, np.float32(1.0))
            return prob.numpy(), w.numpy()
        total = np.zeros(ids.shape, np.float32)
        for k in range(self.steps):  # midpoint Riemann sum over the path from zero embeddings
            _, w = self._run(ids, np.float32((k + 0.5) / self.steps))
            total += w.numpy()
        prob, _ = self._run(ids, np.float32(1.0))
        return prob.numpy(), total / self.steps

    def explain_ids(self, sequences: Sequence[np.ndarray]) -> tuple[np.ndarray, list[np.ndarray]]:
        """Scores and per-token weights for non-empty id sequences, in the given order."""
        lengths = np.fromiter((len(s) for s in sequences), dtype=np.int64, count=len(sequences))
        if len(lengths) and lengths.min() == 0:
            raise ValueError("empty sequences cannot be explained")
        scores, weights = self._network_ids(sequences)
        clauses = getattr(self.model, "clauses", None)
        if clauses is not None:
            self._compose(clauses.plans(sequences), sequences, scores, weights)
        return self._calibrated(scores, weights, sequences)

    def _network_ids(self, sequences: Sequence[np.ndarray]) -> tuple[np.ndarray, list[np.ndarray]]:
        """The network's own probabilities and per-token weights (before any later stage)."""
        lengths = np.fromiter((len(s) for s in sequences), dtype=np.int64, count=len(sequences))
        scores = np.empty(len(lengths), dtype=np.float32)
        weights: list[np.ndarray] = [np.zeros(0, np.float32)] * len(lengths)
        for batch in length_bucketed_batches(lengths, self.batch_size):
            prob, w = self._batch(pad_batch([sequences[i] for i in batch]))
            scores[batch] = prob
            for row, i in enumerate(batch):
                weights[i] = w[row, : lengths[i]].astype(np.float32)
        return scores, weights

    def _compose(self, plans: dict, sequences, scores: np.ndarray, weights: list[np.ndarray]) -> None:
        """The clause rules (model/clauses.py) applied in place: a planned review's logit is a
        weighted sum of its spans' network logits, so its word weights are the spans' weights
        times the same coefficients, each at its span's place."""
        from review_scorer.model.calibration import finite_logits
        from review_scorer.model.clauses import plan_spans

        spans = plan_spans(plans, sequences)
        if not spans:
            return
        span_scores, span_weights = self._network_ids(spans)
        z = finite_logits(span_scores.astype(np.float64))
        at = 0
        for k, plan in plans.items():
            logit, w = 0.0, np.zeros(len(weights[k]), dtype=np.float32)
            for c, s, e in plan:
                logit += c * z[at]
                w[s:e] += np.float32(c) * span_weights[at]
                at += 1
            scores[k], weights[k] = 1.0 / (1.0 + np.exp(-logit)), w

    def _calibrated(self, scores: np.ndarray, weights: list[np.ndarray], sequences):
        """Scores through the model's temperature, and weights (logit units) divided by it, so
        they still add up to the calibrated logit's movement. A lexicon term added to the
        network's logit (model/lexicon.py) gives each word its own term first. With an n-gram
        head stacked on the network (adapted models), the network's weights are scaled by the
        stacker's weight on it and each word also gets its share of the n-gram model's logit."""
        if self.model is None:
            return scores, weights
        lexicon = getattr(self.model, "lexicon", None)
        if lexicon is not None:
            weights = [w + lexicon.token_weights(s) for w, s in zip(weights, sequences)]
        temperature = self.model.temperature
        head = getattr(self.model, "ngram_head", None)
        scale = np.float32((head.alpha if head is not None else 1.0) / temperature)
        if head is not None:
            weights = [w * scale + head.token_weights(s) for w, s in zip(weights, sequences)]
        elif scale != 1.0:
            weights = [w * scale for w in weights]
        return self.model.calibrate(scores, sequences, composed=True), weights

    def _prepare(self, text: Any) -> tuple[list[str], np.ndarray, np.ndarray, Any] | None:
        """(read tokens, their ids, their positions, offsets of all tokens or None) of one review;
        None when it has no word."""
        if not isinstance(text, str):
            return None
        tokens, offsets = clean_and_align(text)
        if not tokens:
            return None
        positions = truncate(np.arange(len(tokens)), self.config.max_len, self.config.truncating)
        if len(positions) < len(tokens):
            tokens = [tokens[p] for p in positions.tolist()]
        return tokens, self.vocab.ids(tokens), positions, offsets

    def explain(self, texts: Sequence[str | None]) -> list[Attribution | None]:
        """One Attribution per text, in order; None for an empty review or one with no word."""
        return self.explain_prepared(self.prepare(texts))

    def prepare(self, texts: Sequence[str | None]) -> list:
        """explain's Python half: each text cleaned, mapped to ids and aligned (None: no word).
        explain_prepared does the rest, the network's part, on a list of these."""
        return [self._prepare(t) for t in texts]

    def explain_prepared(self, prepared: list) -> list[Attribution | None]:
        """explain(texts) for prepared = prepare(texts)."""
        kept = [i for i, p in enumerate(prepared) if p is not None]
        scores, weights = self.explain_ids([prepared[i][1] for i in kept])
        out: list[Attribution | None] = [None] * len(prepared)
        for j, i in enumerate(kept):
            tokens, ids, positions, offsets = prepared[i]
            if offsets is None:
                starts = ends = None
            elif len(positions) == len(offsets[0]):
                starts, ends = offsets
            else:
                starts, ends = offsets[0][positions], offsets[1][positions]
            out[i] = Attribution(float(scores[j]), tokens, ids, weights[j], starts, ends, positions)
        return out


# ------------------------------------------------------------------------------ per-review outputs


def attribution_scores(attributions: Sequence[Attribution | None]) -> np.ndarray:
    """float32 probabilities of positive, NaN where there is no attribution (no words).

    The same numbers SentimentModel.predict gives (to float rounding): a run that explains can
    take its scores from here instead of running the network twice.
    """
    return np.array([np.nan if a is None else a.score for a in attributions], dtype=np.float32)
