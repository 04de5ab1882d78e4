"""Tests for the network spec: one reading of each supported architecture, typed refusals, and
the one copy of MaskedPooling's arithmetic."""

import gc
import weakref

import numpy as np
import pytest

from review_scorer.config import TrainConfig

VOCAB = 40


def _built(seed: int = 0, *, name: str | None = None, vocab: int = VOCAB, **settings):
    import keras

    from review_scorer.model.network import build_model

    keras.utils.set_random_seed(seed)
    base = {"vocab_size": vocab, "embedding_dim": 6, "lstm_units": 5, "dense_units": 4,
            "dropout": 0.3, "embedding_dropout": 0.2, "word_dropout": 0.2}
    return build_model(TrainConfig.from_dict({**base, **settings}), vocab, name=name)


def _functional(*layers_after_embedding, vocab: int = VOCAB, mask_zero: bool = True):
    """ids -> Embedding(vocab, 4) -> the given layers, as a functional model."""
    import keras
    from keras import layers

    ids = keras.Input(shape=(None,), dtype="int32")
    x = layers.Embedding(vocab, 4, mask_zero=mask_zero)(ids)
    for layer in layers_after_embedding:
        x = layer(x)
    return keras.Model(ids, x)


def test_spec_single_lstm_with_pooling():
    from review_scorer.model.spec import FORWARD, read_spec

    model = _built(bidirectional=False, pooling="max_mean")
    spec = read_spec(model)
    assert not spec.averaged and spec.vocab_rows == VOCAB and len(spec.networks) == 1
    (network,) = spec.networks
    embedding = model.get_layer("embedding")
    assert network.embedding.layer is embedding and network.embedding.table is embedding.embeddings
    assert (network.embedding.rows, network.embedding.dim) == (VOCAB, 6)
    (lstm,) = network.recurrent
    assert lstm.layer is model.get_layer("lstm") and lstm.kind == "LSTM"
    assert (lstm.units, lstm.width, lstm.return_sequences) == (5, 5, True)
    (direction,) = lstm.directions
    assert direction.direction == FORWARD and not direction.backward
    assert direction.kernel is lstm.layer.cell.kernel and direction.bias is lstm.layer.cell.bias
    assert (direction.activation, direction.recurrent_activation) == ("tanh", "sigmoid")
    assert network.pooling == "max_mean" and network.pooled
    assert [(d.units, d.activation) for d in network.head] == [(4, "relu"), (1, "sigmoid")]
    assert network.head[0].kernel is model.get_layer("dense").kernel


def test_spec_bilstm_reading_the_last_state():
    from review_scorer.model.spec import BACKWARD, FORWARD, LAST_STATE, read_spec

    model = _built(seed=1, pooling="last", dense_units=0)
    (network,) = read_spec(model).networks
    (bilstm,) = network.recurrent
    wrapper = model.get_layer("bilstm")
    assert bilstm.layer is wrapper and (bilstm.units, bilstm.width) == (5, 10)
    assert not bilstm.return_sequences
    assert [d.direction for d in bilstm.directions] == [FORWARD, BACKWARD]
    assert bilstm.directions[1].recurrent_kernel is wrapper.backward_layer.cell.recurrent_kernel
    assert network.pooling == LAST_STATE and not network.pooled
    assert [d.units for d in network.head] == [1]


def test_spec_stacked_recurrent_layers_of_several_kinds():
    from keras import layers

    from review_scorer.model.fast_lstm import fast_networks
    from review_scorer.model.layers import MaskedPooling
    from review_scorer.model.spec import UnsupportedNetwork, read_spec

    model = _functional(layers.Bidirectional(layers.GRU(3, return_sequences=True)),
                        layers.Dropout(0.5), layers.SimpleRNN(2, return_sequences=True),
                        layers.LSTM(4, return_sequences=True), MaskedPooling("mean"),
                        layers.Dense(3, activation="tanh"), layers.Dense(1, activation="sigmoid"))
    (network,) = read_spec(model).networks
    assert [(r.kind, r.units, r.width) for r in network.recurrent] == [
        ("GRU", 3, 6), ("SimpleRNN", 2, 2), ("LSTM", 4, 4)]
    assert network.recurrent[1].directions[0].recurrent_activation is None  # SimpleRNN has none
    assert all(r.return_sequences for r in network.recurrent)
    assert network.pooling == "mean"
    # The fast path computes one LSTM layer only, and says so with the same exception type.
    with pytest.raises(UnsupportedNetwork, match="3 stacked recurrent layers"):
        fast_networks(model)


def test_spec_stacked_lstms_without_pooling():
    from keras import layers

    from review_scorer.model.spec import read_spec

    model = _functional(layers.LSTM(3, return_sequences=True), layers.LSTM(2),
                        layers.Dense(1, activation="sigmoid"))
    (network,) = read_spec(model).networks
    assert [r.return_sequences for r in network.recurrent] == [True, False]
    assert not network.pooled


def test_spec_ensemble_of_members_after_export():
    from review_scorer.model.fast_lstm import fast_networks
    from review_scorer.model.network import average_members, export_model
    from review_scorer.model.spec import read_spec

    members = [_built(seed=s, name=f"member_{s}", pooling=p)
               for s, p in ((2, "max_mean"), (3, "last"))]
    ensemble = export_model(average_members(members))
    spec = read_spec(ensemble)
    assert spec.averaged and len(spec.networks) == 2 and spec.vocab_rows == VOCAB
    for network, name in zip(spec.networks, ("member_2", "member_3")):
        assert network.embedding.table is ensemble.get_layer(name).get_layer("embedding").embeddings
        assert network.embedding.dtype == "float16"  # export_model's half-precision table
    assert [n.pooling for n in spec.networks] == ["max_mean", "last"]
    assert fast_networks(ensemble) is spec.networks  # the fast path reads this same spec


def test_spec_of_a_saved_and_loaded_model(tmp_path):
    """A loaded model records the padding mask as an explicit call argument; the spec still
    reads the chain."""
    import keras

    from review_scorer.model.spec import read_spec

    model = _built(seed=4, pooling="max")
    model.save(tmp_path / "model.keras")
    loaded = keras.saving.load_model(tmp_path / "model.keras", compile=False)
    (network,) = read_spec(loaded).networks
    assert network.pooling == "max" and [r.kind for r in network.recurrent] == ["LSTM"]
    assert len(network.recurrent[0].directions) == 2


def _doubled(x):
    return x * 2.0


def _unsupported_models():
    import keras
    from keras import layers

    yield "Conv1D where an LSTM, GRU or SimpleRNN should be", _functional(
        layers.Conv1D(3, 2), layers.GlobalMaxPooling1D(), layers.Dense(1))
    yield "does not mask id 0", _functional(layers.LSTM(3), layers.Dense(1), mask_zero=False)
    yield "merge_mode 'sum'", _functional(layers.Bidirectional(layers.LSTM(3), merge_mode="sum"),
                                          layers.Dense(1))
    yield "go_backwards on a single LSTM", _functional(layers.LSTM(3, go_backwards=True),
                                                       layers.Dense(1))
    yield "no MaskedPooling after the GRU", _functional(layers.GRU(3, return_sequences=True),
                                                        layers.GlobalAveragePooling1D(), layers.Dense(1))
    yield "the last layer is not Dense\\(1\\)", _functional(layers.LSTM(3), layers.Dense(2))
    yield "Dense activation .* is not a Keras activation", _functional(
        layers.LSTM(3), layers.Dense(1, activation=_doubled))
    yield "not a functional model", keras.Sequential([
        keras.Input(shape=(None,), dtype="int32"), layers.Embedding(VOCAB, 4, mask_zero=True),
        layers.LSTM(3), layers.Dense(1)])
    small, large = (_functional(layers.LSTM(2), layers.Dense(1), vocab=v) for v in (30, 50))
    ids = keras.Input(shape=(None,), dtype="int32")
    yield "members with different vocabularies \\(30, 50 ids\\)", keras.Model(
        ids, layers.Average()([small(ids), large(ids)]))


@pytest.mark.filterwarnings("ignore:Layer 'conv1d")  # Keras: Conv1D drops the mask
def test_spec_refuses_other_models_with_the_reason():
    from review_scorer.model.spec import UnsupportedNetwork, read_spec

    for reason, model in _unsupported_models():
        with pytest.raises(UnsupportedNetwork, match=reason) as caught:
            read_spec(model)
        assert caught.value.reason == str(caught.value)
        with pytest.raises(UnsupportedNetwork, match=reason):  # the cached refusal, again
            read_spec(model)


def test_spec_is_read_once_per_model_and_does_not_keep_it_alive():
    from review_scorer.model.spec import read_spec

    model = _built(seed=5)
    spec = read_spec(model)
    assert read_spec(model) is spec
    assert read_spec(_built(seed=5)) is not spec  # another model object, another reading
    table = spec.networks[0].embedding.table
    table.assign(np.ones(table.shape, "float32"))  # a variable, not a copy: later values show
    assert np.all(np.asarray(read_spec(model).networks[0].embedding.table) == 1.0)
    alive = weakref.ref(model)
    del model, spec, table
    gc.collect()
    assert alive() is None


@pytest.mark.filterwarnings("ignore:Layer 'conv1d")
def test_spec_vocabulary_rows_for_any_model():
    from keras import layers

    from review_scorer.model.spec import vocabulary_rows

    assert vocabulary_rows(_built(seed=6, vocab=33)) == 33
    unsupported = _functional(layers.Conv1D(3, 2), layers.GlobalMaxPooling1D(), layers.Dense(1),
                              vocab=21)
    assert vocabulary_rows(unsupported) == 21  # the first Embedding, read without a spec
    import keras

    numbers = keras.Input(shape=(3,))
    assert vocabulary_rows(keras.Model(numbers, layers.Dense(1)(numbers))) is None


def test_spec_networks_are_the_explainers_and_the_fast_paths():
    from review_scorer.explain.attribution import pooled_networks
    from review_scorer.model.fast_lstm import build_fast_states
    from review_scorer.model.spec import read_spec

    model = _built(seed=7)
    networks = read_spec(model).networks
    assert pooled_networks(model) is networks
    assert build_fast_states(model).networks is networks
    assert pooled_networks(_built(seed=7, pooling="last")) is None  # nothing pooled to explain


def _padded(rng, rows: int, steps: int) -> np.ndarray:
    lengths = rng.integers(1, steps + 1, rows)
    lengths[:2] = (1, steps)
    return np.arange(steps)[None, :] < lengths[:, None]


@pytest.mark.parametrize("mode", ["max", "mean", "max_mean"])
def test_spec_pooling_agrees_across_layouts_and_with_numpy(mode):
    """MaskedPooling (batch-major, Keras) and masked_pool time-major (the fast path) against a
    direct numpy reading: max and mean over the valid steps only."""
    from review_scorer.model.fast_lstm import join_directions
    from review_scorer.model.layers import MaskedPooling, masked_pool

    rng = np.random.default_rng(11)
    states = rng.normal(0.0, 3.0, (7, 9, 4)).astype("float32")  # [batch, steps, channels]
    mask = _padded(rng, 7, 9)
    keras_pooled = np.asarray(MaskedPooling(mode)(states, mask=mask))
    time_major = np.transpose(states, [1, 0, 2])
    weights = np.transpose(mask, [1, 0]).astype("float32")[:, :, None]
    # Two "directions" of two channels each, pooled apart and joined as Keras lays them out.
    fast = np.asarray(join_directions([masked_pool(time_major[..., half], weights, mode, axis=0)
                                       for half in (slice(0, 2), slice(2, 4))]))
    want = []
    if mode in ("max", "max_mean"):
        want.append([row[m].max(axis=0) for row, m in zip(states, mask)])
    if mode in ("mean", "max_mean"):
        want.append([row[m].mean(axis=0) for row, m in zip(states, mask)])
    want = np.concatenate(want, axis=-1)
    np.testing.assert_allclose(keras_pooled, want, rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(fast, want, rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize("ensemble", [False, True])
def test_spec_vocabulary_rows_guard_a_model_directory(tmp_path, ensemble):
    """artifacts.load_model_dir refuses a vocabulary file that does not fit the embeddings."""
    from review_scorer.errors import ArtifactError
    from review_scorer.model.artifacts import load_model_dir, save_model_dir
    from review_scorer.model.network import average_members, export_model
    from review_scorer.text.vocabulary import Vocabulary

    vocab = Vocabulary.build(["good bad plot film acting story"], max_size=50)
    config = TrainConfig.from_dict({"vocab_size": 50, "embedding_dim": 6, "lstm_units": 5})
    for rows, fits in ((len(vocab), True), (len(vocab) + 3, False)):
        members = [_built(seed=s, name=f"m{s}", vocab=rows) for s in (8, 9)[: 1 + ensemble]]
        model = export_model(average_members(members) if ensemble else members[0])
        target = save_model_dir(tmp_path / f"{rows}", model=model, vocab=vocab, config=config,
                                history={}, metrics=None, meta={"name": "tiny"})
        if fits:
            assert len(load_model_dir(target).vocab) == rows
        else:
            with pytest.raises(ArtifactError, match=f"expects {rows} vocabulary ids but"):
                load_model_dir(target)
