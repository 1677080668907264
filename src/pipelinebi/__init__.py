"""PipelineBI: sales pipeline analytics as code.

The semantic core (this package) never imports Streamlit; the app lives in ``app/``.
"""

__version__ = "0.1.0"
