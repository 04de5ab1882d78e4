"""The out-of-domain note: a file whose words the model does not know is told to adapt it."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest

from review_scorer.scoring.domain import (
    MIN_WORDS_JUDGED,
    UNKNOWN_WORD_RATE_LIMIT,
    DomainSignal,
    count_words,
    out_of_domain_note,
)


def test_domain_count_words_counts_the_unknown_id():
    assert count_words([np.array([5, 1, 7], np.int32), np.array([1], np.int32)]) == (4, 2)
    assert count_words([]) == (0, 0)


def test_domain_signal_merges_to_one_pass():
    rng = np.random.default_rng(0)
    scores = rng.random(50).astype(np.float32)
    scored = rng.random(50) > 0.1
    whole, first, second = DomainSignal(), DomainSignal(), DomainSignal()
    whole.update(scores, scored, words=300, unknown_words=40)
    first.update(scores[:20], scored[:20], words=100, unknown_words=10)
    second.update(scores[20:], scored[20:], words=200, unknown_words=30)
    merged = first.merge(second)
    assert merged.to_dict() == whole.to_dict()
    values = scores[scored].astype(np.float64)
    assert whole.mean_confidence == pytest.approx(np.abs(2 * values - 1).mean())
    assert whole.near_half_share == pytest.approx(np.mean(np.abs(values - 0.5) < 0.1))


def test_domain_note_only_past_the_limit_and_with_enough_words():
    over = int(MIN_WORDS_JUDGED * (UNKNOWN_WORD_RATE_LIMIT + 0.05)) + 1
    assert out_of_domain_note(DomainSignal(words=MIN_WORDS_JUDGED, unknown_words=over))
    at_limit = int(MIN_WORDS_JUDGED * UNKNOWN_WORD_RATE_LIMIT)
    assert out_of_domain_note(DomainSignal(words=MIN_WORDS_JUDGED, unknown_words=at_limit)) is None
    # a handful of words says too little, however many are unknown
    assert out_of_domain_note(DomainSignal(words=MIN_WORDS_JUDGED - 1, unknown_words=100)) is None


def _score_cli(src, model_dir, out_dir, *extra):
    from click.testing import CliRunner

    from review_scorer.cli import cli

    result = CliRunner().invoke(cli, ["score", str(src), "--model-dir", str(model_dir),
                                      "--out-dir", str(out_dir), *extra])
    assert result.exit_code == 0, result.output
    return result.output


def _reviews(words: list[str], n: int = 60, length: int = 15, seed: int = 0) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    return pd.DataFrame({"review": [" ".join(rng.choice(words, size=length)) for _ in range(n)]})


def test_domain_note_for_words_the_model_never_saw(trained_model, tmp_path):
    from review_scorer import SentimentModel

    model = SentimentModel.load(trained_model.model_dir)
    known = [t for t in model.vocab.tokens[2:] if t.isalpha()]
    unseen = [f"zq{a}{b}x" for a in "bcdfg" for b in "hjklm"]
    assert not set(unseen) & set(model.vocab.tokens)
    _reviews(known).to_csv(tmp_path / "familiar.csv", index=False)
    _reviews(unseen).to_csv(tmp_path / "strange.csv", index=False)

    strange = json.loads(_score_cli(tmp_path / "strange.csv", trained_model.model_dir,
                                    tmp_path / "o1", "--json"))["files"][0]
    assert strange["domain"]["unknown_rate"] == 1.0
    assert "review-scorer train --data labeled.csv" in strange["domain"]["note"]
    familiar = json.loads(_score_cli(tmp_path / "familiar.csv", trained_model.model_dir,
                                     tmp_path / "o2", "--json"))["files"][0]
    assert familiar["domain"]["unknown_rate"] == 0.0 and familiar["domain"]["note"] is None
    assert familiar["domain"]["words"] >= MIN_WORDS_JUDGED

    # the plain summary and the report say it too (for the strange file only)
    text = _score_cli(tmp_path / "strange.csv", trained_model.model_dir, tmp_path / "o3")
    assert "looks unlike the reviews the model was trained on" in text
    html = (tmp_path / "o3" / "strange.html").read_text(encoding="utf-8")
    assert 'id="domain-note"' in html and "review-scorer train --data labeled.csv" in html
    plain = _score_cli(tmp_path / "familiar.csv", trained_model.model_dir, tmp_path / "o4")
    assert "looks unlike" not in plain
    assert 'id="domain-note"' not in (tmp_path / "o4" / "familiar.html").read_text(encoding="utf-8")


def test_domain_reference_from_meta_sets_the_limit_from_the_models_own_text():
    from review_scorer.scoring.domain import UNKNOWN_RATE_MARGIN, DomainReference

    assert DomainReference.from_meta({}).limit == UNKNOWN_WORD_RATE_LIMIT  # the shipped model's
    own = DomainReference.from_meta({"unknown_word_rate": {"rate": 0.12, "text": "the tweets"}})
    assert own.limit == pytest.approx(0.12 * UNKNOWN_RATE_MARGIN) and own.text == "the tweets"
    # a model whose own text reads few unknown words keeps the shipped limit as the floor
    low = DomainReference.from_meta({"unknown_word_rate": {"rate": 0.01, "text": "x"}})
    assert low.limit == UNKNOWN_WORD_RATE_LIMIT
    # an adapted model that did not record its rate cannot be judged: no note, no limit shown
    old = DomainReference.from_meta({"adaptation": {"labels": 200}})
    signal = DomainSignal(words=10_000, unknown_words=9_000)
    assert out_of_domain_note(signal, old) is None
    assert signal.to_dict(old)["unknown_rate_limit"] is None
    assert out_of_domain_note(signal, DomainReference.from_meta({}))


def test_domain_note_judges_a_file_against_the_models_own_rate():
    from review_scorer.scoring.domain import DomainReference

    reference = DomainReference(0.12, "the reviews the model was adapted to")
    words = 10_000
    alike = DomainSignal(words=words, unknown_words=int(words * 0.15))  # over 5%, under 18%
    assert out_of_domain_note(alike) is not None  # judged as the shipped model would be
    assert out_of_domain_note(alike, reference) is None
    unlike = DomainSignal(words=words, unknown_words=int(words * 0.25))
    note = out_of_domain_note(unlike, reference)
    assert note.startswith("this file looks unlike the reviews the model was adapted to: 25.0%")
    assert "against 12.0% of theirs (the limit is 18.0%)" in note
    assert unlike.to_dict(reference)["model_unknown_rate"] == 0.12


def _mixed_reviews(known: list[str], unseen: list[str], share: float, n: int, seed: int):
    """n reviews of 20 words, about `share` of them words the model does not know."""
    rng = np.random.default_rng(seed)
    return [" ".join(rng.choice(unseen) if rng.random() < share else rng.choice(known)
                     for _ in range(20)) for _ in range(n)]


def test_domain_an_adapted_model_is_not_told_to_adapt_on_its_own_kind_of_file(trained_model, tmp_path):
    import subprocess
    import sys

    from review_scorer import SentimentModel

    start = SentimentModel.load(trained_model.model_dir)
    known = [t for t in start.vocab.tokens[2:] if t.isalpha()]
    unseen = [f"zq{a}{b}x" for a in "bcdfg" for b in "hjklm"]
    texts = _mixed_reviews(known, unseen, 0.3, 40, seed=1)
    pd.DataFrame({"review": texts, "label": ["positive", "negative"] * 20}).to_csv(
        tmp_path / "shop.csv", index=False)
    run = subprocess.run([sys.executable, "-m", "review_scorer", "train", "--data", "shop.csv",
                          "--from-model", str(trained_model.model_dir), "--model-dir", "shop"],
                         cwd=tmp_path, capture_output=True, text=True, timeout=600)
    assert run.returncode == 0, run.stderr
    meta = json.loads((tmp_path / "shop" / "meta.json").read_text())
    assert 0.2 < meta["unknown_word_rate"]["rate"] < 0.4
    assert meta["unknown_word_rate"]["text"] == "the reviews the model was adapted to"

    pd.DataFrame({"review": _mixed_reviews(known, unseen, 0.3, 60, seed=2)}).to_csv(
        tmp_path / "more_shop.csv", index=False)
    adapted = json.loads(_score_cli(tmp_path / "more_shop.csv", tmp_path / "shop", tmp_path / "o1",
                                    "--json"))["files"][0]["domain"]
    assert adapted["unknown_rate"] > UNKNOWN_WORD_RATE_LIMIT and adapted["note"] is None
    assert adapted["model_unknown_rate"] == pytest.approx(meta["unknown_word_rate"]["rate"], abs=1e-4)
    # the starting model judges the same file against its own training reviews' rate
    own = json.loads((trained_model.model_dir / "meta.json").read_text())["unknown_word_rate"]
    assert own["text"] == "the reviews the model was trained on" and own["rate"] > 0
    started = json.loads(_score_cli(tmp_path / "more_shop.csv", trained_model.model_dir,
                                    tmp_path / "o2", "--json"))["files"][0]["domain"]
    assert started["model_unknown_rate"] == pytest.approx(own["rate"], abs=1e-4)
    assert started["model_unknown_rate"] != adapted["model_unknown_rate"]
    # a file far stranger than the one it was adapted to is still flagged, in those words
    pd.DataFrame({"review": _mixed_reviews(known, unseen, 0.9, 60, seed=3)}).to_csv(
        tmp_path / "stranger.csv", index=False)
    text = _score_cli(tmp_path / "stranger.csv", tmp_path / "shop", tmp_path / "o3")
    assert "looks unlike the reviews the model was adapted to" in text
    # its own accuracy is named for what it is: cross-validated, not a test set's
    assert "cross-validated accuracy on its training labels" in text and "test accuracy" not in text
    summary = json.loads(_score_cli(tmp_path / "stranger.csv", tmp_path / "shop", tmp_path / "o4",
                                    "--json"))
    assert summary["model"]["accuracy_kind"] == "cross-validated accuracy on its training labels"
    html = (tmp_path / "o3" / "stranger.html").read_text(encoding="utf-8")
    assert "test accuracy" not in html.split('id="summary"')[1].split("</section>")[0]
