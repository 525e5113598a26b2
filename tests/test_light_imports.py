"""The light half stays light: importing kidconsole, its CLI modules and
running ``kidconsole --help`` never imports torch, transformers, peft, accelerate, ONNX or the web server."""

import os
import pkgutil
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

import kidconsole.cli

HEAVY = ("torch", "torchaudio", "transformers", "peft", "accelerate", "onnx", "onnxruntime", "onnxscript", "fastapi",
         "uvicorn", "starlette")
# Not heavy, but --help has no use for them (g2pK + NLTK + MeCab take about a second).
G2P_ENGINE = ("g2pk", "nltk", "mecab")
# Run the real entry point, then report which heavy packages ended up loaded.
PROBE = """
import sys, runpy
sys.argv = {argv!r}
try:
    {body}
except SystemExit:
    pass
heavy = sorted({{m.split('.')[0] for m in sys.modules}} & set({heavy!r}))
print("HEAVY:" + ",".join(heavy), file=sys.stderr)
"""


def heavy_modules_after(body: str, argv=("kidconsole",)) -> list[str]:
    code = PROBE.format(argv=list(argv), body=body, heavy=HEAVY)
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                          timeout=120, env=dict(os.environ, PYTHONWARNINGS="ignore"))
    line = [ln for ln in done.stderr.splitlines() if ln.startswith("HEAVY:")]
    assert line, done.stderr
    return [m for m in line[-1][len("HEAVY:"):].split(",") if m]


CLI_MODULES = sorted(m.name for m in pkgutil.iter_modules(kidconsole.cli.__path__))


def test_importing_kidconsole_imports_nothing_heavy():
    assert heavy_modules_after("import kidconsole, kidconsole.cli") == []


@pytest.mark.parametrize("name", CLI_MODULES)
def test_importing_each_cli_module_imports_nothing_heavy(name):
    assert heavy_modules_after(f"import kidconsole.cli.{name}") == []


def test_kidconsole_help_imports_nothing_heavy():
    body = "runpy.run_module('kidconsole', run_name='__main__')"
    assert heavy_modules_after(body, argv=("kidconsole", "--help")) == []


def test_help_through_python_m_and_the_console_script_succeeds():
    script = Path(sys.executable).with_name("kidconsole")
    commands = [[sys.executable, "-m", "kidconsole", "--help"]]
    if script.exists() or shutil.which("kidconsole"):
        commands.append([str(script if script.exists() else shutil.which("kidconsole")), "--help"])
    for cmd in commands:
        done = subprocess.run(cmd, capture_output=True, text=True, timeout=120,
                              env=dict(os.environ, PYTHONVERBOSE="1"))
        assert done.returncode == 0, done.stderr[-2000:]
        assert "usage: kidconsole" in done.stdout
        # -v logs every import to stderr: a heavy import would show as "import 'torch'"
        imported = {ln.split("'")[1].split(".")[0] for ln in done.stderr.splitlines()
                    if ln.startswith("import '")}
        assert not imported & set(HEAVY + G2P_ENGINE), (cmd, imported & set(HEAVY + G2P_ENGINE))


def _kidconsole_imports(folder: Path) -> dict[str, set[str]]:
    """kidconsole module imported -> the files of ``folder`` that import it (any depth of the import)."""
    import ast

    out: dict[str, set[str]] = {}
    for path in sorted(folder.glob("*.py")):
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            names = []
            if isinstance(node, ast.Import):
                names = [a.name for a in node.names]
            elif isinstance(node, ast.ImportFrom) and node.module:
                names = [node.module] if node.module != "kidconsole" else [f"kidconsole.{a.name}" for a in node.names]
            for name in names:
                if name.startswith("kidconsole."):
                    out.setdefault(".".join(name.split(".")[:2]), set()).add(path.name)
    return out


def test_trainers_import_only_the_light_modules_the_architecture_names():
    """The two halves' contract: the trainers import the light, shared modules docs/architecture.md lists,
    never the CLI, the console or the runs' life (they are started by it, as subprocesses)."""
    root = Path(__file__).resolve().parents[1]
    used = _kidconsole_imports(root / "trainers")
    assert not {m: f for m, f in used.items() if m in ("kidconsole.cli", "kidconsole.tui", "kidconsole.runs")}
    doc = (root / "docs" / "architecture.md").read_text(encoding="utf-8")
    section = doc[doc.index("## What the trainers import"):]
    section = section[:section.find("\n## ", 3) if "\n## " in section[3:] else len(section)]
    missing = sorted(m for m in used if f"`{m.replace('.', '/')}" not in section)
    assert not missing, f"docs/architecture.md does not list {missing} among the modules the trainers import"
