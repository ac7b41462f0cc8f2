"""`make demo`: the main job end to end against a local AWS emulator it starts itself.

validate -> plan -> apply -> plan (empty) -> a change by hand -> drift (exit 2)
-> apply (heals) -> drift (exit 0) -> destroy. Uses manifests/maestro.yaml.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from emulators import moto_server, registry

ROOT = Path(__file__).resolve().parent.parent
MANIFEST = "manifests/maestro.yaml"


def step(title: str, args: list[str], env: dict[str, str], expect: tuple[int, ...] = (0,)) -> None:
    print(f"\n\033[1m$ reconcile {' '.join(args)}\033[0m   # {title}", flush=True)
    code = subprocess.run([sys.executable, "-m", "reconciler.cli", *args], env=env, cwd=ROOT).returncode
    print(f"(exit {code})", flush=True)
    if code not in expect:
        sys.exit(f"demo: `reconcile {' '.join(args)}` exited {code}, expected {expect}")


def main() -> None:
    with moto_server() as endpoint, registry() as local_registry:
        env = {**os.environ, "AWS_ENDPOINT_URL": endpoint, "AWS_ACCESS_KEY_ID": "demo",
               "AWS_SECRET_ACCESS_KEY": "demo-not-a-secret", "AWS_DEFAULT_REGION": "ap-northeast-1"}
        reg = ["--registry", local_registry]
        step("schema and rules; no AWS call", ["validate", MANIFEST], env)
        step("what would change (read-only)", ["plan", MANIFEST, *reg], env)
        step("converge", ["apply", MANIFEST, "--auto-approve", *reg], env)
        step("nothing left to do", ["plan", MANIFEST, "--detailed-exitcode", *reg], env)
        print("\n# someone attaches a policy to the user by hand")
        import boto3

        iam = boto3.client("iam", endpoint_url=endpoint, region_name="ap-northeast-1",
                           aws_access_key_id="demo", aws_secret_access_key="demo-not-a-secret")
        iam.attach_user_policy(UserName="my-app-developer", PolicyArn="arn:aws:iam::aws:policy/ReadOnlyAccess")
        step("drift found (exit 2)", ["drift", MANIFEST, *reg], env, expect=(2,))
        step("heal", ["apply", MANIFEST, "--auto-approve", *reg], env)
        step("in sync again", ["drift", MANIFEST, *reg], env)
        step("tear it all down", ["destroy", MANIFEST, "--auto-approve", *reg], env)
        step("the account is empty again: everything would be created (exit 2)",
             ["plan", MANIFEST, "--detailed-exitcode", *reg], env, expect=(2,))
    print("\ndemo finished")


if __name__ == "__main__":
    main()
