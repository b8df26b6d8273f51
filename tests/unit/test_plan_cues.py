"""Tool cues: the planning example they choose and the plan check that adds a missing step."""

from __future__ import annotations

import asyncio
import json

import jsonschema
import pytest
from langchain_core.tools import BaseTool, StructuredTool, tool
from langgraph.checkpoint.memory import InMemorySaver

from goalgraph import Agent, AgentSpec
from goalgraph.cues import Prohibition, cue_clause, cued_actions, forbidden_tools, prohibitions
from goalgraph.hints import hints_from_payloads, tool_hints
from goalgraph.nodes.plan import example_steps, plan_messages
from goalgraph.plan import MAX_PLAN_STEPS, add_cued_steps, fallback_plan, steps_from_output
from goalgraph.profiles import PROFILES
from goalgraph.prompts import plan_examples
from goalgraph.spec import MemorySpec
from goalgraph.testing import ScriptedChatModel, final_answer, garbage, plan, tool_call
from goalgraph.tools.hints import BUILTIN_HINTS, HINTS_META_KEY
from goalgraph.tools.server import build_server

ALL = hints_from_payloads(BUILTIN_HINTS)
"""The hints of every builtin tool, as the agent reads them from the server's ``_meta``."""


def _hints(*names: str):
    return {name: hint for name, hint in ALL.items() if name in names}


@pytest.fixture(scope="module")
def server_tools(tmp_path_factory) -> list[BaseTool]:
    """The builtin MCP server's tools (memory_search too), as LangChain tools with their schemas."""
    root = tmp_path_factory.mktemp("ws")
    server = build_server(root, memory=MemorySpec(path=root / "memory.sqlite"))
    listed = asyncio.run(server.list_tools())
    return [
        StructuredTool(
            name=item.name,
            description=item.description or "",
            args_schema=item.inputSchema,
            func=lambda **_: "",
            metadata={"_meta": item.meta},  # as langchain-mcp-adapters hands them over
        )
        for item in listed
    ]


def _only(tools: list[BaseTool], *names: str) -> list[BaseTool]:
    return [item for item in tools if item.name in names]


def _example_tools(goal: str, tools: list[BaseTool]) -> list[str]:
    """The tools of the one example the planner is shown, step by step."""
    ((_, plan_json),) = plan_examples(goal, tools, limit=1)
    return [step["tool"] for step in json.loads(plan_json)["steps"]]


# ----- examples ----------------------------------------------------------------------------------


def test_every_builtin_tool_has_an_example_with_valid_arguments(server_tools):
    assert {item.name for item in server_tools} == set(ALL)
    for item in server_tools:
        example = ALL[item.name].example
        assert example is not None
        jsonschema.validate(example.args, item.args_schema)
        assert example.goal and example.step


@pytest.mark.parametrize(
    ("goal", "tools"),
    [
        ("Which of my files mention TODO?", ["search_files"]),
        ("Search the project for the word deadline", ["search_files"]),
        ("Compute 37*43 and write the result to result.txt", ["calculator", "write_file"]),
        ("Read costs.txt and add up the costs", ["read_file", "calculator"]),
        ("Find the file that mentions the lease, then read it", ["search_files", "read_file"]),
        (
            "Count the rows in sales.db and save the count to count.txt",
            ["sqlite_query", "write_file"],
        ),
        ("What tables does the inventory database have?", ["sqlite_query"]),
        ("Get https://example.org/status and tell me what it says", ["http_get"]),
        ("Use Python to shuffle the letters of 'hello'", ["python"]),
        ("Save the poem in poem.md", ["write_file"]),
        ("What is 3**4 - 1?", ["calculator"]),
        ("Open docs/setup.txt", ["read_file"]),
        ("List what is in the photos folder", ["list_files"]),
        ("What did I tell you to remember about my car?", ["memory_search"]),
        ("Search my notes for the launch code word", ["memory_search"]),
    ],
)
def test_the_example_is_chosen_by_cue_words(server_tools, goal, tools):
    assert _example_tools(goal, server_tools) == tools


def test_a_two_action_goal_gets_a_two_step_example_whose_second_step_needs_the_first(
    server_tools,
):
    ((example_goal, plan_json),) = plan_examples(
        "Compute 37*43 and write the result to result.txt", server_tools, limit=1
    )
    first, second = json.loads(plan_json)["steps"]
    assert (first["tool"], first["depends_on"]) == ("calculator", [])
    assert (second["tool"], second["depends_on"]) == ("write_file", [1])
    assert " and " in example_goal and "37*43" not in example_goal  # generic, not the goal


def test_the_cued_example_comes_last_and_is_not_repeated(server_tools):
    pairs = plan_examples("Which of my files mention TODO?", server_tools, limit=3)
    tools = [[step["tool"] for step in json.loads(plan_json)["steps"]] for _, plan_json in pairs]
    assert len(tools) == 3 and tools[-1] == ["search_files"]
    assert ["search_files"] not in tools[:-1]


def test_cues_count_only_for_available_tools(server_tools):
    no_search = [item for item in server_tools if item.name != "search_files"]
    assert _example_tools("Which of my files mention TODO?", no_search) != ["search_files"]
    no_write = [item for item in server_tools if item.name != "write_file"]
    goal = "Compute 37*43 and write the result to result.txt"
    assert _example_tools(goal, no_write) == ["calculator"]
    assert cued_actions("Fetch https://example.org", _hints("calculator", "http_get")) == [
        "http_get"
    ]
    assert cued_actions("Fetch https://example.org", _hints("calculator")) == []


def test_a_tool_without_an_example_is_never_shown(server_tools):
    @tool
    def fetch(url: str) -> str:
        """Fetch a URL."""
        return url

    assert _example_tools(
        "Fetch https://example.org", [fetch, *_only(server_tools, "calculator")]
    ) == ["calculator"]
    assert plan_examples("Fetch https://example.org", [fetch]) == []


@pytest.mark.parametrize(
    ("goal", "expected"),
    [
        ("Who is my sister?", "memory_search"),  # "sister" is in its example
        ("Evaluate this expression: seven squared", "calculator"),  # words of its description
        ("Tell me a joke", "list_files"),  # no overlap at all: the last tool
    ],
)
def test_goals_without_cues_fall_back_to_word_overlap(server_tools, goal, expected):
    by_name = {item.name: item for item in server_tools}
    tools = [by_name[name] for name in ("calculator", "memory_search", "list_files")]
    assert cued_actions(goal, ALL) == []
    assert _example_tools(goal, tools) == [expected]


def test_the_planner_prompt_shows_one_example_of_the_cued_tool(server_tools):
    goal = "Which of my files mention TODO?"
    system, user = plan_messages(goal, server_tools, profile=PROFILES["tiny"])
    assert system.content.count("Example plan:") == 1
    assert '"tool":"search_files"' in system.content
    assert "1 to 3 short steps" in system.content
    assert user.content == "Goal: Which of my files mention TODO?"


def test_the_standard_profile_plans_without_examples_and_up_to_five_steps(server_tools):
    system, _ = plan_messages("Which of my files mention TODO?", server_tools)
    assert "Example" not in system.content
    assert (
        "1 to 5 short steps" in system.content and "Plan only what the goal asks" in system.content
    )


def test_a_copied_tool_suffix_is_dropped_from_a_step():
    output = {"steps": [{"description": "Read a.txt (tool: read_file)", "tool": "read_file"}]}
    (step,) = steps_from_output(output, tool_names=["read_file"])
    assert step["description"] == "Read a.txt"


# ----- the plan check ----------------------------------------------------------------------------


def _steps(*pairs: tuple[str, str | None]) -> list:
    return steps_from_output(
        {
            "steps": [
                {"description": d, "tool": t or "none", "depends_on": [], "success_criteria": ""}
                for d, t in pairs
            ]
        },
        tool_names=ALL,
    )


def test_a_missing_write_step_is_appended_after_the_last_step():
    steps = _steps(("Compute 37*43", "calculator"))
    goal = "Compute 37*43 and write the result to result.txt"
    checked = add_cued_steps(steps, goal, ALL)
    assert [(s["id"], s["tool"], s["depends_on"]) for s in checked] == [
        (1, "calculator", []),
        (2, "write_file", [1]),
    ]
    assert checked[1]["description"] == "Write the result to result.txt"
    assert checked[1]["status"] == "pending"
    assert len(steps) == 1  # The input is not changed.


def test_missing_steps_follow_the_goal_order_and_a_matching_toolless_step_gets_its_tool():
    goal = "Count the orders in shop.db and write the number to orders.txt"
    checked = add_cued_steps(_steps(("Count the orders in shop.db", None)), goal, ALL)
    assert [(s["tool"], s["description"]) for s in checked] == [
        ("sqlite_query", "Count the orders in shop.db"),
        ("write_file", "Write the number to orders.txt"),
    ]
    checked = add_cued_steps(_steps(("Do it", None)), goal, ALL)
    assert [(s["id"], s["tool"], s["depends_on"]) for s in checked] == [
        (1, None, []),
        (2, "sqlite_query", [1]),
        (3, "write_file", [2]),
    ]


@pytest.mark.parametrize(
    ("goal", "planned", "tools"),
    [
        # The step's words cue the missing tool, not its own: it gets the tool, no copy is added.
        ("Write hello to greeting.txt", ("Write hello to greeting.txt", "python"), ["write_file"]),
        ("Fetch http://a.test/x", ("Fetch http://a.test/x", "calculator"), ["http_get"]),
        # Its words cue its own tool too: the missing step is added after it.
        (
            "Use Python to print 3 and write it to out.txt",
            ("Use Python to print 3 and write it to out.txt", "python"),
            ["python", "write_file"],
        ),
    ],
)
def test_a_step_whose_words_cue_the_missing_tool_gets_it(goal, planned, tools):
    checked = add_cued_steps(_steps(planned), goal, ALL)
    assert [s["tool"] for s in checked] == tools
    assert checked[0]["description"] == planned[0]


def test_a_step_copied_from_the_example_is_restated_as_the_goal(server_tools):
    goal = "Fetch http://169.254.169.254/latest/meta-data/ and show me what it returns"
    copied = example_steps(goal, server_tools)
    assert copied == ["Fetch https://example.com"]
    raw = {"steps": [{"description": "Fetch https://example.com", "tool": "calculator"}]}
    (step,) = steps_from_output(raw, tool_names=ALL, goal=goal, hints=ALL, copied=copied)
    assert step["description"] == goal
    # The goal's own words are never taken for a copy, and nothing changes without ``goal``.
    own = {"steps": [{"description": "Fetch https://example.com", "tool": "http_get"}]}
    same = "Fetch https://example.com and summarise it"
    assert (
        steps_from_output(own, tool_names=ALL, goal=same, hints=ALL, copied=copied)[0][
            "description"
        ]
        == "Fetch https://example.com"
    )
    assert steps_from_output(raw, tool_names=ALL, copied=copied)[0]["description"] == copied[0]


@pytest.mark.parametrize(
    ("goal", "tool", "clause"),
    [
        (
            "Fetch https://example.org/a and sum the numbers",
            "http_get",
            "Fetch https://example.org/a",
        ),
        ("Which notes mention Paris? Read the first", "search_files", "Which notes mention Paris"),
        ("Save milk and eggs in list.txt", "write_file", "Save milk and eggs in list.txt"),
    ],
)
def test_each_strong_cue_adds_its_clause(goal, tool, clause):
    checked = add_cued_steps(_steps(("Think", None)), goal, ALL)
    assert [(s["tool"], s["description"]) for s in checked[1:]] == [(tool, clause)]


@pytest.mark.parametrize(
    ("goal", "steps", "tools"),
    [
        ("Write hi to a.txt", [("Write hi to a.txt", "write_file")], ALL),  # already planned
        ("Write hi to a.txt", [("Write hi", "calculator")], _hints("calculator")),  # not available
        ("What is 12*(3+4)?", [("Compute 12*(3+4)", "calculator")], ALL),  # no cue
        ("Read report.txt", [("Read report.txt", "read_file")], ALL),  # no strong cue
        ("Search the files for TODO", [("Read notes.txt", "read_file")], ALL),  # a weak cue
        ("Write hello", [("Say hello", None)], ALL),  # no file to write to
    ],
)
def test_no_step_is_added_without_a_missing_strong_cue(goal, steps, tools):
    before = _steps(*steps)
    assert add_cued_steps(before, goal, tools) == before


@pytest.mark.parametrize(
    ("goal", "forbidden"),
    [
        # The prohibition wins over the first sentence's "database".
        ("Which files mention the database password? Do not open any database.", "sqlite_query"),
        ("What is the URL in link.txt? Do not fetch it.", "http_get"),  # by its example's verb
        ("Never write to config.yaml; read it and tell me the port", "write_file"),
        ("Without opening shop.db, guess what tables it holds", "sqlite_query"),
        ("Don’t fetch https://a.test/x, just tell me its host", "http_get"),
        ("No need to fetch it. What host does https://a.test/x name?", "http_get"),
        ("You cannot fetch https://a.test/x. What host is it?", "http_get"),
    ],
)
def test_a_tool_the_goal_forbids_gets_no_step(goal, forbidden):
    assert forbidden in forbidden_tools(goal, ALL)
    checked = add_cued_steps(_steps(("Think", None)), goal, ALL)
    assert forbidden not in [step["tool"] for step in checked]


@pytest.mark.parametrize(
    ("goal", "added"),
    [
        # A prohibition reaches to the end of its part of the sentence, not further.
        ("Don't read it, just write the URL to url.txt", "write_file"),
        ("Do not summarise it but save the text of https://a.test to a.txt", "http_get"),
        # A "not" inside a part describes; it forbids nothing.
        ("Write the names that do not appear in b.txt to out.txt", "write_file"),
        ("Cancel SO-4, Ada doesn't need it, and write done to log.txt", "write_file"),
        ("If the total isn't zero write it to total.txt", "write_file"),
        ("Which files don't mention Berlin?", "search_files"),
        ("Compute 12*(3+4) and don't forget to write it to result.txt", "write_file"),
        # A verb two tools' examples share ("Search ...") names neither.
        ("Which notes mention Berlin without searching memory", "search_files"),
    ],
)
def test_a_prohibition_forbids_only_the_tools_named_after_it(goal, added):
    assert added not in forbidden_tools(goal, ALL)
    checked = add_cued_steps(_steps(("Think", None)), goal, ALL)
    assert added in [step["tool"] for step in checked]


def test_a_third_party_tool_is_forbidden_by_its_own_hints():
    hints = hints_from_payloads(
        {
            "cancel_order": {
                "rank": 1,
                "strong_cue": r"\bcancel\w*",
                "example": {"goal": "Cancel SO-1", "step": "Open SO-1", "args": {}},
            }
        }
    )
    assert forbidden_tools("Look up SO-1004 but do not cancel it", hints) == {"cancel_order"}
    assert forbidden_tools("Cancel SO-1004, Ada doesn't need it", hints) == set()


def test_the_plan_never_grows_past_its_maximum():
    full = _steps(*[(f"Step {n}", "calculator") for n in range(1, MAX_PLAN_STEPS + 1)])
    goal = "Compute it three ways and write the result to out.txt"
    assert add_cued_steps(full, goal, ALL) == full
    two = _steps(*[(f"Step {n}", "calculator") for n in range(1, MAX_PLAN_STEPS)])
    goal = "Query shop.db, fetch https://example.org and write the result to out.txt"
    assert len(add_cued_steps(two, goal, ALL)) == MAX_PLAN_STEPS


def test_cue_clause_stops_at_joins_and_sentence_ends():
    write = ALL["write_file"].strong_cue
    assert write is not None
    assert cue_clause("Compute 2*3, then save it to x.txt.", write) == "Save it to x.txt"
    assert cue_clause("What is 2*3?", write) is None


# ----- in the graph ------------------------------------------------------------------------------


@tool
def calculator(expression: str) -> str:
    """Evaluate an arithmetic expression."""
    return "1591" if expression == "37*43" else "?"


WRITES: list[tuple[str, str]] = []


@tool
def write_file(path: str, content: str) -> str:
    """Write text to a file."""
    WRITES.append((path, content))
    return f"wrote {path}"


for _tool in (calculator, write_file):  # their hints, as goalgraph's server sends them
    _tool.metadata = {"_meta": {HINTS_META_KEY: BUILTIN_HINTS[_tool.name]}}


def _agent(model: ScriptedChatModel) -> Agent:
    spec = AgentSpec(builtin_tools=False, final_answer="model", model={"profile": "tiny"})
    return Agent(spec, model=model, tools=[calculator, write_file], checkpointer=InMemorySaver())


def test_the_plan_node_adds_the_missing_write_and_the_run_writes_the_file():
    WRITES.clear()
    model = ScriptedChatModel(
        responses=[
            plan(("Compute 37*43", "calculator")),
            tool_call("calculator", expression="37*43"),
            tool_call("write_file", path="result.txt", content="1591"),
            final_answer("1591"),
        ]
    )
    with _agent(model) as agent:
        result = agent.run("Compute 37*43 and write the result to result.txt")
    assert [step["tool"] for step in result.plan] == ["calculator", "write_file"]
    assert result.status == "done" and WRITES == [("result.txt", "1591")]
    assert model.tool_names[2] == ["write_file"]  # the added step offers its tool first


def test_the_fallback_plan_stays_one_step():
    model = ScriptedChatModel(responses=[garbage(), final_answer("done")])
    with _agent(model) as agent:
        result = agent.run("Compute 37*43 and write the result to result.txt")
    assert [(s["description"], s["tool"]) for s in result.plan] == [
        (fallback_plan("Compute 37*43 and write the result to result.txt")[0]["description"], None)
    ]


def test_hints_travel_with_the_tool_not_with_its_name():
    @tool
    def create_invoice(customer: str) -> str:
        """Create an invoice for a customer."""
        return "INV-1"

    @tool("write_file")
    def someone_elses_write_file(path: str) -> str:
        """A third party's tool that happens to share a builtin tool's name."""
        return path

    create_invoice.metadata = {
        "_meta": {HINTS_META_KEY: {"rank": 5, "cue": r"\binvoice", "strong_cue": r"\binvoice"}}
    }
    hints = tool_hints([create_invoice, someone_elses_write_file])
    assert list(hints) == ["create_invoice"]  # no hints, no cue: a name alone means nothing
    goal = "Compute 2*3 and write it to a.txt, then invoice ACME"
    checked = add_cued_steps(_steps(("Compute 2*3", "calculator")), goal, hints)
    assert [(s["tool"], s["description"]) for s in checked] == [
        ("calculator", "Compute 2*3"),
        ("create_invoice", "Invoice ACME"),
    ]


def test_malformed_hints_are_ignored():
    hints = hints_from_payloads({"x": {"rank": "first", "cue": "([", "example": {"goal": 3}}})
    assert hints["x"].rank == 1_000 and hints["x"].cue is None and hints["x"].example is None


@pytest.mark.parametrize(
    ("goal", "expected"),
    [
        ("What is the URL in bookmark.txt? Do not fetch it.", [Prohibition("http_get")]),
        ("Don't overwrite a.txt; write to b.txt", [Prohibition("write_file", ("a.txt",))]),
        (
            'Never write to "notes/todo.md" or report.txt',
            [Prohibition("write_file", ("notes/todo.md", "report.txt"))],
        ),
        (
            "Do not fetch https://example.com/a. Fetch https://example.com/b",
            [Prohibition("http_get", ("https://example.com/a",))],
        ),
        # One prohibition of the whole tool outweighs one of an object.
        ("Don't write to a.txt. Never write anything", [Prohibition("write_file")]),
        ("Which files don't mention Berlin?", []),
    ],
)
def test_prohibitions_name_the_tool_and_its_objects(goal, expected):
    assert prohibitions(goal, ALL) == expected


def test_a_prohibition_covers_only_calls_naming_its_objects():
    (ban,) = prohibitions("Don't overwrite a.txt; write to b.txt", ALL)
    assert ban.covers({"path": "a.txt"}) and ban.covers({"path": "./a.txt"})
    assert not ban.covers({"path": "b.txt"}) and not ban.covers({"path": "data.txt"})
    assert Prohibition("http_get").covers({"url": "https://example.com"})
