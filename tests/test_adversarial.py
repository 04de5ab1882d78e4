"""Adversarial training on the word embeddings (model/adversarial.py, TrainConfig.adversarial_eps)."""

import numpy as np
import pytest

from review_scorer.config import ConfigError, TrainConfig

VOCAB = 40


def _config(eps: float, **changes) -> TrainConfig:
    return TrainConfig(vocab_size=VOCAB, embedding_dim=6, lstm_units=4, dense_units=4, dropout=0.0,
                       embedding_dropout=0.0, word_dropout=0.0, ema_momentum=0.0,
                       adversarial_eps=eps, **changes)


def _batch(seed: int = 0, n: int = 32, steps: int = 12):
    """Right-padded ids; the label is whether ids 2-9 outnumber ids 10-17."""
    rng = np.random.default_rng(seed)
    ids = rng.integers(2, VOCAB, size=(n, steps)).astype(np.int32)
    lengths = rng.integers(3, steps + 1, size=n)
    ids[np.arange(steps)[None, :] >= lengths[:, None]] = 0
    good = np.isin(ids, np.arange(2, 10)).sum(1)
    bad = np.isin(ids, np.arange(10, 18)).sum(1)
    return ids, (good > bad).astype(np.float32)


def _built(eps: float, seed: int = 3):
    import keras

    from review_scorer.model.network import build_model

    keras.utils.set_random_seed(seed)
    return build_model(_config(eps), VOCAB)


def _gradient_at_words(model, ids, labels):
    """The loss gradient at the embedded words, as the training step takes it."""
    import tensorflow as tf

    embedding = model.get_layer("embedding")
    zero = tf.zeros((*ids.shape, embedding.output_dim))
    with tf.GradientTape() as tape:
        tape.watch(zero)
        embedding.perturbation = zero
        loss = keras_loss(labels, model(ids, training=False))
    embedding.perturbation = None
    return tape.gradient(loss, zero)


def keras_loss(labels, predictions):
    import keras

    return keras.losses.binary_crossentropy(labels[:, None], predictions)


def test_the_push_has_eps_word_lengths_per_review_and_leaves_padding_alone():
    import tensorflow as tf

    model = _built(0.7)
    ids, labels = _batch()
    grad = _gradient_at_words(model, ids, labels)
    push = model._push(grad, tf.constant(ids), model.get_layer("embedding")).numpy()
    table = model.get_layer("embedding").embeddings.numpy()
    for row in range(len(ids)):
        valid = ids[row] != 0
        mean_length = np.linalg.norm(table[ids[row][valid]], axis=1).mean()
        assert np.linalg.norm(push[row]) == pytest.approx(0.7 * mean_length, rel=1e-4)
        assert np.all(push[row][~valid] == 0)
        g = grad.numpy()[row][valid].ravel()
        cosine = push[row][valid].ravel() @ g / (np.linalg.norm(g) * np.linalg.norm(push[row]))
        assert cosine == pytest.approx(1.0, abs=1e-5)


def test_the_push_raises_the_loss_more_than_pushing_the_other_way():
    """The push goes uphill: scoring the pushed words costs more than the clean ones and more
    than the opposite push (a sign error would make it a descent step)."""
    import tensorflow as tf

    model = _built(0.5)
    model.fit(*_batch(1, n=128), epochs=2, batch_size=32, verbose=0)
    ids, labels = _batch(2)
    push = model._push(_gradient_at_words(model, ids, labels), tf.constant(ids),
                       model.get_layer("embedding"))
    embedding = model.get_layer("embedding")

    def loss_with(perturbation):
        embedding.perturbation = perturbation
        try:
            return float(np.mean(keras_loss(labels, model(ids, training=False))))
        finally:
            embedding.perturbation = None

    clean, up, down = loss_with(None), loss_with(push), loss_with(-push)
    assert up > clean > down


@pytest.mark.parametrize("kind", ["fgm", "virtual"])
def test_a_training_step_with_the_adversarial_pass_differs_from_plain_training_only_by_it(kind):
    """Same start and batch: eps 0 through the adversarial step (both passes run, the push is 0)
    trains every layer above the embedding exactly as plain Keras training does (fgm: both passes
    are the clean one; virtual: the KL and its gradient vanish), and eps > 0 moves the weights
    elsewhere while reporting the clean loss."""
    from review_scorer.model.adversarial import AdversarialModel

    ids, labels = _batch(4)
    plain = _built(0.0)
    plain_loss = plain.fit(ids, labels, batch_size=32, epochs=1, shuffle=False, verbose=0)
    build = _built if kind == "fgm" else _virtual
    zero_eps = build(1.0)
    assert isinstance(zero_eps, AdversarialModel) and zero_eps.virtual == (kind == "virtual")
    zero_eps.adversarial_eps = 0.0
    zero_loss = zero_eps.fit(ids, labels, batch_size=32, epochs=1, shuffle=False, verbose=0)
    start = _built(0.0).get_weights()
    for a, b in zip(plain.get_weights()[1:], zero_eps.get_weights()[1:]):
        np.testing.assert_allclose(a, b, rtol=1e-5, atol=1e-6)
    # The table's gradient holds both lookups' rows, as Keras builds it for a loss over two
    # lookups, so Adam's second moment sums their squares: the step differs in size, not in
    # which rows move or which way.
    plain_step, zero_step = plain.get_weights()[0] - start[0], zero_eps.get_weights()[0] - start[0]
    assert np.array_equal(plain_step != 0, zero_step != 0)
    moved = plain_step != 0
    assert np.array_equal(np.sign(plain_step[moved]), np.sign(zero_step[moved]))
    assert zero_loss.history["loss"][0] == pytest.approx(plain_loss.history["loss"][0], rel=1e-5)

    pushed = build(1.0)
    pushed_loss = pushed.fit(ids, labels, batch_size=32, epochs=1, shuffle=False, verbose=0)
    assert pushed_loss.history["loss"][0] == pytest.approx(plain_loss.history["loss"][0], rel=1e-5)
    moved = max(float(np.max(np.abs(a - b))) for a, b in zip(plain.get_weights()[1:],
                                                              pushed.get_weights()[1:]))
    assert moved > 1e-4


def test_the_saved_network_is_the_plain_one_and_takes_the_fast_path(tmp_path):
    import keras

    from review_scorer.model.network import compile_inference, export_model

    model = _built(0.5)
    ids, labels = _batch(5, n=64)
    model.fit(ids, labels, batch_size=32, epochs=1, verbose=0)
    exported = export_model(model)
    assert type(exported.get_layer("embedding")) is keras.layers.Embedding
    assert type(exported) is not type(model)
    exported.save(tmp_path / "m.keras")
    loaded = keras.saving.load_model(tmp_path / "m.keras", safe_mode=True, compile=False)
    assert type(loaded.get_layer("embedding")) is keras.layers.Embedding
    expected = model(ids, training=False).numpy().ravel()
    infer = compile_inference(loaded)
    assert infer.fast
    np.testing.assert_allclose(np.asarray(infer(ids)), expected, atol=2e-3)


def test_plain_config_builds_the_plain_network():
    import keras

    model = _built(0.0)
    assert type(model.get_layer("embedding")) is keras.layers.Embedding


@pytest.mark.parametrize("eps", [-0.1, 11.0, float("nan")])
def test_adversarial_eps_out_of_range_is_refused(eps):
    with pytest.raises(ConfigError, match="adversarial_eps"):
        _config(eps)


def test_fine_tuning_a_model_trained_with_the_adversarial_pass_leaves_it_out():
    from types import SimpleNamespace

    from review_scorer.model.adversarial import AdversarialModel
    from review_scorer.model.network import build_model
    from review_scorer.training.adapt import adaptation_config

    start = SimpleNamespace(config=_config(0.5, ensemble_size=2, entropy_weight=0.3))
    config = adaptation_config(start)
    assert config.adversarial_eps == 0.0 and config.ensemble_size == 1 and config.entropy_weight == 0
    assert config.replace(adversarial_eps=0.5, ensemble_size=2, entropy_weight=0.3) == start.config
    assert not isinstance(build_model(config, VOCAB), AdversarialModel)


def _virtual(eps: float, seed: int = 3):
    import keras

    from review_scorer.model.network import build_model

    keras.utils.set_random_seed(seed)
    return build_model(_config(eps, adversarial_kind="virtual"), VOCAB)


def _kl_with(model, ids, perturbation):
    """Mean KL(clean prediction || prediction with the words perturbed), as the VAT pass reads it."""
    from review_scorer.model.adversarial import _bernoulli_kl

    embedding = model.get_layer("embedding")
    clean = model(ids, training=False)
    embedding.perturbation = perturbation
    try:
        return float(_bernoulli_kl(clean, model(ids, training=False)))
    finally:
        embedding.perturbation = None


def test_the_virtual_push_is_the_fastest_rising_direction_of_the_kl_and_needs_no_label():
    """For a sigmoid output the KL's top direction is dz/dr: the push made from the loss
    gradient with any labels is the same, and it raises the KL more than random pushes of the
    same length and than the opposite push (it points towards the decision boundary)."""
    import tensorflow as tf

    model = _virtual(0.5)
    model.fit(*_batch(1, n=512), epochs=30, batch_size=32, verbose=0)  # confident predictions
    ids, labels = _batch(2)
    embedding = model.get_layer("embedding")
    pred = model(ids, training=False)
    pushes = []
    for targets in (labels, 1.0 - labels, np.full_like(labels, 0.3)):
        grad = _gradient_at_words(model, ids, targets)
        pushes.append(model._push(grad * model._towards_boundary(tf.constant(targets), pred),
                                  tf.constant(ids), embedding).numpy())
    np.testing.assert_allclose(pushes[0], pushes[1], atol=1e-5)
    np.testing.assert_allclose(pushes[0], pushes[2], atol=1e-5)
    push = pushes[0]
    assert np.abs(push).max() > 0
    rng = np.random.default_rng(0)
    up = _kl_with(model, ids, push)
    assert up > _kl_with(model, ids, -push)
    for _ in range(5):
        noise = rng.normal(size=push.shape).astype(np.float32) * (ids != 0)[..., None]
        noise *= np.linalg.norm(push, axis=(1, 2), keepdims=True) / np.maximum(
            np.linalg.norm(noise, axis=(1, 2), keepdims=True), 1e-12)
        assert up > 3 * _kl_with(model, ids, noise)


def test_an_unknown_adversarial_kind_is_refused():
    with pytest.raises(ConfigError, match="adversarial_kind"):
        _config(0.3, adversarial_kind="random")


def _entropy_model(weight: float, seed: int = 3):
    import keras

    from review_scorer.model.network import build_model

    keras.utils.set_random_seed(seed)
    return build_model(_config(0.0, entropy_weight=weight, learning_rate=0.05), VOCAB)


@pytest.mark.parametrize("weight", [0.0, 0.5])
def test_entropy_minimisation_sharpens_soft_targets_to_its_fixed_point(weight):
    """Every target 0.7: plain training settles near 0.7, with the entropy term near the p at
    which p - 0.7 = w z p (1 - p) (0.81 for w = 0.5), the sharper copy the module doc derives."""
    from scipy.optimize import brentq

    from review_scorer.model.adversarial import AdversarialModel

    model = _entropy_model(weight)
    assert isinstance(model, AdversarialModel) == (weight > 0)
    ids, _ = _batch(6, n=256)
    targets = np.full(len(ids), 0.7, dtype=np.float32)
    model.fit(ids, targets, batch_size=64, epochs=40, verbose=0)
    mean = float(np.mean(model(ids, training=False)))
    want = 0.7 if weight == 0 else brentq(
        lambda p: p - 0.7 - weight * np.log(p / (1 - p)) * p * (1 - p), 0.7, 0.99)
    assert mean == pytest.approx(want, abs=0.02)
    if weight:
        assert want > 0.8


def test_the_entropy_term_stays_out_of_the_reported_and_validation_losses():
    import keras

    ids, labels = _batch(7)
    soft = np.where(labels > 0, 0.8, 0.3).astype(np.float32)
    model = _entropy_model(2.0)
    before = model(ids, training=False).numpy().ravel()
    history = model.fit(ids, soft, batch_size=len(ids), epochs=1, shuffle=False, verbose=0)
    # The reported loss is the cross-entropy before the step (the L2 penalty is under 2e-3 here);
    # with the entropy term, at w = 2, it would be about 1.3 higher (2 x the entropy, near ln 2).
    bce = float(np.mean(keras.losses.binary_crossentropy(soft[:, None], before[:, None])))
    assert history.history["loss"][0] == pytest.approx(bce, abs=2e-3)
    after = model(ids, training=False).numpy().ravel()
    evaluated = model.evaluate(ids, soft, batch_size=len(ids), verbose=0, return_dict=True)["loss"]
    plain = float(np.mean(keras.losses.binary_crossentropy(soft[:, None], after[:, None])))
    assert evaluated == pytest.approx(plain, abs=2e-3)


@pytest.mark.parametrize("weight", [-0.5, 11.0])
def test_entropy_weight_out_of_range_is_refused(weight):
    with pytest.raises(ConfigError, match="entropy_weight"):
        _config(0.0, entropy_weight=weight)
