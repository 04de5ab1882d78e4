"""The n-gram model of a user's labels stacked on the network (model/ngram_head.py, adapt.choose_stack)."""

from __future__ import annotations

import csv
import itertools
import json

import numpy as np
import pytest

# Words the tiny model knows but has no opinion about: only the user's labels say what they mean.
FILLERS = ["from start to finish", "and the cast", "with a drama", "right up to the last scene",
           "and the music", "one of the films i have seen"]


def _texts_labels(n_per_class: int, offset: int = 0):
    texts = [f"the cinema {FILLERS[(i + offset) % 6]} {FILLERS[(i + offset + 1) % 6]}"
             for i in range(n_per_class)]
    texts += [f"the script {FILLERS[(i + offset + 3) % 6]} {FILLERS[(i + offset + 5) % 6]}"
              for i in range(n_per_class)]
    return texts, np.array([1] * n_per_class + [0] * n_per_class)


def test_ngram_features_and_logits_are_scikit_learns_tfidf_regression():
    from sklearn.feature_extraction.text import TfidfVectorizer
    from sklearn.linear_model import LogisticRegression

    from review_scorer.model.ngram_head import NgramHead, _tfidf

    rng = np.random.default_rng(3)
    vocab_size = 40
    seqs = [rng.integers(0, vocab_size, size=rng.integers(1, 25)).astype(np.int32)
            for _ in range(80)]
    labels = rng.integers(0, 2, len(seqs))
    head = NgramHead.fit(seqs, labels, vocab_size=vocab_size)

    def analyzer(ids):  # the same n-grams as words: padding (0) and unknown (1) left out
        known = [str(i) for i in ids if i >= 2]
        return known + [f"{a} {b}" for a, b in itertools.pairwise(known)]

    vectorizer = TfidfVectorizer(analyzer=analyzer, sublinear_tf=True)
    reference = vectorizer.fit_transform(seqs)
    names = [str(k) if k < vocab_size else f"{k // vocab_size - 1} {k % vocab_size}"
             for k in head.keys]
    columns = [vectorizer.vocabulary_[n] for n in names]
    assert len(columns) == reference.shape[1]
    np.testing.assert_allclose(_tfidf(seqs, vocab_size, head.keys, head.idf).toarray(),
                               reference[:, columns].toarray(), atol=1e-12)
    fit = LogisticRegression(C=4.0, max_iter=2000).fit(reference, labels)
    np.testing.assert_allclose(head.ngram_logits(seqs), fit.decision_function(reference), atol=1e-6)


def test_token_weights_add_up_to_the_ngram_share_of_the_logit():
    from review_scorer.model.ngram_head import NgramHead

    rng = np.random.default_rng(5)
    seqs = [rng.integers(0, 30, size=rng.integers(2, 15)).astype(np.int32) for _ in range(50)]
    head = NgramHead.fit(seqs, rng.integers(0, 2, 50), vocab_size=30)
    head.alpha, head.beta, head.bias = 0.6, 1.7, -0.2
    for s in [*seqs[:10], np.array([1, 0, 1], np.int32)]:
        w = head.token_weights(s)
        assert w.shape == s.shape
        expected = head.beta * (head.ngram_logits([s])[0] - head.intercept)
        assert w.sum() == pytest.approx(expected, abs=1e-5)
        assert np.all(w[s < 2] == 0)  # padding and unknown words get nothing


def test_stack_learns_what_the_network_cannot_and_travels_with_the_model(trained_model, tmp_path):
    """Fine-tuning that cannot move (learning rate 1e-6) leaves the network blind to what the
    user's words mean; the n-gram model of the labels learns it, the guard keeps it, and the
    saved model scores the same through every path: predict, the streamed engine, explanations,
    and a reload from disk."""
    from review_scorer.explain.attribution import Explainer
    from review_scorer.model.artifacts import NGRAM_FILE
    from review_scorer.model.sentiment import SentimentModel
    from review_scorer.scoring.score import score_files
    from review_scorer.training.adapt import Schedule, adapt, adapted_model

    start = SentimentModel.load(trained_model.model_dir)
    texts, labels = _texts_labels(60)
    result = adapt(start, texts, labels, schedule=Schedule(max_epochs=1, learning_rate=1e-6))
    assert result.epochs == 0
    assert result.stack.used, result.stack
    assert result.stack.accuracy > 0.9 > result.stack.base_accuracy
    assert result.adapted_metrics["accuracy"] == pytest.approx(result.stack.accuracy)
    assert "n-gram model of your labels" in result.verdict and result.advice is None
    meta = result.meta(start.name)["ngram_stack"]
    assert meta["used"] and meta["ngram_model"]["ngrams"] > 0

    model = adapted_model(start, result, name="mine")
    new_texts, new_labels = _texts_labels(6, offset=2)
    scores = model.predict(new_texts)
    assert np.mean((scores >= 0.5) == new_labels) == 1.0
    assert np.mean((start.predict(new_texts) >= 0.5) == new_labels) < 1.0

    model.history, model.metrics = {}, None
    model.meta = {**model.meta, "name": "mine", "created_at": "2026-12-01T00:00:00+00:00"}
    saved = model.save(tmp_path / "mine")
    recorded = json.loads((saved / "meta.json").read_text())["files"]
    assert NGRAM_FILE in recorded
    again = SentimentModel.load(saved)
    assert again.ngram_head is not None
    np.testing.assert_allclose(again.predict(new_texts), scores, atol=1e-6)

    src = tmp_path / "new.csv"
    with open(src, "w", newline="", encoding="utf-8") as fh:
        writer = csv.writer(fh)
        writer.writerow(["review"])
        writer.writerows([t] for t in new_texts)
    run = score_files([str(src)], model_dir=saved, out_dir=tmp_path / "out", fmt="csv",
                      chunk_rows=5, batch_size=4)
    import pandas as pd

    out = pd.read_csv(run.files[0].predictions_path)
    np.testing.assert_allclose(out["score"].to_numpy(), np.round(scores, 4), atol=1.5e-4)

    explained = Explainer(again).explain(new_texts)
    np.testing.assert_allclose([a.score for a in explained], scores, atol=1e-5)


def test_stack_is_not_tried_below_fifty_labels_a_class(trained_model):
    from review_scorer.model.sentiment import SentimentModel
    from review_scorer.training.adapt import Schedule, adapt, adapted_model

    start = SentimentModel.load(trained_model.model_dir)
    texts, labels = _texts_labels(12)
    result = adapt(start, texts, labels, schedule=Schedule(max_epochs=1, learning_rate=1e-6))
    assert not result.stack.used and "50" in result.stack.note
    assert adapted_model(start, result, name="mine").ngram_head is None


def test_a_changed_ngram_file_is_refused(trained_model, tmp_path):
    from review_scorer.errors import ArtifactError
    from review_scorer.model.artifacts import NGRAM_FILE
    from review_scorer.model.ngram_head import NgramHead
    from review_scorer.model.sentiment import SentimentModel

    model = SentimentModel.load(trained_model.model_dir)
    seqs = model.encode(["the cinema and the cast", "the script and the music"])
    model.ngram_head = NgramHead.fit(seqs, np.array([1, 0]), vocab_size=len(model.vocab))
    saved = model.save(tmp_path / "stacked")
    SentimentModel.load(saved)  # loads as written
    other = NgramHead.fit(seqs, np.array([0, 1]), vocab_size=len(model.vocab))
    other.save(saved / NGRAM_FILE)
    with pytest.raises(ArtifactError, match="checksum"):
        SentimentModel.load(saved)
    (saved / NGRAM_FILE).unlink()
    with pytest.raises(ArtifactError, match="missing"):
        SentimentModel.load(saved)


def test_calibrate_refuses_to_drop_the_ngram_head_silently(trained_model):
    from review_scorer.model.ngram_head import NgramHead
    from review_scorer.model.sentiment import SentimentModel

    model = SentimentModel.load(trained_model.model_dir)
    seqs = model.encode(["the cinema and the cast", "the script and the music"])
    model.ngram_head = NgramHead.fit(seqs, np.array([1, 0]), vocab_size=len(model.vocab))
    with pytest.raises(ValueError, match="ids"):
        model.calibrate(np.array([0.5, 0.5], np.float32))


def _lexicon_head(vocab_size=12, gamma=1.5):
    """A head with no n-grams and a hand-made lexicon: ids 2-4 positive, 5-6 negative, 7 a negator."""
    from review_scorer.model.ngram_head import NgramHead

    valence = np.zeros(vocab_size)
    valence[[2, 3, 4, 5, 6]] = [2.0, 1.0, 3.0, -2.0, -1.5]
    negator = np.zeros(vocab_size, bool)
    negator[7] = True
    # One n-gram key no review holds, with weight 0: only the lexicon moves the logit.
    return NgramHead(vocab_size, np.array([999]), np.ones(1), np.zeros(1), 0.0,
                     gamma=gamma, valence=valence, negator=negator, lexicon_source="hand-made")


def test_lexicon_score_turns_negated_words_and_divides_by_the_square_root_of_the_length():
    head = _lexicon_head()
    # [2]: one positive word; [7, 2]: negated; [7, 8, 9, 10, 2]: the negator is 4 words back,
    # out of the window; unknown (1) and padding (0) are not words and do not count.
    cases = {(2,): 2.0, (7, 2): -0.74 * 2.0 / np.sqrt(2), (7, 8, 9, 2): -0.74 * 2.0 / 2,
             (7, 8, 9, 10, 2): 2.0 / np.sqrt(5), (2, 1, 1, 5, 0, 0): 0.0, (7,): 0.0,
             (7, 1, 5): 0.74 * 2.0 / np.sqrt(2)}
    seqs = [np.array(k, np.int32) for k in cases]
    np.testing.assert_allclose(head.lexicon_scores(seqs), list(cases.values()), atol=1e-12)
    # The stacked logit adds gamma times the score, and each word's share is exactly its term.
    np.testing.assert_allclose(head.stacked_logits(np.full(len(seqs), 0.5), seqs),
                               head.gamma * np.array(list(cases.values())), atol=1e-9)
    for s in seqs:
        w = head.token_weights(s)
        assert w.sum() == pytest.approx(head.gamma * head.lexicon_scores([s])[0], abs=1e-6)
        assert np.all(w[s < 2] == 0)


def test_a_lexicon_head_saves_and_loads_and_older_heads_still_load(tmp_path):
    from review_scorer.model.ngram_head import NgramHead

    head = _lexicon_head()
    head.save(tmp_path / "lex.npz")
    again = NgramHead.load(tmp_path / "lex.npz")
    seqs = [np.array([7, 2, 5], np.int32), np.array([3, 4], np.int32)]
    np.testing.assert_allclose(again.stacked_logits(np.array([0.3, 0.8]), seqs),
                               head.stacked_logits(np.array([0.3, 0.8]), seqs))
    assert again.meta()["lexicon"] == "hand-made" and again.meta()["lexicon_words"] == 5

    plain = dict(vocab_size=np.int64(12), keys=np.array([2, 3]), idf=np.ones(2), coef=np.ones(2))
    np.savez(tmp_path / "four.npz", **plain, scalars=np.array([0.1, 1.0, 0.5, 0.0]))
    old = NgramHead.load(tmp_path / "four.npz")  # written before the lexicon term
    assert old.gamma == 0.0 and old.valence is None
    np.savez(tmp_path / "bad.npz", **plain, scalars=np.array([0.1, 1.0, 0.5, 0.0, 2.0]))
    with pytest.raises(ValueError, match="inconsistent"):  # a lexicon weight without a lexicon
        NgramHead.load(tmp_path / "bad.npz")


def _unrepeated_sentiment_words(seed: int):
    """120 labeled id sequences, each with one sentiment word (ids 10-129) no other holds, among
    neutral fillers (ids 200-219); the lexicon's valence gives each word its label's sign."""
    rng = np.random.default_rng(seed)
    n, vocab_size = 120, 300
    valence = np.zeros(vocab_size)
    valence[10:10 + n // 2] = rng.uniform(1.0, 3.0, n // 2)
    valence[10 + n // 2:10 + n] = -rng.uniform(1.0, 3.0, n // 2)
    labels = (np.arange(n) < n // 2).astype(np.int64)
    seqs = [np.r_[rng.integers(200, 220, 5), 10 + i, rng.integers(200, 220, 5)].astype(np.int32)
            for i in range(n)]
    return n, vocab_size, valence, labels, seqs


def test_the_stack_takes_the_lexicon_when_the_labels_never_repeat_their_sentiment_words():
    """Each review's one sentiment word appears in no other review, so n-grams of the labels
    cannot generalise across folds and the network (0.5 everywhere) knows nothing: only the
    lexicon can tell the held-out reviews apart. With a lexicon of zeros it is left out."""
    from review_scorer.training.stack import choose_stack

    n, vocab_size, valence, labels, seqs = _unrepeated_sentiment_words(seed=0)
    fold_of = np.arange(n) % 5
    flat = np.full(n, 0.5)
    kwargs = dict(base_raw=flat, base_judged=flat, base_loss=np.log(2), weights=np.ones(n),
                  fold_of=fold_of, vocab_size=vocab_size, min_per_class=50)
    negator = np.zeros(vocab_size, bool)
    chosen = choose_stack(seqs, labels, **kwargs, lexicon=(valence, negator, "test lexicon"))
    assert chosen.used and chosen.lexicon and chosen.accuracy > 0.95
    assert chosen.lexicon_loss < chosen.ngram_only_loss
    assert chosen.head.gamma > 0 and chosen.head.lexicon_source == "test lexicon"
    assert chosen.meta()["ngram_model"]["lexicon_weight"] > 0
    # A lexicon that knows none of the labels' words is not tried.
    without = choose_stack(seqs, labels, **kwargs, lexicon=(np.zeros(vocab_size), negator, "zeros"))
    assert not without.lexicon and without.lexicon_loss is None


def test_vaders_lexicon_is_mapped_onto_the_vocabulary():
    from review_scorer.model.lexicon import lexicon_arrays

    tokens = ["<pad>", "<unk>", "good", "terrible", "not", "didn't", "no", "kettle", "without"]
    valence, negator, source = lexicon_arrays(tokens)
    assert valence[2] > 0 > valence[3] and valence[7] == 0 and valence[0] == valence[1] == 0
    assert list(np.flatnonzero(negator)) == [4, 5, 6, 8]
    assert "VADER" in source and "MIT" in source


def test_with_labels_alone_the_stack_may_not_trade_one_class_for_the_other():
    """Without the file's class mix, the stack's decision bias must keep the network's recall of
    both classes on the labels (fold by fold for judging); a stack that cannot is refused."""
    from review_scorer.training.stack import _no_trade

    rng = np.random.default_rng(0)
    labels = np.r_[np.ones(50), np.zeros(50)].astype(np.int64)
    fold_of = np.arange(100) % 5
    # The network calls every positive label right and half of the negative ones.
    base = np.r_[np.full(50, 0.8), np.full(25, 0.2), np.full(25, 0.8)]
    overlapping = rng.uniform(0.3, 0.7, 100)  # no bias keeps all positives and half the negatives
    assert _no_trade(base, overlapping, labels, fold_of) == (None, None)
    # Separated, but all below 0.5: alone it would call every review negative.
    separated = np.r_[rng.uniform(0.3, 0.45, 50), rng.uniform(0.05, 0.25, 50)]
    judged, shift = _no_trade(base, separated, labels, fold_of)
    assert shift is not None and judged is not None
    z = np.log(separated / (1 - separated)) + shift
    assert np.all(z[labels == 1] >= 0) and np.mean(z[labels == 0] < 0) >= 0.5
    assert np.all(judged[labels == 1] >= 0.5)


def test_with_labels_alone_a_kept_stack_recalls_both_classes_as_the_network_does():
    from review_scorer.training.stack import choose_stack

    n, vocab_size, valence, labels, seqs = _unrepeated_sentiment_words(seed=1)
    # A network that calls 90% of the reviews positive, whatever they say.
    base = np.where(np.arange(n) % 10 == 0, 0.3, 0.7)
    chosen = choose_stack(seqs, labels, base_raw=base, base_judged=base, base_loss=0.6,
                          weights=np.ones(n), fold_of=np.arange(n) % 5, vocab_size=vocab_size,
                          min_per_class=50, lexicon=(valence, np.zeros(vocab_size, bool), "test"),
                          mix_known=False)
    assert chosen.used and chosen.lexicon
    assert np.all(chosen.oof[labels == 1] >= 0.5)  # judged with no positive label lost
    final = chosen.head.apply(base, seqs)
    assert np.all(final[labels == 1] >= 0.5)
    assert np.mean(final[labels == 0] < 0.5) >= np.mean(base[labels == 0] < 0.5)


def _trading_labels():
    """120 labels whose n-grams say more than the network, but where every threshold on the
    stack that keeps the network's positive recall loses negatives it got right."""
    rng = np.random.default_rng(0)
    n = 120
    labels = (np.arange(n) < 60).astype(np.int64)
    pos_words, neg_words = np.arange(10, 15), np.arange(20, 25)
    word = np.where(labels == 1, rng.choice(pos_words, n), rng.choice(neg_words, n))
    word[:8] = rng.choice(neg_words, 8)  # 8 positives that read negative
    word[60:70] = rng.choice(pos_words, 10)  # 10 negatives that read positive
    seqs = [np.r_[rng.integers(200, 220, 4), w, rng.integers(200, 220, 4)].astype(np.int32)
            for w in word]
    base = np.where(labels == 1, 0.8, 0.2)
    base[90:] = 0.9  # the network calls every positive right and half of the negatives
    return labels, seqs, base


def test_with_labels_alone_a_stack_refused_for_trading_classes_says_what_to_do():
    from review_scorer.training.adapt import EpochChoice, _traded, _verdict
    from review_scorer.training.class_mix import ClassMix
    from review_scorer.training.stack import choose_stack

    labels, seqs, base = _trading_labels()
    n = len(labels)
    kwargs = dict(base_raw=base, base_judged=base, base_loss=0.6, weights=np.ones(n),
                  fold_of=np.arange(n) % 5, vocab_size=300, min_per_class=50)
    with_mix = choose_stack(seqs, labels, **kwargs)
    assert with_mix.used and not with_mix.traded  # at a known mix the same stack is kept
    alone = choose_stack(seqs, labels, **kwargs, mix_known=False)
    assert not alone.used and alone.traded and alone.accuracy > alone.base_accuracy
    assert alone.meta()["traded_classes"] is True

    labels_only, from_file = ClassMix(0.5, 0.5), ClassMix(0.8, 0.5, 500, method="adjusted count")
    flat = [np.full(n, 0.6)] * 3
    # fine-tuning's candidates: epoch 2 got more labels right but had no no-trade shift
    choice = EpochChoice(None, 0, flat, [None, (1.0, 0.1), None], [0.6] * 3, [0.75, 0.7, 0.8],
                         np.ones(n))
    assert _traded(choice, labels_only, None) and not _traded(choice, from_file, None)
    choice.accuracies = [0.75, 0.7, 0.7]
    assert not _traded(choice, labels_only, None) and _traded(choice, labels_only, alone)

    per_class = {"negative": 60, "positive": 60}
    verdict, advice = _verdict(per_class, None, 0, {"accuracy": 0.75}, {"accuracy": 0.75}, 0.75,
                               labels_only, alone, traded=True)
    assert "recalling fewer reviews of one class than the starting model" in verdict
    assert advice.startswith("add the file's other reviews to the training file with an empty label")
    _, plain = _verdict(per_class, None, 0, {"accuracy": 0.75}, {"accuracy": 0.75}, 0.75,
                        labels_only, alone, traded=False)
    assert plain.startswith("label more reviews")


def _file_words_case(seed: int):
    """100 labels, each holding one product word seen in no other label (50 words a class), and a
    network right on 70% of them with little confidence; 2,000 rows of the same file without a
    label, each with one of those words, which the network scores confidently and rightly."""
    from review_scorer.training.stack import FileRows

    rng = np.random.default_rng(seed)
    vocab_size, fillers = 200, np.arange(2, 12)
    labels = np.array([1] * 50 + [0] * 50)
    words = np.r_[20 + np.arange(50), 70 + np.arange(50)]
    seqs = [np.r_[rng.choice(fillers, 3), w] for w in words]
    right = rng.random(100) < 0.7
    network = np.where(right == (labels == 1), 0.6, 0.4)
    file_words = rng.choice(words, 2000)
    file_seqs = [np.r_[rng.choice(fillers, 3), w] for w in file_words]
    file_scores = np.where(file_words < 70, 0.97, 0.03)
    return vocab_size, labels, seqs, network, FileRows(file_seqs, file_scores, network)


def test_the_files_confident_rows_teach_the_ngram_model_words_the_labels_show_once():
    """Each label's product word appears in no other label, so an n-gram model of the labels
    alone cannot carry it across folds; the file's rows, labelled by the network's confident
    calls, teach it every word, and the stack then gets the held-out labels right."""
    from review_scorer.metrics import log_loss
    from review_scorer.training.stack import FILE_ROWS_CS, choose_stack

    vocab_size, labels, seqs, network, file_rows = _file_words_case(seed=0)
    kwargs = dict(base_raw=network, base_judged=network, base_loss=log_loss(labels, network),
                  weights=np.ones(100), fold_of=np.arange(100) % 5, vocab_size=vocab_size,
                  min_per_class=50)
    alone = choose_stack(seqs, labels, **kwargs)
    assert alone.accuracy < 0.8 and alone.file_rows == 0
    taught = choose_stack(seqs, labels, **kwargs, file_rows=file_rows)
    assert taught.used and taught.accuracy > 0.95 and taught.file_rows > 1500
    assert taught.meta()["file_rows_in_ngram_model"] == taught.file_rows
    assert taught.ngram_c in FILE_ROWS_CS and alone.ngram_c is None  # chosen only with the rows
    assert taught.meta()["ngram_c"] == taught.ngram_c
    # the saved n-gram model knows a word from the file's rows: its weight has the rows' sign
    assert taught.head.ngram_logits([np.array([25])])[0] > taught.head.ngram_logits([np.array([75])])[0]


def test_file_rows_give_only_the_networks_confident_calls_weighted_against_the_labels():
    from review_scorer.training.stack import MIN_PSEUDO, PSEUDO_WEIGHT, FileRows

    labels = np.array([1] * 50 + [0] * 50)
    labeled = np.where(labels == 1, 0.8, 0.2)  # right on every label: a steep calibration
    scores = np.r_[np.full(150, 0.9), np.full(150, 0.1), np.full(200, 0.5)]
    rows = FileRows([np.array([2 + i % 7]) for i in range(500)], scores, labeled)
    weights = np.full(100, 2.0)
    seqs, calls, w = rows.examples(np.arange(100), labels, weights)
    assert len(seqs) == 300 and calls.tolist() == [1] * 150 + [0] * 150  # the 0.5s are not sure
    assert w.sum() == pytest.approx(PSEUDO_WEIGHT * weights.sum())
    few = FileRows(rows.sequences[:MIN_PSEUDO - 1], scores[:MIN_PSEUDO - 1], labeled)
    assert len(few.examples(np.arange(100), labels, weights)[0]) == 0
