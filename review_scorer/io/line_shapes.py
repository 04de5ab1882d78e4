"""What a line of delimited text looks like: column names, a title above them, or prose.

The delimited reader (io/delimited.py) reads a file's first lines under each candidate delimiter
and asks these questions of the pieces it gets: is this line a header of column names, a title
an export wrote above the header ("Reviews export 2024-05-01"), or words that a delimiter only
happens to split (a review with commas in it, in a file of one review per line)?
"""

from __future__ import annotations

import re

from review_scorer.io.columns import (
    COLUMN_NAMES,
    DATE_COLUMN_NAMES,
    RATING_COLUMN_NAMES,
    TEXT_COLUMN_NAMES,
    is_number,
)
from review_scorer.io.common import norm_name

DELIMITERS = (",", ";", "\t", "|")
_SEP_TITLE = re.compile(r"^sep=.?$", re.IGNORECASE)
# A one-column file's first line with at least this many words is a review, not the column's
# name (names and survey questions are shorter, or end with "?" or ":").
REVIEW_WORDS = 7
LONG_LINE_WORDS = 5  # ... or one word fewer over lines of this median length or more
# A phrase of up to this many words with a column-name word in it ("Customer review.") is a name.
NAME_PHRASE_WORDS = 4
NAME_WORDS = frozenset(TEXT_COLUMN_NAMES + RATING_COLUMN_NAMES + DATE_COLUMN_NAMES)
_PROSE_EXCEPTIONS = 0.1  # share of split lines that may break the prose shape ("3,5 stars")


def filled(fields: list[str]) -> int:
    return sum(1 for f in fields if f.strip())


def split_prose(fields: list[str]) -> bool:
    """A line of words the delimiter happens to split, each piece after the first opening with a
    space as prose after a comma does ("Exported 2024-05-01, 3 rows"): a title's shape, never a
    header's or a record's that a title could be taken for."""
    pieces = [f for f in fields if f.strip()]
    return len(pieces) >= 2 and all(f[:1].isspace() for f in fields[1:])


def title_text(fields: list[str], delimiter: str) -> str:
    return (delimiter.join(fields) if split_prose(fields) else "".join(fields)).strip()


def may_be_title(text: str, delimiter: str) -> bool:
    """A title names an export in words ("Reviews export 2024-05-01", "Export; May 2024"), not a
    column, a piece of one split by a line break ("rev"), names split by another delimiter
    ("review;date"), or ``sep=``."""
    if len(text.split()) < 2 and not (len(text) >= 6 and any(c.isdigit() for c in text)):
        return False
    # An out-of-place ``sep=,`` line has lost its delimiter to the split: "sep=".
    if "\n" in text or "\r" in text or norm_name(text) in COLUMN_NAMES or _SEP_TITLE.match(text):
        return False
    # Names split by another delimiter are short names, without a space after the delimiter.
    return not any(other in text and not split_prose(text.split(other))
                   for other in DELIMITERS if other != delimiter)


def names_like(fields: list[str]) -> bool:
    """Column names: distinct, mostly short and not numbers, not prose split at its commas."""
    names = [f.strip() for f in fields if f.strip()]
    if len(set(names)) != len(names):
        return False
    short = sum(len(f) <= 40 and len(f.split()) <= 5 and not is_number(f) for f in names)
    spaced = sum(f[:1].isspace() for f in fields[1:] if f.strip())
    return short * 2 > len(names) and spaced * 2 <= max(len(names) - 1, 0)


def prose_split_lines(lines: list[list[str]]) -> bool:
    """Whether a delimiter splits prose rather than columns: its first line and nearly every
    line under it are words with a space after each delimiter, the last piece of most split
    lines is words too (not a label, a number or a date), and no piece of the first line is a
    column's name. Such a file holds one review per line, commas and all.

    When every line splits into the same number of pieces, a hand-written file of columns with
    a space after each delimiter ("Branch name, What customers said" over "Soho, Great coffee")
    has that shape too; the first line must then also read as a sentence (reads_as_review)."""
    lines = [f for f in lines if filled(f)]
    if not lines or not split_prose(lines[0]):
        return False
    if any(norm_name(f) in COLUMN_NAMES for f in lines[0]):
        return False
    split = [f for f in lines if len(f) > 1]
    broken = sum(not split_prose(f) for f in split)
    worded = sum(len(f[-1].split()) >= 2 for f in split)
    if broken > _PROSE_EXCEPTIONS * len(split) or worded * 2 <= len(split):
        return False
    even = all(len(f) == len(lines[0]) for f in split)
    return not even or reads_as_review(" ".join(lines[0])) is not None


def reads_as_review(cell: str, *, prose: bool = False, words_below: int = 0) -> str | None:
    """Why a one-column file's first line is a review and not the column's name, or None.

    A name is a known column name, a short phrase (one with a column-name word in up to
    NAME_PHRASE_WORDS words: "Customer review."), or a survey question or prompt ("How was your
    stay?", "Comments:"); a review is a sentence: REVIEW_WORDS words or more (one fewer over
    lines whose median length, `words_below`, is LONG_LINE_WORDS or more), or words ending with
    "." or "!", or (`prose`: the file's lines are prose that a delimiter splits) words with a
    delimiter in them as the lines under it have. The Excel reader (io/xlsx.py) asks the same."""
    text = " ".join(cell.split())
    words = text.split()
    if (len(words) < 2 or norm_name(text) in COLUMN_NAMES or text.endswith(("?", ":"))
            or (len(words) <= NAME_PHRASE_WORDS and any(norm_name(w) in NAME_WORDS for w in words))):
        return None
    if len(words) >= REVIEW_WORDS or (len(words) >= REVIEW_WORDS - 1 and words_below >= LONG_LINE_WORDS):
        return f"it is a sentence of {len(words)} words"
    if text.endswith((".", "!")):
        return f"it is a sentence ending with {text[-1]!r}"
    if prose and any(d + " " in text for d in DELIMITERS):
        return "it is prose like the lines under it"
    return None
