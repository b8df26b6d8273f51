"""Tool output to text, in one place: text, JSON, media, and large outputs kept as artifacts.

MCP results are lists of content blocks. ``content_to_text`` joins text blocks, compacts JSON
when the result is structured, describes images, audio and binary resources instead of pasting
base64 into the prompt, and cuts long text with a note. With an ``ArtifactStore``, what is cut or
described is saved as a file, and the note gives its path, so nothing is lost and the agent can
read it back with ``read_file`` (the store lives in the workspace, and writes there through
descriptors, so a link swapped in for one of its folders cannot move a write outside).
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import json
import mimetypes
import os
import stat
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from goalgraph.tools.workspace_fs import Beneath, EscapeError, replace_file

__all__ = ["DEFAULT_MAX_OUTPUT_CHARS", "ArtifactStore", "content_to_text"]

DEFAULT_MAX_OUTPUT_CHARS = 4000
"""Longest tool output shown to the model; the rest is cut with a note (and kept as an artifact
when a store is given)."""


class ArtifactStore:
    """Content-addressed files for tool outputs too large or too binary for the prompt.

    Example:
        >>> store = ArtifactStore("/tmp/ws/.goalgraph/artifacts", shown_as=".goalgraph/artifacts")
        >>> store.save(b"hello", ".txt")
        '.goalgraph/artifacts/2cf24dba5fb0a30e.txt'
    """

    def __init__(
        self,
        folder: str | os.PathLike[str],
        *,
        shown_as: str | None = None,
        root: str | os.PathLike[str] | None = None,
    ) -> None:
        """Store files in ``folder``; report their paths under ``shown_as`` (default: folder).

        Args:
            folder: Where the files go.
            shown_as: How the folder is named in notes (relative to the workspace).
            root: The workspace folder that holds ``folder``, if any: every folder below it is
                then opened without following links (``goalgraph.tools.workspace_fs``), since
                other processes may write there. Without it, only ``folder`` itself is trusted.
        """
        self.folder = Path(folder)
        self.shown_as = shown_as or str(self.folder)
        self.root = Path(root) if root is not None else self.folder
        self._parts = self.folder.absolute().relative_to(self.root.absolute()).parts

    def save(self, data: bytes, suffix: str) -> str:
        """Write ``data`` once (named by its SHA-256) and return the path to show.

        Raises:
            OSError: If the file cannot be written, or a symbolic link on the way leads
                outside ``root`` (``PermissionError``).
        """
        name = hashlib.sha256(data).hexdigest()[:16] + suffix
        self.root.mkdir(parents=True, exist_ok=True)
        try:
            with Beneath(self.root.resolve()).parent((*self._parts, name), create=True) as (
                folder,
                final,
            ):
                if final is None:
                    raise IsADirectoryError(f"{name} is a folder")
                if not _is_regular(folder.fd, final):
                    replace_file(folder.fd, final, data)
        except EscapeError:
            raise PermissionError(
                f"{self.shown_as} leads outside the workspace through a symbolic link"
            ) from None
        return f"{self.shown_as.rstrip('/')}/{name}"


def content_to_text(
    content: str | Sequence[Any] | None,
    structured: Any = None,
    *,
    max_chars: int | None = DEFAULT_MAX_OUTPUT_CHARS,
    artifacts: ArtifactStore | None = None,
) -> str:
    """Turn tool result content blocks into one text.

    This is the single place where tool output becomes text. It accepts the LangChain content
    blocks ``langchain-mcp-adapters`` produces as well as raw MCP content blocks.

    Args:
        content: A string, or a list of blocks: text blocks are joined with newlines; images,
            audio, files and resources become descriptions like ``[image: image/png, 68 bytes]``.
        structured: The result's structured content, if any. When present, text blocks holding
            JSON are re-serialised compactly, and it stands in for empty content.
        max_chars: Cut the text beyond this many characters, with a note; ``None`` keeps all.
        artifacts: Where to keep media and the full text of a cut output; the notes give the
            saved file's path. ``None``: media are only described, cut text is dropped.

    Returns:
        The text.
    """
    if content is None:
        blocks: Sequence[Any] = []
    elif isinstance(content, str):
        blocks = [content]
    else:
        blocks = content
    compact = structured is not None
    parts = [_block_text(block, compact_json=compact, artifacts=artifacts) for block in blocks]
    text = "\n".join(part for part in parts if part)
    if not text and structured is not None:
        text = _compact(structured)
    if max_chars is not None and len(text) > max_chars:
        note = f"{len(text) - max_chars} more characters, {len(text)} in all"
        if artifacts is not None:
            try:
                note += f"; the whole output is in {artifacts.save(text.encode(), '.txt')}"
            except OSError as exc:
                note += f"; it could not be saved: {exc.strerror or exc}"
        text = f"{text[:max_chars]}\n[truncated: {note}]"
    return text


def _block_text(block: Any, *, compact_json: bool, artifacts: ArtifactStore | None) -> str:
    if isinstance(block, str):
        return _maybe_compact(block) if compact_json else block
    if hasattr(block, "model_dump"):  # a raw MCP content block
        block = block.model_dump(mode="json", by_alias=True, exclude_none=True)
    if not isinstance(block, Mapping):
        return str(block)
    kind = block.get("type")
    if kind == "text":
        text = str(block.get("text", ""))
        return _maybe_compact(text) if compact_json else text
    if kind in ("image", "audio", "file"):
        return _describe_media(str(kind), block, artifacts)
    if kind == "resource_link":
        label = block.get("name") or block.get("uri")
        mime = block.get("mimeType")
        return f"[resource: {label}{', ' + mime if mime else ''}, {block.get('uri')}]"
    if kind == "resource":
        resource = block.get("resource") or {}
        if "text" in resource:
            return str(resource["text"])
        media = {**resource, "base64": resource.get("blob")}
        return _describe_media("resource", media, artifacts)
    return _compact(block)


def _describe_media(kind: str, block: Mapping[str, Any], artifacts: ArtifactStore | None) -> str:
    mime = block.get("mime_type") or block.get("mimeType") or "unknown type"
    data = block.get("base64") or block.get("data")
    if isinstance(data, str):
        saved = _save_media(data, mime, artifacts) if artifacts is not None else None
        kept = f", saved as {saved}" if saved else ""
        return f"[{kind}: {mime}, {_base64_size(data)} bytes{kept}]"
    link = block.get("url") or block.get("uri")
    return f"[{kind}: {mime}, {link}]" if link else f"[{kind}: {mime}]"


def _save_media(data: str, mime: str, artifacts: ArtifactStore) -> str | None:
    try:
        raw = base64.b64decode(data, validate=True)
    except (binascii.Error, ValueError):
        return None
    try:
        return artifacts.save(raw, mimetypes.guess_extension(mime) or ".bin")
    except OSError:
        return None  # described without a saved copy


def _is_regular(folder: int, name: str) -> bool:
    """Whether ``name`` in the open ``folder`` is a regular file (a link is not)."""
    try:
        return stat.S_ISREG(os.stat(name, dir_fd=folder, follow_symlinks=False).st_mode)
    except FileNotFoundError:
        return False


def _base64_size(data: str) -> int:
    data = data.strip()
    return len(data) * 3 // 4 - data[-2:].count("=")


def _maybe_compact(text: str) -> str:
    stripped = text.strip()
    if not stripped.startswith(("{", "[")):
        return text
    try:
        return _compact(json.loads(stripped))
    except ValueError:
        return text


def _compact(value: Any) -> str:
    return json.dumps(value, separators=(",", ":"), ensure_ascii=False, default=str)
