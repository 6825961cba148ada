"""salal-tui: the Textual labeling app. It renders engine events and feeds the human oracle."""
