"""Tests for language-model pretraining, the encoder directory and starting a classifier from it."""

from __future__ import annotations

import json
import shutil

import numpy as np
import pytest

from review_scorer.config import PretrainConfig
from review_scorer.errors import ArtifactError, ConfigError, OutputError
from review_scorer.model.encoder import (
    CHECKPOINT_DIR,
    META_FILE,
    WEIGHTS_FILE,
    load_encoder_dir,
    read_encoder_meta,
)
from tests.conftest import MINI_IMDB

# A language model small enough to pretrain in seconds on the mini aclImdb (a few hundred tokens).
TINY_PRETRAIN = {
    "vocab_size": 200, "min_count": 1, "embedding_dim": 8, "lstm_units": 8, "bptt": 10,
    "batch_size": 4, "epochs": 2, "num_sampled": 40, "heldout_fraction": 0.1,
    "learning_rate": 0.01, "validation_fraction": 0.25,
}


@pytest.fixture(scope="module")
def tiny_pretrain_config():
    return PretrainConfig.from_dict(TINY_PRETRAIN)


@pytest.fixture(scope="module")
def tiny_encoder(tmp_path_factory, tiny_pretrain_config):
    from review_scorer.training.pretrain import run_pretraining

    out = tmp_path_factory.mktemp("encoders") / "tiny-encoder"
    events = []
    result = run_pretraining(tiny_pretrain_config, source=str(MINI_IMDB), output_dir=out,
                             progress=events.append)
    return result, events


def _weights_of(directory):
    return load_encoder_dir(directory).weights


def test_pretrain_saves_an_encoder_that_loads_with_its_history_and_meta(tiny_encoder):
    result, events = tiny_encoder
    encoder = load_encoder_dir(result.encoder_dir)
    assert result.completed and result.epochs_done == 2
    assert not (result.encoder_dir / CHECKPOINT_DIR).exists()  # a finished run cleans up
    assert encoder.config == result.config
    assert encoder.weights["embedding"].shape == (len(encoder.vocab), 8)
    assert encoder.weights["forward/kernel"].shape == (8, 32)
    assert encoder.weights["backward/recurrent_kernel"].shape == (8, 32)
    for key in ("loss", "heldout_loss", "heldout_perplexity", "tokens_per_s"):
        assert len(encoder.history[key]) == 2
    # Perplexity is exp(loss) and the untrained model starts near the vocabulary size.
    assert encoder.history["heldout_perplexity"][0] == pytest.approx(
        np.exp(encoder.history["heldout_loss"][0]), rel=1e-3)
    meta = encoder.meta
    assert meta["tokens"] == result.corpus["tokens"] > 0
    assert meta["tokens_seen"] == result.tokens_seen > 0
    assert "test split" in meta["corpus"]["excluded"] and "validation" in meta["corpus"]["excluded"]
    assert set(meta["files"]) == {WEIGHTS_FILE, "vocab.txt", "config.json", "history.json"}
    stages = [e.stage for e in events]
    assert stages[0] == "reading" and stages[-1] == "saving" and "evaluating" in stages
    training = [e for e in events if e.stage == "training"]
    assert all(e.tokens_per_s > 0 and e.eta_s >= 0 for e in training)
    assert training[-1].eta_s == pytest.approx(0.0, abs=1e-6)


def test_pretrain_text_leaves_out_test_and_validation_reviews(tiny_pretrain_config):
    from review_scorer.io import load_labeled
    from review_scorer.training.pretrain import load_pretraining_texts
    from review_scorer.training.splits import holdout_split

    texts, description = load_pretraining_texts(str(MINI_IMDB), config=tiny_pretrain_config)
    reviews = load_labeled(str(MINI_IMDB))
    train_idx = np.flatnonzero(reviews.splits == "train")
    fit_idx, val_idx, _ = holdout_split(reviews, train_idx, tiny_pretrain_config.validation_fraction,
                                        tiny_pretrain_config.seed)
    used = set(texts)
    assert len(val_idx) > 0
    assert not used & {reviews.texts[i] for i in val_idx}
    assert not used & {reviews.texts[i] for i in np.flatnonzero(reviews.splits == "test")}
    assert {reviews.texts[i] for i in fit_idx} <= used
    assert set(reviews.unlabeled) <= used
    assert description["reviews"] == len(texts) == len(fit_idx) + len(reviews.unlabeled)


def test_pretrain_reads_a_plain_review_file(tmp_path, tiny_pretrain_config):
    from review_scorer.training.pretrain import load_pretraining_texts

    path = tmp_path / "notes.csv"
    path.write_text("id,comment\n1,Lovely film.\n2,\n3,Dull and long.\n", encoding="utf-8")
    texts, description = load_pretraining_texts(path, config=tiny_pretrain_config,
                                                text_column="comment")
    assert texts == ["Lovely film.", "Dull and long."]
    assert description["text_column"] == "comment"


def test_encoder_directory_refuses_corruption_in_one_line(tiny_encoder, tmp_path, trained_model):
    source = tiny_encoder[0].encoder_dir
    broken = tmp_path / "broken"
    shutil.copytree(source, broken)
    raw = bytearray((broken / WEIGHTS_FILE).read_bytes())
    raw[-40] ^= 0xFF
    (broken / WEIGHTS_FILE).write_bytes(bytes(raw))
    with pytest.raises(ArtifactError, match="checksum does not match") as info:
        load_encoder_dir(broken)
    assert "\n" not in str(info.value)

    (broken / META_FILE).unlink()
    with pytest.raises(ArtifactError, match="not a complete encoder directory"):
        load_encoder_dir(broken)
    with pytest.raises(ArtifactError, match="not a review-scorer encoder"):
        read_encoder_meta(trained_model.model_dir)
    with pytest.raises(ArtifactError, match="no encoder directory"):
        load_encoder_dir(tmp_path / "missing")

    meta = json.loads((source / META_FILE).read_text())
    shutil.rmtree(broken)
    shutil.copytree(source, broken)
    (broken / META_FILE).write_text(json.dumps({**meta, "format_version": 99}))
    with pytest.raises(ArtifactError, match="format 99 is not supported"):
        load_encoder_dir(broken)


def test_pretrain_refuses_to_overwrite_a_finished_encoder(tiny_encoder, tiny_pretrain_config):
    from review_scorer.training.pretrain import run_pretraining

    with pytest.raises(OutputError, match="--overwrite"):
        run_pretraining(tiny_pretrain_config, source=str(MINI_IMDB),
                        output_dir=tiny_encoder[0].encoder_dir)


class _Stop(Exception):
    pass


def _interrupt_after(steps: int, exc: BaseException):
    seen = []

    def progress(event):
        if event.stage == "training":
            seen.append(event)
            if len(seen) == steps:
                raise exc
    return progress, seen


@pytest.mark.parametrize("exc, checkpoint_minutes", [
    (KeyboardInterrupt(), 60.0),  # Ctrl-C: the checkpoint is written on the way out
    (_Stop("crash"), 1e-9),       # a crash: the last periodic checkpoint (every step here)
])
def test_pretrain_resumes_from_its_checkpoint_after_an_interruption(
        tiny_encoder, tmp_path, exc, checkpoint_minutes):
    from review_scorer.training.pretrain import run_pretraining

    reference, _ = tiny_encoder
    config = reference.config.replace(checkpoint_minutes=checkpoint_minutes)
    out = tmp_path / "resumed"
    progress, seen = _interrupt_after(5, exc)
    with pytest.raises(type(exc)):
        run_pretraining(config, source=str(MINI_IMDB), output_dir=out, progress=progress)
    state = json.loads((out / CHECKPOINT_DIR / "state" / "state.json").read_text())
    steps = seen[0].steps
    assert state["epoch"] * steps + state["step"] == 5
    assert not (out / META_FILE).exists()

    again = []
    result = run_pretraining(config, source=str(MINI_IMDB), output_dir=out, progress=again.append)
    training = [e for e in again if e.stage == "training"]
    assert result.resumed_from_step == 5
    assert len(training) == 2 * steps - 5  # only the steps not done before
    assert result.tokens_seen == reference.tokens_seen
    # Same data order, same dropout and softmax samples (all keyed by the step): the resumed
    # run ends where the uninterrupted one did.
    ours, theirs = _weights_of(out), _weights_of(reference.encoder_dir)
    for name in theirs:
        np.testing.assert_allclose(ours[name], theirs[name], rtol=1e-4, atol=1e-5, err_msg=name)
    with pytest.raises(OutputError):
        run_pretraining(config, source=str(MINI_IMDB), output_dir=out)


def test_pretrain_refuses_to_resume_with_other_settings(tmp_path, tiny_pretrain_config):
    from review_scorer.training.pretrain import run_pretraining

    out = tmp_path / "enc"
    progress, _ = _interrupt_after(2, KeyboardInterrupt())
    with pytest.raises(KeyboardInterrupt):
        run_pretraining(tiny_pretrain_config, source=str(MINI_IMDB), output_dir=out,
                        progress=progress)
    with pytest.raises(ConfigError, match=r"different settings bptt.*delete"):
        run_pretraining(tiny_pretrain_config.replace(bptt=12), source=str(MINI_IMDB),
                        output_dir=out)


def test_pretrain_time_limit_saves_an_incomplete_encoder_and_can_continue(
        tmp_path, tiny_pretrain_config):
    from review_scorer.training.pretrain import run_pretraining

    out = tmp_path / "enc"
    first = run_pretraining(tiny_pretrain_config, source=str(MINI_IMDB), output_dir=out,
                            time_limit_s=1e-9)
    assert not first.completed and 0 < first.epochs_done < 1
    assert read_encoder_meta(out)["completed"] is False
    assert (out / CHECKPOINT_DIR).is_dir()
    load_encoder_dir(out)  # usable as it is
    second = run_pretraining(tiny_pretrain_config, source=str(MINI_IMDB), output_dir=out)
    assert second.completed and second.resumed_from_step == 1
    assert read_encoder_meta(out)["epochs"] == 2
    assert not (out / CHECKPOINT_DIR).exists()


def test_copy_encoder_weights_fills_the_classifier_and_the_slow_rate_holds_it(
        tiny_encoder, tiny_config):
    import keras

    from review_scorer.model.network import build_model, compile_classifier, copy_encoder_weights

    encoder = load_encoder_dir(tiny_encoder[0].encoder_dir)
    config = tiny_config.replace(embedding_dim=8, lstm_units=8, word_dropout=0.0,
                                 ema_momentum=0.0)
    keras.utils.set_random_seed(3)
    model = build_model(config, len(encoder.vocab))
    copy_encoder_weights(model, encoder.weights)
    bilstm = model.get_layer("bilstm")
    np.testing.assert_array_equal(bilstm.forward_layer.cell.kernel.numpy(),
                                  encoder.weights["forward/kernel"])
    np.testing.assert_array_equal(bilstm.backward_layer.cell.bias.numpy(),
                                  encoder.weights["backward/bias"])
    np.testing.assert_array_equal(model.get_layer("embedding").embeddings.numpy(),
                                  encoder.weights["embedding"])
    # A tiny encoder multiplier: a training step moves the head, barely the encoder.
    compile_classifier(model, config, encoder_multiplier=1e-6)
    dense_before = model.get_layer("sentiment").kernel.numpy().copy()
    ids = np.array([[2, 3, 4, 5], [6, 7, 8, 0]], dtype=np.int32)
    model.fit(ids, np.array([1.0, 0.0], dtype=np.float32), epochs=3, verbose=0)
    assert np.abs(model.get_layer("sentiment").kernel.numpy() - dense_before).max() > 1e-3
    np.testing.assert_allclose(bilstm.forward_layer.cell.kernel.numpy(),
                               encoder.weights["forward/kernel"], atol=1e-6)
    with pytest.raises(ValueError, match="encoder weight embedding has shape"):
        copy_encoder_weights(build_model(config, len(encoder.vocab) + 1), encoder.weights)


def _tiny_datasets(vocab, config):
    import tensorflow as tf

    from review_scorer.io import load_labeled
    from review_scorer.text.batching import pad_batch
    from review_scorer.text.vocabulary import texts_to_sequences

    reviews = load_labeled(str(MINI_IMDB)).split("train")
    seqs = texts_to_sequences(reviews.texts, vocab, max_len=config.max_len,
                              truncating=config.truncating)
    keep = [i for i, s in enumerate(seqs) if len(s)]
    ids = pad_batch([seqs[i] for i in keep])
    y = reviews.labels[keep].astype("float32")
    return (tf.data.Dataset.from_tensor_slices((ids, y)).batch(8),
            tf.data.Dataset.from_tensor_slices((ids[:8], y[:8])).batch(8))


@pytest.mark.parametrize("head_epochs, multiplier", [(2, 0.5), (0, 1e-6)])
def test_fit_member_from_an_encoder_starts_from_its_weights(
        tiny_encoder, tiny_config, head_epochs, multiplier):
    import keras

    from review_scorer.model.network import build_model
    from review_scorer.training.finetune import config_for_encoder, encoder_meta, fit_member

    encoder = load_encoder_dir(tiny_encoder[0].encoder_dir)
    config = config_for_encoder(tiny_config.replace(
        epochs=2, finetune_head_epochs=head_epochs, encoder_lr_multiplier=multiplier,
        ema_momentum=0.0, word_dropout=0.0), encoder)
    assert (config.vocab_size, config.embedding_dim, config.lstm_units) == (len(encoder.vocab), 8, 8)
    train_data, val_data = _tiny_datasets(encoder.vocab, config)

    def fitted(start_from):
        keras.utils.set_random_seed(5)
        model = build_model(config, len(encoder.vocab))
        history = fit_member(model, train_data, val_data, config, encoder=start_from)
        assert len(history["val_loss"]) == 2
        return model.get_layer("bilstm").forward_layer.cell.kernel.numpy()

    # Frozen for every epoch (or moved at a millionth of the rate): the kernel the classifier
    # ends with is the encoder's, so it started from it.
    np.testing.assert_allclose(fitted(encoder), encoder.weights["forward/kernel"], atol=1e-5)
    # From scratch the encoder is not used: the kernel is Keras' own initialisation.
    assert np.abs(fitted(None) - encoder.weights["forward/kernel"]).max() > 0.05
    meta = encoder_meta(encoder, config)
    assert meta["tokens"] == encoder.meta["tokens"] and meta["corpus"]["reviews_used"] > 0
    assert meta["fine_tuning"] == {"head_epochs": head_epochs, "encoder_lr_multiplier": multiplier}
    assert encoder_meta(None, config) is None


def test_run_training_from_an_encoder_uses_its_vocabulary_and_weights(
        tiny_encoder, tiny_config, tmp_path, trained_model):
    from review_scorer.model.sentiment import SentimentModel
    from review_scorer.training.train import run_training

    encoder = load_encoder_dir(tiny_encoder[0].encoder_dir)
    config = tiny_config.replace(finetune_head_epochs=2, epochs=2)  # encoder frozen throughout
    result = run_training(config, data_source=str(MINI_IMDB), model_dir=tmp_path / "ft",
                          encoder=encoder.path, write_report=False)
    model = SentimentModel.load(result.model_dir)
    assert model.vocab == encoder.vocab
    assert (model.config.embedding_init, model.config.lstm_units) == ("encoder", 8)
    bilstm = model.keras_model.get_layer("bilstm")
    np.testing.assert_array_equal(bilstm.backward_layer.cell.recurrent_kernel.numpy(),
                                  encoder.weights["backward/recurrent_kernel"])
    made = model.meta["pretrained_encoder"]
    assert made["name"] == encoder.name and made["tokens"] == encoder.meta["tokens"]
    assert made["history"]["heldout_perplexity"] == encoder.history["heldout_perplexity"]
    assert made["weights_sha256"] == encoder.meta["files"][WEIGHTS_FILE]
    # The session's model was trained without an encoder: nothing of it is recorded or used.
    scratch = SentimentModel.load(trained_model.model_dir)
    assert scratch.meta["pretrained_encoder"] is None
    assert scratch.vocab != encoder.vocab


def _cli(*args, env=None):
    from click.testing import CliRunner

    from review_scorer.cli import cli

    return CliRunner(env=env).invoke(cli, [str(a) for a in args], catch_exceptions=False)


def test_cli_pretrain_writes_an_encoder_and_refuses_a_second_run(tmp_path, tiny_pretrain_config):
    config = tmp_path / "pretrain.toml"
    config.write_text("[pretrain]\n" + "\n".join(
        f"{k} = {v}" for k, v in tiny_pretrain_config.to_dict().items()
        if not isinstance(v, str)) + "\n", encoding="utf-8")
    out = tmp_path / "enc"
    result = _cli("pretrain", "--data", MINI_IMDB, "--out", out, "--config", config,
                  "--epochs", 1, "--json")
    assert result.exit_code == 0, result.output
    summary = json.loads(result.stdout)
    assert summary["completed"] and summary["epochs_done"] == 1 and summary["tokens_per_s"] > 0
    assert load_encoder_dir(out).config.epochs == 1
    again = _cli("pretrain", "--data", MINI_IMDB, "--out", out, "--config", config)
    assert again.exit_code == 2 and "--overwrite" in again.stderr
    assert len(again.stderr.strip().splitlines()) == 1
    bad = _cli("pretrain", "--data", MINI_IMDB, "--out", tmp_path / "x", "--config", config,
               "--bptt", 0)
    assert bad.exit_code == 2


def test_cli_train_uses_the_default_encoder_unless_from_scratch(
        tiny_encoder, tiny_config_file, tmp_path):
    from review_scorer.model.encoder import ENCODER_DIR_ENV
    from review_scorer.model.sentiment import SentimentModel

    env = {ENCODER_DIR_ENV: str(tiny_encoder[0].encoder_dir)}
    common = ("train", "--data", MINI_IMDB, "--config", tiny_config_file, "--epochs", 1)
    both = _cli(*common, "--model-dir", tmp_path / "m0", "--encoder", tmp_path, "--from-scratch")
    assert both.exit_code == 2 and "contradict" in both.stderr
    missing = _cli(*common, "--model-dir", tmp_path / "m0", "--encoder", tmp_path / "nope")
    assert missing.exit_code == 2 and "no encoder directory" in missing.stderr

    assert _cli(*common, "--model-dir", tmp_path / "ft", env=env).exit_code == 0
    assert _cli(*common, "--model-dir", tmp_path / "scratch", "--from-scratch", env=env).exit_code == 0
    fine_tuned = SentimentModel.load(tmp_path / "ft")
    scratch = SentimentModel.load(tmp_path / "scratch")
    assert fine_tuned.meta["pretrained_encoder"]["path"] == str(tiny_encoder[0].encoder_dir)
    assert fine_tuned.vocab == load_encoder_dir(tiny_encoder[0].encoder_dir).vocab
    assert scratch.meta["pretrained_encoder"] is None
    assert scratch.config.embedding_init != "encoder" and scratch.vocab != fine_tuned.vocab


def test_pretrain_can_continue_from_an_encoder_keeping_its_vocabulary(tiny_encoder, tmp_path):
    from review_scorer.training.pretrain import run_pretraining

    start = load_encoder_dir(tiny_encoder[0].encoder_dir)
    # A vanishing learning rate and one step: the result is the starting encoder itself.
    config = start.config.replace(learning_rate=1e-9, vocab_size=50)
    result = run_pretraining(config, source=str(MINI_IMDB), output_dir=tmp_path / "more",
                             init_from=start.path, time_limit_s=1e-9)
    continued = load_encoder_dir(result.encoder_dir)
    assert continued.vocab == start.vocab  # not rebuilt at vocab_size 50
    for name, value in start.weights.items():
        np.testing.assert_allclose(continued.weights[name], value, atol=1e-3, err_msg=name)
    assert continued.meta["initialized_from"]["name"] == start.name
    with pytest.raises(ConfigError, match="lstm_units"):
        run_pretraining(config.replace(lstm_units=4), source=str(MINI_IMDB),
                        output_dir=tmp_path / "other", init_from=start.path)
