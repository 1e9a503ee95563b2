"""Shared test settings."""

import importlib.util
import os
import socket
import sys
from pathlib import Path

import pytest
import torch

from course_utils import data
from course_utils.support import sources


@pytest.fixture(autouse=True, scope="session")
def one_thread():
    """Run the tests' tiny models on one thread: on a 2-core CI box shared by two xdist
    workers, two OpenMP threads per worker run several times slower than one."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


@pytest.fixture
def refuse_network(monkeypatch):
    """Any name lookup or connection fails at once: data tests never touch the network."""

    def refuse(*args, **kwargs):
        raise OSError("the tests never use the network")

    monkeypatch.setattr(socket, "getaddrinfo", refuse)
    monkeypatch.setattr(socket, "create_connection", refuse)
    monkeypatch.setattr(socket.socket, "connect", refuse)


@pytest.fixture(scope="session")
def shared_archive():
    """The shared JPEG copy of CIFAR-10 (``data.shared_cifar10_archive``). Without it the
    real-data tests skip and say why; with ``CI`` set, a missing copy fails them, so CI can
    never pass without them."""
    path = data.shared_cifar10_archive()
    if path is None:
        configured = os.environ.get(sources.SHARED_DATA_ENV)
        looked = f"{sources.SHARED_DATA_ENV}={configured}" if configured else "../shared/data/"
        reason = (
            f"no shared CIFAR-10 copy ({sources.SHARED_ARCHIVE}) at {looked}: set "
            f"{sources.SHARED_DATA_ENV} to the archive or its folder"
        )
        if os.environ.get("CI"):
            pytest.fail(f"{reason}; CI must run the real-data tests.", pytrace=False)
        pytest.skip(reason)
    return path


@pytest.fixture(scope="session")
def load_script():
    """Import a script of the repository (``tools/``, ``benchmarks/``) by its relative path,
    as the module its tests exercise. It is registered in ``sys.modules`` under its file name,
    as ``python script.py`` would find it (dataclasses look their module up there)."""

    def load(relative: str):
        path = Path(__file__).resolve().parent.parent / relative
        spec = importlib.util.spec_from_file_location(path.stem, path)
        module = importlib.util.module_from_spec(spec)
        sys.modules[path.stem] = module
        spec.loader.exec_module(module)
        return module

    return load
