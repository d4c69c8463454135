"""Host and path ownership inside a tenant, and the cross-tenant host hook."""

from __future__ import annotations

from ripple_translator.translate import Reason, Severity, TranslateOptions
from tests.unit.translator import decode, k8s

SERVICES = [k8s.service("old"), k8s.service("new")]


def two(path_new: str = "/", created_new: str = "2024-02-01T00:00:00Z") -> list[k8s.JsonDict]:
    return [
        k8s.ingress(
            "zz-old",
            rules=[k8s.rule("shop.example.com", k8s.path("/", service="old"))],
            created="2024-01-01T00:00:00Z",
        ),
        k8s.ingress(
            "aa-new",
            rules=[
                k8s.rule(
                    "shop.example.com",
                    k8s.path(path_new, service="new"),
                    k8s.path("/only-new", service="new"),
                )
            ],
            created=created_new,
        ),
    ]


def test_older_ingress_wins_a_host_and_path() -> None:
    t = k8s.run(*two(), services=SERVICES)

    roots = [r for r in decode.routes(t) if decode.match_of(r) == ("prefix", "/")]
    assert [r.route.cluster for r in roots] == ["t1/shop/old:80"]


def test_loser_gets_a_path_conflict_warning() -> None:
    t = k8s.run(*two(), services=SERVICES)

    [d] = decode.diags(t, Reason.PATH_CONFLICT)
    assert (d.object.name, d.severity) == ("aa-new", Severity.WARNING)
    assert "shop/zz-old" in d.message


def test_losers_other_paths_are_still_served() -> None:
    t = k8s.run(*two(), services=SERVICES)

    assert ("path_separated_prefix", "/only-new") in [decode.match_of(r) for r in decode.routes(t)]


def test_same_creation_time_falls_back_to_the_name() -> None:
    t = k8s.run(*two(created_new="2024-01-01T00:00:00Z"), services=SERVICES)

    roots = [r for r in decode.routes(t) if decode.match_of(r) == ("prefix", "/")]
    assert [r.name for r in roots] == ["shop/aa-new"]


def test_prefix_and_implementation_specific_root_conflict() -> None:
    old, new = two()
    new["spec"]["rules"][0]["http"]["paths"][0]["pathType"] = "ImplementationSpecific"
    t = k8s.run(old, new, services=SERVICES)

    assert decode.diags(t, Reason.PATH_CONFLICT)


def test_different_paths_on_one_host_do_not_conflict() -> None:
    t = k8s.run(*two(path_new="/api"), services=SERVICES)

    assert decode.diags(t, Reason.PATH_CONFLICT) == []


def test_path_listed_twice_in_one_ingress_is_reported() -> None:
    t = k8s.run(k8s.ingress(rules=[k8s.rule("shop.example.com", k8s.path("/a"), k8s.path("/a"))]))

    [d] = decode.diags(t, Reason.PATH_CONFLICT)
    assert "twice" in d.message


def test_denied_host_is_an_error_and_gets_no_routes() -> None:
    options = TranslateOptions(host_allowed=lambda host: host != "taken.example.com")
    t = k8s.run(
        k8s.ingress(rules=[k8s.rule("taken.example.com"), k8s.rule("shop.example.com")]),
        options=options,
    )

    assert t.hosts == ("shop.example.com",)
    [d] = decode.diags(t, Reason.HOST_NOT_ALLOWED)
    assert d.severity is Severity.ERROR
    assert "taken.example.com" in d.message


def test_allowed_hosts_can_be_a_set() -> None:
    allowed = frozenset({"shop.example.com"})
    t = k8s.run(
        k8s.ingress(rules=[k8s.rule("x.example.com"), k8s.rule("shop.example.com")]),
        options=TranslateOptions(host_allowed=allowed.__contains__),
    )

    assert t.hosts == ("shop.example.com",)


def test_claims_list_every_requested_host_with_its_oldest_ingress() -> None:
    t = k8s.run(
        *two(),
        options=TranslateOptions(host_allowed=lambda host: False),
        services=SERVICES,
    )

    [claim] = t.claims
    assert (claim.host, claim.ingress.name) == ("shop.example.com", "zz-old")
    assert claim.created is not None
    assert claim.created.year == 2024
