"""The public API is exactly what registry.__all__ lists (httpx's test_exported_members)."""

import inspect
import types
import typing

import registry


def test_all_lists_every_public_name_and_nothing_else() -> None:
    public = {name for name in dir(registry) if not name.startswith("_")}
    # submodules are attributes of the package once imported, but not API
    modules = {name for name in public if isinstance(getattr(registry, name), types.ModuleType)}
    assert set(registry.__all__) == public - modules


def test_all_is_sorted() -> None:
    assert registry.__all__ == sorted(registry.__all__)


def test_every_error_derives_from_the_root() -> None:
    from registry import errors

    for name in errors.__all__:
        assert issubclass(getattr(errors, name), errors.RegistryError)


def _registry_classes(annotation: object) -> set[type]:
    """Every class of the registry package named in a (possibly nested generic) annotation."""
    found: set[type] = set()
    origin = typing.get_origin(annotation)
    if origin is not None:
        for arg in typing.get_args(annotation):
            found |= _registry_classes(arg)
        return found
    if isinstance(annotation, type) and annotation.__module__.split(".")[0] == "registry":
        found.add(annotation)
    return found


def test_every_type_a_registry_method_returns_is_exported() -> None:
    """A caller can name (and isinstance-check) whatever the facade hands back."""
    namespace = {n: getattr(registry, n) for n in registry.__all__}  # every public name, loaded
    missing = {}
    for name, method in inspect.getmembers(registry.Registry, inspect.isfunction):
        if name.startswith("_"):
            continue
        try:
            hints = typing.get_type_hints(method, globalns=vars(inspect.getmodule(method)), localns=namespace)
        except NameError as exc:  # a return type that only exists under TYPE_CHECKING and is not exported
            missing[name] = str(exc)
            continue
        for cls in _registry_classes(hints.get("return")):
            if getattr(registry, cls.__name__, None) is not cls:
                missing[name] = cls.__qualname__
    assert missing == {}, "export these from registry/__init__.py"
