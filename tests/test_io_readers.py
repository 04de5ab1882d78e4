"""Tests for review_scorer.io: aclImdb folders and archives, labeled files, review files."""

from __future__ import annotations

import csv
import io
import os
import tarfile
from pathlib import Path

import numpy as np
import openpyxl
import pytest

from review_scorer.errors import InputError
from review_scorer.io import LabeledReviews, load_labeled, open_reviews, training_data
from tests.conftest import read_reviews

SAMPLE_DATA = Path(__file__).resolve().parent.parent / "sample_data"

# (split, label dir, file name, text) of a tiny aclImdb tree, deliberately listed out of order.
ACL_FILES = [
    ("train", "pos", "3_8.txt", "train pos three: a lovely film"),
    ("train", "pos", "10_9.txt", "train pos ten: superb acting"),
    ("train", "pos", "1_7.txt", "train pos one: good fun"),
    ("train", "neg", "2_1.txt", "train neg two: awful plot"),
    ("train", "neg", "0_4.txt", "train neg zero: rather dull"),
    ("test", "pos", "0_10.txt", "test pos zero: a masterpiece"),
    ("test", "neg", "5_2.txt", "test neg five: boring"),
    ("test", "neg", "4_3.txt", "test neg four: weak <br /><br />and slow"),
]
UNSUP_TEXT = "unsup: nobody knows what this one thinks"
# Expected order: train before test, neg before pos, numeric id within a folder.
ACL_EXPECTED = [
    ("train", 0, 4, "train neg zero: rather dull"),
    ("train", 0, 1, "train neg two: awful plot"),
    ("train", 1, 7, "train pos one: good fun"),
    ("train", 1, 8, "train pos three: a lovely film"),
    ("train", 1, 9, "train pos ten: superb acting"),
    ("test", 0, 3, "test neg four: weak <br /><br />and slow"),
    ("test", 0, 2, "test neg five: boring"),
    ("test", 1, 10, "test pos zero: a masterpiece"),
]


def _acl_members() -> list[tuple[str, bytes]]:
    members = [(f"aclImdb/{s}/{lab}/{name}", text.encode()) for s, lab, name, text in ACL_FILES]
    members += [
        ("aclImdb/train/unsup/0_0.txt", UNSUP_TEXT.encode()),
        ("aclImdb/train/unsup/1_0.txt", b"unsup: another unlabeled one"),
        ("aclImdb/README", b"readme"),
        ("aclImdb/imdb.vocab", b"the\nand\n"),
    ]
    return members


def make_acl_dir(parent: Path) -> Path:
    """Write the tiny tree under parent/aclImdb and return that folder."""
    for name, raw in _acl_members():
        path = parent / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(raw)
    return parent / "aclImdb"


def _add(tar: tarfile.TarFile, name: str, raw: bytes = b"", **attrs: object) -> None:
    info = tarfile.TarInfo(name)
    info.size = len(raw)
    for key, value in attrs.items():
        setattr(info, key, value)
    tar.addfile(info, io.BytesIO(raw) if raw else None)


def make_acl_archive(path: Path, *, extra: list[tuple[str, bytes, dict]] | None = None) -> Path:
    """Write the tiny tree as a tar.gz, members in reverse order, plus any extra members."""
    with tarfile.open(path, "w:gz") as tar:
        for name, raw in reversed(_acl_members()):
            _add(tar, name, raw)
        for name, raw, attrs in extra or []:
            _add(tar, name, raw, **attrs)
    return path


def write_xlsx(path: Path, sheets: dict[str, list[list[object]]]) -> Path:
    workbook = openpyxl.Workbook()
    workbook.remove(workbook.active)
    for title, rows in sheets.items():
        sheet = workbook.create_sheet(title)
        for row in rows:
            sheet.append(row)
    workbook.save(path)
    return path


def read_all(path: Path, **kwargs):
    review_file, chunks, texts, rows = read_reviews(path, **kwargs)
    return review_file.info, chunks, texts, rows


def _assert_acl(reviews: LabeledReviews) -> None:
    assert len(reviews) == len(ACL_EXPECTED)
    got = list(zip(reviews.splits.tolist(), reviews.labels.tolist(), reviews.texts, strict=True))
    assert got == [(split, label, text) for split, label, _, text in ACL_EXPECTED]
    assert reviews.labels.dtype == np.int8
    assert not any("unsup" in t for t in reviews.texts)
    # Unlabeled reviews are kept apart (for word vectors), in file-id order, never as rows.
    assert reviews.unlabeled == [UNSUP_TEXT, "unsup: another unlabeled one"]
    assert reviews.split("train").unlabeled == reviews.unlabeled


# ---- aclImdb folders and archives ----------------------------------------------------------


def test_data_aclimdb_dir_reads_labeled_rows_in_order(tmp_path):
    root = make_acl_dir(tmp_path)
    reviews = load_labeled(root)
    _assert_acl(reviews)
    assert "aclImdb folder" in reviews.source
    # The parent folder (holding aclImdb/) reads the same rows with the same fingerprint.
    assert load_labeled(tmp_path).fingerprint == reviews.fingerprint
    assert len(reviews.fingerprint) == 64


def test_data_aclimdb_archive_matches_folder_regardless_of_member_order(tmp_path):
    folder = load_labeled(make_acl_dir(tmp_path / "extracted"))
    archive = load_labeled(make_acl_archive(tmp_path / "mini.tar.gz"))
    _assert_acl(archive)
    assert archive.fingerprint == folder.fingerprint
    assert "aclImdb archive" in archive.source and "mini.tar.gz" in archive.source
    assert not (tmp_path / "aclImdb").exists()  # read in place, nothing extracted


def test_data_aclimdb_invalid_utf8_is_replaced_not_fatal(tmp_path):
    root = make_acl_dir(tmp_path)
    (root / "train" / "pos" / "1_7.txt").write_bytes(b"caf\xc3\xa9 \xff good")
    reviews = load_labeled(root)
    assert "café \ufffd good" in reviews.texts


def test_data_aclimdb_archive_skips_unsafe_members(tmp_path, monkeypatch):
    work = tmp_path / "work"
    work.mkdir()
    monkeypatch.chdir(work)
    evil = b"evil: should never be read"
    extra = [
        ("../evil/train/pos/90_9.txt", evil, {}),
        ("aclImdb/../../evil/train/neg/91_1.txt", evil, {}),
        ("/tmp/evil/train/pos/92_9.txt", evil, {}),
        ("aclImdb/train/pos/93_9.txt", b"", {"type": tarfile.SYMTYPE, "linkname": "/etc/passwd"}),
        ("aclImdb/train/neg/94_1.txt", b"",
         {"type": tarfile.LNKTYPE, "linkname": "aclImdb/train/neg/2_1.txt"}),
        ("aclImdb/test/pos/95_9.txt", b"", {"type": tarfile.CHRTYPE, "devmajor": 1, "devminor": 3}),
        ("aclImdb/test/neg/96_1.txt", b"", {"type": tarfile.FIFOTYPE}),
    ]
    archive = make_acl_archive(tmp_path / "evil.tar.gz", extra=extra)
    reviews = load_labeled(archive)
    _assert_acl(reviews)
    assert list(work.iterdir()) == []
    assert sorted(p.name for p in tmp_path.iterdir()) == ["evil.tar.gz", "work"]


@pytest.mark.parametrize("cut", ["truncated", "garbage"])
def test_data_aclimdb_corrupt_archive_is_input_error(tmp_path, cut):
    good = make_acl_archive(tmp_path / "good.tar.gz").read_bytes()
    bad = tmp_path / "bad.tar.gz"
    bad.write_bytes(good[: len(good) // 2] if cut == "truncated" else b"\x1f\x8b" + b"junk" * 50)
    with pytest.raises(InputError, match=r"bad\.tar\.gz") as err:
        load_labeled(bad)
    assert "corrupt or truncated" in str(err.value) and "\n" not in str(err.value)


def test_data_aclimdb_without_labeled_reviews_explains_layout(tmp_path):
    (tmp_path / "empty" / "train" / "unsup").mkdir(parents=True)
    (tmp_path / "empty" / "train" / "unsup" / "0_0.txt").write_text(UNSUP_TEXT)
    with pytest.raises(InputError, match="aclImdb layout"):
        load_labeled(tmp_path / "empty")
    archive = tmp_path / "readme-only.tar.gz"
    with tarfile.open(archive, "w:gz") as tar:
        _add(tar, "aclImdb/README", b"hello")
    with pytest.raises(InputError, match="aclImdb layout"):
        load_labeled(archive)


def test_data_aclimdb_archive_with_two_trees_is_refused(tmp_path):
    archive = make_acl_archive(tmp_path / "two.tar.gz",
                               extra=[("backup/train/pos/0_9.txt", b"copy", {})])
    with pytest.raises(InputError, match="more than one aclImdb tree"):
        load_labeled(archive)


def test_data_load_labeled_imdb_keyword_and_url_use_fetch_archive(tmp_path, monkeypatch):
    archive = make_acl_archive(tmp_path / "aclImdb_v1.tar.gz")
    fetched: list[tuple[str, Path | None]] = []

    def fake_fetch(url, *, cache_dir=None, progress=None):
        fetched.append((url, cache_dir))
        return archive

    monkeypatch.setattr(training_data, "fetch_archive", fake_fetch)
    _assert_acl(load_labeled("IMDB", cache_dir=tmp_path / "cache"))
    _assert_acl(load_labeled("https://example.org/mirror/aclImdb_v1.tar.gz"))
    assert fetched == [(training_data.IMDB_URL, tmp_path / "cache"),
                       ("https://example.org/mirror/aclImdb_v1.tar.gz", None)]


def test_data_load_labeled_missing_or_unsupported_source(tmp_path):
    with pytest.raises(InputError, match="no such file"):
        load_labeled(tmp_path / "nope")
    odd = tmp_path / "reviews.xml"
    odd.write_text("<reviews/>")
    with pytest.raises(InputError, match="unsupported"):
        load_labeled(odd)


# ---- labeled files -------------------------------------------------------------------------


LABEL_SPELLINGS = [
    ("pos", 1), ("neg", 0), ("Positive", 1), ("NEGATIVE", 0), ("1", 1), ("0", 0),
    ("TRUE", 1), ("false", 0), ("1.0", 1), ("0.0", 0), (" pos ", 1),
]  # fmt: skip


def test_data_labeled_csv_accepts_every_label_spelling(tmp_path):
    path = tmp_path / "labeled.csv"
    lines = ["text,label"] + [f"review number {i} is here,{v}" for i, (v, _) in
                              enumerate(LABEL_SPELLINGS)]
    path.write_text("\n".join(lines) + "\n")
    reviews = load_labeled(path)
    assert reviews.labels.tolist() == [want for _, want in LABEL_SPELLINGS]
    assert reviews.splits.tolist() == ["train"] * len(LABEL_SPELLINGS)
    assert "labeled.csv" in reviews.source and reviews.skipped_empty == 0


def test_data_labeled_tsv_and_xlsx_give_same_rows(tmp_path):
    rows = [("Great fun, loved it", "positive"), ("Dull; boring", "negative"),
            ("", "positive"), ("Fine film", "pos")]
    tsv = tmp_path / "labeled.tsv"
    tsv.write_text("sentiment\treview\n" + "".join(f"{lab}\t{t}\n" for t, lab in rows))
    xlsx = write_xlsx(tmp_path / "labeled.xlsx",
                      {"data": [["sentiment", "review"]] + [[lab, t or None] for t, lab in rows]})
    from_tsv, from_xlsx = load_labeled(tsv), load_labeled(xlsx)
    assert from_tsv.texts == ["Great fun, loved it", "Dull; boring", "Fine film"]
    assert from_tsv.labels.tolist() == [1, 0, 1]
    assert from_tsv.skipped_empty == 1
    assert from_xlsx.texts == from_tsv.texts and from_xlsx.fingerprint == from_tsv.fingerprint
    assert from_xlsx.skipped_empty == 1


def test_data_labeled_xlsx_boolean_and_number_cells(tmp_path):
    xlsx = write_xlsx(tmp_path / "b.xlsx", {"s": [["comment", "target"], ["good film", True],
                                                  ["bad film", False], ["ok film", 1],
                                                  ["meh film", 0.0]]})
    assert load_labeled(xlsx).labels.tolist() == [1, 0, 1, 0]


def test_data_labeled_bad_label_names_file_row_and_value(tmp_path):
    path = tmp_path / "bad.csv"
    path.write_text("review,sentiment\nnice one,pos\nawful one,neg\nunsure,maybe\n")
    with pytest.raises(InputError) as err:
        load_labeled(path)
    message = str(err.value)
    assert "bad.csv" in message and "row 3" in message and "'maybe'" in message
    assert "pos/neg" in message and "\n" not in message


def test_data_labeled_empty_label_names_row(tmp_path):
    path = tmp_path / "gap.csv"
    path.write_text("review,label\nnice one,1\nno label here,\n")
    with pytest.raises(InputError, match=r"row 2.*empty"):
        load_labeled(path)


def test_data_labeled_split_column(tmp_path):
    path = tmp_path / "split.csv"
    path.write_text("review,label,split\na good film,1,Train\na bad film,0,TEST\nfine,1,train\n")
    reviews = load_labeled(path)
    assert reviews.splits.tolist() == ["train", "test", "train"]
    assert len(reviews.split("test")) == 1 and reviews.split("test").texts == ["a bad film"]
    path.write_text("review,label,part\na good film,1,train\na bad film,0,dev\n")
    assert load_labeled(path).splits.tolist() == ["train", "train"]  # 'part' is not a split col
    with pytest.raises(InputError, match=r"row 2.*'dev'"):
        load_labeled(path, split_column="part")


def test_data_labeled_given_and_missing_label_column(tmp_path):
    path = tmp_path / "custom.csv"
    path.write_text("words,verdict,other\nlovely little film,pos,x\nutter rubbish,neg,y\n")
    with pytest.raises(InputError, match="--label-column"):
        load_labeled(path)
    reviews = load_labeled(path, label_column="Verdict", text_column="words")
    assert reviews.labels.tolist() == [1, 0]
    with pytest.raises(InputError, match="'words', 'verdict', 'other'"):
        load_labeled(path, label_column="stars")


def test_data_labeled_split_recomputes_fingerprint():
    reviews = LabeledReviews.from_lists(["a", "b", "c", "d"], [1, 0, 1, 0],
                                        ["train", "train", "test", "test"], source="mem")
    part = reviews.split("test")
    assert part.texts == ["c", "d"] and part.labels.tolist() == [1, 0]
    assert part.source == "mem" and part.fingerprint != reviews.fingerprint
    assert part.fingerprint == LabeledReviews.from_lists(["c", "d"], [1, 0],
                                                         ["test", "test"]).fingerprint
    assert reviews.split("train").texts == ["a", "b"]
    flipped = LabeledReviews.from_lists(["a", "b", "c", "d"], [0, 0, 1, 0],
                                        ["train", "train", "test", "test"])
    assert flipped.fingerprint != reviews.fingerprint  # labels are part of the fingerprint
    with pytest.raises(ValueError):
        reviews.split("validation")


# ---- review files: delimiters, encodings, quoting -------------------------------------------


@pytest.mark.parametrize("delimiter", [",", ";", "\t", "|"])
def test_data_reviews_delimiter_is_detected(tmp_path, delimiter):
    texts = ["Great, fun; a real | treat", 'She said "wow", twice', "short"]
    path = tmp_path / "reviews.csv"
    with open(path, "w", newline="", encoding="utf-8") as fh:
        writer = csv.writer(fh, delimiter=delimiter, lineterminator="\n")
        writer.writerow(["id", "review", "sentiment"])
        for i, text in enumerate(texts, 1):
            writer.writerow([i, text, "pos" if i % 2 else "neg"])
    info, chunks, got, rows = read_all(path)
    assert info.delimiter == delimiter and info.columns == ("id", "review", "sentiment")
    assert got == texts and rows == [1, 2, 3]
    assert info.label_column == "sentiment" and info.id_column == "id"
    assert chunks[0].labels.tolist() == [1, 0, 1]


def test_data_reviews_tsv_extension_means_tab(tmp_path):
    path = tmp_path / "reviews.tsv"
    path.write_text("comment\tstars\nyes, yes, yes, a, b, c\t5\nno, no\t1\n")
    info, _, texts, _ = read_all(path)
    assert info.delimiter == "\t" and texts == ["yes, yes, yes, a, b, c", "no, no"]


def test_data_reviews_single_column_with_commas_stays_one_column(tmp_path):
    path = tmp_path / "one.txt"
    path.write_text("review\nI liked it, a lot, really\nNo, no, no\n")
    info, _, texts, _ = read_all(path)
    assert info.columns == ("review",) and texts == ["I liked it, a lot, really", "No, no, no"]


def test_data_reviews_utf8_bom_not_in_column_name(tmp_path):
    path = tmp_path / "bom.csv"
    path.write_bytes("\ufeffid,review\n1,Très bien\n".encode())
    info, _, texts, _ = read_all(path)
    assert info.columns == ("id", "review") and info.id_column == "id"
    assert info.encoding == "utf-8-sig" and not info.encoding_fallback
    assert texts == ["Très bien"]


def test_data_reviews_cp1252_fallback_is_flagged_and_decoded(tmp_path):
    path = tmp_path / "legacy.csv"
    path.write_bytes(b"id,review\n1,Le caf\xe9 sc\xe8ne was \x93great\x94 \x80 well spent\n")
    info, _, texts, _ = read_all(path)
    assert info.encoding == "cp1252" and info.encoding_fallback
    assert texts == ["Le café scène was \u201cgreat\u201d \u20ac well spent"]


def test_data_reviews_latin1_when_not_cp1252(tmp_path):
    path = tmp_path / "latin.csv"
    path.write_bytes(b"review\nna\xefve \x81 text\n")
    info, _, texts, _ = read_all(path)
    assert info.encoding == "latin-1" and info.encoding_fallback
    assert texts == ["naïve \x81 text"]


def test_data_reviews_utf8_is_not_a_fallback(tmp_path):
    path = tmp_path / "u.csv"
    path.write_text("review\nnaïve café ☕\n", encoding="utf-8")
    info, _, texts, _ = read_all(path)
    assert info.encoding == "utf-8" and not info.encoding_fallback and texts == ["naïve café ☕"]


def test_data_reviews_utf16_with_bom(tmp_path):
    path = tmp_path / "excel-unicode.txt"
    path.write_bytes("review\tstars\ncafé ok\t4\n".encode("utf-16"))
    info, _, texts, _ = read_all(path)
    assert info.encoding == "utf-16" and info.delimiter == "\t" and texts == ["café ok"]


@pytest.mark.parametrize("first", ["id", "stars", "product"])
def test_data_reviews_quoted_multiline_fields_keep_row_numbers(tmp_path, first):
    # The first column is a whole number, a decimal or a short code: the multi-line fields'
    # later lines ("second line, with comma") split into two fields like a record would.
    keys = {"id": ["1", "2", "3", "4"], "stars": ["4.5", "2", "3.5", "1"],
            "product": ["mug", "lamp", "desk", "mug"]}[first]
    path = tmp_path / "multi.csv"
    path.write_text(f"{first},review\n" + "".join(f"{keys[i % 4]},filler {i}\n" for i in range(28))
                    + f'{keys[0]},"first line\nsecond line, with comma"\n{keys[1]},plain\n'
                    f'{keys[2]},"para one\n\npara, ""two"""\n{keys[3]},last\n')
    _, chunks, texts, rows = read_all(path, chunk_rows=10)
    assert texts[28:] == ["first line\nsecond line, with comma", "plain",
                          'para one\n\npara, "two"', "last"]
    assert rows == list(range(1, 33))
    assert chunks[-1].frame[first].tolist() == keys[2:]


# ---- review files: columns ------------------------------------------------------------------


@pytest.mark.parametrize("name", ["review", "Review Text", "COMMENT", "body", "review_text"])
def test_data_reviews_text_column_found_by_name(tmp_path, name):
    path = tmp_path / "named.csv"
    path.write_text(f"notes,{name}\nthis column is long and wordy too,ok\n")
    info, _, texts, _ = read_all(path)
    assert info.text_column == name and not info.text_column_guessed and texts == ["ok"]


def test_data_reviews_text_column_guessed_by_content(tmp_path):
    path = tmp_path / "guess.csv"
    path.write_text("ref,words,when,score\n"
                    "A1,An absolutely stunning film with a great cast,2024-01-01,4.5\n"
                    "A2,Not for me: too slow and far too long,2024-01-02,2\n")
    info, _, texts, _ = read_all(path)
    assert info.text_column == "words" and info.text_column_guessed
    assert texts[1] == "Not for me: too slow and far too long"


def test_data_reviews_text_column_given_overrides_name(tmp_path):
    path = tmp_path / "given.csv"
    path.write_text("review,summary\nthe name says review,but we want this one\n")
    info, _, texts, _ = read_all(path, text_column="SUMMARY")
    assert info.text_column == "summary" and texts == ["but we want this one"]


def test_data_reviews_unknown_or_missing_columns_list_the_columns(tmp_path):
    path = tmp_path / "cols.csv"
    path.write_text("a,b\nsome longer text here,x\n")
    for flag in ("text_column", "label_column", "id_column"):
        with pytest.raises(InputError) as err:
            open_reviews(path, **{flag: "nope"})
        assert "'nope'" in str(err.value) and "'a', 'b'" in str(err.value)
    numbers = tmp_path / "numbers.csv"
    numbers.write_text("x,y\n1,2\n3,4\n")
    with pytest.raises(InputError, match="--text-column") as err:
        open_reviews(numbers)
    assert "'x', 'y'" in str(err.value)


def test_data_reviews_two_similar_text_columns_are_ambiguous(tmp_path):
    path = tmp_path / "pros_cons.csv"
    path.write_text("pros,cons\ngreat acting and a fine score,far too long and a bit slow\n")
    with pytest.raises(InputError, match=r"'pros' and 'cons'.*--text-column"):
        open_reviews(path)


def test_data_reviews_label_and_id_detection(tmp_path):
    path = tmp_path / "lab.csv"
    path.write_text("Review_ID,Polarity,review\n7,positive,good\n8,,unlabeled row\n9,0,bad\n")
    info, chunks, _, _ = read_all(path)
    assert info.id_column == "Review_ID" and info.label_column == "Polarity"
    assert chunks[0].labels.tolist() == [1, -1, 0]
    assert chunks[0].labels.dtype == np.int8


def test_data_reviews_auto_label_column_without_labels_is_ignored(tmp_path):
    path = tmp_path / "cls.csv"
    path.write_text("class,review\nA,fine\nB,bad\n")
    info, chunks, _, _ = read_all(path)
    assert info.label_column is None and chunks[0].labels is None


def test_data_reviews_bad_label_in_later_chunk_is_per_row_with_note(tmp_path):
    # Issue 9 #12: a value that is not a label at row 7 (after the first chunk) used to fail
    # the whole file after scoring; now the row gets -1, is flagged, and a note counts it.
    path = tmp_path / "late.csv"
    path.write_text("review,label\n" + "fine,pos\n" * 6 + "odd,meh\n")
    review_file = open_reviews(path, chunk_rows=3)
    assert review_file.info.label_column == "label"
    chunks = list(review_file.chunks())
    assert [int(v) for c in chunks for v in c.labels] == [1] * 6 + [-1]
    assert [bool(v) for c in chunks for v in c.unknown_label] == [False] * 6 + [True]
    assert any("'label': 1 row holds values that are not labels (row 7)" in n
               for n in review_file.notes)


def test_data_reviews_duplicate_header_names_made_unique(tmp_path):
    path = tmp_path / "dup.csv"
    path.write_text("review,review,x\nfirst text,second text,1\n")
    info, chunks, texts, _ = read_all(path)
    assert info.columns == ("review", "review.1", "x") and texts == ["first text"]
    assert chunks[0].frame["review.1"].tolist() == ["second text"]


# ---- review files: rows and chunks ---------------------------------------------------------


def test_data_reviews_empty_texts_are_kept_with_row_numbers(tmp_path):
    path = tmp_path / "gaps.csv"
    path.write_text('id,review\n1,one\n2,\n3,"   "\n\n5,five\n\n\n')
    _, chunks, texts, rows = read_all(path)
    assert texts == ["one", "", "   ", "", "five"]  # a blank line inside the file is a row
    assert rows == [1, 2, 3, 4, 5]  # trailing blank lines are not
    frame = chunks[0].frame
    assert frame["id"].tolist() == ["1", "2", "3", "", "5"]
    assert all(isinstance(v, str) for v in frame.to_numpy().ravel())


def test_data_reviews_chunking_keeps_order(tmp_path):
    path = tmp_path / "twelve.csv"
    path.write_text("id,review\n" + "".join(f"{i},review number {i}\n" for i in range(1, 13)))
    review_file = open_reviews(path, chunk_rows=5)
    chunks = list(review_file.chunks())
    assert [len(c) for c in chunks] == [5, 5, 2]
    assert [int(r) for c in chunks for r in c.rows] == list(range(1, 13))
    assert [t for c in chunks for t in c.texts] == [f"review number {i}" for i in range(1, 13)]
    assert chunks[1].rows.dtype == np.int64 and list(chunks[2].frame.index) == [0, 1]
    # The file is read once: a second pass is refused instead of silently yielding nothing.
    with pytest.raises(RuntimeError, match="once"):
        review_file.chunks()


def test_data_reviews_header_only_file_has_no_rows(tmp_path):
    path = tmp_path / "header.csv"
    path.write_text("id,review\n")
    info, chunks, _, _ = read_all(path)
    assert info.columns == ("id", "review") and chunks == []


def test_data_reviews_malformed_csv_is_input_error(tmp_path):
    path = tmp_path / "broken.csv"
    path.write_text('id,review\n1,fine\n2,"never closed\n3,x\n' + "".join(
        f"{i},row\n" for i in range(4, 10)))
    with pytest.raises(InputError, match=r"broken\.csv: row 2 \(line 3\) opens a quote that is "
                                         r"never closed: the file ends inside it"):
        read_all(path, chunk_rows=2)
    extra = tmp_path / "extra.csv"
    extra.write_text('id,review\n1,"fine\nfilm"\n2,ok,surprise\n3,ok\n')
    with pytest.raises(InputError, match=r"row 2 \(line 4\) has 3 fields but the header has 2"):
        read_all(extra)
    first = tmp_path / "first.csv"  # pandas reports this one differently: no line of its own
    first.write_text("review,stars\nfine,4,surprise\nok,3\n")
    with pytest.raises(InputError, match=r"row 1 \(line 2\) has 3 fields but the header has 2"):
        read_all(first)


# ---- review files: xlsx ---------------------------------------------------------------------


def test_data_reviews_xlsx_sheets_values_and_chunks(tmp_path):
    rows = [["ID", "Comment", "Sentiment", "Score"]]
    rows += [[i, f"comment number {i}", "pos" if i % 2 else "neg", i / 2] for i in range(1, 8)]
    rows[3][1] = None  # an empty cell in row 3
    path = write_xlsx(tmp_path / "book.xlsx", {"Notes": [["text"], ["not this one"]],
                                               "Reviews": rows})
    info, _, texts, _ = read_all(path)
    assert info.sheet == "Notes" and texts == ["not this one"]  # first sheet by default
    info, chunks, texts, rows_read = read_all(path, sheet="reviews", chunk_rows=3)
    assert info.format == "xlsx" and info.sheet == "Reviews" and info.delimiter is None
    assert info.columns == ("ID", "Comment", "Sentiment", "Score")
    assert (info.text_column, info.label_column, info.id_column) == ("Comment", "Sentiment", "ID")
    assert [len(c) for c in chunks] == [3, 3, 1] and rows_read == list(range(1, 8))
    assert texts[2] is None and texts[3] == "comment number 4"
    assert chunks[0].frame["Comment"].tolist()[2] == ""
    assert chunks[0].frame["ID"].tolist() == ["1", "2", "3"]
    assert chunks[0].frame["Score"].tolist() == ["0.5", "1", "1.5"]
    assert [int(v) for c in chunks for v in c.labels] == [1, 0, 1, 0, 1, 0, 1]


def test_data_reviews_xlsx_unknown_sheet_lists_sheets(tmp_path):
    path = write_xlsx(tmp_path / "book.xlsx", {"One": [["review"], ["x"]], "Two": [["review"]]})
    with pytest.raises(InputError) as err:
        open_reviews(path, sheet="Three")
    assert "'Three'" in str(err.value) and "'One', 'Two'" in str(err.value)


def test_data_reviews_xlsx_blank_rows_inside_kept_trailing_dropped(tmp_path):
    path = write_xlsx(tmp_path / "gaps.xlsx", {"s": [["review", "n"], ["one", 1], [None, None],
                                                     ["three", 3], [None, None], [None, None]]})
    _, _, texts, rows = read_all(path)
    assert texts == ["one", None, "three"] and rows == [1, 2, 3]


# ---- bad files ------------------------------------------------------------------------------


def test_data_reviews_bad_files_are_input_errors(tmp_path):
    cases: dict[str, tuple[bytes | None, str]] = {
        "missing.csv": (None, "not found"),
        "empty.csv": (b"", "empty"),
        "binary.csv": (b"id,review\n\x00\x01\x02\x03", "binary"),
        "renamed.csv": (b"PK\x03\x04\x14\x00\x00\x00rest", r"\.xlsx extension"),
        "corrupt.xlsx": (b"PK\x03\x04 this is not really a zip", "not a readable .xlsx"),
        "text.xlsx": (b"review\nhello\n", "not a readable .xlsx"),
        "old.xls": (b"\xd0\xcf\x11\xe0", r"\.xls workbooks are not supported"),
        "reviews.xml": (b"<reviews/>", "'.xml' files are not supported"),
        "blank.csv": (b"\n\n\n", "no header row"),
    }
    for name, (content, pattern) in cases.items():
        path = tmp_path / name
        if content is not None:
            path.write_bytes(content)
        with pytest.raises(InputError, match=pattern) as err:
            open_reviews(path)
        assert name in str(err.value) and "\n" not in str(err.value), name
    with pytest.raises(InputError, match="is a folder"):
        open_reviews(tmp_path)


# ---- sample data ----------------------------------------------------------------------------


def test_data_sample_reviews_csv_and_xlsx_agree():
    csv_info, csv_chunks, csv_texts, csv_rows = read_all(SAMPLE_DATA / "reviews.csv")
    assert (csv_info.text_column, csv_info.label_column, csv_info.id_column) == (
        "review", "sentiment", "id")
    assert csv_rows == list(range(1, len(csv_rows) + 1)) and 35 <= len(csv_rows) <= 45
    assert "" in csv_texts and any("\n" in t for t in csv_texts)
    assert any("<br /><br />" in t for t in csv_texts) and any('"' in t for t in csv_texts)
    labels = np.concatenate([c.labels for c in csv_chunks])
    assert abs(int((labels == 1).sum()) - int((labels == 0).sum())) <= 4
    xlsx_info, xlsx_chunks, xlsx_texts, _ = read_all(SAMPLE_DATA / "reviews.xlsx")
    assert xlsx_info.text_column == "review" and xlsx_info.label_column == "sentiment"
    assert [t or "" for t in xlsx_texts] == csv_texts
    assert np.array_equal(np.concatenate([c.labels for c in xlsx_chunks]), labels)
    labeled = load_labeled(SAMPLE_DATA / "reviews.csv")
    assert len(labeled) == len(csv_rows) - 1 and labeled.skipped_empty == 1
    assert load_labeled(SAMPLE_DATA / "reviews.xlsx").fingerprint == labeled.fingerprint


def test_data_sample_unlabeled_csv():
    info, _, texts, rows = read_all(SAMPLE_DATA / "unlabeled.csv")
    assert info.columns == ("review_id", "comment", "date")
    assert (info.text_column, info.label_column, info.id_column) == ("comment", None, "review_id")
    assert rows == list(range(1, 16)) and texts.count("") == 1


def test_data_sample_mini_aclimdb():
    root = SAMPLE_DATA / "mini_aclImdb"
    assert root.name != "aclImdb"
    reviews = load_labeled(root)
    assert len(reviews) == 48
    assert len(set(reviews.texts)) == 48
    for split in ("train", "test"):
        part = reviews.split(split)
        assert part.labels.tolist() == [0] * 12 + [1] * 12
    unsup = {p.read_text() for p in (root / "train" / "unsup").glob("*.txt")}
    assert len(unsup) == 3 and not unsup & set(reviews.texts)
    assert set(reviews.unlabeled) == unsup
    assert os.path.isfile(root / "README")


def test_data_aclimdb_movie_ids_come_from_the_urls_files(tmp_path):
    root = SAMPLE_DATA / "mini_aclImdb"
    from_dir = load_labeled(root)
    archive = tmp_path / "mini.tar.gz"
    with tarfile.open(archive, "w:gz") as tar:
        tar.add(root, arcname="aclImdb")
    from_archive = load_labeled(archive)
    assert from_dir.groups is not None
    assert from_dir.groups.tolist() == from_archive.groups.tolist()
    # Review <id>_<rating>.txt belongs to the movie on line <id> of urls_<label>.txt.
    lines = (root / "train" / "urls_pos.txt").read_text().splitlines()
    train = from_dir.split("train")
    first_pos = int(np.flatnonzero(train.labels == 1)[0])
    assert lines[0].split("/title/")[1].startswith(train.groups[first_pos])
    assert from_dir.split("test").groups.tolist()[:3] == [from_dir.split("test").groups[0]] * 3


def test_data_reviews_trailing_blank_lines_across_a_chunk_boundary_are_dropped(tmp_path):
    # Found by the fuzz test: blank lines at the end that start in one chunk and end in the
    # next used to leave empty rows behind in the first chunk.
    path = tmp_path / "tail.csv"
    path.write_text("review\n" + "".join(f"review {i}\n" for i in range(1, 6)) + "\n\n\n\n")
    _, chunks, texts, rows = read_all(path, chunk_rows=3)
    assert texts == [f"review {i}" for i in range(1, 6)] and rows == [1, 2, 3, 4, 5]
    assert [len(c) for c in chunks] == [3, 2]


def test_data_reviews_header_longer_than_the_sniffed_bytes(tmp_path):
    path = tmp_path / "long_header.csv"
    long_name = "x" * 70_000  # the header alone is longer than the 64 KiB first read
    path.write_text(f"{long_name},review,other\n" + "1,a fine film,a\n" * 3 + "2,the end,b\n" * 30000)
    info, _, texts, rows = read_all(path)
    assert info.columns == (long_name, "review", "other") and info.text_column == "review"
    assert len(rows) == 30003 and texts[-1] == "the end"


def test_data_reviews_header_names_keep_their_spaces(tmp_path):
    path = tmp_path / "spaces.csv"
    path.write_text(" id ,Review Text\n1,a fine film\n")
    info, _, texts, _ = read_all(path)
    assert info.columns == (" id ", "Review Text") and info.id_column == " id "
    assert texts == ["a fine film"]


def test_data_parquet_duplicate_column_names_stay_apart(tmp_path):
    import pyarrow as pa
    import pyarrow.parquet as pq

    path = tmp_path / "dup.parquet"
    table = pa.Table.from_arrays([pa.array(["a fine film"]), pa.array(["second"]),
                                  pa.array([1])], names=["review", "review", "n"])
    pq.write_table(table, path)
    info, chunks, texts, _ = read_all(path)
    assert info.columns == ("review", "review.1", "n") and texts == ["a fine film"]
    assert chunks[0].frame["review.1"].tolist() == ["second"]
