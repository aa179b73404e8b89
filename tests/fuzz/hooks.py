"""Schemathesis hooks of the fuzz run, loaded by the schemathesis process (SCHEMATHESIS_HOOKS),
not by pytest.

Two things the generated requests need to get past the front door:
- a principal the service accepts: signed with the internal key, as the gateway does, and
  signed again well before its 60 s expiry, since one run lasts minutes;
- values that exist: a random district id or UUID answers 404 before any rule runs, and a
  random role or time zone 422, so about half the time a parameter or body field whose name
  is known (``district_id``, ``post_id``, ``role``...) takes one of the seeded values
  instead. The choice is a Hypothesis draw, so the run's seed replays it.

Both come from the environment the test sets (CHORUS_FUZZ_*), so the same file serves every
service.
"""

from __future__ import annotations

import json
import os
from typing import Any

import schemathesis
from hypothesis import strategies as st

from chassis.principal import PRINCIPAL_HEADER, sign_principal

INTERNAL_KEY = os.environ["CHORUS_FUZZ_INTERNAL_KEY"].encode()
PRINCIPAL = json.loads(os.environ["CHORUS_FUZZ_PRINCIPAL"])
KNOWN: dict[str, list[Any]] = json.loads(os.environ.get("CHORUS_FUZZ_KNOWN", "{}"))


# A header lives 60 s; re-signing every 20 s leaves a slow request plenty of margin.
@schemathesis.auth(refresh_interval=20)
class SignedPrincipal:
    def get(self, case: Any, ctx: Any) -> str:
        return sign_principal(INTERNAL_KEY, sub=PRINCIPAL["sub"], grants=PRINCIPAL["grants"])

    def set(self, case: Any, data: str, ctx: Any) -> None:
        case.headers = {**(case.headers or {}), PRINCIPAL_HEADER: data}


def _with_known_values(value: Any) -> Any:
    """A strategy of `value` where each field with a known name, at any depth (a policy's
    steps carry a role each), may take a seeded value instead."""
    if isinstance(value, dict):
        names = list(value)
        parts = [
            st.one_of(st.just(value[name]), st.sampled_from(KNOWN[name]))
            if KNOWN.get(name)
            else _with_known_values(value[name])
            for name in names
        ]
        return st.tuples(*parts).map(lambda chosen: dict(zip(names, chosen, strict=True)))
    if isinstance(value, list):
        return st.tuples(*(_with_known_values(item) for item in value)).map(list)
    return st.just(value)


@schemathesis.hook
def flatmap_path_parameters(context: Any, path_parameters: Any) -> Any:
    return _with_known_values(path_parameters)


@schemathesis.hook
def flatmap_query(context: Any, query: Any) -> Any:
    return _with_known_values(query)


@schemathesis.hook
def flatmap_body(context: Any, body: Any) -> Any:
    return _with_known_values(body)
