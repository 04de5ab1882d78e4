"""Tests for the Keras model builder and batched prediction."""

import numpy as np
import pytest

from review_scorer.config import TrainConfig


@pytest.fixture(scope="module")
def small_model():
    import keras

    from review_scorer.model.network import build_model

    keras.utils.set_random_seed(0)
    config = TrainConfig(vocab_size=50, embedding_dim=6, lstm_units=5, dense_units=3, dropout=0.0)
    return build_model(config, 50)


def test_model_masking_makes_padding_invisible(small_model):
    seq = np.array([[5, 9, 3, 17, 2]], dtype=np.int32)
    padded = np.zeros((1, 30), dtype=np.int32)
    padded[0, :5] = seq[0]
    plain = small_model(seq, training=False).numpy()
    with_padding = small_model(padded, training=False).numpy()
    np.testing.assert_allclose(plain, with_padding, rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize("pooling", ["last", "max", "mean", "max_mean"])
@pytest.mark.parametrize("bidirectional", [True, False])
def test_model_every_pooling_ignores_padding(pooling, bidirectional):
    import keras

    from review_scorer.model.network import build_model

    keras.utils.set_random_seed(1)
    config = TrainConfig(vocab_size=40, embedding_dim=4, lstm_units=3, dense_units=0,
                         pooling=pooling, bidirectional=bidirectional, dropout=0.0)
    model = build_model(config, 40)
    short = np.array([[7, 8, 9]], dtype=np.int32)
    long = np.array([[7, 8, 9, 0, 0, 0, 0, 0]], dtype=np.int32)
    np.testing.assert_allclose(model(short).numpy(), model(long).numpy(), rtol=1e-5, atol=1e-6)
    assert model.output_shape == (None, 1)


def test_model_default_lstm_is_cudnn_eligible():
    from review_scorer.model.network import build_model

    model = build_model(TrainConfig(), 100)
    lstm = model.get_layer("bilstm").forward_layer
    assert lstm.activation.__name__ == "tanh"
    assert lstm.recurrent_activation.__name__ == "sigmoid"
    assert lstm.recurrent_dropout == 0 and not lstm.unroll and lstm.use_bias
    assert model.get_layer("embedding").mask_zero


def test_model_compiles_with_binary_crossentropy_and_adam(small_model):
    import keras

    assert isinstance(small_model.optimizer, keras.optimizers.Adam)
    assert "binary_crossentropy" in str(small_model.loss)


def test_model_recurrent_dropout_option_reaches_the_layer():
    from review_scorer.model.network import build_model

    model = build_model(TrainConfig(recurrent_dropout=0.25, bidirectional=False), 30)
    assert model.get_layer("lstm").recurrent_dropout == 0.25


def test_model_predict_ids_keeps_input_order(small_model):
    from review_scorer.model.sentiment import SentimentModel
    from review_scorer.text.vocabulary import Vocabulary

    model = SentimentModel(small_model, Vocabulary(["<pad>", "<unk>"]), TrainConfig())
    rng = np.random.default_rng(0)
    seqs = [rng.integers(2, 50, size=n).astype(np.int32) for n in rng.integers(1, 25, size=40)]
    batched = model.predict_ids(seqs, batch_size=7)
    one_by_one = np.array([small_model(s[None, :], training=False).numpy()[0, 0] for s in seqs])
    np.testing.assert_allclose(batched, one_by_one, rtol=1e-5, atol=1e-6)
    with pytest.raises(ValueError, match="empty"):
        model.predict_ids([np.array([], dtype=np.int32)])


def test_model_word_dropout_replaces_words_only_while_training():
    from review_scorer.model.layers import WordDropout

    layer = WordDropout(0.5, seed=3)
    ids = np.array([[5, 6, 7, 8, 9, 10, 11, 12, 0, 0]] * 50, dtype=np.int32)
    assert np.array_equal(np.asarray(layer(ids, training=False)), ids)
    dropped = np.asarray(layer(ids, training=True))
    assert set(np.unique(dropped[:, :8])) <= {1, 5, 6, 7, 8, 9, 10, 11, 12}
    assert np.all(dropped[:, 8:] == 0), "padding must stay padding"
    share = (dropped[:, :8] == 1).mean()
    assert 0.4 < share < 0.6


def test_model_with_word_dropout_round_trips_through_keras_safe_mode(tmp_path):
    import keras

    from review_scorer.model.network import build_model

    model = build_model(TrainConfig(vocab_size=30, embedding_dim=4, lstm_units=3, word_dropout=0.2), 30)
    model.save(tmp_path / "m.keras")
    loaded = keras.saving.load_model(tmp_path / "m.keras", safe_mode=True, compile=False)
    x = np.array([[3, 4, 5, 0]], dtype=np.int32)
    np.testing.assert_allclose(loaded(x).numpy(), model(x).numpy(), rtol=1e-6)
