"""ipamd, the VPC CNI's node daemon: env config, the datastore and its checkpoint, warm-pool
decisions (all pure, clock-driven), and at the edges the pool loop, EC2 port, gRPC, introspection."""
