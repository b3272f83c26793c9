"""Files that ship with overnight: the pricing table, the example jobs and their samples.

In a checkout they are the repository's `data/` folder; in an installed wheel the same folder
is the package `overnight.data`. Both are reached the same way, through `data_file`.
"""

from __future__ import annotations

from importlib import resources
from pathlib import Path

_CHECKOUT_DATA = Path(__file__).resolve().parents[1] / "data"


def data_dir() -> Path:
    """The folder of overnight's shipped data files."""
    try:
        found = Path(str(resources.files("overnight.data")))
    except ModuleNotFoundError:
        return _CHECKOUT_DATA
    return found if found.is_dir() else _CHECKOUT_DATA


def data_file(*parts: str) -> Path:
    """A shipped data file, e.g. `data_file("pricing.toml")` or `data_file("jobs", "x.toml")`."""
    return data_dir().joinpath(*parts)
