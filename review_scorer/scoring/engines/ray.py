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

from review_scorer.errors import ReviewScorerError, UsageError
from review_scorer.io.common import one_line
from review_scorer.io.part_files import (
    PART_FORMATS,
    discard_outputs,
    is_uri,
    join,
    part_name,
    prepare_outputs,
    publish_outputs,
    publish_report,
    write_part,
)
from review_scorer.metrics import DecisionRule
from review_scorer.model.sentiment import SentimentModel
from review_scorer.scoring.domain import count_words
from review_scorer.scoring.engines import EngineError
from review_scorer.scoring.engines.inputs import KIND_CHUNK, expand_inputs, read_file_chunks, run_name
from review_scorer.scoring.engines.parts import (
    Collector,
    WriteSettings,
    attach_attributions,
    build_report_context,
    load_model_payload,
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


def _row(kind: str, file_index: int, first_row: int, data: Any) -> dict[str, np.ndarray]:
    return {"kind": np.array([kind], dtype=object),
            "file": np.array([file_index], dtype=np.int64),
            "first_row": np.array([first_row], dtype=np.int64),
            "data": np.array([pickle.dumps(data, protocol=pickle.HIGHEST_PROTOCOL)], dtype=object)}


def read_files(batch: dict[str, np.ndarray], *, paths: Sequence[str], options: ScoreOptions
               ) -> Iterator[dict[str, np.ndarray]]:
    """Ray task: read each file of the batch with the package's own reader, one chunk per row,
    then the file's "end" or "error" row (parts.read_file_chunks)."""
    for file_index in batch["file"].tolist():
        for kind, first_row, payload in read_file_chunks(paths[int(file_index)], options):
            yield _row(kind, int(file_index), first_row, payload)


def encode_chunks(batch: dict[str, np.ndarray], *, text_model: SentimentModel
                  ) -> dict[str, np.ndarray]:
    """Ray task: clean and encode each chunk's texts with the model's own text path (no TensorFlow)."""
    out = []
    for kind, data in zip(batch["kind"], batch["data"]):
        if kind == KIND_CHUNK:
            part = pickle.loads(data)
            part.prepared = text_model.prepare(part.read.texts)
            part.words = count_words(part.prepared.sequences)
            data = pickle.dumps(part, protocol=pickle.HIGHEST_PROTOCOL)
        out.append(data)
    return {**batch, "data": np.array(out, dtype=object)}


def _worker_model(model_ref: list, device: str, threads: int) -> tuple[str, SentimentModel]:
    """(device description, model) in a Ray worker: TensorFlow set up for its share of the
    machine, the model directory rebuilt from the driver's copy (so nodes need none of their
    own), loaded with its checks, then removed (the worker keeps the model in memory)."""
    # Before TensorFlow is imported in this worker: keep its C++ log lines out of the logs.
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    from review_scorer.model.sentiment import select_device

    described = select_device(device)
    _share_gpu_memory()
    if threads:
        _limit_threads(threads)
    folder = tempfile.mkdtemp(prefix="review-scorer-model-")
    try:
        for name, content in ray.get(model_ref[0]).items():
            Path(folder, name).write_bytes(content)
        return described, SentimentModel.load(folder)
    finally:
        shutil.rmtree(folder, ignore_errors=True)


@ray.remote(max_retries=2)
def explain_texts(model_ref: list, texts: list[str], *, device: str, batch_size: int,
                  threads: int) -> list:
    """Ray task: word attributions for the report's rows and highlights (the local engine
    explains the rows its page shows; here they are the sample)."""
    from review_scorer.explain.attribution import Explainer

    _, model = _worker_model(model_ref, device, threads)
    return Explainer(model, batch_size=batch_size).explain(texts)


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
        out = []
        for kind, data in zip(batch["kind"], batch["data"]):
            if kind == KIND_CHUNK:
                part = pickle.loads(data)
                scores = predict_prepared(self.model, part.prepared, batch_size=self.batch_size)
                part.scored = scored_chunk(part.read, part.prepared.status, scores, self.rule,
                                           words=part.words)
                part.read = part.prepared = None
                part.device, part.actor_pid, part.actor_node = self.device, self.pid, self.node
                data = pickle.dumps(part, protocol=pickle.HIGHEST_PROTOCOL)
            out.append(data)
        return {**batch, "data": np.array(out, dtype=object)}


def _limit_threads(threads: int) -> None:
    """Keep a CPU actor's TensorFlow to its share of the machine: by default each actor would
    start a thread per core, and eight actors on a 16-core node would run 128 busy threads."""
    import tensorflow as tf

    with contextlib.suppress(RuntimeError):  # already initialised: keep as is
        tf.config.threading.set_intra_op_parallelism_threads(threads)
        tf.config.threading.set_inter_op_parallelism_threads(threads)


def _share_gpu_memory() -> None:
    """Let TensorFlow take GPU memory as it needs it: by default it reserves the whole GPU, and a
    second actor placed on the same GPU (more actors than GPUs) would then find none left."""
    import tensorflow as tf

    for gpu in tf.config.list_physical_devices("GPU"):
        with contextlib.suppress(RuntimeError, ValueError):  # already initialised: keep as is
            tf.config.experimental.set_memory_growth(gpu, True)


def write_chunks(batch: dict[str, np.ndarray], *, settings: WriteSettings) -> dict[str, np.ndarray]:
    """Ray task: write each scored chunk as its own part file; pass on only its small summary."""
    out = []
    for kind, file_index, first_row, data in zip(batch["kind"], batch["file"], batch["first_row"],
                                                 batch["data"]):
        if kind == KIND_CHUNK:
            part = pickle.loads(data)
            frame = prediction_frame(part.scored, part.rename, source=part.source)
            target = join(settings.parts_dir, part_name(int(file_index), int(first_row),
                                                        settings.part_format))
            write_part(frame, target, settings.part_format, excel_safe=settings.excel_safe)
            summary = summarise_chunk(int(file_index), part, settings,
                                      node=ray.get_runtime_context().get_node_id())
            data = pickle.dumps(summary, protocol=pickle.HIGHEST_PROTOCOL)
        out.append(data)
    return {**batch, "data": np.array(out, dtype=object)}


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
                object_store_memory: int | None = None) -> Iterator[bool]:
    """Join the cluster at `address`; without one, use this process's Ray session if it has one,
    else start a quiet local instance.

    Yields whether a new connection was made; that connection is closed on the way out (a
    local instance started here is stopped with it).
    """
    if address is None and ray.is_initialized():  # the caller's own session: used, kept
        yield False
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
        yield True
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


@contextlib.contextmanager
def _quiet_ray_data_logs() -> Iterator[None]:
    """Ray Data logs its plan, progress and timings at INFO/WARNING; the user sees our summary."""
    logger = logging.getLogger("ray.data")
    level = logger.level
    logger.setLevel(logging.ERROR)
    try:
        yield
    finally:
        logger.setLevel(level)


# DataContext settings for our run: quiet, and each chunk its own block ("any size is full"), so
# a file's chunks stream through the stages one by one and spread over the workers instead of
# travelling as one big block.
_DATA_CONTEXT = {"enable_progress_bars": False, "print_on_execution_start": False,
                 "verbose_stats_logs": False, "target_max_block_size": 1}


@contextlib.contextmanager
def _data_context() -> Iterator[None]:
    """Our Ray Data settings for the run; the caller's own are put back afterwards."""
    context = ray.data.DataContext.get_current()
    saved = {name: getattr(context, name) for name in _DATA_CONTEXT if hasattr(context, name)}
    for name, value in _DATA_CONTEXT.items():
        setattr(context, name, value)
    try:
        yield
    finally:
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
    options = _checked(options or ScoreOptions(), part_format)
    started = time.perf_counter()
    files = expand_inputs(inputs)
    _refuse_when_nothing_exists(files)
    notes: list[str] = []
    model_files, text_model = load_model_payload(model_path, notes)
    name = name or run_name(inputs)
    outputs = prepare_outputs(out_dir, name, options, files)
    notes.extend(outputs.notes)
    settings = WriteSettings(str(outputs.staging), part_format, options.threshold,
                             options.max_report_rows if options.report else 0, seed,
                             excel_safe=options.excel_safe_csv, neutral_band=options.neutral_band)
    collector = Collector(files, settings, progress)
    cluster = _Cluster(address, actors, cpus_per_task, num_cpus, object_store_memory)
    try:
        plan, startup, shown = _run(cluster, files, options, text_model, model_files, settings,
                                    collector, started)
        result = RayScoreResult(
            files=[s.result for s in collector.states], model_name=text_model.name,
            model_path=text_model.path,
            model_test_accuracy=(text_model.metrics or {}).get("accuracy"),
            device=f"{', '.join(collector.devices) or 'none'}, {plan.actors} Ray "
                   f"actor{'s' if plan.actors != 1 else ''}",
            threshold=options.threshold, seconds=0.0, notes=notes, part_format=part_format,
            neutral_band=options.neutral_band, model_adapted_from=text_model.adapted_from,
            actors=plan.actors, address=address, startup_seconds=startup,
            nodes=len(collector.nodes), actor_processes=len(collector.actor_pids))
        _publish(result, outputs, collector, shown, name, inputs, started, options, text_model,
                 settings)
    except BaseException:
        discard_outputs(outputs)
        raise
    result.seconds = time.perf_counter() - started
    return result


def _publish(result: RayScoreResult, outputs: Any, collector: Collector, shown: dict | None,
             name: str, inputs: Sequence[Any], started: float, options: ScoreOptions,
             text_model: SentimentModel, settings: WriteSettings) -> None:
    """Publish the parts and the report together when at least one file was scored; when every
    file failed, the earlier run's outputs stay as they were (as with the local engine)."""
    summary = run_summary(name, [str(i) for i in inputs], collector,
                          time.perf_counter() - started, list(result.notes))
    result.metrics = summary.metrics
    if not any(f.ok for f in result.files):
        discard_outputs(outputs)
        return
    report = None
    if shown is not None:
        context = build_report_context(summary, collector, model=text_model,
                                       device_name=result.device, settings=settings,
                                       full_paths=options.report_paths, **shown)

        def report() -> None:
            publish_report(context, outputs.report, options.overwrite)

    publish_outputs(outputs, report)
    result.predictions_dir = outputs.final
    result.report_path = outputs.report if report is not None else None
    for f in result.files:
        if f.ok:
            f.predictions_path = outputs.final


def _refuse_when_nothing_exists(files: Sequence[str]) -> None:
    """Before a cluster starts: when no input exists at all, say so now (a missing file among
    others fails in its read task, like any unreadable file, and the others are scored)."""
    from review_scorer.errors import InputError

    missing = [f for f in files if not is_uri(f) and not Path(f).exists()]
    if missing and len(missing) == len(files):
        raise InputError(f"{missing[0]}: file not found; check the path")


def _checked(options: ScoreOptions, part_format: str) -> ScoreOptions:
    if options.explain:
        raise UsageError("--explain is not available with --engine ray; use the local engine")
    if part_format not in PART_FORMATS:
        raise UsageError(f"ray parts are written as {' or '.join(PART_FORMATS)}, not {part_format!r}")
    return options


@dataclass(frozen=True)
class _Cluster:
    address: str | None
    actors: int | None
    cpus_per_task: float
    num_cpus: int | None
    object_store_memory: int | None


def _run(cluster: _Cluster, files: Sequence[str], options: ScoreOptions,
         text_model: SentimentModel, model_files: dict[str, bytes], settings: WriteSettings,
         collector: Collector, started: float) -> tuple[ActorPlan, float, dict | None]:
    """Connect, plan the actors, stream the dataset into the collector, then gather what the
    report shows; (plan, start-up seconds, report rows/highlights/drivers or None)."""
    with ray_session(cluster.address, num_cpus=cluster.num_cpus,
                     object_store_memory=cluster.object_store_memory):
        startup = time.perf_counter() - started
        plan = plan_actors(ray.cluster_resources(), actors=cluster.actors, device=options.device,
                           cpus_per_task=cluster.cpus_per_task)
        model_ref = ray.put(model_files)
        with _data_context(), _quiet_ray_data_logs():
            dataset = _build_dataset(files, options, text_model, model_ref, plan, settings,
                                     cluster.cpus_per_task)
            _drain(dataset, collector)
        collector.close()
        shown = None
        if options.report and any(s.result.ok for s in collector.states):
            shown = _report_rows(collector, settings, model_ref, options, plan)
        del model_ref
    return plan, startup, shown


def _report_rows(collector: Collector, settings: WriteSettings, model_ref: Any,
                 options: ScoreOptions, plan: ActorPlan) -> dict[str, Any]:
    """The sampled table rows and the highlights, with word attributions computed on the
    cluster (one task) and the drivers they add up to, as the local report has them."""
    rows = sampled_rows(collector, settings)
    highlights = collector.summaries.highlights.result()
    shown = [row for group in highlights.values() for row in group]
    texts = [r["text"] if r["status"] == "ok" else "" for r in rows] + [r["text"] for r in shown]
    task = explain_texts.options(num_cpus=1 if not plan.gpus else plan.cpus,
                                 num_gpus=min(1.0, plan.gpus) or None)
    try:
        attributions = ray.get(task.remote([model_ref], texts, device=options.device,
                                           batch_size=options.batch_size, threads=0))
    except ray.exceptions.RayError as exc:  # the report still has everything else
        log.warning("word attributions for the report failed: %s", _last_line(exc))
        return {"rows": rows, "highlights": highlights, "drivers": None}
    drivers = attach_attributions(rows, shown, attributions)
    return {"rows": rows, "highlights": highlights, "drivers": drivers}


def _build_dataset(files: Sequence[str], options: ScoreOptions, text_model: SentimentModel,
                   model_ref: Any, plan: ActorPlan, settings: WriteSettings,
                   cpus_per_task: float):
    dataset = ray.data.from_items([{"file": i} for i in range(len(files))],
                                  override_num_blocks=len(files))
    # A reader holds its CPU share for a whole file, so it asks for half a task's share. The
    # different share also keeps Ray from fusing reading and encoding into one task: apart, the
    # chunks of one big file are encoded by all the CPUs, not by its reader alone.
    dataset = dataset.map_batches(read_files, batch_size=1, batch_format="numpy",
                                  fn_kwargs={"paths": list(files), "options": options},
                                  num_cpus=cpus_per_task / 2)
    dataset = dataset.map_batches(encode_chunks, batch_size=1, batch_format="numpy",
                                  fn_kwargs={"text_model": text_model}, num_cpus=cpus_per_task)
    # An actor that dies (a lost node, an out-of-memory kill) is restarted and its chunk is
    # retried: Ray Data's actor pools set max_restarts and max_task_retries to -1 themselves
    # (ray/data/_internal/execution/operators/actor_pool_map_operator.py), and passing them here
    # is deprecated since Ray 2.5x. The model travels as one object the driver keeps alive for
    # the whole run, so a restarted actor can fetch it again; the list stops Ray resolving it.
    dataset = dataset.map_batches(
        ChunkScorer, batch_size=1, batch_format="numpy",
        compute=ray.data.ActorPoolStrategy(size=plan.actors),
        fn_constructor_args=([model_ref],),
        fn_constructor_kwargs={"device": options.device, "batch_size": options.batch_size,
                               "rule": options.rule,
                               "threads": 0 if plan.gpus else max(1, math.ceil(plan.cpus))},
        num_cpus=plan.cpus, num_gpus=plan.gpus or None)
    return dataset.map_batches(write_chunks, batch_size=1, batch_format="numpy",
                               fn_kwargs={"settings": settings}, num_cpus=cpus_per_task)


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
