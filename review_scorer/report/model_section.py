"""The model section of every report (training and scoring), with paths cut to their names
unless the report is to show them; and the training report, which is that section alone."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

from review_scorer.config import TrainConfig
from review_scorer.report.data import ModelSection, TrainReport
from review_scorer.report.provenance import model_provenance


def _soft_targets(meta: dict) -> bool:
    distillation = meta.get("distillation")
    return isinstance(distillation, dict) and distillation.get("targets") == "soft"


def curve_keys(meta: dict) -> tuple[str, ...]:
    """The history series worth drawing. Against a teacher's soft targets Keras' training
    "accuracy" (target == rounded prediction) is near 0 for every network, so it is left out."""
    if _soft_targets(meta):
        return ("loss", "val_loss", "val_accuracy")
    return ("loss", "val_loss", "accuracy", "val_accuracy")


def curves_note(meta: dict) -> str | None:
    """What each line of the training curves is, when it is not plain train vs validation."""
    if meta.get("adaptation"):
        start = meta["adaptation"].get("start_metrics") or {}
        accuracy = start.get("accuracy")
        before = f" (the starting model: {accuracy:.1%})" if isinstance(accuracy, float) else ""
        return ("Fine-tuning on your labels: loss and accuracy on held-out labels (k-fold "
                f"cross-validation) after each round of fine-tuning{before}.")
    if _soft_targets(meta):
        pieces = (meta.get("distillation") or {}).get("validation_pieces")
        watched = (" plus pieces of its reviews labeled by the teacher (early stopping watches "
                   "both; accuracy there means agreeing with the teacher's side of 0.5)"
                   if pieces else "")
        return ("Solid: the training loss, what was optimised: cross-entropy against the labels "
                "and the teacher's probabilities together. Dashed: loss and accuracy on the "
                f"validation slice's true labels{watched}. Training accuracy is not drawn.")
    return None


# An absolute or home-relative path inside a text (POSIX or Windows): what a mailed report
# should not give away. URLs are left alone (they name a public place, not this machine).
_PATH_IN_TEXT = re.compile(r"(?<![\w:/.])(?:~|[A-Za-z]:)?(?:[/\\][^\s/\\'\"(),;]+)+[/\\]?")


def shorten_paths(text: Any) -> Any:
    """Text with every absolute path in it cut to its last part (the file or folder name)."""
    if not isinstance(text, str):
        return text
    return _PATH_IN_TEXT.sub(lambda m: Path(m.group(0).rstrip("/\\").replace("\\", "/")).name
                             or m.group(0), text)


def _short_meta(value: Any) -> Any:
    """meta.json's values with every path in their texts cut to its name (see shorten_paths)."""
    if isinstance(value, dict):
        return {k: _short_meta(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_short_meta(v) for v in value]
    return shorten_paths(value)


def model_section(*, name: str, path: str, meta: dict, config: TrainConfig | dict,
                  history: dict, metrics: dict | None, full_paths: bool = False) -> ModelSection:
    """The model's part of a report (shared by training and scoring reports).

    Unless full_paths, the model folder, the training data and every other path recorded in
    meta.json appear by their names only, so the report can be mailed.
    """
    settings = config.to_dict() if isinstance(config, TrainConfig) else dict(config)
    if not full_paths:
        meta = _short_meta(meta)
        path = Path(path).name if path else path
    return ModelSection(
        name=name,
        path=path,
        trained_at=meta.get("created_at", ""),
        data_source=_relative_source(meta.get("data_source", ""), full_paths),
        device=meta.get("device", ""),
        config=settings,
        history={k: history.get(k, []) for k in curve_keys(meta)},
        curves_note=curves_note(meta),
        best_epoch=int(meta.get("best_epoch") or 0) or None,
        test_metrics=metrics,
        sizes=meta.get("sizes", {}),
        train_seconds=float(meta.get("train_seconds") or 0.0),
        # How the model was made: pretraining, word vectors, distillation, supervised training.
        provenance=model_provenance(meta, settings),
        # temperature, ECE before/after and validation_bins (calibration.calibration_meta)
        calibration=meta.get("calibration"),
        adapted_from=(meta.get("adaptation") or {}).get("start_model"),
    )


def report_time() -> str:
    """When a report is made: now, to the second, with this machine's offset."""
    import datetime as _dt

    return _dt.datetime.now().astimezone().isoformat(timespec="seconds")


def build_train_report(model: Any, *, path: str | Path, full_paths: bool = False) -> TrainReport:
    """The training report of a model (a SentimentModel, or anything with its name, meta,
    config, history and metrics) saved in the folder `path`. Unless full_paths, it names the
    model folder and the data by their names only."""
    from review_scorer import __version__

    return TrainReport(
        title=f"{model.name} — training report",
        generated_at=report_time(),
        package_version=__version__,
        model=model_section(name=model.name, path=str(path), meta=model.meta, config=model.config,
                            history=model.history, metrics=model.metrics, full_paths=full_paths),
    )


def _relative_source(source: Any, full_paths: bool) -> Any:
    """A relative training-data path (models/x/../data.csv) cut to its name too."""
    if full_paths or not isinstance(source, str) or "://" in source:
        return source
    return Path(source).name if ("/" in source or "\\" in source) else source
