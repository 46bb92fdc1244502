"""Typed study configuration (pydantic), its hash and resolved dumps; reading it from YAML with dotted overrides is
`langmix.config_loading`.

Every model forbids unknown keys, so a typo fails loudly with the key path and the file it came from.
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path
from typing import Any, Literal

import yaml
from pydantic import BaseModel, Field, PositiveInt, ValidationError, field_validator, model_validator

from langmix import languages as langs
from langmix.config_model import (  # noqa: F401 (re-exported: the configs of a model live there)
    ModelConfig, TinyModelConfig, _Strict, looks_like_local_path, missing_model_path)
from langmix.config_data import (  # noqa: F401 (re-exported: the configs of data sources live there)
    DataConfig, FileSource, TaskFiles, _check_task)
from langmix.errors import UserInputError


class ConfigError(UserInputError):
    """A config file or override that does not validate; the message names the file and the key."""


Design = Literal["english_only", "en_plus_one", "fixed", "growing", "held_out"]
# The list fields each design reads (`mixtures.expand_designs`); any other is refused rather than ignored.
DESIGN_LISTS: dict[str, tuple[str, ...]] = {"english_only": (), "en_plus_one": ("languages",),
                                            "fixed": ("languages",), "growing": ("languages",),
                                            "held_out": ("languages", "exclude")}


class MixtureDesign(_Strict):
    """A language-coverage design; it expands into one or more concrete mixtures (see mixtures.expand_designs). An
    empty `languages` (or none) means the study's languages: `{design: en_plus_one}` is EN+1 for every study language
    but English; only `fixed` needs its own list."""

    design: Design
    name: str | None = Field(None, description="name for a `fixed` set or a prefix for generated mixtures")
    languages: list[str] = Field(default_factory=list, description="en_plus_one: the '+1' languages, a mixture "
                                 "of English and each (empty or omitted: every study language but English); fixed: "
                                 "the set (required); growing: the order in which languages are added after English "
                                 "(empty or omitted: the study languages but English, in their order); held_out: "
                                 "the languages `exclude` is taken from (empty or omitted: all study languages)")
    exclude: list[str] = Field(default_factory=list, description="held_out: languages left out of training "
                               "(from `languages` when given, else from all study languages)")

    @field_validator("languages", "exclude")
    @classmethod
    def _canonical(cls, codes: list[str]) -> list[str]:
        return langs.resolve_all(codes)

    @model_validator(mode="after")
    def _fields_of_the_design(self) -> "MixtureDesign":
        """A list the design does not read (`languages` on english_only, `exclude` but on held_out) would be
        ignored, the study running other mixtures than the config says: refused."""
        unread = [f for f in ("languages", "exclude") if getattr(self, f) and f not in DESIGN_LISTS[self.design]]
        if unread:
            readers = {f: [d for d, fields in DESIGN_LISTS.items() if f in fields] for f in unread}
            raise ValueError(f"design {self.design!r} does not read " + "; ".join(
                f"`{f}` (only {', '.join(readers[f])} do{'es' if len(readers[f]) == 1 else ''})" for f in unread)
                + f": remove {'them' if len(unread) > 1 else 'it'} or choose another design")
        return self


class BudgetConfig(_Strict):
    """How many training examples a mixture holds.

    fixed_total: `total` examples whatever the coverage (volume held constant, diversity varies);
    per_language: `per_language` examples for each language (volume grows with coverage).
    """

    mode: Literal["fixed_total", "per_language"] = "fixed_total"
    total: int = Field(480, ge=1)
    per_language: int = Field(120, ge=1)
    allow_shared_sources: bool = Field(
        False, description="may the same parallel source item appear in several languages of one mixture")


class TrainingConfig(_Strict):
    """Supervised fine-tuning (TRL SFTTrainer)."""

    method: Literal["full", "lora"] = "full"
    learning_rate: float = Field(2e-3, gt=0)
    epochs: float = Field(2.0, gt=0)
    max_steps: int = Field(-1, description="overrides epochs when > 0")
    batch_size: int = Field(8, ge=1)
    grad_accum: int = Field(1, ge=1)
    max_length: int = Field(192, ge=16)
    warmup_ratio: float = Field(0.05, ge=0, le=1)
    weight_decay: float = Field(0.0, ge=0)
    lr_scheduler: str = "cosine"
    save_steps: int = Field(50, ge=1)
    save_total_limit: int = Field(2, ge=1)
    logging_steps: int = Field(10, ge=1)
    report_to: list[str] = Field(default_factory=lambda: ["none"])
    lora_r: int = Field(8, ge=1)
    lora_alpha: int = Field(16, ge=1)
    lora_dropout: float = Field(0.0, ge=0, lt=1)
    lora_target_modules: str | list[str] = "all-linear"
    packing: bool = Field(True, description="padding-free batches: each step's examples in one row with "
                          "per-example position ids (no attention across examples, no padding compute), loss from "
                          "a chunked exact cross-entropy over assistant tokens only; off: TRL's padded batches")
    group_by_length: bool = Field(False, description="length-grouped sampling: batches of similar-length examples "
                                  "(cuts padding when packing is off; changes which examples share a step)")
    loss_chunk_tokens: int = Field(1024, ge=16, description="packing: assistant tokens per chunk of the "
                                   "cross-entropy (bounds the vocabulary-sized logits held at once)")
    bf16: bool = Field(False, description="bf16 autocast (mixed precision), TRL's own default; off: fp32 "
                       "training, the same results on any machine")
    activation_checkpointing: bool = Field(False, description="recompute activations in the backward pass "
                                           "instead of keeping them: less memory, one more forward pass of compute "
                                           "per step (TRL turns it on by default; turn it on when a model's "
                                           "activations do not fit)")

    @model_validator(mode="after")
    def _lora_head(self) -> "TrainingConfig":
        """A LoRA adapter on `lm_head` (the output layer of transformers' causal LMs) is never trained: TRL computes
        the loss from the head's weight directly, and refuses it with a traceback. Refused here, before any model
        is loaded; an output layer named otherwise is refused at training time (`train._check_lora_targets`)."""
        targets = self.lora_target_modules
        if self.method == "lora" and targets != "all-linear" and lora_targets(targets, "lm_head"):
            raise ValueError(f"lora_target_modules: {targets!r} targets lm_head, the output layer: a LoRA adapter "
                             f"there is never trained (TRL computes the loss from its weight directly); leave it out "
                             f"('all-linear' does) or use method: full")
        return self

    @field_validator("lr_scheduler")
    @classmethod
    def _known_scheduler(cls, value: str) -> str:
        if value != "cosine":  # transformers' list, imported only when the default is changed (it loads torch)
            from transformers.trainer_utils import SchedulerType

            names = [s.value for s in SchedulerType]
            if value not in names:
                raise ValueError(f"unknown learning-rate scheduler {value!r} (known: {', '.join(names)})")
        return value


def lora_targets(targets: str | list[str], name: str) -> bool:
    """Whether `lora_target_modules` selects the module of full name `name` as PEFT matches them: a list by module
    names or their last parts, a string as a regular expression over the full name ('all-linear' is PEFT's own: not
    the output layer)."""
    import re

    if isinstance(targets, str):
        if targets == "all-linear":
            return False
        try:
            return re.fullmatch(targets, name) is not None
        except re.error as exc:
            raise ValueError(f"lora_target_modules: {targets!r} is not a regular expression ({exc})") from None
    return any(name == t or name.endswith("." + t) for t in targets)


# TrainingConfig fields that change how a run is checkpointed, logged or computed, not what it learns: left out of
# run keys and training identities, so changing one neither retrains nor refuses to resume.
TRAINING_FIELDS_NOT_IN_KEY = frozenset({"save_steps", "save_total_limit", "logging_steps", "report_to",
                                        "activation_checkpointing"})


# EvalConfig fields that change how outputs are computed, not what they are (greedy outputs are identical): left
# out of eval keys, so changing one re-evaluates nothing.
EVAL_FIELDS_NOT_IN_KEY = frozenset({"continuous_batching", "vllm_engine_args"})
# in the key only where set to something else than this default (evaluations keyed before the field existed keep
# their keys)
EVAL_FIELDS_KEYED_UNLESS = {"engine": "hf"}


class EvalConfig(_Strict):
    """Generation and scoring. Changing these re-evaluates finished models (except `continuous_batching` and
    `vllm_engine_args`: EVAL_FIELDS_NOT_IN_KEY); it never retrains them."""

    batch_size: int = Field(64, ge=1, description="prompts generated together")
    continuous_batching: bool = Field(False, description="as rows finish, the next prompts join the running batch "
                                      "(same greedy outputs); off: on the 2-core CPU benchmark it measured 0.93x-"
                                      "1.05x; on an H100, 1.14x in a single unrepeated pass")
    max_new_tokens: dict[str, PositiveInt] = Field(default_factory=dict, description="per task (a registered "
                                                   "task's name); the task's own default (math 72, api 48) where "
                                                   "not set")
    engine: Literal["hf", "vllm"] = Field("hf", description="generation engine: hf (langmix's own decoding loop "
                                          "over a transformers model) or vllm (optional, needs `vllm` installed "
                                          "and a GPU: LoRA adapters of one base share its engine)")
    vllm_engine_args: dict[str, Any] = Field(default_factory=dict, description="vllm: extra `vllm.LLM` arguments "
                                             "(e.g. gpu_memory_utilization, max_model_len, tensor_parallel_size); "
                                             "outside the eval key but max_model_len, to which answers are cut")
    language_id: bool = Field(True, description="judge the language of natural-language answers (lingua)")
    api_checker: Literal["bfcl", "multilingual"] = Field(
        "multilingual", description="AST checker rules for API calls: bfcl follows BFCL's checker exactly; "
        "multilingual adds named leniencies (NFKC, casefold, quotes/whitespace, function-name case and _/., "
        "optimal parallel matching, user-language free text); each verdict records the mode")

    @field_validator("max_new_tokens")
    @classmethod
    def _known_task_caps(cls, caps: dict[str, int]) -> dict[str, int]:
        for name in caps:
            _check_task(name)  # a misspelt task would be ignored, its cap silently the default
        return caps


class LauncherConfig(_Strict):
    """Where a study's runs execute: this machine (`local`) or a SLURM cluster (`slurm`, through submitit).

    SLURM resources per run are derived from the model size and training method unless set here; partition,
    account and qos fall back to the environment (LANGMIX_SLURM_PARTITION, _ACCOUNT, _QOS).
    """

    kind: Literal["local", "slurm"] = Field("local", description="local worker processes or SLURM jobs")
    workers: int = Field(1, ge=1, description="local: runs executed at once (each a process)")
    partition: str | None = Field(None, description="slurm: partition (else $LANGMIX_SLURM_PARTITION)")
    account: str | None = Field(None, description="slurm: account (else $LANGMIX_SLURM_ACCOUNT)")
    qos: str | None = Field(None, description="slurm: quality of service (else $LANGMIX_SLURM_QOS)")
    array_parallelism: int = Field(64, ge=1, description="slurm: runs of one job array running at once")
    gpus_per_run: int | None = Field(None, ge=0, description="override the GPUs derived from model size/method")
    cpus_per_run: int | None = Field(None, ge=1, description="override the CPUs per run")
    mem_gb_per_run: float | None = Field(None, gt=0, description="override the memory per run (GB)")
    timeout_min: int | None = Field(None, ge=3, description="override the time limit per run (minutes; at least 3: "
                                    "SLURM warns a job 90 s before its limit so it can requeue itself)")
    max_requeues: int = Field(3, ge=0, description="slurm: how often a job that reaches its time limit is requeued "
                              "(resuming from its newest checkpoint); at the next time-out the run in progress "
                              "fails as timed out. Preemption early in a job does not count (submitit counts a "
                              "warning in a job's last 20% or 10 minutes as a time-out)")
    gpu_peak_tflops: float = Field(989.0, gt=0, description="planning: dense bf16 peak per GPU (H100 SXM: 989)")
    mfu: float = Field(0.35, gt=0, le=1, description="planning: assumed model FLOP utilisation")
    tokens_per_example: int = Field(400, ge=1, description="planning: assumed tokens per training example")
    extra: dict[str, Any] = Field(default_factory=dict, description="slurm: further submitit parameters "
                                  "(e.g. slurm_constraint)")

    @field_validator("extra")
    @classmethod
    def _requeues_not_in_extra(cls, extra: dict[str, Any]) -> dict[str, Any]:
        for key in ("max_num_timeout", "slurm_max_num_timeout"):
            if key in extra:
                raise ValueError(f"{key} is set by launcher.max_requeues (requeues after a time-out); set that")
        return extra


class StudyConfig(_Strict):
    """One study: the grid models x mixtures x tasks x seeds, plus how to train and evaluate each run."""

    name: str = Field("study", pattern=r"^[A-Za-z0-9][A-Za-z0-9._+-]*$", description="the study's folder "
                      "under output_dir: letters, digits and . _ + - (no path separators)")
    output_dir: str = Field("runs", min_length=1, description="where studies are written; relative: beside the "
                            "config file")
    languages: list[str] = Field(default_factory=lambda: list(langs.MGSM_LANGUAGES),
                                 description="evaluation languages; training languages must be among them")
    tasks: list[str] = Field(default_factory=lambda: ["math", "api"], min_length=1,
                             description="registered task names (langmix.tasks)")
    seeds: list[int] = Field(default_factory=lambda: [0], min_length=1,
                             description="training seeds; distinct and >= 0")
    include_base: bool = Field(True, description="also evaluate each base model without fine-tuning")
    models: list[ModelConfig] = Field(default_factory=lambda: [ModelConfig()], min_length=1)
    mixtures: list[MixtureDesign] = Field(default_factory=lambda: [MixtureDesign(design="english_only")])
    budget: BudgetConfig = Field(default_factory=BudgetConfig)
    data: DataConfig = Field(default_factory=DataConfig)
    training: TrainingConfig = Field(default_factory=TrainingConfig)
    evaluation: EvalConfig = Field(default_factory=EvalConfig)
    launcher: LauncherConfig = Field(default_factory=LauncherConfig)

    @field_validator("tasks")
    @classmethod
    def _tasks(cls, names: list[str]) -> list[str]:
        names = [_check_task(n) for n in names]
        if len(set(names)) != len(names):
            raise ValueError(f"tasks repeat: {names}")
        return names

    @field_validator("seeds")
    @classmethod
    def _seeds(cls, seeds: list[int]) -> list[int]:
        negative = [s for s in seeds if s < 0]
        if negative:
            raise ValueError(f"seeds must be >= 0, got {negative}")
        repeated = sorted({s for s in seeds if seeds.count(s) > 1})
        if repeated:
            raise ValueError(f"seeds repeat: {repeated} (each seed is one run; a repeat would double its rows)")
        return seeds

    @field_validator("languages")
    @classmethod
    def _canonical(cls, codes: list[str]) -> list[str]:
        codes = langs.resolve_all(codes)
        if "en" not in codes:
            raise ValueError("the study languages must include 'en' (designs are defined relative to English)")
        return codes

    @model_validator(mode="after")
    def _mixture_languages_in_study(self) -> "StudyConfig":
        for i, design in enumerate(self.mixtures):
            missing = [c for c in design.languages + design.exclude if c not in self.languages]
            if missing:
                raise ValueError(f"mixtures.{i}: languages {missing} are not among the study languages "
                                 f"{self.languages}")
        if self.data.source == "files":
            missing_tasks = [t for t in self.tasks if self.data.task_files(t) is None]
            if missing_tasks:
                raise ValueError(f"data.source is 'files' but data.{missing_tasks[0]} (train/eval files) is not set")
        from langmix.mixtures import MixtureError, expand_designs  # the designs must expand cleanly

        try:
            expand_designs(self.mixtures, self.languages, warn=False)
        except MixtureError as exc:
            raise ValueError(f"mixtures: {exc}") from None
        names = [m.name for m in self.models]
        if len(set(names)) != len(names):
            raise ValueError(f"models: names must be unique, got {names}")
        return self


def validation_problems(err: ValidationError) -> list[tuple[str, str]]:
    """(dotted key, "" at the top level; message) of each problem pydantic found."""
    return [(".".join(str(p) for p in item["loc"]),
             "unknown key" if item["type"] == "extra_forbidden" else item["msg"]) for item in err.errors()]


def _format_validation_error(err: ValidationError, source: str) -> str:
    return "\n".join([f"invalid config {source}:",
                      *(f"  {key or '(top level)'}: {msg}" for key, msg in validation_problems(err))])


def config_hash(obj: BaseModel | dict[str, Any]) -> str:
    """A short stable hash of a config (canonical JSON)."""
    data = obj.model_dump(mode="json") if isinstance(obj, BaseModel) else obj
    return hashlib.sha256(json.dumps(data, sort_keys=True).encode()).hexdigest()[:12]


def dump_resolved(obj: BaseModel, path: Path) -> None:
    """Write a resolved config as YAML beside an output."""
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(yaml.safe_dump(obj.model_dump(mode="json"), sort_keys=False, allow_unicode=True), encoding="utf-8")
