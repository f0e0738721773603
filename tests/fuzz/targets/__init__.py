"""The fuzz targets: each takes one input of bytes from outside and runs a parser on it.

A target returns normally when the parser gave an answer or raised the error it documents
for bad input; anything else (another exception, or a broken promise checked by an assert)
is a failure. Targets are plain functions, one module per parser, so that a fuzzing process
imports (and instruments) only what its target needs: tests/fuzz/test_fuzz.py replays the
seed corpus through them directly and runs each under atheris (tests/fuzz/run.py).
"""

import importlib
from collections.abc import Callable

# Target name: the module under tests.fuzz.targets that holds the function of that name.
TARGETS: dict[str, str] = {
    "age_header": "age",
    "age_upload_header": "upload",
    "age_unseal": "age",
    "age_keys": "age",
    "bid_form": "forms",
    "receipt": "receipts",
    "tender_schemas": "schemas",
}


def load(name: str) -> Callable[[bytes], None]:
    """The target function of this name."""
    module = importlib.import_module(f"{__name__}.{TARGETS[name]}")
    target: Callable[[bytes], None] = getattr(module, name)
    return target
