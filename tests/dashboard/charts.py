"""The charts of a page under Streamlit's ``AppTest``: their Vega-Lite specs and data."""

import json

from streamlit.testing.v1 import AppTest


def charts(at: AppTest) -> list[dict]:
    """The Vega-Lite specs of the page's charts."""
    return [json.loads(e.proto.spec) for e in at.get("vega_lite_chart")]


def chart_data(at: AppTest) -> list:
    """The data of each chart of the page, as one DataFrame per chart."""
    import pandas as pd
    from streamlit.dataframe_util import convert_arrow_bytes_to_pandas_df

    out = []
    for element in at.get("vega_lite_chart"):
        proto = element.proto
        frames = [convert_arrow_bytes_to_pandas_df(d.data.data) for d in proto.datasets]
        if proto.data.data:
            frames.append(convert_arrow_bytes_to_pandas_df(proto.data.data))
        out.append(pd.concat(frames, ignore_index=True) if frames else pd.DataFrame())
    return out


def chart_of(at: AppTest, field: str) -> tuple[dict, "object"]:
    """The spec and data of the first chart whose data has a column ``field``."""
    for spec, frame in zip(charts(at), chart_data(at), strict=True):
        if field in frame.columns:
            return spec, frame
    raise AssertionError(f"no chart with a {field!r} column")
