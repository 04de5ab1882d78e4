"""Column roles: star ratings as labels, label names, date and group columns (issue 12, input side)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from review_scorer.errors import InputError
from review_scorer.io import load_labeled, open_reviews
from review_scorer.io.labels import label_of, looks_like_ratings, rating_labels

TEXTS = ["Loved every minute", "Dreadful and dull", "It was fine I guess", "A real treat",
         "Waste of money", "Pretty good overall", "Not great not awful", "Brilliant fun"]


def read_all(path: Path, **kwargs):
    review_file = open_reviews(path, **kwargs)
    chunks = list(review_file.chunks())
    return review_file, chunks


def write(path: Path, header: str, rows: list[str]) -> Path:
    path.write_text(header + "\n" + "\n".join(rows) + "\n")
    return path


@pytest.mark.parametrize(("name", "values", "scale", "labels", "neutral"), [
    ("stars", ["5", "1", "3", "4", "2", "4.5", "3", "5"], 5,
     [1, 0, -1, 1, 0, 1, -1, 1], [0, 0, 1, 0, 0, 0, 1, 0]),
    ("Rating", ["10", "1", "5", "7", "4", "8", "6", "9"], 10,
     [1, 0, -1, 1, 0, 1, -1, 1], [0, 0, 1, 0, 0, 0, 1, 0]),
    ("review_score", ["0", "5", "2.5", "4", "", "3.5", "2", "1"], 5,
     [0, 1, -1, 1, -1, -1, 0, 0], [0, 0, 1, 0, 0, 1, 0, 0]),
])
def test_io_rating_column_counts_as_labels(tmp_path, name, values, scale, labels, neutral):
    path = write(tmp_path / "r.csv", f"review,{name}", [f"{t},{v}" for t, v in zip(TEXTS, values)])
    review_file, chunks = read_all(path, chunk_rows=3)
    info = review_file.info
    assert (info.rating_column, info.rating_scale, info.label_column) == (name, scale, None)
    assert info.label_from_rating
    assert [int(v) for c in chunks for v in c.labels] == labels
    assert [int(v) for c in chunks for v in c.neutral] == neutral
    ratings = np.concatenate([c.ratings for c in chunks])
    assert ratings.dtype == np.float64
    expected = [float(v) if v else np.nan for v in values]
    assert np.allclose(ratings, expected, equal_nan=True)
    assert any("labels from the star ratings" in n for n in info.notes)
    if sum(neutral):
        rows = f"{sum(neutral)} row{'s' if sum(neutral) > 1 else ''}"
        assert any(f"{rows} with a middle rating" in n for n in review_file.notes)


def test_io_rating_with_a_label_column_keeps_the_labels(tmp_path):
    path = write(tmp_path / "both.csv", "review,stars,sentiment",
                 [f"{t},{1 + i % 5},{'pos' if i % 2 else 'neg'}" for i, t in enumerate(TEXTS)])
    review_file, chunks = read_all(path)
    info = review_file.info
    assert info.label_column == "sentiment" and info.rating_column == "stars"
    assert not info.label_from_rating and chunks[0].neutral is None
    assert chunks[0].labels.tolist() == [0, 1] * 4
    assert chunks[0].ratings.tolist() == [1.0 + i % 5 for i in range(8)]


def test_io_no_labels_also_means_no_labels_from_ratings(tmp_path):
    path = write(tmp_path / "nolab.csv", "review,stars", [f"{t},{1 + i % 5}" for i, t in enumerate(TEXTS)])
    review_file, chunks = read_all(path, label_column="")
    assert review_file.info.rating_column == "stars" and not review_file.info.label_from_rating
    assert chunks[0].labels is None and chunks[0].ratings.tolist()[:2] == [1.0, 2.0]


def test_io_score_column_of_probabilities_is_not_a_rating(tmp_path):
    path = write(tmp_path / "p.csv", "review,score",
                 [f"{t},{v}" for t, v in zip(TEXTS, [0.9, 0.1, 0.5, 0.77, 0.2, 1, 0, 0.6])])
    info = open_reviews(path).info
    assert info.rating_column is None and info.label_column is None


def test_io_given_rating_column_and_bad_ratings(tmp_path):
    path = write(tmp_path / "g.csv", "review,points",
                 [f"{t},{v}" for t, v in zip(TEXTS, ["9", "2", "7", "11", "x", "3", "8", "6"])])
    with pytest.raises(InputError, match="does not hold star ratings"):
        open_reviews(path, rating_column="points")
    path = write(tmp_path / "g.csv", "review,points",
                 [f"{t},{v}" for t, v in zip(TEXTS, ["9", "2", "7", "10", "1", "3", "8", "6"])]
                 + ["late one,42"])
    review_file, chunks = read_all(path, rating_column="points", chunk_rows=4)
    assert review_file.info.rating_scale == 10
    ratings = np.concatenate([c.ratings for c in chunks])
    assert np.isnan(ratings[-1]) and int(np.concatenate([c.labels for c in chunks])[-1]) == -1
    assert any("'points': 1 row holds values that are not ratings out of 10 (row 9)" in n
               for n in review_file.notes)


@pytest.mark.parametrize(("name", "values"), [
    ("Liked", ["1", "0"]), ("recommended", ["yes", "no"]), ("thumbs_up", ["👍", "👎"]),
    ("would_recommend", ["Y", "N"]), ("is_positive", ["true", "false"]),
    ("thumbsUp", ["thumbs up", "thumbs down"]), ("label", ["like", "dislike"]),
])
def test_io_label_names_and_values(tmp_path, name, values):
    path = write(tmp_path / "l.csv", f"review,{name}", [f"{TEXTS[0]},{values[0]}",
                                                       f"{TEXTS[1]},{values[1]}"])
    review_file, chunks = read_all(path)
    assert review_file.info.label_column == name and chunks[0].labels.tolist() == [1, 0]


def test_io_label_values():
    assert [label_of(v) for v in ("👍\ufe0f", " Thumbs  Down ", "maybe", None, "")] == [
        1, 0, None, -1, -1]
    assert looks_like_ratings(["0.2", "0.9"]) is None and looks_like_ratings(["1", "4.5"]) == 5
    assert looks_like_ratings(["1", "3.3"]) is None and looks_like_ratings(["6", "10"]) == 10
    labels, neutral = rating_labels(np.array([4.0, 2.0, 3.0, np.nan, 7.0]), 5)
    assert labels.tolist() == [1, 0, -1, -1, -1] and neutral.tolist() == [0, 0, 1, 0, 0]


def test_io_date_and_group_columns(tmp_path):
    rows = [f"{t},2024-03-{1 + i:02d},{['Lamp', 'Desk'][i % 2]},{'City' if i < 4 else 'Port'}"
            for i, t in enumerate(TEXTS)]
    path = write(tmp_path / "dg.csv", "review,created_at,product,title", rows)
    info = open_reviews(path).info
    assert info.date_column == "created_at" and info.group_column == "product"
    assert any("date column 'created_at'" in n for n in info.notes)
    info = open_reviews(path, date_column="", group_column="title").info
    assert info.date_column is None and info.group_column == "title"


def test_io_date_and_group_need_fitting_content(tmp_path):
    rows = [f"{t},{i},{t} again but longer" for i, t in enumerate(TEXTS)]
    path = write(tmp_path / "no.csv", "review,date,product", rows)
    info = open_reviews(path).info
    assert info.date_column is None and info.group_column is None  # numbers; all distinct
    rows = [f"{t},{d},Store {i % 2}" for i, (t, d) in enumerate(zip(TEXTS, [
        "03/01/2024", "2024-03-02 10:00", "March 3 2024", "2024-03-04T08:15:00Z", "not a date",
        "2024-03-06", "5 Mar 2024", "2024-03-08"]))]
    path = write(tmp_path / "mixed.csv", "review,posted,store", rows)
    info = open_reviews(path).info
    assert info.date_column == "posted" and info.group_column == "store"


def test_io_sample_unlabeled_csv_has_a_date_column():
    info = open_reviews(Path(__file__).resolve().parent.parent / "sample_data/unlabeled.csv").info
    assert info.date_column == "date" and info.rating_column is None


def test_io_labeled_training_file_from_star_ratings(tmp_path):
    path = write(tmp_path / "train.csv", "review,stars",
                 [f"{t},{v}" for t, v in zip(TEXTS, [5, 1, 3, 4, 2, 5, 3, 1])])
    reviews = load_labeled(path)
    assert reviews.labels.tolist() == [1, 0, 1, 0, 1, 0]
    assert reviews.skipped_neutral == 2 and "ratings 'stars'" in reviews.source
