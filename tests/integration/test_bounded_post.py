"""A server that trickles its answer, or never ends it: the clients give up within their deadline
and size instead of waiting (httpx's read timeout restarts at every byte) or filling memory."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import httpx
import pytest

from sources.bounded_post import bounded_post
from sources.evm import EvmClient, TransientError
from sources.hl_retry import RetryPolicy
from sources.http_errors import TransientSourceError
from sources.hyperliquid import HyperliquidClient, Timeouts

pytestmark = [pytest.mark.integration, pytest.mark.timeout(60)]

CHAIN_ID = b'{"jsonrpc": "2.0", "id": 1, "result": "0x7a69"}'


class _Handler(BaseHTTPRequestHandler):
    def do_POST(self) -> None:
        body = self.rfile.read(int(self.headers["Content-Length"]))
        self.send_response(200)
        if b"eth_chainId" in body:  # the EVM client checks the chain first
            self.send_header("Content-Length", str(len(CHAIN_ID)))
            self.end_headers()
            self.wfile.write(CHAIN_ID)
            return
        if self.path.endswith("/huge"):  # a body that does not end
            self.end_headers()
            block = b" " * 65536
            for _ in range(10_000):
                self.wfile.write(block)
            return
        self.send_header("Content-Length", "100000")  # a byte well inside each read timeout
        self.end_headers()
        for _ in range(100_000):
            self.wfile.write(b" ")
            self.wfile.flush()
            time.sleep(0.02)  # the server under test is slow: this is what is tested

    def log_message(self, format: str, *args: object) -> None:
        pass


@pytest.fixture
def server() -> Iterator[str]:
    httpd = ThreadingHTTPServer(("127.0.0.1", 0), _Handler)
    httpd.daemon_threads = True
    thread = threading.Thread(target=httpd.serve_forever, kwargs={"poll_interval": 0.05})
    thread.start()
    try:
        yield f"http://127.0.0.1:{httpd.server_address[1]}"
    finally:
        httpd.shutdown()
        httpd.server_close()
        thread.join(timeout=5)


def test_a_trickled_answer_is_a_timeout_at_the_deadline(server: str) -> None:
    with httpx.Client(timeout=5.0) as client, pytest.raises(httpx.ReadTimeout, match=r"0\.3 s"):
        bounded_post(client, server + "/trickle", deadline_s=0.3, content=b"{}")


def test_an_endless_answer_is_refused_at_the_size(server: str) -> None:
    with (
        httpx.Client(timeout=5.0) as client,
        pytest.raises(httpx.RemoteProtocolError, match="larger than 1048576 bytes"),
    ):
        bounded_post(client, server + "/huge", deadline_s=30, max_bytes=1 << 20, content=b"{}")


def test_the_evm_client_gives_up_on_a_trickling_node(server: str) -> None:
    with (
        EvmClient([server + "/trickle"], 31337, timeout_s=0.5, retries=0) as client,
        pytest.raises(TransientError, match=r"timeout after 0\.5s"),
    ):
        client.block_number()


def test_the_hyperliquid_client_gives_up_on_a_trickling_api(server: str) -> None:
    timeouts = Timeouts(connect_s=0.2, read_s=0.2, write_s=0.2, pool_s=0.2)
    retry = RetryPolicy(max_attempts=2)
    with (
        HyperliquidClient(server + "/trickle", timeouts=timeouts, retry=retry) as hl,
        pytest.raises(TransientSourceError, match="ReadTimeout"),
    ):
        hl.all_mids()
