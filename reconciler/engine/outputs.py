"""The `output` command's rows, from a plan's read (nothing is read again).

Invariants: one row per desired address, in manifest order; a same-named resource the stack
does not own is marked unmanaged; an address not read says why; values are the kinds'
`LiveResource.outputs` (never a secret).
"""

from __future__ import annotations

from reconciler.engine.run import Run
from reconciler.plan.outputs import OutputReport, OutputRow


def output_report(run: Run) -> OutputReport:
    rows = []
    for item in run.desired:
        found = run.live.get(item.address)
        rows.append(OutputRow(item.address, item.kind,
                              None if found is None else dict(found.outputs) or {"id": found.id},
                              managed=found is None or found.owned, not_read=run.not_checked.get(item.address)))
    return OutputReport(run.plan.stack, run.plan.region, run.plan.account, tuple(rows))
