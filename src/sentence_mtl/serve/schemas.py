"""Request and response bodies of the HTTP service.

The request models are built for the server's :class:`ServiceLimits`, so the published OpenAPI
schema states exactly what the server accepts (item counts, text length, non-blank text, top_k
range, a character the model reads) and pydantic enforces it. A list is checked against its maximum length before any item is
validated, so a huge list costs one error, not one per item.
"""

from __future__ import annotations

import functools
import re
from typing import Annotated, Any, Literal

from pydantic import AfterValidator, BaseModel, BeforeValidator, ConfigDict, Field, StrictInt, StrictStr

from ..readable import ECMA_SPACE as _ECMA_SPACE
from ..readable import unreadable as _unreadable
from .limits import ServiceLimits

DEFAULT_TOP_K = 5


def _escape(cp: int) -> str:
    return f"\\u{cp:04x}" if cp <= 0xFFFF else f"\\U{cp:08x}"


@functools.lru_cache(maxsize=1)
def readable_pattern() -> str:
    """A JSON Schema pattern (unanchored: it must occur somewhere) for one character the model
    reads. The server checks the same pattern, so its schema and its answers agree exactly."""
    ranges, start = [], None
    for cp in range(0x110000 + 1):
        if cp < 0x110000 and _unreadable(cp):
            start = cp if start is None else start
        elif start is not None:
            ranges.append(_escape(start) if start == cp - 1 else f"{_escape(start)}-{_escape(cp - 1)}")
            start = None
    return "[^" + "".join(ranges) + "]"


def _valid_text(text: str) -> str:
    """Whitespace-only text would embed as padding; a lone surrogate cannot be tokenised."""
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        raise ValueError("is not valid Unicode (it contains a lone surrogate); send text that "
                         "encodes as UTF-8") from None
    if _ECMA_SPACE.fullmatch(text):
        raise ValueError("is empty or whitespace only; send text with at least one non-space character")
    if not _readable().search(text):
        raise ValueError("contains nothing the model reads (only control, format or combining characters, "
                         "such as a zero-width space or NUL); send text with letters, digits or punctuation")
    return text


@functools.lru_cache(maxsize=1)
def _readable() -> re.Pattern:
    return re.compile(readable_pattern())


def text_type(max_chars: int):
    """A non-blank string of 1..``max_chars`` characters, declared as such in the schema."""
    return Annotated[StrictStr, Field(min_length=1, max_length=max_chars, json_schema_extra={"pattern": readable_pattern()}),
                     AfterValidator(_valid_text)]


def _integral_float_as_int(value: Any) -> Any:
    """JSON Schema counts 3.0 as an integer, so the server does too (but not 3.5, "3" or true)."""
    return int(value) if isinstance(value, float) and value.is_integer() else value


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid")


def request_models(limits: ServiceLimits) -> tuple[type[BaseModel], type[BaseModel]]:
    """``(TextsRequest, SimilarRequest)`` bounded by ``limits``."""
    Text = text_type(limits.max_text_chars)
    TopK = Annotated[StrictInt, Field(ge=1, le=limits.max_documents), BeforeValidator(_integral_float_as_int)]

    class TextsRequest(_Strict):
        texts: list[Text] = Field(
            min_length=1, max_length=limits.max_texts,
            description=f"The texts, one string each (1 to {limits.max_texts}; each 1 to "
                        f"{limits.max_text_chars} characters, not only whitespace).",
            examples=[["Stocks rallied after the earnings report.", "What a lovely film!"]])

    class SimilarRequest(_Strict):
        query: Text = Field(examples=["Who won the match?"])
        documents: list[Text] = Field(min_length=1, max_length=limits.max_documents,
                                      examples=[["The home team won 2-1.", "Oil prices rose."]])
        top_k: TopK | None = Field(
            default=None, description=f"At most this many results (default {DEFAULT_TOP_K}); "
                                      "fewer when fewer documents were sent.")
        method: Literal["dense", "hybrid"] = Field(
            default="dense", description="dense: cosine similarity of the retrieval model's vectors; hybrid: "
                                         "that fused with BM25 over the documents sent (the dense weight is "
                                         "the one validation chose for the model, reported by /health).")

    return TextsRequest, SimilarRequest


class EmbedResponse(BaseModel):
    model: str = Field(description="The retrieval model's folder (relative to the server's working directory).")
    version: str
    dim: int
    vectors: list[list[float]]


class PredictResponse(BaseModel):
    predictions: list[dict[str, Any]] = Field(description=(
        'One object per text: {"text": ..., "<task>": {"label": ..., "probability": ..., '
        '"probabilities": {"<label>": p, ...}}, ...}.'))


class SimilarResult(BaseModel):
    index: int
    document: str
    score: float


class SimilarResponse(BaseModel):
    results: list[SimilarResult]


class ErrorResponse(BaseModel):
    error: str
    detail: Any = None


ERROR_RESPONSES = {code: {"model": ErrorResponse} for code in (400, 408, 413, 422, 500, 503)}
EXAMPLES = {"/embed": '{"texts": ["a sentence"]}', "/predict": '{"texts": ["a sentence"]}',
            "/similar": '{"query": "a question", "documents": ["a text", "another"], "top_k": 1}'}
