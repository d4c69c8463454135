"""Entry point: `ripple-watcher` or `python -m ripple_watcher`."""

from __future__ import annotations

import sys
from collections.abc import Sequence

from ripple_common.entrypoint import ServiceCommand
from ripple_common.entrypoint import main as service_main
from ripple_watcher.service import ConfigError
from ripple_watcher.settings import WatcherSettings

DESCRIPTION = (
    "Watch the cluster (Ingress, IngressClass, Service, EndpointSlice, TLS Secret, "
    "Namespace, Gateway API) and publish every change to Kafka, keyed by tenant."
)


SCOPE_HELP = (
    "Scope (opt-in; default: everything): RIPPLE_WATCHER_INGRESS_CLASSES=ripple,nginx "
    "publishes only Ingresses of those classes (RIPPLE_WATCHER_INGRESS_INCLUDE_UNCLASSED=true: "
    "and those naming none); RIPPLE_WATCHER_NAMESPACE_SELECTOR='ripple.io/managed=true' (any "
    "equality- or set-based label selector) publishes only objects of matching namespaces. "
    "Objects leaving the scope are published as DELETED, objects entering it as ADDED."
)


COMMAND = ServiceCommand(
    prog="ripple-watcher",
    description=DESCRIPTION,
    settings=WatcherSettings,
    serve="ripple_watcher.app:serve",  # imported only to run
    notes=(SCOPE_HELP,),
    config_errors=(ConfigError,),
)


def main(argv: Sequence[str] | None = None) -> int:
    return service_main(COMMAND, argv)


if __name__ == "__main__":
    sys.exit(main())
