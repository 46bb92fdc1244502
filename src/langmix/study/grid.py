"""Expand a study config into its runs: training runs and evaluation runs, each named by its own key.

A *train key* covers what determines a trained model (model, mixture, task data and its content, budget, training
settings, seed); an *eval key* covers the model evaluated (a train key, or the base model), the evaluation data and
its content, the evaluation languages and the generation settings. Changing only evaluation settings therefore
re-evaluates finished models without retraining them. Settings that do not change results (checkpoint interval,
logging) are left out of the keys.

A model is identified by its settings, and a local model directory also by its content (`model_files`: weights,
config and tokenizer files, by their names relative to it) instead of its path, so replacing the files at one path
makes new runs and a project copied elsewhere keeps its runs; data files likewise. A hub id is its name and revision
(without a revision it cannot be told apart from a later upload: a warning says so); the tiny model is its
settings; a GGUF package is its name and installed version.
"""

from __future__ import annotations

import logging
from functools import cached_property
from pathlib import Path
from typing import Any

from pydantic import BaseModel, ConfigDict

from langmix.config import (EVAL_FIELDS_KEYED_UNLESS, EVAL_FIELDS_NOT_IN_KEY, TRAINING_FIELDS_NOT_IN_KEY,
                            BudgetConfig, EvalConfig, ModelConfig, StudyConfig, TrainingConfig, config_hash,
                            looks_like_local_path)
from langmix.data.digest import source_identity, tree_digest
from langmix.data.math_data import default_id_prefix
from langmix.mixtures import MixtureSpec, expand_designs, mixture_slug

log = logging.getLogger(__name__)
_WARNED_UNPINNED: set[tuple[str, str]] = set()
# Base models are decoded greedily: their evaluation has this seed whatever the study's seeds are, so reordering or
# changing `seeds` does not evaluate them again.
BASE_SEED = 0


def _model_identity(model: ModelConfig) -> str | None:
    """The content digest of a local model directory (of its GGUF file, where one is set), or a GGUF package's
    installed version (`package==1.2.0`: another release may ship other weights under the same name); None for
    a model that its settings identify (tiny, a hub id), which keeps the keys it had before digests existed, and
    for a package that is not installed (resolving the model says so)."""
    if model.source == "gguf_package" and model.package:
        from importlib.metadata import PackageNotFoundError, version

        try:
            return f"{model.package}=={version(model.package)}"
        except PackageNotFoundError:
            return None
    if model.source != "hf" or not model.path or not Path(model.path).exists():
        return None
    return tree_digest(Path(model.path) / model.gguf_file if model.gguf_file else model.path)


def _warn_unpinned(models: list[ModelConfig]) -> None:
    """Once per process: hub models without a `revision` are keyed by their id only."""
    unpinned = [m for m in models if m.source == "hf" and m.path and not m.revision
                and not looks_like_local_path(m.path) and not Path(m.path).exists()
                and (m.name, m.path) not in _WARNED_UNPINNED]
    if unpinned:
        _WARNED_UNPINNED.update((m.name, m.path) for m in unpinned)
        log.warning("%s: no `revision` set, so runs are keyed by the hub id only and a new upload under the id would "
                    "reuse the old results (set `revision` to a commit hash)", ", ".join(m.path for m in unpinned))


def _data_identity(cfg: StudyConfig, task: str, split: str) -> dict[str, Any]:
    """What determines one task's train or eval data: its settings and its files' names and contents (the folders
    they are in are left out, as for a local model)."""
    data = cfg.data
    if data.source == "synth":
        # the synthetic train pool excludes the eval items, so both sizes shape it
        identity = {"source": "synth", "seed": data.seed, "eval_items": data.eval_items}
        return identity if split == "eval" else {**identity, "train_pool": data.train_pool}
    files = data.task_files(task)
    src = getattr(files, split) if files else None
    if src is None:
        return {"source": "files", split: None}
    fields = src.model_dump(mode="json")
    # each path by what it reads (names and contents), not where it lies: a copied project keeps its keys
    fields.update({key: source_identity(fields[key]) for key in ("path", "exemplars", "schemas")})
    if src.format == "parallel" and not src.id_prefix:  # rows without an id are named after the file
        fields["id_prefix"] = default_id_prefix(src.path)
    return {"source": "files", split: fields}


def _keyed(tree: dict[str, Any], not_in_key: frozenset[str] = frozenset(),
           keyed_unless: dict[str, Any] | None = None) -> dict[str, Any]:
    """The fields of `tree` that a run's key hashes: without those that never change results (`not_in_key`) and
    those at the value they had before the field existed (`keyed_unless`: runs keyed then keep their keys)."""
    unless = keyed_unless or {}
    return {k: v for k, v in tree.items() if k not in not_in_key and not (k in unless and v == unless[k])}


class _RunSpec(BaseModel):
    """What train and eval runs share: the model, the mixture it names, the task and the seed."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    model: ModelConfig
    mixture_name: str
    design: str
    train_languages: list[str]
    task: str
    seed: int
    model_files: str | None = None  # content digest of a local model directory (None: not a local model)

    @property
    def model_by_content(self) -> bool:
        """Whether the model is a local directory that its content (`model_files`) identifies, not its path: keys
        and a training's resume identity leave the path out, so a project copied elsewhere keeps its runs."""
        return self.model.source == "hf" and bool(self.model_files)

    def _key_tree(self) -> dict[str, Any]:
        # keys of models without files stay as they were before the field
        tree = _keyed(self.model_dump(mode="json"), keyed_unless={"model_files": None})
        if self.model_by_content:
            tree["model"] = {**tree["model"], "path": None}
        return tree

    @cached_property
    def key(self) -> str:  # frozen, so hashed once (a study's planning and status ask for keys thousands of times)
        return config_hash(self._key_tree())

    def model_copy(self, *, update: dict[str, Any] | None = None, deep: bool = False):
        """A copy never carries the original's cached key (pydantic copies the instance dict, cache included)."""
        copied = super().model_copy(update=update, deep=deep)
        copied.__dict__.pop("key", None)
        return copied

    @property
    def slug(self) -> str:
        return f"{self.model.name}-{mixture_slug(self.mixture_name)}-{self.task}-s{self.seed}-{self.key}"


class TrainSpec(_RunSpec):
    """Everything that determines one fine-tuned model."""

    budget: BudgetConfig
    data: dict[str, Any]
    training: TrainingConfig

    @cached_property
    def key(self) -> str:
        tree = self._key_tree()
        tree["training"] = _keyed(tree["training"], not_in_key=TRAINING_FIELDS_NOT_IN_KEY)
        return config_hash(tree)

    def mixture(self) -> MixtureSpec:
        return MixtureSpec(self.mixture_name, self.design, tuple(self.train_languages))


class EvalSpec(_RunSpec):
    """Everything that determines one evaluation: the model (a train key, or "" for the base model), data,
    languages and generation settings. Mixture fields are carried for the results tables."""

    train_key: str
    languages: list[str]
    data: dict[str, Any]
    evaluation: EvalConfig

    @cached_property
    def key(self) -> str:
        tree = self._key_tree()
        tree["evaluation"] = _keyed(tree["evaluation"], EVAL_FIELDS_NOT_IN_KEY, EVAL_FIELDS_KEYED_UNLESS)
        context = self.evaluation.vllm_engine_args.get("max_model_len")
        if self.evaluation.engine == "vllm" and context is not None:  # answers are cut to fit it: part of the key
            tree["evaluation"]["vllm_max_model_len"] = context
        return config_hash(tree)

    @property
    def is_base(self) -> bool:
        return not self.train_key


class Job(BaseModel):
    """A unit of work for a launcher: train (unless base), then evaluate."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    train: TrainSpec | None
    evals: list[EvalSpec]

    @property
    def slug(self) -> str:
        return self.train.slug if self.train else self.evals[0].slug


def expand(cfg: StudyConfig) -> list[Job]:
    """The grid models x (base + mixtures) x tasks x seeds. The base model is greedy-decoded, so one seed
    (`BASE_SEED`)."""
    mixtures = expand_designs(cfg.mixtures, cfg.languages)
    jobs: list[Job] = []
    _warn_unpinned(cfg.models)
    for model in cfg.models:
        model_files = _model_identity(model)
        for task in cfg.tasks:
            eval_data = _data_identity(cfg, task, "eval")
            common = dict(model=model, model_files=model_files, task=task, languages=cfg.languages, data=eval_data,
                          evaluation=cfg.evaluation)
            if cfg.include_base:
                jobs.append(Job(train=None, evals=[EvalSpec(train_key="", mixture_name="base", design="base",
                                                            train_languages=[], seed=BASE_SEED, **common)]))
            train_data = _data_identity(cfg, task, "train")
            for mix in mixtures:
                for seed in cfg.seeds:
                    train = TrainSpec(model=model, model_files=model_files, mixture_name=mix.name,
                                      design=mix.design, train_languages=list(mix.languages), task=task, seed=seed,
                                      budget=cfg.budget, data=train_data, training=cfg.training)
                    ev = EvalSpec(train_key=train.key, mixture_name=mix.name, design=mix.design,
                                  train_languages=list(mix.languages), seed=seed, **common)
                    jobs.append(Job(train=train, evals=[ev]))
    return jobs


def train_specs(jobs: list[Job]) -> list[TrainSpec]:
    return [j.train for j in jobs if j.train is not None]


def eval_specs(jobs: list[Job]) -> list[EvalSpec]:
    return [e for j in jobs for e in j.evals]
