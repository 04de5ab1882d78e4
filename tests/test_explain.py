"""Word attributions on the shipped model: faithfulness, spans in the original text, signs, drivers."""

from __future__ import annotations

import math
import pickle

import numpy as np
import pytest

# Written for these tests: clearly positive, clearly negative and mixed reviews of varied length.
REVIEWS = [
    "A wonderful film. The acting is superb and the story moved me to tears; I loved every minute.",
    "Awful from start to finish. The plot is boring, the dialogue is terrible and I wanted my money back.",
    "I expected little, but this turned out to be a charming, funny and beautifully shot comedy.",
    "The worst movie I have seen this year: lazy writing, wooden actors and a pointless ending.",
    "Great soundtrack, brilliant cast, and a script that keeps surprising you. Highly recommended!",
    "Dull and predictable. Even the action scenes were boring, and the jokes fell flat every time.",
    "It starts slowly, yet the last hour is gripping and the final scene is simply perfect.",
    "A waste of a talented cast. The story makes no sense and the ending is a mess.",
    "My kids adored it and so did I: warm, clever and full of heart. We will watch it again.",
    "Poorly directed, badly edited and far too long. I almost fell asleep twice.",
    "An excellent documentary, informative and moving, with stunning photography throughout.",
    "The sequel is a disappointment: none of the charm of the original, and the new characters are annoying.",
]


@pytest.fixture(scope="module")
def shipped():
    from review_scorer.model.artifacts import packaged_model_dir
    from review_scorer.model.sentiment import SentimentModel

    return SentimentModel.load(packaged_model_dir())


@pytest.fixture(scope="module")
def explainer(shipped):
    from review_scorer.explain.attribution import Explainer

    return Explainer(shipped)


def _mean_change(model, sequences, base, cuts):
    return float(np.mean(np.abs(model.predict_ids(
        [np.delete(s, c) for s, c in zip(sequences, cuts)]) - base)))


@pytest.mark.parametrize("method", ["pooling_delta", "grad_input"])
def test_explain_top_words_move_the_score_more_than_random_words(shipped, method):
    from review_scorer.explain.attribution import Explainer

    atts = Explainer(shipped, method=method).explain(REVIEWS)
    sequences = [a.ids for a in atts]
    base = shipped.predict_ids(sequences)
    top = _mean_change(shipped, sequences, base,
                       [np.argsort(-np.abs(a.weights), kind="stable")[:3] for a in atts])
    rng = np.random.default_rng(12)
    random = np.mean([_mean_change(shipped, sequences, base,
                                   [rng.choice(len(s), 3, replace=False) for s in sequences])
                      for _ in range(8)])
    assert top > 2 * random, (top, random)


def test_explain_default_method_and_scores_match_the_model(shipped, explainer):
    assert explainer.method == "pooling_delta"
    from review_scorer.explain.attribution import attribution_scores

    texts = [*REVIEWS, None, "<br />"]
    atts = explainer.explain(texts)
    np.testing.assert_allclose(attribution_scores(atts), shipped.predict(texts), atol=1e-5)
    atts = atts[: len(REVIEWS)]
    for a, ids in zip(atts, shipped.encode(REVIEWS)):
        np.testing.assert_array_equal(a.ids, ids)
        assert len(a.tokens) == len(a.weights) == len(a.ids)


def test_explain_signs_of_clear_words(explainer):
    positive, negative = explainer.explain(
        ["What a wonderful, heartfelt movie. I loved it and will watch it again.",
         "An awful movie. Boring, ugly and far too long; avoid it."])
    assert positive.score > 0.9 and negative.score < 0.1
    assert positive.weights[positive.tokens.index("wonderful")] > 0
    assert negative.weights[negative.tokens.index("awful")] < 0


def test_explain_pooling_variants_split_the_same_total(shipped):
    from review_scorer.explain.attribution import Explainer

    plain = Explainer(shipped, method="pooling").explain(REVIEWS[:4])
    delta = Explainer(shipped, method="pooling_delta").explain(REVIEWS[:4])
    for a, b in zip(plain, delta):
        assert math.isclose(float(a.weights.sum()), float(b.weights.sum()), rel_tol=1e-4, abs_tol=1e-4)
        assert not np.allclose(a.weights, b.weights)


def test_explain_generic_gradient_path_matches_the_structured_one(shipped):
    from review_scorer.explain.attribution import Explainer, _generic_gradient_fn
    from review_scorer.text.batching import pad_batch

    ids = pad_batch([a.ids for a in Explainer(shipped).explain(REVIEWS[:3])])
    structured = Explainer(shipped, method="grad_input")._batch(ids)
    prob, weights = _generic_gradient_fn(shipped.keras_model)(ids)
    np.testing.assert_allclose(prob.numpy(), structured[0], atol=1e-6)
    np.testing.assert_allclose(weights.numpy(), structured[1], atol=0.02)


def test_explain_any_token_id_model_gets_gradient_x_input(tiny_config):
    from review_scorer.explain.attribution import Explainer
    from review_scorer.model.network import build_model
    from review_scorer.text.vocabulary import Vocabulary

    config = tiny_config.replace(pooling="last")
    vocab = Vocabulary.build(["good bad film plot acting"], max_size=50)
    model = type("Bundle", (), {"model": build_model(config, len(vocab)), "vocab": vocab,
                                "config": config})()
    explainer = Explainer(model)
    assert explainer.method == "grad_input"
    att = explainer.explain(["Good film, bad plot and unknown words."])[0]
    assert len(att.weights) == 7 and np.all(np.isfinite(att.weights)) and np.any(att.weights != 0)
    with pytest.raises(ValueError, match="pooling"):
        Explainer(model, method="pooling")


def _span_words(text, att):
    return [(text[s:e], w) for s, e, w in att.spans]


def test_explain_spans_point_at_the_words_as_written(explainer):
    text = ("I LOVED it!<br /><br />Don\u2019t miss the caf&eacute; scene &amp; the "
            "<i>Final</i> song \U0001F600 isn't bad")
    att = explainer.explain([text])[0]
    words = [w for w, _ in _span_words(text, att)]
    assert words == ["I", "LOVED", "it", "!", "Don\u2019t", "miss", "the", "caf&eacute;", "scene",
                     "the", "Final", "song", "isn't", "bad"]
    assert att.tokens == ["i", "loved", "it", "!", "don't", "miss", "the", "café", "scene", "the",
                          "final", "song", "isn't", "bad"]


def test_explain_spans_skip_words_cut_by_truncation(shipped, explainer):
    head = "Opening words set the scene. " * 30  # 150 tokens: the kept head
    middle = " ".join(f"middle{i}" for i in range(300))  # cut away by head+tail truncation
    tail = " The ending is wonderful and I loved the cast." * 60
    text = head + middle + tail
    att = explainer.explain([text])[0]
    assert len(att.tokens) == shipped.config.max_len == len(att.spans)
    assert not any(t.startswith("middle") for t in att.tokens)
    for (start, end, _), token in zip(att.spans, att.tokens):
        assert text[start:end].lower() == token
    assert att.spans[149][1] <= len(head) < att.spans[150][0]
    assert att.spans[150][0] >= len(head) + len(middle)


def test_explain_unknown_words_get_spans_and_weights(explainer):
    from review_scorer.text.vocabulary import OOV_ID

    text = "Zqxvtrum was a great film."
    att = explainer.explain([text])[0]
    assert att.ids[0] == OOV_ID and att.weights[0] != 0
    assert _span_words(text, att)[0][0] == "Zqxvtrum"


def test_explain_unalignable_text_keeps_weights_but_offers_no_spans(explainer):
    from review_scorer.explain.drivers import row_spans

    # The entity decodes to a combining accent that composes with the "e" before it only once
    # the whole text is normalised: no honest per-word span exists, so none is given.
    att = explainer.explain(["The cafe&#769; scene was great."])[0]
    assert "café" in att.tokens and len(att.weights) == len(att.tokens)
    assert att.starts is None and att.spans == [] and row_spans(att) == []


@pytest.mark.parametrize("text", [None, "", "   ", "<br /><p>", "... --- ***"])
def test_explain_empty_or_no_word_texts_give_none(explainer, text):
    from review_scorer.explain.drivers import format_top_terms, row_spans, top_terms

    out = explainer.explain(["A fine film.", text, "Bad."])
    assert out[0] is not None and out[1] is None and out[2] is not None
    assert top_terms(None) == [] and format_top_terms(None) == "" and row_spans(None) == []
    assert explainer.explain([]) == []


def test_top_terms_and_their_format(explainer):
    from review_scorer.explain.drivers import format_top_terms, top_terms

    att = explainer.explain(["Awful, awful acting but a wonderful score and the music is great."])[0]
    terms = top_terms(att, k=3)
    assert len(terms) == 3 and [abs(w) for _, w in terms] == sorted((abs(w) for _, w in terms), reverse=True)
    both = sum(w for t, w in zip(att.tokens, att.weights) if t == "awful")
    assert dict(top_terms(att, k=10))["awful"] == pytest.approx(both)
    assert "the" not in dict(top_terms(att, k=20))
    value = format_top_terms(att, k=3)
    parsed = [entry.rsplit(" ", 1) for entry in value.split("; ")]
    assert [p[0] for p in parsed] == [t for t, _ in terms]
    assert [float(p[1]) for p in parsed] == [round(w, 2) for _, w in terms]
    assert all(p[1][0] in "+-" for p in parsed)


def test_row_spans_are_the_strongest_words_scaled_and_ordered(explainer):
    from review_scorer.explain.drivers import row_spans

    text = REVIEWS[1] + " " + REVIEWS[4]
    att = explainer.explain([text])[0]
    spans = row_spans(att, limit=5)
    assert len(spans) == 5 and [s[0] for s in spans] == sorted(s[0] for s in spans)
    assert max(abs(s[2]) for s in spans) == 1.0 and all(-1 <= s[2] <= 1 for s in spans)
    strongest = set(np.argsort(-np.abs(att.weights), kind="stable")[:5].tolist())
    assert {(int(att.starts[i]), int(att.ends[i])) for i in strongest} == {(s, e) for s, e, _ in spans}


def _drivers_of(attributions, *, max_terms=2_000_000):
    from review_scorer.explain.drivers import DriverAccumulator

    acc = DriverAccumulator(max_terms=max_terms)
    acc.update(attributions)
    return acc


def test_drivers_merge_of_halves_equals_one_pass(explainer):
    atts = explainer.explain(REVIEWS * 3)
    whole = _drivers_of(atts)
    halves = _drivers_of(atts[:13])
    halves.merge(pickle.loads(pickle.dumps(_drivers_of(atts[13:]))))
    assert halves.reviews == whole.reviews == len(atts)
    a, b = whole.result(k=30), halves.result(k=30)
    assert [e["term"] for e in a["positive"]] == [e["term"] for e in b["positive"]]
    assert [e["term"] for e in a["negative"]] == [e["term"] for e in b["negative"]]
    for side in ("positive", "negative"):
        for x, y in zip(a[side], b[side]):
            assert x["reviews"] == y["reviews"] and x["weight"] == pytest.approx(y["weight"], abs=1e-4)
    assert a["positive"] and a["negative"]


def test_drivers_sides_and_phrases(explainer):
    atts = explainer.explain(REVIEWS * 3)
    result = _drivers_of(atts).result(k=50)
    assert result["reviews_explained"] == len(REVIEWS) * 3
    positive = {e["term"] for e in result["positive"]}
    negative = {e["term"] for e in result["negative"]}
    assert "wonderful" in positive and "awful" in negative
    assert all(e["weight"] > 0 for e in result["positive"])
    assert all(e["weight"] < 0 for e in result["negative"])
    assert any(" " in term for term in positive | negative)  # phrases are listed too
    from review_scorer.explain.drivers import STOP_WORDS

    for term in positive | negative:
        assert not all(word in STOP_WORDS for word in term.split())


def _attribution(tokens, ids, weights):
    from review_scorer.explain.attribution import Attribution

    n = len(tokens)
    return Attribution(0.5, list(tokens), np.asarray(ids, np.int32), np.asarray(weights, np.float32),
                       None, None, np.arange(n))


def test_drivers_need_a_minimum_number_of_reviews():
    from review_scorer.text.vocabulary import OOV_ID

    rare = [_attribution(["ravishing", "film"], [7, 5], [9.0, 0.1]) for _ in range(2)]
    common = [_attribution(["fine", "film"], [8, 5], [0.5, 0.1]) for _ in range(3)]
    unknown = [_attribution(["zorblax"], [OOV_ID], [4.0]) for _ in range(3)]
    result = _drivers_of(rare + common + unknown).result()
    terms = {e["term"]: e for e in result["positive"]}
    assert "ravishing" not in terms and "ravishing film" not in terms
    assert terms["fine"] == {"term": "fine", "weight": 0.5, "reviews": 3}
    assert terms["fine film"]["reviews"] == 3 and terms["zorblax"]["reviews"] == 3
    # With 1,000 reviews the bar is 0.5% = 5 reviews: three are no longer enough.
    filler = [_attribution(["meh"], [9], [0.0]) for _ in range(992)]
    crowded = _drivers_of(rare + common + unknown + filler).result()["positive"]
    assert "fine" not in {e["term"] for e in crowded}


def test_drivers_count_a_review_once_per_term():
    att = _attribution(["good", "good", "good", "plot"], [6, 6, 6, 7], [1.0, 1.0, 1.0, -0.5])
    result = _drivers_of([att] * 3).result()
    good = next(e for e in result["positive"] if e["term"] == "good")
    assert good == {"term": "good", "weight": 3.0, "reviews": 3}
    assert any(e["term"] == "good good" for e in result["positive"])


def test_delta_credit_matches_a_direct_reading_of_the_definition(shipped):
    import tensorflow as tf

    from review_scorer.explain.attribution import _delta_credit, _embed, _encode, pooled_networks
    from review_scorer.text.batching import pad_batch

    member = pooled_networks(shipped.keras_model)[0]
    ids = pad_batch(shipped.encode(["A wonderful, moving film.", "Dull plot but great music, really."]))
    mask = tf.not_equal(ids, 0)
    maskf = tf.cast(mask, tf.float32)[..., None]
    h = _encode(member, _embed(member, ids), mask).numpy()
    g = np.random.default_rng(3).normal(size=(len(ids), 2 * h.shape[-1])).astype(np.float32)
    half = member.recurrent[-1].units  # forward channels first
    got = _delta_credit(tf.constant(h), tf.constant(g), maskf, "max_mean", half).numpy()
    for b, n in enumerate(mask.numpy().sum(axis=1)):
        states = h[b, :n]
        want = np.zeros(n)
        for c in range(h.shape[-1]):
            forward = c < half
            path = np.concatenate([[0.0], states[:, c]]) if forward else np.concatenate([states[:, c], [0.0]])
            delta = np.diff(path) if forward else -np.diff(path)
            best = int(np.argmax(states[:, c]))
            for s in range(n):
                if (s <= best) if forward else (s >= best):
                    want[s] += g[b, c] * delta[s]
                want[s] += g[b, h.shape[-1] + c] * delta[s] * ((n - s) if forward else (s + 1)) / n
        np.testing.assert_allclose(got[b, :n], want, rtol=1e-3, atol=1e-4)
        assert np.all(got[b, n:] == 0)
        pooled = np.concatenate([states.max(axis=0), states.mean(axis=0)])
        assert float(want.sum()) == pytest.approx(float(pooled @ g[b]), rel=1e-3, abs=1e-4)


def test_terms_in_text_matches_words_and_pairs_as_cleaned():
    from review_scorer.explain.drivers import terms_in_text

    terms = ["great", "not good", "don't", "plot"]
    assert terms_in_text("GREAT cast, but <br />NOT good; I don\u2019t care", terms) == [0, 1, 2]
    assert terms_in_text("Not, good.", ["not good"]) == [0]  # punctuation is not a token
    assert terms_in_text(None, terms) == [] and terms_in_text("", terms) == []
