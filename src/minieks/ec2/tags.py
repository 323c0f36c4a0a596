"""CreateTags and DeleteTags on any resource the emulator keeps."""

from __future__ import annotations

from typing import TYPE_CHECKING

from minieks.ec2 import lookup
from minieks.ec2.errors import Ec2Error
from minieks.ec2.registry import action, require

if TYPE_CHECKING:
    from minieks.ec2.service import Ec2Service


def _resource(svc: Ec2Service, resource_id: str) -> tuple[str, object]:
    prefix = resource_id.split("-", 1)[0]
    finders = {"vpc": ("vpc", lookup.vpc), "subnet": ("subnet", lookup.subnet), "i": ("instance", lookup.instance),
               "eni": ("eni", lookup.eni)}
    if prefix not in finders:
        raise Ec2Error("InvalidID", f"The ID '{resource_id}' is not valid")
    kind, find = finders[prefix]
    return kind, find(svc, resource_id)


@action("CreateTags")
def create_tags(svc: Ec2Service, p: dict) -> dict:
    resources = [_resource(svc, r) for r in require(p, "Resources")]
    new_tags = {t["Key"]: t.get("Value", "") for t in require(p, "Tags")}
    for kind, resource in resources:
        resource.tags.update(new_tags)
        svc.touch(kind, resource.id, resource)
    return {}


@action("DeleteTags")
def delete_tags(svc: Ec2Service, p: dict) -> dict:
    resources = [_resource(svc, r) for r in require(p, "Resources")]
    for kind, resource in resources:
        for tag in p.get("Tags") or [{"Key": k} for k in list(resource.tags)]:
            if "Value" in tag and resource.tags.get(tag["Key"]) != tag["Value"]:
                continue
            resource.tags.pop(tag["Key"], None)
        svc.touch(kind, resource.id, resource)
    return {}
