"""The model directory contract: file names, atomic save, meta.json written last, load + validate."""

from __future__ import annotations

import json
import logging
import os
import shutil
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from review_scorer import __version__
from review_scorer.config import TrainConfig
from review_scorer.errors import ArtifactError, ConfigError, OutputError
from review_scorer.io.download import sha256_file
from review_scorer.model.spec import vocabulary_rows
from review_scorer.text.vocabulary import Vocabulary

log = logging.getLogger(__name__)

FORMAT_VERSION = 1
MODEL_FILE = "model.keras"
VOCAB_FILE = "vocab.txt"
CONFIG_FILE = "config.json"
HISTORY_FILE = "history.json"
METRICS_FILE = "metrics.json"
META_FILE = "meta.json"
REPORT_FILE = "report.html"
# Files whose checksums meta.json records; the report is informative and may be regenerated.
CHECKED_FILES = (MODEL_FILE, VOCAB_FILE, CONFIG_FILE, HISTORY_FILE, METRICS_FILE)
# An adapted model may also hold an n-gram model of the user's labels (model/ngram_head.py); when
# it does, meta.json records its checksum with the others.
NGRAM_FILE = "ngrams.npz"
# A model whose recipe adds a sentiment lexicon's score to the network's logit (model/lexicon.py)
# holds the lexicon as mapped onto its vocabulary, checksummed the same way.
LEXICON_FILE = "lexicon.npz"
MODEL_DIR_ENV = "REVIEW_SCORER_MODEL_DIR"
DEFAULT_MODEL_DIR = Path("models") / "imdb-lstm"


@dataclass
class ModelBundle:
    """A loaded, validated model directory."""

    path: Path
    model: Any  # keras.Model
    vocab: Vocabulary
    config: TrainConfig
    meta: dict[str, Any]
    history: dict[str, list[float]]
    metrics: dict[str, Any] | None
    name: str = field(default="")
    ngram_head: Any = None  # model.ngram_head.NgramHead, when the directory holds one
    lexicon: Any = None  # model.lexicon.LexiconTerm, when the directory holds one
    clauses: Any = None  # model.clauses.ClauseRules, when meta.json records them

    @property
    def trained_at(self) -> str:
        return str(self.meta.get("created_at", ""))


MODEL_DIR_ENTRIES = frozenset((*CHECKED_FILES, NGRAM_FILE, LEXICON_FILE, META_FILE, REPORT_FILE))


def checked_files(recorded: Any) -> tuple[str, ...]:
    """The files whose checksums a meta.json must record: CHECKED_FILES, plus NGRAM_FILE and
    LEXICON_FILE when it records them."""
    optional = (NGRAM_FILE, LEXICON_FILE)
    return CHECKED_FILES + tuple(name for name in optional
                                 if isinstance(recorded, dict) and name in recorded)


def check_target(model_dir: str | Path, *, overwrite: bool) -> Path:
    """Refuse early (before any training) a model_dir that must not be replaced.

    An existing, non-empty folder is replaced only with overwrite, and only when it is a model
    directory (meta.json and nothing but model files): --overwrite must never delete someone's
    documents, nor the folder the command runs in.
    """
    model_dir = Path(model_dir)
    if model_dir.exists() and not model_dir.is_dir():
        raise OutputError(f"{model_dir} exists and is not a directory; choose another --model-dir")
    resolved = model_dir.resolve()
    if resolved == Path.cwd().resolve() or resolved in Path.cwd().resolve().parents:
        raise OutputError(f"{model_dir} is the current folder or holds it; choose a new folder "
                          "for the model, such as models/my-model")
    if model_dir.is_dir() and any(model_dir.iterdir()):
        if not overwrite:
            raise OutputError(f"{model_dir} already holds files; pass --overwrite to replace it "
                              "or choose another --model-dir")
        _check_replaceable(model_dir)
    parent = resolved.parent
    try:
        parent.mkdir(parents=True, exist_ok=True)
        with tempfile.TemporaryDirectory(dir=parent, prefix=".review-scorer-probe-"):
            pass
    except OSError as exc:
        raise OutputError(f"{parent}: cannot write the model directory here ({exc.strerror})") from None
    return model_dir


def _check_replaceable(model_dir: Path) -> None:
    """Only a model directory this project wrote may be replaced: its meta.json is ours (a format
    version and the checksums of the model files), every entry is a plain file with a model
    file's name, and every checksum matches. Folders that only look like one (a website with a
    meta.json and report.html, a model.keras folder) are refused."""
    def refuse(why: str) -> OutputError:
        return OutputError(f"{model_dir} is not a model directory ({why}), so --overwrite will "
                           "not replace it; move it away or choose another --model-dir")

    if not (model_dir / META_FILE).is_file():
        raise refuse(f"no {META_FILE}")
    foreign = sorted(p.name for p in model_dir.iterdir() if p.name not in MODEL_DIR_ENTRIES)
    if foreign:
        raise OutputError(f"{model_dir} holds files that are not part of a model ({foreign[0]!r}"
                          f"{' and more' if len(foreign) > 1 else ''}), so --overwrite will not "
                          "replace it; move them or choose another --model-dir")
    odd = sorted(p.name for p in model_dir.iterdir() if p.is_symlink() or not p.is_file())
    if odd:
        raise refuse(f"{odd[0]} is not a plain file")
    try:
        meta = json.loads((model_dir / META_FILE).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        raise refuse(f"{META_FILE} is not review-scorer metadata") from None
    recorded = meta.get("files") if isinstance(meta, dict) else None
    if not isinstance(meta.get("format_version") if isinstance(meta, dict) else None, int) \
            or not isinstance(recorded, dict) or set(recorded) != set(checked_files(recorded)):
        raise refuse(f"{META_FILE} is not review-scorer metadata")
    try:
        verify_checksums(model_dir, checked_files(recorded), recorded, redo="")
    except ArtifactError:
        raise refuse(f"its files do not match the checksums in {META_FILE}") from None


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


def staging_dir(target: Path) -> Path:
    """A new empty sibling of target to write into before swap_into_place; mode per umask
    (mkdtemp makes a private 0700 folder, and a model or encoder is an ordinary one)."""
    from review_scorer.io.leftovers import clean_leftovers

    parent = target.absolute().parent
    parent.mkdir(parents=True, exist_ok=True)
    for note in clean_leftovers([target], since=time.time()):
        log.warning("%s", note)
    # ".<name>.<pid>-<8 chars>.tmp": a later run removes it when this process was killed
    tmp = Path(tempfile.mkdtemp(dir=parent, prefix=f".{target.name}.{os.getpid()}-", suffix=".tmp"))
    os.chmod(tmp, 0o777 & ~_umask())
    return tmp


def swap_into_place(tmp: Path, target: Path) -> None:
    """Rename a finished staging directory onto target. What was there is set aside first and
    put back if the rename fails (or the run is interrupted), else removed afterwards."""
    old: Path | None = None
    try:
        if target.exists() or target.is_symlink():
            # beside the target itself (a link is set aside as a link, not followed)
            old = Path(tempfile.mkdtemp(dir=target.absolute().parent,
                                        prefix=f".{target.name}.{os.getpid()}-", suffix=".old"))
            os.rmdir(old)
            os.replace(target, old)
        os.replace(tmp, target)
    except BaseException:
        if old is not None and (old.exists() or old.is_symlink()) and not target.exists():
            os.replace(old, target)
        raise
    if old is not None:
        if old.is_symlink():  # the link goes; the folder it pointed to is left as it was
            old.unlink()
        else:
            shutil.rmtree(old, ignore_errors=True)


def verify_checksums(directory: Path, names: tuple[str, ...], recorded: dict, *, redo: str) -> None:
    """Every file in names exists and has the SHA-256 meta.json recorded; else one-line
    ArtifactError ending with what to do (redo)."""
    for name in names:
        path = directory / name
        if not path.is_file():
            raise ArtifactError(f"{directory}: {name} is missing; {redo}")
        if recorded.get(name) != sha256_file(path):
            raise ArtifactError(f"{path}: checksum does not match {META_FILE} (the file was "
                                f"changed or corrupted); {redo}")


def _write_json(path: Path, data: Any) -> None:
    path.write_text(json.dumps(data, indent=2, sort_keys=True, allow_nan=False) + "\n", encoding="utf-8")


def save_model_dir(
    model_dir: str | Path,
    *,
    model: Any,
    vocab: Vocabulary,
    config: TrainConfig,
    history: dict[str, list[float]],
    metrics: dict[str, Any] | None,
    meta: dict[str, Any],
    report_html: str | None = None,
    overwrite: bool = False,
    ngram_head: Any = None,
    lexicon: Any = None,
) -> Path:
    """Write every file into a temporary sibling directory, meta.json last, then swap it in.

    `model` is saved as given: pass model.export_model(trained) (uncompiled, compact).

    A directory without meta.json never loads, and the swap is a rename, so an interrupted save
    leaves either the old model or nothing under model_dir, never a mix.
    """
    model_dir = Path(model_dir)
    check_target(model_dir, overwrite=overwrite)
    tmp = staging_dir(model_dir)
    try:
        model.save(tmp / MODEL_FILE)
        vocab.save(tmp / VOCAB_FILE)
        _write_json(tmp / CONFIG_FILE, config.to_dict())
        _write_json(tmp / HISTORY_FILE, history)
        _write_json(tmp / METRICS_FILE, metrics)
        if report_html is not None:
            (tmp / REPORT_FILE).write_text(report_html, encoding="utf-8")
        checked = CHECKED_FILES
        if ngram_head is not None:
            ngram_head.save(tmp / NGRAM_FILE)
            checked = (*checked, NGRAM_FILE)
        if lexicon is not None:
            lexicon.save(tmp / LEXICON_FILE)
            checked = (*checked, LEXICON_FILE)
        full_meta = {
            **meta,
            "format_version": FORMAT_VERSION,
            "package_version": __version__,
            "files": {name: sha256_file(tmp / name) for name in checked},
        }
        _write_json(tmp / META_FILE, full_meta)
        swap_into_place(tmp, model_dir)
    except OSError as exc:  # a full disk, a read-only folder: the old model stays as it was
        shutil.rmtree(tmp, ignore_errors=True)
        raise OutputError(f"cannot write the model to {model_dir}: {exc.strerror or exc}; make "
                          "room there or choose another --model-dir (what was there is "
                          "unchanged)") from None
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    return model_dir


def _read_json(path: Path, what: str) -> Any:
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise ArtifactError(f"{path.parent}: {what} ({path.name}) is missing; retrain the model") from None
    except (OSError, ValueError) as exc:
        raise ArtifactError(f"{path}: {what} is corrupt ({exc}); retrain the model") from None


def read_meta(model_dir: str | Path) -> dict[str, Any]:
    """Read and check meta.json without loading TensorFlow."""
    model_dir = Path(model_dir)
    if not model_dir.exists():
        raise ArtifactError(
            f"{model_dir}: no model directory here; run 'review-scorer train' or pass --model-dir"
        )
    if not model_dir.is_dir():
        raise ArtifactError(f"{model_dir}: not a directory; pass the model directory to --model-dir")
    if not (model_dir / META_FILE).exists():
        raise ArtifactError(
            f"{model_dir}: not a complete model directory (no {META_FILE}); "
            "it may be from an interrupted run: retrain the model"
        )
    meta = _read_json(model_dir / META_FILE, "model metadata")
    if not isinstance(meta, dict) or "format_version" not in meta:
        raise ArtifactError(f"{model_dir / META_FILE}: not review-scorer metadata; retrain the model")
    _check_meta_values(meta, model_dir / META_FILE)
    if meta["format_version"] != FORMAT_VERSION:
        raise ArtifactError(
            f"{model_dir}: model format {meta['format_version']} is not supported by review-scorer "
            f"{__version__} (format {FORMAT_VERSION}); retrain the model with this version"
        )
    return meta


# meta.json keys the program reads, and the types they must have when present.
_META_TYPES: dict[str, tuple[type, ...]] = {
    "format_version": (int,), "name": (str,), "created_at": (str,), "data_source": (str,),
    "device": (str,), "best_epoch": (int, type(None)), "epochs_run": (int,),
    "train_seconds": (int, float), "sizes": (dict,), "files": (dict,), "seed": (int,),
    "ensemble_size": (int,),
}
_METRIC_NUMBERS = ("accuracy", "precision", "recall", "f1", "loss")


def _check_meta_values(meta: dict, path: Path) -> None:
    for key, types in _META_TYPES.items():
        value = meta.get(key)
        if key in meta and (not isinstance(value, types) or isinstance(value, bool)):
            raise ArtifactError(f"{path}: '{key}' has the wrong type ({value!r}); the metadata is "
                                "damaged: retrain the model")
    if not all(isinstance(v, int) and not isinstance(v, bool) for v in meta.get("sizes", {}).values()):
        raise ArtifactError(f"{path}: 'sizes' must hold whole numbers; retrain the model")


def _check_metrics(metrics: Any, path: Path) -> None:
    if metrics is None:
        return
    if not isinstance(metrics, dict):
        raise ArtifactError(f"{path}: test metrics must be a table of values; retrain the model")
    for key in _METRIC_NUMBERS:
        value = metrics.get(key)
        if key in metrics and (isinstance(value, bool) or not isinstance(value, (int, float))):
            raise ArtifactError(f"{path}: '{key}' must be a number, not {value!r}; retrain the model")
    if "roc_auc" in metrics and not isinstance(metrics["roc_auc"], (int, float, type(None))):
        raise ArtifactError(f"{path}: 'roc_auc' must be a number; retrain the model")


def load_model_dir(model_dir: str | Path, *, network: bool = True) -> ModelBundle:
    """Load and validate a model directory. Every problem is an ArtifactError with one line.
    network=False: the same checks without loading the Keras network (no TensorFlow)."""
    model_dir = Path(model_dir)
    meta = read_meta(model_dir)
    recorded = meta.get("files") or {}
    verify_checksums(model_dir, checked_files(recorded), recorded, redo="retrain the model")
    try:
        config = TrainConfig.from_dict(_read_json(model_dir / CONFIG_FILE, "training config"),
                                       source=str(model_dir / CONFIG_FILE))
    except ConfigError as exc:
        raise ArtifactError(f"{exc}; retrain the model") from None
    vocab = Vocabulary.load(model_dir / VOCAB_FILE)
    history = _read_json(model_dir / HISTORY_FILE, "training history")
    metrics = _read_json(model_dir / METRICS_FILE, "test metrics")
    _check_metrics(metrics, model_dir / METRICS_FILE)
    if not isinstance(history, dict):
        raise ArtifactError(f"{model_dir / HISTORY_FILE}: not a training history; retrain the model")
    model = _load_keras_model(model_dir / MODEL_FILE) if network else None
    embedding_rows = vocabulary_rows(model) if network else None
    if embedding_rows is not None and embedding_rows != len(vocab):
        raise ArtifactError(
            f"{model_dir}: the model expects {embedding_rows} vocabulary ids but {VOCAB_FILE} has "
            f"{len(vocab)}; the files do not belong together: retrain the model"
        )
    name = str(meta.get("name") or model_dir.name)
    head = None
    if NGRAM_FILE in recorded:
        from review_scorer.model.ngram_head import NgramHead

        try:
            head = NgramHead.load(model_dir / NGRAM_FILE)
        except (OSError, ValueError, KeyError):
            raise ArtifactError(f"{model_dir / NGRAM_FILE}: not a valid n-gram model; "
                                "retrain the model") from None
        if head.vocab_size != len(vocab):
            raise ArtifactError(f"{model_dir / NGRAM_FILE}: made for a vocabulary of "
                                f"{head.vocab_size} ids, but {VOCAB_FILE} has {len(vocab)}; "
                                "retrain the model")
    return ModelBundle(model_dir, model, vocab, config, meta, history, metrics, name, head,
                       _lexicon_term(model_dir, recorded, len(vocab)),
                       _clause_rules(model_dir, meta, vocab))


def _clause_rules(model_dir: Path, meta: dict, vocab: Vocabulary) -> Any:
    """The clause rules meta.json records (model/clauses.py), or None when it records none."""
    record = meta.get("clause_rules")
    if record is None:
        return None
    from review_scorer.model.clauses import ClauseRules

    try:
        return ClauseRules.from_meta(record, vocab.tokens)
    except ValueError as exc:
        raise ArtifactError(f"{model_dir / META_FILE}: its clause_rules record is damaged ({exc}); "
                            "retrain the model") from None


def _lexicon_term(model_dir: Path, recorded: Any, vocab_size: int) -> Any:
    """The directory's lexicon term (model/lexicon.py), or None when it holds none."""
    if LEXICON_FILE not in recorded:
        return None
    from review_scorer.model.lexicon import LexiconTerm

    try:
        return LexiconTerm.load(model_dir / LEXICON_FILE, vocab_size=vocab_size)
    except (OSError, ValueError, KeyError):
        raise ArtifactError(f"{model_dir / LEXICON_FILE}: not a valid lexicon for {VOCAB_FILE}'s "
                            f"{vocab_size} ids; retrain the model") from None


def _load_keras_model(path: Path) -> Any:
    from review_scorer.model.native_logs import quiet_tensorflow

    quiet_tensorflow()  # before Keras pulls TensorFlow in
    import keras

    import review_scorer.model.network  # noqa: F401  (registers MaskedPooling for deserialisation)

    try:
        # safe_mode refuses Lambda layers and any pickled Python code inside the archive.
        model = keras.saving.load_model(path, compile=False, safe_mode=True)
    except Exception as exc:  # Keras raises many types for a bad archive
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise ArtifactError(
            f"{path}: cannot load the Keras model ({first[:200]}); retrain the model"
        ) from None
    shape = tuple(model.output_shape) if hasattr(model, "output_shape") else ()
    if len(model.inputs) != 1 or shape[-1:] != (1,):
        raise ArtifactError(f"{path}: not a review-scorer sentiment model; retrain the model")
    return model


def packaged_model_dir() -> Path:
    """The default model shipped inside the package."""
    return Path(__file__).resolve().parents[1] / "default_model"


def resolve_model_dir(model_dir: str | Path | None, *, notes: list[str] | None = None) -> Path:
    """--model-dir, else $REVIEW_SCORER_MODEL_DIR, else ./models/imdb-lstm if present, else shipped.

    When ./models/imdb-lstm exists but is not a complete model directory (an interrupted
    training run), the shipped model is used and a note appended to `notes` says so.
    """
    if model_dir:
        return Path(model_dir)
    env = os.environ.get(MODEL_DIR_ENV)
    if env:
        return Path(env)
    if (DEFAULT_MODEL_DIR / META_FILE).exists():
        return DEFAULT_MODEL_DIR
    if DEFAULT_MODEL_DIR.exists() and notes is not None:
        notes.append(f"{DEFAULT_MODEL_DIR} is not a complete model directory (no {META_FILE}; "
                     "an interrupted training run?): using the model shipped in the package")
    shipped = packaged_model_dir()
    if (shipped / META_FILE).exists():
        return shipped
    raise ArtifactError(
        "no model found: pass --model-dir, set REVIEW_SCORER_MODEL_DIR, or run 'review-scorer train'"
    )
