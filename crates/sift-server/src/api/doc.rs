//! Completes the OpenAPI document the `#[utoipa::path]` declarations build:
//! the `bearer` security scheme, the `Error` schema (with `ItemError`, a
//! batch's failing item), the error answers that every operation of a kind
//! can give, and the bounds of every `limit`.
//!
//! Those answers come from code shared by all routes (the key extractors,
//! the body and query extractors, the body-read deadline, the connection
//! limit), not from any one handler, so they are added here from what each
//! operation declares (security, parameters, a request body) instead of being
//! repeated on fifty attributes. A handler's own errors (404, 409, 422) stay
//! on its attribute; every error answer, declared or added, gets the `Error`
//! schema. Likewise every `limit` query parameter is checked by the one
//! [`crate::api::limit`], whose bounds no handler's declaration repeats.

use serde_json::json;
use utoipa::PartialSchema;
use utoipa::openapi::path::{Operation, ParameterIn};
use utoipa::openapi::schema::{AdditionalProperties, ObjectBuilder, SchemaType, Type};
use utoipa::openapi::security::{Http, HttpAuthScheme, SecurityScheme};
use utoipa::openapi::{Components, ContentBuilder, OpenApi, Ref, RefOr, ResponseBuilder, Schema};

use super::{DEFAULT_LIMIT, MAX_LIMIT};
use crate::error::{Code, ITEM_ERROR, ItemError};

/// The name of the security scheme operations refer to.
pub const BEARER: &str = "bearer";

/// The name of the error schema every error answer refers to.
pub const ERROR: &str = "Error";

/// The `Error` schema as a type, so that an operation's attribute can name it
/// to give an error answer its own example (`body = ErrorBody, example = ...`);
/// the reference it makes is to `Error`.
pub struct ErrorBody;

impl utoipa::PartialSchema for ErrorBody {
    fn schema() -> RefOr<Schema> {
        RefOr::T(error_schema())
    }
}

impl utoipa::ToSchema for ErrorBody {
    fn name() -> std::borrow::Cow<'static, str> {
        std::borrow::Cow::Borrowed(ERROR)
    }
}

/// Adds the security scheme, the `Error` schema and the shared error answers.
pub fn complete(doc: &mut OpenApi) {
    let components = doc.components.get_or_insert_with(Components::new);
    components.add_security_scheme(
        BEARER,
        SecurityScheme::Http(Http::new(HttpAuthScheme::Bearer)),
    );
    components
        .schemas
        .insert(ERROR.to_string(), RefOr::T(error_schema()));
    components
        .schemas
        .insert(ITEM_ERROR.to_string(), ItemError::schema());
    close_hand_parsed_bodies(components);
    for item in doc.paths.paths.values_mut() {
        for operation in [
            &mut item.get,
            &mut item.put,
            &mut item.post,
            &mut item.delete,
            &mut item.patch,
        ]
        .into_iter()
        .flatten()
        {
            add_shared_errors(operation);
            bound_limits(operation);
        }
    }
}

/// Request bodies read by a hand-written parser, which refuses every key it
/// does not list (`unknown key ...`, a 422). Bodies read by serde say the
/// same through `#[serde(deny_unknown_fields)]`; these have no serde derive
/// to carry it.
const CLOSED_BY_HAND: [&str; 5] = [
    "ContactBody",
    "BatchContact",
    "IdentifyBody",
    "Event",
    "EventBatch",
];

fn close_hand_parsed_bodies(components: &mut Components) {
    for name in CLOSED_BY_HAND {
        let Some(RefOr::T(Schema::Object(object))) = components.schemas.get_mut(name) else {
            continue;
        };
        object.additional_properties = Some(Box::new(AdditionalProperties::FreeForm(false)));
        if name == "ContactBody" {
            // The parser is shared with a batch's items, so `PUT
            // /v1/contacts/{id}` takes (and ignores) their `id` too.
            object.properties.insert(
                "id".to_string(),
                ObjectBuilder::new()
                    .schema_type(SchemaType::AnyValue)
                    .description(Some(
                        "ignored: the path names the contact (accepted so that an item \
                         of `POST /v1/contacts:batch` can be sent as it is)",
                    ))
                    .into(),
            );
        }
    }
}

/// `{"error": {"code", "message", "details"}}`, `code` one of [`Code::ALL`].
fn error_schema() -> Schema {
    let codes: Vec<&str> = Code::ALL.iter().map(|c| c.as_str()).collect();
    let inner = ObjectBuilder::new()
        .property(
            "code",
            ObjectBuilder::new()
                .schema_type(Type::String)
                .enum_values(Some(codes))
                .description(Some(
                    "stable; the HTTP status follows from it (docs/api.md, \"Error codes\")",
                )),
        )
        .required("code")
        .property(
            "message",
            ObjectBuilder::new()
                .schema_type(Type::String)
                .description(Some("for a person: what is wrong and what to do")),
        )
        .required("message")
        .property("details", crate::error::error_details())
        .required("details");
    Schema::Object(
        ObjectBuilder::new()
            .property("error", inner)
            .required("error")
            .examples([json!({"error": {
                "code": "not_found",
                "message": "contact \"c1\" does not exist",
                "details": {"kind": "contact", "id": "c1"}
            }})])
            .build(),
    )
}

fn add_shared_errors(operation: &mut Operation) {
    let authenticated = operation.security.as_ref().is_some_and(|s| !s.is_empty());
    let has_body = operation.request_body.is_some();
    let has_parameters = operation.parameters.as_ref().is_some_and(|p| !p.is_empty());
    let admin = operation
        .tags
        .as_ref()
        .is_some_and(|tags| tags.iter().any(|t| t == "admin"));
    let mut shared: Vec<(&str, &str)> = Vec::new();
    match (has_body, has_parameters) {
        (true, true) => shared.push((
            "400",
            "the body is not valid JSON for this request, or a parameter is malformed",
        )),
        (true, false) => shared.push(("400", "the body is not valid JSON for this request")),
        (false, true) => shared.push(("400", "a path or query parameter is malformed")),
        (false, false) => {}
    }
    if authenticated {
        shared.push(("401", "no key, or an unknown or revoked key"));
        shared.push(if admin {
            ("403", "a workspace key: this route needs the admin key")
        } else {
            (
                "403",
                "the admin key, which manages workspaces only; or a request signed in by the web \
                 UI's session cookie that changes data without `Sift-UI: 1`",
            )
        });
    }
    if has_body {
        shared.push((
            "408",
            "the request body did not arrive within the body-read timeout",
        ));
        shared.push(("413", "the request body is larger than the body limit"));
    }
    if authenticated {
        shared.push(("500", "an internal error; it has been logged"));
    }
    shared.push((
        "503",
        "the server is at its connection limit or shutting down, or the workspace is closed",
    ));
    let responses = &mut operation.responses.responses;
    for (status, description) in shared {
        responses
            .entry(status.to_string())
            .or_insert_with(|| RefOr::T(ResponseBuilder::new().description(description).build()));
    }
    for (status, response) in responses.iter_mut() {
        let is_error = status.starts_with('4') || status.starts_with('5');
        if let (true, RefOr::T(response)) = (is_error, response)
            && response.content.is_empty()
        {
            response.content.insert(
                "application/json".to_string(),
                ContentBuilder::new()
                    .schema(Some(Ref::from_schema_name(ERROR)))
                    .build(),
            );
        }
    }
}

/// `limit` is 1 to [`MAX_LIMIT`], [`DEFAULT_LIMIT`] when absent; the schema
/// derived from `Option<usize>` says only "at least 0".
fn bound_limits(operation: &mut Operation) {
    let parameters = operation.parameters.iter_mut().flatten();
    for parameter in
        parameters.filter(|p| p.name == "limit" && p.parameter_in == ParameterIn::Query)
    {
        if let Some(RefOr::T(Schema::Object(schema))) = parameter.schema.as_mut() {
            schema.minimum = Some(1.into());
            // A handler with its own bound (value suggestions) declares it.
            if schema.maximum.is_none() {
                schema.maximum = Some(MAX_LIMIT.into());
                schema.default = Some(json!(DEFAULT_LIMIT));
            }
        }
    }
}
