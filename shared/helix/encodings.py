"""Offline tiktoken encodings: built from files already on disk, never downloaded.

The BPE rank files come from a directory named by ``HELIX_ENCODINGS_DIR`` (plain or gzipped
``<name>.tiktoken``) or from the ``bpe-openai`` wheel's data files. tiktoken's own constructors
(``tiktoken_ext.openai_public``) are reused for the split pattern and special tokens, with their
loader swapped for one that reads the local file and checks it against the sha256 tiktoken pins
for the URL. A file whose hash differs is refused, so a corrupted or substituted vocabulary can
never miscount silently. Encodings are built once per process and cached.
"""

from __future__ import annotations

import base64
import functools
import gzip
import hashlib
import importlib.util
import os
import threading
import types
from collections.abc import Callable
from pathlib import Path
from typing import Any

import tiktoken
import tiktoken.model
from tiktoken_ext import openai_public  # type: ignore[import-untyped]

SUPPORTED = ("cl100k_base", "o200k_base")
_LOCK = threading.Lock()


class EncodingUnavailable(RuntimeError):
    """No local file for the encoding, or the file failed its hash check."""


def _candidate_files(name: str) -> list[Path]:
    found: list[Path] = []
    custom = os.environ.get("HELIX_ENCODINGS_DIR")
    if custom:
        found += [Path(custom) / f"{name}.tiktoken", Path(custom) / f"{name}.tiktoken.gz"]
    # Locate the wheel's data without importing bpe_openai: its __init__ builds every encoding
    # through a deprecated importlib.resources call, which is slow and warns.
    spec = importlib.util.find_spec("bpe_openai")
    for location in (spec.submodule_search_locations or []) if spec else []:
        found.append(Path(location) / "data" / f"{name}.tiktoken.gz")
    return found


def _read_local(name: str) -> bytes:
    for path in _candidate_files(name):
        if path.is_file():
            raw = path.read_bytes()
            return gzip.decompress(raw) if path.suffix == ".gz" else raw
    raise EncodingUnavailable(f"no local file for encoding {name!r}")


def _offline_loader(name: str) -> Callable[..., dict[bytes, int]]:
    def load(url: str, expected_hash: str | None = None) -> dict[bytes, int]:
        contents = _read_local(name)
        actual = hashlib.sha256(contents).hexdigest()
        if expected_hash is None or actual != expected_hash:
            raise EncodingUnavailable(
                f"{name}: file hash {actual} does not match tiktoken's pinned {expected_hash}"
            )
        return {
            base64.b64decode(token): int(rank)
            for token, rank in (line.split() for line in contents.splitlines() if line)
        }

    return load


def _constructor_params(name: str) -> dict[str, Any]:
    original = getattr(openai_public, name)
    # The same constructor with only its loader replaced: the pattern, the special tokens and
    # the pinned hash stay tiktoken's, and no module state is patched.
    scope = {**original.__globals__, "load_tiktoken_bpe": _offline_loader(name)}
    offline = types.FunctionType(original.__code__, scope, name)
    params: dict[str, Any] = offline()
    return params


@functools.cache
def get_encoding(name: str) -> tiktoken.Encoding:
    """The named encoding, built from local files (cached per process)."""
    if name not in SUPPORTED:
        raise EncodingUnavailable(f"encoding {name!r} is not available offline; use {SUPPORTED}")
    with _LOCK:
        return tiktoken.Encoding(**_constructor_params(name))


def encoding_name_for_model(model: str) -> str:
    """tiktoken's model → encoding map; unknown models fall back to cl100k_base."""
    try:
        name = tiktoken.model.encoding_name_for_model(model)
    except KeyError:
        return "cl100k_base"
    return name if name in SUPPORTED else "o200k_base" if "o200k" in name else "cl100k_base"
