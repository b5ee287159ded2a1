"""Each Sigma value modifier and value type, from inline YAML rules."""

from __future__ import annotations

import base64

import pytest

from tests.correlator.helpers import engine_for, fires


def test_plain_string_is_case_insensitive_exact() -> None:
    det = "sel:\n    Image: 'C:\\Windows\\cmd.exe'\ncondition: sel"
    assert fires(det, {"Image": "c:\\windows\\CMD.EXE"})
    assert not fires(det, {"Image": "c:\\windows\\cmd.exe.bak"})
    assert not fires(det, {"Other": "c:\\windows\\cmd.exe"})


def test_contains_startswith_endswith() -> None:
    assert fires(
        "sel:\n    CommandLine|contains: 'WhoAmI'\ncondition: sel", {"CommandLine": "cmd /c whoami /all"}
    )
    assert not fires("sel:\n    CommandLine|contains: 'whoami'\ncondition: sel", {"CommandLine": "who ami"})
    assert fires("sel:\n    Image|startswith: 'C:\\Temp'\ncondition: sel", {"Image": "c:\\temp\\x.exe"})
    assert not fires("sel:\n    Image|startswith: 'C:\\Temp'\ncondition: sel", {"Image": "d:\\c:\\temp"})
    assert fires(
        "sel:\n    Image|endswith:\n        - '\\a.exe'\n        - '\\B.EXE'\ncondition: sel",
        {"Image": "c:\\x\\b.exe"},
    )
    assert not fires("sel:\n    Image|endswith: '\\a.exe'\ncondition: sel", {"Image": "c:\\x\\a.exe2"})


def test_all_modifier_ands_the_list() -> None:
    det = "sel:\n    CommandLine|contains|all:\n        - 'net'\n        - 'user'\n        - '/add'\ncondition: sel"
    assert fires(det, {"CommandLine": "net user bob pw /add"})
    assert not fires(det, {"CommandLine": "net user bob"})


def test_list_values_are_ored() -> None:
    det = "sel:\n    User:\n        - alice\n        - bob\ncondition: sel"
    assert fires(det, {"User": "BOB"})
    assert not fires(det, {"User": "carol"})


def test_wildcards_and_escaping() -> None:
    assert fires("sel:\n    F: 'a*c'\ncondition: sel", {"F": "abbbc"})
    assert fires("sel:\n    F: 'a?c'\ncondition: sel", {"F": "abc"})
    assert not fires("sel:\n    F: 'a?c'\ncondition: sel", {"F": "abbc"})
    assert fires("sel:\n    F: 'a\\*c'\ncondition: sel", {"F": "a*c"})
    assert not fires("sel:\n    F: 'a\\*c'\ncondition: sel", {"F": "abc"})
    assert fires("sel:\n    F: 'x\\?'\ncondition: sel", {"F": "x?"})
    assert not fires("sel:\n    F: 'x\\?'\ncondition: sel", {"F": "xy"})
    assert fires("sel:\n    F: '*'\ncondition: sel", {"F": "anything"})
    assert not fires("sel:\n    F: '*'\ncondition: sel", {"G": "anything"})


def test_cased() -> None:
    det = "sel:\n    F|cased: 'PowerShell'\ncondition: sel"
    assert fires(det, {"F": "PowerShell"})
    assert not fires(det, {"F": "powershell"})
    assert fires("sel:\n    F|contains|cased: 'Shell'\ncondition: sel", {"F": "PowerShell.exe"})
    assert not fires("sel:\n    F|contains|cased: 'Shell'\ncondition: sel", {"F": "POWERSHELL.exe"})


def test_numbers_match_ints_and_numeric_strings() -> None:
    det = "sel:\n    EventID: 4688\ncondition: sel"
    assert fires(det, {"EventID": 4688})
    assert fires(det, {"EventID": "4688"})
    assert not fires(det, {"EventID": 46880})
    assert not fires(det, {"EventID": "4689"})
    # a string rule value matches an int event value by its text
    assert fires("sel:\n    Port: '443'\ncondition: sel", {"Port": 443})


def test_null_and_empty() -> None:
    assert fires("sel:\n    F: null\ncondition: sel", {"G": 1})
    assert fires("sel:\n    F: null\ncondition: sel", {"F": None})
    assert not fires("sel:\n    F: null\ncondition: sel", {"F": "x"})
    assert fires("sel:\n    F: ''\ncondition: sel", {"F": ""})
    assert not fires("sel:\n    F: ''\ncondition: sel", {"F": "x"})


def test_exists() -> None:
    assert fires("sel:\n    F|exists: true\ncondition: sel", {"F": "x"})
    assert not fires("sel:\n    F|exists: true\ncondition: sel", {"G": "x"})
    assert fires("sel:\n    F|exists: false\ncondition: sel", {"G": "x"})


def test_regex_and_flags() -> None:
    assert fires("sel:\n    F|re: '^a.c$'\ncondition: sel", {"F": "abc"})
    assert not fires("sel:\n    F|re: '^a.c$'\ncondition: sel", {"F": "ABC"})  # case-sensitive by default
    assert fires("sel:\n    F|re|i: '^a.c$'\ncondition: sel", {"F": "ABC"})
    assert fires("sel:\n    F|re|m: '^second$'\ncondition: sel", {"F": "first\nsecond"})
    assert not fires("sel:\n    F|re: '^second$'\ncondition: sel", {"F": "first\nsecond"})
    assert fires("sel:\n    F|re|s: 'a.b'\ncondition: sel", {"F": "a\nb"})
    assert not fires("sel:\n    F|re: 'a.b'\ncondition: sel", {"F": "a\nb"})
    assert fires(
        "sel:\n    F|re: '(?<=x)y'\ncondition: sel", {"F": "xy"}
    )  # look-behind: re2 refuses, re runs


def test_cidr() -> None:
    det = "sel:\n    IpAddress|cidr:\n        - '10.0.0.0/8'\n        - 'fd00::/8'\ncondition: sel"
    assert fires(det, {"IpAddress": "10.1.2.3"})
    assert fires(det, {"IpAddress": "fd00::1"})
    assert not fires(det, {"IpAddress": "11.1.2.3"})
    assert not fires(det, {"IpAddress": "not an ip"})


@pytest.mark.parametrize(
    ("mod", "value", "ok", "bad"),
    [("gt", 10, 11, 10), ("gte", 10, 10, 9), ("lt", 10, 9, 10), ("lte", 10, "10", 11)],
)
def test_numeric_comparisons(mod: str, value: int, ok: object, bad: object) -> None:
    det = f"sel:\n    Count|{mod}: {value}\ncondition: sel"
    assert fires(det, {"Count": ok})
    assert not fires(det, {"Count": bad})
    assert not fires(det, {"Count": "many"})


def test_fieldref() -> None:
    det = "sel:\n    SourceUser|fieldref: TargetUser\ncondition: sel"
    assert fires(det, {"SourceUser": "Bob", "TargetUser": "bob"})
    assert not fires(det, {"SourceUser": "bob", "TargetUser": "alice"})
    assert not fires(det, {"SourceUser": "bob"})


def test_base64_and_base64offset() -> None:
    encoded = base64.b64encode(b"http://evil").decode()
    assert fires("sel:\n    F|base64: 'http://evil'\ncondition: sel", {"F": encoded})
    det = "sel:\n    F|base64offset|contains: 'http://'\ncondition: sel"
    for prefix in (b"", b"x", b"xy"):
        text = base64.b64encode(prefix + b"http://host").decode()
        assert fires(det, {"F": "powershell -enc " + text}), prefix
    assert not fires(det, {"F": base64.b64encode(b"ftp://host").decode()})


def test_wide_utf16() -> None:
    det = "sel:\n    F|wide|base64offset|contains: 'ping'\ncondition: sel"
    text = base64.b64encode("ping 1.2.3.4".encode("utf-16-le")).decode()
    assert fires(det, {"F": text})
    assert fires(
        "sel:\n    F|utf16be|base64: 'ab'\ncondition: sel",
        {"F": base64.b64encode("ab".encode("utf-16-be")).decode()},
    )


def test_windash() -> None:
    det = "sel:\n    CommandLine|windash|contains: ' -enc '\ncondition: sel"
    for dash in ("-", "/", "\u2013", "\u2014", "\u2015"):
        assert fires(det, {"CommandLine": f"powershell {dash}enc AAA"}), dash
    assert not fires(det, {"CommandLine": "powershell +enc AAA"})


def test_expand_placeholders() -> None:
    det = "sel:\n    User|expand: '%admins%'\ncondition: sel"
    ph = {"admins": ["root", "administrator"]}
    assert fires(det, {"User": "Administrator"}, placeholders=ph)
    assert not fires(det, {"User": "guest"}, placeholders=ph)


def test_unknown_placeholder_is_a_load_failure() -> None:
    from soclite.correlator.loader import RuleSet, load_text
    from tests.correlator.helpers import RULE_HEAD

    rs = RuleSet()
    load_text(RULE_HEAD + "    sel:\n        User|expand: '%nobody%'\n    condition: sel\n", "f.yml", rs, {})
    assert not rs.rules
    assert rs.failures[0].source == "f.yml:1"
    assert "%nobody%" in rs.failures[0].reason


def test_keywords_search_every_value() -> None:
    det = "keywords:\n    - 'mimikatz'\n    - 'sekurlsa::*'\ncondition: keywords"
    assert fires(det, {"Message": "ran MimiKatz today"})
    assert fires(det, {"Other": 1, "CommandLine": "sekurlsa::logonpasswords"})
    assert not fires(det, {"Message": "nothing"})
    assert fires("keywords:\n    - 4625\ncondition: keywords", {"Message": "event 4625 seen"})


def test_keywords_all() -> None:
    det = "keywords:\n    '|all':\n        - 'foo'\n        - 'bar'\ncondition: keywords"
    assert fires(det, {"a": "foo", "b": "xbarx"})
    assert not fires(det, {"a": "foo"})


def test_bool_values() -> None:
    assert fires("sel:\n    Signed: true\ncondition: sel", {"Signed": "true"})
    assert fires("sel:\n    Signed: true\ncondition: sel", {"Signed": True})
    assert not fires("sel:\n    Signed: true\ncondition: sel", {"Signed": "false"})


def test_timestamp_parts() -> None:
    det = "sel:\n    '@timestamp|hour': 3\ncondition: sel"
    assert fires(det, {"@timestamp": "2024-05-01T03:04:05Z"})
    assert not fires(det, {"@timestamp": "2024-05-01T04:04:05Z"})


def test_rule_compiles_to_one_function() -> None:
    eng = engine_for("sel:\n    A|endswith: ['x', 'y']\ncondition: sel")
    assert eng.rules[0].code.startswith("def rule_0(ev, lw):")


def test_neq() -> None:
    det = "sel:\n    A: 1\n    B|neq: 'x'\ncondition: sel"
    assert fires(det, {"A": 1, "B": "y"})
    assert not fires(det, {"A": 1, "B": "X"})


def test_non_ascii_values_use_unicode_lowercase() -> None:
    det = "sel:\n    User|contains: 'ĐỨC'\ncondition: sel"
    assert fires(det, {"User": "nguyễn văn đức"})
    # a regex rule's anchor is only trusted on ASCII values: non-ASCII values always run the regex
    assert fires("sel:\n    F|re|i: 'kelvin'\ncondition: sel", {"F": "\u212aelvin"})
