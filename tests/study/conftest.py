import pytest

from tests.slurm_cluster import require_slurm


@pytest.fixture
def slurm() -> None:
    """A usable SLURM cluster, else skip (or fail when LANGMIX_REQUIRE_SLURM=1)."""
    require_slurm()
