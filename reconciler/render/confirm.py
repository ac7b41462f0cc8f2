"""What apply and destroy ask before they change anything, matched to the stakes. Pure.

Invariants:
- a plan that only adds, changes or adopts asks for the word `yes` (as Terraform does):
  `y`, `Y`, `YES ` or anything else refuses;
- a plan that deletes or replaces anything, and every destroy, asks for the stack's
  name instead: a reflexive `yes` cannot delete what took a day to build;
- the answer is compared exactly (surrounding blanks aside), never case-folded.
"""

from __future__ import annotations

from dataclasses import dataclass

from reconciler.plan.model import Action, Plan


@dataclass(frozen=True)
class Confirmation:
    """The question to put on the terminal and the one answer that approves it."""

    question: str
    expected: str

    def approves(self, answer: str) -> bool:
        return answer.strip() == self.expected

    def refusal(self, answer: str) -> str:
        """Why `answer` did not approve, for the error line (the answer is the operator's own typing)."""
        given = answer.strip()
        if self.expected == "yes":
            return "only 'yes' approves" if given else "no answer"
        return f"{given!r} is not the stack name {self.expected!r}" if given else "no answer"


def _resources(count: int) -> str:
    return f"{count} resource" + ("" if count == 1 else "s")


def confirmation(plan: Plan, *, destroy: bool) -> Confirmation:
    """The confirmation `plan` needs: the stack's name when anything goes away, else `yes`."""
    deleting = sum(1 for c in plan.pending if c.action is Action.DELETE)
    replacing = sum(1 for c in plan.pending if c.action is Action.REPLACE)
    if not (destroy or deleting or replacing):
        return Confirmation(f"Apply these changes ({_resources(len(plan.pending))}) to stack {plan.stack}? "
                            "Only 'yes' approves", "yes")
    parts = [f"deleting {deleting}"] * bool(deleting) + [f"replacing {replacing}"] * bool(replacing)
    stakes = " and ".join(parts) + (" resource" if deleting + replacing == 1 else " resources") if parts else ""
    if destroy and plan.targets:  # --target: only part of the stack goes, and the question says so
        stakes = f"destroying the targeted part of stack {plan.stack}" + (f" ({stakes})" if stakes else "")
    elif destroy:
        stakes = f"destroying stack {plan.stack}" + (f" ({stakes})" if stakes else "")
    return Confirmation(f"Type the stack name ({plan.stack}) to confirm {stakes}", plan.stack)
