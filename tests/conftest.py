"""Shared fixtures: tiny configs, the sample data, and one tiny trained model per test session."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

REPO = Path(__file__).resolve().parent.parent
SAMPLE_DATA = REPO / "sample_data"
MINI_IMDB = SAMPLE_DATA / "mini_aclImdb"

def require(module: str):
    """import `module`, skipping the test when it is not installed, except under CI (the CI
    environment variable set), where a missing module fails instead of skipping silently."""
    if os.environ.get("CI"):
        import importlib

        return importlib.import_module(module)
    return pytest.importorskip(module)


# A model small enough to train in seconds on the mini aclImdb.
TINY_SETTINGS = {
    "vocab_size": 300,
    "min_count": 1,
    "max_len": 40,
    "embedding_dim": 8,
    "embedding_dropout": 0.0,
    "lstm_units": 4,
    "dense_units": 4,
    "dropout": 0.0,
    "epochs": 2,
    "batch_size": 8,
    "patience": 1,
    "learning_rate": 0.01,
    "validation_fraction": 0.25,
    "ensemble_size": 1,
}


@pytest.fixture(scope="session")
def tiny_config():
    from review_scorer.config import TrainConfig

    return TrainConfig.from_dict(TINY_SETTINGS)


@pytest.fixture(scope="session")
def tiny_config_file(tmp_path_factory) -> Path:
    path = tmp_path_factory.mktemp("config") / "tiny.toml"
    lines = ["[train]"]
    for key, value in TINY_SETTINGS.items():
        lines.append(f"{key} = {str(value).lower() if isinstance(value, bool) else value}")
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path


@pytest.fixture(scope="session")
def trained_model(tmp_path_factory, tiny_config):
    """One tiny model trained on the mini aclImdb, shared by every test that only reads it."""
    from review_scorer.training.train import run_training

    model_dir = tmp_path_factory.mktemp("models") / "tiny"
    result = run_training(tiny_config, data_source=str(MINI_IMDB), model_dir=model_dir)
    return result


@pytest.fixture()
def model_dir_copy(trained_model, tmp_path) -> Path:
    """A private copy of the tiny model directory, for tests that damage it."""
    import shutil

    target = tmp_path / "model-copy"
    shutil.copytree(trained_model.model_dir, target)
    return target


def read_reviews(path: Path, **kwargs):
    """(the opened review file, its chunks, every text, every row number) of a whole file read
    through review_scorer.io.open_reviews, as the readers' tests look at it."""
    from review_scorer.io import open_reviews

    review_file = open_reviews(path, **kwargs)
    chunks = list(review_file.chunks())
    texts = [t for c in chunks for t in c.texts]
    rows = [int(r) for c in chunks for r in c.rows]
    return review_file, chunks, texts, rows
