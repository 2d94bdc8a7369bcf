//! The operator's side under `/admin`: sign-in, the dashboard, followers and their conversations,
//! messages, reply rules, the custom menu, QR codes, template messages, the outbox and the apps that
//! sign followers in (OpenID Connect clients).
//!
//! Every route but the sign-in page is declared in one [`Table`], and the router built from it puts all
//! of them behind [`require_admin`]: a route cannot be added without the guard, and the test that checks
//! every route refuses an anonymous visitor reads the same table.

pub mod auth;
mod clients;
pub(crate) mod conversation;
mod dashboard;
mod endpoints;
mod frame;
mod menu;
mod messages;
mod outbox;
mod qr;
mod rules;
mod templates;
mod tokens;
mod upload;
mod users;

use axum::Router;
use axum::body::Body;
use axum::extract::{Request, State};
use axum::handler::Handler;
use axum::http::{HeaderValue, Method, header};
use axum::middleware::{self, Next};
use axum::response::Response;
use axum::routing::{MethodRouter, get, post};
use tower_http::set_header::SetResponseHeaderLayer;
use tower_sessions::Session;

use crate::web::error::AppError;
use crate::web::sessions::{Csrf, CsrfForm};
use crate::web::state::AppState;

pub use frame::CurrentAdmin;
use frame::see_other;

/// Admin forms are small; anything larger is refused before it is read.
const MAX_FORM: usize = 64 * 1024;
/// A form with an image: WeChat's limit for the image and room for the other fields.
const MAX_UPLOAD: usize = crate::media::MAX_IMAGE_BYTES + MAX_FORM;

/// The guarded routes, and the list of them a test can walk.
struct Table {
    router: Router<AppState>,
    listed: Vec<(Method, &'static str)>,
}

impl Table {
    fn new() -> Self {
        Self {
            router: Router::new(),
            listed: Vec::new(),
        }
    }

    fn add(mut self, method: Method, path: &'static str, route: MethodRouter<AppState>) -> Self {
        self.listed.push((method, path));
        self.router = self.router.route(path, route);
        self
    }

    fn get<H: Handler<T, AppState>, T: 'static>(self, path: &'static str, handler: H) -> Self {
        self.add(Method::GET, path, get(handler))
    }

    fn post<H: Handler<T, AppState>, T: 'static>(self, path: &'static str, handler: H) -> Self {
        self.add(Method::POST, path, post(handler))
    }
}

fn table() -> Table {
    Table::new()
        .get("/admin", dashboard::show)
        .post("/admin/logout", auth::logout)
        .get("/admin/metrics", crate::web::metrics::scrape)
        .get("/admin/users", users::list)
        .get("/admin/users.csv", users::export)
        .post("/admin/users/sync", users::sync)
        .get("/admin/users/{openid}", users::detail)
        .post("/admin/users/{openid}/tag", users::tag)
        .post("/admin/users/{openid}/delete", users::delete)
        .post("/admin/users/{openid}/answer", conversation::answer)
        .get("/admin/messages", messages::list)
        .get("/admin/messages/{id}", messages::detail)
        .get("/admin/replies", rules::list)
        .get("/admin/replies/new", rules::new_rule)
        .post("/admin/replies/new", rules::create)
        .get("/admin/replies/{id}", rules::edit)
        .post("/admin/replies/{id}", rules::update)
        .post("/admin/replies/{id}/move", rules::move_rule)
        .post("/admin/replies/{id}/delete", rules::delete)
        .get("/admin/menu", menu::show)
        .post("/admin/menu", menu::save)
        .post("/admin/menu/load", menu::load)
        .post("/admin/menu/delete", menu::delete)
        .get("/admin/outbox", outbox::list)
        .get("/admin/media/{media_id}/thumbnail", upload::thumbnail)
        .get("/admin/qr", qr::list)
        .post("/admin/qr", qr::create)
        .get("/admin/qr/{id}/{format}", qr::image)
        .get("/admin/templates", templates::list)
        .post("/admin/templates/refresh", templates::refresh)
        .get("/admin/templates/{id}", templates::compose)
        .post("/admin/templates/{id}", templates::submit)
        .get("/admin/campaigns/{id}", templates::campaign)
        .post("/admin/campaigns/{id}/{action}", templates::change)
        .get("/admin/clients", clients::list)
        .post("/admin/clients", clients::create)
        .post("/admin/clients/{client_id}/rotate", clients::rotate)
        .post("/admin/clients/{client_id}/delete", clients::delete)
        .get("/admin/tokens", tokens::list)
        .post("/admin/tokens", tokens::create)
        .post("/admin/tokens/{id}/revoke", tokens::revoke)
        .get("/admin/endpoints", endpoints::list)
        .post("/admin/endpoints", endpoints::create)
        .get("/admin/endpoints/{id}", endpoints::detail)
        .post("/admin/endpoints/{id}/rotate", endpoints::rotate)
        .post(
            "/admin/endpoints/{id}/deliveries/{delivery}/resend",
            endpoints::resend,
        )
        .post("/admin/endpoints/{id}/{action}", endpoints::change)
}

/// Every route that requires a signed-in admin, with its method (paths as declared, `{param}` included).
pub fn guarded_routes() -> Vec<(Method, &'static str)> {
    table().listed
}

pub fn router(state: &AppState) -> Router<AppState> {
    table()
        .router
        .route_layer(middleware::from_fn_with_state(state.clone(), require_admin))
        .route(
            "/admin/login",
            get(auth::login_page)
                .post(auth::login)
                .layer(axum::extract::DefaultBodyLimit::max(MAX_FORM))
                .route_layer(middleware::from_fn_with_state(
                    (
                        std::sync::Arc::clone(&state.limits),
                        crate::web::limits::Route::AdminLogin,
                    ),
                    crate::web::limits::limit,
                )),
        )
        // Admin pages hold followers' data: never cached, by the browser or anything between.
        .layer(SetResponseHeaderLayer::overriding(
            header::CACHE_CONTROL,
            HeaderValue::from_static("no-store"),
        ))
        .layer(axum::extract::DefaultBodyLimit::max(MAX_UPLOAD))
}

/// The one gate: no admin in the session, off to the sign-in page; a form without the session's CSRF
/// token, refused. Handlers behind it find the [`CurrentAdmin`] in the request.
async fn require_admin(
    State(app): State<AppState>,
    session: Session,
    csrf: Csrf,
    request: Request,
    next: Next,
) -> Result<Response, AppError> {
    let Some(admin) = auth::signed_in_admin(&app, &session).await? else {
        let back = if request.method() == Method::GET {
            request
                .uri()
                .path_and_query()
                .map_or("/admin", |p| p.as_str())
        } else {
            "/admin"
        };
        let location = format!("/admin/login?next={}", urlencoding::encode(back));
        return Ok(see_other(&location));
    };
    let mut request = if request.method() == Method::GET || request.method() == Method::HEAD {
        request
    } else {
        let multipart = upload::is_multipart(&request);
        let (parts, body) = request.into_parts();
        let limit = if multipart { MAX_UPLOAD } else { MAX_FORM };
        let bytes = axum::body::to_bytes(body, limit)
            .await
            .map_err(|_| AppError::TooLarge)?;
        let token = if multipart {
            let content_type = parts
                .headers
                .get(header::CONTENT_TYPE)
                .and_then(|v| v.to_str().ok())
                .unwrap_or_default();
            upload::csrf_of_multipart(content_type, &bytes).await
        } else {
            serde_urlencoded::from_bytes::<CsrfForm>(&bytes)
                .map(|f| f.csrf)
                .unwrap_or_default()
        };
        csrf.check(&token)?;
        Request::from_parts(parts, Body::from(bytes))
    };
    request.extensions_mut().insert(admin);
    Ok(next.run(request).await)
}
