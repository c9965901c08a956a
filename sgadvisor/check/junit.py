"""JUnit XML for CI test reports: one testcase per security group checked, failed when the group has a
finding at or above ``--fail-on``; findings below it and suppressed ones go to the testcase's output.

The XML writer escapes markup, but CI systems show these texts (test report widgets, and the file itself
when a job prints it): untrusted values go through safe_text, so no raw newline or escape sequence comes
from them, and each line of a failure text through safe_line, so none reads as a CI workflow command."""

from __future__ import annotations

import re
import xml.etree.ElementTree as ET

from sgadvisor.check.model import CheckReport, Finding, GroupResult
from sgadvisor.render.quoting import safe_line, safe_text

_INVALID_XML = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\ud800-\udfff\ufffe\uffff]")


def render_junit(report: CheckReport) -> str:
    failing_ids = {f.id for f in report.failing()}
    suite = ET.Element("testsuite", name="sgadvisor check", timestamp="", hostname="")
    del suite.attrib["timestamp"], suite.attrib["hostname"]  # deterministic output: no clock, no host
    failures = 0
    for group in report.groups:
        findings = report.for_group(group.group_id)
        failed = [f for f in findings if f.id in failing_ids]
        case = ET.SubElement(
            suite, "testcase", classname=_classname(group), name=_clean(safe_line(safe_text(group.label)))
        )
        if failed:
            failures += 1
            failure = ET.SubElement(
                case,
                "failure",
                message=_clean(f"{len(failed)} finding(s) at or above {report.fail_on}"),
                type="drift",
            )
            failure.text = _clean("\n".join(_describe(f) for f in failed))
        others = [f for f in findings if f.id not in failing_ids]
        if others:
            out = ET.SubElement(case, "system-out")
            out.text = _clean("\n".join(_describe(f) for f in others))
    suite.set("tests", str(len(report.groups)))
    suite.set("failures", str(failures))
    suite.set("errors", "0")
    suite.set("skipped", "0")
    root = ET.Element("testsuites", name="sgadvisor", tests=str(len(report.groups)), failures=str(failures))
    root.append(suite)
    ET.indent(root)
    return '<?xml version="1.0" encoding="UTF-8"?>\n' + ET.tostring(root, encoding="unicode") + "\n"


def _classname(group: GroupResult) -> str:
    return _clean(safe_line(safe_text(f"sgadvisor.check.{group.vpc_id or 'no-vpc'}")))


def _describe(finding: Finding) -> str:
    state = f"suppressed: {finding.suppressed.reason}" if finding.suppressed else finding.severity.value
    lines = [f"[{safe_text(state)}] {finding.kind.value} {finding.id}: {safe_text(finding.message)}"]
    lines += [f"  - {safe_text(detail)}" for detail in finding.details]
    return "\n".join(safe_line(line) for line in lines)


def _clean(text: str) -> str:
    """XML 1.0 cannot carry most control characters, even escaped: drop any left (the untrusted ones
    were already made visible by safe_text; U+FFFE and U+FFFF remain to drop)."""
    return _INVALID_XML.sub("", text)
