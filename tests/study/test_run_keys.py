"""What run keys cover beyond the config's own values: a local model directory's content, and (not) the study's
seeds for a base model's evaluation."""

from __future__ import annotations

import json
import logging
import os
import shutil
from pathlib import Path

import yaml
from typer.testing import CliRunner

from langmix.cli import app
from langmix.config import TRAINING_FIELDS_NOT_IN_KEY, StudyConfig, config_hash
from langmix.config_loading import load_config
from langmix.study.grid import expand
from tests.conftest import small_study_dict

EXAMPLES = Path(__file__).resolve().parents[2] / "examples"


def _model_dir(path: Path, weights: bytes = b"weights-a") -> Path:
    path.mkdir(parents=True, exist_ok=True)
    (path / "config.json").write_text('{"model_type": "llama"}')
    (path / "tokenizer.json").write_text('{"version": "1.0"}')
    (path / "model.safetensors").write_bytes(weights)
    return path


def _keys(cfg: StudyConfig) -> list[str]:
    return [spec.key for job in expand(cfg) for spec in ([job.train] if job.train else []) + job.evals]


def _local_study(tmp_path: Path, model: Path, **extra) -> StudyConfig:
    tree = small_study_dict(tmp_path / "out", include_base=True, **extra)
    tree["models"] = [{"name": "local", "source": "hf", "path": str(model), "params": 730000}]
    return StudyConfig.model_validate(tree)


def test_replacing_a_local_models_files_changes_every_key(tmp_path):
    """Replacing the weights of a local base model kept every train and eval key (base evaluations included), so
    `study run` reused the old model's results and said `0 of 5 runs to do`."""
    model = _model_dir(tmp_path / "mymodel")
    before = _keys(_local_study(tmp_path, model))
    assert len(before) == 5
    (model / "model.safetensors").write_bytes(b"weights-b")  # another model's weights at the same path
    after = _keys(_local_study(tmp_path, model))
    assert not set(before) & set(after)
    (model / "tokenizer.json").write_text('{"version": "2.0"}')  # a tokenizer file counts too
    assert not set(after) & set(_keys(_local_study(tmp_path, model)))


def test_a_local_models_key_is_its_content_not_its_timestamps(tmp_path):
    model = _model_dir(tmp_path / "mymodel")
    before = _keys(_local_study(tmp_path, model))
    os.utime(model / "model.safetensors", ns=(1, 1))  # touched, same bytes: the same runs
    (model / ".cache").mkdir()
    (model / ".cache" / "download.lock").write_text("x")  # hidden files (hub download metadata) do not count
    assert _keys(_local_study(tmp_path, model)) == before


def test_a_local_models_digest_is_cached_on_disk(tmp_path, monkeypatch):
    """The digest of a (possibly 16 GB) model is computed once: a later process reads it from the langmix cache
    while the files keep their names, sizes and modification times."""
    from langmix.data import digest

    model = _model_dir(tmp_path / "mymodel", weights=os.urandom(4096))
    before = _keys(_local_study(tmp_path, model))
    read: list[Path] = []
    original = digest._sha256
    monkeypatch.setattr(digest, "_sha256", lambda p: read.append(p) or original(p))
    monkeypatch.setattr(digest, "_MEMO", {})  # as in a new process
    assert _keys(_local_study(tmp_path, model)) == before and read == []
    (model / "model.safetensors").write_bytes(os.urandom(4096))
    assert _keys(_local_study(tmp_path, model)) != before
    assert read == [model / "model.safetensors"]  # only the changed file is read again


def test_models_without_local_files_keep_their_keys(tmp_path, caplog):
    """A hub id, the tiny model and a GGUF package are identified by their settings: their keys are what they were
    before local directories were digested (the quickstart's are pinned in test_launch_plan). A hub id without a
    revision gets a warning that its results are keyed by the name only."""
    cfg = _local_study(tmp_path, Path("org/some-model"))
    with caplog.at_level(logging.WARNING, logger="langmix.study.grid"):
        jobs = expand(cfg)
    assert "keyed by the hub id only" in caplog.text and "org/some-model" in caplog.text
    assert len(caplog.records) == 1
    train = next(j.train for j in jobs if j.train)
    assert train.model_files is None and "model_files" not in train._key_tree()
    tree = train.model_dump(mode="json")
    del tree["model_files"]
    assert train.key == config_hash({**tree, "training": {k: v for k, v in tree["training"].items()
                                                          if k not in TRAINING_FIELDS_NOT_IN_KEY}})
    caplog.clear()
    with caplog.at_level(logging.WARNING, logger="langmix.study.grid"):
        expand(cfg)
    assert not caplog.text  # once per process
    pinned = cfg.model_copy(update={"models": [cfg.models[0].model_copy(update={"revision": "abc123",
                                                                                "path": "org/other-model"})]})
    with caplog.at_level(logging.WARNING, logger="langmix.study.grid"):
        expand(pinned)
    assert "keyed by the hub id only" not in caplog.text
    for tree in ({"name": "tiny"}, {"name": "g", "source": "gguf_package", "package": "some-gguf"}):
        model_cfg = StudyConfig.model_validate({**small_study_dict(tmp_path / "out"), "models": [tree]})
        assert all(spec.model_files is None for job in expand(model_cfg)
                   for spec in ([job.train] if job.train else []) + job.evals)


def test_a_gguf_package_is_keyed_by_its_installed_version(tmp_path, monkeypatch):
    """A GGUF package was keyed by its name only, so upgrading it (other weights under the same name) reused the
    runs of the old release."""
    import importlib.metadata

    installed = {"some-gguf": "1.0.0"}
    monkeypatch.setattr(importlib.metadata, "version", lambda name: installed[name])
    cfg = StudyConfig.model_validate({**small_study_dict(tmp_path / "out"),
                                      "models": [{"name": "g", "source": "gguf_package", "package": "some-gguf"}]})
    first = expand(cfg)
    assert {e.model_files for j in first for e in j.evals} == {"some-gguf==1.0.0"}
    installed["some-gguf"] = "1.1.0"
    second = expand(cfg)
    assert not {e.key for j in first for e in j.evals} & {e.key for j in second for e in j.evals}
    assert not {j.train.key for j in first if j.train} & {j.train.key for j in second if j.train}


def test_base_evaluation_does_not_depend_on_the_study_seeds(tmp_path):
    """`-s 'seeds=[1,0]'` after `seeds: [0, 1]` evaluated the base model again (`...-s1-...`), with byte-identical
    greedy outputs: the base evaluation took the study's first seed into its key."""
    def base(seeds):
        cfg = StudyConfig.model_validate(small_study_dict(tmp_path / "out", include_base=True, seeds=seeds))
        return [e for j in expand(cfg) for e in j.evals if e.is_base]

    reference = base([0, 1])
    assert len(reference) == 1 and reference[0].seed == 0
    for seeds in ([1, 0], [1], [2, 3]):
        assert [(e.slug, e.key) for e in base(seeds)] == [(e.slug, e.key) for e in reference]


def test_quickstart_keys_are_unchanged():
    """The quickstart (tiny model, first seed 0) keeps the keys of its finished studies."""
    cfg = load_config(EXAMPLES / "quickstart.yaml")
    base = [e for j in expand(cfg) for e in j.evals if e.is_base]
    assert base[0].key == "90c35486af78" and all(e.model_files is None and e.seed == 0 for e in base)


def test_cli_dry_run_after_the_model_is_replaced(tmp_path, monkeypatch):
    """Through the CLI, from another working directory, with the model named relative to the config: the finished
    runs' keys are no longer the plan's once the model's files change."""
    model = _model_dir(tmp_path / "mymodel")
    tree = small_study_dict(Path("out"), include_base=True)
    tree["models"] = [{"name": "local", "source": "hf", "path": "mymodel", "params": 730000}]
    config = tmp_path / "study.yaml"
    config.write_text(yaml.safe_dump(tree))
    before = _keys(load_config(config))
    shutil.rmtree(model)
    _model_dir(model, weights=b"another model")
    monkeypatch.chdir("/")
    after = _keys(load_config(config))
    assert len(after) == 5 and not set(before) & set(after)
    result = CliRunner().invoke(app, ["study", "run", str(config), "--dry-run"])
    assert result.exit_code == 0 and "5 of 5 runs to do" in result.output, result.output


def test_study_run_refuses_a_missing_model_path_before_claiming_a_run(tmp_path):
    """`path: /tmp/nonexistent` claimed every run and failed each ("Repo id must be in the form ...", exit 1)."""
    tree = small_study_dict(tmp_path / "out", include_base=True)
    tree["models"] = [{"name": "local", "source": "hf", "path": str(tmp_path / "nonexistent"), "params": 730000}]
    config = tmp_path / "study.yaml"
    config.write_text(yaml.safe_dump(tree))
    result = CliRunner().invoke(app, ["study", "run", str(config), "--no-report"])
    assert result.exit_code == 2, result.output
    assert result.output.strip() == (f"{config}: models.0 (local): model path {tmp_path / 'nonexistent'} does not "
                                     f"exist (a local directory; a hub model is named org/name)")
    assert not (tmp_path / "out").exists()


def test_resolving_a_missing_local_model_names_it():
    """Through the Python API (no config file), the run fails naming the path, not as a malformed hub id."""
    import pytest

    from langmix.config import ModelConfig
    from langmix.models import ModelError, resolve_model_path

    with pytest.raises(ModelError, match="model path /nonexistent/model does not exist"):
        resolve_model_path(ModelConfig(name="m", source="hf", path="/nonexistent/model"))


def _files_study(root: Path, **data_extra) -> Path:
    """A files-based study in `root`: its config names the data relative to itself, as a project would."""
    from langmix.data.synth import make_items, to_example

    (root / "data").mkdir(parents=True)
    items = make_items("math", "train", 6, 0)
    (root / "data" / "train.jsonl").write_text(
        "".join(to_example(i, lang).model_dump_json() + "\n" for i in items for lang in ("en", "sw")))
    (root / "data" / "eval.jsonl").write_text(
        "".join(to_example(i, "en").model_dump_json() + "\n" for i in make_items("math", "eval", 3, 0)))
    files = {"train": {"format": "examples", "path": "data/train.jsonl"},
             "eval": {"format": "examples", "path": "data/eval.jsonl", **data_extra}}
    tree = small_study_dict(Path("out"), include_base=True, languages=["en", "sw"],
                            data={"source": "files", "math": files})
    (root / "study.yaml").write_text(yaml.safe_dump(tree))
    return root / "study.yaml"


def test_a_copied_files_project_keeps_its_keys(tmp_path):
    """`cp -a proj proj2` listed every finished run of proj2 as pending: the keys of a files-based study held the
    data files' absolute paths. They hold what the files read (names and contents), so a copy keeps them, and a
    changed line still changes them."""
    config = _files_study(tmp_path / "proj")
    before = _keys(load_config(config))
    assert len(before) == 5
    shutil.copytree(tmp_path / "proj", tmp_path / "elsewhere" / "proj2")
    copy = tmp_path / "elsewhere" / "proj2" / "study.yaml"
    assert _keys(load_config(copy)) == before
    assert str(tmp_path) not in json.dumps([s.data for j in expand(load_config(copy))
                                            for s in ([j.train] if j.train else []) + j.evals])
    evalf = tmp_path / "elsewhere" / "proj2" / "data" / "eval.jsonl"
    lines = evalf.read_text().splitlines(keepends=True)
    evalf.write_text("".join(lines[:-1]) + lines[-1].replace('"en"', '"en" ', 1))  # one line changed
    after = _keys(load_config(copy))
    trains = {s.key for j in expand(load_config(copy)) if j.train for s in [j.train]}
    assert set(after) - trains == set(after) - set(before)  # every evaluation is new, no training is
    assert len(set(after) - set(before)) == 3
    train = tmp_path / "elsewhere" / "proj2" / "data" / "train.jsonl"
    train.write_text(train.read_text().replace("\n", "\n\n", 1))  # the training data's bytes change
    assert not set(_keys(load_config(copy))) & set(before)


def test_data_keys_hold_what_changes_what_is_read(tmp_path):
    """A file's name picks its parser and may name its items (gsm8k's split, a parallel set's id prefix), so a
    renamed file is another run; so is another `limit`."""
    config = _files_study(tmp_path / "proj")
    before = set(_keys(load_config(config)))
    assert len(set(_keys(load_config(config, ["data.math.eval.limit=2"]))) - before) == 3  # the evaluations
    (tmp_path / "proj" / "data" / "eval.jsonl").rename(tmp_path / "proj" / "data" / "eval2.jsonl")
    renamed = set(_keys(load_config(config, ["data.math.eval.path=data/eval2.jsonl"])))
    assert len(renamed - before) == 3


def test_a_pattern_or_folders_identity_is_its_relative_names_and_contents(tmp_path):
    """A `{lang}` pattern and a directory (MGSM's, API-Bank's) are keyed by the names of their files relative to
    their folder and the files' contents; a hub dataset id (nothing local) by its text."""
    from langmix.data.digest import source_identity

    def folder(root: Path) -> Path:
        (root / "sub").mkdir(parents=True)
        (root / "mgsm_en.tsv").write_text("q\t1\n")
        (root / "mgsm_sw.tsv").write_text("s\t2\n")
        (root / "sub" / "x.jsonl").write_text("{}\n")
        return root

    a, b = folder(tmp_path / "a" / "data"), folder(tmp_path / "b" / "elsewhere" / "data")
    for name in ("", "mgsm_{lang}.tsv"):
        assert source_identity(str(a / name)) == source_identity(str(b / name))
        assert str(tmp_path) not in source_identity(str(a / name))
    assert source_identity(str(a / "mgsm_{lang}.tsv")).startswith("mgsm_{lang}.tsv@")
    (b / "sub" / "x.jsonl").write_text("{} \n")
    assert source_identity(str(a)) != source_identity(str(b))
    assert source_identity(str(a / "mgsm_{lang}.tsv")) == source_identity(str(b / "mgsm_{lang}.tsv"))
    (b / "mgsm_sw.tsv").rename(b / "mgsm_fr.tsv")  # the same bytes for another language
    assert source_identity(str(a / "mgsm_{lang}.tsv")) != source_identity(str(b / "mgsm_{lang}.tsv"))
    assert source_identity("juletxara/mgsm") == "juletxara/mgsm" and source_identity(None) is None


def test_a_copied_project_with_a_local_model_keeps_its_keys(tmp_path):
    """A local model directory was keyed by its content and also by its absolute path: a project copied with its
    model (`models/mine` beside the config) listed every run as pending."""
    _model_dir(tmp_path / "proj" / "models" / "mine")
    tree = small_study_dict(Path("out"), include_base=True)
    tree["models"] = [{"name": "local", "source": "hf", "path": "models/mine", "params": 730000}]
    (tmp_path / "proj" / "study.yaml").write_text(yaml.safe_dump(tree))
    before = _keys(load_config(tmp_path / "proj" / "study.yaml"))
    shutil.copytree(tmp_path / "proj", tmp_path / "elsewhere" / "proj2")
    copy = tmp_path / "elsewhere" / "proj2" / "study.yaml"
    assert len(before) == 5 and _keys(load_config(copy)) == before
    (tmp_path / "elsewhere" / "proj2" / "models" / "mine" / "model.safetensors").write_bytes(b"weights-b")
    assert not set(_keys(load_config(copy))) & set(before)


def test_a_copied_training_resumes_under_the_same_identity(tmp_path):
    """The identity a training records (and resumes its checkpoints only under) held a local model's absolute path:
    a run copied mid-training with its project failed with 'holds another run's training'."""
    from langmix.data.synth import make_items, to_example
    from langmix.study.runner import train_identity

    _model_dir(tmp_path / "proj" / "models" / "mine")
    tree = small_study_dict(Path("out"), include_base=False)
    tree["models"] = [{"name": "local", "source": "hf", "path": "models/mine", "params": 730000}]
    (tmp_path / "proj" / "study.yaml").write_text(yaml.safe_dump(tree))
    shutil.copytree(tmp_path / "proj", tmp_path / "elsewhere" / "proj2")
    examples = [to_example(i, "en") for i in make_items("math", "train", 3, 0)]
    first, copied = (expand(load_config(root / "study.yaml"))[0].train
                     for root in (tmp_path / "proj", tmp_path / "elsewhere" / "proj2"))
    assert first.model.path != copied.model.path
    assert train_identity(first, examples) == train_identity(copied, examples)
    assert train_identity(first, examples) != train_identity(first, examples[1:])


def test_a_pattern_in_a_folder_name_is_keyed_by_content_and_hidden_files_are_not(tmp_path):
    """`data/{lang}/test.tsv` (a pattern in a folder's name, which `language_files` reads) was keyed by its path
    text alone: an edited file kept the key (its finished runs reused) and a copied project changed it. A
    directory's hidden files (`.git`, an editor's swap file) changed its key."""
    from langmix.data.digest import source_identity

    def project(root: Path) -> Path:
        for lang in ("en", "es"):
            (root / "data" / lang).mkdir(parents=True)
            (root / "data" / lang / "test.tsv").write_text(f"q {lang}\t1\n")
        return root / "data"

    a, b = project(tmp_path / "a"), project(tmp_path / "b" / "moved")
    pattern = "{lang}/test.tsv"
    assert source_identity(str(a / pattern)) == source_identity(str(b / pattern))
    assert source_identity(str(a / pattern)).startswith("{lang}/test.tsv@")
    (b / "es" / "test.tsv").write_text("q es\t2\n")
    assert source_identity(str(a / pattern)) != source_identity(str(b / pattern))
    before, before_pattern = source_identity(str(a)), source_identity(str(a / pattern))
    (a / ".git").mkdir()
    (a / ".git" / "index").write_text("x")
    (a / "en" / ".test.tsv.swp").write_text("y")
    (a / ".cache").mkdir()
    (a / ".cache" / "test.tsv").write_text("z")  # matched by the pattern's glob, but hidden
    assert source_identity(str(a)) == before and source_identity(str(a / pattern)) == before_pattern
