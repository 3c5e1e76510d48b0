"""The shape of the tree, checked: rules a reviewer would otherwise have to remember.

- A module of the product (``probe/``, ``collector/``) is never named like a test module:
  pytest would collect it, and a reader would take it for one.
- Tests and benches take a free port from ``tests.helpers.ports``: a copy of that helper
  is how copies of every other helper begin.
"""

from __future__ import annotations

import ast
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
PORTS = ROOT / "tests" / "helpers" / "ports.py"
PORT_HELPER_NAMES = {"free_port", "_free_port", "closed_port", "unused_port", "free_tcp_port"}


def _python_files(*tops: str) -> list[Path]:
    return sorted(p for top in tops for p in (ROOT / top).rglob("*.py"))


def _binds_port_zero(function: ast.FunctionDef | ast.AsyncFunctionDef) -> bool:
    """Whether ``function`` binds a socket to port 0 and returns what getsockname says."""
    binds = any(isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute)
                and node.func.attr == "bind" and node.args
                and isinstance(node.args[0], ast.Tuple) and len(node.args[0].elts) == 2
                and isinstance(node.args[0].elts[1], ast.Constant)
                and node.args[0].elts[1].value == 0
                for node in ast.walk(function))
    returns = any(isinstance(node, ast.Return) and node.value is not None
                  and "getsockname" in ast.unparse(node.value)
                  for node in ast.walk(function))
    return binds and returns


def port_helpers(path: Path) -> list[str]:
    """The functions in ``path`` that are a free-port helper by name or by body."""
    tree = ast.parse(path.read_text(), str(path))
    return [node.name for node in ast.walk(tree)
            if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef)
            and (node.name in PORT_HELPER_NAMES or _binds_port_zero(node))]


def named_like_tests(*tops: str) -> list[str]:
    """The modules under ``tops`` whose file name pytest would take for a test module."""
    return [str(path.relative_to(ROOT)) for path in _python_files(*tops)
            if path.name.startswith("test_") or path.name.endswith("_test.py")]


def test_no_product_module_is_named_like_a_test() -> None:
    assert named_like_tests("probe", "collector") == []
    # The check sees test modules where there are some.
    assert "tests/test_layout.py" in named_like_tests("tests")


def test_free_ports_come_from_the_one_helper() -> None:
    copies = {str(path.relative_to(ROOT)): names for path in _python_files("tests", "bench")
              if path != PORTS and (names := port_helpers(path))}
    assert copies == {}, "use tests.helpers.ports.free_port"
    assert port_helpers(PORTS) == ["free_port"]


def test_the_check_recognises_a_copy(tmp_path: Path) -> None:
    copy = tmp_path / "copy.py"
    copy.write_text("import socket\n\n\ndef pick() -> int:\n"
                    "    with socket.socket() as sock:\n"
                    "        sock.bind(('127.0.0.1', 0))\n"
                    "        return int(sock.getsockname()[1])\n\n\n"
                    "def free_port() -> int:\n    return pick()\n")
    assert port_helpers(copy) == ["pick", "free_port"]
