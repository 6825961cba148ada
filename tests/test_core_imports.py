"""harlequin's rule: the engine never imports the UI."""

import subprocess
import sys


def test_importing_salal_core_never_imports_textual() -> None:
    code = (
        "import sys, salal_core, salal_core.cli, salal_core.factory, salal_core.commands; "
        "import salal_core.loop, salal_core.store, salal_core.progress; "
        "bad = [m for m in sys.modules if m.split('.')[0] in ('textual', 'salal_tui', "
        "'term_image')]; print(bad); sys.exit(1 if bad else 0)"
    )
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert result.returncode == 0, result.stdout + result.stderr
