"""Tests for the PPMI + SVD word vectors used to initialise the embedding layer."""

import numpy as np

from review_scorer.text.vocabulary import OOV_ID, PAD_ID, Vocabulary, texts_to_sequences
from review_scorer.training.embeddings import cooccurrence_matrix, ppmi_svd_embeddings


def _corpus():
    rng = np.random.default_rng(0)
    good = ["great", "superb"]
    bad = ["awful", "dreadful"]
    texts = []
    for _ in range(300):
        word = rng.choice(good)
        texts.append(f"the film was {word} and the cast was {word} truly a joy")
        word = rng.choice(bad)
        texts.append(f"the plot was {word} and the script was {word} sadly a bore")
    vocab = Vocabulary.build(texts, max_size=100)
    return vocab, texts_to_sequences(texts, vocab, max_len=100, truncating="post")


def test_embeddings_cooccurrence_counts_pairs_within_window_only():
    seqs = [np.array([2, 3, 4]), np.array([5])]
    counts = cooccurrence_matrix(seqs, 6, window=1).toarray()
    assert counts[2, 3] == counts[3, 2] == 1.0
    assert counts[3, 4] == 1.0 and counts[2, 4] == 0.0
    assert counts[4, 5] == 0.0, "pairs must not span two reviews"
    assert counts[:, :2].sum() == 0, "padding and unknown ids never count"


def test_embeddings_place_words_used_alike_close_together():
    vocab, seqs = _corpus()
    vectors = ppmi_svd_embeddings(seqs, len(vocab), 8, window=3, seed=0)
    ids = {w: vocab.tokens.index(w) for w in ("great", "superb", "awful", "dreadful")}
    sim = vectors @ vectors.T
    assert sim[ids["great"], ids["superb"]] > sim[ids["great"], ids["awful"]]
    assert sim[ids["awful"], ids["dreadful"]] > sim[ids["awful"], ids["superb"]]


def test_embeddings_shape_padding_row_and_unit_norms():
    vocab, seqs = _corpus()
    vectors = ppmi_svd_embeddings(seqs, len(vocab), 8, window=3, seed=0)
    assert vectors.shape == (len(vocab), 8) and vectors.dtype == np.float32
    assert not vectors[PAD_ID].any()
    assert np.linalg.norm(vectors[OOV_ID]) > 0
    norms = np.linalg.norm(vectors[2:], axis=1)
    np.testing.assert_allclose(norms[norms > 0], 1.0, rtol=1e-5)


def test_embeddings_are_deterministic_for_a_seed():
    vocab, seqs = _corpus()
    a = ppmi_svd_embeddings(seqs, len(vocab), 8, window=3, seed=4)
    b = ppmi_svd_embeddings(seqs, len(vocab), 8, window=3, seed=4)
    np.testing.assert_array_equal(a, b)


def test_embeddings_of_an_empty_corpus_are_zero():
    assert not ppmi_svd_embeddings([], 10, 4).any()
