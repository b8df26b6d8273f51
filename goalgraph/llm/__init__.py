"""The local model layer: load a Hugging Face model once and chat with it through LangChain.

``LocalChatModel.from_spec(spec.model)`` is the entry point; ``bind_tools`` and
``with_structured_output`` decode under a JSON-schema grammar, so tool calls and structured
replies always validate.
"""

from goalgraph.llm.chat import LocalChatModel
from goalgraph.llm.loader import ModelLoadError, load_local_model

__all__ = ["LocalChatModel", "ModelLoadError", "load_local_model"]
