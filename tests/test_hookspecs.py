"""The plugin contract is documented where authors read it: every hook and parameter in the
hookspec module, every attribute and method of Experiment in docs/plugins.md."""

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


def _contract_rows(first_column: str) -> set[str]:
    from conftest import REPO

    text = (REPO / "docs" / "plugins.md").read_text()
    section = text.split("## The Experiment contract", 1)[1].split("\n## ", 1)[0]
    rows, inside = set(), False
    for line in section.splitlines():
        if line.startswith(f"| {first_column} |"):
            inside = True
        elif inside and line.startswith("| `"):
            rows.add(line.split("`")[1].split("(")[0])
        elif inside and not line.startswith("|"):
            inside = False
    return rows


def _experiment_surface():
    from tinkerflow.core import Experiment

    attributes = {n for n, hint in Experiment.__annotations__.items() if str(hint).startswith("ClassVar")}
    methods = {n for n, v in vars(Experiment).items() if not n.startswith("_")
               and (inspect.isfunction(v) or isinstance(v, (classmethod, staticmethod)))}
    return attributes, methods


def test_every_experiment_attribute_and_method_has_its_row_in_the_docs():
    attributes, methods = _experiment_surface()
    assert _contract_rows("class attribute") == attributes
    assert _contract_rows("method") == methods


def test_the_contract_is_the_smaller_one():
    """16 class attributes and 19 methods: what belongs together is one typed value (Metric,
    ExportSpec, State), and what must be written is abstract (the latest: ``embed_height``,
    the frame an embed snippet gives the widget; ``backends`` and ``initialize``, the
    backends a fit trains on and the starting weights that make them give one result)."""
    from tinkerflow.core import Experiment

    attributes, methods = _experiment_surface()
    assert (len(attributes), len(methods)) == (16, 19), (sorted(attributes), sorted(methods))
    assert Experiment.__abstractmethods__ == {"load_data", "build_model"}


def test_deploy_info_is_a_typed_value_that_says_what_goes_where():
    import pytest

    from tinkerflow.core import DeployInfo

    info = DeployInfo(description={"x": "a number"}, labels=["cat", "dog"], backend="wasm",
                      settings={"preprocessing": {"size": 96}})
    assert info.manifest() == {"description": {"x": "a number"}, "labels": ["cat", "dog"], "backend": "wasm",
                               "preprocessing": {"size": 96}}
    assert info.for_apps() == {"description": {"x": "a number"}, "preprocessing": {"size": 96}}
    assert DeployInfo().manifest() == {}
    for wrong, message in (({"labels": "cat,dog"}, "labels='cat,dog'"), ({"backend": "gpu"}, "backend='gpu'"),
                           ({"settings": {"labels": []}}, "names 'labels', a field of its own")):
        with pytest.raises(ValueError, match=message):
            DeployInfo(**wrong)
