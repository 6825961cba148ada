"""Subcommands beyond `run` and `pretrain`, each registering its own parser."""

from ..options import Register
from . import bench, compare, export, predict

REGISTER: list[Register] = [bench.register, compare.register, export.register, predict.register]
