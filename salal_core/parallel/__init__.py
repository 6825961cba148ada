"""More than one process: torch.distributed ranks that follow rank 0, and the engine in a
child process beside the app."""
