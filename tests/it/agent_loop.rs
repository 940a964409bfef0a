//! The real agent loop (`upkeep::agent::run`) against the in-memory API with the real operator,
//! on the virtual clock: it registers its Host, renews its Lease and drives its PatchJob task
//! from `2032 Pending` to `2036 Completed` — through a real apt sandbox (dpkg's database of the
//! sandbox changed, the machine's own untouched), and on the simulated host; the reboot is
//! done by a rebooter that gives the host a new boot id, after which the test restarts the agent
//! as the host's init system would. The agent is also stopped dead at checkpoints (right after a
//! journal naming a Start was written, after an operation's result was recorded, after a status
//! write) and at arbitrary instants, restarted, and the task ends the same with no install and no
//! reboot run twice. And `upkeep host patch --root` on an apt sandbox.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use futures::FutureExt as _;
use futures::future::BoxFuture;
use jiff::SignedDuration;
use kube::Api;
use kube::api::PostParams;
use serde_json::{Value, json};
use tokio_util::sync::CancellationToken;
use upkeep::agent::backends::simulated::{Fault, SimulatedHost};
use upkeep::agent::driver::{Checkpoint, Hook};
use upkeep::agent::machine::{FactsSource, Machine, RealInstallers, RebootMethod, RootFacts};
use upkeep::agent::package_fetch::PackageRepository;
use upkeep::agent::products::read_history;
use upkeep::agent::reboot::{RebootError, Rebooter};
use upkeep::agent::run::{AgentConfig, run};
use upkeep::api::Host;
use upkeep::api::host::{EventType, HistoryAction, HostProduct, RebootRequired};
use upkeep::engine::patch::agent::Op;
use upkeep::engine::updates::Pin;
use upkeep::sim::fleet_file::Fleet;
use upkeep::sim::runner::{Scenario, World};

use crate::common::on_virtual_clock;
use crate::host_sandbox::apt::{self as apt_sandbox, AptSandbox};
use crate::host_sandbox::{assert_unchanged, require, snapshot};
use crate::packages::fixtures as pak_fixtures;

const START: &str = "2026-11-23T09:00:00Z";
const HOST: &str = "web-1";

/// The machine's own apt and dpkg state: none of it may change.
const MACHINE_DPKG: &[&str] = &["/var/lib/dpkg/status", "/etc/apt/sources.list"];

pub(crate) async fn world() -> World {
    let fleet = Fleet::from_yaml("apiVersion: upkeep.dev/v1alpha1\nkind: Fleet\n").unwrap();
    World::new(&Scenario {
        fleet,
        manifests: Vec::new(),
        start: START.parse().unwrap(),
        horizon: SignedDuration::from_hours(48),
    })
    .await
    .unwrap()
}

async fn apply_job(world: &World, spec: Value) {
    let job: upkeep::api::PatchJob = serde_json::from_value(json!({
        "apiVersion": "upkeep.dev/v1alpha1", "kind": "PatchJob",
        "metadata": {"name": "patch", "namespace": "default"}, "spec": spec}))
    .unwrap();
    Api::<upkeep::api::PatchJob>::namespaced(world.server.client(), "default")
        .create(&PostParams::default(), &job)
        .await
        .unwrap();
}

fn task(world: &World) -> Option<Value> {
    world
        .server
        .snapshot("UpgradeTask")
        .into_iter()
        .find(|t| t.pointer("/spec/target") == Some(&json!(HOST)))
}

fn terminal(world: &World) -> bool {
    task(world).and_then(|t| t.pointer("/status/terminal").cloned()) == Some(json!(true))
}

fn status_code(world: &World) -> Option<u64> {
    task(world)?.pointer("/status/statusCode")?.as_u64()
}

/// The numbers of the codes the task passed, oldest first.
fn history(world: &World) -> Vec<u64> {
    task(world)
        .and_then(|t| t.pointer("/status/history").cloned())
        .and_then(|h| {
            h.as_array()
                .map(|a| a.iter().filter_map(|e| e["statusCode"].as_u64()).collect())
        })
        .unwrap_or_default()
}

/// A hook that stops the agent once, at `at`.
fn kill_once_at(at: Checkpoint) -> (Hook, Arc<AtomicBool>) {
    let fired = Arc::new(AtomicBool::new(false));
    let seen = fired.clone();
    let hook: Hook = Arc::new(move |c: &Checkpoint| *c == at && !seen.swap(true, Ordering::SeqCst));
    (hook, fired)
}

/// How the test kills the agent: at a checkpoint (the hook), and at instants after a start;
/// and whether its connection to the API server fails (every request, while the flag is set).
#[derive(Default)]
struct Kills {
    hook: Option<Hook>,
    after: Vec<Duration>,
    outage: Option<Arc<AtomicBool>>,
}

/// A client of the world's API server whose every request fails with a connection error while
/// `down` is set, as when the API server is unreachable from the host.
fn client_with_outage(world: &World, down: Arc<AtomicBool>) -> kube::Client {
    use tower::ServiceExt as _;
    let service = world.server.service();
    let failing = tower::service_fn(move |request: http::Request<kube::client::Body>| {
        let service = service.clone();
        let down = down.clone();
        async move {
            if down.load(Ordering::SeqCst) {
                return Err::<_, tower::BoxError>("connection refused (simulated outage)".into());
            }
            Ok(service.oneshot(request).await?)
        }
    });
    kube::Client::new(failing, "default")
}

/// Runs the agent of `HOST` on `machine`, restarting it when it stops (a hook killed it), when
/// the boot counter changes (the host rebooted), and at each instant of `kill_after` (measured
/// from the last start), until `done` (the task is terminal, and whatever else the test waits
/// for) or `limit` passes. The number of starts.
async fn supervise(
    world: &World,
    done: &dyn Fn(&World) -> bool,
    machine: &Machine,
    state_dir: &Path,
    boots: tokio::sync::watch::Receiver<u64>,
    kills: Kills,
    limit: Duration,
) -> usize {
    supervise_with(world, done, machine, state_dir, boots, kills, limit, None).await
}

/// [`supervise`] with the agent's package repository.
#[allow(clippy::too_many_arguments)]
async fn supervise_with(
    world: &World,
    done: &dyn Fn(&World) -> bool,
    machine: &Machine,
    state_dir: &Path,
    mut boots: tokio::sync::watch::Receiver<u64>,
    kills: Kills,
    limit: Duration,
    repository: Option<PackageRepository>,
) -> usize {
    let deadline = tokio::time::Instant::now() + limit;
    let mut starts = 0;
    let Kills {
        hook,
        after: mut kill_after,
        outage,
    } = kills;
    let client = match outage {
        Some(down) => client_with_outage(world, down),
        None => world.server.client(),
    };
    kill_after.reverse();
    while tokio::time::Instant::now() < deadline {
        starts += 1;
        let mut config = AgentConfig::new(HOST, "default", state_dir);
        config.hook = hook.clone();
        config.package_repository = repository.clone();
        let stop = CancellationToken::new();
        let mut agent = tokio::spawn(run(
            client.clone(),
            config,
            machine.clone(),
            world.clock,
            stop.clone(),
        ));
        let kill = kill_after.pop();
        let killed = async {
            match kill {
                Some(after) => tokio::time::sleep(after).await,
                None => std::future::pending().await,
            }
        };
        tokio::pin!(killed);
        loop {
            tokio::select! {
                result = &mut agent => {
                    result.unwrap().unwrap();
                    break;
                }
                _ = boots.changed() => {
                    agent.abort();
                    let _ = agent.await;
                    break;
                }
                () = &mut killed => {
                    agent.abort();
                    let _ = agent.await;
                    break;
                }
                () = tokio::time::sleep(Duration::from_secs(5)) => {
                    if done(world) || tokio::time::Instant::now() >= deadline {
                        stop.cancel();
                        let _ = agent.await;
                        return starts;
                    }
                }
            }
        }
    }
    starts
}

/// A rebooter for a sandbox root: the "reboot" gives the root a new boot id, clears the
/// runtime reboot flag as a boot clears /run, and bumps the boot counter the test watches.
struct SandboxRebooter {
    root: PathBuf,
    boots: tokio::sync::watch::Sender<u64>,
}

impl SandboxRebooter {
    fn write_boot_id(root: &Path, boot: u64) {
        let path = root.join("proc/sys/kernel/random/boot_id");
        std::fs::create_dir_all(path.parent().unwrap()).unwrap();
        std::fs::write(path, format!("sandbox-boot-{boot}\n")).unwrap();
    }
}

impl Rebooter for SandboxRebooter {
    fn reboot(&self) -> BoxFuture<'_, Result<(), RebootError>> {
        async move {
            let boot = *self.boots.borrow() + 1;
            Self::write_boot_id(&self.root, boot);
            for flag in ["var/run/reboot-required", "var/run/reboot-required.pkgs"] {
                let _ = std::fs::remove_file(self.root.join(flag));
            }
            self.boots.send_replace(boot);
            Ok(())
        }
        .boxed()
    }
}

fn pin(name: &str, version: &str) -> Pin {
    Pin {
        name: name.into(),
        version: version.into(),
    }
}

#[test]
fn the_agent_patches_a_real_apt_sandbox_from_pending_to_completed_with_a_reboot() {
    if !require("agent on apt", apt_sandbox::TOOLS) {
        return;
    }
    on_virtual_clock(|| async {
        let machine_state = snapshot(MACHINE_DPKG);
        let sandbox = AptSandbox::new(&apt_sandbox::standard_suites()).await;
        SandboxRebooter::write_boot_id(&sandbox.root, 1);
        let (boots, watch) = tokio::sync::watch::channel(1);
        let mut machine = Machine::real(
            Some(&sandbox.root),
            RebootMethod::Systemctl,
            Arc::new(jiff::Timestamp::now),
        )
        .unwrap();
        machine.rebooter = Arc::new(SandboxRebooter {
            root: sandbox.root.clone(),
            boots,
        });
        // The installed base, older than what the security suites offer.
        let pm = machine.packages.clone().unwrap();
        pm.refresh_and_scan().await.unwrap();
        pm.install(&[
            pin("kernel-x", "1.0"),
            pin("libfoo", "1.0"),
            pin("tool", "1.0"),
        ])
        .await
        .unwrap();
        let before = String::from_utf8_lossy(&sandbox.status()).into_owned();

        let world = world().await;
        let stop = CancellationToken::new();
        let operator = tokio::spawn(world.operator(stop.clone()));
        apply_job(&world, json!({"hosts": {"names": [HOST]}})).await;
        let state = tempfile::tempdir().unwrap();
        // Done when the task ended and the Host reports the new boot without a reboot flag, and
        // the updates scanned after it (the first scan may find the lock held by an apt-get
        // the agent's previous run left running: it is tried again a minute later).
        let settled = |world: &World| {
            let host = world.server.snapshot("Host").into_iter().next();
            terminal(world)
                && host.is_some_and(|h| {
                    h.pointer("/status/agent/bootId") == Some(&json!("sandbox-boot-2"))
                        && h.pointer("/status/rebootRequired") == Some(&json!("No"))
                        && h.pointer("/status/updates/checkedAt").is_some()
                })
        };
        let starts = supervise(
            &world,
            &settled,
            &machine,
            state.path(),
            watch,
            Kills::default(),
            // Virtual time runs on while apt works in real time.
            Duration::from_secs(48 * 3600),
        )
        .await;
        let t = task(&world).unwrap();
        assert_eq!(status_code(&world), Some(2036), "{t:#}");
        assert_eq!(
            history(&world),
            [2032, 2055, 2044, 2031, 2033, 2034, 2035, 2045, 2036],
            "{t:#}"
        );
        assert_eq!(starts, 2, "one restart, after the reboot");
        // The security updates were installed, the plain one was not.
        let after = String::from_utf8_lossy(&sandbox.status()).into_owned();
        assert_ne!(before, after);
        for (package, version) in [("kernel-x", "1.1"), ("libfoo", "1.1"), ("tool", "1.0")] {
            let entry = after
                .split("\n\n")
                .find(|e| e.contains(&format!("Package: {package}\n")))
                .unwrap();
            assert!(entry.contains(&format!("Version: {version}\n")), "{entry}");
        }
        // The Host the agent created reports what it found.
        let host = Api::<Host>::namespaced(world.server.client(), "default")
            .get(HOST)
            .await
            .unwrap();
        let status = host.status.unwrap();
        assert_eq!(status.os.id, "debian");
        assert_eq!(status.agent.boot_id, "sandbox-boot-2");
        assert!(!status.agent.version.is_empty());
        assert_eq!(status.reboot_required, RebootRequired::No);
        assert_eq!(status.updates.available, 1, "tool 2.0 is still offered");
        assert_eq!(status.updates.security, 0);
        assert!(status.agent.online, "the operator sees the Lease");
        stop.cancel();
        let _ = operator.await;
        assert_unchanged(&machine_state, &snapshot(MACHINE_DPKG));
    });
}

/// One run of the simulated scenario: a security update that needs a reboot, and a plain one.
struct SimRun {
    codes: Vec<u64>,
    host: SimulatedHost,
    starts: usize,
}

async fn simulated_run(
    hook: Option<Hook>,
    kill_after: Vec<Duration>,
    fault: Option<Fault>,
) -> SimRun {
    let host = SimulatedHost::new(HOST);
    host.install_package("kernel", "1.0")
        .install_package("tool", "1.0")
        .offer("kernel", "1.1", true, true)
        .offer("tool", "2.0", false, false);
    if let Some(fault) = fault {
        host.set_fault(fault, Some("E: simulated"));
    }
    let world = world().await;
    let stop = CancellationToken::new();
    let operator = tokio::spawn(world.operator(stop.clone()));
    apply_job(
        &world,
        json!({"hosts": {"names": [HOST]}, "actions": {"post": [{"name": "smoke", "command": "true"}]}}),
    )
    .await;
    let state = tempfile::tempdir().unwrap();
    // Done once the task ended and the agent removed its journal (an ended task keeps none).
    let tasks_dir = state.path().join("tasks");
    let done = |world: &World| {
        terminal(world)
            && std::fs::read_dir(&tasks_dir).is_ok_and(|mut entries| entries.next().is_none())
    };
    let starts = supervise(
        &world,
        &done,
        &host.machine(),
        state.path(),
        host.boots(),
        Kills {
            hook,
            after: kill_after,
            outage: None,
        },
        Duration::from_secs(4 * 3600),
    )
    .await;
    assert!(
        done(&world),
        "the task ended and its journal was removed: {:?}",
        std::fs::read_dir(&tasks_dir).map(|e| e.count())
    );
    let codes = history(&world);
    stop.cancel();
    let _ = operator.await;
    SimRun {
        codes,
        host,
        starts,
    }
}

const COMPLETED: [u64; 9] = [2032, 2055, 2044, 2031, 2033, 2034, 2035, 2045, 2036];

#[test]
fn the_agent_on_a_simulated_host_completes_and_reboots_once() {
    on_virtual_clock(|| async {
        let run = simulated_run(None, Vec::new(), None).await;
        assert_eq!(run.codes, COMPLETED);
        assert_eq!((run.host.installs(), run.host.reboots()), (1, 1));
        assert_eq!(run.host.installed_version("kernel").as_deref(), Some("1.1"));
        assert_eq!(run.host.installed_version("tool").as_deref(), Some("1.0"));
        assert_eq!(run.starts, 2);
    });
}

#[test]
fn faults_end_the_task_in_their_codes() {
    on_virtual_clock(|| async {
        let run = simulated_run(None, Vec::new(), Some(Fault::Download)).await;
        assert_eq!(run.codes.last(), Some(&2031), "{:?}", run.codes);
        assert_eq!(run.host.installs(), 0);
        let run = simulated_run(None, Vec::new(), Some(Fault::Install)).await;
        assert_eq!(run.codes.last(), Some(&2046), "{:?}", run.codes);
        let run = simulated_run(None, Vec::new(), Some(Fault::Reboot)).await;
        assert_eq!(run.codes.last(), Some(&2046), "{:?}", run.codes);
        assert_eq!(run.host.reboots(), 0);
    });
}

/// Runs a one-host job whose agent loses the API for `outage` from the moment the install
/// starts (every request fails: status writes, Lease renewals, watches), until the task has
/// ended and the outage is over. The task, and the simulated host.
async fn run_with_outage(outage: Duration) -> (Value, SimulatedHost) {
    let host = SimulatedHost::new(HOST);
    host.install_package("kernel", "1.0")
        .offer("kernel", "1.1", true, true)
        .set_durations(Duration::from_secs(20), Duration::from_secs(120));
    let world = world().await;
    let stop = CancellationToken::new();
    let operator = tokio::spawn(world.operator(stop.clone()));
    apply_job(&world, json!({"hosts": {"names": [HOST]}})).await;
    let down = Arc::new(AtomicBool::new(false));
    let over = Arc::new(AtomicBool::new(false));
    let cut = {
        let (down, over, world) = (down.clone(), over.clone(), world.server.clone());
        tokio::spawn(async move {
            let code = |w: &upkeep::sim::apiserver::ApiServer| {
                w.snapshot("UpgradeTask")
                    .first()
                    .and_then(|t| t.pointer("/status/statusCode").and_then(Value::as_u64))
            };
            while code(&world) != Some(2033) {
                tokio::time::sleep(Duration::from_secs(1)).await;
            }
            down.store(true, Ordering::SeqCst);
            tokio::time::sleep(outage).await;
            down.store(false, Ordering::SeqCst);
            over.store(true, Ordering::SeqCst);
        })
    };
    let state = tempfile::tempdir().unwrap();
    let settled = {
        let over = over.clone();
        move |w: &World| terminal(w) && over.load(Ordering::SeqCst)
    };
    supervise(
        &world,
        &settled,
        &host.machine(),
        state.path(),
        host.boots(),
        Kills {
            outage: Some(down),
            ..Kills::default()
        },
        Duration::from_secs(4 * 3600),
    )
    .await;
    assert!(
        cut.is_finished() && over.load(Ordering::SeqCst),
        "the outage happened"
    );
    // A minute more with the API back: the agent must leave an ended task alone.
    tokio::time::sleep(Duration::from_secs(60)).await;
    let task = task(&world).unwrap();
    stop.cancel();
    let _ = operator.await;
    (task, host)
}

#[test]
fn an_agent_cut_off_from_the_api_mid_install_carries_on_and_completes_once() {
    on_virtual_clock(|| async {
        // Five minutes: shorter than the operator's grace for a silent agent (10 minutes from
        // its last renewal), so the install goes on and the agent catches up afterwards.
        let (task, host) = run_with_outage(Duration::from_secs(300)).await;
        let codes: Vec<u64> = task["status"]["history"]
            .as_array()
            .unwrap()
            .iter()
            .filter_map(|e| e["statusCode"].as_u64())
            .collect();
        assert_eq!(
            codes,
            [2032, 2055, 2044, 2031, 2033, 2034, 2035, 2045, 2036]
        );
        assert_eq!(
            (host.installs(), host.reboots()),
            (1, 1),
            "{:?}",
            host.events()
        );
    });
}

#[test]
fn an_agent_silent_past_the_grace_fails_its_task_on_time_and_never_reboots() {
    on_virtual_clock(|| async {
        // Twenty-five minutes: the operator notices on its own, when the grace after the
        // agent's last renewal ends — not when the agent happens to come back.
        let (task, host) = run_with_outage(Duration::from_secs(1500)).await;
        let status = &task["status"];
        assert_eq!(status["statusCode"], 2046, "{status:#}");
        assert_eq!(status["reason"], "AgentOffline", "{status:#}");
        let patching = status["history"]
            .as_array()
            .unwrap()
            .iter()
            .find(|e| e["statusCode"] == 2033)
            .and_then(|e| e["at"].as_str())
            .unwrap()
            .parse::<jiff::Timestamp>()
            .unwrap();
        let failed = status["finishedAt"]
            .as_str()
            .or(status["history"].as_array().unwrap().last().unwrap()["at"].as_str())
            .unwrap()
            .parse::<jiff::Timestamp>()
            .unwrap();
        let late = failed.duration_since(patching);
        assert!(
            late <= SignedDuration::from_mins(11),
            "failed {late} after the outage began, not at the grace's end: {status:#}"
        );
        // The install was under way and ends on the host; the reboot never comes.
        assert_eq!(
            (host.installs(), host.reboots()),
            (1, 0),
            "{:?}",
            host.events()
        );
    });
}

#[test]
fn a_killed_agent_resumes_and_nothing_runs_twice() {
    on_virtual_clock(|| async {
        let points = [
            Checkpoint::JournalPersisted(Op::Download),
            Checkpoint::OpEnded(Op::Download),
            Checkpoint::JournalPersisted(Op::Install),
            Checkpoint::OpStarted(Op::Install),
            Checkpoint::OpEnded(Op::Install),
            Checkpoint::StatusWritten(2034),
            Checkpoint::JournalPersisted(Op::Reboot),
            Checkpoint::StatusWritten(2045),
            Checkpoint::JournalPersisted(Op::PostAction(0)),
        ];
        for point in points {
            let (hook, fired) = kill_once_at(point.clone());
            let run = simulated_run(Some(hook), Vec::new(), None).await;
            assert!(fired.load(Ordering::SeqCst), "{point:?} was reached");
            assert_eq!(run.codes, COMPLETED, "killed at {point:?}");
            assert_eq!(
                (run.host.installs(), run.host.reboots()),
                (1, 1),
                "killed at {point:?}: {:?}",
                run.host.events()
            );
            // The kill and the reboot each restart the agent, unless the two coincide (a kill
            // that fires while the reboot's restart is already due is that restart).
            assert!(
                (2..=3).contains(&run.starts),
                "killed at {point:?}: {} starts",
                run.starts
            );
        }
        // Killed at arbitrary instants: during the download, during the install, while
        // waiting for the reboot grant.
        for after in [10, 45, 100, 200] {
            let run = simulated_run(None, vec![Duration::from_secs(after)], None).await;
            assert_eq!(run.codes, COMPLETED, "killed after {after}s");
            assert_eq!(
                (run.host.installs(), run.host.reboots()),
                (1, 1),
                "killed after {after}s: {:?}",
                run.host.events()
            );
        }
    });
}

#[test]
fn upkeep_host_patch_on_an_apt_sandbox_stops_at_pending_reboot() {
    if !require("upkeep host patch", apt_sandbox::TOOLS) {
        return;
    }
    let runtime = tokio::runtime::Runtime::new().unwrap();
    let sandbox = runtime.block_on(async {
        let sandbox = AptSandbox::new(&apt_sandbox::standard_suites()).await;
        let machine = Machine::real(
            Some(&sandbox.root),
            RebootMethod::Systemctl,
            Arc::new(jiff::Timestamp::now),
        )
        .unwrap();
        let pm = machine.packages.clone().unwrap();
        pm.refresh_and_scan().await.unwrap();
        pm.install(&[pin("kernel-x", "1.0"), pin("libfoo", "1.0")])
            .await
            .unwrap();
        sandbox
    });
    let machine_state = snapshot(MACHINE_DPKG);
    let upkeep = env!("CARGO_BIN_EXE_upkeep");
    // The repository is served by the runtime above, which keeps running.
    let dry = Command::new(upkeep)
        .args(["host", "patch", "--dry-run", "-o", "json", "--root"])
        .arg(&sandbox.root)
        .output()
        .unwrap();
    assert!(dry.status.success(), "{dry:?}");
    let doc: Value = serde_json::from_slice(&dry.stdout).unwrap();
    assert_eq!(
        doc["selected"],
        json!([{"name": "kernel-x", "version": "1.1"}, {"name": "libfoo", "version": "1.1"}]),
        "{doc:#}"
    );
    let status_before = sandbox.status();
    let out = Command::new(upkeep)
        .args(["host", "patch", "--root"])
        .arg(&sandbox.root)
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "{out:?}");
    for line in [
        "2044 Job Started",
        "2031 Downloaded",
        "2033 Patching",
        "2034 Pending Reboot",
    ] {
        assert!(text.contains(line), "{line} in\n{text}");
    }
    assert_ne!(
        sandbox.status(),
        status_before,
        "the root's dpkg database changed"
    );
    // Again: nothing left to install.
    let again = Command::new(upkeep)
        .args([
            "host",
            "patch",
            "-o",
            "json",
            "--classification",
            "Security",
            "--root",
        ])
        .arg(&sandbox.root)
        .output()
        .unwrap();
    let doc: Value = serde_json::from_slice(&again.stdout).unwrap();
    assert_eq!(doc["statusCode"], json!(2059), "{doc:#}");
    assert!(again.status.success());
    assert_unchanged(&machine_state, &snapshot(MACHINE_DPKG));
    drop(runtime);
}

/// The simulated host's boot id and OS, with products read from real locations and the
/// builtin installer acting on them (what `Machine::real` does for products).
struct RealProducts(SimulatedHost);

impl FactsSource for RealProducts {
    fn os(&self) -> Result<upkeep::api::host::OsStatus, String> {
        self.0.os()
    }
    fn boot_id(&self) -> Result<String, String> {
        FactsSource::boot_id(&self.0)
    }
    fn products(&self, products: &[HostProduct]) -> Vec<upkeep::api::host::ProductStatus> {
        RootFacts::default().products(products)
    }
    fn history(&self, products: &[HostProduct]) -> Vec<upkeep::api::host::HistoryEvent> {
        RootFacts::default().history(products)
    }
}

pub(crate) const FP: &str = "9.0.5-WS-WAS-FP023";

/// A product location, a package repository holding fix pack 23, and the machine that
/// installs into the location.
pub(crate) struct ProductHost {
    _dir: tempfile::TempDir,
    pub(crate) location: PathBuf,
    pub(crate) repository: PathBuf,
    /// The package repository the agent is started with (default: `repository`).
    pub(crate) agent_repository: PackageRepository,
    sim: SimulatedHost,
}

impl ProductHost {
    pub(crate) fn new() -> Self {
        let dir = tempfile::tempdir().unwrap();
        let location = pak_fixtures::product(dir.path());
        let repository = dir.path().join("repo");
        std::fs::create_dir_all(&repository).unwrap();
        pak_fixtures::fix_pack(&repository);
        Self {
            _dir: dir,
            location,
            agent_repository: PackageRepository::Dir(repository.clone()),
            repository,
            sim: SimulatedHost::new(HOST),
        }
    }

    fn machine(&self, world: &World) -> Machine {
        let mut machine = self.sim.machine();
        machine.facts = Arc::new(RealProducts(self.sim.clone()));
        let clock = world.clock;
        machine.installers = Arc::new(RealInstallers {
            now: Arc::new(move || clock.now()),
        });
        machine
    }

    /// The successful package events of the fix pack for `action`.
    pub(crate) fn events(&self, action: HistoryAction) -> usize {
        read_history(&self.location)
            .unwrap()
            .iter()
            .flat_map(|h| &h.events)
            .filter(|e| e.event_type == EventType::Ptf && e.action == action && e.id == FP)
            .filter(|e| e.result == "success")
            .count()
    }
}

pub(crate) async fn create_host(world: &World, location: &Path) {
    let host: Host = serde_json::from_value(json!({
        "apiVersion": "upkeep.dev/v1alpha1", "kind": "Host",
        "metadata": {"name": HOST, "namespace": "default"},
        "spec": {"products": [{"id": "was", "location": location.display().to_string()}]}
    }))
    .unwrap();
    Api::<Host>::namespaced(world.server.client(), "default")
        .create(&PostParams::default(), &host)
        .await
        .unwrap();
}

async fn apply_named(world: &World, name: &str, spec: Value) {
    let job: upkeep::api::PatchJob = serde_json::from_value(json!({
        "apiVersion": "upkeep.dev/v1alpha1", "kind": "PatchJob",
        "metadata": {"name": name, "namespace": "default"}, "spec": spec}))
    .unwrap();
    Api::<upkeep::api::PatchJob>::namespaced(world.server.client(), "default")
        .create(&PostParams::default(), &job)
        .await
        .unwrap();
}

pub(crate) fn task_of(world: &World, job: &str) -> Option<Value> {
    world.server.snapshot("UpgradeTask").into_iter().find(|t| {
        t.pointer("/spec/target") == Some(&json!(HOST))
            && t.pointer("/spec/parent") == Some(&json!(job))
    })
}

fn codes_of(world: &World, job: &str) -> Vec<u64> {
    task_of(world, job)
        .and_then(|t| t.pointer("/status/history").cloned())
        .and_then(|h| {
            h.as_array()
                .map(|a| a.iter().filter_map(|e| e["statusCode"].as_u64()).collect())
        })
        .unwrap_or_default()
}

fn job_status(world: &World, job: &str) -> Value {
    world
        .server
        .snapshot("PatchJob")
        .into_iter()
        .find(|j| j.pointer("/metadata/name") == Some(&json!(job)))
        .and_then(|j| j.get("status").cloned())
        .unwrap_or(Value::Null)
}

fn host_status(world: &World) -> Value {
    world
        .server
        .snapshot("Host")
        .into_iter()
        .next()
        .and_then(|h| h.get("status").cloned())
        .unwrap_or(Value::Null)
}

pub(crate) fn package_job(operation: &str, source: bool) -> Value {
    let mut package = json!({"id": FP, "type": "FixPack", "product": "was"});
    if source {
        package["source"] = json!(format!("{FP}.pak"));
    }
    json!({"hosts": {"names": [HOST]}, "operation": operation, "packages": [package]})
}

/// Runs the job `name` through the operator and the agent until its task ended and the Host
/// reports `version`; the task's codes.
pub(crate) async fn run_package_job(
    world: &World,
    host: &ProductHost,
    name: &str,
    spec: Value,
    hook: Option<Hook>,
    version: &str,
) -> (Vec<u64>, usize) {
    apply_named(world, name, spec).await;
    let state = host.location.parent().unwrap().join("state");
    let machine = host.machine(world);
    let done = |world: &World| {
        task_of(world, name).and_then(|t| t.pointer("/status/terminal").cloned())
            == Some(json!(true))
            && host_status(world).pointer("/products/0/version") == Some(&json!(version))
            && (job_status(world, name).pointer("/consistency").is_some()
                || codes_of(world, name).last() == Some(&2053))
    };
    let starts = supervise_with(
        world,
        &done,
        &machine,
        &state,
        host.sim.boots(),
        Kills {
            hook,
            ..Kills::default()
        },
        Duration::from_secs(4 * 3600),
        Some(host.agent_repository.clone()),
    )
    .await;
    (codes_of(world, name), starts)
}

const PACKAGE_CODES: [u64; 6] = [2032, 2055, 2044, 2031, 2033, 2036];

#[test]
fn an_install_patch_job_installs_a_fix_pack_through_the_agent_and_an_uninstall_restores_every_byte()
{
    on_virtual_clock(|| async {
        let host = ProductHost::new();
        let before = pak_fixtures::snapshot(&host.location);
        let world = world().await;
        create_host(&world, &host.location).await;
        let stop = CancellationToken::new();
        let operator = tokio::spawn(world.operator(stop.clone()));

        let (codes, _) = run_package_job(
            &world,
            &host,
            "install",
            package_job("Install", true),
            None,
            "9.0.5.23",
        )
        .await;
        let t = task_of(&world, "install").unwrap();
        assert_eq!(codes, PACKAGE_CODES, "{t:#}");
        assert_eq!(
            t.pointer("/status/packages"),
            Some(&json!([{"id": FP, "result": "success"}])),
            "{t:#}"
        );
        let status = host_status(&world);
        assert_eq!(
            status.pointer("/products/0/version"),
            Some(&json!("9.0.5.23")),
            "{status:#}"
        );
        assert_eq!(
            status.pointer("/products/0/packages/0/id"),
            Some(&json!(FP)),
            "{status:#}"
        );
        let history = status["history"].as_array().unwrap();
        assert!(
            history
                .iter()
                .any(|e| e["id"] == json!(FP) && e["action"] == json!("install")),
            "{status:#}"
        );
        assert!(history.len() <= upkeep::api::host::HISTORY_LIMIT);
        let job = job_status(&world, "install");
        assert_eq!(
            job.pointer("/consistency"),
            Some(&json!([{"product": "was", "levels": {"9.0.5.23": [HOST]}}])),
            "{job:#}"
        );
        let consistent = job["conditions"]
            .as_array()
            .unwrap()
            .iter()
            .find(|c| c["type"] == json!("Consistent"))
            .cloned();
        assert_eq!(
            consistent.map(|c| c["status"].clone()),
            Some(json!("True")),
            "{job:#}"
        );
        assert_eq!(host.events(HistoryAction::Install), 1);
        assert_ne!(pak_fixtures::snapshot(&host.location), before);

        let (codes, _) = run_package_job(
            &world,
            &host,
            "uninstall",
            package_job("Uninstall", false),
            None,
            "9.0.5.22",
        )
        .await;
        let t = task_of(&world, "uninstall").unwrap();
        assert_eq!(codes, PACKAGE_CODES, "{t:#}");
        pak_fixtures::assert_same(
            &pak_fixtures::snapshot(&host.location),
            &before,
            "after the uninstall",
        );
        let status = host_status(&world);
        assert_eq!(status.pointer("/products/0/packages"), None, "{status:#}");
        assert!(
            status["history"]
                .as_array()
                .unwrap()
                .iter()
                .any(|e| e["id"] == json!(FP) && e["action"] == json!("uninstall")),
            "{status:#}"
        );
        assert_eq!(host.events(HistoryAction::Uninstall), 1);
        stop.cancel();
        let _ = operator.await;
    });
}

#[test]
fn a_package_job_on_a_host_without_the_product_is_not_applicable() {
    on_virtual_clock(|| async {
        let host = ProductHost::new();
        let world = world().await;
        create_host(&world, &host.location).await;
        let stop = CancellationToken::new();
        let operator = tokio::spawn(world.operator(stop.clone()));
        let mut spec = package_job("Install", true);
        spec["packages"][0]["product"] = json!("ihs");
        let (codes, _) = run_package_job(&world, &host, "other", spec, None, "9.0.5.22").await;
        assert_eq!(codes.last(), Some(&2053), "{codes:?}");
        assert_eq!(host.events(HistoryAction::Install), 0);
        stop.cancel();
        let _ = operator.await;
    });
}

#[test]
fn an_agent_killed_mid_install_resumes_without_installing_twice() {
    on_virtual_clock(|| async {
        // Killed right after the package's `started` record: the install had not begun.
        // Killed while the installer ran (the installer itself killed at step 6 in a child
        // process: its journal left pending) and after it finished but before its result was
        // recorded: the restarted agent recovers the product and reports the package.
        for kill in [None, Some(6), Some(u64::MAX)] {
            let host = ProductHost::new();
            let world = world().await;
            create_host(&world, &host.location).await;
            let stop = CancellationToken::new();
            let operator = tokio::spawn(world.operator(stop.clone()));
            let fired = Arc::new(AtomicBool::new(false));
            let seen = fired.clone();
            let (location, package) = (
                host.location.clone(),
                host.repository.join(format!("{FP}.pak")),
            );
            let hook: Hook = Arc::new(move |c: &Checkpoint| {
                if *c != Checkpoint::OpStarted(Op::Package(0)) || seen.swap(true, Ordering::SeqCst)
                {
                    return false;
                }
                if let Some(step) = kill {
                    let package = package.to_str().unwrap();
                    let step = step.to_string();
                    let mut args = vec![package];
                    if kill != Some(u64::MAX) {
                        args.extend(["--kill-at", &step]);
                    }
                    let _ = pak_fixtures::host("install", &location, &args);
                }
                true
            });
            let (codes, starts) = run_package_job(
                &world,
                &host,
                "install",
                package_job("Install", true),
                Some(hook),
                "9.0.5.23",
            )
            .await;
            assert!(fired.load(Ordering::SeqCst), "killed with {kill:?}");
            assert_eq!(codes, PACKAGE_CODES, "killed with {kill:?}");
            assert_eq!(starts, 2, "killed with {kill:?}");
            assert_eq!(
                host.events(HistoryAction::Install),
                1,
                "killed with {kill:?}: installed once"
            );
            assert!(pak_fixtures::journal_is_empty(&host.location));
            let t = task_of(&world, "install").unwrap();
            assert_eq!(
                t.pointer("/status/packages/0/result"),
                Some(&json!("success")),
                "{t:#}"
            );
            stop.cancel();
            let _ = operator.await;
        }
    });
}

/// The agent keeps one watch (its tasks) and reads its Host once a resync: a change of the
/// Host's spec shows in its status within a resync, a deleted Host is registered again (its
/// status written anew), and a deleted Lease is created again with the next renewal.
#[test]
fn an_agent_reads_its_host_each_resync_and_recreates_a_deleted_host_or_lease() {
    on_virtual_clock(|| async {
        let world = world().await;
        let host = SimulatedHost::new(HOST);
        host.install_package("tool", "1.0");
        let state = tempfile::tempdir().unwrap();
        let config = AgentConfig::new(HOST, "default", state.path());
        let (resync, renew) = (config.resync_every, config.renew_every);
        let stop = CancellationToken::new();
        let agent = tokio::spawn(run(
            world.server.client(),
            config,
            host.machine(),
            world.clock,
            stop.clone(),
        ));
        let hosts = Api::<Host>::namespaced(world.server.client(), "default");
        let leases = Api::<k8s_openapi::api::coordination::v1::Lease>::namespaced(
            world.server.client(),
            "default",
        );
        let lease = format!("upkeep-host-{HOST}");
        tokio::time::sleep(Duration::from_secs(5)).await;
        let first = hosts.get(HOST).await.unwrap();
        assert!(first.status.is_some(), "the agent reported its facts");
        let renewed = |l: &k8s_openapi::api::coordination::v1::Lease| {
            l.spec
                .as_ref()
                .and_then(|s| s.renew_time.clone())
                .unwrap()
                .0
        };
        let before = renewed(&leases.get(&lease).await.unwrap());

        // Renewed, and created again once deleted.
        tokio::time::sleep(renew + Duration::from_secs(1)).await;
        assert!(renewed(&leases.get(&lease).await.unwrap()) > before);
        leases.delete(&lease, &Default::default()).await.unwrap();
        tokio::time::sleep(renew + Duration::from_secs(1)).await;
        let again = leases.get(&lease).await.unwrap();
        let spec = again.spec.unwrap();
        assert_eq!(spec.holder_identity.as_deref(), Some(HOST));
        assert_eq!(spec.lease_duration_seconds, Some(40));

        // A spec change shows (as observedGeneration) within a resync.
        let patch = json!({"spec": {"patchManagement": "Disabled"}});
        let changed = hosts
            .patch(HOST, &Default::default(), &kube::api::Patch::Merge(&patch))
            .await
            .unwrap();
        let generation = changed.metadata.generation.unwrap();
        tokio::time::sleep(resync + Duration::from_secs(1)).await;
        let seen = hosts.get(HOST).await.unwrap().status.unwrap();
        assert_eq!(seen.observed_generation, Some(generation));

        // Deleted: registered again within a resync, with its status.
        hosts.delete(HOST, &Default::default()).await.unwrap();
        tokio::time::sleep(resync + Duration::from_secs(1)).await;
        let back = hosts.get(HOST).await.unwrap();
        assert_ne!(back.metadata.uid, first.metadata.uid);
        let status = back.status.expect("the new Host's status is written");
        assert!(!status.agent.version.is_empty());
        stop.cancel();
        agent.await.unwrap().unwrap();
    });
}
