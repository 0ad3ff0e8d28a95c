//! [`Routes`]: a router that knows which operations it serves. Every route module
//! adds its routes through it, so the list of operations is read off the router
//! itself; a test holds that list against `openapi.json`, and no hand-kept copy can
//! drift from either.

use axum::{
    Router,
    handler::Handler,
    http::Method,
    routing::{self, MethodRouter},
};

use super::AppState;
use crate::oauth::OAuthError;

/// One operation the router serves: a method on a path.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Operation {
    pub method: Method,
    pub path: &'static str,
}

/// Routes, and the operations they serve, built in one step. The fields are private
/// to this module so that a route module cannot add a route without listing it.
#[derive(Debug, Default)]
#[must_use]
pub struct Routes {
    router: Router<AppState>,
    operations: Vec<Operation>,
}

impl Routes {
    /// No routes yet.
    pub fn new() -> Self {
        Routes::default()
    }

    /// Serves `GET path` (and `HEAD`, which axum answers from the same handler).
    /// Any other method on the path answers 405 `invalid_request` with `Allow: GET`.
    pub fn get<H, T>(self, path: &'static str, handler: H) -> Self
    where
        H: Handler<T, AppState>,
        T: 'static,
    {
        self.serve(Method::GET, "GET", path, routing::get(handler))
    }

    /// Serves `POST path`. Any other method on the path answers 405
    /// `invalid_request` with `Allow: POST`.
    pub fn post<H, T>(self, path: &'static str, handler: H) -> Self
    where
        H: Handler<T, AppState>,
        T: 'static,
    {
        self.serve(Method::POST, "POST", path, routing::post(handler))
    }

    /// Serves `GET path` with `get` and `POST path` with `post` (a page and its
    /// form). Any other method answers 405 with `Allow: GET, POST`.
    pub fn get_post<G, TG, P, TP>(self, path: &'static str, get: G, post: P) -> Self
    where
        G: Handler<TG, AppState>,
        TG: 'static,
        P: Handler<TP, AppState>,
        TP: 'static,
    {
        let routes = self.serve(Method::GET, "GET, POST", path, routing::get(get).post(post));
        let mut routes = routes;
        routes.operations.push(Operation {
            method: Method::POST,
            path,
        });
        routes
    }

    /// Serves `methods` on `path` with `method_router` (a resource of the admin
    /// API: e.g. GET and DELETE). Any other method answers 405 with `Allow` listing
    /// them.
    pub fn resource(
        mut self,
        path: &'static str,
        methods: &[Method],
        allow: &'static str,
        method_router: MethodRouter<AppState>,
    ) -> Self {
        self.router = self.router.route(
            path,
            method_router.fallback(move || async move { OAuthError::MethodNotAllowed { allow } }),
        );
        for method in methods {
            self.operations.push(Operation {
                method: method.clone(),
                path,
            });
        }
        self
    }

    /// Adds the routes of another module.
    ///
    /// # Panics
    /// When both serve the same path: a programming error that shows at start-up
    /// (axum's own rule for overlapping routes).
    pub fn merge(mut self, other: Routes) -> Self {
        self.router = self.router.merge(other.router);
        self.operations.extend(other.operations);
        self
    }

    /// What these routes serve, in the order they were added.
    pub fn operations(&self) -> &[Operation] {
        &self.operations
    }

    /// The axum router, for the layers and the fallback.
    pub fn into_router(self) -> Router<AppState> {
        self.router
    }

    /// One method on one path; every path has exactly one.
    fn serve(
        mut self,
        method: Method,
        allow: &'static str,
        path: &'static str,
        method_router: MethodRouter<AppState>,
    ) -> Self {
        self.router = self.router.route(
            path,
            method_router.fallback(move || async move { OAuthError::MethodNotAllowed { allow } }),
        );
        self.operations.push(Operation { method, path });
        self
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn operations_are_listed_as_they_are_added_and_merged() {
        let first = Routes::new().get("/a", || async {});
        let second = Routes::new().post("/b", || async {});
        let routes = first.merge(second);
        assert_eq!(
            routes.operations(),
            [
                Operation {
                    method: Method::GET,
                    path: "/a"
                },
                Operation {
                    method: Method::POST,
                    path: "/b"
                },
            ]
        );
    }
}
