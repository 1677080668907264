"""Rules analysts own, in YAML: scorecards (lead score, high-value deals) compiled into tables at ingest.

``compile`` (a scorecard → one checked SELECT), ``build`` (every scorecard's table and the
table of fired rules, as ingest builds them), ``catalog`` (each rule, its points and how many
rows it fired for), ``routing`` (unassigned leads → reps, ``pipelinebi route``), ``triggers``
(playbook rules → table ``actions``). The YAML's shape is :mod:`pipelinebi.semantic.scorecards`. Imports point
down into ``semantic`` and ``compiler``, never into ``ingest``, the CLI or the app.
"""
