"""Tests for the training configuration."""

import json

import pytest

from review_scorer.config import TrainConfig, load_config_file
from review_scorer.errors import ConfigError


def test_config_defaults_keep_the_fast_cudnn_path():
    config = TrainConfig()
    assert config.recurrent_dropout == 0.0
    assert config.to_dict()["max_len"] == config.max_len


def test_config_rejects_unknown_keys_and_bad_types():
    with pytest.raises(ConfigError, match="unknown key"):
        TrainConfig.from_dict({"epochz": 3})
    with pytest.raises(ConfigError, match="whole number"):
        TrainConfig.from_dict({"epochs": "three"})
    with pytest.raises(ConfigError, match="true or false"):
        TrainConfig.from_dict({"bidirectional": "yes"})
    with pytest.raises(ConfigError, match="pooling"):
        TrainConfig(pooling="median")
    with pytest.raises(ConfigError, match="dropout"):
        TrainConfig(dropout=1.5)


def test_config_flags_override_file_which_overrides_defaults(tmp_path):
    path = tmp_path / "train.toml"
    path.write_text("[train]\nepochs = 3\nlstm_units = 8\n", encoding="utf-8")
    base = TrainConfig.from_dict({**TrainConfig().to_dict(), **load_config_file(path)})
    final = base.replace(epochs=5, batch_size=None)
    assert (final.epochs, final.lstm_units, final.batch_size) == (5, 8, TrainConfig().batch_size)


def test_config_round_trips_through_json(tmp_path):
    config = TrainConfig(lstm_units=7, bidirectional=False, l2=0.0)
    path = tmp_path / "c.json"
    path.write_text(json.dumps(config.to_dict()), encoding="utf-8")
    assert TrainConfig.from_dict(load_config_file(path)) == config


def test_config_file_errors_are_one_line(tmp_path):
    with pytest.raises(ConfigError, match="cannot read"):
        load_config_file(tmp_path / "nope.toml")
    bad = tmp_path / "bad.toml"
    bad.write_text("epochs = = 3", encoding="utf-8")
    with pytest.raises(ConfigError, match="not valid TOML"):
        load_config_file(bad)
