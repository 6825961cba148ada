"""The engine in a child process beside the app: spawning it, the pipe between them, and the
child's own loop (a torchrun group's rank 0 leads from run/group.py)."""
