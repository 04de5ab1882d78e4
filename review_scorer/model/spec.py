"""The network spec: a Keras scoring model's layer chain, read once into typed, frozen parts."""

from __future__ import annotations

import contextlib
import threading
import weakref
from dataclasses import dataclass
from typing import Any

# Every consumer of a network's structure (the CPU fast path, the explainer, the model directory's
# vocabulary check) reads it from here, so they cannot disagree about what a model is. The spec
# holds the layers' Keras variables, not copies of their values: a weight assigned after the
# reading (training, restored checkpoints) is what the next computation uses, as in Keras.

FORWARD, BACKWARD = "forward", "backward"
LAST_STATE = "last"  # NetworkSpec.pooling when the head reads the last state, not MaskedPooling
RECURRENT_KINDS = ("LSTM", "GRU", "SimpleRNN")
# Activations the spec can name (found by identity, so a custom function never passes as one).
_ACTIVATION_NAMES = ("linear", "relu", "sigmoid", "tanh", "hard_sigmoid", "softmax", "elu", "selu",
                     "gelu", "silu", "softplus", "softsign", "exponential", "leaky_relu", "relu6")


class UnsupportedNetwork(Exception):
    """The model is not a network the spec describes, or not one a consumer computes; `reason`
    says what is in the way."""

    def __init__(self, reason: str):
        super().__init__(reason)
        self.reason = reason


def _require(condition: bool, why: str) -> None:
    if not condition:
        raise UnsupportedNetwork(why)


@dataclass(frozen=True, eq=False)
class EmbeddingSpec:
    """The Embedding that turns ids into vectors. Id 0 is padding and masked (mask_zero): the
    only mask handling a spec describes, so every later layer sees the padding mask."""

    layer: Any  # the Keras layer, for callers that run it
    table: Any  # its embeddings variable [rows, dim]
    rows: int  # how many ids it takes (the vocabulary size)
    dim: int
    dtype: str  # the table's: float32, or float16 as export_model stores it
    compute_dtype: str


@dataclass(frozen=True, eq=False)
class DirectionSpec:
    """One direction of a recurrent layer: its cell's variables and activations."""

    direction: str  # FORWARD, or BACKWARD: reads each text from its last valid token
    kernel: Any  # [inputs, gates * units]
    recurrent_kernel: Any  # [units, gates * units]
    bias: Any | None
    activation: str
    recurrent_activation: str | None  # None for SimpleRNN, which has none

    @property
    def backward(self) -> bool:
        return self.direction == BACKWARD


@dataclass(frozen=True, eq=False)
class RecurrentSpec:
    """An LSTM, GRU or SimpleRNN layer, alone or as Bidirectional(merge_mode="concat")."""

    layer: Any  # the Keras layer (the Bidirectional wrapper where there is one)
    kind: str  # one of RECURRENT_KINDS
    units: int  # per direction
    directions: tuple[DirectionSpec, ...]  # forward first; its channels come first in the output
    return_sequences: bool

    @property
    def width(self) -> int:
        """Output channels: units per direction, directions concatenated."""
        return self.units * len(self.directions)


@dataclass(frozen=True, eq=False)
class DenseSpec:
    """A Dense layer of the head."""

    layer: Any
    kernel: Any
    bias: Any | None
    units: int
    activation: str


@dataclass(frozen=True, eq=False)
class NetworkSpec:
    """One network, the layers that compute at inference in order (dropout of any kind is the
    identity there and left out): embedding -> recurrent layers -> pooling -> dense head. Every
    layer after the embedding computes in float32."""

    embedding: EmbeddingSpec
    recurrent: tuple[RecurrentSpec, ...]  # every one but the last returns sequences
    pooling: str  # LAST_STATE, or MaskedPooling's mode over the last layer's sequence
    head: tuple[DenseSpec, ...]  # the last is Dense(1): the network's output

    @property
    def pooled(self) -> bool:
        return self.pooling != LAST_STATE


@dataclass(frozen=True, eq=False)
class ModelSpec:
    """A scoring model: one network, or the networks whose mean probability it outputs
    (network.average_members). All of them take the same ids."""

    networks: tuple[NetworkSpec, ...]
    averaged: bool

    @property
    def vocab_rows(self) -> int:
        """How many ids the model takes (every network's embedding has these rows)."""
        return self.networks[0].embedding.rows


_CACHE: weakref.WeakKeyDictionary = weakref.WeakKeyDictionary()
_CACHE_LOCK = threading.Lock()


def read_spec(model: Any) -> ModelSpec:
    """The spec of a Keras scoring model, read once per model object (later calls return the
    same ModelSpec, or raise again: the layer structure is taken as it was at the first call).

    Supported: a functional model with one integer input, [WordDropout] -> Embedding(mask_zero)
    -> [dropout] -> LSTM / GRU / SimpleRNN layers, each alone or in Bidirectional(concat),
    stacked with [dropout] between them -> [MaskedPooling] -> Dropout and Dense layers ending in
    Dense(1); or an Average of such models, each called on the model's input. Anything else
    raises UnsupportedNetwork with the reason.
    """
    with _CACHE_LOCK:
        cached = _cached(model)
    if cached is None:
        try:
            cached = _read_model(model)
        except UnsupportedNetwork as exc:
            cached = exc.reason
        # another thread's reading wins; a model that cannot be weakly referenced is read again
        with _CACHE_LOCK, contextlib.suppress(TypeError):
            cached = _CACHE.setdefault(model, cached)
    if isinstance(cached, str):
        raise UnsupportedNetwork(cached)
    return cached


def _cached(model: Any) -> ModelSpec | str | None:
    try:
        return _CACHE.get(model)
    except TypeError:
        return None


def _read_model(model: Any) -> ModelSpec:
    import keras

    graph = _Graph(model)
    _require(len(model.inputs) == 1 and "int" in str(model.inputs[0].dtype), "not one integer input")
    if type(model.get_layer(graph.output)) is not keras.layers.Average:
        return ModelSpec((_read_network(model, graph),), averaged=False)
    output = graph.nodes[graph.output]
    _require(len(output["args"]) == 1 and isinstance(output["args"][0], list), "odd Average call")
    networks = []
    for name in (_ref(arg) for arg in output["args"][0]):
        node = graph.nodes[name]
        _require(len(node["args"]) == 1 and _ref(node["args"][0]) == graph.input
                 and not _extra_kwargs(node["kwargs"]), f"member {name} is not called on the ids")
        member = model.get_layer(name)
        networks.append(_read_network(member, _Graph(member)))
    _require(bool(networks), "an ensemble without members")
    rows = sorted({network.embedding.rows for network in networks})
    _require(len(rows) == 1, f"members with different vocabularies ({', '.join(map(str, rows))} ids)")
    return ModelSpec(tuple(networks), averaged=True)


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

    def check_call_arguments(self, names: list[str], model: Any) -> None:
        """Layers are called with no arguments but the padding mask (what a loaded model
        records) and training=False/None."""
        for name in names:
            for key, value in _extra_kwargs(self.nodes[name]["kwargs"]).items():
                _require(key == "mask" and _is_ref(value) and self.is_padding_mask(_ref(value), model),
                         f"{name} is called with {key}={value!r}")


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


# ------------------------------------------------------------------------------ the layers


def _read_network(model: Any, graph: _Graph) -> NetworkSpec:
    """One network as a chain: [word dropout] Embedding, then recurrent layers, [MaskedPooling]
    and Dense layers, dropout layers anywhere after the Embedding."""
    import keras

    from review_scorer.model.layers import MaskedPooling, WordDropout

    names = graph.main_path()
    graph.check_call_arguments(names, model)
    layers = [model.get_layer(name) for name in names]
    while layers and type(layers[0]) is WordDropout:
        layers = layers[1:]
    _require(bool(layers) and type(layers[0]) is keras.layers.Embedding, "no Embedding first")
    embedding = _embedding(layers[0])
    dropouts = (keras.layers.Dropout, keras.layers.SpatialDropout1D)
    rest = [layer for layer in layers[1:] if type(layer) not in dropouts]
    _require(bool(rest), "nothing after the Embedding")
    recurrent = []
    while rest and _recurrent_kind(rest[0]) is not None:
        _require(not recurrent or recurrent[-1].return_sequences,
                 "a recurrent layer without return_sequences feeds another")
        recurrent.append(_recurrent(rest.pop(0)))
    _require(bool(recurrent), f"{type(rest[0]).__name__} where an LSTM, GRU or SimpleRNN should be")
    pooling = LAST_STATE
    if recurrent[-1].return_sequences:
        _require(bool(rest) and type(rest[0]) is MaskedPooling,
                 f"no MaskedPooling after the {recurrent[-1].kind}")
        _require(rest[0].compute_dtype == "float32", "the pooling does not compute in float32")
        pooling = rest.pop(0).mode
    head = tuple(_dense(layer) for layer in rest)
    _require(bool(head) and head[-1].units == 1, "the last layer is not Dense(1)")
    return NetworkSpec(embedding, tuple(recurrent), pooling, head)


def _plain(layer: Any) -> bool:
    """Neither quantized nor with LoRA weights added."""
    return getattr(layer, "quantization_mode", None) is None and not getattr(layer, "lora_enabled", False)


def _embedding(layer: Any) -> EmbeddingSpec:
    _require(bool(layer.mask_zero), "the Embedding does not mask id 0")
    _require(_plain(layer), "a quantized or LoRA Embedding")
    table = layer.embeddings
    return EmbeddingSpec(layer, table, int(layer.input_dim), int(layer.output_dim), str(table.dtype),
                         str(layer.compute_dtype))


def _recurrent_kind(layer: Any) -> str | None:
    """The recurrent kind of a layer (looking inside Bidirectional), None for any other layer."""
    import keras

    inner = layer.forward_layer if type(layer) is keras.layers.Bidirectional else layer
    return next((kind for kind in RECURRENT_KINDS if type(inner) is getattr(keras.layers, kind)), None)


def _recurrent(layer: Any) -> RecurrentSpec:
    import keras

    kind = _recurrent_kind(layer)
    if type(layer) is not keras.layers.Bidirectional:
        _require(not layer.go_backwards, f"go_backwards on a single {kind}")
        return RecurrentSpec(layer, kind, int(layer.units), (_direction(layer, FORWARD),),
                             bool(layer.return_sequences))
    _require(layer.merge_mode == "concat", f"Bidirectional merge_mode {layer.merge_mode!r}")
    _require(not layer.return_state and not layer.stateful, "a stateful Bidirectional")
    forward, backward = layer.forward_layer, layer.backward_layer
    _require(type(backward) is type(forward) and backward.go_backwards and not forward.go_backwards,
             "odd backward layer")
    _require(forward.return_sequences == backward.return_sequences == layer.return_sequences,
             "directions that differ in return_sequences")
    _require(forward.units == backward.units, "directions of different sizes")
    return RecurrentSpec(layer, kind, int(forward.units),
                         (_direction(forward, FORWARD), _direction(backward, BACKWARD)),
                         bool(layer.return_sequences))


def _direction(layer: Any, direction: str) -> DirectionSpec:
    import keras

    kind = type(layer).__name__
    _require(type(layer.cell) is getattr(keras.layers, f"{kind}Cell"), f"{kind} with a custom cell")
    _require(not layer.return_state and not layer.stateful, f"a stateful {kind}")
    _require(layer.compute_dtype == "float32", f"{kind} computing in {layer.compute_dtype}")
    cell = layer.cell
    recurrent_activation = getattr(cell, "recurrent_activation", None)
    return DirectionSpec(
        direction, cell.kernel, cell.recurrent_kernel, cell.bias if cell.use_bias else None,
        _activation_name(cell.activation, f"a {kind} activation"),
        None if recurrent_activation is None
        else _activation_name(recurrent_activation, f"a {kind} recurrent activation"))


def _dense(layer: Any) -> DenseSpec:
    import keras

    _require(type(layer) is keras.layers.Dense and _plain(layer), f"{type(layer).__name__} in the head")
    _require(layer.compute_dtype == "float32", f"a Dense layer computing in {layer.compute_dtype}")
    return DenseSpec(layer, layer.kernel, layer.bias if layer.use_bias else None, int(layer.units),
                     _activation_name(layer.activation, "a Dense activation"))


def _activation_name(function: Any, what: str) -> str:
    import keras

    for name in _ACTIVATION_NAMES:
        try:
            if keras.activations.get(name) is function:
                return name
        except ValueError:  # not in this Keras version
            continue
    raise UnsupportedNetwork(f"{what} {function!r} that is not a Keras activation")


# ------------------------------------------------------------------------------ any model


def embedding_layers(model: Any) -> list:
    """Every Embedding layer of any Keras model, looking inside nested models, in layer order.
    For models the spec does not read (the generic paths of the explainer and the loader)."""
    found = []
    for layer in model.layers:
        if type(layer).__name__ == "Embedding":
            found.append(layer)
        elif hasattr(layer, "layers"):
            found.extend(embedding_layers(layer))
    return found


def vocabulary_rows(model: Any) -> int | None:
    """How many ids a model takes: its spec's vocab_rows, or for a model the spec does not read,
    the rows of its first Embedding anywhere; None when it has none."""
    try:
        return read_spec(model).vocab_rows
    except UnsupportedNetwork:
        tables = embedding_layers(model)
        return int(tables[0].input_dim) if tables else None
