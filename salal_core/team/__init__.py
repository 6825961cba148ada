"""Several people labeling one run over a socket: the service that leases them images, and the
client that joins it (whose answer counts and how far they agree live in run/)."""
