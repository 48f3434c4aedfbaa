"""Warning-event checks: probe failures, quota rejections, scheduling failures, image pulls, node loss,
stalled rollouts, back-offs. An event is history: it is active only while its object still fails now."""

from __future__ import annotations

import re
from collections.abc import Iterator

from .findings import Evidence, Finding, Observations, short
from .state import FAILING, UNKNOWN, object_health

_IMAGE = re.compile(r'image "([^"]+)"')
# an event whose own message says it resolved (retried, recovered, rolled back) is history, not a failure
_SAYS_RESOLVED = re.compile(r"retried successfully|recovered|\bresolved\b|rolled back|is now running", re.IGNORECASE)
_PROBE_FIX = ("check the liveness probe's path, port, timeout and failure threshold against the application; "
              "relax or fix it")
_QUOTA_FIX = "raise the namespace ResourceQuota or lower the pods' requests/limits; scale other workloads down"
_ROLLBACK = "roll back the deployment to the last good revision, then fix the new revision"


def _classify(event: dict) -> tuple[str, str | None, float, str] | None:
    """(check, category, weight, remediation) for an event, or None when it says nothing specific."""
    reason, message = str(event.get("reason", "")), str(event.get("message", ""))
    low = message.lower()
    if reason == "Unhealthy" and "liveness probe" in low or reason == "Killing" and "liveness" in low:
        return "liveness_probe", "configuration_error", 0.85, _PROBE_FIX
    if reason == "Unhealthy":
        return "readiness_probe", None, 0.3, "check the readiness endpoint and its dependencies"
    if "exceeded quota" in low or reason == "QuotaExceeded":
        return "quota_exceeded", "resource_exhaustion", 0.9, _QUOTA_FIX
    if reason == "FailedScheduling":
        category = "resource_exhaustion" if "insufficient" in low else "configuration_error"
        return "unschedulable", category, 0.85, "add node capacity or lower the pod's requests"
    if "pull image" in low or "pulling image" in low or reason in ("ErrImagePull", "ImagePullBackOff"):
        return "image_pull", "configuration_error", 0.9, "fix the image reference/tag or registry credentials"
    if reason in ("NodeNotReady", "NodeControllerEviction") or "nodenotready" in low:
        return "node_not_ready", "infrastructure", 0.8, "cordon and drain the node; replace it if it does not recover"
    if reason == "ProgressDeadlineExceeded":
        return "rollout_stuck", "configuration_error", 0.7, _ROLLBACK
    if reason == "Evicted" or "low on resource" in low:
        return "evicted", "resource_exhaustion", 0.8, "find what uses the node's resource; set requests and limits"
    if reason in ("FailedMount", "FailedAttachVolume") and "not found" in low:
        return "missing_volume_source", "configuration_error", 0.8, "create the Secret/ConfigMap/volume it names"
    if reason in ("FailedMount", "FailedAttachVolume"):
        return "volume_failure", "infrastructure", 0.6, "check the volume, its attachment and the storage backend"
    if reason in ("FailedCreatePodSandBox", "NetworkNotReady"):
        return "sandbox_failure", "infrastructure", 0.7, "check the node's container runtime and CNI plugin"
    if reason == "BackOff" and ("oomkilled" in low or "exit code: 137" in low or "exit_code=137" in low):
        return "oom_killed", "resource_exhaustion", 0.9, "raise the memory limit or fix the memory growth"
    if reason == "BackOff":
        return "back_off", None, 0.3, ""
    return None


def _statement(check: str, event: dict, ref: str) -> str:
    message = short(event.get("message", ""), 200)
    count = event.get("count", 1)
    image = _IMAGE.search(str(event.get("message", "")))
    if check == "image_pull" and image:
        return f"{ref} cannot pull image {image.group(1)} ({count} times): {message}"
    return f"{event.get('reason')} on {ref} ({count} times, last {event.get('last_time', '?')}): {message}"


def _event_findings(obs: Observations) -> Iterator[Finding]:
    kind = obs.kind("events")
    for event in obs.events:
        classified = _classify(event)
        if classified is None:
            continue
        check, category, weight, remedy = classified
        ref = str(event.get("involved_object") or event.get("object") or "?")
        health = object_health(obs, ref)
        active = health in (FAILING, UNKNOWN) and not _SAYS_RESOLVED.search(str(event.get("message", "")))
        statement = _statement(check, event, ref)
        if not active:
            statement += (f" -- {ref} is {health} now: this signal has recovered" if health not in (FAILING, UNKNOWN)
                          else " -- the event itself says it resolved")
        yield Finding(check=check, subject=ref, statement=statement, category=category, weight=weight,
                      active=active, evidence=(Evidence(kind, short(f"{event.get('reason')} {ref}: "
                                                                    f"{event.get('message', '')}",
                                                                    320)),), remediation=remedy)


def analyze_events(obs: Observations) -> list[Finding]:
    return list(_event_findings(obs))
