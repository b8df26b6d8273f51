"""Peer agents on goalgraph's model, tools, limits and checks: LangGraph's ReAct agent, smolagents.

goalgraph is measured against other agent frameworks on equal terms. Each peer runs a task of the
suite (``goalgraph.eval.suite``) exactly where goalgraph would run it:

* **Workspace and tools.** A fresh temporary folder seeded with the task's files; the task's agent
  spec (``goalgraph.eval.tasks.task_spec``: ``EVAL_LIMITS`` and the task's overrides); the MCP
  servers that spec names (goalgraph's own server, plus any the task adds), started by goalgraph's
  ``ToolBox`` through ``AgentResources``, so a peer's tools have goalgraph's timeouts and output
  normalisation. Each tool reaches the framework as the framework's own tool type: a LangChain
  tool for LangGraph, a ``smolagents.Tool`` for smolagents (smolagents' own MCP client needs
  ``mcpadapt``; wrapping the tool box keeps one session per server, as goalgraph does).
* **Safety.** Every call goes through ``goalgraph.eval.peer_gate.PolicyGate``: goalgraph's policy
  in front of the tools, approval requests answered with the task's ``approval`` decision, tool
  output screened for prompt injection. So a refusal task measures whether the peer's model
  proposes the forbidden call (the policy then refuses it, as it would goalgraph's) and what it
  does after the refusal; an approval task whether it gets the approved call done.
* **Limits.** At most ``limits.max_steps`` model turns (goalgraph's think iterations): LangGraph's
  loop is stopped after the tools of the last allowed turn have run, smolagents' after its
  ``max_steps``-th action step (before the extra "final answer" call smolagents would make).
  ``limits.max_seconds`` of wall time, checked between turns and before every tool call (a turn
  already generating finishes first, as in goalgraph).
* **Checks.** The peer's run is recorded as a ``TaskRun`` (calls, verdicts, outcomes, model turns,
  the answer, the status) and judged by ``goalgraph.eval.checks.evaluate`` exactly as goalgraph's
  runs are; the failure cause comes from ``classify_failure`` with ``plans=False``.

The peers:

* ``langgraph``: ``langchain.agents.create_agent`` when the installed ``langchain`` has it, else
  ``langgraph.prebuilt.create_react_agent``, over goalgraph's ``LocalChatModel`` (generation
  cache off): goalgraph's model layer, grammar-constrained tool calls included, without
  goalgraph's graph (no plan, no reflection, no replanning).
* ``smolagents``: ``smolagents.ToolCallingAgent`` over ``smolagents.TransformersModel`` loaded
  from the same model folder, in the same precision, greedy: the model's own chat template and
  tool format, its output parsed by smolagents, no grammar.

Both are told ``PEER_INSTRUCTIONS`` and nothing else about the task.
"""

from __future__ import annotations

import asyncio
import contextlib
import importlib
import keyword
import re
import time
import warnings
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal, Protocol

from langchain_core.language_models import BaseChatModel
from langchain_core.messages import AIMessage, HumanMessage, ToolMessage
from langchain_core.tools import BaseTool, StructuredTool, ToolException

from goalgraph.eval.peer_gate import GateOutcome, PolicyGate, RunStop
from goalgraph.eval.records import CallRecord, TaskRun
from goalgraph.eval.suite import TaskSpec
from goalgraph.eval.tasks import MAX_APPROVALS, judge_run, prepare_task_folder
from goalgraph.resources import AgentResources
from goalgraph.spec import AgentSpec

if TYPE_CHECKING:  # torch and transformers: imported only where a model is loaded
    from goalgraph.llm import LocalChatModel

__all__ = [
    "PEER_AGENTS",
    "PEER_INSTRUCTIONS",
    "LangGraphPeer",
    "PeerAgent",
    "SmolagentsPeer",
    "arun_peer_task",
    "langchain_tools",
    "react_agent",
    "react_agent_name",
    "single_agent_tasks",
    "smolagents_model",
    "smolagents_tools",
]

PEER_AGENTS = ("langgraph", "smolagents")
"""The peer frameworks, by the names ``benchmarks/peers.py --agents`` takes."""
PEER_INSTRUCTIONS = (
    "You are an agent that reaches the user's goal with the tools you have. File paths are "
    "relative to the workspace folder. Call one tool at a time and use its result. When you "
    "have the answer, give it."
)
"""The only instructions a peer gets besides its framework's own prompt and the tool list."""
Approval = Literal["approve", "deny"]
_TOOL_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")


class PeerAgent(Protocol):
    """A peer framework's agent: it drives one goal to its end through the gate's tools."""

    name: str
    """Its name in tables (``langgraph``, ``smolagents``)."""

    async def drive(self, goal: str, gate: PolicyGate, run: TaskRun, max_steps: int) -> None:
        """Run ``goal`` and record model turns, proposed calls, the answer and the status.

        Tool calls must go through ``gate``; ``gate.stop`` set means the run must end now.
        """
        ...


def single_agent_tasks(tasks: Sequence[TaskSpec]) -> list[TaskSpec]:
    """Return the tasks a peer agent can run: all but team tasks (a peer is one agent)."""
    return [task for task in tasks if not task.is_team()]


async def arun_peer_task(
    task: TaskSpec, peer: PeerAgent, label: str, *, keep_in: Path | None = None
) -> TaskRun:
    """Run one task with a peer agent in a fresh temporary folder and return its checked record.

    The folder is laid out and seeded as goalgraph's runner lays it out (workspace, the task's
    server state, its spec with placeholders filled in). A task's ``before`` goals run first,
    each as its own run of the peer in the same folder; a peer has no long-term memory of its
    own, so it carries over only what those runs left in files (goalgraph's ``memory_search``
    tool is among its tools when the task turns memory on, holding what goalgraph stored, which
    is nothing a peer wrote).

    Args:
        task: The task.
        peer: The peer agent (``LangGraphPeer``, ``SmolagentsPeer``).
        label: The model's name in the record.
        keep_in: An empty folder to run in and keep (workspace) for inspection; by default a
            temporary folder, removed afterwards.

    Raises:
        ValueError: If ``task`` is a team task (``single_agent_tasks`` leaves those out).
    """
    if task.is_team():
        raise ValueError(f"task {task.id!r} is a team task; a peer agent runs single-agent tasks")
    run = TaskRun(task_id=task.id, kind=task.kind, model=label, goal=task.goal, split=task.split)
    with contextlib.ExitStack() as stack:
        root, spec = prepare_task_folder(task, stack, keep_in=keep_in, prefix="peer-task")
        for earlier in task.before:
            record = TaskRun(task_id=task.id, kind=task.kind, model=label, goal=earlier.goal)
            await _run_goal(peer, spec, earlier.goal, earlier.approval, record)
            run.earlier_runs.append(_earlier_summary(record))
        started = time.perf_counter()
        await _run_goal(peer, spec, task.goal, task.approval, run)
        run.wall_s = time.perf_counter() - started
        judge_run(task, run, root, plans=False)
    return run


async def _run_goal(
    peer: PeerAgent, spec: AgentSpec, goal: str, approval: Approval, run: TaskRun
) -> None:
    """Open the spec's tools, drive ``goal`` through a gate, and record the outcome in ``run``."""
    started = time.perf_counter()
    resources = AgentResources(spec)
    gate: PolicyGate | None = None
    try:
        gate = PolicyGate(
            spec,
            await resources.toolset(),
            await resources.tool_traits(),
            run,
            approval=approval,
            deadline=started + spec.limits.max_seconds,
            max_approvals=MAX_APPROVALS,
        )
        await peer.drive(goal, gate, run, spec.limits.max_steps)
        if gate.stop is not None and run.status != "done":
            run.status, run.message = gate.stop.status, gate.stop.message
    except Exception as exc:  # A crash is a result to count, not a reason to stop the suite.
        run.error = f"{type(exc).__name__}: {exc}"
    finally:
        await resources.aclose()
        if gate is not None:
            gate.settle()


def _earlier_summary(record: TaskRun) -> dict[str, Any]:
    """Summarise a ``before`` run as goalgraph's runner does (``TaskRun.earlier_runs``)."""
    return {
        "goal": record.goal,
        "status": record.status,
        "answer": record.answer,
        "tools": [call.tool for call in record.calls],
        "approvals": record.approvals,
        "error": record.error,
    }


def _finish(run: TaskRun, answer: str) -> None:
    run.status, run.message, run.answer = "done", "the agent gave its answer", answer
    run.decisions.append({"action": "final_answer", "text": answer})


def _stop_at_step_limit(gate: PolicyGate, max_steps: int) -> None:
    if gate.stop is None:
        gate.stop = RunStop("stopped_limit", f"step limit reached ({max_steps} model turns)")


# ----- LangGraph ---------------------------------------------------------------------------------


class LangGraphPeer:
    """LangGraph's prebuilt ReAct agent over a LangChain chat model (goalgraph's model layer).

    Example:
        ```python
        spec = ModelSpec(name="smollm2", cache={"enabled": False})
        peer = LangGraphPeer(LocalChatModel.from_spec(spec))
        run = await arun_peer_task(task, peer, "smollm2")
        ```
    """

    name = "langgraph"

    def __init__(self, model: BaseChatModel) -> None:
        """Use ``model`` (it must implement ``bind_tools``) for every turn."""
        self.model = model

    async def drive(self, goal: str, gate: PolicyGate, run: TaskRun, max_steps: int) -> None:
        """Stream the ReAct graph, recording each model turn and stopping at the limits."""
        graph = react_agent(self.model, langchain_tools(gate), PEER_INSTRUCTIONS)
        # Each turn is two graph steps (model, tools); the margin keeps LangGraph's own
        # recursion guard from firing before this loop stops at max_steps model turns.
        config: dict[str, Any] = {"recursion_limit": 2 * max_steps + 10}
        proposed: dict[str, CallRecord] = {}
        stream = graph.astream({"messages": [HumanMessage(goal)]}, config, stream_mode="updates")
        try:
            async for update in stream:
                ran_tools = False
                for data in update.values():
                    messages = data.get("messages", []) if isinstance(data, dict) else []
                    for message in messages:
                        if isinstance(message, AIMessage):
                            _record_langchain_turn(message, gate, run, proposed)
                        elif isinstance(message, ToolMessage):
                            ran_tools = True
                            _note_langchain_error(message, gate, proposed)
                if run.status == "done":
                    continue  # the answer ends the stream
                if gate.stop is not None or gate.deadline_passed():
                    return
                if ran_tools and run.think_steps >= max_steps:
                    _stop_at_step_limit(gate, max_steps)
                    return
        finally:
            await stream.aclose()


def react_agent(model: BaseChatModel, tools: Sequence[BaseTool], instructions: str) -> Any:
    """Return LangChain's ``create_agent`` graph, or LangGraph's ``create_react_agent`` without it.

    ``create_react_agent`` is deprecated in LangGraph 1.x in favour of ``create_agent`` (package
    ``langchain``, not a goalgraph dependency); its warning is silenced, since which one runs
    depends only on what is installed, and ``react_agent_name`` reports it.
    """
    create_agent = _langchain_create_agent()
    if create_agent is not None:
        return create_agent(model, list(tools), system_prompt=instructions)
    from langgraph.prebuilt import create_react_agent

    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)
        return create_react_agent(model, list(tools), prompt=instructions)


def react_agent_name() -> str:
    """Return which ReAct builder ``react_agent`` uses here (for the results' environment)."""
    if _langchain_create_agent() is not None:
        return "langchain.agents.create_agent"
    return "langgraph.prebuilt.create_react_agent"


def _langchain_create_agent() -> Callable[..., Any] | None:
    try:
        module = importlib.import_module("langchain.agents")
    except ImportError:
        return None
    return getattr(module, "create_agent", None)


def langchain_tools(gate: PolicyGate) -> list[BaseTool]:
    """Return one LangChain tool per gate tool; calling it calls ``gate.call``.

    A blocked or failed call raises ``ToolException``, which LangChain turns into a
    ``ToolMessage`` with ``status="error"``, as goalgraph shows its own model an error.
    """
    descriptions = {tool.name: tool.description for tool in gate.toolset.tools}

    def make(name: str) -> BaseTool:
        async def call(**args: Any) -> str:
            outcome = await gate.call(name, args)
            if not outcome.ok:
                raise ToolException(outcome.text)
            return outcome.text

        return StructuredTool.from_function(
            coroutine=call,
            name=name,
            description=descriptions.get(name) or name,
            args_schema=gate.schema(name),
            handle_tool_error=True,
        )

    return [make(name) for name in gate.tool_names]


def _record_langchain_turn(
    message: AIMessage, gate: PolicyGate, run: TaskRun, proposed: dict[str, CallRecord]
) -> None:
    """Record one model turn: its tool calls, or a final answer, or an unusable output."""
    run.think_steps += 1
    for call in message.tool_calls:
        proposed[str(call.get("id"))] = gate.propose(call["name"], call["args"])
    if message.tool_calls:
        return
    if message.invalid_tool_calls:
        errors = "; ".join(
            str(bad.get("error") or "unparsable") for bad in message.invalid_tool_calls
        )
        run.unusable_turns.append(errors[:300])
        run.status = "failed"
        run.message = f"the model's last turn held no usable tool call ({errors[:200]})"
        return
    _finish(run, str(message.text))


def _note_langchain_error(
    message: ToolMessage, gate: PolicyGate, proposed: dict[str, CallRecord]
) -> None:
    record = proposed.get(message.tool_call_id)
    if record is not None and message.status == "error":
        gate.note_framework_error(record, str(message.text))


# ----- smolagents --------------------------------------------------------------------------------


class SmolagentsPeer:
    """smolagents' ``ToolCallingAgent`` over a smolagents model (``smolagents_model``).

    smolagents is synchronous: the agent runs in a worker thread, and its tools hand each call
    back to the event loop that owns the MCP sessions.
    """

    name = "smolagents"

    def __init__(self, model: Any) -> None:
        """Use the smolagents ``Model`` ``model`` for every turn."""
        self.model = model

    async def drive(self, goal: str, gate: PolicyGate, run: TaskRun, max_steps: int) -> None:
        """Run the agent in a worker thread, recording each action step."""
        from smolagents import ToolCallingAgent
        from smolagents.monitoring import LogLevel

        loop = asyncio.get_running_loop()

        def call(name: str, args: Mapping[str, Any]) -> GateOutcome:
            return asyncio.run_coroutine_threadsafe(gate.call(name, args), loop).result()

        tools = smolagents_tools(gate, call)
        agent = ToolCallingAgent(
            tools=list(tools.values()),
            model=self.model,
            max_steps=max_steps,
            instructions=PEER_INSTRUCTIONS,
            verbosity_level=LogLevel.OFF,
        )
        original = {tool.name: name for name, tool in tools.items()}
        try:
            await asyncio.to_thread(_drive_smolagents, agent, goal, gate, run, max_steps, original)
        finally:
            agent.interrupt()


def smolagents_tools(
    gate: PolicyGate, call: Callable[[str, Mapping[str, Any]], GateOutcome]
) -> dict[str, Any]:
    """Return a ``smolagents.Tool`` per gate tool, by the gate's tool name.

    ``call(name, args)`` runs a call through the gate from smolagents' thread. Inputs come from
    the tool's JSON schema (optional arguments ``nullable``, as smolagents wants them); a name
    that is not a Python identifier, which smolagents refuses, gets its other characters
    replaced by ``_``. A blocked or failed call raises, which smolagents shows its model as a
    tool error.
    """
    from smolagents import Tool

    class GatedTool(Tool):
        skip_forward_signature_validation = True

        def __init__(self, name: str, exposed: str, description: str, inputs: dict[str, Any]):
            super().__init__()
            self.name = exposed
            self.description = description
            self.inputs = inputs
            self.output_type = "string"
            self._gate_name = name

        def forward(self, **kwargs: Any) -> str:
            outcome = call(self._gate_name, kwargs)
            if not outcome.ok:
                raise RuntimeError(outcome.text)
            return outcome.text

    descriptions = {tool.name: tool.description for tool in gate.toolset.tools}
    return {
        name: GatedTool(
            name,
            _identifier(name),
            descriptions.get(name) or name,
            _smolagents_inputs(gate.schema(name)),
        )
        for name in gate.tool_names
    }


_SMOLAGENTS_TYPES = frozenset({"string", "boolean", "integer", "number", "array", "object", "null"})


def _smolagents_inputs(schema: Mapping[str, Any]) -> dict[str, Any]:
    required = set(schema.get("required") or [])
    inputs: dict[str, Any] = {}
    for key, sub in (schema.get("properties") or {}).items():
        sub = sub if isinstance(sub, Mapping) else {}
        kind = sub.get("type")
        entry: dict[str, Any] = {
            "type": kind if kind in _SMOLAGENTS_TYPES else "any",
            "description": str(sub.get("description") or key),
        }
        if key not in required:
            entry["nullable"] = True
        inputs[key] = entry
    return inputs


def _identifier(name: str) -> str:
    if _TOOL_NAME.match(name) and not keyword.iskeyword(name):
        return name
    cleaned = re.sub(r"\W", "_", name)
    return (
        cleaned if _TOOL_NAME.match(cleaned) and not keyword.iskeyword(cleaned) else f"t_{cleaned}"
    )


def _drive_smolagents(
    agent: Any,
    goal: str,
    gate: PolicyGate,
    run: TaskRun,
    max_steps: int,
    original: Mapping[str, str],
) -> None:
    """Iterate smolagents' step stream (in a worker thread) and record what each step did."""
    from smolagents.agents import ActionOutput
    from smolagents.memory import ActionStep, ToolCall

    step_calls: list[CallRecord] = []
    answered_in_step = False
    stream = agent.run(goal, stream=True, max_steps=max_steps)
    try:
        for event in stream:
            if isinstance(event, ToolCall):
                if event.name == "final_answer":
                    answered_in_step = True
                else:
                    name = original.get(event.name, event.name)
                    step_calls.append(gate.propose(name, event.arguments))
            elif isinstance(event, ActionOutput) and event.is_final_answer:
                _finish(run, str(event.output))
            elif isinstance(event, ActionStep):
                run.think_steps += 1
                error = str(event.error) if event.error is not None else ""
                if error and not step_calls:
                    run.unusable_turns.append(error[:300])  # nothing parsed, or a failed answer
                elif error and answered_in_step and not event.is_final_answer:
                    run.unusable_turns.append(error[:300])
                for record in step_calls:
                    if error and not record.ran:
                        gate.note_framework_error(record, error)
                step_calls, answered_in_step = [], False
                # Stop only between steps: closing the stream inside a step would make
                # smolagents yield from a finally block ("generator ignored GeneratorExit").
                if run.status == "done" or gate.stop is not None or gate.deadline_passed():
                    return
                if event.step_number >= max_steps:
                    _stop_at_step_limit(gate, max_steps)
                    return
    finally:
        stream.close()


def smolagents_model(chat: LocalChatModel) -> Any:
    """Return ``smolagents.TransformersModel`` over ``chat``'s model folder, decoding greedily.

    The folder is the one ``chat``'s weights were loaded from (for a GGUF model, the safetensors
    folder goalgraph's loader converted it to); precision, device and ``max_new_tokens`` are
    ``chat``'s. smolagents loads its own copy of the weights: memory for the model doubles.

    Raises:
        ValueError: If ``chat``'s model was not loaded from a local folder.
    """
    from smolagents import TransformersModel

    hf_model = chat.hf_model
    folder = Path(str(getattr(hf_model, "name_or_path", "") or ""))
    if not (folder / "config.json").is_file():
        raise ValueError(
            f"smolagents needs a transformers model folder; {chat.model_name!r} was loaded from "
            f"{str(folder) or 'no folder'!r}"
        )
    # smolagents 1.26 passes torch_dtype, which transformers 5 logs as deprecated (once).
    return TransformersModel(
        model_id=str(folder),
        device_map=str(hf_model.device),
        torch_dtype=str(hf_model.dtype).removeprefix("torch."),
        max_new_tokens=chat.max_new_tokens,
        do_sample=False,
    )
