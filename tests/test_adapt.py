"""Fine-tuning a trained model on a user's own labels (review_scorer.training.adapt, `train --data FILE`)."""

from __future__ import annotations

import csv
import json
import subprocess
import sys

import numpy as np
import pytest

POSITIVE = ["the soup was lovely", "friendly staff and great coffee", "loved the dessert",
            "a wonderful evening", "fresh bread and kind service", "best pizza in town"]
NEGATIVE = ["the soup was cold", "rude staff and weak coffee", "hated the dessert",
            "a miserable evening", "stale bread and slow service", "worst pizza in town"]


def _labels_file(path, n_per_class: int = 12):
    with open(path, "w", newline="", encoding="utf-8") as f:
        writer = csv.writer(f)
        writer.writerow(["review", "label"])
        for i in range(n_per_class):
            writer.writerow([POSITIVE[i % 6] + f" ({i})", "positive"])
            writer.writerow([NEGATIVE[i % 6] + f" ({i})", "negative"])
    return path


# Words the tiny model knows but has no opinion about: a user's labels decide what they mean.
FILLERS = ["from start to finish", "and the cast", "with a drama", "right up to the last scene",
           "and the music", "one of the films i have seen"]


def _texts_labels(n_per_class: int = 12):
    texts = [f"the cinema {FILLERS[i % 6]}" for i in range(n_per_class)]
    texts += [f"the script {FILLERS[(i + 3) % 6]}" for i in range(n_per_class)]
    return texts, np.array([1] * n_per_class + [0] * n_per_class)


def test_adapt_starts_from_the_starting_weights(trained_model):
    from review_scorer.model.sentiment import SentimentModel
    from review_scorer.training.adapt import Schedule, _trainable_copy

    start = SentimentModel.load(trained_model.model_dir)
    network = _trainable_copy(start, start.config, Schedule())
    for mine, theirs in zip(network.get_weights(), start.keras_model.get_weights(), strict=True):
        np.testing.assert_allclose(mine, np.asarray(theirs, dtype=np.float32))


def test_adapt_learns_the_users_labels(trained_model):
    from review_scorer.model.sentiment import SentimentModel
    from review_scorer.training.adapt import Schedule, adapt, adapted_model

    start = SentimentModel.load(trained_model.model_dir)
    texts, labels = _texts_labels()
    result = adapt(start, texts, labels, schedule=Schedule(max_epochs=8, learning_rate=0.02))
    assert result.folds >= 2 and result.labels == 24
    assert result.epochs >= 1, result.epoch_accuracy
    assert result.adapted_metrics["accuracy"] >= result.start_metrics["accuracy"]
    assert result.adapted_metrics["accuracy"] > 0.8
    model = adapted_model(start, result, name="mine")
    assert model.vocab.tokens == start.vocab.tokens  # the starting vocabulary is kept
    assert np.mean((model.predict(texts) >= 0.5) == labels) > 0.8


def test_adapt_guard_keeps_the_starting_model_when_fine_tuning_hurts(trained_model):
    """A learning rate that wrecks the network makes every epoch worse on held-out labels: the
    guard keeps the starting weights and says so."""
    from review_scorer.model.sentiment import SentimentModel
    from review_scorer.training.adapt import Schedule, adapt, adapted_model

    start = SentimentModel.load(trained_model.model_dir)
    texts, labels = _texts_labels()
    flipped = 1 - labels  # labels that contradict the texts the starting model has learned
    result = adapt(start, texts, flipped, schedule=Schedule(max_epochs=1, learning_rate=1e-6))
    assert result.epochs == 0
    assert "did not clearly beat the starting model" in result.verdict
    assert result.advice and "50" in result.advice  # 12 per class is too few, and it says so
    model = adapted_model(start, result, name="kept")
    for mine, theirs in zip(model.keras_model.get_weights(), start.keras_model.get_weights()):
        np.testing.assert_allclose(np.asarray(mine, np.float32), np.asarray(theirs, np.float32))


@pytest.mark.slow
def test_adapt_cli_trains_into_models_file_stem_and_reports_both(trained_model, tmp_path):
    data = _labels_file(tmp_path / "cafe_reviews.csv")
    run = subprocess.run(
        [sys.executable, "-m", "review_scorer", "train", "--data", str(data), "--from-model",
         str(trained_model.model_dir), "--json"],
        cwd=tmp_path, capture_output=True, text=True, timeout=600)
    assert run.returncode == 0, run.stderr
    summary = json.loads(run.stdout)
    assert (tmp_path / "models" / "cafe_reviews" / "meta.json").is_file()
    assert not (tmp_path / "models" / "imdb-lstm").exists()
    adaptation = summary["adaptation"]
    assert adaptation["labels"] == 24 and adaptation["folds"] >= 2
    assert {"start_metrics", "adapted_metrics", "verdict"} <= set(adaptation)
    meta = json.loads((tmp_path / "models" / "cafe_reviews" / "meta.json").read_text())
    assert meta["name"] == "cafe_reviews"
    assert meta["adaptation"]["start_metrics"] == adaptation["start_metrics"]
    # 24 labels are too few to fit a temperature on: it says so and keeps T = 1.
    assert meta["calibration"]["method"] == "none"
    report = (tmp_path / "models" / "cafe_reviews" / "report.html").read_text(encoding="utf-8")
    assert "Adapted to your labels" in report
    for side in ("start_metrics", "adapted_metrics"):
        assert f"{adaptation[side]['accuracy']:.1%}" in report


@pytest.mark.slow
def test_adapt_cli_from_scratch_builds_its_own_vocabulary(trained_model, tiny_config_file, tmp_path):
    from review_scorer.model.sentiment import SentimentModel

    data = _labels_file(tmp_path / "cafe.csv", n_per_class=20)
    run = subprocess.run(
        [sys.executable, "-m", "review_scorer", "train", "--data", str(data), "--from-scratch",
         "--config", str(tiny_config_file), "--model-dir", str(tmp_path / "scratch")],
        cwd=tmp_path, capture_output=True, text=True, timeout=600)
    assert run.returncode == 0, run.stderr
    scratch = SentimentModel.load(tmp_path / "scratch")
    start = SentimentModel.load(trained_model.model_dir)
    assert "adaptation" not in scratch.meta or scratch.meta["adaptation"] is None
    assert scratch.vocab.tokens != start.vocab.tokens
    assert "soup" in scratch.vocab.tokens


def test_adapt_guard_needs_more_than_chance():
    from review_scorer.training.adapt import clearly_better

    labels = np.array([1, 0] * 50)
    before = np.where(labels == 1, 0.9, 0.1).astype(float)
    before[:20] = 1 - before[:20]  # 20 wrong
    fixes_two = before.copy()
    fixes_two[:2] = 1 - fixes_two[:2]  # 2 more right: could be chance
    assert not clearly_better(before, fixes_two, labels)
    fixes_fifteen = before.copy()
    fixes_fifteen[:15] = 1 - fixes_fifteen[:15]
    assert clearly_better(before, fixes_fifteen, labels)
    breaks_as_many = fixes_fifteen.copy()
    breaks_as_many[30:45] = 1 - breaks_as_many[30:45]  # 15 fixed, 15 broken
    assert not clearly_better(before, breaks_as_many, labels)
