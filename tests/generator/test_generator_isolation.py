"""The generator is a test and demo tool: the pipeline's runtime never imports it.

Only the CLI's `generate` command (pipelines/cli.py) may import the `generator` package.
"""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
RUNTIME_PACKAGES = ("pipelines", "assets", "checks")
#: The one runtime-side module allowed to import the generator, for `python -m pipelines generate`.
ALLOWED = {Path("pipelines/cli.py")}


def _imports_generator(tree: ast.AST) -> list[int]:
    lines = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            names = [node.module]
        else:
            continue
        if any(name == "generator" or name.startswith("generator.") for name in names):
            lines.append(node.lineno)
    return lines


def test_loading_the_definitions_does_not_import_the_generator():
    # A fresh interpreter: this test session imports the generator in other tests.
    code = (
        "import sys\n"
        "import pipelines.definitions\n"
        "print(sorted(m for m in sys.modules if m == 'generator' or m.startswith('generator.')))\n"
    )
    proc = subprocess.run([sys.executable, "-c", code], cwd=REPO, capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert proc.stdout.strip().splitlines()[-1] == "[]"


def test_no_runtime_module_imports_the_generator_even_lazily():
    offenders = []
    for package in RUNTIME_PACKAGES:
        for path in sorted((REPO / package).rglob("*.py")):
            rel = path.relative_to(REPO)
            if rel in ALLOWED:
                continue
            lines = _imports_generator(ast.parse(path.read_text(encoding="utf-8"), filename=str(rel)))
            offenders += [f"{rel}:{line}" for line in lines]
    assert offenders == [], "the pipeline's runtime imports the generator: " + ", ".join(offenders)


def test_the_cli_imports_the_generator_only_for_the_generate_command():
    tree = ast.parse((REPO / "pipelines" / "cli.py").read_text(encoding="utf-8"))
    top_level = [node for node in tree.body if isinstance(node, ast.Import | ast.ImportFrom)]
    assert _imports_generator(ast.Module(body=top_level, type_ignores=[])) == []
