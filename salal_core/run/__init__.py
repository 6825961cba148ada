"""A run: the engine and its loop, the oracle, labels and their journal, the run directory
on disk (store, checkpoints), resume, and what a run reports."""
