"""Selection: per-item scores, batch-aware selectors and their clustering, behind one
registry of acquisition strategies that all take a `Pool` and return positions."""
