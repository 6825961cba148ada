"""Subcommands beyond `run` and `pretrain`, each registering its own parser."""

from . import bench, compare, export, predict

REGISTER = [bench.register, compare.register, export.register, predict.register]
