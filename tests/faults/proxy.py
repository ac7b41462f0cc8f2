"""A fault-injecting HTTP proxy in front of moto, on a free 127.0.0.1 port.

The tool under test is pointed at the proxy with `AWS_ENDPOINT_URL`, exactly as it
would be pointed at AWS; nothing in boto3 is mocked. Every request is attributed to
one AWS operation — the `Action=` form field (query protocols: IAM, STS, EC2) or the
`X-Amz-Target` header (JSON protocols: ECR, Secrets Manager, SSM) — and counted as
a read or a write with the engine's own `is_read`.

Faults, chosen by `Rule`s (operation names and/or the N-th matching request):
- `THROTTLE`: a protocol-correct throttling error (EC2 `RequestLimitExceeded`,
  IAM/STS `Throttling`, JSON `ThrottlingException`); moto never sees the request;
- `HTTP_500` / `HTTP_503`: a protocol-correct server error; moto never sees it;
- `DENIED`: the error AWS sends when IAM denies the call (JSON `AccessDeniedException`,
  EC2 `UnauthorizedOperation`, IAM/STS `AccessDenied`, all HTTP 400/403); moto never sees it
  (moto server does not enforce IAM policies);
- `RESET`: the connection is reset (TCP RST) before the request is forwarded;
- `LATENCY`: the request is delayed by `Rule.delay` seconds, then forwarded;
- `LOST`: the request is forwarded and moto acts on it, then the connection is
  reset, so the client never sees the answer (the hard case for idempotency);
- `GARBLE`: the request is forwarded and moto acts on it, and its answer reaches the
  client with one stray NUL byte inserted before the body's last `<` or `}` (so no
  XML or JSON parser accepts it, while any secret in it stays whole: a leak shows);
- `TRUNCATE`: likewise, but the client gets only the first half of the body;
- `HOLD`: like `LOST`, but the proxy first sets `held` and freezes: it waits for
  `release()` (bounded) and forwards nothing else meanwhile, so a test can SIGKILL
  the client at a precise point: "the first k writes happened, nothing after".

Invariants: requests to `/moto-api/` pass through uncounted and unfaulted; every
wait is bounded (no test can hang on the proxy); the proxy binds 127.0.0.1 only.
"""

from __future__ import annotations

import enum
import http.client
import http.server
import json
import re
import socket
import struct
import threading
import time
import urllib.parse
from collections import Counter
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import cast

from reconciler.engine.clients import is_read

HOP_BY_HOP = frozenset({"connection", "keep-alive", "proxy-authenticate", "proxy-authorization", "te", "trailers",
                        "transfer-encoding", "upgrade", "content-length"})
HOLD_TIMEOUT = 60.0  # seconds a held request waits for release() before giving up on its own
_CREDENTIAL = re.compile(r"Credential=[^/,\s]+/\d{8}/[^/,\s]+/([^/,\s]+)/aws4_request")
# secret access keys in responses (XML from CreateAccessKey and AssumeRole, JSON from secret stores), and the
# session tokens of assumed roles
_SECRET = re.compile(rb'<SecretAccessKey>([^<]+)</SecretAccessKey>|\\?"SecretAccessKey\\?":\s*\\?"([^"\\]+)'
                     rb'|<SessionToken>([^<]+)</SessionToken>')


class Fault(enum.Enum):
    THROTTLE = "throttle"
    HTTP_500 = "500"
    HTTP_503 = "503"
    DENIED = "denied"
    RESET = "reset"
    LATENCY = "latency"
    LOST = "lost"
    GARBLE = "garble"
    TRUNCATE = "truncate"
    HOLD = "hold"


def garble(body: bytes) -> bytes:
    """`body` with a NUL byte before its last `<` or `}` (the middle when it has neither)."""
    at = max(body.rfind(b"<"), body.rfind(b"}"))
    if at <= 0:
        at = len(body) // 2
    return body[:at] + b"\x00" + body[at:]


@dataclass
class Rule:
    """Inject `fault` into the requests this rule matches.

    A request matches when its operation is in `operations` (None: any operation)
    and it is a write if `writes_only` (a read if `reads_only`), and its body contains
    `body_contains` (e.g. `UserName=ci-bot`) when given and does not contain
    `unless_body_contains` (e.g. the lease's `/reconciler/locks/`), and its
    (operation, `_target`) is not in `unless_seen`. Matching requests
    are numbered from 1 per rule; the rule fires on number n when `n in nth`, or
    (without `nth`) when `n % every == 0`, and at most `limit` times. Retries are
    requests too: a rule firing on every match starves an operation of all its
    attempts, which is how "retries exhausted" is provoked.

    `streak` bounds that for transient faults: the rule does not fire on a request
    (the same operation and body, which is what a retry sends) that the proxy has
    already faulted `streak` times in a row, so a client with more attempts than
    `streak` always gets through. Without it, "every 5th request" spread over
    concurrent clients can land on all six attempts of one call, and a test of
    "transient faults are absorbed" fails by timing alone.
    """

    fault: Fault
    operations: frozenset[str] | None = None
    writes_only: bool = False
    reads_only: bool = False
    body_contains: str | None = None
    unless_body_contains: str | None = None
    unless_seen: frozenset[tuple[str, str]] = frozenset()
    nth: frozenset[int] | None = None
    every: int = 1
    limit: int | None = None
    delay: float = 0.0
    streak: int | None = None
    matched: int = 0
    fired: int = 0

    def matches(self, operation: str, write: bool, body: bytes) -> bool:
        if self.operations is not None and operation not in self.operations:
            return False
        if self.body_contains is not None and self.body_contains.encode() not in body:
            return False
        if self.unless_body_contains is not None and self.unless_body_contains.encode() in body:
            return False
        if self.unless_seen and (operation, _target(body)) in self.unless_seen:
            return False
        return not ((self.writes_only and not write) or (self.reads_only and write))

    def fire(self) -> bool:
        """Count one matching request; True when the fault applies to it (caller holds the lock)."""
        self.matched += 1
        if self.limit is not None and self.fired >= self.limit:
            return False
        hit = self.matched in self.nth if self.nth is not None else self.matched % self.every == 0
        if hit:
            self.fired += 1
        return hit


def rule(fault: Fault, *operations: str, **kw: object) -> Rule:
    """Shorthand: `rule(Fault.LOST, "CreateUser", nth={1})`."""
    if "nth" in kw and kw["nth"] is not None:
        kw["nth"] = frozenset(kw["nth"])  # type: ignore[arg-type]
    return Rule(fault, frozenset(operations) if operations else None, **kw)  # type: ignore[arg-type]


@dataclass(frozen=True)
class Call:
    """One HTTP request the proxy received (a retry is a second Call)."""

    service: str
    operation: str
    write: bool
    fault: Fault | None
    seconds: float
    target: str = ""  # what the request names (`_target`): tells a repeated write from a new one


@dataclass
class _State:
    rules: list[Rule] = field(default_factory=list)
    calls: list[Call] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)
    held: threading.Event = field(default_factory=threading.Event)
    released: threading.Event = field(default_factory=threading.Event)
    secrets: set[str] = field(default_factory=set)
    held_request: tuple[str, str] | None = None  # (operation, target) of the request a HOLD rule fired on
    frozen: bool = False  # a HOLD rule fired: nothing more is forwarded until clear() (guarded by `lock`)
    holding: int = 0  # handlers waiting in a hold or a freeze (guarded by `lock`)
    # faults in a row per request (operation, body); a request that was answered is dropped (guarded by `lock`)
    streaks: dict[tuple[str, bytes], int] = field(default_factory=dict)


def _operation(headers: http.client.HTTPMessage, path: str, body: bytes) -> tuple[str, str]:
    """(service, operation) of one AWS request; ('', 'METHOD /path') when unknown."""
    found = _CREDENTIAL.search(headers.get("Authorization", ""))
    service = found.group(1) if found else ""
    target = headers.get("X-Amz-Target")
    if target:
        return service, target.rsplit(".", 1)[-1]
    query = urllib.parse.urlsplit(path).query
    for source in (body.decode("utf-8", "replace"), query):
        action = urllib.parse.parse_qs(source).get("Action")
        if action:
            return service, action[0]
    return service, path


_NAMING = re.compile(r"(Name|Id|CidrBlock|Names)(\.\d+)?$")


def _target(body: bytes) -> str:
    """The names and ids a request acts on (form or top-level JSON fields), never tag values or secrets."""
    text = body.decode("utf-8", "replace")
    pairs: list[tuple[str, str]] = []
    if text.startswith("{"):
        try:
            data = json.loads(text)
        except ValueError:
            data = {}
        if isinstance(data, dict):
            pairs = [(k, v) for k, v in data.items() if isinstance(v, str)]
    else:
        pairs = [(k, v[0]) for k, v in urllib.parse.parse_qs(text).items() if v]
    return ",".join(f"{k}={v}" for k, v in sorted(pairs) if _NAMING.search(k) and "Tag" not in k)


def _error(fault: Fault, service: str, json_protocol: bool) -> tuple[int, str, bytes]:
    """(status, content type, body) of the error AWS would send for this protocol."""
    code, message, status = {
        Fault.THROTTLE: ("Throttling", "Rate exceeded", 400),
        Fault.HTTP_500: ("InternalFailure", "We encountered an internal error. Please try again.", 500),
        Fault.HTTP_503: ("ServiceUnavailable", "Service is unavailable. Please try again.", 503),
        Fault.DENIED: ("AccessDenied", "User: arn:aws:iam::123456789012:user/moto is not authorized to perform "
                                       "this action with an explicit deny", 403),
    }[fault]
    if json_protocol:
        if fault is Fault.THROTTLE:
            code = "ThrottlingException"
        if fault is Fault.DENIED:
            code, status = "AccessDeniedException", 400  # what KMS, ECR, SSM, Secrets Manager send
        return status, "application/x-amz-json-1.1", json.dumps({"__type": code, "message": message}).encode()
    if service == "ec2":
        if fault is Fault.THROTTLE:
            code, status = "RequestLimitExceeded", 503  # what EC2 sends
        if fault is Fault.DENIED:
            code = "UnauthorizedOperation"
        body = (f"<Response><Errors><Error><Code>{code}</Code><Message>{message}</Message></Error></Errors>"
                f"<RequestID>proxy-fault</RequestID></Response>")
        return status, "text/xml", body.encode()
    kind = "Sender" if fault in (Fault.THROTTLE, Fault.DENIED) else "Receiver"
    body = (f'<ErrorResponse xmlns="https://iam.amazonaws.com/doc/2010-05-08/"><Error><Type>{kind}</Type>'
            f"<Code>{code}</Code><Message>{message}</Message></Error>"
            f"<RequestId>proxy-fault</RequestId></ErrorResponse>")
    return status, "text/xml", body.encode()


class _Handler(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"  # keep-alive, as botocore expects from AWS
    server: _Server

    def log_message(self, format: str, *args: object) -> None:
        pass

    def setup(self) -> None:
        super().setup()
        # no Nagle: a small answer must not wait for the client's delayed ACK (~40 ms on Linux),
        # or "20 ms injected" becomes ~66-71 ms per request and every bench figure is wrong
        self.connection.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)

    def _body(self) -> bytes:
        if self.headers.get("Transfer-Encoding", "").lower() == "chunked":
            chunks = []
            while True:
                size = int(self.rfile.readline().split(b";")[0].strip() or b"0", 16)
                if size == 0:
                    while self.rfile.readline() not in (b"\r\n", b"\n", b""):
                        pass
                    return b"".join(chunks)
                chunks.append(self.rfile.read(size))
                self.rfile.readline()
        length = int(self.headers.get("Content-Length") or 0)
        return self.rfile.read(length) if length else b""

    def _reset(self) -> None:
        """Abort the connection with a TCP RST, as a crashed peer or middlebox would."""
        self.close_connection = True
        try:
            self.connection.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
            self.rfile.close()
            self.connection.close()
        except OSError:
            pass

    def _forward(self, body: bytes) -> tuple[int, str, list[tuple[str, str]], bytes]:
        upstream: http.client.HTTPConnection | None = getattr(self, "upstream", None)
        for attempt in (1, 2):
            if upstream is None:
                upstream = http.client.HTTPConnection(self.server.upstream_host, self.server.upstream_port,
                                                      timeout=120)
                self.upstream = upstream
            try:
                if upstream.sock is None:
                    upstream.connect()  # now, to turn Nagle off before the first request, as on the client side
                    cast(socket.socket, upstream.sock).setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
                upstream.putrequest(self.command, self.path, skip_host=True, skip_accept_encoding=True)
                for name, value in self.headers.items():
                    if name.lower() not in HOP_BY_HOP:
                        upstream.putheader(name, value)
                upstream.putheader("Content-Length", str(len(body)))
                upstream.endheaders(body)
                response = upstream.getresponse()
                data = response.read()
                headers = [(k, v) for k, v in response.getheaders() if k.lower() not in HOP_BY_HOP]
                return response.status, response.reason, headers, data
            except (http.client.HTTPException, OSError):
                upstream.close()
                upstream = None
                if attempt == 2:
                    raise
        raise AssertionError("unreachable")

    def _answer(self, status: int, reason: str, headers: Iterable[tuple[str, str]], data: bytes) -> None:
        """The whole answer in one write: status line, headers and body leave in one send."""
        self.send_response_only(status, reason)
        for name, value in headers:
            self.send_header(name, value)
        self.send_header("Content-Length", str(len(data)))
        buffered: list[bytes] = self._headers_buffer  # type: ignore[has-type]
        head = b"".join(buffered) + b"\r\n"  # what end_headers() would flush on its own
        buffered.clear()
        self.wfile.write(head + data if self.command != "HEAD" else head)

    def _proxy(self) -> None:
        started = time.monotonic()
        state = self.server.state
        body = self._body()
        if self.path.startswith("/moto-api"):
            self._answer(*self._forward(body))
            return
        service, operation = _operation(self.headers, self.path, body)
        write = not is_read(operation)
        fault: Fault | None = None
        delay = 0.0
        request = (operation, body)
        with state.lock:
            frozen = state.frozen
            if not frozen:
                in_a_row = state.streaks.get(request, 0)
                for candidate in state.rules:
                    if candidate.streak is not None and in_a_row >= candidate.streak:
                        continue
                    if candidate.matches(operation, write, body) and candidate.fire():
                        if candidate.fault is Fault.LATENCY:
                            delay += candidate.delay
                        elif fault is None:
                            fault = candidate.fault
                if fault in (None, Fault.LATENCY):
                    state.streaks.pop(request, None)
                else:
                    state.streaks[request] = in_a_row + 1
                state.frozen = fault is Fault.HOLD
                if fault is Fault.HOLD:
                    state.held_request = (operation, _target(body))
            if frozen or fault is Fault.HOLD:
                state.holding += 1  # until recorded below, so release() can wait for final counts
        if frozen:
            fault = Fault.HOLD
        try:
            if frozen:  # a held request froze the world: nothing else reaches moto
                self._wait_for_release(signal=False)
                return
            if delay:
                time.sleep(delay)
            if fault in (Fault.THROTTLE, Fault.HTTP_500, Fault.HTTP_503, Fault.DENIED):
                status, ctype, data = _error(fault, service, "X-Amz-Target" in self.headers)
                self._answer(status, "Fault", [("Content-Type", ctype), ("x-amzn-RequestId", "proxy-fault")], data)
            elif fault is Fault.RESET:
                self._reset()
            else:
                answer = self._forward(body)
                found = {next(g for g in groups if g).decode() for groups in _SECRET.findall(answer[3])}
                if found:
                    with state.lock:
                        state.secrets.update(found)
                if fault is Fault.GARBLE:
                    self._answer(*answer[:3], garble(answer[3]))
                elif fault is Fault.TRUNCATE:
                    self._answer(*answer[:3], answer[3][: len(answer[3]) // 2])
                elif fault is Fault.LOST:
                    self._reset()
                elif fault is Fault.HOLD:
                    self._wait_for_release(signal=True)
                else:
                    self._answer(*answer)
        finally:
            with state.lock:
                state.calls.append(Call(service, operation, write, fault, time.monotonic() - started,
                                        _target(body)))
                if frozen or fault is Fault.HOLD:
                    state.holding -= 1

    def _wait_for_release(self, signal: bool) -> None:
        """Hold this request until release(), then reset its connection; `signal`: set `held` first."""
        state = self.server.state
        if signal:
            state.held.set()
        state.released.wait(HOLD_TIMEOUT)
        self._reset()

    do_GET = do_POST = do_PUT = do_DELETE = do_HEAD = do_PATCH = _proxy


class _Server(http.server.ThreadingHTTPServer):
    daemon_threads = True
    request_queue_size = 128

    def __init__(self, upstream: str) -> None:
        parts = urllib.parse.urlsplit(upstream)
        assert parts.hostname == "127.0.0.1", "the proxy only talks to loopback"
        self.upstream_host, self.upstream_port = parts.hostname, int(parts.port or 80)
        self.state = _State()
        super().__init__(("127.0.0.1", 0), _Handler)

    def handle_error(self, request: object, client_address: object) -> None:
        pass  # a client that went away (killed, reset) is expected here


class FaultProxy:
    """The proxy's public face: rules in, counts out. Use as a context manager."""

    def __init__(self, upstream: str) -> None:
        self.upstream = upstream
        self._server = _Server(upstream)
        self.endpoint = f"http://127.0.0.1:{self._server.server_address[1]}"
        self._thread = threading.Thread(target=self._server.serve_forever, kwargs={"poll_interval": 0.05},
                                        name="fault-proxy", daemon=True)

    def __enter__(self) -> FaultProxy:
        self._thread.start()
        return self

    def __exit__(self, *_: object) -> None:
        self.release()
        self._server.shutdown()
        self._server.server_close()
        self._thread.join(timeout=10)

    # -- rules ---------------------------------------------------------------

    def add(self, *rules: Rule) -> FaultProxy:
        with self._server.state.lock:
            self._server.state.rules.extend(rules)
        return self

    def clear(self) -> None:
        """No rules, no counts, not held: a clean proxy for the next step of a test."""
        state = self._server.state
        with state.lock:
            state.rules.clear()
            state.calls.clear()
            state.held.clear()
            state.released.clear()
            state.frozen = False
            state.held_request = None
            state.streaks.clear()

    @property
    def held(self) -> threading.Event:
        """Set when a HOLD rule fired: moto has acted on the request, the client has no answer."""
        return self._server.state.held

    @property
    def held_request(self) -> tuple[str, str] | None:
        """(operation, target) of the request the HOLD rule fired on (not the ones frozen after it)."""
        with self._server.state.lock:
            return self._server.state.held_request

    def release(self, timeout: float = 10.0) -> None:
        """Let held requests go (their connections are reset: the client never hears back).

        Returns once every held request has been recorded, so counts read after it are final.
        """
        state = self._server.state
        state.released.set()
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            with state.lock:
                if state.holding == 0:
                    return
            time.sleep(0.01)

    # -- counts --------------------------------------------------------------

    @property
    def calls(self) -> list[Call]:
        with self._server.state.lock:
            return list(self._server.state.calls)

    def operations(self, *, writes: bool | None = None) -> Counter[str]:
        """Requests per operation (retries included); only writes / only reads when asked."""
        return Counter(c.operation for c in self.calls if writes is None or c.write == writes)

    def writes(self) -> list[str]:
        return [c.operation for c in self.calls if c.write]

    def reads(self) -> list[str]:
        return [c.operation for c in self.calls if not c.write]

    @property
    def secrets_seen(self) -> set[str]:
        """Every secret access key and session token that passed through the proxy in a response (kept across
        clear())."""
        with self._server.state.lock:
            return set(self._server.state.secrets)

    def faults(self) -> Counter[str]:
        return Counter(f"{c.operation}:{c.fault.value}" for c in self.calls if c.fault is not None)


@contextmanager
def fault_proxy(upstream: str) -> Iterator[FaultProxy]:
    with FaultProxy(upstream) as proxy:
        yield proxy
