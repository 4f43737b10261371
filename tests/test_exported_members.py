"""The public API is exactly what registry.__all__ lists (httpx's test_exported_members)."""

import types

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
