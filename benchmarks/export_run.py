"""Exports a training run and its evals into the repo, so that a published figure comes from committed files.

    python benchmarks/export_run.py --name cpu-demo-12 --train runs/cpu-demo \
        --eval qwen-prompted=runs/eval-demo/qwen-prompted --eval trained=runs/eval-demo/trained \
        --command "inboxrl train --config configs/cpu-demo.yaml" \
        --command "inboxrl eval --model local/qwen2.5-coder-0.5b+runs/cpu-demo/final ... --out runs/eval-demo/trained"

writes `benchmarks/results/NAME/` (or `--out DIR/NAME/`):

    MANIFEST.json                    the commands, date, git commit, machine, library versions, what was left out,
                                     and the sha256 and size of every other file
    config.json                      the run's resolved config
    metrics.jsonl                    the training log: train, validation (with the detectors' flags), summary records
    data/split.json                  the split: each part's ids and sha256 (not the question texts)
    validation/step-N.jsonl.gz       every validation's episodes, without token ids
    eval/LABEL/metrics.json          an eval's metrics, with the detectors' flags
    eval/LABEL/trajectories.jsonl.gz its episodes, without token ids

Never exported: adapter weights (final/, warm-start/), checkpoints/, rollouts/, tensorboard/, plots/ (`inboxrl
report` redraws them from metrics.jsonl). `inboxrl view`, `show`, `check` and `report` read the export as they read
the run. Gzip streams carry no time and no file name, so a re-export of the same run is byte-identical (all but
MANIFEST.json's date).

A script, not an `inboxrl` command: `inboxrl export` already merges adapters, and filling benchmarks/results is a
chore of this repo, like the other scripts here.
"""

from __future__ import annotations

import argparse
import gzip
import hashlib
import json
import os
import re
import shutil
import sys
import tempfile
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))

from provenance import git_state, machine, versions  # the benchmarks folder is not a package

from inboxrl.trajectory import EVAL_TRAJECTORIES, Trajectory, eval_trajectories, open_binary, step_files

REPO = Path(__file__).resolve().parent.parent
DEFAULT_OUT = REPO / "benchmarks" / "results"
# Copied as they are: small, read by `inboxrl report` and the viewer, diffable in review.
TRAIN_FILES = ("config.json", "metrics.jsonl", "data/split.json")
EVAL_METRICS = "metrics.json"
VERSIONS = ("inboxrl", "torch", "transformers", "trl", "peft", "accelerate", "pydantic")
_LABEL = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]*$")


class ExportError(ValueError):
    """An export that cannot be made; one line for the user."""


def gzip_bytes(data: bytes) -> bytes:
    """Gzip with no time stamp and no file name in the header: the same bytes in give the same bytes out."""
    return gzip.compress(data, compresslevel=9, mtime=0)


def trajectories_without_ids(path: Path) -> tuple[bytes, int, int]:
    """(JSONL bytes without per-turn token ids, episodes, unreadable lines skipped) of a trajectories file."""
    out: list[bytes] = []
    skipped = 0
    with open_binary(path) as f:
        for line in f:
            if not line.strip():
                continue
            try:
                t = Trajectory.model_validate_json(line)
            except ValueError:
                skipped += 1  # a torn last line of a killed run
                continue
            out.append(t.without_token_ids().model_dump_json().encode() + b"\n")
    return b"".join(out), len(out), skipped


def parse_eval(arg: str) -> tuple[str, Path]:
    """`LABEL=EVAL_DIR`; the label becomes a folder name, so it is one plain path component."""
    label, sep, d = arg.partition("=")
    if not sep or not d:
        raise ExportError(f"--eval {arg!r}: expected LABEL=EVAL_DIR")
    if not _LABEL.match(label):
        raise ExportError(f"--eval {arg!r}: the label must be letters, digits, '.', '_' or '-'")
    return label, Path(d)


def _sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def _train_files(run: Path) -> tuple[dict[str, bytes], dict[str, Any]]:
    """The files of a training run to write, and what its trajectories files held."""
    if not (run / "metrics.jsonl").is_file() and not step_files(run / "validation"):
        raise ExportError(f"--train {run}: not a training run directory (no metrics.jsonl, no validation/step-N.jsonl)")
    files = {name: (run / name).read_bytes() for name in TRAIN_FILES if (run / name).is_file()}
    counts: dict[str, Any] = {}
    for step, f in step_files(run / "validation"):
        data, n, skipped = trajectories_without_ids(f)
        name = f"validation/step-{step:06d}.jsonl.gz"
        files[name] = gzip_bytes(data)
        counts[name] = {"episodes": n, "skipped_lines": skipped}
    return files, counts


def _eval_files(label: str, d: Path) -> tuple[dict[str, bytes], dict[str, Any]]:
    traj = eval_trajectories(d)
    if not traj.is_file() or not (d / EVAL_METRICS).is_file():
        raise ExportError(f"--eval {label}={d}: not an eval run directory (expected {EVAL_TRAJECTORIES} and "
                          f"{EVAL_METRICS} from `inboxrl eval --out`)")
    data, n, skipped = trajectories_without_ids(traj)
    name = f"eval/{label}/{EVAL_TRAJECTORIES}.gz"
    return ({f"eval/{label}/{EVAL_METRICS}": (d / EVAL_METRICS).read_bytes(), name: gzip_bytes(data)},
            {name: {"episodes": n, "skipped_lines": skipped}})


def _left_out(run: Path, written: dict[str, bytes]) -> list[str]:
    """The run's own entries that the export does not carry (weights, checkpoints, rollouts...)."""
    kept = {name.split("/", 1)[0] for name in written}
    out = [p.name + ("/" if p.is_dir() else "") for p in sorted(run.iterdir()) if p.name not in kept]
    data = run / "data"
    if data.is_dir():
        out += [f"data/{p.name}" for p in sorted(data.iterdir()) if f"data/{p.name}" not in written]
    return out


def export_run(name: str, train: Path | None, evals: list[tuple[str, Path]], commands: list[str],
               out_root: Path = DEFAULT_OUT, overwrite: bool = False, run_commit: str | None = None) -> Path:
    """Writes `out_root/name/` (see the module's docstring) and returns it."""
    if not _LABEL.match(name):
        raise ExportError(f"--name {name!r}: letters, digits, '.', '_' or '-' only")
    if train is None and not evals:
        raise ExportError("nothing to export: give --train RUN_DIR and/or --eval LABEL=EVAL_DIR")
    if not commands:
        raise ExportError("give the commands that made the run (--command, once per command)")
    labels = [label for label, _ in evals]
    if len(set(labels)) != len(labels):
        raise ExportError(f"--eval labels must differ: {labels}")
    out = out_root / name
    if out.exists() and not overwrite:
        raise ExportError(f"{out} exists; pass --overwrite to replace it")
    tree = git_state()  # before anything is written into the tree

    files: dict[str, bytes] = {}
    trajectories: dict[str, Any] = {}
    left_out: list[str] = []
    if train is not None:
        if not train.is_dir():
            raise ExportError(f"--train {train}: no such directory")
        got, counts = _train_files(train)
        files.update(got)
        trajectories.update(counts)
        left_out = _left_out(train, got)
    for label, d in evals:
        got, counts = _eval_files(label, d)
        files.update(got)
        trajectories.update(counts)

    manifest = {
        "name": name,
        "commands": commands,
        "exported_at": datetime.now(timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ"),
        "tree": tree,
        "run_commit": run_commit,
        "machine": machine(),
        "versions": versions(VERSIONS),
        "sources": {"train": str(train.resolve()) if train else None,
                    "eval": {label: str(d.resolve()) for label, d in evals}},
        "not_exported": {"never": ["adapter weights (final/, warm-start/)", "checkpoints/", "rollouts/",
                                   "tensorboard/", "plots/", "per-turn token ids", "question texts (data/*.jsonl)"],
                         "left_out_of_this_run": left_out},
        "trajectories": trajectories,
        "files": {n: {"sha256": _sha256(b), "bytes": len(b)} for n, b in sorted(files.items())},
    }
    files["MANIFEST.json"] = (json.dumps(manifest, indent=1) + "\n").encode()

    out_root.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(dir=out_root, prefix=f".{name}-"))
    try:
        for rel, data in files.items():
            (tmp / rel).parent.mkdir(parents=True, exist_ok=True)
            (tmp / rel).write_bytes(data)
        if out.exists():
            shutil.rmtree(out)
        os.replace(tmp, out)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    return out


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0] if __doc__ else None)
    ap.add_argument("--name", required=True, help="the folder under --out, e.g. cpu-demo-12")
    ap.add_argument("--train", type=Path, help="the training run directory (RUN_DIR of `inboxrl train`)")
    ap.add_argument("--eval", dest="evals", action="append", default=[], metavar="LABEL=EVAL_DIR",
                    help="an `inboxrl eval --out` directory, exported as eval/LABEL (repeatable)")
    ap.add_argument("--command", dest="commands", action="append", default=[],
                    help="a command that made the run or an eval, as typed (repeatable, required)")
    ap.add_argument("--run-commit", help="the commit the run was made from, when not this tree's")
    ap.add_argument("--out", type=Path, default=DEFAULT_OUT, help=f"default: {DEFAULT_OUT.relative_to(REPO)}")
    ap.add_argument("--overwrite", action="store_true", help="replace an existing export of the same name")
    a = ap.parse_args(argv)
    try:
        out = export_run(a.name, a.train, [parse_eval(e) for e in a.evals], a.commands, a.out, a.overwrite,
                         a.run_commit)
    except (ExportError, OSError, EOFError) as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    total = sum(f.stat().st_size for f in out.rglob("*") if f.is_file())
    print(f"{out}: {sum(1 for f in out.rglob('*') if f.is_file())} files, {total / 1e6:.2f} MB")
    return 0


if __name__ == "__main__":
    sys.exit(main())
