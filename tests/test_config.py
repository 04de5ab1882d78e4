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


@pytest.mark.parametrize("value", [float("nan"), float("inf"), float("-inf")])
def test_config_rejects_non_finite_floats_in_one_line(value):
    from dataclasses import fields

    float_names = [f.name for f in fields(TrainConfig) if isinstance(f.default, float)]
    assert "learning_rate" in float_names
    for name in float_names:
        with pytest.raises(ConfigError, match=f"{name} must be a finite number") as info:
            TrainConfig.from_dict({name: value})
        assert "\n" not in str(info.value)
        with pytest.raises(ConfigError, match=f"{name} must be a finite number"):
            TrainConfig(**{name: value})


def test_config_file_with_nan_learning_rate_is_refused(tmp_path):
    path = tmp_path / "nan.toml"
    path.write_text("[train]\nlearning_rate = nan\n", encoding="utf-8")
    with pytest.raises(ConfigError, match="learning_rate must be a finite number"):
        TrainConfig.from_dict(load_config_file(path), source=str(path))
    assert TrainConfig().replace(learning_rate=None).learning_rate == TrainConfig().learning_rate
    with pytest.raises(ConfigError, match="finite"):
        TrainConfig().replace(l2=float("nan"))


def test_pretrain_config_is_strict_and_checks_its_ranges(tmp_path):
    from review_scorer.config import PretrainConfig, load_pretrain_config_file

    with pytest.raises(ConfigError, match="unknown key"):
        PretrainConfig.from_dict({"bptt_len": 70})
    with pytest.raises(ConfigError, match="learning_rate must be a finite number"):
        PretrainConfig.from_dict({"learning_rate": float("nan")})
    with pytest.raises(ConfigError, match="tied needs lstm_units"):
        PretrainConfig(softmax="tied", lstm_units=32, embedding_dim=64)
    with pytest.raises(ConfigError, match="softmax must be one of"):
        PretrainConfig(softmax="adaptive")
    path = tmp_path / "p.toml"
    path.write_text("[pretrain]\nbptt = 50\nepochs = 1\n", encoding="utf-8")
    config = PretrainConfig.from_dict(load_pretrain_config_file(path))
    assert (config.bptt, config.epochs) == (50, 1)
    assert PretrainConfig.from_dict(config.to_dict()) == config
    assert config.replace(bptt=None, seed=7) == PretrainConfig(bptt=50, epochs=1, seed=7)


@pytest.mark.parametrize(("settings", "message"), [
    ({"lstm_units": 100_000_000}, "lstm_units must be at most 4,096"),
    ({"vocab_size": 10**9}, "vocab_size must be at most"),
    ({"max_len": 10**7}, "max_len must be at most"),
    ({"embedding_dim": 10**6}, "embedding_dim must be at most"),
    ({"batch_size": 10**8}, "batch_size must be at most"),
    ({"epochs": 10**9}, "epochs must be at most"),
    ({"vocab_size": 1_000_000, "embedding_dim": 4096}, "vocab_size x embedding_dim"),
    ({"batch_size": 65_536, "max_len": 100_000, "lstm_units": 512}, "batch_size x max_len x lstm_units"),
])
def test_config_sizes_beyond_one_machine_are_refused_up_front(settings, message):
    from review_scorer.config import PretrainConfig

    with pytest.raises(ConfigError, match=message) as info:
        TrainConfig.from_dict(settings)
    assert "\n" not in str(info.value)
    pretrain = {k: v for k, v in settings.items() if k in {f for f in PretrainConfig().to_dict()}}
    if pretrain and message.split()[0] in pretrain:
        with pytest.raises(ConfigError, match="must be at most"):
            PretrainConfig.from_dict(pretrain)


def test_config_limits_leave_the_shipped_and_default_settings_alone():
    import json

    from review_scorer.model.artifacts import CONFIG_FILE, packaged_model_dir

    shipped = json.loads((packaged_model_dir() / CONFIG_FILE).read_text(encoding="utf-8"))
    assert TrainConfig.from_dict(shipped).lstm_units == shipped["lstm_units"]
    assert TrainConfig().replace(lstm_units=4096, vocab_size=200_000).lstm_units == 4096
