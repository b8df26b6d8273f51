"""Fitting prompts into the context window: drop oldest turns, then cut, always say so."""

from __future__ import annotations

import logging

from goalgraph.llm.budget import fit_turns


def render(turns):
    return "".join(f"<{t['role']}>{t['content']}" for t in turns)


def count(text):
    return len(text)  # One "token" per character keeps the arithmetic visible.


def turns(*contents):
    return [{"role": "system", "content": "S"}] + [{"role": "user", "content": c} for c in contents]


def test_a_prompt_that_fits_is_untouched(caplog):
    fitted = fit_turns(turns("a", "b"), render=render, count=count, budget=1000)
    assert fitted.prompt == render(turns("a", "b"))
    assert (fitted.dropped_turns, fitted.cut_characters) == (0, 0)
    assert not caplog.records


def test_oldest_turns_go_first_system_and_last_stay(caplog):
    caplog.set_level(logging.WARNING)
    fitted = fit_turns(turns("x" * 50, "y" * 50, "z" * 10), render=render, count=count, budget=40)
    assert fitted.prompt == "<system>S<user>" + "z" * 10
    assert fitted.dropped_turns == 2 and fitted.tokens <= 40
    assert "dropped 2 oldest turn(s)" in caplog.text


def test_a_single_huge_turn_is_cut_with_a_visible_marker(caplog):
    caplog.set_level(logging.WARNING)
    fitted = fit_turns(turns("w" * 5000), render=render, count=count, budget=300)
    assert fitted.tokens <= 300
    assert "characters cut to fit the context window" in fitted.prompt
    assert fitted.cut_characters > 0 and "cut" in caplog.text
