"""Forecast intelligence (issue #16): point-in-time pipelines, a learned win probability,
and a backtest of every forecast method.

Modules, one job each (arrows point down into the core; nothing in the core imports this):

* :mod:`.dates`      — checked dates, periods (quarters) and snapshot schedules (``--every week``)
* :mod:`.snapshots`  — the open pipeline and the closed outcomes *as known on a date*, from
  ``deal_history`` and ``activities`` rows strictly before that date
* :mod:`.features`   — the model's feature frame from a snapshot (only what was known then)
* :mod:`.model`      — scikit-learn logistic regression, stored as JSON (no pickle), reasons per deal
* :mod:`.methods`    — the forecast of each method for one period from one snapshot
* :mod:`.backtest`   — every snapshot date × method, actuals, accuracy
* :mod:`.store`      — the backtest as table ``forecast_backtest`` in the database (copy, write, atomic swap;
  on a warehouse engine its ``replace_table``)
* :mod:`.target`     — where the commands read, store and keep the model: the DuckDB file or an engine
* :mod:`.commands`   — ``pipelinebi model train|score`` and ``backtest`` as text for the terminal
"""
