"""Subcommands beyond `run` and `pretrain`, each registering its own parser."""

from . import compare, export, predict

REGISTER = [compare.register, export.register, predict.register]
