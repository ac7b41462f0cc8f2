"""Access keys of a programmatic user, delivered straight into a secret store.

Address `iam.user.<name>.access_keys`: the set of keys of one user plus the store
(a Secrets Manager secret or an SSM SecureString) that holds the newest one as
JSON `{"AccessKeyId", "SecretAccessKey", "UserName", "CreateDate"}`.

Bookkeeping lives in tags and store metadata, never in a state file:
- the store's own metadata, written by the same call as the value: the key id it holds
  (a secret's AWSCURRENT version id starts with it; an SSM parameter's description ends
  with it). It is the truth for "delivered", so a run that dies between the store write
  and the tag below never makes the next run delete the key the store holds;
- store tag `reconciler:key-ids`: the key ids this tool delivered into the store;
- user tag `reconciler:key-intent`: set just before CreateAccessKey and removed once
  the secret is stored, so a key made by a run that died in between is recognised
  (created after the intent, never delivered) and removed by the next run; an intent
  left by a run that died after storing its key is removed by the next apply, so it
  can never make a later hand-made key look undelivered (and be deleted silently);
- user tag `reconciler:key-retired-<KEYID>`: the day a key was deactivated; it is
  deleted `grace_days` later;
- user tag `reconciler:key-handover-<KEYID>`: the day a hand-made key of an adopted user
  began its hand-over (written just before the new key is created, so a run that dies in
  between never leaves it looking merely unknown); it stays active `grace_days` from then,
  is then retired as above, and keeps the tag until it is deleted, so every plan of the
  hand-over says, with dates, what happens to it next.
A key the store does not know (made by hand) is deactivated and retired, loudly in
the plan, never deleted silently. Adopting a user (`--adopt`) whose key was made by hand
hands it over instead: its secret is unknown to the tool and people use it, so a new key
goes into the store and the old one keeps working for `grace_days` before it is retired;
each step is a dated plan note, and later plans show the steps still to come.
AWS allows two keys per user: no retired key is deleted inside its grace period to make
room; the rotation waits (a plan note says for which key and how many days), and the key in use stays active until its
replacement exists. A bookkeeping tag edited past reading never deletes a key.

The store is ownership-checked like any resource: one that exists under the manifest's
name without our stack tag, or tagged as another kind (`reconciler:kind`; a store without
the kind tag was made before it and is ours: the next apply adds it), is a blocked conflict
(unless --adopt; another stack's or kind's store, never), re-checked just before a key is
created and before the write, and destroy or replace deletes a store only while it is ours.

Read, per user: ListAccessKeys (keys are not in GetAccountAuthorizationDetails), fanned
out across users (`pacing.fan_out`); a key's last use (GetAccessKeyLastUsed, one call per
key) only for drift (`Context.purpose`), whose hygiene findings need it. The stores: one
ListSecrets (it returns tags) and one DescribeParameters, with the parameters' tags from
one Resource Groups Tagging API read; a parameter that read misses or shows stale
(`_tags_current`) costs one ListTagsForResource.

The secret value exists only between CreateAccessKey and the store write, inside a
`Secret`; it is never logged, returned, or put in a plan.
"""

from __future__ import annotations

import datetime
import json
import re
import uuid
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from botocore.exceptions import ClientError

from reconciler.aws import absent_none, absent_ok, error_code
from reconciler.errors import TerminalAwsError
from reconciler.kinds.base import Context, Kind, ReadResult
from reconciler.kinds.iam._api import authorization_details, user_owned
from reconciler.kinds.iam._hygiene import access_key_findings, classify_key_change, describe_key
from reconciler.manifest.model import DesiredResource
from reconciler.ownership import ADDRESS_TAG, KIND_TAG, STACK_TAG, of_kind, owned_by, tag_dict, tag_list
from reconciler.pacing import both, fan_out
from reconciler.plan.diff import diff_values
from reconciler.plan.model import (
    Action,
    AttrChange,
    Change,
    HygieneFinding,
    LiveResource,
    Note,
    Origin,
    info,
    scheduled,
)
from reconciler.secret import Secret

KEY_IDS_TAG = "reconciler:key-ids"
INTENT_TAG = "reconciler:key-intent"
RETIRED_PREFIX = "reconciler:key-retired-"
HANDOVER_PREFIX = "reconciler:key-handover-"


@dataclass(frozen=True)
class Step:
    """One thing update does, in order: delete, handover (start the grace of a hand-made key that stays
    active), create, retire (deactivate) or clear-intent; `wait` is only a note."""

    op: str
    key: str | None
    why: str


def key_steps(spec: Mapping[str, Any], attrs: Mapping[str, Any], *, adopting: bool = False) -> list[Step]:
    """Pure: the steps that bring the user's keys and store to the desired state.

    `adopting`: the user is being adopted (--adopt), so an active key unknown to the store
    was made by hand before the tool: it is handed over (kept active for `grace_days`,
    then retired) rather than deactivated today, and the handover is recorded before the
    new key is made. A handed-over key is retired only while another active key remains.

    Invariants: never more than two keys at any point (AWS's limit); a retired key is
    deleted only after `grace_days`, never early to make room; a key the store does not
    know is retired, never deleted; a key due for rotation is retired only while another
    active key remains (made in this run, or kept). When a new key needs a slot that no
    key may give up yet, the rotation waits: a `wait` step (a plan note, no write) says
    which key's grace must end first and in how many days.
    """
    keys = list(attrs.get("keys", []))
    grace = spec["grace_days"]
    steps: list[Step] = []
    kept: list[Mapping[str, Any]] = []
    for key in keys:
        role = key["role"]
        if role == "undelivered":
            steps.append(Step("delete", key["id"], "created by a run that died before storing it"))
        elif role == "retired" and not key.get("retired_unreadable") and key.get("retired_days", 0) >= grace:
            steps.append(Step("delete", key["id"], f"retired {key.get('retired_days')} days ago; grace ended"))
        else:
            kept.append(key)
    good = [k for k in kept if k["role"] == "delivered" and k["status"] == "Active"
            and k["age_days"] < spec["rotate_after_days"]]
    due = [k for k in kept if k["role"] == "delivered" and k["status"] == "Active"
           and k["age_days"] >= spec["rotate_after_days"]]
    retire: list[Step] = []
    handover: list[Step] = []
    handed_due: list[Step] = []  # retired below only while another active key remains
    for key in kept:
        if key["role"] == "handover":
            if key["status"] != "Active":
                retire.append(Step("retire", key["id"], "handed over, then deactivated by hand"))
            elif key.get("handover_unreadable"):
                handover.append(Step("handover", key["id"], "handover date unreadable; grace_days restart today"))
            elif key.get("handover_days", 0) >= grace:
                handed_due.append(Step("retire", key["id"], f"made by hand, handed over {key.get('handover_days')} "
                                                            "days ago; grace ended: deactivated"))
        elif key["role"] == "unknown" and key["status"] == "Active" and adopting:
            handover.append(Step("handover", key["id"], "made by hand before adoption (its secret is unknown to "
                                                        f"the tool); stays active for grace_days ({grace})"))
        elif key["role"] == "unknown" and key["status"] == "Active":
            retire.append(Step("retire", key["id"], "unknown to the store (created by hand); deactivated"))
        elif key["role"] == "delivered" and key["status"] == "Inactive":
            retire.append(Step("retire", key["id"], "deactivated by hand"))
        elif key["role"] == "unknown":
            retire.append(Step("retire", key["id"], "unknown to the store (created by hand)"))
        elif key.get("retired_unreadable"):
            # the retirement date was edited by hand: restart its grace today rather than guess
            retire.append(Step("retire", key["id"], "retirement date unreadable; grace_days restart today"))
    # the key the store holds is kept first (consumers read it there), then the youngest
    good.sort(key=lambda k: (k["id"] != attrs.get("held"), k["age_days"]))
    for key in good[spec["count"]:]:
        retire.append(Step("retire", key["id"], f"more active keys than count: {spec['count']}"))
    creates = max(0, spec["count"] - len(good))
    slots = max(0, 2 - len(kept))  # a kept key holds its slot until its grace ends: no early delete
    made = min(creates, slots)
    lost = bool(attrs.get("store_missing")) and not made and spec["count"] > 0 and slots > 0
    # retire due keys oldest first, but never the last active key while its replacement cannot be made yet
    working = min(len(good), spec["count"]) + made + int(lost)
    due.sort(key=lambda k: -k["age_days"])
    for index, key in enumerate(due):
        if spec["count"] == 0 or working + len(due) - index - 1 >= 1:
            retire.append(Step("retire", key["id"], f"{key['age_days']} days old (rotate after "
                                                     f"{spec['rotate_after_days']}); rotated"))
    # a handed-over key is deactivated only once another active key exists (kept, or made now)
    if good or made or lost or spec["count"] == 0:
        retire.extend(handed_due)
    steps.extend(handover)  # recorded before the create: a run dying between them never deactivates it
    for _ in range(made):
        steps.append(Step("create", None, "new key stored in " + store_label(spec["store"])))
    if lost:
        steps.append(Step("create", None, "the store is missing; a new key replaces the lost one"))
    if attrs.get("stale_intent") and not made and not lost:
        steps.append(Step("clear-intent", None, "left by a run that died after storing its key"))
    waiting = creates - made if not lost else 0
    if waiting > 0 or (attrs.get("store_missing") and spec["count"] > 0 and not made and not lost):
        steps.append(_wait_step(kept, {r.key for r in retire}, grace, {h.key for h in handover}))
    return steps + retire


def rotation_attrs(spec: Mapping[str, Any], attrs: Mapping[str, Any]) -> dict[str, Any]:
    """Pure: `attrs` as if every active delivered key were due for rotation (`--replace` of the keys).

    Through `key_steps`, that is an ordinary rotation with all its invariants (two keys at most,
    no early delete, the working key retired only once its replacement exists): new keys go into
    the same store, the old ones are deactivated and deleted after `grace_days`.
    """
    due = spec["rotate_after_days"]
    keys = [dict(k, age_days=max(k["age_days"], due)) if k["role"] == "delivered" and k["status"] == "Active"
            else dict(k) for k in attrs.get("keys", [])]
    return {**attrs, "keys": keys}


def _rotating(desired: DesiredResource | None, live: LiveResource | None, action: Action) -> bool:
    """A REPLACE that keeps the store is a rotation (`--replace`); one that moves the store is not."""
    return (action is Action.REPLACE and desired is not None and live is not None
            and store_label(desired.spec["store"]) == store_label(live.attrs.get("store", {})))


def _wait_step(kept: Sequence[Mapping[str, Any]], retiring: set[str | None], grace: int,
               handing: set[str | None] | frozenset[str | None] = frozenset()) -> Step:
    """The note for a new key that has no free slot: which key's grace ends first, and when."""
    ends = []
    for key in kept:
        if key["role"] == "retired":
            ends.append((max(0, grace - (0 if key.get("retired_unreadable") else key.get("retired_days", 0))),
                         key["id"]))
        elif key["role"] == "handover" and key["status"] == "Active":
            # active for the rest of its grace, then retired for another grace
            ends.append((grace + max(0, grace - key.get("handover_days", 0)), key["id"]))
        elif key["id"] in handing:
            ends.append((2 * grace, key["id"]))
        elif key["id"] in retiring:
            ends.append((grace, key["id"]))
    why = "a new key waits for a free slot (AWS allows two keys per user, and no key is deleted inside grace_days)"
    if not ends:
        return Step("wait", None, why)
    days, ident = min(ends)
    return Step("wait", ident, f"{why}: it can proceed when the grace of key {ident} ends, in {days} day(s)")


def _day(attrs: Mapping[str, Any], offset: int, start: str | None = None) -> str:
    """The date `offset` days after `start` (default: the day of the read, `attrs["today"]`), as YYYY-MM-DD;
    `in N day(s)` when the read gave no day (literal attrs)."""
    start = start or attrs.get("today")
    if not start:
        return f"in {offset} day(s)"
    return (datetime.date.fromisoformat(start) + datetime.timedelta(days=offset)).isoformat()


def handover_notes(spec: Mapping[str, Any], attrs: Mapping[str, Any], steps: Sequence[Step]) -> list[Note]:
    """Pure: every step of a hand-made key's hand-over, each with its date, on every plan until it is deleted.

    Starting now (a `handover` step): the new key, the grace, the deactivation and the deletion.
    Under way (a `handover` key, or a retired key that was handed over): what comes next, dated
    from the recorded start (deactivation and deletion happen on the first apply on or after
    their day, so the deletion day counts from the deactivation that really happened).
    """
    grace = spec["grace_days"]
    keys = {k["id"]: k for k in attrs.get("keys", [])}
    notes: list[Note] = []
    today = _day(attrs, 0)
    starting = [s.key for s in steps if s.op == "handover" and keys.get(str(s.key), {}).get("role") == "unknown"]
    creates = any(s.op == "create" for s in steps)
    for ident in starting:
        notes.append(info(f"key {ident} was made by hand and its secret is unknown to the tool: it is handed over "
                          "in steps, never deleted silently"))
        if creates:
            notes.append(info(f"step 1, this apply ({today}): a new key is created into "
                              f"{store_label(spec['store'])}"))
        notes.append(scheduled(f"step 2, {today} to {_day(attrs, grace)}: key {ident} stays active "
                               f"(grace_days: {grace}), so whoever uses it can move to the stored key"))
        notes.append(scheduled(f"step 3, on the first apply from {_day(attrs, grace)}: key {ident} is deactivated"))
        notes.append(scheduled(f"step 4, on the first apply from {_day(attrs, 2 * grace)} ({grace} days after its "
                               f"deactivation): key {ident} is deleted"))
    acting = {s.key for s in steps if s.op in ("retire", "delete")}
    for key in attrs.get("keys", []):
        since = key.get("handover_since")
        if not since or key["id"] in acting or key["id"] in starting:
            continue  # no hand-over under way, or this plan's diff says what happens to it now
        if key["role"] == "handover":
            notes.append(scheduled(f"key {key['id']} (made by hand, handed over on {since}) stays active until "
                                   f"{_day(attrs, grace, since)}; it is deactivated on the first apply from then, "
                                   f"and deleted {grace} days after that (from {_day(attrs, 2 * grace, since)})"))
        elif key["role"] == "retired" and not key.get("retired_unreadable"):
            off = _day(attrs, -int(key.get("retired_days", 0)))
            notes.append(scheduled(f"key {key['id']} (made by hand, handed over on {since}) was deactivated"
                                   + (f" on {off}" if attrs.get("today") else "")
                                   + f"; it is deleted on the first apply from "
                                   f"{_day(attrs, grace - int(key.get('retired_days', 0)))}"))
    return notes


def store_label(store: Mapping[str, Any]) -> str:
    if "secretsmanager" in store:
        return f"secretsmanager:{store['secretsmanager']}"
    return f"ssm:{store.get('ssm')}"


class AccessKeys(Kind):
    name = "iam.access_key"
    replace_on = frozenset({"store", "user"})

    def diff(self, desired: DesiredResource, live: LiveResource) -> list[AttrChange]:
        changes: list[AttrChange] = []
        # a missing store is not a moved one: the key steps delete undelivered keys and make a new one
        if not live.attrs.get("store_missing") and \
                store_label(desired.spec["store"]) != store_label(live.attrs.get("store", {})):
            changes.append(AttrChange("store", store_label(live.attrs.get("store", {})),
                                      store_label(desired.spec["store"]), forces_replacement=True))
            return changes
        if not live.attrs.get("store_missing"):
            want, have = _kms(desired.spec["store"].get("kms_key")), live.attrs.get("store", {}).get("kms_key")
            if want != have:
                changes.append(AttrChange("store.kms_key", have or DEFAULT_KMS, want or DEFAULT_KMS))
            if "store_tags" in live.attrs:
                changes.extend(diff_values(desired.spec.get("tags", {}), live.attrs["store_tags"], "store.tags"))
        keys = {k["id"]: k for k in live.attrs.get("keys", [])}
        for step in key_steps(desired.spec, live.attrs, adopting=not live.owned):
            if step.op == "wait":
                continue  # not a change: shown as a note, nothing is written
            if step.op == "handover":
                key = keys[str(step.key)]
                grace = desired.spec["grace_days"]
                changes.append(AttrChange(
                    f"keys.{step.key}", f"{key['status']}, {key['age_days']} days old",
                    f"Active until {_day(live.attrs, grace)}, then Inactive; deleted from "
                    f"{_day(live.attrs, 2 * grace)}: {step.why}"))
            elif step.op == "create":
                changes.append(AttrChange("keys.new", None, f"(sensitive) {step.why}", sensitive=False))
            elif step.op == "clear-intent":
                changes.append(AttrChange("keys.intent", "set", f"removed: {step.why}"))
            else:
                key = keys[str(step.key)]
                before = f"{key['status']}, {key['age_days']} days old"
                after = "deleted" if step.op == "delete" else "Inactive (deleted after grace_days)"
                changes.append(AttrChange(f"keys.{step.key}", before, f"{after}: {step.why}"))
        return changes

    def notes(self, desired: DesiredResource | None, live: LiveResource | None, action: Action) -> list[Note]:
        notes: list[Note] = []
        if live is not None:
            for key in live.attrs.get("keys", []):
                if key["role"] == "unknown":
                    notes.append(info(f"WARNING: key {key['id']} is unknown to the store (created by hand)"))
            for tag in live.attrs.get("unreadable_tags", []):
                notes.append(info(f"WARNING: tag {tag} on user {live.attrs['user']} has an unreadable value "
                                  "(edited by hand?); no key is deleted because of it"))
        if desired is not None and live is not None and action is not Action.DELETE:
            steps = key_steps(desired.spec, live.attrs, adopting=not live.owned)
            notes.extend(info(f"waiting: {s.why}") for s in steps if s.op == "wait")
            notes.extend(handover_notes(desired.spec, live.attrs, steps))
        if action is Action.DELETE and live is not None:
            notes.append(info(f"deletes every access key of {live.attrs['user']} and the stored secret"))
        if _rotating(desired, live, action):
            assert desired is not None and live is not None  # _rotating says so
            for step in key_steps(desired.spec, rotation_attrs(desired.spec, live.attrs)):
                if step.op == "create":
                    notes.append(info(f"rotation: a new key is stored in {store_label(desired.spec['store'])}"))
                elif step.op == "retire":
                    notes.append(info(f"rotation: key {step.key} is deactivated, and deleted after grace_days "
                                      f"({desired.spec['grace_days']})"))
        return notes

    # drift and hygiene: the rules live in _hygiene.py (pure, kind-specific, out of plan/)
    def classify(self, change: Change, attr: AttrChange) -> Origin:
        return classify_key_change(change, attr)

    def describe_added(self, change: Change, attr: AttrChange) -> list[str]:
        return [describe_key(change, attr)]

    def findings(self, change: Change) -> list[HygieneFinding]:
        return access_key_findings(change)

    def blocked(self, desired: DesiredResource | None, live: LiveResource | None, action: Action) -> str | None:
        """Another stack's store is never taken over, not even with --adopt (that would take its data);
        nor is an untagged store the manifest moves the keys onto (our old store still holds them);
        nor can a requested rotation start while no slot is free for its new key."""
        if _rotating(desired, live, action):
            assert desired is not None and live is not None  # _rotating says so
            steps = key_steps(desired.spec, rotation_attrs(desired.spec, live.attrs))
            if desired.spec["count"] == 0:
                return "--replace: count is 0, so there is no key to rotate"
            if not any(s.op == "create" for s in steps):
                why = next((s.why for s in steps if s.op == "wait"), "no new key can be made yet")
                return f"--replace: the rotation cannot start: {why}"
        if live is not None and live.attrs.get("store_moving"):
            # adopting while our own store still holds the keys would leave two stores for one address
            return (f"the manifest moves the keys to {store_label(live.attrs['store'])}, which exists without "
                    "our stack tag: name a store that does not exist yet")
        if live is None or not live.attrs.get("store_owner"):
            return None
        return (f"{store_label(live.attrs['store'])} belongs to stack {live.attrs['store_owner']}; --adopt never "
                "takes another stack's key store: name another store in the manifest")

    # -- read ---------------------------------------------------------------

    def read(self, ctx: Context, desired: Sequence[DesiredResource]) -> ReadResult:
        wanted = {d.spec["user"] for d in desired}

        def users_and_keys() -> tuple[dict[str, dict[str, str]], dict[str, list[dict[str, Any]]]]:
            users: dict[str, dict[str, str]] = {}
            for user in authorization_details(ctx)["users"]:
                tags = tag_dict(user.get("Tags"))
                # a same-named user the stack does not own is read too: its keys show in the plan (blocked
                # unless --adopt), instead of being met for the first time during apply
                if user_owned(tags, ctx.stack) or user["UserName"] in wanted:
                    users[user["UserName"]] = tags
            keys = fan_out(lambda name: _list_keys(ctx, name), users, name="iam-keys")
            return users, dict(zip(users, keys, strict=True))

        # the stores (Secrets Manager, SSM) and the users' keys (IAM) are read at the same time
        stores, (users, listed) = both(lambda: _stores(ctx), users_and_keys, name="iam-keys")
        found: dict[str, LiveResource] = {}
        not_checked: dict[str, str] = {}
        today = ctx.now
        day = today.astimezone(datetime.UTC).date().isoformat()  # for the dates of a hand-over
        # a store the manifest names that exists without our stack tag is a conflict, never written or deleted
        wanted_store = {d.spec["user"]: d.spec["store"] for d in desired}
        foreign: dict[str, tuple[Mapping[str, Any], str, bool]] = {}
        for name, spec_store in sorted(wanted_store.items()):
            mine = stores.get(f"iam.user.{name}.access_keys")
            if mine is None or store_label(mine["store"]) != store_label(spec_store):  # new, or moved
                there = _describe_store(ctx, spec_store)
                if there is not None and not _store_ours(there["tags"], ctx.stack):
                    foreign[name] = (spec_store, _store_owner(there["tags"]), mine is not None)
        for name, (spec_store, owner, moving) in foreign.items():
            if name not in users:  # the user does not exist yet: the store alone is the conflict
                found[f"iam.user.{name}.access_keys"] = _conflict(self.name, name, [], spec_store, owner, moving,
                                                                   today=day)
        for name, tags in sorted(users.items()):
            address = f"iam.user.{name}.access_keys"
            store = stores.get(address)
            keys = listed[name]
            if store is None and not keys and name not in wanted:
                continue
            if store is None and not keys and name not in foreign:
                zero = [d for d in desired if d.spec["user"] == name and d.spec["count"] == 0]
                if zero:  # no keys wanted and none there: in sync, nothing to store
                    found[address] = LiveResource(address, self.name, name, {
                        "user": name, "keys": [], "store": dict(zero[0].spec["store"])},
                        owned=user_owned(tags, ctx.stack), depends_on=(f"iam.user.{name}",))
                continue  # nothing exists yet: the plan creates it
            delivered = set((store or {}).get("key_ids", []))
            unreadable: list[str] = []
            intent = _read_time(tags, INTENT_TAG, unreadable)
            normal = []
            for key in keys:
                created = key["CreateDate"]
                retired_tag = RETIRED_PREFIX + key["AccessKeyId"]
                retired = _read_time(tags, retired_tag, unreadable)
                handover_tag = HANDOVER_PREFIX + key["AccessKeyId"]
                handed = _read_time(tags, handover_tag, unreadable)
                if retired_tag in tags:  # an unreadable day counts as in grace; its grace restarts
                    role = "retired"
                elif handover_tag in tags:  # a hand-made key of an adopted user, still active in its grace
                    role = "handover"
                elif key["AccessKeyId"] in delivered:
                    role = "delivered"
                elif intent is not None and created >= intent - datetime.timedelta(minutes=1):
                    role = "undelivered"
                else:
                    role = "unknown"
                entry: dict[str, Any] = {
                    "id": key["AccessKeyId"], "status": key["Status"], "role": role,
                    "age_days": (today - created).days,
                }
                if "LastUsed" in key:  # read for drift only (`_list_keys`); absent: not read, never "unused"
                    entry["last_used_days"] = (today - key["LastUsed"]).days if key["LastUsed"] else None
                if retired is not None:
                    entry["retired_days"] = (today - retired).days
                elif role == "retired":
                    entry["retired_unreadable"] = True
                if handed is not None:
                    entry["handover_since"] = handed.date().isoformat()
                    entry["handover_days"] = (today - handed).days
                elif role == "handover":
                    entry["handover_unreadable"] = True
                normal.append(entry)
            normal.sort(key=lambda k: (k["age_days"], k["id"]))
            if name in foreign:
                found[address] = _conflict(self.name, name, normal, *foreign[name], today=day)
                continue
            attrs: dict[str, Any] = {"user": name, "keys": normal, "today": day,
                                     "store": dict((store or {}).get("store", {}))}
            if store is None:
                attrs["store_missing"] = True
            else:
                # compared with the desired tags (declared keys only), so a store made before a tag gets it
                attrs["store_tags"] = {k: v for k, v in store["tags"].items() if k != KEY_IDS_TAG}
                if store.get("held"):
                    attrs["held"] = store["held"]
                want = wanted_store.get(name, {})
                kms, unknown = _same_kms(ctx, _kms(want.get("kms_key")), store.get("kms_key"))
                if kms:
                    attrs["store"]["kms_key"] = kms
                if unknown:  # never a diff from a read that could not finish: said, not guessed
                    not_checked[address] = unknown
            # an unreadable intent marks no key undelivered (so none is deleted because of it); it is cleared
            if (intent is not None or INTENT_TAG in unreadable) and not any(k["role"] == "undelivered" for k in normal):
                attrs["stale_intent"] = True
            if unreadable:
                attrs["unreadable_tags"] = sorted(unreadable)
            found[address] = LiveResource(address, self.name, name, attrs, owned=user_owned(tags, ctx.stack),
                                          depends_on=(f"iam.user.{name}",), outputs=_outputs(store, normal))
        return ReadResult(found, not_checked)

    # -- apply --------------------------------------------------------------

    def create(self, ctx: Context, change: Change) -> str:
        self._run(ctx, change.want.spec, {"keys": [], "store": {}, "store_missing": True})
        return str(change.want.spec["user"])

    def update(self, ctx: Context, change: Change) -> None:
        # an adoption (the user without our stack tag) hands a hand-made key over instead of deactivating it
        self._run(ctx, change.want.spec, change.have.attrs, adopting=not change.have.owned)

    def _run(self, ctx: Context, spec: Mapping[str, Any], attrs: Mapping[str, Any], *,
             adopting: bool = False) -> None:
        iam = ctx.client("iam")
        user = spec["user"]
        delivered = [k["id"] for k in attrs.get("keys", []) if k["role"] == "delivered" and k["status"] == "Active"]
        steps = key_steps(spec, attrs, adopting=adopting)
        for step in steps:
            if step.op == "delete":
                _delete_key(ctx, user, str(step.key))
                _untag_user(ctx, user, [RETIRED_PREFIX + str(step.key), HANDOVER_PREFIX + str(step.key)])
                delivered = [k for k in delivered if k != step.key]
            elif step.op == "handover":
                # before the new key exists: the old one is never taken for merely unknown (and deactivated)
                iam.tag_user(UserName=user, Tags=[{"Key": HANDOVER_PREFIX + str(step.key),
                                                   "Value": _format_time(ctx.now)}])
            elif step.op == "retire":
                iam.update_access_key(UserName=user, AccessKeyId=step.key, Status="Inactive")
                iam.tag_user(UserName=user, Tags=[{"Key": RETIRED_PREFIX + str(step.key),
                                                   "Value": _format_time(ctx.now)}])
                delivered = [k for k in delivered if k != step.key]
            elif step.op == "clear-intent":
                _untag_user(ctx, user, [INTENT_TAG])
            elif step.op == "create":
                # before any key exists: a store that is not ours is never written (the key would be lost)
                _check_store_writable(ctx, spec["store"], adopt=attrs.get("store_owner") == "")
                iam.tag_user(UserName=user, Tags=[{"Key": INTENT_TAG, "Value": _format_time(ctx.now)}])
                existing = {k["AccessKeyId"] for k in _list_keys_metadata(ctx, user)}
                response = iam.create_access_key(UserName=user)["AccessKey"]
                key_id = str(response["AccessKeyId"])
                secret = Secret(str(response.pop("SecretAccessKey")))
                payload = Secret(json.dumps({
                    "AccessKeyId": key_id, "SecretAccessKey": secret.reveal(), "UserName": user,
                    "CreateDate": response["CreateDate"].isoformat()}))
                del response, secret
                delivered = [*delivered, key_id][-2:]
                _write_store(ctx, spec, payload, delivered, key_id, adopt=attrs.get("store_owner") == "")
                # before the intent goes: keys whose CreateAccessKey answer was lost (botocore retried it)
                _delete_undelivered(ctx, user, keep=existing | set(delivered))
                _untag_user(ctx, user, [INTENT_TAG])
        if not any(s.op == "create" for s in steps) and attrs.get("store") \
                and "store_owner" not in attrs:  # bookkeeping goes only on a store that is ours
            _tag_store(ctx, spec, delivered)
        if not attrs.get("store_missing") and "store_owner" not in attrs and \
                _kms(spec["store"].get("kms_key")) != attrs.get("store", {}).get("kms_key"):
            _set_store_kms(ctx, spec)

    def delete(self, ctx: Context, change: Change) -> None:
        user = change.have.attrs["user"]
        for key in change.have.attrs.get("keys", []):
            _delete_key(ctx, user, key["id"])
        _untag_user(ctx, user, [INTENT_TAG, *(prefix + k["id"] for k in change.have.attrs.get("keys", [])
                                              for prefix in (RETIRED_PREFIX, HANDOVER_PREFIX))])
        _delete_store(ctx, change.have.attrs.get("store", {}))

    def replace(self, ctx: Context, change: Change) -> str:
        if _rotating(change.desired, change.live, change.action):
            # a requested rotation (--replace): the store stays; its key is rotated as when it falls due
            self._run(ctx, change.want.spec, rotation_attrs(change.want.spec, change.have.attrs))
            return str(change.want.spec["user"])
        # new store first, so the user is never without a stored working key
        old = change.have.attrs
        self._run(ctx, change.want.spec, {"keys": [], "store": {}, "store_missing": True})
        for key in old.get("keys", []):
            if key["role"] != "delivered" or key["status"] != "Active":
                continue
            ctx.client("iam").update_access_key(UserName=old["user"], AccessKeyId=key["id"], Status="Inactive")
            ctx.client("iam").tag_user(UserName=old["user"], Tags=[{"Key": RETIRED_PREFIX + key["id"],
                                                                    "Value": _format_time(ctx.now)}])
        _delete_store(ctx, old.get("store", {}))
        return str(change.want.spec["user"])


# -- helpers -------------------------------------------------------------------

def _format_time(moment: datetime.datetime) -> str:
    return moment.astimezone(datetime.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def _parse_time(text: str | None) -> datetime.datetime | None:
    if not text:
        return None
    return datetime.datetime.strptime(text, "%Y-%m-%dT%H:%M:%SZ").replace(tzinfo=datetime.UTC)


def _read_time(tags: Mapping[str, str], key: str, unreadable: list[str]) -> datetime.datetime | None:
    """The time in one bookkeeping tag; None (and `key` noted in `unreadable`) when edited past reading."""
    try:
        return _parse_time(tags.get(key))
    except ValueError:  # a hand-edited value: judged safe by the caller, never a reason to delete
        unreadable.append(key)
        return None


def _list_keys(ctx: Context, user: str) -> list[dict[str, Any]]:
    iam = ctx.client("iam")
    keys = [k for page in iam.get_paginator("list_access_keys").paginate(UserName=user)
            for k in page["AccessKeyMetadata"]]
    if ctx.purpose == "drift":  # only drift's hygiene findings need a key's last use: one call per key
        for key in keys:
            used = iam.get_access_key_last_used(AccessKeyId=key["AccessKeyId"]).get("AccessKeyLastUsed", {})
            key["LastUsed"] = used.get("LastUsedDate")
    return keys


def _stores(ctx: Context) -> dict[str, dict[str, Any]]:
    """Every store of the stack and this kind, by the address tag: two batched listings, run at once."""
    secrets, parameters = both(lambda: _secret_stores(ctx), lambda: _parameter_stores(ctx), name="iam-stores")
    return {**secrets, **parameters}


def _secret_stores(ctx: Context) -> dict[str, dict[str, Any]]:
    """The stack's Secrets Manager stores of this kind, by the address tag: one paginated ListSecrets."""
    found: dict[str, dict[str, Any]] = {}
    sm = ctx.client("secretsmanager")
    for page in sm.get_paginator("list_secrets").paginate(
            Filters=[{"Key": "tag-key", "Values": [STACK_TAG]}, {"Key": "tag-value", "Values": [ctx.stack]}],
            PaginationConfig={"PageSize": 100}):  # the most AWS allows: fewer pages, fewer calls
        for item in page.get("SecretList", []):
            tags = tag_dict(item.get("Tags"))
            if _store_ours(tags, ctx.stack) and ADDRESS_TAG in tags:
                held = held_key_id(versions=item.get("SecretVersionsToStages"))
                found[tags[ADDRESS_TAG]] = {"store": {"secretsmanager": item["Name"]},
                                            "key_ids": _delivered(tags, held), "held": held,
                                            "kms_key": _kms(item.get("KmsKeyId")), "tags": tags,
                                            "arn": item.get("ARN")}
    return found


def _parameter_stores(ctx: Context) -> dict[str, dict[str, Any]]:
    """The stack's SSM stores of this kind, by the address tag: DescribeParameters, then their tags in one
    Tagging API read (`_parameter_tags`)."""
    found: dict[str, dict[str, Any]] = {}
    ssm = ctx.client("ssm")
    params = [p for page in ssm.get_paginator("describe_parameters").paginate(
        ParameterFilters=[{"Key": f"tag:{STACK_TAG}", "Values": [ctx.stack]}],
        PaginationConfig={"PageSize": 50}) for p in page["Parameters"]]  # AWS's most; its default is 10
    indexed = _parameter_tags(ctx) if params else {}
    for param in params:
        name = param["Name"]
        held = held_key_id(description=param.get("Description"))
        tags = indexed.get(param.get("ARN") or _parameter_arn(ctx, name), {})
        if not tags or not _tags_current(tags, held):
            # not in the Tagging API's index, or the index lags the last key write: SSM itself is the truth
            tags = tag_dict(ssm.list_tags_for_resource(ResourceType="Parameter", ResourceId=name)["TagList"])
        if _store_ours(tags, ctx.stack) and ADDRESS_TAG in tags:
            found[tags[ADDRESS_TAG]] = {"store": {"ssm": name}, "key_ids": _delivered(tags, held),
                                        "held": held, "kms_key": _kms(param.get("KeyId")), "tags": tags,
                                        "arn": param.get("ARN")}
    return found


# Errors that mean the Resource Groups Tagging API is not available to these credentials (tag:GetResources
# not granted, or an endpoint without it): the per-parameter reads still work, so they are used instead.
_NO_TAGGING_API = frozenset({"AccessDenied", "AccessDeniedException", "UnauthorizedOperation",
                             "UnrecognizedClientException", "InvalidAction", "NotImplemented"})


def _parameter_tags(ctx: Context) -> dict[str, dict[str, str]]:
    """The tags of the stack's SSM parameters by ARN, from the Resource Groups Tagging API: one paginated
    read for all of them (DescribeParameters returns no tags; SSM's ListTagsForResource is one call per
    parameter). Empty when the API is not available, so every parameter falls back to its own read.

    The API's index is eventually consistent: a parameter missing from it, or one whose tags lag its
    last key write (`_tags_current`), is read from SSM itself by the caller.
    """
    paginator = ctx.client("resourcegroupstaggingapi").get_paginator("get_resources")
    found: dict[str, dict[str, str]] = {}
    try:
        for page in paginator.paginate(ResourceTypeFilters=["ssm:parameter"],
                                       TagFilters=[{"Key": STACK_TAG, "Values": [ctx.stack]}],
                                       PaginationConfig={"PageSize": 100}):
            for item in page.get("ResourceTagMappingList", []):
                found[item["ResourceARN"]] = tag_dict(item.get("Tags"))
    except ClientError as exc:
        if error_code(exc) not in _NO_TAGGING_API:
            raise
        return {}
    return found


def _parameter_arn(ctx: Context, name: str) -> str:
    """A parameter's ARN when DescribeParameters gave none: `parameter/a/b` for `/a/b` and for `a/b`."""
    return ctx.arn("ssm", "parameter/" + name.lstrip("/"))


def _tags_current(tags: Mapping[str, str], held: str | None) -> bool:
    """Whether indexed tags are as new as the store's value: every key write tags the store with the
    key ids, the held one included (`_write_store`), and the held id is read from SSM itself."""
    return held is None or held in tags.get(KEY_IDS_TAG, "").split()


DEFAULT_KMS = "(AWS managed key)"
_DEFAULT_KMS_ALIASES = frozenset({"alias/aws/secretsmanager", "alias/aws/ssm"})


def _kms(value: str | None) -> str | None:
    """A store's KMS key as compared: None for the AWS-managed default, however it is spelled."""
    if not value or value in _DEFAULT_KMS_ALIASES or value.endswith(tuple(":" + a for a in _DEFAULT_KMS_ALIASES)):
        return None
    return value


def _same_kms(ctx: Context, want: str | None, have: str | None) -> tuple[str | None, str | None]:
    """(the live key as compared, why it could not be compared or None).

    Two spellings of one key (alias, id, ARN) are the same key: resolved with kms:DescribeKey when the
    text differs. A resolution that fails (denied, throttled, gone) is reported not checked and reads
    as `want`, so it can never plan a change.
    """
    if want == have or want is None or have is None:
        return have, None
    try:
        if _key_arn(ctx, want) == _key_arn(ctx, have):
            return want, None
    except ClientError as exc:
        return want, f"store kms_key not compared: kms:DescribeKey failed ({error_code(exc)})"
    return have, None


def _key_arn(ctx: Context, key: str) -> str:
    return ctx.memo(f"kms:arn:{key}", lambda: str(ctx.client("kms").describe_key(KeyId=key)["KeyMetadata"]["Arn"]))


def _set_store_kms(ctx: Context, spec: Mapping[str, Any]) -> None:
    """Encrypt the store with the manifest's key (or the AWS-managed one), keeping its value and metadata."""
    store = spec["store"]
    if "secretsmanager" in store:
        ctx.client("secretsmanager").update_secret(
            SecretId=store["secretsmanager"], KmsKeyId=store.get("kms_key") or "alias/aws/secretsmanager")
        return
    # SSM has no re-encrypt call: the value is put again under the new key, held only inside a Secret
    ssm = ctx.client("ssm")
    current = ssm.get_parameter(Name=store["ssm"], WithDecryption=True)["Parameter"]
    value = Secret(str(current.pop("Value")))
    del current
    listed = ssm.describe_parameters(
        ParameterFilters=[{"Key": "Name", "Option": "Equals", "Values": [store["ssm"]]}])["Parameters"]
    extra = {"Description": listed[0]["Description"]} if listed and listed[0].get("Description") else {}
    ssm.put_parameter(Name=store["ssm"], Value=value.reveal(), Type="SecureString", Overwrite=True,
                      KeyId=store.get("kms_key") or "alias/aws/ssm", **extra)


def _delivered(tags: Mapping[str, str], held: str | None) -> list[str]:
    """Delivered keys: those the tag names, and the one the store's own metadata says it holds (the truth
    when a run died between the store write and the tag write)."""
    return [*tags.get(KEY_IDS_TAG, "").split(), *([held] if held else [])]


def _conflict(kind: str, user: str, keys: list[dict[str, Any]], store: Mapping[str, Any],
              owner: str, moving: bool = False, *, today: str | None = None) -> LiveResource:
    """The address, when the store the manifest names exists without our stack tag (`owner`: its stack, or '').

    Unowned, so the plan shows a blocked conflict naming the store (unless --adopt; never for another
    stack's store, see `blocked`), and destroy never deletes it.
    """
    label = f"{store_label(store)} (owned by {'stack ' + owner if owner else 'nobody'})"
    return LiveResource(f"iam.user.{user}.access_keys", kind, label,
                        {"user": user, "keys": keys, "store": dict(store), "store_owner": owner,
                         **({"store_moving": True} if moving else {}), **({"today": today} if today else {})},
                        owned=False, depends_on=(f"iam.user.{user}",))


def _outputs(store: Mapping[str, Any] | None, keys: Sequence[Mapping[str, Any]]) -> dict[str, str]:
    """What `reconcile output` shows: where the secret is kept (never the secret) and the key ids it delivered."""
    out: dict[str, str] = {}
    where = (store or {}).get("store") or {}
    if "secretsmanager" in where:
        out["store"], out["store_type"] = str(where["secretsmanager"]), "secretsmanager"
    elif where.get("ssm"):
        out["store"], out["store_type"] = str(where["ssm"]), "ssm"
    if store and store.get("arn"):
        out["store_arn"] = str(store["arn"])
    delivered = [str(k["id"]) for k in keys if k["role"] == "delivered" and k["status"] == "Active"]
    if delivered:  # an access key id is not a secret; keys are sorted newest first
        out["access_key_id"] = delivered[0]
    return out


def _store_ours(tags: Mapping[str, str], stack: str) -> bool:
    """A store of this stack and of this kind (no kind tag: made before the tag, still ours)."""
    return owned_by(tags, stack) and of_kind(tags, KIND.name)


def _store_owner(tags: Mapping[str, str]) -> str:
    """Who a store that is not ours belongs to, for messages: its stack ('' for nobody), and its kind if another."""
    stack, kind = tags.get(STACK_TAG, ""), tags.get(KIND_TAG)
    return f"{stack} (as {kind})" if stack and kind and kind != KIND.name else stack


def _describe_store(ctx: Context, store: Mapping[str, Any]) -> dict[str, Any] | None:
    """Tags of the store named in `store`, or None when there is no such store. Read-only calls only."""
    if "secretsmanager" in store:
        # only "not found" reads as no store: a denied or failed read fails the run
        found = absent_none(lambda: ctx.client("secretsmanager").describe_secret(SecretId=store["secretsmanager"]),
                            "secretsmanager")
        return None if found is None else {"tags": tag_dict(found.get("Tags"))}
    ssm = ctx.client("ssm")
    listed = ssm.describe_parameters(
        ParameterFilters=[{"Key": "Name", "Option": "Equals", "Values": [store["ssm"]]}])["Parameters"]
    if not listed:
        return None
    tags = ssm.list_tags_for_resource(ResourceType="Parameter", ResourceId=store["ssm"])["TagList"]
    return {"tags": tag_dict(tags)}


def _check_store_writable(ctx: Context, store: Mapping[str, Any], *, adopt: bool) -> None:
    """Refuse to write a store that exists and is not ours (checked again at write time: the plan may be old).

    Writable: no such store, a store tagged with our stack, or (`adopt`, approved in the plan) an untagged one.
    """
    there = _describe_store(ctx, store)
    if there is None or _store_ours(there["tags"], ctx.stack):
        return
    owner = _store_owner(there["tags"])
    if adopt and not owner:
        return
    raise TerminalAwsError(f"{store_label(store)} already exists and is owned by "
                           f"{'stack ' + owner if owner else 'nobody'}, not stack {ctx.stack}; nothing was "
                           "written to it. Choose another store" + ("" if owner else ", or re-run with --adopt"))


def _write_store(ctx: Context, spec: Mapping[str, Any], payload: Secret, key_ids: list[str], key_id: str, *,
                 adopt: bool = False) -> None:
    """Store the key; the SAME call records `key_id` in the store's non-secret metadata (see `held_key_id`).

    So a run that dies after this write but before the `reconciler:key-ids` tag lands still leaves the store
    saying which key it holds, and the next run never deletes that key as undelivered.
    """
    store = spec["store"]
    tags = {**spec["tags"], KEY_IDS_TAG: " ".join(key_ids)}
    token = _version_token(key_id)
    if "secretsmanager" in store:
        sm = ctx.client("secretsmanager")
        extra = {"KmsKeyId": store["kms_key"]} if "kms_key" in store else {}
        try:
            sm.create_secret(Name=store["secretsmanager"], SecretString=payload.reveal(), Tags=tag_list(tags),
                             Description=f"access key of IAM user {spec['user']}, managed by reconciler",
                             ClientRequestToken=token, **extra)
        except ClientError as exc:
            if error_code(exc) != "ResourceExistsException":
                raise
            _check_store_writable(ctx, store, adopt=adopt)  # created by someone else since the first check?
            sm.put_secret_value(SecretId=store["secretsmanager"], SecretString=payload.reveal(),
                                ClientRequestToken=token)
            sm.tag_resource(SecretId=store["secretsmanager"], Tags=tag_list(tags))
    else:
        ssm = ctx.client("ssm")
        extra = {"KeyId": store["kms_key"]} if "kms_key" in store else {}
        try:
            ssm.put_parameter(Name=store["ssm"], Value=payload.reveal(), Type="SecureString", Tags=tag_list(tags),
                              Description=_description(spec["user"], key_id), **extra)
        except ClientError as exc:
            if error_code(exc) != "ParameterAlreadyExists":
                raise
            _check_store_writable(ctx, store, adopt=adopt)
            ssm.put_parameter(Name=store["ssm"], Value=payload.reveal(), Type="SecureString", Overwrite=True,
                              Description=_description(spec["user"], key_id), **extra)
            ssm.add_tags_to_resource(ResourceType="Parameter", ResourceId=store["ssm"], Tags=tag_list(tags))


# The key id a store holds, kept in non-secret metadata written by the same call as the value:
# a secret's AWSCURRENT version id (our ClientRequestToken) starts with it; an SSM parameter's
# description ends with it. Never the value itself: reading that needs GetSecretValue/decryption.
_HELD_DESCRIPTION = re.compile(r"; holds key ([A-Z0-9]{16,128})$")
_HELD_TOKEN = re.compile(r"^([A-Z0-9]{16,63})-[0-9a-f]+$")


def _version_token(key_id: str) -> str:
    """A version id (32-64 characters, unique per write) that names the key it stores."""
    token = f"{key_id}-{uuid.uuid4().hex}"[:64]
    return token if _HELD_TOKEN.match(token) else uuid.uuid4().hex  # an odd key id: plain token


def _description(user: str, key_id: str) -> str:
    return f"access key of IAM user {user}, managed by reconciler; holds key {key_id}"


def held_key_id(*, versions: Mapping[str, Sequence[str]] | None = None, description: str | None = None) -> str | None:
    """Pure: the key id the store's metadata says it holds (AWSCURRENT version, or SSM description), or None."""
    for version, stages in (versions or {}).items():
        found = _HELD_TOKEN.match(version)
        if "AWSCURRENT" in stages and found:
            return found.group(1)
    found = _HELD_DESCRIPTION.search(description or "")
    return found.group(1) if found else None


def _tag_store(ctx: Context, spec: Mapping[str, Any], key_ids: list[str]) -> None:
    """The bookkeeping tag and the desired tags (a store made before `reconciler:kind` gets it here)."""
    store = spec["store"]
    tag = tag_list({**spec.get("tags", {}), KEY_IDS_TAG: " ".join(key_ids)})
    if "secretsmanager" in store:
        ctx.client("secretsmanager").tag_resource(SecretId=store["secretsmanager"], Tags=tag)
    elif "ssm" in store:
        ctx.client("ssm").add_tags_to_resource(ResourceType="Parameter", ResourceId=store["ssm"], Tags=tag)


def _delete_store(ctx: Context, store: Mapping[str, Any]) -> None:
    """Delete the store only if it still carries our stack tag (read just before: the plan may be old)."""
    if not store:
        return
    there = _describe_store(ctx, store)
    if there is None:
        return
    if not _store_ours(there["tags"], ctx.stack):
        ctx.log(f"  left {store_label(store)} in place: it is not tagged as this stack's key store")
        return
    with absent_ok("secretsmanager", "ssm"):
        if "secretsmanager" in store:
            ctx.client("secretsmanager").delete_secret(SecretId=store["secretsmanager"],
                                                       ForceDeleteWithoutRecovery=True)
        elif "ssm" in store:
            ctx.client("ssm").delete_parameter(Name=store["ssm"])


def _delete_key(ctx: Context, user: str, key_id: str) -> None:
    with absent_ok("iam"):
        ctx.client("iam").delete_access_key(UserName=user, AccessKeyId=key_id)


def _delete_undelivered(ctx: Context, user: str, keep: set[str]) -> None:
    """Delete keys created since this run's intent that nobody received (their secret is lost)."""
    since = ctx.now - datetime.timedelta(minutes=1)  # the same slack as `read`'s undelivered test
    for key in _list_keys_metadata(ctx, user):
        if key["AccessKeyId"] not in keep and key["CreateDate"] >= since:
            _delete_key(ctx, user, key["AccessKeyId"])


def _list_keys_metadata(ctx: Context, user: str) -> list[dict[str, Any]]:
    paginator = ctx.client("iam").get_paginator("list_access_keys")
    return [k for page in paginator.paginate(UserName=user) for k in page["AccessKeyMetadata"]]


def _untag_user(ctx: Context, user: str, keys: list[str]) -> None:
    if keys:
        with absent_ok("iam"):
            ctx.client("iam").untag_user(UserName=user, TagKeys=keys)


KIND = AccessKeys()
