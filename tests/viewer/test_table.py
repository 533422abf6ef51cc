"""The table model (sorting, filtering, paging) and the filter a user types, without a browser."""

from __future__ import annotations

import numpy as np
import pytest

import rollrec
from rollrec.viewer.overview import compute_overview
from rollrec.viewer.overview.table import END_LABELS, Column, TableModel, env_mask, episode_columns, parse_filter


def model(values, page_size=2):
    v = np.asarray(values, dtype=np.float64)
    return TableModel([Column("Row", np.arange(len(v)), str), Column("Value", v, lambda i: f"{v[i]:g}")],
                      page_size=page_size)


def test_sort_both_ways_keeps_ties_in_row_order():
    m = model([3, 1, 3, 2])
    assert m.order().tolist() == [0, 1, 2, 3]
    m.sort("Value")
    assert m.order().tolist() == [1, 3, 0, 2]
    m.sort("Value")  # again: descending, ties still by row
    assert m.descending and m.order().tolist() == [0, 2, 3, 1]
    with pytest.raises(ValueError, match="unknown column 'Nope'"):
        m.sort("Nope")


def test_filter_and_pages():
    m = model([5, 4, 3, 2, 1], page_size=2)
    assert m.num_pages == 3 and m.page_rows().tolist() == [0, 1]
    assert m.turn(+1) == 1 and m.page_rows().tolist() == [2, 3]
    assert m.page_status() == "rows 3-4 of 5 · page 2 / 3"
    assert m.turn(+5) == 2 and m.page_rows().tolist() == [4]
    m.set_filter(np.array([True, False, True, False, True]))
    assert m.page == 0 and len(m) == 3 and m.page_rows().tolist() == [0, 2]
    m.set_filter(np.zeros(5, bool))
    assert m.page_status() == "no rows match" and m.num_pages == 1
    assert m.cells(1) == ["1", "4"]
    with pytest.raises(ValueError, match="shape"):
        m.set_filter(np.ones(3, bool))


@pytest.fixture(scope="module")
def ov(walker_file):
    with rollrec.load(walker_file) as r:
        return compute_overview(r)


def test_episode_columns_show_the_overview(ov):
    m = TableModel(episode_columns(ov))
    assert list(m.columns) == ["Env", "Ep", "Return", "Steps", "End", "Worst term"]
    m.sort("Return")
    m.sort("Return")  # highest return first
    top = int(m.page_rows()[0])
    assert top == int(np.argmax(ov.ret))
    env, ep, ret, steps, end, worst = m.cells(top)
    assert (int(env), int(ep)) == (ov.env[top], ov.episode[top] + 1)
    assert ret == f"{ov.ret[top]:+.2f}" and int(steps) == ov.stop[top] - ov.start[top]
    assert end in ("unfinished", "terminated", "time-out")
    assert worst == "none" or worst.split()[0].rstrip("…") in " ".join(ov.term_names)


def test_filter_tokens(ov):
    envs = parse_filter("2 5-6", ov)
    assert set(ov.env[envs]) == {2, 5, 6}
    neg = parse_filter("<0", ov)
    assert (ov.ret[neg] < 0).all() and ((ov.ret >= 0) | neg).all()
    both = parse_filter("5-6, >=10", ov)
    assert set(ov.env[both]) <= {5, 6} and (ov.ret[both] >= 10).all()
    term = ov.term_names[int(ov.worst_term[ov.worst_term >= 0][0])]
    named = parse_filter(term[:4].upper(), ov)  # part of a name, any case
    assert named.any() and all(term[:4] in ov.term_names[w] for w in ov.worst_term[named])
    ended = parse_filter("", ov, "time-out")
    assert (ov.ended[ended] == 2).all() and ended.sum() == (ov.ended == 2).sum()


def test_the_filter_takes_the_tables_words_for_how_episodes_ended(ov):
    """Issue 28: the table says "terminated" where the filter said "termination", and typing
    ``terminated`` in the filter was "no reward term matches"."""
    end = next(c for c in episode_columns(ov) if c.name == "End")
    assert {end.text(i) for i in range(len(ov))} <= set(END_LABELS)
    for code, word in enumerate(END_LABELS):
        assert parse_filter(word, ov).tolist() == (ov.ended == code).tolist()
        assert parse_filter("", ov, word).tolist() == (ov.ended == code).tolist()
    assert parse_filter("termination", ov).tolist() == (ov.ended == 1).tolist()  # the old word still works
    both = parse_filter("terminated time-out", ov)  # any of the ends named
    assert both.tolist() == (ov.ended >= 1).tolist()
    assert parse_filter("terminated 2", ov).tolist() == ((ov.ended == 1) & (ov.env == 2)).tolist()


@pytest.mark.parametrize(("text", "message"), [
    ("5-2", "env range 5-2 is reversed; write 2-5"),
    ("nosuchterm", "no reward term matches 'nosuchterm'"),
    ("<<3", "cannot read '<<3'"),
])
def test_filter_errors_say_what_is_wrong(ov, text, message):
    with pytest.raises(ValueError, match=message):
        parse_filter(text, ov)


def test_env_mask():
    assert env_mask("", 4).tolist() == [True] * 4
    assert env_mask("0, 2-3", 5).tolist() == [True, False, True, True, False]
    with pytest.raises(ValueError, match="reversed"):
        env_mask("3-1", 5)
    with pytest.raises(ValueError, match="give env numbers or ranges"):
        env_mask("x", 5)
