"""Department matching: exact, alias, simplified script, prefixes, suggestions."""

from __future__ import annotations

from models.department_match import DepartmentMatcher

DIRECTORY = [
    ("办公室", ["机关办公室"]),
    ("学会部", []),
    ("普及部", ["科普部"]),
    ("科协系统社会组织行业党委", []),
    ("机关党支部", []),
]


def matcher() -> DepartmentMatcher:
    return DepartmentMatcher.from_directory(DIRECTORY)


def test_exact_and_alias() -> None:
    assert matcher().resolve("学会部").how == "exact"
    alias = matcher().resolve("科普部")
    assert (alias.department, alias.how) == ("普及部", "alias")


def test_traditional_script_matches_simplified_name() -> None:
    found = matcher().resolve("學會部")
    assert (found.department, found.how) == ("学会部", "simplified")
    assert matcher().resolve("機關黨支部").department == "机关党支部"


def test_city_prefix_stripped() -> None:
    found = matcher().resolve("市科協系統社會組織行業黨委")
    assert (found.department, found.how) == ("科协系统社会组织行业党委", "prefix")


def test_unresolved_unit_gets_closest_names() -> None:
    found = matcher().resolve("普及处")
    assert found.department is None
    assert found.how == "unresolved"
    assert found.suggestions[0] == "普及部"


def test_unrelated_name_has_no_suggestion() -> None:
    assert matcher().resolve("海关总署").suggestions == ()
