"""The code's shape: no import cycles, errors free of the web framework, a cheap import."""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

APP = Path(__file__).resolve().parents[2] / "app"


def module_name(path: Path) -> str:
    parts = path.relative_to(APP.parent).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def imports_of(path: Path, modules: set[str]) -> set[str]:
    """The app modules `path` imports, at its top or inside a function."""
    found: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text())):
        names: list[str] = []
        if isinstance(node, ast.Import):
            names = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            names = [node.module] + [f"{node.module}.{alias.name}" for alias in node.names]
        found |= {name for name in names if name in modules}
    return found


def import_graph() -> dict[str, set[str]]:
    paths = {module_name(path): path for path in APP.rglob("*.py")}
    return {name: imports_of(path, set(paths)) for name, path in paths.items()}


def find_cycle(graph: dict[str, set[str]]) -> list[str] | None:
    state: dict[str, int] = {}  # 1: on the current path, 2: done

    def visit(node: str, path: list[str]) -> list[str] | None:
        state[node] = 1
        for target in sorted(graph.get(node, ())):
            if state.get(target) == 1:
                return [*path[path.index(target) :], target] if target in path else [node, target]
            if target not in state and (cycle := visit(target, [*path, target])):
                return cycle
        state[node] = 2
        return None

    for start in sorted(graph):
        if start not in state and (cycle := visit(start, [start])):
            return cycle
    return None


def test_no_module_imports_itself_round_a_cycle() -> None:
    graph = import_graph()

    assert len(graph) > 40
    assert find_cycle(graph) is None


def room_of(module: str) -> str:
    """The room a module lives in: its package under `app`, or the module itself at the root."""
    return module.split(".")[1] if "." in module else module


def test_the_rooms_import_each_other_without_a_cycle() -> None:
    rooms: dict[str, set[str]] = {}
    for module, imported in import_graph().items():
        room = room_of(module)
        rooms.setdefault(room, set()).update(room_of(m) for m in imported if room_of(m) != room)

    assert find_cycle(rooms) is None
    assert "api" not in rooms["server"]  # the server knows nothing of the endpoints


def test_the_root_holds_only_the_entry_points_and_the_transport() -> None:
    modules = {path.stem for path in APP.glob("*.py")}

    assert modules == {"__init__", "__main__", "main", "transport"}


def test_the_cycle_finder_finds_a_cycle() -> None:
    assert find_cycle({"a": {"b"}, "b": {"c"}, "c": {"a"}}) == ["a", "b", "c", "a"]


def test_errors_know_nothing_of_the_web_framework() -> None:
    for module in ("errors/__init__.py", "errors/quoting.py", "wire/validation.py"):
        source = (APP / module).read_text()
        assert "fastapi" not in source
        assert "starlette" not in source


def test_importing_the_app_factory_does_no_global_work() -> None:
    """`from app.main import create_app` loads no config and builds no app: only
    `uvicorn app.main:app` (reading the attribute) does."""
    code = "import os, app.main as m; assert 'app' not in vars(m); print(callable(m.create_app))"
    env = {"GATEWAY_CONFIG": "/nonexistent/config.yaml", "PATH": "/usr/bin:/bin"}
    done = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, env=env, cwd=APP.parent
    )

    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "True"
