"""Persistence of the EC2 emulator in an embedded SQLite file.

Every mutating call writes the resources it changed (and the id and placement generators'
state) in one transaction before its response goes out, so a restart from the same file resumes
the same VPCs, subnets, instances, ENIs and addresses and keeps issuing fresh ids. Address spaces
are not stored: they are rebuilt from the ENIs and reservations, so they cannot disagree.
"""

from __future__ import annotations

import json
import sqlite3
import threading
from dataclasses import asdict
from datetime import datetime
from typing import TYPE_CHECKING

from minieks.aws import instance_types
from minieks.ec2.address_space import EXPLICIT_RESERVATION, PREFIX_RESERVATION
from minieks.ec2.model import Attachment, Instance, NetworkInterface, Subnet, SubnetCidrReservation, Vpc

if TYPE_CHECKING:
    from minieks.ec2.service import Ec2Service

SCHEMA = """
CREATE TABLE IF NOT EXISTS resources (kind TEXT NOT NULL, id TEXT NOT NULL, body TEXT NOT NULL,
                                      PRIMARY KEY (kind, id));
CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
"""
LOAD_ORDER = {"vpc": 0, "subnet": 1, "instance": 2, "eni": 3}


def _encode(kind: str, obj: object) -> dict:
    if kind == "vpc":
        return asdict(obj)
    if kind == "subnet":
        s: Subnet = obj
        return {"id": s.id, "vpc_id": s.vpc_id, "cidr_block": s.cidr_block, "availability_zone": s.availability_zone,
                "availability_zone_id": s.availability_zone_id, "map_public_ip_on_launch": s.map_public_ip_on_launch,
                "tags": s.tags, "reservations": [asdict(r) for r in s.reservations.values()]}
    if kind == "instance":
        i: Instance = obj
        body = {k: v for k, v in i.__dict__.items() if k not in ("instance_type", "launch_time")}
        return dict(body, instance_type=i.instance_type.name, launch_time=i.launch_time.isoformat())
    e: NetworkInterface = obj
    body = {k: v for k, v in e.__dict__.items() if k != "attachment"}
    if e.attachment:
        body["attachment"] = dict(e.attachment.__dict__, attach_time=e.attachment.attach_time.isoformat())
    return body


class Store:
    def __init__(self, path: str):
        self.path = path
        self._conn = sqlite3.connect(path, check_same_thread=False, isolation_level=None)
        self._conn.execute("PRAGMA journal_mode=WAL")
        self._conn.execute("PRAGMA synchronous=FULL")
        self._conn.executescript(SCHEMA)
        self._lock = threading.Lock()

    def save(self, svc: Ec2Service, dirty: dict[tuple[str, str], object | None]) -> None:
        with self._lock:
            cur = self._conn.cursor()
            cur.execute("BEGIN IMMEDIATE")
            try:
                for (kind, obj_id), obj in dirty.items():
                    if obj is None:
                        cur.execute("DELETE FROM resources WHERE kind=? AND id=?", (kind, obj_id))
                    else:
                        cur.execute("INSERT OR REPLACE INTO resources VALUES (?,?,?)",
                                    (kind, obj_id, json.dumps(_encode(kind, obj))))
                meta = {"ids": svc.ids.get_state(), "placement": _rng_state(svc.placement_rng),
                        "public_ips": sorted(svc.state.public_ips)}
                cur.execute("INSERT OR REPLACE INTO meta VALUES ('state', ?)", (json.dumps(meta),))
                cur.execute("COMMIT")
            except BaseException:
                cur.execute("ROLLBACK")
                raise

    def load_into(self, svc: Ec2Service) -> None:
        rows = self._conn.execute("SELECT kind, body FROM resources").fetchall()
        rows.sort(key=lambda row: LOAD_ORDER[row[0]])
        for kind, body in rows:
            _load(svc, kind, json.loads(body))
        meta = self._conn.execute("SELECT value FROM meta WHERE key='state'").fetchone()
        if meta:
            data = json.loads(meta[0])
            svc.ids.set_state(data["ids"])
            version, internal, gauss = data["placement"]
            svc.placement_rng.setstate((version, tuple(internal), gauss))
            svc.state.public_ips = set(data["public_ips"])

    def close(self) -> None:
        with self._lock:
            self._conn.close()


def _rng_state(rng) -> list:
    version, internal, gauss = rng.getstate()
    return [version, list(internal), gauss]


def _load(svc: Ec2Service, kind: str, d: dict) -> None:
    state = svc.state
    if kind == "vpc":
        state.vpcs[d["id"]] = Vpc(**d)
    elif kind == "subnet":
        reservations = {r["id"]: SubnetCidrReservation(**r) for r in d.pop("reservations")}
        subnet = Subnet(space=svc.new_space(d["cidr_block"]), reservations=reservations, **d)
        for r in reservations.values():
            subnet.space.reserve(r.cidr, PREFIX_RESERVATION if r.kind == "prefix" else EXPLICIT_RESERVATION)
        state.subnets[subnet.id] = subnet
    elif kind == "instance":
        d["instance_type"] = instance_types.get(d["instance_type"])
        d["launch_time"] = datetime.fromisoformat(d["launch_time"])
        state.instances[d["id"]] = Instance(**d)
    else:
        attachment = d.pop("attachment", None)
        d["groups"] = [tuple(g) for g in d["groups"]]
        eni = NetworkInterface(**d)
        if attachment:
            attachment["attach_time"] = datetime.fromisoformat(attachment["attach_time"])
            eni.attachment = Attachment(**attachment)
        space = state.subnets[eni.subnet_id].space
        space.claim_addresses([eni.primary_ip, *eni.secondary_ips])
        space.claim_prefixes(eni.prefixes)
        state.enis[eni.id] = eni
