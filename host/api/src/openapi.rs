//! The OpenAPI document, generated from the handlers' annotations.

use utoipa::openapi::security::{Http, HttpAuthScheme, SecurityScheme};
use utoipa::{Modify, OpenApi};

#[derive(OpenApi)]
#[openapi(
    info(title = "sluice ingestion API", description = "Push clinical records to sluice."),
    tags(
        (name = "ingest", description = "Send records"),
        (name = "seed", description = "The seed project's routes, kept so its generator works unchanged"),
        (name = "sources", description = "What can be sent where"),
        (name = "status", description = "Health, readiness and metrics"),
    ),
    paths(
        crate::ingest::post_records,
        crate::ingest::api_patient,
        crate::ingest::api_admissions,
        crate::ingest::api_lab_results,
        crate::routes::list_sources,
        crate::routes::healthz,
        crate::routes::readyz,
        crate::routes::metrics,
    ),
    components(schemas(
        crate::ingest::IngestResponse,
        crate::ingest::RejectedRecord,
        crate::encoding::Coding,
        crate::error::ErrorBody,
        crate::error::ErrorDetail
    )),
    modifiers(&Security)
)]
struct ApiDoc;

struct Security;

impl Modify for Security {
    fn modify(&self, openapi: &mut utoipa::openapi::OpenApi) {
        let components = openapi.components.get_or_insert_with(Default::default);
        components.add_security_scheme("basic", SecurityScheme::Http(Http::new(HttpAuthScheme::Basic)));
        components.add_security_scheme("bearer", SecurityScheme::Http(Http::new(HttpAuthScheme::Bearer)));
    }
}

/// The document served at `/openapi.json`: every route, the seed-compatible ones included.
pub(crate) fn document() -> utoipa::openapi::OpenApi {
    ApiDoc::openapi()
}
