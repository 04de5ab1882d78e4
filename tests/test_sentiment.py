"""SentimentModel: the one object between review texts and scores."""

import json
import os
import subprocess
import sys

import numpy as np
import pandas as pd
import pytest

from review_scorer.errors import ArtifactError, OutputError
from tests.conftest import REPO

TEXTS = [
    "A wonderful, moving film with brilliant acting.",
    "",
    "   ",
    "... --- ***",
    None,
    "Dull, boring and a waste of time.",
    "<br /><br />",
    "great fun " * 400,  # longer than max_len: truncated, still scored
]


@pytest.fixture(scope="module")
def model(trained_model):
    from review_scorer import SentimentModel

    return SentimentModel.load(trained_model.model_dir)


def test_sentiment_package_root_imports_without_tensorflow():
    code = ("import sys, review_scorer\n"
            "assert 'SentimentModel' in review_scorer.__all__\n"
            "assert 'tensorflow' not in sys.modules\n"
            "cls = review_scorer.SentimentModel\n"
            "assert 'tensorflow' not in sys.modules, 'the class itself must stay light'\n")
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=REPO)
    assert proc.returncode == 0, proc.stderr


def test_sentiment_predict_gives_nan_for_reviews_without_words(model):
    scores = model.predict(TEXTS)
    assert scores.dtype == np.float32 and scores.shape == (len(TEXTS),)
    assert np.isnan(scores[[1, 2, 3, 4, 6]]).all()
    assert np.isfinite(scores[[0, 5, 7]]).all() and ((scores[[0, 5, 7]] > 0) & (scores[[0, 5, 7]] < 1)).all()


def test_sentiment_predict_matches_score_files(model, trained_model, tmp_path):
    from review_scorer.scoring.score import score_files

    rng = np.random.default_rng(5)
    words = ["great", "awful", "wonderful", "boring", "brilliant", "dull", "moving", "terrible",
             "fun", "waste"]
    texts = [" ".join(rng.choice(words, size=rng.integers(1, 40))) for _ in range(60)] + ["", "?!"]
    src = tmp_path / "t.csv"
    pd.DataFrame({"review": texts}).to_csv(src, index=False)
    (f,) = score_files([src], model=model, out_dir=tmp_path / "o", chunk_rows=7, batch_size=5).files
    written = pd.read_csv(f.predictions_path)
    np.testing.assert_allclose(written["score"].to_numpy(), np.round(model.predict(texts), 6),
                               atol=1e-6, equal_nan=True)


def test_sentiment_predict_frame_adds_the_three_columns(model):
    frame = pd.DataFrame({"id": range(len(TEXTS)), "body": TEXTS})
    out = model.predict_frame(frame, "body", threshold=0.5)
    assert list(out.columns) == ["id", "body", "sentiment", "score", "status"]
    assert out["status"].tolist() == ["ok", "empty text", "empty text", "no words", "empty text", "ok",
                                      "no words", "ok"]
    assert (out.loc[out.status != "ok", "sentiment"] == "").all()
    assert out.loc[out.status == "ok", "sentiment"].isin(["positive", "negative"]).all()
    assert list(frame.columns) == ["id", "body"]  # the caller's frame is not changed
    with pytest.raises(KeyError, match="nope"):
        model.predict_frame(frame, "nope")


def test_sentiment_encode_is_the_shared_text_path(model):
    from review_scorer.text.vocabulary import encode_text

    cfg = model.config
    for text, ids in zip(TEXTS, model.encode(TEXTS)):
        expected = encode_text(text, model.vocab, max_len=cfg.max_len, truncating=cfg.truncating) \
            if isinstance(text, str) else np.zeros(0, np.int32)
        np.testing.assert_array_equal(ids, expected)
    assert max(len(ids) for ids in model.encode(TEXTS)) == cfg.max_len


def test_sentiment_metadata_attributes(model, trained_model):
    assert model.name == "tiny" and model.path == trained_model.model_dir
    assert model.config == trained_model.config
    assert model.metrics["accuracy"] == trained_model.test_metrics["accuracy"]
    assert model.meta["format_version"] >= 1 and "loss" in model.history


def test_sentiment_save_round_trip_and_no_silent_overwrite(model, tmp_path):
    from review_scorer import SentimentModel

    saved = model.save(tmp_path / "copy")
    again = SentimentModel.load(saved)
    np.testing.assert_allclose(again.predict(TEXTS), model.predict(TEXTS), atol=1e-6, equal_nan=True)
    assert again.name == model.name and (saved / "report.html").is_file()
    with pytest.raises(OutputError, match="--overwrite"):
        model.save(tmp_path / "copy")


def test_sentiment_load_of_a_broken_directory_is_one_line(model_dir_copy):
    from review_scorer import SentimentModel

    meta = json.loads((model_dir_copy / "meta.json").read_text())
    (model_dir_copy / "vocab.txt").write_text("tampered", encoding="utf-8")
    with pytest.raises(ArtifactError) as info:
        SentimentModel.load(model_dir_copy)
    assert "checksum" in str(info.value) and "\n" not in str(info.value)
    (model_dir_copy / "meta.json").unlink()
    with pytest.raises(ArtifactError, match=r"no meta\.json"):
        SentimentModel.load(model_dir_copy)
    assert meta["format_version"] == 1


def test_sentiment_load_none_resolves_like_score(monkeypatch, tmp_path, trained_model):
    from review_scorer import SentimentModel
    from review_scorer.model.artifacts import MODEL_DIR_ENV, packaged_model_dir

    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv(MODEL_DIR_ENV, str(trained_model.model_dir))
    assert SentimentModel.load().path == trained_model.model_dir
    monkeypatch.delenv(MODEL_DIR_ENV)
    assert SentimentModel.load().path == packaged_model_dir()


def test_sentiment_predict_takes_a_single_string_as_one_review(model):
    one = model.predict("Great food, lovely staff")
    assert one.shape == (1,)
    np.testing.assert_allclose(one, model.predict(["Great food, lovely staff"]), atol=1e-6)
    assert np.isnan(model.predict("...")).tolist() == [True]


def _api_stderr(env_extra: dict, trained_model) -> str:
    code = (
        "import logging, sys\n"
        "logging.basicConfig(level=logging.INFO, stream=sys.stderr, format='%(name)s: %(message)s')\n"
        "logging.getLogger('mine').warning('before the model')\n"
        "from review_scorer import SentimentModel\n"
        f"m = SentimentModel.load({str(trained_model.model_dir)!r})\n"
        "print(m.predict(['a great film', 'dull']).shape)\n"
        "logging.getLogger('mine').warning('after the model')\n"
    )
    env = {k: v for k, v in os.environ.items() if k != "TF_CPP_MIN_LOG_LEVEL"}
    env.update(PYTHONPATH=str(REPO), **env_extra)
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                          timeout=300, env=env)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.strip() == "(2,)"
    return proc.stderr


def test_sentiment_api_keeps_tensorflow_native_noise_off_stderr(trained_model):
    stderr = _api_stderr({}, trained_model)
    # only the user's own log lines: no oneDNN / cuInit / absl lines from TensorFlow's C++ side
    assert stderr.splitlines() == ["mine: before the model", "mine: after the model"], stderr


def test_sentiment_api_leaves_a_users_tensorflow_log_level_alone(trained_model):
    stderr = _api_stderr({"TF_CPP_MIN_LOG_LEVEL": "0"}, trained_model)
    lines = stderr.splitlines()
    assert lines[0] == "mine: before the model" and lines[-1] == "mine: after the model"
