"""Binary classification metrics (scikit-learn underneath), score histograms and report highlights."""

from __future__ import annotations

import heapq
import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

HISTOGRAM_BINS = 20
HIGHLIGHT_TEXT_CHARS = 1000
LOG_LOSS_EPS = 1e-7


SENTIMENT_NAMES = ("negative", "positive")
NEUTRAL = "neutral"
# The 3-way decision as codes: what DecisionRule.decide returns per row.
DECIDED_NONE, DECIDED_NEGATIVE, DECIDED_POSITIVE, DECIDED_NEUTRAL = -1, 0, 1, 2


def check_neutral_band(band: Any) -> tuple[float, float] | None:
    """The band as a (low, high) pair of floats, or None; ValueError unless 0 <= low < high <= 1."""
    if band is None:
        return None
    try:
        low, high = (float(v) for v in band)
    except (TypeError, ValueError):
        raise ValueError(f"a neutral band is two numbers LOW,HIGH, not {band!r}") from None
    if not (math.isfinite(low) and math.isfinite(high) and 0.0 <= low < high <= 1.0):
        raise ValueError(f"a neutral band needs 0 <= LOW < HIGH <= 1, not {low:g},{high:g}")
    return low, high


def parse_neutral_band(text: str) -> tuple[float, float]:
    """"0.35,0.65" -> (0.35, 0.65); ValueError (with the expected form) for anything else."""
    parts = str(text).split(",")
    try:
        if len(parts) != 2:
            raise ValueError
        band = check_neutral_band([float(p) for p in parts])
    except ValueError:
        raise ValueError(f"expected LOW,HIGH with 0 <= LOW < HIGH <= 1 (e.g. 0.35,0.65), "
                         f"not {text!r}") from None
    assert band is not None
    return band


@dataclass(frozen=True)
class DecisionRule:
    """The one positive/negative/neutral decision.

    A score at or above the threshold is positive, below it negative; with a neutral band
    (low, high), a score in [low, high) is neutral instead, whichever side of the threshold it
    is on. Scores are compared in float32, the precision the model gives them in, with the
    threshold and the band rounded to float32 as well: a review whose float32 score is exactly
    0.7 is positive at --threshold 0.7 (in float64, float32(0.7) is 0.69999998..., just below
    0.7). Scoring makes the decision once per chunk and carries it on the chunk; every consumer
    (the predictions, the counts, the metrics, the histogram, the highlights and the report's
    sections) reads that decision instead of comparing again.
    """

    threshold: float
    neutral_band: tuple[float, float] | None = None

    def __post_init__(self) -> None:
        object.__setattr__(self, "neutral_band", check_neutral_band(self.neutral_band))

    def decide(self, scores: Any, scored: Any = None) -> np.ndarray:
        """Per row, an int8 code: DECIDED_POSITIVE, DECIDED_NEGATIVE, DECIDED_NEUTRAL, or
        DECIDED_NONE where the row is not scored or its score is NaN."""
        values = np.asarray(scores, dtype=np.float32).reshape(-1)
        out = np.full(values.size, DECIDED_NONE, dtype=np.int8)
        with np.errstate(invalid="ignore"):
            out[values >= np.float32(self.threshold)] = DECIDED_POSITIVE
            out[values < np.float32(self.threshold)] = DECIDED_NEGATIVE
            if self.neutral_band is not None:
                low, high = (np.float32(v) for v in self.neutral_band)
                out[(values >= low) & (values < high)] = DECIDED_NEUTRAL
        if scored is not None:
            out[~np.asarray(scored, dtype=bool).reshape(-1)] = DECIDED_NONE
        return out

    def positive(self, scores: Any, scored: Any = None) -> np.ndarray:
        """Per row: True where the row is positive; False where negative, neutral, not scored
        or NaN."""
        return self.decide(scores, scored) == DECIDED_POSITIVE

    def neutral(self, scores: Any, scored: Any = None) -> np.ndarray:
        """Per row: True where the score falls in the neutral band (never without a band)."""
        return self.decide(scores, scored) == DECIDED_NEUTRAL


def sentiment_names(positive: Any, scored: Any, neutral: Any = None) -> np.ndarray:
    """"positive" / "negative" / "neutral" for scored rows from their decisions, "" for the others."""
    positive = np.asarray(positive, dtype=bool)
    names = np.where(positive, "positive", "negative").astype(object)
    if neutral is not None:
        names[np.asarray(neutral, dtype=bool).reshape(names.shape)] = NEUTRAL
    return np.where(np.asarray(scored, dtype=bool), names, "").astype(object)


def decision_codes(positive: Any, neutral: Any = None) -> np.ndarray:
    """DecisionRule.decide's int8 codes from (positive, neutral) bool decisions."""
    codes = np.where(np.asarray(positive, dtype=bool).reshape(-1), DECIDED_POSITIVE,
                     DECIDED_NEGATIVE).astype(np.int8)
    if neutral is not None:
        codes[np.asarray(neutral, dtype=bool).reshape(-1)] = DECIDED_NEUTRAL
    return codes


def _as_labels(y_true: Any, name: str = "y_true") -> np.ndarray:
    labels = np.asarray(y_true)
    if labels.ndim != 1:
        labels = labels.reshape(-1)
    if labels.size and not np.isin(labels, (0, 1)).all():
        raise ValueError(f"{name} must contain only 0 and 1")
    return labels.astype(np.int64, copy=False)


def _as_scores(y_score: Any, name: str = "y_score") -> np.ndarray:
    scores = np.asarray(y_score)
    if scores.ndim != 1:
        scores = scores.reshape(-1)
    if not np.issubdtype(scores.dtype, np.number) and scores.dtype != np.bool_:
        raise ValueError(f"{name} must be numeric, got dtype {scores.dtype}")
    if scores.size and not np.isfinite(scores).all():
        raise ValueError(f"{name} contains NaN or infinite values")
    return scores


def _check_lengths(a: np.ndarray, b: np.ndarray) -> None:
    if a.shape[0] != b.shape[0]:
        raise ValueError(f"length mismatch: {a.shape[0]} labels but {b.shape[0]} scores")


def confusion_matrix(y_true: Any, y_pred: Any) -> np.ndarray:
    """Return the 2x2 int64 matrix [[tn, fp], [fn, tp]] for 0/1 labels and 0/1 predictions."""
    from sklearn import metrics as skm

    labels = _as_labels(y_true)
    preds = _as_labels(y_pred, "y_pred")
    _check_lengths(labels, preds)
    return skm.confusion_matrix(labels, preds, labels=[0, 1]).astype(np.int64)


def roc_auc(y_true: Any, y_score: Any) -> float | None:
    """Area under the ROC curve (ties count one half); None when only one class is present,
    since the curve is then undefined."""
    from sklearn import metrics as skm

    labels = _as_labels(y_true)
    scores = _as_scores(y_score)
    _check_lengths(labels, scores)
    if labels.size == 0 or labels.min() == labels.max():
        return None
    return float(skm.roc_auc_score(labels, scores.astype(np.float64, copy=False)))


def log_loss(y_true: Any, y_score: Any, eps: float = LOG_LOSS_EPS, *,
             weights: Any = None) -> float:
    """Mean binary cross-entropy, with scores clipped to [eps, 1 - eps] as Keras does; with
    `weights`, the weighted mean."""
    labels = _as_labels(y_true)
    scores = _as_scores(y_score)
    _check_lengths(labels, scores)
    if labels.size == 0:
        raise ValueError("log_loss needs at least one labeled score")
    # float64 so that 1 - eps is representable (it rounds to 1.0 in float32 for small eps)
    probs = np.clip(scores.astype(np.float64), eps, 1.0 - eps)
    losses = np.where(labels == 1, -np.log(probs), -np.log1p(-probs))
    return float(losses.mean() if weights is None else np.average(losses, weights=weights))


def binary_metrics(
    y_true: Any,
    y_score: Any,
    *,
    threshold: float = 0.5,
    loss: float | None = None,
    predictions: Any = None,
) -> dict[str, Any]:
    """Return the contract's metrics dict for 0/1 labels and scores in [0, 1].

    `predictions` are the positive/negative decisions already made for the scores (bool or
    0/1); without them DecisionRule(threshold) decides. `loss` is reported as given; when it
    is None the mean binary cross-entropy of the scores is computed instead. Precision, recall
    and F1 are 0.0 (never NaN) when their denominator is zero. All values are plain Python
    numbers, so the dict is JSON-serialisable as it stands.
    """
    labels = _as_labels(y_true)
    scores = _as_scores(y_score)
    _check_lengths(labels, scores)
    if labels.size == 0:
        raise ValueError("binary_metrics needs at least one labeled score")
    from sklearn import metrics as skm

    if predictions is None:
        preds = DecisionRule(threshold).positive(scores).astype(np.int64)
    else:
        preds = np.asarray(predictions).reshape(-1).astype(np.int64)
        _check_lengths(labels, preds)
    tn, fp, fn, tp = (int(v) for v in confusion_matrix(labels, preds).ravel())
    # zero_division=0: precision/recall/F1 are 0.0, never NaN, when nothing was predicted.
    precision, recall, f1, _ = skm.precision_recall_fscore_support(
        labels, preds, average="binary", pos_label=1, zero_division=0)
    return {
        "n": int(labels.size),
        "accuracy": float((tp + tn) / labels.size),
        "precision": float(precision),
        "recall": float(recall),
        "f1": float(f1),
        "roc_auc": roc_auc(labels, scores),
        "loss": float(loss) if loss is not None else log_loss(labels, scores),
        "threshold": float(threshold),
        "confusion": [[tn, fp], [fn, tp]],
    }


def histogram_edges(bins: int = HISTOGRAM_BINS) -> list[float]:
    """Return bins + 1 evenly spaced edges over [0, 1] as plain floats (rounded for display)."""
    if bins < 1:
        raise ValueError("bins must be at least 1")
    return [round(float(edge), 12) for edge in np.linspace(0.0, 1.0, bins + 1)]


def _histogram_counts(scores: np.ndarray, bins: int) -> np.ndarray:
    # Clipping keeps every score counted even if a caller passes a value a hair outside [0, 1];
    # np.histogram puts a score of exactly 1.0 into the last bin.
    clipped = np.clip(scores.astype(np.float64, copy=False), 0.0, 1.0)
    counts, _ = np.histogram(clipped, bins=bins, range=(0.0, 1.0))
    return counts.astype(np.int64)


def score_histogram(scores: Any, bins: int = HISTOGRAM_BINS) -> dict[str, list]:
    """Count scores in `bins` equal bins over [0, 1]; the last bin includes 1.0.

    Returns {"edges": [bins + 1 floats], "counts": [bins ints]}.
    """
    values = _as_scores(scores, "scores")
    edges = histogram_edges(bins)
    return {"edges": edges, "counts": [int(c) for c in _histogram_counts(values, bins)]}


class StreamingMetrics:
    """Accumulate counts, a histogram and metrics for a file that is scored chunk by chunk.

    The histogram and the counters use constant memory. Exact ROC AUC needs every labeled
    score, so the scores, labels and decisions of rows that are both scored and labeled are
    kept, in compact arrays (float32 score, int8 label, two bool decisions: 7 bytes a row). The
    positive/negative/neutral decision is the chunk's own (DecisionRule), so `n_positive`,
    `n_neutral`, the histogram's counts and the confusion matrix of `result()` all count the
    same rows. Rows decided neutral (a --neutral-band) are left out of the metrics, as a
    middle star rating is, and counted; the reliability bins (calibration) keep every labeled
    scored row, since they judge the probabilities, not the decisions.
    """

    def __init__(self, threshold: float = 0.5, *, bins: int = HISTOGRAM_BINS,
                 neutral_band: tuple[float, float] | None = None,
                 reliability_bins: int = 10) -> None:
        """Start empty; `threshold` and `neutral_band` decide the rows not given a decision."""
        self.rule = DecisionRule(threshold, neutral_band)
        self.threshold = float(threshold)
        self.bins = int(bins)
        self.n_rows = 0
        self.n_scored = 0
        self.n_positive = 0
        self.n_neutral = 0
        self._counts = np.zeros(self.bins, dtype=np.int64)
        self._positive_counts = np.zeros(self.bins, dtype=np.int64)
        self._neutral_counts = np.zeros(self.bins, dtype=np.int64)
        # per reliability bin: labeled rows, their score sum and their positive labels
        self._reliability = np.zeros((3, int(reliability_bins)), dtype=np.float64)
        self._labeled_scores: list[np.ndarray] = []
        self._labeled_labels: list[np.ndarray] = []
        self._labeled_positive: list[np.ndarray] = []
        self._labeled_neutral: list[np.ndarray] = []

    @property
    def neutral_band(self) -> tuple[float, float] | None:
        return self.rule.neutral_band

    @property
    def n_negative(self) -> int:
        """Scored rows decided negative (below the threshold and outside the neutral band)."""
        return self.n_scored - self.n_positive - self.n_neutral

    @property
    def n_labeled(self) -> int:
        """Rows seen so far that are both scored and labeled."""
        return int(sum(part.size for part in self._labeled_labels))

    def update(self, labels: Any, scores: Any, scored_mask: Any, positive: Any = None,
               neutral: Any = None) -> None:
        """Add one chunk: labels (int8, -1 = unknown), scores, which rows were scored, and the
        chunk's decisions (positive, neutral; made here with the DecisionRule when not given).

        Scores of rows outside `scored_mask` are ignored (they may be NaN).
        """
        mask = np.asarray(scored_mask, dtype=bool).reshape(-1)
        all_scores = np.asarray(scores).reshape(-1)
        all_labels = np.asarray(labels).reshape(-1)
        if positive is None and mask.size == all_scores.size:
            decided = self.rule.decide(all_scores, mask)
            positive, neutral = decided == DECIDED_POSITIVE, decided == DECIDED_NEUTRAL
        positive = np.asarray(False if positive is None else positive, dtype=bool).reshape(-1)
        neutral = (np.zeros(positive.size, bool) if neutral is None
                   else np.asarray(neutral, dtype=bool).reshape(-1))
        if not (mask.size == all_scores.size == all_labels.size == positive.size == neutral.size):
            raise ValueError(
                f"chunk length mismatch: {all_labels.size} labels, {all_scores.size} scores, "
                f"{mask.size} mask entries, {positive.size} decisions, {neutral.size} neutral flags")
        self.n_rows += int(mask.size)
        chunk_scores = _as_scores(all_scores[mask], "scores").astype(np.float32)
        chunk_labels = all_labels[mask]
        chunk_positive, chunk_neutral = positive[mask], neutral[mask]
        if chunk_labels.size and not np.isin(chunk_labels, (-1, 0, 1)).all():
            raise ValueError("labels must contain only -1 (unknown), 0 and 1")
        self.n_scored += int(chunk_scores.size)
        self.n_positive += int(np.count_nonzero(chunk_positive))
        self.n_neutral += int(np.count_nonzero(chunk_neutral))
        self._counts += _histogram_counts(chunk_scores, self.bins)
        self._positive_counts += _histogram_counts(chunk_scores[chunk_positive], self.bins)
        self._neutral_counts += _histogram_counts(chunk_scores[chunk_neutral], self.bins)
        known = chunk_labels >= 0
        if known.any():
            self._add_reliability(chunk_scores[known], chunk_labels[known])
            self._labeled_scores.append(chunk_scores[known])
            self._labeled_labels.append(chunk_labels[known].astype(np.int8))
            self._labeled_positive.append(chunk_positive[known])
            self._labeled_neutral.append(chunk_neutral[known])

    def _add_reliability(self, scores: np.ndarray, labels: np.ndarray) -> None:
        from review_scorer.model.calibration import reliability_sums

        self._reliability += reliability_sums(scores, labels, self._reliability.shape[1])

    def merge(self, other: StreamingMetrics) -> StreamingMetrics:
        """Add another accumulator's rows to this one (partitions reduced on one machine); returns self.

        Counts and the histogram add up and the labeled scores are kept, so the merged result
        equals what one accumulator fed every chunk would give.
        """
        if not isinstance(other, StreamingMetrics):
            raise TypeError(f"cannot merge {type(other).__name__} into StreamingMetrics")
        if other.rule != self.rule or other.bins != self.bins:
            raise ValueError("cannot merge accumulators with different decision rules or bins")
        self.n_rows += other.n_rows
        self.n_scored += other.n_scored
        self.n_positive += other.n_positive
        self.n_neutral += other.n_neutral
        self._counts = self._counts + other._counts
        self._positive_counts = self._positive_counts + other._positive_counts
        self._neutral_counts = self._neutral_counts + other._neutral_counts
        self._reliability = self._reliability + other._reliability
        self._labeled_scores.extend(other._labeled_scores)
        self._labeled_labels.extend(other._labeled_labels)
        self._labeled_positive.extend(other._labeled_positive)
        self._labeled_neutral.extend(other._labeled_neutral)
        return self

    def histogram(self) -> dict[str, list]:
        """Return the histogram of every scored row so far: score_histogram()'s "edges" and
        "counts", plus "positive_counts", how many of each bin's rows were decided positive (a
        bin that straddles the threshold holds both kinds), and with a neutral band
        "neutral_counts" and "neutral_band"."""
        out = {"edges": histogram_edges(self.bins), "counts": [int(c) for c in self._counts],
               "positive_counts": [int(c) for c in self._positive_counts]}
        if self.neutral_band is not None:
            out["neutral_counts"] = [int(c) for c in self._neutral_counts]
            out["neutral_band"] = list(self.neutral_band)
        return out

    def calibration(self) -> dict[str, Any] | None:
        """The labeled rows' reliability bins and ECE (calibration.bins_from_sums), or None."""
        from review_scorer.model.calibration import bins_from_sums, ece_of_bins

        if not self._reliability[0].sum():
            return None
        table = bins_from_sums(*self._reliability)
        return {"bins": table, "ece": ece_of_bins(table), "n": int(self._reliability[0].sum())}

    def _labeled(self) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
        parts = (self._labeled_scores, self._labeled_labels, self._labeled_positive,
                 self._labeled_neutral)
        merged = tuple(np.concatenate(p) for p in parts)
        # Keep the chunks merged so repeated calls do not concatenate again.
        (self._labeled_scores, self._labeled_labels, self._labeled_positive,
         self._labeled_neutral) = ([m] for m in merged)
        return merged  # type: ignore[return-value]

    def result(self, threshold: float | None = None) -> dict[str, Any] | None:
        """Return binary_metrics over rows both scored, labeled and decided (not neutral), or
        None when there are none; "neutral" counts the labeled rows left out as neutral and,
        with any labeled row, "ece" and "reliability" judge the probabilities of all of them.

        The predictions are the decisions the rows were scored with; another `threshold` than
        the one given at construction decides them again with DecisionRule (same band).
        """
        if not self._labeled_labels:
            return None
        scores, labels, positive, neutral = self._labeled()
        chosen = self.threshold if threshold is None else float(threshold)
        if chosen != self.threshold:
            decided = DecisionRule(chosen, self.neutral_band).decide(scores)
            positive, neutral = decided == DECIDED_POSITIVE, decided == DECIDED_NEUTRAL
        keep = ~neutral
        if not keep.any():
            return None
        metrics = binary_metrics(labels[keep], scores[keep], threshold=chosen,
                                 predictions=positive[keep])
        metrics["threshold"] = chosen
        metrics["neutral"] = int(np.count_nonzero(neutral))
        calibration = self.calibration()
        if calibration is not None:
            metrics["ece"] = calibration["ece"]
            metrics["reliability"] = calibration["bins"]
        return metrics


def _is_missing(value: Any) -> bool:
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return True
    # pandas' NA / NaT markers, recognised without importing pandas here
    return type(value).__name__ in ("NAType", "NaTType")


def _clean_text(text: Any) -> str:
    return "" if _is_missing(text) else str(text)[:HIGHLIGHT_TEXT_CHARS]


def _clean_id(value: Any) -> str | None:
    if _is_missing(value):
        return None
    if isinstance(value, np.generic):
        value = value.item()
    return str(value)


_LABEL_NAMES = {1: "positive", 0: "negative"}


class HighlightTracker:
    """Keep the k most positive, k most negative and k least certain scored rows, in O(k) memory.

    "Least certain" means closest to 0.5. Ties are broken by source rank then row number,
    earlier first, so the result depends neither on how the rows were split into chunks nor on
    the order in which partitions are merged. Rows come back as the contract's row dicts
    (status "ok"; sentiment: the chunk's decision; text cut to 1000 characters), with
    "source_file" added when the rows were offered with a `source`.
    """

    CATEGORIES = ("positive", "negative", "uncertain")

    def __init__(self, k: int = 5, *, threshold: float = 0.5) -> None:
        """Track up to `k` rows per category; `threshold` sets each row's sentiment."""
        if k < 0:
            raise ValueError("k must not be negative")
        self.k = int(k)
        self.threshold = float(threshold)
        # Min-heaps of (key, -source rank, -row, row dict): the root is the weakest kept
        # candidate, and a larger key means a better one. (source, row) pairs are unique, so
        # the dicts are never compared.
        self._heaps: dict[str, list[tuple[float, int, int, dict[str, Any]]]] = {
            name: [] for name in self.CATEGORIES
        }

    @staticmethod
    def _keys(scores: np.ndarray) -> dict[str, np.ndarray]:
        return {
            "positive": scores,
            "negative": -scores,
            "uncertain": -np.abs(scores - 0.5),
        }

    def update(
        self,
        rows: Any,
        scores: Any,
        texts: Sequence[Any],
        ids: Sequence[Any] | None = None,
        labels: Any = None,
        *,
        positive: Any = None,
        neutral: Any = None,
        source: str | None = None,
        source_rank: int = 0,
    ) -> None:
        """Offer a chunk of scored rows (row numbers, scores, texts, optional ids and labels).

        Labels are 1/0, or -1 for unknown. `positive` and `neutral` hold the rows' decisions
        (made here with DecisionRule when not given); the positive and negative lists only take
        rows decided so, the uncertain one any row. Rows with a non-finite score are skipped. With
        several input files, pass each file's name as `source` and its position as
        `source_rank` (ties go to the earlier file).
        """
        row_numbers = np.asarray(rows, dtype=np.int64).reshape(-1)
        values = np.asarray(scores, dtype=np.float64).reshape(-1)
        n = row_numbers.size
        # object arrays so that positions, not a pandas index, pick the items
        texts = np.asarray(texts, dtype=object).reshape(-1)
        ids = None if ids is None else np.asarray(ids, dtype=object).reshape(-1)
        label_values = None if labels is None else np.asarray(labels).reshape(-1)
        codes = (DecisionRule(self.threshold).decide(scores) if positive is None
                 else decision_codes(positive, neutral))
        _check_chunk(n, values, texts, ids, label_values)
        if codes.size != n:
            raise ValueError(f"chunk length mismatch: {n} rows but {codes.size} decisions")
        if self.k == 0 or n == 0:
            return
        finite = np.flatnonzero(np.isfinite(values))
        if finite.size == 0:
            return
        rank = -int(source_rank)
        wanted = {"positive": DECIDED_POSITIVE, "negative": DECIDED_NEGATIVE}
        for name, all_keys in self._keys(values).items():
            rows = finite if name not in wanted else finite[codes[finite] == wanted[name]]
            keys = all_keys[rows]
            # Only this chunk's best k can enter the heap: pick them with one exact sort
            # (best key first, then earliest row) instead of pushing every row.
            order = np.lexsort((row_numbers[rows], -keys))[: self.k]
            for position in order:
                index = int(rows[position])
                entry_key = (float(keys[position]), rank, -int(row_numbers[index]))
                if not self._admits(name, entry_key):
                    # chunk candidates are sorted best first, so the rest are weaker still
                    break
                row = self._row_dict(index, row_numbers, values, texts, ids, label_values,
                                     int(codes[index]))
                if source is not None:
                    row["source_file"] = str(source)
                self._push(name, (*entry_key, row))

    def _admits(self, name: str, entry_key: tuple[float, int, int]) -> bool:
        heap = self._heaps[name]
        return len(heap) < self.k or entry_key > heap[0][:3]

    def _push(self, name: str, entry: tuple[float, int, int, dict[str, Any]]) -> None:
        heap = self._heaps[name]
        if len(heap) < self.k:
            heapq.heappush(heap, entry)
        else:
            heapq.heapreplace(heap, entry)

    def merge(self, other: HighlightTracker) -> HighlightTracker:
        """Take in another tracker's candidates (one partition's); returns self.

        The result equals one tracker fed every row, as long as no (source, row) pair was
        offered to both.
        """
        if not isinstance(other, HighlightTracker):
            raise TypeError(f"cannot merge {type(other).__name__} into HighlightTracker")
        if other.k != self.k or other.threshold != self.threshold:
            raise ValueError("cannot merge trackers with different k or thresholds")
        for name, heap in other._heaps.items():
            for entry in sorted(heap, key=lambda e: e[:3], reverse=True):
                if not self._admits(name, entry[:3]):
                    break
                self._push(name, (*entry[:3], dict(entry[3])))
        return self

    def _row_dict(
        self,
        index: int,
        rows: np.ndarray,
        scores: np.ndarray,
        texts: np.ndarray,
        ids: np.ndarray | None,
        labels: np.ndarray | None,
        code: int,
    ) -> dict[str, Any]:
        score = float(scores[index])
        label = None if labels is None else _LABEL_NAMES.get(int(labels[index]))
        return {
            "row": int(rows[index]),
            "id": None if ids is None else _clean_id(ids[index]),
            "text": _clean_text(texts[index]),
            "sentiment": (NEUTRAL if code == DECIDED_NEUTRAL
                          else SENTIMENT_NAMES[int(code == DECIDED_POSITIVE)]),
            "score": score,
            "status": "ok",
            "label": label,
        }

    def result(self) -> dict[str, list[dict[str, Any]]]:
        """Return {"positive", "negative", "uncertain"} row lists, the strongest candidate first.

        "positive" and "negative" only hold rows on their side of the threshold: a file with two
        negative reviews lists two, not the two plus its least positive ones.
        """
        out = {
            name: [dict(entry[3]) for entry in sorted(heap, key=lambda e: e[:3], reverse=True)]
            for name, heap in self._heaps.items()
        }
        out["positive"] = [r for r in out["positive"] if r["sentiment"] == "positive"]
        out["negative"] = [r for r in out["negative"] if r["sentiment"] == "negative"]
        return out


def _check_chunk(n: int, values: np.ndarray, texts: np.ndarray, ids: np.ndarray | None,
                 labels: np.ndarray | None) -> None:
    if values.size != n or texts.size != n:
        raise ValueError(f"chunk length mismatch: {n} rows, {values.size} scores, {texts.size} texts")
    if ids is not None and ids.size != n:
        raise ValueError(f"chunk length mismatch: {n} rows but {ids.size} ids")
    if labels is not None and labels.size != n:
        raise ValueError(f"chunk length mismatch: {n} rows but {labels.size} labels")


_U64 = np.uint64


def _mix64(values: np.ndarray) -> np.ndarray:
    """splitmix64's finaliser: a fast, well-spread hash of uint64 values (wraps on purpose)."""
    with np.errstate(over="ignore"):
        z = values.astype(_U64, copy=True)
        z ^= z >> _U64(30)
        z *= _U64(0xBF58476D1CE4E5B9)
        z ^= z >> _U64(27)
        z *= _U64(0x94D049BB133111EB)
        z ^= z >> _U64(31)
    return z


def sample_priorities(seed: int, source_rank: int, rows: Any) -> np.ndarray:
    """Seeded pseudo-random uint64 priorities of (source, row) pairs, the same in any process."""
    row_numbers = np.asarray(rows, dtype=np.int64).reshape(-1).astype(_U64)
    with np.errstate(over="ignore"):
        base = _mix64(np.asarray([int(seed) & 0xFFFFFFFFFFFFFFFF], dtype=_U64))[0]
        base = _mix64(np.asarray([base ^ _U64(int(source_rank) & 0xFFFFFFFFFFFFFFFF)]))[0]
        return _mix64(row_numbers * _U64(0x9E3779B97F4A7C15) ^ base)


class RowSample:
    """A seeded uniform sample of at most k rows, kept as (priority, source rank, row, label).

    Each row gets a pseudo-random priority from (seed, source rank, row) and the sample is the
    k rows with the smallest priorities ("bottom-k" sampling). Unlike a reservoir, that set does
    not depend on the order the rows arrive in or on how they were partitioned, and two samples
    merge by keeping the k smallest of both. Only these small keys are kept; the caller fetches
    the rows' texts afterwards.
    """

    def __init__(self, k: int, *, seed: int = 0) -> None:
        """Keep at most `k` rows; `seed` fixes which ones."""
        if k < 0:
            raise ValueError("k must not be negative")
        self.k = int(k)
        self.seed = int(seed)
        self.n_seen = 0
        self._keys = np.zeros((0, 3), dtype=np.uint64)  # priority, source rank, row
        self._labels = np.zeros(0, dtype=np.int8)

    def __len__(self) -> int:
        return int(self._labels.size)

    def update(self, rows: Any, *, source_rank: int = 0, labels: Any = None) -> None:
        """Offer a chunk of rows of one source (row numbers and optional int8 labels, -1 unknown)."""
        row_numbers = np.asarray(rows, dtype=np.int64).reshape(-1)
        n = row_numbers.size
        label_values = (np.full(n, -1, np.int8) if labels is None
                        else np.asarray(labels, dtype=np.int8).reshape(-1))
        if label_values.size != n:
            raise ValueError(f"chunk length mismatch: {n} rows but {label_values.size} labels")
        self.n_seen += n
        keys = np.empty((n, 3), dtype=np.uint64)
        keys[:, 0] = sample_priorities(self.seed, source_rank, row_numbers)
        keys[:, 1] = np.uint64(source_rank)
        keys[:, 2] = row_numbers.astype(np.uint64)
        self._keep(np.concatenate([self._keys, keys]), np.concatenate([self._labels, label_values]))

    def merge(self, other: RowSample) -> RowSample:
        """Take in another sample of the same seed and size; returns self."""
        if not isinstance(other, RowSample):
            raise TypeError(f"cannot merge {type(other).__name__} into RowSample")
        if other.k != self.k or other.seed != self.seed:
            raise ValueError("cannot merge samples with different sizes or seeds")
        self.n_seen += other.n_seen
        self._keep(np.concatenate([self._keys, other._keys]),
                   np.concatenate([self._labels, other._labels]))
        return self

    def _keep(self, keys: np.ndarray, labels: np.ndarray) -> None:
        # lexsort: the last key is the primary one; rank and row break (unlikely) priority ties
        order = np.lexsort((keys[:, 2], keys[:, 1], keys[:, 0]))[: self.k]
        self._keys, self._labels = keys[order], labels[order]

    def rows(self) -> list[tuple[int, int, int]]:
        """The sampled (source rank, row, label) triples, ordered by source rank then row."""
        order = np.lexsort((self._keys[:, 2], self._keys[:, 1]))
        return [(int(self._keys[i, 1]), int(self._keys[i, 2]), int(self._labels[i])) for i in order]


def accuracy_label(kind: str | None) -> str:
    """How a model's own accuracy is named, from its metrics.json "kind" (none: a test set)."""
    if kind and str(kind).startswith("cross-validated"):
        return "cross-validated accuracy on its training labels"
    return "test accuracy"
