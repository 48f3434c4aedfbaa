"""Pod checks: OOM kills (exit code 137), image pull failures, crash loops, unschedulable pods, pods lost
with their node, restarts that have recovered, pods terminating after a rollout, failures that follow a
rollout (the newest ReplicaSet failing while an older one serves)."""

from __future__ import annotations

import re
from collections.abc import Iterator

from .findings import Evidence, Finding, Observations, short
from .state import pod_is_healthy, replica_set_of

_EXIT = re.compile(r"exit[ _]code[=: ]+(\d+)", re.IGNORECASE)
_IMAGE_PULL = ("ImagePullBackOff", "ErrImagePull", "InvalidImageName")
_BAD_SPEC = ("CreateContainerConfigError", "CreateContainerError", "RunContainerError")


def _exit_code(container: dict) -> int | None:
    for state in (container.get("state") or {}, container.get("last_state") or {}):
        if isinstance(state.get("exit_code"), int):
            return state["exit_code"]
        found = _EXIT.search(str(state.get("message", "")))
        if found:
            return int(found.group(1))
    return None


def _state_text(container: dict) -> str:
    state = container.get("state") or {}
    return " ".join(str(state.get(k, "")) for k in ("reason", "message") if state.get(k))


def _container_findings(pod: dict, c: dict, kind: str) -> Iterator[Finding]:
    name, ready = pod.get("name", "?"), bool(c.get("ready"))
    reason = str((c.get("state") or {}).get("reason", ""))
    code, restarts = _exit_code(c), int(c.get("restart_count", 0) or 0)
    quote = Evidence(kind, short(f"pod {name} container {c.get('name')}: ready={ready} restarts={restarts} "
                                 f"{_state_text(c)}"))
    terminating = bool(pod.get("deletion_timestamp"))
    if code == 137 or "OOMKilled" in _state_text(c):
        yield Finding(check="oom_killed", subject=f"Pod/{name}",
                      statement=f"container {c.get('name')} in pod {name} is OOMKilled "
                                "(exit code 137): it exceeds its memory limit and the "
                                f"kernel kills it; restarted {restarts} times",
                      category="resource_exhaustion", weight=0.95, active=not ready and not terminating,
                      evidence=(quote,), remediation="raise the container memory limit or fix "
                                                     "the memory growth; check the heap profile")
    elif reason in _IMAGE_PULL:
        yield Finding(check="image_pull", subject=f"Pod/{name}",
                      statement=f"pod {name} cannot start: {reason} ({_state_text(c)})",
                      category="configuration_error", weight=0.95, active=not terminating, evidence=(quote,),
                      remediation="fix the image reference or tag in the deployment "
                                  "(or roll back to the last good image)")
    elif reason in _BAD_SPEC:
        yield Finding(check="bad_container_spec", subject=f"Pod/{name}",
                      statement=f"pod {name} cannot create its container: {reason} ({_state_text(c)})",
                      category="configuration_error", weight=0.9, active=not terminating, evidence=(quote,),
                      remediation="create the missing Secret/ConfigMap or "
                                  "fix the container spec that references it")
    elif reason == "CrashLoopBackOff":
        why = f"exit code {code}" if code is not None else "a non-zero exit"
        yield Finding(check="crash_loop", subject=f"Pod/{name}",
                      statement=f"pod {name} is in CrashLoopBackOff ({why}, {restarts} restarts)",
                      category="code_defect", weight=0.5, active=not terminating, evidence=(quote,),
                      remediation="read the container's last logs; roll "
                                  "back the release if it started with it")
    elif restarts and not ready and not terminating:
        yield Finding(check="restarting", subject=f"Pod/{name}",
                      statement=f"pod {name} keeps restarting ({restarts} restarts, last exit code "
                                f"{code if code is not None else 'unknown'}) and is not ready",
                      category=None, weight=0.4, active=True, evidence=(quote,))
    elif restarts and ready:
        yield Finding(check="restart_recovered", subject=f"Pod/{name}",
                      statement=f"pod {name} had {restarts} restart(s) but is Running "
                                "and Ready now; it is not currently restarting",
                      category=None, weight=0.2, active=False, evidence=(quote,))


def _pod_findings(pod: dict, kind: str) -> Iterator[Finding]:
    name = pod.get("name", "?")
    for cond in pod.get("conditions") or []:
        if cond.get("type") == "PodScheduled" and cond.get("status") == "False":
            message = str(cond.get("message", ""))
            category = "resource_exhaustion" if "insufficient" in message.lower() else "configuration_error"
            yield Finding(check="unschedulable", subject=f"Pod/{name}",
                          statement=f"pod {name} is Pending and cannot be scheduled "
                                    f"({cond.get('reason') or 'Unschedulable'}): {short(message, 160)}",
                          category=category, weight=0.9, active=True,
                          evidence=(Evidence(kind, short(f"pod {name} PodScheduled=False "
                                                         f"{cond.get('reason')}: {message}")),),
                          remediation="free or add capacity (scale the node "
                                      "group) or lower the pod's requests")
        if cond.get("type") == "Ready" and cond.get("status") == "Unknown":
            yield Finding(check="pod_lost", subject=f"Pod/{name}",
                          statement=f"pod {name} is in phase {pod.get('phase')}: "
                                    f"{short(cond.get('message', ''), 160)}",
                          category="infrastructure", weight=0.6, active=True,
                          evidence=(Evidence(kind, short(f"pod {name} Ready=Unknown {cond.get('reason')}: "
                                                         f"{cond.get('message')}")),))
    if pod.get("deletion_timestamp") and not pod_is_healthy(pod):
        yield Finding(check="terminating", subject=f"Pod/{name}",
                      statement=f"pod {name} (ReplicaSet {replica_set_of(name)}) is "
                                f"terminating since {pod['deletion_timestamp']}: a "
                                "leftover of a rollout, not a current failure",
                      category=None, weight=0.2, active=False,
                      evidence=(Evidence(kind, short(f"pod {name} "
                                                     f"deletion_timestamp={pod['deletion_timestamp']}")),))
    for c in pod.get("containers") or []:
        yield from _container_findings(pod, c, kind)


def _rollout_findings(obs: Observations, kind: str) -> Iterator[Finding]:
    """Pods of the newest ReplicaSet all failing while an older ReplicaSet's pods are healthy."""
    by_rs: dict[str, list[dict]] = {}
    for pod in obs.pods:
        if not pod.get("deletion_timestamp"):
            by_rs.setdefault(replica_set_of(str(pod.get("name", ""))), []).append(pod)
    if len(by_rs) < 2:
        return
    newest = max(by_rs, key=lambda rs: min(str(p.get("start_time", "")) for p in by_rs[rs]))
    failing = [p for p in by_rs[newest] if not pod_is_healthy(p)]
    serving = [rs for rs, pods in by_rs.items() if rs != newest and any(pod_is_healthy(p) for p in pods)]
    if failing and len(failing) == len(by_rs[newest]) and serving:
        started = min(str(p.get("start_time", "")) for p in by_rs[newest])
        yield Finding(check="failing_after_rollout", subject=f"ReplicaSet/{newest}",
                      statement="the failure follows a rollout: every pod of the new "
                                f"ReplicaSet {newest} (started {started}) is failing "
                                f"while the old ReplicaSet {serving[0]} keeps serving",
                      category=None, weight=0.3, active=True,
                      evidence=(Evidence(kind, short(f"ReplicaSet {newest}: {len(failing)} pod(s) not "
                                                     f"ready since {started}; {serving[0]} ready")),),
                      remediation="roll the deployment back to the previous "
                                  "ReplicaSet while the new revision is fixed")


def analyze_pods(obs: Observations) -> list[Finding]:
    kind = obs.kind("pods")
    found = [f for pod in obs.pods for f in _pod_findings(pod, kind)]
    return found + list(_rollout_findings(obs, kind))
