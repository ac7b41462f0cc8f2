"""The ECR registry's data plane: credentials, image manifests, and the `--registry` stand-in.

Source of truth for what a repository holds is the **ECR API** (ListImages,
BatchGetImage, PutImage), never the registry's HTTP API:
- plan and drift need no registry credentials at all (GetAuthorizationToken returns
  a secret, so the read-only guard refuses it there); on AWS the ECR API and the
  registry are one store, so nothing is lost;
- with `--registry HOST:PORT` (a local registry standing in for
  `<account>.dkr.ecr.<region>.amazonaws.com`, next to an emulator whose ECR has no
  registry endpoint) every write to the registry is mirrored into the ECR API with
  `PutImage(imageManifest=<registry's bytes>, imageDigest=<registry's digest>)`, which
  is what ECR itself does on a push. The registry is written first, ECR second, so
  ECR never names a tag the registry does not serve; a crash in between leaves ECR
  short of a tag, and the next plan pushes it again (idempotent).

Credentials come from `ecr.get_authorization_token` (apply only), held in a
`Secret` (masked in every output), handed to Docker as `auth_config` and to the
registry as a Basic header built at the moment of the request; never written to a
Docker config file, never logged, never in an exception.
"""

from __future__ import annotations

import base64
import hashlib
import json
import urllib.error
import urllib.request
from dataclasses import dataclass
from typing import Any
from urllib.parse import quote, urlparse

from botocore.exceptions import ClientError

from reconciler.aws import absent_none, error_code
from reconciler.errors import DockerError
from reconciler.kinds.base import Context
from reconciler.secret import Secret, redact

MANIFEST_TYPES = (
    "application/vnd.docker.distribution.manifest.v2+json",
    "application/vnd.oci.image.manifest.v1+json",
    "application/vnd.docker.distribution.manifest.list.v2+json",
    "application/vnd.oci.image.index.v1+json",
)
LOOPBACK = ("127.", "localhost", "[::1]")


@dataclass(frozen=True)
class ImageManifest:
    """A manifest exactly as stored: its bytes, media type and `sha256:` digest of the bytes."""

    body: bytes
    media_type: str
    digest: str


@dataclass(frozen=True)
class Registry:
    """Where images of this account and region go.

    `host` is what image references start with (`<acct>.dkr.ecr.<region>.amazonaws.com`,
    or the `--registry` stand-in); `local` says the stand-in is used, so its writes are
    mirrored into the ECR API.
    """

    host: str
    username: str
    password: Secret
    local: bool

    def reference(self, repository: str) -> str:
        return f"{self.host}/{repository}"

    def auth_config(self) -> dict[str, str]:
        """For the Docker SDK's `auth_config=` (the one place the password is revealed to Docker)."""
        return {"username": self.username, "password": self.password.reveal()}

    # -- manifests -------------------------------------------------------------------------

    def get_manifest(self, ctx: Context, repository: str, reference: str) -> ImageManifest | None:
        """The manifest a tag or digest names, or None when there is none."""
        if not self.local:
            return _ecr_manifest(ctx, repository, reference)
        status, headers, body = self._http("GET", f"/v2/{repository}/manifests/{quote(reference)}",
                                           headers={"Accept": ", ".join(MANIFEST_TYPES)})
        if status == 404:
            return None
        if status != 200:
            raise DockerError(f"registry {self.host}: GET manifest {repository}:{reference} answered {status}; check "
                              "the registry, then re-run")
        digest = "sha256:" + hashlib.sha256(body).hexdigest()
        media_type = headers.get("Content-Type") or _media_type(body)
        return ImageManifest(body, media_type.split(";")[0].strip(), digest)

    def put_manifest(self, ctx: Context, repository: str, tag: str, manifest: ImageManifest) -> None:
        """Point `tag` at `manifest` (a retag: no layer moves)."""
        if self.local:
            status, _, _ = self._http("PUT", f"/v2/{repository}/manifests/{quote(tag)}", body=manifest.body,
                                      headers={"Content-Type": manifest.media_type})
            if status not in (200, 201):
                raise DockerError(f"registry {self.host}: PUT manifest {repository}:{tag} answered {status}; check "
                                  "the registry, then re-run")
        put_ecr_image(ctx, repository, tag, manifest)

    def mirror(self, ctx: Context, repository: str, tag: str, manifest: ImageManifest) -> None:
        """After a push to the stand-in: tell the ECR API what the registry now holds."""
        if self.local:
            put_ecr_image(ctx, repository, tag, manifest)

    def purge(self, repository: str) -> None:
        """Delete every manifest of a repository from the stand-in (ECR deleted its own copy)."""
        status, _, body = self._http("GET", f"/v2/{repository}/tags/list")
        if status == 404:
            return
        if status != 200:
            raise DockerError(f"registry {self.host}: listing tags of {repository} answered {status}; check the "
                              "registry, then re-run")
        digests: set[str] = set()
        for tag in json.loads(body or b"{}").get("tags") or []:
            got, headers, _ = self._http("HEAD", f"/v2/{repository}/manifests/{quote(tag)}",
                                         headers={"Accept": ", ".join(MANIFEST_TYPES)})
            if got == 200 and headers.get("Docker-Content-Digest"):
                digests.add(headers["Docker-Content-Digest"])
        for digest in sorted(digests):
            got, _, _ = self._http("DELETE", f"/v2/{repository}/manifests/{digest}")
            if got not in (202, 404):
                raise DockerError(f"registry {self.host}: deleting {repository}@{digest} answered {got}; check the "
                                  "registry, then re-run")

    def _http(self, method: str, path: str, body: bytes | None = None,
              headers: dict[str, str] | None = None) -> tuple[int, dict[str, str], bytes]:
        scheme = "http" if self.host.startswith(LOOPBACK) else "https"
        token = base64.b64encode(f"{self.username}:{self.password.reveal()}".encode()).decode()
        request = urllib.request.Request(f"{scheme}://{self.host}{path}", data=body, method=method,
                                         headers={**(headers or {}), "Authorization": f"Basic {token}"})
        try:
            with urllib.request.urlopen(request, timeout=120) as response:
                return response.status, dict(response.headers.items()), response.read()
        except urllib.error.HTTPError as err:
            return err.code, dict(err.headers.items()), err.read()
        except (urllib.error.URLError, OSError) as err:
            reason = getattr(err, "reason", err)
            raise DockerError(redact(f"cannot reach registry {self.host}: {reason}; start it, or check --registry, "
                                     "then re-run")) from None


def registry(ctx: Context) -> Registry:
    """Credentials and host for this run, fetched once (apply only: plan never needs them)."""

    def load() -> Registry:
        data = ctx.client("ecr").get_authorization_token()["authorizationData"][0]
        Secret(data["authorizationToken"])  # its base64 form carries the password too: masked as well
        username, _, password = base64.b64decode(data["authorizationToken"]).decode().partition(":")
        secret = Secret(password)  # registered for redaction before anything else can print it
        endpoint = urlparse(data.get("proxyEndpoint", "")).netloc or data.get("proxyEndpoint", "")
        return Registry(ctx.registry or endpoint, username, secret, local=bool(ctx.registry))

    return ctx.memo("ecr.registry", load)


def put_ecr_image(ctx: Context, repository: str, tag: str, manifest: ImageManifest) -> None:
    """PutImage, idempotent: a tag that already holds this digest is success."""
    ecr = ctx.client("ecr")
    try:
        ecr.put_image(repositoryName=repository, imageManifest=manifest.body.decode(),
                      imageManifestMediaType=manifest.media_type, imageTag=tag, imageDigest=manifest.digest)
    except ClientError as exc:
        if error_code(exc) not in ("ImageAlreadyExistsException", "ImageTagAlreadyExistsException"):
            raise
        if _ecr_tag_digest(ctx, repository, tag) != manifest.digest:
            raise DockerError(f"{repository}:{tag} is immutable and already holds another image; push a new tag "
                              "or make the repository mutable") from None


def _ecr_tag_digest(ctx: Context, repository: str, tag: str) -> str | None:
    found = absent_none(lambda: ctx.client("ecr").describe_images(repositoryName=repository,
                                                                   imageIds=[{"imageTag": tag}]), "ecr")
    details = (found or {}).get("imageDetails", [])
    return str(details[0]["imageDigest"]) if details else None


def _ecr_manifest(ctx: Context, repository: str, reference: str) -> ImageManifest | None:
    image_id = {"imageDigest": reference} if reference.startswith("sha256:") else {"imageTag": reference}
    found = ctx.client("ecr").batch_get_image(repositoryName=repository, imageIds=[image_id],
                                              acceptedMediaTypes=list(MANIFEST_TYPES))
    images = found.get("images", [])
    if not images:
        return None
    image = images[0]
    body = image["imageManifest"].encode()
    media_type = image.get("imageManifestMediaType") or _media_type(body)
    return ImageManifest(body, media_type, str(image["imageId"]["imageDigest"]))


def _media_type(body: bytes) -> str:
    try:
        doc: Any = json.loads(body)
    except ValueError:
        return MANIFEST_TYPES[0]
    return str(doc.get("mediaType") or MANIFEST_TYPES[0]) if isinstance(doc, dict) else MANIFEST_TYPES[0]


def purge_local_repository(ctx: Context, repository: str) -> None:
    """After ECR deleted a repository, delete its manifests from the `--registry` stand-in too."""
    reg = registry(ctx)
    if reg.local:
        reg.purge(repository)
