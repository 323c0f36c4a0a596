"""EC2 describe filters and pagination, shared by every Describe action.

A filter list is AND across names and OR across each name's values; values may use EC2's `*`
and `?` wildcards. Each action declares which filter names it knows and how to read them off a
resource; an unknown name is an error, as in EC2.
"""

from __future__ import annotations

import base64
import fnmatch
import functools
import re
from collections.abc import Callable, Iterable, Sequence
from typing import TypeVar

from minieks.ec2.errors import Ec2Error, invalid

T = TypeVar("T")
Reader = Callable[[T], Iterable[str] | str | None]


@functools.lru_cache(maxsize=1024)
def _pattern(value: str) -> re.Pattern[str] | None:
    if "*" not in value and "?" not in value:
        return None
    return re.compile(fnmatch.translate(value))


def _matches(actual: Iterable[str], wanted: Sequence[str]) -> bool:
    for have in actual:
        for want in wanted:
            pattern = _pattern(want)
            if (pattern.match(have) if pattern else have == want):
                return True
    return False


def _values(reader_result: Iterable[str] | str | None) -> Iterable[str]:
    if reader_result is None:
        return ()
    if isinstance(reader_result, str):
        return (reader_result,)
    return reader_result


def apply(items: Iterable[T], filters: list[dict] | None, readers: dict[str, Reader],
          tags: Callable[[T], dict[str, str]] | None = None) -> list[T]:
    """Items matching every filter; `tag:KEY` and `tag-key` come from `tags`."""
    checks: list[Callable[[T], bool]] = []
    for f in filters or []:
        name, wanted = f.get("Name"), list(f.get("Values") or [])
        if not name:
            raise Ec2Error("MissingParameter", "The request must contain the parameter Filter.Name")
        checks.append(_check(name, wanted, readers, tags))
    return [item for item in items if all(check(item) for check in checks)]


def _check(name: str, wanted: list[str], readers: dict[str, Reader], tags) -> Callable[[T], bool]:
    if tags is not None and name.startswith("tag:"):
        key = name[4:]
        return lambda item: key in tags(item) and _matches((tags(item)[key],), wanted)
    if tags is not None and name == "tag-key":
        return lambda item: _matches(tags(item).keys(), wanted)
    if tags is not None and name == "tag-value":
        return lambda item: _matches(tags(item).values(), wanted)
    reader = readers.get(name)
    if reader is None:
        raise Ec2Error("InvalidParameterValue", f"The filter '{name}' is invalid")
    return lambda item: _matches(_values(reader(item)), wanted)


def paginate(items: list[T], params: dict, limits: tuple[int, int] = (5, 1000),
             default: int | None = None) -> tuple[list[T], str | None]:
    """One page and the token for the next, as EC2's MaxResults/NextToken work."""
    size = params.get("MaxResults", default)
    token = params.get("NextToken")
    start = 0
    if token:
        try:
            start = int(base64.urlsafe_b64decode(token.encode()).decode().removeprefix("offset:"))
        except ValueError:
            raise Ec2Error("InvalidPaginationToken", f"Invalid pagination token: {token}") from None
    if size is None:
        return items[start:], None
    low, high = limits
    if not low <= size <= high:
        raise invalid(f"Value ( {size} ) for parameter maxResults is invalid. "
                      f"Parameter must be between {low} and {high}.")
    end = start + size
    next_token = base64.urlsafe_b64encode(f"offset:{end}".encode()).decode() if end < len(items) else None
    return items[start:end], next_token


def describe(ids: list[str], find: Callable[[str], T], every: Callable[[], list[T]], params: dict,
             readers: dict[str, Reader], key: str, render: Callable[[T], dict],
             tags: Callable[[T], dict[str, str]] | None = None) -> dict:
    """The shape every Describe* action shares: by id (NotFound for an unknown one) or all, then
    filters, then one page under `key`, with NextToken when more remain."""
    found = [find(i) for i in ids] if ids else every()
    found = apply(found, params.get("Filters"), readers, tags=tags)
    page, token = paginate(found, params)
    out: dict = {key: [render(item) for item in page]}
    if token:
        out["NextToken"] = token
    return out
