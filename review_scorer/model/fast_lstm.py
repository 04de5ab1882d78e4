"""A faster CPU forward pass for the scoring network: input projections per distinct word, a tight loop."""

from __future__ import annotations

import logging
import os
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from review_scorer.model.spec import DenseSpec, DirectionSpec, NetworkSpec, UnsupportedNetwork, read_spec

log = logging.getLogger(__name__)

FAST_LSTM_ENV = "REVIEW_SCORER_FAST_LSTM"
_OFF_VALUES = ("0", "false", "no", "off")
_HEAD_ACTIVATIONS = ("linear", "relu", "sigmoid", "tanh")

# Why this is faster than the Keras layer on CPU (measured on the shipped 2-member BiLSTM(64),
# batches of 256; see benchmarks/fast_lstm.py). Without cuDNN, Keras runs a generic step loop
# that multiplies every step's input by the kernel: as many FLOPs as the recurrent product, and
# the product of a word's vector with a kernel does not depend on where the word stands. Here
# it is computed once per distinct word in the batch (a batch of 256 reviews holds several times
# fewer distinct words than tokens) and gathered into place, so the loop holds only h . U and
# the gate arithmetic. Rejected after measuring: one loop over all directions stacked into a
# batched matmul (slower than separate loops, which TensorFlow also runs side by side), a
# precomputed projection table for the whole vocabulary (as fast, but 20 MB per direction),
# XLA on the whole function (slower on this CPU, and it compiles again for every batch shape)
# and XLA on the gate arithmetic alone (about 4% faster, not worth a compile per batch size).


def _require(condition: bool, why: str) -> None:
    if not condition:
        raise UnsupportedNetwork(why)


def fast_lstm_enabled() -> bool:
    """False when the environment variable REVIEW_SCORER_FAST_LSTM is 0/false/no/off."""
    return os.environ.get(FAST_LSTM_ENV, "1").strip().lower() not in _OFF_VALUES


def fast_lstm_allowed() -> bool:
    """Whether the fast path may replace Keras here: not switched off, and no GPU visible (on a
    GPU the Keras LSTM takes the fused cuDNN kernel, which is faster)."""
    import tensorflow as tf

    return fast_lstm_enabled() and not tf.config.list_logical_devices("GPU")


def build_fast_inference(model: Any) -> Callable | None:
    """The fast forward pass for `model`, or None when its network is not one this module knows.

    `model` is a scoring network from model.build_model/export_model (Embedding with mask_zero
    -> LSTM or Bidirectional(LSTM) with tanh/sigmoid -> MaskedPooling or the last state ->
    Dense layers) or model.average_members of such networks. The result maps right-padded int32
    ids [batch, steps] to float32 probabilities [batch], the same function as the Keras model
    in inference mode (dropout layers are the identity), up to float rounding (~1e-7). It
    carries `fast = True`. It raises InvalidArgumentError for a batch that is not right-padded.
    """
    try:
        networks = fast_networks(model)
    except UnsupportedNetwork as exc:
        log.debug("fast LSTM path not used: %s", exc)
        return None
    import tensorflow as tf

    forward = tf.function(lambda ids: _forward(networks, ids), autograph=False,
                          input_signature=[tf.TensorSpec([None, None], tf.int32)])
    forward.fast = True
    return forward


def fast_networks(model: Any) -> tuple[NetworkSpec, ...]:
    """The networks of `model`'s spec (model.spec.read_spec), when this module reproduces each
    exactly; raises UnsupportedNetwork, naming the reason, for any other model."""
    networks = read_spec(model).networks
    for network in networks:
        _check_network(network)
    return networks


def _check_network(network: NetworkSpec) -> None:
    """What the fast path adds to the spec's rules: one LSTM layer with Keras' default
    activations, a table it can widen to float32 exactly, a head of activations it applies."""
    table = network.embedding
    # Half-precision tables (export_model) widen to float32 exactly, as the next layer does.
    _require(table.dtype in ("float16", "float32") and table.compute_dtype == table.dtype,
             f"an Embedding of {table.dtype} computing in {table.compute_dtype}")
    _require(len(network.recurrent) == 1, f"{len(network.recurrent)} stacked recurrent layers")
    layer = network.recurrent[0]
    _require(layer.kind == "LSTM", f"{layer.kind} where an LSTM should be")
    for direction in layer.directions:
        _require(direction.activation == "tanh", "an LSTM activation other than tanh")
        _require(direction.recurrent_activation == "sigmoid",
                 "an LSTM recurrent activation other than sigmoid")
    for dense in network.head:
        _require(dense.activation in _HEAD_ACTIVATIONS, f"a Dense activation {dense.activation!r}")


# ------------------------------------------------------------------------ the forward pass


def build_fast_states(model: Any) -> Callable | None:
    """For the explainer: a function (traced inline by the caller) mapping right-padded ids
    [batch, steps] to each network's recurrent output sequence [batch, steps, units x
    directions], laid out as Keras' Bidirectional(concat) returns it (forwards channels first,
    every step in text order) and zero on padded steps; or None when the network is not one
    this module knows. Networks come in the spec's order (model.spec.read_spec), with
    `.networks` attached: the spec's own NetworkSpec objects."""
    try:
        networks = fast_networks(model)
    except UnsupportedNetwork as exc:
        log.debug("fast LSTM states not used: %s", exc)
        return None
    if not all(n.pooled for n in networks):
        return None

    def states(ids: Any) -> list[Any]:
        batch = _make_batch(ids)
        return [_network_states(network, batch) for network in networks]

    def directions(ids: Any) -> tuple[_Batch, list[list[tuple[bool, Any]]]]:
        """(the batch's lengths and masks, and per network each direction as (reads backwards,
        states [steps, batch, units] in its own reading order)). Valid steps come first in both
        orders; padded steps hold states to ignore. layers.masked_pool(h, batch.weights, mode,
        axis=0) pools them as the network does."""
        batch = _make_batch(ids)
        return batch, [[(direction.backward, h) for direction, h in _direction_states(network, batch)]
                       for network in networks]

    states.networks = networks
    states.directions = directions
    return states


def _network_states(network: NetworkSpec, batch: _Batch) -> Any:
    import tensorflow as tf

    outputs = []
    for direction, states in _direction_states(network, batch):
        if direction.backward:  # back into text order (padded steps stay where they are)
            states = tf.reverse_sequence(states, batch.lengths, seq_axis=0, batch_axis=1)
        outputs.append(states)
    joined = tf.concat(outputs, axis=-1) if len(outputs) > 1 else outputs[0]
    return tf.transpose(joined * batch.weights, [1, 0, 2])


def _make_batch(ids: Any) -> _Batch:
    """What every network of one batch shares: distinct words, their positions, lengths, masks."""
    import tensorflow as tf

    from review_scorer.model.layers import padding_penalty

    mask = tf.not_equal(ids, 0)
    lengths = tf.reduce_sum(tf.cast(mask, tf.int32), axis=1)
    steps = tf.range(tf.shape(ids)[1])
    # Every step runs for every row here; only right padding keeps padding out of valid steps.
    tf.debugging.assert_equal(mask, steps[None, :] < lengths[:, None], message=(
        "fast LSTM path: the ids are not right-padded (id 0 inside a row)"))
    time_major = tf.transpose(ids)
    words, index = tf.unique(tf.reshape(time_major, [-1]))
    index = tf.reshape(index, tf.shape(time_major))
    weights = tf.cast(tf.transpose(mask), tf.float32)[:, :, None]
    return _Batch(words, index, tf.reverse_sequence(index, lengths, seq_axis=0, batch_axis=1),
                  lengths, weights, padding_penalty(weights))


def _forward(networks: tuple[NetworkSpec, ...], ids: Any) -> Any:
    """Mean probability of the networks for right-padded ids [batch, steps]."""
    batch = _make_batch(ids)
    total = None
    for network in networks:
        probability = _network_probability(network, batch)
        total = probability if total is None else total + probability  # keras' Average order
    return total if len(networks) == 1 else total / len(networks)


@dataclass
class _Batch:
    words: Any  # the distinct ids of the batch
    index: Any  # [steps, batch] position of each token in `words`
    reversed_index: Any  # the same with each row reversed within its length
    lengths: Any  # [batch]
    weights: Any  # [steps, batch, 1] 1.0 on valid steps, 0.0 on padding
    padding_penalty: Any  # [steps, batch, 1] 0 on valid steps, -1e9 on padding (MaskedPooling's)


def _network_probability(network: NetworkSpec, batch: _Batch) -> Any:
    import tensorflow as tf

    from review_scorer.model.layers import masked_pool

    pooled = []  # per direction: {"last"} or {"max", "mean"} as MaskedPooling's mode asks
    for _, states in _direction_states(network, batch):
        # A backward direction's states stay in its own (reversed) order: max and mean over
        # the valid steps do not depend on the order, and reversal moves no padded step.
        pooled.append(masked_pool(states, batch.weights, network.pooling, axis=0) if network.pooled
                      else {"last": _last_state(states, batch.lengths)})
    x = join_directions(pooled)
    for dense in network.head:
        x = apply_dense(dense, x)
    return tf.reshape(x, [-1])


def apply_dense(dense: DenseSpec, x: Any, *, activation: bool = True) -> Any:
    """A head layer by hand: x . kernel + bias, then its activation unless `activation` is
    False (the explainer reads the output layer's logit)."""
    import tensorflow as tf

    x = tf.matmul(x, tf.convert_to_tensor(dense.kernel))
    if dense.bias is not None:
        x = x + tf.convert_to_tensor(dense.bias)
    function = {"relu": tf.nn.relu, "sigmoid": tf.sigmoid, "tanh": tf.tanh}.get(dense.activation)
    return x if function is None or not activation else function(x)  # None: "linear"


def join_directions(pooled: list[dict[str, Any]]) -> Any:
    """The features the head reads, from each direction's pooled parts ({"last": ...} or
    masked_pool's {"max": ..., "mean": ...}) in the order of the network's directions. Keras
    concatenates the directions, then pools: [max fwd, max bwd, mean fwd, mean bwd]."""
    import tensorflow as tf

    parts = [part[kind] for kind in ("last", "max", "mean") for part in pooled if kind in part]
    return tf.concat(parts, axis=-1) if len(parts) > 1 else parts[0]


def _direction_states(network: NetworkSpec, batch: _Batch) -> list[tuple[DirectionSpec, Any]]:
    """Each direction with its states [steps, batch, units], in the order it reads the text
    (a backward direction's rows reversed within their lengths)."""
    import tensorflow as tf

    vectors = tf.cast(tf.gather(tf.convert_to_tensor(network.embedding.table), batch.words),
                      tf.float32)
    out = []
    for direction in network.recurrent[0].directions:
        # Input projection once per distinct word, then placed at every step that word fills.
        projected = tf.matmul(vectors, tf.convert_to_tensor(direction.kernel))
        if direction.bias is not None:
            projected = projected + tf.convert_to_tensor(direction.bias)
        index = batch.reversed_index if direction.backward else batch.index
        out.append((direction, _recurrence(tf.gather(projected, index),
                                           tf.convert_to_tensor(direction.recurrent_kernel))))
    return out


def _recurrence(inputs: Any, recurrent_kernel: Any) -> Any:
    """LSTM states [steps, batch, units] for projected inputs [steps, batch, 4 * units] (gates
    in Keras' order i, f, c, o), from zero states."""
    import tensorflow as tf

    count = tf.shape(inputs)[0]
    zeros = tf.zeros([tf.shape(inputs)[1], recurrent_kernel.shape[0]])

    def step(t, h, c, states):
        i, f, g, o = tf.split(inputs[t] + tf.matmul(h, recurrent_kernel), 4, axis=1)
        c = tf.sigmoid(f) * c + tf.sigmoid(i) * tf.tanh(g)
        h = tf.sigmoid(o) * tf.tanh(c)
        return t + 1, h, c, states.write(t, h)

    *_, states = tf.while_loop(lambda t, *_: t < count, step,
                               (0, zeros, zeros, tf.TensorArray(tf.float32, size=count)))
    return states.stack()


def _last_state(states: Any, lengths: Any) -> Any:
    """Each row's state after its last valid step (zeros for a row without one, as in Keras)."""
    import tensorflow as tf

    rows = tf.range(tf.shape(lengths)[0])
    last = tf.gather_nd(states, tf.stack([tf.maximum(lengths - 1, 0), rows], axis=1))
    return tf.where(lengths[:, None] > 0, last, tf.zeros_like(last))
