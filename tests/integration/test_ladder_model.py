"""qwen2.5-coder-0.5b from the ladder, loaded for real: its own chat template survives conversion.

Skipped when the model is not installed (``goalgraph models install qwen2.5-coder-0.5b`` or
``make models``); the test never downloads it.
"""

from __future__ import annotations

from helpers import needs_ladder_model

MODEL = "qwen2.5-coder-0.5b"

pytestmark = needs_ladder_model(MODEL)

WEATHER = {
    "type": "function",
    "function": {
        "name": "get_weather",
        "description": "Get the current weather in a city.",
        "parameters": {
            "type": "object",
            "properties": {"city": {"type": "string"}},
            "required": ["city"],
        },
    },
}


def test_qwen_loads_with_its_tool_calling_chat_template() -> None:
    import torch

    from goalgraph.llm import load_local_model
    from goalgraph.llm.install import verified_gguf_path
    from goalgraph.llm.loader import converted_dir

    model, tokenizer, device = load_local_model(MODEL, device="cpu", dtype="bfloat16")
    assert device == "cpu" and next(model.parameters()).dtype is torch.bfloat16
    # The template is the converted folder's own (saved from the GGUF), not a fallback.
    folder = converted_dir(verified_gguf_path(MODEL), torch.bfloat16)
    assert '"dtype": "bfloat16"' in (folder / "goalgraph-conversion.json").read_text()
    weights = (folder / "model.safetensors").stat().st_size
    assert weights < 1_400_000_000  # two bytes a parameter, not four
    assert (folder / "chat_template.jinja").read_text() == tokenizer.chat_template
    messages = [{"role": "user", "content": "What is the weather in Paris?"}]
    rendered = tokenizer.apply_chat_template(
        messages, tools=[WEATHER], tokenize=False, add_generation_prompt=True
    )
    assert "<tools>" in rendered and '"name": "get_weather"' in rendered
    assert "<tool_call>" in rendered and rendered.endswith("<|im_start|>assistant\n")
    plain = tokenizer.apply_chat_template(messages, tokenize=False, add_generation_prompt=True)
    assert "<tool_call>" not in plain

    # The tool the template renders reaches the model: its greedy reply calls it for Paris.
    # (Unconstrained, it writes a fenced JSON block rather than <tool_call>: goalgraph decodes
    # tool calls under a grammar anyway.)
    inputs = tokenizer(rendered, return_tensors="pt", add_special_tokens=False)
    with torch.no_grad():
        out = model.generate(**inputs, max_new_tokens=24, do_sample=False)
    reply = tokenizer.decode(out[0, inputs["input_ids"].shape[1] :])
    assert '"name": "get_weather"' in reply and '"city": "Paris"' in reply, reply
