"""Make the ROS 2 wheels in a venv usable as a CMake prefix for colcon.

The PyPI ROS 2 wheels export CMake files that hard-code the paths of the machine that built them
(/opt/python/cp311-cp311/...). colcon then fails with "Imported target ... includes non-existent path". This
rewrites those paths to this interpreter's include directory and numpy's. Idempotent.
"""
from __future__ import annotations

import sys
import sysconfig
from pathlib import Path

import numpy

BUILD_MACHINE_PYTHON = "/opt/python/cp311-cp311"


def patch(prefix: Path) -> int:
    include = sysconfig.get_paths()["include"]
    replacements = {
        f"{BUILD_MACHINE_PYTHON}/lib/python3.11/site-packages/numpy/_core/include": numpy.get_include(),
        f"{BUILD_MACHINE_PYTHON}/lib/python3.11/site-packages/numpy/core/include": numpy.get_include(),
        f"{BUILD_MACHINE_PYTHON}/include/python3.11": include,
    }
    changed = 0
    for path in (prefix / "share").rglob("*.cmake"):
        text = path.read_text(errors="surrogateescape")
        if BUILD_MACHINE_PYTHON not in text:
            continue
        for old, new in replacements.items():
            text = text.replace(old, new)
        path.write_text(text, errors="surrogateescape")
        changed += 1
    return changed


if __name__ == "__main__":
    prefix = Path(sys.argv[1] if len(sys.argv) > 1 else sys.prefix)
    print(f"patch_ros_wheels: rewrote build-machine paths in {patch(prefix)} CMake files under {prefix}/share")
