"""What the commands print when they finish: the one-screen summaries of train, pretrain and
score, or their --json (split out of cli.py, which keeps the commands and their options)."""

from __future__ import annotations

import json

import click


def _print_train_summary(result, as_json: bool) -> None:
    m = result.test_metrics
    summary = {
        "model_dir": str(result.model_dir), "report": str(result.report_path),
        "data_source": result.data_source, "sizes": result.sizes, "epochs_run": result.epochs_run,
        "best_epoch": result.best_epoch, "train_seconds": round(result.train_seconds, 1),
        "device": result.device, "test_metrics": m,
        "pretrained_encoder": _encoder_path(result),
        "adaptation": result.adaptation, "notes": list(result.notes),
    }
    if as_json:
        _echo_json(summary)
        return
    click.echo(f"saved model: {result.model_dir}  (report: {result.report_path})")
    for note in result.notes:
        click.echo(f"note: {note}")
    if result.adaptation is not None:
        _print_adaptation(result)
        return
    if summary["pretrained_encoder"]:
        click.echo(f"fine-tuned from the encoder {summary['pretrained_encoder']}")
    click.echo(f"data: {result.data_source}  train {result.sizes['train']:,} / validation "
               f"{result.sizes['validation']:,} / test {result.sizes['test']:,}")
    click.echo(f"epochs: {result.epochs_run} (best {result.best_epoch}), "
               f"{result.train_seconds:.0f} s on {result.device}")
    shown = {k: _number(m.get(k), fmt) for k, fmt in (
        ("accuracy", ".2%"), ("precision", ".3f"), ("recall", ".3f"), ("f1", ".3f"),
        ("roc_auc", ".3f"))}
    click.echo(f"test: accuracy {shown['accuracy']}  precision {shown['precision']}  "
               f"recall {shown['recall']}  F1 {shown['f1']}  ROC AUC {shown['roc_auc']}")


def _number(value, fmt: str) -> str:
    """A metric for a summary line; "n/a" for a missing, NaN or infinite one."""
    import math

    if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
        return "n/a"
    return format(value, fmt)


def _echo_json(summary: dict) -> None:
    """Valid JSON on stdout whatever the values: NaN and infinities are written as null."""
    from review_scorer.scoring.score import json_safe

    click.echo(json.dumps(json_safe(summary), indent=2, allow_nan=False))


def _print_adaptation(result) -> None:
    a = result.adaptation
    start, adapted = a["start_metrics"], a["adapted_metrics"]
    click.echo(f"data: {result.data_source}  {a['labels']:,} labels ({a['per_class']['positive']:,} "
               f"positive, {a['per_class']['negative']:,} negative), {a['folds']}-fold "
               "cross-validation")
    click.echo(f"starting model {a['start_model']}: accuracy {start['accuracy']:.2%}  "
               f"F1 {start['f1']:.3f}  (on your held-out labels)")
    click.echo(f"adapted model:  accuracy {adapted['accuracy']:.2%}  F1 {adapted['f1']:.3f}  "
               f"(same held-out labels; {a['epochs']} epoch(s) of fine-tuning, "
               f"{result.train_seconds:.0f} s)")
    click.echo(a["verdict"])
    if a.get("advice"):
        click.echo(f"note: {a['advice']}")


def _encoder_path(result) -> str | None:
    made = (getattr(result.model, "meta", None) or {}).get("pretrained_encoder")
    return made.get("path") if made else None


def _print_pretrain_summary(result, as_json: bool) -> None:
    history = result.history
    perplexity = (history.get("heldout_perplexity") or [None])[-1]
    summary = {
        "encoder_dir": str(result.encoder_dir), "completed": result.completed,
        "epochs_done": round(result.epochs_done, 3), "tokens_seen": result.tokens_seen,
        "tokens_per_s": round(result.tokens_per_s, 1),
        "train_seconds": round(result.train_seconds, 1), "device": result.device,
        "heldout_perplexity": perplexity, "corpus": result.corpus, "history": history,
    }
    if as_json:
        _echo_json(summary)
        return
    state = "saved encoder" if result.completed else "stopped at the time limit; saved encoder so far"
    click.echo(f"{state}: {result.encoder_dir}")
    click.echo(f"text: {result.corpus.get('source')}  {result.corpus.get('reviews_used', 0):,} "
               f"reviews, {result.corpus.get('tokens', 0):,} tokens per epoch")
    shown = "n/a" if perplexity is None else f"{perplexity:.1f}"
    click.echo(f"epochs: {result.epochs_done:.2f}, {result.train_seconds / 60:.1f} min, "
               f"{result.tokens_per_s:,.0f} tokens/s on {result.device}; held-out perplexity {shown}")
    if not result.completed:
        click.echo("run the same command again to continue", err=True)


def _tally(result) -> str:
    """The closing line of a run over several files: how many were scored, which failed."""
    done = len(result.files) - len(result.failed)
    line = f"done: {done} of {len(result.files)} files scored"
    if result.failed:
        line += f", {len(result.failed)} failed: " + ", ".join(str(f.path) for f in result.failed)
    return line


def _print_score_summary(result, as_json: bool) -> None:
    if as_json:
        _echo_json(result.to_dict())
        return
    acc = _number(result.model_test_accuracy, ".2%")
    click.echo(f"model: {result.model_label} ({result.model_path})"
               + (f", {result.model_accuracy_label} {acc}"
                  if result.model_test_accuracy is not None else "")
               + f"; device: {result.device}")
    for note in result.notes:
        click.echo(f"note: {note}")
    if getattr(result, "predictions_dir", None) is not None:
        click.echo(f"ray: {result.actors} model actor(s) on {result.nodes} node(s); "
                   f"predictions: {result.predictions_dir}"
                   + (f"; report: {result.report_path}" if result.report_path else ""))
    for f in result.files:
        if not f.ok:
            continue
        share = "n/a" if f.positive_share is None else f"{f.positive_share:.1%}"
        line = (f"{f.path}: {f.rows:,} rows, {f.scored:,} scored, "
                f"{f.rows - f.scored:,} not scored, {share} positive")
        if result.neutral_band is not None and f.neutral_share is not None:
            line += f", {f.neutral_share:.1%} neutral"
        if f.metrics:
            line += f", accuracy {_number(f.metrics.get('accuracy'), '.2%')} vs labels"
            if f.metrics.get("neutral"):
                line += f" ({f.metrics['neutral']:,} neutral left out)"
        click.echo(line)
        if (f.domain or {}).get("note"):
            click.echo(f"  note: {f.domain['note']}")
        used = f"  text column: '{f.text_column}'"
        if f.labels_from_rating:
            used += f", labels: from the star ratings in '{f.label_column}'"
        else:
            used += f", labels: '{f.label_column}'" if f.label_column else ", no label column"
        if f.sheet:
            used += f", sheet: '{f.sheet}'"
        click.echo(used)
        if f.predictions_path:
            click.echo(f"  predictions: {f.predictions_path}")
        if f.report_path:
            click.echo(f"  report:      {f.report_path}")
        for note in f.notes:
            click.echo(f"  note: {note}")
