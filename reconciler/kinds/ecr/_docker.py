"""Docker Engine I/O for the image kind: build (classic builder), tag, push with progress.

Why here and not in `engine/`: kinds already do their own I/O through the context
(boto3 clients), and the image kind is the only user of Docker; a private module
beside it keeps the seam small, keeps `Context` free of a Docker field every other
command would carry, and keeps plan/drift away from Docker by construction (the
image kind's `read` uses only the ECR API and never imports this module's client).

Invariants:
- every stream event is checked for `error`: a failed build or push raises
  `DockerError`, never passes silently (push errors arrive as events, not exceptions);
- credentials go only to `push(..., auth_config=...)`; nothing here writes a Docker
  config file or prints an event's headers; messages are redacted before raising;
- progress goes to the `log` callable as plain lines: one per build step and one per
  layer state change (Preparing / Pushing 25% 50% 75% / Pushed / already exists).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from typing import Any

from reconciler.errors import DockerError
from reconciler.secret import redact

INPUTS_LABEL = "org.reconciler.inputs"
Log = Callable[[str], None]


DEFAULT_SOCKET = "/var/run/docker.sock"


def unreachable(environ: Mapping[str, str] | None = None) -> str:
    """The one line for a Docker Engine that does not answer: where it was looked for, how to start it."""
    import os

    host = (os.environ if environ is None else environ).get("DOCKER_HOST")
    where = f"DOCKER_HOST={host}" if host else f"{DEFAULT_SOCKET} (DOCKER_HOST is not set)"
    return (f"cannot reach the Docker Engine at {where}; start it (dockerd, or systemctl start docker) "
            "or set DOCKER_HOST to one that runs, and re-run")


def client() -> Any:
    """A Docker SDK client from the environment (DOCKER_HOST or the local socket), answering a ping.

    Its failure is one line (`unreachable`): the SDK's own text is a chain of urllib3 reprs that
    says neither where it looked nor what to do.
    """
    try:
        import docker

        made = docker.from_env(timeout=900)
        made.ping()
        return made
    except Exception:
        raise DockerError(redact(unreachable())) from None


def build(docker_client: Any, *, context: str, dockerfile: str, build_args: Mapping[str, str], target: str | None,
          platform: str | None, inputs: str, log: Log) -> str:
    """Build with the classic builder; returns the image id. The inputs digest becomes a label."""
    kwargs: dict[str, Any] = {
        "path": context, "dockerfile": dockerfile, "buildargs": dict(build_args), "rm": True, "forcerm": True,
        "labels": {INPUTS_LABEL: inputs}, "decode": True,
    }
    if target:
        kwargs["target"] = target
    if platform:
        kwargs["platform"] = platform
    try:
        events = docker_client.api.build(**kwargs)
        return _follow_build(events, log)
    except DockerError:
        raise
    except Exception as exc:
        raise DockerError(redact(f"docker build failed: {type(exc).__name__}: {exc}; fix the build (docker build runs "
                                 "it alone), then re-run apply")) from None


def _follow_build(events: Iterable[Mapping[str, Any]], log: Log) -> str:
    image_id = ""
    tail: list[str] = []
    for event in events:
        if "error" in event or "errorDetail" in event:
            message = event.get("error") or event.get("errorDetail", {}).get("message", "unknown error")
            context = "; ".join(tail[-3:])
            raise DockerError(redact(f"docker build failed: {str(message).strip()}" +
                                     (f" (after: {context})" if context else "") +
                                     "; fix the Dockerfile or its context, then re-run apply"))
        stream = event.get("stream")
        if isinstance(stream, str):
            tail.extend(line.strip() for line in stream.splitlines()
                        if line.strip() and not line.strip().startswith("--->"))
            line = stream.strip()
            if line.startswith("Step "):
                log(f"build {line}")
            if line.startswith("Successfully built "):
                image_id = image_id or line.split()[-1]
        aux = event.get("aux")
        if isinstance(aux, Mapping) and aux.get("ID"):
            image_id = str(aux["ID"])
    if not image_id:
        raise DockerError("docker build ended without an image id; check the Docker Engine (docker info) and re-run "
                          "apply")
    return image_id


class PushProgress:
    """Turns push events into plain per-layer lines, each state change once, percentages in quarters."""

    def __init__(self, log: Log) -> None:
        self.log = log
        self.seen: dict[str, tuple[str, int]] = {}

    def event(self, event: Mapping[str, Any]) -> None:
        layer, status = event.get("id"), event.get("status")
        if not isinstance(layer, str) or not isinstance(status, str) or ":" in layer:
            return
        detail = event.get("progressDetail") or {}
        quarter = -1
        if status == "Pushing" and detail.get("total"):
            # current can exceed total for tiny layers: clamp
            quarter = min(100, int(100 * detail.get("current", 0) / detail["total"])) // 25 * 25
        if self.seen.get(layer) == (status, quarter):
            return
        self.seen[layer] = (status, quarter)
        self.log(f"layer {layer} {status}" + (f" {quarter}%" if quarter >= 0 else ""))


def push(docker_client: Any, *, image_id: str, reference: str, tag: str, auth_config: Mapping[str, str],
         log: Log) -> str:
    """Tag `image_id` as `reference:tag` and push it; returns the registry's manifest digest."""
    try:
        docker_client.api.tag(image_id, repository=reference, tag=tag)
        events = docker_client.api.push(reference, tag=tag, stream=True, decode=True, auth_config=dict(auth_config))
        progress = PushProgress(log)
        digest = ""
        for event in events:
            if "error" in event or "errorDetail" in event:
                message = event.get("error") or event.get("errorDetail", {}).get("message", "unknown error")
                raise DockerError(redact(f"docker push of {reference}:{tag} failed: {str(message).strip()}; check the "
                                         "registry, then re-run apply"))
            progress.event(event)
            aux = event.get("aux")
            if isinstance(aux, Mapping) and aux.get("Digest"):
                digest = str(aux["Digest"])
    except DockerError:
        raise
    except Exception as exc:
        raise DockerError(redact(f"docker push of {reference}:{tag} failed: {type(exc).__name__}: {exc}; check the "
                                 "registry, then re-run apply")) from None
    if not digest:
        raise DockerError(f"docker push of {reference}:{tag} ended without a digest; check the registry, then re-run "
                          "apply")
    log(f"pushed {reference}:{tag} {digest}")
    return digest
