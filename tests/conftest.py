"""Shared fixtures: scripted agents over plain Python tools, isolated data directories."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from langchain_core.messages import AIMessage
from langchain_core.tools import BaseTool, tool
from langgraph.checkpoint.memory import InMemorySaver

from goalgraph import Agent, AgentSpec
from goalgraph.llm.grammar import GrammarCache
from goalgraph.spec import BUNDLED_MODEL
from goalgraph.testing import ScriptedChatModel
from goalgraph.tools.calculator import calculate


@pytest.fixture(autouse=True)
def _isolated_checkpoints(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Keep every test's checkpoints, workspace, audit log, memory and cache out of the data dir."""
    monkeypatch.setenv("GOALGRAPH_CHECKPOINT_PATH", str(tmp_path / "checkpoints.sqlite"))
    monkeypatch.setenv("GOALGRAPH_WORKSPACE", str(tmp_path / "workspace"))
    monkeypatch.setenv("GOALGRAPH_SAFETY__AUDIT_DIR", str(tmp_path / "audit"))
    monkeypatch.setenv("GOALGRAPH_MEMORY__PATH", str(tmp_path / "memory.sqlite"))
    # Memory runs lexical-only in most tests (MiniLM costs a model load); its own tests enable it.
    monkeypatch.setenv("GOALGRAPH_MEMORY__EMBEDDINGS", "false")
    # Agent tests exercise the model itself; the generation cache has tests of its own.
    monkeypatch.setenv("GOALGRAPH_MODEL__CACHE__ENABLED", "false")
    # Real-model tests run on the bundled model unless they name another: it needs no install and
    # is the fastest; the default model (spec.DEFAULT_MODEL) has tests of its own.
    monkeypatch.setenv("GOALGRAPH_MODEL__NAME", BUNDLED_MODEL)


@tool
def calculator(expression: str) -> str:
    """Evaluate an arithmetic expression like 12*(3+4)."""
    return calculate(expression)


@tool
def boom(message: str) -> str:
    """Always fail."""
    raise RuntimeError(f"boom: {message}")


@tool
def write_note(text: str) -> str:
    """Write a note (a tool that needs approval in tests)."""
    return f"wrote {len(text)} characters"


@tool
def ping() -> str:
    """Answer pong (a tool without arguments)."""
    return "pong"


TOOLS: list[BaseTool] = [calculator, boom, write_note, ping]


@pytest.fixture
def make_agent() -> Iterator[Callable[..., tuple[Agent, ScriptedChatModel]]]:
    """Build scripted agents over TOOLS with an in-memory checkpointer; closes them afterwards."""
    agents: list[Agent] = []

    def build(
        responses: list[AIMessage] | None = None,
        *,
        delay_s: float = 0.0,
        profile: str = "tiny",
        **spec: Any,
    ) -> tuple[Agent, ScriptedChatModel]:
        # Most graph tests pin the tiny profile's path (the planned tool forced on a step's first
        # attempt); tests of the standard profile pass profile="standard".
        model = ScriptedChatModel(
            responses=list(responses or []), delay_s=delay_s, goalgraph_profile=profile
        )
        spec.setdefault("final_answer", "model")  # Scripts say their final answer themselves.
        agent = Agent(
            AgentSpec(builtin_tools=False, **spec),
            model=model,
            tools=TOOLS,
            checkpointer=InMemorySaver(),
        )
        agents.append(agent)
        return agent, model

    yield build
    for agent in agents:
        agent.close()


@pytest.fixture(scope="module")
def tiny_tokenizer() -> Any:
    from tokenizers import AddedToken, Tokenizer, decoders, models, pre_tokenizers
    from transformers import PreTrainedTokenizerFast

    vocab = {ch: i for i, ch in enumerate(sorted(pre_tokenizers.ByteLevel.alphabet()))}
    backend = Tokenizer(models.BPE(vocab=vocab, merges=[]))
    backend.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False, use_regex=False)
    backend.decoder = decoders.ByteLevel()
    backend.add_special_tokens(
        [AddedToken("<|im_start|>", special=True), AddedToken("<|im_end|>", special=True)]
    )
    tok = PreTrainedTokenizerFast(
        tokenizer_object=backend,
        bos_token="<|im_start|>",
        eos_token="<|im_end|>",
        pad_token="<|im_end|>",
    )
    tok.chat_template = (
        "{% for m in messages %}{{'<|im_start|>' + m['role'] + '\n' + m['content'] + "
        "'<|im_end|>\n'}}{% endfor %}{% if add_generation_prompt %}"
        "{{'<|im_start|>assistant\n'}}{% endif %}"
    )
    return tok


@pytest.fixture(scope="module")
def grammars(tiny_tokenizer: Any) -> GrammarCache:
    return GrammarCache.for_tokenizer(tiny_tokenizer, vocab_size=len(tiny_tokenizer))
