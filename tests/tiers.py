"""Test tiers, from what each test reaches: nobody has to remember to mark a test.

`conftest.pytest_collection_modifyitems` gives every test the markers of the costly things it
reaches — through its own code, its fixtures and the helpers they call, in the test modules and
in the project's own code (imports inside functions included):

    apptest     streamlit.testing.v1.AppTest (a whole app or page run: seconds each)
    browser     Playwright (a headless Chromium against a server) or kaleido (image exports)
    trains      scoreviz.training.train (a real training run, however short)
    subprocess  subprocess or multiprocessing (a fresh Python imports torch: seconds; servers)

and `slow` to a test that reaches scoreviz.quality.assess (two 2,000-particle sampler runs: the
"runs many samplers" of the `slow` marker), and `quick` to every test that has none of these.
`bash scripts/test.sh --quick` runs `pytest -m quick`; `pytest --collect-only -q -m quick` lists
that tier. While a quick test runs (in any run), training, an AppTest run or a new process makes
it fail (`install_guards`): the reading below is checked by every run.

"Reaches" is read from bytecode, not run: a global name or an import is followed to the object
it names, an attribute of a module or class to that attribute; functions and classes whose code
lives in this checkout are followed into their own code, and so is the class of a module-level
instance. What it cannot see (a method called on an object whose type it does not know) the
run-time guards catch; such a test then needs an explicit marker.
"""

from __future__ import annotations

import builtins
import contextlib
import dis
import functools
import importlib
import inspect
import sys
import threading
import types
from collections.abc import Iterator
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
NOT_QUICK = ("apptest", "browser", "trains", "subprocess", "slow")
LOADS = {"LOAD_GLOBAL", "LOAD_NAME"}
ATTRS = {"LOAD_ATTR", "LOAD_METHOD"}
STORES = {"STORE_FAST", "STORE_DEREF"}


# whatever comes from these packages (a module, or a function or class defined in one)
PACKAGES = {
    "playwright": "browser",
    "kaleido": "browser",  # PNG and GIF exports: kaleido drives a headless Chromium
    "subprocess": "subprocess",
    "multiprocessing": "subprocess",
}


@functools.cache
def _objects() -> dict[int, str]:
    """The costly functions and classes themselves, by id."""
    from streamlit.testing.v1 import AppTest

    from scoreviz.quality import assess
    from scoreviz.training import train

    # assess: two 2,000-particle reverse SDEs and their metrics, the "many samplers" of `slow`
    return {id(AppTest): "apptest", id(train): "trains", id(assess): "slow"}


def _costly(obj) -> str | None:
    """The marker for one of the costly things themselves, or None."""
    mark = _objects().get(id(obj))
    if mark:
        return mark
    name = obj.__name__ if isinstance(obj, types.ModuleType) else getattr(obj, "__module__", None)
    return PACKAGES.get(name.split(".")[0]) if isinstance(name, str) else None


@functools.cache
def _ours(obj) -> bool:
    """A function or class written in this checkout (not the venv's libraries)."""
    try:
        path = Path(inspect.getsourcefile(obj) or "")
    except (TypeError, OSError):
        return False
    here = path == Path(__file__).resolve()  # naming the costly things is not reaching them
    return path.is_relative_to(ROOT) and ".venv" not in path.parts and not here


def _module(name: str, level: int, namespace: dict):
    try:
        if level:
            return importlib.import_module("." * level + name, namespace.get("__package__"))
        return importlib.import_module(name)
    except Exception:  # an optional import that fails here is not something the test reaches
        return None


def _imported(module, name: str):
    if name in vars(module):
        return vars(module)[name]
    return _module(f"{module.__name__}.{name}", 0, {})


def _attribute(obj, name: str):
    """`obj.name` for a module or class, read without running any code (no properties, no
    module __getattr__); None for anything else."""
    if isinstance(obj, types.ModuleType):
        return vars(obj).get(name)
    if isinstance(obj, type):
        try:
            return inspect.getattr_static(obj, name)
        except AttributeError:
            return None
    return None


def _references(code: types.CodeType, namespace: dict) -> list:
    """The objects one code object (and the lambdas and inner functions in it) refers to."""
    out, last, source, local, consts = [], None, None, {}, [0, None]
    for ins in dis.get_instructions(code):
        op, arg = ins.opname, ins.argval
        if op == "LOAD_CONST":
            consts = [consts[-1], arg]  # IMPORT_NAME pops (level, fromlist)
            continue
        if op == "IMPORT_FROM":  # `from m import a, b`: each comes from the last IMPORT_NAME
            last = _imported(source, arg) if isinstance(source, types.ModuleType) else None
            out.append(last)
            continue
        if op in STORES:  # `import m` / `f = m.f` inside a function: a local that names m / m.f
            if last is not None:
                local[arg] = last
            last = None
            continue
        if op.startswith("LOAD_FAST"):  # LOAD_FAST_CHECK, and 3.13's pairs: the last one
            last = local.get(arg[-1] if isinstance(arg, tuple) else arg)
        elif op in LOADS:
            last = namespace.get(arg, getattr(builtins, arg, None))
        elif op == "IMPORT_NAME":
            level, fromlist = consts
            last = source = _module(arg, level if isinstance(level, int) else 0, namespace)
            if fromlist is None and not level and last is not None:  # `import a.b` binds a
                last = source = sys.modules.get(arg.split(".")[0])
        elif op in ATTRS:
            last = _attribute(last, arg)
        else:
            last = None
        out.append(last)
    for const in code.co_consts:
        if isinstance(const, types.CodeType):
            out += _references(const, namespace)
    return [o for o in out if o is not None]


@functools.cache
def _children(obj) -> tuple:
    """What a function or class of ours refers to (unwrapping caches and decorators)."""
    obj = inspect.unwrap(obj) if callable(obj) else obj
    if isinstance(obj, (staticmethod, classmethod)):
        obj = obj.__func__
    if isinstance(obj, types.FunctionType):
        return tuple(_references(obj.__code__, obj.__globals__))
    if isinstance(obj, type):
        members = [inspect.unwrap(m) for m in vars(obj).values() if callable(m)]
        members += [m.fget for m in vars(obj).values() if isinstance(m, property)]
        return (*[m for m in members if isinstance(m, types.FunctionType)], *obj.__bases__)
    return ()


@functools.cache
def _reached(obj) -> frozenset[str]:
    """The markers of everything `obj` reaches (memoised; a cycle counts once)."""
    found, seen, todo = set(), set(), [obj]
    while todo:
        item = todo.pop()
        if id(item) in seen:
            continue
        seen.add(id(item))
        mark = _costly(item)
        if mark:
            found.add(mark)
            continue
        wrapped = inspect.getattr_static(item, "__wrapped__", None)  # functools.cache & co.
        if isinstance(item, (types.FunctionType, type)) or wrapped is not None:
            if _ours(inspect.unwrap(item) if callable(item) else item):
                todo.extend(_children(item))
        elif not isinstance(item, types.ModuleType) and _ours(type(item)):
            todo.append(type(item))  # a module-level instance of one of our classes
    return frozenset(found)


def markers_for(item) -> set[str]:
    """The costly markers of one collected test: its function and every fixture it uses."""
    roots = [getattr(item, "function", None)]
    info = getattr(item, "_fixtureinfo", None)
    for defs in info.name2fixturedefs.values() if info else ():
        roots += [d.func for d in defs]
    marks = set()
    for root in roots:
        if root is not None:
            marks |= _reached(root)
    return marks


# ------------------------------------------------------------------------- the check at run time
_GUARDING: list[int | None] = [None]  # the thread running a quick test, if one runs


def install_guards() -> None:
    """Make training, an AppTest run and a new process fail while a quick test runs: if one does,
    the reading above missed how it gets there, and the test must not stay in the quick tier."""
    import subprocess

    from streamlit.testing.v1 import AppTest

    import scoreviz.training as training

    def guard(what: str, real):
        @functools.wraps(real)
        def guarded(*args, **kwargs):
            if _GUARDING[0] == threading.get_ident():  # not background work of an earlier test
                raise AssertionError(f"a quick-tier test reached {what}: see tests/tiers.py")
            return real(*args, **kwargs)

        return guarded

    training._start = guard("training", training._start)  # every train() call starts here
    AppTest.run = guard("an AppTest run", AppTest.run)
    subprocess.Popen.__init__ = guard("a new process", subprocess.Popen.__init__)


@contextlib.contextmanager
def guarding(item) -> Iterator[None]:
    """The guards are on for the whole run of a quick test (its fixtures included), in the
    thread that runs it: an earlier test's training or prefetch thread may still be busy."""
    _GUARDING[0] = threading.get_ident() if item.get_closest_marker("quick") else None
    try:
        yield
    finally:
        _GUARDING[0] = None
