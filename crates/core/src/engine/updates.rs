//! The rules about operating-system updates, shared by the agent's package-manager backends and
//! the host task engine: which package manager an OS gets, which apt origins are security
//! origins, which of the offered updates a PatchJob's `patch` block selects (as exact
//! `name=version` pins), which pins are still to be installed, and what a host's reboot signals
//! mean.
//!
//! Pure: the backends gather the raw observations (os-release fields, the origins apt prints, the
//! exit code of `needs-restarting -r`, whether a flag file exists) and ask here.
//!
//! Invariants: a selection is deterministic (pins sorted by name, one per package, whatever the
//! order the package manager listed them in); a reboot signal that is missing or unclear is
//! `Unknown`, never `Yes`, so it never reboots a host.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use crate::api::host::{PackageManagerKind, RebootRequired};
use crate::api::patch_job::{Classification, PatchSelection};
use crate::engine::targets::{ResolveError, glob_pattern};

/// An update the package manager offers for one package.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Update {
    /// The package's name as the package manager spells it (apt: `libc6:i386` for a foreign
    /// architecture).
    pub name: String,
    /// The installed version; `None` for a package the update newly installs (apt pulls in, for
    /// example, a new kernel ABI package).
    pub from: Option<String>,
    /// The version the update brings, exactly as the package manager prints it (with the epoch
    /// when it has one: `2:1.5-3.el9`).
    pub to: String,
    /// Whether it is a security update (see [`is_security_origin`] for apt; dnf and zypper by
    /// security advisories).
    pub security: bool,
}

/// One package at one exact version: what an install asks for, so that a rerun after a crash
/// installs nothing new.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub struct Pin {
    /// The package's name.
    pub name: String,
    /// The exact version.
    pub version: String,
}

impl std::fmt::Display for Pin {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}={}", self.name, self.version)
    }
}

/// Whether the host needs a reboot, and the packages that say so when the OS names them.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct RebootSignal {
    /// `Yes`, `No` or `Unknown`.
    pub required: RebootRequired,
    /// The packages that asked for the reboot (apt's `reboot-required.pkgs`, the packages
    /// `needs-restarting -r` lists), in the order given, without repeats.
    pub by: Vec<String>,
}

impl RebootSignal {
    /// A signal that says nothing: `Unknown`, no packages.
    pub fn unknown() -> Self {
        Self::default()
    }
}

/// The package manager upkeep drives on an OS, from os-release's `ID` and then `ID_LIKE` (in its
/// order): Debian and Ubuntu get apt; RHEL, Rocky, AlmaLinux, CentOS and Fedora dnf; SLES and
/// openSUSE zypper; anything else none.
pub fn package_manager_for(id: &str, id_like: &[String]) -> Option<PackageManagerKind> {
    std::iter::once(id)
        .chain(id_like.iter().map(String::as_str))
        .find_map(kind_of_id)
}

fn kind_of_id(id: &str) -> Option<PackageManagerKind> {
    match id {
        "debian" | "ubuntu" => Some(PackageManagerKind::Apt),
        "rhel" | "rocky" | "almalinux" | "centos" | "fedora" => Some(PackageManagerKind::Dnf),
        "sles" | "sled" | "suse" => Some(PackageManagerKind::Zypper),
        other if other.starts_with("opensuse") => Some(PackageManagerKind::Zypper),
        _ => None,
    }
}

/// Where apt says a version comes from: the fields of the origin's Release file.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct AptOrigin<'a> {
    /// `Label`, e.g. `Debian-Security`.
    pub label: Option<&'a str>,
    /// `Suite` (apt's archive), e.g. `bookworm-security`, `oldstable-security`, `jammy-security`.
    pub suite: Option<&'a str>,
    /// `Codename`, e.g. `bookworm-security`.
    pub codename: Option<&'a str>,
}

/// Whether an apt origin is a security origin: its suite or codename ends in `-security`, or its
/// Release Label ends in `-Security` (Debian's `bookworm-security` archive is labelled
/// `Debian-Security`; Ubuntu's `jammy-security` is a suite labelled `Ubuntu`).
pub fn is_security_origin(origin: &AptOrigin<'_>) -> bool {
    let ends = |field: Option<&str>, suffix: &str| field.is_some_and(|f| f.ends_with(suffix));
    ends(origin.suite, "-security")
        || ends(origin.codename, "-security")
        || ends(origin.label, "-Security")
}

/// Why a list of package globs cannot be used.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum SelectionError {
    /// A glob does not parse.
    #[error(
        "{field}[{index}] {pattern:?} is not a valid glob ({reason}): use a package name, or a glob such as openssl* or lib?ssl3"
    )]
    Glob {
        /// The field the globs came from, e.g. `patch.packages`.
        field: String,
        /// The position of the bad glob in it.
        index: usize,
        /// The glob.
        pattern: String,
        /// What is wrong with it.
        reason: String,
    },
}

/// Compiled package globs (`patch.packages`, `patch.exclude`, `--package`). A glob matches a
/// package's name, and also an apt name without its `:arch` qualifier (`openssl` matches
/// `openssl:i386`).
#[derive(Clone, Debug, Default)]
pub struct PackageGlobs {
    patterns: Vec<glob::Pattern>,
}

impl PackageGlobs {
    /// Compiles `globs`, naming `field` and the position of a bad one.
    pub fn new(field: &str, globs: &[String]) -> Result<Self, SelectionError> {
        let patterns = globs
            .iter()
            .enumerate()
            .map(|(index, g)| {
                glob_pattern(g).map_err(|e| {
                    let reason = match e {
                        ResolveError::Pattern { reason, .. } => reason,
                        other => other.to_string(),
                    };
                    SelectionError::Glob {
                        field: field.to_string(),
                        index,
                        pattern: g.clone(),
                        reason,
                    }
                })
            })
            .collect::<Result<_, _>>()?;
        Ok(Self { patterns })
    }

    /// Whether there are no globs.
    pub fn is_empty(&self) -> bool {
        self.patterns.is_empty()
    }

    /// Whether any glob matches `name`.
    pub fn matches(&self, name: &str) -> bool {
        let base = name.split_once(':').map(|(base, _)| base);
        self.patterns
            .iter()
            .any(|p| p.matches(name) || base.is_some_and(|b| p.matches(b)))
    }
}

/// The updates a `patch` block selects from those offered: security ones only for
/// `classification: Security`; only packages matching `packages` when it is not empty; never
/// those matching `exclude`. The result is one exact pin per package, sorted by name (the first
/// offer of a package wins when one is listed twice).
pub fn select(patch: &PatchSelection, offered: &[Update]) -> Result<Vec<Pin>, SelectionError> {
    let only = PackageGlobs::new("patch.packages", &patch.packages)?;
    let exclude = PackageGlobs::new("patch.exclude", &patch.exclude)?;
    let mut pins: BTreeMap<&str, &str> = BTreeMap::new();
    for update in offered {
        let wanted = (patch.classification == Classification::All || update.security)
            && (only.is_empty() || only.matches(&update.name))
            && !exclude.matches(&update.name);
        if wanted {
            pins.entry(&update.name).or_insert(&update.to);
        }
    }
    Ok(pins
        .into_iter()
        .map(|(name, version)| Pin {
            name: name.to_string(),
            version: version.to_string(),
        })
        .collect())
}

/// Whether two version strings name the same version; an epoch of `0` is the same as none
/// (`0:1.1-1` is `1.1-1`).
pub fn same_version(a: &str, b: &str) -> bool {
    let strip = |v: &str| v.strip_prefix("0:").unwrap_or(v).to_string();
    strip(a) == strip(b)
}

/// The pins still to install: those whose package is not installed at exactly the pinned version
/// (`installed` maps package names to their installed versions). Empty after a successful
/// install, which is what makes a rerun a no-op.
pub fn pending(pins: &[Pin], installed: &BTreeMap<String, String>) -> Vec<Pin> {
    pins.iter()
        .filter(|pin| {
            installed
                .get(&pin.name)
                .is_none_or(|v| !same_version(v, &pin.version))
        })
        .cloned()
        .collect()
}

/// What a host's reboot signal was observed to be.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum RebootProbe<'a> {
    /// apt: whether `<root>/var/run/reboot-required` or `<root>/run/reboot-required` exists
    /// (`None`: it could not be told, e.g. a permission error), and the contents of the
    /// `reboot-required.pkgs` beside it, if any.
    AptFlag {
        /// Whether the flag file exists.
        present: Option<bool>,
        /// The package list file's contents.
        packages: Option<&'a str>,
    },
    /// dnf: `needs-restarting -r`'s exit code (`None`: it could not be run) and its output.
    NeedsRestarting {
        /// The exit code.
        exit: Option<i32>,
        /// Standard output and error.
        output: &'a str,
    },
    /// zypper: `zypper needs-rebooting`'s exit code (`None`: it could not be run).
    ZypperNeedsRebooting {
        /// The exit code.
        exit: Option<i32>,
    },
}

/// The sentence every `needs-restarting -r` (dnf's plugin, yum-utils, zypper's script) prints
/// when it exits 1 because a reboot is needed; dnf itself also exits 1 on its own errors (an
/// unknown command when the plugin is missing, a broken repository), which must not read as
/// `Yes`.
const NEEDS_RESTARTING_YES: &str = "Reboot is required";

/// zypper's exit code for "a reboot is needed" (`ZYPPER_EXIT_INF_REBOOT_NEEDED`).
const ZYPPER_REBOOT_NEEDED: i32 = 102;

/// The three-valued reboot signal of an observation. apt: the flag file present → `Yes` (by the
/// packages of `reboot-required.pkgs`), absent → `No`. dnf: `needs-restarting -r` exit 1 saying a
/// reboot is required → `Yes` (by the packages it lists as `  * name`), exit 0 → `No`, anything
/// else or not run → `Unknown`. zypper: `needs-rebooting` exit 102 → `Yes`, 0 → `No`, anything
/// else → `Unknown`.
pub fn reboot_signal(probe: RebootProbe<'_>) -> RebootSignal {
    let signal = |required, by| RebootSignal { required, by };
    match probe {
        RebootProbe::AptFlag {
            present: Some(true),
            packages,
        } => signal(
            RebootRequired::Yes,
            unique_lines(packages.unwrap_or_default().lines().map(str::trim)),
        ),
        RebootProbe::AptFlag {
            present: Some(false),
            ..
        } => signal(RebootRequired::No, vec![]),
        RebootProbe::NeedsRestarting {
            exit: Some(1),
            output,
        } if output.contains(NEEDS_RESTARTING_YES) => signal(
            RebootRequired::Yes,
            unique_lines(
                output
                    .lines()
                    .filter_map(|l| l.trim_start().strip_prefix("* "))
                    .map(str::trim),
            ),
        ),
        RebootProbe::NeedsRestarting { exit: Some(0), .. }
        | RebootProbe::ZypperNeedsRebooting { exit: Some(0) } => signal(RebootRequired::No, vec![]),
        RebootProbe::ZypperNeedsRebooting {
            exit: Some(ZYPPER_REBOOT_NEEDED),
        } => signal(RebootRequired::Yes, vec![]),
        _ => RebootSignal::unknown(),
    }
}

fn unique_lines<'a>(lines: impl Iterator<Item = &'a str>) -> Vec<String> {
    let mut out: Vec<String> = Vec::new();
    for line in lines.filter(|l| !l.is_empty()) {
        if !out.iter().any(|seen| seen == line) {
            out.push(line.to_string());
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn like(ids: &[&str]) -> Vec<String> {
        ids.iter().map(|s| s.to_string()).collect()
    }

    #[test]
    fn os_release_ids_choose_the_package_manager() {
        use PackageManagerKind::*;
        let cases: &[(&str, &[&str], Option<PackageManagerKind>)] = &[
            ("debian", &[], Some(Apt)),
            ("ubuntu", &["debian"], Some(Apt)),
            ("linuxmint", &["ubuntu", "debian"], Some(Apt)),
            ("rhel", &["fedora"], Some(Dnf)),
            ("rocky", &["rhel", "centos", "fedora"], Some(Dnf)),
            ("almalinux", &["rhel", "centos", "fedora"], Some(Dnf)),
            ("centos", &["rhel", "fedora"], Some(Dnf)),
            ("fedora", &[], Some(Dnf)),
            ("ol", &["fedora"], Some(Dnf)),
            ("sles", &["suse"], Some(Zypper)),
            ("opensuse-leap", &["suse", "opensuse"], Some(Zypper)),
            ("opensuse-tumbleweed", &[], Some(Zypper)),
            ("arch", &[], None),
            ("alpine", &[], None),
            ("", &[], None),
        ];
        for (id, id_like, want) in cases {
            assert_eq!(package_manager_for(id, &like(id_like)), *want, "{id}");
        }
    }

    #[test]
    fn the_id_wins_over_id_like() {
        // An OS that names itself and is like another: its own ID decides.
        assert_eq!(
            package_manager_for("fedora", &like(&["debian"])),
            Some(PackageManagerKind::Dnf)
        );
    }

    #[test]
    fn security_origins_by_suite_codename_or_label() {
        let origin = |label, suite, codename| AptOrigin {
            label,
            suite,
            codename,
        };
        // Debian's security archive: label and suite and codename all say so.
        assert!(is_security_origin(&origin(
            Some("Debian-Security"),
            Some("oldstable-security"),
            Some("bookworm-security")
        )));
        // Ubuntu's: the suite says so, the label does not.
        assert!(is_security_origin(&origin(
            Some("Ubuntu"),
            Some("jammy-security"),
            Some("jammy")
        )));
        // A mirror whose suite is plain but whose codename is the security one.
        assert!(is_security_origin(&origin(
            Some("Mirror"),
            Some("stable"),
            Some("bookworm-security")
        )));
        // A label alone.
        assert!(is_security_origin(&origin(
            Some("Acme-Security"),
            None,
            None
        )));
        // Not security: updates, backports, the main archive, a missing origin.
        for (label, suite, codename) in [
            (
                Some("Debian"),
                Some("oldstable-updates"),
                Some("bookworm-updates"),
            ),
            (Some("Debian Backports"), Some("bookworm-backports"), None),
            (Some("Debian"), Some("oldstable"), Some("bookworm")),
            (Some("Ubuntu"), Some("jammy-updates"), Some("jammy")),
            // The contract's label rule is `-Security`, the suite rule `-security`.
            (Some("Acme-security-tools"), Some("stable"), None),
            (None, None, None),
        ] {
            assert!(
                !is_security_origin(&origin(label, suite, codename)),
                "{label:?} {suite:?} {codename:?}"
            );
        }
    }

    fn update(name: &str, to: &str, security: bool) -> Update {
        Update {
            name: name.into(),
            from: Some("0".into()),
            to: to.into(),
            security,
        }
    }

    fn offered() -> Vec<Update> {
        vec![
            update("tool", "2.0", false),
            update("openssl", "3.0.15-1~deb12u1", true),
            update("libssl3", "3.0.15-1~deb12u1", true),
            update("linux-image-amd64", "6.1.119-1", true),
            update("kernel-x", "1.1", true),
            update("libc6:i386", "2.36-9+deb12u9", true),
        ]
    }

    fn pins(list: &[(&str, &str)]) -> Vec<Pin> {
        list.iter()
            .map(|(n, v)| Pin {
                name: n.to_string(),
                version: v.to_string(),
            })
            .collect()
    }

    fn patch(
        classification: Classification,
        packages: &[&str],
        exclude: &[&str],
    ) -> PatchSelection {
        PatchSelection {
            classification,
            packages: like(packages),
            exclude: like(exclude),
        }
    }

    #[test]
    fn security_classification_takes_security_updates_only_sorted_by_name() {
        let got = select(&patch(Classification::Security, &[], &[]), &offered()).unwrap();
        assert_eq!(
            got,
            pins(&[
                ("kernel-x", "1.1"),
                ("libc6:i386", "2.36-9+deb12u9"),
                ("libssl3", "3.0.15-1~deb12u1"),
                ("linux-image-amd64", "6.1.119-1"),
                ("openssl", "3.0.15-1~deb12u1"),
            ])
        );
    }

    #[test]
    fn all_takes_every_update() {
        let got = select(&patch(Classification::All, &[], &[]), &offered()).unwrap();
        assert_eq!(got.len(), 6);
        assert!(got.contains(&Pin {
            name: "tool".into(),
            version: "2.0".into()
        }));
    }

    #[test]
    fn packages_limit_and_exclude_removes_by_glob() {
        let got = select(
            &patch(
                Classification::All,
                &["*ssl*", "tool", "libc6"],
                &["libssl?"],
            ),
            &offered(),
        )
        .unwrap();
        assert_eq!(
            got,
            pins(&[
                ("libc6:i386", "2.36-9+deb12u9"),
                ("openssl", "3.0.15-1~deb12u1"),
                ("tool", "2.0"),
            ])
        );
        let no_kernels = select(
            &patch(Classification::Security, &[], &["linux-image*", "kernel*"]),
            &offered(),
        )
        .unwrap();
        assert!(
            no_kernels
                .iter()
                .all(|p| !p.name.starts_with("linux") && !p.name.starts_with("kernel"))
        );
        // A package listed but not security is not taken under Security.
        assert!(
            select(&patch(Classification::Security, &["tool"], &[]), &offered())
                .unwrap()
                .is_empty()
        );
    }

    #[test]
    fn selection_is_stable_whatever_the_offer_order_and_takes_the_first_offer() {
        let mut reversed = offered();
        reversed.reverse();
        let p = patch(Classification::All, &[], &[]);
        assert_eq!(select(&p, &offered()), select(&p, &reversed));
        let twice = vec![update("a", "2", true), update("a", "3", true)];
        assert_eq!(select(&p, &twice).unwrap(), pins(&[("a", "2")]));
    }

    #[test]
    fn a_bad_glob_names_the_field_and_position() {
        let err = select(
            &patch(Classification::All, &["ok", "lib["], &[]),
            &offered(),
        )
        .unwrap_err();
        let SelectionError::Glob {
            field,
            index,
            pattern,
            ..
        } = &err;
        assert_eq!(
            (field.as_str(), *index, pattern.as_str()),
            ("patch.packages", 1, "lib[")
        );
        assert!(
            err.to_string()
                .starts_with("patch.packages[1] \"lib[\" is not a valid glob")
        );
        let err = select(&patch(Classification::All, &[], &["[x"]), &offered()).unwrap_err();
        assert!(err.to_string().starts_with("patch.exclude[0]"), "{err}");
    }

    #[test]
    fn pending_pins_skip_what_is_installed_at_the_pinned_version() {
        let wanted = pins(&[("libfoo", "1.1-1"), ("libbar", "2:1.5-3"), ("new", "1")]);
        let installed = BTreeMap::from([
            ("libfoo".to_string(), "0:1.1-1".to_string()),
            ("libbar".to_string(), "2:1.0-3".to_string()),
        ]);
        assert_eq!(
            pending(&wanted, &installed),
            pins(&[("libbar", "2:1.5-3"), ("new", "1")])
        );
        let after = BTreeMap::from([
            ("libfoo".to_string(), "1.1-1".to_string()),
            ("libbar".to_string(), "2:1.5-3".to_string()),
            ("new".to_string(), "1".to_string()),
        ]);
        assert!(pending(&wanted, &after).is_empty());
        assert!(!same_version("2:1.5-3", "1.5-3"));
    }

    #[test]
    fn apt_flag_file_is_yes_or_no_and_names_the_packages() {
        let yes = reboot_signal(RebootProbe::AptFlag {
            present: Some(true),
            packages: Some("linux-image-6.1.0-28-amd64\nlibc6\n\nlinux-image-6.1.0-28-amd64\n"),
        });
        assert_eq!(yes.required, RebootRequired::Yes);
        assert_eq!(yes.by, ["linux-image-6.1.0-28-amd64", "libc6"]);
        let yes_unnamed = reboot_signal(RebootProbe::AptFlag {
            present: Some(true),
            packages: None,
        });
        assert_eq!(
            yes_unnamed,
            RebootSignal {
                required: RebootRequired::Yes,
                by: vec![]
            }
        );
        let no = reboot_signal(RebootProbe::AptFlag {
            present: Some(false),
            packages: Some("stale"),
        });
        assert_eq!(
            no,
            RebootSignal {
                required: RebootRequired::No,
                by: vec![]
            }
        );
        assert_eq!(
            reboot_signal(RebootProbe::AptFlag {
                present: None,
                packages: None
            }),
            RebootSignal::unknown()
        );
    }

    #[test]
    fn needs_restarting_exit_codes_are_three_valued() {
        let yes = "Core libraries or services have been updated since boot-up:\n  * kernel\n  * glibc\n\nReboot is required to fully utilize these updates.\nMore information: https://access.redhat.com/solutions/27943\n";
        let signal = reboot_signal(RebootProbe::NeedsRestarting {
            exit: Some(1),
            output: yes,
        });
        assert_eq!(signal.required, RebootRequired::Yes);
        assert_eq!(signal.by, ["kernel", "glibc"]);
        let no = "No core libraries or services have been updated since boot-up.\nReboot should not be necessary.\n";
        assert_eq!(
            reboot_signal(RebootProbe::NeedsRestarting {
                exit: Some(0),
                output: no
            })
            .required,
            RebootRequired::No
        );
        // dnf without the plugin exits 1 too: that is not a reboot.
        let missing = "No such command: needs-restarting. Please use /usr/bin/dnf --help\n";
        for (exit, output) in [
            (Some(1), missing),
            (Some(2), ""),
            (Some(200), ""),
            (None, ""),
        ] {
            assert_eq!(
                reboot_signal(RebootProbe::NeedsRestarting { exit, output }),
                RebootSignal::unknown(),
                "{exit:?} {output:?}"
            );
        }
    }

    #[test]
    fn zypper_needs_rebooting_exit_codes_are_three_valued() {
        let required = |exit| reboot_signal(RebootProbe::ZypperNeedsRebooting { exit }).required;
        assert_eq!(required(Some(102)), RebootRequired::Yes);
        assert_eq!(required(Some(0)), RebootRequired::No);
        assert_eq!(required(Some(7)), RebootRequired::Unknown);
        assert_eq!(required(None), RebootRequired::Unknown);
    }

    #[test]
    fn globs_match_apt_names_without_their_architecture() {
        let globs = PackageGlobs::new("patch.packages", &like(&["libc6", "open*"])).unwrap();
        assert!(globs.matches("libc6"));
        assert!(globs.matches("libc6:i386"));
        assert!(globs.matches("openssl"));
        assert!(!globs.matches("libc6-dev"));
        assert!(!PackageGlobs::default().matches("anything"));
    }
}
