"""The addresses of one subnet, handed out the way EC2 hands them out.

EC2 keeps the first four addresses and the last one of every subnet; gives each private address
and each /28 prefix at most once; places them at random (seeded here) or, for planning and tests,
lowest first; takes prefixes only from whole, aligned, untouched /28 blocks (so a fragmented
subnet runs out of prefixes long before it runs out of addresses); and honours subnet CIDR
reservations: a `prefix` reservation is where prefixes come from first and no single address is
auto-assigned from it, an `explicit` one is never used unless an address is asked for by name.
"""

from __future__ import annotations

import ipaddress
import random
from collections.abc import Iterable

from minieks.ec2.errors import Ec2Error, invalid

FREE, USED, IN_PREFIX, AWS_RESERVED = 0, 1, 2, 3
NO_RESERVATION, PREFIX_RESERVATION, EXPLICIT_RESERVATION = 0, 1, 2
BLOCK = 16  # a /28

NO_FREE_ADDRESSES = ("InsufficientFreeAddressesInSubnet",
                     "The specified subnet does not have enough free addresses to satisfy the request.")
NO_FREE_BLOCKS = ("InsufficientCidrBlocks",
                  "The specified subnet does not have enough free cidr blocks to satisfy the request.")


def ip_int(text: str) -> int:
    return int(ipaddress.IPv4Address(text))


def ip_str(value: int) -> str:
    return str(ipaddress.IPv4Address(value))


class AddressSpace:
    """Which addresses of a subnet are free, used, inside a prefix, or reserved."""

    def __init__(self, cidr: str, rng: random.Random, placement: str = "random"):
        network = ipaddress.IPv4Network(cidr)
        self.cidr = str(network)
        self.base = int(network.network_address)
        self.size = network.num_addresses
        self.placement = placement
        self._rng = rng
        self._state = bytearray(self.size)
        self._reserved = bytearray(self.size)
        self._block_busy = [0] * max(1, self.size // BLOCK)
        for offset in (0, 1, 2, 3, self.size - 1):
            if 0 <= offset < self.size and self._state[offset] == FREE:
                self._mark(offset, AWS_RESERVED)
        self.free_total = self._state.count(FREE)
        self._free_auto = self.free_total

    # ----------------------------------------------------------------------------- counting
    @property
    def available(self) -> int:
        """EC2's AvailableIpAddressCount: addresses neither used nor reserved by AWS."""
        return self.free_total

    def _mark(self, offset: int, state: int) -> None:
        before = self._state[offset]
        self._state[offset] = state
        if self.size >= BLOCK:
            self._block_busy[offset // BLOCK] += (state != FREE) - (before != FREE)

    def _take(self, offset: int, state: int) -> None:
        self._mark(offset, state)
        self.free_total -= 1
        if self._reserved[offset] == NO_RESERVATION:
            self._free_auto -= 1

    def _give_back(self, offset: int) -> None:
        self._mark(offset, FREE)
        self.free_total += 1
        if self._reserved[offset] == NO_RESERVATION:
            self._free_auto += 1

    def _offset(self, address: int) -> int:
        offset = address - self.base
        if not 0 <= offset < self.size:
            raise invalid(f"Address {ip_str(address)} does not fall within the subnet's address range")
        return offset

    # ------------------------------------------------------------------------ single addresses
    def allocate_addresses(self, count: int) -> list[int]:
        """`count` addresses chosen by EC2 (all or none)."""
        if count > self._free_auto:
            raise Ec2Error(*NO_FREE_ADDRESSES)
        chosen = [self._find_free_address() for _ in range(count)]
        return chosen

    def _find_free_address(self) -> int:
        state, reserved, size = self._state, self._reserved, self.size
        start = self._rng.randrange(size) if self.placement == "random" else 0
        for offset in range(start, size):
            if state[offset] == FREE and reserved[offset] == NO_RESERVATION:
                self._take(offset, USED)
                return self.base + offset
        for offset in range(0, start):
            if state[offset] == FREE and reserved[offset] == NO_RESERVATION:
                self._take(offset, USED)
                return self.base + offset
        raise Ec2Error(*NO_FREE_ADDRESSES)  # unreachable while _free_auto is right

    def claim_addresses(self, addresses: Iterable[int]) -> None:
        """Addresses asked for by name (all or none); explicit reservations allow this."""
        addresses = list(addresses)              # walked twice below: a generator would pass unchecked
        offsets = [self._offset(a) for a in addresses]
        if len(set(offsets)) != len(offsets):
            raise invalid("The same address was specified more than once")
        for a, offset in zip(addresses, offsets):
            if self._state[offset] == AWS_RESERVED:
                raise invalid(f"Address {ip_str(a)} is in subnet's reserved address range")
            if self._state[offset] != FREE:
                raise Ec2Error("InvalidIPAddress.InUse", "The specified address is already in use.")
            if self._reserved[offset] == PREFIX_RESERVATION:
                raise invalid(f"Address {ip_str(a)} is in a subnet CIDR reservation of type prefix")
        for offset in offsets:
            self._take(offset, USED)

    def release_address(self, address: int) -> None:
        offset = self._offset(address)
        if self._state[offset] == USED:
            self._give_back(offset)

    # ------------------------------------------------------------------------------ prefixes
    def _block_usable(self, block: int, kinds: tuple[int, ...]) -> bool:
        if self._block_busy[block]:
            return False
        start = block * BLOCK
        reservation = self._reserved[start]
        if reservation not in kinds:
            return False
        return self._reserved.count(reservation, start, start + BLOCK) == BLOCK

    def allocate_prefixes(self, count: int) -> list[int]:
        """`count` free aligned /28 blocks (all or none); reserved-for-prefix blocks first."""
        if self.size < BLOCK:
            raise Ec2Error(*NO_FREE_BLOCKS)
        blocks = len(self._block_busy)
        chosen: list[int] = []
        for kinds in ((PREFIX_RESERVATION,), (NO_RESERVATION,)):
            start = self._rng.randrange(blocks) if self.placement == "random" else 0
            for i in range(blocks):
                block = (start + i) % blocks
                if len(chosen) == count:
                    break
                if block not in chosen and self._block_usable(block, kinds):
                    chosen.append(block)
        if len(chosen) < count:
            raise Ec2Error(*NO_FREE_BLOCKS)
        for block in chosen:
            self._take_block(block)
        return [self.base + block * BLOCK for block in chosen]

    def _take_block(self, block: int) -> None:
        for offset in range(block * BLOCK, block * BLOCK + BLOCK):
            self._take(offset, IN_PREFIX)

    def claim_prefixes(self, prefixes: Iterable[int]) -> None:
        blocks = []
        for p in prefixes:
            offset = self._offset(p)
            if offset % BLOCK:
                raise invalid(f"Prefix {ip_str(p)}/28 is not aligned to a /28 boundary")
            if self._block_busy[offset // BLOCK]:
                raise Ec2Error("InvalidParameterValue", "The specified prefix is already in use or overlaps an address in use.")
            blocks.append(offset // BLOCK)
        if len(set(blocks)) != len(blocks):
            raise invalid("The same prefix was specified more than once")
        for block in blocks:
            self._take_block(block)

    def release_prefix(self, prefix: int) -> None:
        start = self._offset(prefix)
        for offset in range(start, start + BLOCK):
            if self._state[offset] == IN_PREFIX:
                self._give_back(offset)

    # --------------------------------------------------------------------------- reservations
    def reserve(self, cidr: str, kind: int) -> None:
        network = ipaddress.IPv4Network(cidr)
        start = self._offset(int(network.network_address))
        end = start + network.num_addresses
        if end > self.size:
            raise invalid(f"The CIDR {cidr} is not within the subnet's CIDR {self.cidr}")
        if any(self._reserved[start:end]):
            raise invalid(f"The CIDR {cidr} overlaps an existing subnet CIDR reservation")
        for offset in range(start, end):
            self._reserved[offset] = kind
            if self._state[offset] == FREE:
                self._free_auto -= 1

    def unreserve(self, cidr: str) -> None:
        network = ipaddress.IPv4Network(cidr)
        start = self._offset(int(network.network_address))
        for offset in range(start, start + network.num_addresses):
            if self._reserved[offset] and self._state[offset] == FREE:
                self._free_auto += 1
            self._reserved[offset] = NO_RESERVATION

    def state_of(self, address: int) -> int:
        return self._state[self._offset(address)]
