"""History for deals whose export has no (usable) stage history.

What is known: when the deal was created, its current stage, and for closed deals when it
closed (or for open deals when it last moved). The history says exactly that and no more:
creation in the pipeline's first stage, optional known waypoints, the current stage at the
end. Intermediate stages are never invented, so every row is marked ``is_synthetic``.

>>> from datetime import datetime, date
>>> rows = synthesize_history(
...     {"deal_id": "D1", "created_at": datetime(2024, 1, 5, 9), "stage": "Won", "amount": None,
...      "close_date": date(2024, 2, 1), "forecast_category": "closed"},
...     first_stage="Lead", end_time=datetime(2024, 2, 1))
>>> [(r["changed_at"].date().isoformat(), r["stage"], r["is_synthetic"]) for r in rows]
[('2024-01-05', 'Lead', True), ('2024-02-01', 'Won', True)]
"""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Iterable

#: Used when a known end time is not after the previous row (e.g. created and won the same
#: day, close date at midnight): keeps rows strictly ordered, as the history key requires.
TICK = timedelta(seconds=1)

NOTE = ("history synthesised for {n} deals without stage history in the export "
        "(rows marked is_synthetic = true): dwell time and stage conversion are not "
        "available for those deals")


def synthesize_history(deal: dict, first_stage: str | None, end_time: datetime | None,
                       via: Iterable[tuple[datetime | None, str]] = (),
                       stage_forecast: dict[str, str | None] | None = None) -> list[dict]:
    """Rows of ``deal_history`` for one deal (a dict of canonical, typed deal values)."""
    stage_forecast = stage_forecast or {}
    created: datetime = deal["created_at"]
    final = deal["stage"]
    points: list[tuple[datetime, str]] = [(created, first_stage or final)]
    for t, stage in sorted((p for p in via if p[0] is not None), key=lambda p: p[0]):
        if stage != final and t > points[-1][0] and stage != points[-1][1]:
            points.append((t, stage))
    if points[-1][1] != final:
        if end_time is None:
            # no idea when it moved: one row in the current stage rather than a made-up move
            points = [(created, final)]
        else:
            points.append((max(end_time, points[-1][0] + TICK), final))

    def row(t: datetime, stage: str, last: bool) -> dict:
        return {"deal_id": deal["deal_id"], "changed_at": t, "stage": stage, "amount": deal["amount"],
                "close_date": deal["close_date"], "is_synthetic": True,
                "forecast_category": deal["forecast_category"] if last else stage_forecast.get(stage)}

    return [row(t, s, i == len(points) - 1) for i, (t, s) in enumerate(points)]
