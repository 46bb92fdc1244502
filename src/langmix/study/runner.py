"""Execute a study's runs in order, each in its own directory named by the run's config hash.

A run directory holds `config.yaml` (the resolved RunSpec), `status.json`, the mixture, checkpoints,
`predictions.jsonl`, `results.parquet` and, last of all, the `DONE` marker. Re-running a study skips runs with
`DONE` and resumes interrupted ones from their newest checkpoint.
"""

from __future__ import annotations

import json
import logging
import os
import socket
import time
import traceback
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

from langmix import languages as langs
from langmix.config import StudyConfig, dump_resolved
from langmix.data.sources import open_source
from langmix.evaluate.run import evaluate
from langmix.mixtures import build_manifest, check_lineage, sample_mixture, write_mixture
from langmix.models import load_model, load_tokenizer, resolve_model_path
from langmix.records import ResultRow
from langmix.results import collect, write_predictions, write_rows
from langmix.study.grid import RunSpec, expand

log = logging.getLogger(__name__)

DONE = "DONE"


def study_dir(cfg: StudyConfig) -> Path:
    return Path(cfg.output_dir) / cfg.name


def run_dir(cfg: StudyConfig, spec: RunSpec) -> Path:
    return study_dir(cfg) / "runs" / spec.slug


def _pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def run_state(path: Path) -> str:
    """done | failed | running | interrupted | pending."""
    if (path / DONE).exists():
        return "done"
    status_file = path / "status.json"
    if not status_file.exists():
        return "pending"
    try:
        status = json.loads(status_file.read_text())
    except ValueError:
        return "interrupted"
    if status.get("state") == "failed":
        return "failed"
    if status.get("host") == socket.gethostname() and not _pid_alive(int(status.get("pid", -1))):
        return "interrupted"
    return "running"


def _write_status(path: Path, state: str, **extra) -> None:
    data = {"state": state, "pid": os.getpid(), "host": socket.gethostname(), "time": time.time(), **extra}
    tmp = path / "status.json.tmp"
    tmp.write_text(json.dumps(data, indent=2))
    tmp.replace(path / "status.json")


@dataclass
class Hooks:
    """Progress callbacks the CLI fills in (rich); all optional."""

    run_started: Callable[[RunSpec, int, int], None] = lambda spec, i, n: None
    stage: Callable[[str, int], None] = lambda name, total: None
    advance: Callable[[int], None] = lambda k: None


def execute_run(spec: RunSpec, path: Path, source, model_path: str, hooks: Hooks,
                study: str = "", show_train_progress: bool = False) -> None:
    """Train (unless base) and evaluate one run; writes DONE last, so a crash never looks finished."""
    path.mkdir(parents=True, exist_ok=True)
    dump_resolved(spec, path / "config.yaml")
    _write_status(path, "running")
    evaluation = source.eval_examples(spec.task, spec.languages)
    if spec.is_base:
        tokenizer, model = load_tokenizer(spec.model, model_path), load_model(spec.model, model_path)
    else:
        from langmix.train import train  # TRL import is slow; base-only studies never pay it

        pool_size, render = source.pool(spec.task, spec.train_languages)
        examples = sample_mixture(spec.mixture(), pool_size, render, spec.budget, spec.seed, tag=spec.task)
        check_lineage(examples, evaluation)
        tokenizer = load_tokenizer(spec.model, model_path)
        manifest = build_manifest(spec.mixture(), spec.task, spec.budget, spec.seed, examples,
                                  lambda text: len(tokenizer(text, add_special_tokens=False)["input_ids"]))
        write_mixture(path / "mixture", examples, manifest)
        hooks.stage("train", 0)
        model, tokenizer = train(spec.model, model_path, examples, spec.training, spec.seed, path,
                                 show_progress=show_train_progress)
    hooks.stage("evaluate", len(evaluation))
    predictions, metrics = evaluate(model, tokenizer, evaluation, spec.evaluation, spec.languages, hooks.advance)
    write_predictions(predictions, path / "predictions.jsonl")
    rows = [ResultRow(run_hash=spec.hash, study=study, model=spec.model.name, mixture=spec.mixture_name,
                      design=spec.design, train_languages=",".join(spec.train_languages), task=task,
                      language=lang, resource=langs.get(lang).resource, metric=metric, value=value, n=n,
                      seed=spec.seed)
            for task, lang, metric, value, n in metrics]
    write_rows(rows, path / "results.parquet")
    _write_status(path, "done")
    (path / DONE).write_text(time.strftime("%Y-%m-%dT%H:%M:%S"))


def run_study(cfg: StudyConfig, hooks: Hooks | None = None, show_train_progress: bool = False,
              model_progress=None) -> dict[str, list[str]]:
    """Run every pending or interrupted run of the study; returns run slugs by outcome."""
    hooks = hooks or Hooks()
    if not show_train_progress:  # the study's own progress bars say where it is
        import datasets

        datasets.disable_progress_bars()
    root = study_dir(cfg)
    root.mkdir(parents=True, exist_ok=True)
    dump_resolved(cfg, root / "study.yaml")
    specs = expand(cfg)
    source = open_source(cfg.data)
    model_paths: dict[str, str] = {}
    outcome: dict[str, list[str]] = {"done": [], "skipped": [], "failed": []}
    for i, spec in enumerate(specs):
        path = run_dir(cfg, spec)
        if run_state(path) == "done":
            outcome["skipped"].append(spec.slug)
            continue
        hooks.run_started(spec, i, len(specs))
        try:
            if spec.model.name not in model_paths:
                model_paths[spec.model.name] = resolve_model_path(spec.model, model_progress)
            execute_run(spec, path, source, model_paths[spec.model.name], hooks, cfg.name, show_train_progress)
            outcome["done"].append(spec.slug)
        except Exception as exc:  # one failed run must not stop the study
            log.error("run %s failed: %s", spec.slug, exc)
            path.mkdir(parents=True, exist_ok=True)
            _write_status(path, "failed", error=f"{type(exc).__name__}: {exc}", traceback=traceback.format_exc())
            outcome["failed"].append(spec.slug)
    finished = [run_dir(cfg, s) / "results.parquet" for s in specs if run_state(run_dir(cfg, s)) == "done"]
    collect(finished, root / "results.parquet")
    return outcome


def study_status(cfg: StudyConfig) -> list[tuple[RunSpec, str, Path]]:
    return [(spec, run_state(run_dir(cfg, spec)), run_dir(cfg, spec)) for spec in expand(cfg)]
