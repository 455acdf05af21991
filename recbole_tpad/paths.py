"""Where the plugin's files live, for a source checkout and for an installed wheel alike."""

import os
from pathlib import Path

PACKAGE_DIR = Path(__file__).resolve().parent
#: The checkout's root when running from a source tree (or an editable install).
PROJECT_ROOT = PACKAGE_DIR.parent


def properties_dir() -> Path:
    """The ``properties/`` folder: the checkout's, else the copy a wheel installs as package data."""
    for candidate in (PROJECT_ROOT / "properties", PACKAGE_DIR / "properties"):
        if (candidate / "overall.yaml").is_file():
            return candidate
    raise FileNotFoundError(
        f"recbole_tpad: no properties/overall.yaml under {PROJECT_ROOT} or {PACKAGE_DIR}; "
        "reinstall the plugin (pip install -e .)"
    )


def shared_data_dirs():
    """Folders that may hold ready atomic datasets to link in at set-up time.

    ``$TPAD_SHARED_DATA`` first (a colon-separated list), then ``../shared/data`` beside the
    checkout, which is where this project's CI and developer machines keep amazon-sports.
    """
    dirs = [Path(p) for p in os.environ.get("TPAD_SHARED_DATA", "").split(os.pathsep) if p]
    dirs.append(PROJECT_ROOT.parent / "shared" / "data")
    return [d for d in dirs if d.is_dir()]
