"""The emulator HTTP server: every provider app on one port, under ``/{name}``.

A client whose ``base_url`` is ``Emulator.base_url(name)`` talks to the real paths,
e.g. ``http://127.0.0.1:PORT/tcpa_authority/v1.5/Data/TCPAAuthority``. Each
request goes: arrival stamp -> rolling-window limiter (429, not counted, not
charged, no latency) -> API key (401 / 403 not authorised / 403 insufficient
credits) -> queued then random faults (never charged) -> validation (400) ->
answer (200, charged). Every response but a limiter 429 is sent ``latency_ms``
(± jitter) after arrival. A success is charged when it is answered, so a client
that gave up during the latency has still paid, as with a real provider.

Admin (no auth, keys only ever as labels): ``GET /_admin/state[/{provider}]``,
``POST /_admin/reset``, ``POST /_admin/knobs/{provider}`` (JSON object of knobs),
``POST /_admin/faults/{provider}`` (JSON list of faults).
"""

from __future__ import annotations

import contextlib
import json
import socket
import socketserver
import sys
import threading
import time
import traceback
from collections.abc import Callable
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from types import TracebackType
from typing import Any
from urllib.parse import parse_qsl, urlsplit

from pipeline.emulators.checkthatphone import CheckThatPhoneApp
from pipeline.emulators.phone_enrichment import PhoneEnrichmentApp
from pipeline.emulators.state import (
    Fault,
    ProviderApp,
    ProviderKnobs,
    ProviderState,
    Request,
    Response,
    check_fault,
)
from pipeline.emulators.tcpa_authority import TcpaAuthorityApp
from pipeline.emulators.tdg_id_verify import TdgIdVerifyApp
from pipeline.emulators.tdg_reverse_phone import TdgReversePhoneApp

APPS: dict[str, Callable[[], ProviderApp]] = {
    TcpaAuthorityApp.name: TcpaAuthorityApp,
    CheckThatPhoneApp.name: CheckThatPhoneApp,
    PhoneEnrichmentApp.name: PhoneEnrichmentApp,
    TdgReversePhoneApp.name: TdgReversePhoneApp,
    TdgIdVerifyApp.name: TdgIdVerifyApp,
}
"""Registry: provider name -> app factory. New providers register here."""
MAX_BODY = 64 * 1024 * 1024


@dataclass
class _Provider:
    app: ProviderApp
    state: ProviderState


def _says_retry_after(app: ProviderApp, knobs: ProviderKnobs) -> bool:
    return app.retry_after if knobs.retry_after_header is None else knobs.retry_after_header


def _json(status: int, value: Any) -> Response:
    return Response(status, json.dumps(value).encode())


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    block_on_close = False  # stop() closes connections itself and waits briefly
    request_queue_size = 512
    allow_reuse_address = True
    emulator: Emulator

    def server_bind(self) -> None:  # skip HTTPServer's slow getfqdn()
        socketserver.TCPServer.server_bind(self)
        self.server_name, self.server_port = "127.0.0.1", self.server_address[1]

    def handle_error(self, request: Any, client_address: Any) -> None:
        if not isinstance(sys.exc_info()[1], OSError):  # dropped connections are normal
            super().handle_error(request, client_address)


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server_version = "phone-enrich-emulator"
    disable_nagle_algorithm = True
    server: _Server

    def setup(self) -> None:
        super().setup()
        self.server.emulator._track(self.connection, add=True)

    def finish(self) -> None:
        try:
            super().finish()
        finally:
            self.server.emulator._track(self.connection, add=False)

    def log_message(self, format: str, *args: Any) -> None:
        pass

    def do_GET(self) -> None:
        self._dispatch()

    do_POST = do_PUT = do_PATCH = do_DELETE = do_GET

    def _body(self) -> bytes | Response:
        if self.headers.get("Transfer-Encoding", "").lower() == "chunked":
            chunks = []
            while size := int(self.rfile.readline().split(b";")[0].strip() or b"0", 16):
                chunks.append(self.rfile.read(size))
                self.rfile.readline()
            while self.rfile.readline().strip():
                pass  # trailers
            return b"".join(chunks)
        length = self.headers.get("Content-Length") or "0"
        if not length.isdigit():
            return _json(400, {"error": f"bad Content-Length {length!r}"})
        if int(length) > MAX_BODY:
            return _json(413, {"error": "request body too large"})
        return self.rfile.read(int(length))

    def _dispatch(self) -> None:
        emulator = self.server.emulator
        arrived, mono = time.time(), time.monotonic()
        url = urlsplit(self.path)
        body = self._body()
        if isinstance(body, Response):
            self.close_connection = True
            self._send(body)
            return
        if url.path.startswith("/_admin/") or url.path == "/_admin":
            self._send(emulator._admin(self.command, url.path, body))
            return
        name, _, rest = url.path.lstrip("/").partition("/")
        provider = emulator._providers.get(name)
        base = provider.app.base_path if provider else ""
        if provider is None or not ("/" + rest).startswith(base + "/"):
            self._send(_json(404, {"error": f"no emulated provider at {url.path}"}))
            return
        headers = {k.lower(): v for k, v in self.headers.items()}
        query = dict(parse_qsl(url.query, keep_blank_values=True))
        request = Request(self.command, "/" + rest[len(base) :], query, headers, body)
        entry: dict[str, Any] = {
            "arrived": arrived,
            "arrived_mono": mono,
            "responded_mono": None,
            "method": self.command,
            "path": url.path,
            "status": None,
            "numbers": 0,
            "credits": 0,
            "request_id": headers.get("x-request-id"),
            "key": None,
            "sandbox": False,
            "fault": None,
            "accepted": False,
        }
        try:
            try:
                response = self._answer(provider, request, entry)
            except Exception as exc:  # a bug in an app: say so, keep serving
                traceback.print_exc()
                response = _json(500, {"error": f"emulator bug: {exc!r}"})
            if response is not None:
                entry["status"] = response.status
                self._wait_until(mono + (provider.state.delay_s() if entry["accepted"] else 0.0))
        finally:  # logged before it is sent: whoever has the answer sees it in the state
            entry["responded_mono"] = time.monotonic()
            provider.state.record(entry)
        if response is not None:
            self._send(response)

    def _answer(
        self, provider: _Provider, request: Request, entry: dict[str, Any]
    ) -> Response | None:
        app, state = provider.app, provider.state
        retry = state.admit(entry["arrived_mono"])
        if retry is not None:
            limit, window = state.knobs.rate_limit, state.knobs.rate_window_s
            response = app.error(429, f"rate limit: {limit} requests per {window:g} s")
            if _says_retry_after(app, state.knobs):
                response.headers["Retry-After"] = str(retry)
            return response
        entry["accepted"] = True
        prepared = app.prepare(request)
        entry["numbers"], entry["sandbox"] = prepared.numbers, prepared.sandbox
        key = app.api_key(request.headers)
        entry["key"] = state.label(key) if key is not None else None
        cost = app.cost(prepared, state.knobs)
        denial = state.reserve(key, cost)
        if denial is not None:
            return app.error(*denial)
        assert key is not None
        charged = 0
        try:
            fault = state.next_fault()
            entry["fault"] = None if fault is None else str(fault)
            if fault == "timeout":
                self._hang(state.knobs.hang_s)
                return None
            if fault == "malformed":
                whole = prepared.error or app.respond(prepared)
                return Response(200, whole.body[: max(1, len(whole.body) // 2)])
            if isinstance(fault, int):
                response = app.error(fault, f"emulated fault {fault}")
                if fault == 429 and _says_retry_after(app, state.knobs):
                    response.headers["Retry-After"] = "1"
                return response
            if prepared.error is not None:
                return prepared.error
            response = app.respond(prepared)
            charged = app.charge(prepared, response, state.knobs)
            entry["credits"] = charged
            return response
        finally:
            state.settle(key, cost, charged)

    def _hang(self, seconds: float) -> None:
        """A timeout fault: say nothing for ``seconds``, then drop the connection."""
        self.server.emulator._stopping.wait(seconds)
        self.close_connection = True

    def _wait_until(self, deadline: float) -> None:
        delay = deadline - time.monotonic()
        if delay > 0:
            self.server.emulator._stopping.wait(delay)

    def _send(self, response: Response) -> None:
        body = response.body
        reason = self.responses.get(response.status, ("Error",))[0]
        lines = [
            f"HTTP/1.1 {response.status} {reason}",
            f"Server: {self.server_version}",
            f"Content-Type: {response.content_type}",
            f"Content-Length: {len(body)}",
            *(f"{name}: {value}" for name, value in response.headers.items()),
        ]
        if self.close_connection:
            lines.append("Connection: close")
        self.wfile.write(("\r\n".join(lines) + "\r\n\r\n").encode("latin-1") + body)


class Emulator:
    """Every emulated provider on one local port, served from a background thread."""

    def __init__(self, knobs: dict[str, ProviderKnobs] | None = None, port: int = 0) -> None:
        knobs = knobs or {}
        unknown = sorted(set(knobs) - set(APPS))
        if unknown:
            raise ValueError(f"unknown provider(s) {unknown}; known: {sorted(APPS)}")
        self._providers = {
            name: _Provider(make(), ProviderState(knobs.get(name) or ProviderKnobs()))
            for name, make in APPS.items()
        }
        self._port = port
        self._server: _Server | None = None
        self._thread: threading.Thread | None = None
        self._stopping = threading.Event()
        self._connections: set[socket.socket] = set()
        self._connections_lock = threading.Lock()

    # lifecycle ---------------------------------------------------------------------------

    def start(self) -> Emulator:
        if self._server is not None:
            return self
        self._stopping.clear()
        server = _Server(("127.0.0.1", self._port), _Handler)
        server.emulator = self
        self._server = server
        self._thread = threading.Thread(
            target=server.serve_forever, kwargs={"poll_interval": 0.02}, daemon=True,
            name=f"emulator:{server.server_port}",
        )  # fmt: skip
        self._thread.start()
        return self

    def stop(self) -> None:
        server, thread = self._server, self._thread
        if server is None or thread is None:
            return
        server.shutdown()
        self._stopping.set()
        with self._connections_lock:
            open_now = list(self._connections)
        for connection in open_now:
            with contextlib.suppress(OSError):
                connection.shutdown(socket.SHUT_RDWR)
        deadline = time.monotonic() + 1.0
        while self._connections and time.monotonic() < deadline:
            time.sleep(0.002)
        server.server_close()
        thread.join(1.0)
        self._server = self._thread = None

    def __enter__(self) -> Emulator:
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()

    def _track(self, connection: socket.socket, *, add: bool) -> None:
        with self._connections_lock:
            if add:
                self._connections.add(connection)
            else:
                self._connections.discard(connection)

    # addresses ---------------------------------------------------------------------------

    @property
    def port(self) -> int:
        if self._server is None:
            raise RuntimeError("the emulator is not running: call start() first")
        return self._server.server_port

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def providers(self) -> list[str]:
        return list(self._providers)

    def base_url(self, provider: str) -> str:
        return f"{self.url}/{provider}{self._provider(provider).app.base_path}"

    # control -----------------------------------------------------------------------------

    def _provider(self, name: str) -> _Provider:
        try:
            return self._providers[name]
        except KeyError:
            raise KeyError(f"unknown provider {name!r}; known: {sorted(self._providers)}") from None

    def state(self, provider: str) -> dict[str, Any]:
        return self._provider(provider).state.snapshot()

    def states(self) -> dict[str, Any]:
        return {"providers": {name: p.state.snapshot() for name, p in self._providers.items()}}

    def set_knobs(self, provider: str, **fields: Any) -> None:
        self._provider(provider).state.set_knobs(**fields)

    def queue_faults(self, provider: str, faults: list[Fault]) -> None:
        self._provider(provider).state.queue_faults(faults)

    def reset(self) -> None:
        for provider in self._providers.values():
            provider.state.reset()

    def _admin(self, method: str, path: str, body: bytes) -> Response:
        parts = path.strip("/").split("/")[1:]
        action, name = [*parts, "", ""][:2]
        if name and name not in self._providers:
            return _json(404, {"error": f"unknown provider {name!r}"})
        try:
            if method == "GET" and action == "state" and len(parts) <= 2:
                return _json(200, self.state(name) if name else self.states())
            if method == "POST" and action == "reset" and not name:
                self.reset()
                return _json(200, {"ok": True})
            if method == "POST" and action in ("knobs", "faults") and name:
                value = json.loads(body or b"null")
                if action == "knobs":
                    if not isinstance(value, dict):
                        raise ValueError("expected a JSON object of knob -> value")
                    self.set_knobs(name, **value)
                else:
                    if not isinstance(value, list):
                        raise ValueError("expected a JSON list of faults")
                    self.queue_faults(name, [check_fault(f) for f in value])
                return _json(200, {"ok": True})
        except (ValueError, TypeError) as exc:  # includes JSON errors
            return _json(400, {"error": str(exc)})
        return _json(404, {"error": f"no admin endpoint {method} {path}"})
