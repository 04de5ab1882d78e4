"""The n-gram term for long reviews (model/ngram_term.py): its arithmetic against a plain
reference, its explanations, its fit, its file (inside the lexicon file), training that attaches
it and the report line that names it."""

from __future__ import annotations

import numpy as np
import pytest

from review_scorer.errors import ArtifactError

V = 12


def _reference(term, ids) -> float:
    """The term by the definition: the weights of the distinct known 1-3 grams, plus the
    intercept, from min_words known words on."""
    known = [int(i) for i in ids if i >= 2]
    if len(known) < term.min_words:
        return 0.0
    grams = {tuple(known[i:i + n]) for n in (1, 2, 3) for i in range(len(known) - n + 1)}
    table = dict(zip(term.keys.tolist(), term.weights.astype(np.float64).tolist()))

    def key(g):
        if len(g) == 1:
            return g[0]
        if len(g) == 2:
            return V * (1 + g[0]) + g[1]
        return V * (V + 1) + (g[0] * V + g[1]) * V + g[2]

    return sum(table.get(key(g), 0.0) for g in grams) + term.intercept


def _random_term(rng, min_words=0):
    from review_scorer.model.ngram_term import NgramTerm

    every = np.unique(np.concatenate([
        rng.integers(2, V, 8),
        V * (1 + rng.integers(2, V, 30)) + rng.integers(2, V, 30),
        V * (V + 1) + (rng.integers(2, V, 60) * V + rng.integers(2, V, 60)) * V + rng.integers(2, V, 60)]))
    return NgramTerm(V, every.astype(np.int64), rng.normal(size=len(every)).astype(np.float32),
                     0.3, min_words)


def test_logits_are_the_distinct_ngrams_weights_and_skip_unknown_words():
    rng = np.random.default_rng(0)
    term = _random_term(rng, min_words=4)
    seqs = [rng.integers(1, 6, size=n) for n in (1, 3, 4, 9, 30, 60)]  # id 1 is unknown
    seqs.append(np.array([5, 5, 5, 5, 5, 5]))  # one word repeated counts once per n-gram
    got = term.logits(seqs)
    np.testing.assert_allclose(got, [_reference(term, s) for s in seqs], rtol=1e-5, atol=1e-5)
    assert got[0] == 0.0  # below min_words
    # A right-padded batch gives the same numbers as the list of arrays.
    padded = np.zeros((len(seqs), 60), dtype=np.int32)
    for i, s in enumerate(seqs):
        padded[i, :len(s)] = s
    np.testing.assert_allclose(term.logits(padded), got, rtol=1e-6)
    # Rows never share an n-gram across their border.
    np.testing.assert_allclose(term.logits(seqs[3:5]), got[3:5], rtol=1e-6)


def test_token_weights_add_up_to_the_term_less_its_intercept():
    rng = np.random.default_rng(1)
    term = _random_term(rng, min_words=3)
    for n in (2, 5, 17, 40):
        ids = rng.integers(1, 8, size=n)
        w = term.token_weights(ids)
        expected = _reference(term, ids)
        if expected == 0.0:
            assert not w.any()
        else:
            np.testing.assert_allclose(w.sum(), expected - term.intercept, rtol=1e-4, atol=1e-4)
            assert not w[ids == 1].any()  # unknown words get nothing


def test_fit_learns_the_labels_words_and_needs_two_classes():
    from review_scorer.model.ngram_term import NgramTerm

    rng = np.random.default_rng(2)
    good, bad = 2, 3
    seqs, labels = [], []
    for i in range(200):
        y = i % 2
        body = rng.integers(4, V, size=12)
        body[rng.integers(0, 12)] = good if y else bad
        seqs.append(body)
        labels.append(y)
    term = NgramTerm.fit(seqs, np.array(labels), vocab_size=V, weight=2.0, min_words=5, seed=0)
    table = dict(zip(term.keys.tolist(), term.weights.tolist()))
    assert table[good] > 0.5 and table[bad] < -0.5
    assert term.min_words == 5 and np.all(np.diff(term.keys) > 0)
    assert np.mean((term.logits(seqs) > 0) == np.array(labels)) == 1.0
    # Half the weight, half the logits.
    half = NgramTerm.fit(seqs, np.array(labels), vocab_size=V, weight=1.0, min_words=5, seed=0)
    np.testing.assert_allclose(half.logits(seqs) * 2, term.logits(seqs), rtol=1e-4, atol=1e-4)
    assert NgramTerm.fit(seqs, np.ones(200), vocab_size=V, weight=1.0, min_words=0) is None


def test_the_term_is_saved_in_the_lexicon_file_and_a_damaged_one_is_refused(trained_model, tmp_path):
    from review_scorer.model.artifacts import load_model_dir
    from review_scorer.model.lexicon import LexiconTerm
    from review_scorer.model.ngram_term import NgramTerm
    from review_scorer.model.sentiment import SentimentModel

    model = SentimentModel.load(trained_model.model_dir)
    vocab = len(model.vocab.tokens)
    model.lexicon = LexiconTerm.for_vocabulary(model.vocab.tokens, 0.0)
    keys = np.array([5, 9, vocab * 3 + 7], dtype=np.int64)
    model.lexicon.ngrams = NgramTerm(vocab, keys, np.array([1.5, -2.0, 0.5], np.float32), 0.1, 2)
    saved = SentimentModel.load(model.save(tmp_path / "m"))
    assert saved.lexicon.ngrams is not None and saved.lexicon.ngrams.min_words == 2
    np.testing.assert_array_equal(saved.lexicon.ngrams.keys, keys)
    texts = ["A film about a film.", "Films."]
    seqs = saved.encode(texts)
    np.testing.assert_allclose(saved.lexicon.logits(seqs), model.lexicon.ngrams.logits(seqs), atol=1e-6)
    # Unsorted keys: the file is refused in one line naming it.
    model.lexicon.ngrams.keys = keys[::-1].copy()
    target = model.save(tmp_path / "bad")
    with pytest.raises(ArtifactError, match=r"lexicon\.npz"):
        load_model_dir(target)


def test_training_attaches_the_term_and_explanations_stay_exact(tiny_config, tmp_path):
    from review_scorer.explain.attribution import Explainer
    from review_scorer.model.sentiment import SentimentModel
    from review_scorer.training.train import run_training
    from tests.conftest import MINI_IMDB

    run = run_training(tiny_config.replace(lexicon_weight=0.0, ngram_weight=1.0, ngram_min_words=3),
                       data_source=str(MINI_IMDB), model_dir=tmp_path / "ngram")
    model = SentimentModel.load(run.model_dir)
    assert model.lexicon is not None and model.lexicon.ngrams is not None
    recorded = model.meta["lexicon_term"]["ngram_term"]
    assert recorded["ngrams"] == len(model.lexicon.ngrams.keys) > 10 and recorded["min_words"] == 3
    texts = ["A wonderful, moving and beautiful film with a great cast.",
             "An awful, boring and stupid film with a dull plot.", "Fine."]
    seqs = model.encode(texts)
    assert model.lexicon.logits(seqs[2:])[0] == 0.0  # one word: below the gate
    scores, weights = Explainer(model).explain_ids(seqs)
    np.testing.assert_allclose(scores, model.predict_ids(seqs), atol=1e-6)
    plain = SentimentModel.load(run.model_dir)
    plain.lexicon = None
    _, before = Explainer(plain).explain_ids(seqs)
    for s, after, b in zip(seqs, weights, before):
        np.testing.assert_allclose((after - b) * model.temperature, model.lexicon.token_weights(s),
                                   atol=1e-4)


def test_how_the_model_was_made_names_the_ngram_term():
    from review_scorer.report.provenance import model_provenance

    term = {"weight": 0.25, "lexicon": "VADER", "words": 3512, "rating_weight": 0.0,
            "ngram_term": {"ngrams": 263415, "min_words": 40, "source": "NB-weighted regression"}}
    stages = model_provenance({"lexicon_term": term, "sizes": {"train": 100}}, {})["stages"]
    facts = {f["label"]: f["value"] for f in next(s for s in stages if s["key"] == "lexicon")["facts"]}
    line = facts["Long reviews"]
    assert line.startswith("from 40 known words on, an n-gram term is added too: NB-weighted regression")
    assert line.endswith("(263,415 n-grams)")
    assert all(f["label"] != "Long reviews" for f in model_provenance(
        {"lexicon_term": {**term, "ngram_term": None}}, {})["stages"][0]["facts"])
