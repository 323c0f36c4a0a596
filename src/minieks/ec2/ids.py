"""Resource identifiers and MAC addresses in EC2's formats, from a seeded generator.

Seeded so a lab replays exactly (DESIGN.md principle 5); the generator's state is persisted with
the rest of the EC2 state so a restarted emulator keeps issuing fresh, non-colliding ids.
"""

from __future__ import annotations

import random


class IdFactory:
    def __init__(self, seed: int | str = 0):
        self._rng = random.Random(f"ids:{seed}")

    def new(self, prefix: str) -> str:
        """`eni-0a1b…` style: the prefix, a dash and 17 hex digits, as EC2 issues them."""
        return f"{prefix}-0{self._rng.getrandbits(64):016x}"

    def mac(self) -> str:
        """A locally administered unicast MAC, as EC2 gives ENIs (02:…)."""
        octets = [0x02] + [self._rng.getrandbits(8) for _ in range(5)]
        return ":".join(f"{o:02x}" for o in octets)

    def request_id(self) -> str:
        h = f"{self._rng.getrandbits(128):032x}"
        return f"{h[:8]}-{h[8:12]}-{h[12:16]}-{h[16:20]}-{h[20:]}"

    def get_state(self) -> list:
        version, internal, gauss = self._rng.getstate()
        return [version, list(internal), gauss]

    def set_state(self, state: list) -> None:
        self._rng.setstate((state[0], tuple(state[1]), state[2]))
