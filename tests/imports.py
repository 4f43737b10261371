"""What a CLI command imports: run in a fresh interpreter, the heavy libraries it loaded."""

from __future__ import annotations

import os
import subprocess
import sys

HEAVY = ("torch", "transformers", "peft", "bitsandbytes")


def heavy_imports(args: list[str]) -> tuple[str, list[str]]:
    """(the command's stdout, the heavy libraries in sys.modules once it ran) for ``adapters ARGS``."""
    code = (
        "import sys\nfrom cli.main import cli\n"
        f"try:\n    cli.main({args!r}, prog_name='adapters')\nexcept SystemExit:\n    pass\n"
        f"heavy = [m for m in {HEAVY!r} if m in sys.modules]\n"
        "sys.stderr.write('HEAVY=' + ','.join(heavy))\n"
    )
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=os.environ.copy())
    assert "HEAVY=" in proc.stderr, proc.stderr
    loaded = proc.stderr.rsplit("HEAVY=", 1)[1].strip()
    return proc.stdout, [m for m in loaded.split(",") if m]
