"""Model profiles: every agent rule that exists because a small model fails, in one place.

The seven-node graph works the same for every model. A few rules on top of it were written after
watching the bundled 135M model fail, and most hurt a capable model: they rewrite steps that
start with "The", and stop the model from choosing its tool. Each such rule is a field of
``ModelProfile``; a profile is a named set of them, chosen per model:

* ``tiny``: every small-model rule on, ``plan_scope`` off. For models under ~300M parameters
  (the bundled SmolLM2-135M), which copy the nearest example, guess answers into plan steps and
  compose final answers poorly.
* ``standard``: every small-model rule but ``cued_steps`` off, and the planner told to plan only
  what the goal asks (``plan_scope``). The model plans, chooses its tools and writes the final
  answer.

``cued_steps`` is on in both: once it read prohibitions ("... Do not open any database." adds
no database step), it no longer added the steps it was faulted for, and on Qwen2.5-Coder-0.5B
it gained a tuning task and kept the write step of "Compute 12*(3+4), then write the result to
result.txt" that the model's own plan sometimes drops.

Two recovery rules were written after watching Qwen2.5-Coder-0.5B repeat a failed or an earlier
call: ``repeat_recovery`` is on in both profiles, ``feedback_last`` only in ``standard`` (it did
not help SmolLM2-135M). A third, ``settle_repeats`` (a read proposed again ends the step with
its earlier result), is on in ``standard`` only. Each is measured on and off per model like the
others.

``auto`` (the default of ``model.profile``) asks the chat model: a model may state its profile in
a ``goalgraph_profile`` attribute (``LocalChatModel`` derives it from its parameter count), and
any other model is ``standard``. ``model.rules`` turns single rules on or off over the profile,
which is how each rule is measured on and off per model (``benchmarks/profile_rules.py``).

Example:
    >>> from goalgraph.profiles import resolve_profile
    >>> resolve_profile("tiny", {"force_planned_tool": False}).force_planned_tool
    False
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Literal

__all__ = [
    "PROFILES",
    "RULES",
    "TINY_MAX_PARAMETERS",
    "ModelProfile",
    "ProfileName",
    "profile_of_model",
    "resolve_profile",
    "rules_of_model",
]

ProfileName = Literal["tiny", "standard"]

TINY_MAX_PARAMETERS = 300_000_000
"""Models with fewer parameters than this get the ``tiny`` profile under ``auto``."""


@dataclass(frozen=True)
class ModelProfile:
    """The rules the agent applies around one class of model."""

    name: str
    """The profile's name, with ``+rule`` / ``-rule`` for each override (as reported)."""
    max_plan_steps: int = 5
    """Most steps a plan may have."""
    plan_examples: bool = False
    """Show the planner one worked example: the example the tool's hints carry, of the tool the
    goal's words cue (``goalgraph.hints``). A small model copies the nearest example's tool."""
    cued_steps: bool = True
    """Add a step for a tool the goal strongly cues (a file to write, a URL) that no step uses,
    unless the goal forbids the tool ("Do not open any database")."""
    restate_statements: bool = False
    """Replace a plan step that states a guessed answer ("The square root of 1764 is 176.4")
    with the goal's words for it."""
    force_planned_tool: bool = False
    """On the first attempt at a step, offer only the step's planned tool."""
    answer_from_last_step: bool = False
    """When the last step is done, its result is the answer; otherwise the model writes it."""
    plan_scope: bool = True
    """Tell the planner to plan only what the goal asks, from the facts it states, with a step
    for every action it asks for. Off for ``tiny``, whose figures were measured without it."""
    recall_through_tool: bool = False
    """Long-term memory reaches the model only through the ``memory_search`` tool, never in the
    prompt (a tiny model copies recalled text into its plan steps)."""
    step_history: bool = False
    """The model sees only the current step's tool calls and results; earlier steps reach it as
    the results in the plan. A small model otherwise copies an earlier step's call into the new
    step."""
    feedback_last: bool = True
    """The note on the last failed attempt ("read_file failed: no such file ...; did you mean
    ...?") comes as the prompt's last message, after the step's calls and results, instead of in
    the context before them; after a failed call it asks for other arguments or another tool
    (``prompts.RETRY_NOTE``). With the note before the failed call, Qwen2.5-Coder-0.5B made the
    same call again; with the note last, it took the error's suggestion."""
    repeat_recovery: bool = True
    """Recover from the model copying an earlier call (step 1's call proposed again for step 2):
    a call of the step's planned read-only tool that exactly repeats one that already succeeded,
    with only reads run since, is not run again but blocked with its earlier output quoted (it
    could only return the same); and the turn after a call is refused as such a repeat or as a
    loop sees only the current step's messages, so the call it copied is out of view (its
    result stays in the plan)."""

    settle_repeats: bool = True
    """A read-only call the model proposes again, with only reads run since, ends the current
    step with the earlier result instead of running again: when the call already succeeded on
    this step, or was just refused as a repeat (``repeat_recovery``) or a loop. So does a
    ``write`` call that already succeeded (its change is made; ``block_repeated_changes``). The
    tool's risk class says which calls are which. Qwen2.5-Coder-0.5B, its count in hand from
    ``sqlite_query`` on a step planned with ``read_file``, called the query again and again until
    the loop guard ended the step, instead of ``step_done``."""

    plan_first_call: bool = False
    """Before planning, ask the model for its first tool call on the goal in its native tool
    format, and decode the plan with that tool on its first step. Asked for a JSON plan,
    Qwen2.5-Coder-0.5B planned ``read_file`` first for goals that name no file ("Sort these words
    with Python: ..."), where its native first call was right (37 of 55 tuning goals, against 27
    for the plan). A first call of ``final_answer`` leaves the plan free. Off in both profiles:
    on the 0.5B it gained one tuning task of 16 (within noise), none held out, and it broke the
    demo goal "Compute 12*(3+4), then write the result to result.txt", whose plan became one
    calculator step that states the answer, with no step to write the file."""
    direct_fallback: bool = True
    """When the replanner finds no other way (its revised plan repeats the failed step twice),
    the rest of the goal becomes one step on which the model may call any tool, as a ReAct agent
    works, before the run gives up. A planner that only knows one way to do a step often has the
    right tool in view once it acts on the goal directly, with the error before it."""

    plan_directly: bool = False
    """Skip the planner: the goal is the plan's one step, on which the model calls any tool, as
    many times as the goal needs, until it calls ``step_done`` or ``final_answer`` (a ReAct loop
    inside goalgraph's safety layer and recovery). A small model asked for a whole plan walks the
    tool catalog: Qwen2.5-Coder-0.5B planned "A delivery of 500 wood screws just came in, please
    book it." as search, get, adjust stock, set price and get supplier, in the server's order."""

    drop_unasked_changes: bool = True
    """When the goal only asks questions, drop the plan's steps whose tool changes things (risk
    class ``write``), in plans and revised plans: such a call waits for a human anyway
    (``safety.confirm_unasked_writes``). Qwen2.5-Coder-0.5B planned "Which orders are still
    waiting to go out?" as ``list_orders`` and three ``place_order`` steps, and stalled on them.
    Off for ``tiny``, on which it is not measured."""

    refuse_copied_examples: bool = True
    """A call whose required argument is the example in that argument's own description ("e.g.
    hingeco or Hinge & Co"), mentioned by neither the goal nor any tool result, is blocked as a
    copy (``goalgraph.copied_examples``). Qwen2.5-Coder-0.5B, asked for the email of oak
    varnish's supplier, called ``get_supplier(supplier="hingeco or Hinge & Co")``. Off for
    ``tiny``, on which it is not measured."""

    rank_tools: bool = False
    """Show the planner and the replanner the tool catalog sorted by relevance to the goal, most
    relevant first (``goalgraph.tool_order``), instead of in the servers' order. A small model
    asked for a plan walks the catalog in the order shown: Qwen2.5-Coder-0.5B planned stockroom
    goals as the inventory server's first five tools, in the server's order. Off in both
    profiles: on the 0.5B model its plans agree better with a working plan (the same tools on 27
    of 60 tuning goals, against 22), but whole runs reached no more goals (11/30 on, 13/30 off):
    the steps of the better plans were still carried out wrong
    (``benchmarks/results/rank_tools.md``)."""

    drop_invented_optional: bool = False
    """Leave out of a call the optional arguments whose values neither the goal nor any tool
    result mentions, so the tool's defaults apply (``goalgraph.policies.grounding``). Shown an
    optional parameter, a small model fills it with a value nobody gave: Qwen2.5-Coder-0.5B
    called ``estimate_population(species="pandas", country="China", year=2023)``. On BFCL it
    lifted Qwen2.5-Coder-0.5B and SmolLM2-135M and cost Qwen2.5-Coder-1.5B, which infers such
    values correctly ("4 inches" gives ``unit="in"``): on in ``tiny`` and for the 0.5B rung of
    the ladder (``goalgraph.llm.ladder``), off in ``standard``. On the agent's tuning tasks it
    changed no outcome on either small model (3/14 and 8/38, on and off)."""

    def describe(self) -> str:
        """Return one line naming the profile and the rules it turns on."""
        on = [rule for rule in RULES if getattr(self, rule)]
        return f"{self.name} (max {self.max_plan_steps} steps; rules: {', '.join(on) or 'none'})"


RULES: tuple[str, ...] = tuple(
    field.name
    for field in dataclasses.fields(ModelProfile)
    if field.type in ("bool", bool) and field.name != "name"
)
"""The names of the on/off rules, as ``model.rules`` accepts them."""

PROFILES: dict[str, ModelProfile] = {
    "tiny": ModelProfile(
        name="tiny",
        max_plan_steps=3,
        plan_examples=True,
        restate_statements=True,
        force_planned_tool=True,
        answer_from_last_step=True,
        recall_through_tool=True,
        plan_scope=False,
        feedback_last=False,  # 6/38 on and off for SmolLM2-135M: it does not help it
        direct_fallback=False,  # 8/38 on and off for SmolLM2-135M: it does not help it
        settle_repeats=False,  # 9/38 on, 8/38 off for SmolLM2-135M: one task, within noise
        drop_unasked_changes=False,
        refuse_copied_examples=False,
        drop_invented_optional=True,
    ),
    "standard": ModelProfile(name="standard"),
}
"""The named profiles."""


def resolve_profile(name: str, rules: Mapping[str, bool] | None = None) -> ModelProfile:
    """Return profile ``name`` with single ``rules`` turned on or off.

    Raises:
        ValueError: An unknown profile or rule name.
    """
    if name not in PROFILES:
        raise ValueError(f"unknown profile {name!r}; choose one of {', '.join(PROFILES)}")
    profile = PROFILES[name]
    rules = dict(rules or {})
    unknown = sorted(set(rules) - set(RULES))
    if unknown:
        raise ValueError(f"unknown rule(s) {', '.join(unknown)}; rules are {', '.join(RULES)}")
    changed = {rule: value for rule, value in rules.items() if getattr(profile, rule) != value}
    if not changed:
        return profile
    label = profile.name + "".join(
        f"{'+' if value else '-'}{rule}" for rule, value in sorted(changed.items())
    )
    return dataclasses.replace(profile, name=label, **changed)


def rules_of_model(model: Any) -> dict[str, bool]:
    """Return the rules a chat model states for itself in a ``goalgraph_rules`` mapping (the
    spec's ``model.rules`` go over them), or none."""
    stated = getattr(model, "goalgraph_rules", None)
    return dict(stated) if isinstance(stated, Mapping) else {}


def profile_of_model(model: Any) -> ProfileName:
    """Return the profile ``auto`` picks for a chat model: its own ``goalgraph_profile``, if it
    names a profile, else ``standard``."""
    stated = getattr(model, "goalgraph_profile", None)
    return stated if stated in PROFILES else "standard"
