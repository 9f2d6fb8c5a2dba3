"""Months, not a month: a run of ``simulation.months`` billed month by month, with account ledgers over them.

One concept per module: :mod:`.split` (one usage per billing month, cut from the run's continuous world),
:mod:`.enforcer` (a plan's runtime limits, renewed each month; the account's actions on the world),
:mod:`.accounts` (credits, the Free -> PAYG switch and the invoice timeline over the months), :mod:`.run`
(the scenario under each plan, month by month), :mod:`.report` (months.csv) and :mod:`.plots`.
"""
