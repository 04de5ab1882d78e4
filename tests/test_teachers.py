"""Distillation teachers: sentence pieces, the NB-LR, the length-aware mix, and training with it."""

from __future__ import annotations

import numpy as np
import pytest

from review_scorer.text.cleaning import clean_text
from review_scorer.training.teachers import (
    MIN_LABELS_PER_CLASS,
    LengthMixTeacher,
    distillation_targets,
    fragments,
    negated,
    negated_copies,
    sentences,
    snippets,
)

GOOD = ["a wonderful, moving film", "the acting was superb", "I loved every minute of it",
        "beautifully shot and very funny", "a delight from start to finish"]
BAD = ["a dull, lifeless film", "the acting was wooden", "I hated every minute of it",
       "badly shot and never funny", "a chore from start to finish"]


def _reviews(n_per_class: int, *, unlabeled: int = 0):
    from review_scorer.io import LabeledReviews

    rng = np.random.default_rng(3)
    texts, labels = [], []
    for label, pool in ((1, GOOD), (0, BAD)):
        for _ in range(n_per_class):
            picks = rng.choice(len(pool), size=3, replace=False)
            texts.append(". ".join(pool[i].capitalize() for i in picks) + ".")
            labels.append(label)
    extra = [f"{GOOD[i % 5].capitalize()}. {BAD[(i + 2) % 5]}!" for i in range(unlabeled)]
    return LabeledReviews.from_lists(texts, labels, unlabeled=extra)


def test_teachers_sentences_split_on_stops_and_line_breaks():
    assert sentences("Great food! Slow service.<br /><br />Would I return? Yes") == [
        "Great food!", "Slow service.", "Would I return?", "Yes"]
    assert sentences("   ") == []


def test_teachers_snippets_are_pieces_of_the_reviews_and_reproducible():
    texts = ["One. Two. Three. Four.", "Alpha beta. Gamma delta!", "Solo"]
    pieces, source = snippets(texts, 6, seed=1)
    assert len(pieces) == len(source) == 6
    for piece, i in zip(pieces, source):
        assert piece in texts[i]
    again, again_source = snippets(texts, 6, seed=1)
    assert again == pieces and np.array_equal(again_source, source)
    # Never more than a few pieces per review: small data gives fewer pieces, not repeats.
    assert len(snippets(texts, 1000, seed=1)[0]) <= 4 * len(texts)


@pytest.mark.parametrize("pieces", [False, True])
def test_teachers_length_mix_trusts_the_lexicon_on_short_text(pieces):
    data = _reviews(30)
    cleaned = [clean_text(t) for t in data.texts]
    teacher = LengthMixTeacher.fit(data.texts, data.labels, clean=clean_text, seed=0, pieces=pieces)
    # "excellent" and "awful" never occur in the training reviews: only the lexicon knows them.
    short = ["Excellent.", "Awful."]
    scores = teacher.predict(short, [clean_text(t) for t in short])
    assert scores[0] > 0.7 and scores[1] < 0.3
    # On the training reviews the n-gram teacher is right.
    assert np.mean((teacher.predict(data.texts, cleaned) >= 0.5) == data.labels) == 1.0


def test_teachers_piece_model_learns_short_complaints_in_neutral_words():
    from review_scorer.io import LabeledReviews

    # Sentences in neutral words that only bad (or only good) reviews contain: the lexicon cannot
    # know them, and the review-level NB-LR barely counts on short text. The piece-level one does.
    rng = np.random.default_rng(5)
    good_facts = ["I told all my friends about it", "we went back the next week"]
    bad_facts = ["I asked for my money back", "we walked out after an hour"]
    texts, labels = [], []
    for label, opinions, facts in ((1, GOOD, good_facts), (0, BAD, bad_facts)):
        for _ in range(30):
            parts = [opinions[i] for i in rng.choice(5, size=2, replace=False)]
            parts.insert(int(rng.integers(0, 3)), facts[int(rng.integers(0, 2))])
            texts.append(". ".join(p.capitalize() for p in parts) + ".")
            labels.append(label)
    data = LabeledReviews.from_lists(texts, labels)
    teacher = LengthMixTeacher.fit(data.texts, data.labels, clean=clean_text, seed=0, pieces=True)
    short = ["Asked for my money back.", "We walked out after an hour.",
             "Told all my friends about it.", "We went back the next week."]
    cleaned = [clean_text(t) for t in short]
    scores = teacher.predict(short, cleaned)
    assert list(scores < 0.5) == [True, True, False, False], scores
    # The piece-level model is what knows them: without it the teacher is unsure.
    pieces_only = teacher.piece_nb.logits(cleaned)
    assert np.all(pieces_only[:2] < 0) and np.all(pieces_only[2:] > 0)


def test_teachers_negated_copies_are_labeled_by_the_rules_not_the_ngrams():
    data = _reviews(30)
    teacher = LengthMixTeacher.fit(data.texts, data.labels, clean=clean_text, seed=0, pieces=True)
    copy = ["The acting was not superb.", "The film was not dull."]
    labels = teacher.label(["The acting was superb."], copy, clean=clean_text)
    assert labels.dtype == np.float32 and labels.shape == (3,)
    assert labels[0] > 0.5 and labels[1] < 0.5 and labels[2] > 0.5, labels
    # Read as plain text, the n-grams of the piece-level model pull each copy back toward its
    # original's polarity: that is why copies leave it out.
    plain = teacher.predict(copy, [clean_text(t) for t in copy])
    assert plain[0] > labels[1] and plain[1] < labels[2], (plain, labels)


def test_teachers_fragments_are_short_runs_of_words_from_the_pieces_and_reproducible():
    pieces = ["The soup was cold and the bread was stale.", "Five stars from me!", "Fine."]
    cut = fragments(pieces, 2.0, seed=4)
    assert len(cut) == 6
    for fragment in cut:
        words = fragment.split()
        assert 1 <= len(words) <= 5
        # consecutive words of one piece
        assert any(f" {fragment} " in f" {p} " for p in pieces), fragment
    assert fragments(pieces, 2.0, seed=4) == cut
    assert fragments(pieces, 2.0, seed=5) != cut
    assert fragments([], 1.0, seed=0) == [] and fragments(pieces, 0.0, seed=0) == []


def test_teachers_distillation_targets_cover_unlabeled_and_pieces(tiny_config):
    from review_scorer.training.splits import make_splits

    data = _reviews(2 * MIN_LABELS_PER_CLASS + 10, unlabeled=12)
    config = tiny_config.replace(teacher="nb_lexicon", distill_pieces=40)
    splits = make_splits(data, config)
    soft, skipped = distillation_targets(data, splits, config, clean=clean_text)
    assert skipped is None
    assert soft.texts[:12] == data.unlabeled
    assert soft.pieces == len(soft.texts) - 12 > 0
    assert soft.fragments == 0  # word fragments come only with the piece-level teacher
    assert np.all((soft.targets >= 0) & (soft.targets <= 1))
    meta = soft.meta()
    assert meta["unlabeled_reviews"] == 12 and meta["short_pieces"] == soft.pieces
    assert "60 words" in meta["teacher"] and "pieces" not in meta["teacher"]

    with_pieces = config.replace(teacher="nb_pieces_lexicon", distill_fragments=0.1)
    more, _ = distillation_targets(data, splits, with_pieces, clean=clean_text)
    assert set(soft.texts) <= set(more.texts)  # the same reviews, pieces and copies, plus fragments
    assert more.fragments > 0 and more.pieces == soft.pieces + more.fragments
    assert more.meta()["word_fragments"] == more.fragments
    assert "pieces of one to three sentences" in more.meta()["teacher"]
    # The shipped recipe cuts no fragments (distill_fragments 0: they cost 3.7 points on tweets).
    none, _ = distillation_targets(data, splits, with_pieces.replace(distill_fragments=0.0), clean=clean_text)
    assert none.fragments == 0 and none.pieces == soft.pieces


def test_teachers_too_few_labels_skip_distillation_with_a_reason(tiny_config):
    from review_scorer.training.splits import make_splits

    data = _reviews(5)
    splits = make_splits(data, tiny_config)
    soft, skipped = distillation_targets(data, splits, tiny_config.replace(teacher="nb_lexicon"),
                                         clean=clean_text)
    assert soft is None and "no distillation" in skipped


@pytest.mark.slow
def test_teachers_training_records_the_distillation(tiny_config, tmp_path):
    from review_scorer.training.train import run_training

    data = _reviews(2 * MIN_LABELS_PER_CLASS + 10, unlabeled=10)
    config = tiny_config.replace(teacher="nb_lexicon", distill_pieces=30)
    result = run_training(config, data_source=data, model_dir=tmp_path / "m", write_report=False)
    made = result.model.meta["distillation"]
    assert made["short_pieces"] > 0 and made["unlabeled_reviews"] == 10
    assert "VADER" in made["teacher"]
    assert made["validation_pieces"] > 0  # early stopping also watched teacher-labeled pieces
    assert result.model.meta["calibration"]["n"] == result.sizes["validation"]


def test_teachers_negated_copies_negate_the_first_auxiliary_only_once():
    rng = np.random.default_rng(0)
    seen = {negated("The soup was good and the bread is fresh.", rng) for _ in range(30)}
    assert seen == {"The soup was not good and the bread is fresh.",
                    "The soup wasn't good and the bread is fresh.",
                    "The soup was never good and the bread is fresh."}
    assert negated("Staff can help.", np.random.default_rng(1)) in {
        "Staff can not help.", "Staff can't help.", "Staff can never help."}
    # Already negated, or nothing to negate: no copy.
    assert negated("It was not good.", rng) is None
    assert negated("I didn't enjoy it.", rng) is None
    assert negated("Great film!", rng) is None
    copies = negated_copies(["It is fun."] * 100, 0.4, seed=2)
    assert 20 < len(copies) < 60 and all("fun" in c for c in copies)


@pytest.mark.slow
def test_teachers_the_whole_recipe_gives_the_same_model_twice(tiny_config, tmp_path):
    """Teacher, pieces, negated copies, distillation, early stopping and the temperature: the
    same settings and data on the same machine give the same weights and the same meta."""
    import numpy as np

    from review_scorer.training.train import run_training

    data = _reviews(2 * MIN_LABELS_PER_CLASS + 10, unlabeled=10)
    config = tiny_config.replace(teacher="nb_lexicon", distill_pieces=30)
    runs = [run_training(config, data_source=data, model_dir=tmp_path / name, write_report=False)
            for name in ("first", "second")]
    first, second = (r.model for r in runs)
    assert first.meta["distillation"]["short_pieces"] > 0
    assert first.history == second.history
    assert first.meta["calibration"]["temperature"] == second.meta["calibration"]["temperature"]
    for a, b in zip(first.keras_model.get_weights(), second.keras_model.get_weights(), strict=True):
        assert np.array_equal(np.asarray(a), np.asarray(b))
