"""What a study will cost before it is submitted: runs, tokens, FLOPs, GPU-hours, and SLURM resources per run.

Training FLOPs follow the usual 6 x parameters x tokens (Kaplan et al., 2020, "Scaling Laws for Neural Language
Models", arXiv:2001.08361); evaluation is 2 x parameters x tokens. Time = FLOPs / (GPUs x peak x MFU), with the
peak and the MFU from `launcher` (shown, and overridable with -s launcher.mfu=...).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from langmix.config import StudyConfig
from langmix.mixtures import budget_counts
from langmix.models import parameter_count
from langmix.study.grid import EvalSpec, Job, TrainSpec

# Bytes of GPU memory per parameter for full fine-tuning with AdamW in bf16 + fp32 master weights and states,
# before activations (weights 2 + grads 2 + fp32 copy 4 + Adam moments 8).
FULL_FT_BYTES_PER_PARAM = 16
GPU_MEMORY_GB = 80


@dataclass(frozen=True)
class RunEstimate:
    slug: str
    kind: str  # train | eval
    params: float
    tokens: float
    flops: float
    gpus: int
    gpu_hours: float


@dataclass(frozen=True)
class Resources:
    """What one SLURM job asks for."""

    gpus: int
    cpus: int
    mem_gb: float
    timeout_min: int


def _params(spec) -> float:
    p = parameter_count(spec.model)
    if p is None:
        raise ValueError(f"model {spec.model.name!r}: parameter count unknown; set `params` (e.g. params: 8.0e9)")
    return p


def gpus_for(spec: TrainSpec | EvalSpec, cfg: StudyConfig) -> int:
    """GPUs a run needs: none for the CPU-sized tiny model, one for LoRA and evaluation, and for full
    fine-tuning enough 80 GB GPUs (a power of two) to hold weights, gradients and optimizer states sharded."""
    if cfg.launcher.gpus_per_run is not None:
        return cfg.launcher.gpus_per_run
    if spec.model.source == "tiny":
        return 0
    if isinstance(spec, EvalSpec) or spec.training.method == "lora":
        return 1
    need = _params(spec) * FULL_FT_BYTES_PER_PARAM * 1.5 / (GPU_MEMORY_GB * 1e9)  # +50% for activations
    return 2 ** max(0, math.ceil(math.log2(max(need, 1.0))))


def train_tokens(spec: TrainSpec, cfg: StudyConfig) -> float:
    examples = sum(budget_counts(len(spec.train_languages), spec.budget))
    steps_tokens = examples * cfg.launcher.tokens_per_example * spec.training.epochs
    if spec.training.max_steps > 0:
        steps_tokens = (spec.training.max_steps * spec.training.batch_size * spec.training.grad_accum
                        * cfg.launcher.tokens_per_example)
    return float(steps_tokens)


def eval_tokens(spec: EvalSpec, cfg: StudyConfig) -> float:
    items = cfg.data.eval_items if cfg.data.source == "synth" else 250  # MGSM's 250 per language, when unknown
    files = cfg.data.task_files(spec.task)
    if files is not None and files.eval.limit:
        items = files.eval.limit
    from langmix.evaluate.run import max_new_tokens

    per_item = cfg.launcher.tokens_per_example / 2 + max_new_tokens(spec.evaluation, spec.task)
    return float(items * len(spec.languages) * per_item)


def estimate(cfg: StudyConfig, jobs: list[Job]) -> list[RunEstimate]:
    peak = cfg.launcher.gpu_peak_tflops * 1e12 * cfg.launcher.mfu
    out = []
    for job in jobs:
        specs: list[tuple[str, TrainSpec | EvalSpec]] = ([("train", job.train)] if job.train else [])
        specs += [("eval", e) for e in job.evals]
        for kind, spec in specs:
            params = _params(spec)
            tokens = train_tokens(spec, cfg) if kind == "train" else eval_tokens(spec, cfg)
            flops = (6 if kind == "train" else 2) * params * tokens
            gpus = gpus_for(spec, cfg)  # 0: a CPU run (the tiny model), which spends no GPU-hours
            out.append(RunEstimate(spec.slug, kind, params, tokens, flops, gpus,
                                   flops / peak / 3600 if gpus else 0.0))
    return out


def resources(job: Job, cfg: StudyConfig) -> Resources:
    """SLURM resources for a job (train + its evaluations), from model size and method; config overrides win."""
    spec = job.train or job.evals[0]
    gpus = max(gpus_for(spec, cfg), *(gpus_for(e, cfg) for e in job.evals))
    params = _params(spec)
    cpus = cfg.launcher.cpus_per_run or (2 if gpus == 0 else 8 * gpus)
    mem = cfg.launcher.mem_gb_per_run or float(max(4, math.ceil(params * 4 / 1e9 * 1.5 + 8)))
    if cfg.launcher.timeout_min:
        timeout = cfg.launcher.timeout_min
    elif gpus == 0:
        timeout = 60
    else:
        hours = sum(e.gpu_hours / max(1, e.gpus) for e in estimate(cfg, [job]))
        timeout = int(min(72 * 60, max(30, math.ceil(hours * 60 * 1.5 + 20))))
    return Resources(gpus=gpus, cpus=cpus, mem_gb=mem, timeout_min=timeout)
