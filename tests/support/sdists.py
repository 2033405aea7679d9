"""Upstream test suites, fetched at test time from the installed package's sdist.

Why: the frameworks' own tests are the best proof that an adapter behaves like
their reference implementations, and PyPI sdists ship them. Nothing upstream is
committed: the sdist of exactly the installed version is downloaded once
(``pip download --no-binary``) and its ``tests/`` folder is cached.
"""

from __future__ import annotations

import importlib.metadata
import shutil
import subprocess
import sys
import tarfile
import tempfile
from pathlib import Path


def sdist_tests(dist: str, cache: Path) -> Path:
    """The ``tests/`` folder of the installed ``dist``'s sdist (downloaded once per version)."""
    version = importlib.metadata.version(dist)
    target = cache / f"{dist}-{version}"
    if (target / "tests").is_dir():
        return target / "tests"
    with tempfile.TemporaryDirectory() as download:
        subprocess.run(
            [
                sys.executable,
                "-m",
                "pip",
                "download",
                "-q",
                "--no-deps",
                "--no-binary",
                ":all:",
                "-d",
                download,
                f"{dist}=={version}",
            ],
            check=True,
            capture_output=True,
            text=True,
            timeout=600,
        )
        (archive,) = Path(download).glob("*.tar.gz")
        staging = cache / f".{dist}-{version}.partial"
        shutil.rmtree(staging, ignore_errors=True)
        with tarfile.open(archive) as tar:
            members = [m for m in tar.getmembers() if "/tests/" in m.name]
            tar.extractall(staging, members=members, filter="data")
        (tests,) = staging.glob("*/tests")
        target.mkdir(parents=True, exist_ok=True)
        shutil.move(str(tests), target / "tests")
        shutil.rmtree(staging, ignore_errors=True)
    return target / "tests"
