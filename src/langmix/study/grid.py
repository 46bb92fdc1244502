"""Expand a study config into run specs; a spec's hash names its run directory."""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict

from langmix.config import (BudgetConfig, DataConfig, EvalConfig, ModelConfig, StudyConfig, TrainingConfig,
                            config_hash)
from langmix.mixtures import MixtureSpec, expand_designs


class RunSpec(BaseModel):
    """Everything that determines one run's results. `mixture` is None for a base-model evaluation."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    model: ModelConfig
    mixture_name: str
    design: str
    train_languages: list[str]
    task: str
    seed: int
    languages: list[str]
    budget: BudgetConfig
    data: DataConfig
    training: TrainingConfig
    evaluation: EvalConfig

    @property
    def is_base(self) -> bool:
        return not self.train_languages

    @property
    def hash(self) -> str:
        return config_hash(self)

    @property
    def slug(self) -> str:
        return f"{self.model.name}-{self.mixture_name}-{self.task}-s{self.seed}-{self.hash}".replace("+", "_")

    def mixture(self) -> MixtureSpec:
        return MixtureSpec(self.mixture_name, self.design, tuple(self.train_languages))


def expand(cfg: StudyConfig) -> list[RunSpec]:
    """The grid models x (base + mixtures) x tasks x seeds. The base model is greedy-decoded, so one seed."""
    mixtures = expand_designs(cfg.mixtures, cfg.languages)
    common = dict(languages=cfg.languages, budget=cfg.budget, data=cfg.data, training=cfg.training,
                  evaluation=cfg.evaluation)
    specs: list[RunSpec] = []
    for model in cfg.models:
        for task in cfg.tasks:
            if cfg.include_base:
                specs.append(RunSpec(model=model, mixture_name="base", design="base", train_languages=[],
                                     task=task, seed=cfg.seeds[0], **common))
            for mix in mixtures:
                for seed in cfg.seeds:
                    specs.append(RunSpec(model=model, mixture_name=mix.name, design=mix.design,
                                         train_languages=list(mix.languages), task=task, seed=seed, **common))
    return specs
