"""Security issue #12, safe output: every CSV PipelineBI writes (``pipelinebi query --format csv``,
Explore's "Download CSV") neutralises text a spreadsheet would run as a formula (OWASP CSV
injection) and leaves numbers alone; data shown in markdown is escaped (``md_escape``)."""

from __future__ import annotations

import csv
import datetime as dt
import io
from decimal import Decimal

import pandas as pd
import pytest

from pipelinebi.cli import main
from pipelinebi.export import neutralise, safe_csv, safe_csv_text
from pipelinebi.formatting import WORD_JOINER, md_escape
from pipelinebi.output import render_frame


def frame() -> pd.DataFrame:
    return pd.DataFrame({
        "deal": ["=1+2", "+SUM(A1:A9)", "-5", "@cmd", "\tTab", "\rCR", 'Acme";=HYPERLINK("x")', "Acme, Inc.",
                 "Smith - West", None],
        "amount": [-5.0, 1.5, -0.25, 0.0, 10.0, -1e6, 2.0, 3.0, None, 4.0],
        "deals": [-3, 0, 1, 2, 3, 4, 5, 6, 7, -8],
    })


EXPECTED = (
    '"deal","amount","deals"\n'
    '"\'=1+2",-5.0,-3\n'
    '"\'+SUM(A1:A9)",1.5,0\n'
    '"\'-5",-0.25,1\n'
    '"\'@cmd",0.0,2\n'
    '"\'\tTab",10.0,3\n'
    '"\'\rCR",-1000000.0,4\n'
    '"\'Acme"";=HYPERLINK(""x"")",2.0,5\n'
    '"Acme, Inc.",3.0,6\n'
    '"Smith - West",,7\n'
    ',4.0,-8\n'
)


def test_safe_csv_exact_text():
    assert safe_csv_text(frame()) == EXPECTED
    assert safe_csv(frame()) == EXPECTED.encode("utf-8")


def test_a_csv_reader_gets_the_text_back_with_one_quote_in_front_and_numbers_unchanged():
    rows = list(csv.reader(io.StringIO(safe_csv_text(frame()), newline="")))
    assert rows[0] == ["deal", "amount", "deals"]
    src = frame()
    for row, (_, want) in zip(rows[1:], src.iterrows()):
        text = want["deal"]
        if pd.isna(text):
            assert row[0] == ""
        elif text[0] in "=+-@\t\r" or ";=" in text:
            assert row[0] == "'" + text
        else:
            assert row[0] == text
        assert row[2] == str(want["deals"])  # negative integers stay negative numbers
        assert (row[1] == "") if pd.isna(want["amount"]) else float(row[1]) == want["amount"]


def test_only_text_is_neutralised_other_types_are_written_as_values():
    df = pd.DataFrame({
        "n": pd.array([-1, None], dtype="Int64"),
        "x": [Decimal("-2.50"), Decimal("3")],
        "flag": [True, False],
        "day": [dt.date(2026, 10, 1), dt.date(2026, 12, 31)],
        "at": pd.to_datetime(["2026-10-01", "2026-10-01 12:30:00"], format="ISO8601"),
        "code": pd.array(["-7", pd.NA], dtype="string"),
    })
    assert safe_csv_text(df) == ('"n","x","flag","day","at","code"\n'
                                 "-1,-2.50,True,2026-10-01,2026-10-01,\"'-7\"\n"
                                 ",3,False,2026-12-31,2026-10-01 12:30:00,\n")


@pytest.mark.parametrize("text, safe", [
    ("=1+2", "'=1+2"), ("-5", "'-5"), ("+49 30 1234", "'+49 30 1234"), ("@SUM(1)", "'@SUM(1)"),
    ("\t=1", "'\t=1"), ("x;=1", "'x;=1"), ("x, -1", "'x, -1"), ('x"=1', "'x\"=1"), ("it's @home", "it's @home"),
    ("a-b", "a-b"), ("EMEA Enterprise", "EMEA Enterprise"), ("", ""), ("1+1", "1+1"),
])
def test_neutralise(text, safe):
    assert neutralise(text) == safe


def test_cli_query_csv_uses_the_safe_writer():
    out = render_frame(frame(), "csv", {})
    assert out == EXPECTED.rstrip("\n")  # print() adds the last line end


def test_cli_query_csv_on_hostile_data(tmp_path, capsys):
    from test_app_security import write_hostile_seeds

    from pipelinebi.demo import ensure_database
    from pipelinebi.settings import Settings

    db = ensure_database(Settings(database=tmp_path / "h.duckdb", seeds_dir=write_hostile_seeds(tmp_path / "seeds")))
    capsys.readouterr()
    assert main(["query", "-m", "pipeline_amount,open_deals", "-b", "account", "--database", str(db),
                 "--order=-pipeline_amount", "--limit", "5", "--format", "csv"]) == 0
    text = capsys.readouterr().out
    rows = list(csv.reader(io.StringIO(text, newline="")))
    assert rows[0] == ["account", "pipeline_amount", "open_deals"] and len(rows) == 6
    for account, amount, count in rows[1:]:
        assert account.startswith("'=HYPERLINK(\"https://evil.example\";\"")
        float(amount), int(count)  # numbers stay numbers
    assert all(line.startswith('"\'=HYPERLINK(""https://evil.example"";""') for line in text.splitlines()[1:])


# ------------------------------------------------------------ markdown
@pytest.mark.parametrize("value", [
    "[Session expired - sign in](https://evil.example)", "![x](https://evil.example/a.png)", ":red[x]",
    ":material/warning:", "$x^2$", "**b** _i_ ~~s~~ `c`", "<b>html</b>", "# h", "a | b", "AT&T &amp;",
    "back\\slash", "line\nbreak",
])
def test_md_escape_leaves_no_markdown_syntax_unescaped(value):
    out = md_escape(value).replace(WORD_JOINER, "")
    # every markdown-significant ASCII character is preceded by a backslash
    i = 0
    while i < len(out):
        if out[i] == "\\":
            assert out[i + 1] in "\\`*_{}[]()#+-.!|<>~:$&", out
            i += 2
            continue
        assert out[i] not in "`*_{}[]()#+-.!|<>~:$&\n", (out, i)
        i += 1


def test_terminal_output_shows_escape_sequences_instead_of_running_them(tmp_path, capsys):
    """Data and messages printed to a terminal cannot clear the screen or recolour it."""
    import pandas as pd

    from pipelinebi.cli import main
    from pipelinebi.output import render_frame

    table = render_frame(pd.DataFrame({"team": ["A\x1b[2J\x1b]0;pwned\x07"], "n": [1]}), "table", {})
    assert "\x1b" not in table and "\x07" not in table and "\\x1b[2J" in table
    assert main(["compile", "-m", "win_rate", "-f", "team = '\x1b[31mred'"]) in (0, 2)
    captured = capsys.readouterr()
    assert "\x1b" not in captured.err
