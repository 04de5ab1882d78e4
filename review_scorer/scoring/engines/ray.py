"""The ray engine: read and encode files as CPU tasks, score in model actors, write Parquet parts."""

from __future__ import annotations

import contextlib
import logging
import math
import os
import pickle
import shutil
import socket
import tempfile
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import ray

from review_scorer.errors import InputError, ReviewScorerError, UsageError
from review_scorer.io.common import one_line
from review_scorer.io.part_files import (
    PART_FORMATS,
    discard_outputs,
    is_uri,
    join,
    part_name,
    prepare_outputs,
    publish_outputs,
    write_part,
)
from review_scorer.metrics import DecisionRule
from review_scorer.model.sentiment import SentimentModel
from review_scorer.report.publish import publish_report
from review_scorer.scoring.domain import DomainReference, count_words
from review_scorer.scoring.engines import EngineError
from review_scorer.scoring.engines.inputs import (
    KIND_CHUNK,
    PartChunk,
    expand_inputs,
    read_file_chunks,
    run_name,
)
from review_scorer.scoring.engines.parts import (
    ChunkSummary,
    Collector,
    WriteSettings,
    attach_attributions,
    load_model_payload,
    run_report,
    run_summary,
    sampled_rows,
    summarise_chunk,
)
from review_scorer.scoring.kernel import predict_prepared, prediction_frame, scored_chunk
from review_scorer.scoring.results import ScoreOptions, ScoreResult, json_safe

log = logging.getLogger(__name__)

CONNECT_TIMEOUT_S = 5.0


# ------------------------------------------------------------------------------ the result


@dataclass
class RayScoreResult(ScoreResult):
    """A ray-engine run: the per-file results plus where the parts and the one report went."""

    predictions_dir: str | Path | None = None  # a local folder, or a URI
    report_path: str | Path | None = None
    part_format: str = "parquet"
    actors: int = 0
    address: str | None = None
    startup_seconds: float = 0.0
    metrics: dict[str, Any] | None = None
    nodes: int = 0  # cluster nodes that ran a model actor or wrote a part
    actor_processes: int = 0  # distinct actor processes that scored (more than actors: restarts)

    def to_dict(self) -> dict[str, Any]:
        """ScoreResult's summary plus the engine, parts, report, actors and nodes."""
        out = super().to_dict()
        out.update(engine="ray", predictions_dir=str(self.predictions_dir) if self.predictions_dir
                   else None, report=str(self.report_path) if self.report_path else None,
                   part_format=self.part_format, actors=self.actors, address=self.address,
                   startup_seconds=round(self.startup_seconds, 3), metrics=self.metrics,
                   nodes=self.nodes, actor_processes=self.actor_processes)
        return json_safe(out)


# ------------------------------------------------------------------------------ stages
# Each row of the dataset is one chunk of one file (or a file's end/error marker), pickled in
# "data": the dataset keeps one schema whatever columns the input files have.


def _pack(data: Any) -> bytes:
    return pickle.dumps(data, protocol=pickle.HIGHEST_PROTOCOL)


def read_files(batch: dict[str, np.ndarray], *, paths: Sequence[str], options: ScoreOptions
               ) -> Iterator[dict[str, np.ndarray]]:
    """Ray task: read each file of the batch with the package's own reader, one chunk per row,
    then the file's "end" or "error" row (inputs.read_file_chunks)."""
    for file_index in batch["file"].tolist():
        for kind, first_row, payload in read_file_chunks(paths[int(file_index)], options):
            yield {"kind": np.array([kind], dtype=object),
                   "file": np.array([file_index], dtype=np.int64),
                   "first_row": np.array([first_row], dtype=np.int64),
                   "data": np.array([_pack(payload)], dtype=object)}


def _each_chunk(batch: dict[str, np.ndarray], step: Callable[[PartChunk, int, int], Any]
                ) -> dict[str, np.ndarray]:
    """The batch with step(chunk, file index, first row) as the data of each chunk row; the end
    and error markers pass as they are."""
    data = [_pack(step(pickle.loads(d), int(f), int(r))) if k == KIND_CHUNK else d
            for k, f, r, d in zip(batch["kind"], batch["file"], batch["first_row"], batch["data"])]
    return {**batch, "data": np.array(data, dtype=object)}


def encode_chunks(batch: dict[str, np.ndarray], *, text_model: SentimentModel
                  ) -> dict[str, np.ndarray]:
    """Ray task: clean and encode each chunk's texts with the model's own text path (no TensorFlow)."""
    def encode(part: PartChunk, *_: int) -> PartChunk:
        part.prepared = text_model.prepare(part.read.texts)
        part.words = count_words(part.prepared.sequences)
        return part

    return _each_chunk(batch, encode)


def _worker_model(model_ref: list, device: str, threads: int = 0) -> tuple[str, SentimentModel]:
    """(device description, model) in a Ray worker: TensorFlow set up for its share of the
    machine, the model directory rebuilt from the driver's copy (so nodes need none of their
    own), loaded with its checks, then removed (the worker keeps the model in memory)."""
    from review_scorer.model.sentiment import select_device

    described = select_device(device)  # imports TensorFlow, its native log lines kept quiet
    import tensorflow as tf

    # TensorFlow takes GPU memory as it needs it: by default it reserves the whole GPU, and a
    # second actor placed on the same GPU (more actors than GPUs) would then find none left.
    for gpu in tf.config.list_physical_devices("GPU"):
        with contextlib.suppress(RuntimeError, ValueError):  # already initialised: keep as is
            tf.config.experimental.set_memory_growth(gpu, True)
    if threads:  # a CPU actor's share: else each starts a thread per core (8 actors x 16 cores)
        with contextlib.suppress(RuntimeError):
            tf.config.threading.set_intra_op_parallelism_threads(threads)
            tf.config.threading.set_inter_op_parallelism_threads(threads)
    folder = tempfile.mkdtemp(prefix="review-scorer-model-")
    try:
        for name, content in ray.get(model_ref[0]).items():
            Path(folder, name).write_bytes(content)
        return described, SentimentModel.load(folder)
    finally:
        shutil.rmtree(folder, ignore_errors=True)


@ray.remote(max_retries=2)
def explain_texts(model_ref: list, texts: list[str], *, device: str, batch_size: int) -> list:
    """Ray task: word attributions for the report's rows and highlights (the local engine
    explains the rows its page shows; here they are the sample)."""
    from review_scorer.explain.attribution import Explainer

    return Explainer(_worker_model(model_ref, device)[1], batch_size=batch_size).explain(texts)


class ChunkScorer:
    """Ray actor: holds one SentimentModel (loaded once) and scores the encoded chunks it is
    given with the scoring kernel, as the local engine does (kernel.scored_chunk)."""

    def __init__(self, model_ref: list, *, device: str, batch_size: int, rule: DecisionRule,
                 threads: int = 0):
        self.device, self.model = _worker_model(model_ref, device, threads)
        self.batch_size, self.rule = batch_size, rule
        self.pid = os.getpid()
        self.node = ray.get_runtime_context().get_node_id()

    def __call__(self, batch: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        return _each_chunk(batch, self._score)

    def _score(self, part: PartChunk, *_: int) -> PartChunk:
        scores = predict_prepared(self.model, part.prepared, batch_size=self.batch_size)
        part.scored = scored_chunk(part.read, part.prepared.status, scores, self.rule,
                                   words=part.words)
        part.read = part.prepared = None
        part.device, part.actor_pid, part.actor_node = self.device, self.pid, self.node
        return part


def write_chunks(batch: dict[str, np.ndarray], *, settings: WriteSettings) -> dict[str, np.ndarray]:
    """Ray task: write each scored chunk as its own part file; pass on only its small summary."""
    node = ray.get_runtime_context().get_node_id()

    def write(part: PartChunk, file_index: int, first_row: int) -> ChunkSummary:
        target = join(settings.parts_dir, part_name(file_index, first_row, settings.part_format))
        write_part(prediction_frame(part.scored, part.rename, source=part.source), target,
                   settings.part_format, excel_safe=settings.excel_safe)
        return summarise_chunk(file_index, part, settings, node=node)

    return _each_chunk(batch, write)


# ------------------------------------------------------------------------------ the cluster


@dataclass(frozen=True)
class ActorPlan:
    """How many model actors run and what each one holds."""

    actors: int
    cpus: float
    gpus: float


def plan_actors(resources: dict[str, float], *, actors: int | None, device: str,
                cpus_per_task: float) -> ActorPlan:
    """One actor per GPU when the cluster has GPUs, else one per 2 CPUs; `actors` overrides.

    On CPUs the actors leave room for one task of each CPU stage (a reader, which asks for half
    a task's share and holds it for a whole file, an encoder and a writer): with less, writers
    wait for the readers to finish and nothing streams; with no room at all, a reader holds the
    last CPU while waiting for encoders that can never start.
    """
    from review_scorer.errors import DeviceError

    gpus = 0.0 if device == "cpu" else float(resources.get("GPU", 0.0))
    cpus = float(resources.get("CPU", 1.0))
    if device == "gpu" and gpus < 1:
        raise DeviceError("--device gpu: the Ray cluster has no GPU; add GPU nodes or use "
                          "--device auto/cpu")
    if actors is not None and actors < 1:
        raise UsageError("--actors must be at least 1")
    if gpus >= 1:
        count = actors or int(gpus)
        return ActorPlan(count, 1.0 if cpus >= count + 2.5 * cpus_per_task else 0.5,
                         min(1.0, int(gpus) / count))
    count = actors or max(1, int(cpus // 2))
    spare = cpus - 2.5 * cpus_per_task
    per_actor = 1.0 if spare >= count else max(0.01, int(100 * spare / count) / 100)
    return ActorPlan(count, per_actor, 0.0)


def _check_reachable(address: str) -> None:
    """Fail in seconds, not minutes of retries, when nothing listens at host:port."""
    target = address.split("://", 1)[-1]
    host, _, port = target.rpartition(":")
    if not host or not port.isdigit():
        raise UsageError(f"--address {address!r}: expected HOST:PORT, for example 10.0.0.5:6379, "
                         "or 'auto' for the cluster this machine belongs to")
    try:
        with socket.create_connection((host.strip("[]"), int(port)), timeout=CONNECT_TIMEOUT_S):
            pass
    except OSError as exc:
        raise EngineError(
            f"cannot reach the Ray cluster at {address} ({exc.strerror or one_line(exc)}); "
            "start it with 'ray start --head' on that machine or check --address"
        ) from None


@contextlib.contextmanager
def ray_session(address: str | None, *, num_cpus: int | None = None,
                object_store_memory: int | None = None) -> Iterator[None]:
    """Join the cluster at `address`; without one, use this process's Ray session if it has one,
    else start a quiet local instance. A connection made here is closed on the way out (a local
    instance started here is stopped with it)."""
    if address is None and ray.is_initialized():  # the caller's own session: used, kept
        yield
        return
    if address not in (None, "auto"):
        _check_reachable(address)
    kwargs: dict[str, Any] = {"address": address} if address else {
        "num_cpus": num_cpus, "include_dashboard": False, "object_store_memory": object_store_memory}
    try:
        with _quiet_ray_core():
            ray.init(log_to_driver=False, logging_level=logging.ERROR, **kwargs)
    except Exception as exc:  # Ray raises ConnectionError, RuntimeError, ValueError here
        raise EngineError(f"cannot start or join Ray{f' at {address}' if address else ''} "
                          f"({one_line(exc)[:300]})") from None
    try:
        yield
    finally:
        ray.shutdown()


@contextlib.contextmanager
def _quiet_ray_core() -> Iterator[None]:
    """Ray's C++ core prints an ERROR line to the driver's stderr for every Ray Data actor pool
    (its actors are restartable and take object-store arguments, ray-project/ray#53727): keep
    the core's lines below FATAL out, unless the user set RAY_BACKEND_LOG_LEVEL."""
    if "RAY_BACKEND_LOG_LEVEL" in os.environ:
        yield
        return
    os.environ["RAY_BACKEND_LOG_LEVEL"] = "fatal"
    # The core announces that level on stderr as it starts: hide stderr for that moment only
    # (the processes Ray starts keep their own log files under its session folder).
    saved = os.dup(2)
    try:
        with open(os.devnull, "wb") as null:
            os.dup2(null.fileno(), 2)
        yield
    finally:
        os.dup2(saved, 2)
        os.close(saved)
        os.environ.pop("RAY_BACKEND_LOG_LEVEL", None)


# DataContext settings for our run: quiet, and each chunk its own block ("any size is full"), so
# a file's chunks stream through the stages one by one and spread over the workers instead of
# travelling as one big block.
_DATA_CONTEXT = {"enable_progress_bars": False, "print_on_execution_start": False,
                 "verbose_stats_logs": False, "target_max_block_size": 1}


@contextlib.contextmanager
def _data_context() -> Iterator[None]:
    """Our Ray Data settings for the run, and its logs (plan, progress, timings at INFO/WARNING)
    quiet: the user sees our summary. The caller's own are put back afterwards."""
    context, logger = ray.data.DataContext.get_current(), logging.getLogger("ray.data")
    saved = {name: getattr(context, name) for name in _DATA_CONTEXT if hasattr(context, name)}
    level = logger.level
    for name, value in _DATA_CONTEXT.items():
        setattr(context, name, value)
    logger.setLevel(logging.ERROR)
    try:
        yield
    finally:
        logger.setLevel(level)
        for name, value in saved.items():
            setattr(context, name, value)


# ------------------------------------------------------------------------------ the entry point


def score_with_ray(
    inputs: Sequence[str | os.PathLike[str]],
    *,
    model_path: str | Path | None = None,
    out_dir: str | Path = "reports",
    options: ScoreOptions | None = None,
    address: str | None = None,
    actors: int | None = None,
    cpus_per_task: float = 0.5,
    num_cpus: int | None = None,
    part_format: str = "parquet",
    name: str | None = None,
    seed: int = 0,
    object_store_memory: int | None = None,
    progress: Callable[[int], None] | None = None,
) -> RayScoreResult:
    """Score every input file on Ray: CPU tasks read and encode, model actors score, and each
    chunk becomes a part file under OUT_DIR/NAME.predictions/ with `source_file` and `row`.

    Without `address` a local Ray instance is started (and stopped); with one, the driver joins
    that cluster. `out_dir` is a folder every node can write (shared), or a URI such as
    s3://bucket/reports that pyarrow writes to. A file that fails is recorded as failed (its
    parts removed) and the others are still scored. One report, OUT_DIR/NAME.html, covers the
    run. Raises EngineError when the cluster cannot be reached or fails.
    """
    options = options or ScoreOptions()
    if options.explain:
        raise UsageError("--explain is not available with --engine ray; use the local engine")
    if part_format not in PART_FORMATS:
        raise UsageError(f"ray parts are written as {' or '.join(PART_FORMATS)}, not {part_format!r}")
    run = _Run(inputs, options, model_path=model_path, out_dir=out_dir, part_format=part_format,
               name=name, seed=seed, progress=progress)
    try:
        with ray_session(address, num_cpus=num_cpus, object_store_memory=object_store_memory):
            startup = time.perf_counter() - run.started
            plan = plan_actors(ray.cluster_resources(), actors=actors, device=options.device,
                               cpus_per_task=cpus_per_task)
            shown = run.score(plan, cpus_per_task)
        result = run.result(plan, address, startup)
        run.publish(result, shown)
    except BaseException:
        discard_outputs(run.outputs)
        raise
    result.seconds = time.perf_counter() - run.started
    return result


class _Run:
    """One run on the driver: its files, settings and staged outputs (set up before any cluster
    is joined), the summaries its dataset streams back, and its published outputs."""

    def __init__(self, inputs: Sequence[Any], options: ScoreOptions, *, model_path: Any,
                 out_dir: str | Path, part_format: str, name: str | None, seed: int,
                 progress: Callable[[int], None] | None):
        self.started, self.options = time.perf_counter(), options
        self.inputs, self.files = [str(i) for i in inputs], expand_inputs(inputs)
        # With no input at all there, say so before a cluster starts (a missing file among
        # others fails in its read task, like any unreadable file, and the others are scored).
        missing = [f for f in self.files if not is_uri(f) and not Path(f).exists()]
        if len(missing) == len(self.files):
            raise InputError(f"{missing[0]}: file not found; check the path")
        self.notes: list[str] = []
        self.model_files, self.model = load_model_payload(model_path, self.notes)
        self.name = name or run_name(inputs)
        self.outputs = prepare_outputs(out_dir, self.name, options, self.files)
        self.notes.extend(self.outputs.notes)
        self.settings = WriteSettings(str(self.outputs.staging), part_format, options.threshold,
                                      options.max_report_rows if options.report else 0, seed,
                                      excel_safe=options.excel_safe_csv,
                                      neutral_band=options.neutral_band,
                                      domain_reference=DomainReference.from_meta(self.model.meta))
        self.collector = Collector(self.files, self.settings, progress)

    def score(self, plan: ActorPlan, cpus_per_task: float) -> dict[str, Any] | None:
        """Stream the dataset's summaries into the collector, then gather what the report shows
        (None without a report or without a scored file)."""
        # The model travels as one object the driver keeps alive for the whole run, so a
        # restarted actor can fetch it again; the list stops Ray resolving it.
        model_ref = [ray.put(self.model_files)]
        with _data_context():
            _drain(self._dataset(model_ref, plan, cpus_per_task), self.collector)
        self.collector.close()
        if self.options.report and any(s.result.ok for s in self.collector.states):
            return self._report_rows(model_ref, plan)
        return None

    def _dataset(self, model_ref: list, plan: ActorPlan, cpus_per_task: float) -> Any:
        o = self.options
        dataset = ray.data.from_items([{"file": i} for i in range(len(self.files))],
                                      override_num_blocks=len(self.files))
        # A reader holds its CPU share for a whole file, so it asks for half a task's share. The
        # different share also keeps Ray from fusing reading and encoding into one task: apart,
        # the chunks of one big file are encoded by all the CPUs, not by its reader alone.
        dataset = dataset.map_batches(read_files, batch_size=1, batch_format="numpy",
                                      fn_kwargs={"paths": self.files, "options": o},
                                      num_cpus=cpus_per_task / 2)
        dataset = dataset.map_batches(encode_chunks, batch_size=1, batch_format="numpy",
                                      fn_kwargs={"text_model": self.model}, num_cpus=cpus_per_task)
        # An actor that dies (a lost node, an out-of-memory kill) is restarted and its chunk is
        # retried: Ray Data's actor pools set max_restarts and max_task_retries to -1 themselves
        # (ray/data/_internal/execution/operators/actor_pool_map_operator.py), and passing them
        # here is deprecated since Ray 2.5x.
        dataset = dataset.map_batches(
            ChunkScorer, batch_size=1, batch_format="numpy",
            compute=ray.data.ActorPoolStrategy(size=plan.actors), fn_constructor_args=(model_ref,),
            fn_constructor_kwargs={"device": o.device, "batch_size": o.batch_size, "rule": o.rule,
                                   "threads": 0 if plan.gpus else max(1, math.ceil(plan.cpus))},
            num_cpus=plan.cpus, num_gpus=plan.gpus or None)
        return dataset.map_batches(write_chunks, batch_size=1, batch_format="numpy",
                                   fn_kwargs={"settings": self.settings}, num_cpus=cpus_per_task)

    def _report_rows(self, model_ref: list, plan: ActorPlan) -> dict[str, Any]:
        """The sampled table rows and the highlights, with word attributions computed on the
        cluster (one task) and the drivers they add up to, as the local report has them."""
        rows = sampled_rows(self.collector, self.settings)
        highlights = self.collector.summaries.highlights.result()
        shown = [row for group in highlights.values() for row in group]
        texts = [r["text"] if r["status"] == "ok" else "" for r in rows] + [r["text"] for r in shown]
        task = explain_texts.options(num_cpus=1 if not plan.gpus else plan.cpus,
                                     num_gpus=min(1.0, plan.gpus) or None)
        drivers = None
        try:
            attributions = ray.get(task.remote(model_ref, texts, device=self.options.device,
                                               batch_size=self.options.batch_size))
        except ray.exceptions.RayError as exc:  # the report still has everything else
            log.warning("word attributions for the report failed: %s", _last_line(exc))
        else:
            drivers = attach_attributions(rows, shown, attributions)
        return {"rows": rows, "highlights": highlights, "drivers": drivers}

    def result(self, plan: ActorPlan, address: str | None, startup: float) -> RayScoreResult:
        c, m, o = self.collector, self.model, self.options
        return RayScoreResult(
            files=[s.result for s in c.states], model_name=m.name, model_path=m.path,
            model_test_accuracy=(m.metrics or {}).get("accuracy"),
            model_accuracy_kind=(m.metrics or {}).get("kind"),
            device=f"{', '.join(c.devices) or 'none'}, {plan.actors} Ray "
                   f"actor{'s' if plan.actors != 1 else ''}",
            threshold=o.threshold, seconds=0.0, notes=self.notes,
            part_format=self.settings.part_format, neutral_band=o.neutral_band,
            model_adapted_from=m.adapted_from, actors=plan.actors, address=address,
            startup_seconds=startup, nodes=len(c.nodes), actor_processes=len(c.actor_pids))

    def publish(self, result: RayScoreResult, shown: dict[str, Any] | None) -> None:
        """Publish the parts and the report together when at least one file was scored; when every
        file failed, the earlier run's outputs stay as they were (as with the local engine)."""
        summary = run_summary(self.name, self.inputs, self.collector,
                              time.perf_counter() - self.started, list(result.notes))
        result.metrics = summary.metrics
        if not any(f.ok for f in result.files):
            discard_outputs(self.outputs)
            return
        report = None
        if shown is not None:
            made = run_report(summary, self.collector, model=self.model, device_name=result.device,
                              settings=self.settings, full_paths=self.options.report_paths, **shown)

            def report() -> None:
                publish_report(made, self.outputs.report, overwrite=self.options.overwrite)

        publish_outputs(self.outputs, report)
        result.predictions_dir = self.outputs.final
        result.report_path = self.outputs.report if report is not None else None
        for f in result.files:
            if f.ok:
                f.predictions_path = self.outputs.final


def _drain(dataset: Any, collector: Collector) -> None:
    """Pull the chunk summaries to the driver; a failure inside Ray becomes one line."""
    try:
        for row in dataset.iter_rows():
            collector.add(str(row["kind"]), int(row["file"]), int(row["first_row"]), row["data"])
    except ray.exceptions.RayError as exc:
        ours = _our_error(exc)
        if ours is not None:
            raise ours from None
        raise EngineError(f"the Ray run failed: {_last_line(exc)}") from None


def _our_error(exc: BaseException) -> ReviewScorerError | None:
    """The ReviewScorerError behind a Ray exception (a model that fails to load in an actor)."""
    seen: set[int] = set()
    current: BaseException | None = exc
    while current is not None and id(current) not in seen:
        seen.add(id(current))
        if isinstance(current, ReviewScorerError):
            return type(current)(str(current))
        current = getattr(current, "cause", None) or current.__cause__ or current.__context__
    return None


def _last_line(exc: BaseException) -> str:
    lines = [line.strip() for line in str(exc).splitlines() if line.strip()]
    return (lines[-1] if lines else type(exc).__name__)[:300]
