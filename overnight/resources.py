"""Files that ship with overnight: the pricing table, the example jobs and their samples.

In a checkout they are the repository's `data/` folder; in an installed wheel the same folder
is the package `overnight.data`. Both are reached the same way, through `data_file`.
"""

from __future__ import annotations

from importlib.util import find_spec
from pathlib import Path

_CHECKOUT_DATA = Path(__file__).resolve().parents[1] / "data"


def data_dir() -> Path:
    """The folder of overnight's shipped data files."""
    spec = find_spec("overnight.data")  # a folder without __init__.py: a namespace package
    for location in (spec.submodule_search_locations or []) if spec else []:
        if Path(location, "pricing.toml").is_file():
            return Path(location)
    return _CHECKOUT_DATA


def data_file(*parts: str) -> Path:
    """A shipped data file, e.g. `data_file("pricing.toml")` or `data_file("jobs", "x.toml")`."""
    return data_dir().joinpath(*parts)
