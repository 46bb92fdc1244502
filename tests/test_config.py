from pathlib import Path

import pytest
import yaml

from langmix.config import ConfigError, StudyConfig, config_hash, dump_resolved
from langmix.config_loading import apply_overrides, load_config


def write(tmp_path: Path, tree) -> Path:
    path = tmp_path / "study.yaml"
    path.write_text(yaml.safe_dump(tree))
    return path


def test_unknown_key_names_key_and_file(tmp_path):
    path = write(tmp_path, {"training": {"learnig_rate": 0.1}})
    with pytest.raises(ConfigError) as err:
        load_config(path)
    assert "training.learnig_rate" in str(err.value)
    assert "unknown key" in str(err.value)
    assert str(path) in str(err.value)


def test_wrong_type_names_key(tmp_path):
    path = write(tmp_path, {"training": {"batch_size": "many"}})
    with pytest.raises(ConfigError, match=r"training\.batch_size"):
        load_config(path)


def test_bad_value_in_list_item(tmp_path):
    path = write(tmp_path, {"mixtures": [{"design": "english_only"}, {"design": "everything"}]})
    with pytest.raises(ConfigError, match=r"mixtures\.1\.design"):
        load_config(path)


def test_unknown_language_lists_close_matches(tmp_path):
    path = write(tmp_path, {"languages": ["en", "swahil"]})
    with pytest.raises(ConfigError) as err:
        load_config(path)
    assert "swahil" in str(err.value) and "sw" in str(err.value) and str(path) in str(err.value)


def test_mixture_language_outside_study(tmp_path):
    path = write(tmp_path, {"languages": ["en", "es"], "mixtures": [{"design": "fixed", "languages": ["en", "sw"]}]})
    with pytest.raises(ConfigError, match="not among the study languages"):
        load_config(path)


def test_not_yaml_and_missing_file(tmp_path):
    bad = tmp_path / "bad.yaml"
    bad.write_text("a: [1, 2\n")
    with pytest.raises(ConfigError, match="not valid YAML"):
        load_config(bad)
    with pytest.raises(ConfigError, match="not found"):
        load_config(tmp_path / "nope.yaml")


def test_overrides_are_typed_and_dotted(tmp_path):
    path = write(tmp_path, {"mixtures": [{"design": "fixed", "languages": ["en", "es"]}]})
    cfg = load_config(path, ["training.learning_rate=1e-4", "seeds=[1, 2]", "mixtures.0.languages=[en, sw]",
                             "languages=[en, es, Swahili]"])
    assert cfg.training.learning_rate == pytest.approx(1e-4)
    assert cfg.seeds == [1, 2]
    assert cfg.mixtures[0].languages == ["en", "sw"]
    assert cfg.languages == ["en", "es", "sw"]


def test_override_errors():
    with pytest.raises(ConfigError, match="key.path=value"):
        apply_overrides({}, ["training"])
    with pytest.raises(ConfigError, match="not an index"):
        apply_overrides({"seeds": [0]}, ["seeds.3=1"])


def test_override_with_bad_value_names_override(tmp_path):
    path = write(tmp_path, {})
    with pytest.raises(ConfigError, match=r"training\.epochs.*overrides|overrides.*training\.epochs"):
        load_config(path, ["training.epochs=-1"])


def test_resolved_config_round_trips(tmp_path):
    cfg = StudyConfig(output_dir=str(tmp_path / "out"))  # resolved configs hold an absolute output_dir
    dump_resolved(cfg, tmp_path / "resolved.yaml")
    again = load_config(tmp_path / "resolved.yaml")
    assert again == cfg and config_hash(again) == config_hash(cfg)


def test_hf_model_needs_path(tmp_path):
    path = write(tmp_path, {"models": [{"name": "x", "source": "hf"}]})
    with pytest.raises(ConfigError, match="models.0"):
        load_config(path)


def test_file_source_needs_files_for_each_task(tmp_path):
    path = write(tmp_path, {"tasks": ["math", "api"], "data": {"source": "files", "math": {
        "eval": {"format": "mgsm", "path": "x"}}}})
    with pytest.raises(ConfigError, match=r"data.api"):
        load_config(path)


def test_example_configs_validate():
    root = Path(__file__).resolve().parents[1] / "examples"
    for path in sorted(root.glob("*.yaml")):
        load_config(path)


def test_override_of_a_task_data_split_keeps_the_other_split(tmp_path):
    """`data.math.eval=...` (how a config file spells a task's data) replaces that split only, as the README shows;
    the resolved config keeps the section under `data.files`."""
    tree = {"tasks": ["math"], "data": {"source": "files", "math": {"train": {"format": "gsm8k", "path": "train.jsonl"},
                                                 "eval": {"format": "mgsm", "path": "mgsm", "limit": 50}}}}
    path = write(tmp_path, tree)
    cfg = load_config(path, ["data.math.eval={format: mgsm, path: other, offset: 150, limit: 100}"])
    files = cfg.data.task_files("math")
    assert files.train is not None and files.train.path.endswith("train.jsonl")
    assert (files.eval.path, files.eval.offset, files.eval.limit) == ("other", 150, 100)
    cfg = load_config(path, ["data.math.eval.limit=10", "data.files.math.train.limit=7"])
    files = cfg.data.task_files("math")
    assert (files.eval.limit, files.eval.format, files.train.limit) == (10, "mgsm", 7)
    assert load_config(path, ["data.seed=3"]).data.seed == 3  # DataConfig's own fields are where they were


def _model_study(tmp_path: Path, path: str) -> Path:
    return write(tmp_path, {"output_dir": "out", "models": [{"name": "local", "source": "hf", "path": path,
                                                             "params": 730000}]})


def test_relative_model_path_is_beside_the_config(tmp_path, monkeypatch):
    """A relative model path was taken relative to the working directory: from elsewhere it became a hub id and
    every run failed trying to reach huggingface.co."""
    (tmp_path / "mymodel").mkdir()
    config = _model_study(tmp_path, "mymodel")
    monkeypatch.chdir("/")
    assert load_config(config).models[0].path == str(tmp_path / "mymodel")
    # a bare org/name that is no directory beside the config stays a hub id
    assert load_config(_model_study(tmp_path, "org/name")).models[0].path == "org/name"


def test_home_in_model_path_is_expanded(tmp_path, monkeypatch):
    monkeypatch.setenv("HOME", str(tmp_path))
    (tmp_path / "models" / "m").mkdir(parents=True)
    assert load_config(_model_study(tmp_path, "~/models/m")).models[0].path == str(tmp_path / "models" / "m")


@pytest.mark.parametrize("path", ["/nonexistent/model", "./mymodel", "../mymodel", "~/no-such-model"])
def test_missing_local_model_path_is_refused(tmp_path, path):
    """A local-looking model path that does not exist failed every run ("Repo id must be in the form ...") after
    claiming it; it is refused when the config is loaded, in one line naming the model."""
    with pytest.raises(ConfigError) as err:
        load_config(_model_study(tmp_path, path))
    assert "models.0 (local): model path" in str(err.value) and "does not exist" in str(err.value)
    assert "\n" not in str(err.value)


def test_missing_model_path_in_an_override_is_refused(tmp_path):
    (tmp_path / "mymodel").mkdir()
    config = _model_study(tmp_path, "mymodel")
    with pytest.raises(ConfigError, match="does not exist"):
        load_config(config, ["models.0.path=/nonexistent/model"])
    with pytest.raises(ConfigError, match="nope.gguf does not exist"):
        load_config(config, ["models.0.gguf_file=nope.gguf"])


def test_a_data_path_read_from_the_working_directory_is_named_with_both_places(tmp_path, monkeypatch, caplog):
    """A relative data path not beside the config stayed relative to the working directory, silently: the same
    config read another file from another directory. It still reads the working directory's file (`translate
    --out runs/x` from the repository root, a config in examples/), with one warning naming both places."""
    import logging

    config_dir, work = tmp_path / "examples", tmp_path / "repo"
    (work / "runs" / "x").mkdir(parents=True)
    (work / "runs" / "x" / "data.jsonl").write_text("")
    config_dir.mkdir()
    tree = {"tasks": ["math"], "data": {"source": "files", "math": {
        "train": {"format": "examples", "path": "runs/x/data.jsonl"},
        "eval": {"format": "mgsm", "path": "mgsm"}}}}
    path = write(config_dir, tree)
    monkeypatch.chdir(work)
    with caplog.at_level(logging.WARNING, logger="langmix.config_loading"):
        cfg = load_config(path)
    assert cfg.data.task_files("math").train.path == "runs/x/data.jsonl"  # read from the working directory
    warned = [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING]
    assert warned == [f"data path runs/x/data.jsonl is not beside the config ({config_dir / 'runs/x/data.jsonl'}) "
                      f"but is in the working directory: reading {work / 'runs/x/data.jsonl'}; a command run from "
                      "another directory reads another file, or none (write the path relative to the config, or "
                      "absolute)"]  # mgsm exists in neither place (a hub id, or missing): no warning
    caplog.clear()
    (config_dir / "runs" / "x").mkdir(parents=True)
    (config_dir / "runs" / "x" / "data.jsonl").write_text("")
    with caplog.at_level(logging.WARNING, logger="langmix.config_loading"):
        cfg = load_config(path)
    assert cfg.data.task_files("math").train.path == str(config_dir / "runs/x/data.jsonl")  # beside it: that one
    assert not [r for r in caplog.records if r.levelno == logging.WARNING]
