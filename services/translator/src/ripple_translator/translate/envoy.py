"""Envoy protos from the plan, each returned as a `Resource` of deterministic bytes.

The xds-protos stubs are untyped, so proto objects stay inside this module: every public
function takes typed plan values and returns a `Resource` (or bytes). Serialization is
deterministic (map fields sorted), so equal input gives byte-identical resources.

The names shared with the gateway's listeners (the filters routes configure through
``typed_per_filter_config``, the scope-key header, the metadata the gateway's Lua filters read,
the Secret each host is served with over HTTPS) are `ripple_common.gateway_contract`'s. CORS is
plain routes and response headers (see `ingress`), as ingress-nginx's template answers it.
Every virtual host carries the scope filter's served marker (its owner keeps an exact host,
even for paths it does not route) and, when it has a certificate, the Secret that serves it
(`TlsChoice`); every RouteConfiguration strips the scope-key header before the upstream.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any, Final

from envoy.config.cluster.v3 import cluster_pb2
from envoy.config.core.v3 import address_pb2, base_pb2, config_source_pb2, protocol_pb2
from envoy.config.endpoint.v3 import endpoint_pb2
from envoy.config.rbac.v3 import rbac_pb2 as rbac_config_pb2
from envoy.config.route.v3 import route_components_pb2, route_pb2, scoped_route_pb2
from envoy.extensions.filters.http.custom_response.v3 import custom_response_pb2
from envoy.extensions.filters.http.local_ratelimit.v3 import local_rate_limit_pb2
from envoy.extensions.filters.http.rbac.v3 import rbac_pb2 as rbac_filter_pb2
from envoy.extensions.filters.http.stateful_session.v3 import stateful_session_pb2
from envoy.extensions.http.custom_response.redirect_policy.v3 import redirect_policy_pb2
from envoy.extensions.http.stateful_session.cookie.v3 import cookie_pb2 as session_cookie_pb2
from envoy.extensions.retry.host.previous_hosts.v3 import previous_hosts_pb2
from envoy.extensions.transport_sockets.tls.v3 import common_pb2, secret_pb2, tls_pb2
from envoy.extensions.upstreams.http.v3 import http_protocol_options_pb2
from envoy.type.http.v3 import cookie_pb2
from envoy.type.matcher.v3 import regex_pb2, status_code_input_pb2, string_pb2
from envoy.type.v3 import http_status_pb2, percent_pb2, token_bucket_pb2
from google.protobuf import any_pb2, duration_pb2, wrappers_pb2

from ripple_common.gateway_contract import (
    BODY_LIMIT_FILTER,
    CATCH_ALL_KEY,
    CUSTOM_RESPONSE_FILTER,
    ERROR_PAGE_HEADER,
    LOCAL_RATELIMIT_FILTER,
    MAX_BYTES_KEY,
    RATE_LIMIT_STAT_PREFIX,
    RBAC_FILTER,
    REDIRECT_HEADER,
    REDIRECT_TOKEN,
    SCOPE_FILTER,
    SCOPE_KEY_HEADER,
    SERVED_KEY,
    STATEFUL_SESSION_FILTER,
    TLS_METADATA,
    TLS_SECRET_KEY,
    TLS_TRANSPORT_SOCKET,
)
from ripple_common.resources import Resource, TypeUrl
from ripple_translator.translate.annotations import (
    ClusterSettings,
    HashPolicy,
    HashSource,
    LbPolicy,
    RateLimit,
    Retry,
    SourceRanges,
)
from ripple_translator.translate.backends import LocalityEndpoints
from ripple_translator.translate.plan import (
    GATEWAY_ERROR_PAGE,
    Action,
    Forward,
    HeaderMatch,
    MatchKind,
    PathMatch,
    RedirectTo,
    Respond,
    RouteSpec,
    VirtualHostSpec,
)
from ripple_translator.translate.validate import envoy_literal

# affinity-mode persistent: the session state of the gateway's stateful-session filter.
SESSION_COOKIE: Final = "envoy.http.stateful_session.cookie"
# Client addresses with a token bucket of their own, per route (least recently used go).
RATE_LIMIT_CLIENTS: Final = 10_000
UNLIMITED_TOKENS: Final = 2**31 - 1
# nginx never passes these to the next upstream unless proxy-next-upstream has non_idempotent.
NON_IDEMPOTENT_METHODS: Final = "POST|LOCK|PATCH"
HTTP_PROTOCOL_OPTIONS: Final = "envoy.extensions.upstreams.http.v3.HttpProtocolOptions"

_LB: Final = {
    LbPolicy.ROUND_ROBIN: cluster_pb2.Cluster.ROUND_ROBIN,
    LbPolicy.LEAST_REQUEST: cluster_pb2.Cluster.LEAST_REQUEST,
    LbPolicy.RING_HASH: cluster_pb2.Cluster.RING_HASH,
}
_REDIRECT_CODES: Final = {
    301: route_components_pb2.RedirectAction.MOVED_PERMANENTLY,
    302: route_components_pb2.RedirectAction.FOUND,
    303: route_components_pb2.RedirectAction.SEE_OTHER,
    307: route_components_pb2.RedirectAction.TEMPORARY_REDIRECT,
    308: route_components_pb2.RedirectAction.PERMANENT_REDIRECT,
}


def cluster(
    name: str, *, endpoints: str, settings: ClusterSettings, keepalive_timeout_s: float
) -> Resource:
    """An EDS cluster fed over ADS; its endpoints are the assignment named `endpoints`. An
    ExternalName Service's (`settings.external_name`) is a STRICT_DNS cluster resolving that
    name instead (every address it resolves to is an endpoint, re-resolved at the DNS TTL).
    An upstream connection idle for `keepalive_timeout_s` is closed (ingress-nginx's
    `upstream-keepalive-timeout`; 0: kept until the backend closes it): without it Envoy keeps
    one for an hour, and a gateway with tens of thousands of clusters runs out of files."""
    msg = cluster_pb2.Cluster(
        name=name,
        connect_timeout=_duration(settings.connect_timeout_ms),
        lb_policy=_LB[settings.lb_policy],
    )
    if settings.external_name is None:
        msg.type = cluster_pb2.Cluster.EDS
        msg.eds_cluster_config.CopyFrom(
            cluster_pb2.Cluster.EdsClusterConfig(
                eds_config=config_source_pb2.ConfigSource(
                    ads=config_source_pb2.AggregatedConfigSource(),
                    resource_api_version=config_source_pb2.V3,
                ),
                service_name=endpoints,
            )
        )
    else:
        msg.type = cluster_pb2.Cluster.STRICT_DNS
        msg.respect_dns_ttl = True
        msg.dns_lookup_family = cluster_pb2.Cluster.V4_PREFERRED
        msg.load_assignment.cluster_name = name
        address = msg.load_assignment.endpoints.add().lb_endpoints.add().endpoint.address
        address.socket_address.address = settings.external_name
        address.socket_address.port_value = settings.external_port
    explicit = http_protocol_options_pb2.HttpProtocolOptions.ExplicitHttpConfig()
    if settings.http2:
        explicit.http2_protocol_options.SetInParent()
    else:
        explicit.http_protocol_options.SetInParent()
    options = http_protocol_options_pb2.HttpProtocolOptions(
        explicit_http_config=explicit,
        common_http_protocol_options=protocol_pb2.HttpProtocolOptions(
            idle_timeout=_duration(round(keepalive_timeout_s * 1000))
        ),
    )
    msg.typed_extension_protocol_options[HTTP_PROTOCOL_OPTIONS].CopyFrom(_pack(options))
    if settings.tls:
        # As nginx's proxy_pass https://: no certificate verification; SNI only when named
        # (upstream-vhost, or an ExternalName Service's name).
        context = tls_pb2.UpstreamTlsContext(
            common_tls_context=tls_pb2.CommonTlsContext(
                alpn_protocols=["h2"] if settings.http2 else []
            ),
            sni=settings.sni or "",
        )
        msg.transport_socket.name = TLS_TRANSPORT_SOCKET
        msg.transport_socket.typed_config.CopyFrom(_pack(context))
    return _resource(TypeUrl.CLUSTER, name, msg)


def endpoints(name: str, groups: Sequence[LocalityEndpoints]) -> Resource:
    """A ClusterLoadAssignment. Every group has a locality (gRPC's xDS client requires one) and
    a positive weight (gRPC ignores localities of weight 0)."""
    msg = endpoint_pb2.ClusterLoadAssignment(cluster_name=name)
    for group in groups:
        lle = msg.endpoints.add()
        lle.locality.SetInParent()
        lle.locality.zone = group.zone
        lle.locality.sub_zone = group.sub_zone
        lle.load_balancing_weight.value = len(group.addresses)
        for address, port in group.addresses:
            lbe = lle.lb_endpoints.add()
            lbe.endpoint.address.socket_address.address = address
            lbe.endpoint.address.socket_address.port_value = port
    return _resource(TypeUrl.ENDPOINT, name, msg)


def tls_secret(name: str, *, certificate: str, private_key: str) -> Resource:
    msg = secret_pb2.Secret(
        name=name,
        tls_certificate=common_pb2.TlsCertificate(
            certificate_chain=base_pb2.DataSource(inline_bytes=certificate.encode()),
            private_key=base_pb2.DataSource(inline_bytes=private_key.encode()),
        ),
    )
    return _resource(TypeUrl.SECRET, name, msg)


def scope(name: str, *, route_config: str, host: str) -> Resource:
    """A scope whose key is the host, exact or a ``*.`` wildcard (the gateway writes the key
    header: the request's exact host, else its one-label wildcard)."""
    msg = scoped_route_pb2.ScopedRouteConfiguration(
        name=name,
        route_configuration_name=route_config,
        on_demand=False,
        key=scoped_route_pb2.ScopedRouteConfiguration.Key(
            fragments=[scoped_route_pb2.ScopedRouteConfiguration.Key.Fragment(string_key=host)]
        ),
    )
    return _resource(TypeUrl.SCOPED_ROUTE, name, msg)


def no_certificate(host: str) -> str | None:
    return None


def route_config(
    name: str,
    virtual_hosts: Sequence[VirtualHostSpec],
    *,
    certificate: Callable[[str], str | None] = no_certificate,
) -> Resource:
    """The tenant's routes, one virtual host per host; `certificate` names the Secret resource
    that serves a host over HTTPS (`tls.TlsPlan.secret_for`), which the gateway serves for
    that host's SNI (`gateway_contract.TLS_METADATA`)."""
    msg = route_pb2.RouteConfiguration(
        name=name,
        ignore_port_in_host_matching=True,
        request_headers_to_remove=[SCOPE_KEY_HEADER],
    )
    for vh in virtual_hosts:
        vhost = msg.virtual_hosts.add(name=vh.host, domains=[vh.host])
        vhost.metadata.filter_metadata[SCOPE_FILTER].fields[SERVED_KEY].bool_value = True
        secret = certificate(vh.host)
        if secret is not None:
            served_with = vhost.metadata.filter_metadata[TLS_METADATA].fields[TLS_SECRET_KEY]
            served_with.string_value = secret
        if vh.retry is not None:
            vhost.retry_policy.CopyFrom(_retry_policy(vh.retry))
        for spec in vh.routes:
            vhost.routes.append(_route(spec, scope=vh.host))
    return _resource(TypeUrl.ROUTE, name, msg)


def catch_all_route_config(name: str, *, cluster: str) -> Resource:
    """The gateway default backend's routes (`default_backend`): every host and path to
    `cluster`, its virtual host marked served (the catch-all scope is then final)."""
    msg = route_pb2.RouteConfiguration(
        name=name,
        ignore_port_in_host_matching=True,
        request_headers_to_remove=[SCOPE_KEY_HEADER, ERROR_PAGE_HEADER],
    )
    vhost = msg.virtual_hosts.add(name=CATCH_ALL_KEY, domains=["*"])
    vhost.metadata.filter_metadata[SCOPE_FILTER].fields[SERVED_KEY].bool_value = True
    route = vhost.routes.add(name="default-backend")
    route.match.prefix = "/"
    route.route.cluster = cluster
    return _resource(TypeUrl.ROUTE, name, msg)


# ---------------------------------------------------------------------------------------------


def _route(spec: RouteSpec, *, scope: str) -> Any:
    route = route_components_pb2.Route(name=spec.name, match=_match(spec.match))
    for header in spec.headers:
        route.match.headers.append(_header_matcher(header))
    for param in spec.query_params:
        route.match.query_parameters.append(_query_matcher(param))
    _set_action(route, spec.action)
    if spec.error_codes:
        gateway_page = spec.error_page == GATEWAY_ERROR_PAGE  # the catch-all scope
        errors = _custom_response(
            spec.error_codes,
            spec.error_page,
            scope=CATCH_ALL_KEY if gateway_page else scope,
            headers=spec.error_page_headers,
        )
        route.typed_per_filter_config[CUSTOM_RESPONSE_FILTER].CopyFrom(_pack(errors))
    policy = spec.action.hash_policy if isinstance(spec.action, Forward) else None
    if policy is not None and policy.persistent:
        session = _stateful_session(policy)
        route.typed_per_filter_config[STATEFUL_SESSION_FILTER].CopyFrom(_pack(session))
    if spec.source_ranges is not None:
        rbac = _rbac(spec.source_ranges)
        route.typed_per_filter_config[RBAC_FILTER].CopyFrom(_pack(rbac))
    if spec.rate_limit is not None:
        limit = _local_rate_limit(spec.rate_limit)
        route.typed_per_filter_config[LOCAL_RATELIMIT_FILTER].CopyFrom(_pack(limit))
    if spec.body_limit_bytes is not None:
        limit = route.metadata.filter_metadata[BODY_LIMIT_FILTER].fields[MAX_BYTES_KEY]
        limit.number_value = spec.body_limit_bytes
    for key, value in spec.request_headers:
        route.request_headers_to_add.append(_header_option(key, value))
    for key, value in spec.response_headers:
        route.response_headers_to_add.append(_header_option(key, value))
    for key, value in spec.request_headers_format:
        route.request_headers_to_add.append(_header_option(key, value, literal=False))
    for key, value in spec.response_headers_format:
        route.response_headers_to_add.append(_header_option(key, value, literal=False))
    for key, value in spec.request_headers_append:
        route.request_headers_to_add.append(_header_option(key, value, append=True))
    for key, value in spec.response_headers_append:
        route.response_headers_to_add.append(_header_option(key, value, append=True))
    route.request_headers_to_remove.extend(spec.request_headers_remove)
    route.response_headers_to_remove.extend(spec.response_headers_remove)
    return route


def _match(match: PathMatch) -> Any:
    m = route_components_pb2.RouteMatch()
    if match.kind is MatchKind.EXACT:
        m.path = match.value
    elif match.kind is MatchKind.PATH_PREFIX:
        m.path_separated_prefix = match.value
    elif match.kind is MatchKind.PREFIX:
        m.prefix = match.value
    else:
        m.safe_regex.regex = match.value
    return m


def _header_matcher(header: HeaderMatch) -> Any:
    matcher = route_components_pb2.HeaderMatcher(name=header.name)
    if header.regex:
        matcher.string_match.safe_regex.regex = header.value
    else:
        matcher.string_match.exact = header.value
    return matcher


def _query_matcher(param: HeaderMatch) -> Any:
    matcher = route_components_pb2.QueryParameterMatcher(name=param.name)
    if param.regex:
        matcher.string_match.safe_regex.regex = param.value
    else:
        matcher.string_match.exact = param.value
    return matcher


def _set_action(route: Any, action: Action) -> None:
    if isinstance(action, Respond):
        route.direct_response.status = action.status
    elif isinstance(action, RedirectTo):
        r = route.redirect
        r.response_code = _REDIRECT_CODES[action.code]
        if action.https:
            r.https_redirect = True
        elif action.scheme is not None:
            r.scheme_redirect = action.scheme
        if action.host is not None:
            r.host_redirect = action.host
        if action.port is not None:
            r.port_redirect = action.port
        if action.path is not None:
            r.path_redirect = action.path
            r.strip_query = not action.keep_query
        elif action.rewrite is not None:
            pattern, substitution = action.rewrite
            r.regex_rewrite.CopyFrom(
                regex_pb2.RegexMatchAndSubstitute(
                    pattern=regex_pb2.RegexMatcher(regex=pattern), substitution=substitution
                )
            )
    else:
        _set_forward(route.route, action)


def _set_forward(ra: Any, action: Forward) -> None:
    if len(action.targets) == 1:
        ra.cluster = action.targets[0].cluster
    else:
        for target in action.targets:
            weighted = ra.weighted_clusters.clusters.add(
                name=target.cluster, weight=wrappers_pb2.UInt32Value(value=target.weight)
            )
            for key, value in target.response_headers_append:
                weighted.response_headers_to_add.append(_header_option(key, value, append=True))
    # nginx has no limit on a whole response; Envoy's default route timeout is 15s.
    ra.timeout.CopyFrom(duration_pb2.Duration())
    ra.idle_timeout.CopyFrom(_duration(action.idle_timeout_ms))
    if action.rewrite is not None:
        pattern, substitution = action.rewrite
        ra.regex_rewrite.CopyFrom(
            regex_pb2.RegexMatchAndSubstitute(
                pattern=regex_pb2.RegexMatcher(regex=pattern), substitution=substitution
            )
        )
    if action.host_rewrite is not None:
        ra.host_rewrite_literal = action.host_rewrite
    if action.hash_policy is not None and not action.hash_policy.persistent:
        ra.hash_policy.append(_hash_policy(action.hash_policy))
    if action.retry is not None:
        ra.retry_policy.CopyFrom(_retry_policy(action.retry))


def _hash_policy(policy: HashPolicy) -> Any:
    hp = route_components_pb2.RouteAction.HashPolicy()
    if policy.source is HashSource.HEADER:
        hp.header.header_name = policy.name
    elif policy.source is HashSource.COOKIE:
        hp.cookie.name = policy.name
        if policy.cookie_ttl_s is not None:  # Envoy makes the cookie when it is missing
            hp.cookie.ttl.CopyFrom(duration_pb2.Duration(seconds=policy.cookie_ttl_s))
        if policy.cookie_path is not None:
            hp.cookie.path = policy.cookie_path
        for name, value in policy.cookie_attributes:
            hp.cookie.attributes.add(name=name, value=value)
    elif policy.source is HashSource.QUERY_PARAMETER:
        hp.query_parameter.name = policy.name
    else:
        hp.connection_properties.source_ip = True
    return hp


def _custom_response(
    codes: Sequence[int], page: str, *, scope: str, headers: Sequence[tuple[str, str]] = ()
) -> Any:
    """An upstream answer of one of `codes` is replaced (internal redirect to ``/``) by the
    answer of the request re-routed with `ERROR_PAGE_HEADER` = `page` and X-Code (nginx
    ``error_page CODE = @loc``); the status stays the upstream's. The redirect needs a route
    before it is made, and the route configuration removed the scope key header: it is added
    back (`scope`: the virtual host's name, exact or wildcard, which is its scope key; or the
    catch-all key of the gateway's default backend, whose routes add nothing: `headers` and
    X-Format come with the re-routed request). `REDIRECT_HEADER` proves the redirect to the
    gateway's scope filter, which removes a client's `ERROR_PAGE_HEADER`."""
    config = custom_response_pb2.CustomResponse()
    for code in codes:
        field = config.custom_response_matcher.matcher_list.matchers.add()
        predicate = field.predicate.single_predicate
        predicate.input.name = "status"
        predicate.input.typed_config.CopyFrom(
            _pack(status_code_input_pb2.HttpResponseStatusCodeMatchInput())
        )
        predicate.value_match.exact = str(code)
        policy = redirect_policy_pb2.RedirectPolicy(
            redirect_action=route_components_pb2.RedirectAction(path_redirect="/")
        )
        policy.request_headers_to_add.extend(
            [
                _header_option(ERROR_PAGE_HEADER, page),
                _header_option(SCOPE_KEY_HEADER, scope),
                _header_option("X-Code", str(code)),
                _header_option(REDIRECT_HEADER, REDIRECT_TOKEN, literal=False),
                *(_header_option(key, value) for key, value in headers),
            ]
        )
        if page == GATEWAY_ERROR_PAGE:
            policy.request_headers_to_add.append(
                _header_option("X-Format", "%REQ(accept)%", literal=False)
            )
        field.on_match.action.name = f"error-page-{code}"
        field.on_match.action.typed_config.CopyFrom(_pack(policy))
    return config


def _stateful_session(policy: HashPolicy) -> Any:
    """affinity-mode persistent: Envoy's cookie-based stateful session; the cookie (which
    Envoy sets on the first answer, with the affinity cookie's name, path, lifetime and
    attributes) names the endpoint, which keeps its requests while it exists."""
    cookie = cookie_pb2.Cookie(name=policy.name, path=policy.cookie_path or "/")
    if policy.cookie_ttl_s:
        cookie.ttl.CopyFrom(duration_pb2.Duration(seconds=policy.cookie_ttl_s))
    for name, value in policy.cookie_attributes:
        cookie.attributes.add(name=name, value=value)
    state = session_cookie_pb2.CookieBasedSessionState(cookie=cookie)
    session = stateful_session_pb2.StatefulSession()
    session.session_state.name = SESSION_COOKIE
    session.session_state.typed_config.CopyFrom(_pack(state))
    return stateful_session_pb2.StatefulSessionPerRoute(stateful_session=session)


def _retry_policy(retry: Retry) -> Any:
    if not retry.on:  # no retries (it replaces the host's policy)
        return route_components_pb2.RetryPolicy(num_retries=wrappers_pb2.UInt32Value(value=0))
    policy = route_components_pb2.RetryPolicy(
        retry_on=",".join(retry.on),
        num_retries=wrappers_pb2.UInt32Value(value=retry.num_retries),
        retriable_status_codes=list(retry.status_codes),
        host_selection_retry_max_attempts=3,
    )
    predicate = policy.retry_host_predicate.add(name="envoy.retry_host_predicates.previous_hosts")
    predicate.typed_config.Pack(previous_hosts_pb2.PreviousHostsPredicate())
    if retry.idempotent_only:
        policy.retriable_request_headers.append(
            route_components_pb2.HeaderMatcher(
                name=":method",
                string_match=string_pb2.StringMatcher(
                    safe_regex=regex_pb2.RegexMatcher(regex=NON_IDEMPOTENT_METHODS)
                ),
                invert_match=True,
            )
        )
    return policy


def _local_rate_limit(limit: RateLimit) -> Any:
    """A token bucket per client address (a dynamic descriptor: the `remote_address` entry
    has no value), `rps` tokens a second, `burst` at most; 503 beyond, as nginx's limit_req."""
    everything = base_pb2.RuntimeFractionalPercent(
        default_value=percent_pb2.FractionalPercent(
            numerator=100, denominator=percent_pb2.FractionalPercent.HUNDRED
        )
    )
    config = local_rate_limit_pb2.LocalRateLimit(
        stat_prefix=RATE_LIMIT_STAT_PREFIX,
        status=http_status_pb2.HttpStatus(code=http_status_pb2.ServiceUnavailable),
        filter_enabled=everything,
        filter_enforced=everything,
        max_dynamic_descriptors=wrappers_pb2.UInt32Value(value=RATE_LIMIT_CLIENTS),
        # Envoy wants a default bucket; every request matches the client's descriptor, and
        # the default one is only for a request that matches none (it never limits).
        token_bucket=token_bucket_pb2.TokenBucket(
            max_tokens=UNLIMITED_TOKENS,
            tokens_per_fill=wrappers_pb2.UInt32Value(value=UNLIMITED_TOKENS),
            fill_interval=duration_pb2.Duration(seconds=1),
        ),
        always_consume_default_token_bucket=wrappers_pb2.BoolValue(value=False),
    )
    config.rate_limits.add().actions.add().remote_address.SetInParent()
    descriptor = config.descriptors.add(
        token_bucket=token_bucket_pb2.TokenBucket(
            max_tokens=limit.burst,
            tokens_per_fill=wrappers_pb2.UInt32Value(value=limit.rps),
            fill_interval=duration_pb2.Duration(seconds=1),
        )
    )
    descriptor.entries.add(key="remote_address", value="")
    return config


def _rbac(ranges: SourceRanges) -> Any:
    """Allow-list and deny-list of client addresses (``remote_ip``: the client address after
    the listener's x-forwarded-for handling, like nginx's $remote_addr with real_ip)."""
    allow = _any_of(ranges.allow)
    deny = _any_of(ranges.deny)
    if ranges.allow and ranges.deny:
        principal = rbac_config_pb2.Principal(
            and_ids=rbac_config_pb2.Principal.Set(
                ids=[allow, rbac_config_pb2.Principal(not_id=deny)]
            )
        )
        action = rbac_config_pb2.RBAC.ALLOW
    elif ranges.allow:
        principal, action = allow, rbac_config_pb2.RBAC.ALLOW
    else:
        principal, action = deny, rbac_config_pb2.RBAC.DENY
    policy = rbac_config_pb2.Policy(
        permissions=[rbac_config_pb2.Permission(any=True)], principals=[principal]
    )
    rules = rbac_config_pb2.RBAC(action=action)
    rules.policies["source-range"].CopyFrom(policy)
    return rbac_filter_pb2.RBACPerRoute(rbac=rbac_filter_pb2.RBAC(rules=rules))


def _any_of(nets: Sequence[Any]) -> Any:
    ids = [
        rbac_config_pb2.Principal(
            remote_ip=address_pb2.CidrRange(
                address_prefix=str(net.network_address),
                prefix_len=wrappers_pb2.UInt32Value(value=net.prefixlen),
            )
        )
        for net in nets
    ]
    return rbac_config_pb2.Principal(or_ids=rbac_config_pb2.Principal.Set(ids=ids))


def _header_option(key: str, value: str, *, append: bool = False, literal: bool = True) -> Any:
    option = base_pb2.HeaderValueOption
    return option(
        header=base_pb2.HeaderValue(key=key, value=envoy_literal(value) if literal else value),
        append_action=option.APPEND_IF_EXISTS_OR_ADD
        if append
        else option.OVERWRITE_IF_EXISTS_OR_ADD,
    )


def _duration(ms: int) -> Any:
    return duration_pb2.Duration(seconds=ms // 1000, nanos=(ms % 1000) * 1_000_000)


def _pack(msg: Any) -> any_pb2.Any:
    packed = any_pb2.Any()
    packed.Pack(msg, deterministic=True)
    return packed


def _resource(type_url: TypeUrl, name: str, msg: Any) -> Resource:
    body: bytes = msg.SerializeToString(deterministic=True)
    return Resource(type_url, name, body)
