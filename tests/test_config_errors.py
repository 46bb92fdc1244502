"""Config mistakes that used to give silently wrong results or tracebacks: each is an error naming the entry."""

from __future__ import annotations

import pytest
import yaml

from langmix.config import ConfigError
from langmix.config_loading import load_config


def write(tmp_path, tree) -> object:
    path = tmp_path / "study.yaml"
    path.write_text(yaml.safe_dump(tree))
    return path


@pytest.mark.parametrize("seeds, message", [([], "seeds"), ([0, 0], "seeds repeat: \\[0\\]"),
                                            ([1, -2], "seeds must be >= 0")])
def test_bad_seeds(tmp_path, seeds, message):
    with pytest.raises(ConfigError, match=message):
        load_config(write(tmp_path, {"seeds": seeds}))


def test_duplicate_mixture_names(tmp_path):
    tree = {"mixtures": [{"design": "fixed", "name": "a", "languages": ["en", "es"]},
                         {"design": "fixed", "name": "a", "languages": ["en", "sw"]}]}
    with pytest.raises(ConfigError, match="mixture names repeat: \\['a', 'a'\\]"):
        load_config(write(tmp_path, tree))


def test_names_that_share_a_folder(tmp_path):
    tree = {"mixtures": [{"design": "fixed", "name": "en+sw", "languages": ["en", "sw"]},
                         {"design": "fixed", "name": "en_sw", "languages": ["en", "sw", "es"]}]}
    with pytest.raises(ConfigError, match="'en\\+sw' and 'en_sw' both become the folder name 'en_sw'"):
        load_config(write(tmp_path, tree))


def test_held_out_everything_is_not_a_mixture(tmp_path):
    tree = {"languages": ["en", "sw"], "mixtures": [{"design": "held_out", "exclude": ["en", "sw"]}]}
    with pytest.raises(ConfigError, match="excludes every language"):
        load_config(write(tmp_path, tree))


def test_unknown_task_names_the_known_ones(tmp_path):
    with pytest.raises(ConfigError, match="unknown task 'qa'; known tasks: api, math"):
        load_config(write(tmp_path, {"tasks": ["math", "qa"]}))


def test_directory_and_binary_configs(tmp_path):
    with pytest.raises(ConfigError, match="is a directory"):
        load_config(tmp_path)
    binary = tmp_path / "model.bin"
    binary.write_bytes(b"\xff\xfe\x00garbage")
    with pytest.raises(ConfigError, match="not UTF-8"):
        load_config(binary)


def test_override_that_is_not_yaml(tmp_path):
    with pytest.raises(ConfigError, match="override 'name=\\[unclosed': the value is not valid YAML"):
        load_config(write(tmp_path, {}), ["name=[unclosed"])


def test_relative_output_dir_is_beside_the_config(tmp_path, monkeypatch):
    (tmp_path / "cfgs").mkdir()
    path = tmp_path / "cfgs" / "study.yaml"
    path.write_text(yaml.safe_dump({"output_dir": "runs"}))
    monkeypatch.chdir(tmp_path)
    assert load_config("cfgs/study.yaml").output_dir == str(tmp_path / "cfgs" / "runs")


def test_relative_data_paths_are_beside_the_config(tmp_path, monkeypatch):
    (tmp_path / "cfgs" / "data").mkdir(parents=True)
    (tmp_path / "cfgs" / "data" / "eval.jsonl").write_text("")
    path = tmp_path / "cfgs" / "study.yaml"
    path.write_text(yaml.safe_dump({"tasks": ["math"], "data": {"source": "files", "math": {
        "eval": {"format": "examples", "path": "data/eval.jsonl"},
        "train": {"format": "parallel", "path": "org/hub-dataset"}}}}))
    monkeypatch.chdir(tmp_path)
    files = load_config("cfgs/study.yaml").data.files["math"]
    assert files.eval.path == str(tmp_path / "cfgs" / "data" / "eval.jsonl")
    assert files.train.path == "org/hub-dataset"  # not a local path: a hub id stays as written


def test_a_repeated_yaml_key_is_an_error_not_last_wins(tmp_path):
    path = tmp_path / "study.yaml"
    path.write_text("name: a\ntraining:\n  max_length: 256\nevaluation: {batch_size: 8}\ntraining:\n  epochs: 5\n")
    with pytest.raises(ConfigError, match=r"key 'training' repeats \(first at line 2\)"):
        load_config(path)
    path.write_text("name: a\ntraining: {epochs: 2, epochs: 3}\n")
    with pytest.raises(ConfigError, match=r"key 'epochs' repeats"):
        load_config(path)
    path.write_text("name: a\nbase: &b {epochs: 2}\ntraining:\n  <<: *b\n  max_length: 128\n")  # merge keys: fine
    with pytest.raises(ConfigError, match="unknown key"):  # (base: is not a config key; the merge itself loads)
        load_config(path)


@pytest.mark.parametrize("caps, message", [({"math": 0}, "greater than 0"), ({"math": -5}, "greater than 0"),
                                           ({"maths": 10}, "unknown task 'maths'")])
def test_bad_max_new_tokens(tmp_path, caps, message):
    with pytest.raises(ConfigError, match=message):
        load_config(write(tmp_path, {"evaluation": {"max_new_tokens": caps}}))


def test_merge_keys_that_override_an_anchor_are_not_repeats(tmp_path):
    path = tmp_path / "study.yaml"
    path.write_text("name: a\nmodels:\n  - &m {name: one, source: tiny}\n  - {<<: *m, name: two}\n"
                    "training: &t {epochs: 2}\nevaluation: {batch_size: 4}\n")
    cfg = load_config(path)
    assert [m.name for m in cfg.models] == ["one", "two"] and cfg.training.epochs == 2


@pytest.mark.parametrize("minutes", [1, 2])
def test_a_time_limit_too_short_to_requeue_is_refused(tmp_path, minutes):
    """SLURM signals a job 90 s before its limit (submitit's --signal=USR2@90): a limit of 1-2 minutes killed every
    job at its start."""
    with pytest.raises(ConfigError, match="launcher.timeout_min"):
        load_config(write(tmp_path, {"launcher": {"timeout_min": minutes}}))
    assert load_config(write(tmp_path, {"launcher": {"timeout_min": 3}})).launcher.timeout_min == 3


@pytest.mark.parametrize("index, override, message", [
    (0, "mixtures.0.languages=[sw]", "design 'english_only' does not read `languages` (only en_plus_one, fixed, "
                                     "growing, held_out do): remove it or choose another design"),
    (1, "mixtures.1.exclude=[sw]", "design 'en_plus_one' does not read `exclude` (only held_out does): remove it "
                                   "or choose another design"),
    (2, "mixtures.2.exclude=[sw]", "design 'fixed' does not read `exclude`"),
    (3, "mixtures.3.exclude=[sw]", "design 'growing' does not read `exclude`"),
])
def test_a_list_the_design_does_not_read_is_refused(tmp_path, index, override, message):
    """`-s 'mixtures.0.languages=[sw]'` on english_only or `exclude` on en_plus_one was ignored: `0 of 5 runs to
    do`, no warning, the config saying one study and the runs being another."""
    tree = {"languages": ["en", "es", "sw"], "mixtures": [
        {"design": "english_only"}, {"design": "en_plus_one", "languages": ["sw"]},
        {"design": "fixed", "languages": ["en", "es"]}, {"design": "growing", "languages": ["es", "sw"]},
        {"design": "held_out", "languages": ["en", "es", "sw"], "exclude": ["es"]}]}
    path = write(tmp_path, tree)
    assert len(load_config(path).mixtures) == 5  # every design with the lists it reads (empty ones included)
    with pytest.raises(ConfigError) as err:
        load_config(path, [override])
    assert f"  mixtures.{index}: Value error, {message}" in str(err.value)
    assert len(str(err.value).splitlines()) == 2  # the config named, then the one problem
    tree["mixtures"][0]["exclude"] = []  # an empty list (as a resolved config dumps every field) reads nothing
    load_config(write(tmp_path, tree))


def _config_classes() -> list[type]:
    from langmix.config import StudyConfig  # its import defines every config class
    from langmix.config_model import _Strict

    found, todo = [], [_Strict]
    while todo:
        cls = todo.pop()
        found += cls.__subclasses__()
        todo += cls.__subclasses__()
    assert StudyConfig in found
    return found


# the least each config needs to validate; the others validate from {}
_REQUIRED = {"FileSource": {"format": "examples", "path": "x.jsonl"},
             "TaskFiles": {"eval": {"format": "examples", "path": "x.jsonl"}}}


def _boolean_in_place_of_a_number(annotation) -> tuple[object, tuple, str] | None:
    """(a value holding `True` where the annotation wants a number, its path inside the field, "an integer" or "a
    number"), or None for a field that holds no number."""
    import types
    from typing import Annotated, Union, get_args, get_origin

    def unwrap(annotation) -> list:  # a union's arms; Annotated (PositiveInt) unwrapped
        if get_origin(annotation) is Annotated:
            return unwrap(get_args(annotation)[0])
        if get_origin(annotation) in (Union, types.UnionType):
            return [arm for part in get_args(annotation) for arm in unwrap(part)]
        return [annotation]

    arms = unwrap(annotation)
    if bool not in arms and (int in arms or float in arms):
        return True, (), "an integer" if int in arms else "a number"
    for arm in arms:
        if get_origin(arm) is list and (inner := _boolean_in_place_of_a_number(get_args(arm)[0])):
            return [inner[0]], (0, *inner[1]), inner[2]
        if get_origin(arm) is dict and (inner := _boolean_in_place_of_a_number(get_args(arm)[1])):
            return {"math": inner[0]}, ("math", *inner[1]), inner[2]  # refused before the keys are checked
    return None


def test_every_numeric_config_field_refuses_a_boolean():
    """pydantic's lax int and float took YAML's `true` as 1: `seeds: [0, true]` ran seeds 0 and 1, and
    `training.epochs: true` trained 1.0 epoch. Every config field that holds a number (in a list or a mapping too)
    refuses a boolean, naming its path; a field added later is covered by the base class."""
    from pydantic import ValidationError

    checked = []
    for cls in _config_classes():
        for name, field in cls.model_fields.items():
            sample = _boolean_in_place_of_a_number(field.annotation)
            if sample is None:
                continue
            value, inside, expected = sample
            with pytest.raises(ValidationError) as err:
                cls.model_validate({**_REQUIRED.get(cls.__name__, {}), name: value})
            problems = [(e["loc"], e["msg"]) for e in err.value.errors()]
            assert problems == [((name, *inside), f"expected {expected}, got a boolean")], (cls.__name__, problems)
            checked.append(f"{cls.__name__}.{name}")
    assert {"StudyConfig.seeds", "TrainingConfig.epochs", "TrainingConfig.batch_size", "DataConfig.eval_items",
            "TinyModelConfig.language_shares", "EvalConfig.max_new_tokens", "LauncherConfig.gpus_per_run",
            "ModelConfig.params", "FileSource.limit", "BudgetConfig.total"} <= set(checked)
    assert len(checked) == 52, checked  # every numeric field of every config as of this test


def test_a_boolean_number_in_the_file_or_an_override_names_its_key(tmp_path):
    path = write(tmp_path, {"seeds": [0, True], "training": {"epochs": True}})
    with pytest.raises(ConfigError) as err:
        load_config(path)
    assert str(err.value).splitlines()[1:] == ["  seeds.1: expected an integer, got a boolean",
                                               "  training.epochs: expected a number, got a boolean"]
    with pytest.raises(ConfigError, match="models.0.tiny.language_shares.sw: expected a number, got a boolean"):
        load_config(write(tmp_path, {}), ["models.0.tiny.language_shares.sw=true"])


def test_numbers_still_validate_as_before(tmp_path):
    """An int where a float is expected stays a float; a real boolean field still takes a boolean."""
    cfg = load_config(write(tmp_path, {"seeds": [0, 3], "training": {"epochs": 1, "learning_rate": 1,
                                                                     "packing": False}}),
                      ["launcher.mfu=1", "models.0.tiny.language_shares.sw=0", "include_base=false"])
    assert cfg.seeds == [0, 3] and cfg.training.epochs == 1.0 and isinstance(cfg.training.epochs, float)
    assert cfg.training.learning_rate == 1.0 and cfg.launcher.mfu == 1.0 and cfg.training.packing is False
    assert cfg.models[0].tiny.language_shares["sw"] == 0.0 and cfg.include_base is False
    cfg.training.epochs = 3  # assignment validates too
    assert cfg.training.epochs == 3.0
    with pytest.raises(ValueError, match="expected a number, got a boolean"):
        cfg.training.epochs = True
