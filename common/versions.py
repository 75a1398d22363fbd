"""The installed version of a package, for the records that say what computed a result."""

from functools import cache
from importlib import metadata


@cache
def installed_version(name: str) -> str | None:
    """The version of the distribution ``name`` as installed (``pillow``, ``scikit-learn``), or
    None when it is not installed. Read once per process: what is imported does not change."""
    try:
        return metadata.version(name)
    except metadata.PackageNotFoundError:
        return None
