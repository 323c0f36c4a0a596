"""The table of EC2 actions the emulator answers, filled by the modules that implement them."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from minieks.ec2.service import Ec2Service

Handler = Callable[["Ec2Service", dict], dict]


@dataclass(frozen=True)
class Action:
    name: str
    handler: Handler
    mutating: bool


ACTIONS: dict[str, Action] = {}


def action(name: str, mutating: bool = True) -> Callable[[Handler], Handler]:
    def register(handler: Handler) -> Handler:
        ACTIONS[name] = Action(name, handler, mutating)
        return handler
    return register


def require(params: dict, name: str, shape_name: str | None = None) -> Any:
    """A required parameter, or EC2's MissingParameter error naming it."""
    value = params.get(name)
    if value is None or value == "" or value == []:
        from minieks.ec2.errors import missing
        raise missing(shape_name or name)
    return value
