"""What each identity the chart creates may do, as `kubectl auth can-i` would answer from the
rendered RBAC, and the privileges of the agent's pod for each reboot method.

The chart is rendered for CI's release (upkeep in upkeep-system) with the values files below;
every Role, ClusterRole and binding rendered is evaluated with the Kubernetes RBAC authorizer's
rules (rbac.authorization.k8s.io/v1: verbs, API groups, resources with their subresources and
`*/subresource`, resourceNames, a RoleBinding's namespace, a ClusterRole bound by a RoleBinding,
ServiceAccount, User and Group subjects with a ServiceAccount's implied groups). Each case says
what must be allowed and what must be denied; any case that comes out otherwise fails the run.

Usage: check_privileges.py CHART
"""

import sys
from pathlib import Path
from typing import NamedTuple

import helm_python as helm
import yaml

from check_chart import NAMESPACE, render


class Ask(NamedTuple):
    """One question: may the subject `verb` `resource` in `namespace` (None: cluster scope)?
    `resource` is written as kubectl auth can-i takes it, `resource[.group][/subresource]`,
    e.g. `pods/eviction`, `hosts.upkeep.dev/status`, `poddisruptionbudgets.policy`."""

    verb: str
    resource: str
    namespace: str | None
    name: str = ""

    def parts(self):
        """(group, resource, subresource)"""
        resource, _, subresource = self.resource.partition("/")
        resource, _, group = resource.partition(".")
        return group, resource, subresource

    def __str__(self):
        where = f" -n {self.namespace}" if self.namespace else " (cluster)"
        name = f"/{self.name}" if self.name else ""
        return f"{self.verb} {self.resource}{name}{where}"


class Authorizer:
    """Kubernetes' RBAC authorizer over a set of rendered objects."""

    def __init__(self, objects):
        self.roles = {
            (o["kind"], o["metadata"].get("namespace"), o["metadata"]["name"]): o.get("rules") or []
            for o in objects
            if o["kind"] in ("Role", "ClusterRole")
        }
        self.bindings = [o for o in objects if o["kind"] in ("RoleBinding", "ClusterRoleBinding")]

    def rules_for(self, binding):
        ref = binding["roleRef"]
        namespace = binding["metadata"].get("namespace") if ref["kind"] == "Role" else None
        key = (ref["kind"], namespace, ref["name"])
        if key not in self.roles:
            raise SystemExit(f"{binding['kind']} {binding['metadata']['name']} refers to the missing {ref['kind']} {ref['name']}")
        return self.roles[key]

    def allows(self, subject, ask):
        for binding in self.bindings:
            if not any(matches_subject(s, subject, binding) for s in binding.get("subjects") or []):
                continue
            if binding["kind"] == "RoleBinding" and ask.namespace != binding["metadata"]["namespace"]:
                continue
            if any(rule_allows(rule, ask) for rule in self.rules_for(binding)):
                return True
        return False

    def bound_cluster_wide(self, subject):
        """The ClusterRoleBindings that name the subject."""
        return [
            b["metadata"]["name"]
            for b in self.bindings
            if b["kind"] == "ClusterRoleBinding"
            and any(matches_subject(s, subject, b) for s in b.get("subjects") or [])
        ]


class ServiceAccount(NamedTuple):
    namespace: str
    name: str

    def groups(self):
        return {"system:serviceaccounts", f"system:serviceaccounts:{self.namespace}", "system:authenticated"}

    def username(self):
        return f"system:serviceaccount:{self.namespace}:{self.name}"


def matches_subject(entry, subject, binding):
    kind = entry.get("kind")
    if kind == "ServiceAccount":
        # A RoleBinding's ServiceAccount subject without a namespace is in the binding's.
        namespace = entry.get("namespace") or binding["metadata"].get("namespace")
        return (namespace, entry["name"]) == (subject.namespace, subject.name)
    if kind == "User":
        return entry["name"] == subject.username()
    if kind == "Group":
        return entry["name"] in subject.groups()
    return False


def rule_allows(rule, ask):
    group, resource, subresource = ask.parts()
    combined = f"{resource}/{subresource}" if subresource else resource
    verbs = rule.get("verbs") or []
    if "*" not in verbs and ask.verb not in verbs:
        return False
    groups = rule.get("apiGroups") or []
    if "*" not in groups and group not in groups:
        return False
    resources = rule.get("resources") or []
    if not any(
        r in ("*", combined) or (subresource and r == f"*/{subresource}") for r in resources
    ):
        return False
    names = rule.get("resourceNames") or []
    return not names or ask.name in names


def check(label, authorizer, subject, allowed, denied):
    """Prints a line per ask; returns the number of wrong answers."""
    wrong = 0
    for expected, asks in ((True, allowed), (False, denied)):
        for ask in asks:
            got = authorizer.allows(subject, ask)
            verdict = "yes" if got else "no"
            if got == expected:
                print(f"  ok   {label}: can-i {ask}: {verdict}")
            else:
                print(f"  FAIL {label}: can-i {ask}: {verdict}, expected {'yes' if expected else 'no'}")
                wrong += 1
    return wrong


def every(verbs, resource, namespace, name=""):
    return [Ask(v, resource, namespace, name) for v in verbs]


READ = ("get", "list", "watch")
WRITE = ("create", "update", "patch", "delete", "deletecollection")
ALL = READ + WRITE
UPKEEP_KINDS = ("maintenancewindows", "devices", "firmwareupgrades", "devicepatches", "patchjobs", "hosts", "upgradetasks")

# Outside the agent's namespace, and a namespace none of the values files watch.
ELSEWHERE = "team-a"


def agent_cases(ns):
    """What an agent (DaemonSet or outside the cluster) may and may not do: RBAC grants it its
    namespace's tasks, PatchJobs, Hosts and Leases; the admission policy narrows the writes to
    its own (tests/it/agent_policy.rs)."""
    allowed = [
        *every(READ, "upgradetasks.upkeep.dev", ns),
        *every(READ, "patchjobs.upkeep.dev", ns),
        *every(("get", "patch", "update"), "upgradetasks.upkeep.dev/status", ns),
        *every(("get", "create"), "hosts.upkeep.dev", ns),
        *every(("get", "patch", "update"), "hosts.upkeep.dev/status", ns),
        *every(("get", "create", "update", "patch"), "leases.coordination.k8s.io", ns),
        *every(("create", "patch"), "events.events.k8s.io", ns),
    ]
    denied = [
        # The tasks are the operator's: the agent writes only their status.
        *every(("create", "update", "patch", "delete", "deletecollection"), "upgradetasks.upkeep.dev", ns),
        *every(("update", "patch", "delete", "deletecollection"), "hosts.upkeep.dev", ns),
        # It reads its own Host by name, never every Host of the namespace.
        *every(("list", "watch"), "hosts.upkeep.dev", ns),
        *every(WRITE, "patchjobs.upkeep.dev", ns),
        *every(("patch", "update"), "patchjobs.upkeep.dev/status", ns),
        *every(ALL, "firmwareupgrades.upkeep.dev", ns),
        *every(ALL, "devices.upkeep.dev", ns),
        *every(ALL, "devicepatches.upkeep.dev", ns),
        *every(ALL, "maintenancewindows.upkeep.dev", ns),
        # Another namespace's tasks, Hosts and Leases.
        *every(("get", "list", "patch", "update"), "upgradetasks.upkeep.dev/status", ELSEWHERE),
        *every(READ, "upgradetasks.upkeep.dev", ELSEWHERE),
        *every(("create", "get"), "hosts.upkeep.dev", ELSEWHERE),
        Ask("patch", "hosts.upkeep.dev/status", ELSEWHERE),
        *every(("get", "create", "update"), "leases.coordination.k8s.io", ELSEWHERE),
        Ask("delete", "leases.coordination.k8s.io", ns),
        Ask("list", "leases.coordination.k8s.io", ns),
        # Draining is the controller's: the agent never evicts, cordons or reads pods.
        Ask("create", "pods/eviction", ns),
        Ask("create", "pods/eviction", ELSEWHERE),
        *every(ALL, "pods", ns),
        *every(READ + ("patch", "update"), "nodes", None),
        Ask("patch", "nodes/status", None),
        *every(READ, "poddisruptionbudgets.policy", ns),
        # No secrets, no workloads, nothing cluster-wide.
        *every(ALL, "secrets", ns),
        *every(ALL, "configmaps", ns),
        *every(ALL, "deployments.apps", ns),
        *every(ALL, "daemonsets.apps", ns),
        Ask("create", "serviceaccounts/token", ns),
        Ask("impersonate", "serviceaccounts", ns),
        *every(READ + ("create",), "hosts.upkeep.dev", None),
        *every(ALL, "roles.rbac.authorization.k8s.io", ns),
        *every(ALL, "rolebindings.rbac.authorization.k8s.io", ns),
        Ask("create", "events", ns),
    ]
    return allowed, denied


def operator_cases(watched):
    """The operator: its kinds in the watched namespaces; drain rights everywhere."""
    ns = watched[0]
    allowed = [
        *every(READ + ("patch",), "patchjobs.upkeep.dev", ns),
        *every(("get", "patch", "update"), "patchjobs.upkeep.dev/status", ns),
        *every(READ + ("patch",), "devicepatches.upkeep.dev", ns),
        *every(("get", "patch", "update"), "devicepatches.upkeep.dev/status", ns),
        *every(READ + ("create", "patch", "delete"), "upgradetasks.upkeep.dev", ns),
        *every(READ, "hosts.upkeep.dev", ns),
        *every(("get", "patch", "update"), "hosts.upkeep.dev/status", ns),
        *every(READ, "leases.coordination.k8s.io", ns),
        # Drain: every node, and the pods of every namespace on it.
        *every(READ + ("patch",), "nodes", None),
        Ask("list", "pods", ELSEWHERE),
        Ask("list", "pods", "kube-system"),
        Ask("create", "pods/eviction", ELSEWHERE),
        Ask("create", "pods/eviction", "kube-system"),
        *every(("list", "watch"), "poddisruptionbudgets.policy", ELSEWHERE),
        Ask("get", "secrets", ns, "dp-1-credentials"),
    ]
    denied = [
        *every(("create", "delete"), "patchjobs.upkeep.dev", ns),
        *every(("create", "update", "patch", "delete"), "hosts.upkeep.dev", ns),
        *every(("delete", "deletecollection", "update"), "nodes", None),
        *every(("update", "patch"), "nodes/status", None),
        Ask("create", "nodes", None),
        *every(("get", "watch", "create", "update", "patch", "delete", "deletecollection"), "pods", ELSEWHERE),
        *every(("update", "patch"), "pods/status", ELSEWHERE),
        Ask("create", "pods/exec", ELSEWHERE),
        *every(WRITE, "poddisruptionbudgets.policy", ELSEWHERE),
        *every(("list", "watch", "create", "update", "patch"), "secrets", ns),
        *every(("create", "update", "delete"), "leases.coordination.k8s.io", ELSEWHERE),
        *every(ALL, "deployments.apps", ns),
    ]
    return allowed, denied


def users_cases(authorizer, aggregated):
    """The aggregated user roles, as the built-in view and edit roles would carry them; and
    <fullname>-host-edit, bound by a RoleBinding."""
    wrong = 0
    editor = ServiceAccount("people", "editor")
    roles = {name: rules for (kind, _, name), rules in authorizer.roles.items() if kind == "ClusterRole"}
    for role, label in (("view", "aggregate-to-view"), ("edit", "aggregate-to-edit")):
        authorizer.roles[("ClusterRole", None, role)] = [
            rule for name in aggregated[label] for rule in roles[name]
        ]
    binding = lambda role: {  # noqa: E731
        "kind": "RoleBinding",
        "metadata": {"name": role, "namespace": ELSEWHERE},
        "roleRef": {"kind": "ClusterRole", "name": role},
        "subjects": [{"kind": "ServiceAccount", "name": editor.name, "namespace": editor.namespace}],
    }
    authorizer.bindings.append(binding("edit"))
    authorizer.bindings.append(binding("view"))
    wrong += check(
        "namespace editor", authorizer, editor,
        allowed=[
            *[a for kind in UPKEEP_KINDS for a in every(READ, f"{kind}.upkeep.dev", ELSEWHERE)],
            *every(("create", "patch", "delete"), "patchjobs.upkeep.dev", ELSEWHERE),
            *every(("create", "patch", "delete"), "firmwareupgrades.upkeep.dev", ELSEWHERE),
        ],
        denied=[
            *every(("create", "update", "patch", "delete"), "upgradetasks.upkeep.dev", ELSEWHERE),
            *every(("create", "update", "patch", "delete"), "hosts.upkeep.dev", ELSEWHERE),
            *every(("patch", "update"), "hosts.upkeep.dev/status", ELSEWHERE),
            *every(("patch", "update"), "upgradetasks.upkeep.dev/status", ELSEWHERE),
            Ask("get", "hosts.upkeep.dev", "other"),
        ],
    )
    authorizer.bindings.append(binding(next(n for n in roles if n.endswith("-host-edit"))))
    wrong += check(
        "host administrator", authorizer, editor,
        allowed=every(("create", "update", "patch", "delete"), "hosts.upkeep.dev", ELSEWHERE),
        denied=[Ask("patch", "hosts.upkeep.dev/status", ELSEWHERE), Ask("create", "hosts.upkeep.dev", "other")],
    )
    return wrong


def pod_problems(objects, method, service_account, packages):
    """What is wrong with the rendered agent pod for a reboot method and package repository
    (values' agent.packageRepository), as sentences."""
    daemonsets = [o for o in objects if o["kind"] == "DaemonSet"]
    if len(daemonsets) != 1:
        return [f"{len(daemonsets)} DaemonSets rendered, expected the agent's"]
    pod = daemonsets[0]["spec"]["template"]["spec"]
    (container,) = pod["containers"]
    security = container["securityContext"]
    mounts = {m["mountPath"]: m for m in container["volumeMounts"]}
    volumes = {v["name"]: v for v in pod["volumes"]}
    paths = {volumes[m["name"]].get("hostPath", {}).get("path"): path for path, m in mounts.items()}
    env = {e["name"]: e for e in container["env"]}
    args = container["args"]
    problems = []

    def expect(ok, sentence):
        if not ok:
            problems.append(sentence)

    expect(pod["securityContext"]["runAsUser"] == 0, "the agent must run as root (the package manager)")
    expect(paths.get("/") == "/host" and not mounts["/host"].get("readOnly"), "the host's / must be mounted read-write at /host")
    expect(args[:1] == ["agent"] and args[args.index("--root") + 1] == "/host", "the agent must run with --root /host")
    expect(args[args.index("--host") + 1] == "$(NODE_NAME)", "--host must be the pod's node")
    expect(env["NODE_NAME"]["valueFrom"]["fieldRef"]["fieldPath"] == "spec.nodeName", "NODE_NAME must come from spec.nodeName")
    expect(env["POD_NAMESPACE"]["valueFrom"]["fieldRef"]["fieldPath"] == "metadata.namespace", "POD_NAMESPACE must come from metadata.namespace")
    agent_method = {"logind": "logind", "systemctl": "nsenter"}[method]
    expect(env["UPKEEP_REBOOT_METHOD"]["value"] == agent_method, f"UPKEEP_REBOOT_METHOD must be {agent_method}")
    state = args[args.index("--state-dir") + 1]
    expect(paths.get(state) == state, "the state directory must be a hostPath at the same path")
    expect(security["readOnlyRootFilesystem"] is True, "the image's file system must be read-only")
    expect(pod.get("hostNetwork") is not True and pod.get("hostIPC") is not True, "no host network or IPC")
    expect(pod["serviceAccountName"] == service_account, f"the agent must run as its own ServiceAccount {service_account}")
    repository = env.get("UPKEEP_PACKAGE_REPOSITORY", {}).get("value")
    if packages.get("hostPath"):
        mount = paths.get(packages["hostPath"])
        expect(mount is not None and repository == mount, "UPKEEP_PACKAGE_REPOSITORY must name the package repository's mount")
        expect(mount is not None and mounts[mount].get("readOnly") is True, "the package repository must be mounted read-only")
    else:
        expect(repository == (packages.get("url") or None), f"UPKEEP_PACKAGE_REPOSITORY must be {packages.get('url')!r}, not {repository!r}")
    bus = paths.get("/run/dbus/system_bus_socket")
    if method == "logind":
        expect(pod["hostPID"] is False, "logind needs no hostPID")
        expect(security["privileged"] is False and security["allowPrivilegeEscalation"] is False, "logind is not privileged")
        expect(security["capabilities"]["drop"] == ["ALL"], "every capability is dropped but those added")
        expect(set(security["capabilities"]["add"]) == {"CHOWN", "DAC_OVERRIDE", "FOWNER", "FSETID", "SETFCAP", "SETUID", "SETGID", "SYS_CHROOT"},
               f"the package manager's capabilities only, not {security['capabilities']['add']}")
        expect(bus == "/run/dbus/system_bus_socket", "logind needs the host's system bus socket")
        expect(pod["securityContext"]["seccompProfile"]["type"] == "RuntimeDefault", "the runtime's seccomp profile")
    else:
        expect(pod["hostPID"] is True, "systemctl needs hostPID (nsenter -t 1)")
        expect(security["privileged"] is True, "systemctl needs a privileged container (nsenter)")
        expect(bus is None, "systemctl needs no D-Bus socket")
    return problems


def selftest():
    """The authorizer's own rules, on rules whose answers Kubernetes documents."""
    cases = [
        ({"apiGroups": [""], "resources": ["pods"], "verbs": ["create"]}, Ask("create", "pods/eviction", "x"), False),
        ({"apiGroups": [""], "resources": ["pods/eviction"], "verbs": ["create"]}, Ask("create", "pods/eviction", "x"), True),
        ({"apiGroups": ["upkeep.dev"], "resources": ["*/status"], "verbs": ["patch"]}, Ask("patch", "hosts.upkeep.dev/status", "x"), True),
        ({"apiGroups": ["upkeep.dev"], "resources": ["*/status"], "verbs": ["patch"]}, Ask("patch", "hosts.upkeep.dev", "x"), False),
        ({"apiGroups": ["*"], "resources": ["*"], "verbs": ["get"]}, Ask("get", "deployments.apps", "x"), True),
        ({"apiGroups": ["*"], "resources": ["*"], "verbs": ["get"]}, Ask("list", "deployments.apps", "x"), False),
        ({"apiGroups": ["apps"], "resources": ["deployments"], "verbs": ["get"]}, Ask("get", "deployments", "x"), False),
        ({"apiGroups": ["coordination.k8s.io"], "resources": ["leases"], "resourceNames": ["a"], "verbs": ["get"]}, Ask("get", "leases.coordination.k8s.io", "x", "a"), True),
        ({"apiGroups": ["coordination.k8s.io"], "resources": ["leases"], "resourceNames": ["a"], "verbs": ["get"]}, Ask("get", "leases.coordination.k8s.io", "x", "b"), False),
        # create carries no name, so a rule limited to names never grants it
        ({"apiGroups": ["coordination.k8s.io"], "resources": ["leases"], "resourceNames": ["a"], "verbs": ["create"]}, Ask("create", "leases.coordination.k8s.io", "x"), False),
    ]
    wrong = 0
    for rule, ask, expected in cases:
        if rule_allows(rule, ask) != expected:
            print(f"  FAIL authorizer: {rule} answers {not expected} to {ask}")
            wrong += 1
    role = {"kind": "Role", "metadata": {"name": "r", "namespace": "x"}, "rules": [cases[1][0]]}
    bind = {"kind": "RoleBinding", "metadata": {"name": "b", "namespace": "x"}, "roleRef": {"kind": "Role", "name": "r"},
            "subjects": [{"kind": "Group", "name": "system:serviceaccounts:y"}]}
    authorizer = Authorizer([role, bind])
    for subject, ask, expected in (
        (ServiceAccount("y", "any"), Ask("create", "pods/eviction", "x"), True),
        (ServiceAccount("y", "any"), Ask("create", "pods/eviction", "z"), False),
        (ServiceAccount("w", "any"), Ask("create", "pods/eviction", "x"), False),
    ):
        if authorizer.allows(subject, ask) != expected:
            print(f"  FAIL authorizer: {subject} {ask} should be {expected}")
            wrong += 1
    print(f"-- the authorizer's own cases: {'ok' if not wrong else f'{wrong} wrong'}")
    return wrong


def main(chart_dir):
    wrong = selftest()
    ci = Path(__file__).parent
    with helm.Chart.load(chart_dir) as chart:
        def objects(*files):
            values = {}
            for f in files:
                values.update(yaml.safe_load((ci / f).read_text()))
            return [doc for _, doc in render(chart, values or None)]

        print("-- agent, operator watching all namespaces (values-agent.yaml)")
        rendered = objects("values-agent.yaml")
        authorizer = Authorizer(rendered)
        allowed, denied = agent_cases(NAMESPACE)
        for subject, label in (
            (ServiceAccount(NAMESPACE, "upkeep-agent"), "agent DaemonSet"),
            (ServiceAccount(NAMESPACE, "upkeep-host-db-1"), "external host db-1"),
        ):
            wrong += check(label, authorizer, subject, allowed, denied)
            bound = authorizer.bound_cluster_wide(subject)
            if bound:
                print(f"  FAIL {label}: bound cluster-wide by {bound}")
                wrong += 1
        stranger = ServiceAccount(NAMESPACE, "upkeep-host-not-listed")
        wrong += check("an unlisted upkeep-host-* ServiceAccount", authorizer, stranger, [], allowed)
        operator = ServiceAccount(NAMESPACE, "upkeep")
        allowed, denied = operator_cases([NAMESPACE, ELSEWHERE])
        wrong += check("operator", authorizer, operator, allowed, denied)
        aggregated = {
            label: [o["metadata"]["name"] for o in rendered if o["kind"] == "ClusterRole"
                    and (o["metadata"].get("labels") or {}).get(f"rbac.authorization.k8s.io/{label}") == "true"]
            for label in ("aggregate-to-view", "aggregate-to-edit")
        }
        wrong += users_cases(authorizer, aggregated)
        packages = yaml.safe_load((ci / "values-agent.yaml").read_text())["agent"]["packageRepository"]
        for problem in pod_problems(rendered, "logind", "upkeep-agent", packages):
            print(f"  FAIL agent pod (logind): {problem}")
            wrong += 1

        print("\n-- agent in namespace a, operator watching a and b (values-full.yaml)")
        rendered = objects("values-full.yaml")
        authorizer = Authorizer(rendered)
        allowed, denied = agent_cases("a")
        denied += every(("patch",), "upgradetasks.upkeep.dev/status", "b")
        for subject, label in (
            (ServiceAccount(NAMESPACE, "upkeep-node-agent"), "agent DaemonSet"),
            (ServiceAccount(NAMESPACE, "upkeep-host-db-2.example.com"), "external host db-2.example.com"),
        ):
            wrong += check(label, authorizer, subject, allowed, denied)
        operator = ServiceAccount(NAMESPACE, "upkeep-operator")
        allowed, denied = operator_cases(["a"])
        denied += [*every(READ, "hosts.upkeep.dev", ELSEWHERE), *every(READ, "patchjobs.upkeep.dev", ELSEWHERE)]
        wrong += check("operator", authorizer, operator, allowed, denied)
        packages = yaml.safe_load((ci / "values-full.yaml").read_text())["agent"]["packageRepository"]
        for problem in pod_problems(rendered, "systemctl", "upkeep-node-agent", packages):
            print(f"  FAIL agent pod (systemctl): {problem}")
            wrong += 1

        print("\n-- default values: no agent")
        rendered = objects()
        authorizer = Authorizer(rendered)
        kinds = sorted({o["kind"] for o in rendered})
        if "DaemonSet" in kinds or "ValidatingAdmissionPolicy" in kinds:
            print(f"  FAIL the agent is opt-in, yet the defaults render {kinds}")
            wrong += 1
        wrong += check("agent DaemonSet", authorizer, ServiceAccount(NAMESPACE, "upkeep-agent"), [], agent_cases(NAMESPACE)[0])

    print(f"\nprivileges: {'ok' if not wrong else f'{wrong} wrong answer(s)'}")
    return 1 if wrong else 0


if __name__ == "__main__":
    if len(sys.argv) != 2:
        sys.exit(__doc__)
    sys.exit(main(sys.argv[1]))
