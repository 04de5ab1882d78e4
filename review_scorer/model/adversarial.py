"""Adversarial training on the word embeddings (TrainConfig.adversarial_eps).

Each training step also scores the batch with every review's embedded words pushed a small
distance in the direction that raises its loss the most, and trains on both: the fast gradient
method of Goodfellow, Shlens & Szegedy (2015), applied to the embeddings of a text classifier as
Miyato, Dai & Goodfellow (2017) do. The push for one review is

    r = eps * (mean length of its word vectors) * g / ||g||

with g the loss's gradient at its embedded words and ||g|| the norm over the whole review (so
eps is measured in word vectors: 1.0 moves the review as far as one word vector is long, shared
out over its words). The step minimises 0.5 * clean loss + 0.5 * pushed loss (Goodfellow et al.'s
alpha = 0.5; under Adam the same as Miyato's sum up to clipping). It costs a second forward and
backward pass per batch. The embedding table's gradient holds both passes' looked-up rows, as
Keras builds it for one loss over two lookups (Adam's second moment then sums their squares, as
it does for a word seen twice in one batch). Only training changes: the saved network is the plain one
(export_model writes PerturbedEmbedding as a Keras Embedding).

With `virtual` (TrainConfig.adversarial_kind = "virtual") the pushed pass is virtual adversarial
training (Miyato, Maeda, Koyama & Ishii 2018; on IMDB, Miyato, Dai & Goodfellow 2017): the pushed
batch is trained to keep the network's own clean prediction, KL(p_clean || p_pushed) with p_clean
held fixed, and the step minimises clean loss + that KL (their alpha = 1). It needs no label, so
it reaches every review alike. VAT's push is the direction in which the KL grows fastest, the
top eigenvector of its Hessian at r = 0, which Miyato et al. approximate by power iteration. For
one sigmoid output that Hessian is p (1 - p) * dz/dr dz/dr^T (z the logit): rank one, so its top
eigenvector is dz/dr itself and no extra pass is needed. The clean pass's loss gradient at the
words already is (p - y) * dz/dr per review (binary cross-entropy through a sigmoid), so the push
is that gradient turned by sign(p - y), then pointed towards the decision boundary (-sign(z)),
the side on which the KL rises faster (beyond second order). Same cost as the fast gradient pass.

With `entropy_weight` w > 0 (TrainConfig.entropy_weight) the step also minimises w times the mean
entropy of the batch's predictions: entropy minimisation (Grandvalet & Bengio 2005), the term
Sachan, Zaheer & Salakhutdinov (2019) add to ML, adversarial and VAT losses on IMDB's unlabeled
reviews. Here every training text has a target (gold labels or the teacher's soft ones), so the
term pulls each prediction away from its soft target towards the nearer side: at the optimum of
BCE(t, p) + w H(p), p - t = w * z * p (1 - p), a sharper copy of the teacher. It needs no extra
pass. Validation and the curves' training loss leave it out, so early stopping reads the same
loss as without it.
"""

from __future__ import annotations

import keras
from keras import layers

from review_scorer.model.layers import CUSTOM_OBJECTS_PACKAGE


@keras.saving.register_keras_serializable(package=CUSTOM_OBJECTS_PACKAGE)
class PerturbedEmbedding(layers.Embedding):
    """A Keras Embedding that adds `perturbation` (a [batch, steps, dim] tensor) to its output
    while one is set: AdversarialModel sets it inside its training step, and nothing else."""

    perturbation = None

    def call(self, inputs):
        out = super().call(inputs)
        return out if self.perturbation is None else out + self.perturbation


class AdversarialModel(keras.Model):
    """The functional classifier whose training step adds the adversarial pass, entropy
    minimisation or both (module doc).

    Only the training object is this class: export_model rebuilds a plain keras.Model from its
    config, so nothing saved or scored depends on it.
    """

    def __init__(self, *args, adversarial_eps: float = 0.0, virtual: bool = False,
                 entropy_weight: float = 0.0, **kwargs):
        super().__init__(*args, **kwargs)
        self.adversarial_eps = float(adversarial_eps)
        self.virtual = bool(virtual)
        self.entropy_weight = float(entropy_weight)

    def train_step(self, data):
        import tensorflow as tf
        from keras.src.trainers.data_adapters import data_adapter_utils

        x, y, sample_weight = data_adapter_utils.unpack_x_y_sample_weight(data)
        weights = self.trainable_weights
        embedding = self.get_layer("embedding")
        if not isinstance(embedding, PerturbedEmbedding):  # entropy minimisation alone: one pass
            with tf.GradientTape() as tape:
                y_pred, loss, total = self._clean_pass(x, y, sample_weight)
            self._loss_tracker.update_state(loss, sample_weight=tf.shape(x)[0])
            self.optimizer.apply_gradients(zip(tape.gradient(total, weights), weights))
            return self.compute_metrics(x, y, y_pred, sample_weight=sample_weight)
        dim = embedding.output_dim
        zero = tf.zeros(tf.concat([tf.shape(x), [dim]], 0), embedding.compute_dtype)
        with tf.GradientTape() as tape:
            tape.watch(zero)
            embedding.perturbation = zero
            y_pred, loss, total = self._clean_pass(x, y, sample_weight)
        embedding.perturbation = None
        # The curves show the clean loss, comparable with a run without the adversarial pass.
        self._loss_tracker.update_state(loss, sample_weight=tf.shape(x)[0])
        *clean_grads, at_words = tape.gradient(total, [*weights, zero])
        if self.virtual:
            at_words = at_words * self._towards_boundary(y, y_pred)
        push = tf.stop_gradient(self._push(at_words, x, embedding))
        with tf.GradientTape() as tape:
            embedding.perturbation = push
            pushed_pred = self(x, training=True)
            pushed = (_bernoulli_kl(tf.stop_gradient(y_pred), pushed_pred) if self.virtual else
                      self._compute_loss(x=x, y=y, y_pred=pushed_pred, sample_weight=sample_weight,
                                         training=True))
        embedding.perturbation = None
        pushed_grads = tape.gradient(pushed, weights)
        share = 1.0 if self.virtual else 0.5  # VAT: clean + KL; fast gradient: the two halves
        grads = [_weighted_sum(a, b, share) for a, b in zip(clean_grads, pushed_grads)]
        self.optimizer.apply_gradients(zip(grads, weights))
        return self.compute_metrics(x, y, y_pred, sample_weight=sample_weight)

    def _clean_pass(self, x, y, sample_weight):
        """(predictions, the compiled loss, that loss plus the entropy term) of the batch as it is."""
        y_pred = self(x, training=True)
        loss = self._compute_loss(x=x, y=y, y_pred=y_pred, sample_weight=sample_weight, training=True)
        return y_pred, loss, loss + self._entropy(y_pred)

    def _entropy(self, y_pred):
        """entropy_weight x the batch's mean prediction entropy (0 when off)."""
        if not self.entropy_weight:
            return 0.0
        import tensorflow as tf

        p = tf.clip_by_value(tf.cast(y_pred, "float32"), 1e-7, 1.0 - 1e-7)
        entropy = -(p * tf.math.log(p) + (1.0 - p) * tf.math.log1p(-p))
        return self.entropy_weight * tf.reduce_mean(entropy)

    def _towards_boundary(self, y, y_pred):
        """Per review, the sign that turns the loss gradient at the words into dz/dr pointed
        towards the decision boundary, [batch, 1, 1]. That gradient is c dz/dr with
        c = (p - y) - w z p (1 - p) (binary cross-entropy through a sigmoid, plus w times the
        entropy), so the sign is sign(c) * -sign(p - 0.5)."""
        import tensorflow as tf

        p = tf.clip_by_value(tf.reshape(tf.cast(y_pred, "float32"), [-1]), 1e-7, 1.0 - 1e-7)
        target = tf.reshape(tf.cast(y, "float32"), [-1])
        slope = p - target
        if self.entropy_weight:
            slope -= self.entropy_weight * (tf.math.log(p) - tf.math.log1p(-p)) * p * (1.0 - p)
        return (tf.sign(slope) * -tf.sign(p - 0.5))[:, None, None]

    def _push(self, grad, ids, embedding):
        """eps * mean word-vector length * grad / ||grad|| per review (padding gets 0)."""
        import tensorflow as tf

        valid = tf.cast(tf.not_equal(ids, 0), grad.dtype)[..., None]
        grad = grad * valid
        norm = tf.sqrt(tf.reduce_sum(tf.square(grad), axis=[1, 2], keepdims=True)) + 1e-12
        vectors = tf.gather(tf.convert_to_tensor(embedding.embeddings), ids)
        lengths = tf.sqrt(tf.reduce_sum(tf.square(vectors), axis=-1, keepdims=True)) * valid
        mean_length = tf.reduce_sum(lengths, axis=[1, 2], keepdims=True) / tf.maximum(
            tf.reduce_sum(valid, axis=[1, 2], keepdims=True), 1.0)
        return self.adversarial_eps * mean_length * grad / norm


def _bernoulli_kl(p, q):
    """Mean KL(p || q) over a batch of sigmoid outputs (probabilities clipped as Keras' binary
    cross-entropy clips them)."""
    import tensorflow as tf

    eps = 1e-7
    p = tf.clip_by_value(tf.cast(p, "float32"), eps, 1.0 - eps)
    q = tf.clip_by_value(tf.cast(q, "float32"), eps, 1.0 - eps)
    kl = p * (tf.math.log(p) - tf.math.log(q)) + (1.0 - p) * (tf.math.log1p(-p) - tf.math.log1p(-q))
    return tf.reduce_mean(kl)


def _weighted_sum(a, b, share: float):
    """share * (a + b) for two gradients of one variable (dense or IndexedSlices)."""
    import tensorflow as tf

    if a is None:
        return None if b is None else share * tf.convert_to_tensor(b)
    if b is None:
        return share * tf.convert_to_tensor(a)
    if isinstance(a, tf.IndexedSlices) and isinstance(b, tf.IndexedSlices):
        return tf.IndexedSlices(tf.concat([a.values, b.values], 0) * share,
                                tf.concat([a.indices, b.indices], 0), a.dense_shape)
    return share * (tf.convert_to_tensor(a) + tf.convert_to_tensor(b))
