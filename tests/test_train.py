"""Tests for training and the model directory contract."""

import json
import shutil

import numpy as np
import pytest

from review_scorer.errors import ArtifactError, InputError, OutputError
from review_scorer.model import artifacts
from tests.conftest import MINI_IMDB


def test_train_writes_a_complete_model_directory(trained_model):
    model_dir = trained_model.model_dir
    for name in (*artifacts.CHECKED_FILES, artifacts.META_FILE, artifacts.REPORT_FILE):
        assert (model_dir / name).is_file(), name
    meta = json.loads((model_dir / artifacts.META_FILE).read_text())
    for key in ("format_version", "package_version", "versions", "data_source", "data_fingerprint",
                "seed", "sizes", "train_seconds", "device", "created_at", "best_epoch", "files"):
        assert key in meta, key
    assert set(meta["versions"]) >= {"tensorflow", "keras", "review_scorer"}
    assert meta["name"] == model_dir.name == "tiny"
    assert "<title>tiny" in (model_dir / artifacts.REPORT_FILE).read_text(encoding="utf-8")
    assert meta["sizes"]["train"] + meta["sizes"]["validation"] == 24  # mini aclImdb train/pos+neg
    history = json.loads((model_dir / artifacts.HISTORY_FILE).read_text())
    assert set(history) >= {"loss", "accuracy", "val_loss", "val_accuracy"}
    assert len(history["loss"]) == trained_model.epochs_run >= 1
    metrics = json.loads((model_dir / artifacts.METRICS_FILE).read_text())
    assert set(metrics) >= {"accuracy", "precision", "recall", "f1", "roc_auc", "loss", "confusion"}
    assert sum(map(sum, metrics["confusion"])) == meta["sizes"]["test"]
    assert not list(model_dir.parent.glob(".tiny.*")), "temporary directories left behind"


def test_train_reloaded_model_reproduces_recorded_test_metrics(trained_model):
    from review_scorer import SentimentModel
    from review_scorer.io import load_labeled
    from review_scorer.metrics import binary_metrics

    model = SentimentModel.load(trained_model.model_dir)
    reviews = load_labeled(str(MINI_IMDB))
    test = np.flatnonzero(np.asarray(reviews.splits) == "test")
    scores = model.predict([reviews.texts[i] for i in test])
    again = binary_metrics(np.asarray(reviews.labels)[test], scores)
    assert again["confusion"] == model.metrics["confusion"]
    assert again["accuracy"] == pytest.approx(model.metrics["accuracy"])
    # Training hands back the same model it saved.
    np.testing.assert_allclose(trained_model.model.predict([reviews.texts[i] for i in test]), scores,
                               atol=1e-6)


def test_train_refuses_to_overwrite_without_flag(trained_model, tiny_config):
    from review_scorer.training.train import run_training

    before = (trained_model.model_dir / artifacts.META_FILE).read_bytes()
    with pytest.raises(OutputError, match="--overwrite"):
        run_training(tiny_config, data_source=str(MINI_IMDB), model_dir=trained_model.model_dir)
    assert (trained_model.model_dir / artifacts.META_FILE).read_bytes() == before


def test_train_same_seed_same_model(tmp_path, tiny_config, trained_model):
    from review_scorer.training.train import run_training

    again = run_training(tiny_config, data_source=str(MINI_IMDB), model_dir=tmp_path / "again")
    assert again.history == trained_model.history
    a = artifacts.load_model_dir(trained_model.model_dir).model.get_weights()
    b = artifacts.load_model_dir(again.model_dir).model.get_weights()
    assert all(np.array_equal(x, y) for x, y in zip(a, b))
    vocab_file = artifacts.VOCAB_FILE
    assert (again.model_dir / vocab_file).read_bytes() == (trained_model.model_dir / vocab_file).read_bytes()


def test_train_on_labeled_csv_carves_a_test_split(tmp_path, tiny_config):
    from review_scorer.training.train import run_training

    result = run_training(tiny_config, data_source="sample_data/reviews.csv",
                          model_dir=tmp_path / "csv-model")
    assert result.sizes["test"] > 0 and result.sizes["validation"] > 0
    assert "reviews.csv" in result.data_source


def test_train_needs_both_classes(tmp_path, tiny_config):
    from review_scorer.training.train import run_training

    one_class = tmp_path / "happy.csv"
    one_class.write_text("review,label\n" + "".join(f"lovely film {i},pos\n" for i in range(20)))
    with pytest.raises(InputError, match="both classes"):
        run_training(tiny_config, data_source=str(one_class), model_dir=tmp_path / "m")
    assert not (tmp_path / "m").exists()


def test_train_limit_takes_a_stratified_subset(tmp_path, tiny_config):
    from review_scorer.training.train import run_training

    result = run_training(tiny_config, data_source=str(MINI_IMDB), model_dir=tmp_path / "m", limit=8)
    assert result.sizes["train"] + result.sizes["validation"] == 8
    assert result.sizes["test"] == 8


def test_train_interrupted_save_keeps_the_previous_model(model_dir_copy, monkeypatch, tiny_config):
    from review_scorer.text.vocabulary import Vocabulary
    from review_scorer.training.train import run_training

    before = (model_dir_copy / artifacts.META_FILE).read_bytes()

    def interrupted(self, path):
        raise KeyboardInterrupt

    monkeypatch.setattr(Vocabulary, "save", interrupted)
    with pytest.raises(KeyboardInterrupt):
        run_training(tiny_config, data_source=str(MINI_IMDB), model_dir=model_dir_copy,
                     overwrite=True)
    assert (model_dir_copy / artifacts.META_FILE).read_bytes() == before
    artifacts.load_model_dir(model_dir_copy)
    assert [p.name for p in model_dir_copy.parent.iterdir()] == [model_dir_copy.name]


def test_artifacts_missing_directory_is_a_clear_error(tmp_path):
    with pytest.raises(ArtifactError, match="no model directory"):
        artifacts.load_model_dir(tmp_path / "nothing-here")


def test_artifacts_directory_without_meta_never_loads(model_dir_copy):
    (model_dir_copy / artifacts.META_FILE).unlink()
    with pytest.raises(ArtifactError, match="not a complete model directory"):
        artifacts.load_model_dir(model_dir_copy)


def test_artifacts_changed_file_fails_its_checksum(model_dir_copy):
    with open(model_dir_copy / artifacts.VOCAB_FILE, "a", encoding="utf-8") as fh:
        fh.write("extra\n")
    with pytest.raises(ArtifactError, match="checksum"):
        artifacts.load_model_dir(model_dir_copy)


def test_artifacts_corrupt_model_file_is_a_clear_error(model_dir_copy):
    model_file = model_dir_copy / artifacts.MODEL_FILE
    model_file.write_bytes(model_file.read_bytes()[:500])
    meta = json.loads((model_dir_copy / artifacts.META_FILE).read_text())
    meta["files"][artifacts.MODEL_FILE] = artifacts.sha256_file(model_file)
    (model_dir_copy / artifacts.META_FILE).write_text(json.dumps(meta))
    with pytest.raises(ArtifactError, match="cannot load the Keras model"):
        artifacts.load_model_dir(model_dir_copy)


def test_artifacts_incompatible_format_version(model_dir_copy):
    meta = json.loads((model_dir_copy / artifacts.META_FILE).read_text())
    meta["format_version"] = 99
    (model_dir_copy / artifacts.META_FILE).write_text(json.dumps(meta))
    with pytest.raises(ArtifactError, match="format 99 is not supported"):
        artifacts.load_model_dir(model_dir_copy)


def test_artifacts_missing_file_is_named(model_dir_copy):
    (model_dir_copy / artifacts.HISTORY_FILE).unlink()
    with pytest.raises(ArtifactError, match=r"history\.json is missing"):
        artifacts.load_model_dir(model_dir_copy)


def test_artifacts_resolve_order(tmp_path, monkeypatch, trained_model):
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv(artifacts.MODEL_DIR_ENV, raising=False)
    assert artifacts.resolve_model_dir("explicit") == artifacts.Path("explicit")
    monkeypatch.setenv(artifacts.MODEL_DIR_ENV, "from-env")
    assert artifacts.resolve_model_dir(None) == artifacts.Path("from-env")
    monkeypatch.delenv(artifacts.MODEL_DIR_ENV)
    shutil.copytree(trained_model.model_dir, tmp_path / "models" / "imdb-lstm")
    assert artifacts.resolve_model_dir(None) == artifacts.DEFAULT_MODEL_DIR


def test_train_svd_init_uses_train_and_unlabeled_reviews_only(tmp_path, tiny_config):
    from review_scorer.io import load_labeled
    from review_scorer.text.cleaning import clean_text
    from review_scorer.training.embeddings import ppmi_svd_embeddings
    from review_scorer.training.train import run_training

    config = tiny_config.replace(freeze_embeddings=True, embedding_init="svd")
    result = run_training(config, data_source=str(MINI_IMDB), model_dir=tmp_path / "m")
    bundle = artifacts.load_model_dir(result.model_dir)
    assert bundle.meta["embedding_init"]["method"] == "ppmi_svd"
    reviews = load_labeled(str(MINI_IMDB))
    assert bundle.meta["embedding_init"]["unlabeled_reviews"] == len(reviews.unlabeled) == 3
    assert bundle.meta["embedding_init"]["reviews"] == bundle.meta["sizes"]["train"] + 3
    # Frozen, the saved embedding is exactly the SVD vectors of the training + unlabeled texts.
    from review_scorer.training.splits import validation_split

    fit, _, kind = validation_split(reviews, np.flatnonzero(reviews.splits == "train"), config)
    assert kind == bundle.meta["validation_split"] == "movie-disjoint"
    corpus = [bundle.vocab.encode(clean_text(reviews.texts[i])) for i in fit]
    corpus += [bundle.vocab.encode(clean_text(t)) for t in reviews.unlabeled]
    expected = ppmi_svd_embeddings(corpus, len(bundle.vocab), config.embedding_dim,
                                   window=config.svd_window, seed=config.seed)
    saved = bundle.model.get_layer("embedding").get_weights()[0]
    assert saved.dtype == np.float16  # stored at half precision (export_model)
    np.testing.assert_allclose(saved.astype(np.float32), expected, atol=1e-3)


def test_train_grouped_split_keeps_movies_apart_and_both_classes():
    from review_scorer.training.splits import grouped_split

    rng = np.random.default_rng(0)
    groups = np.array([f"tt{g}" for g in rng.integers(0, 60, size=600)])
    labels = rng.integers(0, 2, size=600)
    kept, held = grouped_split(labels, groups, 0.1, seed=3)
    assert not set(groups[kept]) & set(groups[held])
    assert sorted(np.concatenate([kept, held]).tolist()) == list(range(600))
    assert 60 <= len(held) <= 60 + np.bincount(np.unique(groups, return_inverse=True)[1]).max()
    assert set(labels[held]) == {0, 1} and set(labels[kept]) == {0, 1}
    again = grouped_split(labels, groups, 0.1, seed=3)
    assert np.array_equal(again[1], held)
    # One-sided movies that cannot be split with both classes on each side: no grouped split.
    assert grouped_split(np.array([0, 0, 1, 1]), np.array(["a", "a", "b", "b"]), 0.5, seed=0) is None


def test_train_validation_is_stratified_without_movie_information(tmp_path, tiny_config):
    from review_scorer.io import load_labeled
    from review_scorer.training.splits import validation_split

    reviews = load_labeled("sample_data/reviews.csv")
    assert reviews.groups is None
    fit, val, kind = validation_split(reviews, np.arange(len(reviews)), tiny_config)
    assert kind == "stratified random" and len(val) > 0 and not set(fit) & set(val)


def test_train_with_weight_averaging_saves_a_loadable_model(tmp_path, tiny_config):
    from review_scorer.training.train import run_training

    config = tiny_config.replace(ema_momentum=0.9, epochs=3, patience=3)
    result = run_training(config, data_source=str(MINI_IMDB), model_dir=tmp_path / "ema")
    bundle = artifacts.load_model_dir(result.model_dir)
    assert bundle.config.ema_momentum == 0.9
    assert len(result.history["val_loss"]) == 3
    # The saved weights are the averaged ones that early stopping validated: re-evaluating the
    # saved model on the validation split reproduces the best recorded validation loss.
    from review_scorer import SentimentModel
    from review_scorer.io import load_labeled
    from review_scorer.metrics import log_loss
    from review_scorer.training.splits import validation_split

    reviews = load_labeled(str(MINI_IMDB))
    _, val, _ = validation_split(reviews, np.flatnonzero(reviews.splits == "train"), config)
    model = SentimentModel.load(result.model_dir)
    model.lexicon = None  # early stopping watched the network alone; the lexicon term comes after
    model.meta["calibration"] = None
    scores = model.predict([reviews.texts[i] for i in val])
    loss = log_loss(reviews.labels[val], scores)
    assert loss == pytest.approx(min(result.history["val_loss"]), abs=2e-3)


def test_artifacts_model_file_holds_no_optimizer_state(trained_model, tmp_path):
    import zipfile

    import h5py

    def stored_groups(keras_file):
        with zipfile.ZipFile(keras_file) as archive:
            archive.extract("model.weights.h5", tmp_path / keras_file.stem)
        with h5py.File(tmp_path / keras_file.stem / "model.weights.h5", "r") as h5:
            return set(h5.keys())

    # Adam's two moment estimates per weight would triple the file; scoring never needs them.
    assert "optimizer" not in stored_groups(trained_model.model_dir / artifacts.MODEL_FILE)
    # The check can fail: a plainly saved, trained model does store them.
    from review_scorer.model.network import build_model

    bundle = artifacts.load_model_dir(trained_model.model_dir)
    plain = build_model(bundle.config, len(bundle.vocab))
    plain.fit(np.array([[2, 3, 4]], dtype=np.int32), np.array([1.0]))
    plain.save(tmp_path / "plain.keras")
    assert "optimizer" in stored_groups(tmp_path / "plain.keras")


def test_train_ensemble_averages_independent_members(tmp_path, tiny_config):
    from review_scorer import SentimentModel
    from review_scorer.io import load_labeled
    from review_scorer.training.train import run_training

    config = tiny_config.replace(ensemble_size=2)
    result = run_training(config, data_source=str(MINI_IMDB), model_dir=tmp_path / "ens")
    bundle = artifacts.load_model_dir(result.model_dir)
    assert bundle.meta["ensemble_size"] == 2
    assert len(result.history["members"]) == 2
    assert result.history["members"][0]["loss"] == result.history["loss"]
    members = [layer for layer in bundle.model.layers if hasattr(layer, "layers")]
    assert len(members) == 2
    w0 = members[0].get_layer("bilstm").get_weights()[0]
    w1 = members[1].get_layer("bilstm").get_weights()[0]
    assert not np.allclose(w0, w1), "members must be trained independently"
    reviews = load_labeled(str(MINI_IMDB))
    texts = [t for t, split in zip(reviews.texts, reviews.splits) if split == "test"]
    model = SentimentModel.load(result.model_dir)
    averaged = model.predict(texts)
    each = [SentimentModel(member, model.vocab, model.config).predict(texts) for member in members]
    np.testing.assert_allclose(averaged, model.calibrate((each[0] + each[1]) / 2, model.encode(texts)),
                               atol=1e-6)


def test_train_weight_averaging_is_capped_to_about_one_epoch(tiny_config):
    from review_scorer.training.train import averaging_for_data_size

    config = tiny_config.replace(ema_momentum=0.99, batch_size=64)
    assert averaging_for_data_size(config, 22_495).ema_momentum == 0.99  # IMDB: 352 steps an epoch
    assert averaging_for_data_size(config, 640).ema_momentum == pytest.approx(0.9)  # 10 steps
    assert averaging_for_data_size(config, 128).ema_momentum == 0.5  # 2 steps
    assert averaging_for_data_size(config, 50).ema_momentum == 0.0  # one batch: no averaging
    assert averaging_for_data_size(config.replace(ema_momentum=0.0), 50).ema_momentum == 0.0


def test_train_soft_targets_join_the_training_steps_and_are_recorded(tmp_path, tiny_config):
    """Teacher-labeled extra reviews pull the network towards their targets (all-positive vs
    all-negative teachers give clearly different validation scores), and meta.json says so."""
    from review_scorer.io import load_labeled
    from review_scorer.model.sentiment import SentimentModel
    from review_scorer.training.teachers import SoftTargets
    from review_scorer.training.train import run_training

    reviews = load_labeled(str(MINI_IMDB))
    extra = [reviews.texts[i] for i in np.flatnonzero(reviews.splits == "test")] * 6
    config = tiny_config.replace(epochs=4, patience=4, ema_momentum=0.0)
    means = {}
    for target in (0.0, 1.0):
        result = run_training(
            config, data_source=reviews, model_dir=tmp_path / f"m{target}", write_report=False,
            soft_targets=SoftTargets(extra, np.full(len(extra), target), f"constant {target}"))
        # The network's own probabilities: a calibration temperature, fitted on validation
        # labels the constant teacher contradicts, would pull both towards 0.5.
        network = SentimentModel(result.model.keras_model, result.model.vocab, result.model.config)
        means[target] = float(np.nanmean(network.predict(reviews.texts)))
        made = result.model.meta["distillation"]
        assert made["teacher"] == f"constant {target}"
        assert made["unlabeled_reviews"] == len(extra)
        assert made["labeled_reviews"] == result.sizes["train"]
        assert made["targets"] == "hard"
    assert means[1.0] - means[0.0] > 0.2, means


def test_train_soft_targets_are_validated():
    from review_scorer.training.teachers import SoftTargets

    with pytest.raises(ValueError, match="probabilities"):
        SoftTargets(["a", "b"], np.array([0.5, np.nan]), "t")
    with pytest.raises(ValueError, match="2 texts"):
        SoftTargets(["a", "b"], np.array([0.5]), "t")
    assert SoftTargets(["a"], [0.3], "t").meta()["targets"] == "soft"
