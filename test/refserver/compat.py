"""The few pydantic and FastAPI calls whose names differ between pydantic 1.10 (Debian 12's,
with FastAPI < 0.100) and pydantic 2 (FastAPI >= 0.100). The rest of the server calls these
and never the version-specific names, which test_compat.py keeps out of it: pydantic 2
removed `Field(regex=)` and deprecates `Extra`, `class Config`, `.dict()`, `.json()`,
`parse_obj` and `__fields__`; FastAPI deprecates `on_event` for a lifespan.
"""
from __future__ import annotations

import inspect
from typing import Any, AsyncContextManager, Callable, Dict, Type, TypeVar

import pydantic
from fastapi import FastAPI
from pydantic import BaseModel, Field

PYDANTIC_V2 = int(pydantic.VERSION.split(".", 1)[0]) >= 2

M = TypeVar("M", bound=BaseModel)

if PYDANTIC_V2:
    from pydantic import ConfigDict

    class OpenModel(BaseModel):
        """A model that keeps fields it does not declare (a newer peer may add some)."""

        model_config = ConfigDict(extra="allow")

    def dump(model: BaseModel, **kw: Any) -> Dict[str, Any]:
        """The model as a dict (exclude_none=… as both versions take it)."""
        return model.model_dump(**kw)

    def dump_json(model: BaseModel, **kw: Any) -> str:
        return model.model_dump_json(**kw)

    def validate(cls: Type[M], obj: Any) -> M:
        """cls validated from a decoded JSON value (pydantic.ValidationError when invalid)."""
        return cls.model_validate(obj)

    def field_default(cls: Type[BaseModel], name: str) -> Any:
        return cls.model_fields[name].default

    def pattern_field(pattern: str, default: Any = ..., **kw: Any) -> Any:
        """Field(default) of a string that must match pattern."""
        return Field(default, pattern=pattern, **kw)

else:
    class OpenModel(BaseModel):  # type: ignore[no-redef]
        """A model that keeps fields it does not declare (a newer peer may add some)."""

        class Config:  # pydantic 1 reads only this; "allow" is Extra.allow's value
            extra = "allow"

    def dump(model: BaseModel, **kw: Any) -> Dict[str, Any]:  # type: ignore[misc]
        return model.dict(**kw)

    def dump_json(model: BaseModel, **kw: Any) -> str:  # type: ignore[misc]
        return model.json(**kw)

    def validate(cls: Type[M], obj: Any) -> M:  # type: ignore[misc]
        return cls.parse_obj(obj)

    def field_default(cls: Type[BaseModel], name: str) -> Any:  # type: ignore[misc]
        return cls.__fields__[name].default

    def pattern_field(pattern: str, default: Any = ..., **kw: Any) -> Any:  # type: ignore[misc]
        return Field(default, regex=pattern, **kw)


def fastapi_app(lifespan: Callable[[FastAPI], AsyncContextManager[None]], **kw: Any) -> FastAPI:
    """FastAPI(**kw) running lifespan around its life: passed as lifespan= where FastAPI
    takes it (0.93 and later), else set on its Starlette router, which runs it the same way."""
    if "lifespan" in inspect.signature(FastAPI).parameters:
        return FastAPI(lifespan=lifespan, **kw)
    app = FastAPI(**kw)
    app.router.lifespan_context = lifespan
    return app
