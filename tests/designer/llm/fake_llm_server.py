"""A scripted OpenAI-compatible server on 127.0.0.1 for tests (reusable by integration tests).

Usage::

    from tests.designer.llm.fake_llm_server import Reply, ScriptedLLMServer

    with ScriptedLLMServer() as server:           # binds a free port, serves in a thread
        server.push("```python\\nclass Agent: ...\\n```")   # a content string -> HTTP 200
        server.push(429, 500)                      # an int -> that HTTP error status
        server.push(Reply(content="late", delay=2.0))       # answers after 2 s
        client = OpenAIClient(api_base=server.url)  # server.url == "http://127.0.0.1:PORT/v1"
        ...
        server.requests[0].body["messages"]        # every request received, in order

Each POST to ``/v1/chat/completions`` pops the next scripted reply. When the script is
empty the server answers ``default`` if one was given, else HTTP 400 with a message that
says the script ran out (400 is never retried, so a test fails fast and clearly).
``responder``: a function of the request that answers (str or ``Reply``) when the order of
requests is not known in advance; ``None`` from it falls back to the script.
Token counts are ``len(text) // 4 + 1`` unless a ``Reply`` sets them.
"""
from __future__ import annotations

import json
import threading
import time
from collections import deque
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any


@dataclass(frozen=True)
class Reply:
    """One scripted answer: a content (HTTP 200) or an error ``status``, after ``delay`` s."""

    content: str = ""
    status: int = 200
    delay: float = 0.0
    prompt_tokens: int | None = None
    completion_tokens: int | None = None
    error_message: str = "scripted error"
    headers: dict[str, str] = field(default_factory=dict)


@dataclass(frozen=True)
class RecordedRequest:
    path: str
    headers: dict[str, str]          # names lower-cased
    body: dict[str, Any]

    @property
    def messages(self) -> list[dict]:
        return self.body.get("messages", [])

    @property
    def text(self) -> str:
        """All message contents joined (handy for ``in`` assertions)."""
        return "\n".join(str(m.get("content", "")) for m in self.messages)


def _as_reply(item: str | int | Reply) -> Reply:
    if isinstance(item, Reply):
        return item
    if isinstance(item, int):
        return Reply(status=item, error_message=f"scripted HTTP {item}")
    return Reply(content=item)


class ScriptedLLMServer:
    """Context manager serving scripted chat completions; see the module docstring."""

    def __init__(self, default: str | Reply | None = None, model: str = "scripted-model",
                 responder: Any = None):
        self.default = _as_reply(default) if default is not None else None
        self.responder = responder
        self.model = model
        self.requests: list[RecordedRequest] = []
        self._script: deque[Reply] = deque()
        self._lock = threading.Lock()
        self._httpd: ThreadingHTTPServer | None = None
        self._thread: threading.Thread | None = None

    @property
    def url(self) -> str:
        assert self._httpd is not None, "use ScriptedLLMServer as a context manager"
        return f"http://127.0.0.1:{self._httpd.server_address[1]}/v1"

    def push(self, *items: str | int | Reply) -> "ScriptedLLMServer":
        """Append replies to the script (str -> content, int -> HTTP status, or ``Reply``)."""
        with self._lock:
            self._script.extend(_as_reply(i) for i in items)
        return self

    @property
    def pending(self) -> int:
        """Scripted replies not yet served."""
        with self._lock:
            return len(self._script)

    def __enter__(self) -> "ScriptedLLMServer":
        self._httpd = ThreadingHTTPServer(("127.0.0.1", 0), self._handler_class())
        self._httpd.daemon_threads = True
        self._thread = threading.Thread(target=self._httpd.serve_forever,
                                        kwargs={"poll_interval": 0.05}, daemon=True)
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        assert self._httpd is not None
        self._httpd.shutdown()
        self._httpd.server_close()

    def _next(self, request: RecordedRequest) -> Reply:
        with self._lock:
            self.requests.append(request)
            if self.responder is not None and (answer := self.responder(request)) is not None:
                return _as_reply(answer)
            if self._script:
                return self._script.popleft()
        if self.default is not None:
            return self.default
        return Reply(status=400, error_message="ScriptedLLMServer: the script has no reply left")

    def _respond_body(self, reply: Reply, body: dict) -> dict:
        prompt_text = "".join(str(m.get("content", "")) for m in body.get("messages", []))
        prompt_tokens = (reply.prompt_tokens if reply.prompt_tokens is not None
                         else len(prompt_text) // 4 + 1)
        completion_tokens = (reply.completion_tokens if reply.completion_tokens is not None
                             else len(reply.content) // 4 + 1)
        return {
            "id": f"chatcmpl-{len(self.requests)}", "object": "chat.completion",
            "created": int(time.time()), "model": body.get("model", self.model),
            "choices": [{"index": 0, "finish_reason": "stop",
                         "message": {"role": "assistant", "content": reply.content}}],
            "usage": {"prompt_tokens": prompt_tokens, "completion_tokens": completion_tokens,
                      "total_tokens": prompt_tokens + completion_tokens},
        }

    def _handler_class(self) -> type[BaseHTTPRequestHandler]:
        server = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *args: Any) -> None:  # keep test output clean
                pass

            def do_POST(self) -> None:
                length = int(self.headers.get("content-length") or 0)
                raw = self.rfile.read(length) if length else b"{}"
                body = json.loads(raw or b"{}")
                request = RecordedRequest(self.path, {k.lower(): v for k, v in self.headers.items()}, body)
                if not self.path.rstrip("/").endswith("/chat/completions"):
                    return self._send(404, {"error": {"message": f"no route {self.path}"}})
                reply = server._next(request)
                if reply.delay:
                    time.sleep(reply.delay)
                if reply.status != 200:
                    err = {"error": {"message": reply.error_message, "type": "scripted",
                                     "code": reply.status}}
                    return self._send(reply.status, err, reply.headers)
                self._send(200, server._respond_body(reply, body), reply.headers)

            def _send(self, status: int, payload: dict, headers: dict | None = None) -> None:
                data = json.dumps(payload).encode()
                try:
                    self.send_response(status)
                    self.send_header("content-type", "application/json")
                    self.send_header("content-length", str(len(data)))
                    for key, value in (headers or {}).items():
                        self.send_header(key, value)
                    self.end_headers()
                    self.wfile.write(data)
                except (BrokenPipeError, ConnectionResetError):
                    pass  # the client gave up (timeout test); nothing to do

        return Handler


def free_port() -> int:
    """A port with nothing listening on 127.0.0.1 (for dead-endpoint tests)."""
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]
