"""What produced a result: library versions and the git commit, recorded beside it."""

from __future__ import annotations

import os
import platform
import subprocess
from importlib import metadata
from pathlib import Path

__all__ = ["git_commit", "library_versions"]

_LIBRARIES = (
    "steadytune",
    "torch",
    "transformers",
    "tokenizers",
    "datasets",
    "numpy",
    "pandas",
    "scikit-learn",
    "ray",
    "optuna",
)


def library_versions() -> dict[str, str | None]:
    """Installed versions of the libraries a result depends on (None if absent)."""
    versions: dict[str, str | None] = {"python": platform.python_version()}
    for name in _LIBRARIES:
        try:
            versions[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            versions[name] = None
    return versions


def git_commit() -> str | None:
    """The commit of the steadytune source that runs, with ``-dirty`` if it has edits.

    Falls back to ``$STEADYTUNE_GIT_COMMIT`` (set by the Docker image, which has no
    ``.git``), else None.
    """
    source = Path(__file__).resolve().parent
    try:
        commit = subprocess.run(
            ["git", "-C", str(source), "rev-parse", "HEAD"],
            capture_output=True,
            text=True,
            check=True,
            timeout=10,
        ).stdout.strip()
        dirty = subprocess.run(
            ["git", "-C", str(source), "status", "--porcelain", "--untracked-files=no"],
            capture_output=True,
            text=True,
            check=True,
            timeout=10,
        ).stdout.strip()
    except (OSError, subprocess.SubprocessError):
        return os.environ.get("STEADYTUNE_GIT_COMMIT")
    return f"{commit}-dirty" if dirty else commit
