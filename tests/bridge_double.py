"""A bridge on loopback that speaks docs/bridge-contract.md, with knobs for failures.

It is a real HTTP server (the backend's client goes through sockets, timeouts and
status codes as in production); what it does not have is an agent behind it.
Tests that need a real agent use the local provider with vm_bridge instead.
"""

import contextlib
import json
import sys
import threading
import time
import uuid
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

MODELS = ["haiku", "sonnet", "sonnet[1m]", "opus", "opus[1m]", "default"]


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    request_queue_size = 256  # many turns open at once (the default backlog is 5)

    def handle_error(self, request, client_address) -> None:
        # A client that hangs up mid-stream is what the disconnect tests do: nothing to print.
        if not isinstance(sys.exception(), ConnectionError):
            super().handle_error(request, client_address)


class BridgeDouble:
    def __init__(self, token: str = "bridge-secret") -> None:
        self.token = token
        self.sessions: dict[str, str] = {}
        self.available = list(MODELS)
        # What session/new says of each model (picker id -> description), as agents describe them.
        self.descriptions: dict[str, str] = {}
        self.delay = 0.0
        self.fail_with: tuple[int, dict] | None = None
        self.fail_times = 0
        self.drop_connection = False
        self.calls: list[tuple[str, dict, dict]] = []
        # A prompt streams `turn_events` updates, one every `turn_interval` seconds, then `done`;
        # a cancel of the session ends it early with stopReason "cancelled".
        self.turn_events = 1
        self.turn_interval = 0.0
        self.cancelled: set[str] = set()
        self.turns: dict[str, int] = {}  # the number of the last turn of each session
        self.lock = threading.Lock()
        self._server = _Server(("127.0.0.1", 0), self._handler())
        self.url = f"http://127.0.0.1:{self._server.server_address[1]}"
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)

    def start(self) -> "BridgeDouble":
        self._thread.start()
        return self

    def stop(self) -> None:
        self._server.shutdown()
        self._server.server_close()

    def reset(self) -> None:
        with self.lock:
            self.sessions.clear()
            self.available = list(MODELS)
            self.descriptions = {}
            self.delay = 0.0
            self.fail_with = None
            self.fail_times = 0
            self.drop_connection = False
            self.calls.clear()
            self.turn_events = 1
            self.turn_interval = 0.0
            self.cancelled.clear()
            self.turns.clear()

    def fail(self, status: int, code: str, *, times: int = 10**6, **extra) -> None:
        self.fail_with = (status, {"code": code, "message": f"simulated {code}", "extra": extra})
        self.fail_times = times

    def answer(self, status: int, body, *, times: int = 1) -> None:
        """The next `times` calls get `body` (any JSON) with `status`, whatever they ask."""
        self.fail_with = (status, body)
        self.fail_times = times

    def offer(self) -> list[dict]:
        return [{"modelId": m, "name": m, "description": self.descriptions.get(m, "")} for m in self.available]

    def paths(self) -> list[str]:
        return [path for path, _, _ in self.calls]

    def _handler(self):
        double = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *args):
                pass

            def _send(self, status: int, body) -> None:
                raw = json.dumps(body).encode()
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(raw)))
                self.end_headers()
                self.wfile.write(raw)

            def _dispatch(self, method: str) -> None:
                length = int(self.headers.get("Content-Length") or 0)
                body = json.loads(self.rfile.read(length) or b"{}") if length else {}
                with double.lock:
                    double.calls.append((self.path, body, dict(self.headers)))
                if self.headers.get("Authorization") != f"Bearer {double.token}":
                    return self._send(401, {"code": "unauthorized", "message": "bad token", "extra": {}})
                if double.drop_connection:
                    self.close_connection = True
                    self.connection.close()
                    return None
                if double.delay:
                    time.sleep(double.delay)
                if double.fail_with and double.fail_times > 0:
                    double.fail_times -= 1
                    return self._send(*double.fail_with)
                return self._route(method, body)

            def _route(self, method: str, body: dict) -> None:
                if method == "GET" and self.path == "/health":
                    return self._send(
                        200, {"ok": True, "agent": {"name": "double", "version": "1"}, "protocolVersion": 1}
                    )
                if self.path == "/session/new":
                    session_id = f"acp-{uuid.uuid4().hex[:12]}"
                    # Like real agents, the double starts on its own default and ignores modelId.
                    double.sessions[session_id] = "default"
                    return self._send(
                        200,
                        {
                            "sessionId": session_id,
                            "modelId": "default",
                            "availableModels": double.offer(),
                        },
                    )
                session_id = body.get("sessionId")
                if session_id not in double.sessions:
                    return self._send(409, {"code": "agent_session_lost", "message": "unknown session", "extra": {}})
                if self.path == "/session/set_model":
                    if body.get("modelId") not in double.available:
                        return self._send(
                            400,
                            {
                                "code": "model_rejected",
                                "message": "no such model",
                                "extra": {"availableModels": double.available},
                            },
                        )
                    double.sessions[session_id] = body["modelId"]
                    return self._send(200, {"ok": True, "sessionId": session_id, "modelId": body["modelId"]})
                if self.path == "/session/state":
                    return self._send(
                        200,
                        {
                            "sessionId": session_id,
                            "modelId": double.sessions[session_id],
                            "switchPending": None,
                            "lastSwitch": None,
                            "availableModels": double.offer(),
                        },
                    )
                if self.path == "/session/cancel":
                    double.cancelled.add(session_id)
                    return self._send(200, {"ok": True})
                if self.path == "/session/prompt":
                    return self._stream_turn(session_id)
                return self._send(404, {"code": "not_found", "message": self.path, "extra": {}})

            def _stream_turn(self, session_id: str) -> None:
                double.cancelled.discard(session_id)
                with double.lock:
                    double.turns[session_id] = turn = double.turns.get(session_id, 0) + 1
                self.send_response(200)
                self.send_header("Content-Type", "text/event-stream")
                self.send_header("Connection", "close")  # the body ends when the connection does
                self.end_headers()
                self.close_connection = True
                stop = "end_turn"
                with contextlib.suppress(OSError):  # the client went away
                    for n in range(double.turn_events):
                        if n:
                            deadline = time.monotonic() + double.turn_interval
                            while time.monotonic() < deadline and session_id not in double.cancelled:
                                time.sleep(0.01)
                        if session_id in double.cancelled:
                            stop = "cancelled"
                            break
                        update = {"sessionUpdate": "agent_message_chunk", "content": {"type": "text", "text": f"{n} "}}
                        self._event("update", {"sessionId": session_id, "update": update, "turn": turn})
                    usage = {"inputTokens": 10, "outputTokens": 5, "cachedReadTokens": 0, "cachedWriteTokens": 0}
                    self._event("done", {"stopReason": stop, "usage": {**usage, "totalTokens": 15}, "turn": turn})

            def _event(self, name: str, data: dict) -> None:
                self.wfile.write(f"event: {name}\ndata: {json.dumps(data)}\n\n".encode())
                self.wfile.flush()

            def do_GET(self):
                self._dispatch("GET")

            def do_POST(self):
                self._dispatch("POST")

        return Handler
