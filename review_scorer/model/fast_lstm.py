"""A faster CPU forward pass for the scoring network: input projections per distinct word, a tight loop."""

from __future__ import annotations

import logging
import os
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

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


class UnsupportedNetwork(Exception):
    """The network holds something the fast path does not reproduce exactly (says what)."""


def _require(condition: bool, why: str) -> None:
    if not condition:
        raise UnsupportedNetwork(why)


@dataclass
class _Direction:
    kernel: Any  # Keras variables, read at every call like the Keras layer does
    recurrent_kernel: Any
    bias: Any | None
    reverse: bool


@dataclass
class _Network:
    embedding: Any
    directions: list[_Direction] = field(default_factory=list)
    pooling: str = "last"  # "last" or a MaskedPooling mode
    head: list[tuple[Any, Any | None, str]] = field(default_factory=list)  # Dense: kernel, bias, act


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
        networks = read_networks(model)
    except UnsupportedNetwork as exc:
        log.debug("fast LSTM path not used: %s", exc)
        return None
    import tensorflow as tf

    forward = tf.function(lambda ids: _forward(networks, ids), autograph=False,
                          input_signature=[tf.TensorSpec([None, None], tf.int32)])
    forward.fast = True
    return forward


def read_networks(model: Any) -> list[_Network]:
    """The networks whose mean probability `model` outputs (one unless it is an ensemble of
    model.average_members). Raises UnsupportedNetwork, naming the reason, for any other model."""
    import keras

    graph = _Graph(model)
    _require(len(model.inputs) == 1 and "int" in str(model.inputs[0].dtype), "not one integer input")
    output = graph.nodes[graph.output]
    if type(model.get_layer(graph.output)) is not keras.layers.Average:
        return [_read_network(model, graph)]
    _require(len(output["args"]) == 1 and isinstance(output["args"][0], list), "odd Average call")
    networks = []
    for name in (_ref(arg) for arg in output["args"][0]):
        node = graph.nodes[name]
        _require(len(node["args"]) == 1 and _ref(node["args"][0]) == graph.input
                 and not _extra_kwargs(node["kwargs"]), f"member {name} is not called on the ids")
        member = model.get_layer(name)
        networks.append(_read_network(member, _Graph(member)))
    _require(bool(networks), "an ensemble without members")
    return networks


class _Graph:
    """A functional model's wiring, read from its config: nodes by name, its input and output."""

    def __init__(self, model: Any):
        try:
            config = model.get_config()
        except Exception as exc:  # subclassed models need not implement get_config
            raise UnsupportedNetwork(f"no functional config ({exc})") from None
        _require(isinstance(config, dict) and isinstance(config.get("layers"), list)
                 and "input_layers" in config and "output_layers" in config, "not a functional model")
        self.nodes: dict[str, dict] = {}
        for layer in config["layers"]:
            inbound = layer.get("inbound_nodes") or []
            _require(len(inbound) <= 1, f"layer {layer.get('name')} is called more than once")
            node = inbound[0] if inbound else {}
            self.nodes[layer["name"]] = {"class_name": layer.get("class_name"),
                                         "args": list(node.get("args") or []),
                                         "kwargs": dict(node.get("kwargs") or {})}
        self.input = _single_endpoint(config["input_layers"])
        self.output = _single_endpoint(config["output_layers"])

    def main_path(self) -> list[str]:
        """Layer names from the one after the input to the output, each fed by the one before."""
        path, name = [], self.output
        while name != self.input:
            args = self.nodes[name]["args"]
            _require(len(args) == 1 and _is_ref(args[0]), f"{name} does not take one tensor")
            path.append(name)
            name = _ref(args[0])
        return path[::-1]

    def is_ids(self, name: str, model: Any) -> bool:
        """The input itself, or word dropout of it (the identity at inference)."""
        from review_scorer.model.layers import WordDropout

        if name == self.input:
            return True
        args = self.nodes.get(name, {}).get("args", [])
        return (len(args) == 1 and _is_ref(args[0]) and type(model.get_layer(name)) is WordDropout
                and self.is_ids(_ref(args[0]), model))

    def is_padding_mask(self, name: str, model: Any) -> bool:
        """A NotEqual(ids, 0) node: the mask an Embedding with mask_zero computes."""
        node = self.nodes.get(name, {})
        args = node.get("args", [])
        return (node.get("class_name") == "NotEqual" and len(args) == 2 and _is_ref(args[0])
                and args[1] == 0 and self.is_ids(_ref(args[0]), model))


def _single_endpoint(value: Any) -> str:
    if isinstance(value, list) and len(value) == 1 and isinstance(value[0], list):
        value = value[0]
    _require(isinstance(value, list) and len(value) == 3 and list(value[1:]) == [0, 0],
             "not exactly one input and one output")
    return value[0]


def _is_ref(value: Any) -> bool:
    return isinstance(value, dict) and value.get("class_name") == "__keras_tensor__"


def _ref(value: Any) -> str:
    _require(_is_ref(value), "an argument is not a tensor")
    history = value["config"]["keras_history"]
    _require(list(history[1:]) == [0, 0], f"{history[0]} is used through a second output or call")
    return history[0]


def _extra_kwargs(kwargs: dict) -> dict:
    """Call arguments other than an absent mask and training=False/None."""
    return {k: v for k, v in kwargs.items()
            if not ((k == "mask" and v is None) or (k == "training" and v in (None, False)))}


def _read_network(model: Any, graph: _Graph) -> _Network:
    """One network as a chain: [word dropout] Embedding [dropout] LSTM or Bidirectional(LSTM)
    [dropout] [MaskedPooling] then Dropout and Dense layers, the last Dense(1)."""
    import keras

    from review_scorer.model.layers import MaskedPooling, WordDropout

    names = graph.main_path()
    for name in names:
        for key, value in _extra_kwargs(graph.nodes[name]["kwargs"]).items():
            # A mask passed explicitly must be the padding mask (what a loaded model records).
            _require(key == "mask" and _is_ref(value) and graph.is_padding_mask(_ref(value), model),
                     f"{name} is called with {key}={value!r}")
    layers = [model.get_layer(name) for name in names]
    while layers and type(layers[0]) is WordDropout:
        layers = layers[1:]
    _require(bool(layers) and type(layers[0]) is keras.layers.Embedding, "no Embedding first")
    network = _Network(embedding=_embedding_table(layers[0]))
    dropouts = (keras.layers.Dropout, keras.layers.SpatialDropout1D)
    rest = [layer for layer in layers[1:] if type(layer) not in dropouts]
    _require(bool(rest), "nothing after the Embedding")
    network.directions, sequences = _recurrent(rest.pop(0))
    if sequences:
        _require(bool(rest) and type(rest[0]) is MaskedPooling, "no MaskedPooling after the LSTM")
        _require(rest[0].compute_dtype == "float32", "the pooling does not compute in float32")
        network.pooling = rest.pop(0).mode
    network.head = [_dense(layer) for layer in rest]
    _require(bool(network.head) and int(rest[-1].units) == 1, "the last layer is not Dense(1)")
    return network


def _plain(layer: Any) -> bool:
    """Neither quantized nor with LoRA weights added."""
    return getattr(layer, "quantization_mode", None) is None and not getattr(layer, "lora_enabled", False)


def _embedding_table(layer: Any) -> Any:
    _require(bool(layer.mask_zero), "the Embedding does not mask id 0")
    _require(_plain(layer), "a quantized or LoRA Embedding")
    table = layer.embeddings
    # Half-precision tables (export_model) widen to float32 exactly, as the next layer does.
    _require(str(table.dtype) in ("float16", "float32") and layer.compute_dtype == str(table.dtype),
             f"an Embedding of {table.dtype} computing in {layer.compute_dtype}")
    return table


def _recurrent(layer: Any) -> tuple[list[_Direction], bool]:
    """The directions of an LSTM or Bidirectional(LSTM) and whether it returns sequences."""
    import keras

    if type(layer) is keras.layers.Bidirectional:
        _require(layer.merge_mode == "concat", f"Bidirectional merge_mode {layer.merge_mode!r}")
        _require(not layer.return_state and not layer.stateful, "a stateful Bidirectional")
        forward, backward = layer.forward_layer, layer.backward_layer
        _require(type(backward) is keras.layers.LSTM and backward.go_backwards, "odd backward layer")
        _require(forward.return_sequences == backward.return_sequences == layer.return_sequences,
                 "directions that differ in return_sequences")
        return [_direction(forward, reverse=False), _direction(backward, reverse=True)], \
            bool(layer.return_sequences)
    _require(type(layer) is keras.layers.LSTM, f"{type(layer).__name__} where an LSTM should be")
    return [_direction(layer, reverse=False)], bool(layer.return_sequences)


def _direction(layer: Any, *, reverse: bool) -> _Direction:
    import keras

    _require(type(layer) is keras.layers.LSTM and type(layer.cell) is keras.layers.LSTMCell,
             f"{type(layer).__name__} is not a plain LSTM")
    _require(layer.go_backwards == reverse, "go_backwards on a single LSTM")
    _require(not layer.return_state and not layer.stateful, "a stateful LSTM")
    _require(layer.compute_dtype == "float32", f"an LSTM computing in {layer.compute_dtype}")
    cell = layer.cell
    _require(cell.activation is keras.activations.tanh, "an LSTM activation other than tanh")
    _require(cell.recurrent_activation is keras.activations.sigmoid,
             "an LSTM recurrent activation other than sigmoid")
    return _Direction(cell.kernel, cell.recurrent_kernel, cell.bias if cell.use_bias else None,
                      reverse)


def _dense(layer: Any) -> tuple[Any, Any | None, str]:
    import keras

    _require(type(layer) is keras.layers.Dense and _plain(layer), f"{type(layer).__name__} in the head")
    _require(layer.compute_dtype == "float32", f"a Dense layer computing in {layer.compute_dtype}")
    activation = next((name for name in _HEAD_ACTIVATIONS
                       if layer.activation is keras.activations.get(name)), None)
    _require(activation is not None, f"a Dense activation {layer.activation!r}")
    return layer.kernel, layer.bias if layer.use_bias else None, activation


# ------------------------------------------------------------------------ the forward pass


def build_fast_states(model: Any) -> Callable | None:
    """For the explainer: a function (traced inline by the caller) mapping right-padded ids
    [batch, steps] to each network's recurrent output sequence [batch, steps, units x
    directions], laid out as Keras' Bidirectional(concat) returns it (forwards channels first,
    every step in text order) and zero on padded steps; or None when the network is not one
    this module knows. Networks come in read_networks' order, with `.networks` attached so the
    caller can match them to its own view of the model."""
    try:
        networks = read_networks(model)
    except UnsupportedNetwork as exc:
        log.debug("fast LSTM states not used: %s", exc)
        return None
    if any(n.pooling == "last" for n in networks):
        return None

    def states(ids: Any) -> list[Any]:
        batch = _make_batch(ids)
        return [_network_states(network, batch) for network in networks]

    def directions(ids: Any) -> tuple[_Batch, list[list[tuple[bool, Any]]]]:
        """(the batch's lengths and masks, and per network each direction as (reads backwards,
        states [steps, batch, units] in its own reading order)). Valid steps come first in both
        orders; padded steps hold states to ignore. pool_time_major pools them as the network
        does."""
        batch = _make_batch(ids)
        return batch, [[(direction.reverse, h) for direction, h in _direction_states(network, batch)]
                       for network in networks]

    states.networks = networks
    states.directions = directions
    return states


def _network_states(network: _Network, batch: _Batch) -> Any:
    import tensorflow as tf

    outputs = []
    for direction, states in _direction_states(network, batch):
        if direction.reverse:  # back into text order (padded steps stay where they are)
            states = tf.reverse_sequence(states, batch.lengths, seq_axis=0, batch_axis=1)
        outputs.append(states)
    joined = tf.concat(outputs, axis=-1) if len(outputs) > 1 else outputs[0]
    return tf.transpose(joined * batch.weights, [1, 0, 2])


def _make_batch(ids: Any) -> _Batch:
    """What every network of one batch shares: distinct words, their positions, lengths, masks."""
    import tensorflow as tf

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
                  lengths, weights, (weights - 1.0) * 1e9,
                  tf.maximum(tf.reduce_sum(weights, axis=0), 1.0))


def _forward(networks: list[_Network], ids: Any) -> Any:
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
    counts: Any  # [batch, 1] valid steps, at least 1


def _network_probability(network: _Network, batch: _Batch) -> Any:
    import tensorflow as tf

    pooled = []  # per direction: {"last"} or {"max", "mean"} as MaskedPooling's mode asks
    for _, states in _direction_states(network, batch):
        # A backward direction's states stay in its own (reversed) order: max and mean over
        # the valid steps do not depend on the order, and reversal moves no padded step.
        pooled.append({"last": _last_state(states, batch.lengths)} if network.pooling == "last"
                      else pool_time_major(states, network.pooling, batch))
    # Keras concatenates the directions, then pools: [max fwd, max bwd, mean fwd, mean bwd].
    parts = [part[kind] for kind in ("last", "max", "mean") for part in pooled if kind in part]
    x = tf.concat(parts, axis=-1) if len(parts) > 1 else parts[0]
    for kernel, bias, activation in network.head:
        x = tf.matmul(x, tf.convert_to_tensor(kernel))
        if bias is not None:
            x = x + tf.convert_to_tensor(bias)
        x = {"relu": tf.nn.relu, "sigmoid": tf.sigmoid, "tanh": tf.tanh}.get(activation, tf.identity)(x)
    return tf.reshape(x, [-1])


def _direction_states(network: _Network, batch: _Batch) -> list[tuple[_Direction, Any]]:
    """Each direction with its states [steps, batch, units], in the order it reads the text
    (a backward direction's rows reversed within their lengths)."""
    import tensorflow as tf

    vectors = tf.cast(tf.gather(tf.convert_to_tensor(network.embedding), batch.words), tf.float32)
    out = []
    for direction in network.directions:
        # Input projection once per distinct word, then placed at every step that word fills.
        projected = tf.matmul(vectors, tf.convert_to_tensor(direction.kernel))
        if direction.bias is not None:
            projected = projected + tf.convert_to_tensor(direction.bias)
        index = batch.reversed_index if direction.reverse else batch.index
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


def pool_time_major(states: Any, mode: str, batch: _Batch) -> dict[str, Any]:
    """model.MaskedPooling's max and/or mean over time-major states [steps, batch, units]."""
    import tensorflow as tf

    pooled = {}
    if mode in ("max", "max_mean"):
        pooled["max"] = tf.reduce_max(states + batch.padding_penalty, axis=0)
    if mode in ("mean", "max_mean"):
        pooled["mean"] = tf.reduce_sum(states * batch.weights, axis=0) / batch.counts
    return pooled
