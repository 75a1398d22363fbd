"""The dashboard's categorical colours: each >= 3:1 against white (WCAG 1.4.11), where
Streamlit's default second colour (#83c9ff) is 1.79:1.

Okabe-Ito and Tol hues, ordered so that neighbours also differ in lightness (>= 1.3:1): up to
three are all told apart without colour vision too; beyond, only neighbours are (the embedding
map shows the outcome by shape, and every chart's classes in its legend and text alternative).
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
