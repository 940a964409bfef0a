//! The real `kubectl` against `upkeep simulate --serve`, as a user tries upkeep without a
//! cluster: `get`, `get -w`, `describe` (with the task's Events), `explain` (every field of every
//! upkeep kind, and built-ins), `apply` of a MaintenanceWindow while the run waits for it (the
//! running controllers reconcile it and the upgrade goes on), `delete`, and `drain`, whose
//! evictions the in-memory API refuses while a PodDisruptionBudget allows no disruption.
//!
//! kubectl is found through `UPKEEP_KUBECTL` (a path; `.ci/run` sets it), else in
//! `.ci/cache/bin/` (where `.ci/run` installs one when the machine has none), else on `PATH`.
//! Without it a test fails when `CI=true`, and is skipped with a printed reason otherwise. Each
//! kubectl runs with a kubeconfig, home and cache of its test's own, so no user configuration or
//! discovery cache leaks in.

use std::collections::BTreeSet;
use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use serde_json::Value;

/// How long a test waits for the simulation to get somewhere (real time).
const PATIENCE: Duration = Duration::from_secs(120);

/// The kubectl to run, or `None` (with the reason printed) on a developer machine without one.
fn kubectl_program(test: &str) -> Option<PathBuf> {
    let cached = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join(".ci/cache/bin/kubectl");
    let found = match std::env::var_os("UPKEEP_KUBECTL") {
        Some(path) => Some(PathBuf::from(path)).filter(|p| p.is_file()),
        None if cached.is_file() => Some(cached),
        None => std::env::var_os("PATH").and_then(|paths| {
            std::env::split_paths(&paths)
                .map(|dir| dir.join("kubectl"))
                .find(|p| p.is_file())
        }),
    };
    if found.is_none() {
        let reason = "kubectl not found (set UPKEEP_KUBECTL, or run .ci/run once: it installs one into .ci/cache/bin)";
        if std::env::var("CI").as_deref() == Ok("true") {
            panic!("{test}: {reason}; CI must run the kubectl tests");
        }
        eprintln!("SKIPPED {test}: {reason}");
    }
    found
}

/// `upkeep simulate --serve 127.0.0.1:0` running in the background; killed when dropped.
struct Simulation {
    child: Child,
    url: String,
    dir: tempfile::TempDir,
}

impl Drop for Simulation {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Simulation {
    /// Writes `files` into a fresh directory and runs `upkeep simulate` on them, serving the
    /// API; returns once the server listens.
    fn start(files: &[(&str, &str)], args: &[&str]) -> Self {
        let dir = tempfile::tempdir().unwrap();
        for (name, text) in files {
            std::fs::write(dir.path().join(name), text).unwrap();
        }
        let log = dir.path().join("simulate.log");
        let child = Command::new(env!("CARGO_BIN_EXE_upkeep"))
            .current_dir(dir.path())
            .args(["simulate", "--serve", "127.0.0.1:0"])
            .args(args)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(std::fs::File::create(&log).unwrap())
            .spawn()
            .unwrap();
        let mut sim = Self {
            child,
            url: String::new(),
            dir,
        };
        let deadline = Instant::now() + PATIENCE;
        loop {
            let text = std::fs::read_to_string(&log).unwrap_or_default();
            if let Some(rest) = text.split("serving the simulated API at ").nth(1) {
                sim.url = rest.split_whitespace().next().unwrap().to_string();
                return sim;
            }
            if let Ok(Some(status)) = sim.child.try_wait() {
                panic!("upkeep simulate exited with {status}:\n{text}");
            }
            assert!(
                Instant::now() < deadline,
                "upkeep simulate never served:\n{text}"
            );
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    fn path(&self, name: &str) -> PathBuf {
        self.dir.path().join(name)
    }
}

/// kubectl pointed at one simulation, with a configuration of its own.
struct Kubectl {
    program: PathBuf,
    server: String,
    home: tempfile::TempDir,
}

impl Kubectl {
    fn new(program: PathBuf, sim: &Simulation) -> Self {
        let home = tempfile::tempdir().unwrap();
        std::fs::write(home.path().join("config"), "").unwrap();
        Self {
            program,
            server: sim.url.clone(),
            home,
        }
    }

    fn command(&self, args: &[&str]) -> Command {
        let mut command = Command::new(&self.program);
        command
            .env("HOME", self.home.path())
            .env("KUBECONFIG", self.home.path().join("config"))
            .arg("--server")
            .arg(&self.server)
            .arg("--cache-dir")
            .arg(self.home.path().join("cache"))
            .args(args)
            .stdin(Stdio::null());
        command
    }

    fn run(&self, args: &[&str]) -> Output {
        self.command(args).output().unwrap()
    }

    /// Runs kubectl, which must succeed; its standard output.
    fn ok(&self, args: &[&str]) -> String {
        let out = self.run(args);
        assert!(
            out.status.success(),
            "kubectl {} failed: {}\n{}",
            args.join(" "),
            String::from_utf8_lossy(&out.stderr),
            String::from_utf8_lossy(&out.stdout)
        );
        String::from_utf8(out.stdout).unwrap()
    }

    /// Runs kubectl until its output satisfies `done`, or fails after [`PATIENCE`].
    fn until(&self, args: &[&str], done: impl Fn(&str) -> bool) -> String {
        let deadline = Instant::now() + PATIENCE;
        loop {
            let out = self.run(args);
            let text = String::from_utf8_lossy(&out.stdout).into_owned();
            if out.status.success() && done(&text) {
                return text;
            }
            assert!(
                Instant::now() < deadline,
                "kubectl {} never got there; last output:\n{text}{}",
                args.join(" "),
                String::from_utf8_lossy(&out.stderr)
            );
            std::thread::sleep(Duration::from_millis(200));
        }
    }
}

/// A long-running kubectl (`get -w`) whose output lines arrive on a channel; killed when
/// dropped.
struct Watching {
    child: Child,
    lines: mpsc::Receiver<String>,
    seen: Vec<String>,
}

impl Watching {
    fn start(kubectl: &Kubectl, args: &[&str]) -> Self {
        let mut child = kubectl
            .command(args)
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        let stdout = child.stdout.take().unwrap();
        let (send, lines) = mpsc::channel();
        std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines().map_while(Result::ok) {
                if send.send(line).is_err() {
                    break;
                }
            }
        });
        Self {
            child,
            lines,
            seen: Vec::new(),
        }
    }

    /// Waits for a line satisfying `wanted`; every line seen so far.
    fn wait_for(&mut self, wanted: impl Fn(&str) -> bool) -> &[String] {
        let deadline = Instant::now() + PATIENCE;
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            match self.lines.recv_timeout(left) {
                Ok(line) => {
                    let hit = wanted(&line);
                    self.seen.push(line);
                    if hit {
                        return &self.seen;
                    }
                }
                Err(_) => panic!(
                    "the watch never printed the line; it printed:\n{:#?}",
                    self.seen
                ),
            }
        }
    }
}

impl Drop for Watching {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

const FLEET: &str = "apiVersion: upkeep.dev/v1alpha1
kind: Fleet
images:
  - { name: idg7519.oradco.scrypt4, size: 600Mi }
devices:
  - name: dp-1
    timings: { quiesce: 10s, unquiesce: 10s, upgrade: 2m, uploadRate: 600Mi }
";

/// An upgrade that may start only in the window `tonight`, which does not exist yet.
const UPGRADE: &str = "apiVersion: upkeep.dev/v1alpha1
kind: FirmwareUpgrade
metadata:
  name: fw
spec:
  image: idg7519.oradco.scrypt4
  targets: { names: [dp-1] }
  maintenanceWindows: [tonight]
  outsideWindow: Wait
  maxWait: 168h
";

/// The window, open for all of June 2026.
const WINDOW: &str = "apiVersion: upkeep.dev/v1alpha1
kind: MaintenanceWindow
metadata:
  name: tonight
spec:
  type: Maintenance
  start: \"2026-06-01T00:00:00Z\"
  end: \"2026-06-30T00:00:00Z\"
";

/// The dotted field paths a schema describes, as `kubectl explain --recursive` lists them
/// (an array's or a map's item fields under the field itself).
fn schema_paths(schema: &Value, prefix: &str, out: &mut BTreeSet<String>) {
    let mut node = schema;
    loop {
        if let Some(items) = node.get("items") {
            node = items;
        } else if let Some(values) = node.get("additionalProperties").filter(|v| v.is_object()) {
            node = values;
        } else {
            break;
        }
    }
    let Some(properties) = node.get("properties").and_then(Value::as_object) else {
        return;
    };
    for (name, child) in properties {
        let path = if prefix.is_empty() {
            name.clone()
        } else {
            format!("{prefix}.{name}")
        };
        out.insert(path.clone());
        schema_paths(child, &path, out);
    }
}

/// The dotted field paths of `kubectl explain KIND --recursive` (its `FIELDS:` section,
/// indented two spaces a level).
fn explained_paths(output: &str) -> BTreeSet<String> {
    let mut out = BTreeSet::new();
    let mut stack: Vec<String> = Vec::new();
    let fields = output.split("FIELDS:\n").nth(1).unwrap_or_default();
    for line in fields.lines() {
        let content = line.trim_start();
        if content.is_empty() || content.starts_with("enum:") {
            continue;
        }
        let level = (line.len() - content.len()) / 2;
        let name = content.split('\t').next().unwrap().trim().to_string();
        stack.truncate(level.saturating_sub(1));
        stack.push(name);
        out.insert(stack.join("."));
    }
    out
}

#[test]
fn kubectl_follows_a_simulation_and_a_window_applied_during_it() {
    let Some(program) =
        kubectl_program("kubectl_follows_a_simulation_and_a_window_applied_during_it")
    else {
        return;
    };
    let sim = Simulation::start(
        &[
            ("fleet.yaml", FLEET),
            ("fw.yaml", UPGRADE),
            ("window.yaml", WINDOW),
        ],
        &[
            "--fleet",
            "fleet.yaml",
            "--start",
            "2026-06-01T08:00:00Z",
            "--speed",
            "120",
            "fw.yaml",
        ],
    );
    let kubectl = Kubectl::new(program, &sim);

    // The task exists and waits for a window that does not exist yet.
    let listed = kubectl.until(&["get", "fwu,ut"], |out| out.contains("fw-dp-1"));
    assert!(listed.contains("firmwareupgrade.upkeep.dev/fw"), "{listed}");
    let code = kubectl.ok(&["get", "ut", "fw-dp-1", "-o", "jsonpath={.status.code}"]);
    assert_ne!(code, "SUCCESS");

    let mut watch = Watching::start(&kubectl, &["get", "ut", "-w"]);
    let first = watch.wait_for(|line| line.contains("fw-dp-1")).to_vec();
    assert!(first[0].starts_with("NAME"), "{first:?}");

    // Applied while the run waits: the window controller reconciles it, the upgrade goes on.
    let applied = kubectl.ok(&["apply", "-f", sim.path("window.yaml").to_str().unwrap()]);
    assert_eq!(
        applied.trim(),
        "maintenancewindow.upkeep.dev/tonight created"
    );
    kubectl.until(
        &["get", "mw", "tonight", "-o", "jsonpath={.status.open}"],
        |out| out == "true",
    );
    let lines = watch.wait_for(|line| line.contains("fw-dp-1") && line.contains("SUCCESS"));
    assert!(lines.len() >= 3, "the watch saw the task move: {lines:?}");
    drop(watch);

    // describe lists the task's Events, found through the core API's field selector.
    let described = kubectl.ok(&["describe", "ut", "fw-dp-1"]);
    let events = described.split("\nEvents:").nth(1).unwrap_or_default();
    assert!(!events.trim_start().starts_with("<none>"), "{described}");
    for word in ["Type", "Reason", "From", "Message", "Normal", "Success"] {
        assert!(
            events.contains(word),
            "{word} in the Events of:\n{described}"
        );
    }

    // get events has a real server's columns.
    let all_events = kubectl.ok(&["get", "events"]);
    let header: Vec<&str> = all_events
        .lines()
        .next()
        .unwrap()
        .split_whitespace()
        .collect();
    assert_eq!(
        header,
        ["LAST", "SEEN", "TYPE", "REASON", "OBJECT", "MESSAGE"]
    );
    assert!(all_events.contains("upgradetask/fw-dp-1"), "{all_events}");
    let success = kubectl.ok(&[
        "get",
        "events",
        "--field-selector",
        "involvedObject.name=fw-dp-1,reason=Success",
        "-o",
        "name",
    ]);
    assert_eq!(success.lines().count(), 1, "{success}");

    // explain: one field, then every field of every upkeep kind.
    let rollout = kubectl.ok(&["explain", "firmwareupgrade.spec.rollout"]);
    for expected in [
        "KIND:       FirmwareUpgrade",
        "FIELD: rollout <Object>",
        "maxConcurrent",
        "errorPolicy",
    ] {
        assert!(rollout.contains(expected), "{expected} in:\n{rollout}");
    }
    for crd in upkeep::api::crds() {
        let plural = crd.spec.names.plural.clone();
        let version = crd.spec.versions.iter().find(|v| v.storage).unwrap();
        let schema = serde_json::to_value(
            version
                .schema
                .as_ref()
                .and_then(|s| s.open_api_v3_schema.as_ref())
                .unwrap(),
        )
        .unwrap();
        let mut expected = BTreeSet::new();
        schema_paths(&schema, "", &mut expected);
        let explained = explained_paths(&kubectl.ok(&["explain", &plural, "--recursive"]));
        let missing: Vec<&String> = expected
            .iter()
            .filter(|p| !p.starts_with("metadata.") && !explained.contains(*p))
            .collect();
        assert!(
            missing.is_empty(),
            "kubectl explain {plural} lacks {missing:?}"
        );
        assert!(
            explained.contains("metadata.ownerReferences"),
            "{plural}: {explained:?}"
        );
    }
    let node_name = kubectl.ok(&["explain", "pods.spec.nodeName"]);
    assert!(
        node_name.contains("FIELD: nodeName <string>"),
        "{node_name}"
    );
    let pdb = kubectl.ok(&["explain", "pdb.spec.minAvailable"]);
    assert!(pdb.contains("KIND:       PodDisruptionBudget"), "{pdb}");

    // delete.
    let deleted = kubectl.ok(&["delete", "mw", "tonight"]);
    assert_eq!(
        deleted.trim(),
        "maintenancewindow.upkeep.dev \"tonight\" deleted"
    );
    let left = kubectl.run(&["get", "mw"]);
    assert!(
        String::from_utf8_lossy(&left.stderr).contains("No resources found"),
        "{left:?}"
    );
}

/// Node, ReplicaSet, PodDisruptionBudget (one pod may go) and two pods on the node.
const WORKLOAD: &str = "apiVersion: v1
kind: Node
metadata: { name: node-1 }
status:
  conditions: [{ type: Ready, status: \"True\" }]
---
apiVersion: apps/v1
kind: ReplicaSet
metadata: { name: web }
spec:
  replicas: 2
  selector: { matchLabels: { app: web } }
  template:
    metadata: { labels: { app: web } }
    spec: { containers: [{ name: web, image: nginx }] }
---
apiVersion: policy/v1
kind: PodDisruptionBudget
metadata: { name: web }
spec:
  minAvailable: 1
  selector: { matchLabels: { app: web } }
";

fn pod_manifest(dir: &Path, name: &str, owner_uid: &str) -> PathBuf {
    let path = dir.join(format!("{name}.yaml"));
    std::fs::write(
        &path,
        format!(
            "apiVersion: v1
kind: Pod
metadata:
  name: {name}
  labels: {{ app: web }}
  ownerReferences: [{{ apiVersion: apps/v1, kind: ReplicaSet, name: web, uid: {owner_uid}, controller: true }}]
spec:
  nodeName: node-1
  containers: [{{ name: web, image: nginx }}]
"
        ),
    )
    .unwrap();
    path
}

#[test]
fn kubectl_drain_evicts_only_what_the_disruption_budget_allows() {
    let Some(program) =
        kubectl_program("kubectl_drain_evicts_only_what_the_disruption_budget_allows")
    else {
        return;
    };
    // A run with nothing to upgrade ends at once; the API stays served.
    let sim = Simulation::start(
        &[
            ("fleet.yaml", FLEET),
            ("window.yaml", WINDOW),
            ("workload.yaml", WORKLOAD),
        ],
        &[
            "--fleet",
            "fleet.yaml",
            "--start",
            "2026-06-01T08:00:00Z",
            "window.yaml",
        ],
    );
    let kubectl = Kubectl::new(program, &sim);
    kubectl.ok(&["apply", "-f", sim.path("workload.yaml").to_str().unwrap()]);
    let uid = kubectl.ok(&["get", "rs", "web", "-o", "jsonpath={.metadata.uid}"]);
    for name in ["web-1", "web-2"] {
        let manifest = pod_manifest(sim.dir.path(), name, &uid);
        kubectl.ok(&["apply", "-f", manifest.to_str().unwrap()]);
        kubectl.ok(&[
            "patch",
            "pod",
            name,
            "--subresource=status",
            "--type=merge",
            "-p",
            r#"{"status":{"phase":"Running","conditions":[{"type":"Ready","status":"True"}]}}"#,
        ]);
    }
    let budget = kubectl.ok(&["get", "pdb", "web"]);
    let row: Vec<&str> = budget.lines().nth(1).unwrap().split_whitespace().collect();
    assert_eq!(&row[..4], ["web", "1", "N/A", "1"], "{budget}");
    let on_node = kubectl.ok(&[
        "get",
        "pods",
        "--field-selector",
        "spec.nodeName=node-1",
        "-o",
        "name",
    ]);
    assert_eq!(on_node.lines().count(), 2, "{on_node}");

    let drain = kubectl.run(&["drain", "node-1", "--ignore-daemonsets", "--timeout=8s"]);
    let said = format!(
        "{}{}",
        String::from_utf8_lossy(&drain.stdout),
        String::from_utf8_lossy(&drain.stderr)
    );
    assert!(!drain.status.success(), "{said}");
    assert_eq!(said.matches(" evicted").count(), 1, "{said}");
    assert!(
        said.contains("Cannot evict pod as it would violate the pod's disruption budget."),
        "{said}"
    );
    let left = kubectl.ok(&["get", "pods", "-o", "name"]);
    assert_eq!(left.lines().count(), 1, "{left}");
    let node = kubectl.ok(&["get", "node", "node-1"]);
    assert!(node.contains("Ready,SchedulingDisabled"), "{node}");
    let budget = kubectl.ok(&[
        "get",
        "pdb",
        "web",
        "-o",
        "jsonpath={.status.disruptionsAllowed}",
    ]);
    assert_eq!(budget, "0");

    // Without the budget the drain finishes.
    kubectl.ok(&["delete", "pdb", "web"]);
    let drained = kubectl.ok(&["drain", "node-1", "--ignore-daemonsets", "--timeout=30s"]);
    assert!(drained.contains("node/node-1 drained"), "{drained}");
    let none = kubectl.run(&["get", "pods"]);
    assert!(
        String::from_utf8_lossy(&none.stderr).contains("No resources found"),
        "{none:?}"
    );
    kubectl.ok(&["uncordon", "node-1"]);
    let node = kubectl.ok(&["get", "node", "node-1"]);
    assert!(!node.contains("SchedulingDisabled"), "{node}");
}
