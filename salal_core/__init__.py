"""salal engine: data, model, rotation pretraining, acquisition and the active-learning loop.

This package never imports Textual; the app in ``salal_tui`` only renders its events.
"""

__version__ = "0.1.0"
