"""The custom Keras layers of the network (registered for loading): masked pooling, word dropout."""

from __future__ import annotations

import keras
from keras import layers, ops

CUSTOM_OBJECTS_PACKAGE = "review_scorer"


@keras.saving.register_keras_serializable(package=CUSTOM_OBJECTS_PACKAGE)
class MaskedPooling(layers.Layer):
    """Max and/or mean over the valid (unmasked) time steps of a sequence.

    Keras' GlobalMaxPooling1D ignores the mask, so padded steps would take part in the max;
    here they are pushed to a large negative value before the max and left out of the mean.
    """

    def __init__(self, mode: str = "max_mean", **kwargs):
        super().__init__(**kwargs)
        if mode not in ("max", "mean", "max_mean"):
            raise ValueError(f"unknown pooling mode {mode!r}")
        self.mode = mode
        self.supports_masking = True

    def call(self, inputs, mask=None):
        if mask is None:
            mask = ops.ones(ops.shape(inputs)[:2], dtype="bool")
        weights = ops.expand_dims(ops.cast(mask, inputs.dtype), -1)
        pooled = []
        if self.mode in ("max", "max_mean"):
            pooled.append(ops.max(inputs + (weights - 1.0) * 1e9, axis=1))
        if self.mode in ("mean", "max_mean"):
            total = ops.sum(inputs * weights, axis=1)
            pooled.append(total / ops.maximum(ops.sum(weights, axis=1), 1.0))
        return pooled[0] if len(pooled) == 1 else ops.concatenate(pooled, axis=-1)

    def compute_mask(self, inputs, mask=None):
        return None

    def compute_output_shape(self, input_shape):
        width = input_shape[-1] * (2 if self.mode == "max_mean" else 1)
        return (input_shape[0], width)

    def get_config(self):
        return {**super().get_config(), "mode": self.mode}


@keras.saving.register_keras_serializable(package=CUSTOM_OBJECTS_PACKAGE)
class WordDropout(layers.Layer):
    """During training, replace each word id by the unknown-word id with probability `rate`.

    Padding stays padding (the mask is unchanged). Dropping whole words, not embedding channels,
    stops the network from leaning on a few memorised tokens, such as actor names that mark a
    movie's reviews in the training set (word dropout: Iyyer et al., 2015, "Deep Unordered
    Composition Rivals Syntactic Methods for Text Classification").
    """

    def __init__(self, rate: float, unknown_id: int = 1, seed: int | None = None, **kwargs):
        super().__init__(**kwargs)
        self.rate = float(rate)
        self.unknown_id = int(unknown_id)
        self.seed = seed
        self.seed_generator = keras.random.SeedGenerator(seed)

    def call(self, ids, training=None):
        if not training or self.rate <= 0:
            return ids
        draw = keras.random.uniform(ops.shape(ids), seed=self.seed_generator)
        drop = ops.logical_and(draw < self.rate, ops.greater(ids, self.unknown_id))
        return ops.where(drop, ops.full_like(ids, self.unknown_id), ids)

    def compute_output_shape(self, input_shape):
        return input_shape

    def get_config(self):
        return {**super().get_config(), "rate": self.rate, "unknown_id": self.unknown_id,
                "seed": self.seed}
