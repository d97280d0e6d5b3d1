"""The Prefect run report is Markdown: a file name or an error must read as text there, never as markup,
HTML or a table cell break."""

from flows.report import _cell, _code


def test_names_and_errors_are_text_in_the_report():
    assert _code("scans/a`b|c.jpg") == "`` scans/a`b\\|c.jpg ``"  # a longer fence, the pipe escaped
    assert _code("plain.jpg") == "` plain.jpg `"
    cell = _cell("bad <img src=x onerror=alert(1)> | *bold* [link](http://x)\nsecond line")
    assert "<img" not in cell and "\n" not in cell
    assert "\\|" in cell and "\\*bold\\*" in cell and "\\[link\\]" in cell
