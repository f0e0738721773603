"""Shared test fixtures: where the shared test data lives."""

import os
from pathlib import Path

import pytest

PROJECT_ROOT = Path(__file__).resolve().parent.parent


def shared_testdata(name: str, env_var: str) -> Path:
    """A folder of shared test data: from env_var, else ../shared/testdata/<name>.

    Under CI a missing folder fails the run instead of skipping the tests that need it.
    """
    default = PROJECT_ROOT.parent / "shared" / "testdata" / name
    folder = Path(os.environ.get(env_var, default))
    if not folder.is_dir():
        message = f"test data folder {folder} is missing (set {env_var})"
        if os.environ.get("CI") == "true":
            pytest.fail(message)
        pytest.skip(message)
    return folder
