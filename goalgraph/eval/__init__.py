"""Evaluation: tool-calling accuracy on BFCL and the agent task suite (``goalgraph eval``)."""
