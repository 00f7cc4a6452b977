"""The stages of a run, in the order a batch goes through them:

read (:mod:`.read`) -> lookup, stage 1 (:mod:`.lookup`: the providers that find phones)
-> renormalize (:mod:`.renormalize`) -> lookup, stage 2 (every other provider) -> write
(:mod:`.write`). :mod:`.flow` runs them side by side on threads joined by bounded
hand-offs; :mod:`pipeline.run` wires them and writes the report.
"""
