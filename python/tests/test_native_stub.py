"""The typed stub _native.pyi matches the extension module, and the package data is in sync."""

import inspect
import pathlib

import pytest

import flashcore
from flashcore import _native

PKG = pathlib.Path(flashcore.__file__).parent
REPO = PKG.parent.parent


def test_stubtest():
    stubtest = pytest.importorskip("mypy.stubtest")
    # stubtest returns the number of errors; it prints each one.
    assert stubtest.test_stubs(stubtest.parse_options(["flashcore._native"])) == 0


def test_stub_names_match_module():
    import ast

    tree = ast.parse((PKG / "_native.pyi").read_text())
    stub = {n.name for n in tree.body if isinstance(n, (ast.FunctionDef, ast.ClassDef))}
    stub |= {t.id for n in tree.body if isinstance(n, ast.AnnAssign) for t in [n.target]}
    runtime = {n for n in dir(_native) if not n.startswith("_")} | {"__version__"}
    assert stub == runtime
    for name in stub - {"__version__"}:
        assert callable(getattr(_native, name)), name


def test_py_typed_is_shipped():
    assert (PKG / "py.typed").is_file()


def test_native_functions_have_docs():
    for f in (_native.forward_cpu, _native.forward_cuda, _native.info, _native.supported_head_dim):
        assert inspect.getdoc(f), f.__name__
