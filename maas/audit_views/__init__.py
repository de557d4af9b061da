"""Regulator views (交通运输主管部门): coverage, MaaS metrics, maturity, desensitized exports.

The shell composes them: they read the serving timetable snapshot (`maas.planner`) and the
ticketing and clearing tables through SQL aggregates, and never return one person's data in clear.

- `coverage`: e-ticket coverage of stations by operator and grade, ticketable trips, wheelchair
  access, the national targets, per-feed service statistics;
- `metrics`: users, orders, journeys by mode, multi-operator share, refund and rejection rates, face
  verification use, revenue by operator, with k-anonymity suppression;
- `maturity`: the MaaS integration level (Sochor et al. 2018) with its evidence;
- `exports`: masked order rows and OD-by-day journey aggregates.
"""
