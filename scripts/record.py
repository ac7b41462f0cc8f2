"""`make record`: terminal recordings of the everyday commands, regenerated from the current code.

Starts what `make demo` starts (a moto server, Debian's docker-registry standing in for ECR, and
expects the Docker Engine `make services` starts), then runs, each in a real pseudo-terminal of
100 x 30 with TERM=xterm-256color, what a user runs on manifests/maestro.yaml:

    plan -> apply (answering its prompt by typing, image build and push) -> a change by hand
    with the AWS CLI -> drift (exit 2) -> destroy (answering its prompt)

and writes, per recording, `docs/recordings/<name>.cast` (asciinema v2: a header line, then one
`[seconds, "o", text]` line per output chunk, as read from the terminal) and
`docs/recordings/<name>.txt` (what the terminal shows at the end: `scripts/terminal.py`).

The prompt's answer is read from the prompt itself (`[y/N]` -> `y`, a prompt asking for `yes`
-> `yes`, one asking for the stack name -> the stack name), or given with `--apply-answer` /
`--destroy-answer`. Nothing is written when a recording holds a secret: the access key secret
the apply stored, the registry password (and its base64 form) and the caller's secret key are
looked for in every output, and so is any 40-character secret after a secret-key label.
"""

from __future__ import annotations

import argparse
import base64
import codecs
import contextlib
import errno
import fcntl
import json
import os
import pty
import re
import select
import shlex
import signal
import socket
import struct
import sys
import tempfile
import termios
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from emulators import REGISTRY_PASSWORD, moto_server, registry
from terminal import render, strip_ansi

ROOT = Path(__file__).resolve().parent.parent
OUT = ROOT / "docs" / "recordings"
MANIFEST = "manifests/maestro.yaml"
STACK = "maestro"
REGION = "ap-northeast-1"
USER = "my-app-developer"
KEY_STORE = "maestro/my-app-developer/access-key"
WIDTH, HEIGHT = 100, 30
CALLER_SECRET = "demo-not-a-secret"
PREFERRED_REGISTRY_PORT = 5000  # a stable `--registry 127.0.0.1:5000` in the recordings when it is free
COMMAND_TIMEOUT = 150.0
QUIET_BEFORE_ANSWER = 0.4  # seconds of silence after a prompt-looking last line before typing
# a secret access key after its label, as the unit test looks for it
SECRET_AFTER_LABEL = re.compile(r"(?i)secret[\w -]{0,20}key[\"']?\s*[:=]\s*[\"']?[A-Za-z0-9/+=]{40}")
PROMPT_END = re.compile(r"[?:\]>]\s*$")


class RecordError(Exception):
    """A recording could not be made as intended; nothing is written."""


@dataclass
class Command:
    """One command of a recording: what the user types, and the exit codes that are right for it."""

    argv: list[str]
    expect: tuple[int, ...] = (0,)
    answer: Callable[[str], str] | None = None  # given the prompt (its last lines), what to type; None: none asked


@dataclass
class Recording:
    name: str
    title: str
    commands: list[Command]
    events: list[tuple[float, str]] = field(default_factory=list)

    @property
    def output(self) -> str:
        return "".join(text for _, text in self.events)


def answer_for(prompt: str, stack: str = STACK) -> str:
    """What a careful user types at `prompt`: the stack name, `yes`, or `y`, whichever it asks for."""
    low = prompt.lower()
    asks_to_type = re.search(r"\b(type|enter)\b", low) is not None
    if ("stack name" in low or any(f"{q}{stack}{q}" in prompt for q in "'\"`")
            or (asks_to_type and re.search(rf"\b{re.escape(stack)}\b", prompt))):
        return stack
    if re.search(r"(?:\b(?:type|enter)\b|['\"`(]yes\b)[^a-z]*\byes\b|['\"`]yes['\"`]|\(yes/no\)", low):
        return "yes"
    if "[y/n]" in low:
        return "y"
    raise RecordError(f"cannot tell what to answer to the prompt {prompt!r}: pass --apply-answer/--destroy-answer")


def fixed(answer: str | None) -> Callable[[str], str]:
    return (lambda _prompt: answer) if answer else answer_for


def shown(argv: list[str]) -> str:
    return shlex.join(argv)


def run_in_pty(cmd: Command, env: dict[str, str], start: float, events: list[tuple[float, str]]) -> int:
    """Run `cmd` on a fresh pseudo-terminal, appending its output chunks (seconds since `start`) to `events`."""
    size = struct.pack("HHHH", HEIGHT, WIDTH, 0, 0)
    pid, fd = pty.fork()
    if pid == 0:  # the child: its stdin, stdout and stderr are the terminal
        try:
            fcntl.ioctl(0, termios.TIOCSWINSZ, size)  # before exec: the program never sees another size
            os.chdir(ROOT)
            os.execvpe(cmd.argv[0], cmd.argv, env)
        finally:
            os._exit(127)
    decoder = codecs.getincrementaldecoder("utf-8")("replace")
    began = last = time.monotonic()
    since_answer = ""
    answers = 0
    try:
        while True:
            now = time.monotonic()
            if now - began > COMMAND_TIMEOUT:
                raise RecordError(f"`{shown(cmd.argv)}` did not finish in {COMMAND_TIMEOUT:.0f}s")
            ready, _, _ = select.select([fd], [], [], 0.1)
            if ready:
                try:
                    data = os.read(fd, 65536)
                except OSError as exc:  # EIO: the child closed the terminal
                    if exc.errno != errno.EIO:
                        raise
                    data = b""
                if not data:
                    break
                text = decoder.decode(data)
                if text:
                    events.append((time.monotonic() - start, text))
                    since_answer += text
                last = time.monotonic()
                continue
            if cmd.answer is None or now - last < QUIET_BEFORE_ANSWER or since_answer.endswith("\n"):
                continue
            lines = [line for line in render(since_answer, WIDTH, HEIGHT).splitlines() if line.strip()]
            if not lines or not PROMPT_END.search(lines[-1]):
                continue
            prompt = " ".join(line.strip() for line in lines[-4:])  # a prompt may explain itself above its line
            answers += 1
            if answers > 1:
                raise RecordError(f"`{shown(cmd.argv)}` asked again after the answer: {prompt!r}")
            for ch in cmd.answer(prompt):  # typed, so the recording shows it through the terminal's echo
                os.write(fd, ch.encode())
                time.sleep(0.08)
            os.write(fd, b"\r")
            since_answer = ""
    finally:
        done, status = os.waitpid(pid, os.WNOHANG)
        if done == 0:  # still running: a timeout or an error here
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGTERM)
            _, status = os.waitpid(pid, 0)
        os.close(fd)
    return os.waitstatus_to_exitcode(status)


def record(recording: Recording, env: dict[str, str]) -> None:
    start = time.monotonic()
    for cmd in recording.commands:
        recording.events.append((time.monotonic() - start, f"\x1b[1;32m$\x1b[0m {shown(cmd.argv)}\r\n"))
        code = run_in_pty(cmd, env, start, recording.events)
        if code not in cmd.expect:
            tail = render(recording.output, WIDTH, HEIGHT)[-3000:]
            raise RecordError(f"`{shown(cmd.argv)}` exited {code}, expected {cmd.expect}; it printed:\n{tail}")
        print(f"record: {recording.name}: `{shown(cmd.argv)}` exit {code}", flush=True)


def cast_lines(recording: Recording, stamp: int) -> list[str]:
    header = {"version": 2, "width": WIDTH, "height": HEIGHT, "timestamp": stamp, "idle_time_limit": 2.0,
              "title": recording.title, "env": {"SHELL": "/bin/bash", "TERM": "xterm-256color"}}
    lines = [json.dumps(header)]
    previous = 0.0
    for seconds, text in recording.events:
        previous = max(previous, round(seconds, 6))  # monotonic even after rounding
        lines.append(json.dumps([previous, "o", text], ensure_ascii=False))
    return lines


def forbidden_strings(store_secret: str | None) -> list[str]:
    """Strings that must appear in no recording."""
    basic = base64.b64encode(f"AWS:{REGISTRY_PASSWORD}".encode()).decode()
    found = [REGISTRY_PASSWORD, basic, CALLER_SECRET]
    if store_secret:  # the store holds {"AccessKeyId", "SecretAccessKey", "UserName", "CreateDate"}
        try:
            payload = json.loads(store_secret)
        except json.JSONDecodeError:
            payload = None
        if not isinstance(payload, dict) or not isinstance(payload.get("SecretAccessKey"), str):
            raise RecordError("the key store does not hold a SecretAccessKey to look for")
        found += [payload["SecretAccessKey"], store_secret]
    return found


def check_no_secret(recordings: list[Recording], forbidden: list[str]) -> None:
    for rec in recordings:
        for text in (rec.output, strip_ansi(rec.output), render(rec.output, WIDTH, HEIGHT)):
            for secret in forbidden:
                if secret and secret in text:
                    raise RecordError(f"recording {rec.name} holds a secret ({secret[:4]}...): nothing written")
            if SECRET_AFTER_LABEL.search(text):
                raise RecordError(f"recording {rec.name} holds a secret-looking key: nothing written")


def _port_free(port: int) -> bool:
    with socket.socket() as sock:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)  # as the registry binds: TIME_WAIT is free
        try:
            sock.bind(("127.0.0.1", port))
        except OSError:
            return False
    return True


@contextlib.contextmanager
def services() -> Iterator[tuple[str, str]]:
    port = PREFERRED_REGISTRY_PORT if _port_free(PREFERRED_REGISTRY_PORT) else None
    with moto_server() as endpoint, registry(port) as local_registry:
        yield endpoint, local_registry


def child_env(endpoint: str, home: Path) -> dict[str, str]:
    """A clean environment: no NO_COLOR/CI/profile from the caller, so every regeneration is alike."""
    venv_bin = str(Path(sys.executable).parent)
    env = {"PATH": f"{venv_bin}:/usr/local/bin:/usr/bin:/bin", "HOME": str(home), "TERM": "xterm-256color",
           "LANG": "C.UTF-8", "LC_ALL": "C.UTF-8", "AWS_ENDPOINT_URL": endpoint, "AWS_ACCESS_KEY_ID": "demo",
           "AWS_SECRET_ACCESS_KEY": CALLER_SECRET, "AWS_DEFAULT_REGION": REGION,
           "AWS_CONFIG_FILE": str(home / "aws-config"), "AWS_SHARED_CREDENTIALS_FILE": str(home / "aws-credentials")}
    if "DOCKER_HOST" in os.environ:
        env["DOCKER_HOST"] = os.environ["DOCKER_HOST"]
    return env


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--apply-answer", help="what to type at apply's prompt (default: what the prompt asks)")
    parser.add_argument("--destroy-answer", help="what to type at destroy's prompt (default: what it asks)")
    parser.add_argument("--out", type=Path, default=OUT, help="where the .cast and .txt files go")
    args = parser.parse_args(argv)
    import boto3

    began = time.monotonic()
    try:
        with services() as (endpoint, local_registry), tempfile.TemporaryDirectory(prefix="record-home-") as home:
            env = child_env(endpoint, Path(home))
            aws = {"endpoint_url": endpoint, "region_name": REGION, "aws_access_key_id": "demo",
                   "aws_secret_access_key": CALLER_SECRET}
            reg = ["--registry", local_registry]
            rec = ["reconcile"]
            plan = Recording("plan", "reconcile plan: what would change, from an empty account",
                             [Command([*rec, "plan", MANIFEST, *reg])])
            apply = Recording("apply", "reconcile apply: the prompt, the image build and push, the summary",
                              [Command([*rec, "apply", MANIFEST, *reg], answer=fixed(args.apply_answer))])
            for item in (plan, apply):
                record(item, env)
            secret = boto3.client("secretsmanager", **aws).get_secret_value(SecretId=KEY_STORE)["SecretString"]
            groups = boto3.client("ec2", **aws).describe_security_groups(
                Filters=[{"Name": "tag:reconciler:stack", "Values": [STACK]},
                         {"Name": "tag:reconciler:address", "Values": ["vpc.main.sg.app"]}])["SecurityGroups"]
            if not groups:
                raise RecordError("the apply made no security group vpc.main.sg.app to change by hand")
            by_hand = Recording("by-hand", "a change by hand with the AWS CLI", [
                Command(["aws", "iam", "attach-user-policy", "--user-name", USER,
                         "--policy-arn", "arn:aws:iam::aws:policy/ReadOnlyAccess"]),
                Command(["aws", "ec2", "authorize-security-group-ingress", "--group-id", groups[0]["GroupId"],
                         "--protocol", "tcp", "--port", "22", "--cidr", "0.0.0.0/0", "--output", "text"]),
            ])
            drift = Recording("drift", "reconcile drift: what changed by hand (exit 2)",
                              [Command([*rec, "drift", MANIFEST, *reg], expect=(2,))])
            destroy = Recording("destroy", "reconcile destroy: the prompt, then everything the stack owns",
                                [Command([*rec, "destroy", MANIFEST, *reg], answer=fixed(args.destroy_answer))])
            for item in (by_hand, drift, destroy):
                record(item, env)
            recordings = [plan, apply, by_hand, drift, destroy]
            check_no_secret(recordings, forbidden_strings(secret))
    except RecordError as exc:
        print(f"record: {exc}", file=sys.stderr)
        return 1
    args.out.mkdir(parents=True, exist_ok=True)
    stamp = int(time.time())
    for item in recordings:
        (args.out / f"{item.name}.cast").write_text("\n".join(cast_lines(item, stamp)) + "\n", encoding="utf-8")
        (args.out / f"{item.name}.txt").write_text(render(item.output, WIDTH, HEIGHT), encoding="utf-8")
    print(f"record: {len(recordings)} recordings in {args.out} ({time.monotonic() - began:.0f}s)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
