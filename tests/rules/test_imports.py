"""The rules stay pure: the bidder's client and the opening's worker threads use them as is."""

import subprocess
import sys

# Of ours, the rules use only canonical JSON's integer limit; nothing of the web or database.
ALLOWED_OURS = {"bidding", "bidding.crypto", "bidding.crypto.canonical"}
FORBIDDEN = {"fastapi", "starlette", "sqlalchemy", "pydantic", "httpx"}
LOAD_EVERY_RULE = """
import importlib, pkgutil, sys
import bidding.rules as package
for info in pkgutil.iter_modules(package.__path__, "bidding.rules."):
    importlib.import_module(info.name)
print("\\n".join(sys.modules))
"""


def test_the_rules_import_nothing_of_the_web_the_database_or_other_packages() -> None:
    loaded = subprocess.run(
        [sys.executable, "-c", LOAD_EVERY_RULE], capture_output=True, text=True, check=True
    ).stdout.split()
    ours = {name for name in loaded if name.split(".")[0] == "bidding"}
    assert {name for name in ours if not name.startswith("bidding.rules")} <= ALLOWED_OURS
    assert not {name for name in loaded if name.split(".")[0] in FORBIDDEN}
