"""Shared fixtures: a very small tiny-model config and a session cache so it is pretrained once."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
import torch

from langmix.config import ModelConfig, StudyConfig, TinyModelConfig

torch.set_num_threads(2)

SMALL_TINY = dict(vocab_size=600, hidden_size=48, num_layers=2, num_heads=2, intermediate_size=96,
                  pretrain_steps=30, pretrain_batch_size=8, pretrain_seq_len=64, corpus_items_per_language=120)


@pytest.fixture(scope="session", autouse=True)
def langmix_cache(tmp_path_factory) -> Path:
    path = tmp_path_factory.mktemp("langmix-cache")
    os.environ["LANGMIX_CACHE"] = str(path)
    return path


@pytest.fixture(scope="session")
def tiny_model_cfg() -> ModelConfig:
    return ModelConfig(name="tiny", tiny=TinyModelConfig(**SMALL_TINY))


@pytest.fixture(scope="session")
def tiny_model_path(tiny_model_cfg) -> str:
    from langmix.models import resolve_model_path

    return resolve_model_path(tiny_model_cfg)


def small_study_dict(output_dir: Path, **extra) -> dict:
    """A study small enough for a unit test: 3 languages, 2 designs, 1 seed, a few SFT steps."""
    base = {
        "name": "t", "output_dir": str(output_dir), "languages": ["en", "es", "sw"], "tasks": ["math"],
        "seeds": [0], "models": [{"name": "tiny", "tiny": SMALL_TINY}],
        "mixtures": [{"design": "english_only"}, {"design": "en_plus_one", "languages": ["sw"]}],
        "budget": {"mode": "fixed_total", "total": 24},
        "data": {"train_pool": 60, "eval_items": 4},
        "training": {"max_steps": 3, "batch_size": 8, "save_steps": 2, "logging_steps": 1, "max_length": 160},
        "evaluation": {"batch_size": 16, "max_new_tokens": {"math": 8, "api": 8}},
    }
    for key, value in extra.items():
        if isinstance(value, dict) and isinstance(base.get(key), dict):
            base[key] = {**base[key], **value}
        else:
            base[key] = value
    return base


@pytest.fixture
def small_study(tmp_path) -> StudyConfig:
    return StudyConfig.model_validate(small_study_dict(tmp_path / "out"))


@pytest.fixture(scope="session")
def finished_small_study(tmp_path_factory, tiny_model_path) -> Path:
    """The config file of a finished small study (base, English-only and en+sw; math; one seed), run once per
    session. Tests that change its runs work on a copy of its output directory (`<dir>/out/t`)."""
    import yaml

    from langmix.study.runner import run_study

    root = tmp_path_factory.mktemp("finished-study")
    tree = small_study_dict(root / "out", include_base=True)
    config = root / "study.yaml"
    config.write_text(yaml.safe_dump(tree))
    assert not run_study(StudyConfig.model_validate(tree))["failed"]
    return config
