from __future__ import annotations

import pytest

from langmix.analysis.simulate import StudyShape

# Full study design (22 mixtures, 11 languages, 2 tasks), fewer models, seeds and items for speed.
SMALL = StudyShape(families=("a",), sizes=(100_000_000, 1_000_000_000), seeds=(0, 1), n_items=120)


@pytest.fixture(scope="session")
def small_shape() -> StudyShape:
    return SMALL
