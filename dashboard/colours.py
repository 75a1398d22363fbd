"""The dashboard's categorical colours: each >= 3:1 against white (WCAG 1.4.11), where
Streamlit's default second colour (#83c9ff) is 1.79:1.

Okabe-Ito and Tol hues, ordered so that neighbours also differ in lightness: told apart without
colour vision too.
"""

CATEGORICAL = (
    "#332288",
    "#D55E00",
    "#117733",
    "#CC79A7",
    "#0072B2",
    "#882255",
    "#999933",
    "#000000",
)
