"""A stand-in Open WebUI replica for load balancer tests: `python stub_upstream.py NAME PORT [STATIC]`.

asyncio HTTP/1.1 on 127.0.0.1 with keep-alive. Every answer carries `X-Upstream: NAME`.
  GET  /health            200 ok
  GET  /_stats            {"requests": n, "connections": m} — seen so far, this request excluded
  *    /stream?key=K      chunked: "first\\n", then waits until /release?key=K (or 10 s), then
                          "last released\\n" or "last timeout\\n"
  *    /api/chat/completions?key=K  the same (where Open WebUI streams answers)
  GET  /release?key=K     lets the stream K finish
  *    /ws/socket.io      websocket (Upgrade): echoes each text message as "NAME:<message>"
  GET  /_app/…            the file under directory STATIC (as Open WebUI serves its build), else 404;
                          gzipped when the request accepts gzip (Open WebUI's CompressMiddleware)
  *    ?set_header=N:V    (any other path) the answer also carries header N: V
  *    anything else      JSON echo: upstream, method, path, headers, body_bytes
"""
from __future__ import annotations

import asyncio
import base64
import gzip
import hashlib
import json
import mimetypes
import struct
import sys
from pathlib import Path
from urllib.parse import parse_qs, urlsplit

_WS_GUID = b"258EAFA5-E914-47DA-95CA-C5AB0DC85B11"
# Only a bound: the streaming test releases the last chunk itself. Below its client's 30 s socket timeout,
# far above how long a loaded machine takes between reading the first chunk and asking for the release.
_RELEASE_WAIT_S = 25.0


class Stub:
    def __init__(self, name: str, static: Path | None = None) -> None:
        self.name = name
        self.static = static
        self.requests = 0
        self.connections = 0
        self.releases: dict[str, asyncio.Event] = {}

    def release_event(self, key: str) -> asyncio.Event:
        return self.releases.setdefault(key, asyncio.Event())

    async def handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.connections += 1
        try:
            while await self.one_request(reader, writer):
                pass
        except (asyncio.IncompleteReadError, ConnectionError, asyncio.LimitOverrunError):
            pass
        finally:
            writer.close()

    async def one_request(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> bool:
        head = await reader.readuntil(b"\r\n\r\n")
        request_line, *header_lines = head.decode("latin-1").split("\r\n")[:-2]
        method, target, _ = request_line.split(" ", 2)
        headers = {}
        for line in header_lines:
            key, _, value = line.partition(":")
            headers[key.strip().lower()] = value.strip()
        url = urlsplit(target)
        query = {k: v[0] for k, v in parse_qs(url.query).items()}
        if url.path != "/_stats":
            self.requests += 1

        if headers.get("upgrade", "").lower() == "websocket" and url.path.startswith("/ws/socket.io"):
            await self.websocket(reader, writer, headers)
            return False
        body_bytes = await read_body(reader, headers)
        keep_alive = headers.get("connection", "").lower() != "close"

        if url.path == "/health":
            self.respond(writer, b"ok\n", "text/plain")
        elif url.path == "/_stats":
            self.respond(writer, json.dumps({"requests": self.requests, "connections": self.connections}).encode(), "application/json")
        elif url.path == "/release":
            self.release_event(query["key"]).set()
            self.respond(writer, b"released\n", "text/plain")
        elif url.path in ("/stream", "/api/chat/completions"):
            await self.stream(writer, query["key"])
        elif self.static is not None and url.path.startswith("/_app/"):
            self.serve_file(writer, url.path, "gzip" in headers.get("accept-encoding", ""))
        else:
            echo = {"upstream": self.name, "method": method, "path": target,
                    "headers": headers, "body_bytes": body_bytes}
            extra = dict([query["set_header"].split(":", 1)]) if "set_header" in query else {}
            self.respond(writer, json.dumps(echo).encode(), "application/json", extra)
        await writer.drain()
        return keep_alive

    def respond(self, writer: asyncio.StreamWriter, body: bytes, content_type: str,
                extra: dict[str, str] | None = None, status: str = "200 OK") -> None:
        more = "".join(f"{k}: {v}\r\n" for k, v in (extra or {}).items())
        writer.write(
            f"HTTP/1.1 {status}\r\nContent-Type: {content_type}\r\nContent-Length: {len(body)}\r\n"
            f"X-Upstream: {self.name}\r\n{more}\r\n".encode() + body)

    def serve_file(self, writer: asyncio.StreamWriter, path: str, compress: bool) -> None:
        assert self.static is not None
        file = (self.static / path.lstrip("/")).resolve()
        if file.is_file() and file.is_relative_to(self.static.resolve()):
            kind = mimetypes.guess_type(file.name)[0] or "application/octet-stream"
            if compress:
                self.respond(writer, gzip.compress(file.read_bytes()), kind,
                             {"Content-Encoding": "gzip", "Vary": "Accept-Encoding"})
            else:
                self.respond(writer, file.read_bytes(), kind, {"Vary": "Accept-Encoding"})
        else:
            self.respond(writer, b"not found\n", "text/plain", status="404 Not Found")

    async def stream(self, writer: asyncio.StreamWriter, key: str) -> None:
        writer.write(f"HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nTransfer-Encoding: chunked\r\n"
                     f"X-Upstream: {self.name}\r\n\r\n".encode())
        writer.write(chunk(b"first\n"))
        await writer.drain()
        try:
            await asyncio.wait_for(self.release_event(key).wait(), _RELEASE_WAIT_S)
            last = b"last released\n"
        except TimeoutError:
            last = b"last timeout\n"
        writer.write(chunk(last) + chunk(b""))

    async def websocket(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter,
                        headers: dict[str, str]) -> None:
        accept = base64.b64encode(hashlib.sha1(headers["sec-websocket-key"].encode() + _WS_GUID).digest())
        writer.write(b"HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
                     b"Sec-WebSocket-Accept: " + accept + b"\r\n\r\n")
        while True:
            opcode, payload = await read_frame(reader)
            if opcode == 0x8:  # close: answer it and stop
                writer.write(frame(0x8, payload[:2]))
                await writer.drain()
                return
            if opcode == 0x9:
                writer.write(frame(0xA, payload))
            elif opcode == 0x1:
                writer.write(frame(0x1, f"{self.name}:".encode() + payload))
            await writer.drain()


async def read_body(reader: asyncio.StreamReader, headers: dict[str, str]) -> int:
    """Read and discard the request body; return its length."""
    if "content-length" in headers:
        remaining = int(headers["content-length"])
        total = remaining
        while remaining:
            data = await reader.read(min(remaining, 1 << 16))
            if not data:
                raise ConnectionError("client closed the connection mid-body")
            remaining -= len(data)
        return total
    if headers.get("transfer-encoding", "").lower() == "chunked":
        total = 0
        while size := int((await reader.readuntil(b"\r\n")).split(b";")[0], 16):
            await reader.readexactly(size + 2)
            total += size
        await reader.readuntil(b"\r\n")  # no trailers expected: the empty line after the last chunk
        return total
    return 0


def chunk(data: bytes) -> bytes:
    return f"{len(data):x}\r\n".encode() + data + b"\r\n"


async def read_frame(reader: asyncio.StreamReader) -> tuple[int, bytes]:
    first, second = await reader.readexactly(2)
    length = second & 0x7F
    if length == 126:
        (length,) = struct.unpack("!H", await reader.readexactly(2))
    elif length == 127:
        (length,) = struct.unpack("!Q", await reader.readexactly(8))
    mask = await reader.readexactly(4) if second & 0x80 else bytes(4)
    payload = await reader.readexactly(length)
    return first & 0x0F, bytes(b ^ mask[i % 4] for i, b in enumerate(payload))


def frame(opcode: int, payload: bytes) -> bytes:
    """An unmasked final frame, as servers send them."""
    if len(payload) < 126:
        header = struct.pack("!BB", 0x80 | opcode, len(payload))
    else:
        header = struct.pack("!BBH", 0x80 | opcode, 126, len(payload))
    return header + payload


async def serve(name: str, port: int, static: Path | None) -> None:
    stub = Stub(name, static)
    server = await asyncio.start_server(stub.handle, "127.0.0.1", port, backlog=1024)
    async with server:
        await server.serve_forever()


if __name__ == "__main__":
    asyncio.run(serve(sys.argv[1], int(sys.argv[2]), Path(sys.argv[3]) if len(sys.argv) > 3 else None))
