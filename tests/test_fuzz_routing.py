"""Property tests of the router's template parser and matching (tinyws.routing).

* Any template string either compiles or raises ValueError with a message.
* A compiled template matches every path it generates, and the converters
  give back the values that were rendered into the path.
* Matching any path either gives params or None, never an exception.
* A `Table` answers a path with the route a simple model of the precedence
  rules picks (static first, then the first registered template).

Bounded (200 examples) and derandomized by default. A longer random run
(tests/fuzzing.py tells more):

    TINYWS_FUZZ_EXAMPLES=20000 python -m pytest tests/test_fuzz_routing.py
"""

from __future__ import annotations

import uuid
from typing import Any

from hypothesis import example, given
from hypothesis import strategies as st

from tests.fuzzing import FUZZ
from tinyws.routing import CONVERTERS, Table, Template, compile_template

KINDS = sorted(CONVERTERS)
NAME = st.from_regex(r"[A-Za-z_][A-Za-z0-9_]{0,6}", fullmatch=True)
SEGMENT_CHARS = st.characters(exclude_categories=["Cs"], exclude_characters="/{}")
# Literal text between parameters: always holds a "/", so that consecutive
# parameters are split in exactly one way (values never hold one).
LITERAL = st.text(SEGMENT_CHARS, max_size=4).map(lambda t: "/" + t)
TEMPLATE_CHARS = st.sampled_from([*"/{}:abcxyz_09-.", ":int", ":path", ":uuid", "é"])


@FUZZ
@given(st.one_of(st.text(max_size=40), st.lists(TEMPLATE_CHARS, max_size=20).map("".join)))
@example("/{n:int}{n}")
@example("/{:int}")
@example("/{a:path}/x")
@example("/{}")
@example("x")
def test_any_template_compiles_or_raises_value_error(source: str) -> None:
    try:
        template = compile_template(source)
    except ValueError as exc:
        assert str(exc), "a refusal names what is wrong"
        assert repr(source) in str(exc)
        return
    assert template.source == source
    if template.regex is None:
        assert template.match(source) == {}


@st.composite
def values(draw: st.DrawFn, kind: str) -> tuple[str, Any]:
    """Text for one parameter of `kind` and the value the converter must give."""
    if kind == "int":
        number = draw(st.integers(-(10**30), 10**30))
        return str(number), number
    if kind == "float":
        text = draw(st.from_regex(r"-?[0-9]{1,20}(\.[0-9]{1,20})?", fullmatch=True))
        return text, float(text)
    if kind == "uuid":
        value = draw(st.uuids())
        text = str(value)
        return (text.upper() if draw(st.booleans()) else text), value
    if kind == "path":
        text = draw(st.text(st.characters(exclude_categories=["Cs"]), max_size=12))
        return text, text
    text = draw(st.text(SEGMENT_CHARS, min_size=1, max_size=12))
    return text, text


@st.composite
def templates_with_paths(draw: st.DrawFn) -> tuple[str, str, dict[str, Any]]:
    """A valid template, a path it must match, and the params that path gives."""
    names = draw(st.lists(NAME, unique=True, max_size=4))
    source = path = draw(LITERAL)
    expected: dict[str, Any] = {}
    for index, name in enumerate(names):
        last = index == len(names) - 1
        kind = draw(st.sampled_from([k for k in KINDS if k != "path" or last]))
        implicit = kind == "str" and draw(st.booleans())  # {name} means {name:str}
        source += "{" + (name if implicit else f"{name}:{kind}") + "}"
        text, expected[name] = draw(values(kind))
        path += text
        if not last or (kind != "path" and draw(st.booleans())):
            literal = draw(LITERAL)
            source += literal
            path += literal
    return source, path, expected


@FUZZ
@given(templates_with_paths())
@example(("/{n:int}", "/-0", {"n": 0}))
@example(("/{A:path}", "/\n", {"A": "\n"}))  # "." stopped at a newline (a decoded %0A): 404
@example(("/{n:int}/", "/007/", {"n": 7}))
@example(
    (
        "/{id:uuid}",
        "/6F1C2A3B-1111-2222-3333-444455556666",
        {"id": uuid.UUID("6f1c2a3b-1111-2222-3333-444455556666")},
    )
)
def test_templates_match_the_paths_they_generate(case: tuple[str, str, dict[str, Any]]) -> None:
    source, path, expected = case
    template = compile_template(source)
    params = template.match(path)
    assert params == expected
    for name, value in expected.items():
        assert type(params[name]) is type(value)


PATHS = st.one_of(
    st.text(max_size=30).map(lambda t: "/" + t),
    st.lists(st.sampled_from(["/", "-", "1", "9" * 5000, "0.5", ".", "a", "é"]), max_size=6).map(
        lambda parts: "/" + "".join(parts)
    ),
)


@FUZZ
@given(st.sampled_from(["/i/{n:int}", "/{f:float}", "/u/{u:uuid}", "/{a}/{b:path}"]), PATHS)
@example("/i/{n:int}", "/i/" + "9" * 5000)  # more digits than int() converts: no match, not 500
def test_matching_any_path_gives_params_or_none(source: str, path: str) -> None:
    template = compile_template(source)
    params = template.match(path)
    if params is not None:
        assert set(params) == set(template.converters)


@FUZZ
@given(st.lists(templates_with_paths(), min_size=1, max_size=5))
def test_table_find_follows_precedence(cases: list[tuple[str, str, dict[str, Any]]]) -> None:
    table: Table[int] = Table()
    registered: list[tuple[int, Template]] = []
    for handler, (source, _, _) in enumerate(cases):
        try:
            table.add(source, ["GET"], handler, "{method}")
        except ValueError as exc:  # same shape registered before: a duplicate
            assert "duplicate route" in str(exc)
            continue
        registered.append((handler, compile_template(source)))
    for _, path, _ in cases:
        chosen, params, _ = table.find(path, "GET")
        static = [h for h, t in registered if t.regex is None and t.source == path]
        templated = [
            (h, t) for h, t in registered if t.regex is not None and t.match(path) is not None
        ]
        if static:
            assert (chosen, params) == (static[0], {})
        else:
            assert templated, f"{path!r} matches none of its templates"
            first, template = templated[0]
            assert (chosen, params) == (first, template.match(path))
        found, params, allowed = table.find(path, "POST")
        assert found is None and params == {} and set(allowed) == {"GET"}
