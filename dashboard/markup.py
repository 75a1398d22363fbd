"""Text from outside the dashboard's code shown as written inside Streamlit's Markdown.

Streamlit renders Markdown (and its own extensions: ``:red[...]``, ``$...$``) in ``st.markdown``,
``st.title``, captions, alerts and labels. Run, experiment and class names, tags, file names,
user names and the messages that quote them are written by anyone who can log to MLflow or
train on a folder, so placed there unescaped a run named ``![x](https://host/p.png)`` would make
every viewer's browser load an image from outside (the dashboard loads nothing from any
network), ``[text](url)`` would become a link, ``**Approved**`` bold, and ``_``, ``*``, ``~`` or
``$`` would swallow characters of a name.
"""

import json
import re

# Characters that start Markdown or Streamlit markup where they stand inside a line; a name
# without any of them is unchanged. Brackets are what links, images and directives need.
MARKUP = re.compile(r"([\\`*_\[\]<>$~&])")


# Streamlit's Markdown also makes links of bare web addresses (``http://host:port/path``,
# ``www.host``), escaped characters or not: ``http:\//127.0.0.1:5007`` became a link to
# ``http://127.0.0.1``, port cut. An address is shown as a code span instead, which nothing
# links and which copies whole; punctuation that ends a sentence stays outside it.
ADDRESS = re.compile(r"(?i)\b(?:[a-z][a-z0-9+.-]*://|www\.)[^\s<>`]*[^\s<>`.,;:!?)\]'\"]")


# A code span of single backticks, which Markdown shows as written (no link, image or emphasis
# inside one): the pipeline's messages mark commands so (`mlflow runs restore --run-id`).
CODE_SPAN = re.compile(r"(`[^`]+`)")


def plain(value: object) -> str:
    """``value`` as literal text in Streamlit's Markdown: each markup character escaped with a
    backslash (Markdown then shows it as written), bare web addresses kept from becoming links,
    line breaks as spaces (a line of its own could start a heading, list or quote). Code spans
    stay as they are: what they hold is shown literally anyway."""
    parts = CODE_SPAN.split(" ".join(str(value).splitlines()))
    return "".join(part if i % 2 else _escaped(part) for i, part in enumerate(parts))


def _escaped(text: str) -> str:
    parts = ADDRESS.split(text)  # no groups: the addresses are found again below
    addresses = ADDRESS.findall(text)
    out = [MARKUP.sub(r"\\\1", parts[0])]
    for address, part in zip(addresses, parts[1:], strict=True):
        out += [code(address), MARKUP.sub(r"\\\1", part)]
    return "".join(out)


def cell(value: object) -> str:
    """``value`` as literal text in a cell of a Markdown table (``|`` would end the cell)."""
    return plain(value).replace("|", "\\|")


def code(value: object) -> str:
    """``value`` as a Markdown code span: fenced by one backtick more than the longest run of
    backticks inside it (in a code span a backslash escapes nothing), on one line."""
    text = " ".join(str(value).splitlines())
    fence = "`" * (1 + max((len(run) for run in re.findall(r"`+", text)), default=0))
    pad = " " if text.startswith("`") or text.endswith("`") else ""
    return f"{fence}{pad}{text}{pad}{fence}"


def name_list(values: object) -> str:
    """Class names as literal text, each quoted (``'benign', 'malignant'``), so that a comma, a
    space or a line break inside a name cannot make two names of one, nor hide one; a list
    stored as a JSON string (the ``class_names`` param) is read as the list it holds."""
    if isinstance(values, str):
        try:
            values = json.loads(values)
        except json.JSONDecodeError:
            values = [values]
    if not isinstance(values, list | tuple):
        values = [values]
    return plain(", ".join(repr(str(v)) for v in values))
