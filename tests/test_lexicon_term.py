"""The lexicon term added to the network's logit (model/lexicon.py): its arithmetic, its file in
the model directory, scoring and explanations with it, training that attaches it, and
adaptation that keeps it."""

from __future__ import annotations

import json
import shutil

import numpy as np
import pytest

from review_scorer.errors import ArtifactError


def _logit(p):
    p = np.asarray(p, dtype=np.float64)
    return np.log(p / (1 - p))


def _network_only(model):
    """The same model's network scores: no lexicon term, no temperature."""
    from review_scorer.model.sentiment import SentimentModel

    return SentimentModel(model.keras_model, model.vocab, model.config, meta={"calibration": None})


def test_lexicon_term_is_the_weighted_valence_sum_with_negation():
    from review_scorer.model.lexicon import LexiconTerm

    tokens = ["<pad>", "<unk>", "the", "food", "was", "good", "not", "bad", "rude"]
    term = LexiconTerm.for_vocabulary(tokens, 2.0)
    ids = {t: i for i, t in enumerate(tokens)}
    good, bad = term.valence[ids["good"]], term.valence[ids["bad"]]
    assert good > 0 > bad and term.valence[ids["food"]] == 0 and term.negator[ids["not"]]
    seqs = [np.array([ids[w] for w in text.split()])
            for text in ("the food was good", "the food was not good", "not bad", "the food")]
    got = term.logits(seqs)
    np.testing.assert_allclose(got[0], 2.0 * good / np.sqrt(4))
    np.testing.assert_allclose(got[1], 2.0 * good * -0.74 / np.sqrt(5))  # "not" turns "good"
    np.testing.assert_allclose(got[2], 2.0 * bad * -0.74 / np.sqrt(2))
    assert got[2] > 0 and got[3] == 0
    # Each word's own term adds up to the review's.
    for s, total in zip(seqs, got):
        np.testing.assert_allclose(term.token_weights(s).sum(), total, rtol=1e-5, atol=1e-6)


def test_scores_add_the_term_to_the_logit_before_the_temperature(trained_model, tmp_path):
    from review_scorer.model.lexicon import LexiconTerm
    from review_scorer.model.sentiment import SentimentModel

    model = SentimentModel.load(trained_model.model_dir)
    model.lexicon = LexiconTerm.for_vocabulary(model.vocab.tokens, 1.5)
    saved = SentimentModel.load(model.save(tmp_path / "with-lexicon"))
    assert saved.lexicon is not None and saved.lexicon.weight == 1.5
    assert "lexicon.npz" in json.loads((tmp_path / "with-lexicon" / "meta.json").read_text())["files"]
    texts = ["An awful, boring mess.", "Wonderful and moving.", "It was not bad at all.", "A film."]
    seqs = saved.encode(texts)
    expected = (_logit(_network_only(saved).predict(texts)) + saved.lexicon.logits(seqs)) / saved.temperature
    np.testing.assert_allclose(_logit(saved.predict(texts)), expected, atol=2e-4)
    # The stream path (score's engine) gives the same scores as predict.
    streamed = [s for _, _, s in saved.predict_stream([texts], lambda item: item, batch_size=2)]
    np.testing.assert_allclose(streamed[0], saved.predict(texts), atol=1e-6)


def test_explanations_give_each_word_its_lexicon_term(trained_model, tmp_path):
    from review_scorer.explain.attribution import Explainer
    from review_scorer.model.lexicon import LexiconTerm
    from review_scorer.model.sentiment import SentimentModel

    plain = SentimentModel.load(trained_model.model_dir)
    plain.lexicon = None
    model = SentimentModel.load(trained_model.model_dir)
    model.lexicon = LexiconTerm.for_vocabulary(model.vocab.tokens, 3.0)
    seqs = model.encode(["The acting was wonderful but the plot was awful."])
    before = Explainer(plain).explain_ids(seqs)
    after = Explainer(model).explain_ids(seqs)
    np.testing.assert_allclose(after[0], model.predict_ids(seqs), atol=1e-6)
    moved = (after[1][0] - before[1][0]) * model.temperature
    np.testing.assert_allclose(moved, model.lexicon.token_weights(seqs[0]), atol=1e-4)
    words = [model.vocab.tokens[i] for i in seqs[0]]
    assert moved[words.index("wonderful")] > 0 > moved[words.index("awful")]


def test_a_damaged_lexicon_file_is_refused_in_one_line(trained_model, tmp_path):
    from review_scorer.model.artifacts import load_model_dir
    from review_scorer.model.lexicon import LexiconTerm
    from review_scorer.model.sentiment import SentimentModel

    model = SentimentModel.load(trained_model.model_dir)
    model.lexicon = LexiconTerm.for_vocabulary(model.vocab.tokens, 1.0)
    target = model.save(tmp_path / "m")
    (target / "lexicon.npz").write_bytes(b"not a lexicon")
    with pytest.raises(ArtifactError, match=r"lexicon\.npz"):
        load_model_dir(target)
    shutil.rmtree(target)
    target = model.save(tmp_path / "m")
    (target / "lexicon.npz").unlink()
    with pytest.raises(ArtifactError, match=r"lexicon\.npz"):
        load_model_dir(target)


def test_training_attaches_the_term_to_the_same_network(tiny_config, tmp_path):
    from review_scorer.model.sentiment import SentimentModel
    from review_scorer.training.train import run_training
    from tests.conftest import MINI_IMDB

    with_term = run_training(tiny_config.replace(lexicon_weight=2.0), data_source=str(MINI_IMDB),
                             model_dir=tmp_path / "lex")
    model = SentimentModel.load(with_term.model_dir)
    assert model.lexicon is not None and model.lexicon.weight == 2.0
    assert model.meta["lexicon_term"]["weight"] == 2.0 and model.meta["lexicon_term"]["words"] > 10
    without = run_training(tiny_config.replace(lexicon_weight=0.0, ngram_weight=0.0),
                           data_source=str(MINI_IMDB), model_dir=tmp_path / "plain")
    plain = SentimentModel.load(without.model_dir)
    assert plain.lexicon is None and not (without.model_dir / "lexicon.npz").exists()
    assert plain.meta["lexicon_term"] is None
    # Same seed, same network: the term (and the temperature fitted with it) is the difference.
    texts = ["A wonderful, moving, beautiful film.", "Awful, boring and stupid.", "A film."]
    np.testing.assert_allclose(_network_only(model).predict(texts), _network_only(plain).predict(texts),
                               atol=1e-6)
    assert np.abs(model.predict(texts[:2]) - plain.predict(texts[:2])).max() > 0.01


def test_adaptation_keeps_the_starting_models_term_and_judges_the_start_with_it(trained_model, tmp_path):
    from review_scorer.model.lexicon import LexiconTerm
    from review_scorer.model.sentiment import SentimentModel
    from review_scorer.training.adapt import Schedule, adapt, adapted_model

    start = SentimentModel.load(trained_model.model_dir)
    start.lexicon = LexiconTerm.for_vocabulary(start.vocab.tokens, 4.0)
    start.meta = {**start.meta, "calibration": None}
    valence = start.lexicon.valence
    good = [t for t, v in zip(start.vocab.tokens, valence) if v >= 1.5][:4]
    bad = [t for t, v in zip(start.vocab.tokens, valence) if v <= -1.5][:4]
    assert len(good) == len(bad) == 4
    texts, labels = [], []
    for i in range(40):
        g, b = good[i % 4], bad[i % 4]
        texts += [f"The room was {g} and the staff {g}.", f"The room was {b}, the staff {b}."]
        labels += [1, 0]
    labels = np.array(labels)
    result = adapt(start, texts, labels, schedule=Schedule(max_epochs=1))
    # The guard's starting accuracy is the starting model's own, the lexicon term included
    # (the tiny network alone is near a coin on these words; the lexicon gets them all).
    own = float(np.mean((start.predict(texts) >= 0.5) == labels))
    assert own == 1.0
    assert result.start_metrics["accuracy"] == pytest.approx(own)
    model = adapted_model(start, result, name="mine")
    assert model.lexicon is start.lexicon
    saved = SentimentModel.load(model.save(tmp_path / "mine"))
    assert saved.lexicon is not None and saved.lexicon.weight == 4.0


def test_stated_ratings_are_read_on_their_scale():
    from review_scorer.model.lexicon import RatingWords

    tokens = ["<pad>", "<unk>", "i", "give", "it", "out", "of", "stars", "star", "the", "two", "film",
              "minus", "no", "five", "one", "a", "great", "3", "7", "10", "5", "4", "1"]
    ids = {t: i for i, t in enumerate(tokens)}
    words = RatingWords.for_vocabulary(tokens)

    def read(text):
        return words.ratings(np.array([ids[w] for w in text.split()]))

    assert read("five stars") == [(1.0, [0, 1])]
    assert read("one star") == [(0.0, [0, 1])]
    assert read("i give it 7 10") == [(2 / 3, [3, 4])]  # "7/10" once the slash is gone
    assert read("3 out of 10") == [(2 / 9, [0, 1, 2, 3])]
    assert read("4 out of 5 stars") == [(0.75, [0, 1, 2, 3, 4])]
    assert read("no stars") == [(0.0, [0, 1])]
    assert read("minus five stars") == [(0.0, [0, 1, 2])]
    assert read("the two stars of the film") == []  # actors, not a rating
    assert read("10 5") == [] and read("a great film") == [] and read("7 3") == []
    texts = ("five stars", "one star i give it 7 10", "a film")
    seqs = [np.array([ids[w] for w in t.split()]) for t in texts]
    np.testing.assert_allclose(words.scores(seqs), [1.0, (-1.0 + 1 / 3) / 2, 0.0])
    from review_scorer.text.batching import pad_batch

    np.testing.assert_allclose(words.scores(pad_batch(seqs)), words.scores(seqs))


def test_the_rating_weight_is_fitted_on_reviews_that_state_one_and_reaches_the_words():
    from review_scorer.model.lexicon import MIN_RATED, LexiconTerm, fit_rating_weight

    tokens = ["<pad>", "<unk>", "five", "one", "stars", "star", "the", "film", "good"]
    ids = {t: i for i, t in enumerate(tokens)}
    term = LexiconTerm.for_vocabulary(tokens, 0.0)
    seq = {t: np.array([ids[w] for w in t.split()]) for t in ("five stars", "one star", "the film")}
    # A stated rating agrees with the label 9 times in 10.
    seqs, labels = [], []
    for i in range(100):
        agree = i % 10 != 0
        seqs += [seq["five stars"], seq["one star"], seq["the film"]]
        labels += [int(agree), int(not agree), i % 2]
    weight, rated = fit_rating_weight(seqs, np.array(labels), term.ratings)
    assert rated == 200 and 1.0 < weight < np.log(9) + 0.1  # logit(0.9) = 2.2, a little shrunk
    few, _ = fit_rating_weight(seqs[: 3 * (MIN_RATED // 2 - 1)], np.array(labels[: 3 * (MIN_RATED // 2 - 1)]),
                               term.ratings)
    assert few == 0.0
    term.rating_weight = weight
    np.testing.assert_allclose(term.logits([seq["five stars"], seq["one star"], seq["the film"]]),
                               [weight, -weight, 0.0])
    np.testing.assert_allclose(term.token_weights(seq["five stars"]), [weight / 2, weight / 2], rtol=1e-6)


def test_how_the_model_was_made_names_the_lexicon_stage():
    from review_scorer.report.provenance import model_provenance

    term = {"weight": 1.0, "lexicon": "VADER valence lexicon (vaderSentiment 3.3.2, MIT licence)",
            "words": 3512, "negators": 60, "rating_weight": 3.1}
    stages = model_provenance({"lexicon_term": term, "sizes": {"train": 100}}, {})["stages"]
    stage = next(s for s in stages if s["key"] == "lexicon")
    facts = {f["label"]: f["value"] for f in stage["facts"]}
    assert "VADER" in facts["Lexicon"] and "3,512" in facts["Lexicon"]
    assert facts["Weight"] == "1" and facts["Stated ratings"].startswith("weight 3.10")
    adapted = model_provenance({"lexicon_term": term, "adaptation": {"start_model": "imdb-lstm"}}, {})
    assert [s["key"] for s in adapted["stages"]] == ["adaptation", "lexicon"]
    assert all(s["key"] != "lexicon" for s in model_provenance({"lexicon_term": None}, {})["stages"])
