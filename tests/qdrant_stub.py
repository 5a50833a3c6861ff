"""A stand-in for Qdrant's HTTP API (Qdrant is not installable here): only the endpoints the job calls.

Collections are opaque byte strings; a snapshot is a copy of those bytes, and uploading a snapshot
replaces the collection with it. Requests without the right `api-key` header get 403.
"""
from __future__ import annotations

import contextlib
import hashlib
import json
import re
import threading
from collections.abc import Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import unquote, urlparse


@dataclass
class QdrantState:
    api_key: str
    collections: dict[str, bytes] = field(default_factory=dict)
    snapshots: dict[tuple[str, str], bytes] = field(default_factory=dict)
    calls: list[str] = field(default_factory=list)


def _handler(state: QdrantState) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        def log_message(self, *args: object) -> None:
            pass

        def _send(self, code: int, body: bytes, ctype: str = "application/json") -> None:
            self.send_response(code)
            self.send_header("Content-Type", ctype)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def _ok(self, result: object) -> None:
            self._send(200, json.dumps({"result": result, "status": "ok", "time": 0.001}).encode())

        def _route(self, method: str) -> None:
            path = urlparse(self.path).path
            state.calls.append(f"{method} {path}")
            if self.headers.get("api-key") != state.api_key:
                return self._send(403, b'{"status":{"error":"forbidden"}}')
            parts = [unquote(p) for p in path.strip("/").split("/")]
            if method == "GET" and parts == ["collections"]:
                return self._ok({"collections": [{"name": n} for n in state.collections]})
            if len(parts) < 3 or parts[0] != "collections" or parts[2] != "snapshots":
                return self._send(404, b'{"status":{"error":"not found"}}')
            name = parts[1]
            if method == "POST" and len(parts) == 4 and parts[3] == "upload":
                body = self.rfile.read(int(self.headers["Content-Length"]))
                boundary = re.search(r"boundary=(\S+)", self.headers["Content-Type"]).group(1).encode()
                part = body.split(b"--" + boundary)[1]
                state.collections[name] = part.split(b"\r\n\r\n", 1)[1].removesuffix(b"\r\n")
                return self._ok(True)
            if name not in state.collections:
                return self._send(404, b'{"status":{"error":"no such collection"}}')
            if method == "POST" and len(parts) == 3:
                snap = f"{name}-{len(state.snapshots)}.snapshot"
                data = state.collections[name]
                state.snapshots[(name, snap)] = data
                return self._ok({"name": snap, "size": len(data), "checksum": hashlib.sha256(data).hexdigest()})
            if len(parts) == 4 and (name, parts[3]) in state.snapshots:
                if method == "GET":
                    return self._send(200, state.snapshots[(name, parts[3])], "application/octet-stream")
                if method == "DELETE":
                    del state.snapshots[(name, parts[3])]
                    return self._ok(True)
            return self._send(404, b'{"status":{"error":"not found"}}')

        def do_GET(self) -> None:
            self._route("GET")

        def do_POST(self) -> None:
            self._route("POST")

        def do_DELETE(self) -> None:
            self._route("DELETE")

    return Handler


@contextlib.contextmanager
def qdrant_stub(api_key: str = "test-qdrant-key") -> Iterator[tuple[str, QdrantState]]:
    """Yields (url, state) of a stub on 127.0.0.1; always shut down."""
    state = QdrantState(api_key)
    server = ThreadingHTTPServer(("127.0.0.1", 0), _handler(state))
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}", state
    finally:
        server.shutdown()
        server.server_close()
        thread.join()


def main() -> None:
    """`python -m tests.qdrant_stub --port P`: the stub as a server process, key from Qdrant's own env name."""
    import argparse
    import os
    parser = argparse.ArgumentParser()
    parser.add_argument("--host", default="0.0.0.0")
    parser.add_argument("--port", type=int, default=6333)
    args = parser.parse_args()
    state = QdrantState(os.environ["QDRANT__SERVICE__API_KEY"])
    server = ThreadingHTTPServer((args.host, args.port), _handler(state))
    if os.environ.get("QDRANT__SERVICE__ENABLE_TLS", "").lower() in ("true", "1"):
        # Qdrant's own settings: HTTPS with QDRANT__TLS__CERT and QDRANT__TLS__KEY.
        import ssl
        context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        context.load_cert_chain(os.environ["QDRANT__TLS__CERT"], os.environ["QDRANT__TLS__KEY"])
        server.socket = context.wrap_socket(server.socket, server_side=True)
    server.serve_forever()


if __name__ == "__main__":
    main()
