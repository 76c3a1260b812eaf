"""Run Argo CD resource customizations the way Argo CD does, in a real Lua 5.1.

Argo CD embeds gopher-lua (Lua 5.1) and, for scripts from argocd-cm (unless
``resource.customizations.useOpenLibs`` is set), opens only the base, package
and table libraries plus a "safe" os with ``time`` and ``date``. This module
reproduces that sandbox on lupa's Lua 5.1: the string, math, io, debug and
coroutine libraries are gone, strings have no methods, and a script that uses
any of them fails here as it would in Argo CD. ``obj`` is the object decoded
as Argo CD's decodeValue does; results are encoded as gopher-json does (an
empty table is an empty array) and action output is cleaned like
cleanReturnedObj. Test-only: ``os.time``/``os.date`` read a fixed clock.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from lupa import lua51

VALID_HEALTH = {"Healthy", "Progressing", "Degraded", "Suspended", "Missing", "Unknown"}
FIXED_CLOCK = 1793615400  # 2026-11-02T10:30:00Z
# Argo CD gives a script one second; an instruction budget is the deterministic stand-in.
INSTRUCTION_BUDGET = 20_000_000

_SANDBOX = """
local real_date = os.date
local budget = ...
debug.sethook(function() error("script exceeded its instruction budget") end, "", budget)
local safe_os = {
  time = function(t) if t == nil then return CLOCK end return os.time(t) end,
  date = function(format, t) return real_date(format or "%c", t or CLOCK) end,
}
getmetatable("").__index = nil
package.loaded.os = safe_os
package.preload.os = function() return safe_os end
os = safe_os
string, math, io, debug, coroutine = nil, nil, nil, nil, nil
package.loaded.string, package.loaded.math, package.loaded.io = nil, nil, nil
package.loaded.debug, package.loaded.coroutine = nil, nil
"""


class LuaScriptError(Exception):
    """The script failed, as Argo CD would report it."""


class ArgoLua:
    """One sandboxed Lua 5.1 state per run, like Argo CD's runLua."""

    def __init__(self, clock: int = FIXED_CLOCK) -> None:
        self.clock = clock

    def _run(self, obj: Mapping[str, Any], script: str) -> Any:
        lua = lua51.LuaRuntime(register_eval=False, register_builtins=False)
        lua.globals().CLOCK = self.clock
        lua.execute(_SANDBOX, INSTRUCTION_BUDGET)
        lua.globals().obj = _decode(lua, obj)
        try:
            return lua.execute(script)
        except lua51.LuaError as exc:
            raise LuaScriptError(str(exc)) from exc

    def health(self, obj: Mapping[str, Any], script: str) -> dict[str, str]:
        """ExecuteHealthLua: the script's table as a health status."""
        result = _encode(self._run(obj, script))
        if result == [] or result is None:
            return {}
        if not isinstance(result, dict):
            raise LuaScriptError(f"expect table output from Lua script, not {type(result)}")
        if result.get("status") not in VALID_HEALTH:
            return {"status": "Unknown", "message": "Lua returned an invalid health status"}
        return {k: str(v) for k, v in result.items() if k in ("status", "message")}

    def discover(self, obj: Mapping[str, Any], script: str) -> list[dict[str, Any]]:
        """ExecuteResourceActionDiscovery: the offered actions and whether each is disabled."""
        result = _encode(self._run(obj, script))
        if result == []:
            return []
        if not isinstance(result, dict):
            raise LuaScriptError("expect table output from Lua script")
        actions = []
        for name, value in result.items():
            disabled = isinstance(value, dict) and value.get("disabled") is True
            actions.append({"name": name, "disabled": disabled})
        return actions

    def action(self, obj: Mapping[str, Any], script: str) -> dict[str, Any]:
        """ExecuteResourceAction (old-style output): the patched object."""
        result = _encode(self._run(obj, script))
        if not isinstance(result, dict):
            raise LuaScriptError("Lua output was not a valid json object")
        return _clean(result, dict(obj))


def _decode(lua: Any, value: Any) -> Any:
    if isinstance(value, Mapping):
        table = lua.table()
        for key, item in value.items():
            table[str(key)] = _decode(lua, item)
        return table
    if isinstance(value, list):
        table = lua.table()
        for i, item in enumerate(value, start=1):
            table[i] = _decode(lua, item)
        return table
    if isinstance(value, bool | int | float | str) or value is None:
        return value
    raise TypeError(f"cannot hand {type(value).__name__} to Lua")


def _encode(value: Any) -> Any:
    """gopher-json's encoding: a table with keys 1..n is an array, an empty one too."""
    if lua51.lua_type(value) != "table":
        if isinstance(value, float) and value.is_integer():
            return int(value)
        return value
    keys = list(value.keys())
    if not keys:
        return []
    if all(isinstance(k, int) for k in keys):
        if sorted(keys) != list(range(1, len(keys) + 1)):
            raise LuaScriptError("cannot encode a sparse array")
        return [_encode(value[i]) for i in range(1, len(keys) + 1)]
    if not all(isinstance(k, str) for k in keys):
        raise LuaScriptError("cannot encode mixed or invalid key types")
    return {k: _encode(value[k]) for k in keys}


def _clean(new: dict[str, Any], old: Mapping[str, Any]) -> dict[str, Any]:
    """cleanReturnedObj: an empty array where the input had a map stays a map."""
    for key, before in old.items():
        if key not in new:
            continue
        after = new[key]
        if isinstance(after, dict) and isinstance(before, Mapping):
            new[key] = _clean(after, before)
        elif after == [] and isinstance(before, Mapping):
            new[key] = dict(before)
        elif isinstance(after, list) and isinstance(before, list):
            new[key] = [
                _clean(a, b) if isinstance(a, dict) and isinstance(b, Mapping) else a
                for a, b in zip(after, before, strict=False)
            ] + after[len(before) :]
    return new
