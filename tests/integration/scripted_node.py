"""A JSON-RPC node that answers by a script: a real HTTP server on 127.0.0.1, for the replies
no honest node gives. Tests get it from the ``node`` fixture (``tests/integration/conftest.py``)::

    def test_x(node):
        url = node(lambda body: {"jsonrpc": "2.0", "id": body["id"], "result": "not-hex"})
"""

from __future__ import annotations

import json
import threading
from collections.abc import Callable
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

Script = Callable[[Any], Any]
"""The request body (one call or a batch) -> the reply body to send back as JSON (or bytes,
sent as they are)."""


def _chain_id_or(script: Script) -> Script:
    """Answer ``eth_chainId`` truthfully (the client checks it first), the rest by ``script``."""

    def answer(body: Any) -> Any:
        if isinstance(body, dict) and body.get("method") == "eth_chainId":
            return {"jsonrpc": "2.0", "id": body["id"], "result": "0x7a69"}
        return script(body)

    return answer


class ScriptedNode:
    """The server, started at construction; ``close()`` stops and joins it."""

    def __init__(self, script: Script) -> None:
        answer = _chain_id_or(script)

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
                out = answer(body)  # bytes are sent as they are: a body no JSON encoder writes
                data = out if isinstance(out, bytes) else json.dumps(out).encode()
                self.send_response(200)
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            def log_message(self, format: str, *args: object) -> None:
                pass

        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self._thread = threading.Thread(
            target=self._server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True
        )
        self._thread.start()
        self.url = f"http://127.0.0.1:{self._server.server_address[1]}"

    def close(self) -> None:
        self._server.shutdown()
        self._server.server_close()
        self._thread.join(timeout=5)
