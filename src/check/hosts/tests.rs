//! `upkeep check` on PatchJobs and Hosts, a test per finding: each names its field, says how
//! to fix it, and is an error the API server rejects (schema, CEL), an error it accepts (an
//! engine finding: `upkeep check` fails, `upkeep simulate` warns), or a warning.

use super::super::tests::check_all;
use super::super::{FileReport, Outcome, Problem};

const JOBS: &str = include_str!("../../../examples/patch-jobs.yaml");

fn job(spec: &str) -> String {
    format!(
        "apiVersion: upkeep.dev/v1alpha1\nkind: PatchJob\nmetadata: {{ name: pj }}\nspec:\n{spec}\n"
    )
}

fn host(name: &str, labels: &str, spec: &str) -> String {
    format!(
        "apiVersion: upkeep.dev/v1alpha1\nkind: Host\nmetadata: {{ name: {name}, labels: {labels} }}\nspec: {spec}\n---\n"
    )
}

/// The errors of the only document of `text`, with the fields named.
fn errors(text: &str) -> (FileReport, Vec<Problem>) {
    let report = check_all(&[("pj.yaml", text)]).remove(0);
    let problems = match &report.documents[0].outcome {
        Outcome::Invalid(problems) => problems.clone(),
        other => panic!("{other:?} for\n{text}"),
    };
    (report, problems)
}

/// Asserts the single error of `spec`: its field, words of its message, and whether the API
/// server would take the job anyway.
#[track_caller]
fn assert_error(spec: &str, field: &str, words: &[&str], accepted_by_api: bool) {
    let (report, problems) = errors(&job(spec));
    assert_eq!(problems.len(), 1, "{report}");
    let p = &problems[0];
    assert_eq!(p.field, field, "{report}");
    for word in words {
        assert!(
            p.message.contains(word) || p.fix.contains(word),
            "{word:?} not in {report}"
        );
    }
    assert_eq!(p.accepted_by_api, accepted_by_api, "{report}");
    assert_eq!(report.accepted_by_api(), accepted_by_api, "{report}");
}

#[test]
fn the_examples_are_valid() {
    let report = check_all(&[("patch-jobs.yaml", JOBS)]).remove(0);
    assert!(report.is_valid(), "{report}");
    assert_eq!(report.warnings(), 1, "the window lives elsewhere: {report}");
}

#[test]
fn globs_selectors_and_duplicates_name_their_field() {
    assert_error(
        "  hosts: { pattern: \"web-[\" }",
        "spec.hosts.pattern",
        &["not a valid glob", "dp-*"],
        true,
    );
    assert_error(
        "  hosts: { selector: { matchExpressions: [{ key: role, operator: Is, values: [web] }] } }",
        "spec.hosts.selector.matchExpressions[0].operator",
        &["In, NotIn, Exists, DoesNotExist"],
        true,
    );
    assert_error(
        "  hosts: { names: [web-1] }\n  waves: [{ name: a, selector: { matchExpressions: [{ key: role, operator: Exists, values: [x] }] } }]",
        "spec.waves[0].selector.matchExpressions[0].values",
        &["none for Exists"],
        true,
    );
    assert_error(
        "  hosts: { names: [web-1, web-1] }",
        "spec.hosts.names",
        &["\"web-1\" is listed twice", "once"],
        true,
    );
    assert_error(
        "  hosts: { names: [web-1] }\n  waves: [{ name: a, selector: {} }, { name: a, selector: {} }]",
        "spec.waves",
        &["\"a\" is listed twice"],
        true,
    );
}

#[test]
fn update_globs_are_compiled_as_the_agent_compiles_them() {
    assert_error(
        "  hosts: { names: [web-1] }\n  patch: { packages: [openssl, \"lib[ssl\"] }",
        "spec.patch.packages[1]",
        &["\"lib[ssl\" is not a valid glob", "openssl*"],
        true,
    );
    assert_error(
        "  hosts: { names: [web-1] }\n  patch: { exclude: [\"kernel[\"] }",
        "spec.patch.exclude[0]",
        &["not a valid glob"],
        true,
    );
    let good = job(
        "  hosts: { names: [web-1] }\n  patch: { packages: [\"openssl*\", \"lib?ssl3\"], exclude: [\"linux-image-[0-9]*\"] }",
    );
    assert!(check_all(&[("pj.yaml", &good)])[0].is_valid(), "{good}");
}

#[test]
fn durations_must_parse_and_be_positive() {
    for (field, spec) in [
        ("spec.maxWait", "  maxWait: 0s"),
        ("spec.drain.timeout", "  drain: { timeout: 0m }"),
        (
            "spec.reboot.deferralInterval",
            "  reboot: { deferralInterval: 0h }",
        ),
        (
            "spec.actions.pre[0].timeout",
            "  actions: { pre: [{ name: a, command: \"true\", timeout: 0s }] }",
        ),
    ] {
        assert_error(
            &format!("  hosts: {{ names: [web-1] }}\n{spec}"),
            field,
            &["zero duration", "10m"],
            true,
        );
    }
    let (report, problems) = errors(&job("  hosts: { names: [web-1] }\n  maxWait: 1 day"));
    assert!(!report.accepted_by_api(), "{report}");
    assert!(
        problems.iter().any(|p| p.field.starts_with("spec.maxWait")),
        "{report}"
    );
}

#[test]
fn action_commands_must_be_something_sh_can_parse() {
    assert_error(
        "  hosts: { names: [web-1] }\n  actions: { pre: [{ name: stop, command: \"   \" }] }",
        "spec.actions.pre[0].command",
        &["\"stop\" is blank", "systemctl stop"],
        true,
    );
    assert_error(
        "  hosts: { names: [web-1] }\n  actions: { post: [{ name: ok, command: \"true\" }, { name: smoke, command: \"curl -fsS 'http://localhost/healthz\" }] }",
        "spec.actions.post[1].command",
        &[
            "\"smoke\"",
            "Unterminated quoted string",
            "2046",
            "sh -n -c",
        ],
        true,
    );
    assert_error(
        "  hosts: { names: [web-1] }\n  actions: { pre: [{ name: check, command: \"if systemctl is-active app; then systemctl stop app\" }] }",
        "spec.actions.pre[0].command",
        &["\"check\"", "fi"],
        true,
    );
    assert_error(
        "  hosts: { names: [web-1] }\n  actions: { pre: [{ name: a, command: first }, { name: a, command: second }] }",
        "spec.actions",
        &["\"a\" is listed twice"],
        true,
    );
    // Parsed, never run: a valid command that would reboot the checking machine is fine.
    let report = check_all(&[(
        "pj.yaml",
        &job("  hosts: { names: [web-1] }\n  actions: { pre: [{ name: r, command: \"systemctl reboot && $(reboot) | tee /tmp/x; for i in 1 2; do echo $i; done\" }] }"),
    )])
    .remove(0);
    assert!(report.is_valid(), "{report}");
}

#[test]
fn packages_to_install_need_a_source_inside_the_repository() {
    let package = |source: &str| {
        format!(
            "  hosts: {{ names: [was-1] }}\n  operation: Install\n  packages: [{{ id: 9.0.5-WS-WAS-FP023, type: FixPack, product: was{source} }}]"
        )
    };
    assert_error(
        &package(""),
        "spec.packages",
        &["every package to install needs a source"],
        false,
    );
    assert_error(
        &package(", source: /srv/fixpacks/fp23.pak"),
        "spec.packages[0].source",
        &["absolute path", "fixpacks/9.0.5-WS-WAS-FP023.pak"],
        true,
    );
    assert_error(
        &package(", source: fixpacks/../../etc/shadow"),
        "spec.packages[0].source",
        &["leaves the package repository"],
        true,
    );
    assert_error(
        &package(", source: fixpacks/"),
        "spec.packages[0].source",
        &["directory"],
        true,
    );
    // Uninstall needs none; Install needs packages at all; Patch takes none.
    let uninstall = "  hosts: { names: [was-1] }\n  operation: Uninstall\n  packages: [{ id: 9.0.5-WS-WAS-FP023, type: FixPack, product: was }]";
    assert!(
        check_all(&[("pj.yaml", &job(uninstall))])[0].is_valid(),
        "{uninstall}"
    );
    assert_error(
        "  hosts: { names: [was-1] }\n  operation: Install",
        "spec.packages",
        &["at least one entry in packages"],
        false,
    );
    assert_error(
        "  hosts: { names: [was-1] }\n  packages: [{ id: x, type: InterimFix, product: was, source: x.pak }]",
        "spec.packages",
        &["patch.packages"],
        false,
    );
}

const WAVES: &str = "  hosts: { pattern: \"was-*\" }\n  waves:\n    - { name: dmgr, selector: { matchLabels: { role: dmgr } } }\n    - { name: nodes, selector: { matchLabels: { role: nodes } } }";

fn was_hosts() -> String {
    host("was-dmgr", "{ role: dmgr }", "{}")
        + &host("was-1", "{ role: node }", "{}")
        + &host("web-1", "{ role: nodes }", "{}")
}

#[test]
fn a_wave_that_selects_none_of_the_jobs_hosts_in_the_files_is_a_warning() {
    let reports = check_all(&[("hosts.yaml", &was_hosts()), ("pj.yaml", &job(WAVES))]);
    assert!(reports[0].is_valid(), "{}", reports[0]);
    let report = &reports[1];
    // The wave's Hosts may live only in the cluster: a warning, not an error.
    assert!(report.is_valid(), "{report}");
    let warnings = &report.documents[0].warnings;
    assert_eq!(warnings.len(), 2, "{report}");
    assert_eq!(warnings[0].field, "spec.waves[1].selector");
    assert!(
        warnings[0].message.contains(
            "wave \"nodes\" selects none of the job's hosts the files define (was-dmgr, was-1)"
        ),
        "{report}"
    );
    // web-1 has the label but is not the job's; was-1 is in no wave.
    assert_eq!(warnings[1].field, "spec.waves");
    assert!(
        warnings[1]
            .message
            .contains("\"was-1\" is in no wave: it is patched after the last wave"),
        "{report}"
    );

    let fixed = WAVES.replace("role: nodes", "role: node");
    let reports = check_all(&[("hosts.yaml", &was_hosts()), ("pj.yaml", &job(&fixed))]);
    assert!(reports[1].is_valid(), "{}", reports[1]);
    assert_eq!(reports[1].warnings(), 0, "{}", reports[1]);
}

#[test]
fn without_hosts_in_the_files_or_in_the_namespace_waves_are_not_judged() {
    let reports = check_all(&[("pj.yaml", &job(WAVES))]);
    assert!(reports[0].is_valid(), "{}", reports[0]);
    assert_eq!(reports[0].warnings(), 0);
    let elsewhere = was_hosts().replace("metadata: { name:", "metadata: { namespace: other, name:");
    let namespaced = job(WAVES).replace("name: pj }", "name: pj, namespace: prod }");
    let reports = check_all(&[("hosts.yaml", &elsewhere), ("pj.yaml", &namespaced)]);
    assert!(reports[1].is_valid(), "{}", reports[1]);
    assert_eq!(reports[1].warnings(), 0);
}

#[test]
fn hosts_the_files_do_not_define_are_warnings() {
    let reports = check_all(&[
        ("hosts.yaml", &was_hosts()),
        ("pj.yaml", &job("  hosts: { pattern: \"db-*\" }")),
        ("named.yaml", &job("  hosts: { names: [was-1, was-2] }")),
    ]);
    assert!(reports.iter().all(FileReport::is_valid));
    let none = &reports[1].documents[0].warnings;
    assert_eq!(none.len(), 1, "{}", reports[1]);
    assert_eq!(none[0].field, "spec.hosts");
    assert!(none[0].message.contains("creates no task"), "{none:?}");
    let named = &reports[2].documents[0].warnings;
    assert_eq!(named.len(), 1, "{}", reports[2]);
    assert_eq!(named[0].field, "spec.hosts.names[1]");
    assert!(named[0].message.contains("\"was-2\""), "{named:?}");
}

#[test]
fn host_products_need_a_location_of_their_own_and_a_command_that_names_the_package() {
    let product = |location: &str, id: &str| {
        format!("{{ id: {id}, location: \"{location}\", installer: builtin }}")
    };
    let check_host = |products: &str| {
        let text = host("was-1", "{}", &format!("{{ products: [{products}] }}"));
        check_all(&[("h.yaml", &text)]).remove(0)
    };
    let fields = |report: &FileReport| -> Vec<String> {
        match &report.documents[0].outcome {
            Outcome::Invalid(problems) => problems.iter().map(|p| p.field.clone()).collect(),
            _ => Vec::new(),
        }
    };
    let ok = check_host(&product("/opt/IBM/WebSphere/AppServer", "was"));
    assert!(ok.is_valid(), "{ok}");
    for (location, words) in [("/opt/IBM/../etc", "'..' segment"), ("/", "root directory")] {
        let report = check_host(&product(location, "was"));
        assert_eq!(fields(&report), ["spec.products[0].location"], "{report}");
        assert!(report.to_string().contains(words), "{report}");
        assert!(report.accepted_by_api(), "{report}");
    }
    let shared = check_host(&format!(
        "{}, {}",
        product("/opt/was", "was"),
        product("/opt/was/", "ihs")
    ));
    assert_eq!(fields(&shared), ["spec.products[1].location"], "{shared}");
    assert!(
        shared.to_string().contains("another product too"),
        "{shared}"
    );

    let relative = check_host(&product("opt/was", "was"));
    assert!(!relative.accepted_by_api(), "{relative}");
    let twice = check_host(&format!(
        "{}, {}",
        product("/opt/a", "was"),
        product("/opt/b", "was")
    ));
    assert!(!twice.accepted_by_api(), "{twice}");

    let command = check_host(
        "{ id: db2, location: /opt/db2, installer: command, command: { install: \"installFixPack -b /opt/db2\", uninstall: \"db2_deinstall\" } }",
    );
    assert_eq!(
        fields(&command),
        [
            "spec.products[0].command.install",
            "spec.products[0].command.uninstall"
        ],
        "{command}"
    );
    assert!(command.to_string().contains("put {package}"), "{command}");
}
