"""FlowKit internals: all present in the installed FlowKit, all reached through one module.

A FlowKit release that moves one of them fails here first, with the internal's name,
rather than as a changed gate count somewhere else.
"""

from __future__ import annotations

import ast
from pathlib import Path

import flowkit
import pytest

from ckpk.flow import _flowkit_compat as compat

SRC = Path(compat.__file__).resolve().parents[1]
ATTRIBUTE_FUNCTIONS = ("getattr", "setattr", "hasattr", "delattr")


def test_installed_flowkit_has_every_internal_ckpk_uses():
    problems = compat.missing_internals()
    assert not problems, (
        f"FlowKit {flowkit.__version__} changed internals ckpk relies on:\n"
        + "\n".join(problems)
        + "\nckpk/flow/_flowkit_compat.py says what upgrading takes."
    )


def test_a_missing_internal_is_named(monkeypatch):
    monkeypatch.delattr("flowkit._utils.xml_common.gml_schema")
    problems = compat.missing_internals()
    assert len(problems) == 1
    assert "flowkit._utils.xml_common.gml_schema" in problems[0]
    assert f"FlowKit {flowkit.__version__} has no" in problems[0]
    with pytest.raises(compat.FlowKitInternalMissing, match="gml_schema"):
        compat.gatingml_schema()
    with pytest.raises(compat.FlowKitInternalMissing, match=r"GatingStrategy\._gate_tree"):
        compat.gate_tree(object())


def test_a_changed_internal_is_named(monkeypatch):
    original = flowkit.transforms.WSPBiexTransform.__init__

    def without_table(self, *args, **kwargs):
        original(self, *args, **kwargs)
        self._lut_func = None  # as if a release kept the table some other way

    monkeypatch.setattr(flowkit.transforms.WSPBiexTransform, "__init__", without_table)
    problems = compat.missing_internals()
    assert [p for p in problems if "WSPBiexTransform._lut_func" in p] == problems != []


def _is_private_use(node: ast.AST) -> bool:
    """``x._name`` (but ``self._name``), ``getattr(x, "_name")``, ``import flowkit._...``."""
    if isinstance(node, ast.Attribute):
        owner = node.value.id if isinstance(node.value, ast.Name) else ""
        return node.attr.startswith("_") and not node.attr.startswith("__") and owner != "self"
    if isinstance(node, ast.Call) and getattr(node.func, "id", "") in ATTRIBUTE_FUNCTIONS:
        return any(
            isinstance(arg, ast.Constant) and str(arg.value).startswith("_")
            for arg in node.args[1:2]
        )
    if isinstance(node, ast.Import):
        return any(alias.name.startswith("flowkit._") for alias in node.names)
    if isinstance(node, ast.ImportFrom):
        return any(f"{node.module}.{alias.name}".startswith("flowkit._") for alias in node.names)
    return False


def _private_uses(path: Path) -> list[str]:
    tree = ast.parse(path.read_text(encoding="utf-8"))
    return [
        f"{path.name}:{node.lineno} {ast.unparse(node)}"
        for node in ast.walk(tree)
        if _is_private_use(node)
    ]


def test_only_the_compat_module_touches_flowkit_internals():
    uses = [
        use
        for path in sorted(SRC.rglob("*.py"))
        if path.name != "_flowkit_compat.py"
        for use in _private_uses(path)
    ]
    # A private name of a ckpk object would be flagged too: none is used across modules.
    assert uses == [], f"private names used outside ckpk.flow._flowkit_compat: {uses}"
