"""The wheel's build hook: the web pages, bundled from frontend/, go into the package as
bidding/pages, which bidding.frontend serves before any frontend/dist."""

import os
import shutil
import subprocess
import tempfile
from pathlib import Path
from typing import Any

from hatchling.builders.config import BuilderConfig
from hatchling.builders.hooks.plugin.interface import BuildHookInterface

# Set to 1 to build a wheel that serves the API alone, on a machine without Node.js.
WITHOUT_PAGES = "BIDDING_WHEEL_WITHOUT_PAGES"


class PagesBuildHook(BuildHookInterface[BuilderConfig]):
    """Runs `npm run build` into a temporary folder and puts that folder in the wheel."""

    build_directory: str | None = None

    def initialize(self, version: str, build_data: dict[str, Any]) -> None:
        # An editable install serves the source tree's frontend/dist, as `make` builds it.
        if version == "editable" or os.environ.get(WITHOUT_PAGES) == "1":
            return
        npm = shutil.which("npm")
        if npm is None:
            raise RuntimeError(
                "building the wheel needs npm (Node.js) to bundle the web pages; "
                f"set {WITHOUT_PAGES}=1 to build one without them, serving the API alone"
            )
        frontend = Path(self.root) / "frontend"
        if not (frontend / "node_modules").is_dir():
            subprocess.run(
                [npm, "ci", "--no-audit", "--no-fund", "--loglevel=error"], cwd=frontend, check=True
            )
        self.build_directory = tempfile.mkdtemp(prefix="bidding-pages-")
        pages = Path(self.build_directory) / "pages"
        subprocess.run(
            [npm, "run", "--silent", "build", "--", str(pages)], cwd=frontend, check=True
        )
        build_data["force_include"][str(pages)] = "bidding/pages"

    def finalize(self, version: str, build_data: dict[str, Any], artifact_path: str) -> None:
        if self.build_directory is not None:
            shutil.rmtree(self.build_directory)
