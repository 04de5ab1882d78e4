"""Command line: parse options, call one core function, print a summary, map errors to exit codes.

TensorFlow is imported only inside the commands that need it, so --help and --version stay fast.
"""

from __future__ import annotations

import contextlib
import logging
import os
import signal
import sys
import time
from pathlib import Path

import click

from review_scorer import __version__
from review_scorer.cli_summaries import (
    _print_pretrain_summary,
    _print_score_summary,
    _print_train_summary,
    _tally,
)
from review_scorer.errors import EXIT_RUNTIME, ReviewScorerError, UsageError
from review_scorer.model.sentiment import DEVICE_CHOICES
from review_scorer.scoring.score import FORMAT_CHOICES, ScoreOptions

log = logging.getLogger("review_scorer")
EXIT_INTERRUPTED = 130
CONTEXT_SETTINGS = {"help_option_names": ["-h", "--help"], "max_content_width": 100}


class _Terminated(KeyboardInterrupt):
    """SIGTERM or SIGHUP: unwinds like Ctrl-C, so every temp file is removed on the way out."""

    def __init__(self, signum: int):
        super().__init__(signal.Signals(signum).name)
        self.signum = signum


def _raise_terminated(signum: int, _frame) -> None:
    raise _Terminated(signum)


def _handle_termination_signals() -> None:
    for name in ("SIGTERM", "SIGHUP"):
        if hasattr(signal, name):
            with contextlib.suppress(ValueError):  # not the main thread (embedded use)
                signal.signal(getattr(signal, name), _raise_terminated)


def _silence_native_stderr(ctx: click.Context) -> None:
    """Send what native libraries write to file descriptor 2 (TensorFlow's C++ start-up and
    oneDNN lines) to /dev/null for this command, while our own messages still reach the user.

    Python's sys.stderr moves to a duplicate of the original descriptor, so click, logging and
    warnings keep working. --verbose skips this. Undone when the command ends.
    """
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    try:
        uses_fd2 = sys.stderr.fileno() == 2
    except (AttributeError, OSError, ValueError):
        uses_fd2 = False  # a test runner's captured stream: leave it as it is
    sys.stderr.flush()
    saved = os.dup(2)
    old_stream = sys.stderr
    if uses_fd2:
        sys.stderr = open(os.dup(saved), "w", buffering=1, encoding=old_stream.encoding or "utf-8",  # noqa: SIM115 (closed by restore)
                          errors="backslashreplace", closefd=True)
    devnull = os.open(os.devnull, os.O_WRONLY)
    os.dup2(devnull, 2)
    os.close(devnull)

    def restore() -> None:
        with contextlib.suppress(Exception):
            sys.stderr.flush()
        os.dup2(saved, 2)
        os.close(saved)
        if uses_fd2:
            sys.stderr.close()
            sys.stderr = old_stream

    ctx.call_on_close(restore)


def _fail(message: str, code: int) -> None:
    click.echo(f"error: {message}", err=True)
    sys.exit(code)


@contextlib.contextmanager
def _errors(ctx: click.Context):
    """Map everything a core call raises to one line on stderr and an exit code."""
    verbose = bool(ctx.obj and ctx.obj.get("verbose"))
    try:
        yield
    except ReviewScorerError as exc:
        if verbose:
            raise
        _fail(str(exc), exc.exit_code)
    except _Terminated as exc:
        click.echo(f"interrupted by {exc}: nothing half-written was left behind", err=True)
        sys.exit(128 + exc.signum)
    except KeyboardInterrupt:
        click.echo("interrupted: nothing half-written was left behind", err=True)
        sys.exit(EXIT_INTERRUPTED)
    except MemoryError:
        _fail("out of memory; lower --batch-size", EXIT_RUNTIME)
    except Exception as exc:  # an unexpected failure: one line unless --verbose
        if verbose:
            raise
        detail = str(exc).strip().splitlines()[0] if str(exc).strip() else ""
        _fail(f"unexpected {type(exc).__name__}: {detail[:300]} (run with --verbose for details)",
              EXIT_RUNTIME)


class _Progress:
    """A tqdm bar on stderr: bytes with percentage and ETA when the total is known (a download,
    input files whose size says how far the run is), else rows and rows/s. Off when stderr is
    not a terminal."""

    def __init__(self, label: str, enabled: bool | None = None, file=None):
        self.enabled = sys.stderr.isatty() if enabled is None else enabled
        self.label, self.file = label, file
        self.bar, self.mode, self.row_count = None, None, 0

    def _open(self, mode: str, total: int | None) -> None:
        from tqdm import tqdm

        if self.bar is not None:
            self.bar.close()
        self.mode = mode
        unit = {"bytes": "B", "rows": " rows"}[mode]
        self.bar = tqdm(total=total, desc=self.label, unit=unit, unit_scale=mode == "bytes",
                        unit_divisor=1024 if mode == "bytes" else 1000, file=self.file or sys.stderr,
                        mininterval=0.2, dynamic_ncols=True, leave=False)

    def rows(self, n: int) -> None:
        self.row_count += n
        if not self.enabled:
            return
        if self.mode is None:
            self._open("rows", None)
        if self.mode == "rows":
            self.bar.update(n)
        else:
            self.bar.set_postfix_str(f"{self.row_count:,} rows", refresh=False)

    def bytes(self, done: int, total: int | None) -> None:
        if not self.enabled or (total is None and self.label != "download"):
            return
        if self.mode != "bytes":
            self._open("bytes", total)
        if total is not None and self.bar.total != total:
            self.bar.total = total
        self.bar.update(max(done - self.bar.n, 0))

    def close(self) -> None:
        if self.bar is not None:
            self.bar.close()
            self.bar = None


def _tolerant_console() -> None:
    """A console that cannot show a character (a cp1252 Windows console, an ASCII pipe) prints
    an escape for it instead of failing: a file name or column with an emoji in it used to turn
    a finished run, outputs written, into 'unexpected UnicodeEncodeError' and exit 1."""
    for stream in (sys.stdout, sys.stderr):
        with contextlib.suppress(AttributeError, ValueError, OSError):
            stream.reconfigure(errors="backslashreplace")


@click.group(context_settings=CONTEXT_SETTINGS)
@click.version_option(__version__, "--version", prog_name="review-scorer")
@click.option("-v", "--verbose", is_flag=True, help="Show debug logging and full tracebacks.")
@click.pass_context
def cli(ctx: click.Context, verbose: bool) -> None:
    """Score files of written reviews for sentiment and write an HTML report.

    \b
    review-scorer train                  train the LSTM classifier (IMDB by default)
    review-scorer score reviews.csv      score every review: predictions + HTML report
    """
    ctx.ensure_object(dict)
    ctx.obj["verbose"] = verbose
    _tolerant_console()
    if verbose:  # TensorFlow's own log lines too (the package quiets them when this is unset)
        os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "0")
    _handle_termination_signals()
    if not verbose and ctx.invoked_subcommand is not None:
        _silence_native_stderr(ctx)
    logging.basicConfig(level=logging.DEBUG if verbose else logging.WARNING,
                        format="%(levelname)s %(name)s: %(message)s", stream=sys.stderr)


def _train_progress(event: dict) -> None:
    """One line per finished epoch, naming the stage and the ensemble member."""
    stage = event.get("stage", "")
    member = f" member {event['member']}/{event['members']}" if event.get("members", 1) > 1 else ""
    logs = event.get("logs") or {}
    shown = "  ".join(f"{k} {v:.4f}" for k, v in logs.items() if isinstance(v, float))
    left = (event.get("epochs") or 0) - (event.get("epoch") or 0)
    eta = f", at most {left * event.get('seconds', 0) / 60:.0f} min left" if left > 0 else ""
    click.echo(f"[{stage}{member}] epoch {event.get('epoch')}/{event.get('epochs')}: {shown} "
               f"({event.get('seconds', 0):.0f} s{eta})", err=True)


# `train --quick`: the shipped recipe without its slow stage (the teacher and its 200k extra
# training texts), and fewer epochs. The config file and single flags still apply on top.
QUICK_PRESET = {"teacher": "none", "epochs": 3}


def _train_stage(message: str) -> None:
    click.echo(f"[train] {message}", err=True)


@cli.command(context_settings=CONTEXT_SETTINGS)
@click.option("--data", "data_source", default="imdb", show_default=True, metavar="SOURCE",
              help="'imdb' (download once into the cache), a URL, an aclImdb directory or "
                   ".tar.gz archive, or a labeled CSV/TSV/XLSX/JSONL/Parquet file (when "
                   "fine-tuning, rows whose label is empty tell it your file's class mix).")
@click.option("--model-dir", type=click.Path(path_type=Path),
              help="Where to save the model directory (default: models/imdb-lstm for IMDB, "
                   "models/<file name> for your own labeled file).")
@click.option("--config", "config_file", type=click.Path(path_type=Path),
              help="TOML or JSON file of training settings (see README); flags override it.")
@click.option("--epochs", type=click.IntRange(min=1), help="Most epochs (early stopping may end sooner).")
@click.option("--batch-size", type=click.IntRange(min=1), help="Training batch size.")
@click.option("--max-len", type=click.IntRange(min=1), help="Tokens kept per review.")
@click.option("--vocab-size", type=click.IntRange(min=3), help="Vocabulary size, incl. 2 reserved ids.")
@click.option("--seed", type=int, help="Random seed (same seed + data + machine = same model).")
@click.option("--limit", type=click.IntRange(min=4), metavar="N",
              help="Use at most N training and N test reviews (stratified): a quick try.")
@click.option("--text-column", help="Text column of a labeled file.")
@click.option("--label-column", help="Label column of a labeled file.")
@click.option("--cache-dir", type=click.Path(path_type=Path),
              help="Download cache (default: $REVIEW_SCORER_CACHE or ~/.cache/review-scorer).")
@click.option("--encoder", "encoder_dir", type=click.Path(path_type=Path), metavar="DIR",
              help="Start from this pretrained encoder ('review-scorer pretrain'); default: the "
                   "encoder shipped with the package, if any.")
@click.option("--from-scratch", is_flag=True,
              help="Train a new network (for your own labeled file: instead of fine-tuning the "
                   "shipped model; for IMDB: without a pretrained encoder).")
@click.option("--from-model", "from_model", type=click.Path(path_type=Path), metavar="DIR",
              help="Fine-tune this model directory on your labeled file (default: the model "
                   "'score' would use, normally the shipped one).")
@click.option("--quick", is_flag=True,
              help="A quick preset for trying things: no distillation, at most 3 epochs "
                   "(about 10 minutes on IMDB on a 2-core CPU, against about 25 for the full recipe).")
@click.option("--overwrite", is_flag=True, help="Replace an existing model directory.")
@click.option("--report-paths", is_flag=True,
              help="Show full paths in the training report (default: file and folder names only).")
@click.option("--json", "as_json", is_flag=True, help="Print a machine-readable summary.")
@click.pass_context
def train(ctx, data_source, model_dir, config_file, epochs, batch_size, max_len, vocab_size, seed,
          limit, text_column, label_column, cache_dir, encoder_dir, from_scratch, from_model,
          quick, overwrite, report_paths, as_json):
    """Train the sentiment classifier, evaluate it on the test split and save it.

    Given your own labeled file, the model 'score' uses (normally the shipped one) is fine-tuned
    on it instead, unless --from-scratch; both models are compared on the same held-out labels.
    """
    from review_scorer.config import TrainConfig, load_config_file

    with _errors(ctx):
        if encoder_dir is not None and from_scratch:
            raise UsageError("--encoder and --from-scratch contradict each other; give one")
        own_file = _is_labeled_file(data_source)
        if model_dir is None:
            model_dir = Path("models") / (_file_stem(data_source) if own_file else "imdb-lstm")
        if from_model is not None and (from_scratch or not own_file):
            raise UsageError("--from-model fine-tunes on your own labeled file (--data FILE) and "
                             "cannot be combined with --from-scratch")
        if own_file and not from_scratch and encoder_dir is None:
            from review_scorer.training.adapt import run_adaptation

            _refuse_training_settings({
                "--config": config_file, "--epochs": epochs, "--batch-size": batch_size,
                "--max-len": max_len, "--vocab-size": vocab_size, "--limit": limit,
                "--quick": quick, "--cache-dir": cache_dir})

            result = run_adaptation(
                data_source=data_source, model_dir=model_dir, start_dir=from_model,
                overwrite=overwrite, text_column=text_column, label_column=label_column,
                seed=1337 if seed is None else seed, progress=_train_stage,
                report_paths=report_paths)
            _print_train_summary(result, as_json)
            return
        from review_scorer.model.encoder import default_encoder_dir, read_encoder_meta

        encoder = None if from_scratch else (encoder_dir or default_encoder_dir())
        if encoder is not None:
            read_encoder_meta(encoder)  # refuse a bad encoder before a long run
        base = TrainConfig().replace(**QUICK_PRESET) if quick else TrainConfig()
        if config_file is not None:
            base = TrainConfig.from_dict({**base.to_dict(), **load_config_file(config_file)},
                                         source=str(config_file))
        config = base.replace(epochs=epochs, batch_size=batch_size, max_len=max_len,
                              vocab_size=vocab_size, seed=seed)
        from review_scorer.model.artifacts import check_target

        check_target(model_dir, overwrite=overwrite)  # refuse before a long run
        from review_scorer.training.train import run_training

        progress = _Progress("download")
        result = run_training(
            config, data_source=data_source, model_dir=model_dir, overwrite=overwrite,
            limit=limit, cache_dir=cache_dir, text_column=text_column, label_column=label_column,
            download_progress=progress.bytes, epoch_progress=_train_progress, encoder=encoder,
            stage_progress=_train_stage,
            report_paths=report_paths,
        )
        progress.close()
        _print_train_summary(result, as_json)


def _refuse_training_settings(given: dict[str, object]) -> None:
    """Fine-tuning on a user's file keeps the starting model's network and settings and picks
    its own rounds by cross-validation, so the settings of a new training run do not apply:
    given anyway, they used to be ignored without a word."""
    named = [flag for flag, value in given.items() if value not in (None, False)]
    if named:
        raise UsageError(f"{', '.join(named)}: not used when fine-tuning the starting model on "
                         "your file (it keeps that model's settings and chooses its own rounds "
                         "by cross-validation); add --from-scratch to train a new network with "
                         "them, or leave them out")


def _is_labeled_file(data_source: str) -> bool:
    """A user's own labeled review file (not IMDB: 'imdb', a URL, an aclImdb folder or archive)."""
    path = Path(data_source)
    lowered = path.name.lower()
    return path.is_file() and not lowered.endswith((".tar.gz", ".tgz", ".tar"))


def _file_stem(data_source: str) -> str:
    name = Path(data_source).name
    for suffix in (".gz", ".bz2", ".zip", ".xz"):
        name = name.removesuffix(suffix)
    return Path(name).stem or "my-model"


class _PretrainProgress:
    """Stage lines on stderr, plus one self-updating training line (tokens/s, ETA) on a terminal."""

    def __init__(self):
        self.tty = sys.stderr.isatty()
        self.last, self.drawn = 0.0, False

    def __call__(self, event) -> None:
        if event.stage != "training":
            self.close()
            what = {"reading": "reading and encoding the text", "evaluating": "measuring perplexity",
                    "saving": "saving the encoder"}.get(event.stage, event.stage)
            epoch = f" (epoch {event.epoch}/{event.epochs})" if event.epochs else ""
            click.echo(f"[pretrain] {what}{epoch}", err=True)
            return
        now = time.monotonic()
        if not self.tty or now - self.last < 0.2:
            return
        self.last, self.drawn = now, True
        loss = "" if event.loss is None else f"  loss {event.loss:.3f}"
        click.echo(f"\repoch {event.epoch}/{event.epochs}  step {event.step:,}/{event.steps:,}  "
                   f"{event.tokens_per_s:,.0f} tokens/s  ETA {event.eta_s / 60:.1f} min{loss}  ",
                   err=True, nl=False)

    def close(self) -> None:
        if self.drawn:
            click.echo("", err=True)
            self.drawn = False


@cli.command(context_settings=CONTEXT_SETTINGS)
@click.option("--data", "data_source", default="imdb", show_default=True, metavar="SOURCE",
              help="Text to learn from: 'imdb' (its train + unlabeled reviews, never the test "
                   "set or the classifier's validation slice), a URL, an aclImdb directory or "
                   ".tar.gz archive, or any review file (its text column).")
@click.option("--out", "output_dir", type=click.Path(path_type=Path),
              default=Path("encoders/imdb-lm"), show_default=True,
              help="Encoder directory to write (its .checkpoint holds an unfinished run).")
@click.option("--config", "config_file", type=click.Path(path_type=Path),
              help="TOML or JSON file of pretraining settings; flags override it.")
@click.option("--epochs", type=click.IntRange(min=1), help="Passes over the text.")
@click.option("--batch-size", type=click.IntRange(min=1), help="Windows per batch.")
@click.option("--bptt", type=click.IntRange(min=1), help="Tokens per training window.")
@click.option("--vocab-size", type=click.IntRange(min=3), help="Vocabulary size, incl. 2 reserved ids.")
@click.option("--seed", type=int, help="Random seed (also picks the validation slice left out).")
@click.option("--time-limit", type=click.FloatRange(min=0, min_open=True), metavar="MINUTES",
              help="Stop after this many minutes, save the encoder so far; rerun to continue.")
@click.option("--init-from", type=click.Path(path_type=Path), metavar="DIR",
              help="Start from this encoder (its weights and vocabulary): more epochs, or adapt "
                   "it to your own reviews.")
@click.option("--text-column", help="Text column of a review file.")
@click.option("--cache-dir", type=click.Path(path_type=Path),
              help="Download cache (default: $REVIEW_SCORER_CACHE or ~/.cache/review-scorer).")
@click.option("--overwrite", is_flag=True, help="Replace an existing encoder directory.")
@click.option("--json", "as_json", is_flag=True, help="Print a machine-readable summary.")
@click.pass_context
def pretrain(ctx, data_source, output_dir, config_file, epochs, batch_size, bptt, vocab_size, seed,
             time_limit, init_from, text_column, cache_dir, overwrite, as_json):
    """Pretrain the encoder as language models on unlabeled reviews (resumable)."""
    from review_scorer.config import PretrainConfig, load_pretrain_config_file

    with _errors(ctx):
        base = PretrainConfig()
        if config_file is not None:
            base = PretrainConfig.from_dict(
                {**base.to_dict(), **load_pretrain_config_file(config_file)}, source=str(config_file))
        config = base.replace(epochs=epochs, batch_size=batch_size, bptt=bptt,
                              vocab_size=vocab_size, seed=seed)
        from review_scorer.training.pretrain import run_pretraining

        download, progress = _Progress("download"), _PretrainProgress()
        try:
            result = run_pretraining(
                config, source=data_source, output_dir=output_dir, text_column=text_column,
                overwrite=overwrite, cache_dir=cache_dir, progress=progress,
                download_progress=download.bytes, init_from=init_from,
                time_limit_s=time_limit * 60 if time_limit else None)
        except KeyboardInterrupt:
            progress.close()
            if (output_dir / ".checkpoint").is_dir():
                click.echo(f"checkpoint kept in {output_dir / '.checkpoint'}: run the same "
                           "command to resume", err=True)
            raise
        progress.close()
        _print_pretrain_summary(result, as_json)


_DEFAULTS = ScoreOptions()


@cli.command(context_settings=CONTEXT_SETTINGS)
# Plain strings, not click.Path: a URI such as s3://bucket/key must reach the ray engine intact.
@click.argument("files", nargs=-1, required=True, type=str)
@click.option("--model-dir", type=click.Path(path_type=Path),
              help="Model directory (default: $REVIEW_SCORER_MODEL_DIR, else models/imdb-lstm "
                   "if present, else the model shipped with the package).")
@click.option("--out-dir", default="reports", show_default=True,
              help="Where predictions and reports are written (a URI such as s3://... with "
                   "--engine ray).")
@click.option("--text-column", help="Column holding the review text (default: detected).")
@click.option("--label-column", help="Column holding true labels, for accuracy (default: detected).")
@click.option("--no-labels", is_flag=True, help="Do not look for a label column.")
@click.option("--rating-column", help="Star-rating column (1-5 or 1-10) used as labels (default: detected).")
@click.option("--date-column", help="Date column for sentiment over time (default: detected).")
@click.option("--group-column", help="Product/branch/movie column for per-group results (default: detected).")
@click.option("--id-column", help="Column identifying each review (default: detected).")
@click.option("--sheet", help="Excel sheet to read (default: the first visible one).")
@click.option("--batch-size", type=int, default=_DEFAULTS.batch_size, show_default=True,
              help="Reviews per model batch.")
@click.option("--threshold", type=float, default=_DEFAULTS.threshold, show_default=True,
              help="Score at or above which a review is positive (between 0 and 1).")
@click.option("--neutral-band", metavar="LOW,HIGH",
              help="Call calibrated scores in [LOW, HIGH) neutral, e.g. 0.35,0.65; they are "
                   "counted apart and left out of accuracy.")
@click.option("--format", "fmt", type=click.Choice(list(FORMAT_CHOICES)),
              help="Predictions file format [default: csv; parquet parts with --engine ray].")
@click.option("--excel-safe-csv", is_flag=True,
              help="Prefix CSV cells starting with = + - @ with ' so Excel shows them as text.")
@click.option("--explain", is_flag=True,
              help="Add each review's most influential words (top_words) to the predictions.")
@click.option("--device", type=click.Choice(list(DEVICE_CHOICES)), default=_DEFAULTS.device,
              show_default=True, help="Where the model runs.")
@click.option("--max-report-rows", type=int, default=_DEFAULTS.max_report_rows, show_default=True,
              help="Reviews listed in the HTML page (the predictions file always has all).")
@click.option("--no-report", is_flag=True, help="Write the predictions only.")
@click.option("--report-paths", is_flag=True,
              help="Show full paths in the report (default: file and folder names only, so the "
                   "report can be mailed without giving away where files sit).")
@click.option("--json", "as_json", is_flag=True, help="Print one machine-readable JSON summary.")
@click.option("--overwrite", is_flag=True, help="Replace existing outputs.")
@click.option("--engine", type=click.Choice(["local", "ray"]), default="local", show_default=True,
              help="local: this process; ray: a Ray cluster (needs the 'ray' extra).")
@click.option("--address", help="Ray cluster to join, e.g. 10.0.0.5:6379 (default: start one here).")
@click.option("--actors", type=click.IntRange(min=1),
              help="Ray model actors (default: one per GPU, else one per few CPUs).")
@click.pass_context
def score(ctx, files, model_dir, out_dir, text_column, label_column, no_labels, rating_column,
          date_column, group_column, id_column, sheet, batch_size, threshold, neutral_band, fmt,
          excel_safe_csv, explain, device, max_report_rows, no_report, report_paths, as_json,
          overwrite, engine,
          address, actors):
    """Score every review in FILES (CSV, TSV, XLSX, JSONL, Parquet): predictions + HTML report.

    With --engine ray, FILES may also be globs, folders or URIs (s3://, gs://) of CSV, TSV, JSONL
    or Parquet files; the predictions are part files and one report covers the run.
    """
    with _errors(ctx):
        if no_labels and label_column:
            raise UsageError("--no-labels and --label-column contradict each other; give one")
        if engine == "local" and (address or actors):
            raise UsageError("--address and --actors apply to --engine ray only")
        fmt = fmt or ("parquet" if engine == "ray" else _DEFAULTS.fmt)
        band = _neutral_band(neutral_band)
        options = ScoreOptions(
            text_column=text_column, label_column="" if no_labels else label_column,
            rating_column=rating_column, date_column=date_column, group_column=group_column,
            id_column=id_column, sheet=sheet, batch_size=batch_size, threshold=threshold,
            neutral_band=band, fmt=fmt,
            excel_safe_csv=excel_safe_csv, explain=explain, device=device,
            max_report_rows=max_report_rows, report=not no_report, overwrite=overwrite,
            report_paths=report_paths)
        progress = _Progress("scoring")
        if engine == "ray":
            from review_scorer.scoring.engines import score_with_ray

            result = score_with_ray([str(f) for f in files], model_path=model_dir, out_dir=out_dir,
                                    options=options, address=address, actors=actors,
                                    part_format=fmt, progress=progress.rows)
        else:
            from review_scorer.scoring.score import score_files

            result = score_files(list(files), model_dir=model_dir, out_dir=out_dir,
                                 options=options, progress=progress.rows,
                                 byte_progress=progress.bytes)
        progress.close()
        _print_score_summary(result, as_json)
        for f in result.failed:
            click.echo(f"error: {f.error}", err=True)
        if len(result.files) > 1 and (result.failed or not as_json):  # --json: the summary has it
            click.echo(_tally(result), err=True)
    if result.failed:
        sys.exit(max(f.exit_code for f in result.failed))


def _neutral_band(text: str | None) -> tuple[float, float] | None:
    from review_scorer.metrics import parse_neutral_band

    if text is None:
        return None
    try:
        return parse_neutral_band(text)
    except ValueError as exc:
        raise UsageError(f"--neutral-band: {exc}") from None


def main() -> None:
    """Console entry point. Click's own usage errors (a value of the wrong type, an unknown
    option, a missing argument) are shown on one line, as the product's are, with the command
    whose --help lists the options."""
    try:
        code = cli.main(prog_name="review-scorer", standalone_mode=False)
    except click.UsageError as exc:
        if isinstance(exc, getattr(click.exceptions, "NoArgsIsHelpError", ())):  # the help
            exc.show()
            sys.exit(exc.exit_code)
        where = exc.ctx.command_path if exc.ctx is not None else "review-scorer"
        click.echo(f"error: {exc.format_message()} (see '{where} --help')", err=True)
        sys.exit(exc.exit_code)
    except click.ClickException as exc:
        exc.show()
        sys.exit(exc.exit_code)
    except click.Abort:
        click.echo("Aborted!", err=True)
        sys.exit(1)
    sys.exit(code if isinstance(code, int) else 0)


if __name__ == "__main__":
    main()
