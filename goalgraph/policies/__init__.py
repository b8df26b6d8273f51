"""Agent policies on the model's tool choices, for any chat model.

* ``tool_gate``: offer only the tools whose MiniLM similarity to the request reaches a threshold.
* ``grounding``: drop a call whose required values appear nowhere in the conversation, or
  leave out an optional argument whose value appears nowhere (``without_invented_optional``,
  the ``drop_invented_optional`` profile rule).
* ``guarded``: ``GuardedChatModel`` applies both around any LangChain chat model (a local model,
  an OpenAI-compatible endpoint), where the model may answer instead of calling a tool.
"""

from goalgraph.policies.guarded import (
    GuardedChatModel,
    guard_tool_choice,
    without_invented_optional,
)

__all__ = ["GuardedChatModel", "guard_tool_choice", "without_invented_optional"]
