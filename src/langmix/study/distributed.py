"""Entry point for multi-GPU training under `accelerate launch` (one process per GPU).

`python -m langmix.study.distributed STUDY_JSON JOB_SLUG` trains the job's model; every rank runs `train`, TRL and
accelerate shard the work (FSDP from the launch config), and rank 0 marks the run done. Evaluation then runs in
the submitting job on one GPU.
"""

from __future__ import annotations

import sys
from pathlib import Path

from langmix.config import StudyConfig
from langmix.study.grid import expand
from langmix.study.runner import Context, Hooks, execute_train, train_dir


def main(study_json: str, slug: str) -> None:
    cfg = StudyConfig.model_validate_json(Path(study_json).read_text())
    job = next(j for j in expand(cfg) if j.slug == slug)
    ctx = Context(cfg)
    spec = job.train
    path = train_dir(cfg, spec)
    execute_train(spec, path, ctx.source, ctx.model_path(spec), ctx.source.eval_examples(spec.task, cfg.languages),
                  Hooks())


if __name__ == "__main__":
    main(*sys.argv[1:3])
