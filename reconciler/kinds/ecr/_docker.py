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
- progress goes to the `report` callable as structured events (`kinds.base`): a `Step`
  per build step, a `Transfer` per layer whenever its bytes or state change (the
  reporter decides what to show: a live bar, or one line per finished layer).
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable, Mapping
from typing import Any

from reconciler.errors import DockerError
from reconciler.kinds.base import ProgressEvent, Step, Transfer
from reconciler.secret import redact

INPUTS_LABEL = "org.reconciler.inputs"
Report = Callable[[ProgressEvent], None]
# `Step 3/7 : RUN apk add curl` (the classic builder's step lines)
STEP = re.compile(r"Step (\d+)/(\d+) : (.*)")
# what the Engine says of a layer once it is in the registry (`Mounted from other/repo` too)
DONE_STATUSES = ("Pushed", "Layer already exists", "Mounted from")


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
          platform: str | None, inputs: str, report: Report) -> str:
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
        return _follow_build(events, report)
    except DockerError:
        raise
    except Exception as exc:
        raise DockerError(redact(f"docker build failed: {type(exc).__name__}: {exc}; fix the build (docker build runs "
                                 "it alone), then re-run apply")) from None


def _follow_build(events: Iterable[Mapping[str, Any]], report: Report) -> str:
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
            step = STEP.match(line)
            if step:
                report(Step(int(step[1]), int(step[2]), redact(step[3].strip())))
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
    """Turns the Engine's push events into `Transfer` events per layer, each distinct state once.

    A layer's bytes come from `Pushing` events (`progressDetail` current/total; current
    can exceed total for tiny layers: clamped); it is done once the Engine says Pushed,
    already exists or mounted. Status lines without a layer id (`The push refers to`,
    the final `tag: digest: ... size: ...`) are not layers and are ignored.
    """

    def __init__(self, report: Report) -> None:
        self.report = report
        self.seen: dict[str, Transfer] = {}

    def event(self, event: Mapping[str, Any]) -> None:
        layer, status = event.get("id"), event.get("status")
        if not isinstance(layer, str) or not isinstance(status, str) or ":" in layer:
            return
        before = self.seen.get(layer, Transfer(layer, 0, 0))
        detail = event.get("progressDetail") or {}
        if status.startswith(DONE_STATUSES):
            now = Transfer(layer, before.total, before.total, done=True, existed=not status.startswith("Pushed"))
        elif status == "Pushing" and isinstance(detail.get("total"), int) and detail["total"] > 0:
            total = int(detail["total"])
            now = Transfer(layer, min(total, max(0, int(detail.get("current") or 0))), total)
        else:
            now = before  # Preparing, Waiting: known already (or nothing to say)
        if layer in self.seen and now == before:
            return
        self.seen[layer] = now
        self.report(now)


def push(docker_client: Any, *, image_id: str, reference: str, tag: str, auth_config: Mapping[str, str],
         report: Report) -> str:
    """Tag `image_id` as `reference:tag` and push it; returns the registry's manifest digest."""
    try:
        docker_client.api.tag(image_id, repository=reference, tag=tag)
        events = docker_client.api.push(reference, tag=tag, stream=True, decode=True, auth_config=dict(auth_config))
        progress = PushProgress(report)
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
    return digest
