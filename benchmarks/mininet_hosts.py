"""Build N Mininet hosts, each with a veth to a hub, an address and a default route, and print
the time of each as JSON. Run by cni_add.py with the system python3 (Debian's mininet package),
inside a mek- namespace, so that nothing it makes lands in the host's own namespace."""

import json
import sys
import time

from mininet.link import Link
from mininet.log import setLogLevel
from mininet.node import Host

setLogLevel("error")
count = int(sys.argv[1])
hub = Host("hub")
hosts, times = [], []
try:
    for i in range(count):
        start = time.perf_counter()
        host = Host(f"h{i}")
        link = Link(host, hub)
        host.setIP(f"10.{i // 250 + 1}.{i % 250}.2/32", intf=link.intf1)
        host.cmd(f"ip route add default dev {link.intf1}")
        times.append(time.perf_counter() - start)
        hosts.append(host)
finally:
    for host in hosts + [hub]:
        host.terminate()
print(json.dumps(times))
