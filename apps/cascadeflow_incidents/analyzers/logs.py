"""Log checks: error signatures (name resolution, refused or timed-out dependencies, missing configuration,
OOM kills, uncaught exceptions) and usage reported against a limit ('496Mi / 512Mi')."""

from __future__ import annotations

import re
from collections.abc import Iterator
from dataclasses import dataclass

from .findings import Evidence, Finding, Observations, short
from .metrics import ROBUST_Z, baseline_deviation, series_values
from .state import HEALTHY, pod_health


@dataclass(frozen=True, slots=True, kw_only=True)
class Signature:
    """A log pattern naming a mechanism (not a product), what it says, and what to do about it."""

    check: str
    pattern: re.Pattern[str]
    category: str
    weight: float
    says: str
    remedy: str


def _re(*alternatives: str) -> re.Pattern[str]:
    return re.compile("|".join(alternatives), re.IGNORECASE)


_SIGNATURES = (
    Signature(check="dns_failure",
              pattern=_re("ENOTFOUND", "NXDOMAIN", "no such host", "unable to resolve", "could not resolve",
                          "name resolution", "SERVFAIL", "getaddrinfo"), category="configuration_error",
              weight=0.8, says="DNS resolution fails",
              remedy="check the name the application resolves, the Service "
                     "object and CoreDNS; fix the hostname in the configuration"),
    Signature(check="config_error",
              pattern=_re(r"config(uration)? error", r"env(ironment)? var\S* \S+ (is )?not set",
                          r"missing required (setting|config|env)", "invalid config"),
              category="configuration_error", weight=0.8, says="the application fails on its configuration",
              remedy="restore the missing or invalid setting in the "
                     "manifest, or roll back to the last good revision"),
    Signature(check="dependency_refused",
              pattern=_re("connection refused", "ECONNREFUSED", "connection reset", "too many connections",
                          "pool exhausted", "upstream connect error", "remaining connection slots",
                          "503 service unavailable"),
              category="dependency_failure", weight=0.6, says="a dependency refuses or drops connections",
              remedy="check the dependency's health and connection limits; fail over or shed load"),
    Signature(check="dependency_timeout", pattern=_re("timed out", "timeout", "deadline exceeded"),
              category="dependency_failure", weight=0.5, says="calls to a dependency time out",
              remedy="check the dependency's latency and saturation"),
    Signature(check="oom_log", pattern=_re("out of memory", "OOMKilled", "oom-kill", "Killed process"),
              category="resource_exhaustion", weight=0.85, says="the kernel kills the process for memory",
              remedy="raise the memory limit or fix the memory growth"),
    Signature(check="certificate",
              pattern=_re("x509", r"certificate (has )?expired", "certificate verify failed"),
              category="configuration_error", weight=0.75, says="TLS certificate validation fails",
              remedy="renew or replace the certificate, or fix the trust bundle the client uses"),
    Signature(check="data_quality",
              pattern=_re(r"violates (unique|foreign key|not-null|check) constraint",
                          r"malformed (json|record|payload|message)", "schema mismatch",
                          r"deserializ\w* (error|failed)", r"corrupt(ed)? (data|record|file|message)"),
              category="data_quality", weight=0.6, says="the application rejects the data it reads",
              remedy="find the producer of the bad records; quarantine "
                     "them and fix the producer or the schema"),
    Signature(check="exception",
              pattern=_re("Traceback", "panic:", "NullPointerException", "TypeError", "Unhandled exception",
                          "segmentation fault"), category="code_defect", weight=0.6,
              says="the application raises an uncaught error",
              remedy="roll back the release that introduced the error; fix the code path"),
)
_HOST = re.compile(r"(?:ENOTFOUND|resolve|lookup)\s+([A-Za-z0-9][\w.-]*\.[\w.-]+)")
_USAGE = re.compile(r"(\d+(?:\.\d+)?)\s*(Ki|Mi|Gi|%)?\s*/\s*(\d+(?:\.\d+)?)\s*(Ki|Mi|Gi)?\b")
_UNITS = {"Ki": 1 / 1024, "Mi": 1.0, "Gi": 1024.0, None: 1.0}
NEAR_LIMIT = 0.9  # usage at 90% of a declared limit: the usual alerting line for memory and quotas


def _current(obs: Observations, pod: str | None) -> bool:
    """A pod's own log is current while that pod still fails; other log lines while a monitor alerts, a
    metric is off its baseline, or no monitor was seen at all."""
    if pod:
        return pod_health(obs, pod) != HEALTHY
    if not obs.monitors or any(str(m.get("overall_state", "")).lower() in ("alert", "warn") for m in obs.monitors):
        return True
    return any(abs(z) >= ROBUST_Z for z in (baseline_deviation(series_values(s)) for s in obs.metrics)
               if z is not None)


def _signature_findings(obs: Observations) -> Iterator[Finding]:
    lines = [line for line in obs.log_lines() if line[1] in ("error", "warn", "warning", "event", "")]
    for sig in _SIGNATURES:
        hits = [(k, msg, pod) for k, lvl, msg, pod in lines
                if sig.pattern.search(msg) and (lvl != "" or sig.check == "oom_log")]
        if not hits:
            continue
        active = any(_current(obs, pod) for _, _, pod in hits)
        host = next((m.group(1) for _, msg, _ in hits if (m := _HOST.search(msg))), None)
        target = f" for {host}" if host and sig.check == "dns_failure" else ""
        evidence = tuple(Evidence(k, short(msg)) for k, msg, _ in hits[:3])
        yield Finding(check=sig.check, subject=host or "logs",
                      statement=f"{sig.says}{target}: {len(hits)} log line(s), e.g. {short(hits[0][1], 180)}",
                      category=sig.category, weight=sig.weight, active=active, evidence=evidence,
                      remediation=sig.remedy)


def _usage_findings(obs: Observations) -> Iterator[Finding]:
    for kind, _, msg, pod in obs.log_lines():
        for m in _USAGE.finditer(msg):
            used = float(m.group(1)) * _UNITS.get(m.group(2), 1.0)
            limit = float(m.group(3)) * _UNITS.get(m.group(4), 1.0)
            if m.group(2) != "%" and limit > 0 and used / limit >= NEAR_LIMIT:
                yield Finding(check="near_limit", subject="logs",
                              statement=f"usage at {used / limit:.0%} of its limit: {short(msg, 160)}",
                              category="resource_exhaustion", weight=0.45, active=_current(obs, pod),
                              evidence=(Evidence(kind, short(msg)),),
                              remediation="raise the limit or reduce the usage")
                return


def analyze_logs(obs: Observations) -> list[Finding]:
    return list(_signature_findings(obs)) + list(_usage_findings(obs))
