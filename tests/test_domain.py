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
    assert "looks unlike the text the model was trained on" in text
    html = (tmp_path / "o3" / "strange.html").read_text(encoding="utf-8")
    assert 'id="domain-note"' in html and "review-scorer train --data labeled.csv" in html
    plain = _score_cli(tmp_path / "familiar.csv", trained_model.model_dir, tmp_path / "o4")
    assert "looks unlike" not in plain
    assert 'id="domain-note"' not in (tmp_path / "o4" / "familiar.html").read_text(encoding="utf-8")
