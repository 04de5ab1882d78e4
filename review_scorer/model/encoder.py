"""The encoder directory contract: pretrained embedding + LSTM weights, saved atomically, loaded safely."""

from __future__ import annotations

import json
import os
import shutil
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from review_scorer import __version__
from review_scorer.config import PretrainConfig
from review_scorer.errors import ArtifactError, ConfigError, OutputError
from review_scorer.io.download import sha256_file
from review_scorer.model.artifacts import staging_dir, swap_into_place, verify_checksums
from review_scorer.text.vocabulary import Vocabulary

ENCODER_FORMAT_VERSION = 1
ENCODER_KIND = "review-scorer encoder"
WEIGHTS_FILE = "encoder.weights.npz"
VOCAB_FILE = "vocab.txt"
CONFIG_FILE = "config.json"
HISTORY_FILE = "history.json"
META_FILE = "meta.json"
CHECKED_FILES = (WEIGHTS_FILE, VOCAB_FILE, CONFIG_FILE, HISTORY_FILE)
CHECKPOINT_DIR = ".checkpoint"
ENCODER_DIR_ENV = "REVIEW_SCORER_ENCODER_DIR"
# Big tables are stored in half precision (half the size; computed in float32 again once loaded).
HALF_PRECISION = ("embedding", "softmax/weights")
LSTM_PARTS = ("kernel", "recurrent_kernel", "bias")
DIRECTIONS = ("forward", "backward")


def weight_shapes(config: PretrainConfig, vocab_size: int) -> dict[str, tuple[int, ...]]:
    """The arrays an encoder holds and their shapes (Keras LSTM layout: gates i, f, c, o)."""
    d, u = config.embedding_dim, config.lstm_units
    shapes: dict[str, tuple[int, ...]] = {"embedding": (vocab_size, d)}
    for direction in DIRECTIONS:
        shapes[f"{direction}/kernel"] = (d, 4 * u)
        shapes[f"{direction}/recurrent_kernel"] = (u, 4 * u)
        shapes[f"{direction}/bias"] = (4 * u,)
    if config.softmax == "sampled":
        shapes["softmax/weights"] = (vocab_size, u)
    shapes["softmax/bias"] = (vocab_size,)
    return shapes


@dataclass
class Encoder:
    """A loaded, validated encoder directory."""

    path: Path
    config: PretrainConfig
    vocab: Vocabulary
    weights: dict[str, np.ndarray]  # float32, named as in weight_shapes
    history: dict[str, list[float]]
    meta: dict[str, Any]

    @property
    def name(self) -> str:
        return str(self.meta.get("name") or self.path.name)

    def summary(self) -> dict[str, Any]:
        """What a fine-tuned model's meta records about the encoder it started from."""
        keys = ("name", "corpus", "tokens", "epochs", "train_seconds", "device", "created_at")
        out = {k: self.meta.get(k) for k in keys}
        out["name"] = self.name
        out["path"] = str(self.path)
        out["weights_sha256"] = (self.meta.get("files") or {}).get(WEIGHTS_FILE)
        out["history"] = self.history
        out["config"] = self.config.to_dict()
        return out


def _write_json(path: Path, data: Any) -> None:
    path.write_text(json.dumps(data, indent=2, sort_keys=True, allow_nan=False) + "\n",
                    encoding="utf-8")


def check_encoder_target(directory: str | Path, *, overwrite: bool) -> Path:
    """Refuse a target that holds anything but a pretraining checkpoint (unless overwrite)."""
    directory = Path(directory)
    if directory.exists() and not directory.is_dir():
        raise OutputError(f"{directory} exists and is not a directory; choose another output folder")
    cwd = Path.cwd().resolve()
    if directory.resolve() == cwd or directory.resolve() in cwd.parents:
        raise OutputError(f"{directory} is the current folder or holds it; choose a new folder "
                          "for the encoder, such as encoders/my-lm")
    other = sorted(p.name for p in directory.iterdir() if p.name != CHECKPOINT_DIR) \
        if directory.is_dir() else []
    if other and not overwrite:
        raise OutputError(
            f"{directory} already holds files ({', '.join(other[:3])}); pass "
            "--overwrite to replace it or choose another output folder"
        )
    if other and not _is_encoder_dir(directory, other):
        # --overwrite must never delete someone's documents: only an encoder is replaced.
        raise OutputError(f"{directory} is not an encoder directory ({other[0]!r} is not an "
                          "encoder file), so --overwrite will not replace it; choose another folder")
    return directory


def _is_encoder_dir(directory: Path, names: list[str]) -> bool:
    if any(name not in (*CHECKED_FILES, META_FILE) for name in names):
        return False
    try:
        return json.loads((directory / META_FILE).read_text(encoding="utf-8")).get("kind") == ENCODER_KIND
    except (OSError, ValueError, AttributeError):
        return False


def save_encoder_dir(
    directory: str | Path, *, weights: dict[str, np.ndarray], vocab: Vocabulary,
    config: PretrainConfig, history: dict[str, list[float]], meta: dict[str, Any],
    overwrite: bool = False, keep_checkpoint: bool = False,
) -> Path:
    """Write the encoder into a temporary sibling, meta.json last, then swap it in by rename.

    Whatever was in `directory` before is removed once the new directory is in place (its
    pretraining checkpoint too, unless keep_checkpoint); an interrupted save leaves the old
    content untouched.
    """
    directory = check_encoder_target(directory, overwrite=overwrite)
    _check_weights(weights, config, len(vocab), where=str(directory))
    tmp = staging_dir(directory)
    try:
        stored = {k: np.asarray(v, np.float16 if k in HALF_PRECISION else np.float32)
                  for k, v in weights.items()}
        np.savez(tmp / WEIGHTS_FILE, **stored)
        vocab.save(tmp / VOCAB_FILE)
        _write_json(tmp / CONFIG_FILE, config.to_dict())
        _write_json(tmp / HISTORY_FILE, history)
        full_meta = {**meta, "kind": ENCODER_KIND, "format_version": ENCODER_FORMAT_VERSION,
                     "package_version": __version__,
                     "files": {name: sha256_file(tmp / name) for name in CHECKED_FILES}}
        _write_json(tmp / META_FILE, full_meta)
        if keep_checkpoint and (directory / CHECKPOINT_DIR).is_dir():
            os.replace(directory / CHECKPOINT_DIR, tmp / CHECKPOINT_DIR)
        swap_into_place(tmp, directory)
    except BaseException:
        if (tmp / CHECKPOINT_DIR).is_dir() and directory.is_dir():
            os.replace(tmp / CHECKPOINT_DIR, directory / CHECKPOINT_DIR)
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    return directory


def _read_json(path: Path, what: str) -> Any:
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise ArtifactError(f"{path.parent}: {what} ({path.name}) is missing; run "
                            "'review-scorer pretrain' again") from None
    except (OSError, ValueError) as exc:
        raise ArtifactError(f"{path}: {what} is corrupt ({exc}); run 'review-scorer pretrain' "
                            "again") from None


def read_encoder_meta(directory: str | Path) -> dict[str, Any]:
    """Read and check an encoder's meta.json (no TensorFlow, no weights)."""
    directory = Path(directory)
    if not directory.is_dir():
        raise ArtifactError(f"{directory}: no encoder directory here; pass the folder "
                            "'review-scorer pretrain' wrote to --encoder")
    if not (directory / META_FILE).exists():
        hint = (" (a pretraining run is still in progress or was interrupted: run the same "
                "pretrain command to resume it)" if (directory / CHECKPOINT_DIR).is_dir() else "")
        raise ArtifactError(f"{directory}: not a complete encoder directory (no {META_FILE})"
                            f"{hint}")
    meta = _read_json(directory / META_FILE, "encoder metadata")
    if not isinstance(meta, dict) or meta.get("kind") != ENCODER_KIND:
        raise ArtifactError(f"{directory}: not a review-scorer encoder (a model directory? pass "
                            "it to --model-dir, not --encoder)")
    if meta.get("format_version") != ENCODER_FORMAT_VERSION:
        raise ArtifactError(
            f"{directory}: encoder format {meta.get('format_version')} is not supported by "
            f"review-scorer {__version__} (format {ENCODER_FORMAT_VERSION}); pretrain it again"
        )
    return meta


def load_encoder_dir(directory: str | Path) -> Encoder:
    """Load and validate an encoder directory; every problem is a one-line ArtifactError."""
    directory = Path(directory)
    meta = read_encoder_meta(directory)
    verify_checksums(directory, CHECKED_FILES, meta.get("files") or {},
                     redo="pretrain the encoder again")
    try:
        config = PretrainConfig.from_dict(_read_json(directory / CONFIG_FILE, "encoder config"),
                                          source=str(directory / CONFIG_FILE))
    except ConfigError as exc:
        raise ArtifactError(f"{exc}; pretrain the encoder again") from None
    vocab = Vocabulary.load(directory / VOCAB_FILE)
    try:
        with np.load(directory / WEIGHTS_FILE, allow_pickle=False) as archive:
            weights = {k: archive[k].astype(np.float32) for k in archive.files}
    except (OSError, ValueError) as exc:
        raise ArtifactError(f"{directory / WEIGHTS_FILE}: cannot read the weights ({exc}); "
                            "pretrain the encoder again") from None
    _check_weights(weights, config, len(vocab), where=str(directory))
    history = _read_json(directory / HISTORY_FILE, "pretraining history")
    return Encoder(directory, config, vocab, weights, history, meta)


def _check_weights(weights: dict[str, np.ndarray], config: PretrainConfig, vocab_size: int,
                   *, where: str) -> None:
    expected = weight_shapes(config, vocab_size)
    if set(weights) != set(expected):
        raise ArtifactError(f"{where}: the encoder weights hold {sorted(weights)}, expected "
                            f"{sorted(expected)}; pretrain the encoder again")
    for name, shape in expected.items():
        if tuple(np.shape(weights[name])) != shape:
            raise ArtifactError(
                f"{where}: encoder weight {name} has shape {tuple(np.shape(weights[name]))}, "
                f"expected {shape} for its config and {vocab_size}-word vocabulary; the files do "
                "not belong together: pretrain the encoder again"
            )
        if not np.isfinite(weights[name]).all():
            raise ArtifactError(f"{where}: encoder weight {name} holds NaN or infinite values; "
                                "pretrain the encoder again")


def packaged_encoder_dir() -> Path:
    """Where the package ships its pretrained encoder (may be absent)."""
    return Path(__file__).resolve().parents[1] / "default_encoder"


def default_encoder_dir() -> Path | None:
    """$REVIEW_SCORER_ENCODER_DIR, else the shipped encoder when the package has one, else None."""
    env = os.environ.get(ENCODER_DIR_ENV)
    if env:
        return Path(env)
    shipped = packaged_encoder_dir()
    return shipped if (shipped / META_FILE).exists() else None
