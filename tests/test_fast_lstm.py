"""Tests for the fast CPU forward pass: the same scores as the Keras model, and a safe fallback."""

import csv
from pathlib import Path

import numpy as np
import pytest

from review_scorer.config import TrainConfig

SAMPLE_DATA = Path(__file__).resolve().parent.parent / "sample_data"
TOLERANCE = 1e-5
VOCAB = 60


def _randomize(model, seed: int) -> None:
    """Weights large enough that scores spread over (0, 1) and any mistake shows in them."""
    rng = np.random.default_rng(seed)
    model.set_weights([rng.normal(0.0, 1.0, w.shape).astype(w.dtype) for w in model.get_weights()])


def _tiny(seed: int = 0, *, name: str | None = None, vocab: int = VOCAB, **settings):
    import keras

    from review_scorer.model.network import build_model

    keras.utils.set_random_seed(seed)
    # Every dropout on: the fast path must treat them all as the identity, as inference does.
    base = {"vocab_size": vocab, "embedding_dim": 6, "lstm_units": 5, "dense_units": 4,
            "dropout": 0.3, "embedding_dropout": 0.2, "word_dropout": 0.2}
    model = build_model(TrainConfig.from_dict({**base, **settings}), vocab, name=name)
    _randomize(model, seed)
    return model


@pytest.fixture()
def cpu_only():
    """The fast path is for CPUs: compile_inference never picks it where TensorFlow sees a GPU,
    and there the Keras call (cuDNN, TF32 matmuls) would not match it to 1e-5 anyway."""
    import tensorflow as tf

    if tf.config.list_logical_devices("GPU"):
        pytest.skip("on a GPU compile_inference keeps the Keras path (cuDNN)")


pytestmark = pytest.mark.usefixtures("cpu_only")


def _batch(seed: int, rows: int = 11, steps: int = 13, vocab: int = VOCAB) -> np.ndarray:
    """Right-padded ids with varied lengths, including 1 and the full width."""
    rng = np.random.default_rng(seed)
    lengths = rng.integers(1, steps + 1, rows)
    lengths[:2] = (1, steps)
    ids = np.zeros((rows, steps), np.int32)
    for row, length in enumerate(lengths):
        ids[row, :length] = rng.integers(1, vocab, length)
    return ids


def _keras_scores(model, ids) -> np.ndarray:
    return np.asarray(model(ids, training=False)).reshape(-1)


def _assert_same(model, fast) -> None:
    for seed in range(3):
        ids = _batch(seed)
        diff = np.abs(fast(ids).numpy() - _keras_scores(model, ids)).max()
        assert diff < TOLERANCE, f"fast and Keras differ by {diff}"


@pytest.mark.parametrize("bidirectional,pooling", [
    (True, "max_mean"), (True, "mean"), (True, "max"), (True, "last"),
    (False, "max_mean"), (False, "last"),
])
def test_fast_lstm_matches_keras(bidirectional, pooling):
    from review_scorer.model.fast_lstm import build_fast_inference

    model = _tiny(bidirectional=bidirectional, pooling=pooling)
    fast = build_fast_inference(model)
    assert fast is not None and fast.fast is True
    _assert_same(model, fast)
    scores = fast(_batch(0)).numpy()
    assert scores.std() > 0.01  # the comparison is not between near-constants


@pytest.mark.parametrize("pooling", ["max_mean", "last"])
def test_fast_lstm_padding_width_does_not_change_a_score(pooling):
    from review_scorer.model.fast_lstm import build_fast_inference

    fast = build_fast_inference(_tiny(seed=3, pooling=pooling))
    row = np.array([4, 17, 9, 33, 2], np.int32)
    narrow, wide = np.zeros((2, 5), np.int32), np.zeros((2, 50), np.int32)
    narrow[0], wide[0] = row, np.pad(row, (0, 45))
    narrow[1, :2] = wide[1, :2] = (8, 8)
    np.testing.assert_allclose(fast(narrow).numpy(), fast(wide).numpy(), atol=1e-6)


def test_fast_lstm_no_dense_layer_and_no_dropout():
    from review_scorer.model.fast_lstm import build_fast_inference

    model = _tiny(seed=4, dense_units=0, dropout=0.0, embedding_dropout=0.0, word_dropout=0.0)
    _assert_same(model, build_fast_inference(model))


def test_fast_lstm_reads_the_weights_at_each_call():
    from review_scorer.model.fast_lstm import build_fast_inference

    model = _tiny(seed=10)
    fast = build_fast_inference(model)
    before = fast(_batch(0)).numpy()
    _randomize(model, seed=11)  # e.g. weights restored after the function was built
    assert np.abs(fast(_batch(0)).numpy() - before).max() > 1e-3
    _assert_same(model, fast)


def test_fast_lstm_ensemble_of_two_matches_keras():
    from review_scorer.model.fast_lstm import build_fast_inference, fast_networks
    from review_scorer.model.network import average_members, export_model

    members = [_tiny(seed=s, name=f"member_{s}") for s in (1, 2)]
    ensemble = export_model(average_members(members))
    assert len(fast_networks(ensemble)) == 2
    _assert_same(ensemble, build_fast_inference(ensemble))


def test_fast_lstm_saved_and_loaded_ensemble_with_half_precision_tables(trained_model, tmp_path):
    from review_scorer.model.fast_lstm import build_fast_inference
    from review_scorer.model.network import average_members, export_model
    from review_scorer.model.sentiment import SentimentModel

    trained = SentimentModel.load(trained_model.model_dir)
    vocab_size = len(trained.vocab)
    members = [_tiny(seed=s, name=f"member_{s}", vocab=vocab_size) for s in (5, 6)]
    original = SentimentModel(export_model(average_members(members)), trained.vocab, trained.config)
    loaded = SentimentModel.load(original.save(tmp_path / "ensemble"))
    assert str(loaded.keras_model.get_layer("member_5").get_layer("embedding").embeddings.dtype) \
        == "float16"
    fast = build_fast_inference(loaded.keras_model)
    assert fast is not None
    for seed in range(3):
        ids = _batch(seed, vocab=vocab_size)
        assert np.abs(fast(ids).numpy() - _keras_scores(loaded.keras_model, ids)).max() < TOLERANCE


def test_fast_lstm_trained_tiny_model_through_predict(trained_model, monkeypatch):
    from review_scorer.model.sentiment import SentimentModel

    texts = ["a wonderful film, I loved it", "boring and far too long", "ok", "the plot " * 30]
    fast = SentimentModel.load(trained_model.model_dir)
    assert fast.infer.fast is True
    monkeypatch.setenv("REVIEW_SCORER_FAST_LSTM", "0")
    slow = SentimentModel(fast.keras_model, fast.vocab, fast.config, meta=fast.meta, lexicon=fast.lexicon,
                        clauses=fast.clauses)
    assert slow.infer.fast is False
    assert np.abs(fast.predict(texts) - slow.predict(texts)).max() < TOLERANCE


def test_fast_lstm_refuses_a_changed_recurrent_activation():
    import keras

    from review_scorer.model.fast_lstm import build_fast_inference, fast_networks
    from review_scorer.model.network import compile_inference
    from review_scorer.model.spec import UnsupportedNetwork

    model = _tiny(seed=7)
    model.get_layer("bilstm").backward_layer.cell.recurrent_activation = keras.activations.hard_sigmoid
    with pytest.raises(UnsupportedNetwork, match="recurrent activation other than sigmoid"):
        fast_networks(model)
    assert build_fast_inference(model) is None
    infer = compile_inference(model)
    assert infer.fast is False
    ids = _batch(0)
    np.testing.assert_allclose(infer(ids).numpy(), _keras_scores(model, ids), atol=1e-7)


def _other_models():
    import keras
    from keras import layers

    ids = keras.Input(shape=(None,), dtype="int32")
    conv = layers.Conv1D(3, 2)(layers.Embedding(VOCAB, 4, mask_zero=True)(ids))
    pooled = layers.GlobalMaxPooling1D()(conv)
    yield "Conv1D where an LSTM", keras.Model(ids, layers.Dense(1, activation="sigmoid")(pooled))
    ids = keras.Input(shape=(None,), dtype="int32")
    unmasked = layers.LSTM(3)(layers.Embedding(VOCAB, 4)(ids))
    yield "does not mask id 0", keras.Model(ids, layers.Dense(1, activation="sigmoid")(unmasked))
    ids = keras.Input(shape=(None,), dtype="int32")
    gru = layers.GRU(3)(layers.Embedding(VOCAB, 4, mask_zero=True)(ids))
    yield "GRU where an LSTM", keras.Model(ids, layers.Dense(1, activation="sigmoid")(gru))
    ids = keras.Input(shape=(None,), dtype="int32")
    embedded = layers.Embedding(VOCAB, 4, mask_zero=True)(ids)
    summed = layers.Bidirectional(layers.LSTM(3), merge_mode="sum")(embedded)
    yield "merge_mode 'sum'", keras.Model(ids, layers.Dense(1, activation="sigmoid")(summed))
    yield "not a functional model", keras.Sequential([keras.Input(shape=(None,), dtype="int32"),
                                          layers.Embedding(VOCAB, 4, mask_zero=True),
                                          layers.LSTM(3), layers.Dense(1, activation="sigmoid")])


@pytest.mark.filterwarnings("ignore:Layer 'conv1d")  # Keras: Conv1D drops the mask (conv1d, conv1d_1, ...)
def test_fast_lstm_falls_back_for_other_networks():
    from review_scorer.model.fast_lstm import build_fast_inference, fast_networks
    from review_scorer.model.network import compile_inference
    from review_scorer.model.spec import UnsupportedNetwork

    for name, model in _other_models():
        with pytest.raises(UnsupportedNetwork, match=name):
            fast_networks(model)
        assert build_fast_inference(model) is None, name
        infer = compile_inference(model)
        assert infer.fast is False, name
        ids = _batch(1)
        np.testing.assert_allclose(infer(ids).numpy(), _keras_scores(model, ids), atol=1e-7,
                                   err_msg=name)


def test_fast_lstm_environment_switch_selects_the_keras_path(monkeypatch):
    from review_scorer.model.network import compile_inference

    model = _tiny(seed=8)
    assert compile_inference(model).fast is True
    for off in ("0", "false", "OFF"):
        monkeypatch.setenv("REVIEW_SCORER_FAST_LSTM", off)
        assert compile_inference(model).fast is False
    monkeypatch.setenv("REVIEW_SCORER_FAST_LSTM", "1")
    assert compile_inference(model).fast is True


def test_fast_lstm_rejects_ids_that_are_not_right_padded():
    import tensorflow as tf

    from review_scorer.model.fast_lstm import build_fast_inference

    fast = build_fast_inference(_tiny(seed=9))
    with pytest.raises(tf.errors.InvalidArgumentError, match="right-padded"):
        fast(np.array([[0, 0, 5, 6]], np.int32))


def test_fast_lstm_shipped_model_predicts_as_keras(monkeypatch):
    from review_scorer.model.artifacts import packaged_model_dir
    from review_scorer.model.sentiment import SentimentModel

    with open(SAMPLE_DATA / "shop_reviews.csv", encoding="utf-8", newline="") as handle:
        texts = [row["text"] for row in csv.DictReader(handle)][:50]
    assert len(texts) == 50
    shipped = SentimentModel.load(packaged_model_dir())
    fast_scores = shipped.predict(texts)
    assert shipped.infer.fast is True
    monkeypatch.setenv("REVIEW_SCORER_FAST_LSTM", "0")
    # the same model, lexicon term and calibration included, through the Keras call
    keras_path = SentimentModel(shipped.keras_model, shipped.vocab, shipped.config,
                                meta=shipped.meta, lexicon=shipped.lexicon, clauses=shipped.clauses)
    assert shipped.lexicon is not None
    keras_scores = keras_path.predict(texts)
    assert keras_path.infer.fast is False
    assert np.isfinite(fast_scores).sum() >= 45
    np.testing.assert_array_equal(np.isnan(fast_scores), np.isnan(keras_scores))
    assert np.nanmax(np.abs(fast_scores - keras_scores)) < TOLERANCE



class _Parts:
    """The three things Explainer reads from a model, for a bare Keras network."""

    def __init__(self, keras_model):
        from review_scorer.config import TrainConfig

        self.keras_model, self.vocab, self.config = keras_model, None, TrainConfig()


def _explanations(model, ids, monkeypatch, *, fast: bool, method: str):
    from review_scorer.explain.attribution import Explainer
    from review_scorer.model.fast_lstm import FAST_LSTM_ENV

    monkeypatch.setenv(FAST_LSTM_ENV, "1" if fast else "0")
    explainer = Explainer(_Parts(model), method=method)
    assert (explainer.fast is not None) == fast
    return explainer._batch(ids)


@pytest.mark.parametrize("method", ["pooling_delta", "pooling"])
@pytest.mark.parametrize("pooling", ["max_mean", "max", "mean"])
def test_fast_lstm_states_give_the_explainer_the_same_attributions(monkeypatch, pooling, method):
    """The explainer's pooling methods read the LSTM outputs from fast_lstm on a CPU: the same
    scores and per-token credits as the Keras encoder, for a single network and an ensemble."""
    from review_scorer.model.network import average_members, export_model

    single = _tiny(seed=3, pooling=pooling)
    ensemble = export_model(average_members([_tiny(seed=s, name=f"m{s}", pooling=pooling)
                                             for s in (4, 5)]))
    for model in (single, ensemble):
        for seed in range(2):
            ids = _batch(seed)
            prob_k, w_k = _explanations(model, ids, monkeypatch, fast=False, method=method)
            prob_f, w_f = _explanations(model, ids, monkeypatch, fast=True, method=method)
            np.testing.assert_allclose(prob_f, prob_k, atol=TOLERANCE)
            np.testing.assert_allclose(w_f, w_k, atol=TOLERANCE)
            assert np.all(w_f[ids == 0] == 0)  # padding gets no credit


def test_fast_lstm_states_are_keras_bidirectional_outputs():
    """Forwards channels first, text order, zero on padding: what Bidirectional(concat) returns
    on its valid steps."""
    import keras

    from review_scorer.model.fast_lstm import build_fast_states

    model = _tiny(seed=6)
    ids = _batch(7)
    (states,) = build_fast_states(model)(ids)
    embedded = model.get_layer("embedding")(ids)
    outputs = np.asarray(model.get_layer("bilstm")(embedded, mask=ids != 0, training=False))
    valid = ids != 0
    np.testing.assert_allclose(np.asarray(states)[valid], outputs[valid], atol=TOLERANCE)
    assert np.all(np.asarray(states)[~valid] == 0)
    assert build_fast_states(_tiny(seed=6, pooling="last")) is None
    assert isinstance(model.get_layer("bilstm"), keras.layers.Bidirectional)
