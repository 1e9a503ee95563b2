"""Shared test settings."""

import pytest
import torch


@pytest.fixture(autouse=True, scope="session")
def one_thread():
    """Run the tests' tiny models on one thread: on a 2-core CI box shared by two xdist
    workers, two OpenMP threads per worker run several times slower than one."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)
