"""A tiny authenticating reverse proxy for tests: what oauth2-proxy or a company's gateway does
in front of an app, small.

It listens on 127.0.0.1, forwards HTTP and WebSocket traffic to the app, drops any sign-in
header the browser sent (``X-Forwarded-Email``, ``X-Forwarded-Groups``) and adds its own for
the one person it signed in. Its connections to the app leave from ``source`` (e.g.
``127.0.0.2``), so the app can be told to trust exactly that address and nothing else on the
machine.

>>> proxy = AuthProxy("http://127.0.0.1:9", email="ana@example.com", source="127.0.0.2")
>>> proxy.url.startswith("http://127.0.0.1:")
True
"""

from __future__ import annotations

import asyncio
import threading
import time

import httpx
import uvicorn
import websockets
from starlette.requests import Request
from starlette.responses import Response
from starlette.websockets import WebSocket, WebSocketDisconnect

from pg_helpers import free_port

#: headers only the proxy may set; hop-by-hop headers are not forwarded either way
SIGN_IN_HEADERS = {"x-forwarded-email", "x-forwarded-groups"}
HOP = {"host", "connection", "keep-alive", "transfer-encoding", "upgrade", "content-length", "accept-encoding",
       "te", "trailer", "proxy-authorization", "proxy-authenticate", "content-encoding"}
WS_SKIP = HOP | {"sec-websocket-key", "sec-websocket-version", "sec-websocket-extensions", "sec-websocket-protocol"}


class AuthProxy:
    """Forward ``127.0.0.1:<port>`` to ``upstream`` as ``email`` (``groups`` optional)."""

    def __init__(self, upstream: str, email: str, groups: str = "", source: str = "127.0.0.1",
                 port: int | None = None):
        self.upstream = upstream.rstrip("/")
        self.email, self.groups, self.source = email, groups, source
        self.port = port or free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.requests = 0
        self._server: uvicorn.Server | None = None
        self._thread: threading.Thread | None = None
        self._client: httpx.AsyncClient | None = None

    def _headers(self, raw: list[tuple[bytes, bytes]], skip: set[str], client: str) -> list[tuple[str, str]]:
        out = [(k.decode("latin1"), v.decode("latin1")) for k, v in raw
               if k.decode("latin1").lower() not in skip | SIGN_IN_HEADERS | {"x-forwarded-for"}]
        out.append(("X-Forwarded-Email", self.email))
        if self.groups:
            out.append(("X-Forwarded-Groups", self.groups))
        out.append(("X-Forwarded-For", client))
        return out

    async def __call__(self, scope, receive, send) -> None:
        if scope["type"] == "http":
            await self._http(Request(scope, receive), send, scope, receive)
        elif scope["type"] == "websocket":
            await self._websocket(WebSocket(scope, receive, send))
        elif scope["type"] == "lifespan":
            while (await receive())["type"] != "lifespan.shutdown":
                pass

    async def _http(self, request: Request, send, scope, receive) -> None:
        self.requests += 1
        if self._client is None:
            self._client = httpx.AsyncClient(transport=httpx.AsyncHTTPTransport(local_address=self.source),
                                             follow_redirects=False, timeout=60)
        client_ip = request.client.host if request.client else ""
        url = self.upstream + request.url.path + (f"?{request.url.query}" if request.url.query else "")
        up = await self._client.request(request.method, url, content=await request.body(),
                                        headers=self._headers(request.headers.raw, HOP, client_ip))
        response = Response(up.content, status_code=up.status_code)
        del response.headers["content-length"]
        for k, v in up.headers.multi_items():
            if k.lower() not in HOP:
                response.headers.append(k, v)
        response.headers["content-length"] = str(len(up.content))
        await response(scope, receive, send)

    async def _websocket(self, ws: WebSocket) -> None:
        self.requests += 1
        target = self.upstream.replace("http", "ws", 1) + ws.url.path + (f"?{ws.url.query}" if ws.url.query else "")
        protocols = ws.scope.get("subprotocols") or None
        client_ip = ws.client.host if ws.client else ""
        async with websockets.connect(target, subprotocols=protocols, max_size=None, compression=None,
                                      additional_headers=self._headers(ws.headers.raw, WS_SKIP | {"origin"}, client_ip),
                                      origin=ws.headers.get("origin"), local_addr=(self.source, 0)) as up:
            await ws.accept(subprotocol=up.subprotocol)

            async def browser_to_app():
                try:
                    while True:
                        msg = await ws.receive()
                        if msg["type"] == "websocket.disconnect":
                            break
                        await up.send(msg["bytes"] if msg.get("bytes") is not None else msg["text"])
                except WebSocketDisconnect:
                    pass
                await up.close()

            async def app_to_browser():
                try:
                    async for msg in up:
                        await (ws.send_bytes(msg) if isinstance(msg, bytes) else ws.send_text(msg))
                except websockets.ConnectionClosed:
                    pass
                try:
                    await ws.close()
                except RuntimeError:
                    pass

            await asyncio.gather(browser_to_app(), app_to_browser(), return_exceptions=True)

    # ------------------------------------------------------------- serving
    def start(self, timeout: float = 10) -> str:
        config = uvicorn.Config(self, host="127.0.0.1", port=self.port, log_level="warning", proxy_headers=False,
                                lifespan="off", ws="websockets-sansio")
        self._server = uvicorn.Server(config)
        self._thread = threading.Thread(target=self._server.run, name=f"auth-proxy-{self.email}", daemon=True)
        self._thread.start()
        deadline = time.monotonic() + timeout
        while not self._server.started:
            if time.monotonic() > deadline or not self._thread.is_alive():
                raise RuntimeError(f"the test proxy did not start on port {self.port}")
            time.sleep(0.05)
        return self.url

    def stop(self) -> None:
        if self._server is not None:
            self._server.should_exit = True
            self._thread.join(timeout=10)
            self._server = None

    def __enter__(self) -> str:
        return self.start()

    def __exit__(self, *exc) -> None:
        self.stop()
