"""The EC2 emulator: VPCs, subnets, instances, ENIs, addresses and prefixes with EC2's limits,
error codes, throttling, latency and persistence, behind an in-process API and the EC2 Query API."""
