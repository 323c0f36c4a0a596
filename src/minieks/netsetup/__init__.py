"""Host and pod network set-up as data: names, ip rules and routes, iptables and nftables state.

Everything here is pure (no netlink, no `ip`, no `iptables`): it says what the kernel should
hold and how `ip`/`iptables -S` print it, so the kernel layer (fabric/) only applies it and the
tests can hold the text to upstream's (spec/vpc-cni.md §6, §7).
"""
