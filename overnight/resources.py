"""Files that ship with overnight: the pricing table, the example jobs and their samples.

In a checkout they are the repository's `data/` folder; in an installed wheel the same folder
is the package `overnight.data`. Both are reached the same way, through `data_file`.
"""

from __future__ import annotations

import tomllib
from functools import lru_cache
from importlib.util import find_spec
from pathlib import Path
from typing import TypeVar

from pydantic import BaseModel, ValidationError

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


TableT = TypeVar("TableT", bound=BaseModel)


def read_model_file(
    path: Path, table: type[TableT], *, error: type[Exception], what: str
) -> TableT:
    """Read a dated TOML file of `[models."name"]` tables (prices, capabilities) into `table`.

    Each problem is named with the file and the field, in one line; `what` is the file's kind
    as the message says it ("pricing file").
    """
    file = path.expanduser()
    try:
        mtime = file.stat().st_mtime_ns
    except OSError as exc:
        raise error(f"{file}: cannot read {what}: {exc.strerror or exc}") from None
    found = _read_model_file(str(file.resolve()), mtime, table, error, what)  # type: ignore[arg-type]
    assert isinstance(found, table)
    return found


@lru_cache(maxsize=16)
def _read_model_file(
    path: str, _mtime_ns: int, table: type[BaseModel], error: type[Exception], what: str
) -> BaseModel:
    try:
        data = tomllib.loads(Path(path).read_text(encoding="utf-8"))
    except (OSError, tomllib.TOMLDecodeError) as exc:
        raise error(f"{path}: cannot read {what}: {exc}") from None
    models = data.get("models", {})
    try:
        return table.model_validate(
            {
                **data,
                "path": path,
                "models": {
                    name: {"model": name, **fields} if isinstance(fields, dict) else fields
                    for name, fields in models.items()
                },
            }
        )
    except ValidationError as exc:
        problems = "; ".join(
            f"{'.'.join(str(p) for p in err['loc'])}: {err['msg']}" for err in exc.errors()
        )
        raise error(f"{path}: invalid {what}: {problems}") from None
