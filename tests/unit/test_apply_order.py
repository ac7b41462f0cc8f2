"""The apply walk with plain-Python kinds: order, parallelism, upstream failure."""

from __future__ import annotations

import datetime
import threading
import time
from typing import Any

from reconciler.engine.apply import apply_plan
from reconciler.kinds.base import Context, Kind
from reconciler.manifest.model import DesiredResource
from reconciler.plan.model import Action, Change, LiveResource, Outcome, Plan, ReplaceOrder


class Recorder(Kind):
    name = "test.thing"

    def __init__(self, fail: set[str] | None = None, delay: float = 0.0) -> None:
        self.log: list[tuple[str, str]] = []
        self.fail = fail or set()
        self.delay = delay
        self.lock = threading.Lock()
        self.running = 0
        self.peak = 0

    def _do(self, op: str, change: Change) -> str:
        with self.lock:
            self.running += 1
            self.peak = max(self.peak, self.running)
        time.sleep(self.delay)
        with self.lock:
            self.running -= 1
            self.log.append((op, change.address))
        if change.address in self.fail:
            raise RuntimeError(f"boom at {change.address}")
        return "id-" + change.address

    def create(self, ctx: Context, change: Change) -> str:
        return self._do("create", change)

    def update(self, ctx: Context, change: Change) -> None:
        self._do("update", change)

    def delete(self, ctx: Context, change: Change) -> None:
        self._do("delete", change)


def ctx() -> Context:
    return Context(clients=None, stack="s", region="r", account="1", now=datetime.datetime.now(datetime.UTC))  # type: ignore[arg-type]


def create(address: str, *deps: str) -> Change:
    return Change(address, "test.thing", Action.CREATE, "missing", (), deps,
                  DesiredResource(address, "test.thing", {}, deps))


def delete(address: str, *deps: str) -> Change:
    return Change(address, "test.thing", Action.DELETE, "gone", (), deps, None,
                  LiveResource(address, "test.thing", address, {}, depends_on=deps))


def plan(*changes: Change) -> Plan:
    return Plan("s", "r", "1", "0" * 64, "0" * 64, changes)


def test_creates_follow_dependencies_and_deletes_go_in_reverse() -> None:
    kind = Recorder()
    results = apply_plan(plan(create("c", "b"), create("b", "a"), create("a"),
                              delete("z", "y"), delete("y")), ctx(), {"test.thing": kind}, parallelism=1)
    order = [address for _, address in kind.log]
    assert order.index("a") < order.index("b") < order.index("c")
    assert order.index("z") < order.index("y")
    assert all(r.outcome is Outcome.DONE for r in results)


def test_failure_skips_dependents_but_not_independent_work() -> None:
    kind = Recorder(fail={"a"})
    results = {r.address: r for r in apply_plan(plan(create("a"), create("b", "a"), create("c", "b"), create("x")),
                                               ctx(), {"test.thing": kind})}
    assert results["a"].outcome is Outcome.FAILED and "boom" in results["a"].message
    assert results["b"].outcome is Outcome.SKIPPED and "upstream failed: a" in results["b"].message
    assert results["c"].outcome is Outcome.SKIPPED
    assert results["x"].outcome is Outcome.DONE
    # a skip names the failure at the root, never the skipped change in between: that is what to fix
    assert results["b"].cause == ("a",) and results["c"].cause == ("a",), results
    assert results["c"].message == "upstream failed: a" and results["a"].cause == () == results["x"].cause


def test_a_skip_waiting_on_two_failures_names_both() -> None:
    kind = Recorder(fail={"a", "b"})
    results = {r.address: r for r in apply_plan(plan(create("a"), create("b"), create("m", "a"), create("n", "m", "b")),
                                               ctx(), {"test.thing": kind})}
    assert results["m"].cause == ("a",) and results["n"].cause == ("a", "b"), results


def test_independent_actions_run_in_parallel_up_to_the_limit() -> None:
    kind = Recorder(delay=0.05)
    apply_plan(plan(*(create(f"r{i}") for i in range(12))), ctx(), {"test.thing": kind}, parallelism=4)
    assert kind.peak == 4


def test_created_ids_are_remembered_for_references() -> None:
    context = ctx()
    apply_plan(plan(create("a")), context, {"test.thing": Recorder()})
    assert context.resolve("a") == "id-a"


def test_noop_changes_are_not_run(monkeypatch: Any) -> None:
    kind = Recorder()
    noop = Change("n", "test.thing", Action.NOOP, "in sync")
    assert apply_plan(plan(noop), ctx(), {"test.thing": kind}) == [] and kind.log == []


# -- replacements: two vertices, destroy edges reversed ------------------------------------------


class Logged(Kind):
    """A kind that records `(op, address)` into a log shared by every kind of one test."""

    def __init__(self, log: list[tuple[str, str]], fail: set[tuple[str, str]] | None = None) -> None:
        self.log = log
        self.fail = fail or set()

    def _do(self, op: str, change: Change) -> str:
        self.log.append((op, change.address))
        if (op, change.address) in self.fail:
            raise RuntimeError(f"{op} refused at {change.address}")
        return f"new-{change.address}"

    def create(self, ctx: Context, change: Change) -> str:
        return self._do("create", change)

    def update(self, ctx: Context, change: Change) -> None:
        self._do("update", change)

    def delete(self, ctx: Context, change: Change) -> None:
        self._do("delete", change)


class Vpc(Logged):
    name = "t.vpc"


class Subnet(Logged):
    name = "t.subnet"


class Gateway(Logged):
    name = "t.igw"


class Nat(Logged):
    name = "t.nat"


class Eip(Logged):
    name = "t.eip"


class Table(Logged):
    name = "t.route_table"


class Swappable(Logged):
    name = "t.swappable"
    replace_order = ReplaceOrder.CREATE_FIRST


class Rotating(Logged):
    """Replaces itself in its own steps (as access-key rotation does): one vertex."""

    name = "t.rotating"

    def replace(self, ctx: Context, change: Change) -> str:
        return self._do("replace", change)


def kinds_for(log: list[tuple[str, str]], fail: set[tuple[str, str]] | None = None) -> dict[str, Kind]:
    return {k.name: k(log, fail) for k in (Vpc, Subnet, Gateway, Nat, Eip, Table, Swappable, Rotating)}


def change(action: Action, address: str, kind: str, *deps: str) -> Change:
    desired = None if action is Action.DELETE else DesiredResource(address, kind, {}, deps)
    live = None if action is Action.CREATE else LiveResource(address, kind, f"old-{address}", {}, depends_on=deps)
    return Change(address, kind, action, "test", (), deps, desired, live)


VPC_REPLACEMENT = (
    # as build_plan orders them: replacements, then updates, by address
    change(Action.REPLACE, "vpc.main", "t.vpc"),
    change(Action.REPLACE, "vpc.main.igw", "t.igw", "vpc.main"),
    change(Action.REPLACE, "vpc.main.nat.pub", "t.nat", "vpc.main.eip.pub", "vpc.main.igw", "vpc.main.subnet.pub"),
    change(Action.REPLACE, "vpc.main.route_table.private", "t.route_table", "vpc.main", "vpc.main.nat.pub",
           "vpc.main.subnet.priv"),
    change(Action.REPLACE, "vpc.main.subnet.priv", "t.subnet", "vpc.main"),
    change(Action.REPLACE, "vpc.main.subnet.pub", "t.subnet", "vpc.main"),
    change(Action.UPDATE, "vpc.main.eip.pub", "t.eip", "vpc.main.igw"),
)


def test_a_vpc_replacement_deletes_inside_out_then_creates_outside_in() -> None:
    log: list[tuple[str, str]] = []
    context = ctx()
    results = apply_plan(plan(*VPC_REPLACEMENT), context, kinds_for(log), parallelism=1)
    assert log == [
        # the old halves, dependents first: what sits in a subnet, then the subnets and gateway, then the VPC
        ("delete", "vpc.main.route_table.private"),
        ("delete", "vpc.main.nat.pub"),
        ("delete", "vpc.main.subnet.priv"),
        ("delete", "vpc.main.igw"),
        ("delete", "vpc.main.subnet.pub"),
        ("delete", "vpc.main"),
        # the new halves, dependencies first
        ("create", "vpc.main"),
        ("create", "vpc.main.igw"),
        ("create", "vpc.main.subnet.priv"),
        ("create", "vpc.main.subnet.pub"),
        ("update", "vpc.main.eip.pub"),
        ("create", "vpc.main.nat.pub"),
        ("create", "vpc.main.route_table.private"),
    ]
    assert [(r.address, r.action, r.outcome) for r in results] == [
        (c.address, c.action, Outcome.DONE) for c in VPC_REPLACEMENT]
    assert context.resolve("vpc.main.nat.pub") == "new-vpc.main.nat.pub"


def test_every_constraint_holds_at_full_parallelism() -> None:
    log: list[tuple[str, str]] = []
    apply_plan(plan(*VPC_REPLACEMENT), ctx(), kinds_for(log), parallelism=16)
    at = {entry: i for i, entry in enumerate(log)}

    def up(address: str) -> int:
        return at.get(("create", address), at.get(("update", address), -1))

    for c in VPC_REPLACEMENT:
        for dep in c.depends_on:
            if ("delete", c.address) in at and ("delete", dep) in at:
                assert at[("delete", c.address)] < at[("delete", dep)], (c.address, dep)
            assert up(c.address) > up(dep) >= 0, (c.address, dep)
        if c.action is Action.REPLACE:
            assert at[("delete", c.address)] < at[("create", c.address)]


def test_a_referrer_update_follows_the_create_of_what_it_refers_to() -> None:
    log: list[tuple[str, str]] = []
    apply_plan(plan(change(Action.REPLACE, "vpc.main.nat.pub", "t.nat", "vpc.main.subnet.pub"),
                    change(Action.UPDATE, "vpc.main.route_table.private", "t.route_table", "vpc.main.nat.pub")),
               ctx(), kinds_for(log), parallelism=4)
    assert log == [("delete", "vpc.main.nat.pub"), ("create", "vpc.main.nat.pub"),
                   ("update", "vpc.main.route_table.private")]


def test_create_first_deletes_the_old_one_after_its_referrers_moved() -> None:
    log: list[tuple[str, str]] = []
    apply_plan(plan(change(Action.REPLACE, "x.swap", "t.swappable"),
                    change(Action.UPDATE, "x.user", "t.route_table", "x.swap")),
               ctx(), kinds_for(log), parallelism=4)
    assert log == [("create", "x.swap"), ("update", "x.user"), ("delete", "x.swap")]


def test_a_deletion_frees_what_a_creation_of_its_kind_needs() -> None:
    log: list[tuple[str, str]] = []
    apply_plan(plan(change(Action.DELETE, "vpc.old.subnet.a", "t.subnet"),
                    change(Action.CREATE, "vpc.main.subnet.a", "t.subnet")), ctx(), kinds_for(log), parallelism=4)
    assert log == [("delete", "vpc.old.subnet.a"), ("create", "vpc.main.subnet.a")]


def test_a_kind_that_replaces_itself_in_steps_is_one_vertex() -> None:
    log: list[tuple[str, str]] = []
    context = ctx()
    results = apply_plan(plan(change(Action.REPLACE, "iam.user.a.keys", "t.rotating")), context, kinds_for(log))
    assert log == [("replace", "iam.user.a.keys")]
    assert results[0].outcome is Outcome.DONE and context.resolve("iam.user.a.keys") == "new-iam.user.a.keys"


def test_a_failed_delete_skips_the_container_and_everything_created_after_it() -> None:
    log: list[tuple[str, str]] = []
    results = {r.address: r for r in apply_plan(plan(*VPC_REPLACEMENT), ctx(),
                                                kinds_for(log, fail={("delete", "vpc.main.subnet.priv")}),
                                                parallelism=1)}
    assert ("delete", "vpc.main") not in log and not [e for e in log if e[0] != "delete"]
    failed = results["vpc.main.subnet.priv"]
    assert failed.outcome is Outcome.FAILED and "delete: " in failed.message and "refused" in failed.message
    assert results["vpc.main"].outcome is Outcome.SKIPPED
    assert "upstream failed: vpc.main.subnet.priv" in results["vpc.main"].message
    # its old half went; its new half waits for the new VPC: skipped, and the message says what was done
    nat = results["vpc.main.nat.pub"]
    assert nat.outcome is Outcome.SKIPPED and nat.message.startswith("delete done; create: upstream failed")
    assert results["vpc.main.eip.pub"].outcome is Outcome.SKIPPED


def test_a_replacement_whose_create_fails_is_failed() -> None:
    log: list[tuple[str, str]] = []
    results = apply_plan(plan(change(Action.REPLACE, "vpc.main.nat.pub", "t.nat"),
                              change(Action.UPDATE, "vpc.main.route_table.private", "t.route_table",
                                     "vpc.main.nat.pub")),
                         ctx(), kinds_for(log, fail={("create", "vpc.main.nat.pub")}))
    assert [(r.address, r.outcome) for r in results] == [("vpc.main.nat.pub", Outcome.FAILED),
                                                         ("vpc.main.route_table.private", Outcome.SKIPPED)]
    assert results[0].message.startswith("delete done; create: ")


def test_only_access_key_rotation_replaces_itself_and_every_kind_declares_its_order() -> None:
    from reconciler.kinds import all_kinds
    from reconciler.kinds.base import ReplacesInSteps

    kinds = all_kinds()
    assert sorted(name for name, kind in kinds.items() if isinstance(kind, ReplacesInSteps)) == ["iam.access_key"]
    assert all(isinstance(kind.replace_order, ReplaceOrder) for kind in kinds.values())


class NamedRecorder(Recorder):
    """A kind identified by its name (as IAM groups are): its deletions free nothing."""

    name = "test.named"
    delete_frees = False


def test_a_deletion_waits_until_what_uses_it_has_moved_away_and_is_skipped_if_that_failed() -> None:
    groups, users = NamedRecorder(fail={"group.new"}), Recorder()
    old = Change("group.old", "test.named", Action.DELETE, "gone", (), (), None,
                 LiveResource("group.old", "test.named", "old", {}))
    new = Change("group.new", "test.named", Action.CREATE, "missing", (), (),
                 DesiredResource("group.new", "test.named", {}, ()))
    # the user is in the old group now and is declared in the new one
    user = Change("user.app", "test.thing", Action.UPDATE, "changed groups", (), ("group.new",),
                  DesiredResource("user.app", "test.thing", {}, ("group.new",)),
                  LiveResource("user.app", "test.thing", "app", {}, depends_on=("group.old",)))
    results = {r.address: r for r in apply_plan(plan(old, new, user), ctx(),
                                               {"test.named": groups, "test.thing": users}, parallelism=4)}
    assert results["group.new"].outcome is Outcome.FAILED
    assert results["user.app"].outcome is Outcome.SKIPPED
    # the old group outlives the failed move: the user keeps what it had
    assert results["group.old"].outcome is Outcome.SKIPPED and ("delete", "group.old") not in groups.log

    fine = NamedRecorder()
    done = apply_plan(plan(old, new, user), ctx(), {"test.named": fine, "test.thing": Recorder()}, parallelism=4)
    assert all(r.outcome is Outcome.DONE for r in done)
    assert fine.log.index(("create", "group.new")) < fine.log.index(("delete", "group.old"))
