"""The behavioural suite's core capabilities (benchmarks/behaviour_suite.py) on the shipped model.

The whole suite, with VADER beside the model, is a benchmark; these tests guard the short-text
behaviour the product promises, on sentences written for this project.
"""

from __future__ import annotations

import sys

import numpy as np
import pytest

from tests.conftest import REPO

sys.path.insert(0, str(REPO / "benchmarks"))
from behaviour_suite import build_suite

# The sentences the issue found misread by the model shipped before (scores 0.03-0.72).
ISSUE_CASES = [("Not bad at all", 1), ("Five stars!", 1), ("Battery died after two days.", 0),
               ("Reliable and quick to boil. A fine kettle for the price.", 1)]
# What the product must do on short reviews: plain and intensified opinions right nearly always;
# contrast ("..., but ...") and negation at least as often as VADER (80.9% and 68.9% of these
# sentences), which the clause rules (model/clauses.py) are for; the model shipped on 2026-12-01
# got a third of the negation right. The benchmark's target, 90% over every capability, is in
# benchmarks/RESULTS.md.
FLOORS = {"simple": 0.9, "intensifier": 0.9, "contrast": 0.8, "negation": 0.7}


@pytest.fixture(scope="module")
def shipped():
    from review_scorer.model.sentiment import SentimentModel

    return SentimentModel.load(REPO / "review_scorer" / "default_model")


@pytest.mark.parametrize("text,label", ISSUE_CASES)
def test_behaviour_the_issues_sentences(shipped, text, label):
    score = float(shipped.predict([text])[0])
    assert (score >= 0.5) == bool(label), (text, score)


@pytest.mark.parametrize("capability", sorted(FLOORS))
def test_behaviour_suite_capability(shipped, capability):
    cases = [c for c in build_suite() if c.capability == capability]
    scores = shipped.predict([c.text for c in cases])
    right = (scores >= 0.5) == np.array([c.label for c in cases], dtype=bool)
    wrong = [(c.text, round(float(s), 2)) for c, s, ok in zip(cases, scores, right) if not ok]
    assert right.mean() >= FLOORS[capability], wrong
