"""The few Qdrant HTTP endpoints the job needs: list collections, snapshot, download, upload."""
from __future__ import annotations

import hashlib
import json
import logging
import ssl
import urllib.error
import urllib.parse
import urllib.request
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

log = logging.getLogger("fleet_backup")
_CHUNK = 1024 * 1024


class QdrantError(Exception):
    pass


class Qdrant:
    def __init__(self, url: str, api_key: str | None, timeout: float = 600.0, ca_file: str | None = None) -> None:
        self.url = url.rstrip("/")
        self._headers = {"api-key": api_key} if api_key else {}
        self.timeout = timeout
        # https:// with the fleet's CA: that CA alone is trusted, and the server's name is checked.
        self._tls = ssl.create_default_context(cafile=ca_file) if ca_file else None

    def _request(self, method: str, path: str, data: Any = None,
                 headers: dict[str, str] | None = None) -> urllib.request.addinfourl:
        req = urllib.request.Request(self.url + path, data=data, method=method,
                                     headers={**self._headers, **(headers or {})})
        try:
            return urllib.request.urlopen(req, timeout=self.timeout, context=self._tls)
        except (urllib.error.URLError, OSError) as e:  # HTTPError is a URLError; no headers in the text
            raise QdrantError(f"Qdrant {method} {path} failed: {e}") from None

    def _json(self, method: str, path: str) -> Any:
        with self._request(method, path) as resp:
            return json.load(resp)["result"]

    def collections(self, prefixes: list[str]) -> list[str]:
        names = [c["name"] for c in self._json("GET", "/collections")["collections"]]
        return sorted(n for n in names if n.startswith(tuple(prefixes)))

    def snapshot(self, collection: str, dest: Path) -> None:
        """Create a snapshot, download it (checking Qdrant's own checksum when given), delete it."""
        c = urllib.parse.quote(collection, safe="")
        snap = self._json("POST", f"/collections/{c}/snapshots?wait=true")
        s = urllib.parse.quote(snap["name"], safe="")
        digest = hashlib.sha256()
        with self._request("GET", f"/collections/{c}/snapshots/{s}") as resp, dest.open("wb") as out:
            while chunk := resp.read(_CHUNK):
                out.write(chunk)
                digest.update(chunk)
        if snap.get("checksum") and snap["checksum"] != digest.hexdigest():
            raise QdrantError(f"snapshot {snap['name']} of {collection} does not match Qdrant's checksum")
        self._json("DELETE", f"/collections/{c}/snapshots/{s}")  # frees Qdrant's disk

    def restore(self, collection: str, snapshot: Path) -> None:
        """Upload a snapshot; Qdrant replaces the collection with it (priority=snapshot)."""
        boundary = uuid.uuid4().hex
        head = (f"--{boundary}\r\nContent-Disposition: form-data; name=\"snapshot\"; "
                f"filename=\"{snapshot.name}\"\r\nContent-Type: application/octet-stream\r\n\r\n").encode()
        tail = f"\r\n--{boundary}--\r\n".encode()

        def body() -> Iterator[bytes]:  # streamed: snapshots can be larger than memory
            yield head
            with snapshot.open("rb") as f:
                while chunk := f.read(_CHUNK):
                    yield chunk
            yield tail

        length = len(head) + snapshot.stat().st_size + len(tail)
        c = urllib.parse.quote(collection, safe="")
        with self._request("POST", f"/collections/{c}/snapshots/upload?priority=snapshot&wait=true", body(),
                           {"Content-Type": f"multipart/form-data; boundary={boundary}",
                            "Content-Length": str(length)}) as resp:
            json.load(resp)
