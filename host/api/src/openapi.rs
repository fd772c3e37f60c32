//! The OpenAPI document, generated from the handlers' annotations.

use utoipa::openapi::security::{Http, HttpAuthScheme, SecurityScheme};
use utoipa::{Modify, OpenApi};

#[derive(OpenApi)]
#[openapi(
    info(title = "sluice ingestion API", description = "Push clinical records to sluice."),
    paths(
        crate::ingest::post_records,
        crate::routes::list_sources,
        crate::routes::healthz,
        crate::routes::readyz,
        crate::routes::metrics,
    ),
    components(schemas(crate::ingest::IngestResponse, crate::ingest::RejectedRecord)),
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

/// The document served at `/openapi.json`. The seed-compatible routes (`/api_patient`,
/// `/api_admissions`, `/api_lab_results`) are described in the README, not here: they exist only
/// for the seed's generator.
pub(crate) fn document() -> utoipa::openapi::OpenApi {
    ApiDoc::openapi()
}
