"""The published OpenAPI documents parse as YAML without duplicate keys: a YAML loader keeps the
last of two equal keys, so a second schema of the same name silently replaces the first (it
happened: identity's Organization)."""

from __future__ import annotations

import pytest
import yaml
from e2e_support import repo_root


class _StrictLoader(yaml.SafeLoader):
    pass


def _mapping(loader: yaml.SafeLoader, node: yaml.MappingNode, deep: bool = False):
    seen = set()
    for key_node, _ in node.value:
        key = loader.construct_object(key_node, deep=deep)
        if key in seen:
            raise AssertionError(f"duplicate key {key!r} at line {key_node.start_mark.line + 1}")
        seen.add(key)
    return yaml.SafeLoader.construct_mapping(loader, node, deep)


_StrictLoader.add_constructor(yaml.resolver.BaseResolver.DEFAULT_MAPPING_TAG, _mapping)


@pytest.mark.parametrize("service", ["identity", "records", "consent", "ledger"])
def test_openapi_document_has_no_duplicate_keys(service):
    path = repo_root() / "openapi" / f"{service}.yaml"
    doc = yaml.load(path.read_text(encoding="utf-8"), Loader=_StrictLoader)
    assert doc["openapi"].startswith("3.1"), f"{path}: not OpenAPI 3.1"
    assert doc["paths"], f"{path}: no paths"
