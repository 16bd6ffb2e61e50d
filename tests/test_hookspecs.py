"""The hookspec module is the API reference: every hook and parameter must be documented."""

import inspect

import pluggy

from tinkerflow.core import hookspecs


def _specs():
    return [f for name, f in inspect.getmembers(hookspecs, inspect.isfunction)
            if hasattr(f, "tinkerflow_spec")]


def test_there_are_hookspecs():
    names = {f.__name__ for f in _specs()}
    assert {"register_experiments", "register_exporters", "extra_callbacks", "before_run", "after_run"} <= names


def test_every_hook_is_documented():
    for spec in _specs():
        doc = inspect.getdoc(spec) or ""
        assert doc and len(doc.splitlines()[0]) > 10, f"hook {spec.__name__} has no summary line"
        assert "when" in doc.lower() or "called" in doc.lower(), f"hook {spec.__name__}: say when it fires"
        for param in inspect.signature(spec).parameters:
            assert f":param {param}:" in doc, f"hook {spec.__name__}: parameter '{param}' is undocumented"
        assert ":returns:" in doc, f"hook {spec.__name__}: say what it returns"


def test_undocumented_hook_would_fail(monkeypatch):
    """The check above is real: an undocumented spec makes it fail."""
    marker = pluggy.HookspecMarker("tinkerflow")

    @marker
    def undocumented_hook(run):
        pass

    monkeypatch.setattr(hookspecs, "undocumented_hook", undocumented_hook, raising=False)
    try:
        test_every_hook_is_documented()
    except AssertionError as exc:
        assert "undocumented_hook" in str(exc)
    else:
        raise AssertionError("an undocumented hook passed the documentation check")
