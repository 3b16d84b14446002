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
    for f in (
        _native.forward_cpu, _native.forward_cuda, _native.backward_cuda, _native.forward_fp8_cuda, _native.info,
        _native.supported_head_dim,
        _native.supported_backward_head_dim,
    ):
        assert inspect.getdoc(f), f.__name__


def _t(ptr=256, shape=(1, 4, 2, 64), strides=None):
    """A (data_ptr, shape, strides) triple in the [B, S, H, D] order; never dereferenced here."""
    if strides is None:
        b, s, h, d = shape
        strides = (s * h * d, h * d, d, 1)
    return (ptr, shape, strides)


def _bwd(**over):
    args = dict(
        device=0, stream=0, dtype="bf16", q=_t(), k=_t(), v=_t(), out=_t(), dout=_t(), lse=256, dq=_t(),
        dk=_t(), dv=_t(), mask="causal", scale=None, deterministic=False,
    )
    args.update(over)
    return _native.backward_cuda(**args)


@pytest.mark.parametrize(
    "over,arg",
    [
        (dict(dq=_t(shape=(1, 4, 2, 32))), "dq"),
        (dict(dk=_t(shape=(1, 5, 2, 64))), "dk"),
        (dict(dv=_t(strides=(512, 128, 64, 2))), "dv"),
        (dict(dout=_t(ptr=258)), "dout"),
        (dict(out=_t(shape=(1, 4, 3, 64))), "out"),
        (dict(k=_t(shape=(1, 4, 3, 64)), v=_t(shape=(1, 4, 3, 64)), dk=_t(shape=(1, 4, 3, 64)),
              dv=_t(shape=(1, 4, 3, 64))), "k"),
        (dict(mask="diagonal"), "causal"),
        (dict(dtype="f32"), "q"),
        (dict(scale=-1.0), "scale"),
    ],
)
def test_backward_cuda_names_the_bad_argument(over, arg):
    # The rules run before any device is opened, so this needs no GPU.
    with pytest.raises(ValueError) as e:
        _bwd(**over)
    assert e.value.arg == arg, str(e.value)


def test_backward_cuda_type_errors():
    # PyO3's extraction errors name the argument.
    with pytest.raises(TypeError, match="deterministic"):
        _bwd(deterministic="yes")
    with pytest.raises(TypeError, match="dq"):
        _bwd(dq=(256, None, (1, 1, 1, 1)))
