//! The API's one table of error codes and statuses, and the JSON error shape
//! of docs/api.md: `{"error": {"code", "message", "details"}}`.
//!
//! Client errors are not logged; internal ones are logged with their cause and
//! answered with a generic message.

use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use serde::Serialize;
use serde_json::{Value as Json, json};
use sift_engine::Error as EngineError;

use utoipa::openapi::Ref;
use utoipa::openapi::schema::{
    AdditionalProperties, ArrayBuilder, ObjectBuilder, SchemaType, Type,
};

use crate::workspace::error::WorkspaceError;

/// The name of the schema of a batch's failing item.
pub const ITEM_ERROR: &str = "ItemError";

/// Declares [`Code`] from one table: each code's variant, wire name and
/// status, so the enum, [`Code::as_str`], [`Code::status`] and [`Code::ALL`]
/// (which the OpenAPI document's `Error` schema lists) cannot disagree.
macro_rules! codes {
    ($($variant:ident => $name:literal, $status:ident;)+) => {
        /// Stable error codes, each with its HTTP status.
        #[derive(Clone, Copy, Debug, PartialEq, Eq)]
        pub enum Code {
            $($variant,)+
        }

        impl Code {
            /// Every code, in the table's order.
            pub const ALL: &'static [Code] = &[$(Code::$variant,)+];

            pub fn as_str(self) -> &'static str {
                match self {
                    $(Code::$variant => $name,)+
                }
            }

            pub fn status(self) -> StatusCode {
                match self {
                    $(Code::$variant => StatusCode::$status,)+
                }
            }
        }
    };
}

codes! {
    BadRequest => "bad_request", BAD_REQUEST;
    Unauthorized => "unauthorized", UNAUTHORIZED;
    Forbidden => "forbidden", FORBIDDEN;
    NotFound => "not_found", NOT_FOUND;
    MethodNotAllowed => "method_not_allowed", METHOD_NOT_ALLOWED;
    NameTaken => "name_taken", CONFLICT;
    SegmentInUse => "segment_in_use", CONFLICT;
    FieldTypeConflict => "field_type_conflict", CONFLICT;
    WrongSegmentKind => "wrong_segment_kind", CONFLICT;
    KnownContact => "known_contact", CONFLICT;
    AlreadyIdentified => "already_identified", CONFLICT;
    FacebookNotConnected => "facebook_not_connected", CONFLICT;
    ExportNotFailed => "export_not_failed", CONFLICT;
    PayloadTooLarge => "payload_too_large", PAYLOAD_TOO_LARGE;
    RequestTimeout => "request_timeout", REQUEST_TIMEOUT;
    FieldLimitExceeded => "field_limit_exceeded", UNPROCESSABLE_ENTITY;
    ValidationFailed => "validation_failed", UNPROCESSABLE_ENTITY;
    InvalidCondition => "invalid_condition", UNPROCESSABLE_ENTITY;
    FacebookRefused => "facebook_refused", UNPROCESSABLE_ENTITY;
    Internal => "internal", INTERNAL_SERVER_ERROR;
    FacebookUnavailable => "facebook_unavailable", BAD_GATEWAY;
    Unavailable => "unavailable", SERVICE_UNAVAILABLE;
}

#[derive(Debug)]
pub struct ApiError {
    pub code: Code,
    pub message: String,
    pub details: Json,
}

pub type ApiResult<T> = Result<T, ApiError>;

impl ApiError {
    pub fn new(code: Code, message: impl Into<String>) -> ApiError {
        ApiError {
            code,
            message: message.into(),
            details: json!({}),
        }
    }

    pub fn with(mut self, details: Json) -> ApiError {
        self.details = details;
        self
    }

    pub fn bad_request(message: impl Into<String>) -> ApiError {
        ApiError::new(Code::BadRequest, message)
    }

    pub fn validation(message: impl Into<String>) -> ApiError {
        ApiError::new(Code::ValidationFailed, message)
    }

    pub fn not_found(message: impl Into<String>) -> ApiError {
        ApiError::new(Code::NotFound, message)
    }

    /// Logs the cause and hides it from the client.
    pub fn internal(cause: impl std::fmt::Display) -> ApiError {
        tracing::error!(%cause, "internal error");
        ApiError::new(
            Code::Internal,
            "something went wrong on the server; it has been logged",
        )
    }

    pub fn to_json(&self) -> Json {
        json!({"error": {"code": self.code.as_str(), "message": self.message, "details": self.details}})
    }
}

/// One failing item of a batch, as the 422 answer of `POST /v1/contacts:batch`
/// and `POST /v1/events` lists them in `details.items`: the item's index in
/// the request and the error it would get on its own.
#[derive(Debug, Serialize, utoipa::ToSchema)]
#[schema(example = json!({
    "code": "validation_failed",
    "details": {"expected": "string", "field": "plan", "given": "42 (a number)"},
    "index": 3,
    "message": "field \"plan\" expects a string value, got 42 (a number)"
}))]
pub struct ItemError {
    // Keys in alphabetical order: the order the untyped answers had.
    /// One of the error codes of the `Error` schema.
    #[serde(serialize_with = "code_name")]
    #[schema(value_type = String, example = "validation_failed")]
    pub code: Code,
    /// What the code concerns, as in the `Error` schema.
    #[schema(schema_with = error_details)]
    pub details: Json,
    /// The item's position in the request's list, from 0.
    pub index: usize,
    /// For a person: what is wrong with this item.
    pub message: String,
}

impl ItemError {
    pub fn new(index: usize, error: ApiError) -> ItemError {
        ItemError {
            code: error.code,
            details: error.details,
            index,
            message: error.message,
        }
    }

    /// `{"items": [...]}`, the details of a batch's 422.
    pub fn details(items: &[ItemError]) -> Json {
        json!({ "items": items })
    }
}

fn code_name<S: serde::Serializer>(code: &Code, serializer: S) -> Result<S::Ok, S::Error> {
    serializer.serialize_str(code.as_str())
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        (self.code.status(), axum::Json(self.to_json())).into_response()
    }
}

impl From<WorkspaceError> for ApiError {
    fn from(error: WorkspaceError) -> ApiError {
        match error {
            WorkspaceError::Closed => ApiError::new(Code::Unavailable, error.to_string()),
            WorkspaceError::WriterStopped
            | WorkspaceError::CommitFailed(_)
            | WorkspaceError::LockPoisoned(_)
            | WorkspaceError::ReadFailed(_)
            | WorkspaceError::Retention(_)
            | WorkspaceError::Store(_) => ApiError::internal(error),
        }
    }
}

impl From<sift_lang::ConditionError> for ApiError {
    fn from(error: sift_lang::ConditionError) -> ApiError {
        let mut details = serde_json::Map::new();
        if let Some(pos) = error.position {
            details.insert("line".into(), json!(pos.line));
            details.insert("column".into(), json!(pos.column));
        }
        if let Some(path) = &error.path {
            details.insert("path".into(), json!(path));
        }
        if let Some(guess) = &error.did_you_mean {
            details.insert("did_you_mean".into(), json!(guess));
        }
        ApiError::new(Code::InvalidCondition, error.to_string()).with(Json::Object(details))
    }
}

impl From<EngineError> for ApiError {
    fn from(error: EngineError) -> ApiError {
        let message = error.to_string();
        match error {
            EngineError::NotFound { what, id } => {
                ApiError::new(Code::NotFound, message).with(json!({"kind": what, "id": id}))
            }
            EngineError::TypeMismatch {
                field,
                expected,
                given,
            } => ApiError::validation(message)
                .with(json!({"field": field, "expected": expected.name(), "given": given})),
            EngineError::BatchInvalid { failures, .. } => {
                let items: Vec<ItemError> = failures
                    .into_iter()
                    .map(|(index, e)| ItemError::new(index, ApiError::from(e)))
                    .collect();
                ApiError::validation(message).with(ItemError::details(&items))
            }
            EngineError::FieldTypeConflict { field, .. } => {
                ApiError::new(Code::FieldTypeConflict, message).with(json!({"field": field}))
            }
            EngineError::TooManyFields { field, limit } => {
                ApiError::new(Code::FieldLimitExceeded, message).with(
                    json!({"field": field, "limit": limit, "setting": "--max-fields (SIFT_MAX_FIELDS)"}),
                )
            }
            EngineError::TooManyNewFields { field, limit } => {
                ApiError::new(Code::FieldLimitExceeded, message).with(
                    json!({"field": field, "limit": limit, "setting": "--max-new-fields (SIFT_MAX_NEW_FIELDS)"}),
                )
            }
            EngineError::InvalidCondition(e) => e.into(),
            EngineError::Cycle { path } => {
                ApiError::new(Code::InvalidCondition, message).with(json!({"cycle": path}))
            }
            EngineError::WorkflowNameTaken(name) => {
                ApiError::new(Code::NameTaken, message).with(json!({"field": "name", "name": name}))
            }
            EngineError::InvalidWorkflow { path, .. } => {
                ApiError::validation(message).with(json!({"field": path}))
            }
            EngineError::NameTaken(name) => {
                ApiError::new(Code::NameTaken, message).with(json!({"field": "name", "name": name}))
            }
            EngineError::InUse { usages, .. } => ApiError::new(Code::SegmentInUse, message)
                .with(json!({"usages": crate::reply::usages_json(&usages)})),
            EngineError::WrongKind { .. } => ApiError::new(Code::WrongSegmentKind, message),
            EngineError::Unsupported(_) => ApiError::new(Code::InvalidCondition, message),
            EngineError::UnknownContacts(ids) => {
                ApiError::new(Code::NotFound, message).with(json!({"contact_ids": ids}))
            }
            EngineError::DateOutOfRange { field, .. } => {
                ApiError::validation(message).with(json!({"field": field}))
            }
            EngineError::ReadOnlyField(field) => {
                ApiError::validation(message).with(json!({"field": field}))
            }
            EngineError::InvalidFieldName(field) => {
                ApiError::validation(message).with(json!({"field": field}))
            }
            EngineError::Invalid(_) => ApiError::validation(message),
            EngineError::KnownContact { id, into } => ApiError::new(Code::KnownContact, message)
                .with(json!({"field": "anonymous_id", "id": id, "contact_id": into})),
            EngineError::AlreadyMerged {
                id, merged_into, ..
            } => ApiError::new(Code::AlreadyIdentified, message)
                .with(json!({"field": "anonymous_id", "id": id, "merged_into": merged_into})),
            EngineError::InvalidContactId(_) => {
                ApiError::validation(message).with(json!({"field": "contact_id"}))
            }
            EngineError::EventInFuture { .. } => {
                ApiError::validation(message).with(json!({"field": "at"}))
            }
            // The store could not be read (or its writer stopped): nothing
            // changed, and the same request may succeed once it recovers.
            EngineError::HistoryUnavailable(_) => {
                tracing::error!(cause = %message, "reading the stored event history failed");
                ApiError::new(Code::Unavailable, message)
            }
        }
    }
}

/// The `details` of an error, and of a batch's failing item: the keys most
/// codes use are named (so a typed client reads `details.line` as a number);
/// the object stays open because the other keys vary by code (a 404's `kind`
/// and `id`, a 409's `usages`).
pub(crate) fn error_details() -> ObjectBuilder {
    let described = |kind: Type, description: &'static str| {
        ObjectBuilder::new()
            .schema_type(kind)
            .description(Some(description))
    };
    ObjectBuilder::new()
        .schema_type(Type::Object)
        .description(Some(
            "what the code concerns; the keys named here are the common ones, others \
             depend on the code (docs/api.md, \"Error codes\")",
        ))
        .additional_properties(Some(AdditionalProperties::FreeForm(true)))
        .property(
            "field",
            described(
                Type::String,
                "the key or path at fault (`properties.plan`, `actions[1].points`)",
            ),
        )
        .property(
            "line",
            described(
                Type::Integer,
                "malformed JSON or a text condition: the fault's line",
            ),
        )
        .property(
            "column",
            ObjectBuilder::new()
                .schema_type(SchemaType::from_iter([Type::Integer, Type::String]))
                .description(Some(
                    "malformed JSON or a text condition: the fault's column (a number); \
                     a CSV export: the unknown column asked for (a string)",
                )),
        )
        .property(
            "path",
            described(
                Type::String,
                "a condition's JSON tree: where the faulty node is",
            ),
        )
        .property(
            "items",
            ArrayBuilder::new()
                .items(Ref::from_schema_name(ITEM_ERROR))
                .description(Some(
                    "a batch's 422 (`POST /v1/contacts:batch`, `POST /v1/events`): \
                     every failing item, by index",
                )),
        )
}
