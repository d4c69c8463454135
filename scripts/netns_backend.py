"""Test backends in a network namespace, reachable from the root namespace at 198.18.0.2.

kube-apiserver rejects loopback addresses in EndpointSlices, so the backends the gateway Envoy
proxies to live in their own network namespace `ripple-be`, joined to the root namespace by a
veth pair: host side 198.18.0.1/24, backend side 198.18.0.2/24 (198.18.0.0/15 is reserved for
benchmarking). One small HTTP server runs inside (`ip netns exec`), listening on several
ports, each with its own name; it answers every request with that name, the request's Host
and path (`backend=<name> host=<host> path=<path>`).

    python -m scripts.netns_backend up [--listen be-a=8080 --listen be-b=8081]
    python -m scripts.netns_backend status
    python -m scripts.netns_backend down

`up` is idempotent (what exists is kept; a server listening on other ports is restarted);
`down` stops the server by its recorded pid (SIGTERM) and deletes the namespace, which takes
the veth pair with it. Needs root (iproute2). The pid and log live under
`$RIPPLE_RUN/netns-backend/`.
"""

from __future__ import annotations

import argparse
import contextlib
import errno
import http.server
import json
import os
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Final

from scripts.stack_env import REPO_DIR, cmdline, pid_alive, run_dir

NAMESPACE: Final = "ripple-be"
HOST_IF: Final = "rbe-host"
NS_IF: Final = "rbe-ns"
HOST_IP: Final = "198.18.0.1"
BACKEND_IP: Final = "198.18.0.2"
PREFIX_LEN: Final = 24
DEFAULT_LISTEN: Final = (("be-a", 8080), ("be-b", 8081))


@dataclass(frozen=True, slots=True, kw_only=True)
class NetnsLayout:
    """Where a backend namespace sits: its name, veth pair and addresses. The default is the
    tests' `ripple-be`; a second one (another /24) can run beside it, e.g. for a benchmark
    against a second stack."""

    namespace: str = NAMESPACE
    host_if: str = HOST_IF
    ns_if: str = NS_IF
    host_ip: str = HOST_IP
    backend_ip: str = BACKEND_IP


PROBE_LAYOUT: Final = NetnsLayout(
    namespace="ripple-probe",
    host_if="rbp-host",
    ns_if="rbp-ns",
    host_ip="198.18.1.1",
    backend_ip="198.18.1.2",
)


class BackendError(RuntimeError):
    """The namespace or the server could not be set up."""


def default_state_dir() -> Path:
    return run_dir() / "netns-backend"


def _ip(*args: str, netns: str | None = None, check: bool = True) -> str:
    cmd = ["ip", *(["-n", netns] if netns else []), *args]
    done = subprocess.run(cmd, capture_output=True, text=True, check=False)
    if check and done.returncode != 0:
        raise BackendError(f"`{' '.join(cmd)}` failed: {done.stderr.strip()}")
    return done.stdout


@dataclass(frozen=True, slots=True)
class Listener:
    name: str
    port: int

    @classmethod
    def parse(cls, text: str) -> Listener:
        name, sep, port = text.partition("=")
        if not sep or not name or not port.isdigit() or not 0 < int(port) < 65536:
            raise argparse.ArgumentTypeError(f"expected NAME=PORT, got {text!r}")
        return cls(name, int(port))

    def __str__(self) -> str:
        return f"{self.name}={self.port}"


@dataclass(frozen=True, slots=True)
class BackendStatus:
    namespace: bool
    link: bool
    pid: int | None
    listeners: tuple[Listener, ...] = field(default_factory=tuple)
    answering: bool = False

    @property
    def up(self) -> bool:
        return self.namespace and self.link and self.pid is not None and self.answering


class NetnsBackend:
    """The namespace, its veth pair and the HTTP server inside; all state is on disk."""

    def __init__(self, *, state_dir: Path | None = None, layout: NetnsLayout | None = None) -> None:
        self.layout = layout or NetnsLayout()
        self.state_dir = state_dir or default_state_dir()
        self.namespace = self.layout.namespace
        self.pid_file = self.state_dir / "pid"
        self.log_file = self.state_dir / "log"
        self.listen_file = self.state_dir / "listen.json"

    # -- state -----------------------------------------------------------------------------

    def namespace_exists(self) -> bool:
        out = _ip("netns", "list", check=False)
        return any(line.split(" ", 1)[0] == self.namespace for line in out.splitlines())

    def _link_ready(self) -> bool:
        if not self.namespace_exists():
            return False
        host = _ip("-o", "-4", "addr", "show", "dev", self.layout.host_if, check=False)
        inner = _ip(
            "-o", "-4", "addr", "show", "dev", self.layout.ns_if, netns=self.namespace, check=False
        )
        return (
            f"{self.layout.host_ip}/{PREFIX_LEN}" in host
            and f"{self.layout.backend_ip}/{PREFIX_LEN}" in inner
        )

    def server_pid(self) -> int | None:
        """The recorded server pid, if that process is alive and is our server."""
        try:
            pid = int(self.pid_file.read_text().strip())
        except (OSError, ValueError):
            return None
        if pid_alive(pid) and "scripts.netns_backend" in cmdline(pid):
            return pid
        return None

    def listeners(self) -> tuple[Listener, ...]:
        try:
            raw = json.loads(self.listen_file.read_text())
        except (OSError, ValueError):
            return ()
        return tuple(Listener(str(n), int(p)) for n, p in raw)

    def status(self) -> BackendStatus:
        pid = self.server_pid()
        listeners = self.listeners() if pid is not None else ()
        answering = bool(listeners) and all(
            _answers(self.layout.backend_ip, lst.port, lst.name) for lst in listeners
        )
        return BackendStatus(
            namespace=self.namespace_exists(),
            link=self._link_ready(),
            pid=pid,
            listeners=listeners,
            answering=answering,
        )

    # -- up / down -------------------------------------------------------------------------

    def up(self, listeners: Sequence[Listener] = (), *, timeout_s: float = 10.0) -> BackendStatus:
        wanted = tuple(listeners) or tuple(Listener(n, p) for n, p in DEFAULT_LISTEN)
        made = self._ensure_link()
        pid = self.server_pid()
        # A server recorded before the namespace was made anew lives in the old one (deleted
        # under it, e.g. by another state dir's `down`): unreachable, so it is replaced.
        if pid is not None and (made or self.listeners() != wanted):
            self._stop_server(pid)
            pid = None
        if pid is None:
            pid = self._start_server(wanted)
        deadline = time.monotonic() + timeout_s
        while not all(_answers(self.layout.backend_ip, lst.port, lst.name) for lst in wanted):
            # Liveness of the pid itself: its cmdline reads empty while `ip netns exec` execs
            # the server, so server_pid() could call a starting server gone.
            if not pid_alive(pid):
                raise BackendError(f"backend server exited; log:\n{self._log_tail()}")
            if time.monotonic() > deadline:
                raise BackendError(f"backend not answering in {timeout_s}s:\n{self._log_tail()}")
            time.sleep(0.05)
        return self.status()

    def down(self) -> None:
        pid = self.server_pid()
        if pid is not None:
            self._stop_server(pid)
        self.pid_file.unlink(missing_ok=True)
        if self.namespace_exists():
            _ip("netns", "del", self.namespace)
        # Deleting the namespace destroys its veth end and with it the peer; a pair left
        # behind by an interrupted `up` (namespace never made) goes here.
        if _ip("link", "show", self.layout.host_if, check=False):
            _ip("link", "del", self.layout.host_if, check=False)
        # The kernel tears the pair down asynchronously; a quick `up` after this must not find
        # the dying host end and skip making a new pair.
        deadline = time.monotonic() + 5
        while _ip("link", "show", self.layout.host_if, check=False) and time.monotonic() < deadline:
            time.sleep(0.05)

    def _ensure_link(self) -> bool:
        """Make the namespace and veth pair unless they are up; True if the namespace was
        made here."""
        if os.geteuid() != 0:
            raise BackendError("network namespaces need root")
        if self._link_ready():
            return False
        made = not self.namespace_exists()
        if made:
            _ip("netns", "add", self.namespace)
        if not _ip("link", "show", self.layout.host_if, check=False):
            _ip(
                "link",
                "add",
                self.layout.host_if,
                "type",
                "veth",
                "peer",
                "name",
                self.layout.ns_if,
            )
        if _ip("link", "show", self.layout.ns_if, check=False):  # still in the root namespace
            _ip("link", "set", self.layout.ns_if, "netns", self.namespace)
        _ip("addr", "replace", f"{self.layout.host_ip}/{PREFIX_LEN}", "dev", self.layout.host_if)
        _ip("link", "set", self.layout.host_if, "up")
        _ip(
            "addr",
            "replace",
            f"{self.layout.backend_ip}/{PREFIX_LEN}",
            "dev",
            self.layout.ns_if,
            netns=self.namespace,
        )
        _ip("link", "set", self.layout.ns_if, "up", netns=self.namespace)
        _ip("link", "set", "lo", "up", netns=self.namespace)
        if not self._link_ready():
            raise BackendError(f"veth {self.layout.host_if}<->{self.layout.ns_if} did not come up")
        return made

    def _start_server(self, listeners: Sequence[Listener]) -> int:
        self.state_dir.mkdir(parents=True, exist_ok=True)
        cmd = [
            "ip",
            "netns",
            "exec",
            self.namespace,
            sys.executable,
            "-m",
            "scripts.netns_backend",
            "serve",
            "--bind",
            self.layout.backend_ip,
            *(arg for lst in listeners for arg in ("--listen", str(lst))),
        ]
        with self.log_file.open("ab") as log:
            log.write(f"\n==== {time.strftime('%FT%T%z')} start: {' '.join(cmd)}\n".encode())
            log.flush()
            # `ip netns exec` execs the command: the pid is the server's own.
            proc = subprocess.Popen(
                cmd,
                cwd=REPO_DIR,
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )
        self.pid_file.write_text(f"{proc.pid}\n")
        self.listen_file.write_text(json.dumps([[lst.name, lst.port] for lst in listeners]))
        return proc.pid

    def _stop_server(self, pid: int, *, timeout_s: float = 10.0) -> None:
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signal.SIGTERM)
        deadline = time.monotonic() + timeout_s
        while pid_alive(pid) and time.monotonic() < deadline:
            time.sleep(0.05)
        if pid_alive(pid):
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)
        self.pid_file.unlink(missing_ok=True)

    def _log_tail(self, lines: int = 20) -> str:
        try:
            return "\n".join(self.log_file.read_text(errors="replace").splitlines()[-lines:])
        except OSError:
            return "(no log)"


def _answers(host: str, port: int, name: str) -> bool:
    """The server on host:port answers GET / with its name."""
    try:
        with socket.create_connection((host, port), timeout=1) as sock:
            sock.sendall(b"GET / HTTP/1.0\r\nHost: probe\r\n\r\n")
            data = b""
            while chunk := sock.recv(4096):
                data += chunk
    except OSError:
        return False
    return data.startswith(b"HTTP/1.") and f"backend={name} ".encode() in data


# -- the server (runs inside the namespace) -------------------------------------------------


def body_for(name: str, host: str, path: str) -> bytes:
    return f"backend={name} host={host} path={path}\n".encode()


def _handler(name: str) -> type[http.server.BaseHTTPRequestHandler]:
    class Handler(http.server.BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"
        server_version = "ripple-test-backend"
        # Headers and body go out in two writes: with Nagle on, the body waits for the
        # proxy's delayed ACK (40 ms) and every answer looks 40 ms slow.
        disable_nagle_algorithm = True

        def _answer(self, *, head_only: bool) -> None:
            body = body_for(name, self.headers.get("Host", ""), self.path)
            self.send_response(200)
            self.send_header("Content-Type", "text/plain; charset=utf-8")
            self.send_header("Content-Length", str(len(body)))
            self.send_header("X-Backend", name)
            self.end_headers()
            if not head_only:
                self.wfile.write(body)

        def do_GET(self) -> None:
            self._answer(head_only=False)

        def do_HEAD(self) -> None:
            self._answer(head_only=True)

        def log_message(self, format: str, *args: object) -> None:
            pass  # one line per request would flood the log under a prober

    return Handler


def _bind(
    bind: str, listener: Listener, *, timeout_s: float = 10.0
) -> http.server.ThreadingHTTPServer:
    """Bind, retrying while the namespace's address is not assignable yet (a veth pair that
    was just made, or one still being torn down by an earlier `down`)."""
    deadline = time.monotonic() + timeout_s
    while True:
        try:
            return http.server.ThreadingHTTPServer((bind, listener.port), _handler(listener.name))
        except OSError as exc:
            if exc.errno != errno.EADDRNOTAVAIL or time.monotonic() > deadline:
                raise
            time.sleep(0.1)


def serve(bind: str, listeners: Sequence[Listener]) -> int:
    servers = [_bind(bind, lst) for lst in listeners]
    for server in servers:
        server.daemon_threads = True
    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    signal.signal(signal.SIGINT, lambda *_: stop.set())
    threads = [threading.Thread(target=s.serve_forever, daemon=True) for s in servers]
    for thread in threads:
        thread.start()
    print(f"serving {', '.join(map(str, listeners))} on {bind}", flush=True)
    stop.wait()
    for server in servers:
        server.shutdown()
        server.server_close()
    print("stopped", flush=True)
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m scripts.netns_backend", description=__doc__)
    sub = parser.add_subparsers(dest="command", required=True)
    up = sub.add_parser("up", help="create the namespace and veth pair, start the server")
    up.add_argument(
        "--listen", type=Listener.parse, action="append", default=[], help="NAME=PORT (repeat)"
    )
    sub.add_parser("down", help="stop the server by pid, delete the namespace")
    sub.add_parser("status", help="show the namespace, link and server")
    srv = sub.add_parser("serve", help="(inside the namespace) run the HTTP server")
    srv.add_argument("--bind", default=BACKEND_IP)
    srv.add_argument("--listen", type=Listener.parse, action="append", required=True)
    args = parser.parse_args(argv)

    if args.command == "serve":
        return serve(args.bind, args.listen)
    backend = NetnsBackend()
    try:
        if args.command == "up":
            st = backend.up(args.listen)
            print(
                f"backend up: {NAMESPACE} {HOST_IF} {HOST_IP}/{PREFIX_LEN} <-> {NS_IF} "
                f"{BACKEND_IP}/{PREFIX_LEN}, pid {st.pid}, "
                + ", ".join(f"{lst.name} on {BACKEND_IP}:{lst.port}" for lst in st.listeners)
            )
        elif args.command == "down":
            backend.down()
            print(f"backend down: namespace {NAMESPACE} removed")
        else:
            st = backend.status()
            print(
                f"namespace={'yes' if st.namespace else 'no'} link={'up' if st.link else 'down'} "
                f"pid={st.pid or '-'} answering={'yes' if st.answering else 'no'} "
                f"listeners={','.join(map(str, st.listeners)) or '-'}"
            )
            return 0 if st.up else 1
    except BackendError as exc:
        print(f"netns_backend: {exc}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
