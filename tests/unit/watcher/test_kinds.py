from __future__ import annotations

import pytest

from ripple_watcher.kinds import ENDPOINT_SLICE, INGRESS, SERVICE, TLS_SECRET, kinds_by_name
from ripple_watcher.settings import DEFAULT_KINDS


def test_core_kinds_live_under_api_v1() -> None:
    assert SERVICE.collection_path == "/api/v1/services"


def test_grouped_kinds_live_under_apis_group_version() -> None:
    assert ENDPOINT_SLICE.collection_path == "/apis/discovery.k8s.io/v1/endpointslices"


def test_secret_list_and_watch_select_only_tls_secrets() -> None:
    assert TLS_SECRET.list_query(limit=10)["fieldSelector"] == "type=kubernetes.io/tls"
    query = TLS_SECRET.watch_query(resource_version="7", timeout_seconds=60)
    assert query["fieldSelector"] == "type=kubernetes.io/tls"


def test_watch_query_asks_for_bookmarks_from_the_resource_version() -> None:
    assert INGRESS.watch_query(resource_version="42", timeout_seconds=60) == {
        "watch": "true",
        "allowWatchBookmarks": "true",
        "resourceVersion": "42",
        "timeoutSeconds": "60",
    }


def test_list_query_carries_the_continue_token() -> None:
    assert INGRESS.list_query(limit=5, continue_token="abc") == {"limit": "5", "continue": "abc"}


def test_unknown_kind_names_are_rejected() -> None:
    with pytest.raises(ValueError, match="pods"):
        kinds_by_name(["Ingress", "Pods"])


def test_kinds_by_name_keeps_namespace_first() -> None:
    assert [k.kind for k in kinds_by_name(["ingress", "namespace"])] == ["Namespace", "Ingress"]


def test_config_maps_are_opt_in() -> None:
    assert "ConfigMap" not in DEFAULT_KINDS
    assert [k.kind for k in kinds_by_name(["ConfigMap"])] == ["ConfigMap"]
