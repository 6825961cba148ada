"""Several people labeling one run: whose answer counts, how far they agree, and the service
that hands them images over a socket."""
