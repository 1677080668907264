"""Dashboards as code: YAML pages under ``semantic/dashboards/`` drawn by one renderer.

No Streamlit here: models, loader (file:line errors, did-you-mean against the semantic
layer), JSON Schema, and the query plans of each tile. The app in ``app/`` draws them.
"""

from .loader import (DashboardSet, LoadedDashboard, dashboard_files, dashboard_json_schema,
                     load_dashboard_file, load_dashboard_set, load_dashboards)
from .models import (ChartTile, DashboardDef, DetailTable, DrillLevel, DrillPath, KpiItem, KpiTile,
                     NoteTile, RowTile, TableTile)
from .queries import PageState, chart_plan, global_filters, kpi_queries, page_queries, table_query, tile_queries

__all__ = [
    "DashboardSet", "LoadedDashboard", "dashboard_files", "dashboard_json_schema", "load_dashboard_file",
    "load_dashboard_set", "load_dashboards", "ChartTile", "DashboardDef", "DetailTable", "DrillLevel",
    "DrillPath", "KpiItem", "KpiTile", "NoteTile", "RowTile", "TableTile", "PageState", "chart_plan",
    "global_filters", "kpi_queries", "page_queries", "table_query", "tile_queries",
]
