//! Appliance image file names: `<model><version>.<feature>…<format>`, e.g.
//! `idg7519.oradco.scrypt4` (IDG, 7.5.1.9, DCO-Oracle, virtual) or `xg452018413.scrypt3`.

use std::fmt;

use super::version::FirmwareVersion;

/// The appliance models upkeep can upgrade (the model group of an image).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Model {
    /// IDG.
    Idg,
    /// XB62.
    Xb62,
    /// XI52.
    Xi52,
    /// XG45.
    Xg45,
}

impl Model {
    /// Every supported model.
    pub const ALL: [Model; 4] = [Model::Idg, Model::Xb62, Model::Xi52, Model::Xg45];

    /// The device type as devices report it, e.g. `IDG`.
    pub const fn device_type(self) -> &'static str {
        match self {
            Self::Idg => "IDG",
            Self::Xb62 => "XB62",
            Self::Xi52 => "XI52",
            Self::Xg45 => "XG45",
        }
    }

    /// The prefix of the model's image names, e.g. `idg`.
    pub const fn image_prefix(self) -> &'static str {
        match self {
            Self::Idg => "idg",
            Self::Xb62 => "xb62",
            Self::Xi52 => "xi52",
            Self::Xg45 => "xg45",
        }
    }

    /// The model of a device type as the device reports it (case-insensitive); `None` for a type
    /// outside the appliance family.
    pub fn from_device_type(device_type: &str) -> Option<Self> {
        Self::ALL
            .into_iter()
            .find(|m| m.device_type().eq_ignore_ascii_case(device_type.trim()))
    }

    /// The model whose image prefix starts `name`, if any.
    pub fn from_image_name(name: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|m| {
            name.get(..m.image_prefix().len())
                .is_some_and(|p| p.eq_ignore_ascii_case(m.image_prefix()))
        })
    }
}

impl fmt::Display for Model {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.device_type())
    }
}

/// A licensed feature an image can carry.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Feature {
    /// DCO-Oracle (`oradco` in image names).
    DcoOracle,
    /// Tibco-EMS (`tibco` in image names).
    TibcoEms,
}

impl Feature {
    /// The feature's license name, as devices report it.
    pub const fn license_name(self) -> &'static str {
        match self {
            Self::DcoOracle => "DCO-Oracle",
            Self::TibcoEms => "Tibco-EMS",
        }
    }

    /// The feature of an image-name token.
    fn from_token(token: &str) -> Option<Self> {
        match token.to_ascii_lowercase().as_str() {
            "oradco" => Some(Self::DcoOracle),
            "tibco" => Some(Self::TibcoEms),
            _ => None,
        }
    }

    /// The feature of a license name as a device reports it (case-insensitive).
    pub fn from_license_name(name: &str) -> Option<Self> {
        [Self::DcoOracle, Self::TibcoEms]
            .into_iter()
            .find(|f| f.license_name().eq_ignore_ascii_case(name.trim()))
    }
}

/// Which kind of appliance an image is built for.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum ImageFormat {
    /// `scrypt3`: physical appliances.
    Scrypt3,
    /// `scrypt4`: virtual appliances.
    Scrypt4,
}

impl ImageFormat {
    /// Whether the format is for virtual appliances.
    pub const fn is_virtual(self) -> bool {
        matches!(self, Self::Scrypt4)
    }
}

/// A parsed appliance image name.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ApplianceImage {
    /// The model group the image is built for.
    pub model: Model,
    /// The firmware version it installs.
    pub version: FirmwareVersion,
    /// The licensed features it carries.
    pub features: Vec<Feature>,
    /// Physical or virtual.
    pub format: ImageFormat,
}

/// Why an image name could not be used.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum ImageNameError {
    /// The last dot-separated part is not `scrypt3` or `scrypt4`.
    #[error(
        "image {name:?} ends in {format:?}: appliance images end in .scrypt3 (physical) or .scrypt4 (virtual)"
    )]
    UnknownFormat {
        /// The image name.
        name: String,
        /// The part found where the format belongs.
        format: String,
    },
    /// The name is not `<model><version>.<features>.<format>`.
    #[error(
        "image {name:?} is not <model><version>.<features>.<format> ({reason}), e.g. idg7519.oradco.scrypt4"
    )]
    Unparseable {
        /// The image name.
        name: String,
        /// What is wrong.
        reason: String,
    },
}

impl ApplianceImage {
    /// Parses an image file name. The format is checked first, as the validation order wants.
    pub fn parse(name: &str) -> Result<Self, ImageNameError> {
        let parts: Vec<&str> = name.split('.').collect();
        let format_part = parts.last().copied().unwrap_or_default();
        let format = match format_part.to_ascii_lowercase().as_str() {
            "scrypt3" => ImageFormat::Scrypt3,
            "scrypt4" => ImageFormat::Scrypt4,
            _ => {
                return Err(ImageNameError::UnknownFormat {
                    name: name.to_string(),
                    format: format_part.to_string(),
                });
            }
        };
        let unparseable = |reason: &str| ImageNameError::Unparseable {
            name: name.to_string(),
            reason: reason.to_string(),
        };
        if parts.len() < 2 {
            return Err(unparseable("no model and version before the format"));
        }
        let head = parts[0];
        let model = Model::from_image_name(head)
            .ok_or_else(|| unparseable("it does not start with idg, xb62, xi52 or xg45"))?;
        let digits = &head[model.image_prefix().len()..];
        let version = parse_version_digits(digits).ok_or_else(|| {
            unparseable("the version after the model must be 4 digits (7519), 5 starting with 10 (10601) or 7 starting with 20 (2018413)")
        })?;
        let features = parts[1..parts.len() - 1]
            .iter()
            .map(|token| {
                Feature::from_token(token).ok_or_else(|| {
                    unparseable(&format!("unknown feature {token:?}; known: oradco, tibco"))
                })
            })
            .collect::<Result<Vec<_>, _>>()?;
        Ok(Self {
            model,
            version,
            features,
            format,
        })
    }

    /// Whether a name is meant as an appliance image: it starts with an appliance model prefix.
    pub fn is_appliance_name(name: &str) -> bool {
        Model::from_image_name(name).is_some()
    }
}

/// The version encoded after the model prefix: `abcd` → a.b.c.d, `10cde` → 10.c.d.e,
/// `20yybcd` → 20yy.b.c.d.
fn parse_version_digits(digits: &str) -> Option<FirmwareVersion> {
    if !digits.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    let d: Vec<u32> = digits.bytes().map(|b| u32::from(b - b'0')).collect();
    let components = match d.len() {
        4 => d,
        5 if digits.starts_with("10") => vec![10, d[2], d[3], d[4]],
        7 if digits.starts_with("20") => vec![digits[..4].parse().ok()?, d[4], d[5], d[6]],
        _ => return None,
    };
    FirmwareVersion::new(components)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(name: &str) -> ApplianceImage {
        ApplianceImage::parse(name).unwrap()
    }

    #[test]
    fn parses_the_contract_examples() {
        let idg = parse("idg7519.oradco.scrypt4");
        assert_eq!(idg.model, Model::Idg);
        assert_eq!(idg.version.to_string(), "7.5.1.9");
        assert_eq!(idg.features, vec![Feature::DcoOracle]);
        assert_eq!(idg.format, ImageFormat::Scrypt4);

        let xg = parse("xg452018413.scrypt3");
        assert_eq!(xg.model, Model::Xg45);
        assert_eq!(xg.version.to_string(), "2018.4.1.3");
        assert!(xg.features.is_empty());
        assert!(!xg.format.is_virtual());

        let ten = parse("idg10601.tibco.oradco.scrypt4");
        assert_eq!(ten.version.to_string(), "10.6.0.1");
        assert_eq!(ten.features, vec![Feature::TibcoEms, Feature::DcoOracle]);
        assert_eq!(parse("xb627519.scrypt3").model, Model::Xb62);
        assert_eq!(parse("xi527519.scrypt3").model, Model::Xi52);
    }

    #[test]
    fn format_is_checked_before_the_rest() {
        for name in ["idg7519.oradco.zip", "garbage", "idg7519", "x.scrypt5"] {
            assert!(
                matches!(
                    ApplianceImage::parse(name),
                    Err(ImageNameError::UnknownFormat { .. })
                ),
                "{name}"
            );
        }
    }

    #[test]
    fn bad_names_with_a_good_format_are_unparseable() {
        for name in [
            "scrypt4",
            "abc7519.scrypt4",
            "idg75.scrypt4",
            "idg75190.scrypt4",
            "idg30601.scrypt4",
            "idg1018413.scrypt4",
            "idg7519.oracle.scrypt4",
            "idg7a19.scrypt4",
        ] {
            assert!(
                matches!(
                    ApplianceImage::parse(name),
                    Err(ImageNameError::Unparseable { .. })
                ),
                "{name}"
            );
        }
    }

    #[test]
    fn device_types_and_licenses_map_to_models_and_features() {
        assert_eq!(Model::from_device_type("idg"), Some(Model::Idg));
        assert_eq!(Model::from_device_type("XG45"), Some(Model::Xg45));
        assert_eq!(Model::from_device_type("XC10"), None);
        assert_eq!(
            Feature::from_license_name("DCO-Oracle"),
            Some(Feature::DcoOracle)
        );
        assert!(ApplianceImage::is_appliance_name("idg7519.scrypt4"));
        assert!(!ApplianceImage::is_appliance_name("bios-2.1.bin"));
    }
}
