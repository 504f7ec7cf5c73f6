"""provision.yamlread: libyaml's speed where PyYAML has it, PyYAML's data and error messages."""

from __future__ import annotations

import pytest
import yaml

from provision import yamlread

DOCUMENTS = [
    "groups:\n- name: g\n  interval: 30s\n  rules:\n  - record: a:b:c\n    expr: sum(rate(x[5m]))\n",
    "a: 1\nb: [1.5, '2', yes, null, 2024-01-01]\nc: {d: 'multi\n  line'}\n",
    "price: 1.5e-05\nempty:\nquoted: \"a\\tb\"\nunicode: 모델\n",
]


@pytest.mark.parametrize("text", DOCUMENTS)
def test_same_data_as_pyyaml(text):
    assert yamlread.load(text) == yaml.safe_load(text)
    assert yamlread.load_all(text + "---\nx: 1\n") == list(yaml.safe_load_all(text + "---\nx: 1\n"))


def test_composed_nodes_carry_lines():
    root = yamlread.compose(DOCUMENTS[0])
    groups = next(value for key, value in root.value if key.value == "groups")
    assert groups.value[0].start_mark.line == 1


@pytest.mark.parametrize("text, problem", [
    ("groups: [unclosed", "expected ',' or ']', but got '<stream end>'"),
    ("a:\n\t- b\n", "found character '\\t' that cannot start any token"),
])
def test_errors_are_worded_by_pyyaml(text, problem):
    """The C parser's messages are terser; a refused document is read again by PyYAML's."""
    for read in (yamlread.load, yamlread.load_all, yamlread.compose):
        with pytest.raises(yaml.YAMLError) as caught:
            read(text)
        assert caught.value.problem == problem


def test_safe_only():
    with pytest.raises(yaml.constructor.ConstructorError):
        yamlread.load("x: !!python/object/apply:os.system ['true']\n")
