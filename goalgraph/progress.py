"""Pure rules that tell whether a run still makes progress.

Three questions, all answered without a model or storage so every rule is unit-testable:

* Does a revised plan only repeat the step that failed (``repeated_step``)? A replan that runs the
  same step again gets the same failure, so replan asks once more and then gives up.
* Does a revised plan only redo steps that are already done (``redone_steps``)? Then it drops
  the rest of the goal, and replan asks once more as for a repeat of the failed step.
* Has the run stopped making progress (``no_progress_reason``)? The same failing call keeps
  coming back, or attempt after attempt fails with no plan step completed in between.

Example:
    >>> key = failure_key("read_file", {"path": " notes.txt"}, "no such file: 'notes.txt'")
    >>> key == failure_key("read_file", {"path": "NOTES.txt "}, "No such file:  'notes.txt'")
    True
"""

from __future__ import annotations

import hashlib
import json
import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from goalgraph.state import PlanStep
from goalgraph.tools.workspace_paths import normalise_path_args

__all__ = [
    "NO_PROGRESS",
    "FailedCall",
    "describe_call",
    "failure_key",
    "no_progress_reason",
    "normalise_args",
    "normalise_text",
    "redone_steps",
    "repeated_step",
    "repeats_step",
]

NO_PROGRESS = "no progress: "
"""How the reason of a run ended for lack of progress begins."""
_MAX_SHOWN_CHARS = 160
_SPACE = re.compile(r"\s+")
_BEFORE = r"[\w./\\-]"
_AFTER = r"[\w/\\-]|\.[\w/\\-]"
"""What continues a path, a number or a word before and after a value: a value inside a longer
one is no match ("data.csv" is not in "data/data.csv"), but a full stop ending a sentence is."""


@dataclass(frozen=True)
class FailedCall:
    """A tool call that failed (or was blocked) while the agent worked on a step."""

    tool: str
    """The tool's name."""
    args: Mapping[str, Any]
    """The arguments it was called with."""


def normalise_text(text: str) -> str:
    """Return ``text`` with whitespace runs collapsed to one space, trimmed and case-folded."""
    return _SPACE.sub(" ", text).strip().casefold()


def normalise_args(args: Any) -> Any:
    """Return ``args`` with every string normalised (``normalise_text``), recursively."""
    if isinstance(args, str):
        return normalise_text(args)
    if isinstance(args, Mapping):
        return {str(key): normalise_args(value) for key, value in args.items()}
    if isinstance(args, list | tuple):
        return [normalise_args(value) for value in args]
    return args


def failure_key(
    tool: str | None,
    args: Mapping[str, Any] | None,
    error: str,
    path_args: Iterable[str] = (),
) -> str:
    """Return a short, stable key for "this call failed with this error".

    Two failures share a key when they name the same tool, with the same arguments and the same
    error after normalising whitespace and case; the arguments named in ``path_args`` are
    workspace paths, compared as the workspace reads them (``./a.txt`` is ``a.txt``). The key is
    a hash, so a large argument (a snippet of code, a file's content) costs the checkpoint 16
    characters.
    """
    arguments = normalise_path_args(dict(args or {}), path_args)
    canonical = json.dumps(
        [tool or "", normalise_args(arguments), normalise_text(error)],
        sort_keys=True,
        separators=(",", ":"),
        default=str,
    )
    return hashlib.sha256(canonical.encode("utf-8")).hexdigest()[:16]


def describe_call(tool: str | None, args: Mapping[str, Any] | None) -> str:
    """Return ``tool(args)`` as compact JSON, cut to a length a small model can read."""
    if not tool:
        return "the model's answer"
    shown = json.dumps(dict(args or {}), ensure_ascii=False, separators=(", ", ": "), default=str)
    if len(shown) > _MAX_SHOWN_CHARS:
        shown = shown[: _MAX_SHOWN_CHARS - 3] + "..."
    return f"{tool}({shown})"


def no_progress_reason(
    *,
    repeats: int,
    max_repeats: int,
    stalled: int,
    max_stalled: int,
    tool: str | None,
    args: Mapping[str, Any] | None,
    error: str,
) -> str | None:
    """Return why the run makes no progress after a failed attempt, or ``None`` if it still may.

    Args:
        repeats: How often this failure (same call, same error: ``failure_key``) has now been
            seen in the run, this attempt included.
        max_repeats: ``limits.max_repeated_failures``: the count that ends the run.
        stalled: Failed attempts since a plan step was last completed, this one included.
        max_stalled: ``limits.max_stalled_attempts``: the count that ends the run.
        tool: The failed call's tool (``None`` when the model gave no usable action).
        args: The failed call's arguments.
        error: What went wrong.

    Returns:
        A reason starting with ``"no progress: "``, or ``None``.
    """
    error = _clip(error)
    if repeats >= max_repeats:
        return (
            f"{NO_PROGRESS}{describe_call(tool, args)} failed {repeats} times with the same "
            f"error (limits.max_repeated_failures is {max_repeats}): {error}"
        )
    if stalled >= max_stalled:
        return (
            f"{NO_PROGRESS}{stalled} failed attempts in a row and no step completed "
            f"(limits.max_stalled_attempts is {max_stalled}); last error: {error}"
        )
    return None


def repeats_step(step: PlanStep, failed: PlanStep, failed_calls: Iterable[FailedCall]) -> bool:
    """Tell whether ``step`` is the ``failed`` step again.

    It is when it names the same tool and either says the same thing (whitespace and case
    aside) or names every value of a call that failed on the failed step (read_file with
    ``path="notes.txt"`` failed, and the new step is "Open notes.txt" with read_file). A value
    only counts as a whole token: "data.csv" is not named by "data/data.csv".
    """
    if step["tool"] != failed["tool"]:
        return False
    if normalise_text(step["description"]) == normalise_text(failed["description"]):
        return True
    said = normalise_text(step["description"])
    for call in failed_calls:
        values = [normalise_text(str(v)) for v in _scalars(call.args)]
        values = [value for value in values if value]
        if call.tool == step["tool"] and values and all(_names(said, v) for v in values):
            return True
    return False


def repeated_step(
    new_steps: Sequence[PlanStep], failed: PlanStep, failed_calls: Iterable[FailedCall]
) -> PlanStep | None:
    """Return the step of a revised plan that repeats ``failed``, when it is the one to run next.

    Only the first new step matters: it runs next, so if it is the failed step again, the run
    meets the same failure before anything changes. A repeat later in the plan, after steps
    that bring something new, is a different attempt and is accepted.
    """
    if not new_steps:
        return None
    first = new_steps[0]
    return first if repeats_step(first, failed, list(failed_calls)) else None


def redone_steps(new_steps: Sequence[PlanStep], old: Sequence[PlanStep]) -> list[PlanStep]:
    """Return the done steps of ``old`` that ``new_steps`` only redo, when it does nothing else.

    A new step redoes a done step when it names the same tool and its description starts with
    the done step's (whitespace and case aside): a small model copies the plan it was shown,
    "Search for knobs (tool: search_products) => no match", result and all. A revised plan of
    only such steps adds nothing and drops what the goal still needs; ``[]`` when any new step
    is new.
    """
    done = [step for step in old if step["status"] == "done"]
    redone: list[PlanStep] = []
    for step in new_steps:
        said = normalise_text(step["description"])
        same = next(
            (
                earlier
                for earlier in done
                if earlier["tool"] == step["tool"]
                and said.startswith(normalise_text(earlier["description"]))
            ),
            None,
        )
        if same is None:
            return []
        redone.append(same)
    return redone


def _scalars(args: Mapping[str, Any]) -> list[Any]:
    """The scalar argument values (strings, numbers), the ones a step's text could name."""
    return [value for value in args.values() if isinstance(value, str | int | float)]


def _names(text: str, value: str) -> bool:
    pattern = rf"(?<!{_BEFORE}){re.escape(value)}(?!{_AFTER})"
    return re.search(pattern, text) is not None


def _clip(text: str) -> str:
    text = " ".join(text.split())
    return text if len(text) <= 2 * _MAX_SHOWN_CHARS else text[: 2 * _MAX_SHOWN_CHARS - 3] + "..."
