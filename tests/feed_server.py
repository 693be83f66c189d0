"""A small threaded HTTP server on 127.0.0.1 (port 0) for feed tests; it stops when its context manager exits.

Each path gets a `Route`: a response recipe (body, content type and charset, ETag / Last-Modified with 304s,
redirects, delays, N failures before success, gzip/deflate, dropped connections, bodies without a length).
Every request is recorded (path and headers) so tests can check what the client sent.
"""
from __future__ import annotations

import gzip
import http.server
import threading
import zlib
from dataclasses import dataclass, field
from pathlib import Path


@dataclass
class Route:
    body: bytes = b""
    status: int = 200
    content_type: str = "application/rss+xml"
    charset: str | None = None
    etag: str | None = None  # a matching If-None-Match gets a 304
    last_modified: str | None = None  # an equal If-Modified-Since gets a 304
    redirect_to: str | None = None  # a path or URL; answered with `status` (use 301/302/307/308)
    delay: float = 0.0  # seconds before answering (cut short when the server stops)
    fail_times: int = 0  # answer `fail_status` this many times first
    fail_status: int = 500
    encoding: str | None = None  # "gzip" or "deflate": the body is sent compressed
    precompressed: bool = False  # body is already encoded with `encoding` (e.g. a gzip bomb)
    send_length: bool = True  # False: no Content-Length, the body ends when the connection closes
    drop: str | None = None  # "before": close without a response; "mid-body": close halfway through the body;
    # "mid-headers": the status line and part of a header, then close
    drip: str | None = None  # "headers" or "body": one byte every drip_interval s, for at most drip_for s
    drip_interval: float = 0.2
    drip_for: float = 60.0
    dripped_all: bool = False  # set once a drip ran its whole drip_for (the client never gave up)
    arrived: threading.Event | None = None  # set when a request for this route arrives
    wait_for: threading.Event | None = None  # answer only once this is set (at most 60 s), e.g. another route's
    # `arrived`: two routes waiting for each other are answered only if they are requested concurrently
    headers: dict[str, str] = field(default_factory=dict)
    hits: int = 0


@dataclass
class Seen:
    path: str
    headers: dict[str, str]


class _Handler(http.server.BaseHTTPRequestHandler):
    server: "_Server"

    def log_message(self, *args) -> None:  # keep test output clean
        pass

    def do_GET(self) -> None:
        owner = self.server.owner
        with owner.lock:
            owner.seen.append(Seen(self.path, {k.lower(): v for k, v in self.headers.items()}))
            route = owner.routes.get(self.path.split("?", 1)[0])
            if route is not None:
                route.hits += 1
        try:
            self._answer(route, owner)
        except (BrokenPipeError, ConnectionResetError, ConnectionAbortedError):
            pass  # the client gave up (timeouts are part of the tests)

    def _answer(self, route: Route | None, owner: "FeedServer") -> None:
        if route is None:
            return self._send(404, b"not found", {"Content-Type": "text/plain"})
        if route.arrived is not None:
            route.arrived.set()
        if route.wait_for is not None and not route.wait_for.wait(60):
            return
        if route.drip:
            return self._drip(route, owner)
        if route.drop == "mid-headers":
            self.wfile.write(b"HTTP/1.1 200 OK\r\nContent-Type: application/rss+xml\r\nContent-Le")
            return
        if route.delay and owner.stopping.wait(route.delay):
            return
        if route.drop == "before":
            return  # the server closes the socket: the client sees the connection drop
        if route.hits <= route.fail_times:
            return self._send(route.fail_status, b"temporary failure", {"Content-Type": "text/plain", **route.headers})
        if route.redirect_to:
            status = route.status if 300 <= route.status < 400 else 302
            return self._send(status, b"", {"Location": route.redirect_to})
        if self._not_modified(route):
            return self._send(304, b"", self._validators(route), body_allowed=False)
        self._send(route.status, *self._body(route))

    def _drip(self, route: Route, owner: "FeedServer") -> None:
        """A server that keeps the connection alive with one byte at a time: every read is quick, the whole
        response never ends (until drip_for passes or the server stops)."""
        body = route.body or b"<rss>" + b" " * 100_000 + b"</rss>"
        if route.drip == "headers":
            head, rest = b"HTTP/1.1 200 OK\r\n", b"X-Drip: " + b"a" * 100_000 + b"\r\n\r\n" + body
        else:
            head = (b"HTTP/1.1 200 OK\r\nContent-Type: application/rss+xml\r\nContent-Length: "
                    + str(len(body)).encode() + b"\r\nConnection: close\r\n\r\n")
            rest = body
        self.wfile.write(head)
        self.wfile.flush()
        for i in range(int(route.drip_for / route.drip_interval)):
            if owner.stopping.wait(route.drip_interval):
                return
            self.wfile.write(rest[i:i + 1])
            self.wfile.flush()
        route.dripped_all = True

    def _not_modified(self, route: Route) -> bool:
        inm, ims = self.headers.get("If-None-Match"), self.headers.get("If-Modified-Since")
        if route.etag and inm is not None:
            return route.etag in [t.strip() for t in inm.split(",")]
        return bool(route.last_modified and ims == route.last_modified)

    @staticmethod
    def _validators(route: Route) -> dict[str, str]:
        out = {}
        if route.etag:
            out["ETag"] = route.etag
        if route.last_modified:
            out["Last-Modified"] = route.last_modified
        return out

    @staticmethod
    def _body(route: Route) -> tuple[bytes, dict[str, str]]:
        ctype = route.content_type + (f"; charset={route.charset}" if route.charset else "")
        headers = {"Content-Type": ctype, **_Handler._validators(route), **route.headers}
        body = route.body
        if route.encoding:
            headers["Content-Encoding"] = route.encoding
            if not route.precompressed:
                body = gzip.compress(body) if route.encoding == "gzip" else zlib.compress(body)
        return body, headers

    def _send(self, status: int, body: bytes, headers: dict[str, str], body_allowed: bool = True) -> None:
        route = self.server.owner.routes.get(self.path.split("?", 1)[0])
        self.send_response(status)
        for k, v in headers.items():
            self.send_header(k, v)
        if body_allowed and (route is None or route.send_length):
            self.send_header("Content-Length", str(len(body)))
        self.send_header("Connection", "close")
        self.end_headers()
        if route is not None and route.drop == "mid-body":
            self.wfile.write(body[: len(body) // 2])
            self.wfile.flush()
            return
        if body_allowed:
            self.wfile.write(body)


class _Server(http.server.ThreadingHTTPServer):
    daemon_threads = True
    owner: "FeedServer"

    def handle_error(self, request, client_address) -> None:  # a client hanging up is not a test failure
        pass


class FeedServer:
    """`with FeedServer() as srv: url = srv.add("/feed.xml", Route(body=...))` serves until the block ends."""

    def __init__(self) -> None:
        self.routes: dict[str, Route] = {}
        self.seen: list[Seen] = []
        self.lock = threading.Lock()
        self.stopping = threading.Event()
        self._httpd: _Server | None = None
        self._thread: threading.Thread | None = None

    def __enter__(self) -> "FeedServer":
        self._httpd = _Server(("127.0.0.1", 0), _Handler)
        self._httpd.owner = self
        self._thread = threading.Thread(target=self._httpd.serve_forever, kwargs={"poll_interval": 0.05},
                                        name="feed-server", daemon=True)
        self._thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self.stopping.set()  # wakes slow handlers
        assert self._httpd is not None and self._thread is not None
        self._httpd.shutdown()
        self._httpd.server_close()
        self._thread.join(timeout=5)

    @property
    def base(self) -> str:
        assert self._httpd is not None, "use FeedServer as a context manager"
        return f"http://127.0.0.1:{self._httpd.server_port}"

    def url(self, path: str) -> str:
        return self.base + path

    def add(self, path: str, route: Route) -> str:
        """Serve `route` at `path`; returns its absolute URL."""
        with self.lock:
            self.routes[path] = route
        return self.url(path)

    def add_file(self, path: str, file: Path, **kw) -> str:
        """Serve a file's bytes as they are (read in place)."""
        return self.add(path, Route(body=Path(file).read_bytes(), **kw))

    def add_redirect_chain(self, prefix: str, hops: int, final: str, status: int = 302) -> str:
        """`hops` redirects `prefix/0 -> prefix/1 -> ... -> final`; returns the first URL."""
        for i in range(hops):
            target = f"{prefix}/{i + 1}" if i + 1 < hops else final
            self.add(f"{prefix}/{i}", Route(status=status, redirect_to=target))
        return self.url(f"{prefix}/0")

    def requests_to(self, path: str) -> list[Seen]:
        with self.lock:
            return [s for s in self.seen if s.path.split("?", 1)[0] == path]
