"""harlequin's rule: the engine never imports the UI."""

import subprocess
import sys


def test_importing_every_module_of_salal_core_never_imports_textual() -> None:
    code = (
        "import importlib, pkgutil, sys, salal_core\n"
        "names = [m.name for m in pkgutil.walk_packages(salal_core.__path__, 'salal_core.')]\n"
        "names = [n for n in names if n != 'salal_core.cli.__main__']  # it runs the CLI\n"
        "for name in names: importlib.import_module(name)\n"
        "assert len(names) > 40, names\n"
        "bad = [m for m in sys.modules if m.split('.')[0] in ('textual', 'salal_tui', "
        "'term_image')]\n"
        "print(bad); sys.exit(1 if bad else 0)"
    )
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert result.returncode == 0, result.stdout + result.stderr
