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


def _labels_file(path, n_per_class: int = 12, unlabeled: int = 0):
    with open(path, "w", newline="", encoding="utf-8") as f:
        writer = csv.writer(f)
        writer.writerow(["review", "label"])
        for i in range(n_per_class):
            writer.writerow([POSITIVE[i % 6] + f" ({i})", "positive"])
            writer.writerow([NEGATIVE[i % 6] + f" ({i})", "negative"])
        for i in range(unlabeled):
            writer.writerow([NEGATIVE[i % 6] + f" again ({i})", ""])
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


def test_each_fold_gets_the_network_a_new_copy_would_be_without_retracing(trained_model):
    """One network serves every fold: after it has been fine-tuned, the next fold's copy holds
    exactly what a new copy made under the same seed holds (the start's weights, the dropout
    seed states it would draw) and a new optimizer's state, and it is the same Keras object, so
    the training step traced on its first fit is not traced again."""
    import keras

    from review_scorer.model.sentiment import SentimentModel
    from review_scorer.text.batching import pad_batch
    from review_scorer.training.adapt import Schedule, _fresh_copy, _trainable_copy

    start = SentimentModel.load(trained_model.model_dir)
    config, schedule = start.config.replace(ensemble_size=1), Schedule(learning_rate=0.05)
    keras.utils.set_random_seed(5)
    first = _fresh_copy(start, config, schedule)
    texts, labels = _texts_labels()
    first.fit(pad_batch(start.encode(texts)), labels.astype(np.float32), epochs=2, verbose=0)
    traced = first.train_function
    assert int(first.optimizer.iterations) > 0
    keras.utils.set_random_seed(9)
    again = _fresh_copy(start, config, schedule)
    keras.utils.set_random_seed(9)
    new = _trainable_copy(start, config, schedule)
    assert again is first and again.train_function is traced
    names = [v.path for v in again.variables]
    assert any("seed_generator" in n for n in names)  # the dropout seeds are among them
    for mine, theirs in zip(again.variables, new.variables, strict=True):
        np.testing.assert_array_equal(np.asarray(mine), np.asarray(theirs))
    assert int(again.optimizer.iterations) == 0
    assert all(not np.any(np.asarray(v)) for v in again.optimizer.variables
               if "momentum" in v.path or "velocity" in v.path)
    assert _fresh_copy(start, config, Schedule(learning_rate=0.01)) is not first  # own schedule


def test_scores_during_fine_tuning_follow_the_weights_as_they_change(trained_model):
    """The guard scores a network between epochs through one traced function per network; it
    must read the weights as they are at each call, exactly as calling the model does."""
    from review_scorer.model.sentiment import SentimentModel
    from review_scorer.text.batching import pad_batch
    from review_scorer.training.adapt import Schedule, _scores, _trainable_copy, keep_start_prior

    start = SentimentModel.load(trained_model.model_dir)
    network = _trainable_copy(start, start.config, Schedule(learning_rate=0.05))
    texts, labels = _texts_labels()
    seqs = start.encode(texts)
    before = _scores(network, seqs)
    ids = pad_batch(seqs)
    network.fit(ids, labels.astype(np.float32), epochs=3, batch_size=8, verbose=0)
    after = _scores(network, seqs)
    assert np.max(np.abs(after - before)) > 1e-3  # training moved the scores
    reference = np.asarray(network(ids, training=False)).reshape(-1)
    np.testing.assert_allclose(after, reference, atol=1e-5)
    keep_start_prior(network, 0.0, seqs)  # a bias moved in place is seen too
    np.testing.assert_allclose(_scores(network, seqs),
                               np.asarray(network(ids, training=False)).reshape(-1), atol=1e-5)


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
    data = _labels_file(tmp_path / "cafe_reviews.csv", unlabeled=5)
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
    # The 5 rows without a label are not an error and not trained on; too few to estimate the
    # file's class mix from, which the result says.
    mix = meta["adaptation"]["class_mix"]
    assert mix["unlabeled"] == 5 and mix["method"] == "labels" and "needs 100" in mix["note"]
    assert "5 rows without a label" in run.stderr
    assert meta["adaptation"]["start_metrics"] == adaptation["start_metrics"]
    # 24 labels are too few to fit a temperature on: it says so and keeps T = 1.
    assert meta["calibration"]["method"] == "none"
    report = (tmp_path / "models" / "cafe_reviews" / "report.html").read_text(encoding="utf-8")
    assert "Adapted to your labels" in report
    # its own figures are cross-validated on the labels, and named so, not a test set's
    assert '<span class="card-label">Cross-validated accuracy</span>' in report
    assert "Test-set metrics" not in report and "Held-out test set" not in report
    assert "Cross-validated metrics on the training labels" in report
    assert "50% positive, as in your labels (5 unlabeled reviews" in report
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


def _rates_scores(labels: np.ndarray, tpr: float, fpr: float, rng) -> np.ndarray:
    """Scores that call a positive positive with probability tpr and a negative with fpr."""
    called = np.where(labels == 1, rng.random(len(labels)) < tpr, rng.random(len(labels)) < fpr)
    return np.where(called, rng.uniform(0.5, 1.0, len(labels)), rng.uniform(0.0, 0.5, len(labels)))


def _biased_scores(labels: np.ndarray, rng, bias: float = 1.0) -> np.ndarray:
    """A starting model's scores that rank well but over-call positives: sigmoid of a latent
    N(+-1.5, 1) (true log-odds 3z, so a Platt fit on the labels can calibrate them) plus `bias`."""
    z = rng.normal(np.where(labels == 1, 1.5, -1.5), 1.0)
    return 1.0 / (1.0 + np.exp(-(z + bias)))


@pytest.mark.parametrize("true_share", [0.15, 0.5, 0.85])
def test_class_mix_is_estimated_from_unlabeled_rows(true_share):
    """EM on the starting model's scores calibrated on the labels: a model that over-calls
    positives still gives the file's real mix, where counting its calls is far off."""
    from review_scorer.training.adapt import estimate_mix

    rng = np.random.default_rng(0)
    labels = np.array([1, 0] * 2000)  # enough labels that the calibration, and so the mix, is close
    start = _biased_scores(labels, rng)
    hidden = (rng.random(4000) < true_share).astype(int)
    unlabeled = _biased_scores(hidden, rng)
    mix = estimate_mix(start, labels, unlabeled)
    assert mix.known and mix.unlabeled == 4000 and mix.labels_positive == 0.5 and mix.method == "EM"
    assert abs(mix.positive - true_share) < 0.04
    assert 0 < mix.standard_error < 0.02
    naive = np.mean(unlabeled >= 0.5)  # plain counting is several times further off
    assert abs(naive - true_share) > 3 * abs(mix.positive - true_share) + 0.01


def test_class_mix_em_beats_the_adjusted_count_when_the_classes_overlap():
    """With overlapping classes the call rates are loose and the adjusted count wanders; EM reads
    how sure the model is of each review. 100 labels a class, a file 85% positive, five draws."""
    from review_scorer.training.class_mix import _platt, fit_platt, prior_by_em

    rng = np.random.default_rng(3)
    errors = {"em": [], "count": []}
    for _ in range(5):
        labels = np.array([1, 0] * 100)
        start = _biased_scores(labels, rng, bias=0.5)
        hidden = (rng.random(5000) < 0.85).astype(int)
        unlabeled = _biased_scores(hidden, rng, bias=0.5)
        called = start >= 0.5
        tpr, fpr = called[labels == 1].mean(), called[labels == 0].mean()
        errors["count"].append(abs((np.mean(unlabeled >= 0.5) - fpr) / (tpr - fpr) - 0.85))
        ab = fit_platt(start, labels, np.ones(len(labels)))
        errors["em"].append(abs(prior_by_em(_platt(unlabeled, ab), 0.5) - 0.85))
    assert np.mean(errors["em"]) < np.mean(errors["count"])
    assert np.mean(errors["em"]) < 0.02


def test_prior_by_em_recovers_a_known_prior():
    """Posteriors made at a 50% prior for reviews drawn at 80%: EM's fixed point is 80%."""
    from review_scorer.training.class_mix import prior_by_em

    rng = np.random.default_rng(5)
    y = (rng.random(20000) < 0.8).astype(int)
    z = rng.normal(np.where(y == 1, 1.0, -1.0), 1.0)
    posteriors = 1.0 / (1.0 + np.exp(-2.0 * z))  # exact at a 50% prior: log-odds 2z
    assert prior_by_em(posteriors, 0.5) == pytest.approx(0.8, abs=0.015)
    assert prior_by_em(np.full(10, 0.5), 0.5) == pytest.approx(0.5)  # nothing to learn from


def test_class_mix_falls_back_to_the_labels_and_says_why():
    from review_scorer.training.adapt import estimate_mix

    rng = np.random.default_rng(1)
    balanced = np.array([1, 0] * 50)
    start = _rates_scores(balanced, 0.9, 0.1, rng)
    assert not estimate_mix(start, balanced, None).known  # hand-picked, balanced: mix unknown
    assert estimate_mix(start, balanced, None).positive == pytest.approx(0.5)
    few = estimate_mix(start, balanced, rng.random(20))
    assert not few.known and "needs 100" in few.note
    blind = estimate_mix(rng.random(100), balanced, rng.random(500))  # cannot tell the classes apart
    assert not blind.known and "too weakly" in blind.note


def test_class_mix_of_labels_far_from_balanced_is_their_own_share():
    """200 random tweets hold about 50 positive and 150 negative: labels that skewed are a sample
    of the file, not a hand-picked set, so their share is taken as its mix (and said so)."""
    from review_scorer.training.adapt import estimate_mix
    from review_scorer.training.class_mix import MIN_LABELS_FOR_SHARE, SKEWED_LABELS

    rng = np.random.default_rng(1)
    labels = np.array([1] * 30 + [0] * 70)
    start = _rates_scores(labels, 0.9, 0.1, rng)
    alone = estimate_mix(start, labels, None)
    assert alone.known and alone.method == "labels sample" and alone.positive == pytest.approx(0.3)
    assert np.allclose(alone.weights(labels), 1.0)  # the labels already count at that mix
    assert "taken for a random sample of your file" in alone.note
    few = estimate_mix(start, labels, rng.random(20))
    assert few.known and few.note.startswith("20 unlabeled reviews; estimating the class mix needs 100")
    # the unlabeled reviews still win when there are enough of them
    assert estimate_mix(start, labels, rng.random(500)).method == "EM"
    # at the edge of balanced, or with too few labels, the mix stays unknown
    near = np.array([1] * int(100 * (0.5 - SKEWED_LABELS) + 1) + [0] * int(100 * (0.5 + SKEWED_LABELS) - 1))
    assert not estimate_mix(_rates_scores(near, 0.9, 0.1, rng), near, None).known
    small = labels[: MIN_LABELS_FOR_SHARE - 1]
    assert not estimate_mix(start[: len(small)], small, None).known


def test_class_mix_weights_make_labels_count_at_the_files_mix():
    from review_scorer.training.adapt import ClassMix

    labels = np.array([1, 0] * 50)
    w = ClassMix(0.8, 0.5, 1000, method="adjusted count").weights(labels)
    assert w.mean() == pytest.approx(1.0)
    assert w[labels == 1][0] / w[labels == 0][0] == pytest.approx(4.0)
    assert np.all(ClassMix(0.5, 0.5).weights(labels) == 1.0)


def test_weighted_guard_refuses_a_trade_the_files_mix_does_not_pay_for():
    """Fixing 30 negatives while breaking 10 positives is clearly better on balanced labels,
    but not in a file that is 90% positive."""
    from review_scorer.training.adapt import ClassMix, clearly_better

    labels = np.array([1, 0] * 100)
    before = np.where(labels == 1, 0.9, 0.1)
    negatives, positives = np.flatnonzero(labels == 0), np.flatnonzero(labels == 1)
    before[negatives[:40]] = 0.8  # 40 negatives called positive
    after = before.copy()
    after[negatives[:30]] = 0.2  # 30 of them fixed
    after[positives[:10]] = 0.3  # 10 positives broken
    assert clearly_better(before, after, labels)
    w = ClassMix(0.9, 0.5, 1000, method="adjusted count").weights(labels)
    assert not clearly_better(before, after, labels, w)
    w_neg = ClassMix(0.1, 0.5, 1000, method="adjusted count").weights(labels)
    assert clearly_better(before, after, labels, w_neg)


def test_guard_recalibrates_the_start_to_the_files_mix_when_that_is_clearly_better():
    """A start that leans positive in a mostly negative file: refitting its bias on labels
    weighted to the file's mix is chosen as candidate 0 (no fine-tuning epochs); with the mix
    known only from the labels nothing changes."""
    from review_scorer.training.adapt import ClassMix, _platt, choose_epochs

    rng = np.random.default_rng(3)
    labels = np.array([1, 0] * 150)
    z = np.where(labels == 1, rng.normal(2.5, 1.0, 300), rng.normal(0.8, 1.0, 300))
    start = 1 / (1 + np.exp(-z))
    oof = np.stack([start, start])  # one epoch of fine-tuning that changed nothing
    file_mix = ClassMix(0.2, 0.5, 2000, method="adjusted count")
    choice = choose_epochs(oof, labels, file_mix, max_epochs=1)
    assert choice.chosen == 0 and choice.epochs == 0
    a, b = choice.platt[0]
    assert a > 0 and b < 0  # the refit moves scores toward negative
    w = file_mix.weights(labels)
    right_before = np.average((start >= 0.5) == labels, weights=w)
    right_after = np.average((_platt(start, (a, b)) >= 0.5) == labels, weights=w)
    assert right_after > right_before + 0.05
    same = choose_epochs(oof, labels, ClassMix(0.5, 0.5), max_epochs=1)
    assert same.chosen is None and same.platt[0] is None  # the start is never refitted here


def test_labeled_file_rows_without_a_label_are_kept_apart_only_when_asked(tmp_path):
    from review_scorer.errors import InputError
    from review_scorer.io import load_labeled

    data = _labels_file(tmp_path / "mixed.csv", n_per_class=3, unlabeled=4)
    reviews = load_labeled(data, keep_unlabeled=True)
    assert len(reviews) == 6 and len(reviews.unlabeled) == 4
    assert reviews.unlabeled[0].startswith(NEGATIVE[0])
    with pytest.raises(InputError, match=r"row 7: the label in column 'label' is empty"):
        load_labeled(data)


def test_labeled_file_with_no_label_at_all_says_so(tmp_path):
    from review_scorer.errors import InputError
    from review_scorer.io import load_labeled

    data = _labels_file(tmp_path / "bare.csv", n_per_class=0, unlabeled=4)
    with pytest.raises(InputError, match=r"bare.csv: no row has a label in column 'label' \(4 rows"):
        load_labeled(data, keep_unlabeled=True)


def test_recalibrated_start_moves_the_saved_models_scores(trained_model):
    """Candidate 0 refitted to the file's mix (no fine-tuning): the saved model keeps the
    starting weights, and its scores are sigmoid(a * logit + b) of the starting network's."""
    from review_scorer.model.sentiment import SentimentModel
    from review_scorer.training.adapt import AdaptationResult, ClassMix, adapted_model

    start = SentimentModel.load(trained_model.model_dir)
    texts, labels = _texts_labels(40)
    raw = start.predict(texts) if start.temperature == 1.0 else None
    assert raw is not None  # the tiny model has no temperature: predict gives the network's own
    result = AdaptationResult(2, len(labels), {"negative": 40, "positive": 40}, 0, {}, {}, [], [],
                              0.0, "recalibrated", None, None, raw.astype(np.float64), labels,
                              mix=ClassMix(0.2, 0.5, 500, method="adjusted count"),
                              platt=(0.8, -1.5))
    model = adapted_model(start, result, name="mixed")
    z = np.log(raw) - np.log1p(-raw)
    expected = 1 / (1 + np.exp(-(0.8 * z - 1.5)))
    np.testing.assert_allclose(model.predict(texts), expected, atol=2e-4)
    assert model.meta["calibration"]["method"] == "temperature and class mix"


def test_adapt_hands_candidate_zeros_refit_to_the_result(trained_model, monkeypatch):
    """When the guard picks the recalibrated starting weights (candidate 0), the result carries
    that candidate's (a, b) and no fine-tuned weights."""
    from review_scorer.model.sentiment import SentimentModel
    from review_scorer.training import adapt as adapt_module

    picked = {}
    real = adapt_module.choose_epochs

    def choose_zero(oof, labels, mix, max_epochs, folds=None):
        choice = real(oof, labels, mix, max_epochs, folds=folds)
        choice.chosen, choice.epochs = 0, 0
        choice.platt = [(0.7, 0.3), *choice.platt[1:]]
        picked["platt"] = choice.platt[0]
        return choice

    monkeypatch.setattr(adapt_module, "choose_epochs", choose_zero)
    start = SentimentModel.load(trained_model.model_dir)
    texts, labels = _texts_labels()
    result = adapt_module.adapt(start, texts, labels, schedule=adapt_module.Schedule(max_epochs=1))
    assert result.platt == picked["platt"] == (0.7, 0.3)
    assert result.weights is None and result.epochs == 0


def test_dominance_shift_keeps_both_classes_recall_or_refuses():
    from review_scorer.training.adapt import dominance_shift

    labels = np.array([1] * 100 + [0] * 100)
    rng = np.random.default_rng(5)
    start = np.where(labels == 1, 0.8, 0.2)
    start[:10], start[100:140] = 0.3, 0.7  # misses 10 positives and 40 negatives
    # a sharper candidate whose bias leans negative: more negatives right, fewer positives
    z = np.where(labels == 1, rng.normal(1.0, 1.0, 200), rng.normal(-3.0, 1.0, 200))
    candidate = 1 / (1 + np.exp(-z))
    assert np.mean(candidate[labels == 1] >= 0.5) < 0.9  # as it is, it loses positives
    b = dominance_shift(start, candidate, labels)
    assert b is not None and b > 0
    shifted = 1 / (1 + np.exp(-(z + b)))
    assert np.mean(shifted[labels == 1] >= 0.5) >= 0.9
    assert np.mean(shifted[labels == 0] < 0.5) >= 0.6
    # a candidate no better than chance cannot match both recalls
    assert dominance_shift(start, rng.random(200), labels) is None


def test_guard_with_labels_alone_does_not_trade_one_class_for_the_other():
    """Without the file's mix, a candidate that fixes many negatives only by breaking positives
    (no bias keeps both recalls) is refused, though it is clearly better on balanced labels."""
    from review_scorer.training.adapt import ClassMix, choose_epochs, clearly_better

    labels = np.array([1, 0] * 150)
    start = np.where(labels == 1, 0.9, 0.1)
    start[np.flatnonzero(labels == 0)[:60]] = 0.8  # 60 negatives wrong
    trade = np.where(labels == 1, 0.9, 0.1)
    trade[np.flatnonzero(labels == 1)[:25]] = 0.1  # all negatives right, 25 positives broken
    assert clearly_better(start, trade, labels)
    choice = choose_epochs(np.stack([start, trade]), labels, ClassMix(0.5, 0.5), max_epochs=1)
    assert choice.chosen is None
    better = np.where(labels == 1, 0.85, 0.15)
    better[np.flatnonzero(labels == 0)[:10]] = 0.7  # 50 negatives fixed, no positive broken
    choice = choose_epochs(np.stack([start, better]), labels, ClassMix(0.5, 0.5), max_epochs=1)
    assert choice.chosen == 1 and choice.platt[1] is not None


def test_guard_judges_a_refit_on_labels_it_was_not_fitted_to():
    """Refitting a candidate's bias to the very labels the guard then counts flatters it: with
    scores that carry no signal beyond a lucky draw, the in-sample refit looks clearly better,
    the cross-fitted one does not, and the guard keeps the starting model."""
    from review_scorer.training.adapt import ClassMix, _platt, choose_epochs, clearly_better, fit_platt

    rng = np.random.default_rng(11)
    labels = np.array([1, 0] * 30)
    start = np.full(60, 0.6)  # calls everything positive: right on the 30 positives
    noise = rng.random(60)  # a candidate that is pure noise
    mix = ClassMix(0.3, 0.5, 1000, method="adjusted count")  # the file is mostly negative
    w = mix.weights(labels)
    in_sample = _platt(noise, fit_platt(noise, labels, w))
    assert clearly_better(start, in_sample, labels, w)  # the flattering view
    choice = choose_epochs(np.stack([start, noise]), labels, mix, max_epochs=1)
    assert choice.chosen != 1


def test_class_mix_from_few_labels_is_drawn_toward_the_labels_share():
    """25 labels a class calibrate the starting model loosely; an estimate near the edge (nearly
    all reviews positive) is pulled back by its standard error, toward the labels' 50%."""
    from review_scorer.training.adapt import estimate_mix

    rng = np.random.default_rng(2)
    labels = np.array([1] * 25 + [0] * 25)
    start = _biased_scores(labels, rng)
    far = estimate_mix(start, labels, _biased_scores((rng.random(4000) < 0.97).astype(int), rng))
    assert far.raw > 0.85 and far.standard_error > 0.02
    assert far.positive == pytest.approx(far.raw - far.standard_error)
    near = estimate_mix(start, labels, _biased_scores((rng.random(4000) < 0.5).astype(int), rng))
    assert abs(near.raw - 0.5) < near.standard_error
    assert near.positive == 0.5  # within a standard error of the labels' share: that share


def test_the_training_report_says_when_skewed_labels_were_taken_for_the_files_mix():
    from review_scorer.report.provenance import _class_mix

    taken = _class_mix({"positive": 0.245, "method": "labels sample", "unlabeled": 0, "note": "x"})
    assert taken.startswith("24% positive, as in your labels, taken for a random sample of your file")
    plain = _class_mix({"positive": 0.5, "method": "labels", "unlabeled": 0})
    assert plain == "50% positive, as in your labels"
