//! Errors as the API server reports them: `meta.k8s.io/v1` `Status` objects with the HTTP code,
//! the machine-readable reason and, where the real server gives them, details (the resource,
//! the name, field causes). kube turns these into `kube::Error::Api`.

use http::StatusCode;
use serde_json::{Map, Value, json};

use super::resources::ResourceInfo;

/// One cause of a failure: which field, and why.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct Cause {
    /// A CamelCase reason such as `FieldValueInvalid` or `FieldManagerConflict`.
    pub reason: String,
    /// What is wrong.
    pub message: String,
    /// The field path, as `metadata.name` or `.spec.image`.
    pub field: String,
}

/// A failed request, rendered as a `Status`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct ApiError {
    /// The HTTP status code.
    pub code: StatusCode,
    /// The `reason` of the `Status` (`NotFound`, `Conflict`, …).
    pub reason: &'static str,
    /// The human-readable message.
    pub message: String,
    /// `details.name`, `details.group`, `details.kind` (the plural resource or the kind) and
    /// `details.causes`.
    pub details: Option<Box<Details>>,
}

/// `details` of a `Status`.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub(crate) struct Details {
    pub name: String,
    pub group: String,
    pub kind: String,
    pub causes: Vec<Cause>,
    /// `retryAfterSeconds` (omitted when zero), also sent as the `Retry-After` header.
    pub retry_after_seconds: i64,
}

/// The result of a request handler.
pub(crate) type ApiResult<T> = Result<T, ApiError>;

impl ApiError {
    fn new(code: StatusCode, reason: &'static str, message: impl Into<String>) -> Self {
        Self {
            code,
            reason,
            message: message.into(),
            details: None,
        }
    }

    fn with_details(mut self, details: Details) -> Self {
        self.details = Some(Box::new(details));
        self
    }

    /// 404 `NotFound` for a named object: `upgradetasks.upkeep.dev "x" not found`.
    pub fn not_found(info: &ResourceInfo, name: &str) -> Self {
        Self::new(
            StatusCode::NOT_FOUND,
            "NotFound",
            format!("{} \"{name}\" not found", info.qualified()),
        )
        .with_details(Details::resource(info, name))
    }

    /// 404 `NotFound` for a path the server does not serve.
    pub fn no_route() -> Self {
        Self::new(
            StatusCode::NOT_FOUND,
            "NotFound",
            "the server could not find the requested resource",
        )
        .with_details(Details::default())
    }

    /// 409 `AlreadyExists`.
    pub fn already_exists(info: &ResourceInfo, name: &str) -> Self {
        Self::new(
            StatusCode::CONFLICT,
            "AlreadyExists",
            format!("{} \"{name}\" already exists", info.qualified()),
        )
        .with_details(Details::resource(info, name))
    }

    /// 409 `Conflict` for a stale `resourceVersion` (optimistic locking).
    pub fn stale(info: &ResourceInfo, name: &str) -> Self {
        Self::conflict(
            info,
            name,
            "the object has been modified; please apply your changes to the latest version and try again",
        )
    }

    /// 409 `Conflict` with the given explanation.
    pub fn conflict(info: &ResourceInfo, name: &str, why: &str) -> Self {
        Self::new(
            StatusCode::CONFLICT,
            "Conflict",
            format!(
                "Operation cannot be fulfilled on {} \"{name}\": {why}",
                info.qualified()
            ),
        )
        .with_details(Details::resource(info, name))
    }

    /// 409 `Conflict` of server-side apply: fields owned by other managers.
    pub fn apply_conflicts(
        info: &ResourceInfo,
        name: &str,
        conflicts: &[(String, String)],
    ) -> Self {
        let causes: Vec<Cause> = conflicts
            .iter()
            .map(|(manager, field)| Cause {
                reason: "FieldManagerConflict".into(),
                message: format!("conflict with \"{manager}\""),
                field: field.clone(),
            })
            .collect();
        let noun = if causes.len() == 1 {
            "conflict"
        } else {
            "conflicts"
        };
        let list: Vec<String> = causes
            .iter()
            .map(|c| format!("{}: {}", c.message, c.field))
            .collect();
        let message = format!(
            "Apply failed with {} {noun}: {}",
            causes.len(),
            list.join("\n")
        );
        let mut details = Details::resource(info, name);
        details.causes = causes;
        Self::new(StatusCode::CONFLICT, "Conflict", message).with_details(details)
    }

    /// 400 `BadRequest`.
    pub fn bad_request(message: impl Into<String>) -> Self {
        Self::new(StatusCode::BAD_REQUEST, "BadRequest", message)
    }

    /// 429 `TooManyRequests` with one cause (as an eviction refused by a disruption budget),
    /// asking the client to come back after `retry_after` seconds if given.
    pub fn too_many_requests(message: &str, cause: Cause, retry_after: Option<i64>) -> Self {
        Self::new(StatusCode::TOO_MANY_REQUESTS, "TooManyRequests", message).with_details(Details {
            causes: vec![cause],
            retry_after_seconds: retry_after.unwrap_or(0),
            ..Details::default()
        })
    }

    /// 403 `Forbidden`: `poddisruptionbudget.policy "x" is forbidden: why`.
    pub fn forbidden(qualified: &str, name: &str, why: &str) -> Self {
        let (kind, group) = qualified.split_once('.').unwrap_or((qualified, ""));
        Self::new(
            StatusCode::FORBIDDEN,
            "Forbidden",
            format!("{qualified} \"{name}\" is forbidden: {why}"),
        )
        .with_details(Details {
            name: name.to_string(),
            group: group.to_string(),
            kind: kind.to_string(),
            ..Details::default()
        })
    }

    /// 422 `Invalid`: `UpgradeTask.upkeep.dev "x" is invalid: field: message`.
    pub fn invalid(info: &ResourceInfo, name: &str, causes: Vec<Cause>) -> Self {
        let list: Vec<String> = causes
            .iter()
            .map(|c| format!("{}: {}", c.field, c.message))
            .collect();
        let message = format!(
            "{} \"{name}\" is invalid: {}",
            info.qualified_kind(),
            list.join(", ")
        );
        Self::new(StatusCode::UNPROCESSABLE_ENTITY, "Invalid", message).with_details(Details {
            name: name.to_string(),
            group: info.group.clone(),
            kind: info.kind.clone(),
            causes,
            retry_after_seconds: 0,
        })
    }

    /// 422 `Invalid` with one field cause.
    pub fn invalid_field(info: &ResourceInfo, name: &str, field: &str, message: &str) -> Self {
        Self::invalid(
            info,
            name,
            vec![Cause {
                reason: "FieldValueInvalid".into(),
                message: message.to_string(),
                field: field.to_string(),
            }],
        )
    }

    /// 415 `UnsupportedMediaType`.
    pub fn unsupported_media_type(content_type: &str, accepted: &[&str]) -> Self {
        Self::new(
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            "UnsupportedMediaType",
            format!(
                "the body of the request was in an unknown format ({content_type:?}) - accepted media types include: {}",
                accepted.join(", ")
            ),
        )
    }

    /// 405 `MethodNotAllowed`.
    pub fn method_not_allowed(method: &http::Method) -> Self {
        Self::new(
            StatusCode::METHOD_NOT_ALLOWED,
            "MethodNotAllowed",
            format!("the server does not allow this method on the requested resource ({method})"),
        )
    }

    /// 410 `Expired`, as sent inside a watch stream when the requested version is gone.
    pub fn expired(message: impl Into<String>) -> Self {
        Self::new(StatusCode::GONE, "Expired", message)
    }

    /// The `Status` object.
    pub fn to_status(&self) -> Value {
        let mut status = json!({
            "kind": "Status",
            "apiVersion": "v1",
            "metadata": {},
            "status": "Failure",
            "message": self.message,
            "reason": self.reason,
            "code": self.code.as_u16(),
        });
        if let Some(details) = &self.details {
            let mut d = Map::new();
            if !details.name.is_empty() {
                d.insert("name".into(), details.name.clone().into());
            }
            if !details.group.is_empty() {
                d.insert("group".into(), details.group.clone().into());
            }
            if !details.kind.is_empty() {
                d.insert("kind".into(), details.kind.clone().into());
            }
            if !details.causes.is_empty() {
                let causes: Vec<Value> = details
                    .causes
                    .iter()
                    .map(|c| {
                        let mut cause = json!({"reason": c.reason, "message": c.message});
                        if !c.field.is_empty() {
                            cause["field"] = c.field.clone().into();
                        }
                        cause
                    })
                    .collect();
                d.insert("causes".into(), causes.into());
            }
            if details.retry_after_seconds > 0 {
                d.insert(
                    "retryAfterSeconds".into(),
                    details.retry_after_seconds.into(),
                );
            }
            status["details"] = Value::Object(d);
        }
        status
    }
}

impl Details {
    fn resource(info: &ResourceInfo, name: &str) -> Self {
        Self {
            name: name.to_string(),
            group: info.group.clone(),
            kind: info.plural.clone(),
            ..Self::default()
        }
    }
}

/// A `Status` of `Success`, as a delete of a built-in kind returns.
pub(crate) fn success(info: &ResourceInfo, name: &str, uid: &str) -> Value {
    let mut details = json!({"name": name, "kind": info.plural, "uid": uid});
    if !info.group.is_empty() {
        details["group"] = info.group.clone().into();
    }
    json!({
        "kind": "Status",
        "apiVersion": "v1",
        "metadata": {},
        "status": "Success",
        "details": details,
    })
}
