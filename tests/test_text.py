"""Tests for the shared text pipeline."""

import numpy as np
import pytest

from review_scorer.errors import ArtifactError
from review_scorer.text.batching import length_bucketed_batches, pad_batch
from review_scorer.text.cleaning import clean_text
from review_scorer.text.vocabulary import OOV_ID, PAD_ID, Vocabulary, texts_to_sequences, truncate


def test_text_clean_removes_html_breaks_and_tags():
    assert clean_text("Great film.<br /><br />Loved it<br>truly") == "great film loved it truly"
    assert clean_text("<i>Bold</i> <a href='x'>choice</a>") == "bold choice"


def test_text_clean_decodes_entities_and_keeps_contractions():
    assert clean_text("Tom &amp; Jerry don&#39;t disappoint") == "tom jerry don't disappoint"
    assert clean_text("It isn\u2019t the director\u2019s best") == "it isn't the director's best"


def test_text_clean_drops_punctuation_but_keeps_exclamation_and_question():
    assert clean_text("Wow!!! Really?  (10/10) -- *must* see...") == "wow ! ! ! really ? 10 10 must see"


def test_text_clean_lowercases_and_normalises_unicode_and_whitespace():
    assert clean_text("  CAF\u00c9\tNoir\n\n ﬁlm ") == "café noir film"


def test_text_clean_handles_empty_and_markup_only():
    assert clean_text(None) == ""
    assert clean_text("") == ""
    assert clean_text("   ") == ""
    assert clean_text("<br /><br />...") == ""


def test_text_clean_is_idempotent():
    raw = "I <b>didn't</b> like it &mdash; at ALL!! 2/10, won't watch again?"
    once = clean_text(raw)
    assert clean_text(once) == once


def test_text_vocabulary_orders_by_count_then_alphabet_and_reserves_ids():
    vocab = Vocabulary.build(["b a a", "c b a", "d"], max_size=10, min_count=1)
    assert vocab.tokens[:2] == ["<pad>", "<unk>"]
    assert vocab.tokens[2:] == ["a", "b", "c", "d"]
    assert len(Vocabulary.build(["b a a", "c b a", "d"], max_size=4)) == 4
    assert Vocabulary.build(["b a a", "c b a", "d"], max_size=10, min_count=2).tokens[2:] == ["a", "b"]


def test_text_vocabulary_round_trips_through_a_plain_file(tmp_path):
    vocab = Vocabulary.build(["good great good", "bad awful"], max_size=10)
    vocab.save(tmp_path / "vocab.txt")
    assert Vocabulary.load(tmp_path / "vocab.txt") == vocab
    assert (tmp_path / "vocab.txt").read_text(encoding="utf-8").splitlines()[1:3] == ["<pad>", "<unk>"]


def test_text_vocabulary_load_rejects_foreign_or_corrupt_files(tmp_path):
    bad = tmp_path / "vocab.txt"
    bad.write_text("hello\nworld\n", encoding="utf-8")
    with pytest.raises(ArtifactError, match="not a review-scorer vocabulary"):
        Vocabulary.load(bad)
    bad.write_text("# review-scorer vocabulary v1\n<pad>\n<unk>\na\na\n", encoding="utf-8")
    with pytest.raises(ArtifactError, match="corrupt"):
        Vocabulary.load(bad)
    with pytest.raises(ArtifactError, match="cannot read"):
        Vocabulary.load(tmp_path / "missing.txt")


def test_text_sequences_map_unknown_words_to_oov():
    vocab = Vocabulary.build(["good movie"], max_size=10)
    (seq,) = texts_to_sequences(["Good <br/>unknownword movie!"], vocab, max_len=10, truncating="post")
    assert seq.tolist() == [vocab.tokens.index("good"), OOV_ID, vocab.tokens.index("movie"), OOV_ID]


@pytest.mark.parametrize(
    ("side", "expected"),
    [("post", [0, 1, 2, 3]), ("pre", [6, 7, 8, 9]), ("head_tail", [0, 7, 8, 9])],
)
def test_text_truncate_sides(side, expected):
    assert truncate(np.arange(10), 4, side).tolist() == expected
    assert truncate(np.arange(3), 4, side).tolist() == [0, 1, 2]


def test_text_pad_batch_pads_at_the_end():
    out = pad_batch([np.array([5, 6, 7]), np.array([8])])
    assert out.dtype == np.int32
    assert out.tolist() == [[5, 6, 7], [8, PAD_ID, PAD_ID]]


def test_text_bucketed_batches_cover_each_index_once_and_group_lengths():
    rng_lengths = np.random.default_rng(0).integers(1, 500, size=1000)
    plain = length_bucketed_batches(rng_lengths, 32)
    assert sorted(np.concatenate(plain).tolist()) == list(range(1000))
    assert np.all(np.diff(rng_lengths[np.concatenate(plain)]) >= 0)
    a = length_bucketed_batches(rng_lengths, 32, rng=np.random.default_rng(1), pool_batches=4)
    b = length_bucketed_batches(rng_lengths, 32, rng=np.random.default_rng(1), pool_batches=4)
    c = length_bucketed_batches(rng_lengths, 32, rng=np.random.default_rng(2), pool_batches=4)
    assert sorted(np.concatenate(a).tolist()) == list(range(1000))
    assert all(np.array_equal(x, y) for x, y in zip(a, b))
    assert not all(np.array_equal(x, y) for x, y in zip(a, c))
    # Padding waste inside bucketed batches is far below that of random batches.
    waste = sum(rng_lengths[i].max() * len(i) - rng_lengths[i].sum() for i in a)
    shuffled = np.random.default_rng(3).permutation(1000)
    random_batches = [shuffled[i : i + 32] for i in range(0, 1000, 32)]
    waste_random = sum(rng_lengths[i].max() * len(i) - rng_lengths[i].sum() for i in random_batches)
    assert waste < waste_random / 3
