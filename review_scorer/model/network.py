"""Build the Keras sentiment model from a TrainConfig; no I/O."""

from __future__ import annotations

import keras
from keras import layers, ops

from review_scorer.config import TrainConfig
from review_scorer.model.adversarial import AdversarialModel, PerturbedEmbedding
from review_scorer.model.layers import CUSTOM_OBJECTS_PACKAGE, MaskedPooling, WordDropout


@keras.saving.register_keras_serializable(package=CUSTOM_OBJECTS_PACKAGE)
def decision_agreement(y_true, y_pred):
    """1 where target and prediction fall on the same side of 0.5, per example.

    Keras' "accuracy" compares the target with the rounded prediction, which against a teacher's
    soft targets (0.83, 0.27, ...) is almost never equal; this reads a soft target as the
    teacher's decision, and equals plain accuracy on 0/1 labels.
    """
    y_true = ops.reshape(y_true, [-1])
    y_pred = ops.reshape(y_pred, [-1])
    return ops.cast(ops.equal(y_true >= 0.5, y_pred >= 0.5), "float32")


def _metrics():
    return [keras.metrics.MeanMetricWrapper(decision_agreement, name="accuracy")]


def build_model(
    config: TrainConfig, vocab_size: int, embedding_weights=None, *, name: str | None = None
) -> keras.Model:
    """Embedding -> (Bi)LSTM -> pooling -> Dense -> Dense(1, sigmoid), compiled.

    embedding_weights, a (vocab_size, embedding_dim) array, replaces the random initial vectors
    (they are set as weights, not as an initializer, so they are not copied into the config).

    Inputs are right-padded int32 id matrices; id 0 is padding and is masked, which keeps the
    LSTM eligible for the cuDNN kernel on GPU (tanh/sigmoid, no recurrent dropout, right padding).
    """
    reg = keras.regularizers.L2(config.l2) if config.l2 > 0 else None
    ids = keras.Input(shape=(None,), dtype="int32", name="token_ids")
    tokens = WordDropout(config.word_dropout, seed=config.seed, name="word_dropout")(ids) \
        if config.word_dropout > 0 else ids
    adversarial = config.adversarial_eps > 0
    x = (PerturbedEmbedding if adversarial else layers.Embedding)(
        vocab_size, config.embedding_dim, mask_zero=True,
        trainable=not config.freeze_embeddings, name="embedding",
    )(tokens)
    if config.embedding_dropout > 0:
        x = layers.SpatialDropout1D(config.embedding_dropout, name="embedding_dropout")(x)
    lstm = layers.LSTM(
        config.lstm_units,
        return_sequences=config.pooling != "last",
        recurrent_dropout=config.recurrent_dropout,
        kernel_regularizer=reg,
        name="lstm",
    )
    x = layers.Bidirectional(lstm, name="bilstm")(x) if config.bidirectional else lstm(x)
    if config.pooling != "last":
        x = MaskedPooling(config.pooling, name="pooling")(x)
    if config.dropout > 0:
        x = layers.Dropout(config.dropout, name="dropout")(x)
    if config.dense_units > 0:
        x = layers.Dense(config.dense_units, activation="relu", kernel_regularizer=reg, name="dense")(x)
        if config.dropout > 0:
            x = layers.Dropout(config.dropout, name="dense_dropout")(x)
    out = layers.Dense(1, activation="sigmoid", kernel_regularizer=reg, name="sentiment")(x)
    name = name or "review_scorer_lstm"
    model = (AdversarialModel(ids, out, name=name, adversarial_eps=config.adversarial_eps,
                              virtual=config.adversarial_kind == "virtual",
                              entropy_weight=config.entropy_weight)
             if adversarial or config.entropy_weight > 0 else keras.Model(ids, out, name=name))
    if embedding_weights is not None:
        model.get_layer("embedding").set_weights([embedding_weights])
    optimizer = keras.optimizers.Adam(
        learning_rate=config.learning_rate, clipnorm=config.clipnorm or None,
        use_ema=config.ema_momentum > 0, ema_momentum=config.ema_momentum or 0.99,
    )
    # Keywords on purpose: in Keras 3 the third positional argument of compile is loss_weights.
    model.compile(optimizer=optimizer, loss="binary_crossentropy", metrics=_metrics())
    return model


STORED_EMBEDDING_DTYPE = "float16"


def _export_config(config):
    """Walk a model config: no compile settings anywhere, embedding tables in half precision,
    and the training-only PerturbedEmbedding (model/adversarial.py) as the plain Keras one."""
    if isinstance(config, list):
        return [_export_config(item) for item in config]
    if not isinstance(config, dict):
        return config
    out = {k: _export_config(v) for k, v in config.items() if k != "compile_config"}
    if out.get("class_name") == PerturbedEmbedding.__name__:
        out.update(module="keras.layers", class_name="Embedding", registered_name=None)
    if out.get("class_name") == "Embedding" and isinstance(out.get("config"), dict):
        out["config"]["dtype"] = STORED_EMBEDDING_DTYPE
    return out


def export_model(model: keras.Model) -> keras.Model:
    """The copy that is saved and scored: same network and weights, uncompiled (no optimizer
    state, which with Adam's two moments and the EMA copy would quadruple the file), and the
    embedding tables, nearly all of the weights, stored as float16 (half the size; the next
    layer computes in float32 again). Its metrics are measured on this copy, not the original.
    """
    copy = keras.Model.from_config(_export_config(model.get_config()))
    copy.set_weights(model.get_weights())
    return copy


def average_members(members: list[keras.Model]) -> keras.Model:
    """One model whose output is the mean probability of independently trained members."""
    ids = keras.Input(shape=(None,), dtype="int32", name="token_ids")
    out = layers.Average(name="ensemble_mean")([member(ids) for member in members])
    return keras.Model(ids, out, name="review_scorer_lstm_ensemble")


def compile_inference(model: keras.Model):
    """A traced inference function for right-padded int32 batches of any shape (one trace).

    Without a GPU, and when review_scorer.model.fast_lstm knows the network (the shapes build_model
    and average_members make), this is fast_lstm's forward pass: the same function computed
    faster on CPU. Otherwise it is the traced Keras call; on a GPU that call takes the cuDNN
    kernel. Setting the environment variable REVIEW_SCORER_FAST_LSTM=0 before the call selects
    the Keras path everywhere (side-by-side benchmarks, debugging). The returned function's
    `fast` attribute says which path it is.
    """
    import tensorflow as tf

    from review_scorer.model.fast_lstm import build_fast_inference, fast_lstm_allowed

    fast = build_fast_inference(model) if fast_lstm_allowed() else None
    if fast is not None:
        return fast

    @tf.function(input_signature=[tf.TensorSpec([None, None], tf.int32)], reduce_retracing=True)
    def infer(ids):
        return tf.reshape(model(ids, training=False), [-1])

    infer.fast = False
    return infer


ENCODER_LAYERS = ("embedding", "bilstm")  # the classifier layers a pretrained encoder fills


def copy_encoder_weights(model: keras.Model, weights: dict) -> None:
    """Start a classifier from a pretrained encoder: its embedding and both LSTM directions.

    `weights` uses the encoder directory's names (review_scorer.model.encoder.weight_shapes). The
    classifier must be bidirectional with the encoder's vocabulary, embedding_dim and lstm_units;
    a shape that differs raises ValueError naming the weight.
    """
    try:
        bilstm = model.get_layer("bilstm")
    except ValueError:
        raise ValueError("only a bidirectional classifier can start from a pretrained encoder") from None
    targets = {"embedding": model.get_layer("embedding").embeddings}
    for direction, layer in (("forward", bilstm.forward_layer), ("backward", bilstm.backward_layer)):
        for part in ("kernel", "recurrent_kernel", "bias"):
            targets[f"{direction}/{part}"] = getattr(layer.cell, part)
    for name, variable in targets.items():
        value = weights[name]
        if tuple(value.shape) != tuple(variable.shape):
            raise ValueError(f"encoder weight {name} has shape {tuple(value.shape)}, the classifier "
                             f"needs {tuple(variable.shape)}")
        variable.assign(value.astype(variable.dtype))


def set_encoder_trainable(model: keras.Model, trainable: bool) -> None:
    """Freeze or unfreeze the encoder part (embedding + LSTM) of a classifier; recompile after."""
    for name in ENCODER_LAYERS:
        model.get_layer(name).trainable = trainable


@keras.saving.register_keras_serializable(package=CUSTOM_OBJECTS_PACKAGE)
class DiscriminativeAdam(keras.optimizers.Adam):
    """Adam that moves the encoder's variables (embedding, LSTM) at learning_rate times
    encoder_multiplier and the rest at the full rate: ULMFiT's discriminative fine-tuning
    (Howard & Ruder 2018), lower rates for the pretrained layers than for the new head.
    """

    def __init__(self, *args, encoder_multiplier: float = 1.0, **kwargs):
        super().__init__(*args, **kwargs)
        self.encoder_multiplier = float(encoder_multiplier)

    def update_step(self, gradient, variable, learning_rate):
        if self.encoder_multiplier != 1.0:
            # The TensorFlow backend passes the raw tf.Variable here; its Keras variable (which
            # knows its layer path) sits at the same index in the optimizer's list.
            tracked = self._trainable_variables[self._get_variable_index(variable)]
            if any(name in str(tracked.path).split("/") for name in ENCODER_LAYERS):
                learning_rate = ops.multiply(learning_rate, self.encoder_multiplier)
        return super().update_step(gradient, variable, learning_rate)

    def get_config(self):
        return {**super().get_config(), "encoder_multiplier": self.encoder_multiplier}


def compile_classifier(model: keras.Model, config: TrainConfig, *, encoder_multiplier: float = 1.0):
    """(Re)compile a classifier with the config's optimizer settings (after freezing/unfreezing)."""
    optimizer = DiscriminativeAdam(
        learning_rate=config.learning_rate, clipnorm=config.clipnorm or None,
        use_ema=config.ema_momentum > 0, ema_momentum=config.ema_momentum or 0.99,
        encoder_multiplier=encoder_multiplier,
    )
    model.compile(optimizer=optimizer, loss="binary_crossentropy", metrics=_metrics())
    return model
