"""What one check of ``authsvc doctor`` found: a status and one plain sentence. Pure."""

from dataclasses import dataclass
from enum import StrEnum


class Status(StrEnum):
    OK = "ok"
    WARN = "WARN"
    FAIL = "FAIL"
    #: The check does not apply to this set-up (notifications not configured...).
    SKIP = "skip"


@dataclass(frozen=True)
class Finding:
    """The verdict of one check: ``sentence`` says what was seen and, when something is
    wrong, what is wrong and the fix. Truthy unless it failed (a warning passes)."""

    check: str
    status: Status
    sentence: str

    def __bool__(self) -> bool:
        return self.status is not Status.FAIL

    @property
    def line(self) -> str:
        """One output line: status, check name, sentence."""
        return f"{self.status.value:<4}  {self.check}: {self.sentence}"


def ok(check: str, sentence: str) -> Finding:
    return Finding(check, Status.OK, sentence)


def warn(check: str, sentence: str) -> Finding:
    return Finding(check, Status.WARN, sentence)


def fail(check: str, sentence: str) -> Finding:
    return Finding(check, Status.FAIL, sentence)


def skip(check: str, sentence: str) -> Finding:
    return Finding(check, Status.SKIP, sentence)


def passed(findings: list[Finding]) -> bool:
    """Whether no finding failed (warnings and skipped checks pass)."""
    return all(findings)
