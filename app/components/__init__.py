"""Shared UI pieces: data access, global filters, KPI row, charts, drill breadcrumb,
the dashboard renderer. Layout only: every number comes from the semantic layer."""
