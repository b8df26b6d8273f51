"""Assisted decoding's drafts: prompt look-up, the grammar's fixed text, processors that follow
``input_ids`` back and forth, and greedy output that drafting leaves unchanged.

Grammar checks use the in-memory byte-level tokenizer (one token per byte); the real models are
in ``tests/integration/test_drafting_real.py``.
"""

from __future__ import annotations

from typing import Any

import pytest
from helpers import random_llama
from langchain_core.tools import tool

from goalgraph.llm.chat import LocalChatModel
from goalgraph.llm.drafting import DraftCandidates, DraftStats, GrammarProcessor, lookup_draft
from goalgraph.llm.grammar import GrammarCache, StringBudget

pytest.importorskip("xgrammar")
torch = pytest.importorskip("torch")

SCHEMA = {
    "type": "object",
    "properties": {
        "name": {"type": "string", "enum": ["alpha", "beta"]},
        "note": {"type": "string"},
    },
    "required": ["name", "note"],
}
TEXT = '{"name": "alpha", "note": "hi"}'


@pytest.fixture(scope="module")
def grammars(tiny_tokenizer: Any) -> GrammarCache:
    return GrammarCache.for_tokenizer(tiny_tokenizer, vocab_size=len(tiny_tokenizer))


def _ids(tokenizer: Any, text: str) -> list[int]:
    return list(tokenizer.encode(text, add_special_tokens=False))


# -- prompt look-up -------------------------------------------------------------------------------


def test_lookup_draft_copies_what_followed_the_latest_match_of_the_longest_tail() -> None:
    #        0  1  2  3  4  5  6  7  8  9
    ids = [1, 2, 3, 4, 9, 2, 3, 5, 6, 2, 3]
    # The tail (2, 3) occurs at 1 and 5; the latest, at 5, was followed by 5, 6.
    assert lookup_draft(ids, max_ngram=2, max_tokens=2) == [5, 6]
    # A longer tail decides between them: (9, 2, 3) matches only at 4.
    assert lookup_draft([*ids[:-2], 9, 2, 3], max_ngram=3, max_tokens=3)[:2] == [5, 6]
    assert lookup_draft([1, 2, 3], max_ngram=2, max_tokens=4) == []
    assert lookup_draft([7], max_ngram=2, max_tokens=4) == []
    # Nothing follows a match at the very end of what came before: the next match is used.
    assert lookup_draft([5, 8, 5, 5], max_ngram=1, max_tokens=3) == [5]


# -- processors that follow input_ids -------------------------------------------------------------


def _masks_in_order(processor: Any, prompt: list[int], ids: list[int], vocab: int) -> list[Any]:
    return [
        torch.isinf(processor(torch.tensor([prompt + ids[:n]]), torch.zeros(1, vocab)))
        for n in range(len(ids) + 1)
    ]


def test_grammar_processor_follows_drafts_forward_and_back(
    grammars: GrammarCache, tiny_tokenizer: Any
) -> None:
    vocab = len(tiny_tokenizer)
    prompt, ids = [5, 6], _ids(tiny_tokenizer, TEXT)
    compiled = grammars.compile(SCHEMA)
    expected = _masks_in_order(GrammarProcessor(compiled), prompt, ids, vocab)
    jumping = GrammarProcessor(compiled)
    # Several tokens at once, back after a rejected draft, the same position twice.
    for n in [0, 9, 4, 4, 20, 11, len(ids), 3, len(ids) - 1]:
        scores = jumping(torch.tensor([prompt + ids[:n]]), torch.zeros(1, vocab))
        assert torch.equal(torch.isinf(scores), expected[n]), n


def test_grammar_processor_names_the_fixed_text_and_the_allowed_prefix(
    grammars: GrammarCache, tiny_tokenizer: Any
) -> None:
    processor = GrammarProcessor(grammars.compile(SCHEMA))
    prompt = [5]
    assert processor.forced_text(torch.tensor([prompt])) == '{"name": "'
    after_a = prompt + _ids(tiny_tokenizer, '{"name": "a')
    assert processor.forced_text(torch.tensor([after_a])) == 'lpha", "note": "'
    # Inside the free string nothing is fixed.
    inside = prompt + _ids(tiny_tokenizer, '{"name": "beta", "note": "x')
    assert processor.forced_text(torch.tensor([inside])) == ""
    draft = _ids(tiny_tokenizer, 'lpXa"')
    assert processor.allowed_prefix(torch.tensor([after_a]), draft) == 2
    # Checking a draft leaves the matcher where it was.
    assert processor.forced_text(torch.tensor([after_a])) == 'lpha", "note": "'


def test_grammar_processor_refuses_a_token_it_did_not_allow(
    grammars: GrammarCache, tiny_tokenizer: Any
) -> None:
    processor = GrammarProcessor(grammars.compile(SCHEMA))
    processor.sync(torch.tensor([[5]]))  # the first call marks where the prompt ends
    with pytest.raises(ValueError, match="breaks the grammar"):
        processor.sync(torch.tensor([[5, *_ids(tiny_tokenizer, '{"nope')]]))


def test_string_budget_follows_drafts_forward_and_back() -> None:
    vocab = [b'{"', b"thought", b'": "', b"ab", b"\\", b'"', b'"}', b"x"]
    quote_ids = torch.tensor([5, 6])
    ids = [0, 1, 2, 3, 3, 4, 3, 5, 6]

    def budget() -> StringBudget:
        return StringBudget(vocab, quote_ids, max_new_tokens=12, thought_tokens=2, reserve=3)

    expected = _masks_in_order(budget(), [7], ids, len(vocab))
    assert any(mask.any() for mask in expected)  # the budget does close a string somewhere
    jumping = budget()
    for n in [0, 6, 2, 5, 5, len(ids), 1, 4, 8]:
        scores = jumping(torch.tensor([[7, *ids[:n]]]), torch.zeros(1, len(vocab)))
        assert torch.equal(torch.isinf(scores), expected[n]), n


# -- drafting -------------------------------------------------------------------------------------


def test_draft_candidates_offer_fixed_text_then_prompt_look_up(
    grammars: GrammarCache, tiny_tokenizer: Any
) -> None:
    prompt = _ids(tiny_tokenizer, "say hello there: ")
    stats = DraftStats()
    drafts = DraftCandidates(
        tiny_tokenizer,
        GrammarProcessor(grammars.compile(SCHEMA)),
        lookup_tokens=4,
        max_length=200,
        stats=stats,
    )
    start = torch.tensor([prompt])
    candidates, logits = drafts.get_candidates(start)
    assert logits is None
    assert tiny_tokenizer.decode(candidates[0, len(prompt) :]) == '{"name": "'
    # In the free note, " he" occurred in the prompt: the look-up drafts what followed it.
    in_note = torch.tensor([prompt + _ids(tiny_tokenizer, '{"name": "beta", "note": "say he')])
    candidates, _ = drafts.get_candidates(in_note)
    assert tiny_tokenizer.decode(candidates[0, in_note.shape[1] :]) == "llo "
    assert (stats.passes, stats.grammar_tokens, stats.lookup_tokens) == (2, 10, 4)
    drafts.update_candidate_strategy(in_note, None, 3)
    assert stats.accepted == 3
    # No draft near the length limit.
    short = DraftCandidates(tiny_tokenizer, None, lookup_tokens=4, max_length=len(prompt) + 1)
    assert short.get_candidates(start)[0] is start


def test_draft_candidates_stop_before_an_end_of_turn_token(tiny_tokenizer: Any) -> None:
    end = tiny_tokenizer.eos_token_id
    ids = [*_ids(tiny_tokenizer, "ab"), end, *_ids(tiny_tokenizer, "xab")]
    drafts = DraftCandidates(tiny_tokenizer, None, lookup_tokens=4, max_length=99, stop_ids=[end])
    candidates, _ = drafts.get_candidates(torch.tensor([ids]))
    assert candidates.shape[1] == len(ids)  # "ab" was followed by the end token only


@tool
def pick(name: str, count: int) -> str:
    """Pick ``count`` items called ``name``."""
    return name


@tool
def label(text: str) -> str:
    """Label the item ``text``."""
    return text


@pytest.fixture(scope="module")
def greedy_chat(tiny_tokenizer: Any) -> LocalChatModel:
    model = random_llama(tiny_tokenizer, hidden_size=32, layers=2)
    return LocalChatModel.from_model(model, tiny_tokenizer, max_new_tokens=60, thought=False)


@pytest.mark.parametrize("prefix_cache", [False, True])
def test_greedy_output_is_the_same_with_and_without_drafts(
    greedy_chat: LocalChatModel, prefix_cache: bool
) -> None:
    from langchain_core.messages import HumanMessage, SystemMessage

    messages = [SystemMessage("You pick things. " * 4), HumanMessage("Pick three apples.")]
    before = greedy_chat.draft_stats.accepted
    replies = {}
    for draft_tokens in (0, 10):
        chat = greedy_chat.model_copy(
            update={"draft_tokens": draft_tokens, "prefix_cache": prefix_cache}
        )
        bound = chat.bind_tools([pick], tool_choice="any")
        replies[draft_tokens] = (bound.invoke(messages), chat.invoke(messages, max_new_tokens=20))
    (plain_call, plain_text), (drafted_call, drafted_text) = replies[0], replies[10]
    assert drafted_call.tool_calls[0]["args"] == plain_call.tool_calls[0]["args"]
    assert drafted_text.content == plain_text.content
    assert drafted_call.usage_metadata == plain_call.usage_metadata
    assert drafted_text.usage_metadata == plain_text.usage_metadata
    # The call's fixed text ({"name": "pick", "arguments": {...) was drafted and kept.
    assert greedy_chat.draft_stats.accepted > before


def test_a_model_without_assisted_decoding_decodes_without_drafts(
    tiny_tokenizer: Any, caplog: pytest.LogCaptureFixture
) -> None:
    from transformers import MambaConfig, MambaForCausalLM

    torch.manual_seed(0)
    # A state-space model: its recurrent state cannot be cut back after a rejected draft.
    config = MambaConfig(
        vocab_size=len(tiny_tokenizer),
        hidden_size=16,
        num_hidden_layers=1,
        state_size=4,
        eos_token_id=tiny_tokenizer.eos_token_id,
        pad_token_id=tiny_tokenizer.pad_token_id,
    )
    model = MambaForCausalLM(config).eval()
    with caplog.at_level("WARNING", logger="goalgraph.llm.drafting"):
        chat = LocalChatModel.from_model(
            model, tiny_tokenizer, max_new_tokens=120, thought=False, prefix_cache=False
        )
    assert "assisted decoding is off for this model" in caplog.text
    assert "stateful" in caplog.text
    reply = chat.bind_tools([label], tool_choice="any").invoke("Label it pears.")
    assert reply.tool_calls and reply.tool_calls[0]["name"] == "label"
    assert chat.draft_stats.passes == 0
