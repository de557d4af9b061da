"""Revenue clearing (清分结算): double-entry ledger, apportionment, settlement runs, statements, reconciliation,
disputes.

Ticketing reports sales, refunds, uses and expiries through `clearing.interface`
only (plain records, the caller's session); the shell drives the rest over
HTTP and jobs. Modules:

``interface``      the records ticketing sends and ``record_sale/refund/use/expiry``
``apportionment``  pure splitting of a paid amount among legs (distance, standalone fare, fixed amounts with a
                   remainder carrier, percentages; largest remainder, deterministic), vectorised batch version
``agreements``     agreements and commission terms as data, and which one is in force
``ledger``         accounts, balanced append-only postings, derived balances
``settlement``     settlement runs (set-based SQL), statements, digests
``disputes``       disputes of statement lines and their adjustments
``reconciliation`` an operator's validation CSV against ours
``bulk``           set-based posting of large volumes (imports, the benchmark)
``tasks``          scheduled work (daily T+1 run) for the shell's job runner

Invariants (tested): every entry's lines sum to zero in integer minor units of
one currency; apportioned parts sum exactly to the amount paid; each leg is
closed (recognised or refunded) once; per operator ``net_payable = gross -
refunds - commission + adjustments``; over settled tickets ``nets + commission
+ refunds = paid (+ adjustments granted)``; a run's digest recomputed from the
journal equals the stored one.
"""
