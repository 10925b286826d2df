"""Checks on the registered transcribers (library: adt.frame.reproduce, issue 29): the registry's champion (what
adt transcribe uses) and lite (--model lite) load, weights only, and reproduce the F-measure recorded at their
registration on one validation track."""

import dagster as dg

from pipelines.assets.models import transcriber, trimmed_transcriber


def _reproduces(asset, alias: str) -> dg.AssetChecksDefinition:
    @dg.asset_check(asset=asset, name=f"{alias}_reproduces",
                    description=f"The registry's {alias} loads (weights only) and gives the F-measure recorded at its "
                                "registration on one validation track (adt.frame.reproduce): a truncated or altered "
                                "checkpoint fails here, not later in adt transcribe.")
    def check() -> dg.AssetCheckResult:
        from adt.frame.reproduce import alias_reproduces

        passed, meta = alias_reproduces(alias)
        return dg.AssetCheckResult(passed=passed, metadata=meta)
    return check


champion_reproduces = _reproduces(transcriber, "champion")
lite_reproduces = _reproduces(trimmed_transcriber, "lite")
