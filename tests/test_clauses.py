"""The clause rules for short reviews (model/clauses.py): their plans, the composed scores, their
record in meta.json, scoring, explanations and training with them, and adaptation that keeps
them."""

from __future__ import annotations

import json

import numpy as np
import pytest

from review_scorer.errors import ArtifactError

TOKENS = ["<pad>", "<unk>", "the", "food", "was", "great", "but", "service", "slow", "i",
          "wouldn't", "say", "don't", "really", "think", "it", "bad", "however", "not", "good",
          "and", "very", "can't", "enough", "things", "never", "thought", "i'd", "love", "expect",
          "ever", "had", "better", "no", "complaints", "a", "single", "problem", "issues", "with",
          "zero", "so", "far", "could", "be", "more", "disappointed", "nothing", "to", "complain",
          "about", "there", "were", "any", "this", "couldn't", "happier", "recommend", "ask", "for",
          "kettle", "care", "less", "hardly", "easier", "nobody", "one", "of", "is", "helpful",
          "rude", "beats", "happened", "staff", "dishes", "none", "on", "at", "desk", "us", "responded",
          "has", "second", "should", "expected", "worse", "even", "lot", "have", "been", "friendlier"]
IDS = {t: i for i, t in enumerate(TOKENS)}


def _ids(text: str) -> np.ndarray:
    return np.array([IDS[w] for w in text.split()], dtype=np.int64)


def _logit(p):
    p = np.asarray(p, dtype=np.float64)
    return np.log(p / (1 - p))


def _rules(**params):
    from review_scorer.model.clauses import ClauseRules

    return ClauseRules.for_vocabulary(TOKENS, **params)


def test_a_contrast_splits_at_its_last_contrast_word_and_weighs_the_clause_after_it():
    rules = _rules(contrast_max_words=30, contrast_mix=1.0, after_share=0.8)
    plan = rules.plan(_ids("the food was great but the service was slow"))
    assert plan == [(0.8, 5, 9), (pytest.approx(0.2), 0, 4)]
    # The last contrast word splits; the part before it is composed in its turn.
    plan = rules.plan(_ids("the food was great but slow however the service was great"))
    assert [(s, e) for _, s, e in plan] == [(7, 11), (5, 6), (0, 4)]
    assert [c for c, _, _ in plan] == pytest.approx([0.8, 0.2 * 0.8, 0.2 * 0.2])
    # Part of the review's own logit is kept when the mix is below one.
    mixed = _rules(contrast_max_words=30, contrast_mix=0.5, after_share=1.0)
    assert mixed.plan(_ids("the food was great but the service was slow")) == [(0.5, 0, 9), (0.5, 5, 9)]


def test_reviews_the_rules_do_not_reach_keep_the_networks_logit():
    rules = _rules(contrast_max_words=6, negation_max_words=6)
    assert rules.plan(_ids("but the food was great")) is None  # a contrast word first
    assert rules.plan(_ids("the food was great but")) is None  # or last
    assert rules.plan(_ids("the food was great but the service was slow")) is None  # 9 > 6 words
    assert rules.plan(_ids("the food was not good")) is None  # a negator with no opinion verb
    assert rules.plan(_ids("i wouldn't say")) is None  # nothing after the verb
    assert rules.plan(_ids("")) is None
    off = _rules(contrast_max_words=0, negation_max_words=0)
    assert off.plan(_ids("the food was great but slow")) is None
    assert off.plans([_ids("the food was great but slow"), _ids("i don't think it was bad")]) == {}


def test_a_negated_opinion_verb_turns_the_clause_after_it():
    rules = _rules(negation_max_words=15, negation_mix=0.75, negation_flip=1.0, limit_max_words=0)
    assert rules.plan(_ids("i wouldn't say the food was great")) == [(0.25, 0, 7), (-0.75, 3, 7)]
    # Up to two words between the negator and the verb.
    assert rules.plan(_ids("i don't really think it was bad")) == [(0.25, 0, 7), (-0.75, 4, 7)]
    assert rules.plan(_ids("i don't really very think it was bad")) is None
    # Praise and surprise are not denials: "enough" or "ever" after the verb, "never" before it, a
    # verb of expecting.
    assert rules.plan(_ids("i can't say enough good things")) is None
    assert rules.plan(_ids("i don't think i'd ever had better")) is None
    assert rules.plan(_ids("i never thought i'd love it")) is None
    assert rules.plan(_ids("i don't expect it was bad")) is None
    # Inside a contrast, each clause is composed on its own.
    both = _rules(contrast_max_words=30, contrast_mix=1.0, after_share=0.8, negation_max_words=15,
                  negation_mix=1.0, negation_flip=0.5)
    plan = both.plan(_ids("i don't think the food was bad but the service was slow"))
    assert plan == [(0.8, 8, 12), (pytest.approx(-0.2 * 0.5), 3, 7)]


def test_a_denied_trouble_takes_the_trouble_words_reading_back_out():
    rules = _rules(contrast_max_words=0, trouble_max_words=15, trouble_weight=1.5, limit_max_words=0)
    assert rules.plan(_ids("no complaints")) == [(1.0, 0, 2), (-1.5, 1, 2)]
    # The negator reaches the trouble word through filler words only, and "never" counts.
    assert rules.plan(_ids("never had a single problem with it")) == [(1.0, 0, 7), (-1.5, 4, 5)]
    assert rules.plan(_ids("nothing to complain about")) == [(1.0, 0, 4), (-1.5, 2, 3)]
    assert rules.plan(_ids("zero issues so far")) == [(1.0, 0, 4), (-1.5, 1, 2)]
    # Each denied trouble word counts; one no negator reaches does not.
    assert rules.plan(_ids("no complaints no issues")) == [(1.0, 0, 4), (-1.5, 1, 2), (-1.5, 3, 4)]
    assert rules.plan(_ids("the food was great no complaints and there were issues")) == \
        [(1.0, 0, 10), (-1.5, 5, 6)]
    # Not reached: a trouble word without a negator, a word that is no filler between them,
    # "more" ("could not be more disappointed" blames), a review longer than the rule's reach.
    assert rules.plan(_ids("there were issues")) is None
    assert rules.plan(_ids("no food and issues")) is None
    assert rules.plan(_ids("could not be more disappointed")) is None
    assert _rules(trouble_max_words=3, trouble_weight=1.5).plan(_ids("never had a problem")) is None
    assert _rules(trouble_max_words=15, trouble_weight=0.0).plan(_ids("no complaints")) is None
    # Inside a contrast, the clause it sits in is composed with it.
    both = _rules(contrast_max_words=30, contrast_mix=1.0, after_share=0.8, trouble_max_words=15,
                  trouble_weight=1.0)
    plan = both.plan(_ids("the food was bad but no complaints with the service"))
    assert plan == [(0.8, 5, 10), (-0.8, 6, 7), (pytest.approx(0.2), 0, 4)]


def test_a_limit_reached_reads_the_words_after_the_negated_can():
    rules = _rules(contrast_max_words=0, negation_max_words=0, trouble_max_words=0, limit_max_words=10,
                   limit_mix=0.75)
    # From the comparative on, after "be", "ask for a" and the like.
    assert rules.plan(_ids("couldn't be happier")) == [(0.25, 0, 3), (0.75, 2, 3)]
    assert rules.plan(_ids("i couldn't be happier with it")) == [(0.25, 0, 6), (0.75, 3, 6)]
    assert rules.plan(_ids("could not ask for a better kettle")) == [(0.25, 0, 7), (0.75, 5, 7)]
    assert rules.plan(_ids("could hardly be easier")) == [(0.25, 0, 4), (0.75, 3, 4)]
    assert rules.plan(_ids("couldn't be more disappointed")) == [(0.25, 0, 4), (0.75, 2, 4)]
    # With an "enough" after at least one word: every word after the negator.
    assert rules.plan(_ids("can't recommend it enough")) == [(0.25, 0, 4), (0.75, 1, 4)]
    # Not a limit: no comparative or "enough", a word that is no filler before the comparative,
    # "enough" right after the negator, a negator that is not of "can", too long a review.
    for text in ("can't recommend it", "couldn't care less", "can't enough", "not be happier",
                 "i couldn't be happier with it and the food was great"):
        assert rules.plan(_ids(text)) is None, text
    # The verdict's words are composed in turn: a denied trouble inside them still counts.
    both = _rules(contrast_max_words=0, negation_max_words=0, trouble_max_words=15, trouble_weight=1.0,
                  limit_max_words=10, limit_mix=1.0)
    assert both.plan(_ids("couldn't be happier no complaints")) == [(1.0, 2, 5), (-1.0, 4, 5)]


def test_a_negated_subject_turns_what_is_said_of_it_from_the_linking_verb_on():
    rules = _rules(contrast_max_words=0, negation_max_words=0, trouble_max_words=0, limit_max_words=0,
                   subject_max_words=10, subject_mix=0.75, subject_flip=1.0)
    assert rules.plan(_ids("nobody at the desk was helpful")) == [(0.25, 0, 6), (-0.75, 4, 6)]
    assert rules.plan(_ids("no one was rude to us")) == [(0.25, 0, 6), (-0.75, 2, 6)]
    assert rules.plan(_ids("none of the dishes were good")) == [(0.25, 0, 6), (-0.75, 4, 6)]
    assert rules.plan(_ids("nothing is bad")) == [(0.25, 0, 3), (-0.75, 1, 3)]
    # Not turned: no linking verb (a service that never came is a complaint in itself), a
    # comparison ("no one is better": praise), "no" or "none" on their own, nothing after the
    # verb, too long a review.
    for text in ("no one has responded", "nothing happened", "nobody is better", "nothing beats it",
                 "no complaints", "second to none", "nothing was", "the food was great and the "
                 "service was slow and nobody on the staff was helpful"):
        assert rules.plan(_ids(text)) is None, text
    # What is said is composed in turn, and flip scales the turn.
    both = _rules(contrast_max_words=0, negation_max_words=0, trouble_max_words=15, trouble_weight=1.0,
                  limit_max_words=0, subject_max_words=10, subject_mix=1.0, subject_flip=0.5)
    assert both.plan(_ids("nothing was bad")) == [(-0.5, 1, 3)]
    assert _rules(subject_max_words=0).plan(_ids("nobody was helpful")) is None


def test_an_unmet_comparison_turns_the_words_from_the_comparative_on():
    rules = _rules(contrast_max_words=0, negation_max_words=0, trouble_max_words=0, limit_max_words=0,
                   subject_max_words=0, unmet_max_words=10, unmet_mix=0.5)
    assert rules.plan(_ids("could be better")) == [(0.5, 0, 3), (-0.5, 2, 3)]
    assert rules.plan(_ids("the food could have been a lot better")) == [(0.5, 0, 8), (-0.5, 7, 8)]
    assert rules.plan(_ids("i expected better")) == [(0.5, 0, 3), (-0.5, 2, 3)]
    assert rules.plan(_ids("the staff should have been friendlier")) == [(0.5, 0, 6), (-0.5, 5, 6)]
    assert rules.plan(_ids("could have been worse")) == [(0.5, 0, 4), (-0.5, 3, 4)]
    # Not unmet: "even" (better still), a negator before or on the modal, no comparative after
    # fillers only, too long a review.
    for text in ("could be even better", "i don't think it could be better", "couldn't be better",
                 "could not be better", "the food could be great", "could have been better and the "
                 "food was great and the service was slow"):
        assert rules.plan(_ids(text)) is None, text
    # A negated modal is the limit-reached rule's, which comes first.
    both = _rules(contrast_max_words=0, negation_max_words=0, trouble_max_words=0, limit_max_words=10,
                  limit_mix=0.75, subject_max_words=0, unmet_max_words=10, unmet_mix=0.5)
    assert both.plan(_ids("couldn't be happier")) == [(0.25, 0, 3), (0.75, 2, 3)]


def test_composed_scores_are_the_planned_sum_of_span_logits_and_read_padded_rows():
    from review_scorer.text.batching import pad_batch

    rules = _rules(contrast_max_words=30, contrast_mix=1.0, after_share=0.8, negation_max_words=15,
                   negation_mix=0.75, negation_flip=1.0, trouble_max_words=15, trouble_weight=1.5)
    seqs = [_ids(t) for t in ("the food was great but the service was slow",
                              "i wouldn't say the food was great", "no complaints",
                              "couldn't be happier", "the food was great")]

    def network(spans):  # any function of the span's ids will do: here, of their sum and length
        return np.array([1 / (1 + np.exp(-(np.sum(s) % 7 - 3 + 0.1 * len(s)))) for s in spans])

    probs = network(seqs).astype(np.float32)
    got = rules.compose(probs, seqs, network)
    for k, s in enumerate(seqs):
        plan = rules.plan(s)
        if plan is None:
            assert got[k] == probs[k]
            continue
        want = sum(c * _logit(network([s[a:b]]))[0] for c, a, b in plan)
        np.testing.assert_allclose(_logit(got[k]), want, rtol=1e-5)
    assert not np.any(np.isclose(got[:4], probs[:4]))
    np.testing.assert_allclose(rules.compose(probs, pad_batch(seqs), network), got)


def test_the_record_in_meta_rebuilds_the_same_rules_and_a_damaged_one_is_refused():
    from review_scorer.model.clauses import ClauseRules

    rules = _rules(contrast_max_words=25, negation_mix=0.5, trouble_max_words=12, trouble_weight=2.0,
                   limit_max_words=8, limit_mix=0.5, subject_max_words=9, subject_flip=0.5,
                   unmet_max_words=7, unmet_mix=0.25)
    record = json.loads(json.dumps(rules.meta()))
    again = ClauseRules.from_meta(record, TOKENS)
    for text in ("the food was great but the service was slow", "i don't think it was bad",
                 "never had a single problem with it", "couldn't be happier", "nobody was helpful",
                 "could be better"):
        assert again.plan(_ids(text)) == rules.plan(_ids(text)) is not None
    assert again.contrast_max_words == 25 and again.negation_mix == 0.5
    assert again.trouble_max_words == 12 and again.trouble_weight == 2.0
    assert again.limit_max_words == 8 and again.limit_mix == 0.5
    assert again.subject_max_words == 9 and again.subject_flip == 0.5
    assert again.unmet_max_words == 7 and again.unmet_mix == 0.25
    # A record saved before these rules existed has none of their words: no such plans.
    old = {k: v for k, v in record.items()
           if not k.startswith(("trouble", "limit", "comparative", "enough", "subject", "unmet"))}
    assert ClauseRules.from_meta(old, TOKENS).plan(_ids("no complaints")) is None
    assert ClauseRules.from_meta(old, TOKENS).plan(_ids("could be better")) is None
    assert ClauseRules.from_meta(old, TOKENS).plan(_ids("nobody was helpful")) is None
    assert ClauseRules.from_meta(old, TOKENS).plan(_ids("couldn't be happier")) is None
    for damaged in ({**record, "contrast_mix": "a lot"}, {**record, "opinion_verbs": "say"}, [1, 2]):
        with pytest.raises(ValueError):
            ClauseRules.from_meta(damaged, TOKENS)


def _tiny_rules(model, **params):
    """Rules for the tiny model, whose 300 words hold "but" and "not" but no opinion verb: one of
    its words stands in for the verbs."""
    from review_scorer.model.clauses import ClauseRules

    assert {"but", "not"} <= set(model.vocab.tokens)
    record = {**ClauseRules.for_vocabulary(model.vocab.tokens, **params).meta(),
              "opinion_verbs": [_words(model)[4]]}
    return ClauseRules.from_meta(record, model.vocab.tokens)


def _words(model) -> list[str]:
    return [t for t in model.vocab.tokens[2:] if t.isalpha() and t not in ("but", "not")][10:15]


def _short_reviews(model) -> list[str]:
    """Short reviews made of words the tiny model knows, that the rules reach (but the last two)."""
    a, b, c, d, verb = _words(model)
    return [f"{a} {b} but {c} {d}", f"{a} not {verb} {b} {c}", f"{a} {b} {c} but {d} {a} but {b}",
            f"{a} {b} {c}", f"{a} {b} not {c}"]


def test_scoring_and_explanations_compose_the_clauses(trained_model, tmp_path):
    from review_scorer.explain.attribution import Explainer
    from review_scorer.model.sentiment import SentimentModel

    model = SentimentModel.load(trained_model.model_dir)
    assert model.clauses is not None  # training attaches them by default
    model.clauses = _tiny_rules(model, contrast_mix=1.0, after_share=0.7, negation_mix=1.0,
                                negation_flip=1.0)
    saved = SentimentModel.load(model.save(tmp_path / "rules"))
    assert saved.clauses.after_share == 0.7
    assert json.loads((tmp_path / "rules" / "meta.json").read_text())["clause_rules"]["after_share"] == 0.7
    texts = _short_reviews(saved)
    seqs = saved.encode(texts)
    plans = saved.clauses.plans(seqs)
    assert sorted(plans) == [0, 1, 2]
    network = saved.network_scores(seqs)
    z = _logit(network)
    for k, plan in plans.items():
        z[k] = sum(c * _logit(saved.network_scores([seqs[k][a:b]]))[0] for c, a, b in plan)
    lexicon = saved.lexicon.logits(seqs) if saved.lexicon is not None else 0.0
    expected = (z + lexicon) / saved.temperature
    np.testing.assert_allclose(_logit(saved.predict(texts)), expected, atol=2e-4)
    streamed = [s for _, _, s in saved.predict_stream([texts], lambda item: item, batch_size=2)]
    np.testing.assert_allclose(streamed[0], saved.predict(texts), atol=1e-6)
    # Explanations: the same scores, and a composed review's word weights are its spans' weights
    # times the plan's coefficients.
    scores, weights = Explainer(saved).explain_ids(seqs)
    np.testing.assert_allclose(scores, saved.predict_ids(seqs), atol=1e-5)
    plain = SentimentModel.load(trained_model.model_dir)
    plain.clauses = plain.lexicon = None
    plain.meta = {**plain.meta, "calibration": None}
    for k, plan in plans.items():
        want = np.zeros(len(seqs[k]), dtype=np.float64)
        for c, a, b in plan:
            want[a:b] += c * Explainer(plain).explain_ids([seqs[k][a:b]])[1][0]
        if saved.lexicon is not None:
            want += saved.lexicon.token_weights(seqs[k])
        np.testing.assert_allclose(weights[k], want / saved.temperature, atol=1e-4)


def test_a_damaged_clause_record_is_refused_in_one_line(trained_model, tmp_path):
    from click.testing import CliRunner

    from review_scorer.cli import cli
    from review_scorer.model.artifacts import load_model_dir
    from review_scorer.model.sentiment import SentimentModel

    target = SentimentModel.load(trained_model.model_dir).save(tmp_path / "m")
    meta = json.loads((target / "meta.json").read_text())
    meta["clause_rules"]["negation_flip"] = None
    (target / "meta.json").write_text(json.dumps(meta))
    with pytest.raises(ArtifactError, match=r"meta\.json: its clause_rules record is damaged"):
        load_model_dir(target)
    reviews = tmp_path / "r.csv"
    reviews.write_text("review\nGood food.\n")
    run = CliRunner().invoke(cli, ["score", str(reviews), "--model-dir", str(target), "--out-dir",
                                   str(tmp_path / "o")])
    errors = [line for line in run.output.splitlines() if line.startswith("error:")]
    assert run.exit_code != 0 and len(errors) == 1 and "clause_rules record is damaged" in errors[0]
    assert "Traceback" not in run.output


def test_training_without_the_rules_gives_the_same_network(trained_model, tiny_config, tmp_path):
    from review_scorer.model.sentiment import SentimentModel
    from review_scorer.training.train import run_training
    from tests.conftest import MINI_IMDB

    result = run_training(tiny_config.replace(clause_rules=False), data_source=str(MINI_IMDB),
                          model_dir=tmp_path / "plain")
    plain = SentimentModel.load(result.model_dir)
    assert plain.clauses is None and plain.meta["clause_rules"] is None
    assert "clause_rules" in plain.config.to_dict() and plain.config.clause_rules is False
    with_rules = SentimentModel.load(trained_model.model_dir)
    assert with_rules.meta["clause_rules"]["contrast_words"] == ["but", "however"]
    texts = ["A wonderful, moving, beautiful film.", "Awful but not boring.", "A film."]
    np.testing.assert_allclose(with_rules.network_scores(with_rules.encode(texts)),
                               plain.network_scores(plain.encode(texts)), atol=1e-6)


def test_adaptation_keeps_the_starting_models_rules(trained_model, tmp_path):
    from review_scorer.model.sentiment import SentimentModel
    from review_scorer.training.adapt import Schedule, adapt, adapted_model

    start = SentimentModel.load(trained_model.model_dir)
    start.clauses = _tiny_rules(start)
    texts = [t for t in _short_reviews(start) for _ in range(12)]
    labels = np.array([i % 2 for i in range(len(texts))])
    result = adapt(start, texts, labels, schedule=Schedule(max_epochs=1))
    own = float(np.mean((start.predict(texts) >= 0.5) == labels))
    assert result.start_metrics["accuracy"] == pytest.approx(own)
    model = adapted_model(start, result, name="mine")
    assert model.clauses is start.clauses
    saved = SentimentModel.load(model.save(tmp_path / "mine"))
    assert saved.clauses is not None and saved.meta["clause_rules"] == start.clauses.meta()


def test_how_the_model_was_made_names_the_clause_stage():
    from review_scorer.model.clauses import ClauseRules
    from review_scorer.report.provenance import model_provenance

    record = ClauseRules.for_vocabulary(TOKENS).meta()
    stages = model_provenance({"clause_rules": record, "sizes": {"train": 100}}, {})["stages"]
    stage = next(s for s in stages if s["key"] == "clauses")
    facts = {f["label"]: f["value"] for f in stage["facts"]}
    assert "but" in facts["Contrast"] and "30 words" in facts["Contrast"]
    assert "say" in facts["Negated opinion verbs"]
    assert "complaints" in facts["Denied trouble"] and "15 words" in facts["Denied trouble"]
    assert "denied trouble" in stage["text"] and "limit reached" in stage["text"]
    assert "10 words" in facts["Limit reached"]
    assert "nobody" in facts["Negated subject"] and "10 words" in facts["Negated subject"]
    assert "negated subject" in stage["text"] and "left unmet" in stage["text"]
    assert "10 words" in facts["Unmet comparison"] and "0.5" in facts["Unmet comparison"]
    # A model saved before the denied-trouble rule existed is described without it.
    before = {k: v for k, v in record.items()
              if not k.startswith(("trouble", "limit", "comparative", "enough", "subject", "unmet"))}
    stage = next(s for s in model_provenance({"clause_rules": before}, {})["stages"] if s["key"] == "clauses")
    assert not ({"Denied trouble", "Limit reached", "Negated subject", "Unmet comparison"}
                & {f["label"] for f in stage["facts"]})
    assert "trouble" not in stage["text"] and "limit" not in stage["text"]
    assert "subject" not in stage["text"] and "unmet" not in stage["text"]
    adapted = model_provenance({"clause_rules": record, "adaptation": {"start_model": "imdb-lstm"}}, {})
    assert [s["key"] for s in adapted["stages"]] == ["adaptation", "clauses"]
    assert all(s["key"] != "clauses" for s in model_provenance({"clause_rules": None}, {})["stages"])


def test_the_shipped_model_holds_the_rules_training_writes_now():
    """The shipped meta.json's clause record is what `review-scorer train` writes for its
    vocabulary today, so the recipe still makes the shipped model (README "The shipped model")."""
    from review_scorer.model.clauses import ClauseRules
    from review_scorer.text.vocabulary import Vocabulary
    from tests.conftest import REPO

    shipped = REPO / "review_scorer" / "default_model"
    record = json.loads((shipped / "meta.json").read_text(encoding="utf-8"))["clause_rules"]
    tokens = Vocabulary.load(shipped / "vocab.txt").tokens
    assert record == json.loads(json.dumps(ClauseRules.for_vocabulary(tokens).meta()))
