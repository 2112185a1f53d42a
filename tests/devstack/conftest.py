"""One emulator process per test session; every test starts from an empty cache."""

from __future__ import annotations

import anthropic
import pytest

from devstack.emulator.process import EmulatorProcess


@pytest.fixture(scope="session")
def emulator_proc():
    with EmulatorProcess() as proc:
        yield proc


@pytest.fixture
def emulator(emulator_proc):
    emulator_proc.reset()
    return emulator_proc


@pytest.fixture
def client(emulator):
    return anthropic.Anthropic(base_url=emulator.url, api_key="key-a", max_retries=0)
