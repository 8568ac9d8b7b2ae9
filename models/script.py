"""One script for readers: plan text shown in Simplified Chinese (mainland usage) by default.

Documents scraped from mirror sites are often machine-converted traditional Chinese
(`長治市科學技術協會`). `plan_for_readers` converts every text a reader sees (titles, bodies,
units, targets, 完成时限, 时序进度, 考核要点, phase names) with zhconv's `zh-cn` dictionary;
the original wording is kept beside it in the database (`original_*` columns). Pure; no I/O.
"""

from __future__ import annotations

from pathlib import Path

import zhconv

from models.plan_schema import ParsedItem, ParsedPlan

__all__ = [
    "READER_VARIANT",
    "load_dictionary",
    "original_if_changed",
    "plan_for_readers",
    "simplified",
]

READER_VARIANT = "zh-cn"


def load_dictionary() -> None:
    """Load zhconv's table through a closed file (its default loader leaks the handle)."""
    module = zhconv.zhconv
    if module.zhcdicts is None:
        module.loaddict(str(Path(module.__file__).with_name("zhcdict.json")))


def simplified(text: str) -> str:
    """`text` in mainland Simplified Chinese (text already simplified comes back unchanged)."""
    load_dictionary()
    return str(zhconv.convert(text, READER_VARIANT)) if text else text


def original_if_changed(original: str, shown: str) -> str | None:
    """`original` when it differs from the text shown, else None (nothing to keep)."""
    return original if original != shown else None


def _item(item: ParsedItem) -> ParsedItem:
    return item.model_copy(
        update={
            "title": simplified(item.title),
            "body": simplified(item.body),
            "lead": [simplified(name) for name in item.lead],
            "support": [simplified(name) for name in item.support],
            "targets": [
                target.model_copy(
                    update={"text": simplified(target.text), "unit": simplified(target.unit)}
                )
                for target in item.targets
            ],
            "criteria": simplified(item.criteria),
            "milestones": [
                milestone.model_copy(
                    update={
                        "text": simplified(milestone.text),
                        "output": simplified(milestone.output),
                    }
                )
                for milestone in item.milestones
            ],
            "deadline": item.deadline
            and item.deadline.model_copy(update={"text": simplified(item.deadline.text)}),
        }
    )


def plan_for_readers(parsed: ParsedPlan) -> ParsedPlan:
    """A copy of `parsed` with every reader-facing text simplified; `parsed` is unchanged.

    Numbers, dates, section keys and resolved department names are kept as they are.
    """
    return parsed.model_copy(
        update={
            "title": simplified(parsed.title),
            "organisation": simplified(parsed.organisation),
            "sections": [
                section.model_copy(update={"title": simplified(section.title)})
                for section in parsed.sections
            ],
            "items": [_item(item) for item in parsed.items],
            "phases": [
                phase.model_copy(update={"name": simplified(phase.name)}) for phase in parsed.phases
            ],
        }
    )
