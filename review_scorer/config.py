"""Frozen training configuration: defaults < config file < CLI flags, strict about unknown keys."""

from __future__ import annotations

import dataclasses
import json
from dataclasses import dataclass, fields
from pathlib import Path
from typing import Any

import tomllib

from review_scorer.errors import ConfigError

TRUNCATING_CHOICES = ("pre", "post", "head_tail")
POOLING_CHOICES = ("last", "max", "mean", "max_mean")
EMBEDDING_INIT_CHOICES = ("svd", "random")


@dataclass(frozen=True)
class TrainConfig:
    """Everything that decides what model comes out of `train`; saved beside the model."""

    # text -> integers
    vocab_size: int = 20000
    min_count: int = 2
    max_len: int = 600
    truncating: str = "head_tail"
    # network
    embedding_dim: int = 64
    # "svd": start from PPMI+SVD word vectors of the training + unlabeled reviews (embeddings.py);
    # "random": Keras' default uniform initialisation.
    embedding_init: str = "svd"
    svd_window: int = 5
    freeze_embeddings: bool = False
    embedding_dropout: float = 0.2
    word_dropout: float = 0.1  # share of word ids replaced by the unknown id while training
    lstm_units: int = 64
    bidirectional: bool = True
    pooling: str = "max_mean"
    dense_units: int = 64
    dropout: float = 0.4
    recurrent_dropout: float = 0.0
    l2: float = 1e-5
    # optimisation
    learning_rate: float = 2e-3
    clipnorm: float = 1.0
    # Polyak averaging: validate, early-stop and save the exponential moving average of the
    # weights (0 turns it off).
    ema_momentum: float = 0.99
    batch_size: int = 64
    epochs: int = 6
    patience: int = 2
    validation_fraction: float = 0.1
    test_fraction: float = 0.2
    seed: int = 1337
    # Independently trained networks (seeds seed, seed+1000, ...) whose probabilities are averaged.
    ensemble_size: int = 2

    def __post_init__(self) -> None:
        problems = []
        if self.truncating not in TRUNCATING_CHOICES:
            problems.append(f"truncating must be one of {', '.join(TRUNCATING_CHOICES)}")
        if self.embedding_init not in EMBEDDING_INIT_CHOICES:
            problems.append(f"embedding_init must be one of {', '.join(EMBEDDING_INIT_CHOICES)}")
        if self.svd_window < 1:
            problems.append("svd_window must be at least 1")
        if self.pooling not in POOLING_CHOICES:
            problems.append(f"pooling must be one of {', '.join(POOLING_CHOICES)}")
        for name in ("vocab_size", "max_len", "embedding_dim", "lstm_units", "batch_size",
                     "epochs", "min_count", "ensemble_size"):
            if int(getattr(self, name)) < 1:
                problems.append(f"{name} must be at least 1")
        if self.vocab_size < 3:
            problems.append("vocab_size must be at least 3 (padding and unknown ids are reserved)")
        for name in ("dropout", "recurrent_dropout", "embedding_dropout", "ema_momentum",
                     "word_dropout"):
            if not 0.0 <= float(getattr(self, name)) < 1.0:
                problems.append(f"{name} must be in [0, 1)")
        for name in ("validation_fraction", "test_fraction"):
            if not 0.0 < float(getattr(self, name)) < 1.0:
                problems.append(f"{name} must be between 0 and 1")
        if self.dense_units < 0 or self.patience < 0 or self.l2 < 0 or self.clipnorm < 0:
            problems.append("dense_units, patience, l2 and clipnorm must not be negative")
        if self.learning_rate <= 0:
            problems.append("learning_rate must be positive")
        if problems:
            raise ConfigError("invalid training config: " + "; ".join(problems))

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any], *, source: str = "config") -> TrainConfig:
        known = {f.name: f for f in fields(cls)}
        unknown = sorted(set(data) - set(known))
        if unknown:
            raise ConfigError(
                f"{source}: unknown key(s) {', '.join(unknown)}; "
                f"known keys are {', '.join(known)}"
            )
        values = {}
        for name, value in data.items():
            default = known[name].default
            values[name] = _coerce(name, value, type(default), source)
        return cls(**values)

    def replace(self, **changes: Any) -> TrainConfig:
        given = {k: v for k, v in changes.items() if v is not None}
        return TrainConfig.from_dict({**self.to_dict(), **given}, source="options")


def _coerce(name: str, value: Any, kind: type, source: str) -> Any:
    if kind is bool:
        if isinstance(value, bool):
            return value
        raise ConfigError(f"{source}: {name} must be true or false, got {value!r}")
    if kind is int:
        if isinstance(value, bool) or not isinstance(value, int):
            raise ConfigError(f"{source}: {name} must be a whole number, got {value!r}")
        return value
    if kind is float:
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            raise ConfigError(f"{source}: {name} must be a number, got {value!r}")
        return float(value)
    if kind is str and not isinstance(value, str):
        raise ConfigError(f"{source}: {name} must be text, got {value!r}")
    return value


def load_config_file(path: str | Path) -> dict[str, Any]:
    """Read a TOML or JSON config file into a plain dict (keys checked by TrainConfig)."""
    path = Path(path)
    try:
        raw = path.read_bytes()
    except OSError as exc:
        raise ConfigError(f"{path}: cannot read config file ({exc.strerror}); check the path") from None
    try:
        if path.suffix.lower() == ".json":
            data = json.loads(raw)
        else:
            data = tomllib.loads(raw.decode("utf-8"))
    except (ValueError, UnicodeDecodeError) as exc:
        kind = "JSON" if path.suffix.lower() == ".json" else "TOML"
        raise ConfigError(f"{path}: not valid {kind} ({exc})") from None
    if not isinstance(data, dict):
        raise ConfigError(f"{path}: expected a table of key = value settings")
    # Allow either a flat file or one with a [train] table.
    if set(data) == {"train"} and isinstance(data["train"], dict):
        data = data["train"]
    return data
