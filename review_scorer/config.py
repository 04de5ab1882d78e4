"""Frozen training configuration: defaults < config file < CLI flags, strict about unknown keys."""

from __future__ import annotations

import dataclasses
import json
import math
from dataclasses import dataclass, fields
from pathlib import Path
from typing import Any

import tomllib

from review_scorer.errors import ConfigError

TRUNCATING_CHOICES = ("pre", "post", "head_tail")
TEACHER_CHOICES = ("none", "nb_lexicon", "nb_pieces_lexicon")
POOLING_CHOICES = ("last", "max", "mean", "max_mean")
EMBEDDING_INIT_CHOICES = ("svd", "random", "encoder")
ADVERSARIAL_KINDS = ("fgm", "virtual")
SOFTMAX_CHOICES = ("sampled", "tied")


class _Settings:
    """Shared behaviour of the frozen settings dataclasses: strict dict round trip, replace."""

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any], *, source: str = "config"):
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

    def replace(self, **changes: Any):
        given = {k: v for k, v in changes.items() if v is not None}
        return type(self).from_dict({**self.to_dict(), **given}, source="options")


# Upper limits of the sizes a config may ask for: far above anything useful on one machine,
# low enough that a typo (lstm_units = 100000000) is refused in a line instead of failing
# minutes later with TensorFlow's ResourceExhaustedError.
LIMITS = {
    "vocab_size": 2_000_000, "min_count": 1_000_000, "max_len": 100_000, "embedding_dim": 4096,
    "lstm_units": 4096, "dense_units": 4096, "batch_size": 65_536, "epochs": 10_000,
    "patience": 10_000, "ensemble_size": 32, "svd_window": 100, "finetune_head_epochs": 10_000,
    "bptt": 10_000, "num_sampled": 1_000_000,
}
# Most weights one embedding matrix may hold (vocab_size x embedding_dim): 4 GB of float32.
MAX_EMBEDDING_WEIGHTS = 1_000_000_000
# Most LSTM outputs one batch may hold (batch_size x tokens per review or window x
# lstm_units): 4 GB of float32 per direction, before the gradients.
MAX_BATCH_ACTIVATIONS = 1_000_000_000


def _over_limits(settings: Any) -> list[str]:
    """The settings above LIMITS, and an embedding matrix too big to allocate, as messages."""
    problems = [f"{name} must be at most {limit:,} (got {getattr(settings, name):,})"
                for name, limit in LIMITS.items()
                if hasattr(settings, name) and getattr(settings, name) > limit]
    if problems:
        return problems
    weights = settings.vocab_size * settings.embedding_dim
    if weights > MAX_EMBEDDING_WEIGHTS:
        problems.append(f"vocab_size x embedding_dim must be at most {MAX_EMBEDDING_WEIGHTS:,} "
                        f"weights (got {weights:,}); lower one of them")
    length = "max_len" if hasattr(settings, "max_len") else "bptt"
    activations = settings.batch_size * getattr(settings, length) * settings.lstm_units
    if activations > MAX_BATCH_ACTIVATIONS:
        problems.append(f"batch_size x {length} x lstm_units must be at most "
                        f"{MAX_BATCH_ACTIVATIONS:,} (got {activations:,}); lower one of them")
    return problems


def _non_finite(settings: Any) -> list[str]:
    """Names of float settings holding NaN or an infinity (comparisons with NaN are all False,
    so every range check below would let it through)."""
    return [f.name for f in fields(settings)
            if isinstance(getattr(settings, f.name), float)
            and not math.isfinite(getattr(settings, f.name))]


@dataclass(frozen=True)
class TrainConfig(_Settings):
    """Everything that decides what model comes out of `train`; saved beside the model."""

    # text -> integers
    vocab_size: int = 20000
    min_count: int = 2
    max_len: int = 600
    truncating: str = "head_tail"
    # network
    embedding_dim: int = 64
    # "svd": start from PPMI+SVD word vectors of the training + unlabeled reviews (embeddings.py);
    # "random": Keras' default uniform initialisation; "encoder": copied from a pretrained encoder
    # (train --encoder; set by the fine-tuning path, with the encoder's vocabulary and widths).
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
    # Adversarial training on the word embeddings (model/adversarial.py): each step also trains
    # on the batch pushed eps word-vector lengths along its loss gradient; 0 turns it off.
    adversarial_eps: float = 0.0
    # "fgm": the pushed batch is trained on its labels (fast gradient method); "virtual": to keep
    # the network's own clean prediction (virtual adversarial training, no label needed).
    adversarial_kind: str = "fgm"
    # Entropy minimisation (model/adversarial.py): each step also minimises this times the mean
    # entropy of the batch's predictions; 0 turns it off.
    entropy_weight: float = 0.0
    # Polyak averaging: validate, early-stop and save the exponential moving average of the
    # weights (0 turns it off).
    ema_momentum: float = 0.99
    batch_size: int = 64
    epochs: int = 4  # with distillation the validation loss is lowest at epoch 3 of 5
    patience: int = 2
    validation_fraction: float = 0.1
    test_fraction: float = 0.2
    seed: int = 1337
    # Independently trained networks (seeds seed, seed+1000, ...) whose probabilities are averaged.
    ensemble_size: int = 1
    # Fine-tuning from a pretrained encoder (train --encoder): first this many epochs train only
    # the layers above the LSTM (encoder frozen, so the random head cannot wreck the pretrained
    # weights), then everything, with the embedding and LSTM at learning_rate times
    # encoder_lr_multiplier (discriminative learning rates, Howard & Ruder 2018, ULMFiT).
    finetune_head_epochs: int = 1
    encoder_lr_multiplier: float = 0.5
    # Distillation (review_scorer.training.teachers): "nb_lexicon" trains beside the labeled fit part on
    # the unlabeled reviews and on distill_pieces short pieces (one to three sentences) cut from
    # all training reviews, each with the probability of a length-aware mix of an NB-weighted
    # n-gram LR (fitted on the fit part only) and the VADER lexicon; "nb_pieces_lexicon" (the
    # shipped recipe's) adds an n-gram LR fitted on review pieces, which leads on short text; see
    # README "The shipped model"; "none": labels only.
    teacher: str = "nb_pieces_lexicon"
    distill_pieces: int = 150000
    # "nb_pieces_lexicon" only: word fragments (one to five words cut from the pieces, labeled by
    # the teacher) per piece.
    distill_fragments: float = 0.0
    # The last stage adds lexicon_weight times a sentiment lexicon's score of each review to the
    # network's logit, before the temperature is fitted (model/lexicon.py); 0 leaves it out.
    # Chosen on validation data (benchmarks/lexicon_weight.py).
    lexicon_weight: float = 0.25
    # With it, reviews of at least ngram_min_words known words get ngram_weight times an
    # NB-weighted regression on word 1-3 grams of the training labels (model/ngram_term.py);
    # weight 0 leaves it out. Chosen on validation data (benchmarks/ngram_term.py).
    ngram_weight: float = 0.5
    ngram_min_words: int = 40
    # And the clause rules for short reviews (model/clauses.py): a contrast's last clause, a
    # negated opinion verb's clause, a denied trouble ("no complaints"), a limit reached
    # ("couldn't be happier"), a negated subject ("nobody was helpful") and a comparison left
    # unmet ("could have been better") read from the network's scores of the clauses. Their
    # parameters were chosen on validation data (benchmarks/clause_rules.py).
    clause_rules: bool = True

    def __post_init__(self) -> None:
        problems = [f"{name} must be a finite number" for name in _non_finite(self)]
        if self.truncating not in TRUNCATING_CHOICES:
            problems.append(f"truncating must be one of {', '.join(TRUNCATING_CHOICES)}")
        if self.embedding_init not in EMBEDDING_INIT_CHOICES:
            problems.append(f"embedding_init must be one of {', '.join(EMBEDDING_INIT_CHOICES)}")
        if self.teacher not in TEACHER_CHOICES:
            problems.append(f"teacher must be one of {', '.join(TEACHER_CHOICES)}")
        if self.distill_pieces < 0:
            problems.append("distill_pieces must not be negative")
        if not 0.0 <= self.distill_fragments <= 10.0:
            problems.append("distill_fragments must be between 0 and 10")
        if not 0.0 <= self.lexicon_weight <= 10.0:
            problems.append("lexicon_weight must be between 0 and 10")
        if not 0.0 <= self.ngram_weight <= 10.0:
            problems.append("ngram_weight must be between 0 and 10")
        if self.ngram_min_words < 0:
            problems.append("ngram_min_words must not be negative")
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
        if not 0.0 <= self.adversarial_eps <= 10.0:
            problems.append("adversarial_eps must be between 0 and 10")
        if not 0.0 <= self.entropy_weight <= 10.0:
            problems.append("entropy_weight must be between 0 and 10")
        if self.adversarial_kind not in ADVERSARIAL_KINDS:
            problems.append(f"adversarial_kind must be one of {', '.join(ADVERSARIAL_KINDS)}")
        if not self.learning_rate > 0:
            problems.append("learning_rate must be positive")
        if self.finetune_head_epochs < 0:
            problems.append("finetune_head_epochs must not be negative")
        if not self.encoder_lr_multiplier > 0:
            problems.append("encoder_lr_multiplier must be positive")
        problems += _over_limits(self)
        if problems:
            raise ConfigError("invalid training config: " + "; ".join(problems))


@dataclass(frozen=True)
class PretrainConfig(_Settings):
    """Everything that decides what encoder comes out of `pretrain`; saved beside the encoder.

    The encoder is the classifier's embedding and bidirectional LSTM, trained as a forward and a
    backward language model; embedding_dim and lstm_units fix the classifier it can start.
    """

    vocab_size: int = 20000
    min_count: int = 2
    embedding_dim: int = 64
    lstm_units: int = 64
    # Training windows: contiguous runs of bptt tokens over the concatenated reviews (a
    # separator id between reviews), so no padding and no mask: the LSTM stays cuDNN-eligible.
    bptt: int = 80
    batch_size: int = 64
    epochs: int = 2
    learning_rate: float = 2e-3
    clipnorm: float = 1.0
    dropout: float = 0.1  # on the LSTM outputs, before the softmax
    # "sampled": sampled softmax over num_sampled log-uniform candidates (the vocabulary is
    # frequency-sorted, so log-uniform approximates the word distribution); "tied": a full
    # softmax whose output matrix is the embedding (needs lstm_units == embedding_dim).
    softmax: str = "sampled"
    num_sampled: int = 1024
    # Share of the pretraining reviews kept aside to measure held-out perplexity.
    heldout_fraction: float = 0.01
    # The classifier's validation slice is left out of pretraining: seed and validation_fraction
    # must equal the TrainConfig ones of the models fine-tuned from this encoder.
    seed: int = 1337
    validation_fraction: float = 0.1
    checkpoint_minutes: float = 10.0

    def __post_init__(self) -> None:
        problems = [f"{name} must be a finite number" for name in _non_finite(self)]
        for name in ("vocab_size", "min_count", "embedding_dim", "lstm_units", "bptt",
                     "batch_size", "epochs", "num_sampled"):
            if int(getattr(self, name)) < 1:
                problems.append(f"{name} must be at least 1")
        if self.vocab_size < 3:
            problems.append("vocab_size must be at least 3 (padding and unknown ids are reserved)")
        if self.softmax not in SOFTMAX_CHOICES:
            problems.append(f"softmax must be one of {', '.join(SOFTMAX_CHOICES)}")
        if self.softmax == "tied" and self.lstm_units != self.embedding_dim:
            problems.append("softmax = tied needs lstm_units equal to embedding_dim")
        if not 0.0 <= self.dropout < 1.0:
            problems.append("dropout must be in [0, 1)")
        for name in ("heldout_fraction", "validation_fraction"):
            if not 0.0 < float(getattr(self, name)) < 1.0:
                problems.append(f"{name} must be between 0 and 1")
        if not self.learning_rate > 0 or self.clipnorm < 0 or not self.checkpoint_minutes > 0:
            problems.append("learning_rate and checkpoint_minutes must be positive, clipnorm "
                            "not negative")
        problems += _over_limits(self)
        if problems:
            raise ConfigError("invalid pretraining config: " + "; ".join(problems))


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
        if not math.isfinite(value):
            raise ConfigError(f"{source}: {name} must be a finite number, got {value!r}")
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


def load_pretrain_config_file(path: str | Path) -> dict[str, Any]:
    """Read a TOML or JSON file of pretraining settings (flat, or a [pretrain] table)."""
    data = load_config_file(path)
    if "pretrain" in data and isinstance(data["pretrain"], dict):
        data = data["pretrain"]
    return data
