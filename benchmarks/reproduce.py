"""Same command, same model? Compare two model directories made by the same training command.

    python benchmarks/reproduce.py --model-dir review_scorer/default_model --model-dir OTHER \
        [--note "how OTHER was made"] [--write-results]

Reads only the two directories (weights, history.json, metrics.json, meta.json): it never scores
the IMDB test set itself; the test metrics are the ones each training run recorded.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
sys.path.insert(0, str(Path(__file__).resolve().parent))


def describe(model_dir: Path) -> dict:
    from review_scorer.model import artifacts

    loaded = artifacts.load_model_dir(model_dir)
    meta = json.loads((model_dir / "meta.json").read_text(encoding="utf-8"))
    metrics = json.loads((model_dir / "metrics.json").read_text(encoding="utf-8"))
    return {"weights": [np.asarray(w, dtype=np.float32) for w in loaded.model.get_weights()],
            "history": json.loads((model_dir / "history.json").read_text(encoding="utf-8")),
            "test_accuracy": metrics.get("accuracy"), "test_loss": metrics.get("loss"),
            "temperature": (meta.get("calibration") or {}).get("temperature"),
            "teacher_accuracy": (meta.get("distillation") or {}).get("teacher_validation_accuracy"),
            "created": meta.get("created_at"), "fingerprint": meta.get("data_fingerprint"),
            "files": meta.get("files") or {}}


def compare(a: dict, b: dict) -> list[list[str]]:
    same_shapes = [x.shape for x in a["weights"]] == [y.shape for y in b["weights"]]
    diffs = [float(np.max(np.abs(x - y))) for x, y in zip(a["weights"], b["weights"])] if same_shapes else []
    identical = same_shapes and all(d == 0.0 for d in diffs)
    epochs = max(len(v) for v in a["history"].values())
    def differs(epoch: int) -> bool:
        return any(round(a["history"][k][epoch], 3) != round(b["history"][k][epoch], 3)
                   for k in a["history"]
                   if epoch < len(a["history"][k]) and epoch < len(b["history"].get(k, [])))

    first_gap = next((e + 1 for e in range(epochs) if differs(e)), None)
    names = sorted(set(a["files"]) & set(b["files"]))
    same_files = [n for n in names if a["files"][n] == b["files"][n]]
    return [
        ["model files with the same checksum", f"{len(same_files)} of {len(names)}: "
         + (", ".join(same_files) or "none")],
        ["same training data (fingerprint)", str(a["fingerprint"] == b["fingerprint"])],
        ["bit-identical weights", str(identical)],
        ["largest weight difference", f"{max(diffs):.3g}" if diffs else "shapes differ"],
        ["first epoch whose curves differ at 3 decimals", str(first_gap or "none")],
        ["teacher validation accuracy", f"{a['teacher_accuracy']} / {b['teacher_accuracy']}"],
        ["temperature", f"{a['temperature']} / {b['temperature']}"],
        ["recorded test accuracy", f"{a['test_accuracy']:.2%} / {b['test_accuracy']:.2%}"],
        ["recorded test loss", f"{a['test_loss']:.4f} / {b['test_loss']:.4f}"],
    ]


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model-dir", action="append", required=True, type=Path)
    parser.add_argument("--note", default="")
    parser.add_argument("--write-results", action="store_true")
    args = parser.parse_args(argv)
    if len(args.model_dir) != 2:
        parser.error("give --model-dir twice")
    from _results import markdown_table, write_section

    a, b = (describe(d) for d in args.model_dir)
    rows = compare(a, b)
    table = markdown_table(["", f"{args.model_dir[0]} / {args.model_dir[1]}"], rows)
    print(table)
    if args.write_results:
        write_section("reproduce", "## Same command, same model? (two runs of one training command)"
                      f"\n\n{args.note}\n\n{table}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
