"""A study's dry run (`study run --dry-run`, local or SLURM): the checks a real run makes on its data and budgets
before it trains anything, with nothing trained, built, loaded or written. Without them a dry run listed every run
as to do and exited 0 where the real run then refused the study (a malformed training file, a budget its pool
cannot give) or failed trainings (a training file holding an evaluation question)."""

from __future__ import annotations

import logging
from pathlib import Path

from langmix import tasks
from langmix.config import StudyConfig
from langmix.data.sources import open_source
from langmix.lineage import LineageError
from langmix.mixtures import check_mixture, item_rows, recheck_lineage
from langmix.study.grid import Job
from langmix.study.runner import _prepare, study_status, train_dir

log = logging.getLogger(__name__)

SHOWN = 3  # refused trainings named in the error beyond the first


def preflight(cfg: StudyConfig) -> tuple[list[Job], list[tuple[str, object, str, Path]]]:
    """(the study's jobs, each run's (kind, spec, state, directory) as `study_status` gives them), once the checks
    a real `study run` makes before it trains have passed:
    - `runner._prepare`'s, without writing: every training mixture's budget against its pool (`check_budgets`,
      which reads and checks the training data);
    - for each task with a run still to do: its evaluation set read and its references checked
      (`tasks.check_references`, as `execute_train` does before training and `evaluate` before generating);
    - for each training still to do: its mixture sampled and lineage-checked as `build_mixture` would
      (`check_mixture`), so a training file holding an evaluation item is refused here as the run would refuse it;
      for each finished training with evaluations still to do: its mixture checked again against the eval set
      (`recheck_lineage`, as `execute_eval` does: the eval set may be newer than the training).
    A UserInputError (the CLI: one line, exit 2) where one fails."""
    source = open_source(cfg.data)
    jobs = _prepare(cfg, source=source, write=False)
    runs = study_status(cfg, jobs)
    todo = [(kind, spec) for kind, spec, state, _ in runs if state != "done"]
    evaluation = {}
    for task in dict.fromkeys(spec.task for _, spec in todo):
        evaluation[task] = source.eval_examples(task, cfg.languages)
        tasks.check_references(tasks.get(task), evaluation[task])
    trainings = [spec for kind, spec in todo if kind == "train"]
    verdicts: dict[tuple, str | None] = {}  # one check per distinct sample (models share their mixtures' samples)
    refused: list[tuple[str, str]] = []
    for spec in trainings:
        sample = (spec.mixture(), spec.task, spec.seed, spec.budget.model_dump_json())
        if sample not in verdicts:
            try:
                check_mixture(source, spec.mixture(), spec.task, spec.budget, spec.seed, evaluation[spec.task])
                verdicts[sample] = None
            except LineageError as exc:
                verdicts[sample] = str(exc)
        if verdicts[sample] is not None:
            refused.append((spec.slug, verdicts[sample]))
    # a finished training whose evaluations are still to do is checked again against the eval set, as
    # `execute_eval` does (`recheck_lineage`): the eval set may have changed since it trained
    waiting = {ev.train_key for kind, ev, state, _ in runs if kind == "eval" and state != "done" and ev.train_key}
    to_train = {spec.key for spec in trainings}
    finished = {job.train.key: job.train for job in jobs
                if job.train is not None and job.train.key in waiting and job.train.key not in to_train}
    for spec in finished.values():
        mixture = train_dir(cfg, spec) / "mixture"
        if not (mixture / "manifest.json").exists():  # (a finished training has one: DONE checks it)
            continue
        try:
            recheck_lineage(mixture, evaluation[spec.task], item_rows(source, spec.task))
        except LineageError as exc:
            refused.append((spec.slug, str(exc)))
    if refused:
        (first, why), others = refused[0], [slug for slug, _ in refused[1:]]
        also = (f"; also refused: {', '.join(f'train/{s}' for s in others[:SHOWN])}"
                f"{' ...' if len(others) > SHOWN else ''}") if others else ""
        raise LineageError(f"{len(refused)} of the {len(trainings) + len(finished)} training mixtures to build or "
                           f"evaluate would be refused, holding evaluation items: train/{first}: {why}{also}")
    log.debug("dry run: %d mixtures lineage-checked", len(verdicts))
    return jobs, runs
