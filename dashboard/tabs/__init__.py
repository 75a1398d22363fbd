"""One module per tab of the page; each exposes ``render_<tab>(ctx)``."""
