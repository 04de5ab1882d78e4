"""The custom Keras layers of the network (registered for loading): masked pooling, word dropout."""

from __future__ import annotations

import keras
from keras import layers, ops

CUSTOM_OBJECTS_PACKAGE = "review_scorer"


POOLING_MODES = ("max", "mean", "max_mean")
PADDING_PENALTY = 1e9  # added negatively to padded steps so that they never win a max


def padding_penalty(weights):
    """0 where weights (1.0 on valid steps, 0.0 on padding) is 1, -PADDING_PENALTY where it is 0."""
    return (weights - 1.0) * PADDING_PENALTY


def masked_pool(states, weights, mode: str, *, axis: int) -> dict:
    """MaskedPooling's arithmetic, the one copy of it: {"max": ..., "mean": ...}, the parts
    `mode` asks for, of `states` over its time `axis` (1 batch-major, 0 time-major), counting
    only the steps where `weights` (states' rank, size 1 on the last axis; 1.0 valid, 0.0
    padding) is 1. A row without a valid step pools to -1e9 (max) and 0 (mean).

    Written with keras.ops so the Keras layer runs it on any backend; on TensorFlow tensors
    (the fast path, the explainer, inside their tf.functions) these are plain TensorFlow ops.
    """
    parts = {}
    if mode in ("max", "max_mean"):
        parts["max"] = ops.max(states + padding_penalty(weights), axis=axis)
    if mode in ("mean", "max_mean"):
        total = ops.sum(states * weights, axis=axis)
        parts["mean"] = total / ops.maximum(ops.sum(weights, axis=axis), 1.0)
    return parts


def pooled_features(states, weights, mode: str, *, axis: int):
    """masked_pool's parts joined as MaskedPooling outputs them: max channels, then mean."""
    parts = list(masked_pool(states, weights, mode, axis=axis).values())
    return parts[0] if len(parts) == 1 else ops.concatenate(parts, axis=-1)


@keras.saving.register_keras_serializable(package=CUSTOM_OBJECTS_PACKAGE)
class MaskedPooling(layers.Layer):
    """Max and/or mean over the valid (unmasked) time steps of a sequence.

    Keras' GlobalMaxPooling1D ignores the mask, so padded steps would take part in the max;
    here they are pushed to a large negative value before the max and left out of the mean.
    """

    def __init__(self, mode: str = "max_mean", **kwargs):
        super().__init__(**kwargs)
        if mode not in POOLING_MODES:
            raise ValueError(f"unknown pooling mode {mode!r}")
        self.mode = mode
        self.supports_masking = True

    def call(self, inputs, mask=None):
        if mask is None:
            mask = ops.ones(ops.shape(inputs)[:2], dtype="bool")
        weights = ops.expand_dims(ops.cast(mask, inputs.dtype), -1)
        return pooled_features(inputs, weights, self.mode, axis=1)

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
