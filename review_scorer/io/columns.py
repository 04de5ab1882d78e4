"""Which column holds what: text, label, id, star rating, date and group, by name and content."""

from __future__ import annotations

import difflib
import itertools
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

import pandas as pd

from review_scorer.errors import InputError
from review_scorer.io.common import column_list, norm_name, show
from review_scorer.io.labels import label_of, label_share, looks_like_ratings, number_of

# Names are compared after norm_name (lowercase, no spaces, underscores, hyphens or dots), in
# this order of preference.
TEXT_COLUMN_NAMES = (
    "review", "reviewtext", "reviewbody", "reviewcontent", "reviews", "text", "comment",
    "comments", "content", "body", "description", "message", "feedback", "opinion", "remarks",
    "sentence", "tweet",
)  # fmt: skip
LABEL_COLUMN_NAMES = (
    "label", "labels", "sentiment", "polarity", "class", "target", "truelabel", "goldlabel",
    "groundtruth", "liked", "like", "recommended", "recommend", "wouldrecommend", "thumbsup",
    "thumbs", "ispositive", "positive",
)  # fmt: skip
ID_COLUMN_NAMES = (
    "id", "reviewid", "recordid", "rowid", "docid", "documentid", "commentid", "responseid",
    "uid", "uuid", "identifier", "key",
)  # fmt: skip
RATING_COLUMN_NAMES = (
    "rating", "ratings", "stars", "star", "starrating", "starratings", "reviewrating",
    "userrating", "overallrating", "overall", "score", "reviewscore", "rate", "numstars",
)  # fmt: skip
DATE_COLUMN_NAMES = (
    "date", "reviewdate", "createdat", "created", "timestamp", "time", "datetime", "posted",
    "postedat", "postdate", "publishedat", "published", "submittedat", "submitted", "day",
)  # fmt: skip
GROUP_COLUMN_NAMES = (
    "product", "productname", "branch", "store", "storename", "location", "movie", "film",
    "title", "category", "hotel", "restaurant", "app", "appname", "brand", "sku", "asin",
    "item", "itemname", "shop", "outlet", "venue", "city",
)  # fmt: skip
SPLIT_COLUMN_NAMES = ("split",)
# Every name a role is found by (normalised): such a line is a header, never a title above one.
COLUMN_NAMES = frozenset(TEXT_COLUMN_NAMES + LABEL_COLUMN_NAMES + ID_COLUMN_NAMES
                         + RATING_COLUMN_NAMES + DATE_COLUMN_NAMES + GROUP_COLUMN_NAMES)
# Label values that come in sets: a header cell from one set over a column of the same set is a
# label, not a name ("positive" over positive/negative is a record; over 1/0 it names a column).
LABEL_SETS = (
    {"positive", "negative", "neutral"}, {"pos", "neg", "neu", "neutral"}, {"true", "false"},
    {"t", "f"}, {"yes", "no"}, {"y", "n"}, {"like", "dislike"}, {"liked", "disliked"},
    {"good", "bad"}, {"recommended", "not recommended"}, {"recommend", "not recommended"},
    {"thumbs up", "thumbs down"}, {"thumbsup", "thumbsdown"}, {"thumbs-up", "thumbs-down"},
    {"👍", "👎"},
)  # fmt: skip

_LABEL_SHARE = 0.6  # an auto-found label column must hold labels in most of its filled cells
_DATE_SHARE = 0.6  # ... and a date column dates in this share
_SAMPLE_ROWS = 1000  # rows of the first chunk that content checks look at


class ColumnError(InputError):
    """No column for a role: a name that is not there, or no column that holds review text."""


@dataclass
class ColumnRequest:
    """Columns asked for by the caller: a name, None to detect, "" to turn detection off."""

    text: str | None = None
    label: str | None = None
    id: str | None = None
    rating: str | None = None
    date: str | None = None
    group: str | None = None


@dataclass
class ColumnRoles:
    """The columns chosen for each role, and what was decided on the way."""

    text: str
    text_guessed: bool = False
    label: str | None = None
    id: str | None = None
    rating: str | None = None
    rating_scale: int | None = None
    label_from_rating: bool = False
    date: str | None = None
    group: str | None = None
    notes: list[str] = field(default_factory=list)


def resolve_column(path: Path, columns: Sequence[str], wanted: str, flag: str) -> str:
    """The column named ``wanted`` (exactly, else ignoring case/spaces/underscores, if unique)."""
    if wanted in columns:
        return wanted
    matches = [c for c in columns if norm_name(c) == norm_name(wanted)]
    if len(matches) == 1:
        return matches[0]
    raise ColumnError(f"{path}: no column {wanted!r} (from {flag}); the columns are: "
                     f"{column_list(columns)}{_did_you_mean(wanted, columns)}")


def _did_you_mean(wanted: str, columns: Sequence[str]) -> str:
    """"; did you mean 'review'?" for the closest column name (compared normalised), or ""."""
    by_norm: dict[str, str] = {}
    for column in columns:
        by_norm.setdefault(norm_name(column), column)
    close = difflib.get_close_matches(norm_name(wanted), list(by_norm), n=1, cutoff=0.6)
    return f"; did you mean {by_norm[close[0]]!r}?" if close else ""


def find_by_name(columns: Sequence[str], names: Sequence[str], exclude: set) -> list[str]:
    """Columns whose normalised name is in ``names``, best name first."""
    normalized = [(c, norm_name(c)) for c in columns if c not in exclude]
    return [column for wanted in names for column, norm in normalized if norm == wanted]


def _values(first: pd.DataFrame, column: str) -> list[object]:
    return first[column].tolist()


def _filled(values: Sequence[object]) -> list[str]:
    return [str(v) for v in values if v is not None and str(v).strip()]


def is_number(value: str) -> bool:
    """True for a plain number (thousands commas allowed)."""
    text = value.strip().replace(",", "")
    return text != "" and number_of(text) == number_of(text)


def data_in_header(header: Sequence[str], rows: Sequence[Sequence[str]]) -> str | None:
    """Why the would-be header row is a record like the rows under it, or None when it can be
    column names: a cell that is a label of the same set as most values under it, a number over
    numbers, or a date over dates. Names never look like that (``label`` over positive/negative,
    ``Rating`` over 1-5, ``positive`` over 1/0); a long sentence alone is no sign, since survey
    exports name columns by their questions."""
    for j, cell in enumerate(header):
        name = " ".join(cell.split()).lower()
        below = [" ".join(r[j].split()).lower() for r in rows if j < len(r) and r[j].strip()]
        if not name or not below:
            continue
        share = _LABEL_SHARE * len(below)
        labels = next((s for s in LABEL_SETS if name in s), None)
        if labels is not None and sum(v in labels for v in below) >= share:
            return f"{show(cell.strip())} is a label like the values under it"
        if is_number(name) and sum(is_number(v) for v in below) >= share:
            return f"{show(cell.strip())} is a number like the values under it"
        if (any(c.isdigit() for c in name) and not is_number(name) and _is_date(name)
                and looks_like_dates(below)):
            return f"{show(cell.strip())} is a date like the values under it"
    return None


def detect_columns(
    path: Path, first: pd.DataFrame, request: ColumnRequest, *, strict_labels: bool = False,
    headerless: bool = False,
) -> ColumnRoles:
    """Pick every role from the header and the first chunk (decided once for the whole file).

    A file without a header row (``headerless``) has no names to go by: its label and star
    rating columns are then found by their content alone."""
    columns = [str(c) for c in first.columns]
    first = first.iloc[:_SAMPLE_ROWS]
    given = {role: _given(path, columns, getattr(request, role), role)
             for role in ("text", "label", "id", "rating", "date", "group")}
    taken = {c for c in given.values() if c}
    notes: list[str] = []
    label = given["label"] or (None if request.label == "" else
                               _detect_label(first, columns, taken, notes, strict_labels))
    if label is None and headerless and request.label is None:
        label = _label_by_content(first, columns, taken, notes)
    taken.add(label)
    rating, scale = _rating(path, first, columns, request, given["rating"], taken, notes)
    if rating is None and headerless and request.rating is None:
        rating, scale = _rating_by_content(first, columns, taken, notes)
    taken.add(rating)
    ident = given["id"] or (None if request.id == "" else
                            next(iter(find_by_name(columns, ID_COLUMN_NAMES, taken)), None))
    taken.add(ident)
    date = given["date"] or (None if request.date == "" else
                             _detect_date(first, columns, taken, notes))
    taken.add(date)
    group = given["group"] or (None if request.group == "" else
                               _detect_group(first, columns, taken, notes))
    taken.add(group)
    text, guessed = given["text"], False
    if text is None:
        text, guessed = _detect_text(path, first, columns, taken - {None}, notes)
    if text in {label, rating, ident, date, group}:
        raise InputError(f"{path}: column '{text}' cannot be both the review text and another "
                         f"column's role; pass different column options")
    roles = ColumnRoles(text=text, text_guessed=guessed, label=label, id=ident, rating=rating,
                        rating_scale=scale, date=date, group=group, notes=notes)
    if label is None and rating is not None and request.label != "":  # "" means no labels
        roles.label_from_rating = True
        notes.append(f"labels from the star ratings in '{rating}' (out of {scale}): "
                     f"{'4-5' if scale == 5 else '7-10'} positive, "
                     f"{'1-2' if scale == 5 else '1-4'} negative, the middle neutral")
    return roles


def _given(path: Path, columns: Sequence[str], wanted: str | None, role: str) -> str | None:
    if not wanted:
        return None
    return resolve_column(path, columns, wanted, f"--{role}-column")


def _detect_label(first: pd.DataFrame, columns: Sequence[str], taken: set, notes: list[str],
                  strict: bool) -> str | None:
    for column in find_by_name(columns, LABEL_COLUMN_NAMES, taken):
        values = _values(first, column)
        if strict or label_share(values) >= _LABEL_SHARE:
            notes.append(f"label column '{column}' found by its name")
            return column
        odd = sorted({v.strip() for v in _filled(values) if label_share([v]) < 1})[:3]
        notes.append(f"column '{column}' is named like a label column but holds other values "
                     f"({', '.join(show(v, 20) for v in odd)}); not used as labels (pass "
                     f"--label-column to use it)")
    return None


def _counts_up(values: Sequence[str]) -> bool:
    """True for 0, 1, 2, ... or 1, 2, 3, ...: a row number, not labels or ratings."""
    numbers = [number_of(v) for v in values]
    return len(numbers) > 1 and all(b - a == 1 for a, b in itertools.pairwise(numbers))


def _label_by_content(first: pd.DataFrame, columns: Sequence[str], taken: set,
                      notes: list[str]) -> str | None:
    """A column of a file without a header whose values are nearly all labels, two kinds."""
    for column in columns:
        values = _filled(_values(first, column))
        if column in taken or not values or _counts_up(values):
            continue
        kinds = {label_of(v) for v in values} - {None, -1}
        if label_share(values) >= 0.9 and len(kinds) == 2:
            notes.append(f"label column '{column}' found by its content (the file has no "
                         f"header row)")
            return column
    return None


def _rating_by_content(first: pd.DataFrame, columns: Sequence[str], taken: set,
                       notes: list[str]) -> tuple[str | None, int | None]:
    for column in columns:
        values = _filled(_values(first, column))
        if column in taken or not values or _counts_up(values):
            continue
        scale = looks_like_ratings(values)
        if scale is not None:
            notes.append(f"star ratings found in '{column}' by their content (out of {scale}; "
                         f"the file has no header row)")
            return column, scale
    return None, None


def _rating(path: Path, first: pd.DataFrame, columns: Sequence[str], request: ColumnRequest,
            given: str | None, taken: set, notes: list[str]) -> tuple[str | None, int | None]:
    if given is not None:
        scale = looks_like_ratings(_values(first, given))
        if scale is None and _filled(_values(first, given)):
            raise InputError(f"{path}: column '{given}' (from --rating-column) does not hold star "
                             f"ratings from 1-5 or 1-10 (0 and halves allowed); pass another "
                             f"column")
        return given, scale or 5
    if request.rating == "":
        return None, None
    for column in find_by_name(columns, RATING_COLUMN_NAMES, taken):
        scale = looks_like_ratings(_values(first, column))
        if scale is not None:
            notes.append(f"star ratings found in '{column}' (out of {scale})")
            return column, scale
    return None, None


def looks_like_dates(values: Sequence[object]) -> bool:
    """True when most filled values read as dates (plain numbers never count)."""
    filled = [v for v in _filled(values) if not is_number(v)][:200]
    total = len(_filled(values)[:200])
    if not filled or len(filled) < _DATE_SHARE * total:
        return False
    return sum(_is_date(v) for v in filled) >= _DATE_SHARE * total


def _is_date(value: str) -> bool:
    try:
        return not pd.isna(pd.to_datetime(value, utc=True, format="mixed"))
    except (ValueError, TypeError, OverflowError):
        return False


def _detect_date(first: pd.DataFrame, columns: Sequence[str], taken: set,
                 notes: list[str]) -> str | None:
    for column in find_by_name(columns, DATE_COLUMN_NAMES, taken):
        if looks_like_dates(_values(first, column)):
            notes.append(f"date column '{column}' found by its name and content")
            return column
    return None


def looks_like_groups(values: Sequence[object]) -> bool:
    """True for short, repeated values (a product or branch name), not free text or ids."""
    filled = [v.strip() for v in _filled(values)]
    if len(filled) < 2:
        return False
    distinct = len(set(filled))
    mean_words = sum(len(v.split()) for v in filled) / len(filled)
    mean_len = sum(len(v) for v in filled) / len(filled)
    return distinct <= max(1, len(filled) // 2) and mean_words <= 8 and mean_len <= 80


def _detect_group(first: pd.DataFrame, columns: Sequence[str], taken: set,
                  notes: list[str]) -> str | None:
    for column in find_by_name(columns, GROUP_COLUMN_NAMES, taken):
        if looks_like_groups(_values(first, column)):
            notes.append(f"group column '{column}' found by its name and content")
            return column
    return None


def _mostly_numbers(values: Sequence[object]) -> bool:
    filled = _filled(values)
    return bool(filled) and sum(is_number(v) for v in filled) > 0.5 * len(filled)


def _detect_text(path: Path, first: pd.DataFrame, columns: Sequence[str], taken: set,
                 notes: list[str]) -> tuple[str, bool]:
    """(column, guessed): a text-like name whose cells are not numbers, else the content guess."""
    for column in find_by_name(columns, TEXT_COLUMN_NAMES, taken):
        if _mostly_numbers(_values(first, column)):
            notes.append(f"column '{column}' is named like review text but holds numbers; "
                         f"not used as the text")
            continue
        return column, False
    text = guess_text_column(path, first, [c for c in columns if c not in taken])
    notes.append(f"text column '{text}' chosen by its content")
    return text, True


def guess_text_column(path: Path, first: pd.DataFrame, candidates: Sequence[str]) -> str:
    """The one column that clearly holds free text (long, wordy, not numeric) in the first rows."""
    scored: list[tuple[float, str]] = []
    for column in candidates:
        values = _filled(_values(first, column))
        if not values or sum(is_number(v) for v in values) > 0.2 * len(values):
            continue
        mean_len = sum(len(v) for v in values) / len(values)
        mean_words = sum(len(v.split()) for v in values) / len(values)
        if len(first.columns) == 1 or (mean_words >= 2.0 and mean_len >= 8.0):
            scored.append((mean_len, column))
    scored.sort(key=lambda item: -item[0])
    if len(scored) == 1 or (len(scored) > 1 and scored[0][0] >= 1.5 * scored[1][0]):
        return scored[0][1]
    if len(scored) > 1:
        raise ColumnError(
            f"{path}: columns {scored[0][1]!r} and {scored[1][1]!r} both look like review text; "
            f"pass --text-column NAME"
        )
    raise ColumnError(
        f"{path}: cannot tell which column holds the review text (columns: "
        f"{column_list(list(first.columns))}); pass --text-column NAME"
    )

