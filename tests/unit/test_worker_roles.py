"""The worker's classes fit the Protocols their collaborators are typed by
(``procmaster.worker.roles``): every member a role lists, the class has.

No type checker runs with the suite, so the shape is checked here: a slot, an
attribute the constructor sets, or a method."""

from __future__ import annotations

import ast
import inspect
import textwrap

import pytest

from procmaster.worker import roles
from procmaster.worker.connection import Connection
from procmaster.worker.loop import Worker, WorkerListener
from procmaster.worker.response import Exchange


def _members(role: type) -> set[str]:
    """What a Protocol declares, its base Protocols' included."""
    names: set[str] = set()
    for cls in role.__mro__:
        if cls.__module__ != roles.__name__:
            continue
        names |= set(vars(cls).get("__annotations__", {}))
        names |= {k for k, v in vars(cls).items() if inspect.isfunction(v)}
    return names


def _slots(cls: type) -> set[str]:
    return {s for c in cls.__mro__ for s in getattr(c, "__slots__", ())}


def _set_in_init(cls: type) -> set[str]:
    tree = ast.parse(textwrap.dedent(inspect.getsource(cls.__init__)))
    return {
        node.attr
        for node in ast.walk(tree)
        if isinstance(node, ast.Attribute)
        and isinstance(node.ctx, ast.Store)
        and isinstance(node.value, ast.Name)
        and node.value.id == "self"
    }


def _has(cls: type) -> set[str]:
    methods = {k for k in dir(cls) if callable(getattr(cls, k, None))}
    return _slots(cls) | _set_in_init(cls) | methods


@pytest.mark.parametrize(
    "role, cls",
    [
        (roles.Listener, WorkerListener),
        (roles.Loop, Worker),
        (roles.Books, Worker),
        (roles.AppHost, Worker),
        (roles.Host, Worker),
        (roles.InFlight, Exchange),
        (roles.Client, Connection),
    ],
)
def test_class_has_what_its_role_lists(role, cls):
    members = _members(role)
    assert members
    missing = sorted(members - _has(cls))
    assert not missing, f"{cls.__name__} lacks {missing} of {role.__name__}"


def test_roles_import_nothing_of_the_worker():
    """roles.py is the bottom of the package: the modules above import it, never
    the other way round."""
    tree = ast.parse(inspect.getsource(roles))
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom):
            assert node.level != 1, f"roles imports .{node.module}"
            assert not (node.module or "").startswith("procmaster.worker")
