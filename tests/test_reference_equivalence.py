"""The report's fast paths give what plain, obviously-correct versions of them give.

Cleaning, alignment, top words, highlights, drivers and the driver filter were each rewritten
for speed (benchmarks/report_cost.py). Each test here runs the fast code and a slow reference
written from the definition on the same inputs, many of them generated: ASCII and not, tags,
entities, apostrophes, ties, unknown words and truncated reviews.
"""

from __future__ import annotations

import html
import itertools
import random
import unicodedata

import numpy as np
import pytest

from review_scorer.text.cleaning import _APOSTROPHES, _TAG_RE, _TOKEN_RE
from review_scorer.text.vocabulary import OOV_ID

PIECES = ["a", "B", "film", "don't", "don`t", "it\u2019s", "'", "`", "\u00b4", "!", "?", ".", ",",
          " ", "  ", "\t", "\n", "_", "a_b", "9", "7/10", "<br />", "<b>", "</i>", "<", ">",
          "&amp;", "&quot;", "&#39;", "&#x2019;", "&", "&nbsp;", "caf\u00e9", "E\u0301", "\ufb01ne",
          "\u0130stanbul", "STRA\u00dfE", "\u00bd", "\u03a3\u039f\u03a3", "\uff21\uff22", "\u2162"]


def _fuzz(seed: int, count: int, ascii_only: bool = False) -> list[str]:
    rng = random.Random(seed)
    pieces = [p for p in PIECES if p.isascii()] if ascii_only else PIECES
    return ["".join(rng.choice(pieces) for _ in range(rng.randint(0, 30))) for _ in range(count)]


def _reference_clean(text: str) -> str:
    """clean_text's documented steps, always taking the general Unicode path."""
    if not text:
        return ""
    text = html.unescape(_TAG_RE.sub(" ", text))
    text = unicodedata.normalize("NFKC", text).lower().translate(_APOSTROPHES)
    return " ".join(_TOKEN_RE.findall(text))


def test_clean_text_ascii_shortcut_equals_the_general_path():
    from review_scorer.text.cleaning import _ASCII_APOSTROPHE, clean_text

    assert [chr(k) for k in _APOSTROPHES if chr(k).isascii()] == [_ASCII_APOSTROPHE]
    texts = _fuzz(1, 3000, ascii_only=True) + _fuzz(2, 3000)
    assert sum(t.isascii() for t in texts) > 3000  # both paths are exercised
    for text in texts:
        assert clean_text(text) == _reference_clean(text), repr(text)


def test_clean_and_align_equals_clean_text_and_token_offsets():
    from review_scorer.text.cleaning import clean_and_align, clean_text, token_offsets

    shortcut = 0
    for text in _fuzz(3, 2000, ascii_only=True) + _fuzz(4, 4000):
        tokens, offsets = clean_and_align(text)
        want = clean_text(text).split()
        assert tokens == want, repr(text)
        reference = token_offsets(text, want)
        if reference is None:
            assert offsets is None, repr(text)
            continue
        assert offsets is not None, repr(text)
        np.testing.assert_array_equal(offsets[0], reference[0])
        np.testing.assert_array_equal(offsets[1], reference[1])
        shortcut += "&" not in text
        for token, start, end in zip(tokens, *offsets):
            if text[start:end].isascii() and "&" not in text[start:end]:  # one-to-one there
                assert text[start:end].lower().replace("`", "'") == token
    assert shortcut > 1000


@pytest.mark.parametrize("text", [
    "E\u0301te\u0301 \u00bd good",  # two accents (2 -> 1 each) and one half (1 -> 3) cancel out
    "&\uff21\uff22 \u00bdE\u0301 good &amp; good",  # a "&" that is no entity, then one that is
])
def test_offsets_stay_on_the_words_when_length_changes_cancel_out(text):
    from review_scorer.text.cleaning import clean_and_align, clean_text, token_offsets

    tokens, offsets = clean_and_align(text)
    assert offsets is not None and tokens == clean_text(text).split()
    for found in (offsets, token_offsets(text, tokens)):
        spans = [text[a:b] for a, b, t in zip(*found, tokens) if t == "good"]
        assert spans and all(span == "good" for span in spans)


def _random_attribution(rng: np.random.Generator, *, truncated: bool = False):
    from review_scorer.explain.attribution import Attribution

    words = ["good", "bad", "the", "plot", "!", "not", "great", "film", "it's", "a"]
    unknown = ["zorp", "blix", "quux"]
    n = int(rng.integers(1, 25))
    tokens, ids = [], []
    for _ in range(n):
        if rng.random() < 0.2:
            tokens.append(str(rng.choice(unknown)))
            ids.append(OOV_ID)
        else:
            j = int(rng.integers(len(words)))
            tokens.append(words[j])
            ids.append(2 + j)
    weights = rng.normal(size=n).astype(np.float32)
    if rng.random() < 0.5:
        weights = np.round(weights, 1)  # ties
    positions = np.arange(n)
    if truncated and n > 3:  # a head+tail cut: a gap in the positions
        positions = np.concatenate([np.arange(2), np.arange(5, 5 + n - 2)])
    starts = np.sort(rng.integers(0, 3 * n, n)).astype(np.int32)  # shared starts happen
    return Attribution(0.5, tokens, np.asarray(ids, np.int32), weights, starts, starts + 1,
                       positions)


def _reference_top_terms(att, k):
    from review_scorer.explain.drivers import STOP_WORDS

    totals: dict[str, float] = {}
    for token, weight in zip(att.tokens, att.weights.tolist()):
        if token not in STOP_WORDS and any(ch.isalnum() for ch in token):
            totals[token] = totals.get(token, 0.0) + weight
    return sorted(totals.items(), key=lambda item: -abs(item[1]))[:k]


def test_top_terms_equal_a_running_sum_per_word():
    from review_scorer.explain.drivers import top_terms

    rng = np.random.default_rng(5)
    for _ in range(1500):
        att = _random_attribution(rng)
        for k in (1, 3, 5, 50):
            assert top_terms(att, k) == _reference_top_terms(att, k)


def _reference_row_spans(att, limit):
    weights = att.weights.astype(np.float64)
    scale = float(np.max(np.abs(weights)))
    if scale <= 0:
        return []
    chosen = np.argsort(-np.abs(weights), kind="stable")[:limit]
    chosen = chosen[np.argsort(att.starts[chosen], kind="stable")]
    out = []
    for i in chosen:
        start, end = int(att.starts[i]), int(att.ends[i])
        if out and start < out[-1][1]:
            continue
        out.append([start, end, round(float(weights[i]) / scale, 3)])
    return out


def test_row_spans_equal_a_full_stable_sort():
    from review_scorer.explain.drivers import row_spans

    rng = np.random.default_rng(6)
    for i in range(1500):
        att = _random_attribution(rng)
        if i % 10 == 0:
            att.weights[:] = 0.0
        for limit in (1, 3, 12):
            assert row_spans(att, limit) == _reference_row_spans(att, limit)


def _reference_drivers(attributions):
    """(term, summed weight, reviews) for words, unknown words and known adjacent pairs."""
    totals: dict[str, list] = {}
    for _review, att in enumerate(attributions):
        seen: dict[str, float] = {}
        for j, (token, weight) in enumerate(zip(att.tokens, att.weights.tolist())):
            seen[token] = seen.get(token, 0.0) + weight
            if (j and att.ids[j] > OOV_ID and att.ids[j - 1] > OOV_ID
                    and att.positions[j] == att.positions[j - 1] + 1):
                pair = f"{att.tokens[j - 1]} {token}"
                seen[pair] = seen.get(pair, 0.0) + weight + float(att.weights[j - 1])
        for term, weight in seen.items():
            entry = totals.setdefault(term, [0.0, 0])
            entry[0] += weight
            entry[1] += 1
    return totals


def _listed(acc):
    return {term: (total, count) for term, total, count in acc._candidates()}


@pytest.mark.parametrize("block", [4096, 7])
def test_drivers_equal_per_review_dictionaries(monkeypatch, block):
    from review_scorer.explain import drivers
    from review_scorer.explain.drivers import STOP_WORDS, DriverAccumulator

    monkeypatch.setattr(drivers, "_BLOCK", block)  # several blocks and their merging too
    rng = np.random.default_rng(7)
    atts = [_random_attribution(rng, truncated=i % 3 == 0) for i in range(300)]
    acc = DriverAccumulator()
    acc.update(atts[:120])
    acc.update(atts[120:])
    merged = DriverAccumulator()
    merged.update(atts[:50])
    other = DriverAccumulator()
    other.update(atts[50:])
    merged.merge(other)
    def listable(term):  # words that are words and not stop words; pairs of two words, not
        words = term.split()  # both stop words
        return (all(any(ch.isalnum() for ch in w) for w in words)
                and not all(w in STOP_WORDS for w in words))

    want = {term: value for term, value in _reference_drivers(atts).items()
            if value[1] >= acc.min_reviews() and listable(term)}
    assert len(want) > 20 and "zorp" in want and any(" " in term for term in want)
    for got in (_listed(acc), _listed(merged)):
        assert set(got) == set(want)
        for term, (total, count) in want.items():
            assert got[term][1] == count, term
            assert got[term][0] == pytest.approx(total, abs=1e-9), term


def test_terms_in_text_with_the_cleaned_text_given_or_not():
    from review_scorer.explain.drivers import terms_in_text
    from review_scorer.text.cleaning import clean_text

    terms = ["a", "film", "a film", "don't", "film !", "b b", "caf\u00e9", "! ?", "zzz", "a b"]
    for text in _fuzz(8, 1500):
        tokens = clean_text(text).split()
        present = set(tokens) | {f"{x} {y}" for x, y in itertools.pairwise(tokens)}
        want = [i for i, term in enumerate(terms) if term in present]
        assert terms_in_text(text, terms) == want
        assert terms_in_text(text, terms, cleaned=clean_text(text)) == want


def test_cleaned_if_whole_only_for_reviews_read_in_full():
    from review_scorer.explain.drivers import cleaned_if_whole

    rng = np.random.default_rng(9)
    whole = _random_attribution(rng)
    assert cleaned_if_whole(whole) == " ".join(whole.tokens)
    while True:
        cut = _random_attribution(rng, truncated=True)
        if len(cut.tokens) > 3:
            break
    assert cleaned_if_whole(cut) is None and cleaned_if_whole(None) is None


def test_packed_spans_shortcut_equals_the_full_cleaning():
    from review_scorer.report.rows_view import _clean_spans, _packed_spans

    rng = random.Random(10)
    tidy_seen = 0
    for _ in range(3000):
        length = rng.randint(0, 60)
        spans: list = []
        pos = 0
        for _ in range(rng.randint(0, 8)):
            start = pos + rng.randint(0, 4) - (rng.random() < 0.1) * 3  # now and then overlapping
            end = start + rng.randint(0 if rng.random() < 0.05 else 1, 5)
            weight = round(rng.uniform(-1.2, 1.2), 3) if rng.random() < 0.95 else float("nan")
            item = [start, end, weight]
            if rng.random() < 0.03:
                item = [np.int64(start), end, weight] if rng.random() < 0.5 else (start, end, weight)
            spans.append(item)
            pos = max(pos, end)
        want = [[s, e, round(w, 3)] for s, e, w in _clean_spans(spans, length)] or None
        assert _packed_spans(spans, length) == want, spans
        tidy_seen += want is not None and want == spans
    assert tidy_seen > 100  # the shortcut was taken, not only the full path
