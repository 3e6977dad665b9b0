"""What the reminders achieved, counted in SQL: the holdout, per-step, checkout-funnel and money numbers of the stats.

Each module answers a group of the stats API's second-release keys (docs/reference.md) with SQL
aggregates (COUNT, SUM, GROUP BY), never a Python loop over rows, so that the counts stay fast and a
rollup can serve them later:
  holdout.py   holdout / treated / incremental_recovery_rate / interval
  steps.py     steps (per reminder step: sent, skipped with reasons, opened, clicked, recovered)
  checkout.py  checkout_steps, reasons, reasons per checkout step
  money.py     recoverable, lost_value, revenue_per_recipient, the daily series
`outcome_stats` (outcomes.py) puts them together for collector/funnel.py.
"""
