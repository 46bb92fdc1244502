"""The config of a study's data (`DataConfig`): the synthetic world, or files per task and split (`FileSource`,
`TaskFiles`); re-exported by `langmix.config`."""

from __future__ import annotations

from typing import Any, Literal

from pydantic import Field, field_validator, model_validator

from langmix.config_model import _Strict


def _check_task(name: str) -> str:
    from langmix import tasks  # the registry imports the scorers; only configs that name a task need it

    return tasks.get(name).name


class FileSource(_Strict):
    """One dataset on disk (or a Hugging Face dataset id for `parallel`).

    `parallel` takes the shapes public multilingual sets come in: one file with a row per language (`long`) or a
    column per language (`wide`), or one file per language named by a `{lang}` / `{language}` pattern in `path`;
    `.jsonl`, `.json`, `.tsv`, `.csv` or `.parquet`; rows with or without an id; any column names (`fields`).
    """

    format: Literal["gsm8k", "mgsm", "parallel", "examples", "bfcl", "apibank"]
    path: str = Field(..., description="file or directory; parallel: also a per-language pattern with `{lang}` "
                      "(the code: data/mgsm_{lang}.tsv) or `{language}` (the English name, as written or in lower "
                      "case: data/{language}.jsonl -> Swahili.jsonl or swahili.jsonl); the languages looked for are "
                      "the study's (all registry languages for training data)")
    limit: int | None = Field(None, ge=1, description="items per language: the first `limit` of each language, "
                              "in file order (gsm8k, bfcl, apibank: the first `limit` items)")
    offset: int = Field(0, ge=0, description="mgsm: items per language skipped before `limit` counts (offset 150, "
                        "limit 100: MGSM items 150-249)")
    shots: int = Field(0, ge=0, description="mgsm: native-language exemplars before each question")
    exemplars: str | None = Field(None, description="mgsm: exemplars.json")
    category: str | None = Field(None, description="bfcl: category, e.g. simple_python")
    schemas: str | None = Field(None, description="apibank: all_apis.csv")
    layout: Literal["long", "wide"] = Field("long", description="parallel: a row per language, or a column each "
                                           "(`<field>_<lang>`); a per-language file set is read row by row")
    id_field: str = Field("id", description="parallel: the column holding the item id shared by all languages; "
                          "rows without it (wide layout or per-language files) take their row number instead")
    language_field: str = Field("language", description="parallel, long layout: the column holding the language")
    question_field: str = Field("question", description="parallel: the question column")
    answer_field: str = Field("answer", description="parallel: the answer column (a number, `... #### n`, or a "
                              "worked solution ending in the number)")
    fields: dict[str, str] = Field(default_factory=dict, description="parallel: column names by role, overriding the "
                                   "*_field settings: question, answer, id, language and english (the English "
                                   "original, which becomes the `en` example of the same source id), e.g. "
                                   "{question: q, answer: a, english: question_en}; in a headerless .tsv the "
                                   "columns are named by position: {question: '0', answer: '1'}")
    id_prefix: str | None = Field(None, description="parallel: source ids of rows without an id are "
                                  "`<id_prefix>-<row number from 0>` (default: the file name without the language "
                                  "part, e.g. mgsm for mgsm_{lang}.tsv); gsm8k-test matches MGSM's lineage")
    split: str = Field("train", description="parallel: the split of a Hugging Face dataset id")

    @field_validator("fields")
    @classmethod
    def _field_roles(cls, fields: dict[str, str]) -> dict[str, str]:
        roles = ["question", "answer", "id", "language", "english"]
        unknown = sorted(set(fields) - set(roles))
        if unknown:
            raise ValueError(f"unknown field role(s) {unknown}; expected some of {roles}")
        return fields

    @model_validator(mode="after")
    def _offset_only_for_mgsm(self) -> "FileSource":
        if self.offset and self.format != "mgsm":
            raise ValueError(f"`offset` is supported for format 'mgsm' only, not {self.format!r}")
        return self

    @model_validator(mode="after")
    def _shots_need_exemplars(self) -> "FileSource":
        if self.shots and self.format != "mgsm":
            raise ValueError(f"`shots` is supported for format 'mgsm' only, not {self.format!r}")
        if self.shots and not self.exemplars:
            raise ValueError(f"`shots: {self.shots}` needs `exemplars`, the file the shots come from (MGSM's "
                             "exemplars.json)")
        return self

    @model_validator(mode="after")
    def _pattern_only_for_parallel(self) -> "FileSource":
        if self.format != "parallel" and ("{lang}" in self.path or "{language}" in self.path):
            raise ValueError(f"a {{lang}}/{{language}} pattern in `path` needs format 'parallel', not {self.format!r}")
        return self

    def field(self, role: str) -> str:
        """The column name for a role (question, answer, id, language, english); english is '' when not mapped."""
        default = {"id": self.id_field, "language": self.language_field, "question": self.question_field,
                   "answer": self.answer_field, "english": ""}[role]
        return self.fields.get(role, default)


class TaskFiles(_Strict):
    train: FileSource | None = Field(None, description="training data (absent: only base models can run)")
    eval: FileSource = Field(..., description="evaluation data")

    @model_validator(mode="after")
    def _trainable(self) -> "TaskFiles":
        if self.train is not None and self.train.format in ("mgsm", "bfcl"):
            raise ValueError(f"train: format {self.train.format!r} is an evaluation set (questions with reference "
                             f"answers, no assistant turn to learn); train on gsm8k, parallel, examples or apibank")
        return self


class DataConfig(_Strict):
    """Where examples come from: the embedded synthetic world (default) or files per task.

    With `source: files`, each task names its files under its own key (`math: {train: ..., eval: ...}`); the keys
    are collected into `files`.
    """

    source: Literal["synth", "files"] = "synth"
    seed: int = Field(0, description="synth: seed of the generated world")
    train_pool: int = Field(1200, ge=1, description="synth: parallel training items per task (source ids)")
    eval_items: int = Field(40, ge=1, description="synth: evaluation items per task and language")
    files: dict[str, TaskFiles] = Field(default_factory=dict, description="files: train/eval sources per task")

    @model_validator(mode="before")
    @classmethod
    def _task_keys(cls, data: Any) -> Any:
        if not isinstance(data, dict):
            return data
        data = dict(data)
        files = dict(data.pop("files", None) or {})
        for key in [k for k in data if k not in cls.model_fields]:
            _check_task(key)  # an unknown top-level key that is not a task name stays an error
            files[key] = data.pop(key)
        data["files"] = files
        return data

    @field_validator("files")
    @classmethod
    def _known_tasks(cls, files: dict[str, TaskFiles]) -> dict[str, TaskFiles]:
        for name in files:
            _check_task(name)
        return files

    def task_files(self, task: str) -> TaskFiles | None:
        return self.files.get(task)
