"""The live resources a graph's nodes use: the spec, the chat model and the tool set.

They are opened lazily, on first use, so that importing a graph (as ``langgraph dev`` does) neither
loads a model nor starts an MCP server. MCP sessions then live until ``aclose()``. LangGraph runs
every node in a task of its own, which is fine: ``ToolBox`` keeps each session in a background task,
so it may be opened in one node's task and closed from another.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import threading
import time
from collections.abc import Sequence
from typing import Any, Protocol

from langchain_core.language_models import BaseChatModel
from langchain_core.tools import BaseTool
from langchain_core.utils.function_calling import convert_to_openai_tool

from goalgraph.audit import AuditLog
from goalgraph.memory.backend import MemoryBackend
from goalgraph.policies import guard_tool_choice
from goalgraph.profiles import ModelProfile, profile_of_model, resolve_profile, rules_of_model
from goalgraph.risk import ToolTraits, server_trust, tool_traits
from goalgraph.spec import BUNDLED_MODEL, AgentSpec
from goalgraph.tools.content import DEFAULT_MAX_OUTPUT_CHARS, ArtifactStore, content_to_text
from goalgraph.tools.toolbox import ToolBox, ToolResult

__all__ = ["ARTIFACTS_FOLDER", "AgentResources", "StaticToolSet", "ToolSet"]

log = logging.getLogger(__name__)

ARTIFACTS_FOLDER = ".goalgraph/artifacts"
"""Where, inside the workspace, tool outputs too large or binary for the prompt are kept (the
agent can read them back with ``read_file``)."""


class ToolSet(Protocol):
    """What the nodes need from tools: their LangChain form, their schemas, and a safe call."""

    tools: list[BaseTool]

    def schemas(self) -> dict[str, dict[str, Any]]:
        """Return each tool's argument JSON schema by name."""
        ...

    async def call(
        self, name: str, args: dict[str, Any], *, timeout_s: float | None = None
    ) -> ToolResult:
        """Run a tool (cut off after ``timeout_s`` when given); never raise for a tool failure."""
        ...


class StaticToolSet:
    """A ``ToolSet`` over plain LangChain tools, for tools defined in Python instead of MCP."""

    def __init__(self, tools: Sequence[BaseTool], *, timeout_s: float = 60.0) -> None:
        """Wrap ``tools``; each call is cut off after ``timeout_s`` seconds."""
        self.tools = list(tools)
        self._by_name = {tool.name: tool for tool in self.tools}
        self._timeout_s = timeout_s

    def schemas(self) -> dict[str, dict[str, Any]]:
        """Return each tool's argument JSON schema by name."""
        return {
            tool.name: convert_to_openai_tool(tool)["function"]["parameters"] for tool in self.tools
        }

    async def call(
        self, name: str, args: dict[str, Any], *, timeout_s: float | None = None
    ) -> ToolResult:
        """Run tool ``name``; failures and timeouts become ``ok=False`` results."""
        started = time.perf_counter()
        timeout = self._timeout_s if timeout_s is None else timeout_s
        tool = self._by_name.get(name)
        if tool is None:
            return ToolResult(ok=False, content="", error=f"unknown tool {name!r}", elapsed_s=0.0)
        try:
            async with asyncio.timeout(timeout):
                output = await tool.ainvoke(args)
        except TimeoutError:
            error = f"tool {name!r} timed out after {timeout:g} s"
            return ToolResult(False, "", error, time.perf_counter() - started)
        except Exception as exc:  # A broken tool is an observation, not a crash.
            error = f"tool {name!r} failed: {type(exc).__name__}: {exc}"
            return ToolResult(False, "", error, time.perf_counter() - started)
        text = content_to_text(str(output), max_chars=DEFAULT_MAX_OUTPUT_CHARS)
        return ToolResult(True, text, None, time.perf_counter() - started)


class AgentResources:
    """Lazily opened model and tools for one graph; close with ``aclose()``."""

    def __init__(
        self,
        spec: AgentSpec,
        *,
        model: BaseChatModel | None = None,
        tools: Sequence[BaseTool] | ToolSet | None = None,
        memory: MemoryBackend | None = None,
    ) -> None:
        """Hold ``spec``; ``model``, ``tools`` and ``memory`` override what the spec would build."""
        self.spec = spec
        self._model = model
        self._model_given = model is not None
        self._profile: ModelProfile | None = None
        self._memory = memory
        self._owns_memory = memory is None
        self._memory_failed = False
        self._memory_lock = threading.Lock()
        self._toolset: ToolSet | None = None
        if tools is not None:
            self._toolset = (
                StaticToolSet(tools, timeout_s=spec.limits.tool_timeout_s)
                if isinstance(tools, Sequence)
                else tools
            )
        self._owns_toolset = tools is None
        self._toolset_lock: asyncio.Lock | None = None
        self._traits: tuple[ToolSet, dict[str, ToolTraits]] | None = None
        self._stack = contextlib.AsyncExitStack()
        self.audit: AuditLog | None = AuditLog(spec.safety.audit_dir) if spec.safety.audit else None
        """Where safety_check and act record every action; ``None`` when auditing is off."""

    def chat_model(self) -> BaseChatModel:
        """Return the chat model, loading the spec's model on first use.

        A method, not a property: LangGraph inspects node closures' attribute chains when it
        compiles a graph, and a property would load the model at import time.
        """
        if self._model is None:
            self._model = self._spec_model()
        return self._model

    def _spec_model(self) -> BaseChatModel:
        """Build the spec's model, behind the tool gate and grounding when they are on."""
        settings = self.spec.model
        model: BaseChatModel
        if settings.provider == "openai":
            from goalgraph.llm.endpoint import endpoint_chat_model

            model = endpoint_chat_model(settings)
        else:
            from goalgraph.llm import LocalChatModel  # Heavy: torch and transformers.

            model = LocalChatModel.from_spec(settings)
        return guard_tool_choice(model, gate=settings.tool_gate, ground=settings.ground_arguments)

    async def achat_model(self) -> BaseChatModel:
        """Return the chat model, loading it in a worker thread the first time.

        Loading imports torch and reads weights for seconds; on the event loop that would stall
        every other run (and ``langgraph dev`` interrupts such blocking calls mid-import).
        """
        if self._model is not None:
            return self._model
        return await asyncio.to_thread(self.chat_model)

    def memory(self) -> MemoryBackend | None:
        """Return long-term memory, opening the spec's backend on first use.

        ``None`` when memory is off, or when the backend cannot be opened: that is logged once
        and the agent carries on without long-term memory rather than failing the run.
        """
        with self._memory_lock:
            if self._memory is None and not self._memory_failed:
                from goalgraph.memory.factory import open_memory
                from goalgraph.memory.types import MemoryBackendError

                wants_model = self.spec.memory.extractor == "model"
                try:
                    self._memory = open_memory(
                        self.spec.memory, chat_model=self.chat_model() if wants_model else None
                    )
                except MemoryBackendError as exc:
                    log.warning("long-term memory is unavailable, carrying on without it: %s", exc)
                    self._memory_failed = True
            return self._memory

    def profile(self) -> ModelProfile:
        """Return the model's profile (``model.profile`` and ``model.rules``, over the rules a
        model given in code states, ``goalgraph.profiles.rules_of_model``, or those measured
        for the ladder model the spec names, ``goalgraph.llm.ladder``).

        ``auto`` is decided without loading a model when it can be: the bundled model is ``tiny``
        and an endpoint is ``standard``; a model given in code, or a local model folder, is asked
        (``goalgraph.profiles.profile_of_model``), which loads a local model.
        """
        if self._profile is None:
            name = self._profile_name() or "standard"
            stated = rules_of_model(self._model) if self._model_given else self._rung_rules()
            self._profile = resolve_profile(name, {**stated, **self.spec.model.rules})
        return self._profile

    def _rung_rules(self) -> dict[str, bool]:
        """Return the rules measured for the spec's model when it is a ladder model."""
        if self.spec.model.provider != "local":
            return {}
        from goalgraph.llm.ladder import ladder_rules

        return ladder_rules(self.spec.model.name)

    async def aprofile(self) -> ModelProfile:
        """Return ``profile()``, loading a local model in a worker thread when it must be asked."""
        if self._profile is None and self._profile_name(load=False) is None:
            await self.achat_model()
        return self.profile()

    def _profile_name(self, *, load: bool = True) -> str | None:
        model = self.spec.model
        if model.profile != "auto":
            return model.profile
        if self._model_given:
            return profile_of_model(self._model)
        if model.provider == "openai":
            return "standard"
        if model.name == BUNDLED_MODEL:
            return "tiny"
        return profile_of_model(self.chat_model()) if load else None

    def recalls_into_prompt(self) -> bool:
        """Tell whether plan and think get recalled memory in their prompts (``memory.recall``)."""
        mode = self.spec.memory.recall
        if mode != "auto":
            return mode == "prompt"
        return not self.profile().recall_through_tool

    def answers_from_last_step(self) -> bool:
        """Tell whether the last step's result is the answer (``final_answer``, else the
        profile), rather than an answer the model writes."""
        if self.spec.final_answer != "auto":
            return self.spec.final_answer == "last_step"
        return self.profile().answer_from_last_step

    def earlier_failures(self) -> dict[str, int]:
        """Return the failures a new run starts with (``AgentState.failure_counts``): none for
        a lone agent; a team member's run starts with those its team has seen."""
        return {}

    async def toolset(self) -> ToolSet:
        """Return the tool set, opening the spec's MCP servers on first use."""
        if self._toolset is not None:
            return self._toolset
        if self._toolset_lock is None:
            self._toolset_lock = asyncio.Lock()
        async with self._toolset_lock:
            if self._toolset is None:
                self._toolset = await self._open_toolbox()
        return self._toolset

    async def tool_traits(self) -> dict[str, ToolTraits]:
        """Return each tool's risk class, path/URL arguments and output source, computed once
        per tool set.

        A tool's declared source is believed when its MCP server is marked trusted; tools given
        in Python (``StaticToolSet``) are the user's own and count as a trusted server's.
        """
        toolset = await self.toolset()
        if self._traits is None or self._traits[0] is not toolset:
            server_of = getattr(toolset, "server_of", None)
            trusted = (
                server_trust(self.spec.all_servers(), server_of)
                if server_of is not None
                else lambda _name: True
            )
            traits = tool_traits(toolset.tools, self.spec.tools.risk, trusted=trusted)
            self._traits = (toolset, traits)
        return self._traits[1]

    def tool_timeout(self, tool: str) -> float:
        """Return the seconds ``tool`` may run: ``tools.timeouts`` or ``limits.tool_timeout_s``."""
        return self.spec.tools.timeouts.get(tool, self.spec.limits.tool_timeout_s)

    async def _open_toolbox(self) -> ToolBox:
        servers = self.spec.all_servers()
        artifacts = ArtifactStore(
            self.spec.workspace / ARTIFACTS_FOLDER,
            shown_as=ARTIFACTS_FOLDER,
            root=self.spec.workspace,
        )
        return await self._stack.enter_async_context(
            ToolBox.open(
                servers,
                timeout_s=self.spec.limits.tool_timeout_s,
                artifacts=artifacts,
                max_restarts=self.spec.tools.max_restarts,
            )
        )

    async def aclose(self) -> None:
        """Close MCP sessions (stopping their server processes) and the memory we opened."""
        if self._owns_memory and self._memory is not None:
            memory, self._memory = self._memory, None
            memory.close()
        stack, self._stack = self._stack, contextlib.AsyncExitStack()
        if self._owns_toolset:
            self._toolset = None  # Reopened on next use.
        await stack.aclose()
