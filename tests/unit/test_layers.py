"""The house's one rule of direction: model/ < pipeline/ < flows/ < the command line. A module imports only
its own layer or those below it; flows/cli/ (the installed `patina`) is the top and is imported by nobody."""

import ast
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
LAYERS = ("model", "pipeline", "flows")


def _modules(path: Path) -> set[str]:
    """Every absolute module ``path`` imports, lazy (function-level) imports included."""
    tree = ast.parse(path.read_text(), str(path))
    found = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            found.add(node.module)
    return found


def _imports(path: Path) -> set[str]:
    return {name.split(".")[0] for name in _modules(path)}


def test_no_module_imports_a_layer_above_its_own():
    upward = []
    for rank, layer in enumerate(LAYERS):
        above = set(LAYERS[rank + 1 :])
        for path in sorted((REPO / layer).rglob("*.py")):
            bad = _imports(path) & above
            if bad:
                upward.append(f"{path.relative_to(REPO)} imports {sorted(bad)}")
    assert not upward, upward


def test_nothing_imports_the_cli_on_top():
    cli = REPO / "flows" / "cli"
    users = [
        str(path.relative_to(REPO))
        for layer in LAYERS
        for path in (REPO / layer).rglob("*.py")
        if cli not in path.parents
        and any(name == "flows.cli" or name.startswith("flows.cli.") for name in _modules(path))
    ]
    assert not users, users


def test_model_families_share_only_what_lies_beside_them():
    # model/restoration/ and model/retro/ each build on model/'s shared modules (config, context, losses,
    # discriminator, degradation), never on each other: a third family copies neither.
    families = ("restoration", "retro")
    crossings = []
    for family in families:
        others = {f"model.{other}" for other in families if other != family}
        for path in sorted((REPO / "model" / family).rglob("*.py")):
            bad = {
                name for name in _modules(path) if any(name == o or name.startswith(o + ".") for o in others)
            }
            if bad:
                crossings.append(f"{path.relative_to(REPO)} imports {sorted(bad)}")
    assert not crossings, crossings
