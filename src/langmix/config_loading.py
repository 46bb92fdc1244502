"""A study config from its YAML file: safe-loaded (a repeated key refused), paths resolved beside the file, dotted
`-s key=value` overrides applied to the resolved config, validated into `langmix.config.StudyConfig` with errors
that name the file and the key.
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

import yaml
from pydantic import ValidationError

from langmix import languages as langs
from langmix.config import ConfigError, DataConfig, StudyConfig, _format_validation_error, missing_model_path

log = logging.getLogger(__name__)


def _set_dotted(tree: dict[str, Any], dotted: str, value: Any) -> None:
    parts = dotted.split(".")
    node: Any = tree
    for i, part in enumerate(parts):
        last = i == len(parts) - 1
        if isinstance(node, list):
            if not part.isdigit() or int(part) >= len(node):
                raise ConfigError(f"override {dotted!r}: {part!r} is not an index of a list of {len(node)}")
            if last:
                node[int(part)] = value
            else:
                node = node[int(part)]
        elif isinstance(node, dict):
            if last:
                node[part] = value
            else:
                node = node.setdefault(part, {})
        else:
            raise ConfigError(f"override {dotted!r}: {'.'.join(parts[:i])!r} is not a mapping or list")


def apply_overrides(tree: dict[str, Any], overrides: list[str]) -> dict[str, Any]:
    """Apply `a.b.c=value` overrides; values are parsed as YAML (`x=3` is an int, `x=[en,es]` a list)."""
    for item in overrides:
        if "=" not in item:
            raise ConfigError(f"override {item!r} must look like key.path=value")
        key, raw = item.split("=", 1)
        try:
            value = yaml.safe_load(raw) if raw.strip() else ""
        except yaml.YAMLError as exc:
            raise ConfigError(f"override {item!r}: the value is not valid YAML ({exc.problem or exc}); quote it, "
                              f"e.g. -s '{key}=\"...\"'") from None
        _set_dotted(tree, _resolved_key(key.strip()), value)
    return tree


def _resolved_key(dotted: str) -> str:
    """The key path in the resolved config: a task's data section (`data.math...`, as a config file writes it)
    lives under `data.files`, so `data.math.eval=...` replaces the eval source only, not the whole section."""
    parts = dotted.split(".")
    if len(parts) > 1 and parts[0] == "data" and parts[1] not in DataConfig.model_fields:
        return ".".join(["data", "files", *parts[1:]])
    return dotted


def _safe_load_unique(text: str) -> Any:
    """`yaml.safe_load`, refusing a key that repeats in one mapping (plain YAML keeps the last silently, so a
    second `training:` block would drop every setting of the first). Checked on the document as written, before
    merge keys (`<<: *anchor`) are expanded."""
    loader = yaml.SafeLoader(text)
    try:
        node = loader.get_single_node()
        if node is None:
            return None
        seen: set[int] = set()
        stack = [node]
        while stack:
            current = stack.pop()
            if id(current) in seen:  # an alias: the same node again
                continue
            seen.add(id(current))
            if isinstance(current, yaml.MappingNode):
                first: dict[tuple[str, str], Any] = {}
                for key, value in current.value:
                    if isinstance(key, yaml.ScalarNode) and key.tag != "tag:yaml.org,2002:merge":
                        earlier = first.setdefault((key.tag, key.value), key)
                        if earlier is not key:
                            raise yaml.constructor.ConstructorError(
                                "while constructing a mapping", current.start_mark,
                                f"key {key.value!r} repeats (first at line {earlier.start_mark.line + 1}); write it "
                                f"once", key.start_mark)
                    stack += [key, value]
            elif isinstance(current, yaml.SequenceNode):
                stack += current.value
        return loader.construct_document(node)
    finally:
        loader.dispose()


def load_config(path: str | Path, overrides: list[str] | None = None) -> StudyConfig:
    """Load and validate a study YAML; errors name the file and the offending key."""
    path = Path(path)
    if path.is_dir():
        raise ConfigError(f"{path} is a directory; give the study's YAML file")
    try:
        tree = _safe_load_unique(path.read_text(encoding="utf-8"))
    except FileNotFoundError as exc:
        raise ConfigError(f"config file not found: {path}") from exc
    except UnicodeDecodeError as exc:
        raise ConfigError(f"{path}: not UTF-8 text (byte {exc.start}): is it the YAML config?") from None
    except yaml.YAMLError as exc:
        raise ConfigError(f"{path}: not valid YAML: {exc}") from exc
    if tree is None:
        raise ConfigError(f"{path} is empty: write at least the study's name, and its models, mixtures and tasks "
                          f"unless the defaults will do (see examples/quickstart.yaml)")
    if not isinstance(tree, dict):
        raise ConfigError(f"{path}: the top level must be a mapping, got {type(tree).__name__}")
    # A relative output_dir means "beside the config file", wherever the command runs from.
    if isinstance(tree.get("output_dir", "runs"), str) and not Path(tree.get("output_dir", "runs")).is_absolute():
        tree["output_dir"] = str((path.resolve().parent / tree.get("output_dir", "runs")).resolve())
    _resolve_data_paths(tree, path.resolve().parent)
    _resolve_model_paths(tree, path.resolve().parent)
    cfg = _validate(tree, str(path))
    if overrides:
        # Overrides apply to the resolved config, so they can reach defaults the file does not spell out.
        cfg = _validate(apply_overrides(cfg.model_dump(mode="json"), overrides),
                        f"{path} (with overrides {overrides})")
    _check_model_paths(cfg, path)
    return cfg


def _resolve_model_paths(tree: dict[str, Any], base: Path) -> None:
    """A relative model `path` means "beside the config file" where such a directory exists there, as data paths
    do; one that exists nowhere near the config may be a hub id (`org/name`) and is left as written."""
    models = tree.get("models")
    if not isinstance(models, list):
        return
    for model in models:
        value = model.get("path") if isinstance(model, dict) else None
        if not isinstance(value, str) or not value or value.startswith("~") or Path(value).is_absolute():
            continue
        if (base / value).exists():
            model["path"] = str((base / value).resolve())


def _check_model_paths(cfg: StudyConfig, source: Path) -> None:
    """A model path that can only be local (absolute, ./, ../, ~) but does not exist is refused before anything
    runs: transformers would take it for a hub id and every run of the model would fail."""
    for i, model in enumerate(cfg.models):
        missing = missing_model_path(model)
        if missing:
            raise ConfigError(f"{source}: models.{i} ({model.name}): model path {missing} does not exist (a local "
                              f"directory; a hub model is named org/name)")


def _resolve_data_paths(tree: dict[str, Any], base: Path) -> None:
    """Relative data paths mean "beside the config file" too, where such a file or folder exists there (a path
    that exists nowhere near the config may be a hub dataset id and is left as written). One that is not beside
    the config but is in the working directory is read there (`langmix translate --out runs/x` from the repository
    root, then a config in examples/ naming runs/x), with a warning naming both places: from another working
    directory the same config would read another file, or none."""
    data = tree.get("data")
    if not isinstance(data, dict):
        return
    task_sections = [v for k, v in data.items() if isinstance(v, dict) and k not in DataConfig.model_fields]
    task_sections += [v for v in (data.get("files") or {}).values() if isinstance(v, dict)]
    for section in task_sections:
        for split in ("train", "eval"):
            src = section.get(split)
            if not isinstance(src, dict):
                continue
            for key in ("path", "exemplars", "schemas"):
                value = src.get(key)
                if not isinstance(value, str) or Path(value).is_absolute():
                    continue
                candidate = base / value
                probe = candidate.parent if "{" in candidate.name else candidate
                if probe.exists():
                    src[key] = str(candidate.resolve()) if "{" not in candidate.name else \
                        str(candidate.parent.resolve() / candidate.name)
                elif (Path(value).parent if "{" in Path(value).name else Path(value)).exists():
                    log.warning("data path %s is not beside the config (%s) but is in the working directory: "
                                "reading %s; a command run from another directory reads another file, or none "
                                "(write the path relative to the config, or absolute)", value, candidate,
                                Path(value).resolve())


def _validate(tree: dict[str, Any], source: str) -> StudyConfig:
    try:
        return StudyConfig.model_validate(tree)
    except ValidationError as exc:
        raise ConfigError(_format_validation_error(exc, source)) from None
    except langs.UnknownLanguageError as exc:
        raise ConfigError(f"invalid config {source}: {exc}") from None
