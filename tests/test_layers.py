"""The layers of docs/architecture.md ("The parts") hold, and the contracts that keep them bite.

`lint-imports` reads the contracts from pyproject.toml. Each case below copies the package into
a temporary folder, puts one wrong-way import back into it, and checks that the contract
guarding that arrow is then broken, naming the import; the untouched copy keeps every contract.
"""

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from tests.conftest import PROJECT_ROOT

LINT_IMPORTS = Path(sys.executable).with_name("lint-imports")

# (contract id, file to change, wrong-way import put back, the arrow it must name)
ARROWS = [
    (
        "pure-cores",
        "bidding/crypto/canonical.py",
        "from bidding.settings import Settings",
        "bidding.crypto.canonical -> bidding.settings",
    ),
    (
        "pure-cores",
        "bidding/rules/scoring.py",
        "import sqlalchemy",
        "bidding.rules.scoring -> sqlalchemy",
    ),
    (
        "auth-below-tenders",
        "bidding/auth/service.py",
        "from bidding.tenders.models import Tender",
        "bidding.auth.service -> bidding.tenders.models",
    ),
    (
        "tenders-below-opening",
        "bidding/tenders/endpoints.py",
        "from bidding.opening import scheduler",
        "bidding.tenders.endpoints -> bidding.opening.scheduler",
    ),
    (
        "audit-trail-below-domains",
        "bidding/audit/service.py",
        "from bidding.auth.models import User",
        "bidding.audit.service -> bidding.auth.models",
    ),
    (
        "audit-trail-below-domains",
        "bidding/audit/anchors.py",
        "from bidding.opening.models import Opening",
        "bidding.audit.anchors -> bidding.opening.models",
    ),
    (
        "security-takes-no-model",
        "bidding/security.py",
        "from bidding.auth.models import User",
        "bidding.security -> bidding.auth.models",
    ),
    (
        "bidder-side-pure",
        "bidding/client.py",
        "from bidding.opening import pipeline",
        "bidding.client -> bidding.opening.pipeline",
    ),
    (
        "edges-on-top",
        "bidding/opening/service.py",
        "from bidding.app import create_app",
        "bidding.opening.service -> bidding.app",
    ),
]


def lint_imports(root: Path, *contracts: str) -> subprocess.CompletedProcess[str]:
    """Run lint-imports on the copy of the package in root, with the project's contracts."""
    command = [str(LINT_IMPORTS), "--no-cache"]
    for contract in contracts:
        command += ["--contract", contract]
    # The copy comes first on the path, ahead of the editable install of the project itself.
    env = {**os.environ, "PYTHONPATH": str(root)}
    return subprocess.run(
        command, cwd=root, env=env, capture_output=True, text=True, timeout=120, check=False
    )


@pytest.fixture
def copy(tmp_path: Path) -> Path:
    """The package and the contracts, copied where they may be changed."""
    shutil.copytree(
        PROJECT_ROOT / "bidding", tmp_path / "bidding", ignore=shutil.ignore_patterns("__pycache__")
    )
    shutil.copy(PROJECT_ROOT / "pyproject.toml", tmp_path / "pyproject.toml")
    return tmp_path


def test_the_package_keeps_every_contract(copy: Path) -> None:
    result = lint_imports(copy)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "0 broken" in result.stdout
    declared = {contract for contract, *_ in ARROWS}
    for contract in declared:
        # Every contract a case below relies on is declared, so none can be skipped silently.
        assert lint_imports(copy, contract).returncode == 0


@pytest.mark.parametrize(("contract", "path", "line", "arrow"), ARROWS)
def test_a_wrong_way_import_breaks_its_contract(
    copy: Path, contract: str, path: str, line: str, arrow: str
) -> None:
    target = copy / path
    source = target.read_text(encoding="utf-8")
    # After the module docstring: where an import of the module's own would go.
    docstring_end = source.index('"""', source.index('"""') + 3) + 3
    target.write_text(
        f"{source[:docstring_end]}\n{line}  # noqa\n{source[docstring_end:]}", encoding="utf-8"
    )

    result = lint_imports(copy, contract)

    assert result.returncode == 1, result.stdout + result.stderr
    assert "BROKEN" in result.stdout
    assert arrow in result.stdout
