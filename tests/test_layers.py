"""The layers import downwards only (DESIGN.md): concepts -> storage -> domain -> errors/types; the CLI
uses only the public registry package; heavy libraries are imported inside functions."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
CONCEPTS = ("catalog", "governance", "verification", "merge", "audit", "identity", "maintenance", "policies",
            "basemodel", "datasets", "filehashes", "server", "remote", "_registry")  # fmt: skip
HEAVY = (
    "torch",
    "transformers",
    "peft",
    "bitsandbytes",
    "safetensors.torch",
    "fastapi",
    "uvicorn",
    "boto3",
    "botocore",
    "httpx",
)


def _imports(path: Path, top_level_only: bool) -> list[str]:
    tree = ast.parse(path.read_text())
    nodes = tree.body if top_level_only else list(ast.walk(tree))
    out = []
    for node in nodes:
        if isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            out.append(node.module)
        elif isinstance(node, ast.Import):
            out.extend(a.name for a in node.names)
        elif isinstance(node, ast.If) and top_level_only:  # `if TYPE_CHECKING:` blocks are not imports at run time
            continue
    return out


def _modules(package: str) -> list[Path]:
    return sorted((ROOT / package.replace(".", "/")).rglob("*.py"))


@pytest.mark.parametrize("path", _modules("registry.domain"), ids=lambda p: str(p.relative_to(ROOT)))
def test_the_domain_imports_neither_storage_nor_concepts(path: Path) -> None:
    for module in _imports(path, top_level_only=False):
        assert not module.startswith("registry.storage"), module
        assert module.split(".")[1:2] not in ([c] for c in CONCEPTS), module


@pytest.mark.parametrize("path", _modules("registry.storage"), ids=lambda p: str(p.relative_to(ROOT)))
def test_storage_does_not_import_the_concepts(path: Path) -> None:
    for module in _imports(path, top_level_only=False):
        assert module.split(".")[1:2] not in ([c] for c in CONCEPTS), module


@pytest.mark.parametrize("path", _modules("cli"), ids=lambda p: str(p.relative_to(ROOT)))
def test_the_cli_uses_only_the_public_registry_package(path: Path) -> None:
    for module in _imports(path, top_level_only=False):
        if module.startswith("registry"):
            assert module in ("registry", "registry.types"), f"{path.name} imports {module}"


@pytest.mark.parametrize("path", [*_modules("registry"), *_modules("cli")], ids=lambda p: str(p.relative_to(ROOT)))
def test_heavy_libraries_are_imported_inside_functions(path: Path) -> None:
    for module in _imports(path, top_level_only=True):
        assert not any(module == h or module.startswith(h + ".") for h in HEAVY), f"{path.name} imports {module}"
