"""Names and messages from outside the code stay literal text in Streamlit's Markdown."""

from html import unescape

import pytest
from markdown_it import MarkdownIt

from dashboard.markup import cell, code, name_list, plain

MD = MarkdownIt("commonmark").enable(["table", "strikethrough"])  # GFM's, as Streamlit's


@pytest.mark.parametrize(
    "name",
    [
        "![x](https://example.org/pixel.png)",
        "[open me](https://example.org)",
        "<https://example.org>",
        "**Approved** by _Dr_ ~~no~~ one",
        "$x^2$ and :red[alert]",
        "a\\[b\\]",
        "AT&amp;T &lt;b&gt;",
        "see https://example.org/p.png or www.example.org",
    ],
)
def test_plain_text_renders_as_itself_with_no_link_image_or_emphasis(name):
    html = MD.render(f"Run {plain(name)} finished")
    assert "<a " not in html and "<img" not in html
    assert not {"<strong>", "<em>", "<s>", "<del>"} & set(html.split())
    text = html.removeprefix("<p>").removesuffix("</p>\n")
    # a web address is shown as code (which nothing links), the rest as text
    assert unescape(text.replace("<code>", "").replace("</code>", "")) == f"Run {name} finished"


def test_a_code_span_of_a_message_stays_code_and_holds_no_markup():
    """The pipeline's messages mark commands as code: shown as code, not as backticks."""
    said = MD.render(plain("restore it (`mlflow runs restore --run-id`), or `![x](https://h/p)`"))
    assert "<code>mlflow runs restore --run-id</code>" in said
    assert "<code>![x](https://h/p)</code>" in said and "<img" not in said
    assert MD.render(plain("a ` b")) == "<p>a ` b</p>\n"  # a lone backtick stays a backtick


def test_bare_web_addresses_are_code_spans_whole_with_the_sentence_s_punctuation_outside():
    """Streamlit's Markdown links bare http:// and www. addresses, escaped or not."""
    text = plain("at http://127.0.0.1:5007/predict, https://example.org. Or WWW.example.org!")
    assert text == (
        "at `http://127.0.0.1:5007/predict`, `https://example.org`. Or `WWW.example.org`!"
    )
    assert plain("runs:/abc/model at 12:30") == "runs:/abc/model at 12:30"  # no address


def test_plain_leaves_a_name_without_markup_unchanged_and_joins_lines():
    assert plain("melanoma-2 (v1.0): ok") == "melanoma-2 (v1.0): ok"
    assert plain("first\n# heading\n- item") == "first # heading - item"


def test_a_table_cell_keeps_its_bars_inside():
    html = MD.render(f"| a | b |\n|---|---|\n| {cell('x | y')} | 2 |")
    assert "<td>x | y</td>" in html and "<td>2</td>" in html


@pytest.mark.parametrize("value", ["runs:/abc/model", "a`b", "``x``", "`start"])
def test_a_code_span_holds_any_backticks(value):
    assert MD.render(code(value)) == f"<p><code>{value}</code></p>\n"


def test_a_name_list_quotes_each_name_so_commas_and_spaces_stay_inside_it():
    assert name_list(["0", '=1+2,"q"', " lead", "new\nline"]) == (
        "'0', '=1+2,\"q\"', ' lead', 'new\\\\nline'"
    )
    assert name_list('["benign", "malignant"]') == "'benign', 'malignant'"  # the param's JSON
