"""The tool relevance gate: which bound tools a turn is offered (``policies.tool_gate``)."""

from __future__ import annotations

import numpy as np
from helpers import calculator, read_file

from goalgraph.llm.grammar import to_openai_tools
from goalgraph.policies.tool_gate import DEFAULT_TOOL_GATE, ToolGate, tool_text

TOOLS = to_openai_tools([calculator, read_file])
AXES = {"calculator": 0, "read": 1, "weather": 2}


def embed_by_keyword(texts: list[str]) -> np.ndarray:
    """Unit vectors along the axis of the first keyword a text contains (else a fourth axis)."""
    vectors = np.zeros((len(texts), 4), dtype=np.float32)
    for row, text in enumerate(texts):
        axis = next((i for word, i in AXES.items() if word in text.lower()), 3)
        vectors[row, axis] = 1.0
    return vectors


def test_tool_text_reads_the_name_as_words_and_the_description():
    assert tool_text({"name": "math.triangle_area", "description": "Area."}) == (
        "math triangle area: Area."
    )
    assert tool_text(TOOLS[1]).startswith("read file: Read a text file")


def test_select_keeps_fitting_tools_in_order_and_can_keep_none():
    gate = ToolGate(0.5, embed=embed_by_keyword)
    assert [t["function"]["name"] for t in gate.select("use the calculator", TOOLS)] == [
        "calculator"
    ]
    assert gate.select("what's the weather like", TOOLS) == []
    assert gate.select("anything", []) == []
    assert ToolGate(-1.0, embed=embed_by_keyword).select("x", TOOLS) == TOOLS


def test_real_minilm_separates_an_off_topic_question_from_a_fitting_one():
    gate = ToolGate(DEFAULT_TOOL_GATE)
    assert gate.select("Who wrote the play Hamlet?", TOOLS) == []
    fitting = gate.select("What is 12*(3+4)?", TOOLS)
    assert [t["function"]["name"] for t in fitting] == ["calculator"]
    scores = gate.scores("Read the file notes.txt", TOOLS)
    assert scores[1] > DEFAULT_TOOL_GATE > scores[0]
