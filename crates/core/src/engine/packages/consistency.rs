//! Cluster consistency: the level each host's product is at, which hosts share a level, and the
//! `Consistent` condition of an Install or Uninstall job (the members of a cluster must run one
//! level).
//!
//! A level is the product version, then `+` and the tag of each installed interim fix, tags
//! sorted: `9.0.5.23`, `9.0.5.23+PH12345`, `9.0.5.23+PH12345+PH23456`. An interim fix's tag is
//! the part of its id after the last `-`, without a leading `IF` (`9.0.5-WS-WAS-IFPH12345` →
//! `PH12345`); an id without `-` is its own tag.

use std::collections::BTreeMap;

use crate::api::conditions::{Desired, Status};
use crate::api::host::ProductStatus;
use crate::api::patch_job::{PackageType, ProductConsistency};

/// The condition type set on Install and Uninstall jobs.
pub const CONSISTENT: &str = "Consistent";

/// The tag an interim fix adds to a level.
pub fn interim_fix_tag(id: &str) -> &str {
    let last = id.rsplit('-').next().unwrap_or(id);
    match last.strip_prefix("IF") {
        Some(rest) if !rest.is_empty() => rest,
        _ => last,
    }
}

/// The level of a product on one host.
pub fn level(product: &ProductStatus) -> String {
    let mut tags: Vec<&str> = product
        .packages
        .iter()
        .filter(|p| p.type_ == PackageType::InterimFix)
        .map(|p| interim_fix_tag(&p.id))
        .collect();
    tags.sort_unstable();
    tags.dedup();
    std::iter::once(product.version.as_str())
        .chain(tags)
        .collect::<Vec<_>>()
        .join("+")
}

/// For every product in `products` (in that order), the hosts at each level. `hosts` gives each
/// host's name and its products; a host without the product is left out of it.
pub fn consistency<'a>(
    products: &[&str],
    hosts: impl IntoIterator<Item = (&'a str, &'a [ProductStatus])>,
) -> Vec<ProductConsistency> {
    let hosts: Vec<(&str, &[ProductStatus])> = hosts.into_iter().collect();
    products
        .iter()
        .map(|&product| {
            let mut levels: BTreeMap<String, Vec<String>> = BTreeMap::new();
            for (host, found) in &hosts {
                if let Some(p) = found.iter().find(|p| p.id == product) {
                    levels
                        .entry(level(p))
                        .or_default()
                        .push((*host).to_string());
                }
            }
            for names in levels.values_mut() {
                names.sort();
            }
            ProductConsistency {
                product: product.to_string(),
                levels,
            }
        })
        .collect()
}

/// Whether every product is at one level (or on no host at all).
pub fn is_consistent(consistency: &[ProductConsistency]) -> bool {
    consistency.iter().all(|c| c.levels.len() <= 1)
}

/// The `Consistent` condition for `consistency`: True (`OneLevel`) when every product is at one
/// level, False (`MixedLevels`) naming each product's levels otherwise.
pub fn consistent_condition(consistency: &[ProductConsistency]) -> Desired<'static> {
    if is_consistent(consistency) {
        let levels: Vec<String> = consistency
            .iter()
            .filter_map(|c| {
                c.levels
                    .keys()
                    .next()
                    .map(|l| format!("{} at {l}", c.product))
            })
            .collect();
        let message = if levels.is_empty() {
            "no host has the job's products".to_string()
        } else {
            levels.join(", ")
        };
        return Desired::new(CONSISTENT, Status::True, "OneLevel", message);
    }
    let mixed: Vec<String> = consistency
        .iter()
        .filter(|c| c.levels.len() > 1)
        .map(|c| {
            let levels: Vec<String> = c
                .levels
                .iter()
                .map(|(level, hosts)| format!("{level} on {}", hosts.join(", ")))
                .collect();
            format!("{}: {}", c.product, levels.join("; "))
        })
        .collect();
    Desired::new(CONSISTENT, Status::False, "MixedLevels", mixed.join(" | "))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::api::host::InstalledPackage;

    fn product(version: &str, fixes: &[&str]) -> ProductStatus {
        ProductStatus {
            id: "was".into(),
            version: version.into(),
            location: "/opt/was".into(),
            packages: fixes
                .iter()
                .map(|id| InstalledPackage {
                    id: (*id).into(),
                    type_: PackageType::InterimFix,
                    installed_at: None,
                    backup: true,
                    fixes: vec![],
                    previous_version: None,
                })
                .collect(),
            ..ProductStatus::default()
        }
    }

    #[test]
    fn a_level_is_the_version_plus_sorted_interim_fix_tags() {
        assert_eq!(level(&product("9.0.5.23", &[])), "9.0.5.23");
        assert_eq!(
            level(&product(
                "9.0.5.23",
                &["9.0.5-WS-WAS-IFPH23456", "9.0.5-WS-WAS-IFPH12345"]
            )),
            "9.0.5.23+PH12345+PH23456"
        );
        assert_eq!(interim_fix_tag("PH999"), "PH999");
        assert_eq!(interim_fix_tag("fix-IF"), "IF");
        let mut with_pack = product("9.0.5.23", &["9.0.5-WS-WAS-IFPH12345"]);
        with_pack.packages[0].type_ = PackageType::FixPack;
        assert_eq!(
            level(&with_pack),
            "9.0.5.23",
            "fix packs are in the version"
        );
    }

    #[test]
    fn hosts_are_grouped_by_level_per_product() {
        let a = [product("9.0.5.23", &[])];
        let b = [product("9.0.5.23", &[])];
        let c = [product("9.0.5.22", &["9.0.5-WS-WAS-IFPH12345"])];
        let none: [ProductStatus; 0] = [];
        let hosts = [
            ("h2", &b[..]),
            ("h1", &a[..]),
            ("h3", &c[..]),
            ("h4", &none[..]),
        ];
        let result = consistency(&["was", "ihs"], hosts);
        assert_eq!(result.len(), 2);
        assert_eq!(result[0].levels["9.0.5.23"], ["h1", "h2"]);
        assert_eq!(result[0].levels["9.0.5.22+PH12345"], ["h3"]);
        assert!(result[1].levels.is_empty());
        assert!(!is_consistent(&result));
        let condition = consistent_condition(&result);
        assert_eq!(condition.status, Status::False);
        assert_eq!(
            condition.message,
            "was: 9.0.5.22+PH12345 on h3; 9.0.5.23 on h1, h2"
        );
    }

    #[test]
    fn one_level_everywhere_is_consistent() {
        let a = [product("9.0.5.23", &["IFPH1"])];
        let result = consistency(&["was"], [("h1", &a[..]), ("h2", &a[..])]);
        assert!(is_consistent(&result));
        let condition = consistent_condition(&result);
        assert_eq!(
            (condition.status, condition.reason),
            (Status::True, "OneLevel")
        );
        assert_eq!(condition.message, "was at 9.0.5.23+PH1");
    }
}
