"""`salal-core`: the command line (`main.py`), its options and headless progress, and the
subcommands (`commands/`)."""
