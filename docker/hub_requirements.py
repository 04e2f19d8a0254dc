"""Print the hub's runtime dependencies from pyproject.toml, one per line (for pip install -r).

The images install the hub's dependencies, not the hub itself: the hub runs from its source tree in /app,
so templates, static files and migrations are there exactly as in the repository, whatever the wheel
would have packaged.
"""

from __future__ import annotations

import sys
import tomllib
from pathlib import Path


def hub_requirements(pyproject: Path) -> list[str]:
    with pyproject.open("rb") as fh:
        project = tomllib.load(fh)["project"]
    return [str(req) for req in project.get("dependencies", [])]


if __name__ == "__main__":
    path = Path(sys.argv[1] if len(sys.argv) > 1 else "pyproject.toml")
    print("\n".join(hub_requirements(path)))
