"""The package as `python -m build` makes it: the wheel, built from the sdist, serves the pages."""

import re
import subprocess
import sys
import sysconfig
import time
import urllib.request
from pathlib import Path

import pytest

from tests.test_serve import bidding_env, free_port

REPOSITORY = Path(__file__).resolve().parent.parent


@pytest.mark.slow
@pytest.mark.process
def test_the_wheel_serves_the_pages_from_its_own_package(tmp_path: Path) -> None:
    # The sdist is unpacked and the wheel built from it in build's own temporary folder, so
    # nothing is written into the repository; --no-isolation uses the hatchling installed here.
    subprocess.run(
        [sys.executable, "-m", "build", "--no-isolation", "--outdir", tmp_path / "dist"],
        cwd=REPOSITORY,
        check=True,
        capture_output=True,
    )
    (wheel,) = (tmp_path / "dist").glob("bidding-*.whl")
    venv = tmp_path / "venv"
    subprocess.run([sys.executable, "-m", "venv", "--without-pip", venv], check=True)
    python = venv / "bin" / "python"
    subprocess.run(
        [sys.executable, "-m", "pip", "--python", python, "install", "--quiet", "--no-deps", wheel],
        check=True,
        capture_output=True,
    )
    # The dependencies come from this environment's site-packages; listed in a .pth file, that
    # folder's own .pth files (the editable install's path to the source tree) are not read.
    site_packages = subprocess.run(
        [python, "-c", "import sysconfig; print(sysconfig.get_path('purelib'))"],
        check=True,
        capture_output=True,
        text=True,
    ).stdout.strip()
    (Path(site_packages) / "dependencies.pth").write_text(sysconfig.get_path("purelib") + "\n")
    # Run from elsewhere than the repository, whose bidding/ a `python -c` would import first.
    installed = subprocess.run(
        [python, "-c", "import bidding; print(bidding.__file__)"],
        cwd=tmp_path,
        check=True,
        capture_output=True,
        text=True,
    ).stdout.strip()
    assert Path(installed).is_relative_to(venv)

    port = free_port()
    process = subprocess.Popen(
        [venv / "bin" / "bidding", "serve", "--port", str(port)],
        cwd=tmp_path,
        env=bidding_env(tmp_path / "var", BIDDING_DEMO="0"),
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
    )
    try:
        deadline = time.monotonic() + 30
        while True:
            try:
                urllib.request.urlopen(f"http://127.0.0.1:{port}/api/v1/health").close()
                break
            except OSError:
                assert process.poll() is None, process.stdout.read() if process.stdout else ""
                assert time.monotonic() < deadline, "the server did not come up in 30 s"
                time.sleep(0.2)
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/") as r:
            assert r.headers["content-type"].startswith("text/html")
            page = r.read().decode()
        assets = re.findall(r'(?:src|href)="(/[^"]+)"', page)
        assert "/app.js" in assets
        for asset in assets:
            with urllib.request.urlopen(f"http://127.0.0.1:{port}{asset}") as r:
                assert r.status == 200
                assert r.read()
    finally:
        process.terminate()
        process.wait(timeout=10)
