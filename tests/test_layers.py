"""fragscan's modules import one way: no circle, however the import is written.

The graph is read from the source with `ast`, so it counts what a runtime check would miss: imports inside
functions (they run later, but still tie the two modules together), relative imports, and package faces.
Importing `fragscan.report.model` runs `fragscan/report/__init__.py` first, so it is also an edge to
`fragscan.report`; a submodule that takes a name from its own package's `__init__` (`from . import name`,
`from fragscan import __version__`) is an edge to that face. Only the implicit import of a module's own
ancestors is left out: Python has them in progress before the module runs, whatever it imports.
"""

import ast
from pathlib import Path

PACKAGE_ROOT = Path(__file__).resolve().parent.parent / "fragscan"


def module_files(root: Path = PACKAGE_ROOT) -> dict[str, Path]:
    files = {}
    for path in sorted(root.rglob("*.py")):
        parts = (root.name, *path.relative_to(root).with_suffix("").parts)
        if parts[-1] == "__init__":
            parts = parts[:-1]
        files[".".join(parts)] = path
    return files


def ancestors(name: str) -> list[str]:
    parts = name.split(".")
    return [".".join(parts[:i]) for i in range(1, len(parts))]


def imported_modules(name: str, path: Path, modules: set[str]) -> set[str]:
    """Every fragscan module that importing `name` runs, directly or as the package of what it names."""
    is_package = path.name == "__init__.py"
    targets = set()
    for node in ast.walk(ast.parse(path.read_text(), filename=str(path))):
        if isinstance(node, ast.Import):
            targets.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                package = name.split(".") if is_package else name.split(".")[:-1]
                base = package[: len(package) - (node.level - 1)]
                source = ".".join(base + ([node.module] if node.module else []))
            else:
                source = node.module
            for alias in node.names:
                # `from pkg import sub` imports the submodule; any other name comes from pkg's face
                targets.add(f"{source}.{alias.name}" if f"{source}.{alias.name}" in modules else source)
    own = set(ancestors(name))
    edges = set()
    for target in targets:
        if target not in modules:
            continue  # not ours (torch, typer, ...) or an attribute path such as `os.path`
        edges.add(target)
        edges.update(package for package in ancestors(target) if package not in own)
    edges.discard(name)
    return edges


def import_graph(root: Path = PACKAGE_ROOT) -> dict[str, set[str]]:
    files = module_files(root)
    return {name: imported_modules(name, path, set(files)) for name, path in files.items()}


def strongly_connected(graph: dict[str, set[str]]) -> list[list[str]]:
    """Tarjan's components with more than one module: each is a set of modules importing each other in a ring."""
    index, low, stack, on_stack, components = {}, {}, [], set(), []

    def visit(node: str) -> None:
        index[node] = low[node] = len(index)
        stack.append(node)
        on_stack.add(node)
        for successor in sorted(graph[node]):
            if successor not in index:
                visit(successor)
                low[node] = min(low[node], low[successor])
            elif successor in on_stack:
                low[node] = min(low[node], index[successor])
        if low[node] == index[node]:
            component = []
            while True:
                member = stack.pop()
                on_stack.discard(member)
                component.append(member)
                if member == node:
                    break
            if len(component) > 1:
                components.append(sorted(component))

    for node in sorted(graph):
        if node not in index:
            visit(node)
    return components


def test_the_graph_counts_function_level_relative_and_face_imports(tmp_path):
    package = tmp_path / "pkg"
    (package / "sub").mkdir(parents=True)
    sources = {
        "__init__.py": "from ._version import __version__\nfrom .top import run\n",
        "_version.py": "__version__ = '1'\n",
        "top.py": "import os\n\ndef run():\n    from .sub.leaf import f\n    return f()\n",
        "face_user.py": "from . import __version__\nfrom pkg import _version\n",
        "sub/__init__.py": "from .leaf import f\n",
        "sub/leaf.py": "from .. import top\n\ndef f():\n    return 1\n",
    }
    for name, text in sources.items():
        (package / name).write_text(text)
    graph = import_graph(package)
    assert graph["pkg"] == {"pkg._version", "pkg.top"}
    assert graph["pkg.top"] == {"pkg.sub.leaf", "pkg.sub"}  # in a function; the package face runs first
    assert graph["pkg.face_user"] == {"pkg", "pkg._version"}  # `from . import name` is the face itself
    assert graph["pkg.sub.leaf"] == {"pkg.top"}  # its own ancestors are already in progress
    assert strongly_connected(graph) == [["pkg.sub", "pkg.sub.leaf", "pkg.top"]]


def test_no_import_cycle():
    graph = import_graph()
    cycles = strongly_connected(graph)
    described = [
        f"{len(cycle)} modules: " + "; ".join(f"{m} -> {sorted(graph[m] & set(cycle))}" for m in cycle)
        for cycle in cycles
    ]
    assert not cycles, "import cycles in fragscan/:\n" + "\n".join(described)


# The stages in the order a scan runs through them; each imports only its own stage and those before it.
STAGES = ("base", "config", "data", "models", "sweep", "report", "scoring", "outputs", "pipeline", "cli")
# The public face: the package itself, its entry point and its version, which every stage may read.
FACE = {"fragscan": len(STAGES), "fragscan.__main__": len(STAGES), "fragscan._version": 0}


def stage_of(module: str) -> int:
    if module in FACE:
        return FACE[module]
    return STAGES.index(module.split(".")[1])


def test_the_top_level_holds_the_public_face_and_the_stage_packages():
    top = sorted(path.name for path in PACKAGE_ROOT.iterdir() if path.suffix == ".py")
    packages = sorted(path.name for path in PACKAGE_ROOT.iterdir() if (path / "__init__.py").exists())
    assert top == ["__init__.py", "__main__.py", "_version.py", "config.py"]
    assert packages == sorted(stage for stage in STAGES if stage != "config")


def test_every_import_points_to_an_earlier_stage_or_its_own():
    upward = [
        f"{module} ({STAGES[stage_of(module)] if stage_of(module) < len(STAGES) else 'face'}) imports {target}"
        for module, targets in import_graph().items()
        for target in sorted(targets)
        if stage_of(target) > stage_of(module) and target != "fragscan"
    ]
    assert not upward, "imports against the stage order:\n" + "\n".join(upward)
