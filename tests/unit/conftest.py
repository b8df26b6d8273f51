"""Fixtures shared by the unit tests: a byte-level tokenizer and its grammar cache."""

from __future__ import annotations

from typing import Any

import pytest

from goalgraph.llm.grammar import GrammarCache


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
